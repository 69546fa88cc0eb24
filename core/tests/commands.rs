//! Every `Command` in `cmqtt::command`: the exact line (and prompted data, completion, prefix,
//! timeout) it encodes to, and what it parses from the spec's example answers. Then the read
//! forms once more end to end, through the session over the scripted modem.

mod support;

use std::time::Duration;

use cmqtt::command::*;
use cmqtt::{CfgSetting, ClientConfig, Error, Model, Profile, SslSetting};
use support::*;

fn a7600() -> Profile {
    Model::A7600.profile()
}

/// The request, owned (the data copied out of the command).
fn req<C: Command>(c: &C, p: &Profile) -> Request<'static> {
    let r = c.request(p).unwrap();
    Request {
        name: r.name,
        line: r.line.clone(),
        redacted: r.redacted.clone(),
        data: r.data.as_ref().map(|d| d.to_vec().into()),
        prefix: r.prefix,
        any_line: r.any_line,
        completion: r.completion,
        index: r.index,
        timeout: r.timeout,
    }
}

fn resp(lines: &[&str]) -> Response {
    Response {
        lines: lines.iter().map(|l| l.as_bytes().to_vec()).collect(),
        result: None,
    }
}

/// A command answered by `OK` alone.
#[track_caller]
fn plain(r: &Request<'_>, name: &str, line: &str, prefix: &str, timeout: Duration) {
    assert_eq!(r.name, name);
    assert_eq!(r.line, line);
    assert_eq!(r.prefix, prefix);
    assert_eq!(r.completion, Completion::Final);
    assert_eq!(r.index, None);
    assert!(!r.any_line);
    assert!(r.data.is_none());
    assert_eq!(r.timeout, timeout);
    assert_eq!(r.trace_text(), line);
}

/// A command with data after `>` (the line announces the data's length).
#[track_caller]
fn prompted(r: &Request<'_>, line: &str, prefix: &str, data: &[u8]) {
    assert_eq!(r.line, line);
    assert_eq!(r.prefix, prefix);
    assert_eq!(r.data.as_deref(), Some(data));
}

/// A command finished by its `+CMQTTxxx: [<idx>,]<err>` line.
#[track_caller]
fn async_(r: &Request<'_>, line: &str, prefix: &str, index: Option<u8>, timeout: Duration) {
    assert_eq!(r.line, line);
    assert_eq!(r.prefix, prefix);
    assert_eq!(r.completion, Completion::ResultLine);
    assert_eq!(r.index, index);
    assert_eq!(r.timeout, timeout);
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---- basic -----------------------------------------------------------------------------------

#[test]
fn at_and_echo() {
    let p = a7600();
    plain(&req(&At, &p), "AT", "AT", "", Duration::from_millis(500));
    At.parse(resp(&[])).unwrap();
    plain(&req(&Echo(false), &p), "ATE", "ATE0", "", p.command_timeout);
    plain(&req(&Echo(true), &p), "ATE", "ATE1", "", p.command_timeout);
    Echo(false).parse(resp(&[])).unwrap();
}

#[test]
fn identify() {
    let p = a7600();
    for (w, line) in [
        (IdentifyWhat::Model, "AT+CGMM"),
        (IdentifyWhat::Revision, "AT+CGMR"),
        (IdentifyWhat::Imei, "AT+CGSN"),
        (IdentifyWhat::Info, "ATI"),
    ] {
        let r = req(&Identify(w), &p);
        assert_eq!((r.name, r.line.as_str()), (line, line));
        assert!(r.any_line);
        assert_eq!(r.completion, Completion::Final);
    }
    assert_eq!(
        Identify(IdentifyWhat::Model)
            .parse(resp(&["A7600E-H"]))
            .unwrap(),
        ["A7600E-H"]
    );
    assert_eq!(
        Identify(IdentifyWhat::Revision)
            .parse(resp(&["+CGMR: A011B05V01A7600M7"]))
            .unwrap(),
        ["A011B05V01A7600M7"]
    );
    assert_eq!(
        Identify(IdentifyWhat::Imei)
            .parse(resp(&["", "861234567890123 "]))
            .unwrap(),
        ["861234567890123"]
    );
    assert_eq!(
        Identify(IdentifyWhat::Info)
            .parse(resp(&[
                "Manufacturer: SIMCOM INCORPORATED",
                "Model: A7600E-H",
                "Revision: A011B05",
                "IMEI: 861234567890123",
            ]))
            .unwrap(),
        [
            "Manufacturer: SIMCOM INCORPORATED",
            "Model: A7600E-H",
            "Revision: A011B05",
            "IMEI: 861234567890123"
        ]
    );
}

#[test]
fn csq_and_registration() {
    let p = a7600();
    plain(
        &req(&Csq, &p),
        "AT+CSQ",
        "AT+CSQ",
        "+CSQ:",
        p.command_timeout,
    );
    // A7600 manual chapter 3: "+CSQ: 23,0".
    assert_eq!(Csq.parse(resp(&["+CSQ: 23,0"])).unwrap(), (23, 0));
    assert_eq!(Csq.parse(resp(&["+CSQ: 99,99"])).unwrap(), (99, 99));
    assert!(matches!(
        Csq.parse(resp(&[])),
        Err(Error::Protocol {
            command: "AT+CSQ",
            ..
        })
    ));
    assert!(matches!(
        Csq.parse(resp(&["+CSQ: x,0"])),
        Err(Error::Protocol { .. })
    ));
    let packet = Registration { packet: true };
    let circuit = Registration { packet: false };
    plain(
        &req(&packet, &p),
        "AT+CGREG?",
        "AT+CGREG?",
        "+CGREG:",
        p.command_timeout,
    );
    plain(
        &req(&circuit, &p),
        "AT+CREG?",
        "AT+CREG?",
        "+CREG:",
        p.command_timeout,
    );
    // "+CREG: 0,1" / "+CGREG: 0,1" of the examples; the URC form carries <stat> alone.
    assert_eq!(packet.parse(resp(&["+CGREG: 0,1"])).unwrap(), 1);
    assert_eq!(circuit.parse(resp(&["+CREG: 0,5"])).unwrap(), 5);
    assert_eq!(circuit.parse(resp(&["+CREG: 2"])).unwrap(), 2);
    assert!(matches!(
        packet.parse(resp(&["+CREG: 0,1"])),
        Err(Error::Protocol {
            command: "AT+CGREG?",
            ..
        })
    ));
}

#[test]
fn raw() {
    let p = a7600();
    let r = req(
        &Raw {
            line: "AT+CPSI?",
            prefix: "+CPSI:",
            timeout: secs(3),
        },
        &p,
    );
    assert_eq!(
        (r.name, r.line.as_str(), r.prefix),
        ("AT (raw)", "AT+CPSI?", "+CPSI:")
    );
    assert!(!r.any_line);
    assert_eq!(r.timeout, secs(3));
    let r = req(
        &Raw {
            line: "AT+CGACT?",
            prefix: "",
            timeout: secs(1),
        },
        &p,
    );
    assert!(r.any_line);
    let raw = Raw {
        line: "AT+CPSI?",
        prefix: "+CPSI:",
        timeout: secs(3),
    };
    assert_eq!(
        raw.parse(resp(&[
            "+CPSI: LTE,Online,460-00,0x333C,39589680,308,EUTRAN-BAND3,1350,5,0,0,54,0,22"
        ]))
        .unwrap(),
        ["+CPSI: LTE,Online,460-00,0x333C,39589680,308,EUTRAN-BAND3,1350,5,0,0,54,0,22"]
    );
}

// ---- MQTT: test forms ------------------------------------------------------------------------

const ALL_MQTT: [MqttCommand; 17] = [
    MqttCommand::Start,
    MqttCommand::Stop,
    MqttCommand::Accq,
    MqttCommand::Rel,
    MqttCommand::SslCfg,
    MqttCommand::WillTopic,
    MqttCommand::WillMsg,
    MqttCommand::Connect,
    MqttCommand::Disc,
    MqttCommand::Topic,
    MqttCommand::Payload,
    MqttCommand::Pub,
    MqttCommand::SubTopic,
    MqttCommand::Sub,
    MqttCommand::UnsubTopic,
    MqttCommand::Unsub,
    MqttCommand::Cfg,
];

#[test]
fn test_forms_encode() {
    let p = a7600();
    let names: Vec<&str> = ALL_MQTT.iter().map(|c| c.at()).collect();
    assert_eq!(
        names,
        [
            "AT+CMQTTSTART",
            "AT+CMQTTSTOP",
            "AT+CMQTTACCQ",
            "AT+CMQTTREL",
            "AT+CMQTTSSLCFG",
            "AT+CMQTTWILLTOPIC",
            "AT+CMQTTWILLMSG",
            "AT+CMQTTCONNECT",
            "AT+CMQTTDISC",
            "AT+CMQTTTOPIC",
            "AT+CMQTTPAYLOAD",
            "AT+CMQTTPUB",
            "AT+CMQTTSUBTOPIC",
            "AT+CMQTTSUB",
            "AT+CMQTTUNSUBTOPIC",
            "AT+CMQTTUNSUB",
            "AT+CMQTTCFG",
        ]
    );
    for c in ALL_MQTT {
        assert_eq!(c.prefix(), format!("{}:", &c.at()[2..]));
        let r = req(&Test(c), &p);
        assert_eq!(r.line, format!("{}=?", c.at()));
        assert_eq!(r.completion, Completion::Final);
        if matches!(c, MqttCommand::Start | MqttCommand::Stop) {
            assert!(r.any_line);
        } else {
            assert_eq!(r.prefix, c.prefix());
            assert!(!r.any_line);
        }
    }
}

#[test]
fn test_forms_parse_the_spec_answers() {
    let cases: &[(MqttCommand, &[&str], &[&str])] = &[
        (
            MqttCommand::Accq,
            &["+CMQTTACCQ: (0-1),(1-128)[,(0-1)]"],
            &["(0-1),(1-128)[,(0-1)]"],
        ),
        (MqttCommand::Rel, &["+CMQTTREL: (0-1)"], &["(0-1)"]),
        (
            MqttCommand::SslCfg,
            &["+CMQTTSSLCFG: (0,1),(0-9)"],
            &["(0,1),(0-9)"],
        ),
        (
            MqttCommand::WillTopic,
            &["+CMQTTWILLTOPIC: (0-1),(1-1024)"],
            &["(0-1),(1-1024)"],
        ),
        (
            MqttCommand::WillMsg,
            &["+CMQTTWILLMSG: (0-1),(1-1024),(0-2)"],
            &["(0-1),(1-1024),(0-2)"],
        ),
        (
            MqttCommand::Connect,
            &["+CMQTTCONNECT: (0-1),(9-256),(1-64800),(0-1)[,<user_name>,<pass_word>]"],
            &["(0-1),(9-256),(1-64800),(0-1)[,<user_name>,<pass_word>]"],
        ),
        (
            MqttCommand::Disc,
            &["+CMQTTDISC: (0-1),(0, 60-180)"],
            &["(0-1),(0, 60-180)"],
        ),
        (
            MqttCommand::Topic,
            &["+CMQTTTOPIC: (0-1),(1-1024)"],
            &["(0-1),(1-1024)"],
        ),
        (
            MqttCommand::Payload,
            &["+CMQTTPAYLOAD: (0-1),(1-10240)"],
            &["(0-1),(1-10240)"],
        ),
        (
            MqttCommand::Pub,
            &["+CMQTTPUB: (0-1),(0-2),(60-180),(0-1),(0-1)"],
            &["(0-1),(0-2),(60-180),(0-1),(0-1)"],
        ),
        (
            MqttCommand::SubTopic,
            &["+CMQTTSUBTOPIC: (0-1),(1-1024),(0-2)"],
            &["(0-1),(1-1024),(0-2)"],
        ),
        (
            MqttCommand::Sub,
            &["+CMQTTSUB: (0-1),(0-1024),(0-2),(0-1)"],
            &["(0-1),(0-1024),(0-2),(0-1)"],
        ),
        (
            MqttCommand::UnsubTopic,
            &["+CMQTTUNSUBTOPIC: (0-1),(1-1024)"],
            &["(0-1),(1-1024)"],
        ),
        (
            MqttCommand::Unsub,
            &["+CMQTTUNSUB: (0-1),(0-1024),(0-1)"],
            &["(0-1),(0-1024),(0-1)"],
        ),
        (
            MqttCommand::Cfg,
            &[
                "+CMQTTCFG: \"checkUTF8\",(0-1),(0-1)",
                "+CMQTTCFG: \"optimeout\",(0-1),(20-120)",
                "+CMQTTCFG: \"version\",(0-1),(3-4)",
            ],
            &[
                "\"checkUTF8\",(0-1),(0-1)",
                "\"optimeout\",(0-1),(20-120)",
                "\"version\",(0-1),(3-4)",
            ],
        ),
        // START/STOP have no test form in the spec: any answer line is kept as it is.
        (MqttCommand::Start, &["OK?"], &["OK?"]),
    ];
    for (c, lines, want) in cases {
        assert_eq!(Test(*c).parse(resp(lines)).unwrap(), *want, "{c:?}");
    }
    // An empty answer is an empty list, not an error.
    assert!(Test(MqttCommand::Pub).parse(resp(&[])).unwrap().is_empty());
}

// ---- MQTT: service and clients -----------------------------------------------------------

#[test]
fn start_and_stop() {
    let p = a7600();
    async_(
        &req(&Start, &p),
        "AT+CMQTTSTART",
        "+CMQTTSTART:",
        None,
        secs(135),
    );
    async_(
        &req(&Stop, &p),
        "AT+CMQTTSTOP",
        "+CMQTTSTOP:",
        None,
        secs(135),
    );
    let s = Model::Sim7672x.profile();
    async_(
        &req(&Start, &s),
        "AT+CMQTTSTART",
        "+CMQTTSTART:",
        None,
        secs(27),
    );
    Start.parse(resp(&[])).unwrap();
    Stop.parse(resp(&[])).unwrap();
}

#[test]
fn accq_rel_and_their_read_forms() {
    let p = a7600();
    let accq = |index, id: &str, tls, version| Accq {
        index,
        client_id: id.into(),
        tls,
        version,
    };
    // A7600 3.1: AT+CMQTTACCQ=0,"client test0" (server type 0 is the default, sent explicitly).
    plain(
        &req(&accq(0, "client test0", false, None), &p),
        "AT+CMQTTACCQ",
        "AT+CMQTTACCQ=0,\"client test0\",0",
        "+CMQTTACCQ:",
        p.command_timeout,
    );
    assert_eq!(
        req(&accq(1, "client test0", true, None), &p).line,
        "AT+CMQTTACCQ=1,\"client test0\",1"
    );
    assert_eq!(
        req(
            &accq(0, "a12mmmm", false, Some(4)),
            &Model::Sim7600.profile()
        )
        .line,
        "AT+CMQTTACCQ=0,\"a12mmmm\",0,4"
    );
    accq(0, "x", false, None).parse(resp(&[])).unwrap();

    plain(
        &req(&AccqRead, &p),
        "AT+CMQTTACCQ?",
        "AT+CMQTTACCQ?",
        "+CMQTTACCQ:",
        p.command_timeout,
    );
    // SIM7672X note 2.2.3.
    assert_eq!(
        AccqRead
            .parse(resp(&[
                "+CMQTTACCQ: 0,\"a12mmmm\",0",
                "+CMQTTACCQ: 1,\"\",0"
            ]))
            .unwrap(),
        [
            AcquiredClient {
                index: 0,
                client_id: "a12mmmm".into(),
                tls: false
            },
            AcquiredClient {
                index: 1,
                client_id: String::new(),
                tls: false
            },
        ]
    );
    assert_eq!(
        AccqRead.parse(resp(&["+CMQTTACCQ: 1, \"a,b\",1"])).unwrap(),
        [AcquiredClient {
            index: 1,
            client_id: "a,b".into(),
            tls: true
        }]
    );
    assert!(matches!(
        AccqRead.parse(resp(&["+CMQTTACCQ: 0"])),
        Err(Error::Protocol {
            command: "AT+CMQTTACCQ?",
            ..
        })
    ));

    plain(
        &req(&Rel { index: 0 }, &p),
        "AT+CMQTTREL",
        "AT+CMQTTREL=0",
        "+CMQTTREL:",
        p.command_timeout,
    );
    Rel { index: 1 }.parse(resp(&[])).unwrap();
}

#[test]
fn mqtt_ssl_cfg_and_read() {
    let p = a7600();
    plain(
        &req(
            &MqttSslCfg {
                index: 0,
                ssl_ctx: 1,
            },
            &p,
        ),
        "AT+CMQTTSSLCFG",
        "AT+CMQTTSSLCFG=0,1",
        "+CMQTTSSLCFG:",
        p.command_timeout,
    );
    MqttSslCfg {
        index: 0,
        ssl_ctx: 0,
    }
    .parse(resp(&[]))
    .unwrap();
    plain(
        &req(&MqttSslCfgRead, &p),
        "AT+CMQTTSSLCFG?",
        "AT+CMQTTSSLCFG?",
        "+CMQTTSSLCFG:",
        p.command_timeout,
    );
    // SIM7672X note 2.2.5; and the manual's "[<ssl_ctx_index>]" left out.
    assert_eq!(
        MqttSslCfgRead
            .parse(resp(&["+CMQTTSSLCFG: 0,0", "+CMQTTSSLCFG: 1,0"]))
            .unwrap(),
        [(0, Some(0)), (1, Some(0))]
    );
    assert_eq!(
        MqttSslCfgRead
            .parse(resp(&["+CMQTTSSLCFG: 0,9", "+CMQTTSSLCFG: 1,"]))
            .unwrap(),
        [(0, Some(9)), (1, None)]
    );
}

#[test]
fn will_topic_and_message() {
    let p = a7600();
    // The examples: AT+CMQTTWILLTOPIC=0,10 / >0123456789 and AT+CMQTTWILLMSG=0,6,1 / > qwerty.
    let r = req(
        &WillTopic {
            index: 0,
            topic: b"0123456789",
        },
        &p,
    );
    prompted(
        &r,
        "AT+CMQTTWILLTOPIC=0,10",
        "+CMQTTWILLTOPIC:",
        b"0123456789",
    );
    assert_eq!(r.completion, Completion::Final);
    let r = req(
        &WillMsg {
            index: 0,
            message: b"qwerty",
            qos: 1,
        },
        &p,
    );
    prompted(&r, "AT+CMQTTWILLMSG=0,6,1", "+CMQTTWILLMSG:", b"qwerty");
    assert_eq!(r.completion, Completion::Final);
}

#[test]
fn connect_and_read() {
    let p = a7600();
    let c = Connect {
        index: 0,
        server: "tcp://test.mosquitto.org:1883",
        keepalive: 60,
        clean_session: true,
        username: None,
        password: None,
        timeout: secs(30),
    };
    let r = req(&c, &p);
    async_(
        &r,
        "AT+CMQTTCONNECT=0,\"tcp://test.mosquitto.org:1883\",60,1",
        "+CMQTTCONNECT:",
        Some(0),
        secs(30),
    );
    assert!(r.redacted.is_none());
    let c = Connect {
        index: 1,
        server: "tcp://120.27.2.154:1883",
        keepalive: 20,
        clean_session: false,
        username: Some("user"),
        password: None,
        timeout: secs(5),
    };
    assert_eq!(
        req(&c, &p).line,
        "AT+CMQTTCONNECT=1,\"tcp://120.27.2.154:1883\",20,0,\"user\""
    );
    c.parse(resp(&[])).unwrap();

    plain(
        &req(&ConnectRead, &p),
        "AT+CMQTTCONNECT?",
        "AT+CMQTTCONNECT?",
        "+CMQTTCONNECT:",
        p.command_timeout,
    );
    // SIM7672X note 2.2.8, plus a line with credentials.
    let info = ConnectRead
        .parse(resp(&[
            "+CMQTTCONNECT: 0,\"tcp://120.27.2.154:1883\",20,1",
            "+CMQTTCONNECT: 1",
        ]))
        .unwrap();
    assert_eq!(
        info,
        [
            ConnectionInfo {
                index: 0,
                server: Some("tcp://120.27.2.154:1883".into()),
                keepalive: Some(20),
                clean_session: Some(true),
                username: None,
            },
            ConnectionInfo {
                index: 1,
                server: None,
                keepalive: None,
                clean_session: None,
                username: None,
            },
        ]
    );
    let info = ConnectRead
        .parse(resp(&[
            "+CMQTTCONNECT: 1,\"tcp://h:1883\",60,0,\"alice\",\"pw\"",
        ]))
        .unwrap();
    assert_eq!(info[0].username.as_deref(), Some("alice"));
    assert_eq!(info[0].clean_session, Some(false));
}

#[test]
fn disc_and_read() {
    let p = a7600();
    async_(
        &req(
            &Disc {
                index: 0,
                timeout: 120,
            },
            &p,
        ),
        "AT+CMQTTDISC=0,120",
        "+CMQTTDISC:",
        Some(0),
        secs(135),
    );
    async_(
        &req(
            &Disc {
                index: 1,
                timeout: 0,
            },
            &p,
        ),
        "AT+CMQTTDISC=1,0",
        "+CMQTTDISC:",
        Some(1),
        secs(75),
    );
    Disc {
        index: 0,
        timeout: 60,
    }
    .parse(resp(&[]))
    .unwrap();
    plain(
        &req(&DiscRead, &p),
        "AT+CMQTTDISC?",
        "AT+CMQTTDISC?",
        "+CMQTTDISC:",
        p.command_timeout,
    );
    // <disc_state>: 1 disconnected, 0 connected.
    assert_eq!(
        DiscRead
            .parse(resp(&["+CMQTTDISC: 0,1", "+CMQTTDISC: 1,0"]))
            .unwrap(),
        [(0, false), (1, true)]
    );
    assert!(matches!(
        DiscRead.parse(resp(&["+CMQTTDISC: 0"])),
        Err(Error::Protocol { .. })
    ));
}

#[test]
fn topic_payload_pub() {
    let p = a7600();
    let r = req(
        &Topic {
            index: 0,
            topic: b"simcommsg",
        },
        &p,
    );
    prompted(&r, "AT+CMQTTTOPIC=0,9", "+CMQTTTOPIC:", b"simcommsg");
    assert_eq!(r.completion, Completion::Final);
    assert_eq!(r.timeout, p.command_timeout);
    let digits = b"012345678901234567890123456789012345678901234567890123456789";
    let r = req(
        &Payload {
            index: 0,
            payload: digits,
        },
        &p,
    );
    prompted(&r, "AT+CMQTTPAYLOAD=0,60", "+CMQTTPAYLOAD:", digits);
    let pub_ = |index, qos, pub_timeout, retain, dup| Pub {
        index,
        qos,
        pub_timeout,
        retain,
        dup,
    };
    // AT+CMQTTPUB=0,1,60 (retained and dup default to 0, sent explicitly).
    async_(
        &req(&pub_(0, 1, 60, false, false), &p),
        "AT+CMQTTPUB=0,1,60,0,0",
        "+CMQTTPUB:",
        Some(0),
        secs(75),
    );
    async_(
        &req(&pub_(1, 2, 180, true, true), &p),
        "AT+CMQTTPUB=1,2,180,1,1",
        "+CMQTTPUB:",
        Some(1),
        secs(195),
    );
    pub_(0, 0, 60, false, false).parse(resp(&[])).unwrap();
}

#[test]
fn subscribe_forms_and_read() {
    let p = a7600();
    let r = req(
        &SubTopic {
            index: 0,
            topic: b"123456789",
            qos: 1,
        },
        &p,
    );
    prompted(
        &r,
        "AT+CMQTTSUBTOPIC=0,9,1",
        "+CMQTTSUBTOPIC:",
        b"123456789",
    );
    assert_eq!(r.completion, Completion::Final);
    // AT+CMQTTSUB=0 (dup 0) and the note's AT+CMQTTSUB=0,1.
    async_(
        &req(
            &Sub {
                index: 0,
                dup: false,
            },
            &p,
        ),
        "AT+CMQTTSUB=0,0",
        "+CMQTTSUB:",
        Some(0),
        secs(75),
    );
    assert_eq!(
        req(
            &Sub {
                index: 0,
                dup: true
            },
            &p
        )
        .line,
        "AT+CMQTTSUB=0,1"
    );
    let r = req(
        &SubOne {
            index: 0,
            topic: b"simcommsg",
            qos: 1,
            dup: false,
        },
        &p,
    );
    async_(&r, "AT+CMQTTSUB=0,9,1,0", "+CMQTTSUB:", Some(0), secs(75));
    assert_eq!(r.data.as_deref(), Some(&b"simcommsg"[..]));

    let s = Model::Sim7672x.profile();
    let r = req(&SubRead, &s);
    assert_eq!(r.line, "AT+CMQTTSUB?");
    assert!(r.any_line);
    assert!(matches!(
        SubRead.request(&p),
        Err(Error::Unsupported("AT+CMQTTSUB?"))
    ));
    // The note's layout: "+CMQTTSUB:" then the topics.
    assert_eq!(
        SubRead
            .parse(resp(&["+CMQTTSUB:", "simcommsg", "123456789"]))
            .unwrap(),
        [(None, b"simcommsg".to_vec()), (None, b"123456789".to_vec())]
    );
    // Field firmware: one line per topic with the client index.
    assert_eq!(
        SubRead
            .parse(resp(&["+CMQTTSUB: 0,\"a/b\"", "+CMQTTSUB: 1,\"c,d\""]))
            .unwrap(),
        [(Some(0), b"a/b".to_vec()), (Some(1), b"c,d".to_vec())]
    );
    assert!(SubRead.parse(resp(&["+CMQTTSUB:"])).unwrap().is_empty());
}

#[test]
fn unsubscribe_forms() {
    let p = a7600();
    let r = req(
        &UnsubTopic {
            index: 1,
            topic: b"simcommsg",
        },
        &p,
    );
    prompted(
        &r,
        "AT+CMQTTUNSUBTOPIC=1,9",
        "+CMQTTUNSUBTOPIC:",
        b"simcommsg",
    );
    assert_eq!(r.completion, Completion::Final);
    async_(
        &req(
            &Unsub {
                index: 0,
                dup: false,
            },
            &p,
        ),
        "AT+CMQTTUNSUB=0,0",
        "+CMQTTUNSUB:",
        Some(0),
        secs(75),
    );
    // The note's AT+CMQTTUNSUB=0,1.
    assert_eq!(
        req(
            &Unsub {
                index: 0,
                dup: true
            },
            &p
        )
        .line,
        "AT+CMQTTUNSUB=0,1"
    );
    // AT+CMQTTUNSUB=0,9,0 / >simcommsg.
    let r = req(
        &UnsubOne {
            index: 0,
            topic: b"simcommsg",
            dup: false,
        },
        &p,
    );
    async_(&r, "AT+CMQTTUNSUB=0,9,0", "+CMQTTUNSUB:", Some(0), secs(75));
    assert_eq!(r.data.as_deref(), Some(&b"simcommsg"[..]));
}

#[test]
fn cfg_and_read() {
    let p = a7600();
    let cfg = |index, setting| Cfg { index, setting };
    plain(
        &req(&cfg(0, CfgSetting::CheckUtf8(false)), &p),
        "AT+CMQTTCFG",
        "AT+CMQTTCFG=\"checkUTF8\",0,0",
        "+CMQTTCFG:",
        p.command_timeout,
    );
    assert_eq!(
        req(&cfg(1, CfgSetting::CheckUtf8(true)), &p).line,
        "AT+CMQTTCFG=\"checkUTF8\",1,1"
    );
    assert_eq!(
        req(&cfg(0, CfgSetting::OpTimeout(24)), &p).line,
        "AT+CMQTTCFG=\"optimeout\",0,24"
    );
    assert_eq!(
        req(&cfg(0, CfgSetting::Version(4)), &Model::Sim7672x.profile()).line,
        "AT+CMQTTCFG=\"version\",0,4"
    );
    cfg(0, CfgSetting::OpTimeout(20)).parse(resp(&[])).unwrap();
    plain(
        &req(&CfgRead, &p),
        "AT+CMQTTCFG?",
        "AT+CMQTTCFG?",
        "+CMQTTCFG:",
        p.command_timeout,
    );
    // SIM7672X note 2.2.15, before and after the two writes.
    assert_eq!(
        CfgRead
            .parse(resp(&["+CMQTTCFG: 0,1,120", "+CMQTTCFG: 1,1,120"]))
            .unwrap(),
        [
            ClientConfig {
                index: 0,
                check_utf8: true,
                optimeout: 120
            },
            ClientConfig {
                index: 1,
                check_utf8: true,
                optimeout: 120
            },
        ]
    );
    assert_eq!(
        CfgRead
            .parse(resp(&["+CMQTTCFG: 0,0,24", "+CMQTTCFG: 1, 1,120"]))
            .unwrap(),
        [
            ClientConfig {
                index: 0,
                check_utf8: false,
                optimeout: 24
            },
            ClientConfig {
                index: 1,
                check_utf8: true,
                optimeout: 120
            },
        ]
    );
    assert!(matches!(
        CfgRead.parse(resp(&["+CMQTTCFG: 0,1"])),
        Err(Error::Protocol {
            command: "AT+CMQTTCFG?",
            ..
        })
    ));
}

// ---- TLS -------------------------------------------------------------------------------------

#[test]
fn ssl_cfg_every_setting() {
    let p = a7600();
    let cases = [
        (SslSetting::SslVersion(4), "AT+CSSLCFG=\"sslversion\",0,4"),
        (SslSetting::AuthMode(1), "AT+CSSLCFG=\"authmode\",0,1"),
        (
            SslSetting::IgnoreLocalTime(true),
            "AT+CSSLCFG=\"ignorelocaltime\",0,1",
        ),
        (
            SslSetting::NegotiateTime(300),
            "AT+CSSLCFG=\"negotiatetime\",0,300",
        ),
        (
            SslSetting::CaCert("server_ca.pem".into()),
            "AT+CSSLCFG=\"cacert\",0,\"server_ca.pem\"",
        ),
        (
            SslSetting::ClientCert("cert.pem".into()),
            "AT+CSSLCFG=\"clientcert\",0,\"cert.pem\"",
        ),
        (
            SslSetting::ClientKey("key_cert.pem".into()),
            "AT+CSSLCFG=\"clientkey\",0,\"key_cert.pem\"",
        ),
        (SslSetting::EnableSni(false), "AT+CSSLCFG=\"enableSNI\",0,0"),
    ];
    for (setting, line) in cases {
        let c = SslCfg { ctx: 0, setting };
        plain(
            &req(&c, &p),
            "AT+CSSLCFG",
            line,
            "+CSSLCFG:",
            p.command_timeout,
        );
        c.parse(resp(&[])).unwrap();
    }
    assert_eq!(
        req(
            &SslCfg {
                ctx: 9,
                setting: SslSetting::AuthMode(0)
            },
            &p
        )
        .line,
        "AT+CSSLCFG=\"authmode\",9,0"
    );
    plain(
        &req(&SslCfgRead, &p),
        "AT+CSSLCFG?",
        "AT+CSSLCFG?",
        "+CSSLCFG:",
        p.command_timeout,
    );
    assert_eq!(
        SslCfgRead
            .parse(resp(&[
                "+CSSLCFG: 0,3,0,1,300,\"ca.pem\",\"\",\"\"",
                "+CSSLCFG: 1,4,0"
            ]))
            .unwrap(),
        ["0,3,0,1,300,\"ca.pem\",\"\",\"\"", "1,4,0"]
    );
}

#[test]
fn certificate_store() {
    let p = a7600();
    let pem = b"-----BEGIN CERTIFICATE-----\r\nMIIB\r\n-----END CERTIFICATE-----\r\n";
    let c = CertDown {
        name: "ca_cert.pem",
        data: pem,
    };
    let r = req(&c, &p);
    assert_eq!(
        r.line,
        format!("AT+CCERTDOWN=\"ca_cert.pem\",{}", pem.len())
    );
    assert_eq!(r.data.as_deref(), Some(&pem[..]));
    assert_eq!(r.prefix, "+CCERTDOWN:");
    assert_eq!(r.timeout, p.command_timeout + secs(10));
    c.parse(resp(&[])).unwrap();
    plain(
        &req(&CertList, &p),
        "AT+CCERTLIST",
        "AT+CCERTLIST",
        "+CCERTLIST:",
        p.command_timeout,
    );
    assert_eq!(
        CertList
            .parse(resp(&[
                "+CCERTLIST: \"ca_cert.pem\"",
                "+CCERTLIST: \"cert.pem\"",
                "+CCERTLIST: \"key_cert.pem\"",
            ]))
            .unwrap(),
        ["ca_cert.pem", "cert.pem", "key_cert.pem"]
    );
    assert!(CertList.parse(resp(&[])).unwrap().is_empty());
    let d = CertDele { name: "key.pem" };
    plain(
        &req(&d, &p),
        "AT+CCERTDELE",
        "AT+CCERTDELE=\"key.pem\"",
        "+CCERTDELE:",
        p.command_timeout,
    );
    d.parse(resp(&[])).unwrap();
}

// ---- the read forms end to end, through the session ---------------------------------------

#[test]
fn read_forms_through_the_session() {
    let s = Scripted::start("SIM7672G-MNGV", |l, m| {
        let a: &[u8] = match l {
            "AT+CMQTTACCQ?" => b"\r\n+CMQTTACCQ: 0,\"a12mmmm\",0\r\n+CMQTTACCQ: 1,\"\",0\r\n\r\nOK\r\n",
            "AT+CMQTTCONNECT?" => b"\r\n+CMQTTCONNECT: 0,\"tcp://120.27.2.154:1883\",20,1\r\n+CMQTTCONNECT: 1\r\n\r\nOK\r\n",
            "AT+CMQTTDISC?" => b"\r\n+CMQTTDISC: 0,0\r\n+CMQTTDISC: 1,1\r\n\r\nOK\r\n",
            // A URC in the middle of the answer is not one of its lines.
            "AT+CMQTTCFG?" => b"\r\n+CMQTTCFG: 0,0,24\r\n\r\n+CMQTTCONNLOST: 1,1\r\n+CMQTTCFG: 1,1,120\r\n\r\nOK\r\n",
            "AT+CMQTTSSLCFG?" => b"\r\n+CMQTTSSLCFG: 0,0\r\n+CMQTTSSLCFG: 1,0\r\n\r\nOK\r\n",
            "AT+CMQTTSUB?" => b"\r\n+CMQTTSUB:\r\nsimcommsg\r\n123456789\r\n\r\nOK\r\n",
            "AT+CCERTLIST" => b"\r\n+CCERTLIST: \"ca_cert.pem\"\r\n+CCERTLIST: \"cert.pem\"\r\n\r\nOK\r\n",
            "AT+CMQTTACCQ=?" => b"\r\n+CMQTTACCQ: (0-1),(1-128)[,(0-1)]\r\n\r\nOK\r\n",
            "AT+CMQTTCFG=?" => b"\r\n+CMQTTCFG: \"checkUTF8\",(0-1),(0-1)\r\n+CMQTTCFG: \"optimeout\",(0-1),(20-120)\r\n+CMQTTCFG: \"version\",(0-1),(3-4)\r\n\r\nOK\r\n",
            "AT+CGSN" => b"\r\n861234567890123\r\n\r\nOK\r\n",
            "AT+CREG?" => b"\r\n+CREG: 0,1\r\n\r\nOK\r\n",
            "AT+CSSLCFG?" => b"\r\n+CSSLCFG: 0,3,0\r\n\r\nOK\r\n",
            _ => return a76(l, m),
        };
        m.send(a);
        true
    });
    let modem = open(&s);
    assert_eq!(modem.model(), Model::Sim7672x);
    assert_eq!(modem.execute(&AccqRead).unwrap().len(), 2);
    assert_eq!(
        modem.execute(&ConnectRead).unwrap()[0].server.as_deref(),
        Some("tcp://120.27.2.154:1883")
    );
    assert_eq!(modem.execute(&DiscRead).unwrap(), [(0, true), (1, false)]);
    let cfg = modem.execute(&CfgRead).unwrap();
    assert_eq!(cfg.len(), 2);
    assert_eq!((cfg[0].optimeout, cfg[1].optimeout), (24, 120));
    assert_eq!(
        modem.execute(&MqttSslCfgRead).unwrap(),
        [(0, Some(0)), (1, Some(0))]
    );
    assert_eq!(
        modem.execute(&SubRead).unwrap(),
        [(None, b"simcommsg".to_vec()), (None, b"123456789".to_vec())]
    );
    assert_eq!(modem.cert_list().unwrap(), ["ca_cert.pem", "cert.pem"]);
    assert_eq!(
        modem.execute(&Test(MqttCommand::Accq)).unwrap(),
        ["(0-1),(1-128)[,(0-1)]"]
    );
    assert_eq!(modem.execute(&Test(MqttCommand::Cfg)).unwrap().len(), 3);
    assert!(modem.supports_mqtt());
    assert_eq!(modem.imei().unwrap(), "861234567890123");
    assert_eq!(modem.execute(&Registration { packet: false }).unwrap(), 1);
    assert_eq!(modem.registration().unwrap(), 1);
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
    assert_eq!(modem.execute(&SslCfgRead).unwrap(), ["0,3,0"]);
    // The client's view of the configuration picks its own line.
    let c = modem.client(1, "c", false).unwrap();
    assert_eq!(
        c.config().unwrap(),
        ClientConfig {
            index: 1,
            check_utf8: true,
            optimeout: 120
        }
    );
    assert!(!c.query_connected().unwrap());
}

// ---- validation at the command level -----------------------------------------------------------

#[track_caller]
fn invalid<C: Command>(c: C, p: &Profile, param: &str) {
    match c.request(p) {
        Err(Error::InvalidArgument { param: got, .. }) => assert_eq!(got, param),
        other => panic!(
            "expected InvalidArgument({param}), got {:?}",
            other.map(|r| r.line)
        ),
    }
}

#[test]
fn every_indexed_command_refuses_index_2() {
    let p = a7600();
    let t: &[u8] = b"t";
    invalid(
        Accq {
            index: 2,
            client_id: "x".into(),
            tls: false,
            version: None,
        },
        &p,
        "client_index",
    );
    invalid(Rel { index: 2 }, &p, "client_index");
    invalid(
        MqttSslCfg {
            index: 2,
            ssl_ctx: 0,
        },
        &p,
        "session_id",
    );
    invalid(WillTopic { index: 2, topic: t }, &p, "client_index");
    invalid(
        WillMsg {
            index: 2,
            message: t,
            qos: 0,
        },
        &p,
        "client_index",
    );
    invalid(
        Connect {
            index: 2,
            server: "tcp://h.example:1883",
            keepalive: 60,
            clean_session: true,
            username: None,
            password: None,
            timeout: secs(1),
        },
        &p,
        "client_index",
    );
    invalid(
        Disc {
            index: 2,
            timeout: 0,
        },
        &p,
        "client_index",
    );
    invalid(Topic { index: 2, topic: t }, &p, "client_index");
    invalid(
        Payload {
            index: 2,
            payload: t,
        },
        &p,
        "client_index",
    );
    invalid(
        Pub {
            index: 2,
            qos: 0,
            pub_timeout: 60,
            retain: false,
            dup: false,
        },
        &p,
        "client_index",
    );
    invalid(
        SubTopic {
            index: 2,
            topic: t,
            qos: 0,
        },
        &p,
        "client_index",
    );
    invalid(
        Sub {
            index: 2,
            dup: false,
        },
        &p,
        "client_index",
    );
    invalid(
        SubOne {
            index: 2,
            topic: t,
            qos: 0,
            dup: false,
        },
        &p,
        "client_index",
    );
    invalid(UnsubTopic { index: 2, topic: t }, &p, "client_index");
    invalid(
        Unsub {
            index: 2,
            dup: false,
        },
        &p,
        "client_index",
    );
    invalid(
        UnsubOne {
            index: 2,
            topic: t,
            dup: false,
        },
        &p,
        "client_index",
    );
    invalid(
        Cfg {
            index: 2,
            setting: CfgSetting::CheckUtf8(true),
        },
        &p,
        "index",
    );
}

#[test]
fn every_length_and_range_check() {
    let p = a7600();
    let s = Model::Sim7672x.profile();
    let big = vec![b'x'; 10241];
    let t1025 = vec![b't'; 1025];
    invalid(
        WillTopic {
            index: 0,
            topic: b"",
        },
        &p,
        "will topic",
    );
    invalid(
        WillTopic {
            index: 0,
            topic: &t1025,
        },
        &p,
        "will topic",
    );
    invalid(
        WillMsg {
            index: 0,
            message: b"",
            qos: 0,
        },
        &p,
        "will message",
    );
    invalid(
        WillMsg {
            index: 0,
            message: &t1025,
            qos: 0,
        },
        &p,
        "will message",
    );
    invalid(
        WillMsg {
            index: 0,
            message: b"m",
            qos: 3,
        },
        &p,
        "qos",
    );
    invalid(
        Topic {
            index: 0,
            topic: b"",
        },
        &p,
        "topic",
    );
    invalid(
        Topic {
            index: 0,
            topic: &t1025,
        },
        &p,
        "topic",
    );
    invalid(
        Payload {
            index: 0,
            payload: b"",
        },
        &p,
        "payload",
    );
    invalid(
        Payload {
            index: 0,
            payload: &big,
        },
        &p,
        "payload",
    );
    invalid(
        Payload {
            index: 0,
            payload: &big[..4097],
        },
        &s,
        "payload",
    );
    assert!(Payload {
        index: 0,
        payload: &big[..4096]
    }
    .request(&s)
    .is_ok());
    assert!(Payload {
        index: 0,
        payload: &big[..10240]
    }
    .request(&p)
    .is_ok());
    for (qos, timeout, param) in [
        (3, 60, "qos"),
        (0, 59, "pub_timeout"),
        (0, 181, "pub_timeout"),
    ] {
        invalid(
            Pub {
                index: 0,
                qos,
                pub_timeout: timeout,
                retain: false,
                dup: false,
            },
            &p,
            param,
        );
    }
    invalid(
        SubTopic {
            index: 0,
            topic: b"",
            qos: 0,
        },
        &p,
        "topic",
    );
    invalid(
        SubTopic {
            index: 0,
            topic: b"t",
            qos: 3,
        },
        &p,
        "qos",
    );
    invalid(
        SubOne {
            index: 0,
            topic: &t1025,
            qos: 0,
            dup: false,
        },
        &p,
        "topic",
    );
    invalid(
        SubOne {
            index: 0,
            topic: b"t",
            qos: 3,
            dup: false,
        },
        &p,
        "qos",
    );
    invalid(
        UnsubTopic {
            index: 0,
            topic: b"",
        },
        &p,
        "topic",
    );
    invalid(
        UnsubOne {
            index: 0,
            topic: &t1025,
            dup: false,
        },
        &p,
        "topic",
    );
    for (timeout, ok) in [
        (0, true),
        (59, false),
        (60, true),
        (180, true),
        (181, false),
    ] {
        let r = Disc { index: 0, timeout }.request(&p).is_ok();
        assert_eq!(r, ok, "DISC timeout {timeout}");
    }
    for (secs_, ok) in [(19, false), (20, true), (120, true), (121, false)] {
        let r = Cfg {
            index: 0,
            setting: CfgSetting::OpTimeout(secs_),
        }
        .request(&p)
        .is_ok();
        assert_eq!(r, ok, "optimeout {secs_}");
    }
    invalid(
        MqttSslCfg {
            index: 0,
            ssl_ctx: 10,
        },
        &p,
        "ssl_ctx_index",
    );
    let id129 = "i".repeat(129);
    invalid(
        Accq {
            index: 0,
            client_id: id129,
            tls: false,
            version: None,
        },
        &p,
        "clientID",
    );
    invalid(
        CertDown {
            name: "ca.pem",
            data: &big,
        },
        &p,
        "file data",
    );
    invalid(CertDele { name: "" }, &p, "filename");
    invalid(
        Raw {
            line: "AT\nX",
            prefix: "",
            timeout: secs(1),
        },
        &p,
        "line",
    );
}

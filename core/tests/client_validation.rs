//! Every argument check of every operation: an `InvalidArgument` naming the parameter, and not a
//! byte sent to the modem. The limits' boundary values are accepted (and sent). Passwords never
//! reach the trace or a `Debug` output.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cmqtt::command::{self, ConnectRead};
use cmqtt::{
    ClientOptions, ConnectOptions, Direction, Error, ModemOptions, SslContext, SslSetting,
};
use parking_lot::Mutex;
use support::*;

fn minute() -> Duration {
    Duration::from_secs(60)
}

/// What the modem has received so far: command lines and prompted data.
fn sent(s: &Scripted) -> (Vec<String>, Vec<Vec<u8>>) {
    (s.log.lock().clone(), s.data.lock().clone())
}

/// Runs `f`, asserts it failed with `InvalidArgument` for `param` and sent nothing.
#[track_caller]
fn refused<T: std::fmt::Debug>(s: &Scripted, param: &str, f: impl FnOnce() -> cmqtt::Result<T>) {
    let before = sent(s);
    let r = f();
    match &r {
        Err(Error::InvalidArgument { param: p, reason }) => {
            assert_eq!(*p, param, "wrong parameter named: {reason}");
            assert!(!reason.is_empty());
        }
        other => panic!("expected InvalidArgument({param}), got {other:?}"),
    }
    // Give a wrongly sent command time to arrive before comparing.
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(sent(s), before, "something was sent for an invalid {param}");
}

/// Runs `f`, asserts it succeeded and sent the lines `expect` (in order, at the end).
#[track_caller]
fn accepted<T: std::fmt::Debug>(
    s: &Scripted,
    expect: &[&str],
    f: impl FnOnce() -> cmqtt::Result<T>,
) {
    let before = s.log.lock().len();
    f().unwrap();
    let log = s.log.lock().clone();
    assert_eq!(&log[before..], expect);
}

fn modem_for(model: &'static str) -> (Scripted, cmqtt::Modem) {
    let s = Scripted::start(model, |l, m| {
        if l == "AT+CMQTTCONNECT?" {
            m.say("\r\n+CMQTTCONNECT: 0,\"tcp://h.example:1883\",60,1,\"alice\",\"p,w\"\r\n+CMQTTCONNECT: 1\r\n\r\nOK\r\n");
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    (s, modem)
}

#[test]
fn acquire_arguments() {
    let (s, modem) = modem_for("A7600E-H");
    refused(&s, "client_index", || modem.client(2, "x", false));
    refused(&s, "client_index", || modem.client(255, "x", false));
    refused(&s, "clientID", || modem.client(0, "", false));
    refused(&s, "clientID", || modem.client(0, &"i".repeat(129), false));
    refused(&s, "clientID", || modem.client(0, "a\"b", false));
    refused(&s, "clientID", || modem.client(0, "a\rb", false));
    let bad = |f: fn(&mut ClientOptions)| {
        let mut o = ClientOptions::new("ok");
        f(&mut o);
        o
    };
    refused(&s, "version", || {
        modem.client_with(0, &bad(|o| o.version = Some(5)))
    });
    refused(&s, "optimeout_val", || {
        modem.client_with(0, &bad(|o| o.op_timeout = Some(19)))
    });
    refused(&s, "optimeout_val", || {
        modem.client_with(0, &bad(|o| o.op_timeout = Some(121)))
    });
    refused(&s, "ssl_ctx_index", || {
        modem.client_with(1, &bad(|o| o.ssl_ctx = Some(10)))
    });
    let id = "i".repeat(128);
    let line = format!("AT+CMQTTACCQ=1,\"{id}\",1");
    // (Dropping the client releases it.)
    accepted(&s, &[&line, "AT+CMQTTREL=1"], || {
        modem.client(1, &id, true).map(drop)
    });
    let mut o = ClientOptions::new("v");
    o.version = Some(4);
    o.check_utf8 = Some(false);
    o.op_timeout = Some(20);
    o.ssl_ctx = Some(9);
    let c = modem.client_with(0, &o);
    let log = s.log.lock().clone();
    assert_eq!(
        &log[log.len() - 5..],
        [
            "AT+CMQTTACCQ=0,\"v\",0",
            "AT+CMQTTCFG=\"version\",0,4",
            "AT+CMQTTCFG=\"checkUTF8\",0,0",
            "AT+CMQTTCFG=\"optimeout\",0,20",
            "AT+CMQTTSSLCFG=0,9",
        ]
    );
    drop(c);
}

#[test]
fn version_dialects() {
    // SIM7600: the version is the 4th ACCQ argument; CFG "version" is refused.
    let (s, modem) = modem_for("SIMCOM_SIM7600E-H");
    let mut o = ClientOptions::new("v");
    o.version = Some(5);
    refused(&s, "version", || modem.client_with(0, &o));
    o.version = Some(4);
    let c = modem.client_with(0, &o).unwrap();
    assert_eq!(s.log.lock().last().unwrap(), "AT+CMQTTACCQ=0,\"v\",0,4");
    refused(&s, "version", || c.set_version(4));
    // A7600 / SIM7672X: CFG "version".
    let (s, modem) = modem_for("SIM7672G");
    let c = modem.client(0, "v", false).unwrap();
    refused(&s, "version", || c.set_version(2));
    refused(&s, "version", || c.set_version(5));
    accepted(&s, &["AT+CMQTTCFG=\"version\",0,3"], || c.set_version(3));
    refused(&s, "version", || {
        modem.execute(&command::Accq {
            index: 1,
            client_id: "x".into(),
            tls: false,
            version: Some(4),
        })
    });
}

#[test]
fn connect_arguments() {
    let (s, modem) = modem_for("A7600E-H");
    let c = modem.client(0, "c", false).unwrap();
    let with = |f: fn(&mut ConnectOptions)| {
        let mut o = ConnectOptions::new("tcp://broker.example:1883");
        f(&mut o);
        o
    };
    refused(&s, "keepalive_time", || {
        c.connect(&with(|o| o.keepalive = 0))
    });
    refused(&s, "keepalive_time", || {
        c.connect(&with(|o| o.keepalive = 64801))
    });
    // The broker URL grammar (cmqtt::BrokerUrl): anything that is not a broker address, or an
    // mqtts:// one for a client acquired without TLS, is refused before a byte is sent.
    refused(&s, "server", || {
        c.connect(&with(|o| o.server = "http://broker.example:1883".into()))
    });
    refused(&s, "server", || {
        c.connect(&with(|o| o.server = "ssl://broker.example".into()))
    });
    refused(&s, "server", || {
        c.connect(&with(|o| o.server = "tcp://".into()))
    });
    refused(&s, "server", || {
        c.connect(&with(|o| o.server = "tcp://h:0".into()))
    });
    refused(&s, "server_addr", || {
        c.connect(&with(|o| o.server = format!("tcp://{}", "h".repeat(251))))
    });
    refused(&s, "server", || {
        c.connect(&with(|o| o.server = "tcp://a\"b:1883".into()))
    });
    refused(&s, "pass_word", || {
        c.connect(&with(|o| o.password = Some("p".into())))
    });
    refused(&s, "user_name", || {
        c.connect(&with(|o| o.username = Some(String::new())))
    });
    refused(&s, "user_name", || {
        c.connect(&with(|o| o.username = Some("u".repeat(257))))
    });
    refused(&s, "user_name", || {
        c.connect(&with(|o| o.username = Some("u\"".into())))
    });
    refused(&s, "pass_word", || {
        c.connect(&with(|o| {
            o.username = Some("u".into());
            o.password = Some("p".repeat(257));
        }))
    });
    refused(&s, "pass_word", || {
        c.connect(&with(|o| {
            o.username = Some("u".into());
            o.password = Some(String::new());
        }))
    });
    assert!(!c.is_connected());
    // mqtt:// and a bare host are broker addresses too: the modem is sent tcp://HOST:PORT.
    accepted(
        &s,
        &["AT+CMQTTCONNECT=0,\"tcp://broker.example:1883\",60,1"],
        || c.connect(&with(|o| o.server = "mqtt://broker.example".into())),
    );
    accepted(
        &s,
        &["AT+CMQTTCONNECT=0,\"tcp://broker.example:1884\",60,1"],
        || c.connect(&with(|o| o.server = "broker.example:1884".into())),
    );
    // The boundaries are fine.
    accepted(&s, &["AT+CMQTTCONNECT=0,\"tcp://a:1\",1,1"], || {
        c.connect(&with(|o| {
            o.server = "tcp://a:1".into();
            o.keepalive = 1;
        }))
    });
    // 256 bytes with the port (the modem is always sent a port).
    let server = format!("tcp://{}:1", "h".repeat(248));
    let line = format!(
        "AT+CMQTTCONNECT=0,\"{server}\",64800,0,\"{}\",\"{}\"",
        "u".repeat(256),
        "p".repeat(256)
    );
    accepted(&s, &[&line], || {
        let mut o =
            ConnectOptions::new(server.clone()).credentials("u".repeat(256), "p".repeat(256));
        o.keepalive = 64800;
        o.clean_session = false;
        c.connect(&o)
    });
    // Disconnect timeouts: 0 (default) or 60..=180 s.
    refused(&s, "timeout", || c.disconnect(Duration::from_secs(59)));
    refused(&s, "timeout", || c.disconnect(Duration::from_secs(181)));
    accepted(&s, &["AT+CMQTTDISC=0,180"], || {
        c.disconnect(Duration::from_secs(180))
    });
    assert!(!c.is_connected());
}

#[test]
fn publish_arguments_a7600() {
    let (s, modem) = modem_for("A7600E-H");
    let c = modem.client(0, "p", false).unwrap();
    // Checked before "not connected".
    refused(&s, "qos", || c.publish("t", b"x", 3, false, minute()));
    c.connect(&ConnectOptions::new("tcp://broker.example:1883"))
        .unwrap();
    refused(&s, "qos", || c.publish("t", b"x", 3, false, minute()));
    refused(&s, "topic", || c.publish("", b"x", 0, false, minute()));
    refused(&s, "topic", || {
        c.publish("t".repeat(1025), b"x", 0, false, minute())
    });
    refused(&s, "payload", || {
        c.publish("t", &[0u8; 10241], 0, false, minute())
    });
    refused(&s, "pub_timeout", || {
        c.publish("t", b"x", 0, false, Duration::from_secs(59))
    });
    refused(&s, "pub_timeout", || {
        c.publish("t", b"x", 0, false, Duration::from_secs(181))
    });
    refused(&s, "pub_timeout", || {
        c.publish("t", b"x", 0, false, Duration::from_secs(u64::MAX))
    });
    refused(&s, "topic", || {
        c.publish(b"\xff\xfe", b"x", 0, false, minute())
    });
    refused(&s, "client_index", || {
        modem.execute(&command::Pub {
            index: 2,
            qos: 0,
            pub_timeout: 60,
            retain: false,
            dup: false,
        })
    });
    // The boundaries are fine.
    let topic = "t".repeat(1024);
    accepted(
        &s,
        &[
            "AT+CMQTTTOPIC=0,1024",
            "AT+CMQTTPAYLOAD=0,10240",
            "AT+CMQTTPUB=0,2,180,1,0",
        ],
        || c.publish(&topic, &[0u8; 10240], 2, true, Duration::from_secs(180)),
    );
    // An empty payload sends no PAYLOAD command.
    accepted(&s, &["AT+CMQTTTOPIC=0,1", "AT+CMQTTPUB=0,0,60,0,0"], || {
        c.publish("t", b"", 0, false, minute())
    });
    // With the modem's UTF-8 check off, a binary topic is sent byte for byte.
    accepted(&s, &["AT+CMQTTCFG=\"checkUTF8\",0,0"], || {
        c.set_check_utf8(false)
    });
    accepted(
        &s,
        &[
            "AT+CMQTTTOPIC=0,3",
            "AT+CMQTTPAYLOAD=0,1",
            "AT+CMQTTPUB=0,0,60,0,0",
        ],
        || c.publish(b"\xff\x01\xfe", b"x", 0, false, minute()),
    );
    let d = s.data.lock().clone();
    assert_eq!(d[d.len() - 2], b"\xff\x01\xfe");
    accepted(&s, &["AT+CMQTTSUB=0,2,0,0"], || {
        c.subscribe(&[(b"\xc3\x28", 0)])
    });
    // On again: refused again.
    c.set_check_utf8(true).unwrap();
    refused(&s, "topic", || c.publish(b"\xff", b"x", 0, false, minute()));
    // A released client sends nothing.
    c.release().unwrap();
    refused(&s, "client", || c.publish("t", b"x", 0, false, minute()));
    refused(&s, "client", || c.subscribe(&[("t", 0)]));
    refused(&s, "client", || {
        c.connect(&ConnectOptions::new("tcp://broker.example:1883"))
    });
}

#[test]
fn publish_payload_limit_sim7672x() {
    let (s, modem) = modem_for("SIM7672G-MNGV");
    assert_eq!(modem.model(), cmqtt::Model::Sim7672x);
    let c = modem.client(0, "p", false).unwrap();
    c.connect(&ConnectOptions::new("tcp://broker.example:1883"))
        .unwrap();
    refused(&s, "payload", || {
        c.publish("t", &[b'x'; 4097], 1, false, minute())
    });
    refused(&s, "payload", || {
        c.publish("t", &[b'x'; 10240], 1, false, minute())
    });
    accepted(
        &s,
        &[
            "AT+CMQTTTOPIC=0,1",
            "AT+CMQTTPAYLOAD=0,4096",
            "AT+CMQTTPUB=0,1,60,0,0",
        ],
        || c.publish("t", &[b'x'; 4096], 1, false, minute()),
    );
    // The received-payload maximum is 10240 on every model.
    assert_eq!(modem.profile().max_rx_payload, 10240);
}

#[test]
fn subscribe_will_and_config_arguments() {
    let (s, modem) = modem_for("A7600E-H");
    let c = modem.client(0, "s", false).unwrap();
    c.connect(&ConnectOptions::new("tcp://broker.example:1883"))
        .unwrap();
    let none: &[(&str, u8)] = &[];
    refused(&s, "topics", || c.subscribe(none));
    refused(&s, "qos", || c.subscribe(&[("a", 3)]));
    refused(&s, "topic", || c.subscribe(&[("", 0)]));
    refused(&s, "topic", || c.subscribe(&[("t".repeat(1025), 0)]));
    // One bad topic among good ones: none of them is sent.
    refused(&s, "qos", || c.subscribe(&[("a", 0), ("b", 1), ("c", 7)]));
    refused(&s, "topic", || {
        c.subscribe(&[(&b"a"[..], 0), (&b"\xff"[..], 0)])
    });
    let no_topics: &[&str] = &[];
    refused(&s, "topics", || c.unsubscribe(no_topics));
    refused(&s, "topic", || c.unsubscribe(&[""]));
    refused(&s, "topic", || {
        c.unsubscribe(&["a".to_string(), "t".repeat(1025)])
    });
    refused(&s, "topic", || c.unsubscribe(&[&b"\xfe"[..]]));
    // The will: both parts checked before either is sent.
    refused(&s, "will topic", || c.set_will("", b"m", 0));
    refused(&s, "will topic", || c.set_will("t".repeat(1025), b"m", 0));
    refused(&s, "will topic", || c.set_will(b"\xff", b"m", 0));
    refused(&s, "will message", || c.set_will("t", b"", 0));
    refused(&s, "will message", || c.set_will("t", &[b'm'; 1025], 0));
    refused(&s, "qos", || c.set_will("t", b"m", 3));
    accepted(
        &s,
        &["AT+CMQTTWILLTOPIC=0,1024", "AT+CMQTTWILLMSG=0,1024,2"],
        || c.set_will("t".repeat(1024), &[b'm'; 1024], 2),
    );
    // Configuration.
    refused(&s, "optimeout_val", || c.set_op_timeout(19));
    refused(&s, "optimeout_val", || c.set_op_timeout(121));
    accepted(&s, &["AT+CMQTTCFG=\"optimeout\",0,120"], || {
        c.set_op_timeout(120)
    });
    refused(&s, "ssl_ctx_index", || c.set_ssl_context(10));
    accepted(&s, &["AT+CMQTTSSLCFG=0,9"], || c.set_ssl_context(9));
    refused(&s, "index", || {
        modem.execute(&command::Cfg {
            index: 2,
            setting: cmqtt::CfgSetting::CheckUtf8(true),
        })
    });
    refused(&s, "session_id", || {
        modem.execute(&command::MqttSslCfg {
            index: 2,
            ssl_ctx: 0,
        })
    });
    refused(&s, "client_index", || {
        modem.execute(&command::Rel { index: 2 })
    });
    refused(&s, "client_index", || {
        modem.execute(&command::Disc {
            index: 2,
            timeout: 0,
        })
    });
    refused(&s, "client_index", || {
        modem.execute(&command::WillTopic {
            index: 5,
            topic: b"t",
        })
    });
    refused(&s, "client_index", || {
        modem.execute(&command::Sub {
            index: 2,
            dup: false,
        })
    });
    refused(&s, "client_index", || {
        modem.execute(&command::Unsub {
            index: 2,
            dup: false,
        })
    });
}

#[test]
fn tls_and_raw_arguments() {
    let (s, modem) = modem_for("A7600E-H");
    refused(&s, "ssl_ctx_index", || {
        modem.ssl_set(10, SslSetting::AuthMode(0))
    });
    refused(&s, "sslversion", || {
        modem.ssl_set(0, SslSetting::SslVersion(5))
    });
    refused(&s, "authmode", || modem.ssl_set(0, SslSetting::AuthMode(4)));
    refused(&s, "negotiatetime", || {
        modem.ssl_set(0, SslSetting::NegotiateTime(9))
    });
    refused(&s, "negotiatetime", || {
        modem.ssl_set(0, SslSetting::NegotiateTime(301))
    });
    refused(&s, "cacert", || {
        modem.ssl_set(0, SslSetting::CaCert(String::new()))
    });
    refused(&s, "cacert", || {
        modem.ssl_set(0, SslSetting::CaCert("dir/ca.pem".into()))
    });
    refused(&s, "clientcert", || {
        modem.ssl_set(0, SslSetting::ClientCert("a\"b".into()))
    });
    refused(&s, "clientkey", || {
        modem.ssl_set(0, SslSetting::ClientKey("k".repeat(109)))
    });
    // A whole context: a bad setting anywhere means nothing is sent.
    let ctx = SslContext {
        ssl_version: Some(4),
        auth_mode: Some(2),
        ca_cert: Some("..\\ca.pem".into()),
        ..Default::default()
    };
    refused(&s, "cacert", || modem.ssl_configure(0, &ctx));
    let ctx = SslContext {
        ssl_version: Some(4),
        auth_mode: Some(2),
        ignore_local_time: Some(true),
        negotiate_time: Some(300),
        ca_cert: Some("ca.pem".into()),
        client_cert: Some("cert.pem".into()),
        client_key: Some("key.pem".into()),
        enable_sni: Some(true),
    };
    accepted(
        &s,
        &[
            "AT+CSSLCFG=\"sslversion\",0,4",
            "AT+CSSLCFG=\"authmode\",0,2",
            "AT+CSSLCFG=\"ignorelocaltime\",0,1",
            "AT+CSSLCFG=\"negotiatetime\",0,300",
            "AT+CSSLCFG=\"cacert\",0,\"ca.pem\"",
            "AT+CSSLCFG=\"clientcert\",0,\"cert.pem\"",
            "AT+CSSLCFG=\"clientkey\",0,\"key.pem\"",
            "AT+CSSLCFG=\"enableSNI\",0,1",
        ],
        || modem.ssl_configure(0, &ctx),
    );
    refused(&s, "filename", || modem.cert_upload("", b"x"));
    refused(&s, "filename", || modem.cert_upload("a/b.pem", b"x"));
    refused(&s, "file data", || modem.cert_upload("ca.pem", b""));
    refused(&s, "file data", || {
        modem.cert_upload("ca.pem", &vec![b'x'; 10241])
    });
    accepted(&s, &["AT+CCERTDOWN=\"ca.pem\",5"], || {
        modem.cert_upload("ca.pem", b"-----")
    });
    refused(&s, "filename", || modem.cert_delete("x\\y"));
    accepted(&s, &["AT+CCERTDELE=\"ca.pem\""], || {
        modem.cert_delete("ca.pem")
    });
    refused(&s, "line", || modem.command("AT\rAT", "", minute()));
    refused(&s, "line", || modem.command("A", "", minute()));
    refused(&s, "line", || {
        modem.command(&"A".repeat(1025), "", minute())
    });
    // SUB? does not exist on the A7600: refused without sending.
    let before = sent(&s);
    assert!(matches!(
        modem.execute(&command::SubRead),
        Err(Error::Unsupported("AT+CMQTTSUB?"))
    ));
    assert_eq!(sent(&s), before);
}

// ---- secrets --------------------------------------------------------------------------------------

const SECRET: &str = "hunter2,SECRET";

#[test]
fn password_never_reaches_the_trace_or_debug() {
    let trace = Arc::new(Mutex::new(Vec::new()));
    let t2 = trace.clone();
    // Echo on: the CONNECT line (password included) comes back from the modem too.
    let s = Scripted::start("A7600E-H", |l, m| {
        m.say(&format!("{l}\r"));
        if l == "AT+CMQTTCONNECT?" {
            m.say(&format!("\r\n+CMQTTCONNECT: 0,\"tcp://h.example:1883\",60,1,\"alice\",\"{SECRET}\"\r\n\r\nOK\r\n"));
            return true;
        }
        if l.starts_with("AT+CMQTTCONNECT=1") {
            m.say("\r\n+CMQTTCONNECT: 1,30\r\n\r\nERROR\r\n");
            return true;
        }
        a76(l, m)
    });
    let opts = ModemOptions {
        sync_timeout: Duration::from_secs(3),
        ..Default::default()
    }
    .trace(move |d, line| t2.lock().push((d, line.to_string())));
    let modem = open_with(&s, opts);
    let c = modem.client(0, "c", false).unwrap();
    let o = ConnectOptions::new("tcp://h.example:1883").credentials("alice", SECRET);
    c.connect(&o).unwrap();
    // The modem did get the password.
    assert!(s.log.lock().iter().any(|l| l.contains(SECRET)));
    let info = modem.execute(&ConnectRead).unwrap();
    assert_eq!(info[0].username.as_deref(), Some("alice"));
    assert!(!format!("{info:?}").contains("hunter2"));
    let c1 = modem.client(1, "c1", false).unwrap();
    let e = c1
        .connect(&ConnectOptions::new("tcp://h.example:1883").credentials("bob", SECRET))
        .unwrap_err();
    assert!(!format!("{e} {e:?}").contains("hunter2"));

    let trace = trace.lock().clone();
    let leaked: Vec<_> = trace
        .iter()
        .filter(|(_, l)| l.contains("hunter2"))
        .collect();
    assert!(leaked.is_empty(), "password in the trace: {leaked:?}");
    // The trace did see the connect, sent and echoed, and the read answer (redacted).
    let sent_connect = trace
        .iter()
        .filter(|(d, l)| *d == Direction::Send && l.starts_with("AT+CMQTTCONNECT=0,"))
        .count();
    assert_eq!(sent_connect, 1, "{trace:?}");
    assert!(trace.iter().any(|(d, l)| *d == Direction::Receive
        && l.starts_with("(echo) AT+CMQTTCONNECT=0,")
        && l.contains("<redacted>")));
    assert!(trace.iter().any(|(d, l)| *d == Direction::Receive
        && l.starts_with("+CMQTTCONNECT:")
        && l.contains("alice")
        && l.contains("<redacted>")));

    // Debug output.
    assert!(!format!("{o:?}").contains("hunter2"), "{o:?}");
    assert!(format!("{o:?}").contains("alice"));
    let cmd = command::Connect {
        index: 0,
        server: "tcp://h.example:1883",
        keepalive: 60,
        clean_session: true,
        username: Some("alice"),
        password: Some(SECRET),
        timeout: minute(),
    };
    assert!(!format!("{cmd:?}").contains("hunter2"));
    use cmqtt::command::Command;
    let req = cmd.request(&modem.profile()).unwrap();
    assert!(req.line.contains(SECRET));
    assert!(!req.trace_text().contains("hunter2"));
    assert!(!format!("{req:?}").contains("hunter2"), "{req:?}");
}

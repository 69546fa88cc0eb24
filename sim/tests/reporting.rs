//! How received messages and results are reported: chunking, model
//! differences (blank lines, result order), URC placement, binary data,
//! transports.

mod common;

use std::time::{Duration, Instant};

use cmqtt_sim::{Model, ResultOrder, SimConfig, Simulator};
use cmqtt_testkit::{publish, Broker, Subscriber};
use common::*;

fn rx_block(client: u8, topic: &[u8], payload: &[u8], chunk: usize, blank: bool) -> Vec<u8> {
    let sep: &[u8] = if blank { b"\r\n" } else { b"" };
    let mut v = format!(
        "\r\n+CMQTTRXSTART: {client},{},{}\r\n",
        topic.len(),
        payload.len()
    )
    .into_bytes();
    for c in topic.chunks(chunk) {
        v.extend_from_slice(sep);
        v.extend_from_slice(format!("+CMQTTRXTOPIC: {client},{}\r\n", c.len()).as_bytes());
        v.extend_from_slice(c);
        v.extend_from_slice(b"\r\n");
    }
    for c in payload.chunks(chunk) {
        v.extend_from_slice(sep);
        v.extend_from_slice(format!("+CMQTTRXPAYLOAD: {client},{}\r\n", c.len()).as_bytes());
        v.extend_from_slice(c);
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(sep);
    v.extend_from_slice(format!("+CMQTTRXEND: {client}\r\n").as_bytes());
    v
}

fn binary(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 255) as u8).collect()
}

#[test]
fn a_2039_byte_message_arrives_as_1500_plus_539() {
    let broker = Broker::start();
    let (sim, mut h) = sim(Model::A7600);
    connect(&mut h, "chunks", &broker.url());
    h.data_cmd("AT+CMQTTSUB=0,5,1", b"big/t", &ok_then("+CMQTTSUB: 0,0"));
    let payload = binary(2039);
    publish(&broker, "big/t", &payload, 1, false);
    let mut want = b"\r\n+CMQTTRXSTART: 0,5,2039\r\n+CMQTTRXTOPIC: 0,5\r\nbig/t\r\n+CMQTTRXPAYLOAD: 0,1500\r\n".to_vec();
    want.extend_from_slice(&payload[..1500]);
    want.extend_from_slice(b"\r\n+CMQTTRXPAYLOAD: 0,539\r\n");
    want.extend_from_slice(&payload[1500..]);
    want.extend_from_slice(b"\r\n+CMQTTRXEND: 0\r\n");
    h.expect(&want);
    // Bigger than any modem can report: dropped, counted, nothing printed.
    publish(&broker, "big/t", &binary(10241), 0, false);
    publish(&broker, "big/t", b"after", 0, false);
    h.expect(&rx_block(0, b"big/t", b"after", 1500, false));
    assert_eq!(sim.stats().messages_dropped, 1);
    assert_eq!(sim.stats().messages_delivered, 2);
    // The maximum is fine.
    let max = binary(10240);
    publish(&broker, "big/t", &max, 2, false);
    h.expect(&rx_block(0, b"big/t", &max, 1500, false));
}

#[test]
fn small_rx_chunk_splits_topics_too() {
    let broker = Broker::start();
    let mut cfg = SimConfig::new(Model::Sim7672x);
    cfg.boot_banner = false;
    cfg.echo = false;
    cfg.rx_chunk = 4;
    let (_sim, mut h) = sim_with(cfg);
    connect(&mut h, "tiny", &broker.url());
    h.data_cmd(
        "AT+CMQTTSUB=0,10,0",
        b"abcdefghij",
        &ok_then("+CMQTTSUB: 0,0"),
    );
    publish(&broker, "abcdefghij", b"0123456789", 0, false);
    h.expect(&rx_block(0, b"abcdefghij", b"0123456789", 4, false));
}

#[test]
fn sim7600_blank_lines_and_result_first() {
    let broker = Broker::start();
    let (_sim, mut h) = sim(Model::Sim7600);
    h.cmd("AT+CMQTTSTART", "\r\n+CMQTTSTART: 0\r\n\r\nOK\r\n");
    h.cmd("AT+CMQTTACCQ=0,\"s76\"", OK);
    h.cmd(
        &format!("AT+CMQTTCONNECT=0,\"{}\",60,1", broker.url()),
        "\r\n+CMQTTCONNECT: 0,0\r\n\r\nOK\r\n",
    );
    h.data_cmd(
        "AT+CMQTTSUB=0,9,1",
        b"simcommsg",
        "\r\n+CMQTTSUB: 0,0\r\n\r\nOK\r\n",
    );
    h.data_cmd("AT+CMQTTTOPIC=0,9", b"simcommsg", OK);
    h.data_cmd(
        "AT+CMQTTPAYLOAD=0,4",
        b"\r\n\x00\xff",
        "\r\n+CMQTTPAYLOAD: 0,2\r\n\r\nERROR\r\n",
    );
    h.cmd("AT+CMQTTCFG=\"checkUTF8\",0,0", OK);
    h.data_cmd("AT+CMQTTPAYLOAD=0,4", b"\r\n\x00\xff", OK);
    h.cmd("AT+CMQTTPUB=0,2,60", "\r\n+CMQTTPUB: 0,0\r\n\r\nOK\r\n");
    h.expect(&rx_block(0, b"simcommsg", b"\r\n\x00\xff", 1500, true));
    h.cmd("AT+CMQTTDISC=0,60", "\r\n+CMQTTDISC: 0,0\r\n\r\nOK\r\n");
    h.cmd("AT+CMQTTREL=0", OK);
    h.cmd("AT+CMQTTSTOP", "\r\n+CMQTTSTOP: 0\r\n\r\nOK\r\n");
}

#[test]
fn result_order_override() {
    let broker = Broker::start();
    let mut cfg = SimConfig::new(Model::A7600);
    cfg.boot_banner = false;
    cfg.echo = false;
    cfg.result_order = Some(ResultOrder::ResultFirst);
    let (_sim, mut h) = sim_with(cfg);
    h.cmd("AT+CMQTTSTART", "\r\n+CMQTTSTART: 0\r\n\r\nOK\r\n");
    h.cmd("AT+CMQTTSTART", "\r\n+CMQTTSTART: 23\r\n\r\nERROR\r\n");
    h.cmd("AT+CMQTTACCQ=0,\"ro\"", OK);
    h.cmd(
        &format!("AT+CMQTTCONNECT=0,\"{}\",60,1", broker.url()),
        "\r\n+CMQTTCONNECT: 0,0\r\n\r\nOK\r\n",
    );

    let mut cfg = SimConfig::new(Model::Sim7600);
    cfg.boot_banner = false;
    cfg.echo = false;
    cfg.result_order = Some(ResultOrder::OkFirst);
    let (_sim2, mut h2) = sim_with(cfg);
    h2.cmd("AT+CMQTTSTART", &ok_then("+CMQTTSTART: 0"));
}

#[test]
fn retained_message_lands_between_ok_and_sub_result() {
    let broker = Broker::start();
    publish(&broker, "ret/t", b"kept", 1, true);
    let (_sim, mut h) = sim(Model::A7600);
    connect(&mut h, "ret", &broker.url());
    h.send(b"AT+CMQTTSUB=0,5,1\r");
    h.expect(b"\r\n>");
    h.send(b"ret/t");
    let mut want = b"\r\nOK\r\n".to_vec();
    want.extend_from_slice(&rx_block(0, b"ret/t", b"kept", 1500, false));
    want.extend_from_slice(b"\r\n+CMQTTSUB: 0,0\r\n");
    h.expect(&want);
}

#[test]
fn publish_flags_qos_and_binary_payloads_reach_the_broker() {
    let broker = Broker::start();
    let mut watch = Subscriber::start(&broker, &["bin/#"], 2);
    let (sim, mut h) = sim(Model::A7600);
    connect(&mut h, "flags", &broker.url());
    h.cmd("AT+CMQTTCFG=\"checkUTF8\",0,0", OK);
    let payload = binary(10240);
    for qos in 0..3u8 {
        let topic = format!("bin/q{qos}");
        h.data_cmd(
            &format!("AT+CMQTTTOPIC=0,{}", topic.len()),
            topic.as_bytes(),
            OK,
        );
        h.data_cmd("AT+CMQTTPAYLOAD=0,10240", &payload, OK);
        h.cmd(
            &format!("AT+CMQTTPUB=0,{qos},60"),
            &ok_then("+CMQTTPUB: 0,0"),
        );
        let m = watch.next(T).expect("message");
        assert_eq!(m.topic, topic.as_bytes());
        assert_eq!(m.payload, payload);
    }
    // Retained: a later subscriber gets it with the retain flag.
    h.data_cmd("AT+CMQTTTOPIC=0,7", b"bin/ret", OK);
    h.data_cmd("AT+CMQTTPAYLOAD=0,3", b"r\r\n", OK);
    h.cmd("AT+CMQTTPUB=0,1,60,1", &ok_then("+CMQTTPUB: 0,0"));
    watch.next(T).expect("live copy");
    let mut late = Subscriber::start(&broker, &["bin/ret"], 1);
    let m = late.next(T).expect("retained copy");
    assert!(m.retained);
    assert_eq!(m.payload, b"r\r\n");
    assert_eq!(sim.stats().publishes, 4);
}

#[test]
fn sim7672x_profile_forms() {
    let broker = Broker::start();
    let (_sim, mut h) = sim(Model::Sim7672x);
    h.cmd(
        "AT+CMQTTPAYLOAD=?",
        "\r\n+CMQTTPAYLOAD: (0-1),(1-4096)\r\n\r\nOK\r\n",
    );
    h.cmd(
        "AT+CMQTTCFG=?",
        "\r\n+CMQTTCFG: \"checkUTF8\",(0-1),(0-1)\r\n+CMQTTCFG: \"optimeout\",(0-1),(20-120)\r\n+CMQTTCFG: \"version\",(0-1),(3-4)\r\n\r\nOK\r\n",
    );
    h.cmd(
        "AT+CMQTTSUB=?",
        "\r\n+CMQTTSUB: (0-1),(1-1024),(0-2),(0-1)\r\n\r\nOK\r\n",
    );
    h.cmd(
        "AT+CMQTTSSLCFG=?",
        "\r\n+CMQTTSSLCFG: (0,1),(0-9)\r\n\r\nOK\r\n",
    );
    connect(&mut h, "s767", &broker.url());
    h.cmd(
        "AT+CMQTTPAYLOAD=0,4097",
        "\r\n+CMQTTPAYLOAD: 0,22\r\n\r\nERROR\r\n",
    );
    h.cmd("AT+CMQTTCFG=\"version\",0,4", OK);
    h.cmd("AT+CMQTTCFG=\"version\",0,5", ERROR);
    h.data_cmd("AT+CMQTTSUBTOPIC=0,3,0", b"a/1", OK);
    h.data_cmd("AT+CMQTTSUBTOPIC=0,3,1", b"a/2", OK);
    h.cmd("AT+CMQTTSUB=0", &ok_then("+CMQTTSUB: 0,0"));
    h.cmd(
        "AT+CMQTTSUB?",
        "\r\n+CMQTTSUB: 0,\"a/1\"\r\n+CMQTTSUB: 0,\"a/2\"\r\n\r\nOK\r\n",
    );
    h.data_cmd("AT+CMQTTUNSUBTOPIC=0,3", b"a/1", OK);
    h.cmd("AT+CMQTTUNSUB=0,0", &ok_then("+CMQTTUNSUB: 0,0"));
    h.cmd("AT+CMQTTSUB?", "\r\n+CMQTTSUB: 0,\"a/2\"\r\n\r\nOK\r\n");
    publish(&broker, "a/1", b"gone", 0, false);
    publish(&broker, "a/2", b"here", 0, false);
    h.expect(&rx_block(0, b"a/2", b"here", 1500, false));
    // A76xx has no AT+CMQTTSUB? read form.
    let (_a, mut a) = sim(Model::A7600);
    a.cmd("AT+CMQTTSTART", &ok_then("+CMQTTSTART: 0"));
    a.cmd("AT+CMQTTSUB?", ERROR);
}

#[test]
fn subtopic_can_be_disabled_like_sim7670g_b02() {
    let mut cfg = SimConfig::new(Model::Sim7672x);
    cfg.boot_banner = false;
    cfg.echo = false;
    cfg.subtopic_supported = Some(false);
    let (_sim, mut h) = sim_with(cfg);
    h.cmd("AT+CMQTTSTART", &ok_then("+CMQTTSTART: 0"));
    h.cmd("AT+CMQTTACCQ=0,\"x\"", OK);
    h.cmd("AT+CMQTTSUBTOPIC=0,3,1", ERROR);
    h.cmd("AT+CMQTTUNSUBTOPIC=0,3", ERROR);
}

#[test]
fn basic_identification() {
    let (_sim, mut h) = sim(Model::Sim7600);
    h.cmd("AT+CGMM", "\r\nSIMCOM_SIM7600E-H\r\n\r\nOK\r\n");
    h.cmd("AT+CPIN?", "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    h.send(b"ATI\r");
    let r = String::from_utf8(h.read_until(b"\r\nOK\r\n")).unwrap();
    assert!(
        r.starts_with("\r\nManufacturer: SIMCOM INCORPORATED\r\nModel: SIMCOM_SIM7600E-H\r\n"),
        "{r}"
    );
    let (_s2, mut h2) = sim(Model::A7600);
    h2.cmd("AT+CGMM", "\r\nA7600E-H\r\n\r\nOK\r\n");
    h2.cmd("AT+CGMR", "\r\n+CGMR: A7600M6_V1.0\r\n\r\nOK\r\n");
    // Lower-case and LF-terminated lines are accepted.
    h2.send(b"at+csq\n");
    h2.expect(b"\r\n+CSQ: 23,0\r\n\r\nOK\r\n");
}

#[test]
fn tcp_transport() {
    let broker = Broker::start();
    let mut cfg = SimConfig::new(Model::A7600);
    cfg.boot_banner = false;
    cfg.echo = false;
    let sim = Simulator::start_tcp(cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
    let mut h = Host::tcp(&sim.device());
    connect(&mut h, "tcp-host", &broker.url());
    h.data_cmd("AT+CMQTTSUB=0,3,0", b"t/t", &ok_then("+CMQTTSUB: 0,0"));
    publish(&broker, "t/t", b"\x00\x01", 0, false);
    h.expect(&rx_block(0, b"t/t", b"\x00\x01", 1500, false));
    drop(h);
    // The next client gets the same modem (state kept, like reopening a port).
    std::thread::sleep(Duration::from_millis(100));
    let mut h = Host::tcp(&sim.device());
    h.cmd(
        "AT+CMQTTDISC?",
        "\r\n+CMQTTDISC: 0,0\r\n+CMQTTDISC: 1,1\r\n\r\nOK\r\n",
    );
}

#[test]
fn baud_rate_paces_output() {
    let mut cfg = SimConfig::new(Model::A7600);
    cfg.boot_banner = false;
    cfg.echo = false;
    cfg.baud = Some(9600);
    let (sim, mut h) = sim_with(cfg);
    // 960 bytes/s: the ATI answer (~130 bytes) takes > 100 ms.
    let t = Instant::now();
    h.send(b"ATI\r");
    h.read_until(b"\r\nOK\r\n");
    assert!(
        t.elapsed() >= Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    sim.faults().set_baud(None);
    let t = Instant::now();
    h.send(b"ATI\r");
    h.read_until(b"\r\nOK\r\n");
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn pty_link_and_boot_banner() {
    let dir = cmqtt_testkit::TempDir::new("cmqtt-sim-link");
    let link = dir.path().join("ttyMODEM");
    let mut cfg = SimConfig::new(Model::A7600);
    cfg.echo = false;
    let sim = Simulator::start_pty_link(cfg, &link).unwrap();
    assert_eq!(
        std::fs::read_link(&link).unwrap().to_string_lossy(),
        sim.device()
    );
    // The banner is printed before anyone opens the port: not seen later
    // (output with no host is lost, like on a UART).
    std::thread::sleep(Duration::from_millis(200));
    let mut h = Host::open(link.to_str().unwrap());
    h.cmd("AT", OK);
    sim.shutdown();
    assert!(std::fs::symlink_metadata(&link).is_err(), "link removed");
}

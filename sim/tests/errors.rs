//! Misuse of the commands: each answers with the `<err>` code documented in
//! sim/README.md, byte for byte.

mod common;

use std::time::Duration;

use cmqtt_sim::{Model, SimConfig};
use cmqtt_testkit::{Broker, BrokerOptions};
use common::*;

fn fail(line: &str) -> String {
    format!("\r\n{line}\r\n\r\nERROR\r\n")
}

#[test]
fn service_and_client_state_errors() {
    let (_sim, mut h) = sim(Model::A7600);
    // Before AT+CMQTTSTART every read/write form is ERROR; test forms work.
    h.cmd("AT+CMQTTACCQ=0,\"x\"", ERROR);
    h.cmd("AT+CMQTTACCQ?", ERROR);
    h.cmd("AT+CMQTTSTOP", ERROR);
    h.cmd("AT+CMQTTSTART=?", OK);
    h.cmd(
        "AT+CMQTTACCQ=?",
        "\r\n+CMQTTACCQ: (0-1),(1-128)[,(0-1)]\r\n\r\nOK\r\n",
    );
    h.cmd("AT+CMQTTSTART", &ok_then("+CMQTTSTART: 0"));
    // Already started: field notes, "+CMQTTSTART: 23" (network is opened).
    h.cmd("AT+CMQTTSTART", &ok_then("+CMQTTSTART: 23"));
    // Client index out of range.
    h.cmd("AT+CMQTTACCQ=2,\"x\"", &fail("+CMQTTACCQ: 2,10"));
    h.cmd("AT+CMQTTACCQ=x,\"x\"", ERROR);
    // Client id length and quoting.
    h.cmd("AT+CMQTTACCQ=0,\"\"", &fail("+CMQTTACCQ: 0,22"));
    let long = "a".repeat(129);
    h.cmd(
        &format!("AT+CMQTTACCQ=0,\"{long}\""),
        &fail("+CMQTTACCQ: 0,22"),
    );
    h.cmd("AT+CMQTTACCQ=0,unquoted", ERROR);
    h.cmd("AT+CMQTTACCQ=0,\"x\",2", &fail("+CMQTTACCQ: 0,12"));
    // The 4th argument (MQTT version) is SIM7600 only.
    h.cmd("AT+CMQTTACCQ=0,\"x\",0,4", ERROR);
    h.cmd("AT+CMQTTACCQ=0,\"x\"", OK);
    // Acquired twice: client is used.
    h.cmd("AT+CMQTTACCQ=0,\"y\"", &fail("+CMQTTACCQ: 0,19"));
    h.cmd(
        "AT+CMQTTACCQ?",
        "\r\n+CMQTTACCQ: 0,\"x\",0\r\n+CMQTTACCQ: 1,\"\",0\r\n\r\nOK\r\n",
    );
    // Commands on a client that is not acquired.
    h.send(b"AT+CMQTTTOPIC=1,5\r");
    h.expect(fail("+CMQTTTOPIC: 1,20").as_bytes());
    h.cmd("AT+CMQTTREL=1", &fail("+CMQTTREL: 1,20"));
    h.cmd("AT+CMQTTCFG=\"checkUTF8\",1,0", ERROR);
    // Not connected.
    h.cmd("AT+CMQTTPUB=0,1,60", &fail("+CMQTTPUB: 0,11"));
    h.cmd("AT+CMQTTSUB=0", &fail("+CMQTTSUB: 0,11"));
    h.cmd("AT+CMQTTSUB=0,5,1", &fail("+CMQTTSUB: 0,11"));
    h.cmd("AT+CMQTTUNSUB=0,5,0", &fail("+CMQTTUNSUB: 0,11"));
    h.cmd("AT+CMQTTDISC=0,60", &fail("+CMQTTDISC: 0,11"));
    // Lengths out of range (checked before the prompt: no bytes expected).
    h.cmd("AT+CMQTTTOPIC=0,0", &fail("+CMQTTTOPIC: 0,22"));
    h.cmd("AT+CMQTTTOPIC=0,1025", &fail("+CMQTTTOPIC: 0,22"));
    h.cmd("AT+CMQTTPAYLOAD=0,10241", &fail("+CMQTTPAYLOAD: 0,22"));
    h.cmd("AT+CMQTTWILLTOPIC=0,1025", &fail("+CMQTTWILLTOPIC: 0,22"));
    h.cmd("AT+CMQTTWILLMSG=0,1025,1", &fail("+CMQTTWILLMSG: 0,22"));
    h.cmd("AT+CMQTTWILLMSG=0,5,3", &fail("+CMQTTWILLMSG: 0,12"));
    h.cmd("AT+CMQTTSUBTOPIC=0,5,3", &fail("+CMQTTSUBTOPIC: 0,12"));
    // Bad UTF-8 with checkUTF8 on (the default).
    h.data_cmd("AT+CMQTTTOPIC=0,2", b"\xc3\x28", &fail("+CMQTTTOPIC: 0,2"));
    h.data_cmd("AT+CMQTTPAYLOAD=0,1", b"\xff", &fail("+CMQTTPAYLOAD: 0,2"));
    // CMQTTCFG ranges; "version" exists on A76xx firmware in the field (spec README).
    h.cmd("AT+CMQTTCFG=\"optimeout\",0,19", ERROR);
    h.cmd("AT+CMQTTCFG=\"optimeout\",0,20", OK);
    h.cmd("AT+CMQTTCFG=\"version\",0,5", ERROR);
    h.cmd("AT+CMQTTCFG=\"version\",0,4", OK);
    h.cmd(
        "AT+CMQTTCFG?",
        "\r\n+CMQTTCFG: 0,1,20\r\n+CMQTTCFG: 1,1,120\r\n\r\nOK\r\n",
    );
    // CONNECT argument errors.
    h.cmd(
        "AT+CMQTTCONNECT=0,\"tcp://a\",60,1",
        &fail("+CMQTTCONNECT: 0,22"),
    );
    h.cmd(
        "AT+CMQTTCONNECT=0,\"http://127.0.0.1:1\",60,1",
        &fail("+CMQTTCONNECT: 0,12"),
    );
    h.cmd(
        "AT+CMQTTCONNECT=0,\"tcp://127.0.0.1:1\",0,1",
        &fail("+CMQTTCONNECT: 0,12"),
    );
    h.cmd(
        "AT+CMQTTCONNECT=0,\"tcp://127.0.0.1:1\",64801,1",
        &fail("+CMQTTCONNECT: 0,12"),
    );
    h.cmd(
        "AT+CMQTTCONNECT=1,\"tcp://127.0.0.1:1\",60,1",
        &fail("+CMQTTCONNECT: 1,20"),
    );
    // A76xx: a user name without a password is a plain ERROR.
    h.cmd("AT+CMQTTCONNECT=0,\"tcp://127.0.0.1:1\",60,1,\"u\"", ERROR);
    // Clients still acquired: STOP refuses.
    h.cmd("AT+CMQTTSTOP", &fail("+CMQTTSTOP: 21"));
    h.cmd("AT+CMQTTREL=0", OK);
    h.cmd("AT+CMQTTSTOP", &ok_then("+CMQTTSTOP: 0"));
    // Unknown commands and garbage.
    h.cmd("AT+NOSUCH", ERROR);
    h.cmd("AT+CMQTTNOSUCH", ERROR);
    h.send(b"garbage without the prefix\r");
    h.quiet(Duration::from_millis(100));
    h.cmd("at", OK);
}

#[test]
fn connected_client_errors() {
    let broker = Broker::start();
    let (_sim, mut h) = sim(Model::A7600);
    connect(&mut h, "errs", &broker.url());
    h.cmd(
        &format!("AT+CMQTTCONNECT=0,\"{}\",60,1", broker.url()),
        &fail("+CMQTTCONNECT: 0,19"),
    );
    h.cmd("AT+CMQTTREL=0", &fail("+CMQTTREL: 0,14"));
    // PUB without a topic: topic is empty.
    h.cmd("AT+CMQTTPUB=0,1,60", &fail("+CMQTTPUB: 0,18"));
    h.cmd("AT+CMQTTPUB=0,3,60", &fail("+CMQTTPUB: 0,12"));
    h.cmd("AT+CMQTTPUB=0,1,59", &fail("+CMQTTPUB: 0,12"));
    h.cmd("AT+CMQTTPUB=0,1,181", &fail("+CMQTTPUB: 0,12"));
    h.cmd("AT+CMQTTPUB=0,1,60,2", &fail("+CMQTTPUB: 0,12"));
    h.cmd("AT+CMQTTPUB=0,1", ERROR);
    // SUB/UNSUB with nothing accumulated by SUBTOPIC/UNSUBTOPIC.
    h.cmd("AT+CMQTTSUB=0", &fail("+CMQTTSUB: 0,18"));
    h.cmd("AT+CMQTTUNSUB=0,0", &fail("+CMQTTUNSUB: 0,18"));
    h.cmd("AT+CMQTTDISC=0,59", &fail("+CMQTTDISC: 0,12"));
    h.cmd(
        "AT+CMQTTCONNECT?",
        &format!(
            "\r\n+CMQTTCONNECT: 0,\"{}\",60,1\r\n+CMQTTCONNECT: 1\r\n\r\nOK\r\n",
            broker.url()
        ),
    );
    h.cmd(
        "AT+CMQTTDISC?",
        "\r\n+CMQTTDISC: 0,0\r\n+CMQTTDISC: 1,1\r\n\r\nOK\r\n",
    );
    // The topic is cleared by AT+CMQTTPUB: a second PUB has no topic.
    h.data_cmd("AT+CMQTTTOPIC=0,3", b"a/b", OK);
    h.cmd("AT+CMQTTPUB=0,0,60", &ok_then("+CMQTTPUB: 0,0"));
    h.cmd("AT+CMQTTPUB=0,0,60", &fail("+CMQTTPUB: 0,18"));
    h.cmd("AT+CMQTTDISC=0,60", &ok_then("+CMQTTDISC: 0,0"));
    h.cmd(
        "AT+CMQTTDISC?",
        "\r\n+CMQTTDISC: 0,1\r\n+CMQTTDISC: 1,1\r\n\r\nOK\r\n",
    );
}

#[test]
fn connect_failures() {
    let broker = Broker::start_with(BrokerOptions {
        users: vec![("user".into(), "secret".into())],
        tls: true,
        ..BrokerOptions::default()
    });
    let (_sim, mut h) = sim(Model::Sim7672x);
    h.cmd("AT+CMQTTSTART", &ok_then("+CMQTTSTART: 0"));
    h.cmd("AT+CMQTTACCQ=0,\"cf\"", OK);
    // Nothing listens: sock connect fail.
    let closed = cmqtt_testkit::free_port();
    h.cmd(
        &format!("AT+CMQTTCONNECT=0,\"tcp://127.0.0.1:{closed}\",60,1"),
        &ok_then("+CMQTTCONNECT: 0,3"),
    );
    // Refused by the broker: bad user name or password / not authorized.
    h.send(
        format!(
            "AT+CMQTTCONNECT=0,\"{}\",60,1,\"user\",\"wrong\"\r",
            broker.url()
        )
        .as_bytes(),
    );
    let got = String::from_utf8(h.read_until(b"+CMQTTCONNECT: 0,")).unwrap();
    assert_eq!(got, "\r\nOK\r\n\r\n+CMQTTCONNECT: 0,");
    let code = h.read_until(b"\r\n");
    assert!(
        code == b"30\r\n" || code == b"31\r\n",
        "{:?}",
        String::from_utf8_lossy(&code)
    );
    // Plain MQTT to the TLS port: the server closes the socket.
    h.send(
        format!(
            "AT+CMQTTCONNECT=0,\"{}\",60,1,\"user\",\"secret\"\r",
            broker.tls_url().unwrap()
        )
        .as_bytes(),
    );
    h.expect(ok_then("+CMQTTCONNECT: 0,26").as_bytes());
    // SIM7672X also rejects a user name without a password.
    h.cmd(
        &format!("AT+CMQTTCONNECT=0,\"{}\",60,1,\"user\"", broker.url()),
        ERROR,
    );
    // Right credentials.
    h.cmd(
        &format!(
            "AT+CMQTTCONNECT=0,\"{}\",60,1,\"user\",\"secret\"",
            broker.url()
        ),
        &ok_then("+CMQTTCONNECT: 0,0"),
    );
    h.cmd("AT+CMQTTDISC=0,60", &ok_then("+CMQTTDISC: 0,0"));
    h.cmd("AT+CMQTTREL=0", OK);

    // TLS failures: authmode 1 without a CA file: not set certificate.
    h.cmd("AT+CMQTTACCQ=0,\"tls\",1", OK);
    h.cmd("AT+CSSLCFG=\"authmode\",0,1", OK);
    h.cmd(
        &format!(
            "AT+CMQTTCONNECT=0,\"{}\",60,1,\"user\",\"secret\"",
            broker.tls_url().unwrap()
        ),
        &ok_then("+CMQTTCONNECT: 0,33"),
    );
    // The wrong CA (the client certificate): handshake fail.
    let wrong = broker.certs().unwrap().client_cert_pem();
    h.data_cmd(
        &format!("AT+CCERTDOWN=\"wrong.pem\",{}", wrong.len()),
        &wrong,
        OK,
    );
    h.cmd("AT+CSSLCFG=\"cacert\",0,\"wrong.pem\"", OK);
    h.cmd(
        &format!(
            "AT+CMQTTCONNECT=0,\"{}\",60,1,\"user\",\"secret\"",
            broker.tls_url().unwrap()
        ),
        &ok_then("+CMQTTCONNECT: 0,32"),
    );
    // TLS 1.1 cannot be spoken.
    h.cmd("AT+CSSLCFG=\"authmode\",0,0", OK);
    h.cmd("AT+CSSLCFG=\"sslversion\",0,2", OK);
    h.cmd(
        &format!(
            "AT+CMQTTCONNECT=0,\"{}\",60,1,\"user\",\"secret\"",
            broker.tls_url().unwrap()
        ),
        &ok_then("+CMQTTCONNECT: 0,32"),
    );
    h.cmd("AT+CSSLCFG=\"sslversion\",0,3", OK);
    h.cmd(
        &format!(
            "AT+CMQTTCONNECT=0,\"{}\",60,1,\"user\",\"secret\"",
            broker.tls_url().unwrap()
        ),
        &ok_then("+CMQTTCONNECT: 0,0"),
    );
}

#[test]
fn sim7600_accepts_user_without_password_and_version_arg() {
    let broker = Broker::start();
    let (_sim, mut h) = sim(Model::Sim7600);
    h.cmd("AT+CMQTTSTART", "\r\n+CMQTTSTART: 0\r\n\r\nOK\r\n");
    h.cmd(
        "AT+CMQTTACCQ=?",
        "\r\n+CMQTTACCQ: (0-1),(1-128),(0-1),(3-4)\r\n\r\nOK\r\n",
    );
    h.cmd("AT+CMQTTACCQ=0,\"v\",0,5", &fail("+CMQTTACCQ: 0,12"));
    h.cmd("AT+CMQTTACCQ=0,\"v\",0,3", OK);
    // MQTT 3.1 ("MQIsdp") is spoken when version 3 is configured.
    h.cmd(
        &format!("AT+CMQTTCONNECT=0,\"{}\",60,1,\"u\"", broker.url()),
        "\r\n+CMQTTCONNECT: 0,0\r\n\r\nOK\r\n",
    );
    assert!(
        broker.log().contains("as v (p1,"),
        "MQTT 3.1 expected: {}",
        broker.log()
    );
    // Result-first failures end with ERROR.
    h.cmd("AT+CMQTTPUB=0,1,60", &fail("+CMQTTPUB: 0,18"));
    let closed = cmqtt_testkit::free_port();
    h.cmd("AT+CMQTTACCQ=1,\"w\"", OK);
    h.cmd(
        &format!("AT+CMQTTCONNECT=1,\"tcp://127.0.0.1:{closed}\",60,1"),
        "\r\n+CMQTTCONNECT: 1,3\r\n\r\nERROR\r\n",
    );
}

#[test]
fn prompted_data_timeout_and_bounds() {
    let mut cfg = SimConfig::new(Model::A7600);
    cfg.boot_banner = false;
    cfg.echo = false;
    cfg.data_timeout = Duration::from_millis(300);
    let (_sim, mut h) = sim_with(cfg);
    h.cmd("AT+CMQTTSTART", &ok_then("+CMQTTSTART: 0"));
    h.cmd("AT+CMQTTACCQ=0,\"t\"", OK);
    h.send(b"AT+CMQTTTOPIC=0,9\r");
    h.expect(b"\r\n>");
    h.send(b"abc");
    h.quiet(Duration::from_millis(150));
    h.expect_within(ERROR.as_bytes(), Duration::from_secs(2));
    // Back in command mode.
    h.cmd("AT", OK);
    // A huge announced length is refused before anything is read.
    h.cmd("AT+CMQTTPAYLOAD=0,99999999999999", ERROR);
    h.cmd("AT+CCERTDOWN=\"a.pem\",10241", ERROR);
    // An overlong command line is one ERROR.
    let long = format!("AT+CMQTTACCQ=1,\"{}\"\r", "x".repeat(5000));
    h.send(long.as_bytes());
    h.expect(ERROR.as_bytes());
    h.cmd("AT", OK);
}

/// Random bytes never crash the engine; afterwards it still answers.
#[test]
fn garbage_input_does_not_break_the_modem() {
    let (sim, mut h) = sim(Model::A7600);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = Vec::new();
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = (x & 0xff) as u8;
        // Sprinkle line ends and AT prefixes so that commands get parsed.
        match x % 50 {
            0 => buf.extend_from_slice(b"\r"),
            1 => buf.extend_from_slice(b"AT+CMQTT"),
            2 => buf.extend_from_slice(b"AT+CMQTTSTART\r"),
            3 => buf.extend_from_slice(b"=0,"),
            _ => buf.push(b),
        }
    }
    h.send(&buf);
    // Let it settle (a prompt may be waiting for data: time it out).
    std::thread::sleep(Duration::from_millis(300));
    h.send(&[b'x'; 11000]);
    std::thread::sleep(Duration::from_millis(200));
    h.send(b"\rATE0\r");
    std::thread::sleep(Duration::from_millis(200));
    h.clear();
    h.cmd("AT", OK);
    assert!(sim.stats().commands > 10);
}

//! The example flows of chapter 3 of both vendor documents (A7600 manual
//! 3.1-3.5, SIM7672X application note 3.1-3.5), sent as raw AT bytes against
//! a real mosquitto, with the exact response bytes asserted.
//!
//! Deviations from the documents' text, where the examples contradict
//! themselves: "AT+CMQTTTOPIC=0,13" followed by the 12-character topic
//! "dddrrggghhkh" and "AT+CMQTTPAYLOAD=0,60" followed by 50 characters: a
//! modem reads exactly the announced length, so the host sends that many
//! bytes. The SIM7672X flows send "AT+CMQTTSUB=0" without a preceding
//! "AT+CMQTTSUBTOPIC" (copied from the A7600 manual, where SUBTOPIC precedes
//! it); here the SUBTOPIC is sent first, as in the A7600 flows.

mod common;

use std::time::Duration;

use cmqtt_sim::Model;
use cmqtt_testkit::{Broker, BrokerOptions, PeerOptions, Subscriber};
use common::*;

const PAYLOAD60: &[u8] = b"012345678901234567890123456789012345678901234567890123456789";

struct Flow<'a> {
    model: Model,
    url: String,
    server_type: Option<u8>,
    /// Commands (with data) sent before AT+CMQTTSTART.
    ssl_setup: Vec<(String, Option<Vec<u8>>)>,
    mqttsslcfg: bool,
    topic: &'a [u8],
}

/// The common body of examples 3.1 to 3.4.
fn run_flow(broker: &Broker, f: Flow<'_>) {
    let (_sim, mut h) = sim(f.model);
    for (cmd, data) in &f.ssl_setup {
        match data {
            Some(d) => h.data_cmd(cmd, d, OK),
            None => h.cmd(cmd, OK),
        }
    }
    // Peers watching what the modem does on the broker.
    let mut watch = Subscriber::start_opts(
        broker,
        &["simcommsg", "dddrrggghhkh", "0123456789"],
        1,
        PeerOptions::default(),
    );

    h.cmd("AT+CMQTTSTART", "\r\nOK\r\n\r\n+CMQTTSTART: 0\r\n");
    let accq = match f.server_type {
        Some(t) => format!("AT+CMQTTACCQ=0,\"client test0\",{t}"),
        None => "AT+CMQTTACCQ=0,\"client test0\"".to_string(),
    };
    h.cmd(&accq, OK);
    if f.mqttsslcfg {
        h.cmd("AT+CMQTTSSLCFG=0,0", OK);
    }
    h.data_cmd("AT+CMQTTWILLTOPIC=0,10", b"0123456789", OK);
    h.data_cmd("AT+CMQTTWILLMSG=0,6,1", b"qwerty", OK);
    h.cmd(
        &format!("AT+CMQTTCONNECT=0,\"{}\",60,1", f.url),
        "\r\nOK\r\n\r\n+CMQTTCONNECT: 0,0\r\n",
    );
    h.data_cmd(
        "AT+CMQTTSUB=0,9,1",
        b"simcommsg",
        "\r\nOK\r\n\r\n+CMQTTSUB: 0,0\r\n",
    );
    h.data_cmd(&format!("AT+CMQTTTOPIC=0,{}", f.topic.len()), f.topic, OK);
    h.data_cmd("AT+CMQTTPAYLOAD=0,60", PAYLOAD60, OK);
    h.cmd("AT+CMQTTPUB=0,1,60", "\r\nOK\r\n\r\n+CMQTTPUB: 0,0\r\n");
    if f.topic == b"simcommsg" {
        // We are subscribed to our own topic: the message comes back.
        let mut rx = b"\r\n+CMQTTRXSTART: 0,9,60\r\n+CMQTTRXTOPIC: 0,9\r\nsimcommsg\r\n+CMQTTRXPAYLOAD: 0,60\r\n".to_vec();
        rx.extend_from_slice(PAYLOAD60);
        rx.extend_from_slice(b"\r\n+CMQTTRXEND: 0\r\n");
        h.expect(&rx);
    }
    let m = watch.next(T).expect("the broker got the publish");
    assert_eq!(m.topic, f.topic);
    assert_eq!(m.payload, PAYLOAD60);

    h.data_cmd("AT+CMQTTSUBTOPIC=0,9,1", b"123456789", OK);
    h.cmd("AT+CMQTTSUB=0", "\r\nOK\r\n\r\n+CMQTTSUB: 0,0\r\n");
    h.data_cmd(
        "AT+CMQTTUNSUB=0,9,0",
        b"simcommsg",
        "\r\nOK\r\n\r\n+CMQTTUNSUB: 0,0\r\n",
    );
    h.cmd("AT+CMQTTDISC=0,120", "\r\nOK\r\n\r\n+CMQTTDISC: 0,0\r\n");
    h.cmd("AT+CMQTTREL=0", OK);
    h.cmd("AT+CMQTTSTOP", "\r\nOK\r\n\r\n+CMQTTSTOP: 0\r\n");
    // A clean DISCONNECT: no will.
    assert!(
        watch.next(Duration::from_millis(300)).is_none(),
        "no will after AT+CMQTTDISC"
    );
    h.quiet(Duration::from_millis(50));
}

fn tls_broker(client_cert: bool) -> Broker {
    Broker::start_with(BrokerOptions {
        tls: true,
        require_client_cert: client_cert,
        ..BrokerOptions::default()
    })
}

fn flow_3_1(model: Model) {
    let broker = Broker::start();
    run_flow(
        &broker,
        Flow {
            model,
            url: broker.url(),
            server_type: None,
            ssl_setup: vec![],
            mqttsslcfg: false,
            topic: b"simcommsg",
        },
    );
}

fn flow_3_2(model: Model) {
    // TLS, server not verified (authmode 0 is the default of context 0).
    let broker = tls_broker(false);
    run_flow(
        &broker,
        Flow {
            model,
            url: broker.tls_url().unwrap(),
            server_type: Some(1),
            ssl_setup: vec![],
            mqttsslcfg: false,
            topic: b"dddrrggghhkh",
        },
    );
}

fn flow_3_3(model: Model) {
    // TLS, server verified against the CA downloaded with AT+CCERTDOWN.
    let broker = tls_broker(false);
    let ca = broker.certs().unwrap().ca_pem();
    run_flow(
        &broker,
        Flow {
            model,
            url: broker.tls_url().unwrap(),
            server_type: Some(1),
            ssl_setup: vec![
                (
                    format!("AT+CCERTDOWN=\"server_ca.pem\",{}", ca.len()),
                    Some(ca),
                ),
                ("AT+CSSLCFG=\"sslversion\",0,4".into(), None),
                ("AT+CSSLCFG=\"authmode\",0,1".into(), None),
                ("AT+CSSLCFG=\"cacert\",0,\"server_ca.pem\"".into(), None),
            ],
            mqttsslcfg: true,
            topic: b"dddrrggghhkh",
        },
    );
}

fn flow_3_4(model: Model) {
    // Mutual TLS: the broker requires the client certificate.
    let broker = tls_broker(true);
    let certs = broker.certs().unwrap();
    let (ca, cert, key) = (
        certs.ca_pem(),
        certs.client_cert_pem(),
        certs.client_key_pem(),
    );
    run_flow(
        &broker,
        Flow {
            model,
            url: broker.tls_url().unwrap(),
            server_type: Some(1),
            ssl_setup: vec![
                (
                    format!("AT+CCERTDOWN=\"ca_cert.pem\",{}", ca.len()),
                    Some(ca),
                ),
                (format!("AT+CCERTDOWN=cert.pem,{}", cert.len()), Some(cert)),
                (
                    format!("AT+CCERTDOWN=\"key_cert.pem\",{}", key.len()),
                    Some(key),
                ),
                ("AT+CSSLCFG=\"sslversion\",0,4".into(), None),
                ("AT+CSSLCFG=\"authmode\",0,2".into(), None),
                ("AT+CSSLCFG=\"cacert\",0,\"ca_cert.pem\"".into(), None),
                ("AT+CSSLCFG=\"clientcert\",0,\"cert.pem\"".into(), None),
                ("AT+CSSLCFG=\"clientkey\",0,\"key_cert.pem\"".into(), None),
            ],
            mqttsslcfg: true,
            topic: b"dddrrggghhkh",
        },
    );
}

fn flow_3_5(model: Model) {
    // checkUTF8 off: the topic is not validated; no payload at all is a
    // zero-length message ("+CMQTTRXSTART: 0,9,0", no RXPAYLOAD block).
    let broker = Broker::start();
    let (_sim, mut h) = sim(model);
    h.cmd("AT+CMQTTSTART", "\r\nOK\r\n\r\n+CMQTTSTART: 0\r\n");
    h.cmd("AT+CMQTTACCQ=0,\"client test0\"", OK);
    // With the check on, a non-UTF-8 topic is refused...
    h.data_cmd(
        "AT+CMQTTTOPIC=0,9",
        b"00000000\xff",
        "\r\n+CMQTTTOPIC: 0,2\r\n\r\nERROR\r\n",
    );
    h.cmd("AT+CMQTTCFG=\"checkUTF8\",0,0", OK);
    // ...and accepted with it off.
    h.data_cmd("AT+CMQTTTOPIC=0,9", b"00000000\xff", OK);
    h.cmd(
        &format!("AT+CMQTTCONNECT=0,\"{}\",60,1", broker.url()),
        "\r\nOK\r\n\r\n+CMQTTCONNECT: 0,0\r\n",
    );
    h.data_cmd(
        "AT+CMQTTSUB=0,9,1",
        b"00000000?",
        "\r\nOK\r\n\r\n+CMQTTSUB: 0,0\r\n",
    );
    h.data_cmd("AT+CMQTTTOPIC=0,9", b"00000000?", OK);
    h.cmd("AT+CMQTTPUB=0,1,60", "\r\nOK\r\n\r\n+CMQTTPUB: 0,0\r\n");
    h.expect(b"\r\n+CMQTTRXSTART: 0,9,0\r\n+CMQTTRXTOPIC: 0,9\r\n00000000?\r\n+CMQTTRXEND: 0\r\n");
    h.cmd("AT+CMQTTDISC=0,120", "\r\nOK\r\n\r\n+CMQTTDISC: 0,0\r\n");
    h.cmd("AT+CMQTTREL=0", OK);
    h.cmd("AT+CMQTTSTOP", "\r\nOK\r\n\r\n+CMQTTSTOP: 0\r\n");
}

#[test]
fn a7600_3_1_plain() {
    flow_3_1(Model::A7600);
}

#[test]
fn a7600_3_2_tls_no_verify() {
    flow_3_2(Model::A7600);
}

#[test]
fn a7600_3_3_tls_verify_server() {
    flow_3_3(Model::A7600);
}

#[test]
fn a7600_3_4_tls_mutual() {
    flow_3_4(Model::A7600);
}

#[test]
fn a7600_3_5_no_utf8_check() {
    flow_3_5(Model::A7600);
}

#[test]
fn sim7672x_3_1_plain() {
    flow_3_1(Model::Sim7672x);
}

#[test]
fn sim7672x_3_2_tls_no_verify() {
    flow_3_2(Model::Sim7672x);
}

#[test]
fn sim7672x_3_3_tls_verify_server() {
    flow_3_3(Model::Sim7672x);
}

#[test]
fn sim7672x_3_4_tls_mutual() {
    flow_3_4(Model::Sim7672x);
}

#[test]
fn sim7672x_3_5_no_utf8_check() {
    flow_3_5(Model::Sim7672x);
}

/// The preamble of chapter 3 (network checks), echo on as after boot:
/// every command line comes back as typed, CR included.
#[test]
fn preamble_with_echo() {
    let mut cfg = cmqtt_sim::SimConfig::new(Model::A7600);
    cfg.boot_banner = false;
    let (_sim, mut h) = sim_with(cfg);
    h.send(b"AT+CSQ\r");
    h.expect(b"AT+CSQ\r\r\n+CSQ: 23,0\r\n\r\nOK\r\n");
    h.send(b"AT+CREG?\r");
    h.expect(b"AT+CREG?\r\r\n+CREG: 0,1\r\n\r\nOK\r\n");
    h.send(b"AT+CGREG?\r");
    h.expect(b"AT+CGREG?\r\r\n+CGREG: 0,1\r\n\r\nOK\r\n");
    h.send(b"AT+CGSOCKCONT=1,\"IP\",\"CMNET\"\r");
    h.expect(b"AT+CGSOCKCONT=1,\"IP\",\"CMNET\"\r\r\nOK\r\n");
    // Prompted data is echoed too, then the result.
    h.send(b"AT+CMQTTSTART\r");
    h.expect(b"AT+CMQTTSTART\r\r\nOK\r\n\r\n+CMQTTSTART: 0\r\n");
    h.send(b"AT+CMQTTACCQ=0,\"client test0\"\r");
    h.expect(b"AT+CMQTTACCQ=0,\"client test0\"\r\r\nOK\r\n");
    h.send(b"AT+CMQTTWILLTOPIC=0,10\r");
    h.expect(b"AT+CMQTTWILLTOPIC=0,10\r\r\n>");
    h.send(b"0123456789");
    h.expect(b"0123456789\r\nOK\r\n");
    h.send(b"ATE0\r");
    h.expect(b"ATE0\r\r\nOK\r\n");
    h.send(b"AT\r");
    h.expect(b"\r\nOK\r\n");
    h.send(b"ATE1\r");
    h.expect(b"\r\nOK\r\n");
    h.send(b"AT\r");
    h.expect(b"AT\r\r\nOK\r\n");
}

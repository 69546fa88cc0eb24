//! The five example flows of each spec document (chapter 3 of both), through the library, the
//! emulator of each model and a real mosquitto, checked by an independent subscriber.

use std::time::Duration;

use cmqtt::{SslContext, SslSetting};
use cmqtt_e2e::*;

/// 3.1: plain TCP, will, subscribe, publish, receive, multi-topic subscribe, unsubscribe,
/// disconnect, release, stop.
fn plain_flow(model: SimModel) {
    let rig = Rig::new(model);
    let mut peer = Subscriber::start(&rig.broker, &["simcommsg", "123456789"], 1);
    let c = rig.modem.client(0, "client test0", false).unwrap();
    c.set_will("0123456789", b"qwerty", 1).unwrap();
    c.connect(&rig.connect_opts()).unwrap();
    c.subscribe(&[("simcommsg", 1)]).unwrap();
    let payload = b"012345678901234567890123456789012345678901234567890123456789";
    c.publish("simcommsg", payload, 1, false, PUB).unwrap();
    let seen = expect_one(&mut peer, "the publish");
    assert_eq!(seen.topic, b"simcommsg");
    assert_eq!(seen.payload, payload);
    let back = c
        .recv_timeout(Duration::from_secs(10))
        .expect("our own message back");
    assert_eq!(
        (back.topic.as_slice(), back.payload.as_slice()),
        (&b"simcommsg"[..], &payload[..])
    );
    // Multi-topic subscribe (SUBTOPIC + SUB), then a message on the second topic.
    c.subscribe(&[("123456789", 1), ("other/#", 0)]).unwrap();
    publish(&rig.broker, "123456789", b"hello", 1, false);
    let m = c
        .recv_timeout(Duration::from_secs(10))
        .expect("message on 123456789");
    assert_eq!(m.payload, b"hello");
    c.unsubscribe(&["simcommsg"]).unwrap();
    publish(&rig.broker, "simcommsg", b"after unsubscribe", 1, false);
    publish(&rig.broker, "123456789", b"marker", 1, false);
    let m = c.recv_timeout(Duration::from_secs(10)).expect("marker");
    assert_eq!(
        m.payload, b"marker",
        "a message arrived on an unsubscribed topic"
    );
    c.disconnect(Duration::from_secs(120)).unwrap();
    c.release().unwrap();
    rig.modem.stop().unwrap();
}

#[test]
fn plain_flow_a7600() {
    plain_flow(SimModel::A7600);
}

#[test]
fn plain_flow_sim7600() {
    plain_flow(SimModel::Sim7600);
}

#[test]
fn plain_flow_sim7672x() {
    plain_flow(SimModel::Sim7672x);
}

/// 3.2 / 3.3 / 3.4: TLS with authmode 0, 1 and 2.
fn tls_flow(model: SimModel, authmode: u8) {
    let rig = Rig::with(
        model,
        BrokerOptions {
            tls: true,
            require_client_cert: authmode == 2,
            ..Default::default()
        },
        |_| {},
    );
    let certs = rig.broker.certs().unwrap();
    let m = &rig.modem;
    let mut ctx = SslContext {
        ssl_version: Some(4),
        auth_mode: Some(authmode),
        ..Default::default()
    };
    if authmode >= 1 {
        m.cert_upload("ca_cert.pem", &certs.ca_pem()).unwrap();
        ctx.ca_cert = Some("ca_cert.pem".into());
    }
    if authmode == 2 {
        m.cert_upload("cert.pem", &certs.client_cert_pem()).unwrap();
        m.cert_upload("key_cert.pem", &certs.client_key_pem())
            .unwrap();
        ctx.client_cert = Some("cert.pem".into());
        ctx.client_key = Some("key_cert.pem".into());
    }
    m.ssl_configure(0, &ctx).unwrap();
    let listed = m.cert_list().unwrap();
    if authmode >= 1 {
        assert!(listed.contains(&"ca_cert.pem".to_string()), "{listed:?}");
    }
    let c = m.client(0, "client test0", true).unwrap();
    c.set_ssl_context(0).unwrap();
    c.set_will("0123456789", b"qwerty", 1).unwrap();
    let mut o = ConnectOptions::new(rig.broker.tls_url().unwrap());
    o.timeout = Duration::from_secs(20);
    c.connect(&o).unwrap();
    let mut peer = Subscriber::start(&rig.broker, &["dddrrrggghhk"], 1);
    let payload = b"01234567890123456789012345678901234567890123456789";
    c.publish("dddrrrggghhk", payload, 1, false, PUB).unwrap();
    assert_eq!(expect_one(&mut peer, "TLS publish").payload, payload);
    c.subscribe(&[("simcommsg", 1)]).unwrap();
    publish(&rig.broker, "simcommsg", b"over tls", 1, false);
    assert_eq!(
        c.recv_timeout(Duration::from_secs(10))
            .expect("TLS receive")
            .payload,
        b"over tls"
    );
    c.unsubscribe(&["simcommsg"]).unwrap();
    c.disconnect(Duration::from_secs(120)).unwrap();
    c.release().unwrap();
    m.stop().unwrap();
}

#[test]
fn tls_no_verification_a7600() {
    tls_flow(SimModel::A7600, 0);
}

#[test]
fn tls_verify_server_a7600() {
    tls_flow(SimModel::A7600, 1);
}

#[test]
fn tls_verify_both_a7600() {
    tls_flow(SimModel::A7600, 2);
}

#[test]
fn tls_no_verification_sim7672x() {
    tls_flow(SimModel::Sim7672x, 0);
}

#[test]
fn tls_verify_server_sim7672x() {
    tls_flow(SimModel::Sim7672x, 1);
}

#[test]
fn tls_verify_both_sim7672x() {
    tls_flow(SimModel::Sim7672x, 2);
}

#[test]
fn tls_verification_fails_against_a_wrong_ca() {
    let rig = Rig::with(
        SimModel::A7600,
        BrokerOptions {
            tls: true,
            ..Default::default()
        },
        |_| {},
    );
    // The client certificate is not a CA of the server: verification must fail.
    let certs = rig.broker.certs().unwrap();
    rig.modem
        .cert_upload("wrong.pem", &certs.client_cert_pem())
        .unwrap();
    rig.modem.ssl_set(0, SslSetting::AuthMode(1)).unwrap();
    rig.modem
        .ssl_set(0, SslSetting::CaCert("wrong.pem".into()))
        .unwrap();
    let c = rig.modem.client(0, "tls-bad", true).unwrap();
    let mut o = ConnectOptions::new(rig.broker.tls_url().unwrap());
    o.timeout = Duration::from_secs(20);
    let e = c.connect(&o).unwrap_err();
    assert!(
        e.modem_code().is_some(),
        "expected a modem <err> code, got {e}"
    );
    assert!(!c.is_connected());
    // The session is still usable.
    rig.modem.cert_delete("wrong.pem").unwrap();
    assert!(!rig
        .modem
        .cert_list()
        .unwrap()
        .contains(&"wrong.pem".to_string()));
}

/// 3.5: checkUTF8 off, a topic and payload that are not UTF-8.
fn binary_flow(model: SimModel) {
    let rig = Rig::new(model);
    let c = rig.modem.client(0, "client test0", false).unwrap();
    // With the check on, the library refuses before sending anything.
    let bad_topic: &[u8] = b"bin/\xff\xfe";
    let e = c.subscribe(&[(bad_topic, 1)]).unwrap_err();
    assert!(matches!(e, cmqtt::Error::InvalidArgument { .. }), "{e}");
    c.set_check_utf8(false).unwrap();
    assert!(!c.config().unwrap().check_utf8);
    c.connect(&rig.connect_opts()).unwrap();
    c.subscribe(&[("bin/#", 1)]).unwrap();
    let mut peer = Subscriber::start(&rig.broker, &["bin/#"], 1);
    let payload = all_bytes(300);
    c.publish("bin/x", &payload, 1, false, PUB).unwrap();
    assert_eq!(expect_one(&mut peer, "binary publish").payload, payload);
    let m = c
        .recv_timeout(Duration::from_secs(10))
        .expect("binary message back");
    assert_eq!(m.payload, payload);
    // A zero-length payload (the spec's "+CMQTTRXSTART: 0,9,0").
    c.publish("bin/empty", b"", 1, false, PUB).unwrap();
    let m = c
        .recv_timeout(Duration::from_secs(10))
        .expect("empty message back");
    assert_eq!(
        (m.topic.as_slice(), m.payload.len()),
        (&b"bin/empty"[..], 0)
    );
    c.disconnect(Duration::from_secs(120)).unwrap();
}

#[test]
fn binary_flow_a7600() {
    binary_flow(SimModel::A7600);
}

#[test]
fn binary_flow_sim7672x() {
    binary_flow(SimModel::Sim7672x);
}

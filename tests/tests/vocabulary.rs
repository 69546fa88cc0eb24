//! One vocabulary for every binding: broker URLs in every form the CLI takes, credentials in
//! the URL (never traced or shown), endpoints in one grammar — through the emulator and a real
//! mosquitto that requires a password.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmqtt::{BrokerUrl, Endpoint, Supervisor, SupervisorConfig};
use cmqtt_e2e::*;

const PASSWORD: &str = "vocab-s3cret-pw";

#[test]
fn every_broker_url_form_connects_and_the_password_stays_secret() {
    let broker = Broker::start_with(BrokerOptions {
        users: vec![("alice".into(), PASSWORD.into())],
        ..Default::default()
    });
    let sim = Simulator::start_pty(SimConfig::new(SimModel::A7600)).unwrap();
    let traced = Arc::new(Mutex::new(String::new()));
    let t = traced.clone();
    let modem = Modem::open_with(
        &sim.device(),
        115200,
        ModemOptions {
            sync_timeout: Duration::from_secs(10),
            ..Default::default()
        }
        .trace(move |_, line| {
            let mut s = t.lock().unwrap();
            s.push_str(line);
            s.push('\n');
        }),
    )
    .unwrap();
    modem.start().unwrap();
    let port = broker.port();
    let c = modem.client(0, "vocab", false).unwrap();
    for url in [
        format!("mqtt://alice:{PASSWORD}@127.0.0.1:{port}"),
        format!("tcp://alice:{PASSWORD}@127.0.0.1:{port}/ignored/topic"),
        format!("alice:{PASSWORD}@127.0.0.1:{port}"),
    ] {
        let mut o = ConnectOptions::new(url.clone());
        o.timeout = Duration::from_secs(20);
        c.connect(&o)
            .unwrap_or_else(|e| panic!("{}: {e}", cmqtt::url::redact(&url)));
        assert!(c.is_connected());
        c.disconnect(Duration::from_secs(60)).unwrap();
        assert!(!format!("{o:?}").contains(PASSWORD));
    }
    // Without credentials the broker refuses: the URL's were used above, not ignored.
    let e = c
        .connect(&ConnectOptions::new(format!("mqtt://127.0.0.1:{port}")))
        .unwrap_err();
    assert!(e.modem_code().is_some(), "{e}");
    // Credentials in the options win over the URL's.
    let mut o = ConnectOptions::new(format!("mqtt://alice:wrong@127.0.0.1:{port}"))
        .credentials("alice", PASSWORD);
    o.timeout = Duration::from_secs(20);
    c.connect(&o).unwrap();
    c.disconnect(Duration::from_secs(60)).unwrap();
    let trace = traced.lock().unwrap().clone();
    assert!(
        trace.contains("AT+CMQTTCONNECT=0,\"tcp://127.0.0.1:"),
        "{trace}"
    );
    assert!(!trace.contains(PASSWORD), "the password was traced");
    let parsed = BrokerUrl::parse(&format!("mqtt://alice:{PASSWORD}@h")).unwrap();
    assert!(!format!("{parsed} {parsed:?}").contains(PASSWORD));
}

#[test]
fn a_supervisor_takes_an_endpoint_string_and_a_bare_broker_address() {
    let broker = Broker::start();
    let sim = Simulator::start_pty(SimConfig::new(SimModel::Sim7600)).unwrap();
    let ep: Endpoint = sim.device().parse().unwrap();
    assert!(matches!(&ep, Endpoint::Serial { path, baud: 115200 } if *path == sim.device()));
    let mut cfg = SupervisorConfig::new(ep, "vocab-sup", &format!("127.0.0.1:{}", broker.port()));
    cfg.connect.timeout = Duration::from_secs(10);
    cfg.modem.sync_timeout = Duration::from_secs(5);
    cfg.validate().unwrap();
    let sup = Supervisor::start(cfg).unwrap();
    assert!(sup.wait_connected(Duration::from_secs(20)));
    let mut peer = Subscriber::start(&broker, &["vocab/#"], 1);
    sup.publish_wait("vocab/x", b"hi", 1, false, Duration::from_secs(20))
        .unwrap();
    assert_eq!(peer.collect(1, Duration::from_secs(10))[0].payload, b"hi");
    sup.close();
}

//! Faults through the whole stack: the broker dies, the network goes, the modem restarts.

use std::time::Duration;

use cmqtt::{Error, Event};
use cmqtt_e2e::*;

#[test]
fn broker_killed_mid_session_then_back() {
    let mut rig = Rig::new(SimModel::A7600);
    let c = rig.connected(0, "survivor");
    c.subscribe(&[("back", 1)]).unwrap();
    c.publish("back", b"before", 1, false, PUB).unwrap();
    assert_eq!(
        c.recv_timeout(Duration::from_secs(10)).unwrap().payload,
        b"before"
    );
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let l2 = lost.clone();
    c.on_connection_lost(move |client, _cause| {
        assert_eq!(client, 0);
        l2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    rig.broker.kill();
    // Exactly one ConnectionLost event reaches the host.
    let e = rig
        .modem
        .recv_event(Duration::from_secs(10))
        .expect("ConnectionLost");
    assert!(
        matches!(e, Event::ConnectionLost { client: 0, .. }),
        "{e:?}"
    );
    assert!(cmqtt_testkit::wait_until(Duration::from_secs(5), || lost
        .load(std::sync::atomic::Ordering::SeqCst)
        == 1));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        lost.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "ConnectionLost reported twice"
    );
    assert!(!c.is_connected());
    // Publishing now is refused honestly, not reported as sent.
    let e = c.publish("back", b"while down", 1, false, PUB).unwrap_err();
    assert!(matches!(e, Error::NotConnected { client: 0 }), "{e}");
    // The broker returns: connect again and everything works.
    rig.broker.restart();
    c.connect(&rig.connect_opts()).unwrap();
    c.subscribe(&[("back", 1)]).unwrap();
    c.publish("back", b"after", 1, false, PUB).unwrap();
    assert_eq!(
        c.recv_timeout(Duration::from_secs(10)).unwrap().payload,
        b"after"
    );
}

#[test]
fn broker_gone_while_connecting_is_a_typed_error() {
    let mut rig = Rig::new(SimModel::Sim7672x);
    rig.broker.kill();
    let c = rig.modem.client(0, "nobody-home", false).unwrap();
    let e = c.connect(&rig.connect_opts()).unwrap_err();
    assert!(e.modem_code().is_some(), "{e}");
    assert!(!c.is_connected());
    // The session still answers.
    assert!(rig.modem.service_running());
}

#[test]
fn network_loss_on_sim7672x_reports_no_network() {
    let rig = Rig::new(SimModel::Sim7672x);
    let c = rig.connected(0, "nonet");
    rig.sim.faults().lose_network();
    let mut saw_lost = false;
    let mut saw_nonet = false;
    while let Some(e) = rig.modem.recv_event(Duration::from_secs(5)) {
        match e {
            Event::ConnectionLost {
                client: 0,
                cause: 3,
            } => saw_lost = true,
            Event::NoNetwork => {
                saw_nonet = true;
                break;
            }
            _ => {}
        }
    }
    assert!(saw_lost && saw_nonet, "lost={saw_lost} nonet={saw_nonet}");
    assert!(!c.is_connected());
    drop(c);
    // Restart the service as the note says, and work again.
    rig.modem.start().unwrap();
    let c = rig.connected(0, "nonet-again");
    c.publish("x", b"y", 0, false, PUB).unwrap();
}

#[test]
fn modem_reset_is_seen_and_the_session_recovers() {
    let rig = Rig::new(SimModel::A7600);
    let c = rig.connected(0, "resetme");
    rig.sim.faults().reset();
    let mut restarted = false;
    while let Some(e) = rig.modem.recv_event(Duration::from_secs(5)) {
        if e == Event::ModemRestarted {
            restarted = true;
            break;
        }
    }
    assert!(restarted);
    assert!(!c.is_connected());
    std::mem::forget(c); // its index no longer exists on the modem
    assert!(rig.modem.start().unwrap());
    let c = rig.connected(0, "after-reset");
    c.publish("x", b"y", 1, false, PUB).unwrap();
}

#[test]
fn garbage_on_the_line_does_not_break_the_session() {
    let rig = Rig::new(SimModel::A7600);
    let c = rig.connected(0, "garbage");
    c.subscribe(&[("g", 1)]).unwrap();
    rig.sim
        .faults()
        .inject(b"\r\n\xff\xfe garbage \x00\r\n+CMQTTRXPAYLOAD: 0,99999\r\n+CMQTTRXEND: 1\r\n");
    c.publish("g", b"still fine", 1, false, PUB).unwrap();
    assert_eq!(
        c.recv_timeout(Duration::from_secs(10)).unwrap().payload,
        b"still fine"
    );
    let mut malformed = 0;
    while let Some(e) = rig.modem.recv_event(Duration::from_millis(300)) {
        if matches!(e, Event::Malformed(_)) {
            malformed += 1;
        }
    }
    assert!(malformed >= 1, "garbage went unreported");
}

#[test]
fn a_stalled_modem_times_out_and_recovers() {
    let rig = Rig::new(SimModel::A7600);
    let mut p = rig.modem.profile();
    p.command_timeout = Duration::from_secs(1);
    rig.modem.set_profile(p);
    rig.sim.faults().stall(true);
    let t = std::time::Instant::now();
    let e = rig.modem.client(0, "stalled", false).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Timeout {
                command: "AT+CMQTTACCQ",
                ..
            }
        ),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    rig.sim.faults().stall(false);
    // The ACCQ may or may not have been taken; either way the next commands work.
    let _ = rig.modem.execute(&cmqtt::command::Rel { index: 0 });
    let c = rig.connected(0, "unstalled");
    c.publish("x", b"y", 0, false, PUB).unwrap();
}

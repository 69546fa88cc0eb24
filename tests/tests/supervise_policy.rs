//! The supervisor's policy through the whole stack (emulator on a pty, a real mosquitto, an
//! independent peer): backoff after every loss, a publish the broker keeps refusing is given up
//! while the rest flows, a refused subscription is reported and dropped, a blocked message
//! callback does not hide a loss, unsubscribe.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cmqtt::{
    Backoff, DeliveryStatus, Endpoint, ErrorKind, Loss, State, Supervisor, SupervisorConfig,
    SupervisorEvent,
};
use cmqtt_e2e::*;
use cmqtt_testkit::wait_until;

fn config(sim: &Simulator, broker: &Broker, id: &str) -> SupervisorConfig {
    let mut cfg = SupervisorConfig::new(
        Endpoint::Serial {
            path: sim.device(),
            baud: 115200,
        },
        id,
        &broker.url(),
    );
    cfg.connect.timeout = Duration::from_secs(10);
    cfg.backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(2),
        jitter: 0.2,
    };
    cfg.modem.sync_timeout = Duration::from_secs(5);
    cfg
}

/// Collects a supervisor's events (through its callback).
fn recorder(sup: &Supervisor) -> Arc<Mutex<Vec<(Instant, SupervisorEvent)>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    sup.on_event(move |e| l.lock().unwrap().push((Instant::now(), e.clone())));
    log
}

fn count(
    log: &Mutex<Vec<(Instant, SupervisorEvent)>>,
    f: impl Fn(&SupervisorEvent) -> bool,
) -> usize {
    log.lock().unwrap().iter().filter(|(_, e)| f(e)).count()
}

/// Before: two devices sharing a client id reconnected ~12 times a second each, forever (no
/// backoff after a loss, only after a failed attempt). Now every loss backs off.
#[test]
fn two_devices_with_one_client_id_back_off() {
    let broker = Broker::start();
    let sim_a = Simulator::start_pty(SimConfig::new(SimModel::A7600)).unwrap();
    let sim_b = Simulator::start_pty(SimConfig::new(SimModel::A7600)).unwrap();
    let a = Supervisor::start(config(&sim_a, &broker, "twin")).unwrap();
    let la = recorder(&a);
    assert!(a.wait_connected(Duration::from_secs(15)));
    let b = Supervisor::start(config(&sim_b, &broker, "twin")).unwrap();
    let lb = recorder(&b);
    // Each kicks the other off: watch for a while.
    let window = Duration::from_secs(8);
    std::thread::sleep(window);
    let lost = |l: &Mutex<Vec<(Instant, SupervisorEvent)>>| {
        count(l, |e| {
            matches!(e, SupervisorEvent::Lost(Loss::Connection { .. }))
        })
    };
    let (na, nb) = (lost(&la), lost(&lb));
    eprintln!("losses in {window:?}: a {na}, b {nb}");
    assert!(
        na + nb >= 2,
        "the broker should have kicked them: a {na}, b {nb}"
    );
    // With a backoff of 0.2 s doubling to 2 s: at most about 1 + 2 + 2 + 2 + 2 reconnects
    // each in 8 s (the unfixed supervisor made ~100).
    assert!(
        na <= 12 && nb <= 12,
        "no backoff after losses: a {na}, b {nb}"
    );
    // The waits after losses grow.
    let waits: Vec<Duration> = la
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, e)| match e {
            SupervisorEvent::State(State::Waiting { delay, .. }) => Some(*delay),
            _ => None,
        })
        .collect();
    if waits.len() >= 3 {
        assert!(waits[2] > waits[0], "{waits:?}");
    }
    a.close();
    b.close();
}

/// Before: a publish the broker answers by closing the connection made the supervisor
/// reconnect hundreds of times a second forever, with every later publish stuck behind it.
/// Here the broker's packet size limit plays the part of an AWS IoT policy violation.
#[test]
fn a_publish_that_makes_the_broker_drop_us_is_given_up_and_the_rest_flows() {
    let broker = Broker::start_with(BrokerOptions {
        extra_config: "max_packet_size 2000\n".into(),
        ..Default::default()
    });
    let sim = Simulator::start_pty(SimConfig::new(SimModel::A7600)).unwrap();
    let mut cfg = config(&sim, &broker, "poison");
    cfg.max_send_failures = 3;
    let sup = Supervisor::start(cfg).unwrap();
    let log = recorder(&sup);
    assert!(sup.wait_connected(Duration::from_secs(15)));
    let mut peer = Subscriber::start(&broker, &["p/#"], 1);
    let big = sup
        .publish("p/big", &[b'x'; 5000], cmqtt::QoS::AtLeastOnce, false)
        .unwrap();
    let small: Vec<_> = (0..5)
        .map(|i| {
            sup.publish("p/small", format!("s{i}").as_bytes(), 1, false)
                .unwrap()
        })
        .collect();
    match big.wait(Duration::from_secs(60)) {
        DeliveryStatus::Failed(why) => assert!(why.contains("dropped the connection"), "{why}"),
        other => panic!("the poisonous publish should fail, got {other:?}"),
    }
    let e = big.wait_delivered(Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeliveryFailed);
    for t in &small {
        assert_eq!(t.wait(Duration::from_secs(60)), DeliveryStatus::Delivered);
    }
    let got: Vec<Vec<u8>> = peer
        .collect(5, Duration::from_secs(20))
        .into_iter()
        .map(|r| r.payload)
        .collect();
    assert_eq!(
        got,
        (0..5)
            .map(|i| format!("s{i}").into_bytes())
            .collect::<Vec<_>>()
    );
    let losses = count(&log, |e| matches!(e, SupervisorEvent::Lost(_)));
    assert!(
        (3..=4).contains(&losses),
        "expected 3 losses (max_send_failures), got {losses}"
    );
    assert_eq!(
        count(
            &log,
            |e| matches!(e, SupervisorEvent::Failed { id, .. } if *id == big.id())
        ),
        1
    );
    sup.close();
}

/// Before: a filter the broker refuses (`a/#/b`) made every connect attempt fail, forever.
/// Now a malformed filter is refused before anything is sent (by `validate`, by
/// `Supervisor::subscribe`), and one that reaches the actor anyway is reported once, dropped,
/// and the other subscriptions work.
#[test]
fn a_refused_subscription_is_reported_and_dropped() {
    let broker = Broker::start();
    let sim = Simulator::start_pty(SimConfig::new(SimModel::A7600)).unwrap();
    let mut cfg = config(&sim, &broker, "refused");
    cfg.subscriptions.push((b"a/#/b".to_vec(), 1));
    cfg.subscriptions.push((b"ok/x".to_vec(), 1));
    assert_eq!(
        cfg.validate().unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    let sup = Supervisor::start(cfg).unwrap();
    let log = recorder(&sup);
    assert!(
        sup.wait_connected(Duration::from_secs(20)),
        "never connected: {:?}",
        log.lock().unwrap()
    );
    assert!(wait_until(Duration::from_secs(10), || count(
        &log,
        |e| matches!(
            e,
            SupervisorEvent::SubscribeFailed { topic, .. } if topic == b"a/#/b"
        )
    ) == 1));
    assert_eq!(
        sup.subscribe("x/#/y", 0).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert!(wait_until(Duration::from_secs(10), || {
        publish(&broker, "ok/x", b"hello", 1, false);
        sup.recv_timeout(Duration::from_millis(300))
            .is_some_and(|m| m.payload == b"hello")
    }));
    // Connected at the first attempt, no retry loop, reported once.
    assert_eq!(
        count(&log, |e| matches!(e, SupervisorEvent::AttemptFailed { .. })),
        0
    );
    assert_eq!(
        count(&log, |e| matches!(
            e,
            SupervisorEvent::SubscribeFailed { .. }
        )),
        1
    );
    sup.close();
}

/// The reproduction through the supervisor: queue capacity 4, a blocking on_message,
/// 12 messages, then a connection drop. Before: the supervisor stayed `Connected` while the
/// modem said disconnected, and a subscribe-only device was stuck for good.
#[test]
fn a_blocked_message_callback_does_not_hide_a_loss() {
    let broker = Broker::start();
    let sim = Simulator::start_pty(SimConfig::new(SimModel::A7600)).unwrap();
    let mut cfg = config(&sim, &broker, "blocked");
    cfg.modem.queue_capacity = 4;
    cfg.subscriptions.push((b"b/#".to_vec(), 1));
    let sup = Supervisor::start(cfg).unwrap();
    let log = recorder(&sup);
    assert!(sup.wait_connected(Duration::from_secs(15)));
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let got = Arc::new(AtomicUsize::new(0));
    let (g, n) = (gate.clone(), got.clone());
    sup.on_message(move |_| {
        n.fetch_add(1, Ordering::SeqCst);
        let mut open = g.0.lock().unwrap();
        while !*open {
            open = g.1.wait(open).unwrap();
        }
    });
    for i in 0..12 {
        publish(&broker, "b/x", format!("m{i}").as_bytes(), 1, false);
    }
    assert!(wait_until(Duration::from_secs(10), || got
        .load(Ordering::SeqCst)
        == 1));
    sim.faults().drop_connection(0, 1);
    // While the callback is still blocked: the loss is seen and the connection restored.
    assert!(
        wait_until(Duration::from_secs(15), || count(&log, |e| matches!(
            e,
            SupervisorEvent::Lost(Loss::Connection { .. })
        )) == 1),
        "the loss was never seen: {:?}",
        log.lock().unwrap()
    );
    assert!(wait_until(Duration::from_secs(15), || count(
        &log,
        |e| matches!(e, SupervisorEvent::Restored { .. })
    ) == 1));
    assert!(sup.wait_connected(Duration::from_secs(15)));
    // Unblock; later messages still arrive (re-subscribed after the restore).
    let released = Arc::new(AtomicBool::new(false));
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    released.store(true, Ordering::SeqCst);
    let before = got.load(Ordering::SeqCst);
    publish(&broker, "b/x", b"after", 1, false);
    assert!(wait_until(Duration::from_secs(10), || got
        .load(Ordering::SeqCst)
        > before));
    sup.close();
}

/// `Supervisor::unsubscribe` stops the messages, and the filter is not restored later.
#[test]
fn unsubscribe_stops_messages_across_reconnects() {
    let broker = Broker::start();
    let sim = Simulator::start_pty(SimConfig::new(SimModel::A7600)).unwrap();
    let mut cfg = config(&sim, &broker, "unsub");
    cfg.subscriptions.push((b"u/a".to_vec(), 1));
    cfg.subscriptions.push((b"u/b".to_vec(), 1));
    let sup = Supervisor::start(cfg).unwrap();
    assert!(sup.wait_connected(Duration::from_secs(15)));
    // Let the subscriptions land.
    assert!(wait_until(Duration::from_secs(10), || {
        publish(&broker, "u/a", b"probe", 1, false);
        sup.recv_timeout(Duration::from_millis(300)).is_some()
    }));
    while sup.recv_timeout(Duration::from_millis(200)).is_some() {}
    sup.unsubscribe("u/a").unwrap();
    // Give the actor a moment, then drop the connection: the filter must not come back.
    std::thread::sleep(Duration::from_millis(500));
    sim.faults().drop_connection(0, 1);
    std::thread::sleep(Duration::from_millis(300));
    assert!(sup.wait_connected(Duration::from_secs(15)));
    assert!(wait_until(Duration::from_secs(10), || {
        publish(&broker, "u/b", b"b", 1, false);
        sup.recv_timeout(Duration::from_millis(300))
            .is_some_and(|m| m.topic == b"u/b")
    }));
    publish(&broker, "u/a", b"a", 1, false);
    let mut seen_a = false;
    while let Some(m) = sup.recv_timeout(Duration::from_millis(700)) {
        seen_a |= m.topic == b"u/a";
    }
    assert!(!seen_a, "u/a still delivered after unsubscribe");
    sup.close();
    // close is idempotent and the handle is cloneable.
    let s2 = sup.clone();
    s2.close();
    assert_eq!(sup.state(), State::Stopped);
    assert_eq!(
        sup.publish("u/a", b"x", 1, false).unwrap_err().kind(),
        ErrorKind::Closed
    );
}

/// A damaged outbox file is not silently cut short: the supervisor reports what was skipped
/// (and where the damaged file was kept) as its first news, and keeps every intact entry.
#[test]
fn a_damaged_outbox_file_is_reported_and_the_rest_kept() {
    let dir = cmqtt_testkit::TempDir::new("outbox-damaged");
    let path = dir.path().join("outbox.bin");
    let cfg = || {
        let mut c = SupervisorConfig::new(
            Endpoint::Serial {
                path: "/dev/cmqtt-no-such-modem".into(),
                baud: 115200,
            },
            "damaged",
            "tcp://127.0.0.1:1",
        );
        c.outbox.persist = Some(path.clone());
        c.outbox.sync = true;
        c
    };
    let sup = Supervisor::start(cfg()).unwrap();
    for i in 0..5 {
        sup.publish("d/x", format!("payload-{i}").as_bytes(), 1, false)
            .unwrap();
    }
    sup.close();
    drop(sup);
    // Flip one byte inside the third entry's payload.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(9)
        .position(|w| w == b"payload-2")
        .expect("entry 2 in the file");
    bytes[at + 3] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    let sup = Supervisor::start_with_callbacks(
        cfg(),
        Some(Box::new(move |ev: &SupervisorEvent| {
            e.lock().unwrap().push(ev.clone())
        })),
        None,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(5), || events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, SupervisorEvent::OutboxRecovered { .. }))));
    let summary = events
        .lock()
        .unwrap()
        .iter()
        .find_map(|e| match e {
            SupervisorEvent::OutboxRecovered { summary } => Some(summary.clone()),
            _ => None,
        })
        .unwrap();
    assert!(summary.contains("damaged"), "{summary}");
    assert_eq!(sup.outbox_len(), 4, "only the damaged entry may be lost");
    sup.close();
}

/// Closing from inside a message callback (on the modem's dispatch thread) returns at once
/// and the supervisor still stops: no thread waits for the one it runs on.
#[test]
fn close_from_a_message_callback_does_not_deadlock() {
    let broker = Broker::start();
    let sim = Simulator::start_pty(SimConfig::new(SimModel::A7600)).unwrap();
    let mut cfg = config(&sim, &broker, "close-in-cb");
    cfg.subscriptions.push((b"cb/close".to_vec(), 1));
    let sup = Supervisor::start(cfg).unwrap();
    assert!(sup.wait_connected(Duration::from_secs(15)));
    let returned = Arc::new(AtomicBool::new(false));
    let (s2, r2) = (sup.clone(), returned.clone());
    sup.on_message(move |_| {
        s2.close();
        r2.store(true, Ordering::SeqCst);
    });
    assert!(wait_until(Duration::from_secs(10), || {
        publish(&broker, "cb/close", b"bye", 1, false);
        returned.load(Ordering::SeqCst)
    }));
    assert!(wait_until(Duration::from_secs(10), || sup.state() == State::Stopped));
    drop(sup);
}

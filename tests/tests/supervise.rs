//! Supervision and the outbox through the whole stack: faults injected in the emulator and the
//! broker, an independent subscriber counting what arrived.

use std::collections::BTreeSet;
use std::time::Duration;

use cmqtt::{
    Backoff, DeliveryStatus, Endpoint, Loss, OutboxConfig, Supervisor, SupervisorConfig,
    SupervisorEvent,
};
use cmqtt_e2e::*;

fn config(sim: &Simulator, broker: &Broker, id: &str) -> SupervisorConfig {
    config_at(&sim.device(), broker, id)
}

fn config_at(path: &str, broker: &Broker, id: &str) -> SupervisorConfig {
    let mut cfg = SupervisorConfig::new(
        Endpoint::Serial {
            path: path.to_string(),
            baud: 115200,
        },
        id,
        &broker.url(),
    );
    cfg.connect.timeout = Duration::from_secs(10);
    cfg.backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        jitter: 0.2,
    };
    cfg.modem.sync_timeout = Duration::from_secs(5);
    cfg
}

fn payloads(sub: &mut Subscriber, n: usize) -> BTreeSet<Vec<u8>> {
    sub.collect(n, Duration::from_secs(30))
        .into_iter()
        .map(|r| r.payload)
        .collect()
}

#[test]
fn publishes_made_while_the_broker_is_down_arrive_after_it_returns() {
    // The independent subscriber keeps a persistent session on a broker that saves its state,
    // so it misses nothing while the broker is away.
    let mut broker = Broker::start_with(BrokerOptions {
        persistence: true,
        ..Default::default()
    });
    let sim = Simulator::start_pty(SimConfig::new(SimModel::A7600)).unwrap();
    let mut cfg = config(&sim, &broker, "sup-broker");
    cfg.subscriptions.push((b"sup/in".to_vec(), 1));
    let sup = Supervisor::start(cfg).unwrap();
    assert!(
        sup.wait_connected(Duration::from_secs(15)),
        "never connected"
    );
    let mut peer = Subscriber::start_opts(
        &broker,
        &["sup/out"],
        1,
        PeerOptions {
            client_id: Some("sup-peer".into()),
            clean_session: false,
            ..Default::default()
        },
    );
    sup.publish_wait("sup/out", b"m0", 1, false, Duration::from_secs(10))
        .unwrap();
    assert_eq!(expect_one(&mut peer, "m0").payload, b"m0");
    broker.stop();
    // Wait for the supervisor to notice, then publish while the broker is down.
    let mut lost = false;
    while let Some(e) = sup.recv_event(Duration::from_secs(10)) {
        if matches!(e, SupervisorEvent::Lost(Loss::Connection { .. })) {
            lost = true;
            break;
        }
    }
    assert!(lost, "the loss was not reported");
    let tickets: Vec<_> = (1..=20)
        .map(|i| {
            sup.publish(
                "sup/out",
                format!("m{i}").as_bytes(),
                1 + (i % 2) as u8,
                false,
            )
            .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(tickets.iter().all(|t| t.status() == DeliveryStatus::Queued));
    broker.restart();
    for t in &tickets {
        assert_eq!(t.wait(Duration::from_secs(30)), DeliveryStatus::Delivered);
    }
    let got = payloads(&mut peer, 20);
    let want: BTreeSet<Vec<u8>> = (1..=20).map(|i| format!("m{i}").into_bytes()).collect();
    assert_eq!(got, want, "lost or changed messages");
    // Subscriptions were restored too.
    publish(&broker, "sup/in", b"welcome back", 1, false);
    let m = sup
        .recv_timeout(Duration::from_secs(10))
        .expect("message after restore");
    assert_eq!(m.payload, b"welcome back");
    sup.close();
}

#[test]
fn modem_faults_are_survived_in_order() {
    let broker = Broker::start();
    let sim = Simulator::start_pty(SimConfig::new(SimModel::Sim7672x)).unwrap();
    let sup = Supervisor::start(config(&sim, &broker, "sup-faults")).unwrap();
    assert!(sup.wait_connected(Duration::from_secs(15)));
    let mut peer = Subscriber::start(&broker, &["f/#"], 2);
    let faults = sim.faults();
    let mut tickets = Vec::new();
    for round in 0..4 {
        match round {
            0 => faults.drop_connection(0, 1),
            1 => faults.lose_network(),
            2 => faults.reset(),
            _ => faults.inject(b"\r\n\xff garbage\r\n"),
        }
        for i in 0..5 {
            let p = format!("r{round}-{i}");
            tickets.push(sup.publish("f/x", p.as_bytes(), 2, false).unwrap());
        }
    }
    for t in &tickets {
        assert_eq!(
            t.wait(Duration::from_secs(60)),
            DeliveryStatus::Delivered,
            "ticket {}",
            t.id()
        );
    }
    let got = payloads(&mut peer, 20);
    assert_eq!(got.len(), 20, "expected 20 distinct messages, got {got:?}");
    // QoS 2 and acknowledged: no duplicates may follow.
    assert!(
        peer.next(Duration::from_millis(500)).is_none(),
        "a duplicate arrived"
    );
    sup.close();
}

#[test]
fn persisted_outbox_survives_a_restart_of_the_host() {
    let broker = Broker::start();
    let dir = cmqtt_testkit::TempDir::new("outbox");
    let path = dir.path().join("outbox.bin");
    let mut peer = Subscriber::start(&broker, &["p/#"], 1);
    {
        // No modem at this path: nothing can be sent, everything waits in the file.
        let mut cfg = SupervisorConfig::new(
            Endpoint::Serial {
                path: dir.path().join("no-such-port").display().to_string(),
                baud: 115200,
            },
            "sup-persist",
            &broker.url(),
        );
        cfg.outbox = OutboxConfig {
            persist: Some(path.clone()),
            ..Default::default()
        };
        let sup = Supervisor::start(cfg).unwrap();
        for i in 0..10 {
            sup.publish("p/x", format!("saved{i}").as_bytes(), 1, false)
                .unwrap();
        }
        assert_eq!(sup.outbox_len(), 10);
        sup.close();
    }
    let sim = Simulator::start_pty(SimConfig::new(SimModel::A7600)).unwrap();
    let mut cfg = config(&sim, &broker, "sup-persist");
    cfg.outbox = OutboxConfig {
        persist: Some(path.clone()),
        ..Default::default()
    };
    let sup = Supervisor::start(cfg).unwrap();
    assert_eq!(sup.pending().len(), 10);
    assert!(
        sup.flush(Duration::from_secs(30)),
        "the saved outbox was not sent"
    );
    let got = payloads(&mut peer, 10);
    let want: BTreeSet<Vec<u8>> = (0..10).map(|i| format!("saved{i}").into_bytes()).collect();
    assert_eq!(got, want);
    sup.close();
}

#[test]
fn outbox_full_policies() {
    let broker = Broker::start();
    let dir = cmqtt_testkit::TempDir::new("full");
    let mut cfg = SupervisorConfig::new(
        Endpoint::Serial {
            path: dir.path().join("absent").display().to_string(),
            baud: 115200,
        },
        "sup-full",
        &broker.url(),
    );
    cfg.outbox = OutboxConfig {
        capacity: 3,
        when_full: cmqtt::WhenFull::DropOldest,
        ..Default::default()
    };
    let sup = Supervisor::start(cfg).unwrap();
    let first = sup.publish("t", b"1", 1, false).unwrap();
    for i in 2..=4 {
        sup.publish("t", format!("{i}").as_bytes(), 1, false)
            .unwrap();
    }
    assert_eq!(first.status(), DeliveryStatus::Dropped);
    let mut dropped = false;
    while let Some(e) = sup.recv_event(Duration::from_millis(500)) {
        if e == (SupervisorEvent::Dropped { id: first.id() }) {
            dropped = true;
        }
    }
    assert!(dropped, "the drop was not reported");
    // Arguments that can never be sent are refused at once.
    assert!(sup.publish("t", b"x", 3, false).is_err());
    assert!(sup.publish("", b"x", 1, false).is_err());
}

/// How many fds of this process are open on `dev` (tests in this file run in parallel, each
/// with its own pty).
fn fds_on(dev: &str) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|p| p.as_os_str() == dev)
                .count()
        })
        .unwrap_or_default()
}

#[test]
fn a_vanishing_port_is_reopened_by_its_path_and_nothing_is_lost() {
    let broker = Broker::start();
    let dir = cmqtt_testkit::TempDir::new("vanish");
    let link = dir.path().join("ttyUSB2");
    let sim = Simulator::start_pty_link(SimConfig::new(SimModel::A7600), &link).unwrap();
    let first = sim.device();
    let mut cfg = config_at(link.to_str().unwrap(), &broker, "sup-vanish");
    cfg.subscriptions.push((b"v/in".to_vec(), 1));
    let sup = Supervisor::start(cfg).unwrap();
    assert!(
        sup.wait_connected(Duration::from_secs(15)),
        "never connected"
    );
    let mut peer = Subscriber::start(&broker, &["v/out"], 2);
    sup.publish_wait("v/out", b"before", 2, false, Duration::from_secs(10))
        .unwrap();
    assert_eq!(expect_one(&mut peer, "before").payload, b"before");
    // The session's reader and writer.
    assert_eq!(fds_on(&first), 2);

    sim.faults().vanish(Duration::from_millis(1500));
    let mut lost = None;
    while let Some(e) = sup.recv_event(Duration::from_secs(5)) {
        if let SupervisorEvent::Lost(l) = e {
            lost = Some(l);
            break;
        }
    }
    assert!(matches!(lost, Some(Loss::Port(_))), "{lost:?}");
    // Publishes while the port is gone wait in the outbox.
    let tickets: Vec<_> = (0..20)
        .map(|i| {
            let p = format!("during{i}\x00\r\n").into_bytes();
            sup.publish("v/out", &p, 1 + (i % 2) as u8, false).unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(tickets.iter().all(|t| t.status() == DeliveryStatus::Queued));
    // Nothing holds the old pty any more: the supervisor closed both of its handles.
    assert!(
        fds_on(&first) == 0 || sim.device() == first,
        "a stale handle keeps the vanished pty open"
    );
    for t in &tickets {
        assert_eq!(
            t.wait(Duration::from_secs(30)),
            DeliveryStatus::Delivered,
            "ticket {}",
            t.id()
        );
    }
    let got = payloads(&mut peer, 20);
    let want: BTreeSet<Vec<u8>> = (0..20)
        .map(|i| format!("during{i}\x00\r\n").into_bytes())
        .collect();
    assert_eq!(got, want, "lost or changed messages");
    assert!(
        peer.next(Duration::from_millis(300)).is_none(),
        "a duplicate arrived"
    );
    // Reopened on the new pty behind the same path, with its subscriptions.
    let second = sim.device();
    assert_eq!(fds_on(&second), 2, "exactly one session on the new pty");
    publish(&broker, "v/in", b"after", 1, false);
    let m = sup
        .recv_timeout(Duration::from_secs(10))
        .expect("message after the port came back");
    assert_eq!(m.payload, b"after");
    sup.close();
    assert_eq!(fds_on(&second), 0, "the port stays open after close");
}

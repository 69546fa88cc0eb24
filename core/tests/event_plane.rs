//! The event plane: health is state, control events are never lost behind slow callbacks,
//! callbacks belong to the handle that installed them, topics are checked before a byte is
//! sent. On the scripted modem (a pty-free byte pipe that answers like an A76xx).

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cmqtt::{ConnectOptions, ErrorKind, Event, ModemOptions};
use support::*;

fn message(client: u8, topic: &str, payload: &str) -> String {
    format!(
        "\r\n+CMQTTRXSTART: {client},{},{}\r\n+CMQTTRXTOPIC: {client},{}\r\n{topic}\r\n+CMQTTRXPAYLOAD: {client},{}\r\n{payload}\r\n+CMQTTRXEND: {client}\r\n",
        topic.len(),
        payload.len(),
        topic.len(),
        payload.len()
    )
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// The reproduction: queue capacity 4, a blocking `on_message`, 12 messages, then a
/// connection drop. Before: the `Lost` notification was replaced by an overflow counter nobody
/// read, and a callback user never heard of the loss.
#[test]
fn a_connection_loss_reaches_its_callbacks_while_on_message_blocks() {
    let s = Scripted::start("A7600E-H", a76);
    let modem = open_with(
        &s,
        ModemOptions {
            sync_timeout: Duration::from_secs(3),
            queue_capacity: 4,
            ..Default::default()
        },
    );
    modem.start().unwrap();
    let client = modem.client(0, "dev", false).unwrap();
    client
        .connect(&ConnectOptions::new("tcp://h:1883"))
        .unwrap();
    assert!(client.is_connected());

    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let got = Arc::new(AtomicUsize::new(0));
    let (g, n) = (gate.clone(), got.clone());
    client.on_message(move |_| {
        n.fetch_add(1, Ordering::SeqCst);
        let mut open = g.0.lock().unwrap();
        while !*open {
            open = g.1.wait(open).unwrap();
        }
    });
    let lost = Arc::new(Mutex::new(Vec::new()));
    let l = lost.clone();
    client.on_connection_lost(move |c, cause| l.lock().unwrap().push((c, cause)));
    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    modem.on_event(move |ev| e.lock().unwrap().push(ev.clone()));

    for i in 0..12 {
        s.to_host.push(message(0, "t", &format!("m{i}")).as_bytes());
    }
    assert!(wait_until(Duration::from_secs(5), || got
        .load(Ordering::SeqCst)
        == 1));
    s.to_host.push(b"\r\n+CMQTTCONNLOST: 0,1\r\n");

    // Health is state: known at once, however far behind the callbacks are.
    assert!(wait_until(Duration::from_secs(5), || !client.is_connected()));
    let h = modem.health();
    assert_eq!(h.losses[0], 1, "{h:?}");
    assert_eq!(h.last_cause[0], Some(1));
    assert!(!h.connected[0]);

    // Unblock: the loss reaches both callbacks, before the queued messages.
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    assert!(
        wait_until(Duration::from_secs(5), || lost.lock().unwrap().len() == 1),
        "on_connection_lost never ran"
    );
    assert_eq!(lost.lock().unwrap()[0], (0, 1));
    assert!(
        wait_until(Duration::from_secs(5), || events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(
                e,
                Event::ConnectionLost {
                    client: 0,
                    cause: 1
                }
            ))),
        "on_event never saw the loss: {:?}",
        events.lock().unwrap()
    );
    // The messages beyond the queue's room were dropped and said so; the rest were delivered.
    assert!(wait_until(Duration::from_secs(5), || {
        got.load(Ordering::SeqCst) as u64 + client.dropped_messages() == 12
    }));
    assert!(client.dropped_messages() > 0);
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::Overflow { .. })));
}

/// Control events are never evicted from a full event queue by data events.
#[test]
fn a_full_event_queue_keeps_its_control_events() {
    let s = Scripted::start("A7600E-H", a76);
    let modem = open_with(
        &s,
        ModemOptions {
            sync_timeout: Duration::from_secs(3),
            queue_capacity: 4,
            ..Default::default()
        },
    );
    s.to_host.push(b"\r\n+CMQTTCONNLOST: 0,2\r\n");
    for i in 0..20 {
        s.to_host.push(format!("\r\n+UNKNOWN: {i}\r\n").as_bytes());
    }
    assert!(wait_until(Duration::from_secs(5), || modem.health().losses
        [0]
        == 1));
    std::thread::sleep(Duration::from_millis(100));
    let evs = drain_events(&modem, Duration::from_millis(100));
    assert!(
        evs.iter().any(|e| matches!(
            e,
            Event::ConnectionLost {
                client: 0,
                cause: 2
            }
        )),
        "{evs:?}"
    );
    assert!(
        evs.iter().any(|e| matches!(e, Event::Overflow { .. })),
        "{evs:?}"
    );
}

/// Before: after a modem restart, dropping (or releasing) the old `Client` cleared the
/// callbacks that the newly acquired client of the same index had installed.
#[test]
fn a_stale_handle_does_not_clear_the_new_handles_callbacks() {
    for how in ["drop", "release"] {
        let s = Scripted::start("A7600E-H", a76);
        let modem = open(&s);
        modem.start().unwrap();
        let old = modem.client(0, "dev", false).unwrap();
        let old_got = Arc::new(AtomicBool::new(false));
        let og = old_got.clone();
        old.on_message(move |_| og.store(true, Ordering::SeqCst));

        s.to_host.push(b"\r\nRDY\r\n");
        assert!(wait_until(Duration::from_secs(5), || old.is_stale()));
        modem.start().unwrap();
        let new = modem.client(0, "dev", false).unwrap();
        let new_got = Arc::new(Mutex::new(Vec::new()));
        let ng = new_got.clone();
        new.on_message(move |m| ng.lock().unwrap().push(m.payload.clone()));

        match how {
            "drop" => drop(old),
            _ => old.release().unwrap(),
        }
        s.to_host.push(message(0, "t", "after").as_bytes());
        assert!(
            wait_until(Duration::from_secs(5), || !new_got
                .lock()
                .unwrap()
                .is_empty()),
            "{how}: the new handle's callback was cleared by the stale one"
        );
        assert_eq!(new_got.lock().unwrap()[0], b"after");
        assert!(!old_got.load(Ordering::SeqCst));
        assert_eq!(new.pending_messages(), 0);
    }
}

/// Replacing a callback returns only once the replaced one has returned; clearing from inside
/// the callback itself does not wait (it would wait for itself).
#[test]
fn replacing_a_callback_waits_for_the_old_one_and_a_callback_may_clear_itself() {
    let s = Scripted::start("A7600E-H", a76);
    let modem = Arc::new(open(&s));
    modem.start().unwrap();
    let client = Arc::new(modem.client(0, "dev", false).unwrap());
    let inside = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let (i, f) = (inside.clone(), finished.clone());
    client.on_message(move |_| {
        i.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(300));
        f.store(true, Ordering::SeqCst);
    });
    s.to_host.push(message(0, "t", "1").as_bytes());
    assert!(wait_until(Duration::from_secs(5), || inside.load(Ordering::SeqCst)));
    client.on_message(|_| {});
    assert!(
        finished.load(Ordering::SeqCst),
        "on_message returned while the replaced callback was still running"
    );

    let c = client.clone();
    let m = modem.clone();
    let cleared = Arc::new(AtomicBool::new(false));
    let cl = cleared.clone();
    client.on_message(move |_| {
        assert!(m.in_callback() && cmqtt::in_callback());
        c.clear_callbacks();
        cl.store(true, Ordering::SeqCst);
    });
    s.to_host.push(message(0, "t", "2").as_bytes());
    assert!(wait_until(Duration::from_secs(5), || cleared.load(Ordering::SeqCst)));
    assert!(!modem.in_callback() && !cmqtt::in_callback());
    // Cleared: the next message is queued for recv.
    s.to_host.push(message(0, "t", "3").as_bytes());
    let m = client.recv_timeout(Duration::from_secs(5)).expect("queued");
    assert_eq!(m.payload, b"3");
}

/// Wildcards and NUL in a publish topic, and malformed filters, are refused before a byte is
/// sent (a broker closes the connection over them, and every retry would do the same).
#[test]
fn topics_are_checked_before_anything_is_sent() {
    let s = Scripted::start("A7600E-H", a76);
    let modem = open(&s);
    modem.start().unwrap();
    let client = modem.client(0, "dev", false).unwrap();
    client
        .connect(&ConnectOptions::new("tcp://h:1883"))
        .unwrap();
    let before = s.commands().len();
    for t in [&b"a/+"[..], b"a/#", b"a\0b"] {
        let e = client
            .publish(t, b"x", 1, false, Duration::from_secs(60))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        assert!(e.to_string().contains("must not contain"), "{e}");
    }
    for f in ["a/#/b", "a/b#", "x+/y"] {
        let e = client.subscribe(&[(f, 1)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        let e = client.unsubscribe(&[f]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    }
    let e = client.set_will("will/+", b"bye", 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert_eq!(s.commands().len(), before, "{:?}", &s.commands()[before..]);
    // Valid ones still go through.
    client.subscribe(&[("a/+/c", 1), ("d/#", 0)]).unwrap();
    client
        .publish("a/b/c", b"x", 1, false, Duration::from_secs(60))
        .unwrap();
}

/// Waiting for a health change sleeps until the reader records one.
#[test]
fn health_changes_wake_waiters_and_listeners() {
    let s = Scripted::start("A7600E-H", a76);
    let modem = open(&s);
    let told = Arc::new(AtomicUsize::new(0));
    let t = told.clone();
    let id = modem.add_health_listener(move || {
        t.fetch_add(1, Ordering::SeqCst);
    });
    let seq = modem.health().seq;
    let m2 = modem.clone();
    let waiter = std::thread::spawn(move || m2.wait_health_change(seq, Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(50));
    s.to_host.push(b"\r\n+CMQTTNONET\r\n");
    let h = waiter.join().unwrap();
    assert_eq!(h.no_network, 1);
    assert!(told.load(Ordering::SeqCst) >= 1);
    modem.remove_health_listener(id);
    s.to_host.push(b"\r\nRDY\r\n");
    assert!(wait_until(Duration::from_secs(5), || modem
        .health()
        .restarts
        == 1));
    assert_eq!(told.load(Ordering::SeqCst), 1);
}

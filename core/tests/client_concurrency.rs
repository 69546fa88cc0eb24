//! Two clients from two threads, callbacks on the dispatch thread (publishing from inside one),
//! connection-lost callbacks, and bounded queues whose overflow is reported.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmqtt::{ConnectOptions, Event, Message, ModemOptions, OverflowPolicy};
use parking_lot::Mutex;
use support::*;

fn server() -> ConnectOptions {
    ConnectOptions::new("tcp://test.mosquitto.org:1883")
}

fn minute() -> Duration {
    Duration::from_secs(60)
}

fn rx(client: u8, topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "\r\n+CMQTTRXSTART: {client},{},{}\r\n+CMQTTRXTOPIC: {client},{}\r\n{topic}\r\n",
        topic.len(),
        payload.len(),
        topic.len()
    )
    .into_bytes();
    if !payload.is_empty() {
        v.extend_from_slice(format!("+CMQTTRXPAYLOAD: {client},{}\r\n", payload.len()).as_bytes());
        v.extend_from_slice(payload);
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(format!("+CMQTTRXEND: {client}\r\n").as_bytes());
    v
}

#[test]
fn client_1_publishes_while_client_0_waits_for_its_result() {
    let (pub0_tx, pub0_rx) = mpsc::channel::<Pipe>();
    let s = Scripted::start("A7600E-H", move |l, m| {
        if l.starts_with("AT+CMQTTPUB=0,") {
            // OK now; "+CMQTTPUB: 0,0" only when the test says so.
            m.say("\r\nOK\r\n");
            pub0_tx.send(m.to_host()).unwrap();
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    fast(&modem, 100, 2000);
    let c0 = Arc::new(modem.client(0, "zero", false).unwrap());
    let c1 = Arc::new(modem.client(1, "one", false).unwrap());
    c0.connect(&server()).unwrap();
    c1.connect(&server()).unwrap();

    let (done0_tx, done0_rx) = mpsc::channel();
    let c0b = c0.clone();
    let t0 = std::thread::spawn(move || {
        let r = c0b.publish("zero/t", b"slow", 1, false, minute());
        done0_tx.send(r).unwrap();
    });
    let pipe = pub0_rx
        .recv_timeout(Duration::from_secs(3))
        .expect("client 0's PUB was sent");

    // Client 1 works meanwhile, from another thread, several times.
    let c1b = c1.clone();
    let t1 = std::thread::spawn(move || {
        for i in 0..3 {
            c1b.publish("one/t", format!("fast {i}").as_bytes(), 1, false, minute())
                .unwrap();
        }
        c1b.subscribe(&[("one/#", 1)]).unwrap();
    });
    let started = Instant::now();
    t1.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        done0_rx.try_recv().is_err(),
        "client 0's publish finished before its result line"
    );

    // Client 0's result line, with a message for client 1 just before it.
    pipe.push(&rx(1, "one/x", b"\r\nOK\r\n"));
    pipe.push(b"\r\n+CMQTTPUB: 0,0\r\n");
    let r = done0_rx
        .recv_timeout(Duration::from_secs(2))
        .expect("client 0's publish completes once its result line comes");
    r.unwrap();
    t0.join().unwrap();
    let m = c1.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(
        (&m.topic[..], &m.payload[..]),
        (&b"one/x"[..], &b"\r\nOK\r\n"[..])
    );

    // The transactions did not interleave: each client's TOPIC, PAYLOAD, PUB are consecutive.
    let cmds = s.commands();
    for (i, c) in cmds.iter().enumerate() {
        if let Some(rest) = c.strip_prefix("AT+CMQTTTOPIC=") {
            let idx = &rest[..1];
            assert!(
                cmds[i + 1].starts_with(&format!("AT+CMQTTPAYLOAD={idx},")),
                "{cmds:?}"
            );
            assert!(
                cmds[i + 2].starts_with(&format!("AT+CMQTTPUB={idx},")),
                "{cmds:?}"
            );
        }
    }
    assert_eq!(
        cmds.iter()
            .filter(|c| c.starts_with("AT+CMQTTPUB=1,"))
            .count(),
        3
    );
}

#[test]
fn same_client_from_two_threads_is_serialised() {
    let s = Scripted::start("A7600E-H", a76);
    let modem = open(&s);
    let c = Arc::new(modem.client(0, "same", false).unwrap());
    c.connect(&server()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..5 {
                    let topic = format!("t{t}");
                    let payload = format!("{t}-{i}");
                    c.publish(&topic, payload.as_bytes(), 0, false, minute())
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Every publish's topic and payload went out together, never mixed with another's.
    let data = s.data.lock().clone();
    assert_eq!(data.len(), 40);
    for pair in data.chunks(2) {
        let topic = String::from_utf8(pair[0].clone()).unwrap();
        let payload = String::from_utf8(pair[1].clone()).unwrap();
        assert_eq!(&topic[1..], &payload[..1], "{topic} / {payload}");
    }
}

#[test]
fn on_message_runs_on_the_dispatch_thread_and_may_publish() {
    let s = Scripted::start("A7600E-H", |l, m| {
        if l == "AT+CMQTTSUB=0,5,1,0" {
            m.prompt(5);
            // A retained message between OK and the result line.
            m.say("\r\nOK\r\n");
            m.send(&rx(0, "cmd/1", b"ping"));
            m.say("\r\n+CMQTTSUB: 0,0\r\n");
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    let c = Arc::new(modem.client(0, "cb", false).unwrap());
    c.connect(&server()).unwrap();
    let (tx, rx_) = mpsc::channel();
    let weak = Arc::downgrade(&c);
    let test_thread = std::thread::current().id();
    c.on_message(move |m: &Message| {
        let here = std::thread::current();
        let c = weak.upgrade().expect("client alive");
        // Publishing from inside the callback: no deadlock.
        let r = c.publish("reply/1", &m.payload, 1, false, Duration::from_secs(60));
        tx.send((
            here.id() != test_thread,
            here.name().map(str::to_string),
            m.clone(),
            r.is_ok(),
        ))
        .unwrap();
    });
    c.subscribe(&[("cmd/#", 1)]).unwrap();
    let (other_thread, name, m, published) = rx_
        .recv_timeout(Duration::from_secs(3))
        .expect("callback ran and its publish returned");
    assert!(other_thread);
    assert_eq!(name.as_deref(), Some("cmqtt-dispatch"));
    assert_eq!(
        (&m.topic[..], &m.payload[..]),
        (&b"cmd/1"[..], &b"ping"[..])
    );
    assert!(published);
    assert!(s.commands().contains(&"AT+CMQTTTOPIC=0,7".to_string()));
    assert_eq!(s.data.lock().last().unwrap(), b"ping");
    // With a callback, messages do not also go to the queue.
    assert!(c.try_recv().is_none());
    // Without it, they do.
    c.clear_callbacks();
    s.to_host.push(&rx(0, "cmd/2", b"queued"));
    let m = c.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(m.payload, b"queued");
}

#[test]
fn on_connection_lost_is_called_exactly_once_per_loss() {
    let s = Scripted::start("A7600E-H", a76);
    let modem = open(&s);
    let c0 = modem.client(0, "a", false).unwrap();
    let c1 = modem.client(1, "b", false).unwrap();
    c0.connect(&server()).unwrap();
    c1.connect(&server()).unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let calls2 = calls.clone();
    c0.on_connection_lost(move |i, cause| calls2.lock().push((i, cause)));
    let n1 = Arc::new(AtomicUsize::new(0));
    let n1b = n1.clone();
    c1.on_connection_lost(move |_, _| {
        n1b.fetch_add(1, Ordering::SeqCst);
    });
    s.to_host.push(b"\r\n+CMQTTCONNLOST: 0,1\r\n");
    let (found, _) = wait_event(&modem, Duration::from_secs(2), |e| {
        *e == Event::ConnectionLost {
            client: 0,
            cause: 1,
        }
    });
    assert!(found.is_some());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(*calls.lock(), vec![(0, 1)]);
    assert_eq!(n1.load(Ordering::SeqCst), 0);
    assert!(!c0.is_connected());
    assert!(c1.is_connected());

    // Reconnect, lose it again: one more call.
    c0.connect(&server()).unwrap();
    s.to_host.push(b"\r\n+CMQTTCONNLOST: 0,3\r\n");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(*calls.lock(), vec![(0, 1), (0, 3)]);
    assert_eq!(n1.load(Ordering::SeqCst), 0);
}

#[test]
fn full_message_queue_reports_overflow() {
    let s = Scripted::start("A7600E-H", a76);
    let opts = ModemOptions {
        sync_timeout: Duration::from_secs(3),
        queue_capacity: 2,
        ..Default::default()
    };
    let modem = open_with(&s, opts);
    let c = modem.client(0, "q", false).unwrap();
    for i in 0..5u8 {
        s.to_host.push(&rx(0, "q", &[b'0' + i]));
    }
    // Wait until all five were assembled.
    let deadline = Instant::now() + Duration::from_secs(3);
    while c.dropped_messages() < 3 {
        assert!(
            Instant::now() < deadline,
            "dropped {}",
            c.dropped_messages()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(c.dropped_messages(), 3);
    assert_eq!(c.pending_messages(), 2);
    // Oldest dropped: the last two remain.
    assert_eq!(c.try_recv().unwrap().payload, b"3");
    assert_eq!(c.try_recv().unwrap().payload, b"4");
    assert!(c.try_recv().is_none());
    // Reported, not silent. (The event queue holds 2 as well: the newest reports remain.)
    let ev = drain_events(&modem, Duration::from_millis(50));
    let overflows: Vec<u64> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Overflow {
                queue: "client 0 messages",
                dropped,
            } => Some(*dropped),
            _ => None,
        })
        .collect();
    assert_eq!(overflows, vec![2, 3], "{ev:?}");
    assert_eq!(modem.dropped_events(), 1);
}

#[test]
fn drop_newest_policy_keeps_the_first_messages() {
    let s = Scripted::start("A7600E-H", a76);
    let opts = ModemOptions {
        sync_timeout: Duration::from_secs(3),
        queue_capacity: 1,
        overflow: OverflowPolicy::DropNewest,
        ..Default::default()
    };
    let modem = open_with(&s, opts);
    let c = modem.client(1, "q", false).unwrap();
    for i in 0..3u8 {
        s.to_host.push(&rx(1, "n", &[b'a' + i]));
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while c.dropped_messages() < 2 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(c.try_recv().unwrap().payload, b"a");
    assert!(c.try_recv().is_none());
    let (found, _) = wait_event(&modem, Duration::from_secs(1), |e| {
        matches!(
            e,
            Event::Overflow {
                queue: "client 1 messages",
                ..
            }
        )
    });
    assert!(found.is_some());
}

#[test]
fn on_event_callback_replaces_the_event_queue() {
    let s = Scripted::start("A7600E-H", a76);
    let modem = open(&s);
    let (tx, rx_) = mpsc::channel();
    modem.on_event(move |e| tx.send(e.clone()).unwrap());
    s.to_host.push(b"\r\n+CMQTTNONET\r\n\r\nSOMETHING ELSE\r\n");
    assert_eq!(
        rx_.recv_timeout(Duration::from_secs(2)).unwrap(),
        Event::NoNetwork
    );
    assert_eq!(
        rx_.recv_timeout(Duration::from_secs(2)).unwrap(),
        Event::Unsolicited("SOMETHING ELSE".into())
    );
    assert!(modem.recv_event(Duration::from_millis(50)).is_none());
    modem.clear_on_event();
    s.to_host.push(b"\r\nAGAIN\r\n");
    assert_eq!(
        modem.recv_event(Duration::from_secs(2)),
        Some(Event::Unsolicited("AGAIN".into()))
    );
}

#[test]
fn a_panicking_callback_does_not_stop_delivery() {
    let s = Scripted::start("A7600E-H", a76);
    let modem = open(&s);
    let c = modem.client(0, "p", false).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    c.on_message(move |m| {
        seen2.lock().push(m.payload.clone());
        if m.payload == b"boom" {
            panic!("callback panics on purpose");
        }
    });
    s.to_host.push(&rx(0, "x", b"boom"));
    s.to_host.push(&rx(0, "x", b"after"));
    let deadline = Instant::now() + Duration::from_secs(3);
    while seen.lock().len() < 2 {
        assert!(Instant::now() < deadline, "{:?}", seen.lock());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(*seen.lock(), vec![b"boom".to_vec(), b"after".to_vec()]);
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
}

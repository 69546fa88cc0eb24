//! MQTT behaviour through the whole stack: QoS, retain, will, both clients, large binary
//! payloads both ways, payloads that look like AT output.

use std::time::Duration;

use cmqtt_e2e::*;

#[test]
fn qos_0_1_2_reach_an_independent_subscriber() {
    let rig = Rig::new(SimModel::A7600);
    let c = rig.connected(0, "qos-pub");
    let mut peer = Subscriber::start(&rig.broker, &["q/#"], 2);
    for qos in 0..=2u8 {
        let topic = format!("q/{qos}");
        let payload = format!("payload at qos {qos}");
        c.publish(&topic, payload.as_bytes(), qos, false, PUB)
            .unwrap();
        let r = expect_one(&mut peer, &topic);
        assert_eq!(r.topic, topic.as_bytes());
        assert_eq!(r.payload, payload.as_bytes());
        assert_eq!(r.qos, qos, "the broker delivered at another QoS");
    }
}

#[test]
fn qos_1_and_2_received_from_an_independent_publisher() {
    let rig = Rig::new(SimModel::Sim7600);
    let c = rig.connected(0, "qos-sub");
    c.subscribe(&[("in/1", 1), ("in/2", 2)]).unwrap();
    publish(&rig.broker, "in/1", b"one", 1, false);
    publish(&rig.broker, "in/2", b"two", 2, false);
    let mut got: Vec<_> = (0..2)
        .map(|_| c.recv_timeout(Duration::from_secs(10)).expect("message"))
        .map(|m| (m.topic, m.payload))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (b"in/1".to_vec(), b"one".to_vec()),
            (b"in/2".to_vec(), b"two".to_vec())
        ]
    );
}

#[test]
fn retained_message_is_seen_by_a_late_subscriber() {
    let rig = Rig::new(SimModel::A7600);
    let c = rig.connected(0, "retainer");
    c.publish("state/door", b"open", 1, true, PUB).unwrap();
    // Independent late subscriber.
    let mut late = Subscriber::start(&rig.broker, &["state/door"], 1);
    let r = expect_one(&mut late, "retained");
    assert!(r.retained, "the late subscriber's copy must carry RETAIN");
    assert_eq!(r.payload, b"open");
    // And our own late subscription gets it too (it arrives around the SUB result line).
    let c1 = rig.connected(1, "late-sub");
    c1.subscribe(&[("state/door", 1)]).unwrap();
    let m = c1
        .recv_timeout(Duration::from_secs(10))
        .expect("retained on client 1");
    assert_eq!(m.payload, b"open");
}

#[test]
fn both_clients_connected_at_once() {
    let rig = Rig::new(SimModel::Sim7672x);
    let a = rig.connected(0, "client-a");
    let b = rig.connected(1, "client-b");
    a.subscribe(&[("to/a", 1)]).unwrap();
    b.subscribe(&[("to/b", 1)]).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..5 {
                a.publish("to/b", format!("a{i}").as_bytes(), 1, false, PUB)
                    .unwrap();
            }
        });
        s.spawn(|| {
            for i in 0..5 {
                b.publish("to/a", format!("b{i}").as_bytes(), 1, false, PUB)
                    .unwrap();
            }
        });
    });
    let at_a: Vec<_> = (0..5)
        .map(|_| {
            a.recv_timeout(Duration::from_secs(10))
                .expect("a receives")
                .payload
        })
        .collect();
    let at_b: Vec<_> = (0..5)
        .map(|_| {
            b.recv_timeout(Duration::from_secs(10))
                .expect("b receives")
                .payload
        })
        .collect();
    assert_eq!(
        at_a,
        (0..5)
            .map(|i| format!("b{i}").into_bytes())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        at_b,
        (0..5)
            .map(|i| format!("a{i}").into_bytes())
            .collect::<Vec<_>>()
    );
    assert!(a.try_recv().is_none() && b.try_recv().is_none());
}

#[test]
fn will_is_delivered_on_abnormal_drop_and_not_on_clean_disconnect() {
    let rig = Rig::new(SimModel::A7600);
    let mut watcher = Subscriber::start(&rig.broker, &["will/#"], 1);
    // Clean disconnect: no will.
    let c = rig.modem.client(0, "will-clean", false).unwrap();
    c.set_will("will/clean", b"gone-clean", 1).unwrap();
    c.connect(&rig.connect_opts()).unwrap();
    c.disconnect(Duration::from_secs(60)).unwrap();
    c.release().unwrap();
    assert!(
        watcher.next(Duration::from_secs(2)).is_none(),
        "a will was published on a clean disconnect"
    );
    // Abnormal drop: the will arrives, and the host hears about the loss exactly once.
    let c = rig.modem.client(0, "will-drop", false).unwrap();
    c.set_will("will/drop", b"gone-hard", 1).unwrap();
    c.connect(&rig.connect_opts()).unwrap();
    rig.sim.faults().drop_connection(0, 2);
    let r = expect_one(&mut watcher, "the will");
    assert_eq!(
        (r.topic.as_slice(), r.payload.as_slice()),
        (&b"will/drop"[..], &b"gone-hard"[..])
    );
    let e = rig
        .modem
        .recv_event(Duration::from_secs(5))
        .expect("an event");
    assert_eq!(
        e,
        cmqtt::Event::ConnectionLost {
            client: 0,
            cause: 2
        }
    );
    assert!(!c.is_connected());
}

fn big_payload_both_ways(model: SimModel, size: usize) {
    let rig = Rig::new(model);
    let c = rig.connected(0, "big");
    c.set_check_utf8(false).ok();
    c.subscribe(&[("big/in", 1)]).unwrap();
    let mut peer = Subscriber::start(&rig.broker, &["big/out"], 1);
    let payload = all_bytes(size);
    c.publish("big/out", &payload, 1, false, PUB).unwrap();
    let r = expect_one(&mut peer, "big publish");
    assert_eq!(r.payload.len(), size);
    assert_eq!(r.payload, payload);
    let mut reversed = payload.clone();
    reversed.reverse();
    publish(&rig.broker, "big/in", &reversed, 1, false);
    let m = c
        .recv_timeout(Duration::from_secs(15))
        .expect("big message in");
    assert_eq!(m.payload.len(), size);
    assert_eq!(m.payload, reversed, "received payload differs");
    // One size over the model's maximum is refused before anything is sent.
    let over = all_bytes(size + 1);
    let e = c.publish("big/out", &over, 1, false, PUB).unwrap_err();
    assert!(e.to_string().contains(&format!("1..={size}")), "{e}");
    assert!(peer.next(Duration::from_millis(500)).is_none());
}

#[test]
fn payload_10240_bytes_both_ways_a7600() {
    big_payload_both_ways(SimModel::A7600, 10240);
}

#[test]
fn payload_4096_bytes_both_ways_sim7672x() {
    big_payload_both_ways(SimModel::Sim7672x, 4096);
}

#[test]
fn received_10240_bytes_on_sim7672x_in_small_chunks() {
    // The SIM7672X publishes at most 4096 bytes but receives up to 10240, in chunks.
    let rig = Rig::with(SimModel::Sim7672x, BrokerOptions::default(), |c| {
        c.rx_chunk = 700
    });
    let c = rig.connected(0, "rx-big");
    c.subscribe(&[("rx/big", 1)]).unwrap();
    let payload = all_bytes(10240);
    publish(&rig.broker, "rx/big", &payload, 1, false);
    let m = c
        .recv_timeout(Duration::from_secs(15))
        .expect("10240-byte message");
    assert_eq!(m.payload, payload);
}

#[test]
fn payload_that_looks_like_at_output_arrives_intact() {
    for model in [SimModel::A7600, SimModel::Sim7600] {
        let rig = Rig::new(model);
        let c = rig.connected(0, "tricky");
        c.subscribe(&[("tricky", 1)]).unwrap();
        let evil: &[u8] =
            b"\r\n+CMQTTRXEND: 0\r\nOK\r\n\r\nERROR\r\n+CMQTTCONNLOST: 0,1\r\n>\x00\xff\r\n";
        c.set_check_utf8(false).unwrap();
        c.publish("tricky", evil, 1, false, PUB).unwrap();
        let m = c
            .recv_timeout(Duration::from_secs(10))
            .expect("tricky message");
        assert_eq!(m.payload, evil);
        // Nothing leaked out of the payload as a fake event.
        assert!(rig.modem.recv_event(Duration::from_millis(300)).is_none());
        assert!(c.is_connected());
    }
}

//! Every validation and modem error surfaces typed, and the session stays usable after it.

use std::time::Duration;

use cmqtt::{ErrCode, Error};
use cmqtt_e2e::*;

fn assert_usable(rig: &Rig) {
    assert!(
        rig.modem.service_running(),
        "the session is not usable any more"
    );
}

#[test]
fn validation_errors_send_nothing_and_name_the_range() {
    let rig = Rig::new(SimModel::A7600);
    let c = rig.connected(0, "validator");
    let (_, sent_before) = rig.modem.byte_counts();
    let cases: Vec<(Error, &str)> = vec![
        (c.publish("t", b"x", 3, false, PUB).unwrap_err(), "qos"),
        (c.publish("", b"x", 0, false, PUB).unwrap_err(), "1..=1024"),
        (
            c.publish("t".repeat(1025), b"x", 0, false, PUB)
                .unwrap_err(),
            "1..=1024",
        ),
        (
            c.publish("t", &vec![0u8; 10241], 0, false, PUB)
                .unwrap_err(),
            "1..=10240",
        ),
        (
            c.publish("t", b"x", 0, false, Duration::from_secs(59))
                .unwrap_err(),
            "60..=180",
        ),
        (
            c.publish("t", b"x", 0, false, Duration::from_secs(181))
                .unwrap_err(),
            "60..=180",
        ),
        (c.subscribe(&[("t", 5)]).unwrap_err(), "qos"),
        (
            c.set_will("w", &vec![b'x'; 1025], 0).unwrap_err(),
            "1..=1024",
        ),
        (c.set_op_timeout(10).unwrap_err(), "20..=120"),
        (rig.modem.client(2, "x", false).unwrap_err(), "0 or 1"),
        (
            rig.modem.client(1, &"x".repeat(129), false).unwrap_err(),
            "1..=128",
        ),
        (
            rig.modem.client(1, "quote\"d", false).unwrap_err(),
            "escape",
        ),
    ];
    for (e, needle) in &cases {
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
        assert!(
            e.to_string().contains(needle),
            "{e:?} should mention {needle}"
        );
    }
    // mqtt:// and bare hosts are taken (the modem is sent tcp://); other schemes are not.
    let mut bad = ConnectOptions::new("http://127.0.0.1:1883");
    bad.keepalive = 60;
    let c1 = rig.modem.client(1, "c1", false).unwrap();
    let (_, after_accq) = rig.modem.byte_counts();
    assert!(c1
        .connect(&bad)
        .unwrap_err()
        .to_string()
        .contains("[tcp|mqtt|mqtts|ssl]://"));
    // mqtts:// needs a TLS client.
    let e = c1
        .connect(&ConnectOptions::new("mqtts://127.0.0.1"))
        .unwrap_err();
    assert!(e.to_string().contains("acquire it with TLS"), "{e}");
    let mut bad = rig.connect_opts();
    bad.keepalive = 0;
    assert!(c1
        .connect(&bad)
        .unwrap_err()
        .to_string()
        .contains("1..=64800"));
    assert_eq!(
        rig.modem.byte_counts().1,
        after_accq,
        "a refused argument reached the modem"
    );
    assert!(after_accq > sent_before);
    assert_usable(&rig);
}

#[test]
fn modem_errors_carry_their_code() {
    let rig = Rig::new(SimModel::A7600);
    let c0 = rig.modem.client(0, "first", false).unwrap();
    // The same index twice: client is used.
    let e = rig.modem.client(0, "again", false).unwrap_err();
    assert!(
        e.modem_code().is_some() || matches!(e, Error::Modem { .. }),
        "{e}"
    );
    // Publishing before connecting: the library refuses (not connected).
    let e = c0.publish("t", b"x", 1, false, PUB).unwrap_err();
    assert!(matches!(e, Error::NotConnected { client: 0 }), "{e}");
    // Wrong credentials against a broker with a password file.
    drop(c0);
    let rig2 = Rig::with(
        SimModel::A7600,
        BrokerOptions {
            users: vec![("alice".into(), "right".into())],
            ..Default::default()
        },
        |_| {},
    );
    let c = rig2.modem.client(0, "alice-dev", false).unwrap();
    let o = rig2.connect_opts().credentials("alice", "wrong");
    let e = c.connect(&o).unwrap_err();
    assert!(
        matches!(
            e.err_code(),
            Some(ErrCode::RefusedBadCredentials) | Some(ErrCode::RefusedNotAuthorized)
        ),
        "{e}"
    );
    assert!(
        !e.to_string().contains("wrong"),
        "the password leaked into an error: {e}"
    );
    let o = rig2.connect_opts().credentials("alice", "right");
    c.connect(&o).unwrap();
    c.publish("t", b"ok", 1, false, PUB).unwrap();
    assert_usable(&rig);
}

#[test]
fn starting_twice_is_not_an_error() {
    let rig = Rig::new(SimModel::A7600);
    assert!(
        !rig.modem.start().unwrap(),
        "second start should report 'already running'"
    );
    assert_usable(&rig);
}

#[test]
fn unsupported_forms_per_model() {
    let rig = Rig::new(SimModel::A7600);
    assert!(matches!(
        rig.modem
            .client(0, "c", false)
            .unwrap()
            .subscriptions()
            .unwrap_err(),
        Error::Unsupported(_)
    ));
    let rig = Rig::new(SimModel::Sim7672x);
    let c = rig.connected(0, "lister");
    c.subscribe(&[("a/b", 1)]).unwrap();
    let subs = c.subscriptions().unwrap();
    assert!(subs.iter().any(|t| t == b"a/b"), "{subs:?}");
}

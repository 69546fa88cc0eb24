//! Hostile arguments and a modem that swallows commands: capacities beyond the maximum, baud 0,
//! `Duration::MAX` waits, and `Modem::interrupt` ending a wait at once (the Ctrl-C path).

mod support;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use cmqtt::supervise::{Endpoint, SupervisorConfig};
use cmqtt::{ConnectOptions, Error, Event, ModemOptions, MAX_QUEUE_CAPACITY};
use support::*;

fn invalid(e: &Error, param: &str) -> String {
    match e {
        Error::InvalidArgument { param: p, reason } if *p == param => reason.clone(),
        other => panic!("expected InvalidArgument {param}, got {other:?}"),
    }
}

#[test]
fn queue_capacity_beyond_the_maximum_is_a_typed_error() {
    for cap in [MAX_QUEUE_CAPACITY + 1, 1 << 32, usize::MAX] {
        let s = Scripted::start("A7600E-H", a76);
        let (r, w) = s.host_io();
        let opts = ModemOptions {
            queue_capacity: cap,
            sync_timeout: Duration::from_secs(3),
            ..Default::default()
        };
        let e = cmqtt::Modem::with_transport(r, w, opts).expect_err("capacity refused");
        let reason = invalid(&e, "queue_capacity");
        assert!(reason.contains("1048576"), "says the limit: {reason}");
        assert!(
            reason.contains(&cap.to_string()),
            "says the value: {reason}"
        );
    }
    // The maximum itself is fine.
    let s = Scripted::start("A7600E-H", a76);
    let modem = open_with(
        &s,
        ModemOptions {
            queue_capacity: MAX_QUEUE_CAPACITY,
            sync_timeout: Duration::from_secs(3),
            ..Default::default()
        },
    );
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
}

#[test]
fn supervisor_capacities_beyond_the_maximum_are_refused() {
    let base = || {
        SupervisorConfig::new(
            Endpoint::Serial {
                path: "/dev/null".into(),
                baud: 115200,
            },
            "id",
            "tcp://127.0.0.1:1883",
        )
    };
    base().validate().expect("the defaults are valid");
    let mut c = base();
    c.queue_capacity = 1 << 32;
    invalid(&c.validate().unwrap_err(), "queue_capacity");
    let mut c = base();
    c.outbox.capacity = usize::MAX;
    invalid(&c.validate().unwrap_err(), "outbox capacity");
    let mut c = base();
    c.modem.queue_capacity = MAX_QUEUE_CAPACITY + 1;
    invalid(&c.validate().unwrap_err(), "modem queue_capacity");
}

#[test]
fn baud_zero_is_a_typed_error() {
    let e = cmqtt::Modem::open("/dev/null", 0).expect_err("baud 0 refused");
    let reason = invalid(&e, "baud");
    assert!(reason.contains("got 0"), "{reason}");
}

#[test]
fn duration_max_waits_do_not_panic() {
    let s = Scripted::start("A7600E-H", a76);
    let modem = open(&s);
    let c = modem.client(0, "forever", false).unwrap();
    let to_host = s.to_host.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        to_host.push(b"\r\n+CMQTTPING: 0,5\r\n");
        to_host.push(
            b"\r\n+CMQTTRXSTART: 0,1,1\r\n+CMQTTRXTOPIC: 0,1\r\nt\r\n+CMQTTRXPAYLOAD: 0,1\r\np\r\n+CMQTTRXEND: 0\r\n",
        );
    });
    let ev = modem.recv_event(Duration::MAX).expect("the event");
    assert!(
        matches!(ev, Event::PingFailed { client: 0, code: 5 }),
        "{ev:?}"
    );
    let m = c.recv_timeout(Duration::MAX).expect("the message");
    assert_eq!(m.payload, b"p");
    t.join().unwrap();
}

/// A modem that takes `AT+CMQTTSTART` and never answers it, and answers `AT+CMQTTCONNECT` with
/// `OK` only (the result line never comes).
fn swallowing() -> (Scripted, cmqtt::Modem) {
    let s = Scripted::start("A7600E-H", |l, m| {
        if l == "AT+CMQTTSTART" {
            return true;
        }
        if l.starts_with("AT+CMQTTCONNECT=") {
            m.say("\r\nOK\r\n");
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    (s, modem)
}

fn interrupt_after(modem: &cmqtt::Modem, d: Duration) -> std::thread::JoinHandle<()> {
    let m = modem.clone();
    std::thread::spawn(move || {
        std::thread::sleep(d);
        m.interrupt();
    })
}

fn assert_interrupted(r: cmqtt::Result<impl std::fmt::Debug>, command: &str) {
    match r {
        Err(Error::Io(e)) if e.kind() == ErrorKind::Interrupted => {
            assert!(e.to_string().contains(command), "{e}");
        }
        other => panic!("expected an interrupted {command}, got {other:?}"),
    }
}

#[test]
fn interrupt_ends_a_swallowed_command_at_once_and_the_session_goes_on() {
    let (_s, modem) = swallowing();
    // No command waiting: nothing happens, the next command is not affected.
    modem.interrupt();
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));

    // The modem swallowed the command: its timeout is 9 s; the interrupt ends it now.
    let t0 = Instant::now();
    let h = interrupt_after(&modem, Duration::from_millis(200));
    assert_interrupted(modem.start(), "AT+CMQTTSTART");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    h.join().unwrap();
    assert!(modem.closed_reason().is_none(), "the session stays open");
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));

    // OK came, the result line does not: the wait for the broker's answer ends too.
    let c = modem.client(0, "intr", false).unwrap();
    let mut o = ConnectOptions::new("tcp://192.0.2.1:1883");
    o.timeout = Duration::from_secs(120);
    let t0 = Instant::now();
    let h = interrupt_after(&modem, Duration::from_millis(200));
    assert_interrupted(c.connect(&o), "AT+CMQTTCONNECT");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    h.join().unwrap();
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
}

//! Client operations over the scripted modem: both result orders and the missing `OK`, every
//! failure form, URCs and boot noise inside responses, echo, the START/SUBTOPIC dialects,
//! timeouts and lost connections.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cmqtt::{ConnectOptions, ErrCode, Error, Event, Message, ModemFailure};
use parking_lot::Mutex;
use support::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Order {
    /// A76xx: `OK` then `+CMQTTxxx: ...`.
    A76,
    /// SIM7600: `+CMQTTxxx: ...` then `OK`.
    Sim7600,
    /// SIM7600G log: the result line and no `OK`.
    NoOk,
}

fn answer(order: Order, m: &ModemSide, res: &str) {
    match order {
        Order::A76 => m.say(&format!("\r\nOK\r\n\r\n{res}\r\n")),
        Order::Sim7600 => m.say(&format!("\r\n{res}\r\n\r\nOK\r\n")),
        Order::NoOk => m.say(&format!("\r\n{res}\r\n")),
    }
}

/// Answers every asynchronous command in `order`.
fn ordered(order: Order) -> impl FnMut(&str, &ModemSide) -> bool + Send + 'static {
    move |l, m| {
        let (cmd, args) = split_cmd(l);
        let idx = args.first().copied().unwrap_or("0");
        let p = cmd.get(2..).unwrap_or("");
        match (cmd, args.len()) {
            ("AT+CMQTTSTART", 0) | ("AT+CMQTTSTOP", 0) => answer(order, m, &format!("{p}: 0")),
            ("AT+CMQTTCONNECT", _)
            | ("AT+CMQTTDISC", 2)
            | ("AT+CMQTTPUB", _)
            | ("AT+CMQTTSUB", 2)
            | ("AT+CMQTTUNSUB", 2) => answer(order, m, &format!("{p}: {idx},0")),
            ("AT+CMQTTSUB", 4) | ("AT+CMQTTUNSUB", 3) => {
                m.prompt(args[1].parse().unwrap());
                answer(order, m, &format!("{p}: {idx},0"));
            }
            _ => return a76(l, m),
        }
        true
    }
}

fn server() -> ConnectOptions {
    ConnectOptions::new("tcp://test.mosquitto.org:1883")
}

fn minute() -> Duration {
    Duration::from_secs(60)
}

/// The whole client life cycle; returns how long it took.
fn life_cycle(modem: &cmqtt::Modem) -> Duration {
    let t0 = Instant::now();
    assert!(modem.start().unwrap());
    let c = modem.client(0, "client test0", false).unwrap();
    c.connect(&server()).unwrap();
    assert!(c.is_connected());
    c.subscribe(&[("simcommsg", 1)]).unwrap();
    c.subscribe(&[("a/b", 0), ("c/#", 2)]).unwrap();
    c.publish("simcommsg", b"0123456789", 1, false, minute())
        .unwrap();
    c.unsubscribe(&["simcommsg"]).unwrap();
    c.unsubscribe(&["a/b", "c/#"]).unwrap();
    c.disconnect(Duration::from_secs(120)).unwrap();
    assert!(!c.is_connected());
    c.release().unwrap();
    modem.stop().unwrap();
    t0.elapsed()
}

const LIFE_CYCLE: &[&str] = &[
    "AT+CMQTTSTART",
    "AT+CMQTTACCQ=0,\"client test0\",0",
    "AT+CMQTTCONNECT=0,\"tcp://test.mosquitto.org:1883\",60,1",
    "AT+CMQTTSUB=0,9,1,0",
    "AT+CMQTTSUBTOPIC=0,3,0",
    "AT+CMQTTSUBTOPIC=0,3,2",
    "AT+CMQTTSUB=0,0",
    "AT+CMQTTTOPIC=0,9",
    "AT+CMQTTPAYLOAD=0,10",
    "AT+CMQTTPUB=0,1,60,0,0",
    "AT+CMQTTUNSUB=0,9,0",
    "AT+CMQTTUNSUBTOPIC=0,3",
    "AT+CMQTTUNSUBTOPIC=0,3",
    "AT+CMQTTUNSUB=0,0",
    "AT+CMQTTDISC=0,120",
    "AT+CMQTTREL=0",
    "AT+CMQTTSTOP",
];

/// ResultLine commands in the life cycle (each waits the grace period when no OK comes).
const ASYNC_IN_LIFE_CYCLE: u32 = 9;

#[test]
fn a76_order_ok_then_result() {
    let s = Scripted::start("A7600E-H", ordered(Order::A76));
    let modem = open(&s);
    fast(&modem, 2000, 2000);
    let took = life_cycle(&modem);
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(s.commands(), LIFE_CYCLE);
    assert_eq!(
        s.data.lock().clone(),
        vec![
            b"simcommsg".to_vec(),
            b"a/b".to_vec(),
            b"c/#".to_vec(),
            b"simcommsg".to_vec(),
            b"0123456789".to_vec(),
            b"simcommsg".to_vec(),
            b"a/b".to_vec(),
            b"c/#".to_vec(),
        ]
    );
}

#[test]
fn sim7600_order_result_then_ok_does_not_wait_for_the_grace_period() {
    let s = Scripted::start("SIMCOM_SIM7600E-H", ordered(Order::Sim7600));
    let modem = open(&s);
    assert_eq!(modem.model(), cmqtt::Model::Sim7600);
    // A long grace: the OK must end each wait, not the grace period.
    fast(&modem, 2000, 2000);
    let took = life_cycle(&modem);
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(s.commands(), LIFE_CYCLE);
    // No OK was left over to confuse a later command.
    let ev = drain_events(&modem, Duration::from_millis(50));
    assert!(ev.is_empty(), "{ev:?}");
}

#[test]
fn result_without_ok_succeeds_after_the_grace_period() {
    let s = Scripted::start("SIMCOM_SIM7600G-H", ordered(Order::NoOk));
    let modem = open(&s);
    fast(&modem, 80, 2000);
    let took = life_cycle(&modem);
    assert!(
        took >= Duration::from_millis(80) * ASYNC_IN_LIFE_CYCLE,
        "{took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(s.commands(), LIFE_CYCLE);
}

// ---- failure forms ---------------------------------------------------------------------------

fn connect_answering(answer: &'static [u8]) -> (Scripted, cmqtt::Modem, cmqtt::Client) {
    let s = Scripted::start("A7600E-H", move |l, m| {
        if l.starts_with("AT+CMQTTCONNECT=") {
            m.send(answer);
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    fast(&modem, 200, 2000);
    let c = modem.client(0, "f", false).unwrap();
    (s, modem, c)
}

fn connect_error(answer: &'static [u8]) -> Error {
    let (_s, _modem, c) = connect_answering(answer);
    let t0 = Instant::now();
    let e = c.connect(&server()).unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(!c.is_connected());
    e
}

#[test]
fn result_code_then_error_gives_the_code() {
    let e = connect_error(b"\r\n+CMQTTCONNECT: 0,3\r\n\r\nERROR\r\n");
    assert!(
        matches!(
            &e,
            Error::Modem {
                command: "AT+CMQTTCONNECT",
                failure: ModemFailure::Code(ErrCode::SockConnectFail)
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.modem_code(), Some(3));
    assert_eq!(e.err_code(), Some(ErrCode::SockConnectFail));
    assert!(e.to_string().contains("sock connect fail"), "{e}");
}

#[test]
fn ok_then_failing_result_gives_the_code() {
    let e = connect_error(b"\r\nOK\r\n\r\n+CMQTTCONNECT: 0,30\r\n");
    assert_eq!(e.err_code(), Some(ErrCode::RefusedBadCredentials), "{e:?}");
    assert_eq!(e.modem_code(), Some(30));
    let e = connect_error(b"\r\nOK\r\n\r\n+CMQTTCONNECT: 0,99\r\n");
    assert!(
        matches!(
            e,
            Error::Modem {
                failure: ModemFailure::UnknownCode(99),
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn error_then_result_code_sim7672x_form_3() {
    // The SIM7672X note lists "ERROR" then "+CMQTTCONNECT: <idx>,<err>" as a failure form.
    let e = connect_error(b"\r\nERROR\r\n\r\n+CMQTTCONNECT: 0,32\r\n");
    assert_eq!(e.err_code(), Some(ErrCode::HandshakeFail), "{e:?}");
}

#[test]
fn bare_error_and_cme_error() {
    let e = connect_error(b"\r\nERROR\r\n");
    assert!(
        matches!(
            &e,
            Error::Modem {
                command: "AT+CMQTTCONNECT",
                failure: ModemFailure::Error
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.modem_code(), None);
    let e = connect_error(b"\r\n+CME ERROR: 58\r\n");
    assert!(
        matches!(&e, Error::Modem { failure: ModemFailure::Cme(s), .. } if s == "58"),
        "{e:?}"
    );
    assert_eq!(e.modem_code(), None);
}

#[test]
fn failure_of_a_command_with_an_error_line() {
    let s = Scripted::start("A7600E-H", |l, m| {
        match l {
            "AT+CMQTTACCQ=1,\"taken\",0" => m.say("\r\n+CMQTTACCQ: 1,19\r\n\r\nERROR\r\n"),
            "AT+CMQTTREL=0" => m.say("\r\n+CMQTTREL: 0,20\r\n\r\nERROR\r\n"),
            "AT+CMQTTSTOP" => m.say("\r\n+CMQTTSTOP: 21\r\n\r\nERROR\r\n"),
            l if l.starts_with("AT+CMQTTTOPIC=") => m.say("\r\n+CMQTTTOPIC: 0,11\r\n\r\nERROR\r\n"),
            _ => return a76(l, m),
        }
        true
    });
    let modem = open(&s);
    fast(&modem, 200, 1000);
    let e = modem.client(1, "taken", false).unwrap_err();
    assert_eq!(e.err_code(), Some(ErrCode::ClientUsed), "{e:?}");
    let c = modem.client(0, "c", false).unwrap();
    c.connect(&server()).unwrap();
    // Refused before the prompt: nothing else of the publish is sent.
    let before = s.commands().len();
    let e = c.publish("t", b"x", 0, false, minute()).unwrap_err();
    assert_eq!(e.err_code(), Some(ErrCode::NoConnection), "{e:?}");
    assert_eq!(s.commands()[before..], ["AT+CMQTTTOPIC=0,1"]);
    c.disconnect(minute()).unwrap();
    let e = c.release().unwrap_err();
    assert_eq!(e.err_code(), Some(ErrCode::ClientNotAcquired), "{e:?}");
    let e = modem.stop().unwrap_err();
    assert_eq!(e.err_code(), Some(ErrCode::ClientNotReleased), "{e:?}");
}

// ---- URCs and boot noise inside responses ------------------------------------------------------

#[test]
fn retained_message_between_ok_and_result_for_either_client() {
    let s = Scripted::start("A7600E-H", |l, m| {
        if l == "AT+CMQTTSUB=0,4,1,0" {
            assert_eq!(m.prompt(4), b"r/+/");
            m.send(b"\r\nOK\r\n\r\n+CMQTTRXSTART: 1,2,3\r\n+CMQTTRXTOPIC: 1,2\r\nr1\r\n+CMQTTRXPAYLOAD: 1,3\r\none\r\n+CMQTTRXEND: 1\r\n\r\n+CMQTTRXSTART: 0,2,6\r\n+CMQTTRXTOPIC: 0,2\r\nr0\r\n+CMQTTRXPAYLOAD: 0,6\r\n\r\nOK\r\n\r\n+CMQTTRXEND: 0\r\n\r\n+CMQTTSUB: 0,0\r\n");
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    let c0 = modem.client(0, "c0", false).unwrap();
    let c1 = modem.client(1, "c1", false).unwrap();
    c0.connect(&server()).unwrap();
    c0.subscribe(&[("r/+/", 1)]).unwrap();
    let m0 = c0.try_recv().expect("retained message for client 0");
    assert_eq!(
        m0,
        Message {
            client: 0,
            topic: b"r0".to_vec(),
            payload: b"\r\nOK\r\n".to_vec()
        }
    );
    let m1 = c1.try_recv().expect("message for client 1");
    assert_eq!(
        (m1.client, &m1.topic[..], &m1.payload[..]),
        (1, &b"r1"[..], &b"one"[..])
    );
    assert!(c0.try_recv().is_none() && c1.try_recv().is_none());
}

#[test]
fn connlost_after_failing_sub_result_before_ok() {
    let s = Scripted::start("A7600E-H", |l, m| {
        if l == "AT+CMQTTSUB=0,8,1,0" {
            m.prompt(8);
            m.say("\r\n+CMQTTSUB: 0,6\r\n\r\n+CMQTTCONNLOST: 0,1\r\n\r\nOK\r\n");
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    let c = modem.client(0, "aws", false).unwrap();
    let lost = Arc::new(Mutex::new(Vec::new()));
    let l2 = lost.clone();
    c.on_connection_lost(move |i, cause| l2.lock().push((i, cause)));
    c.connect(&server()).unwrap();
    let e = c.subscribe(&[("denied/x", 1)]).unwrap_err();
    assert_eq!(e.err_code(), Some(ErrCode::MessageReceiveFail), "{e:?}");
    assert!(!c.is_connected());
    let (found, _) = wait_event(&modem, Duration::from_secs(2), |e| {
        *e == Event::ConnectionLost {
            client: 0,
            cause: 1,
        }
    });
    assert!(found.is_some());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(*lost.lock(), vec![(0, 1)]);
    // Not connected now: a publish is refused without a byte sent.
    let before = s.commands();
    assert!(matches!(
        c.publish("t", b"x", 0, false, minute()),
        Err(Error::NotConnected { client: 0 })
    ));
    assert_eq!(s.commands(), before);
}

#[test]
fn boot_noise_inside_responses() {
    let s = Scripted::start("A7600E-H", |l, m| {
        match l {
            // Identification with noise before and after the model line.
            "AT+CGMM" => m.say("\r\nPB DONE\r\n\r\nA7670E-LASE\r\n\r\nSMS DONE\r\n\r\nOK\r\n"),
            "AT+CMQTTSTART" => m.say("\r\nOK\r\n\r\nSMS DONE\r\n\r\n+CPIN: READY\r\n\r\nPB DONE\r\n\r\n+CMQTTSTART: 0\r\n"),
            l if l.starts_with("AT+CMQTTCONNECT") => m.say("\r\n+CMQTTCONNECT: 0,0\r\n\r\n*ATREADY: 1\r\n\r\nPB DONE\r\n\r\nOK\r\n"),
            // RDY in the middle of an answer that does not wait for a result line.
            "AT+CSQ" => m.say("\r\n+CSQ: 23,0\r\n\r\nRDY\r\n\r\nOK\r\n"),
            _ => return a76(l, m),
        }
        true
    });
    let modem = open(&s);
    assert_eq!(modem.identity().model_name, "A7670E-LASE");
    assert_eq!(modem.model(), cmqtt::Model::A7600);
    assert!(modem.start().unwrap());
    let c = modem.client(0, "n", false).unwrap();
    c.connect(&server()).unwrap();
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
    let ev = drain_events(&modem, Duration::from_millis(100));
    let boot: Vec<&str> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Boot(b) => Some(b.as_str()),
            _ => None,
        })
        .collect();
    // Noise while the session opens (identification) is not news; later noise is.
    assert_eq!(
        boot,
        [
            "SMS DONE",
            "+CPIN: READY",
            "PB DONE",
            "*ATREADY: 1",
            "PB DONE"
        ]
    );
    assert!(ev.contains(&Event::ModemRestarted), "{ev:?}");
    // RDY: the modem restarted, so the host no longer believes the client is connected.
    assert!(!c.is_connected());
}

#[test]
fn rdy_between_ok_and_result_fails_the_waiting_command() {
    let s = Scripted::start("A7600E-H", |l, m| {
        if l == "AT+CMQTTSTART" {
            m.say("\r\nOK\r\n\r\nRDY\r\n");
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    fast(&modem, 100, 1000);
    let t0 = Instant::now();
    let e = modem.start().unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(matches!(&e, Error::Closed(r) if r.contains("RDY")), "{e:?}");
    // Still usable.
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
    assert!(modem.closed_reason().is_none());
}

// ---- echo ---------------------------------------------------------------------------------------

/// A modem whose echo cannot be switched off, and which also echoes the data after '>'.
fn echoing(l: &str, m: &ModemSide) -> bool {
    m.say(&format!("{l}\r"));
    let (cmd, args) = split_cmd(l);
    let prompted = matches!(
        (cmd, args.len()),
        ("AT+CMQTTTOPIC", 2) | ("AT+CMQTTPAYLOAD", 2) | ("AT+CMQTTSUB", 4)
    );
    if prompted {
        let n: usize = args[1].parse().unwrap();
        m.say("\r\n>");
        let d = m.read_data(n);
        m.send(&d);
        let idx = args[0];
        if cmd == "AT+CMQTTSUB" {
            m.say(&format!("\r\nOK\r\n\r\n+CMQTTSUB: {idx},0\r\n"));
        } else {
            m.say("\r\nOK\r\n");
        }
        return true;
    }
    match l {
        "AT" | "ATE0" => m.say("\r\nOK\r\n"),
        "AT+CGMM" => m.say("\r\nA7600E-H\r\n\r\nOK\r\n"),
        "AT+CGMR" => m.say("\r\n+CGMR: A011B05\r\n\r\nOK\r\n"),
        _ => return a76(l, m),
    }
    true
}

#[test]
fn echo_on_with_echoed_data() {
    let s = Scripted::start("A7600E-H", echoing);
    let modem = open(&s);
    assert_eq!(modem.firmware(), "A011B05");
    assert!(modem.start().unwrap());
    let c = modem.client(0, "echo", false).unwrap();
    c.connect(&server()).unwrap();
    c.subscribe(&[("simcommsg", 1)]).unwrap();
    let payload = b"OK\r\n\r\nERROR\r\n+CMQTTRXEND: 0\r\n\x00\xff";
    c.publish("echo/\r\nOK\r\n", payload, 1, false, minute())
        .unwrap();
    assert_eq!(s.data.lock()[2], payload);
    s.to_host.push(b"\r\n+CMQTTRXSTART: 0,4,2\r\n+CMQTTRXTOPIC: 0,4\r\necho\r\n+CMQTTRXPAYLOAD: 0,2\r\nOK\r\n+CMQTTRXEND: 0\r\n");
    let m = c.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!((&m.topic[..], &m.payload[..]), (&b"echo"[..], &b"OK"[..]));
    // The echoed data was skipped, not taken for unsolicited lines.
    let ev = drain_events(&modem, Duration::from_millis(100));
    assert!(ev.is_empty(), "{ev:?}");
    c.disconnect(minute()).unwrap();
}

#[test]
fn echo_switched_off_after_boot_does_not_eat_answers() {
    // Echo is on at boot (the AT and the ATE0 are echoed), then off for good. A payload that
    // looks like the modem's answer must not make the host skip that answer.
    let echo = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let s = Scripted::start("A7600E-H", move |l, m| {
        use std::sync::atomic::Ordering::SeqCst;
        if echo.load(SeqCst) {
            m.say(&format!("{l}\r"));
        }
        match l {
            "ATE0" => {
                echo.store(false, SeqCst);
                m.say("\r\nOK\r\n");
            }
            "AT" => m.say("\r\nOK\r\n"),
            _ => return a76(l, m),
        }
        true
    });
    let modem = open(&s);
    fast(&modem, 100, 1500);
    let c = modem.client(0, "e", false).unwrap();
    c.connect(&server()).unwrap();
    let t0 = Instant::now();
    c.publish("\r\nOK\r\n", b"\r\nOK\r\n", 0, false, minute())
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
}

// ---- dialects ---------------------------------------------------------------------------------

fn start_answering(start: &'static str, disc_read: &'static str) -> (Scripted, cmqtt::Modem) {
    let s = Scripted::start("A7600E-H", move |l, m| {
        match l {
            "AT+CMQTTSTART" => m.say(start),
            "AT+CMQTTDISC?" => m.say(disc_read),
            _ => return a76(l, m),
        }
        true
    });
    let modem = open(&s);
    fast(&modem, 100, 1000);
    (s, modem)
}

#[test]
fn start_when_already_started() {
    let (s, modem) = start_answering("\r\nOK\r\n\r\n+CMQTTSTART: 23\r\n", "\r\nERROR\r\n");
    assert!(!modem.start().unwrap());
    assert_eq!(s.commands(), ["AT+CMQTTSTART"]);

    let (s, modem) = start_answering("\r\n+CMQTTSTART: 23\r\n\r\nERROR\r\n", "\r\nERROR\r\n");
    assert!(!modem.start().unwrap());
    assert_eq!(s.commands(), ["AT+CMQTTSTART"]);

    // The manual: a bare ERROR when started; told apart by asking the service something.
    let (s, modem) = start_answering(
        "\r\nERROR\r\n",
        "\r\n+CMQTTDISC: 0,1\r\n+CMQTTDISC: 1,1\r\n\r\nOK\r\n",
    );
    assert!(!modem.start().unwrap());
    assert_eq!(s.commands(), ["AT+CMQTTSTART", "AT+CMQTTDISC?"]);

    // A bare ERROR and a service that does not answer: a real failure.
    let (_s, modem) = start_answering("\r\nERROR\r\n", "\r\nERROR\r\n");
    let e = modem.start().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Modem {
                command: "AT+CMQTTSTART",
                failure: ModemFailure::Error
            }
        ),
        "{e:?}"
    );

    let (_s, modem) = start_answering("\r\nOK\r\n\r\n+CMQTTSTART: 7\r\n", "\r\nOK\r\n");
    assert_eq!(
        modem.start().unwrap_err().err_code(),
        Some(ErrCode::NetworkOpenFail)
    );
}

#[test]
fn subtopic_refused_falls_back_to_one_shot_subscribes() {
    let s = Scripted::start("SIM7670G", |l, m| {
        if l.starts_with("AT+CMQTTSUBTOPIC=") {
            m.say("\r\nERROR\r\n");
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    let c = modem.client(0, "b05", false).unwrap();
    c.connect(&server()).unwrap();
    let base = s.commands().len();
    c.subscribe(&[("a/b", 1), ("cd", 2)]).unwrap();
    assert_eq!(
        s.commands()[base..],
        [
            "AT+CMQTTSUBTOPIC=0,3,1",
            "AT+CMQTTSUBTOPIC=0,3,1",
            "AT+CMQTTSUB=0,3,1,0",
            "AT+CMQTTSUB=0,2,2,0",
        ]
    );
    // Remembered: the next multi-topic subscribe goes one-shot at once.
    let base = s.commands().len();
    c.subscribe(&[("x", 0), ("y", 1)]).unwrap();
    assert_eq!(
        s.commands()[base..],
        ["AT+CMQTTSUB=0,1,0,0", "AT+CMQTTSUB=0,1,1,0"]
    );
    let d = s.data.lock().clone();
    assert_eq!(
        &d[d.len() - 4..],
        [
            b"a/b".to_vec(),
            b"cd".to_vec(),
            b"x".to_vec(),
            b"y".to_vec()
        ]
    );
}

#[test]
fn subtopic_refused_once_is_retried() {
    // SIM7600EI: "+CMQTTSUBTOPIC: 0,12" + ERROR, then the same command accepted.
    let refused = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = Scripted::start("SIMCOM_SIM7600EI", move |l, m| {
        if l.starts_with("AT+CMQTTSUBTOPIC=")
            && !refused.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            m.say("\r\n+CMQTTSUBTOPIC: 0,12\r\n\r\nERROR\r\n");
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    let c = modem.client(0, "ei", false).unwrap();
    c.connect(&server()).unwrap();
    let base = s.commands().len();
    c.subscribe(&[("a", 1), ("b", 1)]).unwrap();
    assert_eq!(
        s.commands()[base..],
        [
            "AT+CMQTTSUBTOPIC=0,1,1",
            "AT+CMQTTSUBTOPIC=0,1,1",
            "AT+CMQTTSUBTOPIC=0,1,1",
            "AT+CMQTTSUB=0,0",
        ]
    );
}

// ---- timeouts and lost connections -------------------------------------------------------------

#[test]
fn timeouts_name_the_command_and_leave_the_session_usable() {
    let sent_topic = Arc::new(Mutex::new(0));
    let st = sent_topic.clone();
    let s = Scripted::start("A7600E-H", move |l, m| {
        match l {
            "AT+CSQ" => {}                                                  // never answers
            l if l.starts_with("AT+CMQTTCONNECT=0") => m.say("\r\nOK\r\n"), // no result line
            l if l.starts_with("AT+CMQTTTOPIC=") => *st.lock() += 1,        // no prompt
            _ => return a76(l, m),
        }
        true
    });
    let modem = open(&s);
    fast(&modem, 100, 300);

    let t0 = Instant::now();
    let e = modem.signal_quality().unwrap_err();
    let took = t0.elapsed();
    assert!(
        matches!(e, Error::Timeout { command: "AT+CSQ", timeout } if timeout == Duration::from_millis(300)),
        "{e:?}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(e.to_string().contains("AT+CSQ"), "{e}");
    assert_eq!(modem.registration().unwrap(), 1);

    let c = modem.client(0, "t", false).unwrap();
    let mut o = server();
    o.timeout = Duration::from_millis(300);
    let t0 = Instant::now();
    let e = c.connect(&o).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Timeout {
                command: "AT+CMQTTCONNECT",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(!c.is_connected());
    // A late result is nobody's answer any more: it is passed on as an event.
    s.to_host.push(b"\r\n+CMQTTCONNECT: 0,0\r\n");
    let (found, _) = wait_event(
        &modem,
        Duration::from_secs(2),
        |e| matches!(e, Event::Unsolicited(u) if u == "+CMQTTCONNECT: 0,0"),
    );
    assert!(found.is_some());
    assert_eq!(modem.registration().unwrap(), 1);

    // A prompt that never comes.
    let c1 = modem.client(1, "t1", false).unwrap();
    c1.connect(&server()).unwrap();
    let t0 = Instant::now();
    let e = c1.publish("t", b"x", 0, false, minute()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Timeout {
                command: "AT+CMQTTTOPIC",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(*sent_topic.lock(), 1);
    // Nothing of the publish after the TOPIC was sent.
    assert!(!s
        .commands()
        .iter()
        .any(|c| c.starts_with("AT+CMQTTPAYLOAD")));
    assert_eq!(modem.registration().unwrap(), 1);
}

/// A PUB for client 0 answered with `first`; the test sends the rest.
fn pub_pending(first: &'static str) -> (Scripted, cmqtt::Modem, Arc<cmqtt::Client>) {
    let s = Scripted::start("A7600E-H", move |l, m| {
        if l.starts_with("AT+CMQTTPUB=0,") {
            m.say(first);
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    fast(&modem, 100, 1000);
    let c = Arc::new(modem.client(0, "p", false).unwrap());
    c.connect(&server()).unwrap();
    (s, modem, c)
}

fn wait_for_command(s: &Scripted, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !s.commands().iter().any(|c| c.starts_with(prefix)) {
        assert!(Instant::now() < deadline, "{prefix} never sent");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn connlost_while_publish_waits_for_its_result() {
    let (s, modem, c) = pub_pending("\r\nOK\r\n");
    let c2 = c.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(c2.publish("t", b"x", 1, false, minute()));
    });
    wait_for_command(&s, "AT+CMQTTPUB=0");
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        rx.try_recv().is_err(),
        "the publish did not wait for its result"
    );
    let t0 = Instant::now();
    s.to_host.push(b"\r\n+CMQTTCONNLOST: 0,1\r\n");
    let r = rx
        .recv_timeout(Duration::from_secs(2))
        .expect("publish still waiting after CONNLOST");
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert!(
        matches!(
            r,
            Err(Error::ConnectionLost {
                client: 0,
                cause: 1
            })
        ),
        "{r:?}"
    );
    assert!(!c.is_connected());
    assert!(modem.closed_reason().is_none());
}

#[test]
fn connlost_before_the_ok_of_a_publish() {
    let (_s, _modem, c) = pub_pending("\r\n+CMQTTCONNLOST: 0,2\r\n\r\nOK\r\n");
    let c2 = c.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(c2.publish("t", b"x", 1, false, minute()));
    });
    let r = rx
        .recv_timeout(Duration::from_secs(2))
        .expect("publish still waiting for a result line after CONNLOST");
    assert!(
        matches!(
            r,
            Err(Error::ConnectionLost {
                client: 0,
                cause: 2
            })
        ),
        "{r:?}"
    );
}

#[test]
fn nonet_fails_waiting_publish_and_is_reported() {
    let (s, modem, c) = pub_pending("\r\nOK\r\n");
    let c2 = c.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(c2.publish("t", b"x", 1, false, minute()));
    });
    wait_for_command(&s, "AT+CMQTTPUB=0");
    s.to_host.push(b"\r\n+CMQTTNONET\r\n");
    let r = rx
        .recv_timeout(Duration::from_secs(2))
        .expect("still waiting");
    assert!(
        matches!(r, Err(Error::ConnectionLost { client: 0, .. })),
        "{r:?}"
    );
    let (found, _) = wait_event(&modem, Duration::from_secs(1), |e| *e == Event::NoNetwork);
    assert!(found.is_some());
}

#[test]
fn ping_failure_is_an_event() {
    let s = Scripted::start("A7600E-H", a76);
    let modem = open(&s);
    s.to_host.push(b"\r\n+CMQTTPING: 1,17\r\n");
    let (found, _) = wait_event(&modem, Duration::from_secs(1), |e| {
        *e == Event::PingFailed {
            client: 1,
            code: 17,
        }
    });
    assert!(found.is_some());
}

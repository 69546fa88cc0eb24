//! Hostile conditions in the session (issue 12, items 1, 2, 4 and 7), through the public API on
//! the scripted modem:
//!
//! 1. a late answer (a command's `OK` after the host's timeout) is never taken for the next
//!    command's, and a `>` prompt that comes after its timeout is satisfied before anything else
//!    is sent;
//! 2. a length-counted block cut short by lost bytes (UART overrun) is abandoned after a short
//!    idle gap (or before the next command), reported, and the bytes held by it are read as
//!    lines, so the answers after it are read correctly;
//! 4. the connect password never shows in the trace or in an event, even when the echo of the
//!    connect line is preceded by a noise byte or sits in the middle of a line;
//! 7. a receive flood logs a handful of warnings, not one per dropped or refused message.

mod support;

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cmqtt::{ConnectOptions, Error, Event, Message, ModemOptions};
use parking_lot::Mutex;
use support::*;

fn server() -> ConnectOptions {
    ConnectOptions::new("tcp://broker.local:1883")
}

fn minute() -> Duration {
    Duration::from_secs(60)
}

fn events_now(modem: &cmqtt::Modem) -> Vec<Event> {
    drain_events(modem, Duration::from_millis(200))
}

fn malformed(ev: &[Event]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Malformed(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// A well-formed message that must be delivered after the damage.
const GOOD: &[u8] = b"\r\n+CMQTTRXSTART: 0,4,2\r\n+CMQTTRXTOPIC: 0,4\r\ngood\r\n+CMQTTRXPAYLOAD: 0,2\r\nhi\r\n+CMQTTRXEND: 0\r\n";

fn good() -> Message {
    Message {
        client: 0,
        topic: b"good".to_vec(),
        payload: b"hi".to_vec(),
    }
}

// ---- 1. late answers -----------------------------------------------------------------------

/// The reproduction of issue 12 item 1: a command times out, its `OK` comes later, and the next
/// command is a publish. Before the fix `AT+CMQTTTOPIC` took the stale `OK` as its own, never
/// sent the topic, and the modem (still at `>`) got the `AT+CMQTTPAYLOAD=...` line as topic data.
#[test]
fn a_late_ok_is_not_taken_by_the_next_command() {
    let s = Scripted::start("A7600E-H", |l, m| {
        if l == "AT+SLOW" {
            // Busy past the host's timeout; the OK comes while the next command waits.
            std::thread::sleep(Duration::from_millis(800));
            m.say("\r\nOK\r\n");
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    fast(&modem, 50, 500);
    let c = modem.client(0, "late", false).unwrap();
    c.connect(&server()).unwrap();

    let r = modem.command("AT+SLOW", "", Duration::from_millis(500));
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    let t0 = Instant::now();
    let r = c.publish("a/b", b"payload", 1, false, minute());
    eprintln!(
        "publish after the timeout (resynchronising first): {:?}",
        t0.elapsed()
    );
    // What the modem received: the topic and the payload, each whole, as prompted data.
    assert_eq!(
        *s.data.lock(),
        vec![b"a/b".to_vec(), b"payload".to_vec()],
        "prompted data as the modem read it"
    );
    r.expect("the publish after a late OK");
    let cmds = s.commands();
    let tail: Vec<&str> = cmds
        .iter()
        .map(String::as_str)
        .skip_while(|l| *l != "AT+SLOW")
        .collect();
    assert_eq!(
        tail,
        [
            "AT+SLOW",
            "AT+CMQTTTOPIC=0,3",
            "AT+CMQTTPAYLOAD=0,7",
            "AT+CMQTTPUB=0,1,60,0,0"
        ],
        "command lines as the modem read them (AT probes filtered out)"
    );
    // The session is in step again: a later command gets its own answer.
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
}

/// A data command whose `>` prompt comes after the host gave up: the modem waits for the
/// announced bytes. Before anything else is sent the session satisfies that prompt (filler
/// bytes) and resynchronises; the next publish's topic reaches the modem intact.
#[test]
fn a_prompt_that_comes_after_the_timeout_is_satisfied_before_the_next_command() {
    let first = Arc::new(AtomicBool::new(true));
    let f2 = first.clone();
    let s = Scripted::start("A7600E-H", move |l, m| {
        if l.starts_with("AT+CMQTTTOPIC=") && f2.swap(false, Ordering::SeqCst) {
            let n: usize = split_cmd(l).1[1].parse().unwrap();
            std::thread::sleep(Duration::from_millis(700));
            m.prompt(n);
            m.say("\r\nOK\r\n");
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    fast(&modem, 50, 300);
    let c = modem.client(0, "late-prompt", false).unwrap();
    c.connect(&server()).unwrap();

    let r = c.publish("a/b", b"one", 1, false, minute());
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    c.publish("a/b", b"two", 1, false, minute())
        .expect("the publish after a late prompt");
    let data = s.data.lock().clone();
    assert_eq!(data.len(), 3, "{data:?}");
    assert_eq!(data[0].len(), 3, "the late prompt got its 3 bytes");
    assert!(
        !data[0].starts_with(b"AT"),
        "a command line was taken as data: {data:?}"
    );
    assert_eq!(data[1..], [b"a/b".to_vec(), b"two".to_vec()]);
    assert!(
        s.commands()
            .iter()
            .all(|l| l.starts_with("AT") || l.is_empty()),
        "a line reached the modem mangled: {:?}",
        s.commands()
    );
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
}

/// `Duration::MAX` as a timeout means "no limit", never an `Instant` overflow.
#[test]
fn huge_timeouts_saturate() {
    let s = Scripted::start("A7600E-H", a76);
    let modem = open_with(
        &s,
        ModemOptions {
            sync_timeout: Duration::MAX,
            ..Default::default()
        },
    );
    let lines = modem.command("AT+CSQ", "+CSQ:", Duration::MAX).unwrap();
    assert_eq!(lines, vec!["+CSQ: 23,0".to_string()]);
    let mut p = modem.profile();
    p.command_timeout = Duration::MAX;
    p.ok_grace = Duration::MAX;
    modem.set_profile(p);
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
}

// ---- 2. lost bytes inside a length-counted block -------------------------------------------

fn disc_modem() -> Scripted {
    Scripted::start("A7600E-H", |l, m| {
        if l == "AT+CMQTTDISC?" {
            m.say("\r\n+CMQTTDISC: 0,0\r\n+CMQTTDISC: 1,1\r\n\r\nOK\r\n");
            return true;
        }
        a76(l, m)
    })
}

/// The damage of the public serial log: an overrun lost bytes inside `+CMQTTRXTOPIC` data (and
/// the rest of the message), the line went quiet, and then the host asked `AT+CMQTTDISC?`.
fn overrun_replay(s: &Scripted, modem: &cmqtt::Modem, c: &cmqtt::Client) {
    s.to_host
        .push(b"\r\n+CMQTTRXSTART: 0,20,5\r\n+CMQTTRXTOPIC: 0,20\r\nsensors/");
    std::thread::sleep(Duration::from_millis(100));
    // Before the fix the topic block took the first 12 bytes of this answer and client 0's
    // "+CMQTTDISC: 0,0" (connected) was never seen.
    let t0 = Instant::now();
    assert!(
        c.query_connected().expect("the answer after the cut block"),
        "the answer was misread"
    );
    eprintln!("AT+CMQTTDISC? 100 ms after the cut: {:?}", t0.elapsed());
    let ev = events_now(modem);
    let m = malformed(&ev);
    assert!(
        m.iter()
            .any(|w| w.contains("client 0") && w.contains("lost") && w.contains("sensors/")),
        "no Malformed event names the lost message: {ev:?}"
    );
    // The half-assembled message is gone: the next message is delivered normally.
    s.to_host.push(GOOD);
    assert_eq!(c.recv_timeout(Duration::from_secs(3)), Some(good()));
    assert!(c.try_recv().is_none(), "nothing else became a message");
    let ev = events_now(modem);
    assert!(malformed(&ev).is_empty(), "the good message caused {ev:?}");
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
}

#[test]
fn a_block_cut_short_is_abandoned_and_the_next_answer_is_read() {
    let s = disc_modem();
    let modem = open(&s);
    fast(&modem, 50, 1000);
    let c = modem.client(0, "overrun", false).unwrap();
    c.connect(&server()).unwrap();
    overrun_replay(&s, &modem, &c);
    // Twice: nothing lingers from the first time.
    overrun_replay(&s, &modem, &c);
}

/// A reader with no read timeout (a blocking stream): the idle gap cannot be seen by the reader,
/// so the block is abandoned when the next command is about to be sent.
struct BlockingReader(Pipe);

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read_exact_timeout(1, Duration::from_secs(3600)) {
            Some(b) => {
                buf[0] = b[0];
                Ok(1)
            }
            None => Ok(0),
        }
    }
}

#[test]
fn a_block_cut_short_is_abandoned_before_the_next_command_without_read_timeouts() {
    let s = disc_modem();
    let modem = cmqtt::Modem::with_transport(
        BlockingReader(s.to_host.clone()),
        PipeWriter(s.from_host.clone()),
        ModemOptions {
            sync_timeout: Duration::from_secs(3),
            ..Default::default()
        },
    )
    .unwrap();
    fast(&modem, 50, 1000);
    let c = modem.client(0, "overrun", false).unwrap();
    c.connect(&server()).unwrap();
    overrun_replay(&s, &modem, &c);
}

/// The answer itself sits in the bytes held by the cut block (the burst and the answer came
/// together): once the line is idle the held bytes are read again as lines and the waiting
/// command gets its answer.
#[test]
fn an_answer_held_by_a_cut_block_is_read_when_the_block_is_abandoned() {
    let s = Scripted::start("A7600E-H", |l, m| {
        if l == "AT+CMQTTDISC?" {
            m.send(b"\r\n+CMQTTRXSTART: 0,200,5\r\n+CMQTTRXTOPIC: 0,200\r\nsensors/te");
            m.say("\r\n+CMQTTDISC: 0,0\r\n+CMQTTDISC: 1,1\r\n\r\nOK\r\n");
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    fast(&modem, 50, 2000);
    let c = modem.client(0, "held", false).unwrap();
    c.connect(&server()).unwrap();
    let t0 = Instant::now();
    assert!(c
        .query_connected()
        .expect("the answer inside the held bytes"));
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
    let ev = events_now(&modem);
    assert!(
        malformed(&ev)
            .iter()
            .any(|w| w.contains("client 0") && w.contains("lost")),
        "{ev:?}"
    );
    s.to_host.push(GOOD);
    assert_eq!(c.recv_timeout(Duration::from_secs(3)), Some(good()));
    assert!(c.try_recv().is_none());
}

// ---- 4. the password in slightly different echoes ------------------------------------------

const PASSWORD: &str = "hunter2-Pa55w0rd";

#[test]
fn the_password_never_shows_whatever_precedes_the_connect_line() {
    let n = Arc::new(AtomicUsize::new(0));
    let s = Scripted::start("A7600E-H", move |l, m| {
        if l.starts_with("AT+CMQTTCONNECT=") {
            // The echo, preceded by one byte of line noise (echo was switched off, so this is
            // noise or a modem that turned echo on again).
            let noise: &[u8] =
                [&b"\0"[..], b" ", b"\xff", b"\x01\x02junk "][n.fetch_add(1, Ordering::SeqCst) % 4];
            m.send(&[noise, l.as_bytes(), b"\r\n"].concat());
            m.say("\r\nOK\r\n\r\n+CMQTTCONNECT: 0,0\r\n");
            return true;
        }
        if l == "AT+CMQTTCONNECT?" {
            m.send(b"\r\n\xff");
            m.say(&format!(
                "+CMQTTCONNECT: 0,\"tcp://broker.local:1883\",60,1,\"user\",\"{PASSWORD}\"\r\n\r\nOK\r\n"
            ));
            return true;
        }
        a76(l, m)
    });
    let traced = Arc::new(Mutex::new(Vec::<String>::new()));
    let t2 = traced.clone();
    let modem = open_with(
        &s,
        ModemOptions {
            sync_timeout: Duration::from_secs(3),
            ..Default::default()
        }
        .trace(move |_, text| t2.lock().push(text.to_string())),
    );
    fast(&modem, 50, 1000);
    let c = modem.client(0, "secret", false).unwrap();
    let opts = server().credentials("user", PASSWORD);
    for _ in 0..4 {
        c.connect(&opts).unwrap();
        c.disconnect(minute()).unwrap();
    }
    let _ = modem.command("AT+CMQTTCONNECT?", "+CMQTTCONNECT:", Duration::from_secs(1));
    // Unsolicited: the connect line inside other lines, as noise can make them.
    let line =
        format!("AT+CMQTTCONNECT=0,\"tcp://broker.local:1883\",60,1,\"user\",\"{PASSWORD}\"");
    for noisy in [
        format!("\0{line}"),
        format!(" {line}"),
        format!("garbage{line}"),
        format!("+CPIN: READY {line}"),
        format!("+CMQTTRXJUNK {line}"),
        format!("+CME ERROR: {line}"),
        format!("at+cmqttconnect=0,\"tcp://b:1\",60,1,\"u\",\"{PASSWORD}\""),
        format!("+CMQTTCONNECT: 0,\"tcp://b:1\",60,1,\"u\",\"{PASSWORD}\",junk"),
    ] {
        s.to_host.push(format!("\r\n{noisy}\r\n").as_bytes());
    }
    s.to_host.push(b"\xff");
    s.to_host.push(line.as_bytes());
    s.to_host.push(b"\r\n");
    let ev = events_now(&modem);
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
    assert!(ev.len() >= 8, "{ev:?}");
    for e in &ev {
        let text = format!("{e:?} {e}");
        assert!(
            !text.contains(PASSWORD),
            "an event shows the password: {text}"
        );
    }
    let traced = traced.lock().clone();
    assert!(
        traced.iter().any(|t| t.contains("<redacted>")),
        "{traced:?}"
    );
    for t in &traced {
        assert!(!t.contains(PASSWORD), "the trace shows the password: {t:?}");
    }
    // Logged warnings too.
    for r in log_records() {
        assert!(
            !r.contains(PASSWORD),
            "a log record shows the password: {r}"
        );
    }
}

// ---- 7. a receive flood logs a handful of warnings ------------------------------------------

/// Warnings and errors logged by this test binary.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            self.0.lock().push(format!("{}: {}", r.level(), r.args()));
        }
    }
    fn flush(&self) {}
}

fn logger() -> &'static Capture {
    static L: OnceLock<&'static Capture> = OnceLock::new();
    L.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(c).expect("the only logger of this test binary");
        log::set_max_level(log::LevelFilter::Warn);
        c
    })
}

fn log_records() -> Vec<String> {
    logger().0.lock().clone()
}

#[test]
fn a_receive_flood_logs_a_handful_of_warnings() {
    let capture = logger();
    let s = Scripted::start("A7600E-H", a76);
    let modem = open_with(
        &s,
        ModemOptions {
            sync_timeout: Duration::from_secs(3),
            queue_capacity: 16,
            ..Default::default()
        },
    );
    let c = modem.client(0, "flood", false).unwrap();
    const N: usize = 20_000;
    let mut flood = Vec::with_capacity(N * 120);
    for i in 0..N {
        flood.extend_from_slice(
            b"\r\n+CMQTTRXSTART: 0,1,1\r\n+CMQTTRXTOPIC: 0,1\r\nt\r\n+CMQTTRXPAYLOAD: 0,1\r\np\r\n+CMQTTRXEND: 0\r\n",
        );
        // A start that announces more than the maximum topic length.
        flood.extend_from_slice(format!("\r\n+CMQTTRXSTART: 1,{},1\r\n", 2000 + i % 7).as_bytes());
    }
    s.to_host.push(&flood);
    // The answer comes after the flood: once it is here, the flood has been read.
    let t0 = Instant::now();
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.dropped_messages() < (N - 16) as u64 {
        assert!(
            Instant::now() < deadline,
            "{} dropped",
            c.dropped_messages()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = t0.elapsed();
    // The counts stay exact...
    assert_eq!(c.dropped_messages(), (N - 16) as u64);
    // ...while the log says it a handful of times.
    let records = capture.0.lock().clone();
    let full = records
        .iter()
        .filter(|r| r.contains("messages full"))
        .count();
    let events_full = records
        .iter()
        .filter(|r| r.contains("event queue full"))
        .count();
    let refused = records
        .iter()
        .filter(|r| r.contains("announces more than the maximum"))
        .count();
    eprintln!(
        "flood of {N} messages + {N} refused starts read in {elapsed:?}: {full} 'messages full', {events_full} 'event queue full' and {refused} 'announces more' log records"
    );
    assert!(full <= 40, "{full} 'messages full' warnings for one flood");
    assert!(
        events_full <= 40,
        "{events_full} 'event queue full' warnings for one flood"
    );
    assert!(
        refused <= 40,
        "{refused} 'announces more' warnings for one flood"
    );
    assert!(
        records
            .iter()
            .any(|r| r.contains("announces more than the maximum")),
        "the first one is logged"
    );
}

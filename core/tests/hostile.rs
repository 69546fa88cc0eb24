//! Hostile input: lengths beyond the maxima, numbers that overflow, truncated and over-long
//! messages, garbage, a 1 MB line without a line end, invalid UTF-8. Through the pure digester
//! (exact events, at every split) and through a whole `Modem` on the scripted modem: nothing
//! panics, `Malformed` events are reported, and the session stays usable.

mod support;

use std::time::Duration;

use cmqtt::digest::{digest, DigestOptions, Digested, Unit};
use cmqtt::{Event, Message};
use support::driver::*;
use support::*;

fn malformed(ev: &Ev, needle: &str) -> bool {
    matches!(ev, Ev::Malformed(s) if s.contains(needle))
}

/// A well-formed message that must still be delivered after the hostile bytes.
const GOOD: &[u8] = b"\r\n+CMQTTRXSTART: 0,4,2\r\n+CMQTTRXTOPIC: 0,4\r\ngood\r\n+CMQTTRXPAYLOAD: 0,2\r\nhi\r\n+CMQTTRXEND: 0\r\n";

fn good() -> Ev {
    msg(0, "good", "hi")
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn check_events(name: &str, stream: &[u8], check: impl Fn(&[Ev])) {
    let (whole, _) = run_whole(opts(false), stream);
    check(&whole);
    // Whatever the reads, the same events.
    assert_all_splits(name, opts(false), stream, &whole);
}

// ---- the pure digester ---------------------------------------------------------------------

#[test]
fn payload_beyond_the_maximum() {
    let mut data = vec![b'x'; 10241];
    data[5000] = b'!';
    let s = cat(&[
        b"\r\n+CMQTTRXSTART: 0,9,10241\r\n+CMQTTRXTOPIC: 0,9\r\nsimcommsg\r\n+CMQTTRXPAYLOAD: 0,10241\r\n",
        &data,
        b"\r\n+CMQTTRXEND: 0\r\n",
        GOOD,
    ]);
    check_events("RXPAYLOAD 10241", &s, |ev| {
        assert!(
            malformed(&ev[0], "announces more than the maximum"),
            "{ev:?}"
        );
        assert!(malformed(&ev[1], "without +CMQTTRXSTART"), "{ev:?}");
        assert_eq!(ev[2], Ev::Invalid(b"+CMQTTRXPAYLOAD: 0,10241".to_vec()));
        // The refused block's bytes come through as bounded lines, not as a payload.
        let lines: Vec<usize> = ev
            .iter()
            .filter_map(|e| match e {
                Ev::Line(l) => Some(l.len()),
                _ => None,
            })
            .collect();
        assert_eq!(lines, vec![4096, 4096, 2049]);
        assert!(malformed(&ev[6], "+CMQTTRXEND: 0 without"), "{ev:?}");
        assert_eq!(ev[7], good());
        assert_eq!(ev.len(), 8);
    });
}

#[test]
fn block_lengths_are_checked_against_max_block_before_allocating() {
    let o = DigestOptions::default();
    for header in [
        &b"+CMQTTRXPAYLOAD: 0,10241\r\n"[..],
        b"+CMQTTRXTOPIC: 0,99999\r\n",
        b"+CMQTTRXPAYLOAD: 0,4294967295\r\n",
        b"+CMQTTRXPAYLOAD: 0,4294967296\r\n",
        b"+CMQTTRXPAYLOAD: 0,99999999999999999999\r\n",
    ] {
        match digest(header, &o) {
            Digested::Unit {
                used,
                unit: Unit::Invalid(l),
            } => {
                assert_eq!(used, header.len());
                assert_eq!(l, &header[..header.len() - 2]);
            }
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(header)),
        }
    }
    // Exactly the maximum is fine (and waits for its bytes).
    assert_eq!(
        digest(b"+CMQTTRXPAYLOAD: 0,10240\r\nabc", &o),
        Digested::Incomplete { skip: 0 }
    );
}

#[test]
fn bad_numbers_and_shapes() {
    let s = b"\r\n+CMQTTRXSTART: 0,99999,1\r\n\
+CMQTTRXTOPIC: 0,99999\r\n\
+CMQTTRXSTART: 0,4294967296,1\r\n\
+CMQTTRXSTART: -1,1,1\r\n\
+CMQTTRXSTART: 0,1\r\n\
+CMQTTRXSTART: 0,1,1,1\r\n\
+CMQTTRXSTART 0,1,1\r\n\
+CMQTTRXFOO: 1\r\n\
+CMQTTRXEND: 4294967295\r\n\
+CMQTTRXEND: x\r\n\
+CMQTTRXSTART: 7,1,1\r\n\
+CMQTTRXTOPIC: 3,1\r\nz\r\n\
+CMQTTRXEND: 1\r\n";
    let s = cat(&[s, GOOD]);
    check_events("bad numbers", &s, |ev| {
        let expect_invalid: &[&[u8]] = &[
            b"+CMQTTRXTOPIC: 0,99999",
            b"+CMQTTRXSTART: 0,4294967296,1",
            b"+CMQTTRXSTART: -1,1,1",
            b"+CMQTTRXSTART: 0,1",
            b"+CMQTTRXSTART: 0,1,1,1",
            b"+CMQTTRXSTART 0,1,1",
            b"+CMQTTRXFOO: 1",
            b"+CMQTTRXEND: x",
        ];
        let invalid: Vec<&[u8]> = ev
            .iter()
            .filter_map(|e| match e {
                Ev::Invalid(l) => Some(&l[..]),
                _ => None,
            })
            .collect();
        assert_eq!(invalid, expect_invalid);
        assert!(malformed(&ev[0], "0,99999,1 announces more"), "{ev:?}");
        let m: Vec<&String> = ev
            .iter()
            .filter_map(|e| match e {
                Ev::Malformed(s) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(m.len(), 5, "{m:?}");
        assert!(m[1].contains("client 4294967295"), "{m:?}");
        assert!(m[2].contains("client 7"), "{m:?}");
        assert!(m[3].contains("client 3"), "{m:?}");
        assert!(m[4].contains("+CMQTTRXEND: 1 without"), "{m:?}");
        assert_eq!(ev.last(), Some(&good()));
    });
}

#[test]
fn truncated_and_miscounted_messages() {
    // Ended early.
    let early = b"\r\n+CMQTTRXSTART: 0,3,5\r\n+CMQTTRXTOPIC: 0,3\r\na/b\r\n+CMQTTRXEND: 0\r\n";
    // Chunks add up to more than announced.
    let too_big = b"\r\n+CMQTTRXSTART: 1,3,5\r\n+CMQTTRXTOPIC: 1,3\r\na/b\r\n+CMQTTRXPAYLOAD: 1,6\r\n123456\r\n+CMQTTRXEND: 1\r\n";
    // Chunks add up to less.
    let too_small = b"\r\n+CMQTTRXSTART: 0,3,5\r\n+CMQTTRXTOPIC: 0,2\r\na/\r\n+CMQTTRXPAYLOAD: 0,5\r\n12345\r\n+CMQTTRXEND: 0\r\n";
    // A new message starts before the last one ended: the new one is kept.
    let cut = b"\r\n+CMQTTRXSTART: 0,3,5\r\n+CMQTTRXTOPIC: 0,3\r\na/b\r\n+CMQTTRXSTART: 0,1,1\r\n+CMQTTRXTOPIC: 0,1\r\nc\r\n+CMQTTRXPAYLOAD: 0,1\r\nd\r\n+CMQTTRXEND: 0\r\n";
    let s = cat(&[early, too_big, too_small, cut, GOOD]);
    check_events("truncated", &s, |ev| {
        assert!(
            malformed(&ev[0], "ended with 3 of 3 topic and 0 of 5 payload"),
            "{ev:?}"
        );
        assert!(malformed(&ev[1], "add up to more than the 5"), "{ev:?}");
        assert!(malformed(&ev[2], "+CMQTTRXEND: 1 without"), "{ev:?}");
        assert!(
            malformed(&ev[3], "ended with 2 of 3 topic and 5 of 5 payload"),
            "{ev:?}"
        );
        assert!(malformed(&ev[4], "cut off"), "{ev:?}");
        assert_eq!(ev[5], msg(0, "c", "d"));
        assert_eq!(ev[6], good());
        assert_eq!(ev.len(), 7);
    });
}

#[test]
fn garbage_and_invalid_utf8() {
    let mut garbage: Vec<u8> = (0u8..=255).filter(|b| *b != b'\r' && *b != b'\n').collect();
    garbage.extend_from_slice(b"\r\n\xff\xfe\xfd\r\n\x00\x00\x00\r\n+CME ERROR: \xff\r\n");
    let s = cat(&[&garbage, GOOD]);
    check_events("garbage", &s, |ev| {
        assert_eq!(ev.len(), 5, "{ev:?}");
        assert!(matches!(&ev[0], Ev::Line(l) if l.len() == 254), "{ev:?}");
        assert_eq!(ev[1], line(b"\xff\xfe\xfd"));
        assert_eq!(ev[2], line(b"\x00\x00\x00"));
        assert_eq!(ev[3], cme("\u{fffd}"));
        assert_eq!(ev[4], good());
    });
}

#[test]
fn a_megabyte_without_a_line_end_is_passed_on_in_bounded_pieces() {
    let mut s = vec![b'x'; 1 << 20];
    s[300_000] = 0xff;
    let o = DigestOptions::default();
    for read in [8192usize, 1500, 4097, 100_000] {
        let mut d = Driver::new(o);
        for c in s.chunks(read) {
            d.feed(c);
        }
        assert!(
            d.max_buffered <= o.max_line,
            "{} bytes kept with reads of {read}",
            d.max_buffered
        );
        assert!(d
            .events
            .iter()
            .all(|e| matches!(e, Ev::Line(l) if l.len() == o.max_line)));
        // The last max_line bytes wait: the line may end right after them.
        assert_eq!(d.events.len(), (1 << 20) / o.max_line - 1);
        assert_eq!(d.leftover().len(), o.max_line);
        // The line ends; a message after it is intact.
        d.feed(b"tail\r\n");
        d.feed(GOOD);
        assert_eq!(d.events.len(), (1 << 20) / o.max_line + 2);
        assert_eq!(
            d.events[d.events.len() - 3],
            Ev::Line(vec![b'x'; o.max_line])
        );
        assert_eq!(d.events[d.events.len() - 2], line("tail"));
        assert_eq!(d.events.last(), Some(&good()));
    }
}

// ---- through the whole session -------------------------------------------------------------

fn hostile_modem() -> (Scripted, cmqtt::Modem) {
    let s = Scripted::start("A7600E-H", |l, m| match l {
        "AT+WEIRD" => {
            m.send(b"\r\n\xff\xfeabc\r\n\x00\r\n\r\nOK\r\n");
            true
        }
        "AT+CSQ" => {
            m.send(b"\r\n\x01\x02junk\xff\r\n+CSQ: 23,0\r\n\r\nOK\r\n");
            true
        }
        _ => a76(l, m),
    });
    let modem = open(&s);
    fast(&modem, 100, 2000);
    (s, modem)
}

fn events_now(modem: &cmqtt::Modem) -> Vec<Event> {
    drain_events(modem, Duration::from_millis(150))
}

fn malformed_events(ev: &[Event]) -> Vec<&String> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Malformed(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Push `bytes` unsolicited, then check that a good message still arrives whole and that a
/// command still works; returns the events the hostile bytes caused.
fn survive(s: &Scripted, modem: &cmqtt::Modem, c: &cmqtt::Client, bytes: &[u8]) -> Vec<Event> {
    s.to_host.push(bytes);
    s.to_host.push(GOOD);
    let m = c
        .recv_timeout(Duration::from_secs(3))
        .expect("the good message after the hostile bytes");
    assert_eq!(
        m,
        Message {
            client: 0,
            topic: b"good".to_vec(),
            payload: b"hi".to_vec()
        }
    );
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
    assert!(modem.closed_reason().is_none());
    assert!(c.try_recv().is_none(), "nothing else became a message");
    events_now(modem)
}

#[test]
fn session_survives_hostile_messages() {
    let (s, modem) = hostile_modem();
    let c = modem.client(0, "hostile", false).unwrap();

    let mut big = vec![b'x'; 10241];
    big[77] = b'\n';
    let over = cat(&[
        b"\r\n+CMQTTRXSTART: 0,9,10241\r\n+CMQTTRXTOPIC: 0,9\r\nsimcommsg\r\n+CMQTTRXPAYLOAD: 0,10241\r\n",
        &big,
        b"\r\n+CMQTTRXEND: 0\r\n",
    ]);
    let ev = survive(&s, &modem, &c, &over);
    let m = malformed_events(&ev);
    assert!(
        m.iter().any(|w| w.contains("+CMQTTRXPAYLOAD: 0,10241")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|w| w.contains("announces more than the maximum")),
        "{m:?}"
    );

    let ev = survive(
        &s,
        &modem,
        &c,
        b"\r\n+CMQTTRXSTART: 0,99999,1\r\n+CMQTTRXTOPIC: 0,99999\r\n+CMQTTRXSTART: 0,4294967296,1\r\n+CMQTTRXPAYLOAD: 0,99999999999\r\n",
    );
    assert_eq!(malformed_events(&ev).len(), 4, "{ev:?}");

    let ev = survive(
        &s,
        &modem,
        &c,
        b"\r\n+CMQTTRXSTART: 0,3,5\r\n+CMQTTRXTOPIC: 0,3\r\na/b\r\n+CMQTTRXEND: 0\r\n\
+CMQTTRXSTART: 0,3,5\r\n+CMQTTRXTOPIC: 0,3\r\na/b\r\n+CMQTTRXPAYLOAD: 0,6\r\nOK\r\n12\r\n+CMQTTRXEND: 0\r\n",
    );
    let m = malformed_events(&ev);
    assert!(m.iter().any(|w| w.contains("ended with")), "{m:?}");
    assert!(m.iter().any(|w| w.contains("add up to more")), "{m:?}");
    // The over-long chunk's bytes were taken by length: its "OK" is not an event.
    assert!(
        !ev.iter()
            .any(|e| matches!(e, Event::Unsolicited(u) if u == "OK")),
        "{ev:?}"
    );
}

#[test]
fn session_survives_garbage_long_lines_and_bad_utf8() {
    let (s, modem) = hostile_modem();
    let c = modem.client(0, "hostile", false).unwrap();

    let mut garbage: Vec<u8> = (0u8..=255).filter(|b| *b != b'\r' && *b != b'\n').collect();
    garbage.extend_from_slice(b"\r\n\xff\xfe\xfd\r\n");
    let ev = survive(&s, &modem, &c, &garbage);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Unsolicited(u) if u == "\u{fffd}\u{fffd}\u{fffd}")),
        "{ev:?}"
    );

    // 1 MB without a line end, then its end: passed on as bounded pieces, nothing lost.
    let mut mega = vec![b'y'; 1 << 20];
    mega.extend_from_slice(b"\r\n");
    let ev = survive(&s, &modem, &c, &mega);
    let pieces: Vec<usize> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Unsolicited(u) if u.starts_with('y') => Some(u.len()),
            _ => None,
        })
        .collect();
    assert!(pieces.iter().all(|&n| n <= 4096), "a piece over 4096");
    assert_eq!(pieces.iter().sum::<usize>(), 1 << 20);

    // Invalid UTF-8 and garbage inside command answers.
    let lines = modem
        .command("AT+WEIRD", "", Duration::from_secs(1))
        .unwrap();
    assert_eq!(lines, vec!["\u{fffd}\u{fffd}abc".to_string(), "\0".into()]);
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
    let ev = events_now(&modem);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Unsolicited(u) if u.contains("junk"))),
        "{ev:?}"
    );
}

#[test]
fn hostile_bytes_while_a_result_is_pending() {
    let pipe = std::sync::Arc::new(parking_lot::Mutex::new(None));
    let p2 = pipe.clone();
    let s = Scripted::start("A7600E-H", move |l, m| {
        if l.starts_with("AT+CMQTTPUB=0") {
            // OK now; the result line comes after hostile bytes, sent by the test.
            m.say("\r\nOK\r\n");
            *p2.lock() = Some(m.to_host());
            return true;
        }
        a76(l, m)
    });
    let modem = open(&s);
    fast(&modem, 100, 2000);
    let c = std::sync::Arc::new(modem.client(0, "h", false).unwrap());
    c.connect(&cmqtt::ConnectOptions::new("tcp://broker.local:1883"))
        .unwrap();
    let c2 = c.clone();
    let t = std::thread::spawn(move || c2.publish("t", b"p", 1, false, Duration::from_secs(60)));
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while pipe.lock().is_none() {
        assert!(std::time::Instant::now() < deadline, "PUB never sent");
        std::thread::sleep(Duration::from_millis(5));
    }
    s.to_host
        .push(b"\r\n+CMQTTRXPAYLOAD: 0,10241\r\n\xff\x00garbage\r\n+CMQTTRXEND: 9\r\n");
    s.to_host.push(b"\r\n+CMQTTPUB: 0,0\r\n");
    t.join().unwrap().unwrap();
    let ev = events_now(&modem);
    assert!(malformed_events(&ev).len() >= 2, "{ev:?}");
}

/// Found by the `digest` fuzzer: a prompt "> " split by the reads after '>' is taken alone, and
/// its space arrives before the echo of the data (echo on, as after a modem restart). The echo
/// must still be recognised: payload bytes like "\r\nERROR\r\n" must not be read as answers.
#[test]
fn prompt_space_split_from_the_prompt_does_not_break_the_data_echo() {
    let s = Scripted::start("A7600E-H", |l, m| {
        let (cmd, args) = split_cmd(l);
        match cmd {
            "AT+CMQTTTOPIC" | "AT+CMQTTPAYLOAD" => {
                let n: usize = args[1].parse().unwrap();
                m.say(&format!("{l}\r"));
                m.say("\r\n>");
                std::thread::sleep(Duration::from_millis(30));
                m.say(" ");
                let d = m.read_data(n);
                m.send(&d);
                m.say("\r\nOK\r\n");
                true
            }
            "AT+CMQTTPUB" => {
                m.say(&format!("{l}\r\r\nOK\r\n\r\n+CMQTTPUB: 0,0\r\n"));
                true
            }
            _ => a76(l, m),
        }
    });
    let modem = open_with(
        &s,
        cmqtt::ModemOptions {
            sync_timeout: Duration::from_secs(3),
            echo_off: false,
            ..Default::default()
        },
    );
    fast(&modem, 100, 2000);
    let c = modem.client(0, "echo", false).unwrap();
    c.connect(&cmqtt::ConnectOptions::new("tcp://broker.local:1883"))
        .unwrap();
    c.publish(
        "t",
        b"x\r\nERROR\r\nOK\r\n",
        1,
        false,
        Duration::from_secs(60),
    )
    .expect("the echoed payload was taken for an answer");
    let ev = events_now(&modem);
    assert!(
        !ev.iter()
            .any(|e| matches!(e, Event::Unsolicited(u) if u == "ERROR" || u == "OK")),
        "{ev:?}"
    );
}

/// A block header whose bytes never come: the modem writes a block in one go, so once the line
/// has been quiet for `block_idle` the block is abandoned (reported as a lost message) instead
/// of swallowing the next answers; a command sent meanwhile waits for that, not for its
/// timeout. Nothing waits forever and nothing grows beyond the announced length. (Before issue
/// 12 the next two answers were swallowed and their commands timed out.)
#[test]
fn a_block_that_never_finishes_is_abandoned_before_the_next_command() {
    let s = Scripted::start("A7600E-H", a76);
    let modem = open(&s);
    fast(&modem, 50, 300);
    // 40 bytes announced, none sent; each AT+CSQ answer is 20 bytes.
    s.to_host.push(b"\r\n+CMQTTRXPAYLOAD: 0,40\r\n");
    std::thread::sleep(Duration::from_millis(50));
    let t0 = std::time::Instant::now();
    for _ in 0..3 {
        assert_eq!(modem.signal_quality().unwrap(), (23, 0));
    }
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "{:?} spent",
        t0.elapsed()
    );
    assert!(modem.closed_reason().is_none());
    let ev = events_now(&modem);
    let m = malformed_events(&ev);
    assert_eq!(m.len(), 1, "{ev:?}");
    assert!(
        m[0].contains("client 0") && m[0].contains("lost") && m[0].contains("0 of 40"),
        "{m:?}"
    );
}

/// 100,000 unsolicited lines (connection-lost reports and unknown lines) while nobody reads the
/// events: the queue stays within twice its capacity (control events may take up to as many
/// places again, data events are evicted first), the overflow is counted and reported, and the
/// session still answers.
#[test]
fn a_flood_of_urcs_is_bounded_by_the_queue_and_reported() {
    let s = Scripted::start("A7600E-H", a76);
    let modem = open_with(
        &s,
        cmqtt::ModemOptions {
            sync_timeout: Duration::from_secs(3),
            queue_capacity: 64,
            ..Default::default()
        },
    );
    let mut flood = Vec::with_capacity(2_000_000);
    for i in 0..100_000u32 {
        if i % 2 == 0 {
            flood.extend_from_slice(b"\r\n+CMQTTCONNLOST: 0,1\r\n");
        } else {
            flood.extend_from_slice(format!("\r\n+WHATEVER: {i}\r\n").as_bytes());
        }
    }
    s.to_host.push(&flood);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while modem.dropped_events() < 100_000 - 2 * 64 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} dropped",
            modem.dropped_events()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(modem.signal_quality().unwrap(), (23, 0));
    // The events queue's own overflow is counted, logged at warn level and reported first by
    // recv_event; the newest 64 events remain.
    let mut ev = drain_events(&modem, Duration::from_millis(100));
    match ev.first() {
        Some(Event::Overflow {
            queue: "events",
            dropped,
        }) => {
            assert!(*dropped >= 100_000 - 2 * 64, "{dropped}")
        }
        other => panic!("expected the overflow report first, got {other:?}"),
    }
    ev.remove(0);
    assert!(ev.len() <= 2 * 64, "{} events kept", ev.len());
    // Data events were evicted before the connection-lost reports.
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::ConnectionLost {
                client: 0,
                cause: 1
            }
        )),
        "{:?}",
        &ev[..ev.len().min(5)]
    );
}

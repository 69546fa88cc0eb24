//! Part 3 — Receive flood: the broker feeds the emulator faster than the line carries, so the emulator
//! reports messages back to back at line rate, while the host keeps publishing. Zero lost, and
//! the library's CPU time per message.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmqtt::{Event, Modem, ModemOptions};

use crate::common::*;
use crate::mqttpub::RawPublisher;
use crate::report::Table;
use crate::sys;

pub struct FloodResult {
    pub baud: Option<u32>,
    pub size: usize,
    pub n: usize,
    pub received: usize,
    pub in_order: bool,
    pub content_ok: bool,
    pub malformed: usize,
    pub dropped: u64,
    pub window: Duration,
    pub bytes_in: u64,
    /// The time over which `bytes_in` was counted.
    pub span: Duration,
    pub topic_len: usize,
    pub published: u64,
    pub publish_errors: u64,
    pub reader_cpu: Duration,
    pub recv_cpu: Duration,
}

const CHUNK: usize = 1500;

fn flood_payload(seq: usize, size: usize) -> Vec<u8> {
    let mut p = format!("{seq:08}").into_bytes();
    p.resize(size.max(8), b'.');
    // Bytes a line-based reader would trip on.
    if size >= 32 {
        p[10..22].copy_from_slice(b"\r\nOK\r\n\r\n>\x00\xff\r");
    }
    p.truncate(size);
    p
}

pub fn cell(ctx: &Ctx, baud: Option<u32>, size: usize, n: usize) -> Res<FloodResult> {
    let sim = sim(baud)?;
    let modem =
        Modem::open_with(&sim.device(), 115_200, ModemOptions::default()).map_err(err("open"))?;
    let client = Arc::new(connect(&modem, ctx, "bench-flood")?);
    client.set_check_utf8(false).map_err(err("checkUTF8"))?;
    let topic = format!("flood/{size}");
    client
        .subscribe(&[(topic.as_str(), 1)])
        .map_err(err("subscribe"))?;

    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // The consumer: receives and checks every message.
    let consumer = {
        let client = client.clone();
        let received = received.clone();
        std::thread::Builder::new()
            .name("flood-recv".into())
            .spawn(move || {
                let cpu0 = sys::this_thread_cpu();
                let mut seqs = Vec::with_capacity(n);
                let mut content_ok = true;
                let mut first = None;
                let mut last = Instant::now();
                while seqs.len() < n {
                    let Some(m) = client.recv_timeout(Duration::from_secs(20)) else {
                        break;
                    };
                    let now = Instant::now();
                    first.get_or_insert(now);
                    last = now;
                    let seq: usize = std::str::from_utf8(&m.payload[..8.min(m.payload.len())])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(usize::MAX);
                    if m.payload != flood_payload(seq, size) {
                        content_ok = false;
                    }
                    seqs.push(seq);
                    received.fetch_add(1, Ordering::Relaxed);
                }
                let cpu = sys::this_thread_cpu() - cpu0;
                (seqs, content_ok, first, last, cpu)
            })
            .map_err(err("thread"))?
    };
    // The host publishes meanwhile (QoS 1, 16 B), as fast as it can.
    let publisher = {
        let client = client.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut ok, mut bad) = (0u64, 0u64);
            let data = payload(16);
            while !stop.load(Ordering::Relaxed) {
                match client.publish("bench/flood-side", &data, 1, false, Duration::from_secs(60)) {
                    Ok(()) => ok += 1,
                    Err(_) => bad += 1,
                }
            }
            (ok, bad)
        })
    };
    let cpu0 = sys::thread_cpu(&["cmqtt-reader", "cmqtt-dispatch"]);
    let (in0, _) = modem.byte_counts();
    let t_in0 = Instant::now();
    // The source: keeps at most `window` messages ahead of the host, so the emulator always has
    // a backlog (the line never idles) while the broker's queue stays small.
    let mut src = RawPublisher::connect(ctx.broker.port, "bench-flood-src").map_err(err("mqtt"))?;
    // Paced: about 100 ms of line time queued in the emulator, so that the host's own commands
    // (whose answers queue behind the reported messages) are not starved; unthrottled: 256 KiB.
    let window = match baud {
        Some(b) => (b as usize / 100 / rx_wire_bytes(topic.len(), size, CHUNK)).clamp(2, 2000),
        None => (256 * 1024 / size.max(1)).clamp(16, 2000),
    } as u64;
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    while sent < n && Instant::now() < deadline {
        let ahead = sent as u64 - received.load(Ordering::Relaxed);
        if ahead < window {
            let burst = ((window - ahead) as usize).min(n - sent).min(64);
            for _ in 0..burst {
                src.publish(&topic, &flood_payload(sent, size));
                sent += 1;
            }
            src.flush().map_err(err("mqtt write"))?;
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let (seqs, content_ok, first, last, recv_cpu) =
        consumer.join().map_err(|_| "consumer panicked")?;
    let cpu1 = sys::thread_cpu(&["cmqtt-reader", "cmqtt-dispatch"]);
    let (in1, _) = modem.byte_counts();
    let span = t_in0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (published, publish_errors) = publisher.join().map_err(|_| "publisher panicked")?;
    let mut malformed = 0;
    while let Some(e) = modem.recv_event(Duration::ZERO) {
        if matches!(e, Event::Malformed(_) | Event::Overflow { .. }) {
            malformed += 1;
        }
    }
    let dropped = client.dropped_messages() + modem.dropped_events();
    let in_order = seqs.iter().enumerate().all(|(i, s)| *s == i);
    drop(src);
    drop(client);
    drop(modem);
    sim.shutdown();
    Ok(FloodResult {
        baud,
        size,
        n,
        received: seqs.len(),
        in_order,
        content_ok,
        malformed,
        dropped,
        window: first.map(|f| last - f).unwrap_or_default(),
        bytes_in: in1 - in0,
        span,
        topic_len: topic.len(),
        published,
        publish_errors,
        reader_cpu: sys::cpu_between(&cpu0, &cpu1),
        recv_cpu,
    })
}

pub fn run(ctx: &Ctx) -> Res<(Table, bool)> {
    let cells: Vec<(Option<u32>, usize, usize)> = if ctx.smoke {
        vec![
            (Some(921_600), 16, 20),
            (Some(921_600), 10240, 3),
            (None, 256, 200),
        ]
    } else {
        vec![
            (Some(115_200), 256, 200),
            (Some(921_600), 16, 3000),
            (Some(921_600), 256, 1500),
            (Some(921_600), 4096, 120),
            (Some(921_600), 10240, 40),
            (None, 16, 20000),
            (None, 256, 20000),
            (None, 10240, 2000),
        ]
    };
    let mut t = Table::new(
        "3. Receive flood while publishing",
        &[
            "baud",
            "payload",
            "sent",
            "received",
            "lost",
            "in order, intact",
            "msgs/s",
            "line limit msgs/s (flood alone)",
            "line use (modem → host)",
            "host publishes meanwhile",
            "reader CPU / msg",
            "+ recv() CPU / msg",
        ],
    );
    t.intro = format!(
        "A raw MQTT client publishes to the broker, staying a window ahead of what the host has \
         received (about 100 ms of line time; 256 KiB unthrottled), so the emulator always has \
         messages queued and reports them back to back \
         (`+CMQTTRXSTART`/`RXTOPIC`/`RXPAYLOAD` in {CHUNK}-byte chunks/`RXEND`, payloads \
         carrying `\\r\\nOK\\r\\n\\r\\n>`, NUL and 0xFF); meanwhile another host thread \
         publishes QoS 1 messages on the same session in a loop. *line use*: bytes the host \
         read during the flood over what the line can carry in that time (the emulator holds \
         URCs while a publish is being typed or awaits its PUBACK, as real modems do, so the \
         line idles then). CPU: the library's reader and dispatch threads \
         (`/proc/self/task/*/schedstat`), and the consuming thread's `recv_timeout` loop."
    );
    let mut all_ok = true;
    for (baud, size, n) in cells {
        let r = cell(ctx, baud, size, n)?;
        let lost = r.n - r.received;
        let ok = lost == 0 && r.in_order && r.content_ok && r.malformed == 0 && r.dropped == 0;
        all_ok &= ok;
        let rate = if r.received > 1 {
            (r.received - 1) as f64 / secs(r.window)
        } else {
            0.0
        };
        let line_use = match baud {
            Some(b) if r.span > Duration::ZERO => {
                format!(
                    "{:.3}",
                    r.bytes_in as f64 / (secs(r.span) * b as f64 / 10.0)
                )
            }
            _ => "—".into(),
        };
        eprintln!(
            "  flood {baud:?} {size} B: {}/{} received, {rate:.0} msgs/s, reader {:.1} µs/msg",
            r.received,
            r.n,
            us(r.reader_cpu) / r.n as f64
        );
        t.row(vec![
            baud.map(|b| b.to_string())
                .unwrap_or_else(|| "unthrottled".into()),
            format!("{size} B"),
            r.n.to_string(),
            r.received.to_string(),
            format!("**{lost}**"),
            if r.in_order && r.content_ok && r.malformed == 0 && r.dropped == 0 {
                "yes".into()
            } else {
                format!(
                    "NO (order {}, content {}, malformed {}, dropped {})",
                    r.in_order, r.content_ok, r.malformed, r.dropped
                )
            },
            format!("{rate:.0}"),
            match baud {
                Some(b) => format!(
                    "{:.0}",
                    b as f64 / 10.0 / rx_wire_bytes(r.topic_len, size, CHUNK) as f64
                ),
                None => "—".into(),
            },
            line_use,
            format!(
                "{} ok{}",
                r.published,
                if r.publish_errors > 0 {
                    format!(", {} failed", r.publish_errors)
                } else {
                    String::new()
                }
            ),
            format!("{:.1} µs", us(r.reader_cpu) / r.n as f64),
            format!("{:.1} µs", us(r.reader_cpu + r.recv_cpu) / r.n as f64),
        ]);
    }
    Ok((t, all_ok))
}

//! Part 4 — Digester throughput over a realistic stream of modem output, and allocations per message
//! (the digester alone, and the library's whole receive path).

use std::path::Path;
use std::time::{Duration, Instant};

use cmqtt::digest::{digest, DigestOptions, Digested, Unit};
use cmqtt::{ConnectOptions, Modem, ModemOptions};
use criterion::{Criterion, Throughput};
use std::hint::black_box;

use crate::alloc;
use crate::common::*;
use crate::fake::FakeModem;
use crate::report::Table;

/// A deterministic stream of what a busy A7600 prints: received messages of mixed sizes
/// (40 % 16 B, 35 % 256 B, 15 % 1500 B, 8 % 4 KiB, 2 % 10 KiB, reported in 1500-byte chunks),
/// on two clients, with payloads holding line endings, `OK` and NUL; between them publish
/// answers and result lines (with `answers`). Returns the stream and the number of messages in it.
pub fn stream(messages: usize, answers: bool) -> (Vec<u8>, usize) {
    let mut s = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..messages {
        let r = next() % 100;
        let size = match r {
            0..40 => 16,
            40..75 => 256,
            75..90 => 1500,
            90..98 => 4096,
            _ => 10240,
        };
        let client = (next() % 2) as usize;
        let topic = format!("devices/{:04}/telemetry/{}", next() % 10000, i % 7);
        let mut payload: Vec<u8> = (0..size).map(|k| b'0' + (k % 10) as u8).collect();
        if size >= 32 {
            payload[4..20].copy_from_slice(b"\r\nOK\r\n+CMQTTRXE\x00");
        }
        s.extend_from_slice(
            format!(
                "\r\n+CMQTTRXSTART: {client},{},{}\r\n+CMQTTRXTOPIC: {client},{}\r\n",
                topic.len(),
                size,
                topic.len()
            )
            .as_bytes(),
        );
        s.extend_from_slice(topic.as_bytes());
        s.extend_from_slice(b"\r\n");
        for c in payload.chunks(1500) {
            s.extend_from_slice(format!("+CMQTTRXPAYLOAD: {client},{}\r\n", c.len()).as_bytes());
            s.extend_from_slice(c);
            s.extend_from_slice(b"\r\n");
        }
        s.extend_from_slice(format!("+CMQTTRXEND: {client}\r\n").as_bytes());
        if answers && i % 3 == 0 {
            s.extend_from_slice(b"\r\nOK\r\n\r\n+CMQTTPUB: 0,0\r\n");
        }
    }
    (s, messages)
}

/// Digests `data` the way the reader thread does: bytes arrive in reads of `read` bytes,
/// are appended to a buffer, units are taken from its front until one is incomplete, and what
/// was used is dropped. Returns the number of units.
pub fn digest_reads(data: &[u8], read: usize, buf: &mut Vec<u8>) -> usize {
    let opts = DigestOptions::default();
    buf.clear();
    let mut units = 0;
    for chunk in data.chunks(read.max(1)) {
        buf.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            match digest(&buf[pos..], &opts) {
                Digested::Incomplete { skip } => {
                    pos += skip;
                    break;
                }
                Digested::Unit { used, unit } => {
                    if let Unit::RxPayload { data, .. } = &unit {
                        black_box(data.len());
                    }
                    black_box(&unit);
                    units += 1;
                    pos += used.max(1);
                }
            }
        }
        buf.drain(..pos);
    }
    units
}

/// Registers the digester benchmarks on `c`.
pub fn benches(c: &mut Criterion, data: &[u8]) {
    let mut g = c.benchmark_group("digest");
    g.throughput(Throughput::Bytes(data.len() as u64));
    let mut buf = Vec::with_capacity(64 * 1024);
    for read in [data.len(), 4096, 128] {
        let name = if read == data.len() {
            "whole".to_string()
        } else {
            format!("reads_of_{read}")
        };
        g.bench_function(name, |b| {
            b.iter(|| digest_reads(black_box(data), read, &mut buf))
        });
    }
    g.finish();
}

fn criterion_median_ns(dir: &Path, name: &str) -> Option<f64> {
    let p = dir
        .join("digest")
        .join(name)
        .join("new")
        .join("estimates.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// Allocations the library makes per received message: the scripted modem writes `n`
/// messages of the stream's kind to a live session, the host takes them with `recv`.
fn library_allocs(n: usize) -> Res<(f64, f64, Duration)> {
    let (fake, host) = FakeModem::start().map_err(err("fake modem"))?;
    let reader = host.try_clone().map_err(err("clone"))?;
    let opts = ModemOptions {
        queue_capacity: n + 16,
        ..ModemOptions::default()
    };
    let modem = Modem::with_transport(reader, host, opts).map_err(err("open"))?;
    modem.start().map_err(err("start"))?;
    let c0 = modem
        .client(0, "bench-alloc0", false)
        .map_err(err("acquire"))?;
    let c1 = modem
        .client(1, "bench-alloc1", false)
        .map_err(err("acquire"))?;
    for c in [&c0, &c1] {
        c.connect(&ConnectOptions::new("tcp://127.0.0.1:1883"))
            .map_err(err("connect"))?;
    }
    let (data, msgs) = stream(n, false);
    // Warm up: the first messages grow the queues and the reader's buffer.
    let (warm, _) = stream(64, false);
    fake.inject(&warm);
    for _ in 0..64 {
        if c0.try_recv().is_none() && c1.try_recv().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    while c0.try_recv().is_some() || c1.try_recv().is_some() {}
    std::thread::sleep(Duration::from_millis(50));
    while c0.try_recv().is_some() || c1.try_recv().is_some() {}
    let (a0, b0) = alloc::counts();
    let t0 = Instant::now();
    fake.inject(&data);
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < msgs && Instant::now() < deadline {
        let before = got;
        while c0.try_recv().is_some() {
            got += 1;
        }
        while c1.try_recv().is_some() {
            got += 1;
        }
        if got == before {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    let elapsed = t0.elapsed();
    let (a1, b1) = alloc::counts();
    if got != msgs {
        return Err(format!("library_allocs: {got} of {msgs} messages arrived"));
    }
    c0.discard();
    c1.discard();
    drop(modem);
    drop(fake);
    Ok((
        (a1 - a0) as f64 / msgs as f64,
        (b1 - b0) as f64 / msgs as f64,
        elapsed / msgs as u32,
    ))
}

pub fn run(ctx: &Ctx) -> Res<Table> {
    let (data, msgs) = stream(if ctx.smoke { 200 } else { 2000 }, true);
    let mut t = Table::new(
        "4. Digester throughput and allocations",
        &["measure", "value", "notes"],
    );
    t.intro = format!(
        "The stream (`bench/src/digestb.rs`): {msgs} received messages ({} bytes: 40 % 16 B, \
         35 % 256 B, 15 % 1500 B, 8 % 4 KiB, 2 % 10 KiB payloads, 1500-byte RX chunks, two \
         clients, payloads holding `\\r\\nOK\\r\\n` and NUL) with publish answers in between. \
         Digested as the reader thread does: appended to a buffer read by read, units taken \
         from the front, the used bytes dropped. Criterion (`cargo bench -p cmqtt-bench` runs \
         the same benchmarks on their own), median.",
        data.len()
    );
    // Criterion compares with its previous run in the same directory: keep smoke runs apart.
    let dir = ctx.scratch().join(if ctx.smoke {
        "criterion-smoke"
    } else {
        "criterion"
    });
    let mut c = Criterion::default()
        .output_directory(&dir)
        .without_plots()
        .warm_up_time(Duration::from_millis(if ctx.smoke { 50 } else { 500 }))
        .measurement_time(Duration::from_millis(if ctx.smoke { 100 } else { 2000 }))
        .sample_size(if ctx.smoke { 10 } else { 30 });
    benches(&mut c, &data);
    for (name, what) in [
        ("whole", "the whole stream in one buffer"),
        ("reads_of_4096", "in 4096-byte reads"),
        (
            "reads_of_128",
            "in 128-byte reads (≈ what a 115200-baud line delivers per 10 ms)",
        ),
    ] {
        let ns = criterion_median_ns(&dir, name).ok_or("criterion left no estimates")?;
        let mbs = data.len() as f64 / ns * 1e3;
        eprintln!("  digest {name}: {mbs:.0} MB/s");
        t.row(vec![
            format!("digest, {what}"),
            format!("**{mbs:.0} MB/s**"),
            format!(
                "{:.2} M messages/s; {:.0} µs per pass",
                msgs as f64 / ns * 1e3,
                ns / 1e3
            ),
        ]);
    }
    let mut buf = Vec::with_capacity(64 * 1024);
    digest_reads(&data, 128, &mut buf);
    let (a0, _) = alloc::counts();
    for _ in 0..3 {
        digest_reads(&data, 128, &mut buf);
    }
    let (a1, _) = alloc::counts();
    t.row(vec![
        "digester allocations per message".into(),
        format!("**{:.3}**", (a1 - a0) as f64 / (3 * msgs) as f64),
        "the digester borrows from the caller's buffer".into(),
    ]);
    let (allocs, bytes, per) = library_allocs(if ctx.smoke { 200 } else { 5000 })?;
    eprintln!("  library allocations per received message: {allocs:.2}");
    t.row(vec![
        "library allocations per received message".into(),
        format!("**{allocs:.2}**"),
        format!(
            "{bytes:.0} bytes requested per message (payloads average {:.0} B); the whole \
             receive path from the socket to `try_recv`, all threads, scripted modem \
             (unthrottled: {:.1} µs per message end to end)",
            data.len() as f64 / msgs as f64,
            us(per)
        ),
    ]);
    Ok(t)
}

//! Part 2 — Host turnaround: from the last byte of a modem answer to the first byte of the next
//! command, unthrottled, against a scripted modem that answers at once.

use std::time::{Duration, Instant};

use cmqtt::{ConnectOptions, Modem, ModemOptions};

use crate::common::*;
use crate::fake::FakeModem;
use crate::report::Table;
use crate::stamp::{quantile, turnarounds, StampRead, StampWrite, Stamps};

pub struct TurnResult {
    pub allocs_per_publish: f64,
    pub library: Vec<Duration>,
    pub wire: Vec<Duration>,
    pub per_publish: Duration,
}

pub fn measure(n: usize, qos: u8, size: usize) -> Res<TurnResult> {
    let (fake, host) = FakeModem::start().map_err(err("fake modem"))?;
    let stamps = Stamps::new();
    let reader = host.try_clone().map_err(err("clone"))?;
    let modem = Modem::with_transport(
        StampRead {
            inner: reader,
            stamps: stamps.clone(),
        },
        StampWrite {
            inner: host,
            stamps: stamps.clone(),
            flush: true,
        },
        ModemOptions::default(),
    )
    .map_err(err("open"))?;
    modem.start().map_err(err("start"))?;
    let client = modem
        .client(0, "bench-turn", false)
        .map_err(err("acquire"))?;
    client
        .connect(&ConnectOptions::new("tcp://127.0.0.1:1883"))
        .map_err(err("connect"))?;
    let data = payload(size);
    let publish = || {
        client
            .publish("bench/turn", &data, qos, false, Duration::from_secs(60))
            .map_err(err("publish"))
    };
    for _ in 0..200.min(n) {
        publish()?;
    }
    stamps.start();
    fake.measure(true);
    let (a0, _) = crate::alloc::counts();
    let t0 = Instant::now();
    for _ in 0..n {
        publish()?;
    }
    let elapsed = t0.elapsed();
    let (a1, _) = crate::alloc::counts();
    fake.measure(false);
    let events = stamps.stop();
    let wire = fake.gaps();
    client.discard();
    drop(modem);
    drop(fake);
    Ok(TurnResult {
        allocs_per_publish: (a1 - a0) as f64 / n as f64,
        library: turnarounds(&events),
        wire,
        per_publish: elapsed / n as u32,
    })
}

pub fn run(ctx: &Ctx) -> Res<(Table, Duration)> {
    let n = if ctx.smoke { 200 } else { 4000 };
    let mut t = Table::new(
        "2. Host turnaround (unthrottled)",
        &[
            "workload",
            "samples",
            "library: median",
            "library: p99",
            "wire: median",
            "wire: p99",
            "publish round",
            "allocations / publish",
        ],
    );
    t.intro = "A scripted modem (`bench/src/fake.rs`) on a Unix socket pair answers every \
               command at once. *library*: from the return of the `read` that delivered an \
               answer's last byte to the `write` of the next command's first byte, timestamped \
               in a wrapping transport (`Modem::with_transport`); *wire*: the same seen from \
               the modem's side, from its `write` of the answer to the `read` that returns the \
               next command (adds both kernel wake-ups). Five turnarounds per publish (prompt → \
               topic, OK → PAYLOAD, prompt → payload, OK → PUB, result → next TOPIC). Target: \
               median under 50 µs. *allocations / publish*: every allocation the library makes for one \
               publish, on all its threads (counting global allocator; the scripted modem's own \
               thread is not counted)."
        .into();
    let mut med = Duration::ZERO;
    for (qos, size) in [(0u8, 16usize), (1, 256)] {
        let mut r = measure(n, qos, size)?;
        let lm = quantile(&mut r.library, 0.5);
        let lp = quantile(&mut r.library, 0.99);
        let wm = quantile(&mut r.wire, 0.5);
        let wp = quantile(&mut r.wire, 0.99);
        if qos == 0 {
            med = lm;
        }
        eprintln!(
            "  turnaround qos{qos} {size} B: median {:.1} µs, p99 {:.1} µs",
            us(lm),
            us(lp)
        );
        t.row(vec![
            format!("publish QoS {qos}, {size} B × {n}"),
            r.library.len().to_string(),
            format!("**{:.1} µs**", us(lm)),
            format!("{:.1} µs", us(lp)),
            format!("{:.1} µs", us(wm)),
            format!("{:.1} µs", us(wp)),
            format!("{:.1} µs", us(r.per_publish)),
            format!("{:.1}", r.allocs_per_publish),
        ]);
    }
    Ok((t, med))
}

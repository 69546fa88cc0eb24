//! Part 1 — Line efficiency: publish throughput at a paced baud rate, against the theoretical maximum
//! computed from the exact bytes of the exchange.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use cmqtt::ModemOptions;

use crate::common::*;
use crate::report::Table;
use crate::stamp::{turnarounds, Stamps};

#[derive(Debug, Clone)]
pub struct LineResult {
    pub baud: u32,
    pub qos: u8,
    pub size: usize,
    pub n: usize,
    pub elapsed: Duration,
    /// Bytes per publish, both directions, as counted by the library.
    pub bytes: f64,
    /// Bytes per publish by the formula.
    pub bytes_formula: usize,
    /// Sum of host turnarounds per publish.
    pub host: Duration,
}

impl LineResult {
    pub fn msgs_s(&self) -> f64 {
        self.n as f64 / secs(self.elapsed)
    }
    pub fn line_time(&self) -> Duration {
        Duration::from_secs_f64(self.bytes_formula as f64 * 10.0 / self.baud as f64)
    }
    pub fn theory_msgs_s(&self) -> f64 {
        1.0 / secs(self.line_time())
    }
    pub fn ratio(&self) -> f64 {
        self.msgs_s() / self.theory_msgs_s()
    }
    pub fn per_msg(&self) -> Duration {
        self.elapsed / self.n as u32
    }
}

pub const TOPIC: &str = "bench/line";

/// One cell: a fresh emulator at `baud`, `n` publishes of `size` bytes at `qos`.
pub fn cell(ctx: &Ctx, baud: u32, qos: u8, size: usize, budget: Duration) -> Res<LineResult> {
    let sim = sim(Some(baud))?;
    let stamps = Stamps::new();
    let modem = open_stamped(&sim.device(), &stamps, ModemOptions::default())?;
    let client = connect(&modem, ctx, "bench-line")?;
    let data = payload(size);
    let (h2m, m2h) = publish_wire_bytes(TOPIC.len(), size, qos);
    let line_time = (h2m + m2h) as f64 * 10.0 / baud as f64;
    let n = ((budget.as_secs_f64() / line_time).ceil() as usize).clamp(
        if ctx.smoke { 3 } else { 10 },
        if ctx.smoke { 20 } else { 3000 },
    );
    let publish = || {
        client
            .publish(TOPIC, &data, qos, false, Duration::from_secs(60))
            .map_err(err("publish"))
    };
    for _ in 0..2 {
        publish()?;
    }
    let (in0, out0) = modem.byte_counts();
    stamps.start();
    let t0 = Instant::now();
    for _ in 0..n {
        publish()?;
    }
    let elapsed = t0.elapsed();
    let events = stamps.stop();
    let (in1, out1) = modem.byte_counts();
    let host: Duration = turnarounds(&events).iter().sum();
    drop(client);
    drop(modem);
    sim.shutdown();
    Ok(LineResult {
        baud,
        qos,
        size,
        n,
        elapsed,
        bytes: ((in1 - in0) + (out1 - out0)) as f64 / n as f64,
        bytes_formula: h2m + m2h,
        host: host / n as u32,
    })
}

/// The emulator's own answer latency at `baud`, with no library involved: a bare serial port
/// writes `AT\r` and reads until `OK`; the median round trip minus the line time of its 9
/// bytes. This is what any host, however fast, waits per command/answer exchange here.
pub fn emulator_latency(baud: u32, n: usize) -> Res<Duration> {
    let sim = sim(Some(baud))?;
    let mut port = serialport::new(sim.device(), 115_200)
        .timeout(Duration::from_millis(500))
        .open()
        .map_err(err("open pty"))?;
    let mut buf = [0u8; 256];
    let mut exchange = |cmd: &[u8]| -> Res<Duration> {
        let t0 = Instant::now();
        port.write_all(cmd).map_err(err("write"))?;
        let mut got = Vec::new();
        while !got.ends_with(b"OK\r\n") {
            let n = port.read(&mut buf).map_err(err("read"))?;
            got.extend_from_slice(&buf[..n]);
        }
        Ok(t0.elapsed())
    };
    exchange(b"ATE0\r")?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(exchange(b"AT\r")?);
    }
    drop(port);
    sim.shutdown();
    let line = Duration::from_secs_f64(9.0 * 10.0 / baud as f64);
    Ok(crate::stamp::quantile(&mut v, 0.5).saturating_sub(line))
}

pub fn run(ctx: &Ctx) -> Res<(Table, Vec<LineResult>)> {
    let bauds: &[u32] = &[115_200, 921_600];
    let sizes: &[usize] = if ctx.smoke { &[16] } else { &[16, 256, 4096] };
    let budget = Duration::from_millis(if ctx.smoke { 50 } else { 2500 });
    let mut t = Table::new(
        "1. Line efficiency: publish throughput against the line's limit",
        &[
            "baud",
            "QoS",
            "payload",
            "n",
            "msgs/s",
            "payload B/s",
            "bytes/msg",
            "line limit msgs/s",
            "ratio",
            "per msg",
            "line time",
            "host turnaround",
            "emulator+broker",
            "line ÷ (line + host)",
            "ceiling here",
        ],
    );
    t.intro = format!(
        "Topic `{TOPIC}`, A7600 emulator on a pty paced at the baud rate in both directions \
         (10 bits per byte), echo off, mosquitto on loopback. The line limit is the exact bytes \
         of one publish in both directions (TOPIC, PAYLOAD and PUB command lines with their \
         `\\r`, topic and payload, `\\r\\n>` prompts, `\\r\\nOK\\r\\n` finals and the \
         `\\r\\n+CMQTTPUB: 0,0\\r\\n` result line; the library's byte counters agree with the \
         formula) times 10 bits, over the baud rate; the exchange is strictly sequential, so the \
         two directions add up. `host turnaround` is the library's time per publish from the \
         last byte of each answer to the first byte of the next command (5 per publish, \
         timestamped at the transport); `emulator+broker` is the rest (the emulator's own \
         reaction time and pacing granularity, and for QoS 1 the broker's PUBACK round trip). \
         *line ÷ (line + host)* is the ratio the library alone would leave if the modem \
         answered instantly. *ceiling here* is the best ratio any host could reach against \
         this emulator: a bare serial port writing `AT\\r` and reading `OK` measures the \
         emulator's own answer latency (round trip minus line time) and a publish has 5 such \
         exchanges."
    );
    let mut all = Vec::new();
    let mut latency = Vec::new();
    for &baud in bauds {
        let l = emulator_latency(baud, if ctx.smoke { 20 } else { 500 })?;
        eprintln!("  emulator answer latency at {baud}: {:.0} µs", us(l));
        latency.push((baud, l));
    }
    for &(baud, emu) in &latency {
        for qos in [0u8, 1] {
            for &size in sizes {
                let r = cell(ctx, baud, qos, size, budget)?;
                let other = r
                    .per_msg()
                    .saturating_sub(r.line_time())
                    .saturating_sub(r.host);
                eprintln!(
                    "  line {baud} qos{qos} {size} B: {:.1} msgs/s, ratio {:.3}",
                    r.msgs_s(),
                    r.ratio()
                );
                t.row(vec![
                    baud.to_string(),
                    qos.to_string(),
                    format!("{size} B"),
                    r.n.to_string(),
                    format!("{:.1}", r.msgs_s()),
                    format!("{:.0}", r.msgs_s() * size as f64),
                    if (r.bytes - r.bytes_formula as f64).abs() < 0.01 {
                        format!("{}", r.bytes_formula)
                    } else {
                        format!("{} (counted {:.1})", r.bytes_formula, r.bytes)
                    },
                    format!("{:.1}", r.theory_msgs_s()),
                    format!("**{:.3}**", r.ratio()),
                    format!("{:.0} µs", us(r.per_msg())),
                    format!("{:.0} µs", us(r.line_time())),
                    format!("{:.0} µs", us(r.host)),
                    format!("{:.0} µs", us(other)),
                    format!("{:.3}", secs(r.line_time()) / secs(r.line_time() + r.host)),
                    format!("{:.3}", secs(r.line_time()) / secs(r.line_time() + emu * 5)),
                ]);
                all.push(r);
            }
        }
    }
    t.note(format!(
        "Emulator answer latency (bare `AT` round trip minus line time, median): {}.",
        latency
            .iter()
            .map(|(b, l)| format!("{:.0} µs at {b}", us(*l)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok((t, all))
}

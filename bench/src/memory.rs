//! Part 7 — Memory: resident memory of a session, idle and with its message queue full, measured in
//! a child process that holds nothing but the library.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::child::self_exe;
use crate::common::*;
use crate::mqttpub::RawPublisher;
use crate::report::Table;

fn kib(v: u64) -> String {
    if v >= 10 * 1024 {
        format!("{:.1} MiB", v as f64 / 1024.0)
    } else {
        format!("{v} KiB")
    }
}

pub fn run(ctx: &Ctx) -> Res<Table> {
    let size = 1024usize;
    let sim = sim(None)?;
    let topic = "bench/memory";
    let mut child = Command::new(self_exe()?)
        .arg("child-memory")
        .arg(sim.device())
        .arg(ctx.broker.url())
        .arg(topic)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(err("child-memory"))?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(out).lines();
    let mut get = |tag: &str| -> Res<Vec<u64>> {
        let end = Instant::now() + Duration::from_secs(90);
        while Instant::now() < end {
            let l = lines
                .next()
                .ok_or_else(|| format!("child-memory ended before '{tag}'"))?
                .map_err(err("read"))?;
            if let Some(rest) = l.strip_prefix(tag) {
                return Ok(rest
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect());
            }
        }
        Err(format!("no '{tag}' from child-memory"))
    };
    let base = get("baseline")?;
    let idle = get("idle")?;
    let cap = get("ready")?.first().copied().unwrap_or(1024) as usize;
    let mut src =
        RawPublisher::connect(ctx.broker.port, "bench-memory-src").map_err(err("mqtt"))?;
    let payload: Vec<u8> = (0..size).map(|i| b'A' + (i % 26) as u8).collect();
    let total = cap + 64;
    for i in 0..total {
        src.publish(topic, &payload);
        if i % 64 == 63 {
            src.flush().map_err(err("mqtt"))?;
        }
    }
    src.flush().map_err(err("mqtt"))?;
    let full = get("full")?;
    let _ = child.wait();
    drop(src);
    sim.shutdown();
    let mut t = Table::new(
        "7. Memory (resident set of a process holding one session)",
        &[
            "state",
            "VmRSS",
            "VmHWM",
            "RSS above the process's baseline",
        ],
    );
    t.intro = format!(
        "`cmqtt-bench child-memory`: a process with the library only, `/proc/self/status`. \
         *idle*: modem open, service started, client connected and subscribed, reader and \
         dispatch threads waiting. *queue full*: {total} messages of {size} B published to its \
         topic while nobody receives, so the client's queue (default capacity {cap}) is full \
         and the oldest messages are being dropped (and counted)."
    );
    let (b, i, f) = (
        base.first().copied().unwrap_or(0),
        idle.first().copied().unwrap_or(0),
        full.first().copied().unwrap_or(0),
    );
    t.row(vec![
        "process baseline (before open)".into(),
        kib(b),
        kib(base.get(1).copied().unwrap_or(0)),
        "—".into(),
    ]);
    t.row(vec![
        "idle session".into(),
        kib(i),
        kib(idle.get(1).copied().unwrap_or(0)),
        format!("**{}**", kib(i.saturating_sub(b))),
    ]);
    t.row(vec![
        format!(
            "queue full ({} pending, {} dropped)",
            full.get(2).copied().unwrap_or(0),
            full.get(3).copied().unwrap_or(0)
        ),
        kib(f),
        kib(full.get(1).copied().unwrap_or(0)),
        format!("**{}**", kib(f.saturating_sub(b))),
    ]);
    t.note(format!(
        "The full queue holds {cap} × {size} B = {} of payload; the rest is the topics, the \
         message structs and the allocator's slack.",
        kib((cap * size / 1024) as u64)
    ));
    Ok(t)
}

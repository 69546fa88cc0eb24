//! Part 8 — Idle and recovery: how often an idle connected subscriber wakes (context switches of
//! all its threads per second, `cmqtt sub` beside `mosquitto_sub`, same broker, same window),
//! and how long a supervisor takes from the broker accepting connections again to `Restored`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cmqtt::{Endpoint, Supervisor, SupervisorConfig, SupervisorEvent};
use cmqtt_testkit::{require_tool, Broker};

use crate::common::*;
use crate::report::Table;

/// Voluntary + involuntary context switches of every thread of `pid` so far.
fn switches(pid: u32) -> Res<u64> {
    let mut total = 0;
    let dir = format!("/proc/{pid}/task");
    for t in std::fs::read_dir(&dir).map_err(err(&dir))? {
        let Ok(t) = t else { continue };
        let Ok(status) = std::fs::read_to_string(t.path().join("status")) else {
            continue;
        };
        for l in status.lines() {
            if let Some(v) = l
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    Ok(total)
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Wakeups per second of `child` over `window`, after `settle`.
fn rate(child: &mut Child, settle: Duration, window: Duration) -> Res<(f64, usize)> {
    std::thread::sleep(settle);
    if let Ok(Some(st)) = child.try_wait() {
        return Err(format!("the subscriber exited early: {st}"));
    }
    let pid = child.id();
    let a = switches(pid)?;
    std::thread::sleep(window);
    let b = switches(pid)?;
    Ok(((b - a) as f64 / window.as_secs_f64(), threads(pid)))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(ctx: &Ctx) -> Res<Table> {
    let (settle, window) = if ctx.smoke {
        (Duration::from_secs(2), Duration::from_secs(1))
    } else {
        (Duration::from_secs(3), Duration::from_secs(10))
    };
    let mut t = Table::new(
        "8. Idle wakeups and recovery",
        &["what", "measure", "cmqtt", "mosquitto_sub", "ratio"],
    );
    // Idle subscribers: nothing is published on their topic during the window.
    let exe = ctx.target.join("release").join("cmqtt");
    if !exe.exists() {
        return Err(format!(
            "{} is missing: cargo build --release -p cmqtt-cli",
            exe.display()
        ));
    }
    let modem_sim = sim(None)?;
    let url = ctx.broker.url();
    let mut ours = Killed(
        Command::new(&exe)
            .args(["sub", "--port", &modem_sim.device(), "--server", &url])
            .args(["-t", "bench/idle/#", "-q", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(err("cmqtt sub"))?,
    );
    let (ours_rate, ours_threads) = rate(&mut ours.0, settle, window)?;
    drop(ours);
    let mosquitto_sub = require_tool("mosquitto_sub");
    let mut theirs = Killed(
        Command::new(mosquitto_sub)
            .args(["-h", "127.0.0.1", "-p", &ctx.broker.port.to_string()])
            .args(["-t", "bench/idle/#", "-q", "1", "-k", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(err("mosquitto_sub"))?,
    );
    let (their_rate, their_threads) = rate(&mut theirs.0, settle, window)?;
    drop(theirs);
    t.row(vec![
        format!(
            "idle subscriber, keepalive 60 s, {:.0} s window",
            window.as_secs_f64()
        ),
        "context switches / s (all threads)".into(),
        format!("{ours_rate:.1} ({ours_threads} threads)"),
        format!("{their_rate:.1} ({their_threads} threads)"),
        format!("{:.1}×", ours_rate / their_rate.max(0.1)),
    ]);

    // Recovery: broker down, up again; from "accepting connections" to Restored.
    let trials = if ctx.smoke { 1 } else { 3 };
    let mut lat = Vec::new();
    let mut broker = Broker::start();
    let sim2 = sim(None)?;
    let mut cfg = SupervisorConfig::new(
        Endpoint::Serial {
            path: sim2.device(),
            baud: 115200,
        },
        "bench-recovery",
        &broker.url(),
    );
    cfg.connect.timeout = Duration::from_secs(10);
    let sup = Supervisor::start(cfg).map_err(err("supervisor"))?;
    if !sup.wait_connected(Duration::from_secs(20)) {
        return Err("the supervisor never connected".into());
    }
    for _ in 0..trials {
        broker.stop();
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            match sup.recv_event(Duration::from_millis(200)) {
                Some(SupervisorEvent::Lost(_)) => break,
                _ if Instant::now() > end => return Err("no Lost after the broker stopped".into()),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_secs(2));
        broker.restart();
        let up = Instant::now();
        let end = up + Duration::from_secs(120);
        loop {
            match sup.recv_event(Duration::from_millis(200)) {
                Some(SupervisorEvent::Restored { .. }) => break,
                _ if Instant::now() > end => return Err("no Restored in 120 s".into()),
                _ => {}
            }
        }
        lat.push(up.elapsed());
    }
    sup.close();
    lat.sort();
    let show: Vec<String> = lat
        .iter()
        .map(|d| format!("{:.2} s", d.as_secs_f64()))
        .collect();
    t.row(vec![
        format!("recovery after a 2 s broker outage ({trials} trial(s), default backoff)"),
        "broker accepting → Restored".into(),
        show.join(", "),
        "–".into(),
        "–".into(),
    ]);
    t.note(
        "Context switches are read from /proc/PID/task/*/status (voluntary + involuntary) of \
         the subscriber process, over the window after it settled. The recovery time includes \
         the supervisor's backoff: with the default 0.5 s doubling to 60 s, a 2 s outage ends \
         while it waits up to about 2 s before its next attempt; the attempt itself (open \
         nothing, connect, subscribe) takes milliseconds on the emulator and about a second on \
         a real modem (CONNECT over the cellular link).",
    );
    Ok(t)
}

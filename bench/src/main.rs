//! `cargo run --release -p cmqtt-bench [-- --smoke] [-- --only 1,2,...] [-- --out FILE]`
//!
//! Runs the measurements of docs/PERFORMANCE.md (1 line efficiency, 2 host turnaround, 3
//! receive flood, 4 digester, 5 bindings, 6 peers, 7 memory, 8 idle and recovery), prints the tables and writes
//! them into docs/PERFORMANCE.md between its generated-section markers. `--smoke`: every part
//! with tiny sizes (seconds), no timing assertions, written to target/bench/PERFORMANCE-smoke.md;
//! it fails only if a part fails to run or a message is lost.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cmqtt_bench::alloc::CountingAlloc;
use cmqtt_bench::common::{us, Ctx, Res};
use cmqtt_bench::report::{self, Table};
use cmqtt_bench::{bindings, child, digestb, flood, idle, line, memory, peers, sys, turnaround};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const USAGE: &str =
    "usage: cmqtt-bench [--smoke] [--only 1,2,3,4,5,6,7,8] [--out FILE] [--default-timer-slack]";

fn exit_with(r: Res<()>) -> ! {
    match r {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("cmqtt-bench: {e}");
            std::process::exit(1)
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("child-publish") => exit_with(child::publish_main(&args[1..])),
        Some("child-memory") => exit_with(child::memory_main(&args[1..])),
        Some("child-workload") => exit_with(child::workload_main(&args[1..])),
        _ => {}
    }
    let mut smoke = false;
    let mut only: Option<Vec<u32>> = None;
    let mut out: Option<PathBuf> = None;
    let mut default_slack = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => smoke = true,
            "--only" => {
                only = it
                    .next()
                    .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            }
            "--out" => out = it.next().map(PathBuf::from),
            "--default-timer-slack" => default_slack = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("cmqtt-bench: unknown argument {other:?}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    if !default_slack {
        // Before any thread exists, so that every thread (the emulator's pacers above all)
        // inherits it.
        sys::set_timer_slack(1_000);
        // The emulator's pacer then ends its waits by spinning, on time (sim/src/output.rs).
        std::env::set_var("CMQTT_SIM_PRECISE_PACING", "1");
    }
    exit_with(run(smoke, only, out, default_slack))
}

fn run(smoke: bool, only: Option<Vec<u32>>, out: Option<PathBuf>, default_slack: bool) -> Res<()> {
    let started = Instant::now();
    let load_start = sys::loadavg();
    let machine = sys::machine();
    eprintln!(
        "cmqtt-bench{}: {} × {}, {}, {}, {}; load average {load_start}",
        if smoke { " --smoke" } else { "" },
        machine.cores,
        machine.cpu,
        machine.memory,
        machine.kernel,
        machine.rustc
    );
    let ctx = Ctx::new(smoke)?;
    let want = |n: u32| only.as_ref().is_none_or(|o| o.contains(&n));
    let mut tables: Vec<Table> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut summary = Table::new(
        "Summary: targets",
        &["measurement", "target", "result", "status"],
    );
    let mut section = |n: u32, name: &str, f: &mut dyn FnMut() -> Res<Table>| {
        if !want(n) {
            return;
        }
        eprintln!("\n[{n}] {name} ({:.0} s)", started.elapsed().as_secs_f64());
        match f() {
            Ok(t) => {
                println!("{}", t.text());
                tables.push(t);
            }
            Err(e) => {
                eprintln!("[{n}] {name} FAILED: {e}");
                let mut t = Table::new(name, &["error"]);
                t.row(vec![e.replace('\n', " ")]);
                tables.push(t);
                failures.push(format!("[{n}] {name}: {e}"));
            }
        }
    };

    section(1, "line efficiency", &mut || {
        let (t, rs) = line::run(&ctx)?;
        let (met, all) = (rs.iter().filter(|r| r.ratio() >= 0.95).count(), rs.len());
        let worst = rs.iter().map(|r| r.ratio()).fold(f64::INFINITY, f64::min);
        let best = rs.iter().map(|r| r.ratio()).fold(0.0, f64::max);
        summary.row(vec![
            "1. line efficiency (publish / line limit)".into(),
            "≥ 0.95".into(),
            format!("{worst:.3} … {best:.3}; {met} of {all} cells ≥ 0.95"),
            if met == all {
                "met".into()
            } else {
                format!("{} missed (see 1.)", all - met)
            },
        ]);
        Ok(t)
    });
    section(2, "host turnaround", &mut || {
        let (t, med) = turnaround::run(&ctx)?;
        summary.row(vec![
            "2. host turnaround, median".into(),
            "< 50 µs".into(),
            format!("{:.1} µs", us(med)),
            if med < Duration::from_micros(50) {
                "met".into()
            } else {
                "MISSED".into()
            },
        ]);
        Ok(t)
    });
    let mut flood_ok = true;
    section(3, "receive flood", &mut || {
        let (t, ok) = flood::run(&ctx)?;
        flood_ok = ok;
        summary.row(vec![
            "3. receive flood while publishing".into(),
            "zero lost".into(),
            if ok {
                "zero lost, in order, intact".into()
            } else {
                "LOSS (see 3.)".into()
            },
            if ok { "met".into() } else { "MISSED".into() },
        ]);
        Ok(t)
    });
    section(4, "digester", &mut || digestb::run(&ctx));
    section(5, "bindings", &mut || {
        let t = bindings::run(&ctx)?;
        for r in &t.rows {
            if r[1] == "c" || r[1] == "python" {
                summary.row(vec![
                    format!("5. {} binding: {}", r[1], r[0]),
                    r[5].split(' ').take(2).collect::<Vec<_>>().join(" "),
                    r[4].replace("**", ""),
                    r[5].split('(')
                        .nth(1)
                        .unwrap_or("")
                        .trim_end_matches(')')
                        .into(),
                ]);
            }
        }
        Ok(t)
    });
    section(6, "peers", &mut || peers::run(&ctx));
    section(7, "memory", &mut || memory::run(&ctx));
    section(8, "idle and recovery", &mut || idle::run(&ctx));

    let mut all = vec![summary];
    all.extend(tables);
    if !default_slack {
        all[0].note(
            "The harness sets its timer slack to 1 µs (prctl PR_SET_TIMERSLACK, inherited by \
             every thread and child) and `CMQTT_SIM_PRECISE_PACING=1` (the emulator spins the \
             last 60 µs of each pacing wait), so that the emulated line runs at its baud rate \
             rather than a sleep's wake-up latency slower; `--default-timer-slack` turns both \
             off.",
        );
    }
    println!("{}", all[0].text());
    let elapsed = started.elapsed().as_secs_f64();
    let command = if smoke {
        "cargo run --release -p cmqtt-bench -- --smoke"
    } else {
        "cargo run --release -p cmqtt-bench"
    };
    let path = out.unwrap_or_else(|| {
        if smoke {
            ctx.scratch().join("PERFORMANCE-smoke.md")
        } else {
            ctx.root.join("docs/PERFORMANCE.md")
        }
    });
    let load_end = sys::loadavg();
    let text = report::generated(&machine, &all, elapsed, command, (&load_start, &load_end));
    report::write_into(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("\nwrote {} ({elapsed:.0} s)", path.display());
    if !failures.is_empty() {
        return Err(format!(
            "{} part(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        ));
    }
    if !flood_ok {
        return Err("the receive flood lost or damaged messages".into());
    }
    Ok(())
}

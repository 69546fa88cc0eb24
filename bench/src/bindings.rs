//! Part 5 — Bindings: the same publish loop from Rust, C (libcmqtt) and Python (the cmqtt module),
//! each a separate process against a fresh emulator; ratio of each to Rust.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::child::{run_loop, self_exe, LoopArgs};
use crate::common::*;
use crate::pyenv;
use crate::report::Table;
use crate::stamp::median;

fn one(
    ctx: &Ctx,
    which: &str,
    exe: &Path,
    baud: Option<u32>,
    n: usize,
    qos: u8,
    size: usize,
) -> Res<f64> {
    let sim = sim(baud)?;
    let a = LoopArgs {
        port: sim.device(),
        baud: baud.unwrap_or(115_200),
        server: ctx.broker.url(),
        topic: format!("bench/bindings/{which}"),
        size,
        qos,
        n,
    };
    let mut cmd = match which {
        "rust" | "rust-thread-per-call" => {
            let mut c = Command::new(exe);
            c.arg("child-publish");
            if which == "rust-thread-per-call" {
                c.env("BENCH_THREAD_PER_CALL", "1");
            }
            c
        }
        "python" => {
            let mut c = Command::new(exe);
            c.arg(ctx.root.join("bench/peers/cmqtt_loop.py"));
            c
        }
        _ => Command::new(exe),
    };
    cmd.args(a.args());
    let d = run_loop(cmd, Duration::from_secs(300))?;
    sim.shutdown();
    Ok(n as f64 / secs(d))
}

pub fn run(ctx: &Ctx) -> Res<Table> {
    let rust = self_exe()?;
    let c = pyenv::c_program(ctx)?;
    let py = pyenv::bench_python(ctx)?;
    let cpy = pyenv::cmqtt_python(ctx, &py)?;
    let mut t = Table::new(
        "5. Bindings: the same publish loop from Rust, C and Python",
        &[
            "workload",
            "language",
            "runs (msgs/s)",
            "median msgs/s",
            "ratio to Rust",
            "target",
        ],
    );
    t.intro = "Each loop (`cmqtt-bench child-publish`, `bench/c/publish_loop.c` linked to \
               `libcmqtt.so` built with `-O2`, `bench/peers/cmqtt_loop.py` with the wheel built \
               from this tree) opens the modem, connects, publishes 2 warm-up messages and times \
               N more, in its own process against a fresh emulator; the languages take turns, \
               5 runs each, median. **Unthrottled emulator**: a paced line hides any per-call \
               cost below the line time (every binding would read 1.00 at 115200 baud), so the \
               loops run as fast as the emulator answers, where a binding's own cost per call \
               shows most. One 921600-baud row shows what is left of the difference on a real \
               line speed."
        .into();
    let mut langs: Vec<(&str, std::path::PathBuf)> = vec![
        ("rust", rust.clone()),
        ("c", c),
        ("rust-thread-per-call", rust),
    ];
    match &cpy {
        Some(p) => langs.push(("python", p.clone())),
        None => t.note(
            "Python: SKIPPED (smoke run and no venv with the cmqtt module; run ci/python.sh)",
        ),
    }
    let reps = if ctx.smoke { 1 } else { 5 };
    let workloads: Vec<(Option<u32>, u8, usize, usize)> = if ctx.smoke {
        vec![(None, 0, 16, 20)]
    } else {
        vec![
            (None, 0, 16, 3000),
            (None, 1, 256, 1500),
            (Some(921_600), 1, 256, 300),
        ]
    };
    for (baud, qos, size, n) in workloads {
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); langs.len()];
        for _ in 0..reps {
            for (i, (which, exe)) in langs.iter().enumerate() {
                let r = one(ctx, which, exe, baud, n, qos, size)?;
                eprintln!("  bindings {which} {baud:?} qos{qos} {size} B: {r:.0} msgs/s");
                rates[i].push(r);
            }
        }
        let rust_med = median(&mut rates[0].clone());
        for (i, (which, _)) in langs.iter().enumerate() {
            let m = median(&mut rates[i].clone());
            let ratio = rust_med / m;
            let target = match *which {
                "c" => format!("≤ 1.05 ({})", if ratio <= 1.05 { "met" } else { "MISSED" }),
                "python" => format!("≤ 1.5 ({})", if ratio <= 1.5 { "met" } else { "MISSED" }),
                _ => "—".into(),
            };
            t.row(vec![
                format!(
                    "{}, QoS {qos}, {size} B × {n}",
                    baud.map(|b| format!("{b} baud"))
                        .unwrap_or_else(|| "unthrottled".into())
                ),
                which.to_string(),
                rates[i]
                    .iter()
                    .map(|r| format!("{r:.0}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                format!("{m:.0}"),
                format!("**{ratio:.3}×**"),
                target,
            ]);
        }
    }
    t.note(
        "ratio = Rust msgs/s ÷ this language's msgs/s (1.00 = as fast as Rust; above 1 = slower).",
    );
    t.note(
        "rust-thread-per-call: the Rust loop with each publish run the way the Python module ran \
         a blocking call until this round (arguments copied, a thread spawned per call, the \
         result awaited on a channel in 50 ms slices) — what that design cost, without Python. \
         The module now runs the call on the calling thread with the GIL released.",
    );
    Ok(t)
}

//! Part 6 — Peers side by side: cmqtt against two pyserial implementations, at the same baud rate,
//! against the same emulator and broker.

use std::process::Command;
use std::time::Duration;

use crate::child::{run_loop, self_exe, LoopArgs};
use crate::common::*;
use crate::pyenv;
use crate::report::Table;

struct Run {
    msgs_s: f64,
    ok: String,
}

fn one(
    ctx: &Ctx,
    cmd_of: &dyn Fn(&LoopArgs) -> Command,
    baud: u32,
    qos: u8,
    size: usize,
    n: usize,
) -> Res<Run> {
    let sim = sim(Some(baud))?;
    let faults = sim.faults();
    let a = LoopArgs {
        port: sim.device(),
        baud,
        server: ctx.broker.url(),
        topic: "bench/peers".into(),
        size,
        qos,
        n,
    };
    let before = faults.stats().publishes;
    let d = run_loop(cmd_of(&a), Duration::from_secs(600))?;
    let published = faults.stats().publishes - before;
    sim.shutdown();
    Ok(Run {
        msgs_s: n as f64 / secs(d),
        // Set-up and warm-up publishes are counted by the emulator too: report what reached
        // the broker in all.
        ok: format!("{published} PUBLISH"),
    })
}

pub fn run(ctx: &Ctx) -> Res<Table> {
    let py = pyenv::bench_python(ctx)?;
    let exe = self_exe()?;
    let naive_sleep = if ctx.smoke { 0.02 } else { 0.1 };
    let mut t = Table::new(
        "6. Peers: cmqtt against pyserial scripts, same baud, same emulator",
        &[
            "baud",
            "QoS",
            "payload",
            "implementation",
            "n",
            "msgs/s",
            "reached the broker",
            "cmqtt ÷ this",
        ],
    );
    t.intro = format!(
        "(a) `bench/peers/naive_sleep.py`: the vendor-demo pattern — write a command, sleep a \
         fixed {naive_sleep} s (the shortest such scripts use; vendor demos use 0.5–1 s), read \
         whatever arrived, look for the expected text. (b) `bench/peers/careful.py`: waits for \
         the `>` prompt and for `OK` plus the `+CMQTTPUB` result line with blocking reads, never \
         sleeps. cmqtt: `cmqtt-bench child-publish`. Each in its own process, fresh emulator, \
         mosquitto; only the publish loop is timed. *reached the broker*: PUBLISH packets the \
         emulator sent (cmqtt's count includes its 2 warm-up publishes). The scripts send \
         `AT+CMQTTPUB=0,1,60`, cmqtt sends `AT+CMQTTPUB=0,1,60,0,0` (retain and dup explicit): \
         4 bytes more per publish, 3 % of a 16-byte publish at the line limit."
    );
    let cells: Vec<(u32, u8, usize, usize, usize)> = if ctx.smoke {
        vec![(115_200, 1, 16, 2, 5)]
    } else {
        vec![
            (115_200, 1, 16, 10, 150),
            (115_200, 1, 256, 10, 100),
            (921_600, 1, 256, 10, 400),
        ]
    };
    for (baud, qos, size, n_naive, n) in cells {
        let rust = |a: &LoopArgs| {
            let mut c = Command::new(&exe);
            c.arg("child-publish").args(a.args());
            c
        };
        let naive = |a: &LoopArgs| {
            let mut c = Command::new(&py);
            c.arg(ctx.root.join("bench/peers/naive_sleep.py"))
                .args(a.args())
                .arg(naive_sleep.to_string());
            c
        };
        let careful = |a: &LoopArgs| {
            let mut c = Command::new(&py);
            c.arg(ctx.root.join("bench/peers/careful.py"))
                .args(a.args());
            c
        };
        let c = one(ctx, &rust, baud, qos, size, n)?;
        let a = one(ctx, &naive, baud, qos, size, n_naive)?;
        let b = one(ctx, &careful, baud, qos, size, n)?;
        eprintln!(
            "  peers {baud} {size} B: cmqtt {:.1}, naive {:.2}, careful {:.1} msgs/s",
            c.msgs_s, a.msgs_s, b.msgs_s
        );
        for (name, r, n) in [
            ("cmqtt (Rust)", &c, n),
            ("(a) pyserial, write/sleep/read", &a, n_naive),
            ("(b) pyserial, careful", &b, n),
        ] {
            t.row(vec![
                baud.to_string(),
                qos.to_string(),
                format!("{size} B"),
                name.into(),
                n.to_string(),
                format!("{:.2}", r.msgs_s),
                r.ok.clone(),
                format!("**{:.2}×**", c.msgs_s / r.msgs_s),
            ]);
        }
    }
    Ok(t)
}

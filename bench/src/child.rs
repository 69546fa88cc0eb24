//! Child processes: the Rust publish loop (the reference of the bindings comparison) and the
//! memory probe, run as separate processes so that nothing of the harness (the emulator, the
//! broker's client, criterion) is in their address space or on their threads; and the helpers
//! that run any child (Rust, C, Python) and read its result line.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cmqtt::{ConnectOptions, Modem, ModemOptions};

use crate::common::*;
use crate::sys;

/// Arguments shared by every publish loop (Rust, C, Python, the pyserial peers):
/// `PORT BAUD SERVER TOPIC SIZE QOS N`.
#[derive(Debug, Clone)]
pub struct LoopArgs {
    pub port: String,
    pub baud: u32,
    pub server: String,
    pub topic: String,
    pub size: usize,
    pub qos: u8,
    pub n: usize,
}

impl LoopArgs {
    pub fn args(&self) -> Vec<String> {
        vec![
            self.port.clone(),
            self.baud.to_string(),
            self.server.clone(),
            self.topic.clone(),
            self.size.to_string(),
            self.qos.to_string(),
            self.n.to_string(),
        ]
    }

    pub fn parse(a: &[String]) -> Res<LoopArgs> {
        if a.len() < 7 {
            return Err("usage: PORT BAUD SERVER TOPIC SIZE QOS N".into());
        }
        let num = |i: usize| a[i].parse::<usize>().map_err(|e| format!("{}: {e}", a[i]));
        Ok(LoopArgs {
            port: a[0].clone(),
            baud: num(1)? as u32,
            server: a[2].clone(),
            topic: a[3].clone(),
            size: num(4)?,
            qos: num(5)? as u8,
            n: num(6)?,
        })
    }
}

/// `cmqtt-bench child-publish PORT BAUD SERVER TOPIC SIZE QOS N`: open, connect, 2 warm-up
/// publishes, then N timed ones; prints `elapsed_ns=<ns> ok=<n>`.
pub fn publish_main(a: &[String]) -> Res<()> {
    let a = LoopArgs::parse(a)?;
    let modem = Modem::open_with(&a.port, a.baud, ModemOptions::default()).map_err(err("open"))?;
    modem.start().map_err(err("start"))?;
    let client = modem
        .client(0, &format!("bench-rust-{}", std::process::id()), false)
        .map_err(err("acquire"))?;
    client
        .connect(&ConnectOptions::new(a.server.clone()))
        .map_err(err("connect"))?;
    let data = payload(a.size);
    let client = std::sync::Arc::new(client);
    // BENCH_THREAD_PER_CALL=1: every publish runs the way python/src/wait.rs runs a blocking
    // call: topic and payload copied, a new thread spawned for the call, the result waited for
    // on a channel in 50 ms slices. Measures what that design costs, in Rust.
    let per_call_thread = std::env::var_os("BENCH_THREAD_PER_CALL").is_some();
    let publish = || -> Res<()> {
        if !per_call_thread {
            return client
                .publish(&a.topic, &data, a.qos, false, Duration::from_secs(60))
                .map_err(err("publish"));
        }
        let (c, t, p, q) = (client.clone(), a.topic.clone(), data.clone(), a.qos);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("cmqtt-publish".into())
            .spawn(move || {
                let _ = tx.send(c.publish(&t, &p, q, false, Duration::from_secs(60)));
            })
            .map_err(err("spawn"))?;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(r) => return r.map_err(err("publish")),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(e) => return Err(format!("publish thread: {e}")),
            }
        }
    };
    publish()?;
    publish()?;
    let t0 = Instant::now();
    for _ in 0..a.n {
        publish()?;
    }
    let ns = t0.elapsed().as_nanos();
    println!("elapsed_ns={ns} ok={}", a.n);
    client
        .disconnect(Duration::from_secs(60))
        .map_err(err("disconnect"))?;
    Ok(())
}

/// `cmqtt-bench child-memory PORT SERVER TOPIC`: prints `baseline`, `idle` and (after the
/// parent filled the message queue) `full` lines with VmRSS and VmHWM in KiB.
pub fn memory_main(a: &[String]) -> Res<()> {
    if a.len() < 3 {
        return Err("usage: PORT SERVER TOPIC".into());
    }
    let (rss, hwm) = sys::rss_kib();
    println!("baseline {rss} {hwm}");
    let opts = ModemOptions::default();
    let capacity = opts.queue_capacity;
    let modem = Modem::open_with(&a[0], 115_200, opts).map_err(err("open"))?;
    modem.start().map_err(err("start"))?;
    let client = modem
        .client(0, "bench-memory", false)
        .map_err(err("acquire"))?;
    client
        .connect(&ConnectOptions::new(a[1].clone()))
        .map_err(err("connect"))?;
    client
        .subscribe(&[(a[2].as_str(), 1)])
        .map_err(err("subscribe"))?;
    std::thread::sleep(Duration::from_millis(300));
    let (rss, hwm) = sys::rss_kib();
    println!("idle {rss} {hwm}");
    println!("ready {capacity}");
    let end = Instant::now() + Duration::from_secs(60);
    while (client.pending_messages() < capacity || client.dropped_messages() == 0)
        && Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let (rss, hwm) = sys::rss_kib();
    println!(
        "full {rss} {hwm} {} {}",
        client.pending_messages(),
        client.dropped_messages()
    );
    client.discard();
    Ok(())
}

/// `cmqtt-bench child-workload PUBLISHES MESSAGES [pub|rx|dry]`: a fixed amount of library work against the
/// scripted modem (QoS 0 publishes of 16 B, then received messages of the digester's stream),
/// for instruction counts under `valgrind --tool=callgrind` (deterministic, unlike time on a
/// shared machine). Prints the allocation counts per publish and per message.
pub fn workload_main(a: &[String]) -> Res<()> {
    use crate::fake::FakeModem;
    let pubs: usize = a.first().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let rxs: usize = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let (fake, host) = FakeModem::start().map_err(err("fake modem"))?;
    let reader = host.try_clone().map_err(err("clone"))?;
    let opts = ModemOptions {
        queue_capacity: rxs + 16,
        ..ModemOptions::default()
    };
    let modem = Modem::with_transport(reader, host, opts).map_err(err("open"))?;
    modem.start().map_err(err("start"))?;
    let c0 = modem
        .client(0, "bench-work0", false)
        .map_err(err("acquire"))?;
    let c1 = modem
        .client(1, "bench-work1", false)
        .map_err(err("acquire"))?;
    for c in [&c0, &c1] {
        c.connect(&ConnectOptions::new("tcp://127.0.0.1:1883"))
            .map_err(err("connect"))?;
    }
    let data = payload(16);
    let (stream, _) = crate::digestb::stream(rxs, false);
    // MODE (3rd argument): `pub` or `rx` only, `dry` neither (everything but the library's
    // work: the baseline for instruction counts), default both.
    let mode = a.get(2).map(String::as_str).unwrap_or("both");
    let (do_pub, do_rx) = match mode {
        "dry" => (false, false),
        "pub" => (true, false),
        "rx" => (false, true),
        _ => (true, true),
    };
    let (a0, _) = crate::alloc::counts();
    for _ in 0..if do_pub { pubs } else { 0 } {
        c0.publish("bench/work", &data, 0, false, Duration::from_secs(60))
            .map_err(err("publish"))?;
    }
    let (a1, _) = crate::alloc::counts();
    let mut got = 0;
    if do_rx && rxs > 0 {
        fake.inject(&stream);
        // Wait without polling hard (instruction counts stay repeatable), then drain.
        let end = Instant::now() + Duration::from_secs(600);
        while c0.pending_messages() + c1.pending_messages() < rxs && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        while c0.try_recv().is_some() {
            got += 1;
        }
        while c1.try_recv().is_some() {
            got += 1;
        }
    }
    let (a2, _) = crate::alloc::counts();
    println!(
        "publishes={pubs} allocs_per_publish={:.2} messages={got}/{rxs} allocs_per_message={:.2}",
        (a1 - a0) as f64 / pubs.max(1) as f64,
        (a2 - a1) as f64 / rxs.max(1) as f64
    );
    c0.discard();
    c1.discard();
    Ok(())
}

/// Runs a publish loop child and returns its timed part.
pub fn run_loop(mut cmd: Command, timeout: Duration) -> Res<Duration> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = format!("{:?}", cmd.get_program());
    let mut child = cmd.spawn().map_err(|e| format!("{what}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            s.push_str(&l);
            s.push('\n');
        }
        s
    });
    let out_reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let end = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what} timed out after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let lines = out_reader.join().unwrap_or_default();
    let errs = err_reader.join().unwrap_or_default();
    let ns = lines
        .iter()
        .find_map(|l| l.strip_prefix("elapsed_ns="))
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
    match (status.success(), ns) {
        (true, Some(ns)) => Ok(Duration::from_nanos(ns)),
        _ => Err(format!(
            "{what} failed ({status}): {}\n{}",
            lines.join("\n"),
            errs.lines().rev().take(15).collect::<Vec<_>>().join("\n")
        )),
    }
}

/// The bench binary itself, for child modes.
pub fn self_exe() -> Res<std::path::PathBuf> {
    std::env::current_exe().map_err(err("current_exe"))
}

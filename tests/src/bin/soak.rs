//! `soak`: N publishes at QoS 1 and 2 through the library's `Supervisor`, the emulator (on a pty
//! behind a symlink, so that the port can vanish) and a real mosquitto, while a fault thread
//! injects F faults at random moments: broker restart, connection drop, network loss, modem
//! reset, port vanishing, garbage bytes, stalled answers. An independent subscriber
//! (`mosquitto_sub`, persistent session, QoS 2) counts what arrived.
//!
//! ```text
//! cargo run --release -p cmqtt-e2e --bin soak -- --messages 3000 --faults 30 [--seed S]
//!     [--model a7600|sim7600|sim7672x] [--qos 1,2] [--max-payload BYTES] [--deadline SECS] [-v]
//! ```
//!
//! Exits 0 when no QoS 1/2 message is lost, no QoS 2 message acknowledged at its first attempt
//! arrived twice, no payload arrived changed and no QoS 1/2 publish failed or was dropped;
//! 1 otherwise; 2 for bad arguments; 3 when the global deadline passed. Everything runs on
//! 127.0.0.1; the broker and the subscriber are child processes killed at the end (and by the
//! kernel if this process dies).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cmqtt::{
    Backoff, Delivery, DeliveryStatus, Endpoint, Error, State, Supervisor, SupervisorConfig,
    SupervisorEvent,
};
use cmqtt_sim::{Faults, Model as SimModel, SimConfig, Simulator};
use cmqtt_testkit::{Broker, BrokerOptions, PeerOptions, Subscriber, TempDir};

const USAGE: &str =
    "usage: soak --messages N --faults F [--seed S] [--model a7600|sim7600|sim7672x] \
[--qos 1,2] [--max-payload BYTES] [--deadline SECS] [-v]";

struct Args {
    messages: u64,
    faults: u32,
    seed: u64,
    model: SimModel,
    qos: Vec<u8>,
    max_payload: usize,
    deadline: Option<Duration>,
    verbose: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        messages: 1000,
        faults: 10,
        seed: 1,
        model: SimModel::A7600,
        qos: vec![1, 2],
        max_payload: 256,
        deadline: None,
        verbose: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-v" || flag == "--verbose" {
            a.verbose = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| -> Result<u64, String> {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v:?}"))
        };
        match flag.as_str() {
            "--messages" | "-n" => a.messages = num(&value)?,
            "--faults" | "-f" => a.faults = num(&value)? as u32,
            "--seed" => a.seed = num(&value)?,
            "--model" => a.model = value.parse().map_err(|e| format!("--model: {e}"))?,
            "--qos" => {
                a.qos = value
                    .split(',')
                    .map(|q| match q.trim() {
                        "0" => Ok(0),
                        "1" => Ok(1),
                        "2" => Ok(2),
                        other => Err(format!("--qos: {other:?} is not 0, 1 or 2")),
                    })
                    .collect::<Result<_, _>>()?;
                if a.qos.is_empty() {
                    return Err("--qos: empty".into());
                }
            }
            "--max-payload" => {
                a.max_payload = (num(&value)? as usize).clamp(MIN_PAYLOAD, 4096);
            }
            "--deadline" => a.deadline = Some(Duration::from_secs(num(&value)?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.messages == 0 {
        return Err("--messages must be at least 1".into());
    }
    Ok(a)
}

/// xorshift64*: seeded, reproducible, no dependency.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn range_ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FaultKind {
    BrokerRestart,
    ConnectionDrop,
    NetworkLoss,
    ModemReset,
    PortVanish,
    Garbage,
    Stall,
}

impl FaultKind {
    const ALL: [FaultKind; 7] = [
        FaultKind::BrokerRestart,
        FaultKind::ConnectionDrop,
        FaultKind::NetworkLoss,
        FaultKind::ModemReset,
        FaultKind::PortVanish,
        FaultKind::Garbage,
        FaultKind::Stall,
    ];
    fn name(self) -> &'static str {
        match self {
            FaultKind::BrokerRestart => "broker restart",
            FaultKind::ConnectionDrop => "connection drop",
            FaultKind::NetworkLoss => "network loss",
            FaultKind::ModemReset => "modem reset",
            FaultKind::PortVanish => "port vanishing",
            FaultKind::Garbage => "garbage bytes",
            FaultKind::Stall => "stalled answers",
        }
    }
}

const MIN_PAYLOAD: usize = 40;

/// The payload of message `seq`: a header with the sequence number, then bytes that a
/// line-based reader would choke on (NUL, CR LF, `OK`, a fake URC, 0xff), to `len` bytes.
fn payload(seq: u64, qos: u8, max: usize) -> Vec<u8> {
    let mut r = Rng::new(seq ^ 0x5eed);
    let len = MIN_PAYLOAD + r.below((max - MIN_PAYLOAD + 1) as u64) as usize;
    let mut p = format!("soak {seq:010} q{qos} ").into_bytes();
    const NASTY: &[&[u8]] = &[
        b"\x00",
        b"\r\n",
        b"\r\nOK\r\n",
        b"+CMQTTRXEND: 0\r\n",
        b"\xff\xfe",
        b">",
    ];
    while p.len() < len {
        if r.below(4) == 0 {
            p.extend_from_slice(NASTY[r.below(NASTY.len() as u64) as usize]);
        } else {
            p.push(r.next() as u8);
        }
    }
    p.truncate(len);
    p
}

fn parse_seq(p: &[u8]) -> Option<u64> {
    let s = p.strip_prefix(b"soak ")?;
    std::str::from_utf8(s.get(..10)?).ok()?.parse().ok()
}

/// Random noise for the `inject` fault: random bytes and malformed received-message lines.
/// Never a well-formed final result or result line: a forged `+CMQTTPUB: 0,0` would be an
/// acknowledgement no library can tell from a real one.
fn garbage(r: &mut Rng) -> Vec<u8> {
    const HOSTILE: &[&[u8]] = &[
        b"\r\n+CMQTTRXPAYLOAD: 0,99999\r\n",
        b"\r\n+CMQTTRXSTART: 7,1,1\r\n",
        b"\r\n+CMQTTRXEND: 0\r\n",
        b"\r\n+CMQTTRXTOPIC: 0,4294967296\r\n",
        b"\r\n\xff\xfe\xfd\x00\r\n",
        b"\r\nRING\r\n",
        b"\r\n+CMQTTBOGUS: 1,2,3\r\n",
    ];
    let mut g = Vec::new();
    for _ in 0..1 + r.below(4) {
        if r.below(2) == 0 {
            g.extend_from_slice(HOSTILE[r.below(HOSTILE.len() as u64) as usize]);
        } else {
            for _ in 0..1 + r.below(64) {
                g.push(r.next() as u8);
            }
            g.extend_from_slice(b"\r\n");
        }
    }
    g
}

/// Counters shared by the threads.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    settled: AtomicU64,
    received: AtomicU64,
    lost_events: Mutex<BTreeMap<&'static str, u64>>,
    restored: AtomicU64,
    attempts_failed: AtomicU64,
    failed_events: AtomicU64,
    dropped_events: AtomicU64,
}

/// What became of one message.
#[derive(Clone, Default)]
struct Rec {
    qos: u8,
    sent: bool,
    status: Option<DeliveryStatus>,
    attempts: u32,
    received: u32,
    corrupted: u32,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("soak: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    run(args)
}

fn run(args: Args) -> ExitCode {
    let started = Instant::now();
    let n = args.messages;
    let deadline_after = args
        .deadline
        .unwrap_or_else(|| Duration::from_secs(300 + n / 20 + 20 * u64::from(args.faults)));
    let deadline = started + deadline_after;
    let abort = Arc::new(AtomicBool::new(false));
    let phase = Arc::new(Mutex::new("starting"));
    // Last resort if something hangs past the deadline: the broker and the subscriber die with
    // this process (PR_SET_PDEATHSIG), the emulator is in-process.
    {
        let abort = abort.clone();
        let phase = phase.clone();
        std::thread::spawn(move || {
            let d = deadline.saturating_duration_since(Instant::now());
            std::thread::sleep(d);
            abort.store(true, Ordering::SeqCst);
            eprintln!(
                "soak: global deadline of {deadline_after:?} passed while {}; stopping",
                phase.lock().unwrap()
            );
            std::thread::sleep(Duration::from_secs(90));
            eprintln!("soak: FAILED: still not stopped 90 s after the deadline; exiting hard");
            std::process::exit(3);
        });
    }
    let set_phase = |p: &'static str| *phase.lock().unwrap() = p;

    println!(
        "cmqtt soak: {n} messages at QoS {:?}, {} faults, seed {}, model {}, payloads {}..={} bytes",
        args.qos, args.faults, args.seed, args.model, MIN_PAYLOAD, args.max_payload
    );
    // The broker keeps sessions across restarts and queues without limit for the subscriber
    // while it reconnects.
    let broker = Broker::start_with(BrokerOptions {
        persistence: true,
        extra_config: "max_queued_messages 0\n".into(),
        ..Default::default()
    });
    let sub = Subscriber::start_opts(
        &broker,
        &["soak/#"],
        2,
        PeerOptions {
            client_id: Some(format!("soak-counter-{}", std::process::id())),
            clean_session: false,
            ..Default::default()
        },
    );
    let dir = TempDir::new("cmqtt-soak");
    let link = dir.path().join("ttyUSB2");
    let sim =
        Simulator::start_pty_link(SimConfig::new(args.model), &link).expect("start the emulator");
    let faults = sim.faults();

    let mut cfg = SupervisorConfig::new(
        Endpoint::Serial {
            path: link.display().to_string(),
            baud: 115200,
        },
        "soak-publisher",
        &broker.url(),
    );
    cfg.modem.sync_timeout = Duration::from_secs(5);
    cfg.client.check_utf8 = Some(false);
    cfg.connect.timeout = Duration::from_secs(10);
    cfg.backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(2),
        jitter: 0.25,
    };
    let counts = Arc::new(Counts::default());
    let sup = Arc::new(Supervisor::start(cfg).expect("start the supervisor"));
    {
        let c = counts.clone();
        let verbose = args.verbose;
        let t0 = started;
        sup.on_event(move |e| {
            match e {
                SupervisorEvent::Lost(l) => {
                    let k = l.kind();
                    *c.lost_events.lock().unwrap().entry(k).or_default() += 1;
                }
                SupervisorEvent::Restored { .. } => {
                    c.restored.fetch_add(1, Ordering::Relaxed);
                }
                SupervisorEvent::AttemptFailed { .. } => {
                    c.attempts_failed.fetch_add(1, Ordering::Relaxed);
                }
                SupervisorEvent::Failed { .. } => {
                    c.failed_events.fetch_add(1, Ordering::Relaxed);
                }
                SupervisorEvent::Dropped { .. } => {
                    c.dropped_events.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
            if verbose && !matches!(e, SupervisorEvent::Modem(_)) {
                eprintln!("[{:8.3}] {e:?}", t0.elapsed().as_secs_f64());
            }
        });
    }
    if !sup.wait_connected(Duration::from_secs(30)) {
        eprintln!("soak: FAILED: the supervisor did not connect within 30 s");
        return ExitCode::from(1);
    }

    let recs: Arc<Mutex<Vec<Rec>>> = Arc::new(Mutex::new(vec![Rec::default(); n as usize]));
    let qos_of = |seq: u64| args.qos[(seq % args.qos.len() as u64) as usize];
    for seq in 0..n {
        recs.lock().unwrap()[seq as usize].qos = qos_of(seq);
    }

    // The independent subscriber's reader.
    let stop_sub = Arc::new(AtomicBool::new(false));
    let sub_thread = {
        let recs = recs.clone();
        let counts = counts.clone();
        let stop = stop_sub.clone();
        let max = args.max_payload;
        let mut sub = sub;
        std::thread::spawn(move || {
            let mut unknown = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let Some(m) = sub.next(Duration::from_millis(100)) else {
                    continue;
                };
                match parse_seq(&m.payload) {
                    Some(seq) if seq < n => {
                        let mut r = recs.lock().unwrap();
                        let rec = &mut r[seq as usize];
                        if m.payload != payload(seq, rec.qos, max) {
                            rec.corrupted += 1;
                        }
                        rec.received += 1;
                        counts.received.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => unknown += 1,
                }
            }
            (sub, unknown)
        })
    };

    // Tickets settle in order (the outbox is FIFO): one thread waits on them.
    let (ticket_tx, ticket_rx) = mpsc::channel::<(u64, Delivery)>();
    let checker = {
        let recs = recs.clone();
        let counts = counts.clone();
        let abort = abort.clone();
        std::thread::spawn(move || {
            for (seq, d) in ticket_rx {
                let st = loop {
                    let st = d.wait(Duration::from_millis(200));
                    if st != DeliveryStatus::Queued || abort.load(Ordering::SeqCst) {
                        break st;
                    }
                };
                let mut r = recs.lock().unwrap();
                r[seq as usize].status = Some(st);
                r[seq as usize].attempts = d.attempts();
                drop(r);
                counts.settled.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    // The fault thread: fault i when `settled` passes a random threshold, once the supervisor
    // is connected again after the previous one.
    let fault_log: Arc<Mutex<BTreeMap<FaultKind, u64>>> = Arc::default();
    let broker = Arc::new(Mutex::new(broker));
    let injected = Arc::new(AtomicUsize::new(0));
    let faults_done = Arc::new(AtomicBool::new(false));
    let fault_thread = {
        let counts = counts.clone();
        let abort = abort.clone();
        let sup = sup.clone();
        let broker = broker.clone();
        let log = fault_log.clone();
        let injected = injected.clone();
        let done = faults_done.clone();
        let faults: Faults = faults.clone();
        let nfaults = args.faults;
        let seed = args.seed;
        let verbose = args.verbose;
        std::thread::spawn(move || {
            let mut rng = Rng::new(seed);
            let lo = n / 50;
            let hi = (n * 97 / 100).max(lo + 1);
            let mut thresholds: Vec<u64> = (0..nfaults).map(|_| lo + rng.below(hi - lo)).collect();
            thresholds.sort_unstable();
            // Every kind at least once (when there are enough faults), in random order.
            let mut kinds: Vec<FaultKind> = Vec::new();
            while kinds.len() < nfaults as usize {
                let mut round = FaultKind::ALL.to_vec();
                for i in (1..round.len()).rev() {
                    round.swap(i, rng.below(i as u64 + 1) as usize);
                }
                kinds.extend(round);
            }
            for (i, thr) in thresholds.into_iter().enumerate() {
                while counts.settled.load(Ordering::SeqCst) < thr {
                    if abort.load(Ordering::SeqCst) {
                        done.store(true, Ordering::SeqCst);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                let until = Instant::now() + Duration::from_secs(30);
                while sup.state() != State::Connected && Instant::now() < until {
                    if abort.load(Ordering::SeqCst) {
                        done.store(true, Ordering::SeqCst);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                std::thread::sleep(rng.range_ms(0, 150));
                let kind = kinds[i];
                if verbose {
                    eprintln!("soak: fault {}: {}", i + 1, kind.name());
                }
                match kind {
                    FaultKind::BrokerRestart => {
                        let mut b = broker.lock().unwrap();
                        b.stop();
                        std::thread::sleep(rng.range_ms(100, 1500));
                        b.restart();
                    }
                    FaultKind::ConnectionDrop => faults.drop_connection(0, 1 + rng.below(2) as u8),
                    FaultKind::NetworkLoss => faults.lose_network(),
                    FaultKind::ModemReset => faults.reset(),
                    FaultKind::PortVanish => faults.vanish(rng.range_ms(200, 2500)),
                    FaultKind::Garbage => faults.inject(&garbage(&mut rng)),
                    FaultKind::Stall => {
                        faults.stall(true);
                        std::thread::sleep(rng.range_ms(500, 4000));
                        faults.stall(false);
                    }
                }
                *log.lock().unwrap().entry(kind).or_default() += 1;
                injected.fetch_add(1, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    // Progress, every 10 s.
    let progress_stop = Arc::new(AtomicBool::new(false));
    let progress = {
        let counts = counts.clone();
        let injected = injected.clone();
        let stop = progress_stop.clone();
        let sup = sup.clone();
        let nf = args.faults;
        std::thread::spawn(move || {
            let mut last = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                if last.elapsed() >= Duration::from_secs(10) {
                    last = Instant::now();
                    eprintln!(
                        "soak: [{:6.0} s] sent {} settled {} received {} faults {}/{} outbox {} state {:?}",
                        started.elapsed().as_secs_f64(),
                        counts.sent.load(Ordering::Relaxed),
                        counts.settled.load(Ordering::Relaxed),
                        counts.received.load(Ordering::Relaxed),
                        injected.load(Ordering::Relaxed),
                        nf,
                        sup.outbox_len(),
                        sup.state()
                    );
                }
            }
        })
    };

    // Produce.
    set_phase("publishing");
    let mut refused = 0u64;
    'produce: for seq in 0..n {
        let qos = qos_of(seq);
        let topic = format!("soak/q{qos}");
        let p = payload(seq, qos, args.max_payload);
        loop {
            if abort.load(Ordering::SeqCst) {
                break 'produce;
            }
            match sup.publish(&topic, &p, qos, false) {
                Ok(d) => {
                    recs.lock().unwrap()[seq as usize].sent = true;
                    counts.sent.fetch_add(1, Ordering::Relaxed);
                    let _ = ticket_tx.send((seq, d));
                    break;
                }
                // The outbox stayed full for a whole publish timeout: keep trying.
                Err(Error::Timeout { .. }) => continue,
                Err(e) => {
                    eprintln!("soak: publish {seq} refused: {e}");
                    refused += 1;
                    break;
                }
            }
        }
    }
    drop(ticket_tx);

    set_phase("waiting for the outbox to drain");
    let _ = checker.join();
    // Every threshold is below the total: the fault thread is finishing its last fault.
    set_phase("waiting for the fault thread");
    while !faults_done.load(Ordering::SeqCst) && !abort.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = fault_thread.join();
    faults.stall(false);
    let publishing_done = started.elapsed();

    // Stragglers: wait until every acknowledged (or still queued) message arrived, or nothing
    // new came for 15 s.
    set_phase("waiting for stragglers");
    let expected = |recs: &[Rec]| {
        recs.iter()
            .filter(|r| {
                r.sent
                    && r.qos > 0
                    && matches!(
                        r.status,
                        Some(DeliveryStatus::Delivered) | Some(DeliveryStatus::Queued) | None
                    )
                    && r.received == 0
            })
            .count()
    };
    let mut last_received = counts.received.load(Ordering::SeqCst);
    let mut quiet_since = Instant::now();
    loop {
        if abort.load(Ordering::SeqCst) {
            break;
        }
        if expected(&recs.lock().unwrap()) == 0 {
            // Give late duplicates a moment to show up too.
            std::thread::sleep(Duration::from_secs(2));
            break;
        }
        let now = counts.received.load(Ordering::SeqCst);
        if now != last_received {
            last_received = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() > Duration::from_secs(15) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    set_phase("closing");
    progress_stop.store(true, Ordering::SeqCst);
    let _ = progress.join();
    stop_sub.store(true, Ordering::SeqCst);
    let (sub, unknown) = sub_thread.join().expect("subscriber thread");
    drop(sub);
    let queued_at_end = sup.outbox_len();
    let sup = match Arc::try_unwrap(sup) {
        Ok(s) => s,
        Err(_) => panic!("the supervisor is still shared"),
    };
    sup.close();
    drop(sim);
    drop(broker);
    drop(dir);
    let elapsed = started.elapsed();
    let timed_out = abort.load(Ordering::SeqCst);

    // The table.
    let recs = recs.lock().unwrap();
    let mut ok = !timed_out;
    println!();
    println!(
        "{:<6} {:>9} {:>9} {:>9} {:>6} {:>10} {:>8} {:>7} {:>7} {:>7} {:>9}",
        "",
        "sent",
        "acked",
        "received",
        "lost",
        "duplicated",
        "dup@1st",
        "failed",
        "dropped",
        "queued",
        "resent"
    );
    for q in args
        .qos
        .iter()
        .copied()
        .collect::<std::collections::BTreeSet<u8>>()
    {
        let rs: Vec<&Rec> = recs.iter().filter(|r| r.qos == q && r.sent).collect();
        let sent = rs.len();
        let acked = rs
            .iter()
            .filter(|r| r.status == Some(DeliveryStatus::Delivered))
            .count();
        let received = rs.iter().filter(|r| r.received > 0).count();
        let failed = rs
            .iter()
            .filter(|r| matches!(r.status, Some(DeliveryStatus::Failed(_))))
            .count();
        let dropped = rs
            .iter()
            .filter(|r| r.status == Some(DeliveryStatus::Dropped))
            .count();
        let queued = rs
            .iter()
            .filter(|r| matches!(r.status, Some(DeliveryStatus::Queued) | None))
            .count();
        let lost = rs
            .iter()
            .filter(|r| {
                r.received == 0
                    && matches!(
                        r.status,
                        Some(DeliveryStatus::Delivered) | Some(DeliveryStatus::Queued) | None
                    )
            })
            .count();
        let dup = rs.iter().filter(|r| r.received > 1).count();
        let dup_first = rs
            .iter()
            .filter(|r| {
                r.received > 1 && r.status == Some(DeliveryStatus::Delivered) && r.attempts == 1
            })
            .count();
        let resent = rs.iter().filter(|r| r.attempts > 1).count();
        println!(
            "{:<6} {:>9} {:>9} {:>9} {:>6} {:>10} {:>8} {:>7} {:>7} {:>7} {:>9}",
            format!("QoS {q}"),
            sent,
            acked,
            received,
            lost,
            dup,
            dup_first,
            failed,
            dropped,
            queued,
            resent
        );
        if q > 0 && (lost > 0 || failed > 0 || dropped > 0) {
            ok = false;
        }
        if q == 2 && dup_first > 0 {
            ok = false;
        }
    }
    let corrupted: u32 = recs.iter().map(|r| r.corrupted).sum();
    if corrupted > 0 || refused > 0 {
        ok = false;
    }
    let total_acked = recs
        .iter()
        .filter(|r| r.status == Some(DeliveryStatus::Delivered))
        .count();
    println!(
        "(lost = acknowledged or still queued but never received; dup@1st = received twice although \
acknowledged at the first attempt; resent = sent again after an interrupted attempt)"
    );
    let fl = fault_log.lock().unwrap();
    let total_faults: u64 = fl.values().sum();
    println!(
        "faults injected: {total_faults} ({})",
        FaultKind::ALL
            .iter()
            .map(|k| format!("{} {}", k.name(), fl.get(k).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "supervisor: losses {:?}, restorations {}, failed attempts {}; corrupted payloads {corrupted}, \
refused publishes {refused}, unknown messages {unknown}, queued at the end {queued_at_end}",
        counts.lost_events.lock().unwrap(),
        counts.restored.load(Ordering::Relaxed),
        counts.attempts_failed.load(Ordering::Relaxed),
    );
    println!(
        "elapsed {:.1} s (publishing and delivery {:.1} s), {:.1} msgs/s acknowledged",
        elapsed.as_secs_f64(),
        publishing_done.as_secs_f64(),
        total_acked as f64 / publishing_done.as_secs_f64().max(0.001)
    );
    if timed_out {
        println!(
            "RESULT: FAILED: the global deadline of {deadline_after:?} passed (see stderr for the phase)"
        );
        return ExitCode::from(3);
    }
    if ok {
        println!("RESULT: PASS (zero lost at QoS 1/2, zero duplicated acknowledged QoS 2)");
        ExitCode::SUCCESS
    } else {
        println!("RESULT: FAILED");
        ExitCode::from(1)
    }
}

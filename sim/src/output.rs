//! The modem's transmit side: one writer thread takes whole units (a
//! response, a URC, a received-message block) from a channel and writes each
//! one atomically to the current host, paced at the configured baud rate.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::shared::Shared;

/// Where output bytes go (the pty master or the current TCP client).
pub(crate) trait Sink: Send {
    /// Writes all of `data`, or drops it when no host is there to read it
    /// (a UART with nobody listening loses bytes, it does not block).
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
}

/// One atomic piece of output.
#[derive(Debug)]
pub(crate) struct Unit {
    pub bytes: Vec<u8>,
}

impl Unit {
    pub fn raw(bytes: Vec<u8>) -> Unit {
        Unit { bytes }
    }
}

/// Output queued for the host beyond which new units are dropped (a host
/// that does not read loses data, the modem does not grow without bound).
const MAX_QUEUED: usize = 8 * 1024 * 1024;

/// Cloneable sender of output units.
#[derive(Clone, Debug)]
pub(crate) struct Output {
    tx: mpsc::Sender<Unit>,
    queued: Arc<AtomicUsize>,
}

impl Output {
    /// Creates the sender and the writer loop (to run on its own thread).
    pub fn new(
        mut sink: Box<dyn Sink>,
        shared: Arc<Shared>,
        stop: Arc<AtomicBool>,
    ) -> (Output, impl FnOnce() + Send + 'static) {
        let (tx, rx) = mpsc::channel::<Unit>();
        let queued = Arc::new(AtomicUsize::new(0));
        let queued2 = queued.clone();
        let writer = move || {
            let mut pacer = Pacer::new();
            loop {
                let unit = match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(u) => u,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                };
                queued2.fetch_sub(unit.bytes.len(), Ordering::Relaxed);
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                if shared.is_stalled() {
                    continue;
                }
                write_paced(&mut *sink, &unit.bytes, &shared, &mut pacer);
            }
        };
        (Output { tx, queued }, writer)
    }

    pub fn send(&self, unit: Unit) {
        let n = unit.bytes.len();
        if n == 0 {
            return;
        }
        log::trace!(target: "cmqtt_sim::wire", "modem< {:?}", String::from_utf8_lossy(&unit.bytes));
        if self.queued.fetch_add(n, Ordering::Relaxed) + n > MAX_QUEUED {
            self.queued.fetch_sub(n, Ordering::Relaxed);
            log::warn!("host is not reading: {n} output bytes dropped");
            return;
        }
        if self.tx.send(unit).is_err() {
            self.queued.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

fn write_paced(sink: &mut dyn Sink, data: &[u8], shared: &Shared, pacer: &mut Pacer) {
    match shared.baud() {
        None => {
            if sink.write_all(data).is_ok() {
                Shared::bump(&shared.bytes_out, data.len() as u64);
            }
        }
        Some(baud) => {
            // Write in slices of ~10 ms worth of bytes so that a long unit
            // trickles out like it would over a UART.
            let per_slice = (baud as usize / 1000).max(1);
            for chunk in data.chunks(per_slice) {
                pacer.pace(chunk.len(), shared.baud());
                if sink.write_all(chunk).is_err() {
                    return;
                }
                Shared::bump(&shared.bytes_out, chunk.len() as u64);
            }
        }
    }
}

/// Keeps a byte stream at `baud / 10` bytes per second.
#[derive(Debug)]
pub(crate) struct Pacer {
    next: Instant,
}

impl Pacer {
    pub fn new() -> Pacer {
        Pacer {
            next: Instant::now(),
        }
    }

    /// Sleeps so that `n` more bytes respect the rate (no-op when `baud` is
    /// `None`).
    pub fn pace(&mut self, n: usize, baud: Option<u32>) {
        let Some(baud) = baud.filter(|b| *b > 0) else {
            return;
        };
        let now = Instant::now();
        if self.next < now {
            self.next = now;
        }
        let nanos = (n as u64).saturating_mul(10_000_000_000) / u64::from(baud);
        self.next += Duration::from_nanos(nanos);
        let wait = self.next.saturating_duration_since(now);
        if !wait.is_zero() {
            if precise_pacing() {
                // A sleep ends tens of µs late (timer slack, wake-up latency): sleep to
                // shortly before the deadline, then spin to it.
                if wait > PRECISE_SPIN {
                    std::thread::sleep(wait - PRECISE_SPIN);
                }
                while Instant::now() < self.next {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::sleep(wait);
            }
        }
    }
}

/// The last part of a pacing wait that is spun rather than slept with
/// [`precise_pacing`].
const PRECISE_SPIN: Duration = Duration::from_micros(60);

/// `CMQTT_SIM_PRECISE_PACING=1` in the environment (read once): pacing waits
/// end on time, at the cost of spinning for up to ~60 µs per paced write. For
/// benchmarks (cmqtt-bench sets it), where a late sleep would make the
/// emulated line slower than its baud rate.
fn precise_pacing() -> bool {
    static PRECISE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PRECISE.get_or_init(|| {
        std::env::var_os("CMQTT_SIM_PRECISE_PACING").is_some_and(|v| !v.is_empty() && v != "0")
    })
}

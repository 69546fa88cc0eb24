//! A transport that timestamps every read and write: the library's side of the port, wrapped so
//! that the time from the arrival of an answer's last byte to the first byte of the next command
//! can be measured without touching the library.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// `read` returned bytes (stamped when it returned).
    Read,
    /// `write` was called (stamped before the call).
    Write,
}

#[derive(Debug, Clone, Copy)]
pub struct Ev {
    pub ns: u64,
    pub dir: Dir,
    pub n: usize,
}

/// The shared event log.
#[derive(Debug)]
pub struct Stamps {
    t0: Instant,
    on: AtomicBool,
    events: Mutex<Vec<Ev>>,
}

impl Stamps {
    pub fn new() -> Arc<Stamps> {
        Arc::new(Stamps {
            t0: Instant::now(),
            on: AtomicBool::new(false),
            events: Mutex::new(Vec::with_capacity(1 << 16)),
        })
    }

    /// Start recording (clears what was recorded).
    pub fn start(&self) {
        self.events.lock().unwrap().clear();
        self.on.store(true, Ordering::SeqCst);
    }

    /// Stop recording and take the log.
    pub fn stop(&self) -> Vec<Ev> {
        self.on.store(false, Ordering::SeqCst);
        std::mem::take(&mut *self.events.lock().unwrap())
    }

    fn push(&self, dir: Dir, at: Instant, n: usize) {
        if self.on.load(Ordering::Relaxed) {
            let ns = at.duration_since(self.t0).as_nanos() as u64;
            self.events.lock().unwrap().push(Ev { ns, dir, n });
        }
    }
}

/// Turnarounds in a log: for every write that follows one or more reads, the time from the last
/// of those reads to the write.
pub fn turnarounds(events: &[Ev]) -> Vec<Duration> {
    let mut out = Vec::new();
    let mut last_read: Option<u64> = None;
    for e in events {
        match e.dir {
            Dir::Read => last_read = Some(e.ns),
            Dir::Write => {
                if let Some(r) = last_read.take() {
                    out.push(Duration::from_nanos(e.ns.saturating_sub(r)));
                }
            }
        }
    }
    out
}

pub struct StampRead<R> {
    pub inner: R,
    pub stamps: Arc<Stamps>,
}

impl<R: Read> Read for StampRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.stamps.push(Dir::Read, Instant::now(), n);
        }
        Ok(n)
    }
}

pub struct StampWrite<W> {
    pub inner: W,
    pub stamps: Arc<Stamps>,
    /// Pass `flush` on to `inner`. `false` for a serial port: `Modem::open`'s own writer does
    /// not `tcdrain` on flush (core/src/modem.rs, `WritePort`), and this stands in for it.
    pub flush: bool,
}

impl<W: Write> Write for StampWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stamps.push(Dir::Write, Instant::now(), buf.len());
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.flush {
            self.inner.flush()
        } else {
            Ok(())
        }
    }
}

/// The `q`-quantile (0..=1) of `v` (sorted in place).
pub fn quantile(v: &mut [Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Median of plain numbers.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turnaround_runs_from_the_last_read_to_the_next_write() {
        let ev = |ns, dir| Ev { ns, dir, n: 1 };
        let log = [
            ev(0, Dir::Write),
            ev(10, Dir::Read),
            ev(15, Dir::Read),
            ev(20, Dir::Write),
            ev(22, Dir::Write),
            ev(30, Dir::Read),
            ev(31, Dir::Write),
        ];
        assert_eq!(
            turnarounds(&log),
            vec![Duration::from_nanos(5), Duration::from_nanos(1)]
        );
    }
}

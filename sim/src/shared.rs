//! The flags and counters shared by the transport threads, the writer, the
//! engine and the fault handles.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// State shared by the transport threads, the writer, the engine and the
/// [`crate::Faults`] handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub stalled: AtomicBool,
    pub slow: Mutex<Option<Duration>>,
    /// 0 = unthrottled.
    pub baud: AtomicU32,
    pub commands: AtomicU64,
    pub publishes: AtomicU64,
    pub delivered: AtomicU64,
    pub dropped: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub host_connected: AtomicBool,
}

impl Shared {
    pub fn new(baud: Option<u32>) -> Shared {
        Shared {
            stalled: AtomicBool::new(false),
            slow: Mutex::new(None),
            baud: AtomicU32::new(baud.unwrap_or(0)),
            commands: AtomicU64::new(0),
            publishes: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            host_connected: AtomicBool::new(false),
        }
    }

    pub fn baud(&self) -> Option<u32> {
        match self.baud.load(Ordering::Relaxed) {
            0 => None,
            b => Some(b),
        }
    }

    pub fn is_stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    pub fn bump(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

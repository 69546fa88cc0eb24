//! Rate-limited logging: a warning that can repeat once per received byte (a flood of refused
//! messages, a full queue) is logged the first time, then at every power of two of its count,
//! and otherwise at most once per interval, each time with how many were not logged in between.
//! The counts themselves stay exact; only the log lines are thinned.
//!
//! ```ignore
//! static FULL: RateLimit = RateLimit::new(Duration::from_secs(10));
//! if let Some(h) = FULL.hit() {
//!     log::warn!("cmqtt: queue full{}", h.note());
//! }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One kind of repeated warning. See the module documentation.
#[derive(Debug)]
pub(crate) struct RateLimit {
    every: Duration,
    /// Occurrences so far.
    total: AtomicU64,
    /// `total` when the last one was logged.
    logged_at: AtomicU64,
    /// When the last one was logged, in nanoseconds after `origin()` (0: never).
    last_ns: AtomicU64,
}

/// A counted occurrence that is to be logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    /// Occurrences so far, this one included.
    pub total: u64,
    /// Occurrences since the last logged one that were not logged.
    pub suppressed: u64,
}

impl Hit {
    /// A suffix for the log line: empty the first time, the counts after that.
    pub(crate) fn note(&self) -> String {
        match (self.total, self.suppressed) {
            (1, _) => String::new(),
            (t, 0) => format!(" ({t} times so far)"),
            (t, s) => format!(" ({t} times so far; {s} similar not logged)"),
        }
    }
}

fn origin() -> Instant {
    static O: OnceLock<Instant> = OnceLock::new();
    *O.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    // +1: 0 means "never logged".
    u64::try_from(origin().elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

impl RateLimit {
    /// A limiter that logs at most once per `every` beyond the first time and the powers of two.
    pub(crate) const fn new(every: Duration) -> Self {
        RateLimit {
            every,
            total: AtomicU64::new(0),
            logged_at: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
        }
    }

    /// Counts one occurrence; `Some` when this one is to be logged.
    pub(crate) fn hit(&self) -> Option<Hit> {
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        let now = now_ns();
        let last = self.last_ns.load(Ordering::Relaxed);
        let every = u64::try_from(self.every.as_nanos()).unwrap_or(u64::MAX);
        let due = total.is_power_of_two() || now.saturating_sub(last) >= every;
        if !due {
            return None;
        }
        // One thread logs a given occurrence: whoever moves the mark.
        if self
            .last_ns
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
            && !total.is_power_of_two()
        {
            return None;
        }
        let before = self.logged_at.swap(total, Ordering::Relaxed);
        Some(Hit {
            total,
            suppressed: total.saturating_sub(before).saturating_sub(1),
        })
    }

    /// Occurrences counted so far, and how many of them were not logged since the last one
    /// that was (for a summary when the session ends).
    pub(crate) fn unlogged(&self) -> (u64, u64) {
        let total = self.total.load(Ordering::Relaxed);
        (
            total,
            total.saturating_sub(self.logged_at.load(Ordering::Relaxed)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_then_powers_of_two_then_at_most_once_per_interval() {
        let r = RateLimit::new(Duration::from_secs(3600));
        let logged: Vec<Hit> = (0..100_000).filter_map(|_| r.hit()).collect();
        let totals: Vec<u64> = logged.iter().map(|h| h.total).collect();
        assert_eq!(totals, (0..17).map(|i| 1u64 << i).collect::<Vec<_>>());
        assert_eq!(logged[0].note(), "");
        assert_eq!(logged[1].suppressed, 0);
        assert_eq!(logged[16].suppressed, 65536 - 32768 - 1);
        assert!(logged[16].note().contains("32767 similar not logged"));
        assert_eq!(r.unlogged(), (100_000, 100_000 - 65536));

        let r = RateLimit::new(Duration::ZERO);
        assert_eq!((0..10).filter_map(|_| r.hit()).count(), 10);
    }
}

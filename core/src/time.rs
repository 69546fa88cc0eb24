//! Deadlines that never overflow: a caller may pass `Duration::MAX` for "no limit".

use std::time::{Duration, Instant};

/// `Instant::now() + d`, saturated: a timeout too large to represent means "about a century".
pub(crate) fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// `at + d`, saturated like [`deadline_after`].
pub(crate) fn saturating_add(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_saturate() {
        let d = deadline_after(Duration::MAX);
        assert!(d > Instant::now() + Duration::from_secs(3600));
        let a = Instant::now();
        assert!(saturating_add(a, Duration::MAX) > a);
        assert_eq!(
            saturating_add(a, Duration::from_secs(1)),
            a + Duration::from_secs(1)
        );
    }
}

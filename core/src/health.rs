//! Connection health as *state*, not as events.
//!
//! The reader records every change of health — a client connected or lost (`+CMQTTCONNLOST`),
//! the network gone (`+CMQTTNONET`), the modem restarted (`RDY`), the port failed — here
//! *before* anything is queued or any callback runs. Whoever needs to know (the supervisor,
//! [`crate::Client::is_connected`], a binding) reads this record or waits for it to change;
//! nothing depends on an event queue having room, so a slow callback can delay events but can
//! never hide a loss.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::time::deadline_after;

/// A snapshot of a session's health. Counters only grow, so two snapshots tell what happened
/// in between (see [`crate::supervise::policy::loss_between`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// Bumped by every change: a cheap "anything new since?".
    pub seq: u64,
    /// Whether each client (0, 1) is connected to its broker as far as the modem has said.
    pub connected: [bool; 2],
    /// `+CMQTTCONNLOST` reports per client, since the session opened.
    pub losses: [u64; 2],
    /// The `<cause>` of each client's latest `+CMQTTCONNLOST`.
    pub last_cause: [Option<u8>; 2],
    /// `+CMQTTNONET` reports since the session opened.
    pub no_network: u64,
    /// Modem restarts (`RDY` after the session opened). Clients acquired before are gone.
    pub restarts: u64,
    /// Why the session ended (port failed, end of file, dropped), once it has.
    pub closed: Option<String>,
}

type Listener = Arc<dyn Fn() + Send + Sync>;

/// The record, its condition variable, and listeners told of every change (the supervisor's
/// mailbox). Listeners run on the thread that made the change (usually the reader): they must
/// only wake someone, never block.
pub(crate) struct HealthCell {
    state: Mutex<Health>,
    changed: Condvar,
    listeners: Mutex<Vec<(u64, Listener)>>,
    next_listener: AtomicU64,
}

impl HealthCell {
    pub(crate) fn new() -> Self {
        HealthCell {
            state: Mutex::new(Health::default()),
            changed: Condvar::new(),
            listeners: Mutex::new(Vec::new()),
            next_listener: AtomicU64::new(1),
        }
    }

    /// Apply `f`; when it reports a change, bump `seq`, wake waiters and tell listeners.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut Health) -> (bool, R)) -> R {
        let (changed, r) = {
            let mut h = self.state.lock();
            let (changed, r) = f(&mut h);
            if changed {
                h.seq += 1;
            }
            (changed, r)
        };
        if changed {
            self.changed.notify_all();
            let ls: Vec<Listener> = self
                .listeners
                .lock()
                .iter()
                .map(|(_, l)| l.clone())
                .collect();
            for l in ls {
                l();
            }
        }
        r
    }

    pub(crate) fn snapshot(&self) -> Health {
        self.state.lock().clone()
    }

    pub(crate) fn read<R>(&self, f: impl FnOnce(&Health) -> R) -> R {
        f(&self.state.lock())
    }

    /// Waits until `seq` differs from `since` (or `timeout`), and returns the record then.
    pub(crate) fn wait_change(&self, since: u64, timeout: Duration) -> Health {
        let deadline = deadline_after(timeout);
        let mut h = self.state.lock();
        while h.seq == since {
            if self.changed.wait_until(&mut h, deadline).timed_out() {
                break;
            }
        }
        h.clone()
    }

    pub(crate) fn add_listener(&self, f: Listener) -> u64 {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        self.listeners.lock().push((id, f));
        id
    }

    pub(crate) fn remove_listener(&self, id: u64) {
        self.listeners.lock().retain(|(i, _)| *i != id);
    }

    // ---- the changes the reader and the transactions record -------------------------------

    pub(crate) fn is_connected(&self, client: u8) -> bool {
        self.read(|h| h.connected[client as usize & 1])
    }

    /// Sets a client's connected flag; returns what it was.
    pub(crate) fn set_connected(&self, client: u8, on: bool) -> bool {
        self.update(|h| {
            let was = std::mem::replace(&mut h.connected[client as usize & 1], on);
            (was != on, was)
        })
    }

    /// `+CMQTTCONNLOST`: returns whether the client was connected.
    pub(crate) fn record_lost(&self, client: u8, cause: u8) -> bool {
        self.update(|h| {
            let i = client as usize & 1;
            let was = std::mem::replace(&mut h.connected[i], false);
            h.losses[i] += 1;
            h.last_cause[i] = Some(cause);
            (true, was)
        })
    }

    /// `+CMQTTNONET`: returns the clients that were connected.
    pub(crate) fn record_no_network(&self) -> [bool; 2] {
        self.update(|h| {
            let was = h.connected;
            h.connected = [false; 2];
            h.no_network += 1;
            (true, was)
        })
    }

    /// `RDY` after the session opened: returns the new restart count (the generation).
    pub(crate) fn record_restart(&self) -> u64 {
        self.update(|h| {
            h.connected = [false; 2];
            h.restarts += 1;
            (true, h.restarts)
        })
    }

    pub(crate) fn record_closed(&self, reason: &str) {
        self.update(|h| {
            if h.closed.is_some() {
                return (false, ());
            }
            h.closed = Some(reason.to_string());
            h.connected = [false; 2];
            (true, ())
        })
    }

    pub(crate) fn generation(&self) -> u64 {
        self.read(|h| h.restarts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn changes_bump_seq_wake_waiters_and_listeners() {
        let cell = Arc::new(HealthCell::new());
        let told = Arc::new(AtomicUsize::new(0));
        let t = told.clone();
        let id = cell.add_listener(Arc::new(move || {
            t.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(!cell.set_connected(0, true));
        // Setting the same value again is no change.
        assert!(cell.set_connected(0, true));
        assert_eq!(told.load(Ordering::SeqCst), 1);
        let seq = cell.snapshot().seq;
        let c = cell.clone();
        let waiter = std::thread::spawn(move || c.wait_change(seq, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        assert!(cell.record_lost(0, 1));
        let h = waiter.join().unwrap();
        assert_eq!(h.losses, [1, 0]);
        assert_eq!(h.last_cause[0], Some(1));
        assert!(!h.connected[0]);
        cell.remove_listener(id);
        cell.record_no_network();
        assert_eq!(told.load(Ordering::SeqCst), 2);
        assert_eq!(cell.record_restart(), 1);
        cell.record_closed("gone");
        cell.record_closed("again");
        assert_eq!(cell.snapshot().closed.as_deref(), Some("gone"));
    }

    #[test]
    fn wait_change_times_out_with_the_same_record() {
        let cell = HealthCell::new();
        let h = cell.wait_change(0, Duration::from_millis(10));
        assert_eq!(h.seq, 0);
        // A huge timeout must not overflow.
        cell.set_connected(1, true);
        assert_eq!(cell.wait_change(0, Duration::MAX).seq, 1);
    }
}

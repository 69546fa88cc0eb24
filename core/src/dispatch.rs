//! Callbacks, owned by the core for every binding.
//!
//! There is one stream per kind of news — each client's messages, the modem's events — and it
//! is a bounded pull queue. A callback does not get a second queue: when one is installed, the
//! dispatch thread drains that same queue into it. So a slow callback makes its queue fill and
//! overflow (counted and reported, oldest first by default), and nothing is ever stashed aside.
//!
//! Control news (connection lost, no network, modem restart) is *state* first (see
//! [`crate::health`]); as events it is never evicted by data: a full event queue drops its
//! oldest *data* event to make room, and the `on_connection_lost` callbacks have their own
//! queue, drained before any message.
//!
//! A [`CallbackSlot`] holds one callback and the token of the handle that installed it: a stale
//! handle (a `Client` from before a modem restart, dropped later by Python's garbage collector)
//! can only clear its own callback, never its successor's. Replacing or clearing a callback
//! waits until the old one has returned, so after `clear` returns it will not run again —
//! unless called from inside a callback (on the dispatch thread), where waiting would deadlock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;

use parking_lot::{Condvar, Mutex};

/// Handles get a token each, so that a slot knows who installed its callback.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// A token for a new handle.
pub(crate) fn new_token() -> u64 {
    NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
}

/// The token that any handle may replace or clear (the modem-level callback).
pub(crate) const ANY_OWNER: u64 = 0;

struct SlotState<F: ?Sized> {
    cb: Option<(u64, Arc<F>)>,
    /// Calls in progress (of the current or an earlier callback).
    running: u32,
}

/// One callback, its owner, and whether it is running. See the module documentation.
pub(crate) struct CallbackSlot<F: ?Sized> {
    state: Mutex<SlotState<F>>,
    idle: Condvar,
}

impl<F: ?Sized> CallbackSlot<F> {
    pub(crate) fn new() -> Self {
        CallbackSlot {
            state: Mutex::new(SlotState {
                cb: None,
                running: 0,
            }),
            idle: Condvar::new(),
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.state.lock().cb.is_some()
    }

    /// Installs `cb` for `owner`, replacing whatever was there. Returns once the replaced
    /// callback is no longer running (at once when called from a callback).
    pub(crate) fn set(&self, owner: u64, cb: Arc<F>, on_dispatch_thread: bool) {
        let mut st = self.state.lock();
        st.cb = Some((owner, cb));
        self.wait_idle(st, on_dispatch_thread);
    }

    /// Removes the callback if `owner` installed it (or is [`ANY_OWNER`]); returns whether it
    /// did. Returns once the removed callback is no longer running (see [`CallbackSlot::set`]).
    pub(crate) fn clear(&self, owner: u64, on_dispatch_thread: bool) -> bool {
        let mut st = self.state.lock();
        let mine = st
            .cb
            .as_ref()
            .is_some_and(|(o, _)| owner == ANY_OWNER || *o == owner);
        if !mine {
            return false;
        }
        st.cb = None;
        self.wait_idle(st, on_dispatch_thread);
        true
    }

    fn wait_idle(
        &self,
        mut st: parking_lot::MutexGuard<'_, SlotState<F>>,
        on_dispatch_thread: bool,
    ) {
        if on_dispatch_thread || in_callback() {
            return;
        }
        while st.running > 0 {
            self.idle.wait(&mut st);
        }
    }

    /// Takes the callback for one call; the guard marks it running until dropped.
    pub(crate) fn enter(&self) -> Option<Running<'_, F>> {
        let mut st = self.state.lock();
        let cb = st.cb.as_ref()?.1.clone();
        st.running += 1;
        Some(Running { slot: self, cb })
    }
}

/// A callback being called; see [`CallbackSlot::enter`].
pub(crate) struct Running<'a, F: ?Sized> {
    slot: &'a CallbackSlot<F>,
    pub(crate) cb: Arc<F>,
}

impl<F: ?Sized> Drop for Running<'_, F> {
    fn drop(&mut self) {
        let mut st = self.slot.state.lock();
        st.running -= 1;
        if st.running == 0 {
            self.slot.idle.notify_all();
        }
    }
}

/// Wakes the dispatch thread: something was queued, or a callback was installed.
pub(crate) struct Wake {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl Wake {
    pub(crate) fn new() -> Self {
        Wake {
            pending: Mutex::new(false),
            cv: Condvar::new(),
        }
    }

    pub(crate) fn notify(&self) {
        *self.pending.lock() = true;
        self.cv.notify_one();
    }

    /// Blocks until notified (no timeout: the dispatch thread sleeps while nothing happens).
    pub(crate) fn wait(&self) {
        let mut p = self.pending.lock();
        while !*p {
            self.cv.wait(&mut p);
        }
        *p = false;
    }
}

thread_local! {
    /// How deep the current thread is inside cmqtt callbacks.
    static IN_CALLBACK: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Whether the calling thread is running a cmqtt callback (a message, connection-lost, modem or
/// supervisor event callback). The one may-I-block policy for every binding: inside a callback
/// nothing waits for what only a callback thread can deliver (a full outbox fails at once with
/// [`crate::Error::OutboxFull`]; replacing a callback does not wait for the old one).
pub fn in_callback() -> bool {
    IN_CALLBACK.with(|c| c.get() > 0)
}

/// Runs a user callback: marked as inside a callback (see [`in_callback`]); a panic is logged
/// and delivery goes on.
pub(crate) fn guarded(f: impl FnOnce()) {
    struct Depth;
    impl Drop for Depth {
        fn drop(&mut self) {
            IN_CALLBACK.with(|c| c.set(c.get().saturating_sub(1)));
        }
    }
    IN_CALLBACK.with(|c| c.set(c.get() + 1));
    let _depth = Depth;
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        log::error!("cmqtt: a callback panicked; delivery goes on");
    }
}

/// Which thread runs callbacks, so that "am I inside a callback?" is answered in one place.
#[derive(Default)]
pub(crate) struct DispatchThread(OnceLock<ThreadId>);

impl DispatchThread {
    pub(crate) fn set(&self, id: ThreadId) {
        let _ = self.0.set(id);
    }

    /// Whether the calling thread is the dispatch thread (a callback is calling us): then we
    /// must not wait for anything only the dispatch thread can deliver.
    pub(crate) fn is_current(&self) -> bool {
        self.0.get() == Some(&std::thread::current().id())
    }
}

impl std::fmt::Debug for DispatchThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DispatchThread")
            .field(&self.0.get())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    type Cb = dyn Fn() + Send + Sync;

    #[test]
    fn a_stale_owner_cannot_clear_its_successor() {
        let slot: CallbackSlot<Cb> = CallbackSlot::new();
        let (old, new) = (new_token(), new_token());
        slot.set(old, Arc::new(|| {}), false);
        slot.set(new, Arc::new(|| {}), false);
        assert!(
            !slot.clear(old, false),
            "the old handle's clear must not remove the new one"
        );
        assert!(slot.is_set());
        assert!(slot.clear(new, false));
        assert!(!slot.is_set());
        slot.set(new, Arc::new(|| {}), false);
        assert!(slot.clear(ANY_OWNER, false));
    }

    #[test]
    fn clear_waits_for_the_running_callback() {
        let slot: Arc<CallbackSlot<Cb>> = Arc::new(CallbackSlot::new());
        let started = Arc::new((Mutex::new(false), Condvar::new()));
        let release = Arc::new((Mutex::new(false), Condvar::new()));
        let (s2, r2) = (started.clone(), release.clone());
        let token = new_token();
        slot.set(
            token,
            Arc::new(move || {
                *s2.0.lock() = true;
                s2.1.notify_all();
                let mut g = r2.0.lock();
                while !*g {
                    r2.1.wait(&mut g);
                }
            }),
            false,
        );
        let s = slot.clone();
        let caller = std::thread::spawn(move || {
            let run = s.enter().unwrap();
            (run.cb)();
        });
        {
            let mut g = started.0.lock();
            while !*g {
                started.1.wait(&mut g);
            }
        }
        let s = slot.clone();
        let clearer = std::thread::spawn(move || s.clear(token, false));
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !clearer.is_finished(),
            "clear returned while the callback ran"
        );
        *release.0.lock() = true;
        release.1.notify_all();
        assert!(clearer.join().unwrap());
        caller.join().unwrap();
        // From the dispatch thread it must not wait (it would wait for itself).
        slot.set(token, Arc::new(|| {}), false);
        let _run = slot.enter().unwrap();
        assert!(slot.clear(token, true));
    }
}

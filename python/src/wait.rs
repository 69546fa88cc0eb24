//! Waiting on the modem without holding the GIL, without a thread per call, and without
//! becoming deaf to Ctrl-C.
//!
//! Python runs signal handlers only on the main thread, between two bytecodes: a main thread
//! blocked in a core call with the GIL released would never see Ctrl-C. Rather than waiting in
//! slices (waking 20 times a second while idle) or running each call on a worker thread, a
//! blocking call runs on the calling thread, with the GIL released, and is made *wakeable*:
//!
//! - **Other threads** need no signal handling: the core call simply runs there.
//! - **The main thread** lends Python a wakeup fd for the duration of the call
//!   (`signal.set_wakeup_fd`; the previous fd is restored afterwards, and every signal number
//!   written to ours meanwhile is passed on to it, so an asyncio loop still hears its signals).
//!   Python's C-level handler writes each signal's number there. One helper thread per process
//!   (`cmqtt-signals`, started at the first such call, blocked in `read` the rest of the time)
//!   wakes the call:
//!   - a modem transaction, or a receive wait the core can cut short (`Client::next_message`),
//!     is interrupted with [`cmqtt::Modem::interrupt`];
//!   - a call that has no modem to interrupt (opening a port, closing a supervisor) runs on a
//!     pooled worker thread while the main thread waits on a condition variable, which the
//!     helper notifies.
//!
//!   The main thread then runs the Python handlers (`PyErr_CheckSignals`) and raises what they
//!   raise; if they raise nothing, a wait simply goes on.
//! - Waits the core offers no way to cut short (the supervisor's waits, `Modem.recv_event`,
//!   `Delivery.wait`) still wait in slices of [`SLICE`] on the main thread (see the module
//!   documentation of `cmqtt` for the list).
//!
//! Which signal interrupts what: `Modem::interrupt` acts on the whole session, so it is used
//! with care. Ctrl-C with Python's default handler (`KeyboardInterrupt`, certain to raise)
//! interrupts the main thread's call at once when no other thread has an AT command of the
//! same modem in flight, else after [`FORCE_AFTER`] (then that command fails too, with the
//! core's "interrupted" error). Any other signal with a Python handler (which may well not
//! raise) only cuts a *wait* short, and only while no AT command of that modem is in flight
//! ([`Gate`] counts them); during an AT command of the main thread it is handled when the
//! command returns, so that a handler that does not raise never costs a command.
//!
//! What happens to an interrupted AT command: the core stops waiting for it at once and returns
//! an `Interrupted` error; what the modem still answers later is passed on as events, and the
//! next command first gets back in step with the modem. An interrupted publish may therefore
//! still be delivered; this is logged on the `cmqtt` logger.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use pyo3::prelude::*;

use crate::errors;
use crate::pylog;

/// How long a wait that nothing can cut short keeps the GIL released on the main thread
/// between two signal checks.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// How long Ctrl-C waits for other threads' AT commands of the same modem to finish before it
/// interrupts them along with the main thread's call.
pub(crate) const FORCE_AFTER: Duration = Duration::from_millis(40);

// ---- sessions ---------------------------------------------------------------------------------

/// One per modem session (shared by a `Modem` and its `Client`s): how many of the binding's AT
/// transactions are in flight on it, from any thread. An interrupt that is not Ctrl-C waits
/// for none to be in flight, so that it only ever cuts a wait short.
#[derive(Default)]
pub(crate) struct Gate {
    inflight: AtomicUsize,
}

/// Marks one transaction in flight on a [`Gate`] while alive.
struct Busy<'a>(&'a Gate);

impl Gate {
    fn enter(&self) -> Busy<'_> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        Busy(self)
    }

    fn inflight(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A modem session, for calls that can be interrupted on it.
#[derive(Clone)]
pub(crate) struct Session {
    modem: cmqtt::Modem,
    gate: Arc<Gate>,
}

impl Session {
    pub(crate) fn new(modem: cmqtt::Modem, gate: Arc<Gate>) -> Session {
        Session { modem, gate }
    }

    pub(crate) fn modem(&self) -> &cmqtt::Modem {
        &self.modem
    }

    /// Wakes the threads waiting for a message on this session (they re-check whether their
    /// client is still there), without failing an AT command: only once none is in flight,
    /// giving up after `patience`. Call it with the GIL released.
    pub(crate) fn wake_receivers(&self, patience: Duration) {
        let until = Instant::now() + patience;
        loop {
            if self.gate.inflight() == 0 {
                self.modem.interrupt();
                return;
            }
            if Instant::now() >= until {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Whether `e` is the core's answer to [`cmqtt::Modem::interrupt`].
pub(crate) fn is_interrupted(e: &cmqtt::Error) -> bool {
    matches!(e, cmqtt::Error::Io(io) if io.kind() == std::io::ErrorKind::Interrupted)
}

// ---- the main thread --------------------------------------------------------------------------

thread_local! {
    /// (process id, whether this thread is Python's main thread), found once per thread.
    static MAIN: Cell<Option<(u32, bool)>> = const { Cell::new(None) };
}

/// Whether the calling thread is Python's main thread, the only one signal handlers run on.
pub(crate) fn on_main_thread(py: Python<'_>) -> bool {
    let pid = std::process::id();
    MAIN.with(|m| match m.get() {
        // A forked child's main thread is the one that forked: ask again there.
        Some((p, main)) if p == pid => main,
        _ => {
            let main = is_main(py).unwrap_or(false);
            m.set(Some((pid, main)));
            main
        }
    })
}

fn is_main(py: Python<'_>) -> PyResult<bool> {
    let threading = py.import("threading")?;
    let main = threading.call_method0("main_thread")?.getattr("ident")?;
    main.eq(threading.call_method0("get_ident")?)
}

// ---- blocking calls ---------------------------------------------------------------------------

/// Runs the AT transaction `f` on `session` on the calling thread with the GIL released. On the
/// main thread a signal interrupts it (see the module documentation) and the exception its
/// handler raises is raised here. `what` names the call in logs ("publish", "connect", ...).
pub(crate) fn call<T, F>(py: Python<'_>, what: &'static str, session: Session, f: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> cmqtt::Result<T> + Send + 'static,
{
    if !on_main_thread(py) {
        let r = py.detach(move || {
            let r = {
                let _busy = session.gate.enter();
                f()
            };
            drop(session);
            r
        });
        return r.map_err(|e| errors::to_py(py, e));
    }
    let waker = watch::Waker::Interrupt {
        session: session.clone(),
        transaction: true,
    };
    let Some(guard) = watch::enter(py, waker)? else {
        // No signal watcher here: the call runs on a worker, waited for in slices.
        return offload(py, what, move || {
            let _busy = session.gate.enter();
            f()
        });
    };
    let id = guard.id();
    let (r, signals) = py.detach(move || {
        let r = {
            let _busy = session.gate.enter();
            f()
        };
        // Every session handle of this call goes here, without the GIL (see drop_detached).
        drop(session);
        (r, watch::leave(id))
    });
    guard.restore(py);
    if let Err(e) = py.check_signals() {
        if signals > 0 {
            if let Err(err) = &r {
                if is_interrupted(err) {
                    pylog::log(
                        py,
                        pylog::WARNING,
                        &format!(
                            "cmqtt: {what} interrupted by a signal; the modem may still carry it out (its late answer is passed on as a modem event)"
                        ),
                    );
                }
            }
        }
        // A core handle the call returned is dropped without the GIL.
        py.detach(move || drop(r));
        return Err(e);
    }
    r.map_err(|e| errors::to_py(py, e))
}

/// Runs `f`, which has no modem session to interrupt (opening a port, closing a supervisor),
/// with the GIL released: on the calling thread, except on the main thread, where it runs on a
/// pooled worker thread and the main thread waits for it, woken by a signal. An interrupted
/// call is not cancelled: it finishes on the worker and its outcome is logged.
pub(crate) fn offload<T, F>(py: Python<'_>, what: &'static str, f: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> cmqtt::Result<T> + Send + 'static,
{
    if !on_main_thread(py) {
        return py.detach(f).map_err(|e| errors::to_py(py, e));
    }
    // Err: the call panicked (a bug); the waiter must not wait for it forever.
    let slot = Arc::new(Slot::<std::thread::Result<cmqtt::Result<T>>>::default());
    let poke = {
        let s = slot.clone();
        Arc::new(move || s.poke()) as Arc<dyn Fn() + Send + Sync>
    };
    let guard = watch::enter(py, watch::Waker::Notify(poke))?;
    let s = slot.clone();
    let job = Box::new(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        if let Some(r) = s.put(r) {
            // The caller was interrupted and is gone: say how the call ended.
            let outcome = match &r {
                Ok(Ok(_)) => "succeeded".to_string(),
                Ok(Err(e)) => format!("failed: {e}"),
                Err(_) => "panicked".to_string(),
            };
            pylog::log_detached(
                pylog::WARNING,
                &format!(
                    "cmqtt: {what} (interrupted in Python) finished in the background: {outcome}"
                ),
            );
            drop(r);
        }
    });
    if let Err(e) = pool::run(job) {
        if let Some(g) = guard {
            let id = g.id();
            py.detach(|| watch::leave(id));
            g.restore(py);
        }
        return Err(errors::internal(format!(
            "cannot start a worker thread for {what}: {e}"
        )));
    }
    let slice = if guard.is_some() { None } else { Some(SLICE) };
    loop {
        let got = py.detach(|| slot.take(slice));
        if let Some(r) = got {
            if let Some(g) = guard {
                let id = g.id();
                py.detach(|| watch::leave(id));
                g.restore(py);
            }
            return match r {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(errors::to_py(py, e)),
                Err(_) => Err(errors::internal(format!(
                    "the worker thread of {what} panicked"
                ))),
            };
        }
        if let Some(g) = &guard {
            g.ack();
        }
        if let Err(e) = py.check_signals() {
            if let Some(g) = guard {
                let id = g.id();
                py.detach(|| watch::leave(id));
                g.restore(py);
            }
            // Finished just now? Then it is logged as finished in the background.
            if let Some(r) = slot.abandon() {
                py.detach(move || drop(r));
            }
            return Err(e);
        }
    }
}

/// A result handed from a worker to the waiting caller.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
    cv: Condvar,
}

struct SlotState<T> {
    result: Option<T>,
    /// Set by a signal: the waiter should run the handlers.
    poked: bool,
    /// The waiter is gone.
    abandoned: bool,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            state: Mutex::new(SlotState {
                result: None,
                poked: false,
                abandoned: false,
            }),
            cv: Condvar::new(),
        }
    }
}

impl<T> Slot<T> {
    /// Hands `r` over; gives it back when the waiter is gone.
    fn put(&self, r: T) -> Option<T> {
        let mut st = self.state.lock();
        if st.abandoned {
            return Some(r);
        }
        st.result = Some(r);
        drop(st);
        self.cv.notify_all();
        None
    }

    fn poke(&self) {
        self.state.lock().poked = true;
        self.cv.notify_all();
    }

    /// The result, once there; None when poked or after `slice`.
    fn take(&self, slice: Option<Duration>) -> Option<T> {
        let mut st = self.state.lock();
        loop {
            if let Some(r) = st.result.take() {
                return Some(r);
            }
            if std::mem::take(&mut st.poked) {
                return None;
            }
            match slice {
                Some(s) => {
                    if self.cv.wait_for(&mut st, s).timed_out() {
                        return st.result.take();
                    }
                }
                None => self.cv.wait(&mut st),
            }
        }
    }

    /// The waiter leaves; a result that came meanwhile is returned.
    fn abandon(&self) -> Option<T> {
        let mut st = self.state.lock();
        st.abandoned = true;
        st.result.take()
    }
}

// ---- waits ------------------------------------------------------------------------------------

/// What can cut a wait short.
pub(crate) enum Wake<'a> {
    /// `Modem::interrupt` on this session makes the step return (`Client::next_message`); the
    /// step is given all the time that is left.
    Interrupt(&'a Session),
    /// Nothing but the core itself, which also wakes the step when `done()` becomes true (a
    /// closed queue, a stopped supervisor): the step waits all the time that is left, except
    /// on the main thread, where it waits in slices of [`SLICE`] between signal checks.
    Core,
    /// Nothing at all: the step waits in slices of [`SLICE`] on every thread, so that `done()`
    /// is noticed.
    Never,
}

/// Calls `step(limit)` (with the GIL released) until it yields something, `timeout` passes, or
/// `done()` says waiting is pointless; on the main thread, runs the signal handlers whenever
/// woken. `step` must return by `limit` (`Duration::MAX`: no limit).
pub(crate) fn poll<T, S, D>(
    py: Python<'_>,
    timeout: Option<Duration>,
    wake: Wake<'_>,
    step: S,
    done: D,
) -> PyResult<Option<T>>
where
    T: Send,
    S: Fn(Duration) -> Option<T> + Sync,
    D: Fn() -> bool + Sync,
{
    // Saturated: a timeout beyond what the clock can hold (1e18 s) is no deadline.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let main = on_main_thread(py);
    let guard = match (&wake, main) {
        (Wake::Interrupt(s), true) => watch::enter(
            py,
            watch::Waker::Interrupt {
                session: (*s).clone(),
                transaction: false,
            },
        )?,
        _ => None,
    };
    let sliced = match wake {
        Wake::Interrupt(_) => main && guard.is_none(),
        Wake::Core => main,
        Wake::Never => true,
    };
    let id = guard.as_ref().map(|g| g.id());
    // The call is unregistered in the same detached stretch as the last step, so that the
    // registry's session handle is never dropped with the GIL held.
    let finish = || {
        if let Some(id) = id {
            watch::leave(id);
        }
    };
    let result = loop {
        let got = py.detach(|| {
            let limit = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            let limit = if sliced { limit.min(SLICE) } else { limit };
            if let Some(v) = step(limit) {
                finish();
                return Some(Some(v));
            }
            if done() || deadline.is_some_and(|d| Instant::now() >= d) {
                finish();
                return Some(None);
            }
            None
        });
        if let Some(r) = got {
            break Ok(r);
        }
        if main {
            if let Some(g) = &guard {
                g.ack();
            }
            if let Err(e) = py.check_signals() {
                py.detach(finish);
                break Err(e);
            }
        }
    };
    if let Some(g) = guard {
        g.restore(py);
    }
    result
}

/// Seconds (int or float) as a `Duration`; `name` is the parameter, for the error message.
pub(crate) fn seconds(name: &str, secs: f64) -> PyResult<Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "invalid argument {name}: must be a finite number of seconds >= 0, got {secs}"
        )));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| {
        pyo3::exceptions::PyValueError::new_err(format!("invalid argument {name}: {e}"))
    })
}

// ---- the worker pool --------------------------------------------------------------------------

/// Worker threads for [`offload`], kept (blocked in `recv`, never waking) for the next call
/// instead of a thread per call. More start when all are busy (an interrupted call still
/// finishing); at most [`pool::MAX_IDLE`] wait idle.
mod pool {
    use std::sync::mpsc::{channel, Sender};

    use parking_lot::Mutex;

    type Job = Box<dyn FnOnce() + Send>;

    pub(super) const MAX_IDLE: usize = 2;

    /// (process id, idle workers' mailboxes).
    static IDLE: Mutex<(u32, Vec<Sender<Job>>)> = Mutex::new((0, Vec::new()));

    fn idle() -> Option<Sender<Job>> {
        let mut g = IDLE.lock();
        let pid = std::process::id();
        if g.0 != pid {
            // A forked child has none of its parent's threads.
            g.0 = pid;
            g.1.clear();
        }
        g.1.pop()
    }

    pub(super) fn run(mut job: Job) -> std::io::Result<()> {
        while let Some(tx) = idle() {
            match tx.send(job) {
                Ok(()) => return Ok(()),
                Err(e) => job = e.0,
            }
        }
        let (tx, rx) = channel::<Job>();
        let me = tx.clone();
        tx.send(job)
            .map_err(|_| std::io::Error::other("worker mailbox closed"))?;
        std::thread::Builder::new()
            .name("cmqtt-wait".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                    let mut g = IDLE.lock();
                    if g.0 != std::process::id() || g.1.len() >= MAX_IDLE {
                        return;
                    }
                    g.1.push(me.clone());
                }
            })?;
        Ok(())
    }
}

// ---- the signal watcher -----------------------------------------------------------------------

#[cfg(unix)]
mod watch {
    use std::fs::File;
    use std::io::{ErrorKind, Read, Write};
    use std::mem::ManuallyDrop;
    use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use parking_lot::Mutex;
    use pyo3::prelude::*;
    use pyo3::sync::PyOnceLock;
    use pyo3::types::PyDict;

    use super::{Session, FORCE_AFTER};

    /// SIGINT's number on every Unix.
    const SIGINT: u8 = 2;

    /// While a signal is being acted on, how often the helper tries again (the interrupted call
    /// may not have started waiting yet; another thread's command may still be in flight).
    const RETRY: Duration = Duration::from_millis(10);

    /// How a registered call is woken.
    #[derive(Clone)]
    pub(crate) enum Waker {
        /// A core call on this session: interrupt it. `transaction`: an AT command (else a
        /// receive wait).
        Interrupt { session: Session, transaction: bool },
        /// A call waited for on a condition variable: notify it.
        Notify(Arc<dyn Fn() + Send + Sync>),
    }

    struct Call {
        id: u64,
        waker: Waker,
        /// Python's SIGINT handler is the default one (raises KeyboardInterrupt).
        sigint_raises: bool,
        /// Signals that came during the call.
        signals: u64,
        /// Signals the call has run the handlers for.
        acked: u64,
    }

    struct State {
        pid: u32,
        /// The end Python writes signal numbers to (non-blocking), `None` if it could not be
        /// made.
        write: Option<UnixStream>,
        /// The wakeup fd installed before ours (-1: none): every byte is passed on to it.
        forward: RawFd,
        /// The main thread's calls in progress, innermost last (a signal handler run during a
        /// wait may itself make a call).
        calls: Vec<Call>,
        next_id: u64,
    }

    static STATE: Mutex<State> = Mutex::new(State {
        pid: 0,
        write: None,
        forward: -1,
        calls: Vec::new(),
        next_id: 1,
    });

    /// A registered call of the main thread.
    pub(crate) struct Guard {
        id: u64,
        /// This call put our fd in place (the outermost call): it puts the old one back.
        installed: bool,
    }

    /// Our fd for this process, starting the helper thread at the first call (and again in a
    /// forked child, which has no helper).
    fn ensure(st: &mut State) -> Option<RawFd> {
        let pid = std::process::id();
        if st.pid != pid {
            st.pid = pid;
            st.calls.clear();
            st.forward = -1;
            st.write = start();
        }
        st.write.as_ref().map(|w| w.as_raw_fd())
    }

    fn start() -> Option<UnixStream> {
        let (r, w) = UnixStream::pair().ok()?;
        w.set_nonblocking(true).ok()?;
        std::thread::Builder::new()
            .name("cmqtt-signals".into())
            .spawn(move || helper(r))
            .ok()?;
        Some(w)
    }

    struct SignalFns {
        set_wakeup_fd: Py<PyAny>,
        getsignal: Py<PyAny>,
        default_int_handler: Py<PyAny>,
        quiet: Py<PyDict>,
    }

    static PY: PyOnceLock<SignalFns> = PyOnceLock::new();

    fn py_signal(py: Python<'_>) -> PyResult<&SignalFns> {
        PY.get_or_try_init(py, || {
            let signal = py.import("signal")?;
            // `signal.getsignal` maps the handler to an enum through a raised ValueError (5 µs
            // a call); the C function under it answers in 0.1 µs.
            let getsignal = py
                .import("_signal")
                .and_then(|m| m.getattr("getsignal"))
                .or_else(|_| signal.getattr("getsignal"))?;
            let quiet = PyDict::new(py);
            quiet.set_item("warn_on_full_buffer", false)?;
            Ok(SignalFns {
                set_wakeup_fd: signal.getattr("set_wakeup_fd")?.unbind(),
                getsignal: getsignal.unbind(),
                default_int_handler: signal.getattr("default_int_handler")?.unbind(),
                quiet: quiet.unbind(),
            })
        })
    }

    /// Registers a call of the main thread: from now until [`leave`], a signal wakes it as
    /// `waker` says. `None` when signals cannot be watched here (the caller falls back to
    /// slices).
    pub(crate) fn enter(py: Python<'_>, waker: Waker) -> PyResult<Option<Guard>> {
        let Ok(s) = py_signal(py) else {
            return Ok(None);
        };
        let sigint_raises = s
            .getsignal
            .call1(py, (SIGINT,))
            .map(|h| h.is(&s.default_int_handler))
            .unwrap_or(false);
        let (id, fd, first) = {
            let mut st = STATE.lock();
            let Some(fd) = ensure(&mut st) else {
                return Ok(None);
            };
            let id = st.next_id;
            st.next_id += 1;
            st.calls.push(Call {
                id,
                waker,
                sigint_raises,
                signals: 0,
                acked: 0,
            });
            (id, fd, st.calls.len() == 1)
        };
        if first {
            let old = s
                .set_wakeup_fd
                .call(py, (fd,), Some(s.quiet.bind(py)))
                .and_then(|o| o.extract::<RawFd>(py));
            match old {
                Ok(old) => {
                    if old != fd {
                        STATE.lock().forward = old;
                    }
                }
                Err(_) => {
                    // Not the main interpreter, say: no watching here.
                    py.detach(|| leave(id));
                    return Ok(None);
                }
            }
        }
        let g = Guard {
            id,
            installed: first,
        };
        // A signal that came before our fd was in place only tripped Python's flag.
        if let Err(e) = py.check_signals() {
            py.detach(|| leave(id));
            g.restore(py);
            return Err(e);
        }
        Ok(Some(g))
    }

    /// Unregisters call `id` (call it with the GIL released: the waker's session handle is
    /// dropped here); returns how many signals came during it.
    pub(crate) fn leave(id: u64) -> u64 {
        let call = {
            let mut st = STATE.lock();
            let i = st.calls.iter().position(|c| c.id == id);
            i.map(|i| st.calls.remove(i))
        };
        call.map_or(0, |c| c.signals)
    }

    impl Guard {
        pub(crate) fn id(&self) -> u64 {
            self.id
        }

        /// The call is about to run the signal handlers for the signals seen so far.
        pub(crate) fn ack(&self) {
            let mut st = STATE.lock();
            if let Some(c) = st.calls.iter_mut().find(|c| c.id == self.id) {
                c.acked = c.signals;
            }
        }

        /// Puts back the wakeup fd found at the outermost call (after [`leave`]).
        pub(crate) fn restore(self, py: Python<'_>) {
            if !self.installed {
                return;
            }
            let forward = {
                let st = STATE.lock();
                if !st.calls.is_empty() {
                    return;
                }
                st.forward
            };
            if let Ok(s) = py_signal(py) {
                if let Err(e) = s.set_wakeup_fd.call1(py, (forward,)) {
                    e.write_unraisable(py, None);
                }
            }
        }
    }

    /// A signal being acted on for a call that is interrupted on its session.
    struct Pending {
        id: u64,
        session: Session,
        transaction: bool,
        /// Certain to raise (Ctrl-C with the default handler): interrupt even if that fails
        /// another thread's command, after [`FORCE_AFTER`].
        urgent: bool,
        /// The call's signal count when last seen: acted on until the call acknowledges it.
        target: u64,
        since: Instant,
    }

    impl Pending {
        /// Interrupts if it may now; false once there is nothing left to do.
        fn act(&self) -> bool {
            let live = STATE
                .lock()
                .calls
                .iter()
                .any(|c| c.id == self.id && c.acked < self.target);
            if !live {
                return false;
            }
            if self.transaction && !self.urgent {
                // Handled when the main thread's command returns: a handler that does not
                // raise must not cost the command.
                return false;
            }
            let others = self
                .session
                .gate
                .inflight
                .load(Ordering::SeqCst)
                .saturating_sub(usize::from(self.transaction));
            if others == 0 || (self.urgent && self.since.elapsed() >= FORCE_AFTER) {
                self.session.modem.interrupt();
            }
            true
        }
    }

    fn helper(mut r: UnixStream) {
        let mut buf = [0u8; 64];
        let mut pending: Option<Pending> = None;
        let mut retrying = false;
        loop {
            if pending.is_some() != retrying {
                retrying = pending.is_some();
                let _ = r.set_read_timeout(retrying.then_some(RETRY));
            }
            let n = match r.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    0
                }
                Err(_) => return,
            };
            if n > 0 {
                signalled(&buf[..n], &mut pending);
            }
            if pending.as_ref().is_some_and(|p| !p.act()) {
                pending = None;
            }
        }
    }

    /// Signals `sigs` came: pass them on, and wake the innermost call.
    fn signalled(sigs: &[u8], pending: &mut Option<Pending>) {
        let (forward, call) = {
            let mut st = STATE.lock();
            let forward = st.forward;
            let call = st.calls.last_mut().map(|c| {
                c.signals += sigs.len() as u64;
                (c.id, c.waker.clone(), c.sigint_raises, c.signals)
            });
            (forward, call)
        };
        pass_on(forward, sigs);
        let Some((id, waker, sigint_raises, target)) = call else {
            return;
        };
        match waker {
            Waker::Notify(f) => f(),
            Waker::Interrupt {
                session,
                transaction,
            } => {
                let urgent = sigint_raises && sigs.contains(&SIGINT);
                match pending {
                    Some(p) if p.id == id => {
                        p.target = target;
                        p.urgent |= urgent;
                    }
                    _ => {
                        *pending = Some(Pending {
                            id,
                            session,
                            transaction,
                            urgent,
                            target,
                            since: Instant::now(),
                        })
                    }
                }
            }
        }
    }

    /// Writes `sigs` to the wakeup fd that was there before ours, as Python would have.
    fn pass_on(fd: RawFd, sigs: &[u8]) {
        if fd < 0 {
            return;
        }
        // SAFETY: `fd` is the wakeup fd its owner installed and keeps open while installed;
        // ManuallyDrop: it is borrowed, never closed here.
        let f = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
        let _ = (&*f).write(sigs);
    }
}

#[cfg(not(unix))]
mod watch {
    //! No signal watcher: the main thread's calls fall back to slices.

    use std::sync::Arc;

    use pyo3::prelude::*;

    use super::Session;

    #[allow(dead_code)]
    #[derive(Clone)]
    pub(crate) enum Waker {
        Interrupt { session: Session, transaction: bool },
        Notify(Arc<dyn Fn() + Send + Sync>),
    }

    pub(crate) struct Guard;

    pub(crate) fn enter(_py: Python<'_>, _waker: Waker) -> PyResult<Option<Guard>> {
        Ok(None)
    }

    pub(crate) fn leave(_id: u64) -> u64 {
        0
    }

    impl Guard {
        pub(crate) fn id(&self) -> u64 {
            0
        }
        pub(crate) fn ack(&self) {}
        pub(crate) fn restore(self, _py: Python<'_>) {}
    }
}

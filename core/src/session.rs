//! The session engine: one reader thread that owns the read side of the port, one AT
//! transaction at a time on the write side, asynchronous result lines matched to their
//! waiters, and a dispatch thread that runs user callbacks.
//!
//! Locks: `cmd` serialises transactions (held from the command line until its `OK`, never while
//! waiting for a broker's acknowledgement); `tx` is the state shared with the reader, held only
//! for short updates. No lock is held while a user callback runs.

use std::io::{self, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::assemble::{Assembled, Assembler};
use crate::command::{parse_result_args, Completion, Request, Response};
use crate::digest::{
    digest, digest_lines, is_block_header, pending_block, DigestOptions, Digested, Final, Unit,
};
use crate::dispatch::{guarded, CallbackSlot, DispatchThread, Wake};
use crate::error::{ErrCode, Error, ModemFailure, Result};
use crate::event::{Event, Message, OverflowPolicy, Pushed, Queue};
use crate::health::HealthCell;
use crate::profile::Profile;
use crate::ratelimit::RateLimit;
use crate::time::{deadline_after, saturating_add};
use crate::trace::{redact_line, redact_text, Direction, TraceFn};

/// A callback for received messages.
pub type MessageCallback = Arc<dyn Fn(&Message) + Send + Sync>;
/// A callback for lost connections: (client, cause).
pub type ConnectionLostCallback = Arc<dyn Fn(u8, u8) + Send + Sync>;
/// A callback for every other event.
pub type EventCallback = Arc<dyn Fn(&Event) + Send + Sync>;

/// The callbacks of a session, one slot each (see [`crate::dispatch`]).
pub(crate) struct Callbacks {
    pub(crate) on_message: [CallbackSlot<MessageFn>; 2],
    pub(crate) on_connection_lost: [CallbackSlot<ConnectionLostFn>; 2],
    pub(crate) on_event: CallbackSlot<EventFn>,
}

type MessageFn = dyn Fn(&Message) + Send + Sync;
type ConnectionLostFn = dyn Fn(u8, u8) + Send + Sync;
type EventFn = dyn Fn(&Event) + Send + Sync;

impl Callbacks {
    fn new() -> Self {
        Callbacks {
            on_message: [CallbackSlot::new(), CallbackSlot::new()],
            on_connection_lost: [CallbackSlot::new(), CallbackSlot::new()],
            on_event: CallbackSlot::new(),
        }
    }
}

/// How many `+CMQTTCONNLOST` reports may wait for slow `on_connection_lost` callbacks before
/// the oldest is dropped (the loss itself is always in [`crate::Health`]).
const LOST_QUEUE: usize = 1024;

/// The outcome of an asynchronous result line.
#[derive(Debug, Clone)]
enum SlotOutcome {
    Code(u32),
    Lost(u8),
    Restarted,
    Closed(String),
    /// [`Shared::interrupt`]: the waiter gives up; a late result becomes an event.
    Interrupted,
}

/// Where the reader leaves an asynchronous result for its waiter.
type Slot = Arc<(Mutex<Option<SlotOutcome>>, Condvar)>;

struct Pending {
    prefix: &'static str,
    index: Option<u8>,
    slot: Slot,
}

#[derive(Default)]
struct TxState {
    active: bool,
    prefix: &'static str,
    any_line: bool,
    completion: Option<Completion>,
    index: Option<u8>,
    lines: Vec<Vec<u8>>,
    result: Option<u32>,
    result_at: Option<Instant>,
    final_: Option<Final>,
    prompt: bool,
    /// The modem echoed this command's line: echo is on, so it echoes the data after `>` too.
    echoed: bool,
    /// `+CMQTTCONNLOST` for this command's client came before its `OK`: no result line follows.
    lost: Option<u8>,
    /// Set by the reader when `OK` came before the result line: the waiter then waits on this.
    deferred: Option<Arc<(Mutex<Option<SlotOutcome>>, Condvar)>>,
    /// Set by [`Shared::interrupt`]: the waiter gives up at once.
    interrupted: bool,
    /// The command takes data after a `>` prompt.
    takes_data: bool,
}

/// The line itself, shared by the reader and the command side: the bytes read and not yet
/// digested (with the message being assembled from them), when the last byte came, and whether
/// the command side is in step with the modem's answers.
struct Link {
    rx: Mutex<RxState>,
    /// The origin of `last_rx`.
    epoch: Instant,
    /// When the last byte was read, in nanoseconds after `epoch`.
    last_rx: AtomicU64,
    /// Set when a command timed out or was interrupted: its answer may still come, and a `>`
    /// prompt it asked for may still be pending. The next command resynchronises first.
    unsynced: Mutex<Option<Unsynced>>,
    /// Final result codes that no command took (late answers, noise).
    stray_finals: AtomicU64,
    /// A resynchronisation is draining the line: late finals are expected, not news.
    resyncing: AtomicBool,
    /// Repeated warnings, logged rate-limited (see [`crate::ratelimit`]).
    warn_malformed: RateLimit,
    warn_lost_block: RateLimit,
    warn_internal: RateLimit,
}

/// What the reader holds between reads.
struct RxState {
    buf: Vec<u8>,
    asm: Assembler,
    max_block: usize,
}

/// Why the session is out of step, and what resynchronising must do about it.
#[derive(Debug, Default, Clone, Copy)]
struct Unsynced {
    /// A data command timed out before its `>` prompt: the prompt may still come, and the
    /// modem would then take the next bytes sent as this many bytes of data.
    prompt_fill: Option<usize>,
}

/// Longest line the digester keeps whole.
const MAX_LINE: usize = 4096;
/// How many `AT`s a resynchronisation sends at most.
const RESYNC_TRIES: usize = 4;
/// Repeated warnings are logged at most once per this (beyond the first and the powers of two).
const WARN_EVERY: Duration = Duration::from_secs(10);

impl Link {
    fn new(profile: &Profile) -> Link {
        let max_block = profile.max_rx_payload.max(10240);
        Link {
            rx: Mutex::new(RxState {
                buf: Vec::with_capacity(max_block + 8192),
                asm: Assembler::new(profile.max_topic, profile.max_rx_payload),
                max_block,
            }),
            epoch: Instant::now(),
            last_rx: AtomicU64::new(0),
            unsynced: Mutex::new(None),
            stray_finals: AtomicU64::new(0),
            resyncing: AtomicBool::new(false),
            warn_malformed: RateLimit::new(WARN_EVERY),
            warn_lost_block: RateLimit::new(WARN_EVERY),
            warn_internal: RateLimit::new(WARN_EVERY),
        }
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A byte was read just now.
    fn touch(&self) {
        self.last_rx.store(self.nanos(), Ordering::Relaxed);
    }

    /// How long the line has been quiet.
    fn since_rx(&self) -> Duration {
        Duration::from_nanos(
            self.nanos()
                .saturating_sub(self.last_rx.load(Ordering::Relaxed)),
        )
    }
}

/// Counters, for the curious and for benchmarks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub messages: AtomicU64,
}

pub(crate) struct Shared {
    writer: Mutex<Box<dyn Write + Send>>,
    cmd: Mutex<()>,
    tx: Mutex<TxState>,
    tx_cv: Condvar,
    pending: Mutex<Vec<Pending>>,
    awaiting_prompt: AtomicBool,
    pub(crate) profile: RwLock<Profile>,
    closed: Mutex<Option<String>>,
    shutdown: AtomicBool,
    pub(crate) events: Queue<Event>,
    /// How many of the event queue's own drops `recv_event` has reported.
    pub(crate) events_reported: AtomicU64,
    pub(crate) messages: [Queue<Message>; 2],
    /// `+CMQTTCONNLOST` reports for the `on_connection_lost` callbacks (control: drained first).
    lost: Queue<(u8, u8)>,
    pub(crate) callbacks: Callbacks,
    /// Wakes the dispatch thread.
    wake: Arc<Wake>,
    pub(crate) dispatch_thread: DispatchThread,
    /// Connected, lost, no network, restarted, closed: recorded before anything is queued.
    pub(crate) health: HealthCell,
    /// Counts [`Shared::interrupt`] calls (so that a receive wait can tell it was one).
    pub(crate) interrupts: AtomicU64,
    pub(crate) echo_seen: AtomicBool,
    /// The session is still opening (sync, identification): boot noise is not news then.
    pub(crate) opening: AtomicBool,
    echo_skip: Mutex<Option<(Vec<u8>, usize)>>,
    /// The reader's buffer and the command side's step with the modem.
    link: Link,
    trace: Option<TraceFn>,
    pub(crate) counters: Counters,
}

/// Settings of the engine.
pub(crate) struct EngineConfig {
    pub profile: Profile,
    pub queue_capacity: usize,
    pub overflow: OverflowPolicy,
    pub trace: Option<TraceFn>,
}

/// The running engine: the shared state plus the threads, stopped on drop.
pub(crate) struct Engine {
    pub(crate) shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
    dispatcher: Option<JoinHandle<()>>,
    /// Readers that can be told to stop (serial ports with a read timeout) are joined on drop;
    /// others (a blocking stream) are left to end at their EOF.
    joinable: bool,
    /// Wakes a reader asleep in poll(2) (ports with a file descriptor).
    readiness: Option<Arc<crate::readiness::Readiness>>,
}

impl Engine {
    /// `poll_fd`: the reader's file descriptor, when it has one: the reader then sleeps in
    /// `poll(2)` until bytes arrive (see [`crate::readiness`]) instead of waking on read
    /// timeouts.
    pub(crate) fn start(
        reader: Box<dyn Read + Send>,
        poll_fd: Option<std::os::fd::RawFd>,
        writer: Box<dyn Write + Send>,
        joinable: bool,
        cfg: EngineConfig,
    ) -> io::Result<Engine> {
        let readiness = poll_fd
            .map(crate::readiness::Readiness::new)
            .transpose()?
            .map(Arc::new);
        let cap = cfg.queue_capacity.max(1);
        let wake = Arc::new(Wake::new());
        let link = Link::new(&cfg.profile);
        let shared = Arc::new(Shared {
            writer: Mutex::new(writer),
            cmd: Mutex::new(()),
            tx: Mutex::new(TxState::default()),
            tx_cv: Condvar::new(),
            pending: Mutex::new(Vec::new()),
            awaiting_prompt: AtomicBool::new(false),
            profile: RwLock::new(cfg.profile),
            closed: Mutex::new(None),
            shutdown: AtomicBool::new(false),
            events: Queue::new("events", cap, cfg.overflow).with_wake(wake.clone()),
            events_reported: AtomicU64::new(0),
            messages: [
                Queue::new("client 0 messages", cap, cfg.overflow).with_wake(wake.clone()),
                Queue::new("client 1 messages", cap, cfg.overflow).with_wake(wake.clone()),
            ],
            lost: Queue::new(
                "connection-lost callbacks",
                LOST_QUEUE,
                OverflowPolicy::DropOldest,
            )
            .with_wake(wake.clone()),
            callbacks: Callbacks::new(),
            wake,
            dispatch_thread: DispatchThread::default(),
            health: HealthCell::new(),
            interrupts: AtomicU64::new(0),
            echo_seen: AtomicBool::new(false),
            opening: AtomicBool::new(true),
            echo_skip: Mutex::new(None),
            link,
            trace: cfg.trace,
            counters: Counters::default(),
        });
        let s = shared.clone();
        let r = readiness.clone();
        let reader = std::thread::Builder::new()
            .name("cmqtt-reader".into())
            .spawn(move || reader_loop(s, reader, r))?;
        let s = shared.clone();
        let dispatcher = std::thread::Builder::new()
            .name("cmqtt-dispatch".into())
            .spawn(move || dispatch_loop(s))?;
        Ok(Engine {
            shared,
            reader: Some(reader),
            dispatcher: Some(dispatcher),
            joinable,
            readiness,
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.close("the modem handle was dropped");
        // Ends the dispatch thread once it has delivered what is queued.
        self.shared.wake.notify();
        // A reader asleep in poll(2) sees the shutdown now.
        if let Some(r) = &self.readiness {
            r.wake();
        }
        if let Some(d) = self.dispatcher.take() {
            if d.thread().id() != std::thread::current().id() {
                let _ = d.join();
            }
        }
        if let Some(r) = self.reader.take() {
            if self.joinable && r.thread().id() != std::thread::current().id() {
                let _ = r.join();
            }
        }
    }
}

impl Shared {
    fn trace(&self, dir: Direction, text: &str) {
        if let Some(t) = &self.trace {
            t(dir, text);
        }
        log::trace!(target: "cmqtt::at", "{} {}", dir.arrow(), text);
    }

    /// Whether anyone sees the trace: a hook is set, or `log` wants `cmqtt::at` at trace level.
    fn tracing(&self) -> bool {
        self.trace.is_some() || log::log_enabled!(target: "cmqtt::at", log::Level::Trace)
    }

    /// [`Shared::trace`] for text that costs something to make (a `format!`, a redaction):
    /// made only when someone sees the trace.
    fn trace_with<S: AsRef<str>>(&self, dir: Direction, text: impl FnOnce() -> S) {
        if self.tracing() {
            self.trace(dir, text().as_ref());
        }
    }

    pub(crate) fn closed_reason(&self) -> Option<String> {
        self.closed.lock().clone()
    }

    fn close(&self, reason: &str) {
        {
            let mut c = self.closed.lock();
            if c.is_none() {
                *c = Some(reason.to_string());
            }
        }
        for p in self.pending.lock().drain(..) {
            fill(&p.slot, SlotOutcome::Closed(reason.to_string()));
        }
        if let Some(slot) = self.tx.lock().deferred.take() {
            fill(&slot, SlotOutcome::Closed(reason.to_string()));
        }
        self.tx_cv.notify_all();
        self.health.record_closed(reason);
        self.events.close();
        for q in &self.messages {
            q.close();
        }
        self.wake.notify();
    }

    /// Makes the command waiting now, and every command waiting for an asynchronous result,
    /// give up at once with an `Interrupted` I/O error; the session stays open. What the modem
    /// answers them later is passed on as events. A command that starts afterwards is not
    /// affected.
    pub(crate) fn interrupt(&self) {
        // The tx lock is held while the pending results are failed: the reader registers a
        // pending result under it, so a registration cannot slip in between.
        let mut tx = self.tx.lock();
        if tx.active {
            tx.interrupted = true;
        }
        for p in self.pending.lock().drain(..) {
            fill(&p.slot, SlotOutcome::Interrupted);
        }
        drop(tx);
        self.tx_cv.notify_all();
        self.interrupts.fetch_add(1, Ordering::SeqCst);
        self.poke_receivers();
    }

    fn write_all(&self, bytes: &[u8]) -> Result<()> {
        let mut w = self.writer.lock();
        w.write_all(bytes)?;
        w.flush()?;
        self.counters
            .bytes_out
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Writes a command line and its `\r` in one write, without allocating for the usual
    /// short line.
    fn write_line(&self, line: &str) -> Result<()> {
        let b = line.as_bytes();
        let mut stack = [0u8; 256];
        if let Some(buf) = stack.get_mut(..=b.len()) {
            buf[..b.len()].copy_from_slice(b);
            buf[b.len()] = b'\r';
            return self.write_all(buf);
        }
        let mut v = Vec::with_capacity(b.len() + 1);
        v.extend_from_slice(b);
        v.push(b'\r');
        self.write_all(&v)
    }

    /// Write raw bytes outside any transaction (used to wake a modem).
    pub(crate) fn write_raw(&self, bytes: &[u8]) -> Result<()> {
        self.write_all(bytes)
    }

    // ---- callbacks and delivery (the streams are in `crate::dispatch`) ---------------------

    pub(crate) fn set_on_message(&self, client: u8, owner: u64, cb: MessageCallback) {
        let on_dispatch = self.dispatch_thread.is_current();
        self.callbacks.on_message[client as usize & 1].set(owner, cb, on_dispatch);
        // Messages already queued go to the new callback.
        self.wake.notify();
    }

    pub(crate) fn set_on_message_nowait(&self, client: u8, owner: u64, cb: MessageCallback) {
        self.callbacks.on_message[client as usize & 1].set(owner, cb, true);
        self.wake.notify();
    }

    pub(crate) fn clear_client_callbacks_nowait(&self, client: u8, owner: u64) {
        self.callbacks.on_message[client as usize & 1].clear(owner, true);
        self.callbacks.on_connection_lost[client as usize & 1].clear(owner, true);
    }

    pub(crate) fn set_on_connection_lost(
        &self,
        client: u8,
        owner: u64,
        cb: ConnectionLostCallback,
    ) {
        let on_dispatch = self.dispatch_thread.is_current();
        self.callbacks.on_connection_lost[client as usize & 1].set(owner, cb, on_dispatch);
    }

    pub(crate) fn set_on_event(&self, owner: u64, cb: EventCallback) {
        let on_dispatch = self.dispatch_thread.is_current();
        self.callbacks.on_event.set(owner, cb, on_dispatch);
        self.wake.notify();
    }

    /// Clears `client`'s callbacks if `owner` installed them; see [`CallbackSlot::clear`].
    pub(crate) fn clear_client_callbacks(&self, client: u8, owner: u64) {
        let on_dispatch = self.dispatch_thread.is_current();
        self.callbacks.on_message[client as usize & 1].clear(owner, on_dispatch);
        self.callbacks.on_connection_lost[client as usize & 1].clear(owner, on_dispatch);
    }

    pub(crate) fn clear_on_event(&self, owner: u64) {
        let on_dispatch = self.dispatch_thread.is_current();
        self.callbacks.on_event.clear(owner, on_dispatch);
    }

    /// Wakes [`crate::Client::next_message`] waiters: the health changed or a wait was
    /// interrupted.
    fn poke_receivers(&self) {
        for q in &self.messages {
            q.poke();
        }
    }

    fn queue_event(&self, e: Event) {
        // Health news is never evicted by data: the oldest data event makes room.
        let pushed = self.events.push_keep(e, |old| !old.is_control());
        if let Pushed::Dropped(n) = pushed {
            if n == 1 || n.is_power_of_two() {
                log::warn!(
                    "cmqtt: event queue full: {n} event(s) dropped so far; read events with Modem::recv_event or set Modem::on_event"
                );
            }
        }
    }

    /// An event for the modem-level stream (the queue, or the `on_event` callback that drains it).
    fn emit(&self, e: Event) {
        self.queue_event(e);
    }

    /// The next event of the modem-level stream; an overflow of the queue is reported first.
    pub(crate) fn next_event(&self, timeout: Option<std::time::Duration>) -> Option<Event> {
        let dropped = self.events.dropped();
        if dropped > self.events_reported.swap(dropped, Ordering::SeqCst) {
            return Some(Event::Overflow {
                queue: self.events.name(),
                dropped,
            });
        }
        match timeout {
            Some(t) if t.is_zero() => self.events.try_pop(),
            t => self.events.pop(t),
        }
    }

    fn deliver(&self, m: Message) {
        self.counters.messages.fetch_add(1, Ordering::Relaxed);
        self.push_message(m);
    }

    fn push_message(&self, m: Message) {
        let q = &self.messages[m.client as usize & 1];
        if let Pushed::Dropped(n) = q.push(m) {
            if n == 1 || n.is_power_of_two() {
                log::warn!(
                    "cmqtt: {} full: {n} message(s) dropped so far; receive faster (a callback that returns sooner) or raise the queue capacity",
                    q.name()
                );
            }
            self.queue_event(Event::Overflow {
                queue: q.name(),
                dropped: n,
            });
        }
    }

    // ---- transactions ----------------------------------------------------------------------

    /// Runs one command to completion (its result line included).
    ///
    /// After a command timed out (or was interrupted) its answer may still come: the session
    /// resynchronises before the next command (see [`Shared::resync`]), so that no late answer
    /// is ever taken for a new command's.
    pub(crate) fn execute(&self, req: &Request<'_>) -> Result<Response> {
        let guard = self.cmd.lock();
        if let Some(r) = self.closed_reason() {
            return Err(Error::Closed(r));
        }
        // A bare `AT` is itself the probe (the open's sync loop): drain, then send it.
        let probe = req.line == "AT" && req.data.is_none();
        if self.link.unsynced.lock().is_some() {
            self.resync(probe)?;
        }
        let strays = self.link.stray_finals.load(Ordering::SeqCst);
        let outcome = self.transact(req);
        if probe && outcome.is_ok() && self.link.stray_finals.load(Ordering::SeqCst) == strays {
            *self.link.unsynced.lock() = None;
        }
        drop(guard);
        match outcome? {
            Phase1::Done(resp) => Ok(resp),
            Phase1::Deferred(slot, lines, deadline) => self.wait_slot(req, &slot, deadline, lines),
        }
    }

    /// One command line (and its data) and its answer, up to the final result code; the caller
    /// holds `cmd`. A timeout or an interruption leaves the session unsynced.
    fn transact(&self, req: &Request<'_>) -> Result<Phase1> {
        // A received block cut short must not swallow this command's answer.
        self.settle_block();
        {
            let mut tx = self.tx.lock();
            *tx = TxState {
                active: true,
                prefix: req.prefix,
                any_line: req.any_line,
                completion: Some(req.completion),
                index: req.index,
                takes_data: req.data.is_some(),
                ..TxState::default()
            };
        }
        let outcome = self.run(req);
        {
            let mut tx = self.tx.lock();
            tx.active = false;
            tx.deferred = None;
        }
        if matches!(&outcome, Err(Error::Timeout { .. } | Error::Io(_))) {
            // The answer may still come, late: it must not be taken for the next command's.
            self.mark_unsynced(None);
        }
        // A prompt that may still come is recognised as one until it has been satisfied.
        let fill = self
            .link
            .unsynced
            .lock()
            .is_some_and(|u| u.prompt_fill.is_some());
        self.awaiting_prompt.store(fill, Ordering::SeqCst);
        outcome
    }

    fn mark_unsynced(&self, prompt_fill: Option<usize>) {
        let mut u = self.link.unsynced.lock();
        let u = u.get_or_insert_with(Unsynced::default);
        if prompt_fill.is_some() {
            u.prompt_fill = prompt_fill;
        }
    }

    /// Gets back in step with the modem after a command timed out or was interrupted: waits
    /// until the line is quiet (late answers arrive and are dropped), satisfies a `>` prompt
    /// that may still be pending with as many filler bytes (`\r`) as it announced (in command
    /// mode they are empty lines, which the modem ignores), then sends `AT` until its `OK` is
    /// followed by no other final result within `resync_quiet` — a late `OK` taken for the
    /// probe's own shows up as a second one. With `probe_only` (the command to send is `AT`
    /// itself) only the draining and the prompt are done here.
    fn resync(&self, probe_only: bool) -> Result<()> {
        let (quiet, timeout) = {
            let p = self.profile.read();
            (p.resync_quiet, p.command_timeout)
        };
        let fill = self
            .link
            .unsynced
            .lock()
            .as_mut()
            .and_then(|u| u.prompt_fill.take());
        log::debug!("cmqtt: resynchronising with the modem after a timeout");
        self.link.resyncing.store(true, Ordering::SeqCst);
        let r = (|| {
            self.drain_quiet(quiet);
            if let Some(n) = fill {
                self.trace_with(Direction::Send, || {
                    format!("<{n} filler bytes for a prompt that may still be pending>")
                });
                self.write_all(&vec![b'\r'; n])?;
                self.awaiting_prompt.store(false, Ordering::SeqCst);
                self.drain_quiet(quiet);
            }
            if probe_only {
                return Ok(());
            }
            let at = Request::new("AT", "AT".into(), timeout);
            for attempt in 0..RESYNC_TRIES {
                if attempt > 0 {
                    self.drain_quiet(quiet);
                }
                let strays = self.link.stray_finals.load(Ordering::SeqCst);
                match self.transact(&at) {
                    Ok(_) => {
                        // Its own OK, or a late one? A second final within `quiet` tells.
                        self.drain_quiet(quiet);
                        if self.link.stray_finals.load(Ordering::SeqCst) == strays {
                            *self.link.unsynced.lock() = None;
                            return Ok(());
                        }
                    }
                    Err(e @ (Error::Closed(_) | Error::Io(_))) => return Err(e),
                    // No answer at all: the modem is busy or gone; the caller hears of it now
                    // and the next command tries again.
                    Err(Error::Timeout { .. }) => break,
                    // ERROR: noise glued to our AT; again.
                    Err(_) => {}
                }
            }
            Err(Error::Timeout {
                command: "AT",
                timeout,
            })
        })();
        self.link.resyncing.store(false, Ordering::SeqCst);
        if let Err(e) = &r {
            log::debug!("cmqtt: resynchronising failed: {e}");
        }
        r
    }

    /// Waits until no byte has come for `quiet` (counted from now at the earliest), at most
    /// ten times `quiet` (a line that never goes quiet is not waited for forever).
    fn drain_quiet(&self, quiet: Duration) {
        let start = Instant::now();
        let end = saturating_add(start, quiet.saturating_mul(10));
        loop {
            if self.closed_reason().is_some() {
                return;
            }
            let since = self.link.since_rx().min(start.elapsed());
            let now = Instant::now();
            if since >= quiet || now >= end {
                return;
            }
            std::thread::sleep((quiet - since).min(end - now));
        }
    }

    /// Before a command is sent: a received block still short of its announced length is
    /// either still arriving (wait for it) or lost bytes (the line went quiet for
    /// `block_idle`): then it is abandoned, so that it cannot swallow the answer. The wait ends
    /// when the block completes or the line goes quiet, whichever comes first.
    fn settle_block(&self) {
        loop {
            let wait = {
                let mut rx = self.link.rx.lock();
                let opts = self.digest_options(&rx);
                if pending_block(&rx.buf, &opts).is_none() {
                    return;
                }
                let idle = self.profile.read().block_idle;
                let since = self.link.since_rx();
                if since >= idle || self.closed_reason().is_some() {
                    while self.abandon_block(&mut rx) {}
                    return;
                }
                idle - since
            };
            std::thread::sleep(wait.min(Duration::from_millis(20)));
        }
    }

    fn run(&self, req: &Request<'_>) -> Result<Phase1> {
        self.awaiting_prompt
            .store(req.data.is_some(), Ordering::SeqCst);
        self.trace(Direction::Send, req.trace_text());
        self.write_line(&req.line)?;
        let profile_timeout = self.profile.read().command_timeout;
        if let Some(data) = &req.data {
            let deadline = deadline_after(profile_timeout);
            let mut tx = self.tx.lock();
            loop {
                if tx.prompt {
                    break;
                }
                if tx.final_.is_some() {
                    // Refused before the prompt (e.g. "+CMQTTTOPIC: 0,11" then ERROR).
                    self.wait_late_code(req, &mut tx);
                    return self.finish(req, &mut tx);
                }
                if let Some(r) = self.closed_reason() {
                    return Err(Error::Closed(r));
                }
                if tx.interrupted {
                    // The prompt may still come and wait for the data.
                    self.mark_unsynced(Some(data.len()));
                    return Err(interrupted(req.name));
                }
                if self.tx_cv.wait_until(&mut tx, deadline).timed_out() && !tx.prompt {
                    if tx.final_.is_some() {
                        continue;
                    }
                    // The prompt may still come and wait for the data.
                    self.mark_unsynced(Some(data.len()));
                    return Err(Error::Timeout {
                        command: req.name,
                        timeout: profile_timeout,
                    });
                }
            }
            // Only when this very command was echoed: an echo seen once (at boot, before
            // ATE0) must not make us skip answers that happen to equal the data.
            let echoed = tx.echoed;
            drop(tx);
            self.trace_with(Direction::Send, || {
                format!("<{} bytes of data>", data.len())
            });
            if echoed {
                *self.echo_skip.lock() = Some((data.to_vec(), 0));
            }
            self.write_all(data)?;
        }
        let sent_at = Instant::now();
        let deadline = saturating_add(sent_at, req.timeout);
        // On OK-first models the OK comes at once even when the result takes minutes: without
        // it the modem did not take the command, and waiting the long timeout would only delay
        // recovery.
        let ok_wait = {
            let p = self.profile.read();
            if req.completion == Completion::ResultLine && p.ok_first {
                req.timeout.min(p.command_timeout)
            } else {
                req.timeout
            }
        };
        let ok_deadline = saturating_add(sent_at, ok_wait);
        let mut tx = self.tx.lock();
        loop {
            if tx.interrupted {
                if let Some(slot) = tx.deferred.take() {
                    self.pending.lock().retain(|p| !Arc::ptr_eq(&p.slot, &slot));
                }
                return Err(interrupted(req.name));
            }
            if tx.final_.is_some() {
                self.wait_late_code(req, &mut tx);
                return self.finish(req, &mut tx);
            }
            if let Some(code) = tx.result {
                // The result line came first; give the OK a moment, then accept it alone
                // (some SIM7600 firmware never sends the OK).
                let grace_end = saturating_add(
                    tx.result_at.unwrap_or_else(Instant::now),
                    self.profile.read().ok_grace,
                );
                if Instant::now() >= grace_end {
                    let lines = std::mem::take(&mut tx.lines);
                    return result_to_phase1(req, code, lines);
                }
                self.tx_cv.wait_until(&mut tx, grace_end.min(deadline));
            } else if let Some(slot) = tx.deferred.clone() {
                let lines = std::mem::take(&mut tx.lines);
                return Ok(Phase1::Deferred(slot, lines, deadline));
            } else {
                if let Some(r) = self.closed_reason() {
                    return Err(Error::Closed(r));
                }
                self.tx_cv.wait_until(&mut tx, ok_deadline);
            }
            let now = Instant::now();
            if tx.final_.is_none() && tx.deferred.is_none() {
                if now >= deadline {
                    if let Some(code) = tx.result {
                        let lines = std::mem::take(&mut tx.lines);
                        return result_to_phase1(req, code, lines);
                    }
                }
                if tx.result.is_none() && now >= ok_deadline {
                    return Err(Error::Timeout {
                        command: req.name,
                        timeout: ok_wait,
                    });
                }
            }
        }
    }

    /// After a failing final with no code yet, the result line may still follow (the SIM7672X
    /// note: "ERROR" then "+CMQTTCONNECT: <idx>,<err>"): wait a moment for its code.
    fn wait_late_code(&self, req: &Request<'_>, tx: &mut parking_lot::MutexGuard<'_, TxState>) {
        let prefix = req.prefix.as_bytes();
        if !late_code_possible(tx) || tx.lines.iter().any(|l| l.starts_with(prefix)) {
            return;
        }
        let end = deadline_after(self.profile.read().ok_grace);
        while tx.result.is_none() && !self.tx_cv.wait_until(tx, end).timed_out() {}
    }

    /// The final result code has arrived.
    fn finish(&self, req: &Request<'_>, tx: &mut TxState) -> Result<Phase1> {
        let lines = std::mem::take(&mut tx.lines);
        match tx.final_.clone() {
            Some(Final::Ok) => {
                if req.completion == Completion::ResultLine {
                    if let Some(code) = tx.result {
                        return result_to_phase1(req, code, lines);
                    }
                    if let Some(slot) = tx.deferred.clone() {
                        return Ok(Phase1::Deferred(slot, lines, deadline_after(req.timeout)));
                    }
                    if let Some(r) = self.closed_reason() {
                        return Err(Error::Closed(r));
                    }
                }
                Ok(Phase1::Done(Response {
                    lines,
                    result: None,
                }))
            }
            Some(f) => {
                // A failure: prefer the code of a "+CMD: <idx>,<err>" line when there is one.
                let code = tx.result.or_else(|| {
                    lines.iter().rev().find_map(|l| {
                        let args = l.strip_prefix(req.prefix.as_bytes())?;
                        parse_result_args(args).map(|(_, e)| e)
                    })
                });
                let failure = match (code, f) {
                    (Some(c), _) if !req.prefix.is_empty() => code_failure(c),
                    (_, Final::CmeError(s)) => ModemFailure::Cme(redact_text(&s)),
                    (_, Final::CmsError(s)) => ModemFailure::Cms(redact_text(&s)),
                    _ => ModemFailure::Error,
                };
                Err(Error::Modem {
                    command: req.name,
                    failure,
                })
            }
            None => Err(Error::Protocol {
                command: req.name,
                answer: "no final result".into(),
            }),
        }
    }

    fn wait_slot(
        &self,
        req: &Request<'_>,
        slot: &Arc<(Mutex<Option<SlotOutcome>>, Condvar)>,
        deadline: Instant,
        lines: Vec<Vec<u8>>,
    ) -> Result<Response> {
        let (m, cv) = &**slot;
        let mut g = m.lock();
        loop {
            if let Some(o) = g.take() {
                return match o {
                    SlotOutcome::Code(0) => Ok(Response {
                        lines,
                        result: Some(0),
                    }),
                    SlotOutcome::Code(c) => Err(Error::Modem {
                        command: req.name,
                        failure: code_failure(c),
                    }),
                    SlotOutcome::Lost(cause) => Err(Error::ConnectionLost {
                        client: req.index.unwrap_or(0),
                        cause,
                    }),
                    SlotOutcome::Restarted => Err(Error::Closed(
                        "the modem restarted (RDY) while the command was waiting for its result"
                            .into(),
                    )),
                    SlotOutcome::Closed(r) => Err(Error::Closed(r)),
                    SlotOutcome::Interrupted => Err(interrupted(req.name)),
                };
            }
            if cv.wait_until(&mut g, deadline).timed_out() && g.is_none() {
                drop(g);
                // Nobody will claim the result now: a late one is passed on as an event.
                self.pending.lock().retain(|p| !Arc::ptr_eq(&p.slot, slot));
                return Err(Error::Timeout {
                    command: req.name,
                    timeout: req.timeout,
                });
            }
        }
    }

    // ---- reader side -----------------------------------------------------------------------

    fn on_unit(&self, unit: Unit<'_>, asm: &mut Assembler) {
        match unit {
            Unit::Final(f) => {
                self.trace_with(Direction::Receive, || redact_text(final_text(&f)));
                let mut tx = self.tx.lock();
                if tx.active && tx.final_.is_none() && f == Final::Ok && tx.takes_data && !tx.prompt
                {
                    // A command that takes data succeeds only after its prompt and its data:
                    // an OK before the prompt is the late answer of an earlier command.
                    drop(tx);
                    self.stray_final(&f);
                    return;
                }
                if tx.active && tx.final_.is_none() {
                    if f == Final::Ok
                        && tx.completion == Some(Completion::ResultLine)
                        && tx.result.is_none()
                    {
                        // OK first: the result line will come later, possibly after other
                        // commands. Register its waiter now, under the tx lock, so it can't be missed.
                        let slot = Arc::new((Mutex::new(None), Condvar::new()));
                        if let Some(cause) = tx.lost {
                            // The connection was lost before this OK: no result line follows.
                            fill(&slot, SlotOutcome::Lost(cause));
                        } else {
                            self.pending.lock().push(Pending {
                                prefix: tx.prefix,
                                index: tx.index,
                                slot: slot.clone(),
                            });
                        }
                        tx.deferred = Some(slot);
                    }
                    tx.final_ = Some(f);
                    drop(tx);
                    self.tx_cv.notify_all();
                } else {
                    drop(tx);
                    self.stray_final(&f);
                }
            }
            Unit::Prompt => {
                self.trace(Direction::Receive, ">");
                self.awaiting_prompt.store(false, Ordering::SeqCst);
                self.tx.lock().prompt = true;
                self.tx_cv.notify_all();
            }
            Unit::Echo(l) => {
                self.echo_seen.store(true, Ordering::Relaxed);
                {
                    let mut tx = self.tx.lock();
                    if tx.active {
                        tx.echoed = true;
                    }
                }
                self.trace_with(Direction::Receive, || format!("(echo) {}", redact_line(l)));
            }
            Unit::Line(l) => {
                if !l.is_empty() {
                    self.trace_with(Direction::Receive, || redact_line(l));
                    self.on_line(l, asm);
                }
            }
            Unit::RxStart {
                client,
                topic_len,
                payload_len,
            } => {
                self.trace_with(Direction::Receive, || {
                    format!("+CMQTTRXSTART: {client},{topic_len},{payload_len}")
                });
                self.assembled(asm.start(client, topic_len, payload_len));
            }
            Unit::RxTopic { client, data } => {
                self.trace_with(Direction::Receive, || {
                    format!("+CMQTTRXTOPIC: {client},{} <topic>", data.len())
                });
                self.assembled(asm.topic(client, data));
            }
            Unit::RxPayload { client, data } => {
                self.trace_with(Direction::Receive, || {
                    format!("+CMQTTRXPAYLOAD: {client},{} <data>", data.len())
                });
                self.assembled(asm.payload(client, data));
            }
            Unit::RxEnd { client } => {
                self.trace_with(Direction::Receive, || format!("+CMQTTRXEND: {client}"));
                self.assembled(asm.end(client));
            }
            Unit::Invalid(l) => {
                let text = redact_line(l);
                self.trace_with(Direction::Receive, || format!("(invalid) {text}"));
                self.emit(Event::Malformed(format!(
                    "unusable received-message line {text:?}"
                )));
            }
        }
    }

    /// A final result code that no command took: the late answer of a command that timed out
    /// (or noise). While resynchronising that is expected and dropped; otherwise it is passed
    /// on as an event, and the next command resynchronises first: a second late answer may
    /// follow, and it must not be taken for that command's.
    fn stray_final(&self, f: &Final) {
        self.link.stray_finals.fetch_add(1, Ordering::SeqCst);
        if self.link.resyncing.load(Ordering::SeqCst) {
            log::debug!(
                "cmqtt: a late answer dropped while resynchronising: {}",
                redact_text(final_text(f))
            );
            return;
        }
        self.mark_unsynced(None);
        if !self.opening.load(Ordering::SeqCst) {
            self.emit(Event::Unsolicited(redact_text(final_text(f))));
        }
    }

    /// Boot noise seen while the session opens: logged, not queued as news.
    fn emit_quiet(&self, l: &[u8]) {
        log::debug!("cmqtt: at open: {}", redact_line(l));
    }

    fn assembled(&self, a: Assembled) {
        match a {
            Assembled::Pending => {}
            Assembled::Message(m) => self.deliver(m),
            Assembled::Malformed(why) => {
                let why = redact_text(&why);
                if let Some(h) = self.link.warn_malformed.hit() {
                    log::warn!("cmqtt: {why}{}", h.note());
                }
                self.emit(Event::Malformed(why));
            }
        }
    }

    /// The digest options for what the reader holds now.
    fn digest_options(&self, rx: &RxState) -> DigestOptions {
        DigestOptions {
            awaiting_prompt: self.awaiting_prompt.load(Ordering::SeqCst),
            max_block: rx.max_block,
            max_line: MAX_LINE,
        }
    }

    /// Digests what the reader holds from `pos` on, handling every unit, and drops what was
    /// used. With `lines`, length-counted blocks are not taken (the bytes held by an abandoned
    /// block: [`digest_lines`]) until a `+CMQTTRXSTART` begins a message of its own.
    fn digest_held(&self, rx: &mut RxState, mut pos: usize, mut lines: bool) {
        let max_block = rx.max_block;
        let RxState { buf, asm, .. } = rx;
        loop {
            let opts = DigestOptions {
                awaiting_prompt: self.awaiting_prompt.load(Ordering::SeqCst),
                max_block,
                max_line: MAX_LINE,
            };
            let d = if lines {
                digest_lines(&buf[pos..], &opts)
            } else {
                digest(&buf[pos..], &opts)
            };
            match d {
                Digested::Incomplete { skip } => {
                    pos += skip;
                    break;
                }
                Digested::Unit { used, unit } => {
                    // `unit` borrows `buf`; handle it before moving on.
                    let used = used.max(1);
                    match unit {
                        Unit::Invalid(l) if lines && is_block_header(l) => {
                            // The rest of a message already reported lost.
                            self.trace_with(Direction::Receive, || {
                                format!("(after lost bytes) {}", redact_line(l))
                            });
                        }
                        unit => {
                            if matches!(unit, Unit::RxStart { .. }) {
                                lines = false;
                            }
                            let run = catch_unwind(AssertUnwindSafe(|| self.on_unit(unit, asm)));
                            if run.is_err() {
                                if let Some(h) = self.link.warn_internal.hit() {
                                    log::error!(
                                        "cmqtt: internal error handling a unit{}",
                                        h.note()
                                    );
                                }
                            }
                        }
                    }
                    pos += used;
                }
            }
        }
        buf.drain(..pos);
    }

    /// Abandons a block that is still short of its announced length (see
    /// [`crate::Profile::block_idle`]): the message it belonged to is reported lost and dropped,
    /// and the bytes it held are read again as lines. `false` when no block is pending.
    fn abandon_block(&self, rx: &mut RxState) -> bool {
        let opts = self.digest_options(rx);
        let Some(p) = pending_block(&rx.buf, &opts) else {
            return false;
        };
        let why = rx
            .asm
            .lost(p.client, p.topic, &rx.buf[p.data_start..], p.announced);
        let why = redact_text(&why);
        if let Some(h) = self.link.warn_lost_block.hit() {
            log::warn!("cmqtt: {why}{}", h.note());
        }
        self.emit(Event::Malformed(why));
        self.digest_held(rx, p.data_start, true);
        true
    }

    /// The reader saw no byte for a read timeout: a block pending for `block_idle` is
    /// abandoned.
    /// How long until a received block still short of its length counts as abandoned; `None`
    /// when no block is pending (the reader may sleep until bytes come).
    fn block_deadline(&self) -> Option<std::time::Duration> {
        let rx = self.link.rx.lock();
        let opts = self.digest_options(&rx);
        pending_block(&rx.buf, &opts)?;
        let idle = self.profile.read().block_idle;
        Some(idle.saturating_sub(self.link.since_rx()))
    }

    fn idle_tick(&self) {
        if self.link.since_rx() < self.profile.read().block_idle {
            return;
        }
        let mut rx = self.link.rx.lock();
        while self.abandon_block(&mut rx) {}
    }

    /// What was counted but not logged, when the reader ends.
    fn log_summary(&self) {
        for (what, r) in [
            ("malformed received messages", &self.link.warn_malformed),
            (
                "received messages lost to missing bytes",
                &self.link.warn_lost_block,
            ),
            ("internal errors handling a unit", &self.link.warn_internal),
        ] {
            let (total, unlogged) = r.unlogged();
            if unlogged > 0 {
                log::info!(
                    "cmqtt: session summary: {total} {what} ({unlogged} not logged one by one)"
                );
            }
        }
    }

    fn on_line(&self, l: &[u8], asm: &mut Assembler) {
        // Always unsolicited, whatever command is running.
        if let Some(args) = l.strip_prefix(b"+CMQTTCONNLOST:") {
            if let Some((Some(c), cause)) = parse_result_args(args) {
                self.connection_lost(c as u8, cause as u8);
                return;
            }
        }
        if l.starts_with(b"+CMQTTNONET") {
            let was = self.health.record_no_network();
            self.poke_receivers();
            for c in 0..2u8 {
                if was[c as usize] {
                    self.fail_pending_of(c, SlotOutcome::Lost(3));
                }
            }
            self.emit(Event::NoNetwork);
            return;
        }
        if let Some(args) = l.strip_prefix(b"+CMQTTPING:") {
            if let Some((Some(c), code)) = parse_result_args(args) {
                self.emit(Event::PingFailed {
                    client: c as u8,
                    code,
                });
                return;
            }
        }
        if l == b"RDY" {
            if self.opening.load(Ordering::SeqCst) {
                // The boot that precedes this session: nothing of ours was lost.
                self.emit_quiet(l);
                return;
            }
            self.health.record_restart();
            self.poke_receivers();
            for p in self.pending.lock().drain(..) {
                fill(&p.slot, SlotOutcome::Restarted);
            }
            for why in asm.reset() {
                self.emit(Event::Malformed(why));
            }
            // A restarted modem has echo on again.
            self.emit(Event::ModemRestarted);
            return;
        }
        // A result line somebody is waiting for (its OK came first).
        if let Some(slot) = self.take_pending(l) {
            fill(&slot.0, SlotOutcome::Code(slot.1));
            return;
        }
        {
            let mut tx = self.tx.lock();
            let late = late_code_possible(&tx);
            if (tx.active && tx.final_.is_none()) || late {
                let prefixed = !tx.prefix.is_empty() && l.starts_with(tx.prefix.as_bytes());
                if prefixed && tx.completion == Some(Completion::ResultLine) {
                    let args = &l[tx.prefix.len()..];
                    if let Some((idx, code)) = parse_result_args(args) {
                        if idx.map(|i| i as u8) == tx.index {
                            tx.result = Some(code);
                            tx.result_at = Some(Instant::now());
                            drop(tx);
                            self.tx_cv.notify_all();
                            return;
                        }
                    }
                }
                if !late && (prefixed || (tx.any_line && !is_boot_noise(l))) {
                    tx.lines.push(l.to_vec());
                    return;
                }
            }
        }
        // Redacted: noise before an echoed connect line must not carry its password out.
        let text = redact_line(l);
        if self.opening.load(Ordering::SeqCst) {
            // Before the session is up (boot banner, our own echoed wake-up bytes): not news.
            self.emit_quiet(l);
        } else if is_boot_noise(l) {
            self.emit(Event::Boot(text));
        } else {
            self.emit(Event::Unsolicited(text));
        }
    }

    fn take_pending(&self, l: &[u8]) -> Option<(Slot, u32)> {
        let mut pending = self.pending.lock();
        let pos = pending.iter().position(|p| {
            l.strip_prefix(p.prefix.as_bytes())
                .and_then(parse_result_args)
                .is_some_and(|(idx, _)| idx.map(|i| i as u8) == p.index)
        })?;
        let p = pending.remove(pos);
        let (_, code) = l
            .strip_prefix(p.prefix.as_bytes())
            .and_then(parse_result_args)?;
        Some((p.slot, code))
    }

    fn fail_pending_of(&self, client: u8, outcome: SlotOutcome) {
        let mut pending = self.pending.lock();
        pending.retain(|p| {
            if p.index == Some(client) {
                fill(&p.slot, outcome.clone());
                false
            } else {
                true
            }
        });
    }

    fn connection_lost(&self, client: u8, cause: u8) {
        if (client as usize) < 2 {
            // State first: whatever happens to the events below, the loss is on record.
            let was = self.health.record_lost(client, cause);
            self.poke_receivers();
            if was {
                // A command of this client not yet answered OK (a publish, a subscribe) will
                // not get its result line either.
                let mut tx = self.tx.lock();
                if tx.active && tx.index == Some(client) && tx.final_.is_none() {
                    tx.lost = Some(cause);
                }
            }
            // A publish or subscribe waiting for the broker's answer will not get it.
            self.fail_pending_of(client, SlotOutcome::Lost(cause));
            if self.callbacks.on_connection_lost[client as usize].is_set() {
                self.lost.push((client, cause));
            }
        }
        self.emit(Event::ConnectionLost { client, cause });
    }

    /// Drops bytes that are the modem echoing data we sent after a prompt.
    fn skip_echo<'b>(&self, mut bytes: &'b [u8]) -> &'b [u8] {
        let mut g = self.echo_skip.lock();
        if let Some((data, pos)) = g.as_mut() {
            // The prompt is "> " on some firmware: when the read split it after '>', the prompt
            // was taken alone and its space comes first, before the echo of the data.
            if *pos == 0 && bytes.first() == Some(&b' ') && data.first() != Some(&b' ') {
                bytes = &bytes[1..];
            }
            while let (Some(&b), Some(&e)) = (bytes.first(), data.get(*pos)) {
                if b != e {
                    *g = None;
                    return bytes;
                }
                bytes = &bytes[1..];
                *pos += 1;
            }
            if *pos >= data.len() {
                *g = None;
            }
        }
        bytes
    }
}

enum Phase1 {
    Done(Response),
    Deferred(
        Arc<(Mutex<Option<SlotOutcome>>, Condvar)>,
        Vec<Vec<u8>>,
        Instant,
    ),
}

fn result_to_phase1(req: &Request<'_>, code: u32, lines: Vec<Vec<u8>>) -> Result<Phase1> {
    if code == 0 {
        Ok(Phase1::Done(Response {
            lines,
            result: Some(0),
        }))
    } else {
        Err(Error::Modem {
            command: req.name,
            failure: code_failure(code),
        })
    }
}

/// What an interrupted wait returns (see [`Shared::interrupt`]).
fn interrupted(command: &'static str) -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::Interrupted,
        format!(
            "{command}: the wait was interrupted (Modem::interrupt); the modem may still answer it"
        ),
    ))
}

fn code_failure(code: u32) -> ModemFailure {
    match ErrCode::from_code(code) {
        Some(c) => ModemFailure::Code(c),
        None => ModemFailure::UnknownCode(code),
    }
}

fn fill(slot: &Arc<(Mutex<Option<SlotOutcome>>, Condvar)>, o: SlotOutcome) {
    let (m, cv) = &**slot;
    let mut g = m.lock();
    if g.is_none() {
        *g = Some(o);
    }
    cv.notify_all();
}

fn final_text(f: &Final) -> &str {
    match f {
        Final::Ok => "OK",
        Final::Error => "ERROR",
        Final::CmeError(s) | Final::CmsError(s) => s,
    }
}

/// A failing final came before the result line of a command that has one.
fn late_code_possible(tx: &TxState) -> bool {
    tx.active
        && tx.completion == Some(Completion::ResultLine)
        && tx.result.is_none()
        && matches!(&tx.final_, Some(f) if *f != Final::Ok)
}

fn is_boot_noise(l: &[u8]) -> bool {
    l == b"RDY"
        || l == b"SMS DONE"
        || l == b"PB DONE"
        || l.starts_with(b"+CPIN: READY")
        || l.starts_with(b"*ATREADY")
        || l.starts_with(b"+ATREADY")
}

fn reader_loop(
    shared: Arc<Shared>,
    mut port: Box<dyn Read + Send>,
    readiness: Option<Arc<crate::readiness::Readiness>>,
) {
    use crate::readiness::Ready;
    let mut chunk = vec![0u8; 8192];
    loop {
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        if let Some(r) = &readiness {
            // Sleep until bytes come; only a received block left incomplete needs a timeout.
            match r.wait(shared.block_deadline()) {
                Ok(Ready::Port) => {}
                Ok(Ready::Woken) => continue,
                Ok(Ready::Timeout) => {
                    shared.idle_tick();
                    continue;
                }
                Err(e) => {
                    log::warn!("cmqtt: poll on the port failed ({e}); reading with timeouts");
                    // Fall back to the read timeout loop for this session.
                    return reader_loop(shared, port, None);
                }
            }
        }
        let n = match port.read(&mut chunk) {
            Ok(0) => {
                shared.close("the port reached end of file (device or peer gone)");
                break;
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::Interrupted
                ) =>
            {
                shared.idle_tick();
                continue;
            }
            Err(e) => {
                if !shared.shutdown.load(Ordering::SeqCst) {
                    log::error!("cmqtt: reading the port failed: {e}");
                }
                shared.close(&format!("reading the port failed: {e}"));
                break;
            }
        };
        shared
            .counters
            .bytes_in
            .fetch_add(n as u64, Ordering::Relaxed);
        shared.link.touch();
        let mut rx = shared.link.rx.lock();
        let bytes = shared.skip_echo(&chunk[..n]);
        rx.buf.extend_from_slice(bytes);
        shared.digest_held(&mut rx, 0, false);
    }
    shared.log_summary();
}

/// The dispatch thread: drains each stream that has a callback into it, control first, one
/// item per stream per round (so a busy client cannot starve the other), and sleeps when there
/// is nothing to do.
fn dispatch_loop(shared: Arc<Shared>) {
    shared.dispatch_thread.set(std::thread::current().id());
    loop {
        if !dispatch_round(&shared) {
            if shared.shutdown.load(Ordering::SeqCst) {
                break;
            }
            shared.wake.wait();
        }
    }
}

fn dispatch_round(shared: &Shared) -> bool {
    let mut did = false;
    let cbs = &shared.callbacks;
    // Control first: every lost connection before any message.
    while let Some((c, cause)) = shared.lost.try_pop() {
        did = true;
        if let Some(run) = cbs.on_connection_lost[c as usize & 1].enter() {
            guarded(|| (run.cb)(c, cause));
        }
    }
    for (i, slot) in cbs.on_message.iter().enumerate() {
        if let Some(run) = slot.enter() {
            if let Some(m) = shared.messages[i].try_pop() {
                did = true;
                guarded(|| (run.cb)(&m));
            }
        }
    }
    if let Some(run) = cbs.on_event.enter() {
        if let Some(e) = shared.next_event(Some(std::time::Duration::ZERO)) {
            did = true;
            guarded(|| (run.cb)(&e));
        }
    }
    did
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Shared>();
}

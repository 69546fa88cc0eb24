//! The session engine: one reader thread that owns the read side of the port, one AT
//! transaction at a time on the write side, asynchronous result lines matched to their
//! waiters, and a dispatch thread that runs user callbacks.
//!
//! By concern: this module holds the shared state and the engine's threads; [`transact`] the
//! command side, [`reader`] the port side, [`streams`] the queues and callbacks.
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

mod handle;
mod reader;
mod streams;
mod transact;

pub use handle::Identity;
pub(crate) use handle::Session;

use reader::*;
use streams::*;
use transact::*;

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
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Shared>();
}

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
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::assemble::{Assembled, Assembler};
use crate::command::{parse_result_args, Completion, Request, Response};
use crate::digest::{digest, DigestOptions, Digested, Final, Unit};
use crate::error::{ErrCode, Error, ModemFailure, Result};
use crate::event::{Event, Message, OverflowPolicy, Pushed, Queue};
use crate::profile::Profile;
use crate::trace::{redact_line, Direction, TraceFn};

/// A callback for received messages.
pub type MessageCallback = Arc<dyn Fn(&Message) + Send + Sync>;
/// A callback for lost connections: (client, cause).
pub type ConnectionLostCallback = Arc<dyn Fn(u8, u8) + Send + Sync>;
/// A callback for every other event.
pub type EventCallback = Arc<dyn Fn(&Event) + Send + Sync>;

#[derive(Default)]
struct Callbacks {
    on_message: [Option<MessageCallback>; 2],
    on_connection_lost: [Option<ConnectionLostCallback>; 2],
    on_event: Option<EventCallback>,
}

enum Dispatch {
    Message(Message),
    ConnectionLost(u8, u8),
    Event(Event),
}

/// The outcome of an asynchronous result line.
#[derive(Debug, Clone)]
enum SlotOutcome {
    Code(u32),
    Lost(u8),
    Restarted,
    Closed(String),
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
}

/// Counters, for the curious and for benchmarks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub messages: AtomicU64,
    pub dispatch_dropped: AtomicU64,
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
    callbacks: Mutex<Callbacks>,
    dispatch: Mutex<Option<SyncSender<Dispatch>>>,
    pub(crate) connected: [AtomicBool; 2],
    pub(crate) echo_seen: AtomicBool,
    /// The session is still opening (sync, identification): boot noise is not news then.
    pub(crate) opening: AtomicBool,
    /// Counts modem restarts (`RDY`); clients acquired in an earlier generation are gone.
    pub(crate) generation: AtomicU64,
    echo_skip: Mutex<Option<(Vec<u8>, usize)>>,
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
}

impl Engine {
    pub(crate) fn start(
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        joinable: bool,
        cfg: EngineConfig,
    ) -> io::Result<Engine> {
        let cap = cfg.queue_capacity.max(1);
        let (dtx, drx) = sync_channel::<Dispatch>(cap);
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
            events: Queue::new("events", cap, cfg.overflow),
            events_reported: AtomicU64::new(0),
            messages: [
                Queue::new("client 0 messages", cap, cfg.overflow),
                Queue::new("client 1 messages", cap, cfg.overflow),
            ],
            callbacks: Mutex::new(Callbacks::default()),
            dispatch: Mutex::new(Some(dtx)),
            connected: [AtomicBool::new(false), AtomicBool::new(false)],
            echo_seen: AtomicBool::new(false),
            opening: AtomicBool::new(true),
            generation: AtomicU64::new(0),
            echo_skip: Mutex::new(None),
            trace: cfg.trace,
            counters: Counters::default(),
        });
        let s = shared.clone();
        let reader = std::thread::Builder::new()
            .name("cmqtt-reader".into())
            .spawn(move || reader_loop(s, reader))?;
        let s = shared.clone();
        let dispatcher = std::thread::Builder::new()
            .name("cmqtt-dispatch".into())
            .spawn(move || dispatch_loop(s, drx))?;
        Ok(Engine {
            shared,
            reader: Some(reader),
            dispatcher: Some(dispatcher),
            joinable,
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.close("the modem handle was dropped");
        // Ends the dispatch thread once it has delivered what is queued.
        self.shared.dispatch.lock().take();
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
        self.events.close();
        for q in &self.messages {
            q.close();
        }
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

    // ---- callbacks -------------------------------------------------------------------------

    pub(crate) fn set_on_message(&self, client: u8, cb: Option<MessageCallback>) {
        self.callbacks.lock().on_message[client as usize & 1] = cb;
    }

    pub(crate) fn set_on_connection_lost(&self, client: u8, cb: Option<ConnectionLostCallback>) {
        self.callbacks.lock().on_connection_lost[client as usize & 1] = cb;
    }

    pub(crate) fn set_on_event(&self, cb: Option<EventCallback>) {
        self.callbacks.lock().on_event = cb;
    }

    fn send_dispatch(&self, d: Dispatch) -> bool {
        let guard = self.dispatch.lock();
        let Some(tx) = guard.as_ref() else {
            return false;
        };
        match tx.try_send(d) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                let n = self
                    .counters
                    .dispatch_dropped
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                log::warn!(
                    "cmqtt: callback queue full (callbacks too slow): {n} event(s) dropped so far"
                );
                drop(guard);
                self.queue_event(Event::Overflow {
                    queue: "callbacks",
                    dropped: n,
                });
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    fn queue_event(&self, e: Event) {
        if let Pushed::Dropped(n) = self.events.push(e) {
            if n == 1 || n.is_power_of_two() {
                log::warn!(
                    "cmqtt: event queue full: {n} event(s) dropped so far; read events with Modem::recv_event or set Modem::on_event"
                );
            }
        }
    }

    fn emit(&self, e: Event) {
        let has_cb = self.callbacks.lock().on_event.is_some();
        if has_cb && self.send_dispatch(Dispatch::Event(e.clone())) {
            return;
        }
        self.queue_event(e);
    }

    fn deliver(&self, m: Message) {
        self.counters.messages.fetch_add(1, Ordering::Relaxed);
        let i = m.client as usize & 1;
        let has_cb = self.callbacks.lock().on_message[i].is_some();
        if has_cb {
            if let Err(Dispatch::Message(m)) = self.try_dispatch_message(m) {
                self.push_message(m);
            }
            return;
        }
        self.push_message(m);
    }

    fn try_dispatch_message(&self, m: Message) -> std::result::Result<(), Dispatch> {
        let guard = self.dispatch.lock();
        let Some(tx) = guard.as_ref() else {
            return Err(Dispatch::Message(m));
        };
        match tx.try_send(Dispatch::Message(m)) {
            Ok(()) => Ok(()),
            // The callback is behind: keep the message in the pull queue rather than lose it.
            Err(TrySendError::Full(d)) | Err(TrySendError::Disconnected(d)) => Err(d),
        }
    }

    fn push_message(&self, m: Message) {
        let q = &self.messages[m.client as usize & 1];
        if let Pushed::Dropped(n) = q.push(m) {
            log::warn!(
                "cmqtt: {} full: {n} message(s) dropped so far; receive faster or raise the queue capacity",
                q.name()
            );
            self.queue_event(Event::Overflow {
                queue: q.name(),
                dropped: n,
            });
        }
    }

    // ---- transactions ----------------------------------------------------------------------

    /// Runs one command to completion (its result line included).
    pub(crate) fn execute(&self, req: &Request<'_>) -> Result<Response> {
        let guard = self.cmd.lock();
        if let Some(r) = self.closed_reason() {
            return Err(Error::Closed(r));
        }
        {
            let mut tx = self.tx.lock();
            *tx = TxState {
                active: true,
                prefix: req.prefix,
                any_line: req.any_line,
                completion: Some(req.completion),
                index: req.index,
                ..TxState::default()
            };
        }
        let outcome = self.run(req);
        {
            let mut tx = self.tx.lock();
            tx.active = false;
            tx.deferred = None;
        }
        self.awaiting_prompt.store(false, Ordering::SeqCst);
        drop(guard);
        match outcome? {
            Phase1::Done(resp) => Ok(resp),
            Phase1::Deferred(slot, lines, deadline) => self.wait_slot(req, &slot, deadline, lines),
        }
    }

    fn run(&self, req: &Request<'_>) -> Result<Phase1> {
        if req.data.is_some() {
            self.awaiting_prompt.store(true, Ordering::SeqCst);
        }
        self.trace(Direction::Send, req.trace_text());
        self.write_line(&req.line)?;
        let profile_timeout = self.profile.read().command_timeout;
        if let Some(data) = &req.data {
            let deadline = Instant::now() + profile_timeout;
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
                if self.tx_cv.wait_until(&mut tx, deadline).timed_out() && !tx.prompt {
                    if tx.final_.is_some() {
                        continue;
                    }
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
        let deadline = sent_at + req.timeout;
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
        let ok_deadline = sent_at + ok_wait;
        let mut tx = self.tx.lock();
        loop {
            if tx.final_.is_some() {
                self.wait_late_code(req, &mut tx);
                return self.finish(req, &mut tx);
            }
            if let Some(code) = tx.result {
                // The result line came first; give the OK a moment, then accept it alone
                // (some SIM7600 firmware never sends the OK).
                let grace_end =
                    tx.result_at.unwrap_or_else(Instant::now) + self.profile.read().ok_grace;
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
        let end = Instant::now() + self.profile.read().ok_grace;
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
                        return Ok(Phase1::Deferred(slot, lines, Instant::now() + req.timeout));
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
                    (_, Final::CmeError(s)) => ModemFailure::Cme(s),
                    (_, Final::CmsError(s)) => ModemFailure::Cms(s),
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
                self.trace(Direction::Receive, final_text(&f));
                let mut tx = self.tx.lock();
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
                    if !self.opening.load(Ordering::SeqCst) {
                        self.emit(Event::Unsolicited(final_text(&f).to_string()));
                    }
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
                let text = String::from_utf8_lossy(l).into_owned();
                self.trace_with(Direction::Receive, || format!("(invalid) {text}"));
                self.emit(Event::Malformed(format!(
                    "unusable received-message line {text:?}"
                )));
            }
        }
    }

    /// Boot noise seen while the session opens: logged, not queued as news.
    fn emit_quiet(&self, l: &[u8]) {
        log::debug!("cmqtt: at open: {}", String::from_utf8_lossy(l));
    }

    fn assembled(&self, a: Assembled) {
        match a {
            Assembled::Pending => {}
            Assembled::Message(m) => self.deliver(m),
            Assembled::Malformed(why) => {
                log::warn!("cmqtt: {why}");
                self.emit(Event::Malformed(why));
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
            for c in 0..2u8 {
                if self.connected[c as usize].swap(false, Ordering::SeqCst) {
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
            self.generation.fetch_add(1, Ordering::SeqCst);
            for c in &self.connected {
                c.store(false, Ordering::SeqCst);
            }
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
        let text = String::from_utf8_lossy(l).into_owned();
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
            if self.connected[client as usize].swap(false, Ordering::SeqCst) {
                // A command of this client not yet answered OK (a publish, a subscribe) will
                // not get its result line either.
                let mut tx = self.tx.lock();
                if tx.active && tx.index == Some(client) && tx.final_.is_none() {
                    tx.lost = Some(cause);
                }
            }
            // A publish or subscribe waiting for the broker's answer will not get it.
            self.fail_pending_of(client, SlotOutcome::Lost(cause));
            let cb = self.callbacks.lock().on_connection_lost[client as usize].is_some();
            if cb {
                self.send_dispatch(Dispatch::ConnectionLost(client, cause));
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

fn reader_loop(shared: Arc<Shared>, mut port: Box<dyn Read + Send>) {
    let max_block = shared.profile.read().max_rx_payload.max(10240);
    let (max_topic, max_payload) = {
        let p = shared.profile.read();
        (p.max_topic, p.max_rx_payload)
    };
    let mut asm = Assembler::new(max_topic, max_payload);
    let mut buf: Vec<u8> = Vec::with_capacity(max_block + 8192);
    let mut chunk = vec![0u8; 8192];
    loop {
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
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
                continue
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
        let bytes = shared.skip_echo(&chunk[..n]);
        buf.extend_from_slice(bytes);
        let mut pos = 0;
        loop {
            let opts = DigestOptions {
                awaiting_prompt: shared.awaiting_prompt.load(Ordering::SeqCst),
                max_block,
                max_line: 4096,
            };
            match digest(&buf[pos..], &opts) {
                Digested::Incomplete { skip } => {
                    pos += skip;
                    break;
                }
                Digested::Unit { used, unit } => {
                    // `unit` borrows `buf`; handle it before moving on.
                    let used = used.max(1);
                    catch_unwind(AssertUnwindSafe(|| shared.on_unit(unit, &mut asm)))
                        .unwrap_or_else(|_| log::error!("cmqtt: internal error handling a unit"));
                    pos += used;
                }
            }
        }
        buf.drain(..pos);
    }
}

fn dispatch_loop(shared: Arc<Shared>, rx: Receiver<Dispatch>) {
    while let Ok(d) = rx.recv() {
        // Take the callback out, then call it with no lock held: it may publish.
        let run = catch_unwind(AssertUnwindSafe(|| match d {
            Dispatch::Message(m) => {
                let cb = shared.callbacks.lock().on_message[m.client as usize & 1].clone();
                match cb {
                    Some(cb) => cb(&m),
                    None => shared.push_message(m),
                }
            }
            Dispatch::ConnectionLost(c, cause) => {
                let cb = shared.callbacks.lock().on_connection_lost[c as usize & 1].clone();
                if let Some(cb) = cb {
                    cb(c, cause);
                }
            }
            Dispatch::Event(e) => {
                let cb = shared.callbacks.lock().on_event.clone();
                match cb {
                    Some(cb) => cb(&e),
                    None => shared.queue_event(e),
                }
            }
        }));
        if run.is_err() {
            log::error!("cmqtt: a callback panicked; delivery goes on");
        }
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Shared>();
}

//! The AT engine: one thread that owns the modem state, reads host bytes
//! (command lines and prompted data), runs commands, and writes responses
//! and URCs as atomic units.
//!
//! Everything that changes modem state arrives through one channel
//! ([`Inbox`]): host bytes, MQTT session events and faults, so the state
//! needs no locks and the output order is the order of events.

mod basic;
mod cmqtt;
mod ssl;

use std::collections::VecDeque;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::at::{self, Arg, Command, ParseError};
use crate::codes;
use crate::config::{ResultOrder, SimConfig};
use crate::inbox::{FaultCmd, Inbox};
use crate::output::{Output, Unit};
use crate::profile::Profile;
use crate::session::{SessCmd, SessionEvent};
use crate::shared::Shared;
use crate::state::{ConnInfo, ModemState, CLIENTS};

/// Longest command line accepted (longer ones answer `ERROR`).
const MAX_LINE: usize = 4096;
/// Host bytes buffered while a command is in progress.
const MAX_PENDING_INPUT: usize = 256 * 1024;
/// URC bytes held back during prompted data / a pending publish.
const MAX_HELD: usize = 4 * 1024 * 1024;
/// How long a reset takes before `RDY`.
const BOOT_TIME: Duration = Duration::from_millis(200);

/// Where the bytes after a `>` prompt go.
#[derive(Debug)]
enum DataTarget {
    WillTopic(usize),
    WillMsg(usize, u8),
    Topic(usize),
    Payload(usize),
    SubTopic(usize, u8),
    UnsubTopic(usize),
    SubOnce(usize, u8),
    UnsubOnce(usize),
    CertDown(Vec<u8>),
}

#[derive(Debug)]
struct DataMode {
    want: usize,
    buf: Vec<u8>,
    deadline: Instant,
    target: DataTarget,
}

/// An asynchronous command waiting for its MQTT outcome.
#[derive(Debug)]
enum WaitKind {
    Connect { info: ConnInfo },
    Pub,
    Sub { topics: Vec<Vec<u8>> },
    Unsub { topics: Vec<Vec<u8>> },
    Disc,
}

impl WaitKind {
    fn name(&self) -> &'static str {
        match self {
            WaitKind::Connect { .. } => "+CMQTTCONNECT",
            WaitKind::Pub => "+CMQTTPUB",
            WaitKind::Sub { .. } => "+CMQTTSUB",
            WaitKind::Unsub { .. } => "+CMQTTUNSUB",
            WaitKind::Disc => "+CMQTTDISC",
        }
    }
}

#[derive(Debug)]
struct Wait {
    op: u64,
    client: usize,
    kind: WaitKind,
    deadline: Instant,
}

#[derive(Debug)]
enum Mode {
    Line,
    Data(DataMode),
    Wait(Wait),
    Boot(Instant),
    /// The port vanished: nothing is read until it is plugged in again.
    Gone,
}

/// How a command failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fail {
    /// Plain `ERROR`.
    Plain,
    /// `+CMQTTxxx: [<idx>,]<err>` then `ERROR`.
    Code(Option<u64>, u8),
}

type Res = Result<(), Fail>;

pub(crate) struct Engine {
    profile: Profile,
    rx_chunk: usize,
    data_timeout: Duration,
    boot_banner: bool,
    inbox: mpsc::Receiver<Inbox>,
    inbox_tx: mpsc::Sender<Inbox>,
    out: Output,
    shared: Arc<Shared>,
    rt: tokio::runtime::Handle,
    echo: bool,
    mode: Mode,
    line: Vec<u8>,
    line_overflow: bool,
    pending_input: VecDeque<u8>,
    /// URCs held back while the host is typing prompted data.
    held: Vec<Vec<u8>>,
    /// The response being assembled (written as one unit).
    resp: Vec<u8>,
    state: ModemState,
    next_id: u64,
    /// No network: CONNECT gets a loopback session (see [`crate::fuzz_feed`]).
    offline: bool,
    /// The loopback sessions' command queues (offline only).
    loopback: Vec<(u64, tokio::sync::mpsc::UnboundedReceiver<SessCmd>)>,
}

impl Engine {
    pub fn new(
        cfg: &SimConfig,
        inbox: mpsc::Receiver<Inbox>,
        inbox_tx: mpsc::Sender<Inbox>,
        out: Output,
        shared: Arc<Shared>,
        rt: tokio::runtime::Handle,
    ) -> Engine {
        Engine {
            profile: Profile::from_config(cfg),
            rx_chunk: cfg.rx_chunk.clamp(1, 1 << 20),
            data_timeout: cfg.data_timeout,
            boot_banner: cfg.boot_banner,
            inbox,
            inbox_tx,
            out,
            shared,
            rt,
            echo: cfg.echo,
            mode: Mode::Line,
            line: Vec::new(),
            line_overflow: false,
            pending_input: VecDeque::new(),
            held: Vec::new(),
            resp: Vec::new(),
            state: ModemState::new(),
            next_id: 0,
            offline: false,
            loopback: Vec::new(),
        }
    }

    pub fn run(mut self) {
        if self.boot_banner {
            self.banner(true);
        }
        loop {
            let msg = match self.deadline() {
                None => self
                    .inbox
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(d) => self
                    .inbox
                    .recv_timeout(d.saturating_duration_since(Instant::now())),
            };
            match msg {
                Ok(Inbox::Shutdown) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Ok(Inbox::Bytes(b)) => self.on_bytes(&b),
                Ok(Inbox::Session(e)) => self.on_session(e),
                Ok(Inbox::Fault(f)) => self.on_fault(f),
                Err(mpsc::RecvTimeoutError::Timeout) => self.on_timeout(),
            }
        }
        for c in self.state.clients.iter_mut() {
            if let Some(conn) = c.conn.take() {
                conn.handle.abort();
            }
        }
    }

    // ----- offline stepping (fuzzing) ---------------------------------------

    /// Runs without network from now on: CONNECT reaches a loopback broker.
    pub(crate) fn set_offline(&mut self) {
        self.offline = true;
    }

    /// The power-on banner, as `run` prints it.
    pub(crate) fn step_boot(&mut self) {
        if self.boot_banner {
            self.banner(true);
        }
    }

    /// Host bytes, then everything they caused (offline).
    pub(crate) fn step_bytes(&mut self, bytes: &[u8]) {
        self.on_bytes(bytes);
        self.pump();
    }

    /// A fault, then everything it caused (offline).
    pub(crate) fn step_fault(&mut self, f: FaultCmd) {
        self.on_fault(f);
        self.pump();
    }

    /// Whatever the engine waits for (prompted data, a broker answer, the
    /// end of a boot) times out now.
    pub(crate) fn step_expire(&mut self) {
        let now = Instant::now();
        match &mut self.mode {
            Mode::Data(d) => d.deadline = now,
            Mode::Wait(w) => w.deadline = now,
            Mode::Boot(t) => *t = now,
            Mode::Line | Mode::Gone => {}
        }
        self.on_timeout();
        self.pump();
    }

    /// Delivers queued session events and loopback answers until none is
    /// left (offline).
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut events = Vec::new();
            for (session, rx) in &mut self.loopback {
                while let Ok(cmd) = rx.try_recv() {
                    events.extend(crate::mqtt::loopback_answer(*session, cmd));
                }
            }
            self.loopback.retain(|(_, rx)| !rx.is_closed());
            for e in events {
                self.on_session(e);
            }
            match self.inbox.try_recv() {
                Ok(Inbox::Session(e)) => self.on_session(e),
                Ok(Inbox::Fault(f)) => self.on_fault(f),
                Ok(Inbox::Bytes(b)) => self.on_bytes(&b),
                Ok(Inbox::Shutdown) | Err(_) => {
                    if self.loopback.iter().all(|(_, rx)| rx.is_empty()) {
                        return;
                    }
                }
            }
        }
    }

    /// The engine's buffers are within their bounds.
    pub(crate) fn check_bounds(&self) {
        assert!(
            self.line.len() <= MAX_LINE,
            "command line {}",
            self.line.len()
        );
        assert!(
            self.pending_input.len() <= MAX_PENDING_INPUT,
            "pending input {}",
            self.pending_input.len()
        );
        let held: usize = self.held.iter().map(Vec::len).sum();
        assert!(held <= MAX_HELD, "held URCs {held}");
        if let Mode::Data(d) = &self.mode {
            assert!(d.buf.len() <= d.want, "data {} > {}", d.buf.len(), d.want);
            assert!(d.want <= 10240, "prompt for {} bytes", d.want);
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn deadline(&self) -> Option<Instant> {
        match &self.mode {
            Mode::Line => None,
            Mode::Data(d) => Some(d.deadline),
            Mode::Wait(w) => Some(w.deadline),
            Mode::Boot(t) => Some(*t),
            Mode::Gone => None,
        }
    }

    // ----- output helpers -------------------------------------------------

    fn send_unit(&self, bytes: Vec<u8>) {
        self.out.send(Unit::raw(bytes));
    }

    /// Appends `\r\n<text>\r\n` to the response.
    fn info(&mut self, text: &str) {
        self.resp.extend_from_slice(b"\r\n");
        self.resp.extend_from_slice(text.as_bytes());
        self.resp.extend_from_slice(b"\r\n");
    }

    /// Appends a bare `<text>\r\n` (for multi-line information responses,
    /// after a first [`Engine::info`]).
    fn info_more(&mut self, text: &str) {
        self.resp.extend_from_slice(text.as_bytes());
        self.resp.extend_from_slice(b"\r\n");
    }

    fn ok(&mut self) {
        self.info("OK");
    }

    fn error(&mut self) {
        self.info("ERROR");
    }

    /// Writes the assembled response as one unit.
    fn flush(&mut self) {
        if !self.resp.is_empty() {
            let r = std::mem::take(&mut self.resp);
            self.send_unit(r);
        }
    }

    /// A URC: written now, or held while the host types prompted data and
    /// while a publish waits for its acknowledgement (real modems report
    /// `+CMQTTPUB: <idx>,0` before the echo of their own message, although
    /// the broker sends that PUBLISH before the PUBACK).
    fn urc(&mut self, bytes: Vec<u8>) {
        let hold = match &self.mode {
            Mode::Data(_) => true,
            Mode::Wait(w) => matches!(w.kind, WaitKind::Pub),
            _ => false,
        };
        if hold {
            let held: usize = self.held.iter().map(Vec::len).sum();
            if held + bytes.len() > MAX_HELD {
                log::warn!("too many URCs held back: {} bytes dropped", bytes.len());
                Shared::bump(&self.shared.dropped, 1);
                return;
            }
            self.held.push(bytes);
        } else {
            self.send_unit(bytes);
        }
    }

    fn urc_line(&mut self, text: &str) {
        self.urc(format!("\r\n{text}\r\n").into_bytes());
    }

    fn release_held(&mut self) {
        for u in std::mem::take(&mut self.held) {
            self.send_unit(u);
        }
    }

    fn result_line(name: &str, idx: Option<u64>, code: u8) -> String {
        match idx {
            Some(i) => format!("{name}: {i},{code}"),
            None => format!("{name}: {code}"),
        }
    }

    /// Start of an asynchronous command: `OK` now when the result comes
    /// after it.
    fn begin_async(&mut self) {
        if self.profile.result_order == ResultOrder::OkFirst {
            self.ok();
        }
    }

    /// End of an asynchronous command: the result line (and, result-first,
    /// the final `OK`/`ERROR`).
    fn finish_async(&mut self, name: &str, idx: Option<u64>, code: u8) {
        let line = Engine::result_line(name, idx, code);
        self.info(&line);
        if self.profile.result_order == ResultOrder::ResultFirst {
            if code == 0 {
                self.ok();
            } else {
                self.error();
            }
        }
    }

    fn apply_slow(&self) {
        let d = *self.shared.slow.lock();
        if let Some(d) = d {
            std::thread::sleep(d);
        }
    }

    // ----- input ----------------------------------------------------------

    fn on_bytes(&mut self, bytes: &[u8]) {
        log::trace!(target: "cmqtt_sim::wire", "host> {:?}", String::from_utf8_lossy(bytes));
        if self.shared.is_stalled() {
            return;
        }
        match self.mode {
            Mode::Boot(_) | Mode::Gone => {}
            Mode::Wait(_) => self.buffer_input(bytes),
            Mode::Line | Mode::Data(_) => self.feed(bytes),
        }
    }

    fn buffer_input(&mut self, bytes: &[u8]) {
        let room = MAX_PENDING_INPUT.saturating_sub(self.pending_input.len());
        if room < bytes.len() {
            log::warn!(
                "host sent too much while busy: {} bytes dropped",
                bytes.len() - room
            );
        }
        self.pending_input.extend(&bytes[..bytes.len().min(room)]);
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        let mut echo: Vec<u8> = Vec::new();
        while i < bytes.len() {
            match &mut self.mode {
                Mode::Data(d) => {
                    let take = (d.want - d.buf.len()).min(bytes.len() - i);
                    d.buf.extend_from_slice(&bytes[i..i + take]);
                    if self.echo {
                        echo.extend_from_slice(&bytes[i..i + take]);
                    }
                    i += take;
                    if d.buf.len() >= d.want {
                        self.send_unit(std::mem::take(&mut echo));
                        if let Mode::Data(d) = std::mem::replace(&mut self.mode, Mode::Line) {
                            self.data_complete(d.target, d.buf);
                        }
                    }
                }
                Mode::Line => {
                    let b = bytes[i];
                    i += 1;
                    if self.echo {
                        echo.push(b);
                    }
                    match b {
                        b'\r' | b'\n' => {
                            if !self.line.is_empty() || self.line_overflow {
                                self.send_unit(std::mem::take(&mut echo));
                                let line = std::mem::take(&mut self.line);
                                let overflow = std::mem::replace(&mut self.line_overflow, false);
                                self.dispatch_line(&line, overflow);
                            }
                        }
                        0x08 | 0x7f => {
                            self.line.pop();
                        }
                        _ => {
                            if self.line.len() < MAX_LINE {
                                self.line.push(b);
                            } else {
                                self.line_overflow = true;
                            }
                        }
                    }
                }
                Mode::Wait(_) => {
                    self.send_unit(std::mem::take(&mut echo));
                    let rest = bytes[i..].to_vec();
                    self.buffer_input(&rest);
                    return;
                }
                Mode::Boot(_) | Mode::Gone => {
                    // Rebooting (or unplugged): the rest is lost.
                    return;
                }
            }
        }
        self.send_unit(echo);
    }

    /// Runs what the host typed while the engine was busy.
    fn resume_input(&mut self) {
        while matches!(self.mode, Mode::Line | Mode::Data(_)) && !self.pending_input.is_empty() {
            let chunk: Vec<u8> = self.pending_input.drain(..).collect();
            self.feed(&chunk);
        }
    }

    fn dispatch_line(&mut self, line: &[u8], overflow: bool) {
        Shared::bump(&self.shared.commands, 1);
        if overflow {
            self.apply_slow();
            self.error();
            self.flush();
            return;
        }
        let cmd = match at::parse_line(line) {
            Ok(c) => c,
            Err(ParseError::NotAt) => return,
            Err(ParseError::Syntax) => {
                self.apply_slow();
                self.error();
                self.flush();
                return;
            }
        };
        self.apply_slow();
        let name = cmd.name.clone();
        let res = self.execute(cmd);
        if let Err(f) = res {
            self.fail(&name, f);
        }
        self.flush();
    }

    fn fail(&mut self, name: &str, f: Fail) {
        match f {
            Fail::Plain => self.error(),
            Fail::Code(idx, code) => {
                let line = Engine::result_line(name, idx, code);
                self.info(&line);
                self.error();
            }
        }
    }

    fn execute(&mut self, cmd: Command) -> Res {
        let Command { name, basic, form } = cmd;
        if name.starts_with("+CMQTT") {
            return self.cmqtt(&name, form);
        }
        match name.as_str() {
            "+CSSLCFG" | "+CCERTDOWN" | "+CCERTLIST" | "+CCERTDELE" => self.ssl(&name, form),
            _ => self.basic(&name, basic, form),
        }
    }

    /// Sends the prompt and switches to data mode.
    fn prompt(&mut self, want: usize, target: DataTarget) {
        self.resp.extend_from_slice(self.profile.prompt);
        self.mode = Mode::Data(DataMode {
            want,
            buf: Vec::with_capacity(want),
            deadline: Instant::now() + self.data_timeout,
            target,
        });
    }

    fn data_complete(&mut self, target: DataTarget, data: Vec<u8>) {
        let name = match &target {
            DataTarget::WillTopic(_) => "+CMQTTWILLTOPIC",
            DataTarget::WillMsg(..) => "+CMQTTWILLMSG",
            DataTarget::Topic(_) => "+CMQTTTOPIC",
            DataTarget::Payload(_) => "+CMQTTPAYLOAD",
            DataTarget::SubTopic(..) => "+CMQTTSUBTOPIC",
            DataTarget::UnsubTopic(_) => "+CMQTTUNSUBTOPIC",
            DataTarget::SubOnce(..) => "+CMQTTSUB",
            DataTarget::UnsubOnce(_) => "+CMQTTUNSUB",
            DataTarget::CertDown(_) => "+CCERTDOWN",
        };
        self.apply_slow();
        let res = match target {
            DataTarget::CertDown(file) => {
                self.cert_data(file, data);
                Ok(())
            }
            other => self.cmqtt_data(other, data),
        };
        if let Err(f) = res {
            self.fail(name, f);
        }
        self.flush();
        self.release_held();
    }

    // ----- events ---------------------------------------------------------

    fn on_timeout(&mut self) {
        let now = Instant::now();
        match &self.mode {
            Mode::Data(d) if d.deadline <= now => {
                log::info!(
                    "prompted data timed out ({} of {} bytes)",
                    d.buf.len(),
                    d.want
                );
                self.mode = Mode::Line;
                self.error();
                self.flush();
                self.release_held();
            }
            Mode::Wait(w) if w.deadline <= now => {
                let op = w.op;
                self.complete_wait(op, codes::TIMEOUT);
            }
            Mode::Boot(t) if *t <= now => {
                self.mode = Mode::Line;
                self.banner(false);
                self.resume_input();
            }
            _ => {}
        }
    }

    fn banner(&mut self, power_on: bool) {
        if !power_on || self.boot_banner {
            self.send_unit(b"\r\nRDY\r\n".to_vec());
        }
        if self.boot_banner {
            self.send_unit(b"\r\n+CPIN: READY\r\n".to_vec());
            self.send_unit(b"\r\nSMS DONE\r\n".to_vec());
            self.send_unit(b"\r\nPB DONE\r\n".to_vec());
        }
    }

    fn client_of_session(&self, session: u64) -> Option<usize> {
        self.state
            .clients
            .iter()
            .position(|c| c.conn.as_ref().is_some_and(|k| k.handle.id() == session))
    }

    fn on_session(&mut self, ev: SessionEvent) {
        match ev {
            SessionEvent::Connected { op, result } => {
                let waiting = matches!(&self.mode, Mode::Wait(w) if w.op == op);
                match result {
                    Ok(handle) if waiting => {
                        if let Mode::Wait(w) = std::mem::replace(&mut self.mode, Mode::Line) {
                            if let WaitKind::Connect { info } = w.kind {
                                let c = &mut self.state.clients[w.client];
                                c.subscribed.clear();
                                c.conn = Some(crate::state::Conn { handle, info });
                                self.finish_async("+CMQTTCONNECT", Some(w.client as u64), 0);
                                self.flush();
                            }
                        }
                        self.after_wait();
                    }
                    Ok(handle) => handle.abort(),
                    Err(code) if waiting => self.complete_wait(op, code),
                    Err(_) => {}
                }
            }
            SessionEvent::Done { op, code } => {
                if matches!(&self.mode, Mode::Wait(w) if w.op == op) {
                    self.complete_wait(op, code);
                }
            }
            SessionEvent::Rx {
                session,
                topic,
                payload,
            } => {
                if let Some(c) = self.client_of_session(session) {
                    self.deliver(c, &topic, &payload);
                }
            }
            SessionEvent::Lost { session, cause } => {
                if let Some(c) = self.client_of_session(session) {
                    let cl = &mut self.state.clients[c];
                    cl.conn = None;
                    cl.subscribed.clear();
                    self.urc_line(&format!("+CMQTTCONNLOST: {c},{cause}"));
                }
            }
        }
    }

    /// Reports a received message, chunked, as one unit.
    fn deliver(&mut self, client: usize, topic: &[u8], payload: &[u8]) {
        if topic.is_empty() || topic.len() > 1024 || payload.len() > self.profile.rx_payload_max {
            log::warn!(
                "client {client}: received message (topic {} bytes, payload {} bytes) exceeds what the modem can report: dropped",
                topic.len(),
                payload.len()
            );
            Shared::bump(&self.shared.dropped, 1);
            return;
        }
        let sep: &[u8] = if self.profile.rx_blank_lines {
            b"\r\n"
        } else {
            b""
        };
        let mut u = Vec::with_capacity(topic.len() + payload.len() + 128);
        u.extend_from_slice(
            format!(
                "\r\n+CMQTTRXSTART: {client},{},{}\r\n",
                topic.len(),
                payload.len()
            )
            .as_bytes(),
        );
        for chunk in topic.chunks(self.rx_chunk) {
            u.extend_from_slice(sep);
            u.extend_from_slice(format!("+CMQTTRXTOPIC: {client},{}\r\n", chunk.len()).as_bytes());
            u.extend_from_slice(chunk);
            u.extend_from_slice(b"\r\n");
        }
        for chunk in payload.chunks(self.rx_chunk) {
            u.extend_from_slice(sep);
            u.extend_from_slice(
                format!("+CMQTTRXPAYLOAD: {client},{}\r\n", chunk.len()).as_bytes(),
            );
            u.extend_from_slice(chunk);
            u.extend_from_slice(b"\r\n");
        }
        u.extend_from_slice(sep);
        u.extend_from_slice(format!("+CMQTTRXEND: {client}\r\n").as_bytes());
        Shared::bump(&self.shared.delivered, 1);
        self.urc(u);
    }

    /// Finishes the waiting command `op` with `code`.
    fn complete_wait(&mut self, op: u64, code: u8) {
        if !matches!(&self.mode, Mode::Wait(w) if w.op == op) {
            return;
        }
        let Mode::Wait(w) = std::mem::replace(&mut self.mode, Mode::Line) else {
            return;
        };
        let idx = w.client;
        let name = w.kind.name();
        let cl = &mut self.state.clients[idx];
        match w.kind {
            WaitKind::Connect { .. } => {
                // "The setting will be cleared after AT+CMQTTCONNECT failed."
                cl.ssl_ctx = None;
            }
            WaitKind::Disc => {
                if let Some(c) = cl.conn.take() {
                    c.handle.abort();
                }
                cl.ssl_ctx = None;
                cl.subscribed.clear();
            }
            WaitKind::Sub { topics } if code == 0 => {
                for t in topics {
                    if !cl.subscribed.contains(&t) {
                        cl.subscribed.push(t);
                    }
                }
            }
            WaitKind::Unsub { topics } if code == 0 => {
                cl.subscribed.retain(|t| !topics.contains(t));
            }
            _ => {}
        }
        self.finish_async(name, Some(idx as u64), code);
        self.flush();
        self.after_wait();
    }

    fn after_wait(&mut self) {
        self.release_held();
        self.resume_input();
    }

    fn on_fault(&mut self, f: FaultCmd) {
        match f {
            FaultCmd::DropConnection { client, cause } => {
                let c = usize::from(client);
                if c < CLIENTS && self.state.clients[c].is_connected() {
                    self.lose_client(c, cause);
                }
            }
            FaultCmd::LoseNetwork => {
                for c in 0..CLIENTS {
                    if self.state.clients[c].is_connected() {
                        self.lose_client(c, codes::LOST_NETWORK_CLOSED);
                    }
                }
                self.cancel_wait();
                let was_started = self.state.started;
                for c in self.state.clients.iter_mut() {
                    c.release();
                }
                self.state.started = false;
                if self.profile.has_nonet && was_started {
                    self.urc_line("+CMQTTNONET");
                }
            }
            FaultCmd::Reset => self.reset(false),
            FaultCmd::Vanish => {
                // Like a power cut, and nothing runs until the port is back.
                self.reset(false);
                self.mode = Mode::Gone;
            }
            FaultCmd::Replugged => {
                if matches!(self.mode, Mode::Gone) {
                    // A fresh boot on the new port: echo on, RDY.
                    self.reset(false);
                }
            }
        }
    }

    /// Cuts client `c`'s connection: an operation waiting on it fails first
    /// (`<err>` 6), then `+CMQTTCONNLOST: c,cause`.
    fn lose_client(&mut self, c: usize, cause: u8) {
        let waiting_op = match &self.mode {
            Mode::Wait(w) if w.client == c && !matches!(w.kind, WaitKind::Connect { .. }) => {
                Some(w.op)
            }
            _ => None,
        };
        if let Some(conn) = self.state.clients[c].conn.take() {
            conn.handle.abort();
        }
        self.state.clients[c].subscribed.clear();
        if let Some(op) = waiting_op {
            self.complete_wait(op, codes::MESSAGE_RECEIVE_FAIL);
        }
        self.urc_line(&format!("+CMQTTCONNLOST: {c},{cause}"));
    }

    /// Abandons a waiting command without a result (reset, network loss).
    fn cancel_wait(&mut self) {
        if matches!(self.mode, Mode::Wait(_)) {
            self.mode = Mode::Line;
            self.after_wait();
        }
    }

    /// Modem reset. `via_at`: `AT+CRESET` (reports the lost connections
    /// first, as real modems do); otherwise a power glitch (silent).
    fn reset(&mut self, via_at: bool) {
        if via_at {
            for c in 0..CLIENTS {
                if self.state.clients[c].is_connected() {
                    self.urc_line(&format!(
                        "+CMQTTCONNLOST: {c},{}",
                        codes::LOST_NETWORK_CLOSED
                    ));
                }
            }
            if self.profile.has_nonet && self.state.started {
                self.urc_line("+CMQTTNONET");
            }
        }
        for c in self.state.clients.iter_mut() {
            c.release();
        }
        self.state.started = false;
        self.echo = true;
        self.line.clear();
        self.line_overflow = false;
        self.pending_input.clear();
        self.held.clear();
        self.resp.clear();
        self.mode = Mode::Boot(Instant::now() + BOOT_TIME);
    }
}

/// Helpers for argument validation shared by the command modules.
impl Engine {
    fn need_started(&self) -> Res {
        if self.state.started {
            Ok(())
        } else {
            Err(Fail::Plain)
        }
    }

    /// `<client_index>`: not a number → `ERROR`; out of range → `,10`.
    fn client_index(args: &[Arg]) -> Result<usize, Fail> {
        let n = args.first().and_then(Arg::num).ok_or(Fail::Plain)?;
        if n as usize >= CLIENTS || n > 1 {
            return Err(Fail::Code(Some(n), codes::CLIENT_INDEX_ERROR));
        }
        Ok(n as usize)
    }

    /// A numeric argument in `lo..=hi`, `default` when absent/empty;
    /// non-numeric → `ERROR`, out of range → `code`.
    fn num_arg(
        args: &[Arg],
        i: usize,
        lo: u64,
        hi: u64,
        default: Option<u64>,
        idx: usize,
        code: u8,
    ) -> Result<u64, Fail> {
        match args.get(i) {
            None | Some(Arg::Empty) => default.ok_or(Fail::Plain),
            Some(a) => {
                let n = a.num().ok_or(Fail::Plain)?;
                if n < lo || n > hi {
                    Err(Fail::Code(Some(idx as u64), code))
                } else {
                    Ok(n)
                }
            }
        }
    }

    fn need_acquired(&self, idx: usize) -> Res {
        if self.state.clients[idx].acquired.is_some() {
            Ok(())
        } else {
            Err(Fail::Code(Some(idx as u64), codes::CLIENT_NOT_ACQUIRED))
        }
    }

    fn need_connected(&self, idx: usize) -> Res {
        if self.state.clients[idx].is_connected() {
            Ok(())
        } else {
            Err(Fail::Code(Some(idx as u64), codes::NO_CONNECTION))
        }
    }

    fn check_utf8(&self, idx: usize, data: &[u8]) -> Res {
        if self.state.clients[idx].cfg.check_utf8 && std::str::from_utf8(data).is_err() {
            Err(Fail::Code(Some(idx as u64), codes::BAD_UTF8))
        } else {
            Ok(())
        }
    }
}

//! Supervision: keep one MQTT client connected through broker drops, network loss, modem
//! restarts and a serial port that vanishes and comes back, with an outbox so that nothing
//! published meanwhile is lost.
//!
//! A [`Supervisor`] owns a thread that opens the port, starts the service, acquires and
//! configures the client (TLS context, certificates, will), connects, subscribes, and then sends
//! the outbox in order. When something breaks it restores exactly what was lost, retrying with
//! exponential backoff and jitter, and says so with a [`SupervisorEvent`] at every step.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::client::{Client, ClientOptions, ConnectOptions, Publish};
use crate::error::{ErrCode, Error, Result};
use crate::event::{Event, Message, OverflowPolicy, Queue};
use crate::modem::{Modem, ModemOptions, SslContext};
use crate::outbox::{Delivery, DeliveryStatus, Outbox, OutboxConfig};
use crate::ports;

/// Where the modem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A device path, reopened by the same path.
    Serial { path: String, baud: u32 },
    /// A USB device found by identity, wherever it re-enumerates (`/dev/ttyUSB2` today,
    /// `/dev/ttyUSB6` after a reset).
    Usb {
        vid: u16,
        pid: u16,
        serial: Option<String>,
        interface: Option<u8>,
        baud: u32,
    },
    /// A serial-over-TCP bridge (or `cmqtt sim --tcp`).
    Tcp(SocketAddr),
}

/// The will, re-applied at every connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub topic: Vec<u8>,
    pub message: Vec<u8>,
    pub qos: u8,
}

/// Reconnect pacing: `initial`, doubling up to `max`, each delay varied by ±`jitter` (0..1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
            jitter: 0.25,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (1-based), with jitter from `rng`.
    pub fn delay(&self, attempt: u32, rng: &mut u64) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let base = self.initial.saturating_mul(1u32 << exp).min(self.max);
        let j = self.jitter.clamp(0.0, 1.0);
        let r = next_rand(rng); // 0..1
        let factor = 1.0 - j + 2.0 * j * r;
        base.mul_f64(factor).min(self.max.mul_f64(1.0 + j))
    }
}

fn next_rand(s: &mut u64) -> f64 {
    // xorshift64*: enough to spread reconnects of a fleet, no dependency needed.
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    let v = s.wrapping_mul(0x2545_f491_4f6c_dd1d);
    (v >> 11) as f64 / (1u64 << 53) as f64
}

/// Everything the supervisor needs to (re)build the session.
#[derive(Clone)]
pub struct SupervisorConfig {
    pub endpoint: Endpoint,
    pub modem: ModemOptions,
    /// The client index (0 or 1).
    pub index: u8,
    pub client: ClientOptions,
    pub connect: ConnectOptions,
    pub will: Option<Will>,
    /// SSL context number and its settings, applied before every acquire.
    pub ssl: Option<(u8, SslContext)>,
    /// Files for the modem's certificate store, uploaded when missing (name, bytes).
    pub certs: Vec<(String, Vec<u8>)>,
    /// Topic filters subscribed after every connect (more can be added at run time).
    pub subscriptions: Vec<(Vec<u8>, u8)>,
    pub backoff: Backoff,
    pub outbox: OutboxConfig,
    /// The modem's `<pub_timeout>` for each publish (60..=180 s).
    pub pub_timeout: Duration,
    /// Give a publish up after this many failures that are not about the connection.
    pub max_send_failures: u32,
    /// Capacity of the received-message queue.
    pub queue_capacity: usize,
}

impl std::fmt::Debug for SupervisorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorConfig")
            .field("endpoint", &self.endpoint)
            .field("index", &self.index)
            .field("client", &self.client)
            .field("connect", &self.connect)
            .field("will", &self.will)
            .field("ssl", &self.ssl)
            .field(
                "certs",
                &self
                    .certs
                    .iter()
                    .map(|(n, d)| format!("{n} ({} bytes)", d.len()))
                    .collect::<Vec<_>>(),
            )
            .field("subscriptions", &self.subscriptions.len())
            .field("backoff", &self.backoff)
            .field("outbox", &self.outbox)
            .finish()
    }
}

impl SupervisorConfig {
    /// Defaults for a client `client_id` on `endpoint` connecting to `server`.
    pub fn new(endpoint: Endpoint, client_id: &str, server: &str) -> Self {
        SupervisorConfig {
            endpoint,
            modem: ModemOptions::default(),
            index: 0,
            client: ClientOptions::new(client_id),
            connect: ConnectOptions::new(server),
            will: None,
            ssl: None,
            certs: Vec::new(),
            subscriptions: Vec::new(),
            backoff: Backoff::default(),
            outbox: OutboxConfig::default(),
            pub_timeout: Duration::from_secs(60),
            max_send_failures: 5,
            queue_capacity: 4096,
        }
    }

    /// The profile the modem will have as far as the configuration says (the forced profile or
    /// model; the A7600 profile when the modem is to be identified).
    fn expected_profile(&self) -> crate::Profile {
        self.modem
            .profile
            .clone()
            .or(self.modem.model.map(crate::Profile::for_model))
            .unwrap_or_default()
    }

    /// Checks every setting that can be checked without a modem, with the same checks the
    /// commands make before a byte is sent (client index and id, server, keepalive, credentials,
    /// will, subscriptions, SSL context number, certificate names, publish timeout, backoff).
    /// [`Supervisor::start`] does not call it (a bad setting shows there as failed attempts);
    /// the C and Python bindings do, so that a configuration that can never work is refused at
    /// once.
    pub fn validate(&self) -> Result<()> {
        use crate::command::{self, validate as v, Command};
        let p = self.expected_profile();
        command::Accq {
            index: self.index,
            client_id: self.client.client_id.clone(),
            tls: self.client.tls,
            version: None,
        }
        .request(&p)?;
        if let Some(ver) = self.client.version {
            v::range("version", ver, 3, 4)?;
        }
        if let Some(t) = self.client.op_timeout {
            v::range("optimeout_val", t, 20, 120)?;
        }
        if let Some(ctx) = self.client.ssl_ctx {
            v::range("ssl_ctx_index", ctx, 0, 9)?;
        }
        let c = &self.connect;
        command::Connect {
            index: self.index,
            server: &c.server,
            keepalive: c.keepalive,
            clean_session: c.clean_session,
            username: c.username.as_deref(),
            password: c.password.as_deref(),
            timeout: c.timeout,
        }
        .request(&p)?;
        if let Some(w) = &self.will {
            command::validate_will(&p, &w.topic, &w.message, w.qos)?;
        }
        for (topic, qos) in &self.subscriptions {
            v::qos(*qos)?;
            v::len("topic", topic.len(), 1, p.max_topic)?;
        }
        if let Some((ctx, _)) = &self.ssl {
            v::range("ssl_ctx", *ctx, 0, 9)?;
        }
        for (name, data) in &self.certs {
            command::CertDown { name, data }.request(&p)?;
        }
        v::range("pub_timeout", self.pub_timeout.as_secs(), 60, 180)?;
        let j = self.backoff.jitter;
        if !(0.0..=1.0).contains(&j) {
            return Err(Error::invalid(
                "backoff jitter",
                format!("must be 0..=1, got {j}"),
            ));
        }
        if self.backoff.initial > self.backoff.max {
            return Err(Error::invalid(
                "backoff",
                format!(
                    "initial delay {:?} is longer than the maximum {:?}",
                    self.backoff.initial, self.backoff.max
                ),
            ));
        }
        if self.queue_capacity == 0 {
            return Err(Error::invalid("queue_capacity", "must be at least 1"));
        }
        Ok(())
    }
}

/// Where the supervised client stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Opening the port and synchronising with the modem.
    Opening,
    /// Starting the service, acquiring and configuring the client.
    Starting,
    /// Connecting to the broker and subscribing.
    Connecting,
    /// Connected: the outbox is being sent.
    Connected,
    /// Waiting before the next attempt.
    Waiting { attempt: u32, delay: Duration },
    /// Stopped by [`Supervisor::close`].
    Stopped,
}

/// What broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loss {
    /// `+CMQTTCONNLOST` with its cause.
    Connection { cause: u8 },
    /// `+CMQTTNONET`.
    Network,
    /// The modem restarted (`RDY`).
    ModemRestart,
    /// The serial port failed or vanished.
    Port(String),
    /// The modem stopped answering or answered nonsense.
    Unresponsive(String),
}

/// Everything the supervisor does that the host may care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisorEvent {
    /// A new state.
    State(State),
    /// Something broke; restoring starts.
    Lost(Loss),
    /// Connected again after `attempts` attempts.
    Restored { attempts: u32 },
    /// An attempt to restore failed.
    AttemptFailed { attempt: u32, error: String },
    /// A publish was dropped from a full outbox (drop-oldest).
    Dropped { id: u64 },
    /// A publish will never be sent.
    Failed { id: u64, reason: String },
    /// Any other modem event, passed through.
    Modem(Event),
}

type EventCb = Arc<dyn Fn(&SupervisorEvent) + Send + Sync>;
type MessageCb = Arc<dyn Fn(&Message) + Send + Sync>;

struct Inner {
    cfg: Mutex<SupervisorConfig>,
    outbox: Outbox,
    messages: Queue<Message>,
    events: Queue<SupervisorEvent>,
    on_event: Mutex<Option<EventCb>>,
    on_message: Mutex<Option<MessageCb>>,
    state: Mutex<State>,
    trouble: Mutex<Option<Loss>>,
    closing: AtomicBool,
    /// Subscriptions were added: apply the missing ones.
    resubscribe: AtomicBool,
    modem: Mutex<Option<Modem>>,
    thread_id: Mutex<Option<ThreadId>>,
}

/// A supervised client: see the module documentation.
pub struct Supervisor {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("state", &self.state())
            .field("outbox", &self.inner.outbox.len())
            .finish()
    }
}

impl Supervisor {
    /// Start supervising. Returns at once; the connection is made in the background (see
    /// [`Supervisor::wait_connected`]). Fails only for a configuration that can never work
    /// (an outbox file that cannot be opened).
    pub fn start(cfg: SupervisorConfig) -> Result<Supervisor> {
        Supervisor::start_with_callbacks(cfg, None, None)
    }

    /// [`Supervisor::start`] with the [`Supervisor::on_event`] and [`Supervisor::on_message`]
    /// callbacks installed before the supervisor thread starts, so that not even its first
    /// event is queued instead.
    #[allow(clippy::type_complexity)]
    pub fn start_with_callbacks(
        cfg: SupervisorConfig,
        on_event: Option<Box<dyn Fn(&SupervisorEvent) + Send + Sync>>,
        on_message: Option<Box<dyn Fn(&Message) + Send + Sync>>,
    ) -> Result<Supervisor> {
        let outbox = Outbox::open(cfg.outbox.clone())?;
        let cap = cfg.queue_capacity;
        let inner = Arc::new(Inner {
            cfg: Mutex::new(cfg),
            outbox,
            messages: Queue::new("supervised messages", cap, OverflowPolicy::DropOldest),
            events: Queue::new("supervisor events", cap, OverflowPolicy::DropOldest),
            on_event: Mutex::new(on_event.map(EventCb::from)),
            on_message: Mutex::new(on_message.map(MessageCb::from)),
            state: Mutex::new(State::Opening),
            trouble: Mutex::new(None),
            closing: AtomicBool::new(false),
            resubscribe: AtomicBool::new(false),
            modem: Mutex::new(None),
            thread_id: Mutex::new(None),
        });
        let i = inner.clone();
        let thread = std::thread::Builder::new()
            .name("cmqtt-supervisor".into())
            .spawn(move || run(i))?;
        *inner.thread_id.lock() = Some(thread.thread().id());
        Ok(Supervisor {
            inner,
            thread: Some(thread),
        })
    }

    /// The open modem's profile, or the one the configuration expects while none is open.
    fn profile(&self) -> crate::Profile {
        self.modem()
            .map(|m| m.profile())
            .unwrap_or_else(|| self.inner.cfg.lock().expected_profile())
    }

    /// Queue a publish; it is sent in order as soon as the client is connected. The returned
    /// [`Delivery`] tells when the modem reported it sent (for QoS 1/2: acknowledged).
    /// With a full outbox this follows [`OutboxConfig::when_full`] (blocking up to the publish
    /// timeout; never blocking when called from a supervisor callback).
    pub fn publish(
        &self,
        topic: impl AsRef<[u8]>,
        payload: &[u8],
        qos: u8,
        retain: bool,
    ) -> Result<Delivery> {
        let topic = topic.as_ref();
        // Arguments that can never be sent are refused now, not after a reconnect.
        let p = self.profile();
        crate::command::validate::qos(qos)?;
        crate::command::validate::len("topic", topic.len(), 1, p.max_topic)?;
        if payload.len() > p.max_payload {
            return Err(Error::invalid(
                "payload",
                format!("must be 0..={} bytes, got {}", p.max_payload, payload.len()),
            ));
        }
        let in_callback = *self.inner.thread_id.lock() == Some(std::thread::current().id());
        let block = if in_callback {
            Duration::ZERO
        } else {
            self.inner.cfg.lock().pub_timeout
        };
        let pushed = self.inner.outbox.push(topic, payload, qos, retain, block)?;
        if let Some(id) = pushed.dropped {
            emit(&self.inner, SupervisorEvent::Dropped { id });
        }
        Ok(pushed.delivery)
    }

    /// Publish and wait until delivered (or `timeout`).
    pub fn publish_wait(
        &self,
        topic: impl AsRef<[u8]>,
        payload: &[u8],
        qos: u8,
        retain: bool,
        timeout: Duration,
    ) -> Result<()> {
        self.publish(topic, payload, qos, retain)?
            .wait_delivered(timeout)
    }

    /// Add a subscription: applied now if connected, and after every reconnect.
    pub fn subscribe(&self, topic: impl AsRef<[u8]>, qos: u8) -> Result<()> {
        let topic = topic.as_ref().to_vec();
        crate::command::validate::qos(qos)?;
        crate::command::validate::len("topic", topic.len(), 1, self.profile().max_topic)?;
        {
            let mut cfg = self.inner.cfg.lock();
            cfg.subscriptions.retain(|(t, _)| *t != topic);
            cfg.subscriptions.push((topic.clone(), qos));
        }
        // Applied by the supervisor thread: now if connected, and after every reconnect.
        self.inner.resubscribe.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Messages as they arrive (from every reconnect of the client).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Message> {
        self.inner.messages.pop(Some(timeout))
    }

    /// Run `f` for every received message (on the modem's dispatch thread) instead of queueing.
    pub fn on_message(&self, f: impl Fn(&Message) + Send + Sync + 'static) {
        *self.inner.on_message.lock() = Some(Arc::new(f));
    }

    /// Stop running the [`Supervisor::on_message`] callback: messages are queued for
    /// [`Supervisor::recv_timeout`] again.
    pub fn clear_on_message(&self) {
        *self.inner.on_message.lock() = None;
    }

    /// Stop running the [`Supervisor::on_event`] callback: events are queued for
    /// [`Supervisor::recv_event`] again.
    pub fn clear_on_event(&self) {
        *self.inner.on_event.lock() = None;
    }

    /// The next supervisor event, waiting up to `timeout`.
    pub fn recv_event(&self, timeout: Duration) -> Option<SupervisorEvent> {
        self.inner.events.pop(Some(timeout))
    }

    /// Run `f` for every supervisor event (on the supervisor thread) instead of queueing.
    pub fn on_event(&self, f: impl Fn(&SupervisorEvent) + Send + Sync + 'static) {
        *self.inner.on_event.lock() = Some(Arc::new(f));
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.inner.state.lock().clone()
    }

    /// Wait until connected, up to `timeout`.
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if *self.inner.state.lock() == State::Connected {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Publishes waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.inner.outbox.len()
    }

    /// Wait until the outbox is empty, up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.inner.outbox.flush(timeout)
    }

    /// Tickets of publishes loaded from the outbox file at start (and any still waiting).
    pub fn pending(&self) -> Vec<Delivery> {
        self.inner.outbox.pending()
    }

    /// The current modem session, if open (for status queries; commands run on it compete
    /// with the supervisor's).
    pub fn modem(&self) -> Option<Modem> {
        self.inner.modem.lock().clone()
    }

    /// Begin stopping without waiting (for bindings that share the supervisor between
    /// threads): new publishes, and publishes blocked on a full outbox, fail with
    /// [`Error::Closed`] at once, and the supervisor thread ends at its next step.
    /// [`Supervisor::close`] (or dropping) still disconnects and waits for the thread.
    pub fn begin_close(&self) {
        self.inner.closing.store(true, Ordering::SeqCst);
        self.inner.outbox.close();
    }

    /// Stop: disconnect cleanly when connected, release, and end the thread. Waiting publishes
    /// stay in the outbox file when one is configured.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.inner.closing.store(true, Ordering::SeqCst);
        self.inner.outbox.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        set_state(&self.inner, State::Stopped);
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn emit(inner: &Inner, e: SupervisorEvent) {
    log::debug!("cmqtt supervisor: {e:?}");
    let cb = inner.on_event.lock().clone();
    match cb {
        Some(cb) => cb(&e),
        None => {
            inner.events.push(e);
        }
    }
}

fn set_state(inner: &Inner, s: State) {
    let changed = {
        let mut st = inner.state.lock();
        let changed = *st != s;
        *st = s.clone();
        changed
    };
    if changed {
        emit(inner, SupervisorEvent::State(s));
    }
}

/// The session the supervisor thread holds.
struct Conn {
    modem: Option<Modem>,
    client: Option<Client>,
    /// Subscriptions applied on the current connection.
    subscribed: Vec<(Vec<u8>, u8)>,
}

fn run(inner: Arc<Inner>) {
    let mut conn = Conn {
        modem: None,
        client: None,
        subscribed: Vec::new(),
    };
    let mut rng = seed();
    let mut attempt = 0u32;
    // The first state is news too (set_state only reports changes).
    emit(&inner, SupervisorEvent::State(State::Opening));
    while !inner.closing.load(Ordering::SeqCst) {
        match establish(&inner, &mut conn) {
            Ok(()) => {
                if attempt > 0 {
                    emit(&inner, SupervisorEvent::Restored { attempts: attempt });
                }
                attempt = 0;
                set_state(&inner, State::Connected);
                if let Some(loss) = serve(&inner, &mut conn) {
                    emit(&inner, SupervisorEvent::Lost(loss.clone()));
                    recover(&inner, &mut conn, &loss);
                }
            }
            Err(e) => {
                attempt += 1;
                emit(
                    &inner,
                    SupervisorEvent::AttemptFailed {
                        attempt,
                        error: e.to_string(),
                    },
                );
                degrade(&inner, &mut conn, &e);
                let delay = inner.cfg.lock().backoff.delay(attempt, &mut rng);
                set_state(&inner, State::Waiting { attempt, delay });
                sleep_unless_closing(&inner, delay);
            }
        }
    }
    // Clean shutdown: disconnect (no will), release.
    if let Some(c) = conn.client.take() {
        if c.is_connected() {
            let _ = c.disconnect(Duration::from_secs(60));
        }
        let _ = c.release();
    }
    *inner.modem.lock() = None;
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    (t ^ ((std::process::id() as u64) << 32)) | 1
}

fn sleep_unless_closing(inner: &Inner, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end && !inner.closing.load(Ordering::SeqCst) {
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
    }
}

/// After a failed attempt, forget what the error shows to be broken.
fn degrade(inner: &Inner, conn: &mut Conn, e: &Error) {
    match e {
        Error::Closed(_) | Error::Io(_) | Error::Serial { .. } => {
            if let Some(c) = conn.client.take() {
                c.discard();
            }
            drop_session(inner, conn);
        }
        Error::Timeout { .. } => {
            if let Some(c) = conn.client.take() {
                c.discard();
            }
            if !responsive(conn) {
                drop_session(inner, conn);
            }
        }
        Error::Modem { .. }
            if matches!(
                e.err_code(),
                Some(ErrCode::ClientNotAcquired) | Some(ErrCode::NetworkNotOpened)
            ) || (e.modem_code().is_none()
                && conn.client.as_ref().is_some_and(|c| !c.is_connected())) =>
        {
            // The modem lost the client or the service: acquire again.
            if let Some(c) = conn.client.take() {
                c.discard();
            }
        }
        _ => {}
    }
}

fn recover(inner: &Inner, conn: &mut Conn, loss: &Loss) {
    match loss {
        Loss::Connection { .. } => {}
        Loss::Network => {
            // The note: restart the service. Release what is left, stop, start again later.
            if let Some(c) = conn.client.take() {
                let _ = c.release();
            }
            if let Some(m) = &conn.modem {
                let _ = m.stop();
            }
        }
        Loss::ModemRestart => {
            if let Some(c) = conn.client.take() {
                c.discard(); // the modem no longer has it
            }
            if let Some(m) = &conn.modem {
                // A restarted modem has echo on again.
                let _ = m.execute(&crate::command::Echo(false));
            }
        }
        Loss::Unresponsive(_) => {
            // Its state is unknown: acquire afresh (a client still held is freed then).
            if let Some(c) = conn.client.take() {
                c.discard();
            }
            if !responsive(conn) {
                drop_session(inner, conn);
            }
        }
        Loss::Port(_) => {
            if let Some(c) = conn.client.take() {
                c.discard();
            }
            drop_session(inner, conn);
        }
    }
    conn.subscribed.clear();
}

/// Whether the session still answers `AT` (a slow or rebooting modem, not a dead port).
fn responsive(conn: &Conn) -> bool {
    conn.modem.as_ref().is_some_and(|m| {
        m.closed_reason().is_none() && (0..3).any(|_| m.execute(&crate::command::At).is_ok())
    })
}

/// Closes the port: every handle the supervisor holds goes, so it can be opened again.
fn drop_session(inner: &Inner, conn: &mut Conn) {
    conn.modem = None;
    *inner.modem.lock() = None;
}

fn open(inner: &Arc<Inner>) -> Result<Modem> {
    let cfg = inner.cfg.lock().clone();
    let modem = match &cfg.endpoint {
        Endpoint::Serial { path, baud } => Modem::open_with(path, *baud, cfg.modem.clone())?,
        Endpoint::Usb {
            vid,
            pid,
            serial,
            interface,
            baud,
        } => {
            let path = ports::find_usb(*vid, *pid, serial.as_deref(), *interface).ok_or_else(|| {
                Error::Closed(format!(
                    "no USB serial port {vid:04x}:{pid:04x} (serial {serial:?}, interface {interface:?}) is present"
                ))
            })?;
            Modem::open_with(&path, *baud, cfg.modem.clone())?
        }
        Endpoint::Tcp(addr) => {
            let s = std::net::TcpStream::connect_timeout(addr, Duration::from_secs(5))?;
            Modem::with_tcp(s, cfg.modem.clone())?
        }
    };
    let weak = Arc::downgrade(inner);
    let index = cfg.index;
    modem.on_event(move |e| {
        let Some(inner) = weak.upgrade() else { return };
        let loss = match e {
            Event::ConnectionLost { client, cause } if *client == index => {
                Some(Loss::Connection { cause: *cause })
            }
            Event::NoNetwork => Some(Loss::Network),
            Event::ModemRestarted => Some(Loss::ModemRestart),
            _ => None,
        };
        match loss {
            Some(l) => {
                let mut t = inner.trouble.lock();
                // A bigger loss wins over a smaller one reported at the same time.
                if t.as_ref().is_none_or(|old| rank(&l) >= rank(old)) {
                    *t = Some(l);
                }
            }
            None => emit(&inner, SupervisorEvent::Modem(e.clone())),
        }
    });
    Ok(modem)
}

fn rank(l: &Loss) -> u8 {
    match l {
        Loss::Connection { .. } => 1,
        Loss::Network => 2,
        Loss::ModemRestart => 3,
        Loss::Unresponsive(_) => 4,
        Loss::Port(_) => 5,
    }
}

/// Builds whatever is missing, from the port up to the subscriptions.
fn establish(inner: &Arc<Inner>, conn: &mut Conn) -> Result<()> {
    if conn
        .modem
        .as_ref()
        .is_none_or(|m| m.closed_reason().is_some())
    {
        conn.client = None;
        set_state(inner, State::Opening);
        let m = open(inner)?;
        *inner.modem.lock() = Some(m.clone());
        conn.modem = Some(m);
        // Trouble reported before this session is history.
        *inner.trouble.lock() = None;
    }
    let modem = conn.modem.clone().expect("opened above");
    let cfg = inner.cfg.lock().clone();
    if conn.client.as_ref().is_some_and(|c| c.is_stale()) {
        conn.client = None;
    }
    if conn.client.is_none() {
        set_state(inner, State::Starting);
        modem.start()?;
        if !cfg.certs.is_empty() {
            let have = modem.cert_list().unwrap_or_default();
            for (name, data) in &cfg.certs {
                if !have.contains(name) {
                    modem.cert_upload(name, data)?;
                }
            }
        }
        if let Some((ctx, ssl)) = &cfg.ssl {
            modem.ssl_configure(*ctx, ssl)?;
        }
        let client = match modem.client_with(cfg.index, &cfg.client) {
            Err(e) if e.err_code() == Some(ErrCode::ClientUsed) || e.modem_code().is_none() => {
                // Left acquired by an earlier process (or this one before a crash): free it.
                let _ = modem.execute(&crate::command::Disc {
                    index: cfg.index,
                    timeout: 0,
                });
                let _ = modem.execute(&crate::command::Rel { index: cfg.index });
                modem.client_with(cfg.index, &cfg.client)?
            }
            r => r?,
        };
        let weak = Arc::downgrade(inner);
        client.on_message(move |m| {
            if let Some(inner) = weak.upgrade() {
                let cb = inner.on_message.lock().clone();
                match cb {
                    Some(cb) => cb(m),
                    None => {
                        inner.messages.push(m.clone());
                    }
                }
            }
        });
        conn.client = Some(client);
        conn.subscribed.clear();
    }
    let client = conn.client.as_ref().expect("acquired above");
    if !client.is_connected() {
        set_state(inner, State::Connecting);
        if let Some(w) = &cfg.will {
            client.set_will(&w.topic, &w.message, w.qos)?;
        }
        client.connect(&cfg.connect)?;
        conn.subscribed.clear();
    }
    subscribe_missing(inner, conn)?;
    inner.resubscribe.store(false, Ordering::SeqCst);
    Ok(())
}

fn subscribe_missing(inner: &Inner, conn: &mut Conn) -> Result<()> {
    let wanted = inner.cfg.lock().subscriptions.clone();
    let missing: Vec<(Vec<u8>, u8)> = wanted
        .into_iter()
        .filter(|w| !conn.subscribed.contains(w))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let client = conn.client.as_ref().expect("connected");
    client.subscribe(&missing)?;
    conn.subscribed.extend(missing);
    Ok(())
}

/// Sends the outbox while connected; returns what broke (None when closing).
fn serve(inner: &Arc<Inner>, conn: &mut Conn) -> Option<Loss> {
    let max_failures = inner.cfg.lock().max_send_failures.max(1);
    let pub_timeout = inner.cfg.lock().pub_timeout;
    loop {
        if inner.closing.load(Ordering::SeqCst) {
            return None;
        }
        if let Some(l) = inner.trouble.lock().take() {
            return Some(l);
        }
        let modem = conn.modem.as_ref()?;
        if let Some(r) = modem.closed_reason() {
            return Some(Loss::Port(r));
        }
        if inner.resubscribe.load(Ordering::SeqCst) {
            if let Err(e) = subscribe_missing(inner, conn) {
                return Some(classify(&e));
            }
            inner.resubscribe.store(false, Ordering::SeqCst);
        }
        let Some(entry) = inner.outbox.front(Duration::from_millis(50)) else {
            continue;
        };
        let client = conn.client.as_ref()?;
        entry.note_attempt();
        let r = client.publish_message(&Publish {
            topic: &entry.topic,
            payload: &entry.payload,
            qos: entry.qos,
            retain: entry.retain,
            dup: false,
            timeout: pub_timeout,
        });
        match r {
            Ok(()) => {
                let _ = inner.outbox.complete(entry.id, DeliveryStatus::Delivered);
            }
            Err(e @ Error::InvalidArgument { .. }) => {
                fail(inner, entry.id, e.to_string());
            }
            Err(e) if is_connection_error(&e) => {
                // What the modem itself reported (CONNLOST, RDY, NONET) says more than the
                // error of the command it interrupted.
                let loss = inner.trouble.lock().take().unwrap_or_else(|| classify(&e));
                if entry.qos == 0 {
                    // At most once: a QoS 0 publish cut off mid-way is not sent again.
                    fail(
                        inner,
                        entry.id,
                        format!("QoS 0 publish interrupted ({e}); not retried"),
                    );
                }
                return Some(loss);
            }
            Err(e) => {
                let n = inner.outbox.note_failure(entry.id);
                if n >= max_failures {
                    fail(inner, entry.id, format!("gave up after {n} failures: {e}"));
                } else {
                    sleep_unless_closing(inner, Duration::from_millis(100 * n as u64));
                }
            }
        }
    }
}

fn fail(inner: &Inner, id: u64, reason: String) {
    let _ = inner
        .outbox
        .complete(id, DeliveryStatus::Failed(reason.clone()));
    emit(inner, SupervisorEvent::Failed { id, reason });
}

fn is_connection_error(e: &Error) -> bool {
    match e {
        Error::NotConnected { .. }
        | Error::ConnectionLost { .. }
        | Error::Closed(_)
        | Error::Io(_)
        | Error::Serial { .. }
        | Error::Timeout { .. } => true,
        Error::Modem { .. } => {
            matches!(
                e.err_code(),
                Some(
                    ErrCode::NoConnection
                        | ErrCode::SockConnectFail
                        | ErrCode::SockSendingFail
                        | ErrCode::SocketClosedByServer
                        | ErrCode::MessageReceiveFail
                        | ErrCode::Timeout
                        | ErrCode::NetworkNotOpened
                        | ErrCode::ClientNotAcquired
                        | ErrCode::ClientBusy
                )
            ) || e.modem_code().is_none()
        }
        _ => false,
    }
}

fn classify(e: &Error) -> Loss {
    match e {
        Error::Closed(r) => Loss::Port(r.clone()),
        Error::Io(err) => Loss::Port(err.to_string()),
        Error::Serial { source, .. } => Loss::Port(source.to_string()),
        Error::Timeout { command, .. } => Loss::Unresponsive(format!("{command} timed out")),
        Error::ConnectionLost { cause, .. } => Loss::Connection { cause: *cause },
        Error::Modem { .. } if e.err_code() == Some(ErrCode::NetworkNotOpened) => Loss::Network,
        Error::Modem { .. } if e.err_code() == Some(ErrCode::ClientNotAcquired) => {
            Loss::ModemRestart
        }
        _ => Loss::Connection { cause: 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            jitter: 0.25,
        };
        let mut rng = 42;
        let d1 = b.delay(1, &mut rng);
        assert!(
            d1 >= Duration::from_millis(75) && d1 <= Duration::from_millis(125),
            "{d1:?}"
        );
        let d3 = b.delay(3, &mut rng);
        assert!(
            d3 >= Duration::from_millis(300) && d3 <= Duration::from_millis(500),
            "{d3:?}"
        );
        for a in 5..40 {
            assert!(b.delay(a, &mut rng) <= Duration::from_millis(2500));
        }
        let spread: std::collections::HashSet<_> =
            (0..20).map(|_| b.delay(2, &mut rng).as_micros()).collect();
        assert!(spread.len() > 10, "jitter should vary the delay");
    }
}

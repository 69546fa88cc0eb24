//! Supervision: keep one MQTT client connected through broker drops, network loss, modem
//! restarts and a serial port that vanishes and comes back, with an outbox so that nothing
//! published meanwhile is lost.
//!
//! A [`Supervisor`] owns a thread that opens the port, starts the service, acquires and
//! configures the client (TLS context, certificates, will), connects, subscribes, and then sends
//! the outbox in order. When something breaks it restores exactly what was lost, retrying with
//! exponential backoff and jitter, and says so with a [`SupervisorEvent`] at every step.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::client::{Client, ClientOptions, ConnectOptions, Publish};
use crate::dispatch::{CallbackSlot, ANY_OWNER};
use crate::error::{ErrCode, Error, Result};
use crate::event::{Event, Message, OverflowPolicy, Queue};
use crate::health::Health;
use crate::modem::{Modem, ModemOptions, SslContext};
use crate::outbox::{Delivery, DeliveryStatus, Outbox, OutboxConfig};
use crate::ports;
use crate::time::deadline_after;

pub mod policy;

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

/// The baud rate an endpoint parsed from text gets when none is given.
pub const DEFAULT_BAUD: u32 = 115200;

impl Endpoint {
    /// Parses an endpoint (see the [`FromStr`] grammar) with `baud` for serial ports.
    pub fn parse_with_baud(s: &str, baud: u32) -> Result<Endpoint> {
        let bad = |why: String| Error::InvalidArgument {
            param: "endpoint",
            reason: why,
        };
        let s = s.trim();
        if s.is_empty() {
            return Err(bad(
                "empty; give a device path (/dev/ttyUSB2), tcp://HOST:PORT or usb:VID:PID".into(),
            ));
        }
        let lower = s.to_ascii_lowercase();
        let tcp = |rest: &str| -> Result<Endpoint> {
            let rest = rest.trim_end_matches('/');
            let addr = rest
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .filter(|a| a.port() != 0)
                .ok_or_else(|| {
                    bad(format!(
                        "{s:?}: expected HOST:PORT with a port 1..65535 (e.g. tcp://127.0.0.1:7000)"
                    ))
                })?;
            Ok(Endpoint::Tcp(addr))
        };
        if let Some(rest) = ["tcp://", "socket://"]
            .iter()
            .find_map(|p| lower.starts_with(p).then(|| &s[p.len()..]))
        {
            return tcp(rest);
        }
        if let Some(rest) = lower.starts_with("usb:").then(|| &s[4..]) {
            let parts: Vec<&str> = rest.split(':').collect();
            let hex = |p: Option<&&str>, what: &str| {
                p.and_then(|v| u16::from_str_radix(v, 16).ok())
                    .ok_or_else(|| bad(format!("{s:?}: the {what} must be 4 hex digits (usb:VID:PID[:SERIAL][:INTERFACE], e.g. usb:1e0e:9011)")))
            };
            if parts.len() > 4 {
                return Err(bad(format!(
                    "{s:?}: expected usb:VID:PID[:SERIAL][:INTERFACE]"
                )));
            }
            let vid = hex(parts.first(), "vendor id")?;
            let pid = hex(parts.get(1), "product id")?;
            let serial = parts
                .get(2)
                .filter(|v| !v.is_empty())
                .map(|v| v.to_string());
            let interface =
                match parts.get(3).filter(|v| !v.is_empty()) {
                    None => None,
                    Some(v) => Some(v.parse::<u8>().map_err(|_| {
                        bad(format!("{s:?}: the interface must be a number 0..255"))
                    })?),
                };
            return Ok(Endpoint::Usb {
                vid,
                pid,
                serial,
                interface,
                baud,
            });
        }
        if s.contains("://") {
            return Err(bad(format!(
                "{s:?}: unknown scheme; use a device path, tcp://HOST:PORT, socket://HOST:PORT or usb:VID:PID"
            )));
        }
        // A bare HOST:PORT (no path separator, ends in a port number) is a TCP bridge.
        let looks_tcp = !s.contains('/')
            && s.rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if looks_tcp {
            return tcp(s);
        }
        Ok(Endpoint::Serial {
            path: s.to_string(),
            baud,
        })
    }
}

/// One grammar for where a modem is, used by the CLI, C and Python:
/// - a device path: `/dev/ttyUSB2`, `/dev/cmqtt-modem` (115200 baud; see
///   [`Endpoint::parse_with_baud`]);
/// - a serial-over-TCP bridge: `tcp://HOST:PORT`, `socket://HOST:PORT` (pyserial's spelling) or
///   a bare `HOST:PORT`;
/// - a USB device by identity, wherever it enumerates: `usb:VID:PID[:SERIAL][:INTERFACE]`
///   (hex ids; leave SERIAL empty to give only the interface: `usb:1e0e:9011::2`).
impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Endpoint> {
        Endpoint::parse_with_baud(s, DEFAULT_BAUD)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Serial { path, .. } => f.write_str(path),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
            Endpoint::Usb {
                vid,
                pid,
                serial,
                interface,
                ..
            } => {
                write!(f, "usb:{vid:04x}:{pid:04x}")?;
                match (serial, interface) {
                    (None, None) => Ok(()),
                    (s, None) => write!(f, ":{}", s.as_deref().unwrap_or("")),
                    (s, Some(i)) => write!(f, ":{}:{i}", s.as_deref().unwrap_or("")),
                }
            }
        }
    }
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
    /// Capacity of the received-message queue (and of the supervisor event queue).
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
        let r = c.resolve()?;
        if r.tls && !self.client.tls {
            return Err(Error::invalid(
                "server",
                "an mqtts:// server needs the client acquired with TLS (ClientOptions::tls)",
            ));
        }
        command::Connect {
            index: self.index,
            server: &r.server,
            keepalive: c.keepalive,
            clean_session: c.clean_session,
            username: r.username.as_deref(),
            password: r.password.as_deref(),
            timeout: c.timeout,
        }
        .request(&p)?;
        if let Some(w) = &self.will {
            command::validate_will(&p, &w.topic, &w.message, w.qos)?;
        }
        for (topic, qos) in &self.subscriptions {
            v::qos(*qos)?;
            v::len("topic", topic.len(), 1, p.max_topic)?;
            v::topic_filter("topic", topic)?;
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
        crate::event::check_capacity("queue_capacity", self.queue_capacity)?;
        crate::event::check_capacity("outbox capacity", self.outbox.capacity.max(1))?;
        crate::event::check_capacity("modem queue_capacity", self.modem.queue_capacity.max(1))?;
        Ok(())
    }
}

/// Where the supervised client stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

impl State {
    /// A stable, short name (`"opening"`, `"connected"`, `"waiting"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            State::Opening => "opening",
            State::Starting => "starting",
            State::Connecting => "connecting",
            State::Connected => "connected",
            State::Waiting { .. } => "waiting",
            State::Stopped => "stopped",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Waiting { attempt, delay } => write!(
                f,
                "waiting {:.1} s before attempt {attempt}",
                delay.as_secs_f64()
            ),
            s => f.write_str(s.kind()),
        }
    }
}

/// What broke.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

impl Loss {
    /// A stable, short name (`"connection"`, `"network"`, `"modem_restart"`, `"port"`,
    /// `"unresponsive"`).
    pub fn kind(&self) -> &'static str {
        match self {
            Loss::Connection { .. } => "connection",
            Loss::Network => "network",
            Loss::ModemRestart => "modem_restart",
            Loss::Port(_) => "port",
            Loss::Unresponsive(_) => "unresponsive",
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loss::Connection { cause } => write!(f, "broker connection lost (cause {cause})"),
            Loss::Network => f.write_str("network lost (+CMQTTNONET)"),
            Loss::ModemRestart => f.write_str("modem restarted (RDY)"),
            Loss::Port(why) => write!(f, "serial port lost: {why}"),
            Loss::Unresponsive(why) => write!(f, "modem unresponsive: {why}"),
        }
    }
}

/// Everything the supervisor does that the host may care about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SupervisorEvent {
    /// A new state.
    State(State),
    /// Something broke; restoring starts.
    Lost(Loss),
    /// Connected again after a loss or failed attempts; `attempts` counts the attempts made
    /// since (the successful one included).
    Restored { attempts: u32 },
    /// An attempt to restore failed.
    AttemptFailed { attempt: u32, error: String },
    /// A publish was dropped from a full outbox (drop-oldest).
    Dropped { id: u64 },
    /// A publish will never be sent.
    Failed { id: u64, reason: String },
    /// A subscription was refused (by the broker or the modem) and is dropped: it is not
    /// retried after reconnects.
    SubscribeFailed { topic: Vec<u8>, reason: String },
    /// The outbox file was damaged when the supervisor opened it: damaged records were
    /// skipped (the rest kept) and the file as found was kept aside; says what and where.
    OutboxRecovered { summary: String },
    /// Any other modem event, passed through.
    Modem(Event),
}

impl SupervisorEvent {
    /// A stable, short name (`"state"`, `"lost"`, `"restored"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            SupervisorEvent::State(_) => "state",
            SupervisorEvent::Lost(_) => "lost",
            SupervisorEvent::Restored { .. } => "restored",
            SupervisorEvent::AttemptFailed { .. } => "attempt_failed",
            SupervisorEvent::Dropped { .. } => "dropped",
            SupervisorEvent::Failed { .. } => "failed",
            SupervisorEvent::SubscribeFailed { .. } => "subscribe_failed",
            SupervisorEvent::OutboxRecovered { .. } => "outbox_recovered",
            SupervisorEvent::Modem(_) => "modem",
        }
    }
}

impl fmt::Display for SupervisorEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SupervisorEvent::State(s) => write!(f, "state: {s}"),
            SupervisorEvent::Lost(l) => write!(f, "lost: {l}"),
            SupervisorEvent::Restored { attempts } => {
                write!(f, "restored after {attempts} attempt(s)")
            }
            SupervisorEvent::AttemptFailed { attempt, error } => {
                write!(f, "attempt {attempt} failed: {error}")
            }
            SupervisorEvent::Dropped { id } => write!(f, "publish {id} dropped (outbox full)"),
            SupervisorEvent::Failed { id, reason } => write!(f, "publish {id} failed: {reason}"),
            SupervisorEvent::SubscribeFailed { topic, reason } => write!(
                f,
                "subscription {:?} refused: {reason}",
                String::from_utf8_lossy(topic)
            ),
            SupervisorEvent::OutboxRecovered { summary } => {
                write!(f, "outbox file recovered: {summary}")
            }
            SupervisorEvent::Modem(e) => write!(f, "modem: {e}"),
        }
    }
}

type EventCb = dyn Fn(&SupervisorEvent) + Send + Sync;
type MessageCb = dyn Fn(&Message) + Send + Sync;

/// What the actor's mailbox carries. Everything that can change what the supervisor should do
/// arrives here; it blocks on nothing else.
enum Input {
    /// The outbox has a new entry (or room, or was closed).
    Outbox,
    /// Add (or change the QoS of) a subscription.
    Subscribe(Vec<u8>, u8),
    /// Remove a subscription.
    Unsubscribe(Vec<u8>),
    /// The modem's health record changed.
    Health,
    /// Stop.
    Close,
}

/// What the handles share with the actor.
struct Inner {
    cfg: SupervisorConfig,
    outbox: Outbox,
    messages: Queue<Message>,
    events: Queue<SupervisorEvent>,
    on_event: CallbackSlot<EventCb>,
    on_message: CallbackSlot<MessageCb>,
    state: Mutex<State>,
    state_cv: Condvar,
    closing: AtomicBool,
    modem: Mutex<Option<Modem>>,
    /// The mailbox's sending side, for the health listener and the handles.
    tx: Mutex<Sender<Input>>,
}

impl Inner {
    fn send(&self, i: Input) {
        // The actor may be gone (closed): nothing to tell it then.
        let _ = self.tx.lock().send(i);
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }
}

/// Stops the actor when the last handle goes.
struct Handle {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        shutdown(&self.inner, &self.thread);
    }
}

fn shutdown(inner: &Arc<Inner>, thread: &Mutex<Option<JoinHandle<()>>>) {
    inner.closing.store(true, Ordering::SeqCst);
    inner.outbox.close();
    inner.send(Input::Close);
    let t = thread.lock().take();
    if let Some(t) = t {
        // From a callback the thread ends by itself: on the supervisor's own thread joining
        // would wait for itself, and on a modem's dispatch thread the supervisor's clean-up
        // (dropping the modem joins that dispatch thread) would wait for us.
        if t.thread().id() != std::thread::current().id() && !crate::dispatch::in_callback() {
            let _ = t.join();
        }
    }
    set_state(inner, State::Stopped);
    inner.messages.close();
    inner.events.close();
}

/// A supervised client: see the module documentation. Cheap to clone (all clones drive the
/// same supervisor); it stops when [`Supervisor::close`] is called or the last clone is
/// dropped.
#[derive(Clone)]
pub struct Supervisor {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("state", &self.state())
            .field("outbox", &self.inner().outbox.len())
            .finish()
    }
}

impl Supervisor {
    /// Start supervising. Returns at once; the connection is made in the background (see
    /// [`Supervisor::wait_connected`]). Fails only for a configuration that can never work
    /// (an outbox file that cannot be opened, a capacity over the limit).
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
        crate::event::check_capacity("queue_capacity", cfg.queue_capacity.max(1))?;
        let outbox = Outbox::open(cfg.outbox.clone())?;
        let cap = cfg.queue_capacity.max(1);
        let (tx, rx) = channel();
        let inner = Arc::new(Inner {
            cfg,
            outbox,
            messages: Queue::new("supervised messages", cap, OverflowPolicy::DropOldest),
            events: Queue::new("supervisor events", cap, OverflowPolicy::DropOldest),
            on_event: CallbackSlot::new(),
            on_message: CallbackSlot::new(),
            state: Mutex::new(State::Opening),
            state_cv: Condvar::new(),
            closing: AtomicBool::new(false),
            modem: Mutex::new(None),
            tx: Mutex::new(tx),
        });
        if let Some(f) = on_event {
            inner.on_event.set(ANY_OWNER, Arc::from(f), false);
        }
        if let Some(f) = on_message {
            inner.on_message.set(ANY_OWNER, Arc::from(f), false);
        }
        let i = inner.clone();
        let thread = std::thread::Builder::new()
            .name("cmqtt-supervisor".into())
            .spawn(move || Actor::new(i, rx).run())?;
        Ok(Supervisor {
            handle: Arc::new(Handle {
                inner,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.handle.inner
    }

    /// The open modem's profile, or the one the configuration expects while none is open.
    fn profile(&self) -> crate::Profile {
        self.modem()
            .map(|m| m.profile())
            .unwrap_or_else(|| self.inner().cfg.expected_profile())
    }

    /// Queue a publish; it is sent in order as soon as the client is connected. The returned
    /// [`Delivery`] tells when the modem reported it sent (for QoS 1/2: acknowledged).
    /// Arguments that can never be sent (a wildcard or NUL in the topic, a payload over the
    /// model's limit) are refused here, before anything is queued.
    ///
    /// With a full outbox this follows [`OutboxConfig::when_full`]: blocking up to the publish
    /// timeout, except inside any cmqtt callback, where it fails at once with
    /// [`Error::OutboxFull`] rather than wait for the thread it is blocking.
    pub fn publish(
        &self,
        topic: impl AsRef<[u8]>,
        payload: &[u8],
        qos: impl Into<u8>,
        retain: bool,
    ) -> Result<Delivery> {
        self.live()?;
        let qos = qos.into();
        let topic = topic.as_ref();
        let p = self.profile();
        crate::command::validate::qos(qos)?;
        crate::command::validate::len("topic", topic.len(), 1, p.max_topic)?;
        crate::command::validate::publish_topic("topic", topic)?;
        if payload.len() > p.max_payload {
            return Err(Error::invalid(
                "payload",
                format!("must be 0..={} bytes, got {}", p.max_payload, payload.len()),
            ));
        }
        let inner = self.inner();
        let block = if crate::dispatch::in_callback() {
            Duration::ZERO
        } else {
            inner.cfg.pub_timeout
        };
        let pushed = inner.outbox.push(topic, payload, qos, retain, block)?;
        if let Some(id) = pushed.dropped {
            emit(inner, SupervisorEvent::Dropped { id });
        }
        inner.send(Input::Outbox);
        Ok(pushed.delivery)
    }

    /// Publish and wait until delivered (or `timeout`).
    pub fn publish_wait(
        &self,
        topic: impl AsRef<[u8]>,
        payload: &[u8],
        qos: impl Into<u8>,
        retain: bool,
        timeout: Duration,
    ) -> Result<()> {
        self.publish(topic, payload, qos, retain)?
            .wait_delivered(timeout)
    }

    /// Add a subscription (a topic filter; `+` and `#` as MQTT allows): applied now if
    /// connected, and after every reconnect. A filter the broker refuses is reported with
    /// [`SupervisorEvent::SubscribeFailed`] and dropped.
    pub fn subscribe(&self, topic: impl AsRef<[u8]>, qos: impl Into<u8>) -> Result<()> {
        let qos = qos.into();
        let topic = topic.as_ref().to_vec();
        crate::command::validate::qos(qos)?;
        crate::command::validate::len("topic", topic.len(), 1, self.profile().max_topic)?;
        crate::command::validate::topic_filter("topic", &topic)?;
        self.live()?;
        self.inner().send(Input::Subscribe(topic, qos));
        Ok(())
    }

    /// Remove a subscription: unsubscribed now if connected, and not restored after reconnects.
    pub fn unsubscribe(&self, topic: impl AsRef<[u8]>) -> Result<()> {
        let topic = topic.as_ref().to_vec();
        crate::command::validate::len("topic", topic.len(), 1, self.profile().max_topic)?;
        crate::command::validate::topic_filter("topic", &topic)?;
        self.live()?;
        self.inner().send(Input::Unsubscribe(topic));
        Ok(())
    }

    fn live(&self) -> Result<()> {
        if self.inner().closing() {
            return Err(Error::Closed("the supervisor is closed".into()));
        }
        Ok(())
    }

    /// Messages as they arrive (from every reconnect of the client).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Message> {
        self.inner().messages.pop(Some(timeout))
    }

    /// Run `f` for every received message (on the modem's dispatch thread) instead of queueing.
    /// Replaces an earlier callback once that one has returned.
    pub fn on_message(&self, f: impl Fn(&Message) + Send + Sync + 'static) {
        self.inner()
            .on_message
            .set(ANY_OWNER, Arc::new(f), crate::dispatch::in_callback());
    }

    /// Stop running the [`Supervisor::on_message`] callback: messages are queued for
    /// [`Supervisor::recv_timeout`] again. Returns once it is no longer running (unless called
    /// from a callback).
    pub fn clear_on_message(&self) {
        self.inner()
            .on_message
            .clear(ANY_OWNER, crate::dispatch::in_callback());
    }

    /// Stop running the [`Supervisor::on_event`] callback: events are queued for
    /// [`Supervisor::recv_event`] again.
    pub fn clear_on_event(&self) {
        self.inner()
            .on_event
            .clear(ANY_OWNER, crate::dispatch::in_callback());
    }

    /// The next supervisor event, waiting up to `timeout`.
    pub fn recv_event(&self, timeout: Duration) -> Option<SupervisorEvent> {
        self.inner().events.pop(Some(timeout))
    }

    /// Run `f` for every supervisor event instead of queueing it (on the supervisor thread, or
    /// on the modem's dispatch thread for passed-through modem events).
    pub fn on_event(&self, f: impl Fn(&SupervisorEvent) + Send + Sync + 'static) {
        self.inner()
            .on_event
            .set(ANY_OWNER, Arc::new(f), crate::dispatch::in_callback());
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.inner().state.lock().clone()
    }

    /// Wait until connected, up to `timeout` (sleeps until the state changes).
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let inner = self.inner();
        let deadline = deadline_after(timeout);
        let mut st = inner.state.lock();
        loop {
            if *st == State::Connected {
                return true;
            }
            if *st == State::Stopped || inner.state_cv.wait_until(&mut st, deadline).timed_out() {
                return *st == State::Connected;
            }
        }
    }

    /// Publishes waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.inner().outbox.len()
    }

    /// Wait until the outbox is empty, up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.inner().outbox.flush(timeout)
    }

    /// Tickets of publishes loaded from the outbox file at start (and any still waiting).
    pub fn pending(&self) -> Vec<Delivery> {
        self.inner().outbox.pending()
    }

    /// The current modem session, if open (for status queries; commands run on it compete
    /// with the supervisor's).
    pub fn modem(&self) -> Option<Modem> {
        self.inner().modem.lock().clone()
    }

    /// Begin stopping without waiting: new publishes, and publishes blocked on a full outbox,
    /// fail with [`Error::Closed`] at once, and the supervisor thread ends at its next step.
    /// [`Supervisor::close`] still disconnects and waits for the thread.
    pub fn begin_close(&self) {
        let inner = self.inner();
        inner.closing.store(true, Ordering::SeqCst);
        inner.outbox.close();
        inner.send(Input::Close);
    }

    /// Stop: disconnect cleanly when connected, release, and end the thread. Waiting publishes
    /// stay in the outbox file when one is configured. Idempotent, and callable from any clone
    /// and from any cmqtt callback (which then does not wait for the thread to end).
    pub fn close(&self) {
        shutdown(&self.handle.inner, &self.handle.thread);
    }
}

fn emit(inner: &Inner, e: SupervisorEvent) {
    log::debug!("cmqtt supervisor: {e}");
    match inner.on_event.enter() {
        Some(run) => {
            crate::dispatch::guarded(|| (run.cb)(&e));
        }
        None => {
            inner.events.push(e);
        }
    }
}

fn set_state(inner: &Inner, s: State) {
    let changed = {
        let mut st = inner.state.lock();
        // Stopped is final.
        let changed = *st != s && *st != State::Stopped;
        if changed {
            *st = s.clone();
        }
        changed
    };
    if changed {
        inner.state_cv.notify_all();
        emit(inner, SupervisorEvent::State(s));
    }
}

fn fail(inner: &Inner, id: u64, reason: String) {
    let _ = inner
        .outbox
        .complete(id, DeliveryStatus::Failed(reason.clone()));
    emit(inner, SupervisorEvent::Failed { id, reason });
}

/// The session the actor holds.
#[derive(Default)]
struct Conn {
    modem: Option<Modem>,
    /// The health listener registered on `modem`.
    listener: Option<u64>,
    client: Option<Client>,
    /// Subscriptions applied on the current connection.
    subscribed: Vec<(Vec<u8>, u8)>,
    /// The modem's health when the current connection was being established: a loss is a
    /// change from it.
    mark: Option<Health>,
}

/// The supervisor thread: owns all connection state; everything else reaches it as [`Input`].
struct Actor {
    inner: Arc<Inner>,
    rx: Receiver<Input>,
    conn: Conn,
    /// The subscriptions wanted (the configured ones, plus and minus changes at run time).
    wanted: Vec<(Vec<u8>, u8)>,
    rng: u64,
    /// Losses and failed attempts since the connection was last stable: the backoff step.
    streak: u32,
    /// Attempts since the last loss (for [`SupervisorEvent::Restored`]).
    attempts: u32,
    closed: bool,
}

impl Actor {
    fn new(inner: Arc<Inner>, rx: Receiver<Input>) -> Actor {
        let wanted = inner.cfg.subscriptions.clone();
        Actor {
            inner,
            rx,
            conn: Conn::default(),
            wanted,
            rng: seed(),
            streak: 0,
            attempts: 0,
            closed: false,
        }
    }

    fn run(mut self) {
        let inner = self.inner.clone();
        // The first state is news too (set_state only reports changes).
        emit(&inner, SupervisorEvent::State(State::Opening));
        if let Some(r) = inner.outbox.open_report().filter(|r| r.is_damaged()) {
            emit(
                &inner,
                SupervisorEvent::OutboxRecovered {
                    summary: r.to_string(),
                },
            );
        }
        let mut lost = false;
        while !self.stopping() {
            self.attempts += 1;
            match self.establish() {
                Ok(()) => {
                    if lost || self.attempts > 1 {
                        emit(
                            &inner,
                            SupervisorEvent::Restored {
                                attempts: self.attempts,
                            },
                        );
                    }
                    self.attempts = 0;
                    set_state(&inner, State::Connected);
                    let up = Instant::now();
                    let Some(loss) = self.serve() else { break };
                    emit(&inner, SupervisorEvent::Lost(loss.clone()));
                    lost = true;
                    self.recover(&loss);
                    if policy::stable(up.elapsed(), &inner.cfg.backoff) {
                        self.streak = 0;
                    }
                }
                Err(e) => {
                    emit(
                        &inner,
                        SupervisorEvent::AttemptFailed {
                            attempt: self.attempts,
                            error: e.to_string(),
                        },
                    );
                    self.degrade(&e);
                }
            }
            // Backoff after every loss and every failed attempt: a broker that drops us at
            // once (a duplicate client id, a refused publish) is not hammered.
            self.streak = self.streak.saturating_add(1);
            let delay = inner.cfg.backoff.delay(self.streak, &mut self.rng);
            set_state(
                &inner,
                State::Waiting {
                    attempt: self.attempts + 1,
                    delay,
                },
            );
            self.wait_inputs(deadline_after(delay));
        }
        self.close_session();
    }

    fn stopping(&self) -> bool {
        self.closed || self.inner.closing()
    }

    /// Takes one input into account.
    fn apply(&mut self, i: Input) {
        match i {
            Input::Outbox | Input::Health => {}
            Input::Subscribe(t, q) => {
                self.wanted.retain(|(w, _)| *w != t);
                self.wanted.push((t, q));
            }
            Input::Unsubscribe(t) => self.wanted.retain(|(w, _)| *w != t),
            Input::Close => self.closed = true,
        }
    }

    /// Everything already in the mailbox, without waiting.
    fn drain_inputs(&mut self) {
        while let Ok(i) = self.rx.try_recv() {
            self.apply(i);
        }
    }

    /// Sleeps until `until` (taking inputs meanwhile) or until closing.
    fn wait_inputs(&mut self, until: Instant) {
        while !self.stopping() {
            let now = Instant::now();
            if now >= until {
                return;
            }
            match self.rx.recv_timeout(until - now) {
                Ok(i) => self.apply(i),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => self.closed = true,
            }
        }
    }

    /// Builds whatever is missing, from the port up to the subscriptions.
    fn establish(&mut self) -> Result<()> {
        let inner = self.inner.clone();
        let cfg = &inner.cfg;
        if self
            .conn
            .modem
            .as_ref()
            .is_none_or(|m| m.closed_reason().is_some())
        {
            self.close_session();
            set_state(&inner, State::Opening);
            let m = open(&inner)?;
            let weak = Arc::downgrade(&inner);
            self.conn.listener = Some(m.add_health_listener(move || {
                if let Some(i) = weak.upgrade() {
                    i.send(Input::Health);
                }
            }));
            *inner.modem.lock() = Some(m.clone());
            self.conn.modem = Some(m);
        }
        let modem = self.conn.modem.clone().expect("opened above");
        // Trouble reported before this point is history: a loss is a change from here on.
        self.conn.mark = Some(modem.health());
        if self.conn.client.as_ref().is_some_and(|c| c.is_stale()) {
            self.conn.client = None;
        }
        if self.conn.client.is_none() {
            set_state(&inner, State::Starting);
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
            let weak = Arc::downgrade(&inner);
            // Not waiting for a callback of the client this one replaces: it forwards to the
            // user's callback, which may be blocked (then only its queue fills).
            client.on_message_nowait(move |m| {
                if let Some(inner) = weak.upgrade() {
                    match inner.on_message.enter() {
                        Some(run) => (run.cb)(m),
                        None => {
                            inner.messages.push(m.clone());
                        }
                    }
                }
            });
            self.conn.client = Some(client);
            self.conn.subscribed.clear();
        }
        let client = self.conn.client.as_ref().expect("acquired above");
        if !client.is_connected() {
            set_state(&inner, State::Connecting);
            // The modem clears the SSL context binding and the will after a failed connect and
            // after a disconnect: set both again before every connect.
            if let Some(ctx) = cfg.client.ssl_ctx {
                client.set_ssl_context(ctx)?;
            }
            if let Some(w) = &cfg.will {
                client.set_will(&w.topic, &w.message, w.qos)?;
            }
            client.connect(&cfg.connect)?;
            self.conn.subscribed.clear();
        }
        self.drain_inputs();
        self.reconcile_subscriptions()
    }

    /// Subscribes what is wanted and missing, unsubscribes what is no longer wanted. A filter
    /// refused (not a connection failure) is reported and dropped; a connection failure is
    /// returned.
    fn reconcile_subscriptions(&mut self) -> Result<()> {
        let Some(client) = self.conn.client.as_ref() else {
            return Ok(());
        };
        let stale: Vec<Vec<u8>> = self
            .conn
            .subscribed
            .iter()
            .filter(|(t, _)| !self.wanted.iter().any(|(w, _)| w == t))
            .map(|(t, _)| t.clone())
            .collect();
        for t in stale {
            match client.unsubscribe(&[&t]) {
                Ok(()) => {}
                Err(e) if policy::is_connection_error(&e) => return Err(e),
                Err(e) => log::warn!(
                    "cmqtt supervisor: unsubscribing {:?} failed: {e}",
                    String::from_utf8_lossy(&t)
                ),
            }
            self.conn.subscribed.retain(|(s, _)| *s != t);
        }
        let missing: Vec<(Vec<u8>, u8)> = self
            .wanted
            .iter()
            .filter(|w| !self.conn.subscribed.contains(w))
            .cloned()
            .collect();
        for (t, q) in missing {
            // One filter at a time, so that a refusal names its filter.
            match client.subscribe(&[(&t, q)]) {
                Ok(()) => {
                    self.conn.subscribed.retain(|(s, _)| *s != t);
                    self.conn.subscribed.push((t, q));
                }
                Err(e) if policy::refused_filter(&e, client.is_connected()) => {
                    self.wanted.retain(|(w, _)| *w != t);
                    emit(
                        &self.inner,
                        SupervisorEvent::SubscribeFailed {
                            topic: t,
                            reason: e.to_string(),
                        },
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// What broke since the connection was established, if anything.
    fn check_health(&self) -> Option<Loss> {
        let modem = self.conn.modem.as_ref()?;
        let now = modem.health();
        let mark = self.conn.mark.as_ref()?;
        policy::loss_between(mark, &now, self.inner.cfg.index)
            .or_else(|| modem.closed_reason().map(Loss::Port))
    }

    /// Sends the outbox while connected, sleeping on the mailbox when there is nothing to do;
    /// returns what broke (None when closing).
    fn serve(&mut self) -> Option<Loss> {
        let inner = self.inner.clone();
        let max_failures = inner.cfg.max_send_failures.max(1);
        loop {
            self.drain_inputs();
            if self.stopping() {
                return None;
            }
            if let Some(l) = self.check_health() {
                return Some(l);
            }
            if let Err(e) = self.reconcile_subscriptions() {
                return Some(self.check_health().unwrap_or_else(|| policy::classify(&e)));
            }
            let Some(entry) = inner.outbox.front(Duration::ZERO) else {
                // Nothing to send: sleep until something arrives (no polling).
                match self.rx.recv() {
                    Ok(i) => self.apply(i),
                    Err(_) => self.closed = true,
                }
                continue;
            };
            let client = self.conn.client.as_ref()?;
            entry.note_attempt();
            let r = client.publish_message(&Publish {
                topic: &entry.topic,
                payload: &entry.payload,
                qos: entry.qos,
                retain: entry.retain,
                dup: false,
                timeout: inner.cfg.pub_timeout,
            });
            let failures = match &r {
                Err(e) if policy::charged(e) => inner.outbox.note_failure(entry.id),
                _ => 0,
            };
            match policy::after_send(&r, entry.qos, failures, max_failures) {
                policy::SendDecision::Delivered => {
                    let _ = inner.outbox.complete(entry.id, DeliveryStatus::Delivered);
                }
                policy::SendDecision::Fail(reason) => fail(&inner, entry.id, reason),
                policy::SendDecision::Retry(pause) => self.wait_inputs(deadline_after(pause)),
                policy::SendDecision::Reconnect { fail: why } => {
                    if let Some(reason) = why {
                        fail(&inner, entry.id, reason);
                    }
                    // What the modem itself reported (CONNLOST, RDY, NONET) says more than the
                    // error of the command it interrupted.
                    let e = r.expect_err("Reconnect is decided for errors only");
                    return Some(self.check_health().unwrap_or_else(|| policy::classify(&e)));
                }
            }
        }
    }

    /// After a failed attempt, forget what the error shows to be broken.
    fn degrade(&mut self, e: &Error) {
        match e {
            Error::Closed(_) | Error::Io(_) | Error::Serial { .. } => {
                if let Some(c) = self.conn.client.take() {
                    c.discard();
                }
                self.close_session();
            }
            Error::Timeout { .. } => {
                if let Some(c) = self.conn.client.take() {
                    c.discard();
                }
                if !self.responsive() {
                    self.close_session();
                }
            }
            Error::Modem { .. }
                if matches!(
                    e.err_code(),
                    Some(ErrCode::ClientNotAcquired) | Some(ErrCode::NetworkNotOpened)
                ) || (e.modem_code().is_none()
                    && self.conn.client.as_ref().is_some_and(|c| !c.is_connected())) =>
            {
                // The modem lost the client or the service: acquire again.
                if let Some(c) = self.conn.client.take() {
                    c.discard();
                }
            }
            _ => {}
        }
    }

    /// Tears down what the loss destroyed (see [`policy::destroyed`]).
    fn recover(&mut self, loss: &Loss) {
        let damage = policy::destroyed(loss);
        if damage.client {
            match (loss, self.conn.client.take()) {
                // After +CMQTTNONET the modem still has the client: free it, then restart the
                // service (the note's recovery).
                (Loss::Network, Some(c)) => {
                    let _ = c.release();
                }
                (_, Some(c)) => c.discard(),
                (_, None) => {}
            }
        }
        if damage.service {
            if let (Loss::Network, Some(m)) = (loss, &self.conn.modem) {
                let _ = m.stop();
            }
        }
        if let (Loss::ModemRestart, Some(m)) = (loss, &self.conn.modem) {
            // A restarted modem has echo on again.
            let _ = m.execute(&crate::command::Echo(false));
        }
        if damage.session || !self.responsive_if(loss) {
            self.close_session();
        }
        self.conn.subscribed.clear();
    }

    /// For an unresponsive modem: whether it answers `AT` again (then the port is kept).
    fn responsive_if(&self, loss: &Loss) -> bool {
        !matches!(loss, Loss::Unresponsive(_)) || self.responsive()
    }

    /// Whether the session still answers `AT` (a slow or rebooting modem, not a dead port).
    fn responsive(&self) -> bool {
        self.conn.modem.as_ref().is_some_and(|m| {
            m.closed_reason().is_none() && (0..3).any(|_| m.execute(&crate::command::At).is_ok())
        })
    }

    /// Closes the port: every handle the supervisor holds goes, so it can be opened again.
    fn close_session(&mut self) {
        if let Some(c) = self.conn.client.take() {
            if self.inner.closing() {
                // Clean shutdown: disconnect (no will), release.
                if c.is_connected() {
                    let _ = c.disconnect(Duration::from_secs(60));
                }
                let _ = c.release();
            } else {
                c.discard();
            }
        }
        if let (Some(m), Some(id)) = (&self.conn.modem, self.conn.listener.take()) {
            m.remove_health_listener(id);
        }
        self.conn.modem = None;
        self.conn.mark = None;
        *self.inner.modem.lock() = None;
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    (t ^ ((std::process::id() as u64) << 32)) | 1
}

fn open(inner: &Arc<Inner>) -> Result<Modem> {
    let cfg = &inner.cfg;
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
    // Other modem events pass through; the losses come from the health record.
    let weak = Arc::downgrade(inner);
    modem.on_event(move |e| {
        if e.is_control() {
            return;
        }
        if let Some(inner) = weak.upgrade() {
            emit(&inner, SupervisorEvent::Modem(e.clone()));
        }
    });
    Ok(modem)
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

    #[test]
    fn endpoints_parse_in_one_grammar() {
        assert_eq!(
            "/dev/ttyUSB2".parse::<Endpoint>().unwrap(),
            Endpoint::Serial {
                path: "/dev/ttyUSB2".into(),
                baud: 115200
            }
        );
        for s in [
            "tcp://127.0.0.1:7000",
            "socket://127.0.0.1:7000",
            "127.0.0.1:7000",
        ] {
            assert_eq!(
                s.parse::<Endpoint>().unwrap(),
                Endpoint::Tcp("127.0.0.1:7000".parse().unwrap()),
                "{s}"
            );
        }
        assert_eq!(
            "tcp://[::1]:9".parse::<Endpoint>().unwrap(),
            Endpoint::Tcp("[::1]:9".parse().unwrap())
        );
        assert_eq!(
            "usb:1e0e:9011:ABC:3".parse::<Endpoint>().unwrap(),
            Endpoint::Usb {
                vid: 0x1e0e,
                pid: 0x9011,
                serial: Some("ABC".into()),
                interface: Some(3),
                baud: 115200
            }
        );
        assert_eq!(
            "usb:1e0e:9011::2".parse::<Endpoint>().unwrap(),
            Endpoint::Usb {
                vid: 0x1e0e,
                pid: 0x9011,
                serial: None,
                interface: Some(2),
                baud: 115200
            }
        );
        for bad in [
            "",
            "usb:xyz:1",
            "usb:1e0e",
            "tcp://nohost",
            "tcp://h:0",
            "socket://",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad:?}");
        }
        let e = "usb:1e0e:9011".parse::<Endpoint>().unwrap();
        assert_eq!(e.to_string().parse::<Endpoint>().unwrap(), e);
        assert_eq!(
            Endpoint::parse_with_baud("/dev/ttyS0", 9600).unwrap(),
            Endpoint::Serial {
                path: "/dev/ttyS0".into(),
                baud: 9600
            }
        );
    }
}

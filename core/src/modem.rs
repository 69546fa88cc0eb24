//! The modem session: open a port, synchronise, identify, and run commands.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{Client, ClientOptions};
use crate::command::{self, Command, IdentifyWhat, SslSetting};
use crate::error::{ErrCode, Error, Result};
use crate::event::{Event, OverflowPolicy};
use crate::profile::{Model, Profile};
use crate::session::{Engine, EngineConfig, EventCallback, Identity, Session};
use crate::trace::{Direction, TraceFn};

/// How to open a modem session.
#[derive(Clone)]
pub struct ModemOptions {
    /// Use this model's profile instead of identifying the modem.
    pub model: Option<Model>,
    /// Use exactly this profile (wins over `model`).
    pub profile: Option<Profile>,
    /// How long to keep sending `AT` until the modem answers `OK`.
    pub sync_timeout: Duration,
    /// Capacity of each event and message queue.
    pub queue_capacity: usize,
    /// What a full queue drops.
    pub overflow: OverflowPolicy,
    /// Switch echo off (`ATE0`) after synchronising. On by default.
    pub echo_off: bool,
    /// Called with every AT line sent and received (passwords redacted).
    pub trace: Option<TraceFn>,
}

impl Default for ModemOptions {
    fn default() -> Self {
        ModemOptions {
            model: None,
            profile: None,
            sync_timeout: Duration::from_secs(10),
            queue_capacity: 1024,
            overflow: OverflowPolicy::DropOldest,
            echo_off: true,
            trace: None,
        }
    }
}

impl std::fmt::Debug for ModemOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModemOptions")
            .field("model", &self.model)
            .field("sync_timeout", &self.sync_timeout)
            .field("queue_capacity", &self.queue_capacity)
            .field("overflow", &self.overflow)
            .field("echo_off", &self.echo_off)
            .field("trace", &self.trace.is_some())
            .finish()
    }
}

impl ModemOptions {
    /// Set a trace hook.
    pub fn trace(mut self, f: impl Fn(Direction, &str) + Send + Sync + 'static) -> Self {
        self.trace = Some(Arc::new(f));
        self
    }

    /// Force a model.
    pub fn model(mut self, m: Model) -> Self {
        self.model = Some(m);
        self
    }
}

/// A SIMCom modem on a serial port (or any byte stream), with its MQTT service.
///
/// Every method takes `&self` and may be called from several threads: commands are serialised
/// (one AT transaction at a time), and a command waiting for a broker's acknowledgement does
/// not hold the line, so the other client can work meanwhile.
///
/// ```no_run
/// use std::time::Duration;
/// use cmqtt::{ConnectOptions, Modem};
///
/// let modem = Modem::open("/dev/ttyUSB2", 115200)?;
/// modem.start()?;
/// let client = modem.client(0, "device-1", false)?;
/// client.connect(&ConnectOptions::new("tcp://broker.example:1883"))?;
/// client.subscribe(&[("cmd/#", 1)])?;
/// client.publish("data/x", b"\x00\x01", 1, false, Duration::from_secs(60))?;
/// if let Some(msg) = client.recv_timeout(Duration::from_secs(5)) {
///     println!("{} {:?}", msg.topic_lossy(), msg.payload);
/// }
/// client.disconnect(Duration::from_secs(60))?;
/// # Ok::<(), cmqtt::Error>(())
/// ```
#[derive(Clone)]
pub struct Modem {
    pub(crate) session: Arc<Session>,
}

impl std::fmt::Debug for Modem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Modem")
            .field("model", &self.model())
            .field("identity", &self.session.identity)
            .finish()
    }
}

impl Modem {
    /// Open a serial device (e.g. `/dev/ttyUSB2`), synchronise, switch echo off and identify the
    /// model.
    pub fn open(path: &str, baud: u32) -> Result<Modem> {
        Modem::open_with(path, baud, ModemOptions::default())
    }

    /// [`Modem::open`] with options.
    pub fn open_with(path: &str, baud: u32, opts: ModemOptions) -> Result<Modem> {
        if baud == 0 {
            return Err(Error::invalid(
                "baud",
                "must be a positive baud rate (e.g. 115200), got 0",
            ));
        }
        let port = serialport::new(path, baud)
            .timeout(Duration::from_millis(50))
            .open_native()
            .map_err(|source| Error::Serial {
                path: path.to_string(),
                source,
            })?;
        let reader = port.try_clone_native().map_err(|source| Error::Serial {
            path: path.to_string(),
            source,
        })?;
        // The reader sleeps in poll(2) on the port's descriptor: an idle session does not wake.
        let fd = std::os::fd::AsRawFd::as_raw_fd(&reader);
        Modem::start_session(
            Box::new(reader),
            Some(fd),
            Box::new(WritePort(Box::new(port))),
            true,
            opts,
        )
    }

    /// Use any byte stream: `reader` and `writer` are the two directions of the same link (a
    /// pseudo-terminal, a serial-over-TCP bridge, an in-memory pipe). The reader is owned by the
    /// session's reader thread; a reader that blocks forever keeps that thread until it returns.
    pub fn with_transport<R, W>(reader: R, writer: W, opts: ModemOptions) -> Result<Modem>
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        Modem::start_session(Box::new(reader), None, Box::new(writer), false, opts)
    }

    /// Use a TCP connection to a serial-over-TCP bridge (or `cmqtt sim --tcp`).
    pub fn with_tcp(stream: TcpStream, opts: ModemOptions) -> Result<Modem> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        let reader = stream.try_clone()?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&reader);
        Modem::start_session(
            Box::new(reader),
            Some(fd),
            Box::new(TcpWriter(stream)),
            true,
            opts,
        )
    }

    fn start_session(
        reader: Box<dyn Read + Send>,
        poll_fd: Option<std::os::fd::RawFd>,
        writer: Box<dyn Write + Send>,
        joinable: bool,
        opts: ModemOptions,
    ) -> Result<Modem> {
        // 0 has always meant 1; beyond the maximum the queues' buffers could abort the process.
        crate::event::check_capacity("queue_capacity", opts.queue_capacity.max(1))?;
        let initial = opts
            .profile
            .clone()
            .or_else(|| opts.model.map(Profile::for_model))
            .unwrap_or_default();
        let engine = Engine::start(
            reader,
            poll_fd,
            writer,
            joinable,
            EngineConfig {
                profile: initial,
                queue_capacity: opts.queue_capacity,
                overflow: opts.overflow,
                trace: opts.trace.clone(),
            },
        )?;
        let mut session = Session {
            engine,
            identity: Identity::default(),
        };
        sync(&session, opts.sync_timeout)?;
        if opts.echo_off {
            session.execute(&command::Echo(false))?;
        }
        session.identity = identify(&session);
        if opts.profile.is_none() && opts.model.is_none() {
            let model = Model::from_identification(&session.identity.model_name).unwrap_or_else(|| {
                log::warn!(
                    "cmqtt: unknown model {:?}; using the A7600 profile (pass ModemOptions::model to choose)",
                    session.identity.model_name
                );
                Model::A7600
            });
            *session.shared().profile.write() = Profile::for_model(model);
        }
        session.shared().opening.store(false, Ordering::SeqCst);
        Ok(Modem {
            session: Arc::new(session),
        })
    }

    /// The model family in use.
    pub fn model(&self) -> Model {
        self.session.shared().profile.read().model
    }

    /// The profile in use (limits and dialect).
    pub fn profile(&self) -> Profile {
        self.session.profile()
    }

    /// Replace the profile (for firmware whose limits differ from its family's).
    pub fn set_profile(&self, p: Profile) {
        *self.session.shared().profile.write() = p;
    }

    /// What `AT+CGMM` and `AT+CGMR` said at open.
    pub fn identity(&self) -> &Identity {
        &self.session.identity
    }

    /// The firmware revision (`AT+CGMR`).
    pub fn firmware(&self) -> &str {
        &self.session.identity.firmware
    }

    /// Run any typed command.
    pub fn execute<C: Command>(&self, cmd: &C) -> Result<C::Output> {
        self.session.execute(cmd)
    }

    /// Run a raw command line and return its information lines (any line when `prefix` is
    /// empty). For commands cmqtt has no type for.
    pub fn command(
        &self,
        line: &str,
        prefix: &'static str,
        timeout: Duration,
    ) -> Result<Vec<String>> {
        self.execute(&command::Raw {
            line,
            prefix,
            timeout,
        })
    }

    /// `AT+CMQTTSTART`. Returns `true` when this call started the service and `false` when it
    /// was already running (`+CMQTTSTART: 23`, or a bare `ERROR` while the service answers).
    pub fn start(&self) -> Result<bool> {
        match self.execute(&command::Start) {
            Ok(()) => Ok(true),
            Err(e) if e.err_code() == Some(ErrCode::NetworkIsOpened) => Ok(false),
            Err(e @ Error::Modem { .. }) if e.modem_code().is_none() => {
                // The manual: START while started answers ERROR. Tell that apart from a
                // real failure by asking the service something.
                if self.execute(&command::DiscRead).is_ok() {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `AT+CMQTTSTOP`.
    pub fn stop(&self) -> Result<()> {
        self.execute(&command::Stop)
    }

    /// Whether the modem has the MQTT service at all (`AT+CMQTTACCQ=?` answers).
    pub fn supports_mqtt(&self) -> bool {
        self.execute(&command::Test(command::MqttCommand::Accq))
            .is_ok()
    }

    /// Acquire client `index` (0 or 1) with `client_id`; `tls` selects an SSL/TLS server.
    /// The client is released when dropped (or with [`Client::release`]).
    pub fn client(&self, index: u8, client_id: &str, tls: bool) -> Result<Client> {
        let mut o = ClientOptions::new(client_id);
        o.tls = tls;
        self.client_with(index, &o)
    }

    /// Acquire a client with options (MQTT version, UTF-8 check, SSL context...).
    pub fn client_with(&self, index: u8, opts: &ClientOptions) -> Result<Client> {
        Client::acquire(self.session.clone(), index, opts)
    }

    // ---- TLS ---------------------------------------------------------------------------------

    /// One `AT+CSSLCFG` setting of SSL context `ctx` (0..=9).
    pub fn ssl_set(&self, ctx: u8, setting: SslSetting) -> Result<()> {
        self.execute(&command::SslCfg { ctx, setting })
    }

    /// Configure SSL context `ctx` in one call: every `Some` field is sent.
    pub fn ssl_configure(&self, ctx: u8, cfg: &SslContext) -> Result<()> {
        // Every setting is checked before the first is sent: no half-configured context.
        let profile = self.profile();
        for setting in cfg.settings() {
            command::Command::request(&command::SslCfg { ctx, setting }, &profile)?;
        }
        for s in cfg.settings() {
            self.ssl_set(ctx, s)?;
        }
        Ok(())
    }

    /// Store a certificate or key in the modem (`AT+CCERTDOWN`).
    pub fn cert_upload(&self, name: &str, data: &[u8]) -> Result<()> {
        self.execute(&command::CertDown { name, data })
    }

    /// The files in the modem's certificate store (`AT+CCERTLIST`).
    pub fn cert_list(&self) -> Result<Vec<String>> {
        self.execute(&command::CertList)
    }

    /// Delete a file from the store (`AT+CCERTDELE`).
    pub fn cert_delete(&self, name: &str) -> Result<()> {
        self.execute(&command::CertDele { name })
    }

    // ---- status ------------------------------------------------------------------------------

    /// `AT+CSQ`: (rssi, ber).
    pub fn signal_quality(&self) -> Result<(u8, u8)> {
        self.execute(&command::Csq)
    }

    /// `AT+CGREG?` `<stat>`: 1 registered home, 5 roaming.
    pub fn registration(&self) -> Result<u8> {
        self.execute(&command::Registration { packet: true })
    }

    /// `AT+CGSN`: the IMEI.
    pub fn imei(&self) -> Result<String> {
        let lines = self.execute(&command::Identify(IdentifyWhat::Imei))?;
        Ok(lines.into_iter().next().unwrap_or_default())
    }

    /// Whether the MQTT service is running (its read commands answer only then).
    pub fn service_running(&self) -> bool {
        self.execute(&command::DiscRead).is_ok()
    }

    // ---- events ------------------------------------------------------------------------------

    /// Wait up to `timeout` for the next modem-level event (connection lost, no network, boot
    /// noise, unknown URCs, overflow reports). Messages go to their client's queue instead.
    ///
    /// When the queue itself overflowed, the next call returns an [`Event::Overflow`] saying
    /// how many events were dropped so far, before the events that remain.
    pub fn recv_event(&self, timeout: Duration) -> Option<Event> {
        self.session.shared().next_event(Some(timeout))
    }

    /// Run `f` on the dispatch thread for every modem-level event: the dispatch thread drains
    /// the event queue into it (the queue [`Modem::recv_event`] reads; see the crate's
    /// "Callbacks" section). Replaces an earlier callback once that one has returned.
    pub fn on_event(&self, f: impl Fn(&Event) + Send + Sync + 'static) {
        let cb: EventCallback = Arc::new(f);
        self.session
            .shared()
            .set_on_event(crate::dispatch::ANY_OWNER, cb);
    }

    /// Remove the event callback (events are queued again). Returns once the callback is no
    /// longer running, unless called from a callback.
    pub fn clear_on_event(&self) {
        self.session
            .shared()
            .clear_on_event(crate::dispatch::ANY_OWNER);
    }

    /// The session's health: which clients are connected, losses, network losses, restarts,
    /// and whether the session has ended. Recorded by the reader before any event is queued,
    /// so it is true even when a slow callback let the event queue overflow.
    pub fn health(&self) -> crate::Health {
        self.session.shared().health.snapshot()
    }

    /// Waits until the health record changes from the one numbered `since`
    /// ([`crate::Health::seq`]) or `timeout` passes; returns the record then.
    pub fn wait_health_change(&self, since: u64, timeout: Duration) -> crate::Health {
        self.session.shared().health.wait_change(since, timeout)
    }

    /// Whether the calling thread is this session's dispatch thread, i.e. we are inside one of
    /// its callbacks. A callback may run commands, but must not wait for something only the
    /// dispatch thread delivers (a message, an event of this session).
    pub fn in_callback(&self) -> bool {
        self.session.shared().dispatch_thread.is_current()
    }

    /// Calls `f` (on the thread that noticed, usually the reader) whenever the health record
    /// changes; `f` must only wake someone, never block. Returns an id for
    /// [`Modem::remove_health_listener`].
    pub fn add_health_listener(&self, f: impl Fn() + Send + Sync + 'static) -> u64 {
        self.session.shared().health.add_listener(Arc::new(f))
    }

    /// Stops calling a listener added with [`Modem::add_health_listener`].
    pub fn remove_health_listener(&self, id: u64) {
        self.session.shared().health.remove_listener(id)
    }

    /// Events dropped because the event queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.session.shared().events.dropped()
    }

    /// Bytes read from and written to the port so far.
    pub fn byte_counts(&self) -> (u64, u64) {
        let c = &self.session.shared().counters;
        (
            c.bytes_in.load(Ordering::Relaxed),
            c.bytes_out.load(Ordering::Relaxed),
        )
    }

    /// `None` while the session is usable; otherwise why it ended (port gone, EOF).
    pub fn closed_reason(&self) -> Option<String> {
        self.session.shared().closed_reason()
    }

    /// Makes the command waiting now (on any thread), and every command waiting for the
    /// modem's asynchronous result, return at once with [`Error::Io`] of kind
    /// [`std::io::ErrorKind::Interrupted`], instead of waiting for its timeout (up to minutes
    /// when the modem swallowed it). For a Ctrl-C handler: call it from another thread, then
    /// clean up. The session stays open: later commands run as usual (their own timeouts
    /// apply), and what the modem still answers the interrupted ones arrives as events.
    /// Does nothing when no command is waiting.
    pub fn interrupt(&self) {
        self.session.shared().interrupt();
    }
}

/// A whole SSL context for [`Modem::ssl_configure`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SslContext {
    pub ssl_version: Option<u8>,
    pub auth_mode: Option<u8>,
    pub ignore_local_time: Option<bool>,
    pub negotiate_time: Option<u16>,
    pub ca_cert: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub enable_sni: Option<bool>,
}

impl SslContext {
    fn settings(&self) -> Vec<SslSetting> {
        let mut v = Vec::new();
        if let Some(x) = self.ssl_version {
            v.push(SslSetting::SslVersion(x));
        }
        if let Some(x) = self.auth_mode {
            v.push(SslSetting::AuthMode(x));
        }
        if let Some(x) = self.ignore_local_time {
            v.push(SslSetting::IgnoreLocalTime(x));
        }
        if let Some(x) = self.negotiate_time {
            v.push(SslSetting::NegotiateTime(x));
        }
        if let Some(x) = &self.ca_cert {
            v.push(SslSetting::CaCert(x.clone()));
        }
        if let Some(x) = &self.client_cert {
            v.push(SslSetting::ClientCert(x.clone()));
        }
        if let Some(x) = &self.client_key {
            v.push(SslSetting::ClientKey(x.clone()));
        }
        if let Some(x) = self.enable_sni {
            v.push(SslSetting::EnableSni(x));
        }
        v
    }
}

/// `AT` until `OK`, tolerating boot noise and a modem that is still waking up.
fn sync(session: &Session, total: Duration) -> Result<()> {
    let deadline = crate::time::deadline_after(total);
    let mut last: Option<Error>;
    // A modem left waiting for prompted data takes our AT as data: an escape and a line end
    // get it back to command mode before the first try.
    let _ = session.shared().write_raw(b"\x1b\r");
    loop {
        match session.execute(&command::At) {
            Ok(()) => return Ok(()),
            Err(e @ Error::Closed(_)) => return Err(e),
            Err(e @ (Error::Io(_) | Error::Serial { .. })) => return Err(e),
            Err(e) => last = Some(e),
        }
        if Instant::now() >= deadline {
            return Err(match last {
                Some(Error::Timeout { .. }) | None => Error::Timeout {
                    command: "AT",
                    timeout: total,
                },
                Some(e) => e,
            });
        }
    }
}

fn identify(session: &Session) -> Identity {
    let first = |w| {
        session
            .execute(&command::Identify(w))
            .ok()
            .and_then(|l| l.into_iter().next())
            .unwrap_or_default()
    };
    let mut model_name = first(IdentifyWhat::Model);
    let firmware = first(IdentifyWhat::Revision);
    if Model::from_identification(&model_name).is_none() {
        if let Ok(lines) = session.execute(&command::Identify(IdentifyWhat::Info)) {
            if let Some(m) = lines
                .iter()
                .find_map(|l| l.strip_prefix("Model:").map(|s| s.trim().to_string()))
            {
                model_name = m;
            }
        }
    }
    Identity {
        model_name,
        firmware,
    }
}

/// The write half of a serial port.
///
/// `flush` does nothing: `write` has already handed the bytes to the kernel, which sends them
/// in order. serialport's `flush` is `tcdrain(2)`, which blocks the writing thread until the
/// bytes have physically left: on a UART the kernel polls for that with sleeps of at least a
/// jiffy (1-4 ms), on a USB modem it waits for the URBs to complete — and meanwhile the answer
/// may already be there, waiting for the thread that is stuck in `tcdrain`. The session writes
/// a command, then waits for its answer; it never needs to know that the bytes left.
struct WritePort(Box<dyn serialport::SerialPort>);

impl Write for WritePort {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Shuts the socket down when the session ends, which also wakes the reader thread.
struct TcpWriter(TcpStream);

impl Write for TcpWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Drop for TcpWriter {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

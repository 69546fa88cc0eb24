//! `cmqtt.Supervisor`, `cmqtt.Delivery`, `cmqtt.SupervisorEvent` and the iterator of
//! `Supervisor.messages()`. Every reconnect, retry and outbox rule lives in the core
//! (`cmqtt::supervise`, `cmqtt::outbox`); this file converts arguments, events and errors.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use cmqtt::{DeliveryStatus, Endpoint, Loss, State, SupervisorConfig, WhenFull};

use crate::client::topic_list;
use crate::errors;
use crate::message::{Event, Message};
use crate::modem::drop_detached;
use crate::pylog;
use crate::util;
use crate::wait::{self, Wake};

// ---- which callback runs on this thread -------------------------------------------------------

thread_local! {
    /// The address of the `Shared` whose `on_event` runs on this thread (0: none).
    static IN_EVENT: Cell<usize> = const { Cell::new(0) };
    /// The same for `on_message`.
    static IN_MESSAGE: Cell<usize> = const { Cell::new(0) };
}

struct Mark {
    key: &'static std::thread::LocalKey<Cell<usize>>,
    prev: usize,
}

impl Mark {
    fn set(key: &'static std::thread::LocalKey<Cell<usize>>, v: usize) -> Mark {
        Mark {
            key,
            prev: key.with(|c| c.replace(v)),
        }
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        self.key.with(|c| c.set(self.prev));
    }
}

/// The core's one rule (`cmqtt::in_callback`): inside any cmqtt callback nothing waits for what
/// only a callback thread can deliver.
fn in_event_callback() -> bool {
    cmqtt::in_callback()
}

/// Waiting from a callback would hold up the thread that has to deliver what it waits for.
fn may_wait(what: &str, timeout: Option<Duration>) -> PyResult<()> {
    if in_event_callback() && timeout != Some(Duration::ZERO) {
        return Err(PyRuntimeError::new_err(format!(
            "{what} cannot wait inside a cmqtt callback (it would wait for the thread it runs on); use timeout=0 there"
        )));
    }
    Ok(())
}

// ---- shared state -----------------------------------------------------------------------------

pub(crate) struct Shared {
    /// None once closed. An `Arc` so that a waiting call does not hold the lock; `close()`
    /// stops the supervisor through its own reference (which wakes the waiting calls).
    sup: RwLock<Option<Arc<cmqtt::Supervisor>>>,
    when_full: WhenFull,
    outbox_capacity: usize,
    on_message: Mutex<Option<Py<PyAny>>>,
    on_event: Mutex<Option<Py<PyAny>>>,
}

impl Shared {
    fn get(&self, py: Python<'_>) -> PyResult<Arc<cmqtt::Supervisor>> {
        self.sup
            .read()
            .clone()
            .ok_or_else(|| errors::closed(py, "the supervisor was closed"))
    }

    fn closed(&self) -> bool {
        self.sup.read().is_none()
    }

    fn addr(&self) -> usize {
        self as *const Shared as usize
    }
}

// ---- Supervisor -------------------------------------------------------------------------------

/// A supervised MQTT client: kept connected through broker restarts, lost connections, lost
/// network, modem restarts and a serial port that vanishes and comes back, with an outbox so
/// that nothing published meanwhile is lost.
///
/// ``Supervisor(port, server, client_id, *, ...)`` returns at once: a thread of the library
/// (the supervisor thread) opens the port, starts the service, configures (certificates, SSL
/// context, will), acquires, connects and subscribes, and does it all again after every fault
/// with exponential backoff and jitter. Every step is a ``SupervisorEvent``
/// (``on_event`` / ``recv_event()``).
///
/// ``port`` is a device path (``"/dev/ttyUSB2"``, reopened by path), ``"socket://host:port"``
/// for a serial-over-TCP bridge (or ``cmqtt sim --tcp``), or ``"usb:VID:PID"`` in hex (e.g.
/// ``"usb:1e0e:9011"``; with ``usb_serial`` and ``usb_interface``) to find the modem by USB
/// identity wherever it re-enumerates. ``server`` is ``"tcp://host:port"`` (also for TLS).
///
/// ``publish()`` queues in the outbox and returns a ``Delivery`` ticket; the outbox is sent in
/// order once connected. It holds at most ``outbox_capacity`` publishes; when it is full,
/// ``when_full`` decides: ``"block"`` (wait for room, up to ``pub_timeout``), ``"error"``
/// (``OutboxFullError``) or ``"drop_oldest"`` (the oldest ticket becomes ``"dropped"`` and a
/// ``"dropped"`` event reports it). With ``outbox_path`` the outbox is kept in that file: what a
/// crashed or closed process left there is sent by the next Supervisor on it (``pending()``).
///
/// Other keywords: ``index`` (0 or 1), ``tls``, ``username``/``password``, ``keepalive``,
/// ``clean_session``, ``will=(topic, payload[, qos])``, ``subscriptions`` (topics or
/// ``(topic, qos)``; a bare topic is QoS 1) subscribed after every connect, ``backoff=(initial,
/// max, jitter)`` in seconds (default ``(0.5, 60.0, 0.25)``), ``outbox_sync`` (fsync each
/// change), ``model``, ``baudrate``, ``sync_timeout``, ``connect_timeout``, ``pub_timeout``
/// (60..=180 s), ``max_send_failures``, ``queue_capacity``, the client's ``version``,
/// ``check_utf8``, ``op_timeout`` and ``ssl_context``, ``ssl_config`` (a dict: ``ctx`` and the
/// keywords of ``Modem.ssl_configure``, applied before every acquire), ``certs`` (a dict:
/// file name -> bytes or a path, uploaded when missing), and ``on_message``/``on_event``
/// (installed before the supervisor starts, so that they see every event from the first).
///
/// Settings that can never work raise ``ValueError`` here; an unreachable modem or broker does
/// not (the supervisor keeps trying: see ``wait_connected()``).
///
/// Use it as a context manager: ``close()`` runs on exit.
///
/// Example::
///
///     with cmqtt.Supervisor("/dev/ttyUSB2", "tcp://broker:1883", "device-1",
///                           subscriptions=["cmd/#"], outbox_path="outbox.bin") as sup:
///         sup.on_event = lambda e: print(e)
///         d = sup.publish("data/x", b"42", qos=1)      # queued while disconnected
///         d.wait_delivered(timeout=60)
#[pyclass(module = "cmqtt", frozen)]
pub struct Supervisor {
    shared: Arc<Shared>,
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let Some(sup) = self.shared.sup.write().take() else {
            return;
        };
        sup.begin_close();
        let cbs = (
            self.shared.on_message.lock().take(),
            self.shared.on_event.lock().take(),
        );
        // Stopping joins the supervisor thread: never from one of its callbacks (hand it to a
        // thread of its own), else with the GIL released. If a call still holds the
        // supervisor, the last of them stops it.
        let in_own_callback = IN_EVENT.with(|c| c.get()) == self.shared.addr()
            || IN_MESSAGE.with(|c| c.get()) == self.shared.addr();
        if in_own_callback {
            std::thread::spawn(move || drop(sup));
        } else {
            drop_detached(sup);
        }
        drop(cbs);
    }
}

fn endpoint(
    py: Python<'_>,
    port: &Bound<'_, PyAny>,
    baud: u32,
    usb_serial: Option<String>,
    usb_interface: Option<i64>,
) -> PyResult<Endpoint> {
    let port: String = py
        .import("os")?
        .call_method1("fspath", (port,))?
        .extract()
        .map_err(|_| PyTypeError::new_err("port must be a str or os.PathLike"))?;
    // One grammar for every binding (cmqtt::Endpoint): a device path, tcp:// or socket://
    // HOST:PORT, a bare HOST:PORT, usb:VID:PID[:SERIAL][:INTERFACE].
    let mut ep = Endpoint::parse_with_baud(&port, baud).map_err(|e| errors::to_py(py, e))?;
    match &mut ep {
        Endpoint::Usb {
            serial, interface, ..
        } => {
            if usb_serial.is_some() {
                *serial = usb_serial;
            }
            if let Some(i) = usb_interface {
                *interface = Some(util::arg_u8("usb_interface", i, "0..=255")?);
            }
        }
        _ if usb_serial.is_some() || usb_interface.is_some() => {
            return Err(PyValueError::new_err(
                "usb_serial and usb_interface go with port=\"usb:VID:PID\"",
            ));
        }
        _ => {}
    }
    Ok(ep)
}

fn when_full_of(s: &str) -> PyResult<WhenFull> {
    match s {
        "block" => Ok(WhenFull::Block),
        "error" => Ok(WhenFull::Error),
        "drop_oldest" => Ok(WhenFull::DropOldest),
        other => Err(PyValueError::new_err(format!(
            "invalid argument when_full: must be \"block\", \"error\" or \"drop_oldest\", got {other:?}"
        ))),
    }
}

fn ssl_settings(d: &Bound<'_, PyDict>) -> PyResult<(u8, cmqtt::SslContext)> {
    let mut ctx = 0u8;
    let mut c = cmqtt::SslContext::default();
    for (k, v) in d.iter() {
        let key: String = k
            .extract()
            .map_err(|_| PyTypeError::new_err("ssl_config keys must be str"))?;
        if v.is_none() {
            continue;
        }
        let int = |name: &str, allowed: &str| -> PyResult<u8> {
            util::arg_u8(name, v.extract::<i64>()?, allowed)
        };
        match key.as_str() {
            "ctx" => ctx = int("ssl_config ctx", "0..=9")?,
            "ssl_version" => c.ssl_version = Some(int("ssl_version", "0..=4")?),
            "auth_mode" => c.auth_mode = Some(int("auth_mode", "0..=3")?),
            "ignore_local_time" => c.ignore_local_time = Some(v.extract()?),
            "negotiate_time" => {
                c.negotiate_time = Some(util::arg_u16(
                    "negotiate_time",
                    v.extract::<i64>()?,
                    "10..=300 seconds",
                )?)
            }
            "ca_cert" => c.ca_cert = Some(v.extract()?),
            "client_cert" => c.client_cert = Some(v.extract()?),
            "client_key" => c.client_key = Some(v.extract()?),
            "enable_sni" => c.enable_sni = Some(v.extract()?),
            other => {
                return Err(PyValueError::new_err(format!(
                    "invalid argument ssl_config: unknown key {other:?} (ctx, ssl_version, auth_mode, ca_cert, client_cert, client_key, enable_sni, ignore_local_time, negotiate_time)"
                )))
            }
        }
    }
    Ok((ctx, c))
}

fn cert_files(py: Python<'_>, d: &Bound<'_, PyDict>) -> PyResult<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for (k, v) in d.iter() {
        let name: String = k
            .extract()
            .map_err(|_| PyTypeError::new_err("certs keys must be str file names"))?;
        let data = if let Ok(b) = v.cast::<PyBytes>() {
            b.as_bytes().to_vec()
        } else if v.cast::<PyString>().is_ok() || v.hasattr("__fspath__")? {
            let path: PathBuf = py.import("os")?.call_method1("fspath", (&v,))?.extract()?;
            util::read_file_bounded(
                py,
                &path,
                cmqtt::command::MAX_CERT_LEN,
                "the modem's certificate store takes",
            )?
        } else {
            util::bytes_or_str("certs value", &v).map_err(|_| {
                PyTypeError::new_err("certs values must be bytes, a str path or an os.PathLike")
            })?
        };
        out.push((name, data));
    }
    Ok(out)
}

fn seconds_f(name: &str, v: f64) -> PyResult<Duration> {
    wait::seconds(name, v)
}

fn optional_seconds(name: &str, t: Option<f64>) -> PyResult<Option<Duration>> {
    t.map(|t| wait::seconds(name, t)).transpose()
}

fn state_name(s: &State) -> &'static str {
    s.kind()
}

/// The next message (see `Supervisor.recv`); None on timeout or once closed.
fn recv_from(
    py: Python<'_>,
    s: &Arc<Shared>,
    timeout: Option<Duration>,
) -> PyResult<Option<Message>> {
    may_wait("recv()", timeout)?;
    let sup = s.get(py)?;
    let got = if timeout == Some(Duration::ZERO) {
        Ok(py.detach(|| sup.recv_timeout(Duration::ZERO)))
    } else {
        // close() closes the queue, which wakes the wait.
        wait::poll(
            py,
            timeout,
            Wake::Core,
            |limit| sup.recv_timeout(limit),
            || s.closed(),
        )
    };
    py.detach(move || drop(sup));
    got?.map(|m| Message::from_core(py, &m)).transpose()
}

type MessageHook = Box<dyn Fn(&cmqtt::Message) + Send + Sync>;
type EventHook = Box<dyn Fn(&cmqtt::SupervisorEvent) + Send + Sync>;

/// The core's message callback: calls `on_message` of the moment with the GIL (or, if it was
/// just cleared, leaves the message for `recv()`).
fn message_hook(shared: &Arc<Shared>) -> MessageHook {
    let weak: Weak<Shared> = Arc::downgrade(shared);
    Box::new(move |m: &cmqtt::Message| {
        let Some(sh) = weak.upgrade() else { return };
        let _ = Python::try_attach(|py| {
            let cb = sh.on_message.lock().as_ref().map(|c| c.clone_ref(py));
            match cb {
                Some(cb) => {
                    let _mark = Mark::set(&IN_MESSAGE, sh.addr());
                    let r = Message::from_core(py, m).and_then(|msg| cb.call1(py, (msg,)));
                    if let Err(e) = r {
                        pylog::callback_error(py, "on_message", e);
                    }
                }
                // The core hook is removed before `on_message` is cleared (and waits for a
                // running call), so a message never meets a cleared callback here.
                None => log::error!(
                    "cmqtt: a supervised message met a cleared on_message (a bug): {} bytes on {:?}",
                    m.payload.len(),
                    m.topic_lossy()
                ),
            }
        });
    })
}

/// The core's event callback: calls `on_event` of the moment with the GIL.
fn event_hook(shared: &Arc<Shared>) -> EventHook {
    let weak: Weak<Shared> = Arc::downgrade(shared);
    Box::new(move |e: &cmqtt::SupervisorEvent| {
        let Some(sh) = weak.upgrade() else { return };
        let _ = Python::try_attach(|py| {
            let cb = sh.on_event.lock().as_ref().map(|c| c.clone_ref(py));
            if let Some(cb) = cb {
                let _mark = Mark::set(&IN_EVENT, sh.addr());
                let r = SupervisorEvent::from_core(py, e).and_then(|ev| cb.call1(py, (ev,)));
                if let Err(err) = r {
                    pylog::callback_error(py, "on_event", err);
                }
            }
        });
    })
}

impl Supervisor {
    fn install_message_hook(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        let sup = self.shared.get(py)?;
        let hook = on.then(|| message_hook(&self.shared));
        py.detach(move || match hook {
            Some(h) => sup.on_message(h),
            None => sup.clear_on_message(),
        });
        Ok(())
    }

    fn install_event_hook(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        let sup = self.shared.get(py)?;
        let hook = on.then(|| event_hook(&self.shared));
        py.detach(move || match hook {
            Some(h) => sup.on_event(h),
            None => sup.clear_on_event(),
        });
        Ok(())
    }
}

#[pymethods]
impl Supervisor {
    #[new]
    #[pyo3(signature = (
        port, server, client_id, *,
        baudrate = 115200, index = 0, tls = false, username = None, password = None,
        keepalive = 60, clean_session = true, will = None, subscriptions = None,
        outbox_capacity = 1000, when_full = "block", outbox_path = None, outbox_sync = false,
        backoff = None, model = None, sync_timeout = 10.0, connect_timeout = 120.0,
        pub_timeout = 60.0, max_send_failures = 5, queue_capacity = 4096, version = None,
        check_utf8 = None, op_timeout = None, ssl_context = None, ssl_config = None, certs = None,
        usb_serial = None, usb_interface = None, on_message = None, on_event = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        port: &Bound<'_, PyAny>,
        server: &str,
        client_id: &str,
        baudrate: i64,
        index: i64,
        tls: bool,
        username: Option<String>,
        password: Option<String>,
        keepalive: i64,
        clean_session: bool,
        will: Option<&Bound<'_, PyAny>>,
        subscriptions: Option<&Bound<'_, PyAny>>,
        outbox_capacity: i64,
        when_full: &str,
        outbox_path: Option<&Bound<'_, PyAny>>,
        outbox_sync: bool,
        backoff: Option<(f64, f64, f64)>,
        model: Option<&str>,
        sync_timeout: f64,
        connect_timeout: f64,
        pub_timeout: f64,
        max_send_failures: i64,
        queue_capacity: i64,
        version: Option<i64>,
        check_utf8: Option<bool>,
        op_timeout: Option<i64>,
        ssl_context: Option<i64>,
        ssl_config: Option<&Bound<'_, PyDict>>,
        certs: Option<&Bound<'_, PyDict>>,
        usb_serial: Option<String>,
        usb_interface: Option<i64>,
        on_message: Option<Bound<'_, PyAny>>,
        on_event: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let on_message = util::callback("on_message", on_message)?;
        let on_event = util::callback("on_event", on_event)?;
        let baud = util::arg_u32("baudrate", baudrate, "a positive baud rate")?;
        let ep = endpoint(py, port, baud, usb_serial, usb_interface)?;
        let mut cfg = SupervisorConfig::new(ep, client_id, server);
        if let Some(m) = model {
            cfg.modem.model = Some(m.parse::<cmqtt::Model>().map_err(PyValueError::new_err)?);
        }
        cfg.modem.sync_timeout = seconds_f("sync_timeout", sync_timeout)?;
        pylog::refresh_trace(py);
        cfg.modem.trace = Some(Arc::new(pylog::trace_line));
        cfg.index = util::arg_u8("index", index, "0 or 1")?;
        cfg.client.tls = tls;
        cfg.client.version = version
            .map(|v| util::arg_u8("version", v, "3 (MQTT 3.1) or 4 (MQTT 3.1.1)"))
            .transpose()?;
        cfg.client.check_utf8 = check_utf8;
        cfg.client.op_timeout = op_timeout
            .map(|v| util::arg_u32("op_timeout", v, "20..=120 seconds"))
            .transpose()?;
        cfg.client.ssl_ctx = ssl_context
            .map(|v| util::arg_u8("ssl_context", v, "0..=9"))
            .transpose()?;
        cfg.connect.keepalive = util::arg_u32("keepalive", keepalive, "1..=64800 seconds")?;
        cfg.connect.clean_session = clean_session;
        cfg.connect.username = username;
        cfg.connect.password = password;
        cfg.connect.timeout = seconds_f("connect_timeout", connect_timeout)?;
        if let Some(w) = will.filter(|w| !w.is_none()) {
            let t = w
                .cast::<PyTuple>()
                .ok()
                .filter(|t| t.len() == 2 || t.len() == 3);
            let t = t.ok_or_else(|| {
                PyTypeError::new_err(
                    "will must be a tuple (topic, payload) or (topic, payload, qos)",
                )
            })?;
            let qos = if t.len() == 3 {
                util::arg_u8("will qos", t.get_item(2)?.extract()?, "0..=2")?
            } else {
                0
            };
            cfg.will = Some(cmqtt::Will {
                topic: util::topic("will topic", &t.get_item(0)?)?,
                message: util::bytes_or_str("will payload", &t.get_item(1)?)?,
                qos,
            });
        }
        if let Some(s) = subscriptions.filter(|s| !s.is_none()) {
            cfg.subscriptions = topic_list(s, 1)?;
        }
        if let Some(d) = ssl_config {
            cfg.ssl = Some(ssl_settings(d)?);
        }
        if let Some(d) = certs {
            cfg.certs = cert_files(py, d)?;
        }
        if let Some((initial, max, jitter)) = backoff {
            cfg.backoff = cmqtt::Backoff {
                initial: seconds_f("backoff initial", initial)?,
                max: seconds_f("backoff max", max)?,
                jitter,
            };
        }
        cfg.outbox.capacity = usize::try_from(outbox_capacity)
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "invalid argument outbox_capacity: must be >= 1, got {outbox_capacity}"
                ))
            })?;
        cfg.outbox.when_full = when_full_of(when_full)?;
        if let Some(p) = outbox_path.filter(|p| !p.is_none()) {
            let path: PathBuf = py
                .import("os")?
                .call_method1("fspath", (p,))?
                .extract()
                .map_err(|_| PyTypeError::new_err("outbox_path must be a str or os.PathLike"))?;
            cfg.outbox.persist = Some(path);
        }
        cfg.outbox.sync = outbox_sync;
        cfg.pub_timeout = seconds_f("pub_timeout", pub_timeout)?;
        cfg.max_send_failures =
            util::arg_u32("max_send_failures", max_send_failures, "a count >= 1")?;
        cfg.queue_capacity = usize::try_from(queue_capacity).map_err(|_| {
            PyValueError::new_err(format!(
                "invalid argument queue_capacity: must be >= 1, got {queue_capacity}"
            ))
        })?;
        cfg.validate().map_err(|e| errors::to_py(py, e))?;
        let shared = Arc::new(Shared {
            sup: RwLock::new(None),
            when_full: cfg.outbox.when_full,
            outbox_capacity: cfg.outbox.capacity,
            on_message: Mutex::new(None),
            on_event: Mutex::new(None),
        });
        // Callbacks given here are installed before the supervisor thread starts: they see
        // every event from the first.
        let message_hook = on_message.is_some().then(|| message_hook(&shared));
        let event_hook = on_event.is_some().then(|| event_hook(&shared));
        *shared.on_message.lock() = on_message;
        *shared.on_event.lock() = on_event;
        // Opening the outbox file is the only thing that can block here.
        let sup = py
            .detach(move || cmqtt::Supervisor::start_with_callbacks(cfg, event_hook, message_hook))
            .map_err(|e| errors::to_py(py, e))?;
        *shared.sup.write() = Some(Arc::new(sup));
        Ok(Supervisor { shared })
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    /// Stop: disconnect cleanly when connected, release the client, close the port and end the
    /// supervisor thread; the callbacks are dropped. Publishes still waiting stay in the outbox
    /// file when there is one (their tickets stay "queued"); a ``publish()`` blocked on a full
    /// outbox in another thread raises ClosedError. Idempotent. Raises RuntimeError when
    /// called from one of this supervisor's callbacks.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let me = self.shared.addr();
        if IN_EVENT.with(|c| c.get()) == me || IN_MESSAGE.with(|c| c.get()) == me {
            return Err(PyRuntimeError::new_err(
                "close() cannot be called from this Supervisor's own callbacks (it waits for the thread running them); close it from another thread",
            ));
        }
        let Some(sup) = self.shared.sup.write().take() else {
            return Ok(());
        };
        // Wakes publishes blocked on a full outbox (they raise ClosedError) at once; then the
        // supervisor stops (the core's close works from any handle): calls still waiting on
        // other threads are woken by it (closed queues, the "stopped" state) and let go.
        py.detach(|| sup.begin_close());
        let r = wait::offload(py, "close", move || {
            sup.close();
            Ok(())
        });
        let cbs = (
            self.shared.on_message.lock().take(),
            self.shared.on_event.lock().take(),
        );
        drop(cbs);
        r
    }

    /// True once ``close()`` has run.
    #[getter]
    fn closed(&self) -> bool {
        self.shared.closed()
    }

    /// Queue a publish and return its ``Delivery`` ticket; the outbox sends it, in order, as
    /// soon as the client is connected, and again after a reconnect if the connection broke
    /// before the modem confirmed it (so QoS 1 may arrive twice; an interrupted QoS 0 publish
    /// fails instead). ``topic`` is str or bytes; ``payload`` bytes-like or str (UTF-8).
    /// Arguments that can never be sent raise ValueError at once. A full outbox follows
    /// ``when_full``: waits up to ``pub_timeout`` for room (then ``OutboxFullError``; inside
    /// any cmqtt callback it never waits: ``OutboxFullError`` at once), raises
    /// ``OutboxFullError``, or drops the oldest publish.
    #[pyo3(signature = (topic, payload = None, qos = 1, retain = false))]
    fn publish(
        &self,
        py: Python<'_>,
        topic: &Bound<'_, PyAny>,
        payload: Option<&Bound<'_, PyAny>>,
        qos: i64,
        retain: bool,
    ) -> PyResult<Delivery> {
        let t = util::topic("topic", topic)?;
        let p = match payload {
            Some(p) if !p.is_none() => util::bytes_or_str("payload", p)?,
            _ => Vec::new(),
        };
        let qos = util::arg_u8("qos", qos, "0..=2")?;
        let sup = self.shared.get(py)?;
        let d = if in_event_callback()
            || self.shared.when_full != WhenFull::Block
            || sup.outbox_len() < self.shared.outbox_capacity
        {
            // Does not wait for room: on the supervisor thread the core does not block, the
            // other policies do not wait, and there is room (unless another thread takes the
            // last place first: then this waits, up to pub_timeout).
            py.detach(|| sup.publish(&t, &p, qos, retain))
                .map_err(|e| errors::to_py(py, e))?
        } else {
            // Waits for room: on the main thread, on a worker, so that Ctrl-C is honoured.
            wait::offload(py, "publish", move || sup.publish(&t, &p, qos, retain))?
        };
        Ok(Delivery { d })
    }

    /// Add a subscription (one topic filter with ``qos``, or a list of filters and/or
    /// ``(filter, qos)``): applied now if connected, and after every reconnect.
    #[pyo3(signature = (topics, qos = 1))]
    fn subscribe(&self, py: Python<'_>, topics: &Bound<'_, PyAny>, qos: i64) -> PyResult<()> {
        let list = topic_list(topics, qos)?;
        let sup = self.shared.get(py)?;
        py.detach(|| list.iter().try_for_each(|(t, q)| sup.subscribe(t, *q)))
            .map_err(|e| errors::to_py(py, e))
    }

    /// The next received message, waiting up to ``timeout`` seconds (None: until one comes
    /// or the supervisor is closed; 0: only if one is waiting). None on timeout.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Message>> {
        let t = optional_seconds("timeout", timeout)?;
        recv_from(py, &self.shared, t)
    }

    /// Iterate over received messages; ends when none came for ``timeout`` seconds (None:
    /// never, until closed).
    #[pyo3(signature = (timeout = None))]
    fn messages(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
    ) -> PyResult<SupervisorMessageIterator> {
        let idle = optional_seconds("timeout", timeout)?;
        self.shared.get(py)?;
        Ok(SupervisorMessageIterator {
            shared: self.shared.clone(),
            idle,
        })
    }

    /// The next ``SupervisorEvent``, waiting up to ``timeout`` seconds (None: until one comes
    /// or the supervisor is closed). None on timeout. Events go to ``on_event`` instead while
    /// it is set; without it the latest ``queue_capacity`` events are kept for this.
    #[pyo3(signature = (timeout = None))]
    fn recv_event(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
    ) -> PyResult<Option<SupervisorEvent>> {
        let t = optional_seconds("timeout", timeout)?;
        may_wait("recv_event()", t)?;
        let sup = self.shared.get(py)?;
        let shared = self.shared.clone();
        let got = wait::poll(
            py,
            t,
            Wake::Core,
            |limit| sup.recv_event(limit),
            || shared.closed(),
        );
        py.detach(move || drop(sup));
        got?.map(|e| SupervisorEvent::from_core(py, &e)).transpose()
    }

    /// Called as ``on_message(msg)`` (a ``cmqtt.Message``) on the modem's dispatch thread,
    /// holding the GIL, for every received message (of every reconnect) instead of queueing it
    /// for ``recv()``. It may call any method but ``close()``. An exception it raises is logged
    /// on the ``cmqtt`` logger. None to go back to queueing.
    #[getter]
    fn get_on_message(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.shared
            .on_message
            .lock()
            .as_ref()
            .map(|c| c.clone_ref(py))
    }

    #[setter]
    fn set_on_message(&self, py: Python<'_>, cb: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let cb = util::callback("on_message", cb)?;
        self.shared.get(py)?;
        // Clearing: the core's hook goes first (returning once it no longer runs), so that no
        // message reaches the hook after the callback is gone; messages queue for recv() then.
        if cb.is_none() {
            self.install_message_hook(py, false)?;
            drop(self.shared.on_message.lock().take());
            return Ok(());
        }
        let old = std::mem::replace(&mut *self.shared.on_message.lock(), cb);
        drop(old);
        self.install_message_hook(py, true)
    }

    /// Called as ``on_event(event)`` (a ``cmqtt.SupervisorEvent``) for every transition,
    /// holding the GIL, on the thread that caused it: the supervisor thread (states, losses,
    /// restores, failed attempts, failed publishes), the thread whose ``publish()`` dropped a
    /// message ("dropped"), the modem's dispatch thread ("modem"), the thread calling
    /// ``close()`` (the final "stopped" state). Supervision waits while it runs on the
    /// supervisor thread: keep it short. It may publish (without ever waiting for room) but
    /// not wait (``wait_connected``, ``flush``, ``recv``, ``Delivery.wait*`` with a timeout
    /// raise RuntimeError there) nor ``close()``. An exception it raises is logged on the
    /// ``cmqtt`` logger. None to queue events for ``recv_event()`` again.
    #[getter]
    fn get_on_event(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.shared
            .on_event
            .lock()
            .as_ref()
            .map(|c| c.clone_ref(py))
    }

    #[setter]
    fn set_on_event(&self, py: Python<'_>, cb: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let cb = util::callback("on_event", cb)?;
        self.shared.get(py)?;
        let on = cb.is_some();
        let old = std::mem::replace(&mut *self.shared.on_event.lock(), cb);
        drop(old);
        self.install_event_hook(py, on)
    }

    /// Where the client stands: "opening", "starting", "connecting", "connected", "waiting"
    /// (between attempts) or "stopped" (closed).
    #[getter]
    fn state(&self, py: Python<'_>) -> &'static str {
        match self.shared.get(py) {
            Ok(sup) => state_name(&py.detach(|| sup.state())),
            Err(_) => "stopped",
        }
    }

    /// Wait until connected, up to ``timeout`` seconds (None: as long as it takes); returns
    /// whether it is. Ctrl-C interrupts the wait.
    #[pyo3(signature = (timeout = None))]
    fn wait_connected(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let t = optional_seconds("timeout", timeout)?;
        may_wait("wait_connected()", t)?;
        let sup = self.shared.get(py)?;
        let shared = self.shared.clone();
        // close() stops the supervisor, which wakes the wait.
        let r = wait::poll(
            py,
            t,
            Wake::Core,
            |limit| sup.wait_connected(limit).then_some(()),
            || shared.closed(),
        );
        py.detach(move || drop(sup));
        Ok(r?.is_some())
    }

    /// Wait until the outbox is empty (every publish delivered, failed or dropped), up to
    /// ``timeout`` seconds (None: as long as it takes); returns whether it is.
    #[pyo3(signature = (timeout = None))]
    fn flush(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let t = optional_seconds("timeout", timeout)?;
        may_wait("flush()", t)?;
        let sup = self.shared.get(py)?;
        let shared = self.shared.clone();
        // Closing does not end the core's flush wait: slices, to notice it.
        let r = wait::poll(
            py,
            t,
            Wake::Never,
            |limit| sup.flush(limit).then_some(()),
            || shared.closed(),
        );
        py.detach(move || drop(sup));
        Ok(r?.is_some())
    }

    /// Publishes waiting in the outbox (queued, or being sent).
    #[getter]
    fn outbox_len(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.shared.get(py)?.outbox_len())
    }

    /// Tickets of the publishes waiting in the outbox, those loaded from ``outbox_path`` at
    /// start included.
    fn pending(&self, py: Python<'_>) -> PyResult<Vec<Delivery>> {
        let sup = self.shared.get(py)?;
        Ok(py
            .detach(|| sup.pending())
            .into_iter()
            .map(|d| Delivery { d })
            .collect())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.shared.get(py) {
            Ok(sup) => format!(
                "<cmqtt.Supervisor state='{}' outbox={}>",
                state_name(&sup.state()),
                sup.outbox_len()
            ),
            Err(_) => "<cmqtt.Supervisor closed>".into(),
        }
    }
}

/// Iterator of ``Supervisor.messages(timeout)``.
#[pyclass(module = "cmqtt", frozen)]
pub struct SupervisorMessageIterator {
    shared: Arc<Shared>,
    idle: Option<Duration>,
}

#[pymethods]
impl SupervisorMessageIterator {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Message>> {
        if self.shared.closed() {
            return Ok(None);
        }
        recv_from(py, &self.shared, self.idle)
    }
}

// ---- Delivery ---------------------------------------------------------------------------------

/// The ticket of one ``Supervisor.publish()``: check it or wait for it. Thread-safe; it
/// outlives its supervisor (then keeps the status it had).
///
/// Attributes:
///     id (int): increasing from 1 in publish order (kept across restarts with
///         ``outbox_path``); the ``id`` of "dropped" and "failed" events.
///     status (str): "queued", "delivered" (for QoS 1/2: acknowledged by the broker),
///         "failed" (will never be sent; see ``reason``) or "dropped" (from a full outbox).
#[pyclass(module = "cmqtt", frozen)]
pub struct Delivery {
    d: cmqtt::Delivery,
}

fn status_name(s: &DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Queued => "queued",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed(_) => "failed",
        DeliveryStatus::Dropped => "dropped",
    }
}

impl Delivery {
    /// Waits (GIL released, signals checked) until it is not queued; None on timeout.
    fn wait_status(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<DeliveryStatus> {
        may_wait("Delivery.wait()", timeout)?;
        let d = &self.d;
        let got = wait::poll(
            py,
            timeout,
            Wake::Core,
            |limit| {
                let s = d.wait(limit);
                (s != DeliveryStatus::Queued).then_some(s)
            },
            || false,
        )?;
        Ok(got.unwrap_or(DeliveryStatus::Queued))
    }
}

#[pymethods]
impl Delivery {
    #[getter]
    fn id(&self) -> u64 {
        self.d.id()
    }

    #[getter]
    fn status(&self) -> &'static str {
        status_name(&self.d.status())
    }

    /// Why it failed ("failed"), else None.
    #[getter]
    fn reason(&self) -> Option<String> {
        match self.d.status() {
            DeliveryStatus::Failed(why) => Some(why),
            _ => None,
        }
    }

    /// Whether it is settled (no longer "queued").
    #[getter]
    fn done(&self) -> bool {
        self.d.status() != DeliveryStatus::Queued
    }

    /// Wait up to ``timeout`` seconds (None: as long as it takes) until it is no longer
    /// queued; returns the status then. Ctrl-C interrupts the wait.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<&'static str> {
        let t = optional_seconds("timeout", timeout)?;
        Ok(status_name(&self.wait_status(py, t)?))
    }

    /// Wait until delivered: returns None then; raises ``cmqtt.DeliveryError`` (``.status``
    /// "failed" or "dropped", ``.reason``) if it never will be, ``cmqtt.TimeoutError`` if
    /// ``timeout`` seconds passed first.
    #[pyo3(signature = (timeout = None))]
    fn wait_delivered(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let t = optional_seconds("timeout", timeout)?;
        match self.wait_status(py, t)? {
            DeliveryStatus::Delivered => Ok(()),
            DeliveryStatus::Queued => Err(errors::to_py(
                py,
                cmqtt::Error::Timeout {
                    command: "outbox delivery",
                    timeout: t.unwrap_or_default(),
                },
            )),
            DeliveryStatus::Failed(why) => {
                Err(errors::delivery(py, self.d.id(), "failed", Some(why)))
            }
            DeliveryStatus::Dropped => Err(errors::delivery(py, self.d.id(), "dropped", None)),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<cmqtt.Delivery id={} status='{}'>",
            self.d.id(),
            status_name(&self.d.status())
        )
    }
}

// ---- SupervisorEvent --------------------------------------------------------------------------

/// One transition of a ``Supervisor``, for ``on_event`` / ``recv_event()``.
///
/// Attributes:
///     kind (str): "state", "lost", "restored", "attempt_failed", "dropped", "failed" or
///         "modem".
///     state (str | None): "state": the new state ("opening", "starting", "connecting",
///         "connected", "waiting", "stopped").
///     attempt (int | None): "state" "waiting": failed attempts so far; "restored": the failed
///         attempts it took; "attempt_failed": which attempt failed (from 1).
///     delay (float | None): "state" "waiting": seconds until the next attempt.
///     loss (str | None): "lost": "connection" (+CMQTTCONNLOST), "network" (+CMQTTNONET),
///         "modem_restart" (RDY), "port" (the serial port failed or vanished) or
///         "unresponsive".
///     cause (int | None): "lost" "connection": +CMQTTCONNLOST's cause (1 socket closed
///         passively, 2 reset, 3 network closed; 0 when inferred from a failed command).
///     text (str | None): "attempt_failed": the error; "failed": the reason; "lost" "port" /
///         "unresponsive": what happened.
///     id (int | None): "dropped", "failed": the ``Delivery.id``.
///     event (Event | None): "modem": the modem-level ``cmqtt.Event``.
#[pyclass(module = "cmqtt", frozen, get_all)]
pub struct SupervisorEvent {
    kind: &'static str,
    state: Option<&'static str>,
    attempt: Option<u32>,
    delay: Option<f64>,
    loss: Option<&'static str>,
    cause: Option<u8>,
    text: Option<String>,
    id: Option<u64>,
    event: Option<Py<Event>>,
}

impl SupervisorEvent {
    fn empty(kind: &'static str) -> SupervisorEvent {
        SupervisorEvent {
            kind,
            state: None,
            attempt: None,
            delay: None,
            loss: None,
            cause: None,
            text: None,
            id: None,
            event: None,
        }
    }

    pub(crate) fn from_core(
        py: Python<'_>,
        e: &cmqtt::SupervisorEvent,
    ) -> PyResult<SupervisorEvent> {
        use cmqtt::SupervisorEvent as E;
        Ok(match e {
            E::State(s) => {
                let mut ev = SupervisorEvent {
                    state: Some(state_name(s)),
                    ..SupervisorEvent::empty("state")
                };
                if let State::Waiting { attempt, delay } = s {
                    ev.attempt = Some(*attempt);
                    ev.delay = Some(delay.as_secs_f64());
                }
                ev
            }
            E::Lost(l) => {
                let (cause, text) = match l {
                    Loss::Connection { cause } => (Some(*cause), None),
                    Loss::Port(why) | Loss::Unresponsive(why) => (None, Some(why.clone())),
                    _ => (None, None),
                };
                let loss = l.kind();
                SupervisorEvent {
                    loss: Some(loss),
                    cause,
                    text,
                    ..SupervisorEvent::empty("lost")
                }
            }
            E::Restored { attempts } => SupervisorEvent {
                attempt: Some(*attempts),
                ..SupervisorEvent::empty("restored")
            },
            E::AttemptFailed { attempt, error } => SupervisorEvent {
                attempt: Some(*attempt),
                text: Some(error.clone()),
                ..SupervisorEvent::empty("attempt_failed")
            },
            E::Dropped { id } => SupervisorEvent {
                id: Some(*id),
                ..SupervisorEvent::empty("dropped")
            },
            E::Failed { id, reason } => SupervisorEvent {
                id: Some(*id),
                text: Some(reason.clone()),
                ..SupervisorEvent::empty("failed")
            },
            E::SubscribeFailed { topic, reason } => SupervisorEvent {
                text: Some(format!("{}: {reason}", String::from_utf8_lossy(topic))),
                ..SupervisorEvent::empty("subscribe_failed")
            },
            E::Modem(me) => SupervisorEvent {
                event: Some(Py::new(py, Event::from_core(py, me)?)?),
                ..SupervisorEvent::empty("modem")
            },
            other => SupervisorEvent {
                text: Some(other.to_string()),
                ..SupervisorEvent::empty(other.kind())
            },
        })
    }
}

#[pymethods]
impl SupervisorEvent {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut parts = vec![format!("kind='{}'", self.kind)];
        if let Some(s) = self.state {
            parts.push(format!("state='{s}'"));
        }
        if let Some(a) = self.attempt {
            parts.push(format!("attempt={a}"));
        }
        if let Some(d) = self.delay {
            parts.push(format!("delay={d:.3}"));
        }
        if let Some(l) = self.loss {
            parts.push(format!("loss='{l}'"));
        }
        if let Some(c) = self.cause {
            parts.push(format!("cause={c}"));
        }
        if let Some(t) = &self.text {
            parts.push(format!("text={}", PyString::new(py, t).repr()?));
        }
        if let Some(i) = self.id {
            parts.push(format!("id={i}"));
        }
        if let Some(e) = &self.event {
            parts.push(format!("event={}", e.bind(py).repr()?));
        }
        Ok(format!("SupervisorEvent({})", parts.join(", ")))
    }
}

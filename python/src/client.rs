//! `cmqtt.Client` and the iterator of `Client.messages()`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::errors;
use crate::message::Message;
use crate::modem::drop_detached;
use crate::pylog;
use crate::util;
use crate::wait::{self, Session, Wake};

type Handles = (Arc<cmqtt::Client>, cmqtt::Modem);

pub(crate) struct ClientShared {
    /// None once released (here, or by the modem's close()).
    inner: RwLock<Option<Handles>>,
    index: u8,
    on_message: Mutex<Option<Py<PyAny>>>,
    on_connection_lost: Mutex<Option<Py<PyAny>>>,
    /// The modem's (see `wait::Gate`).
    gate: Arc<wait::Gate>,
    /// Threads waiting in `recv()` / `messages()` now: `release()` wakes them.
    receivers: AtomicUsize,
}

impl ClientShared {
    pub(crate) fn new(
        c: cmqtt::Client,
        m: cmqtt::Modem,
        gate: Arc<wait::Gate>,
    ) -> Arc<ClientShared> {
        Arc::new(ClientShared {
            index: c.index(),
            inner: RwLock::new(Some((Arc::new(c), m))),
            on_message: Mutex::new(None),
            on_connection_lost: Mutex::new(None),
            gate,
            receivers: AtomicUsize::new(0),
        })
    }

    /// Takes the core handles out (release), dropping the Python callbacks with them.
    pub(crate) fn take(&self) -> Option<Handles> {
        let h = self.inner.write().take();
        let a = self.on_message.lock().take();
        let b = self.on_connection_lost.lock().take();
        drop((a, b));
        h
    }

    /// Whether a thread waits in `recv()` / `messages()` now.
    pub(crate) fn has_receivers(&self) -> bool {
        self.receivers.load(Ordering::SeqCst) > 0
    }

    /// The core client and its session, for one call.
    fn session(&self, py: Python<'_>) -> PyResult<(Arc<cmqtt::Client>, Session)> {
        let (c, m) = self.get(py)?;
        Ok((c, Session::new(m, self.gate.clone())))
    }

    fn get(&self, py: Python<'_>) -> PyResult<Handles> {
        self.inner.read().clone().ok_or_else(|| {
            errors::closed(
                py,
                &format!(
                    "client {} was released (or its modem closed); acquire it again with modem.client()",
                    self.index
                ),
            )
        })
    }
}

/// An MQTT client of the modem (index 0 or 1), from ``Modem.client()``.
///
/// Use it as a context manager: ``release()`` (disconnect if connected, then
/// ``AT+CMQTTREL``) runs on exit. Methods may be called from several threads; the operations
/// of one client are serialised by the library (a publish is TOPIC + PAYLOAD + PUB with nothing
/// in between). Blocking calls release the GIL and can be interrupted with Ctrl-C.
///
/// Received messages are queued for ``recv()``/``messages()`` unless ``on_message`` is set.
#[pyclass(module = "cmqtt", frozen)]
pub struct Client {
    pub(crate) shared: Arc<ClientShared>,
}

impl Drop for Client {
    fn drop(&mut self) {
        // Dropping the last core handle releases the client on the modem: AT commands, so the
        // GIL must not be held (see drop_detached).
        if let Some(h) = self.shared.take() {
            drop_detached(h);
        }
    }
}

impl Client {
    pub(crate) fn new(shared: Arc<ClientShared>) -> Client {
        Client { shared }
    }

    fn install_callbacks(&self, py: Python<'_>) -> PyResult<()> {
        let (c, _) = self.shared.get(py)?;
        let on_msg = self
            .shared
            .on_message
            .lock()
            .as_ref()
            .map(|x| x.clone_ref(py));
        let on_lost = self
            .shared
            .on_connection_lost
            .lock()
            .as_ref()
            .map(|x| x.clone_ref(py));
        py.detach(move || {
            if on_msg.is_none() || on_lost.is_none() {
                c.clear_callbacks();
            }
            if let Some(cb) = on_msg {
                c.on_message(move |m: &cmqtt::Message| {
                    let _ = Python::try_attach(|py| {
                        let r = Message::from_core(py, m).and_then(|msg| cb.call1(py, (msg,)));
                        if let Err(e) = r {
                            pylog::callback_error(py, "on_message", e);
                        }
                    });
                });
            }
            if let Some(cb) = on_lost {
                c.on_connection_lost(move |client: u8, cause: u8| {
                    let _ = Python::try_attach(|py| {
                        if let Err(e) = cb.call1(py, (client, cause)) {
                            pylog::callback_error(py, "on_connection_lost", e);
                        }
                    });
                });
            }
        });
        Ok(())
    }
}

/// `topics` as a list of (topic, qos): one topic (str/bytes) or an iterable of topics or
/// (topic, qos) pairs.
pub(crate) fn topic_list(topics: &Bound<'_, PyAny>, qos: i64) -> PyResult<Vec<(Vec<u8>, u8)>> {
    let q = util::arg_u8("qos", qos, "0..=2")?;
    if util::is_topic(topics) {
        return Ok(vec![(util::topic("topic", topics)?, q)]);
    }
    let iter = topics.try_iter().map_err(|_| {
        PyTypeError::new_err("topics must be a topic (str or bytes) or a list of (topic, qos)")
    })?;
    let mut out = Vec::new();
    for item in iter {
        let item = item?;
        if util::is_topic(&item) {
            out.push((util::topic("topic", &item)?, q));
            continue;
        }
        let pair = item.cast::<PyTuple>().map_err(|_| {
            PyTypeError::new_err("each item must be a topic or a (topic, qos) tuple")
        })?;
        if pair.len() != 2 {
            return Err(PyTypeError::new_err(
                "each item must be a topic or a (topic, qos) tuple",
            ));
        }
        let t = util::topic("topic", &pair.get_item(0)?)?;
        let qv: i64 = pair.get_item(1)?.extract()?;
        out.push((t, util::arg_u8("qos", qv, "0..=2")?));
    }
    Ok(out)
}

fn optional_seconds(name: &str, t: Option<f64>) -> PyResult<Option<Duration>> {
    t.map(|t| wait::seconds(name, t)).transpose()
}

/// Waits for the next message of client `s` (see `Client.recv`). Gives up (None) when the
/// session ends or the client is released meanwhile (e.g. by the modem's close() on another
/// thread, which wakes the wait), so a waiting thread never keeps a closed session alive.
fn recv_from(
    py: Python<'_>,
    s: &ClientShared,
    timeout: Option<Duration>,
) -> PyResult<Option<Message>> {
    let (c, session) = s.session(py)?;
    let got = if timeout == Some(Duration::ZERO) {
        Ok(c.try_recv())
    } else {
        s.receivers.fetch_add(1, Ordering::SeqCst);
        let r = wait::poll(
            py,
            timeout,
            Wake::Interrupt(&session),
            |limit| next_message(&c, limit),
            || session.modem().closed_reason().is_some() || s.inner.read().is_none(),
        );
        s.receivers.fetch_sub(1, Ordering::SeqCst);
        r
    };
    // Possibly the last handles of a session closed meanwhile: dropped without the GIL.
    py.detach(move || drop((c, session)));
    got?.map(|m| Message::from_core(py, &m)).transpose()
}

/// One step of a receive wait: the next message within `limit`, or None when it passed or the
/// wait was cut short (interrupted, connection lost, session ended: the caller looks why).
fn next_message(c: &cmqtt::Client, limit: Duration) -> Option<cmqtt::Message> {
    if limit.is_zero() {
        return c.try_recv();
    }
    match c.next_message(limit) {
        Ok(m) => m,
        // Not connected (yet, or any more): nothing but a message wakes this wait (another
        // thread may connect the client), so it goes on in slices.
        Err(cmqtt::Error::NotConnected { .. } | cmqtt::Error::ConnectionLost { .. }) => {
            c.recv_timeout(limit.min(wait::SLICE))
        }
        Err(_) => None,
    }
}

#[pymethods]
impl Client {
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Releases the client. When the block raised, an error of the release (a modem that
    /// stopped answering) is logged on the ``cmqtt`` logger instead of replacing the block's
    /// exception.
    #[pyo3(signature = (*args))]
    fn __exit__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        let r = self.release(py);
        pylog::exit_error(py, "releasing the client", args, r)
    }

    /// Disconnect if connected, then release the client (``AT+CMQTTREL``). Idempotent.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let Some((c, m)) = self.shared.take() else {
            return Ok(());
        };
        let session = Session::new(m, self.shared.gate.clone());
        // Threads waiting for a message of this client learn that it is gone.
        let wake = self.shared.has_receivers().then(|| session.clone());
        let r = wait::call(py, "release", session, move || {
            let r = c.release();
            drop(c);
            r
        });
        if let Some(s) = wake {
            py.detach(move || s.wake_receivers(Duration::from_millis(200)));
        }
        r
    }

    /// True once released (by ``release()``, the context manager or the modem's ``close()``).
    #[getter]
    fn released(&self) -> bool {
        self.shared.inner.read().is_none()
    }

    /// The client index (0 or 1).
    #[getter]
    fn index(&self) -> u8 {
        self.shared.index
    }

    /// Whether the client is connected, as far as the host knows (updated by connect,
    /// disconnect and +CMQTTCONNLOST / +CMQTTNONET).
    #[getter]
    fn connected(&self) -> bool {
        self.shared
            .inner
            .read()
            .as_ref()
            .is_some_and(|(c, _)| c.is_connected())
    }

    /// ``AT+CMQTTCONNECT``: returns once the broker accepted. ``server`` is
    /// ``"tcp://host:port"`` (also for TLS: TLS is chosen when the client is acquired);
    /// ``keepalive`` 1..=64800 s; ``timeout`` is how long to wait for the broker's answer.
    /// Raises ModemError with ``.code`` (e.g. 30: bad user name or password, 32: handshake
    /// failed), or cmqtt.TimeoutError.
    #[pyo3(signature = (server, keepalive = 60, clean_session = true, username = None, password = None, timeout = 120.0))]
    #[allow(clippy::too_many_arguments)]
    fn connect(
        &self,
        py: Python<'_>,
        server: &str,
        keepalive: i64,
        clean_session: bool,
        username: Option<String>,
        password: Option<String>,
        timeout: f64,
    ) -> PyResult<()> {
        let (c, session) = self.shared.session(py)?;
        let mut o = cmqtt::ConnectOptions::new(server);
        o.keepalive = util::arg_u32("keepalive", keepalive, "1..=64800 seconds")?;
        o.clean_session = clean_session;
        o.username = username;
        o.password = password;
        o.timeout = wait::seconds("timeout", timeout)?;
        wait::call(py, "connect", session, move || c.connect(&o))
    }

    /// ``AT+CMQTTDISC``. ``timeout``: None for the model's default, else 60..=180 s.
    #[pyo3(signature = (timeout = None))]
    fn disconnect(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let (c, session) = self.shared.session(py)?;
        let t = optional_seconds("timeout", timeout)?.unwrap_or(Duration::ZERO);
        wait::call(py, "disconnect", session, move || c.disconnect(t))
    }

    /// Whether the modem says this client is connected (``AT+CMQTTDISC?``).
    fn query_connected(&self, py: Python<'_>) -> PyResult<bool> {
        let (c, session) = self.shared.session(py)?;
        wait::call(py, "query_connected", session, move || c.query_connected())
    }

    /// Publish and block until the modem reports the result: for QoS 1 and 2 that is the
    /// broker's acknowledgement. ``topic`` is str or bytes (1..=1024 bytes); ``payload`` is
    /// bytes-like or str (encoded as UTF-8), up to ``modem.max_payload`` bytes; ``qos`` 0..=2;
    /// ``timeout`` is the modem's publish timeout, 60..=180 s.
    ///
    /// Interrupted by Ctrl-C (KeyboardInterrupt): the wait stops at once, but an AT command
    /// cannot be taken back, so the modem may still carry the publish out (the message may
    /// still be delivered; the interruption is logged on the ``cmqtt`` logger and the modem's
    /// late answer arrives as a modem event). The next call on the modem first gets back in
    /// step with it.
    #[pyo3(signature = (topic, payload = None, qos = 0, retain = false, timeout = 60.0, dup = false))]
    #[allow(clippy::too_many_arguments)]
    fn publish(
        &self,
        py: Python<'_>,
        topic: &Bound<'_, PyAny>,
        payload: Option<&Bound<'_, PyAny>>,
        qos: i64,
        retain: bool,
        timeout: f64,
        dup: bool,
    ) -> PyResult<()> {
        let t = util::topic("topic", topic)?;
        let p = match payload {
            Some(p) if !p.is_none() => util::bytes_or_str("payload", p)?,
            _ => Vec::new(),
        };
        let qos = util::arg_u8("qos", qos, "0..=2")?;
        let timeout = wait::seconds("timeout", timeout)?;
        let (c, session) = self.shared.session(py)?;
        wait::call(py, "publish", session, move || {
            c.publish_message(&cmqtt::Publish {
                topic: &t,
                payload: &p,
                qos,
                retain,
                dup,
                timeout,
            })
        })
    }

    /// Subscribe to one topic filter (str or bytes) with ``qos``, or to a list of filters
    /// and/or ``(filter, qos)`` pairs in one go.
    #[pyo3(signature = (topics, qos = 0))]
    fn subscribe(&self, py: Python<'_>, topics: &Bound<'_, PyAny>, qos: i64) -> PyResult<()> {
        let list = topic_list(topics, qos)?;
        let (c, session) = self.shared.session(py)?;
        wait::call(py, "subscribe", session, move || c.subscribe(&list))
    }

    /// Unsubscribe from one topic filter or a list of them.
    fn unsubscribe(&self, py: Python<'_>, topics: &Bound<'_, PyAny>) -> PyResult<()> {
        let list: Vec<Vec<u8>> = topic_list(topics, 0)?.into_iter().map(|(t, _)| t).collect();
        let (c, session) = self.shared.session(py)?;
        wait::call(py, "unsubscribe", session, move || c.unsubscribe(&list))
    }

    /// The subscribed topics as the modem lists them (``AT+CMQTTSUB?``, SIM7672X only).
    fn subscriptions(&self, py: Python<'_>) -> PyResult<Vec<Py<PyBytes>>> {
        let (c, session) = self.shared.session(py)?;
        let v = wait::call(py, "subscriptions", session, move || c.subscriptions())?;
        Ok(v.into_iter()
            .map(|t| PyBytes::new(py, &t).unbind())
            .collect())
    }

    /// The next received message, waiting up to ``timeout`` seconds (None: until one comes;
    /// 0: only if one is waiting). Returns None on timeout, or when the session has ended.
    /// Ctrl-C interrupts the wait.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Message>> {
        let t = optional_seconds("timeout", timeout)?;
        recv_from(py, &self.shared, t)
    }

    /// Iterate over received messages as they arrive; the iteration ends when none came for
    /// ``timeout`` seconds (None: never, until the session ends).
    #[pyo3(signature = (timeout = None))]
    fn messages(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<MessageIterator> {
        let idle = optional_seconds("timeout", timeout)?;
        self.shared.get(py)?;
        Ok(MessageIterator {
            shared: self.shared.clone(),
            idle,
        })
    }

    /// Messages waiting in this client's queue.
    #[getter]
    fn pending_messages(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.shared.get(py)?.0.pending_messages())
    }

    /// Messages dropped because this client's queue was full.
    #[getter]
    fn dropped_messages(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.shared.get(py)?.0.dropped_messages())
    }

    /// Called as ``on_message(msg)`` (a ``cmqtt.Message``) on the library's dispatch thread,
    /// holding the GIL, for every received message instead of queueing it. It may call any
    /// method of the client (publish included). An exception it raises is logged on the
    /// ``cmqtt`` logger with its traceback and delivery goes on. None to go back to queueing.
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
        let old = std::mem::replace(&mut *self.shared.on_message.lock(), cb);
        drop(old);
        self.install_callbacks(py)
    }

    /// Called as ``on_connection_lost(client_index, cause)`` on the dispatch thread when the
    /// broker connection is lost (cause 1: socket closed passively, 2: reset, 3: network
    /// closed). Connect again to go on. None to remove.
    #[getter]
    fn get_on_connection_lost(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.shared
            .on_connection_lost
            .lock()
            .as_ref()
            .map(|c| c.clone_ref(py))
    }

    #[setter]
    fn set_on_connection_lost(&self, py: Python<'_>, cb: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let cb = util::callback("on_connection_lost", cb)?;
        self.shared.get(py)?;
        let old = std::mem::replace(&mut *self.shared.on_connection_lost.lock(), cb);
        drop(old);
        self.install_callbacks(py)
    }

    /// The will (``AT+CMQTTWILLTOPIC`` + ``AT+CMQTTWILLMSG``), sent with the next connect.
    /// ``payload`` is bytes-like or str, at most 1024 bytes.
    #[pyo3(signature = (topic, payload, qos = 0))]
    fn set_will(
        &self,
        py: Python<'_>,
        topic: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
        qos: i64,
    ) -> PyResult<()> {
        let t = util::topic("topic", topic)?;
        let p = util::bytes_or_str("payload", payload)?;
        let qos = util::arg_u8("qos", qos, "0..=2")?;
        let (c, session) = self.shared.session(py)?;
        wait::call(py, "set_will", session, move || c.set_will(&t, &p, qos))
    }

    /// ``AT+CMQTTCFG="checkUTF8"``: whether the modem checks topics for UTF-8 (its default:
    /// on).
    fn set_check_utf8(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        let (c, session) = self.shared.session(py)?;
        wait::call(py, "set_check_utf8", session, move || c.set_check_utf8(on))
    }

    /// ``AT+CMQTTCFG="optimeout"``: the modem's send/receive timeout, 20..=120 s.
    fn set_op_timeout(&self, py: Python<'_>, seconds: i64) -> PyResult<()> {
        let s = util::arg_u32("seconds", seconds, "20..=120")?;
        let (c, session) = self.shared.session(py)?;
        wait::call(py, "set_op_timeout", session, move || c.set_op_timeout(s))
    }

    /// ``AT+CMQTTCFG="version"``: 3 (MQTT 3.1) or 4 (MQTT 3.1.1), on models that take it
    /// there (on SIM7600 pass ``version`` to ``Modem.client()`` instead).
    fn set_version(&self, py: Python<'_>, version: i64) -> PyResult<()> {
        let v = util::arg_u8("version", version, "3 or 4")?;
        let (c, session) = self.shared.session(py)?;
        wait::call(py, "set_version", session, move || c.set_version(v))
    }

    /// ``AT+CMQTTSSLCFG``: the SSL context (0..=9) this client's TLS connection uses.
    fn set_ssl_context(&self, py: Python<'_>, ctx: i64) -> PyResult<()> {
        let ctx = util::arg_u8("ctx", ctx, "0..=9")?;
        let (c, session) = self.shared.session(py)?;
        wait::call(py, "set_ssl_context", session, move || {
            c.set_ssl_context(ctx)
        })
    }

    /// This client's configuration as the modem reports it (``AT+CMQTTCFG?``):
    /// ``{"index": int, "check_utf8": bool, "op_timeout": int}``.
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (c, session) = self.shared.session(py)?;
        let cfg = wait::call(py, "config", session, move || c.config())?;
        let d = PyDict::new(py);
        d.set_item("index", cfg.index)?;
        d.set_item("check_utf8", cfg.check_utf8)?;
        d.set_item("op_timeout", cfg.optimeout)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        match &*self.shared.inner.read() {
            Some((c, _)) => format!(
                "<cmqtt.Client index={} connected={}>",
                self.shared.index,
                if c.is_connected() { "True" } else { "False" }
            ),
            None => format!("<cmqtt.Client index={} released>", self.shared.index),
        }
    }
}

/// Iterator of ``Client.messages(timeout)``: yields ``Message`` objects until none came for
/// ``timeout`` seconds or the session ends.
#[pyclass(module = "cmqtt", frozen)]
pub struct MessageIterator {
    shared: Arc<ClientShared>,
    idle: Option<Duration>,
}

#[pymethods]
impl MessageIterator {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Message>> {
        if self.shared.inner.read().is_none() {
            return Ok(None);
        }
        recv_from(py, &self.shared, self.idle)
    }
}

//! `cmqtt.Modem`.

use std::collections::HashSet;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

use crate::client::{Client, ClientShared};
use crate::errors;
use crate::message::Event;
use crate::pylog;
use crate::util;
use crate::wait::{self, Session, Wake};

#[derive(Default)]
struct Hooks {
    on_no_network: Option<Py<PyAny>>,
    on_event: Option<Py<PyAny>>,
}

pub(crate) struct ModemShared {
    modem: RwLock<Option<cmqtt::Modem>>,
    port: String,
    clients: Mutex<Vec<Weak<ClientShared>>>,
    hooks: Mutex<Hooks>,
    /// `start()` on this handle started the service: `close()` stops it again.
    started_here: AtomicBool,
    /// What the modem said about itself at open (still readable after close).
    identity: cmqtt::Identity,
    profile: cmqtt::Profile,
    /// AT transactions of this binding in flight on the session (see `wait::Gate`).
    gate: Arc<wait::Gate>,
}

impl ModemShared {
    pub(crate) fn get(&self, py: Python<'_>) -> PyResult<cmqtt::Modem> {
        self.modem
            .read()
            .clone()
            .ok_or_else(|| errors::closed(py, "the modem was closed; open it again"))
    }

    /// The session of `m` (this modem's handle), for one call.
    fn session(&self, m: &cmqtt::Modem) -> Session {
        Session::new(m.clone(), self.gate.clone())
    }
}

/// A SIMCom modem (A7600/A76xx, SIM7600, SIM7672X) and its MQTT service.
///
/// ``Modem(port, baudrate=115200, model=None, timeout=10.0, queue_capacity=1024, echo_off=True)``
/// opens the serial port (e.g. ``"/dev/ttyUSB2"``, or ``"socket://127.0.0.1:7000"`` for a
/// serial-over-TCP bridge / ``cmqtt sim --tcp``), synchronises with ``AT`` for up to
/// ``timeout`` seconds, switches echo off and identifies the model (``model`` forces one of
/// ``"a7600"``, ``"sim7600"``, ``"sim7672x"``). ``queue_capacity`` (1..=1048576) bounds each
/// event and message queue; ``baudrate`` must be positive.
///
/// Use it as a context manager: ``close()`` runs on exit. Every method may be called from
/// several threads; the GIL is released while the modem is working, and Ctrl-C interrupts a
/// wait (see the module documentation for what happens to the interrupted command).
///
/// Example::
///
///     with cmqtt.Modem("/dev/ttyUSB2") as modem:
///         modem.start()
///         with modem.client(0, "device-1") as client:
///             client.connect("tcp://broker.example:1883")
///             client.publish("data/x", b"\x00\x01", qos=1)
#[pyclass(module = "cmqtt", frozen)]
pub struct Modem {
    pub(crate) shared: Arc<ModemShared>,
}

/// Prefixes handed to the core's raw command, which keeps them for `'static`: each distinct
/// prefix is leaked once.
fn intern(prefix: &str) -> &'static str {
    static SEEN: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut g = SEEN.lock();
    let set = g.get_or_insert_with(HashSet::new);
    if let Some(p) = set.get(prefix) {
        return p;
    }
    let leaked: &'static str = Box::leak(prefix.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

fn open(port: String, baud: u32, opts: cmqtt::ModemOptions) -> cmqtt::Result<cmqtt::Modem> {
    if let Some(addr) = port.strip_prefix("socket://") {
        let stream = TcpStream::connect(addr)?;
        cmqtt::Modem::with_tcp(stream, opts)
    } else {
        cmqtt::Modem::open_with(&port, baud, opts)
    }
}

/// Drops core objects with the GIL released (their drop may join the dispatch thread, which
/// may be waiting for the GIL to run a callback). During interpreter shutdown they are leaked
/// instead: the process is ending, and joining threads that cannot attach any more would hang.
pub(crate) fn drop_detached<T: Send>(x: T) {
    let mut slot = Some(x);
    let done = Python::try_attach(|py| {
        let x = slot.take();
        py.detach(move || drop(x));
    });
    if done.is_none() {
        if let Some(x) = slot.take() {
            std::mem::forget(x);
        }
    }
}

impl Drop for Modem {
    fn drop(&mut self) {
        if let Some(m) = self.shared.modem.write().take() {
            drop_detached(m);
        }
    }
}

impl Modem {
    fn install_event_hook(&self, py: Python<'_>) -> PyResult<()> {
        let modem = self.shared.get(py)?;
        let (nonet, on_event) = {
            let h = self.shared.hooks.lock();
            (
                h.on_no_network.as_ref().map(|c| c.clone_ref(py)),
                h.on_event.as_ref().map(|c| c.clone_ref(py)),
            )
        };
        if nonet.is_none() && on_event.is_none() {
            py.detach(|| modem.clear_on_event());
            return Ok(());
        }
        let hook = move |e: &cmqtt::Event| {
            let _ = Python::try_attach(|py| {
                let is_nonet = matches!(e, cmqtt::Event::NoNetwork);
                if is_nonet {
                    if let Some(cb) = &nonet {
                        if let Err(err) = cb.call0(py) {
                            pylog::callback_error(py, "on_no_network", err);
                        }
                    }
                }
                match &on_event {
                    Some(cb) => {
                        let r = Event::from_core(py, e).and_then(|ev| cb.call1(py, (ev,)));
                        if let Err(err) = r {
                            pylog::callback_error(py, "on_event", err);
                        }
                    }
                    None if !is_nonet => {
                        pylog::log(py, pylog::INFO, &format!("cmqtt: modem event {e:?}"));
                    }
                    None => {}
                }
            });
        };
        py.detach(|| modem.on_event(hook));
        Ok(())
    }
}

#[pymethods]
impl Modem {
    #[new]
    #[pyo3(signature = (port, baudrate = 115200, model = None, timeout = 10.0, queue_capacity = 1024, echo_off = true))]
    fn new(
        py: Python<'_>,
        port: &Bound<'_, PyAny>,
        baudrate: i64,
        model: Option<&str>,
        timeout: f64,
        queue_capacity: i64,
        echo_off: bool,
    ) -> PyResult<Self> {
        let port: String = py
            .import("os")?
            .call_method1("fspath", (port,))?
            .extract()
            .map_err(|_| PyTypeError::new_err("port must be a str or os.PathLike"))?;
        let baud = util::arg_u32("baudrate", baudrate, "a positive baud rate")?;
        let mut opts = cmqtt::ModemOptions {
            sync_timeout: wait::seconds("timeout", timeout)?,
            queue_capacity: usize::try_from(queue_capacity)
                .ok()
                .filter(|c| (1..=cmqtt::MAX_QUEUE_CAPACITY).contains(c))
                .ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "invalid argument queue_capacity: must be 1..={}, got {queue_capacity}",
                        cmqtt::MAX_QUEUE_CAPACITY
                    ))
                })?,
            echo_off,
            ..cmqtt::ModemOptions::default()
        };
        if let Some(m) = model {
            opts.model = Some(m.parse::<cmqtt::Model>().map_err(PyValueError::new_err)?);
        }
        pylog::refresh_trace(py);
        opts.trace = Some(Arc::new(pylog::trace_line));
        let p = port.clone();
        // No session to interrupt yet: on the main thread the opening runs on a worker.
        let modem = wait::offload(py, "open", move || open(p, baud, opts))?;
        let identity = modem.identity().clone();
        let profile = modem.profile();
        Ok(Modem {
            shared: Arc::new(ModemShared {
                modem: RwLock::new(Some(modem)),
                port,
                clients: Mutex::new(Vec::new()),
                hooks: Mutex::new(Hooks::default()),
                started_here: AtomicBool::new(false),
                identity,
                profile,
                gate: Arc::new(wait::Gate::default()),
            }),
        })
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Closes the modem. When the block raised, an error of the close is logged on the
    /// ``cmqtt`` logger instead of replacing the block's exception.
    #[pyo3(signature = (*args))]
    fn __exit__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        let r = self.close(py);
        pylog::exit_error(py, "closing the modem", args, r)
    }

    /// Release every client acquired through this modem (disconnecting them first), stop the
    /// MQTT service if ``start()`` on this handle started it, and close the port. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let Some(modem) = self.shared.modem.write().take() else {
            return Ok(());
        };
        let shareds: Vec<_> = self
            .shared
            .clients
            .lock()
            .drain(..)
            .filter_map(|w| w.upgrade())
            .collect();
        // Threads waiting for a message of these clients must learn that they are gone.
        let waiting = shareds.iter().any(|c| c.has_receivers());
        let clients: Vec<_> = shareds.iter().filter_map(|c| c.take()).collect();
        drop(shareds);
        let stop = self.shared.started_here.swap(false, Ordering::SeqCst);
        let hooks = std::mem::take(&mut *self.shared.hooks.lock());
        // The call hands the core handle back: the last handle is dropped here, with the GIL
        // released. Dropping it joins the dispatch thread unless this is that thread (a
        // callback closing its modem), which the core allows for.
        let session = Session::new(modem.clone(), self.shared.gate.clone());
        let modem = wait::call(py, "close", session, move || {
            for (c, _) in &clients {
                if let Err(e) = c.release() {
                    pylog::log_detached(
                        pylog::DEBUG,
                        &format!("cmqtt: releasing client {} at close: {e}", c.index()),
                    );
                }
            }
            drop(clients);
            modem.clear_on_event();
            if stop {
                if let Err(e) = modem.stop() {
                    pylog::log_detached(
                        pylog::DEBUG,
                        &format!("cmqtt: AT+CMQTTSTOP at close: {e}"),
                    );
                }
            }
            Ok(modem)
        });
        drop(hooks);
        let modem = modem?;
        let gate = self.shared.gate.clone();
        py.detach(move || {
            if waiting {
                Session::new(modem.clone(), gate).wake_receivers(Duration::from_millis(200));
            }
            drop(modem)
        });
        Ok(())
    }

    /// True once ``close()`` has run.
    #[getter]
    fn closed(&self) -> bool {
        self.shared.modem.read().is_none()
    }

    /// Why the session ended on its own (port gone, EOF), or None while it is usable.
    #[getter]
    fn closed_reason(&self) -> Option<String> {
        match &*self.shared.modem.read() {
            Some(m) => m.closed_reason(),
            None => Some("closed".into()),
        }
    }

    /// The port this modem was opened on.
    #[getter]
    fn port(&self) -> String {
        self.shared.port.clone()
    }

    /// The model family in use: "a7600", "sim7600" or "sim7672x".
    #[getter]
    fn model(&self) -> &'static str {
        self.shared.profile.model.name()
    }

    /// What ``AT+CGMM`` answered at open (e.g. "A7600E-H").
    #[getter]
    fn model_name(&self) -> String {
        self.shared.identity.model_name.clone()
    }

    /// The firmware revision (``AT+CGMR``) read at open.
    #[getter]
    fn firmware(&self) -> String {
        self.shared.identity.firmware.clone()
    }

    /// Largest payload one publish can carry on this model (10240 A7600/SIM7600, 4096 SIM7672X).
    #[getter]
    fn max_payload(&self) -> usize {
        self.shared.profile.max_payload
    }

    /// Largest topic (bytes).
    #[getter]
    fn max_topic(&self) -> usize {
        self.shared.profile.max_topic
    }

    /// ``AT+CMQTTSTART``. Returns True when this call started the service, False when it was
    /// already running.
    fn start(&self, py: Python<'_>) -> PyResult<bool> {
        let m = self.shared.get(py)?;
        let started = wait::call(py, "start", self.shared.session(&m), move || m.start())?;
        if started {
            self.shared.started_here.store(true, Ordering::SeqCst);
        }
        Ok(started)
    }

    /// ``AT+CMQTTSTOP`` (release the clients first).
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let m = self.shared.get(py)?;
        wait::call(py, "stop", self.shared.session(&m), move || m.stop())?;
        self.shared.started_here.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Whether the modem has the MQTT service at all (``AT+CMQTTACCQ=?`` answers).
    fn supports_mqtt(&self, py: Python<'_>) -> PyResult<bool> {
        let m = self.shared.get(py)?;
        wait::call(py, "supports_mqtt", self.shared.session(&m), move || {
            Ok(m.supports_mqtt())
        })
    }

    /// Whether the MQTT service is running.
    fn service_running(&self, py: Python<'_>) -> PyResult<bool> {
        let m = self.shared.get(py)?;
        wait::call(py, "service_running", self.shared.session(&m), move || {
            Ok(m.service_running())
        })
    }

    /// Acquire MQTT client ``index`` (0 or 1) with ``client_id`` (``AT+CMQTTACCQ``) and apply
    /// the options: ``tls`` connects to an SSL/TLS server; ``version`` 3 (MQTT 3.1) or 4
    /// (3.1.1), sent the way the model takes it; ``check_utf8`` the modem's UTF-8 check;
    /// ``op_timeout`` 20..=120 s; ``ssl_context`` 0..=9 (see ``ssl_configure``).
    /// Use the client as a context manager: it is released (``AT+CMQTTREL``, after a
    /// disconnect if needed) on exit.
    #[pyo3(signature = (index, client_id, tls = false, version = None, check_utf8 = None, op_timeout = None, ssl_context = None))]
    #[allow(clippy::too_many_arguments)]
    fn client(
        &self,
        py: Python<'_>,
        index: i64,
        client_id: &str,
        tls: bool,
        version: Option<i64>,
        check_utf8: Option<bool>,
        op_timeout: Option<i64>,
        ssl_context: Option<i64>,
    ) -> PyResult<Client> {
        let m = self.shared.get(py)?;
        let index = util::arg_u8("client_index", index, "0 or 1")?;
        let mut o = cmqtt::ClientOptions::new(client_id);
        o.tls = tls;
        o.version = version
            .map(|v| util::arg_u8("version", v, "3 (MQTT 3.1) or 4 (MQTT 3.1.1)"))
            .transpose()?;
        o.check_utf8 = check_utf8;
        o.op_timeout = op_timeout
            .map(|v| util::arg_u32("op_timeout", v, "20..=120 seconds"))
            .transpose()?;
        o.ssl_ctx = ssl_context
            .map(|v| util::arg_u8("ssl_context", v, "0..=9"))
            .transpose()?;
        let m2 = m.clone();
        let c = wait::call(py, "client", self.shared.session(&m), move || {
            m2.client_with(index, &o)
        })?;
        let shared = ClientShared::new(c, m, self.shared.gate.clone());
        self.shared.clients.lock().push(Arc::downgrade(&shared));
        Ok(Client::new(shared))
    }

    /// Configure SSL context ``ctx`` (0..=9) with ``AT+CSSLCFG``: every argument that is not
    /// None is sent. ``ssl_version`` 0 SSL3.0, 1 TLS1.0, 2 TLS1.1, 3 TLS1.2, 4 all;
    /// ``auth_mode`` 0 none, 1 verify the server, 2 both, 3 client only; ``ca_cert``,
    /// ``client_cert``, ``client_key`` are file names in the modem's store (see
    /// ``cert_upload``); ``negotiate_time`` 10..=300 s.
    #[pyo3(signature = (ctx, *, ssl_version = None, auth_mode = None, ca_cert = None, client_cert = None, client_key = None, enable_sni = None, ignore_local_time = None, negotiate_time = None))]
    #[allow(clippy::too_many_arguments)]
    fn ssl_configure(
        &self,
        py: Python<'_>,
        ctx: i64,
        ssl_version: Option<i64>,
        auth_mode: Option<i64>,
        ca_cert: Option<String>,
        client_cert: Option<String>,
        client_key: Option<String>,
        enable_sni: Option<bool>,
        ignore_local_time: Option<bool>,
        negotiate_time: Option<i64>,
    ) -> PyResult<()> {
        let m = self.shared.get(py)?;
        let ctx = util::arg_u8("ctx", ctx, "0..=9")?;
        let cfg = cmqtt::SslContext {
            ssl_version: ssl_version
                .map(|v| util::arg_u8("ssl_version", v, "0..=4"))
                .transpose()?,
            auth_mode: auth_mode
                .map(|v| util::arg_u8("auth_mode", v, "0..=3"))
                .transpose()?,
            ignore_local_time,
            negotiate_time: negotiate_time
                .map(|v| util::arg_u16("negotiate_time", v, "10..=300 seconds"))
                .transpose()?,
            ca_cert,
            client_cert,
            client_key,
            enable_sni,
        };
        wait::call(py, "ssl_configure", self.shared.session(&m), move || {
            m.ssl_configure(ctx, &cfg)
        })
    }

    /// Store a certificate or key in the modem (``AT+CCERTDOWN``). ``data`` is the content as
    /// ``bytes``/``bytearray``, or a path (``str`` or ``os.PathLike``) to read it from.
    fn cert_upload(&self, py: Python<'_>, name: &str, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let m = self.shared.get(py)?;
        let bytes = if let Ok(b) = data.cast::<PyBytes>() {
            b.as_bytes().to_vec()
        } else if data.cast::<PyString>().is_ok() || data.hasattr("__fspath__")? {
            let path: std::path::PathBuf = py
                .import("os")?
                .call_method1("fspath", (data,))?
                .extract()?;
            util::read_file_bounded(
                py,
                &path,
                cmqtt::command::MAX_CERT_LEN,
                "the modem's certificate store takes",
            )?
        } else {
            util::bytes_or_str("data", data).map_err(|_| {
                PyTypeError::new_err("data must be bytes, bytearray, a str path or an os.PathLike")
            })?
        };
        let name = name.to_string();
        wait::call(py, "cert_upload", self.shared.session(&m), move || {
            m.cert_upload(&name, &bytes)
        })
    }

    /// The files in the modem's certificate store (``AT+CCERTLIST``).
    fn cert_list(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let m = self.shared.get(py)?;
        wait::call(py, "cert_list", self.shared.session(&m), move || {
            m.cert_list()
        })
    }

    /// Delete a file from the certificate store (``AT+CCERTDELE``).
    fn cert_delete(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let m = self.shared.get(py)?;
        let name = name.to_string();
        wait::call(py, "cert_delete", self.shared.session(&m), move || {
            m.cert_delete(&name)
        })
    }

    /// The IMEI (``AT+CGSN``).
    fn imei(&self, py: Python<'_>) -> PyResult<String> {
        let m = self.shared.get(py)?;
        wait::call(py, "imei", self.shared.session(&m), move || m.imei())
    }

    /// ``AT+CSQ``: ``(rssi, ber)``; rssi 0..31 (99 unknown), ber 0..7 (99 unknown).
    fn signal_quality(&self, py: Python<'_>) -> PyResult<(u8, u8)> {
        let m = self.shared.get(py)?;
        wait::call(py, "signal_quality", self.shared.session(&m), move || {
            m.signal_quality()
        })
    }

    /// ``AT+CGREG?`` ``<stat>``: 1 registered (home), 5 registered (roaming), 0/2/3/4 not.
    fn registration(&self, py: Python<'_>) -> PyResult<u8> {
        let m = self.shared.get(py)?;
        wait::call(py, "registration", self.shared.session(&m), move || {
            m.registration()
        })
    }

    /// Run a raw AT command line (for commands cmqtt has no method for) and return its
    /// information lines: those starting with ``prefix``, or every line when it is empty.
    #[pyo3(signature = (line, prefix = "", timeout = 9.0))]
    fn command(
        &self,
        py: Python<'_>,
        line: &str,
        prefix: &str,
        timeout: f64,
    ) -> PyResult<Vec<String>> {
        let m = self.shared.get(py)?;
        let t = wait::seconds("timeout", timeout)?;
        let prefix = intern(prefix);
        let line = line.to_string();
        wait::call(py, "command", self.shared.session(&m), move || {
            m.command(&line, prefix, t)
        })
    }

    /// The next modem-level event (``cmqtt.Event``), waiting up to ``timeout`` seconds
    /// (None: as long as the session lives). Returns None on timeout. Events go to
    /// ``on_event``/``on_no_network`` instead while either is set.
    #[pyo3(signature = (timeout = None))]
    fn recv_event(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Event>> {
        let m = self.shared.get(py)?;
        let t = timeout.map(|t| wait::seconds("timeout", t)).transpose()?;
        // The core cannot cut this wait short: slices (see wait::Wake::Never).
        let shared = &self.shared;
        let got = wait::poll(
            py,
            t,
            Wake::Never,
            |limit| m.recv_event(limit),
            || m.closed_reason().is_some() || shared.modem.read().is_none(),
        );
        py.detach(move || drop(m));
        let got = got?;
        got.map(|e| Event::from_core(py, &e)).transpose()
    }

    /// Called as ``on_no_network()`` on the library's dispatch thread when the network is gone
    /// (``+CMQTTNONET``, SIM7672X): the MQTT service must be started again. None to remove.
    #[getter]
    fn get_on_no_network(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.shared
            .hooks
            .lock()
            .on_no_network
            .as_ref()
            .map(|c| c.clone_ref(py))
    }

    #[setter]
    fn set_on_no_network(&self, py: Python<'_>, cb: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let cb = util::callback("on_no_network", cb)?;
        let old = std::mem::replace(&mut self.shared.hooks.lock().on_no_network, cb);
        drop(old);
        self.install_event_hook(py)
    }

    /// Called as ``on_event(event)`` (a ``cmqtt.Event``) on the dispatch thread for every
    /// modem-level event instead of queueing it for ``recv_event``. None to remove.
    #[getter]
    fn get_on_event(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.shared
            .hooks
            .lock()
            .on_event
            .as_ref()
            .map(|c| c.clone_ref(py))
    }

    #[setter]
    fn set_on_event(&self, py: Python<'_>, cb: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let cb = util::callback("on_event", cb)?;
        let old = std::mem::replace(&mut self.shared.hooks.lock().on_event, cb);
        drop(old);
        self.install_event_hook(py)
    }

    /// Events dropped because the event queue was full.
    #[getter]
    fn dropped_events(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.shared.get(py)?.dropped_events())
    }

    /// ``(bytes_read, bytes_written)`` on the port so far.
    fn byte_counts(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        Ok(self.shared.get(py)?.byte_counts())
    }

    fn __repr__(&self) -> String {
        let state = if self.shared.modem.read().is_some() {
            ""
        } else {
            " closed"
        };
        format!(
            "<cmqtt.Modem port='{}' model='{}' firmware='{}'{state}>",
            self.shared.port,
            self.shared.profile.model.name(),
            self.shared.identity.firmware,
        )
    }
}

//! The exception hierarchy, made at import with `type(name, bases, dict)` so that the classes
//! can have several bases (`cmqtt.TimeoutError` is also the builtin `TimeoutError`, ...), and
//! the mapping from the core's `Error`.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

pub(crate) struct Exceptions {
    pub error: Py<PyType>,
    pub modem: Py<PyType>,
    pub connection_lost: Py<PyType>,
    pub timeout: Py<PyType>,
    pub serial: Py<PyType>,
    pub not_connected: Py<PyType>,
    pub closed: Py<PyType>,
    pub unsupported: Py<PyType>,
    pub protocol: Py<PyType>,
    pub delivery: Py<PyType>,
    pub outbox_full: Py<PyType>,
    pub stale_handle: Py<PyType>,
}

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

fn make(
    py: Python<'_>,
    name: &str,
    bases: Vec<Bound<'_, PyAny>>,
    doc: &str,
    code_default: bool,
) -> PyResult<Py<PyType>> {
    let dict = PyDict::new(py);
    dict.set_item("__module__", "cmqtt")?;
    dict.set_item("__doc__", doc)?;
    if code_default {
        dict.set_item("code", py.None())?;
    }
    let bases = PyTuple::new(py, bases)?;
    let t = py
        .import("builtins")?
        .getattr("type")?
        .call1((name, bases, dict))?;
    Ok(t.cast_into::<PyType>()?.unbind())
}

fn create(py: Python<'_>) -> PyResult<Exceptions> {
    let builtins = py.import("builtins")?;
    let b = |n: &str| builtins.getattr(n);
    let error = make(
        py,
        "Error",
        vec![b("Exception")?],
        "Base class of every cmqtt error.\n\n\
         Attributes:\n    code: the modem's numeric <err> code when the modem gave one \
         (e.g. 30 = connection refused: bad user name or password), else None.",
        true,
    )?;
    let e = error.bind(py).clone().into_any();
    let modem = make(
        py,
        "ModemError",
        vec![e.clone()],
        "The modem answered a command with a failure.\n\n\
         Attributes:\n    code: the <err> code (0..35 in the manual's table) or None for a bare \
         ERROR / +CME ERROR.\n    command: the AT command, e.g. 'AT+CMQTTCONNECT'.",
        false,
    )?;
    let connection_lost = make(
        py,
        "ConnectionLostError",
        vec![e.clone(), b("ConnectionError")?],
        "The broker connection was lost while the call was waiting (+CMQTTCONNLOST).\n\n\
         Attributes:\n    client: the client index.\n    cause: 1 socket closed passively, \
         2 socket reset, 3 network closed.",
        false,
    )?;
    let timeout = make(
        py,
        "TimeoutError",
        vec![e.clone(), b("TimeoutError")?],
        "No (complete) answer from the modem in time. Also a builtins.TimeoutError.\n\n\
         Attributes:\n    command: the AT command that was waiting.",
        false,
    )?;
    let serial = make(
        py,
        "SerialError",
        vec![e.clone(), b("OSError")?],
        "The serial port (or stream) could not be opened or failed. Also an OSError.",
        false,
    )?;
    let not_connected = make(
        py,
        "NotConnectedError",
        vec![e.clone()],
        "The client is not connected to a broker: call connect() first.",
        false,
    )?;
    let closed = make(
        py,
        "ClosedError",
        vec![e.clone()],
        "The modem session is closed (close() was called, the port went away, or the modem \
         restarted); open the modem again.",
        false,
    )?;
    let unsupported = make(
        py,
        "UnsupportedError",
        vec![e.clone()],
        "The modem model does not support this command or form.",
        false,
    )?;
    let protocol = make(
        py,
        "ProtocolError",
        vec![e.clone()],
        "The modem answered something cmqtt could not make sense of.",
        false,
    )?;
    let delivery = make(
        py,
        "DeliveryError",
        vec![e.clone()],
        "A supervised publish will never be delivered (Delivery.wait_delivered()).\n\n\
         Attributes:\n    id: the Delivery's id.\n    status: \"failed\" (the modem refused it \
         repeatedly, or a QoS 0 publish was cut off by a connection loss) or \"dropped\" \
         (dropped from a full outbox, when_full=\"drop_oldest\").\n    reason: why it failed, or \
         None.",
        false,
    )?;
    let stale_handle = make(
        py,
        "StaleHandleError",
        vec![e.clone(), b("ValueError")?],
        "The client handle is no longer valid: the modem restarted since it was acquired (every \
         MQTT state on the modem is gone), or it was released. Start the service and acquire \
         the client again. Also a ValueError (what it used to be).",
        false,
    )?;
    let outbox_full = make(
        py,
        "OutboxFullError",
        vec![e],
        "The Supervisor's outbox is full and when_full=\"error\": nothing was queued. Wait \
         for deliveries (flush()) or raise outbox_capacity.",
        false,
    )?;
    Ok(Exceptions {
        error,
        modem,
        connection_lost,
        timeout,
        serial,
        not_connected,
        closed,
        unsupported,
        protocol,
        delivery,
        outbox_full,
        stale_handle,
    })
}

pub(crate) fn exceptions(py: Python<'_>) -> PyResult<&Exceptions> {
    EXCEPTIONS.get_or_try_init(py, || create(py))
}

pub(crate) fn add_to_module(py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    let x = exceptions(py)?;
    for (name, t) in [
        ("Error", &x.error),
        ("ModemError", &x.modem),
        ("ConnectionLostError", &x.connection_lost),
        ("TimeoutError", &x.timeout),
        ("SerialError", &x.serial),
        ("NotConnectedError", &x.not_connected),
        ("ClosedError", &x.closed),
        ("UnsupportedError", &x.unsupported),
        ("ProtocolError", &x.protocol),
        ("DeliveryError", &x.delivery),
        ("OutboxFullError", &x.outbox_full),
        ("StaleHandleError", &x.stale_handle),
    ] {
        m.add(name, t.clone_ref(py))?;
    }
    Ok(())
}

/// An instance of `cls(message)` with attributes set, as a `PyErr`.
fn raise(py: Python<'_>, cls: &Py<PyType>, message: String, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    match cls.bind(py).call1((message,)) {
        Ok(inst) => {
            for (k, v) in attrs {
                if let Err(e) = inst.setattr(*k, v.clone_ref(py)) {
                    return e;
                }
            }
            PyErr::from_value(inst)
        }
        Err(e) => e,
    }
}

/// `cmqtt.ClosedError` for a handle that was closed or released here.
pub(crate) fn closed(py: Python<'_>, what: &str) -> PyErr {
    match exceptions(py) {
        Ok(x) => raise(py, &x.closed, what.to_string(), &[]),
        Err(e) => e,
    }
}

/// `cmqtt.DeliveryError` for ticket `id` that ended `status` ("failed" or "dropped").
pub(crate) fn delivery(py: Python<'_>, id: u64, status: &str, reason: Option<String>) -> PyErr {
    let x = match exceptions(py) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let message = match &reason {
        Some(r) => format!("publish {id} failed: {r}"),
        None => {
            format!("publish {id} was dropped from the full outbox (when_full=\"drop_oldest\")")
        }
    };
    let id = id.into_pyobject(py).map(|o| o.into_any().unbind());
    let status = status.into_pyobject(py).map(|o| o.into_any().unbind());
    let reason = reason
        .into_pyobject(py)
        .map(|o| o.into_any().unbind())
        .unwrap_or_else(|_| py.None());
    let (Ok(id), Ok(status)) = (id, status);
    raise(
        py,
        &x.delivery,
        message,
        &[("id", id), ("status", status), ("reason", reason)],
    )
}

/// Maps a core error to the Python exception the module documents.
pub(crate) fn to_py(py: Python<'_>, e: cmqtt::Error) -> PyErr {
    let x = match exceptions(py) {
        Ok(x) => x,
        Err(err) => return err,
    };
    let msg = e.to_string();
    let none = || py.None();
    let int = |v: u64| {
        v.into_pyobject(py)
            .map(|o| o.into_any().unbind())
            .unwrap_or_else(|_| py.None())
    };
    let text = |s: &str| {
        s.into_pyobject(py)
            .map(|o| o.into_any().unbind())
            .unwrap_or_else(|_| py.None())
    };
    match &e {
        // The core's "the modem restarted since client N was acquired" / "client N was
        // released": a handle that is gone, not a bad argument.
        cmqtt::Error::InvalidArgument {
            param: "client", ..
        } => raise(py, &x.stale_handle, msg, &[]),
        cmqtt::Error::InvalidArgument { .. } => PyValueError::new_err(msg),
        cmqtt::Error::Modem { command, failure } => {
            let code = failure.code().map(|c| int(c as u64)).unwrap_or_else(none);
            raise(
                py,
                &x.modem,
                msg,
                &[("code", code), ("command", text(command))],
            )
        }
        cmqtt::Error::Timeout { command, .. } => {
            raise(py, &x.timeout, msg, &[("command", text(command))])
        }
        cmqtt::Error::Protocol { command, .. } => {
            raise(py, &x.protocol, msg, &[("command", text(command))])
        }
        cmqtt::Error::Io(io) => {
            let errno = io
                .raw_os_error()
                .map(|n| int(n as u64))
                .unwrap_or_else(none);
            raise(py, &x.serial, msg, &[("errno", errno)])
        }
        cmqtt::Error::Serial { .. } => raise(py, &x.serial, msg, &[]),
        cmqtt::Error::Closed(_) => raise(py, &x.closed, msg, &[]),
        cmqtt::Error::NotConnected { client } => raise(
            py,
            &x.not_connected,
            msg,
            &[("client", int(*client as u64))],
        ),
        cmqtt::Error::ConnectionLost { client, cause } => raise(
            py,
            &x.connection_lost,
            msg,
            &[
                ("client", int(*client as u64)),
                ("cause", int(*cause as u64)),
            ],
        ),
        cmqtt::Error::Unsupported(_) => raise(py, &x.unsupported, msg, &[]),
        cmqtt::Error::OutboxFull { .. } => raise(py, &x.outbox_full, msg, &[]),
        cmqtt::Error::DeliveryFailed { id, status, reason } => {
            let reason = (*status != "dropped").then(|| reason.clone());
            delivery(py, *id, status, reason)
        }
        _ => raise(py, &x.error, msg, &[]),
    }
}

/// For failures of this adapter itself (a worker thread that could not start, ...).
pub(crate) fn internal(what: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(format!("cmqtt: {what}"))
}

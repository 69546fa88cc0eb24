//! `cmqtt.Message` and `cmqtt.Event`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::util;

/// A message received from the broker.
///
/// Attributes:
///     topic (str): the topic; bytes that are not UTF-8 are kept as surrogates
///         (``errors="surrogateescape"``), so ``topic.encode("utf-8", "surrogateescape")``
///         gives the exact bytes back (or use ``topic_bytes``).
///     topic_bytes (bytes): the topic, byte for byte.
///     payload (bytes): the payload, byte for byte (any byte, CR/LF and NUL included).
///     client (int): the client index (0 or 1) that received it.
#[pyclass(module = "cmqtt", frozen)]
pub struct Message {
    #[pyo3(get)]
    topic: Py<PyString>,
    #[pyo3(get)]
    topic_bytes: Py<PyBytes>,
    #[pyo3(get)]
    payload: Py<PyBytes>,
    #[pyo3(get)]
    client: u8,
}

fn decode_topic<'py>(py: Python<'py>, raw: &Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyString>> {
    match std::str::from_utf8(raw.as_bytes()) {
        Ok(s) => Ok(PyString::new(py, s)),
        Err(_) => Ok(raw
            .call_method1("decode", ("utf-8", "surrogateescape"))?
            .cast_into::<PyString>()?),
    }
}

impl Message {
    pub(crate) fn from_core(py: Python<'_>, m: &cmqtt::Message) -> PyResult<Message> {
        let topic_bytes = PyBytes::new(py, &m.topic);
        let topic = decode_topic(py, &topic_bytes)?;
        Ok(Message {
            topic: topic.unbind(),
            topic_bytes: topic_bytes.unbind(),
            payload: PyBytes::new(py, &m.payload).unbind(),
            client: m.client,
        })
    }
}

#[pymethods]
impl Message {
    /// Message(topic, payload, client=0): build one yourself (tests, queues of your own).
    #[new]
    #[pyo3(signature = (topic, payload, client = 0))]
    fn new(
        py: Python<'_>,
        topic: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
        client: i64,
    ) -> PyResult<Self> {
        let t = util::topic("topic", topic)?;
        let p = util::bytes_or_str("payload", payload)?;
        let client = util::arg_u8("client", client, "0..=1")?;
        Message::from_core(
            py,
            &cmqtt::Message {
                client,
                topic: t,
                payload: p,
            },
        )
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let topic = self.topic.bind(py).repr()?.to_string();
        let payload = self.payload.bind(py);
        let n = payload.as_bytes().len();
        let shown = if n <= 64 {
            payload.repr()?.to_string()
        } else {
            let head = PyBytes::new(py, &payload.as_bytes()[..48]);
            format!("{}... ({n} bytes)", head.repr()?)
        };
        Ok(format!(
            "Message(client={}, topic={topic}, payload={shown})",
            self.client
        ))
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> bool {
        let Ok(o) = other.cast::<Message>() else {
            return false;
        };
        let o = o.get();
        self.client == o.client
            && self.topic_bytes.bind(py).as_bytes() == o.topic_bytes.bind(py).as_bytes()
            && self.payload.bind(py).as_bytes() == o.payload.bind(py).as_bytes()
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        (
            self.client,
            self.topic_bytes.clone_ref(py),
            self.payload.clone_ref(py),
        )
            .into_pyobject(py)?
            .hash()
    }
}

/// A modem-level event (what the modem said on its own, other than messages).
///
/// Attributes:
///     kind (str): one of "connection_lost", "no_network", "ping_failed", "modem_restarted",
///         "boot", "unsolicited", "malformed", "overflow", "message".
///     client (int | None): the client index ("connection_lost", "ping_failed").
///     cause (int | None): +CMQTTCONNLOST's cause: 1 socket closed passively, 2 socket reset,
///         3 network closed.
///     code (int | None): the error code of "ping_failed".
///     text (str | None): the line ("boot", "unsolicited") or what was lost ("malformed").
///     queue (str | None), dropped (int | None): which queue overflowed and how many items it
///         has dropped so far ("overflow").
///     message (Message | None): for "message".
#[pyclass(module = "cmqtt", frozen, get_all)]
pub struct Event {
    kind: &'static str,
    client: Option<u8>,
    cause: Option<u8>,
    code: Option<u32>,
    text: Option<String>,
    queue: Option<&'static str>,
    dropped: Option<u64>,
    message: Option<Py<Message>>,
}

impl Event {
    fn empty(kind: &'static str) -> Event {
        Event {
            kind,
            client: None,
            cause: None,
            code: None,
            text: None,
            queue: None,
            dropped: None,
            message: None,
        }
    }

    pub(crate) fn from_core(py: Python<'_>, e: &cmqtt::Event) -> PyResult<Event> {
        use cmqtt::Event as E;
        Ok(match e {
            E::Message(m) => Event {
                client: Some(m.client),
                message: Some(Py::new(py, Message::from_core(py, m)?)?),
                ..Event::empty("message")
            },
            E::ConnectionLost { client, cause } => Event {
                client: Some(*client),
                cause: Some(*cause),
                ..Event::empty("connection_lost")
            },
            E::NoNetwork => Event::empty("no_network"),
            E::PingFailed { client, code } => Event {
                client: Some(*client),
                code: Some(*code),
                ..Event::empty("ping_failed")
            },
            E::ModemRestarted => Event::empty("modem_restarted"),
            E::Boot(s) => Event {
                text: Some(s.clone()),
                ..Event::empty("boot")
            },
            E::Unsolicited(s) => Event {
                text: Some(s.clone()),
                ..Event::empty("unsolicited")
            },
            E::Malformed(s) => Event {
                text: Some(s.clone()),
                ..Event::empty("malformed")
            },
            E::Overflow { queue, dropped } => Event {
                queue: Some(queue),
                dropped: Some(*dropped),
                ..Event::empty("overflow")
            },
            other => Event {
                text: Some(format!("{other:?}")),
                ..Event::empty("unsolicited")
            },
        })
    }
}

#[pymethods]
impl Event {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut parts = vec![format!("kind={:?}", self.kind)];
        if let Some(c) = self.client {
            parts.push(format!("client={c}"));
        }
        if let Some(c) = self.cause {
            parts.push(format!("cause={c}"));
        }
        if let Some(c) = self.code {
            parts.push(format!("code={c}"));
        }
        if let Some(t) = &self.text {
            parts.push(format!("text={t:?}"));
        }
        if let Some(q) = self.queue {
            parts.push(format!("queue={q:?}"));
        }
        if let Some(d) = self.dropped {
            parts.push(format!("dropped={d}"));
        }
        if let Some(m) = &self.message {
            parts.push(format!("message={}", m.bind(py).repr()?));
        }
        Ok(format!("Event({})", parts.join(", ")))
    }
}

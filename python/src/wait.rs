//! Waiting on the modem without holding the GIL, and without becoming deaf to Ctrl-C.
//!
//! A core call that can block (an AT transaction, a publish waiting for the broker's PUBACK, a
//! connect waiting for CONNACK) runs on a short-lived worker thread. The calling thread
//! releases the GIL and waits for the worker's answer in slices of [`SLICE`]; between two
//! slices it re-attaches and runs `PyErr_CheckSignals`, so a pending `KeyboardInterrupt` (or
//! any exception raised by a Python signal handler) is raised at once in the caller.
//!
//! An interrupted call is *not* cancelled: the modem is in the middle of an AT transaction that
//! cannot be taken back, so the worker finishes it (the core's own timeouts bound how long) and
//! logs the outcome on the `cmqtt` logger. Later calls on the same client wait for it, because
//! the core serialises them. For `publish` that means: a message whose publish was interrupted
//! may still be delivered.

use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::errors;
use crate::pylog;

/// How long the GIL stays released between two signal checks.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// Runs `f` on a worker thread, waiting for it with the GIL released and signals checked every
/// [`SLICE`]. `what` names the call in logs ("publish", "connect", ...).
pub(crate) fn blocking<T, F>(py: Python<'_>, what: &'static str, f: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> cmqtt::Result<T> + Send + 'static,
{
    let (tx, rx) = sync_channel::<cmqtt::Result<T>>(1);
    std::thread::Builder::new()
        .name(format!("cmqtt-{what}"))
        .spawn(move || {
            let r = f();
            if let Err(std::sync::mpsc::SendError(r)) = tx.send(r) {
                // The caller was interrupted and is gone: say how the call ended.
                let outcome = match &r {
                    Ok(_) => "succeeded".to_string(),
                    Err(e) => format!("failed: {e}"),
                };
                pylog::log_detached(
                    pylog::WARNING,
                    &format!("cmqtt: {what} (interrupted in Python) finished in the background: {outcome}"),
                );
            }
        })
        .map_err(|e| errors::internal(format!("cannot start a worker thread for {what}: {e}")))?;
    let mut rx = rx;
    loop {
        let (back, r) = py.detach(move || {
            let r = rx.recv_timeout(SLICE);
            (rx, r)
        });
        rx = back;
        match r {
            Ok(result) => return result.map_err(|e| errors::to_py(py, e)),
            Err(RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(errors::internal(format!(
                    "the worker thread of {what} panicked"
                )))
            }
        }
    }
}

/// Polls `step(slice)` (run with the GIL released) until it yields something, `deadline`
/// passes, or `done()` says waiting is pointless; checks signals between slices.
pub(crate) fn poll<T, S, D>(
    py: Python<'_>,
    timeout: Option<Duration>,
    step: S,
    done: D,
) -> PyResult<Option<T>>
where
    T: Send,
    S: Fn(Duration) -> Option<T> + Sync,
    D: Fn() -> bool + Sync,
{
    // Saturated: a timeout beyond what the clock can hold (1e18 s) is no deadline.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let slice = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
            None => SLICE,
        };
        if let Some(v) = py.detach(|| step(slice)) {
            return Ok(Some(v));
        }
        if done() {
            return Ok(None);
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                return Ok(None);
            }
        }
        py.check_signals()?;
    }
}

/// Seconds (int or float) as a `Duration`; `name` is the parameter, for the error message.
pub(crate) fn seconds(name: &str, secs: f64) -> PyResult<Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "invalid argument {name}: must be a finite number of seconds >= 0, got {secs}"
        )));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| {
        pyo3::exceptions::PyValueError::new_err(format!("invalid argument {name}: {e}"))
    })
}

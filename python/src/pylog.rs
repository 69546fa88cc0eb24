//! Python `logging` integration: the logger `cmqtt` gets the AT trace (DEBUG), the core's own
//! warnings (through the `log` crate), exceptions raised by callbacks (ERROR, with traceback)
//! and the outcome of calls that were interrupted by a signal.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

pub(crate) const DEBUG: i32 = 10;
pub(crate) const INFO: i32 = 20;
pub(crate) const WARNING: i32 = 30;
pub(crate) const ERROR: i32 = 40;

static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `logging.getLogger("cmqtt")`, looked up once.
pub(crate) fn logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    LOGGER
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(
                py.import("logging")?
                    .call_method1("getLogger", ("cmqtt",))?
                    .unbind(),
            )
        })
        .map(|l| l.bind(py))
}

/// Logs `message` at `level` (attached).
pub(crate) fn log(py: Python<'_>, level: i32, message: &str) {
    if let Ok(l) = logger(py) {
        let _ = l.call_method1("log", (level, "%s", message));
    }
}

/// Logs from any thread; does nothing once the interpreter is finalizing.
pub(crate) fn log_detached(level: i32, message: &str) {
    let _ = Python::try_attach(|py| log(py, level, message));
}

/// `__exit__` of a `with` block whose body raised: an error of the clean-up (`what`) must not
/// replace the body's exception. Returns the error to raise: none (it was logged as a warning
/// on the `cmqtt` logger) unless it is a `KeyboardInterrupt`/`SystemExit`, which still stops
/// the program. When the body did not raise, the clean-up's error is raised as usual.
pub(crate) fn exit_error(
    py: Python<'_>,
    what: &str,
    exit_args: &Bound<'_, PyTuple>,
    result: PyResult<()>,
) -> PyResult<bool> {
    let Err(err) = result else {
        return Ok(false);
    };
    let body_raised = exit_args.get_item(0).map(|t| !t.is_none()).unwrap_or(false);
    if !body_raised || !err.is_instance_of::<pyo3::exceptions::PyException>(py) {
        return Err(err);
    }
    log(
        py,
        WARNING,
        &format!(
            "cmqtt: {what} failed while leaving a `with` block that raised (the block's \
             exception goes on): {}",
            err.value(py)
        ),
    );
    Ok(false)
}

/// Logs an exception raised by a user callback, with its traceback: it is not lost, and the
/// dispatch thread goes on delivering.
pub(crate) fn callback_error(py: Python<'_>, which: &str, err: PyErr) {
    let Ok(l) = logger(py) else {
        err.print(py);
        return;
    };
    let exc_info = PyTuple::new(
        py,
        [
            err.get_type(py).into_any(),
            err.value(py).clone().into_any(),
            err.traceback(py)
                .map(|t| t.into_any())
                .unwrap_or_else(|| py.None().into_bound(py)),
        ],
    );
    let kwargs = PyDict::new(py);
    let logged = exc_info
        .and_then(|t| kwargs.set_item("exc_info", t))
        .and_then(|()| {
            l.call_method(
                "error",
                (
                    "cmqtt: the %s callback raised an exception (delivery goes on)",
                    which,
                ),
                Some(&kwargs),
            )
        });
    if logged.is_err() {
        err.print(py);
    }
}

// ---- the AT trace ------------------------------------------------------------------------

static TRACE_ON: AtomicBool = AtomicBool::new(false);
/// When `TRACE_ON` was last refreshed, in ms since `EPOCH` (+1, so 0 means never).
static TRACE_CHECKED: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();
/// How long a looked-up `isEnabledFor(DEBUG)` answer is trusted.
const TRACE_RECHECK_MS: u64 = 1000;

fn now_ms() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

fn debug_enabled(py: Python<'_>) -> bool {
    logger(py)
        .and_then(|l| l.call_method1("isEnabledFor", (DEBUG,)))
        .and_then(|v| v.is_truthy())
        .unwrap_or(false)
}

/// Looks `isEnabledFor(DEBUG)` up now (at open).
pub(crate) fn refresh_trace(py: Python<'_>) {
    TRACE_ON.store(debug_enabled(py), Ordering::Relaxed);
    TRACE_CHECKED.store(now_ms(), Ordering::Relaxed);
}

/// Whether trace lines should go to the logger: the logger's answer is cached for a second,
/// so a disabled trace costs two atomic loads per line and one GIL acquisition per second.
fn trace_enabled() -> bool {
    let now = now_ms();
    let last = TRACE_CHECKED.load(Ordering::Relaxed);
    if last == 0 || now.saturating_sub(last) >= TRACE_RECHECK_MS {
        TRACE_CHECKED.store(now, Ordering::Relaxed);
        if let Some(on) = Python::try_attach(debug_enabled) {
            TRACE_ON.store(on, Ordering::Relaxed);
        }
    }
    TRACE_ON.load(Ordering::Relaxed)
}

/// The core's trace hook: `logging.getLogger("cmqtt").debug(">> AT+CMQTTSTART")`. Called on the
/// core's reader thread and on worker threads, never with the GIL held by the caller.
pub(crate) fn trace_line(dir: cmqtt::Direction, line: &str) {
    if !trace_enabled() {
        return;
    }
    let _ = Python::try_attach(|py| {
        if let Ok(l) = logger(py) {
            let _ = l.call_method1("debug", ("%s %s", dir.arrow(), line));
        }
    });
}

// ---- the core's `log` records --------------------------------------------------------------

struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
            && m.target().starts_with("cmqtt")
            && m.target() != "cmqtt::at"
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = match r.level() {
            log::Level::Error => ERROR,
            log::Level::Warn => WARNING,
            log::Level::Info => INFO,
            _ => DEBUG,
        };
        log_detached(level, &r.args().to_string());
    }

    fn flush(&self) {}
}

static BRIDGE: Bridge = Bridge;

/// Forwards the core's `log` records (queue overflows, unknown models, ...) to the `cmqtt`
/// logger, unless the process already has a `log` logger (another extension may own it).
pub(crate) fn install(py: Python<'_>) -> PyResult<()> {
    if log::set_logger(&BRIDGE).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    logger(py)?;
    Ok(())
}

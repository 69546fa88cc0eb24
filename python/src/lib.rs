//! `cmqtt._cmqtt`: the native half of the Python module `cmqtt`.
//!
//! A thin adapter over the `cmqtt` crate: every AT command, check and parser lives in the core;
//! this crate only converts arguments and results, maps errors to Python exceptions, releases
//! the GIL while the core waits on the modem, and runs Python callbacks on the core's dispatch
//! thread.
//!
//! GIL discipline (what keeps this deadlock-free): no core method that can block, take a
//! session lock or run AT commands is called while this thread is attached to the interpreter;
//! such calls run inside `Python::detach` (or on a worker thread, see [`wait`]). Hooks the core
//! calls on its own threads (trace, callbacks, `log` records) attach with `Python::try_attach`,
//! holding no lock of ours, and do nothing once the interpreter is finalizing.

use pyo3::prelude::*;

mod client;
mod errors;
mod message;
mod modem;
mod pylog;
mod supervisor;
mod util;
mod wait;

/// Native part of the `cmqtt` package: import `cmqtt`, not this module.
#[pymodule(name = "_cmqtt")]
mod cmqtt_native {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::client::{Client, MessageIterator};
    #[pymodule_export]
    use crate::message::{Event, Message};
    #[pymodule_export]
    use crate::modem::Modem;
    #[pymodule_export]
    use crate::supervisor::{Delivery, Supervisor, SupervisorEvent, SupervisorMessageIterator};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        let py = m.py();
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("core_version", cmqtt::VERSION)?;
        crate::errors::add_to_module(py, m)?;
        crate::pylog::install(py)?;
        Ok(())
    }
}

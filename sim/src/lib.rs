//! `cmqtt-sim`: an emulator of the MQTT client built into SIMCom LTE modems
//! (A7600/A76xx, SIM7600, SIM7672X/SIM7652X).
//!
//! The emulator speaks the `AT+CMQTT*` command set (plus the TLS set-up
//! commands `AT+CSSLCFG`, `AT+CCERTDOWN`, `AT+CCERTLIST`, `AT+CCERTDELE` and a
//! few basic commands) over a pseudo terminal or a TCP socket, and drives a
//! **real** MQTT connection (plain TCP or TLS) to the broker named in
//! `AT+CMQTTCONNECT`. It is an independent implementation of the vendor
//! documents in `shared/spec/` plus the field notes on how real modems behave.
//!
//! ```no_run
//! use cmqtt_sim::{Model, SimConfig, Simulator};
//! let sim = Simulator::start_pty(SimConfig::new(Model::A7600)).unwrap();
//! println!("open {}", sim.device());
//! // ... drive it with AT commands ...
//! sim.shutdown();
//! ```
//!
//! See `sim/README.md` for the fault API, the error-code table and the known
//! differences from real modems.

#![warn(missing_docs)]

mod at;
mod cli;
mod codes;
mod engine;
mod faults;
mod fuzz;
mod mqtt;
mod output;
mod profile;
mod pty;
mod state;
mod tcp;
mod tls;
mod wire;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

pub use cli::{run_cli, SimArgs};
pub use faults::{Faults, SimStats};
#[doc(hidden)]
pub use fuzz::fuzz_feed;

use engine::{Engine, Inbox};
use faults::Shared;
use output::Output;

/// Which modem family to emulate. Each is a profile (a table of differences),
/// not a fork of the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// A7600 series (A7670, A7608, ...): the "A7600 Series MQTT AT Command Manual".
    A7600,
    /// SIM7600 series: same firmware lineage as A7600, with the result line
    /// before `OK`, blank lines between received-message URCs and the MQTT
    /// version as 4th argument of `AT+CMQTTACCQ`.
    Sim7600,
    /// SIM7672X / SIM7652X: the "SIM7672X & SIM7652X MQTT(S) Application Note".
    Sim7672x,
}

impl Model {
    /// All models, in a stable order.
    pub const ALL: [Model; 3] = [Model::A7600, Model::Sim7600, Model::Sim7672x];

    /// The lower-case name accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Model::A7600 => "a7600",
            Model::Sim7600 => "sim7600",
            Model::Sim7672x => "sim7672x",
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error of [`Model::from_str`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownModel(pub String);

impl fmt::Display for UnknownModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown modem model {:?} (expected a7600, sim7600 or sim7672x)",
            self.0
        )
    }
}

impl std::error::Error for UnknownModel {}

impl FromStr for Model {
    type Err = UnknownModel;
    fn from_str(s: &str) -> Result<Model, UnknownModel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "a7600" | "a76xx" | "a7670" | "a7608" => Ok(Model::A7600),
            "sim7600" => Ok(Model::Sim7600),
            "sim7672x" | "sim7672" | "sim7652x" | "sim7670" => Ok(Model::Sim7672x),
            _ => Err(UnknownModel(s.to_string())),
        }
    }
}

/// Where the result line of an asynchronous command goes relative to the
/// final `OK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultOrder {
    /// `OK` first, then `+CMQTTxxx: <idx>,<err>` (A76xx, SIM7672X).
    OkFirst,
    /// `+CMQTTxxx: <idx>,<err>` first, then `OK` (or `ERROR` when `<err>` is
    /// not 0) (SIM7600).
    ResultFirst,
}

/// Configuration of one emulated modem.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The modem family.
    pub model: Model,
    /// Initial `ATE` state. Real modems boot with echo on (default `true`).
    pub echo: bool,
    /// Received payloads (and topics) are reported in `+CMQTTRXPAYLOAD`
    /// chunks of at most this many bytes (default 1500, like A76xx firmware).
    pub rx_chunk: usize,
    /// Pace bytes in both directions at 10 bits per byte at this baud rate;
    /// `None` = unthrottled (default).
    pub baud: Option<u32>,
    /// Print the boot banner (`RDY`, `+CPIN: READY`, `SMS DONE`, `PB DONE`) at
    /// start and after a reset (default `true`). After a reset `RDY` is always
    /// printed.
    pub boot_banner: bool,
    /// Override the model's result order (tests use it to exercise both).
    pub result_order: Option<ResultOrder>,
    /// How long the modem waits for the bytes announced by a `>` prompt
    /// before it gives up and answers `ERROR` (default 5 s).
    pub data_timeout: Duration,
    /// Override whether `AT+CMQTTSUBTOPIC`/`AT+CMQTTUNSUBTOPIC` exist (some
    /// SIM7670G firmware answers `ERROR` to them). `None` = the profile's
    /// default (supported on every model).
    pub subtopic_supported: Option<bool>,
}

impl SimConfig {
    /// The defaults for `model`.
    pub fn new(model: Model) -> SimConfig {
        SimConfig {
            model,
            echo: true,
            rx_chunk: 1500,
            baud: None,
            boot_banner: true,
            result_order: None,
            data_timeout: Duration::from_secs(5),
            subtopic_supported: None,
        }
    }
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig::new(Model::A7600)
    }
}

/// A running emulated modem. Dropping it (or [`Simulator::shutdown`]) stops
/// its threads, closes its MQTT connections and removes the symlink made by
/// [`Simulator::start_pty_link`].
pub struct Simulator {
    device: String,
    pty: Option<Arc<pty::PtyPort>>,
    port_ctl: Option<Arc<faults::PortCtl>>,
    faults: Faults,
    link: Option<PathBuf>,
    inbox: mpsc::Sender<Inbox>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("device", &self.device)
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Starts a modem on a new pseudo terminal. [`Simulator::device`] is the
    /// slave path (e.g. `/dev/pts/7`) that a host opens like a serial port.
    pub fn start_pty(cfg: SimConfig) -> io::Result<Simulator> {
        let port = pty::PtyPort::open()?;
        let device = port.slave_path();
        Simulator::start(cfg, device, None, Transport::Pty(port))
    }

    /// Like [`Simulator::start_pty`], and also creates the symlink `link`
    /// pointing to the slave path (an existing symlink there is replaced).
    pub fn start_pty_link(cfg: SimConfig, link: &Path) -> io::Result<Simulator> {
        let port = pty::PtyPort::open()?;
        let device = port.slave_path();
        if let Ok(meta) = std::fs::symlink_metadata(link) {
            if meta.file_type().is_symlink() {
                std::fs::remove_file(link)?;
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a symlink", link.display()),
                ));
            }
        }
        std::os::unix::fs::symlink(&device, link)?;
        Simulator::start(cfg, device, Some(link.to_path_buf()), Transport::Pty(port))
    }

    /// Starts a modem that serves its AT interface on a TCP listener at
    /// `addr` (port 0 = pick one), one client at a time.
    /// [`Simulator::device`] is `"IP:PORT"`.
    pub fn start_tcp(cfg: SimConfig, addr: SocketAddr) -> io::Result<Simulator> {
        let listener = std::net::TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        Simulator::start(cfg, local.to_string(), None, Transport::Tcp(listener))
    }

    fn start(
        cfg: SimConfig,
        device: String,
        link: Option<PathBuf>,
        transport: Transport,
    ) -> io::Result<Simulator> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cmqtt-sim-net")
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared::new(cfg.baud));
        let stop = Arc::new(AtomicBool::new(false));
        let (inbox_tx, inbox_rx) = mpsc::channel::<Inbox>();
        let mut threads = Vec::new();

        let mut pty = None;
        let (sink, reader): (Box<dyn output::Sink>, Box<dyn FnOnce() + Send>) = match transport {
            Transport::Pty(port) => {
                let sink = port.sink();
                let reader = port.reader(inbox_tx.clone(), shared.clone(), stop.clone());
                pty = Some(port);
                (Box::new(sink), Box::new(reader))
            }
            Transport::Tcp(listener) => {
                let (sink, reader) =
                    tcp::TcpPort::new(listener, inbox_tx.clone(), shared.clone(), stop.clone())?;
                (Box::new(sink), Box::new(reader))
            }
        };
        let (out, writer) = Output::new(sink, shared.clone(), stop.clone());
        threads.push(spawn_named("cmqtt-sim-tx", writer)?);
        threads.push(spawn_named("cmqtt-sim-rx", reader)?);

        let port_ctl = pty
            .as_ref()
            .map(|p| Arc::new(faults::PortCtl::new(p.clone(), link.clone(), stop.clone())));
        let faults = Faults::new(
            shared.clone(),
            inbox_tx.clone(),
            out.clone(),
            port_ctl.clone(),
        );
        let engine = Engine::new(
            &cfg,
            inbox_rx,
            inbox_tx.clone(),
            out,
            shared,
            runtime.handle().clone(),
        );
        threads.push(spawn_named("cmqtt-sim-at", move || engine.run())?);

        Ok(Simulator {
            device,
            pty,
            port_ctl,
            faults,
            link,
            inbox: inbox_tx,
            stop,
            threads,
            runtime: Some(runtime),
        })
    }

    /// The device a host opens: the pty slave path, or `"127.0.0.1:PORT"` for
    /// TCP. After [`Faults::vanish`] this is the new pty's path (the symlink
    /// of [`Simulator::start_pty_link`] stays the same).
    pub fn device(&self) -> String {
        match &self.pty {
            Some(p) => p.slave_path(),
            None => self.device.clone(),
        }
    }

    /// The symlink made by [`Simulator::start_pty_link`], if any.
    pub fn link(&self) -> Option<&Path> {
        self.link.as_deref()
    }

    /// A cloneable handle to inject faults and read counters.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// Counters (same as `self.faults().stats()`).
    pub fn stats(&self) -> SimStats {
        self.faults.stats()
    }

    /// Stops the modem: closes MQTT connections (abruptly, as a powered-off
    /// modem would), stops the threads and removes the symlink.
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.inbox.send(Inbox::Shutdown);
        if let Some(ctl) = self.port_ctl.take() {
            // Pending come-backs of a vanished port give up; the pty closes.
            ctl.shutdown();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(rt) = self.runtime.take() {
            // Blocking shutdown is not allowed inside an async context.
            if tokio::runtime::Handle::try_current().is_ok() {
                rt.shutdown_background();
            } else {
                rt.shutdown_timeout(Duration::from_millis(500));
            }
        }
        if let Some(link) = self.link.take() {
            let _ = std::fs::remove_file(link);
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop_all();
    }
}

enum Transport {
    Pty(Arc<pty::PtyPort>),
    Tcp(std::net::TcpListener),
}

fn spawn_named<F: FnOnce() + Send + 'static>(name: &str, f: F) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.to_string()).spawn(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        for m in Model::ALL {
            assert_eq!(m.name().parse::<Model>(), Ok(m));
            assert_eq!(m.to_string().to_uppercase().parse::<Model>(), Ok(m));
        }
        assert!("sim800".parse::<Model>().is_err());
    }

    #[test]
    fn cli_args_map_to_config() {
        let mut a = SimArgs::new(Model::Sim7600);
        let c = a.config();
        assert!(c.echo && c.boot_banner && c.baud.is_none() && c.rx_chunk == 1500);
        a.echo = Some(false);
        a.baud = Some(115_200);
        a.rx_chunk = Some(512);
        let c = a.config();
        assert!(!c.echo);
        assert_eq!(
            (c.baud, c.rx_chunk, c.model),
            (Some(115_200), 512, Model::Sim7600)
        );
    }
}

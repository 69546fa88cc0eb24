//! [`Simulator`]: a running modem, its threads and its port.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::SimConfig;
use crate::engine::Engine;
use crate::faults::{self, Faults, SimStats};
use crate::inbox::Inbox;
use crate::output::{self, Output};
use crate::pty;
use crate::shared::Shared;
use crate::tcp;

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

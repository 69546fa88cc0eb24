//! Entry point for `cmqtt sim` (the CLI crate parses the arguments).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Model, ResultOrder, SimConfig};
use crate::simulator::Simulator;

/// Arguments of `cmqtt sim --model a7600|sim7600|sim7672x [--link PATH]
/// [--tcp 127.0.0.1:PORT] [--echo] [--baud N] [--rx-chunk N]`.
#[derive(Debug, Clone)]
pub struct SimArgs {
    /// Modem family.
    pub model: Model,
    /// Also create this symlink to the pty slave (pty mode only).
    pub link: Option<PathBuf>,
    /// Serve the AT interface on this TCP address instead of a pty.
    pub tcp: Option<SocketAddr>,
    /// Initial echo state; `None` = like a real modem after boot (on).
    pub echo: Option<bool>,
    /// Pace both directions at this baud rate.
    pub baud: Option<u32>,
    /// Received-payload chunk size (default 1500).
    pub rx_chunk: Option<usize>,
    /// Override the model's result order.
    pub result_order: Option<ResultOrder>,
    /// Print the boot banner (`RDY`, ...) at start (default true).
    pub boot_banner: bool,
}

impl SimArgs {
    /// Defaults for `model`: a pty, echo on, 1500-byte chunks.
    pub fn new(model: Model) -> SimArgs {
        SimArgs {
            model,
            link: None,
            tcp: None,
            echo: None,
            baud: None,
            rx_chunk: None,
            result_order: None,
            boot_banner: true,
        }
    }

    /// The [`SimConfig`] these arguments describe.
    pub fn config(&self) -> SimConfig {
        let mut cfg = SimConfig::new(self.model);
        if let Some(e) = self.echo {
            cfg.echo = e;
        }
        cfg.baud = self.baud;
        if let Some(c) = self.rx_chunk {
            cfg.rx_chunk = c;
        }
        cfg.result_order = self.result_order;
        cfg.boot_banner = self.boot_banner;
        cfg
    }
}

/// Runs an emulated modem until SIGINT/SIGTERM. The first line on stdout is
/// `ready: <device>` (the `--link` path if given, else the pty slave path,
/// or `IP:PORT` with `--tcp`). Returns the process exit code.
pub fn run_cli(args: SimArgs) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("cmqtt sim: cannot install signal handler: {e}");
            return 1;
        }
    }
    let cfg = args.config();
    let started = match (&args.tcp, &args.link) {
        (Some(addr), _) => Simulator::start_tcp(cfg, *addr),
        (None, Some(link)) => Simulator::start_pty_link(cfg, link),
        (None, None) => Simulator::start_pty(cfg),
    };
    let sim = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cmqtt sim: cannot start: {e}");
            return 1;
        }
    };
    let shown = match (&args.tcp, sim.link()) {
        (None, Some(link)) => link.display().to_string(),
        _ => sim.device(),
    };
    {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "ready: {shown}")
            .and_then(|()| out.flush())
            .is_err()
        {
            // stdout closed: keep running anyway, the device is what matters.
        }
    }
    eprintln!(
        "cmqtt sim: emulating {} on {} (Ctrl-C to stop)",
        args.model,
        sim.device()
    );
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    sim.shutdown();
    0
}

#[cfg(test)]
mod tests {
    use super::*;

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

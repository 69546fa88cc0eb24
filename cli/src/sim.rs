//! `cmqtt sim`: run the modem emulator (crate cmqtt-sim) until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::common::ModelArg;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResultOrderArg {
    /// `OK`, then `+CMQTTxxx: <idx>,<err>` (A76xx, SIM7672X)
    OkFirst,
    /// `+CMQTTxxx: <idx>,<err>`, then `OK` (SIM7600)
    ResultFirst,
}

#[derive(Debug, Clone, Args)]
pub struct SimCmdArgs {
    /// Modem family to emulate.
    #[arg(long, value_enum, value_name = "MODEL", default_value = "a7600")]
    pub model: ModelArg,
    /// Also create this symlink to the pseudo-terminal (e.g. /tmp/ttySIM); removed at exit.
    #[arg(long, value_name = "PATH", conflicts_with = "tcp")]
    pub link: Option<PathBuf>,
    /// Serve the AT interface on this TCP address instead of a pseudo-terminal
    /// (port 0 picks a free one).
    #[arg(long, value_name = "IP:PORT")]
    pub tcp: Option<SocketAddr>,
    /// Start with echo on (what a real modem does after boot; the default).
    #[arg(long, conflicts_with = "no_echo")]
    pub echo: bool,
    /// Start with echo off.
    #[arg(long)]
    pub no_echo: bool,
    /// Pace the bytes like a UART at this baud rate (default: as fast as possible).
    #[arg(long, value_name = "N")]
    pub baud: Option<u32>,
    /// Report received payloads in chunks of at most N bytes (default 1500).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10240))]
    pub rx_chunk: Option<u64>,
    /// Override where the model puts the result line of asynchronous commands.
    #[arg(long, value_enum, value_name = "ORDER")]
    pub result_order: Option<ResultOrderArg>,
    /// Do not print the boot banner (RDY, +CPIN: READY, ...) at start.
    #[arg(long)]
    pub no_banner: bool,
}

/// Runs until SIGINT/SIGTERM; the first stdout line is `ready: <device>`. Returns the exit code.
pub fn run(a: SimCmdArgs, _trace: bool) -> i32 {
    let mut s = cmqtt_sim::SimArgs::new(a.model.to_sim());
    s.link = a.link;
    s.tcp = a.tcp;
    s.echo = if a.no_echo {
        Some(false)
    } else if a.echo {
        Some(true)
    } else {
        None
    };
    s.baud = a.baud;
    s.rx_chunk = a.rx_chunk.map(|n| n as usize);
    s.result_order = a.result_order.map(|o| match o {
        ResultOrderArg::OkFirst => cmqtt_sim::ResultOrder::OkFirst,
        ResultOrderArg::ResultFirst => cmqtt_sim::ResultOrder::ResultFirst,
    });
    s.boot_banner = !a.no_banner;
    cmqtt_sim::run_cli(s)
}

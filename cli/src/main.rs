//! `cmqtt`: publish, subscribe and inspect through the MQTT client built into SIMCom LTE
//! modems (A7600/A76xx, SIM7600, SIM7672X), with mosquitto_pub/mosquitto_sub habits; plus
//! `cmqtt demo` (no hardware: embedded broker + emulated modem) and `cmqtt sim` (the emulator).

mod common;
mod demo;
mod failure;
mod info;
mod interrupt;
mod ports;
mod publish;
mod sim;
mod subscribe;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::failure::{code, Failure, EXIT_CODES_HELP};

#[derive(Debug, Parser)]
#[command(
    name = "cmqtt",
    version,
    about = "MQTT through the modem's own MQTT client (SIMCom A76xx, SIM7600, SIM7672X), over AT commands",
    long_about = "MQTT through the MQTT client built into SIMCom LTE modems (A7600/A76xx, SIM7600, \
SIM7672X/SIM7652X), driven with AT+CMQTT* commands over a serial port. Options follow \
mosquitto_pub/mosquitto_sub where they can.\n\n\
Try it without hardware: `cmqtt demo` (an embedded broker and an emulated modem).\n\
Find the modem: `cmqtt ports`, then `cmqtt info --port /dev/ttyUSB2`.",
    after_long_help = EXIT_CODES_HELP,
    after_help = "See `cmqtt --help` for the exit codes."
)]
struct Cli {
    /// Print the AT exchange on stderr (`>> AT+CMQTTSTART`, `<< OK`); passwords are redacted.
    #[arg(long, global = true)]
    trace: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything end to end with no hardware: an embedded broker, an emulated modem on a
    /// pseudo-terminal, and the library publishing and receiving through it.
    Demo(demo::DemoArgs),
    /// Publish one message (like mosquitto_pub).
    #[command(after_long_help = EXIT_CODES_HELP)]
    Pub(publish::PubArgs),
    /// Subscribe and print messages, one per line (like mosquitto_sub).
    #[command(after_long_help = EXIT_CODES_HELP)]
    Sub(subscribe::SubArgs),
    /// Emulate a modem on a pseudo-terminal (or TCP) until Ctrl-C; prints `ready: <device>`.
    Sim(sim::SimCmdArgs),
    /// List serial ports; mark SIMCom modems and their likely AT interface.
    Ports,
    /// Show the modem's model, firmware, IMEI, signal, registration and MQTT state.
    #[command(after_long_help = EXIT_CODES_HELP)]
    Info(info::InfoArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::from(code::OK);
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Plain `cmqtt`: the help, as a usage error.
            let _ = e.print();
            return ExitCode::from(code::USAGE);
        }
        Err(e) => {
            // Other usage errors: one line too, exit 2.
            return report(&Failure::usage(one_line_usage(&e.render().to_string())));
        }
    };
    let trace = cli.trace;
    if !matches!(cli.command, Command::Sub(_)) {
        // `cmqtt info | head -1`: end quietly on a closed pipe like other Unix tools. `sub`
        // keeps SIGPIPE ignored: it sees the error, and disconnects and releases the client
        // before it exits.
        // SAFETY: setting a signal disposition before any other thread runs.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Demo(a) => demo::run(a, trace),
        Command::Pub(a) => publish::run(a, trace),
        Command::Sub(a) => subscribe::run(a, trace),
        Command::Sim(a) => {
            let rc = sim::run(a, trace);
            return ExitCode::from(u8::try_from(rc).unwrap_or(code::FAILURE));
        }
        Command::Ports => ports::run(),
        Command::Info(a) => info::run(a, trace),
    };
    match result {
        Ok(()) => ExitCode::from(code::OK),
        // Whatever the interrupted wait returned, the user asked to stop.
        Err(_) if interrupt::interrupted() => {
            report(&Failure::new(code::INTERRUPTED, "interrupted"))
        }
        Err(f) => report(&f),
    }
}

/// clap's multi-line usage error as one line: `error: ` and the usage block dropped, the
/// remaining lines joined, a pointer to --help added.
fn one_line_usage(rendered: &str) -> String {
    let body = rendered.split("\n\nUsage:").next().unwrap_or(rendered);
    let body = body
        .split("\n\nFor more information")
        .next()
        .unwrap_or(body);
    let text = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    format!("{text} (see --help)")
}

fn report(f: &Failure) -> ExitCode {
    let _ = std::io::stdout().flush();
    eprintln!("cmqtt: {}", f.message);
    ExitCode::from(f.code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_become_one_line() {
        let e = Cli::try_parse_from(["cmqtt", "pub", "-t", "x", "-m", "y"]).unwrap_err();
        let line = one_line_usage(&e.render().to_string());
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--port <DEV>"), "{line}");
        assert!(line.contains("--server <URL>"), "{line}");
        assert!(!line.starts_with("error:"), "{line}");
    }

    #[test]
    fn help_documents_the_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes:"), "{help}");
        assert!(help.contains("27"), "{help}");
    }
}

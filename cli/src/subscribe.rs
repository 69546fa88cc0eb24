//! `cmqtt sub`: print received messages, like mosquitto_sub.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;
use cmqtt::{ErrorKind, Event, Message};

use crate::common::{
    check_interrupted, install_signal_handlers, open_modem, BrokerArgs, MqttSession, PortArgs,
};
use crate::failure::{code, Failure};

#[derive(Debug, Clone, Args)]
pub struct SubArgs {
    #[command(flatten)]
    pub port: PortArgs,
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Topic filter to subscribe to (repeat for more; wildcards + and # allowed).
    #[arg(short = 't', long, value_name = "TOPIC", required = true)]
    pub topic: Vec<String>,
    /// QoS of the subscriptions: 0, 1 or 2.
    #[arg(short = 'q', long, value_name = "QOS", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Exit (0) after COUNT messages.
    #[arg(short = 'C', long, value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Give up after SECONDS (1..=4294967295), counted from the subscription; exits 27 (like
    /// mosquitto_sub).
    #[arg(short = 'W', long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=u64::from(u32::MAX)))]
    pub timeout: Option<u64>,
    /// Print the topic before the payload: `topic payload`.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// No newline after the payload (concatenate raw payloads).
    #[arg(short = 'N')]
    pub no_newline: bool,
}

/// How long one receive wait may last when there is no deadline: the wait ends anyway at a
/// message, a loss, the end of the session or a signal (the watcher interrupts it), so an idle
/// subscriber sleeps (no polling).
const IDLE_WAIT: Duration = Duration::from_secs(3600);

pub fn run(a: SubArgs, trace: bool) -> Result<(), Failure> {
    let plan = a
        .broker
        .plan(&format!("cmqtt-sub-{}", std::process::id()))?;
    let interrupted = install_signal_handlers();
    let modem = open_modem(&a.port, trace)?;
    check_interrupted(&interrupted)?;
    let session = MqttSession::connect(&modem, &a.broker, &plan, &interrupted)?;
    let client = session.client();
    let topics: Vec<(&[u8], u8)> = a.topic.iter().map(|t| (t.as_bytes(), a.qos)).collect();
    client
        .subscribe(&topics)
        .map_err(|e| Failure::cmqtt(format!("subscribing to {}", a.topic.join(", ")), e))?;

    // Saturated: a deadline beyond what the clock can hold is no deadline.
    let deadline = a
        .timeout
        .and_then(|s| Instant::now().checked_add(Duration::from_secs(s)));
    let mut received: u64 = 0;
    let mut out = std::io::stdout().lock();
    let outcome = loop {
        if let Some(n) = a.count {
            if received >= n {
                break Ok(());
            }
        }
        if interrupted.load(Ordering::SeqCst) {
            break Err(Failure::new(code::INTERRUPTED, "interrupted"));
        }
        let wait = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    break Err(timed_out(&a, received));
                }
                IDLE_WAIT.min(d - now)
            }
            None => IDLE_WAIT,
        };
        match client.next_message(wait) {
            Ok(Some(m)) => match print(&mut out, &m, &a) {
                Ok(()) => received += 1,
                // The reader went away (`| head -1`): stop quietly.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break Ok(()),
                Err(e) => break Err(Failure::other(format!("cannot write to stdout: {e}"))),
            },
            Ok(None) => {}
            Err(e) => {
                if interrupted.load(Ordering::SeqCst) {
                    break Err(Failure::new(code::INTERRUPTED, "interrupted"));
                }
                // The modem's own report says most: which loss, and why.
                if let Some(f) = lost(&session, a.broker.index) {
                    break Err(f);
                }
                break Err(match e.kind() {
                    ErrorKind::ConnectionLost | ErrorKind::NotConnected => Failure::new(
                        code::LOST,
                        format!("connection to {} lost: {e}", session.server),
                    ),
                    _ => Failure::cmqtt("receiving", e),
                });
            }
        }
    };
    drop(out);
    session.finish();
    outcome
}

fn print(out: &mut impl Write, m: &Message, a: &SubArgs) -> std::io::Result<()> {
    if a.verbose {
        out.write_all(&m.topic)?;
        out.write_all(b" ")?;
    }
    out.write_all(&m.payload)?;
    if !a.no_newline {
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn timed_out(a: &SubArgs, received: u64) -> Failure {
    let secs = a.timeout.unwrap_or(0);
    let what = match a.count {
        Some(n) => format!("{received} of {n} messages"),
        None => format!("{received} messages"),
    };
    Failure::new(
        code::TIMEOUT,
        format!("timed out after {secs} s waiting for messages ({what} received)"),
    )
}

/// Whether the connection (or the modem) is gone, from the modem-level events.
fn lost(session: &MqttSession, index: u8) -> Option<Failure> {
    while let Some(ev) = session.modem.recv_event(Duration::ZERO) {
        match ev {
            Event::ConnectionLost { client, cause } if client == index => {
                let why = match cause {
                    1 => "the socket was closed by the broker",
                    2 => "the socket was reset",
                    3 => "the network was closed",
                    _ => "unknown cause",
                };
                return Some(Failure::new(
                    code::LOST,
                    format!(
                        "connection to {} lost (+CMQTTCONNLOST cause {cause}: {why})",
                        session.server
                    ),
                ));
            }
            Event::ModemRestarted => {
                return Some(Failure::new(
                    code::LOST,
                    "the modem restarted (RDY); its MQTT connection is gone",
                ))
            }
            Event::NoNetwork => {
                return Some(Failure::new(
                    code::LOST,
                    "the modem lost the network (+CMQTTNONET)",
                ))
            }
            _ => {}
        }
    }
    if let Some(reason) = session.modem.closed_reason() {
        return Some(Failure::new(
            code::NO_ANSWER,
            format!("the modem session closed: {reason}"),
        ));
    }
    None
}

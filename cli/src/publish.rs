//! `cmqtt pub`: one message, like mosquitto_pub.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args};

use crate::common::{
    check_interrupted, install_signal_handlers, open_modem, read_bounded, read_file_bounded,
    BrokerArgs, ModelArg, MqttSession, PortArgs,
};
use crate::failure::Failure;

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("payload_source").required(true).args(["message", "file", "stdin_message", "null_message"])))]
pub struct PubArgs {
    #[command(flatten)]
    pub port: PortArgs,
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Topic to publish to.
    #[arg(short = 't', long, value_name = "TOPIC")]
    pub topic: String,
    /// The message, as given.
    #[arg(short = 'm', long, value_name = "MSG")]
    pub message: Option<String>,
    /// Send the whole file as the message (binary-safe).
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Send all of stdin as the message (binary-safe).
    #[arg(short = 's', long = "stdin-file")]
    pub stdin_message: bool,
    /// Send an empty (zero-length) message.
    #[arg(short = 'n', long = "null-message")]
    pub null_message: bool,
    /// QoS 0, 1 or 2.
    #[arg(short = 'q', long, value_name = "QOS", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Ask the broker to retain the message.
    #[arg(short = 'r', long)]
    pub retain: bool,
    /// The modem's publish timeout in seconds (60..180): how long it waits for the broker's
    /// acknowledgement at QoS 1 and 2.
    #[arg(long, value_name = "S", default_value_t = 60, value_parser = clap::value_parser!(u64).range(60..=180))]
    pub pub_timeout: u64,
}

pub fn run(a: PubArgs, trace: bool) -> Result<(), Failure> {
    // Everything that can fail without the modem fails first.
    if a.topic.is_empty() || a.topic.len() > 1024 || a.topic.contains(['+', '#']) {
        return Err(Failure::usage(format!(
            "topic {:?}: 1..1024 bytes, no wildcards (+ #) when publishing",
            a.topic
        )));
    }
    let payload = read_payload(&a)?;
    let plan = a
        .broker
        .plan(&format!("cmqtt-pub-{}", std::process::id()))?;
    let interrupted = install_signal_handlers();
    let modem = open_modem(&a.port, trace)?;
    let max = modem.profile().max_payload;
    if payload.len() > max {
        return Err(Failure::usage(format!(
            "the message is {} bytes; the {} takes at most {max} bytes in one publish",
            payload.len(),
            modem.model()
        )));
    }
    check_interrupted(&interrupted)?;
    let mut session = MqttSession::connect(&modem, &a.broker, &plan, &interrupted)?;
    check_interrupted(&interrupted)?;
    let binary = std::str::from_utf8(&payload).is_err();
    if let (true, Some(f)) = (binary, session.utf8_check_on.take()) {
        return Err(f);
    }
    session
        .client()
        .publish(
            a.topic.as_bytes(),
            &payload,
            a.qos,
            a.retain,
            Duration::from_secs(a.pub_timeout),
        )
        .map_err(|e| {
            Failure::cmqtt(
                format!(
                    "publishing {} bytes to {:?} at QoS {}",
                    payload.len(),
                    a.topic,
                    a.qos
                ),
                e,
            )
        })?;
    session.finish();
    Ok(())
}

/// The message, read before the modem is opened. A file or stdin is read only up to the
/// largest payload the model (any model, when `--model` is not given) can publish, plus one
/// byte: `-f /dev/zero` fails at once instead of filling the memory.
fn read_payload(a: &PubArgs) -> Result<Vec<u8>, Failure> {
    let limit = max_payload(a.port.model);
    let takes = "one publish carries";
    if let Some(m) = &a.message {
        Ok(m.as_bytes().to_vec())
    } else if let Some(f) = &a.file {
        read_file_bounded(f, limit, takes)
    } else if a.stdin_message {
        read_bounded(std::io::stdin().lock(), limit, "stdin", takes)
    } else {
        Ok(Vec::new())
    }
}

/// The largest payload `model` takes in one publish; the largest of all models when unknown.
fn max_payload(model: Option<ModelArg>) -> usize {
    let of = |m: cmqtt::Model| cmqtt::Profile::for_model(m).max_payload;
    match model {
        Some(m) => of(m.to_cmqtt()),
        None => [
            cmqtt::Model::A7600,
            cmqtt::Model::Sim7600,
            cmqtt::Model::Sim7672x,
        ]
        .into_iter()
        .map(of)
        .max()
        .unwrap_or(0),
    }
}

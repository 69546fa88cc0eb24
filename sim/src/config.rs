//! What a modem is configured with: its model, result order and the rest of
//! [`SimConfig`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

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
}

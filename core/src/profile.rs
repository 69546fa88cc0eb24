//! Model profiles: every limit and dialect difference between the supported modems, in one place.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The modem families cmqtt knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// A7600 / A76xx (A7670, A7608, ...): the A7600 MQTT AT manual.
    A7600,
    /// SIM7600 family: same firmware lineage as the A7600 manual, MQTT version given in ACCQ.
    Sim7600,
    /// SIM7672X / SIM7652X (and SIM767x): the 2023 application note.
    Sim7672x,
}

impl Model {
    /// Guess the family from what `AT+CGMM` (or the `Model:` line of `ATI`) printed.
    pub fn from_identification(text: &str) -> Option<Model> {
        let t = text.to_ascii_uppercase();
        if t.contains("SIM7600") || t.contains("SIM7500") || t.contains("SIM7800") {
            Some(Model::Sim7600)
        } else if t.contains("SIM767") || t.contains("SIM765") {
            Some(Model::Sim7672x)
        } else if t.contains("A76") || t.contains("A79") {
            Some(Model::A7600)
        } else {
            None
        }
    }

    /// The profile of this family.
    pub fn profile(self) -> Profile {
        Profile::for_model(self)
    }

    /// Lower-case name as used on command lines (`a7600`, `sim7600`, `sim7672x`).
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
        f.write_str(match self {
            Model::A7600 => "A7600/A76xx",
            Model::Sim7600 => "SIM7600",
            Model::Sim7672x => "SIM7672X/SIM7652X",
        })
    }
}

impl FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "a7600" | "a76xx" | "a7670" | "a7608" => Ok(Model::A7600),
            "sim7600" => Ok(Model::Sim7600),
            "sim7672x" | "sim7672" | "sim7652x" | "sim7652" | "sim767x" | "sim7670" => {
                Ok(Model::Sim7672x)
            }
            other => Err(format!(
                "unknown model {other:?}: expected a7600, sim7600 or sim7672x"
            )),
        }
    }
}

/// How the MQTT protocol version is chosen on this model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionDialect {
    /// Not configurable (MQTT 3.1 only, as far as the manual says).
    None,
    /// `AT+CMQTTCFG="version",<idx>,<3|4>` (A76xx firmware in the field, SIM767x).
    Cfg,
    /// A 4th argument of `AT+CMQTTACCQ` (SIM7600).
    Accq,
}

/// Limits and dialect of one modem family. Obtain with [`Model::profile`]; fields are public so
/// that a user with unusual firmware can adjust them (e.g. a larger payload limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The family.
    pub model: Model,
    /// Largest `AT+CMQTTPAYLOAD` length (10240 on A7600/SIM7600, 4096 on SIM7672X).
    pub max_payload: usize,
    /// Largest received payload the modem reports (10240 on every model).
    pub max_rx_payload: usize,
    /// Largest topic (1024).
    pub max_topic: usize,
    /// Largest will message (1024).
    pub max_will_message: usize,
    /// Client id length range (1..=128).
    pub max_client_id: usize,
    /// How the MQTT version is set.
    pub version_dialect: VersionDialect,
    /// Whether `AT+CMQTTSUB?` (list subscribed topics) exists.
    pub has_sub_read: bool,
    /// Whether the modem reports `+CMQTTNONET`.
    pub has_nonet: bool,
    /// Maximum response time of `AT+CMQTTSTART`.
    pub start_timeout: Duration,
    /// Default `<timeout>` of `AT+CMQTTDISC` in seconds (0 = not set).
    pub disc_default_timeout: u32,
    /// The modem answers `OK` at once to a command whose result line comes later (A76xx,
    /// SIM7672X); SIM7600 prints the result line first, after the operation. On an OK-first
    /// model a command that gets no `OK` within `command_timeout` was not taken (the modem
    /// was rebooting or stalled), whatever its result may take.
    pub ok_first: bool,
    /// How long to wait for `OK` after an asynchronous result line that came first; some
    /// SIM7600 firmware sends the result line and no `OK` at all.
    pub ok_grace: Duration,
    /// Timeout of commands that answer at once (`AT`, `ACCQ`, `CFG`, prompts, ...).
    pub command_timeout: Duration,
    /// A received topic or payload block (`+CMQTTRXTOPIC` / `+CMQTTRXPAYLOAD`) still short of
    /// its announced length after the line has been quiet this long lost bytes on the way (a
    /// UART overrun): it is abandoned, reported as [`crate::Event::Malformed`], and the bytes
    /// it held are read as lines. The modem writes each block in one go.
    pub block_idle: Duration,
    /// After a command timed out, the line must be quiet this long (late answers drained)
    /// before the session checks with `AT` that it is in step again, and again after that
    /// `AT`'s `OK` (no second answer followed).
    pub resync_quiet: Duration,
}

impl Profile {
    /// The profile of `model`.
    pub fn for_model(model: Model) -> Profile {
        let base = Profile {
            model,
            max_payload: 10240,
            max_rx_payload: 10240,
            max_topic: 1024,
            max_will_message: 1024,
            max_client_id: 128,
            version_dialect: VersionDialect::Cfg,
            has_sub_read: false,
            has_nonet: false,
            start_timeout: Duration::from_millis(120_000),
            disc_default_timeout: 0,
            ok_first: true,
            ok_grace: Duration::from_millis(300),
            command_timeout: Duration::from_secs(9),
            block_idle: Duration::from_millis(200),
            resync_quiet: Duration::from_millis(100),
        };
        match model {
            Model::A7600 => base,
            Model::Sim7600 => Profile {
                version_dialect: VersionDialect::Accq,
                ok_first: false,
                ..base
            },
            Model::Sim7672x => Profile {
                max_payload: 4096,
                has_sub_read: true,
                has_nonet: true,
                start_timeout: Duration::from_millis(12_000),
                disc_default_timeout: 60,
                ..base
            },
        }
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::for_model(Model::A7600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identification() {
        assert_eq!(Model::from_identification("A7600E-H"), Some(Model::A7600));
        assert_eq!(
            Model::from_identification("Model: A7670SA-FASE"),
            Some(Model::A7600)
        );
        assert_eq!(
            Model::from_identification("SIMCOM_SIM7600E-H"),
            Some(Model::Sim7600)
        );
        assert_eq!(
            Model::from_identification("SIM7672G-MNGV"),
            Some(Model::Sim7672x)
        );
        assert_eq!(
            Model::from_identification("SIM7652G"),
            Some(Model::Sim7672x)
        );
        assert_eq!(Model::from_identification("Quectel EC25"), None);
    }

    #[test]
    fn profiles_hold_the_spec_differences() {
        let a = Model::A7600.profile();
        let s = Model::Sim7672x.profile();
        assert_eq!((a.max_payload, s.max_payload), (10240, 4096));
        assert_eq!(a.start_timeout, Duration::from_secs(120));
        assert_eq!(s.start_timeout, Duration::from_secs(12));
        assert_eq!((a.disc_default_timeout, s.disc_default_timeout), (0, 60));
        assert!(!a.has_nonet && s.has_nonet);
        assert!(!a.has_sub_read && s.has_sub_read);
        assert_eq!(
            Model::Sim7600.profile().version_dialect,
            VersionDialect::Accq
        );
        for m in ["a7600", "SIM7600", "sim7672x"] {
            assert_eq!(m.parse::<Model>().unwrap().name(), m.to_lowercase());
        }
        assert!("ec25".parse::<Model>().is_err());
    }
}

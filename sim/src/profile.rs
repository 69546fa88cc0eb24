//! Per-model differences, as data.

use std::time::Duration;

use crate::config::{Model, ResultOrder, SimConfig};

/// Everything that differs between the emulated models.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    #[allow(dead_code)]
    pub model: Model,
    /// `ATI` "Model:" line and `AT+CGMM`.
    pub model_name: &'static str,
    pub cgmm: &'static str,
    pub revision: &'static str,
    pub imei: &'static str,
    /// Largest `AT+CMQTTPAYLOAD` length (10240 / 4096).
    pub payload_max: usize,
    /// Largest received payload the modem can report.
    pub rx_payload_max: usize,
    pub result_order: ResultOrder,
    /// Empty line between the URCs of a received message (SIM7600 builds).
    pub rx_blank_lines: bool,
    /// `+CMQTTNONET` after the network is lost (SIM7672X).
    pub has_nonet: bool,
    /// `AT+CMQTTCFG="version",<idx>,<3|4>` (SIM7672X, and A76xx firmware in the field).
    pub has_cfg_version: bool,
    /// `AT+CMQTTSUB?` lists the subscribed topics (SIM7672X).
    pub has_sub_read: bool,
    /// MQTT version as optional 4th argument of `AT+CMQTTACCQ` (SIM7600).
    pub accq_version_arg: bool,
    /// `AT+CMQTTCONNECT` with a user name but no password answers `ERROR`
    /// (A7670/SIM7670 field note).
    pub username_requires_password: bool,
    /// `AT+CMQTTSUBTOPIC` / `AT+CMQTTUNSUBTOPIC` exist.
    pub has_subtopic: bool,
    /// Default `AT+CMQTTDISC` timeout (0 = not set / 60 s).
    pub disc_default_timeout: u32,
    /// Documented maximum response time of `AT+CMQTTSTART` (informational).
    #[allow(dead_code)]
    pub start_max: Duration,
    /// The data prompt sent after a command that takes data.
    pub prompt: &'static [u8],
    pub test_accq: &'static str,
    pub test_sub: &'static str,
    pub test_unsub: &'static str,
}

impl Profile {
    pub fn for_model(model: Model) -> Profile {
        match model {
            Model::A7600 => Profile {
                model,
                model_name: "A7600E-H",
                cgmm: "A7600E-H",
                revision: "A7600M6_V1.0",
                imei: "861234050000017",
                payload_max: 10240,
                rx_payload_max: 10240,
                result_order: ResultOrder::OkFirst,
                rx_blank_lines: false,
                has_nonet: false,
                // The A7600 manual lacks it, but A76xx firmware in the field takes
                // AT+CMQTTCFG="version" (spec README, field notes).
                has_cfg_version: true,
                has_sub_read: false,
                accq_version_arg: false,
                username_requires_password: true,
                has_subtopic: true,
                disc_default_timeout: 0,
                start_max: Duration::from_millis(120_000),
                prompt: b"\r\n>",
                test_accq: "+CMQTTACCQ: (0-1),(1-128)[,(0-1)]",
                test_sub: "+CMQTTSUB: (0-1),(0-1024),(0-2),(0-1)",
                test_unsub: "+CMQTTUNSUB: (0-1),(0-1024),(0-1)",
            },
            Model::Sim7600 => Profile {
                model,
                model_name: "SIMCOM_SIM7600E-H",
                cgmm: "SIMCOM_SIM7600E-H",
                revision: "LE20B04SIM7600M22",
                imei: "861234050000025",
                payload_max: 10240,
                rx_payload_max: 10240,
                result_order: ResultOrder::ResultFirst,
                rx_blank_lines: true,
                has_nonet: false,
                has_cfg_version: false,
                has_sub_read: false,
                accq_version_arg: true,
                username_requires_password: false,
                has_subtopic: true,
                disc_default_timeout: 0,
                start_max: Duration::from_millis(120_000),
                prompt: b"\r\n>",
                test_accq: "+CMQTTACCQ: (0-1),(1-128),(0-1),(3-4)",
                test_sub: "+CMQTTSUB: (0-1),(0-1024),(0-2),(0-1)",
                test_unsub: "+CMQTTUNSUB: (0-1),(0-1024),(0-1)",
            },
            Model::Sim7672x => Profile {
                model,
                model_name: "SIM7672G-MNGV",
                cgmm: "SIM7672G-MNGV",
                revision: "2110B03SIM767XM5A_M",
                imei: "861234050000033",
                payload_max: 4096,
                rx_payload_max: 10240,
                result_order: ResultOrder::OkFirst,
                rx_blank_lines: false,
                has_nonet: true,
                has_cfg_version: true,
                has_sub_read: true,
                accq_version_arg: false,
                username_requires_password: true,
                has_subtopic: true,
                disc_default_timeout: 60,
                start_max: Duration::from_millis(12_000),
                prompt: b"\r\n>",
                test_accq: "+CMQTTACCQ: (0-1),(1-128)[,(0-1)]",
                test_sub: "+CMQTTSUB: (0-1),(1-1024),(0-2),(0-1)",
                test_unsub: "+CMQTTUNSUB: (0-1),(1-1024),(0-1)",
            },
        }
    }

    /// The profile of `cfg.model` with `cfg`'s overrides applied.
    pub fn from_config(cfg: &SimConfig) -> Profile {
        let mut p = Profile::for_model(cfg.model);
        if let Some(order) = cfg.result_order {
            p.result_order = order;
        }
        if let Some(sub) = cfg.subtopic_supported {
            p.has_subtopic = sub;
        }
        p
    }

    pub fn manufacturer(&self) -> &'static str {
        "SIMCOM INCORPORATED"
    }
}

//! `cmqtt info`: what the modem says about itself, its network and its MQTT service.

use clap::Args;
use cmqtt::command::{AccqRead, ConnectRead};
use cmqtt::Modem;

use crate::common::{open_modem, PortArgs};
use crate::failure::Failure;

#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub port: PortArgs,
}

pub fn run(a: InfoArgs, trace: bool) -> Result<(), Failure> {
    let modem = open_modem(&a.port, trace)?;
    let id = modem.identity();
    let row = |k: &str, v: String| println!("{k:<13} {v}");
    row("port:", format!("{} @ {} baud", a.port.port, a.port.baud));
    let name = if id.model_name.is_empty() {
        "(AT+CGMM gave nothing)".to_string()
    } else {
        id.model_name.clone()
    };
    row("model:", format!("{name} (profile {})", modem.model()));
    row(
        "firmware:",
        if id.firmware.is_empty() {
            "(AT+CGMR gave nothing)".to_string()
        } else {
            id.firmware.clone()
        },
    );
    row("IMEI:", or_error(modem.imei()));
    row(
        "signal:",
        or_error(
            modem
                .signal_quality()
                .map(|(rssi, ber)| describe_csq(rssi, ber)),
        ),
    );
    row(
        "registration:",
        or_error(
            modem
                .registration()
                .map(|s| format!("{s} ({}) [AT+CGREG]", describe_creg(s))),
        ),
    );
    row("MQTT:", mqtt_state(&modem));
    Ok(())
}

fn or_error<T: Into<String>>(r: cmqtt::Result<T>) -> String {
    match r {
        Ok(v) => {
            let v = v.into();
            if v.is_empty() {
                "(empty answer)".into()
            } else {
                v
            }
        }
        Err(e) => format!("unavailable: {e}"),
    }
}

/// `+CSQ: <rssi>,<ber>` in words: 0 = -113 dBm or less, 2..30 = -109..-53 dBm in 2 dB steps,
/// 31 = -51 dBm or more, 99 = unknown.
pub fn describe_csq(rssi: u8, ber: u8) -> String {
    let level = match rssi {
        0 => "-113 dBm or less".to_string(),
        1..=30 => format!("{} dBm", -113 + 2 * rssi as i32),
        31 => "-51 dBm or more".to_string(),
        99 => return format!("CSQ {rssi},{ber}: no signal / not known yet"),
        _ => return format!("CSQ {rssi},{ber}"),
    };
    let quality = match rssi {
        0..=9 => "marginal",
        10..=14 => "ok",
        15..=19 => "good",
        _ => "excellent",
    };
    format!("CSQ {rssi},{ber} = {level} ({quality})")
}

/// `+CGREG: <n>,<stat>` `<stat>` in words.
pub fn describe_creg(stat: u8) -> &'static str {
    match stat {
        0 => "not registered, not searching",
        1 => "registered, home network",
        2 => "not registered, searching",
        3 => "registration denied",
        4 => "unknown",
        5 => "registered, roaming",
        6 => "registered for SMS only, home network",
        7 => "registered for SMS only, roaming",
        11 => "attached for emergency bearer services only",
        _ => "unknown state",
    }
}

fn mqtt_state(modem: &Modem) -> String {
    if !modem.service_running() {
        return if modem.supports_mqtt() {
            "service not running (AT+CMQTTSTART starts it)".into()
        } else {
            "service not running; AT+CMQTTACCQ=? was refused: this firmware may lack MQTT".into()
        };
    }
    let mut parts = vec!["service running".to_string()];
    let acquired = modem.execute(&AccqRead).unwrap_or_default();
    let conns = modem.execute(&ConnectRead).unwrap_or_default();
    for c in acquired.iter().filter(|c| !c.client_id.is_empty()) {
        let server = conns
            .iter()
            .find(|i| i.index == c.index)
            .and_then(|i| i.server.clone());
        let state = match server {
            Some(s) => format!("connected to {s}"),
            None => "not connected".into(),
        };
        parts.push(format!(
            "client {} {:?}{} {state}",
            c.index,
            c.client_id,
            if c.tls { " (TLS)" } else { "" }
        ));
    }
    if parts.len() == 1 {
        parts.push("no client acquired".into());
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csq() {
        assert_eq!(describe_csq(20, 99), "CSQ 20,99 = -73 dBm (excellent)");
        assert_eq!(describe_csq(0, 0), "CSQ 0,0 = -113 dBm or less (marginal)");
        assert_eq!(
            describe_csq(31, 0),
            "CSQ 31,0 = -51 dBm or more (excellent)"
        );
        assert!(describe_csq(99, 99).contains("not known"));
        assert_eq!(describe_csq(12, 0), "CSQ 12,0 = -89 dBm (ok)");
    }
}

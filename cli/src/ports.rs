//! `cmqtt ports`: the serial ports of this machine (found by `cmqtt::ports`, from sysfs, no
//! libudev), with SIMCom modems and their likely AT interface marked.
//!
//! A tty is a serial port when `/sys/class/tty/<name>/device` exists (virtual consoles and
//! pseudo-terminals have none). For USB ports the `device` link is followed to the USB
//! interface (`bInterfaceNumber`) and its parent USB device (`idVendor`, `idProduct`,
//! `manufacturer`, `product`, `serial`). 8250 UARTs (`ttyS*`) whose `type` is 0 have no
//! hardware behind them and are skipped. Only ports with a node in /dev are listed.
//!
//! Which interface is the AT port depends on the USB composition (product id):
//!
//! | USB id      | composition                        | AT interface        |
//! |-------------|------------------------------------|---------------------|
//! | `1e0e:9001` | SIM7500/SIM7600 default            | 2 (usually ttyUSB2) |
//! | `1e0e:9011` | SIM7600 and A76xx in RNDIS mode    | 4 (usually ttyUSB2) |
//!
//! (For 9001: 0 DIAG, 1 NMEA, 2 AT, 3 modem/PPP, 4 audio, 5 network. For 9011 interfaces 0-1
//! are RNDIS, and the serial ones start at 2, so the AT interface 4 is again the third
//! ttyUSB.) Other SIMCom product ids are marked as SIMCom with the AT port unknown: try
//! `cmqtt info --port` on each.

use cmqtt::ports::{list, Port};

use crate::failure::Failure;

pub fn run() -> Result<(), Failure> {
    let ports = list();
    print!("{}", render(&ports));
    Ok(())
}

/// The listing as printed.
pub fn render(ports: &[Port]) -> String {
    if ports.is_empty() {
        return "no serial ports found\n".into();
    }
    let mut rows: Vec<[String; 5]> = vec![[
        "DEVICE".into(),
        "DRIVER".into(),
        "USB ID".into(),
        "IF".into(),
        "DESCRIPTION".into(),
    ]];
    for p in ports {
        let (id, iface, mut desc) = match &p.usb {
            Some(u) => {
                let d = [&u.manufacturer, &u.product]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ");
                (
                    format!("{:04x}:{:04x}", u.vid, u.pid),
                    u.interface.map(|i| format!("{i:02}")).unwrap_or_default(),
                    d,
                )
            }
            None => (String::new(), String::new(), String::new()),
        };
        if p.is_simcom() {
            let mark = match p.role() {
                Some("AT") => "[SIMCom: AT interface (likely)]".to_string(),
                Some(r) => format!("[SIMCom: {r}]"),
                None => "[SIMCom]".to_string(),
            };
            desc = if desc.is_empty() {
                mark
            } else {
                format!("{desc} {mark}")
            };
        }
        if let Some(s) = p.usb.as_ref().and_then(|u| u.serial.as_ref()) {
            desc = format!("{desc} (serial {s})").trim().to_string();
        }
        rows.push([
            p.device.clone(),
            p.driver.clone().unwrap_or_default(),
            id,
            iface,
            desc,
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for c in 0..4 {
            line.push_str(&format!("{:<w$}  ", r[c], w = widths[c]));
        }
        line.push_str(&r[4]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for p in ports {
        for a in &p.aliases {
            out.push_str(&format!("  {a} -> {}\n", p.device));
        }
    }
    let at: Vec<&Port> = ports.iter().filter(|p| p.is_likely_at()).collect();
    if let Some(p) = at.first() {
        out.push_str(&format!(
            "\nSIMCom modem found; try: cmqtt info --port {}\n",
            p.device
        ));
    } else if ports.iter().any(Port::is_simcom) {
        out.push_str(
            "\nSIMCom modem found, AT interface not known for its USB id; \
             try `cmqtt info --port DEV` on each of its ports\n",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmqtt::ports::Usb;

    fn usb(pid: u16, interface: u8) -> Option<Usb> {
        Some(Usb {
            vid: cmqtt::ports::SIMCOM_VID,
            pid,
            interface: Some(interface),
            manufacturer: Some("SimTech, Incorporated".into()),
            product: None,
            serial: Some("0123".into()),
        })
    }

    #[test]
    fn renders_simcom_roles_and_a_hint() {
        let ports: Vec<Port> = (0..4)
            .map(|i| Port {
                device: format!("/dev/ttyUSB{i}"),
                driver: Some("option1".into()),
                usb: usb(0x9001, i),
                aliases: if i == 2 {
                    vec!["/dev/serial/by-id/usb-SimTech_0123-if02-port0".into()]
                } else {
                    vec![]
                },
            })
            .collect();
        let text = render(&ports);
        assert!(text.contains("[SIMCom: AT interface (likely)]"), "{text}");
        assert!(text.contains("[SIMCom: NMEA]"), "{text}");
        assert!(
            text.contains("try: cmqtt info --port /dev/ttyUSB2"),
            "{text}"
        );
        assert!(
            text.contains("by-id/usb-SimTech_0123-if02-port0 -> /dev/ttyUSB2"),
            "{text}"
        );
    }

    #[test]
    fn nothing_found_is_polite() {
        assert_eq!(render(&[]), "no serial ports found\n");
    }
}

//! Serial ports on this host, read from sysfs (no libudev): which are SIMCom modems, which
//! interface is likely the AT port, and finding a modem again after USB re-enumeration.

use std::fs;
use std::path::{Path, PathBuf};

/// SIMCom's USB vendor id.
pub const SIMCOM_VID: u16 = 0x1e0e;

/// A serial port and what sysfs says about its USB device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortInfo {
    /// `/dev/ttyUSB2`, `/dev/ttyACM0`, ...
    pub path: String,
    /// USB vendor and product ids, when the port is on USB.
    pub usb: Option<UsbInfo>,
}

/// The USB identity of a port.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsbInfo {
    pub vid: u16,
    pub pid: u16,
    pub serial: Option<String>,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    /// `bInterfaceNumber` of the port's interface.
    pub interface: Option<u8>,
}

impl PortInfo {
    /// Whether the port belongs to a SIMCom device.
    pub fn is_simcom(&self) -> bool {
        self.usb.as_ref().is_some_and(|u| u.vid == SIMCOM_VID)
    }

    /// Whether this is likely the AT command interface of a SIMCom modem: interface 2 on the
    /// SIM7600 family (PID 0x9001: diag 0, NMEA 1, AT 2, modem 3, audio 4) and on A76xx/SIM767x
    /// in their usual compositions (PIDs 0x9011, 0x9024, 0x9025...), where it is also named
    /// in the USB docs as the AT port.
    pub fn is_likely_at_port(&self) -> bool {
        self.is_simcom() && self.usb.as_ref().and_then(|u| u.interface) == Some(2)
    }
}

/// Every serial port sysfs knows of that has a device behind it (real hardware, not the
/// hundreds of virtual consoles).
pub fn list() -> Vec<PortInfo> {
    list_in(Path::new("/sys/class/tty"))
}

/// [`list`] over another sysfs root (for tests).
pub fn list_in(class_tty: &Path) -> Vec<PortInfo> {
    let Ok(rd) = fs::read_dir(class_tty) else {
        return Vec::new();
    };
    let mut out: Vec<PortInfo> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dev = e.path().join("device");
            let real = fs::canonicalize(&dev).ok()?;
            // Serial8250 placeholders without hardware have no usable port; skip them unless
            // they are USB or ACM.
            let usb = usb_info(&real);
            if usb.is_none() && !(name.starts_with("ttyS") && has_io_port(&e.path())) {
                return None;
            }
            Some(PortInfo {
                path: format!("/dev/{name}"),
                usb,
            })
        })
        .collect();
    out.sort_by_key(|p| natural(&p.path));
    out
}

/// The path of the port with this USB identity, if it is present now.
pub fn find_usb(vid: u16, pid: u16, serial: Option<&str>, interface: Option<u8>) -> Option<String> {
    list().into_iter().find_map(|p| {
        let u = p.usb.as_ref()?;
        let ok = u.vid == vid
            && u.pid == pid
            && serial.is_none_or(|s| u.serial.as_deref() == Some(s))
            && interface.is_none_or(|i| u.interface == Some(i));
        ok.then(|| p.path.clone())
    })
}

fn has_io_port(tty: &Path) -> bool {
    fs::read_to_string(tty.join("port"))
        .map(|s| s.trim() != "0x0")
        .unwrap_or(false)
}

fn read(p: &Path) -> Option<String> {
    fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn hex(p: &Path) -> Option<u16> {
    u16::from_str_radix(&read(p)?, 16).ok()
}

/// Walks up from the tty's device directory to the USB interface and device.
fn usb_info(real: &Path) -> Option<UsbInfo> {
    let mut interface = None;
    let mut dir: Option<PathBuf> = Some(real.to_path_buf());
    while let Some(d) = dir {
        if interface.is_none() {
            if let Some(n) = read(&d.join("bInterfaceNumber")) {
                interface = u8::from_str_radix(&n, 16).ok();
            }
        }
        if let (Some(vid), Some(pid)) = (hex(&d.join("idVendor")), hex(&d.join("idProduct"))) {
            return Some(UsbInfo {
                vid,
                pid,
                serial: read(&d.join("serial")),
                manufacturer: read(&d.join("manufacturer")),
                product: read(&d.join("product")),
                interface,
            });
        }
        dir = d.parent().map(Path::to_path_buf);
        if dir.as_deref() == Some(Path::new("/sys")) || dir.as_deref() == Some(Path::new("/")) {
            break;
        }
    }
    None
}

/// Sorts ttyUSB10 after ttyUSB2.
fn natural(s: &str) -> (String, u64) {
    let digits = s.trim_start_matches(|c: char| !c.is_ascii_digit());
    let split = s.len() - digits.len();
    (s[..split].to_string(), digits.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_fake_sysfs_tree() {
        let root = std::env::temp_dir().join(format!("cmqtt-sysfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dev = root.join("devices/usb1/1-1");
        for i in 0..4u8 {
            let intf = dev.join(format!("1-1:1.{i}"));
            let tty_dev = intf.join(format!("ttyUSB{i}"));
            fs::create_dir_all(&tty_dev).unwrap();
            fs::write(intf.join("bInterfaceNumber"), format!("{i:02x}\n")).unwrap();
            let class = root.join(format!("class/tty/ttyUSB{i}"));
            fs::create_dir_all(&class).unwrap();
            std::os::unix::fs::symlink(&tty_dev, class.join("device")).unwrap();
        }
        fs::write(dev.join("idVendor"), "1e0e\n").unwrap();
        fs::write(dev.join("idProduct"), "9001\n").unwrap();
        fs::write(dev.join("serial"), "ABC123\n").unwrap();
        // A console with no device: skipped.
        fs::create_dir_all(root.join("class/tty/tty0")).unwrap();
        let ports = list_in(&root.join("class/tty"));
        assert_eq!(ports.len(), 4, "{ports:?}");
        assert!(ports.iter().all(|p| p.is_simcom()));
        let at: Vec<_> = ports.iter().filter(|p| p.is_likely_at_port()).collect();
        assert_eq!(at.len(), 1);
        assert_eq!(at[0].path, "/dev/ttyUSB2");
        assert_eq!(
            at[0].usb.as_ref().unwrap().serial.as_deref(),
            Some("ABC123")
        );
        let _ = fs::remove_dir_all(&root);
    }
}

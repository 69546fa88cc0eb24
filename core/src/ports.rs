//! Serial ports on this host, read from sysfs (no libudev): which are SIMCom modems, which
//! interface is likely the AT port, and finding a modem again after USB re-enumeration.
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

use std::fs;
use std::path::{Path, PathBuf};

/// SIMCom's USB vendor id.
pub const SIMCOM_VID: u16 = 0x1e0e;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usb {
    pub vid: u16,
    pub pid: u16,
    pub interface: Option<u8>,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// `/dev/ttyUSB2`
    pub device: String,
    /// The kernel driver (`option`, `cdc_acm`, `serial8250`, `pl011`...).
    pub driver: Option<String>,
    pub usb: Option<Usb>,
    /// `/dev/serial/by-id/...` links pointing to this port.
    pub aliases: Vec<String>,
}

impl Port {
    pub fn is_simcom(&self) -> bool {
        self.usb.as_ref().is_some_and(|u| u.vid == SIMCOM_VID)
    }

    /// What this interface is, for SIMCom modems whose layout is known.
    pub fn role(&self) -> Option<&'static str> {
        let u = self.usb.as_ref()?;
        if u.vid != SIMCOM_VID {
            return None;
        }
        let i = u.interface?;
        match (u.pid, i) {
            (0x9001, 0) => Some("DIAG"),
            (0x9001, 1) => Some("NMEA"),
            (0x9001, 2) => Some("AT"),
            (0x9001, 3) => Some("modem/PPP"),
            (0x9001, 4) => Some("audio"),
            (0x9011, 4) => Some("AT"),
            _ => None,
        }
    }

    pub fn is_likely_at(&self) -> bool {
        self.role() == Some("AT")
    }
}

/// Every serial port of this machine (`/sys`, `/dev`).
pub fn list() -> Vec<Port> {
    scan(Path::new("/sys"), Path::new("/dev"))
}

/// The device path of the port with this USB identity, if it is present now.
pub fn find_usb(vid: u16, pid: u16, serial: Option<&str>, interface: Option<u8>) -> Option<String> {
    list().into_iter().find_map(|p| {
        let u = p.usb.as_ref()?;
        let ok = u.vid == vid
            && u.pid == pid
            && serial.is_none_or(|s| u.serial.as_deref() == Some(s))
            && interface.is_none_or(|i| u.interface == Some(i));
        ok.then(|| p.device.clone())
    })
}

/// The serial ports under `sys` (normally `/sys`) that have a node under `dev` (`/dev`).
pub fn scan(sys: &Path, dev: &Path) -> Vec<Port> {
    let class = sys.join("class/tty");
    let Ok(entries) = fs::read_dir(&class) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_by_key(|a| natural_key(a));
    let by_id = by_id_links(dev);
    let mut ports = Vec::new();
    for name in names {
        let entry = class.join(&name);
        let dev_link = entry.join("device");
        if fs::symlink_metadata(&dev_link).is_err() {
            continue; // virtual: consoles, ptys
        }
        if name.starts_with("ttyS") && read_trim(&entry.join("type")).as_deref() == Some("0") {
            continue; // an 8250 slot with no UART behind it
        }
        let node = dev.join(&name);
        if !node.exists() {
            continue;
        }
        let device_dir = fs::canonicalize(&dev_link).unwrap_or(dev_link.clone());
        let driver = driver_of(&device_dir);
        let usb = usb_info(&device_dir, sys);
        let node_canon = fs::canonicalize(&node).unwrap_or(node.clone());
        let aliases = by_id
            .iter()
            .filter(|(_, target)| *target == node_canon)
            .map(|(link, _)| link.display().to_string())
            .collect();
        ports.push(Port {
            device: node.display().to_string(),
            driver,
            usb,
            aliases,
        });
    }
    ports
}

/// Walk up from the tty's device directory: the first directory with `bInterfaceNumber` is
/// the USB interface, the first with `idVendor` the USB device.
fn usb_info(device_dir: &Path, sys: &Path) -> Option<Usb> {
    let sys_canon = fs::canonicalize(sys).unwrap_or(sys.to_path_buf());
    let mut interface = None;
    for dir in device_dir.ancestors() {
        if !dir.starts_with(&sys_canon) || dir == sys_canon {
            break;
        }
        if interface.is_none() {
            if let Some(i) = read_trim(&dir.join("bInterfaceNumber")) {
                interface = u8::from_str_radix(&i, 16).ok();
            }
        }
        if let Some(vid) = read_trim(&dir.join("idVendor")) {
            let vid = u16::from_str_radix(&vid, 16).ok()?;
            let pid = u16::from_str_radix(&read_trim(&dir.join("idProduct"))?, 16).ok()?;
            return Some(Usb {
                vid,
                pid,
                interface,
                manufacturer: read_trim(&dir.join("manufacturer")),
                product: read_trim(&dir.join("product")),
                serial: read_trim(&dir.join("serial")),
            });
        }
    }
    None
}

/// The kernel driver behind the tty. Since Linux 6.5 a UART's `device` is a serial-base
/// `port` (or `ctrl`) device whose parent carries the real driver (`serial`, `serial8250`,
/// `pl011`...): look a few levels up for it.
fn driver_of(device_dir: &Path) -> Option<String> {
    let mut fallback = None;
    for dir in device_dir.ancestors().take(4) {
        let name = fs::read_link(dir.join("driver"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        match name {
            Some(n) if n == "port" || n == "ctrl" => {
                fallback.get_or_insert(n);
            }
            Some(n) => return Some(n),
            None => {}
        }
    }
    fallback
}

fn by_id_links(dev: &Path) -> Vec<(PathBuf, PathBuf)> {
    let Ok(entries) = fs::read_dir(dev.join("serial/by-id")) else {
        return Vec::new();
    };
    let mut v: Vec<(PathBuf, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            fs::canonicalize(&p).ok().map(|t| (p, t))
        })
        .collect();
    v.sort();
    v
}

/// A small sysfs attribute, trimmed; read up to 4 KiB only (a path that is not what sysfs
/// promises, e.g. a character device, cannot make this read without bound).
fn read_trim(p: &Path) -> Option<String> {
    use std::io::Read;
    let mut s = String::new();
    fs::File::open(p)
        .ok()?
        .take(4096)
        .read_to_string(&mut s)
        .ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// `ttyUSB10` after `ttyUSB2`.
fn natural_key(s: &str) -> (String, u64) {
    let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (head, num) = s.split_at(s.len() - digits);
    (head.to_string(), num.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn write(p: &Path, s: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    }

    /// A fake /sys and /dev: a SIM7600 (1e0e:9001) with ttyUSB0..3 on interfaces 0..3, a
    /// 16550 ttyS0, a phantom ttyS1, a CDC ACM ttyACM0 and a virtual tty0.
    fn fake() -> Tmp {
        let root = std::env::temp_dir().join(format!(
            "cmqtt-ports-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&root);
        let sys = root.join("sys");
        let dev = root.join("dev");
        let usbdev = sys.join("devices/pci0000:00/usb1/1-1");
        write(&usbdev.join("idVendor"), "1e0e\n");
        write(&usbdev.join("idProduct"), "9001\n");
        write(&usbdev.join("manufacturer"), "SimTech, Incorporated\n");
        write(&usbdev.join("product"), "SimTech, Incorporated\n");
        write(&usbdev.join("serial"), "0123456789ABCDEF\n");
        let drivers = sys.join("bus/usb-serial/drivers/option1");
        fs::create_dir_all(&drivers).unwrap();
        fs::create_dir_all(sys.join("class/tty")).unwrap();
        fs::create_dir_all(dev.join("serial/by-id")).unwrap();
        for i in 0..4u8 {
            let ifdir = usbdev.join(format!("1-1:1.{i}"));
            write(&ifdir.join("bInterfaceNumber"), &format!("{i:02x}\n"));
            let tty = ifdir.join(format!("ttyUSB{i}"));
            fs::create_dir_all(&tty).unwrap();
            symlink(&drivers, tty.join("driver")).unwrap();
            let cls = sys.join(format!("class/tty/ttyUSB{i}"));
            fs::create_dir_all(&cls).unwrap();
            symlink(&tty, cls.join("device")).unwrap();
            write(&dev.join(format!("ttyUSB{i}")), "");
        }
        symlink(
            dev.join("ttyUSB2"),
            dev.join("serial/by-id/usb-SimTech_0123-if02-port0"),
        )
        .unwrap();
        // UARTs
        let plat = sys.join("devices/platform/serial8250");
        fs::create_dir_all(&plat).unwrap();
        for (n, ty) in [("ttyS0", "4"), ("ttyS1", "0")] {
            let cls = sys.join(format!("class/tty/{n}"));
            write(&cls.join("type"), ty);
            symlink(&plat, cls.join("device")).unwrap();
            write(&dev.join(n), "");
        }
        // CDC ACM of another vendor: device link points at the interface itself.
        let acm_dev = sys.join("devices/pci0000:00/usb1/1-2");
        write(&acm_dev.join("idVendor"), "2341\n");
        write(&acm_dev.join("idProduct"), "0043\n");
        let acm_if = acm_dev.join("1-2:1.0");
        write(&acm_if.join("bInterfaceNumber"), "00\n");
        let cls = sys.join("class/tty/ttyACM0");
        fs::create_dir_all(&cls).unwrap();
        symlink(&acm_if, cls.join("device")).unwrap();
        write(&dev.join("ttyACM0"), "");
        // A virtual console: no device link.
        fs::create_dir_all(sys.join("class/tty/tty0")).unwrap();
        write(&dev.join("tty0"), "");
        Tmp(root)
    }

    #[test]
    fn scans_a_fake_sysfs() {
        let t = fake();
        let ports = scan(&t.0.join("sys"), &t.0.join("dev"));
        let names: Vec<String> = ports
            .iter()
            .map(|p| p.device.rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            ["ttyACM0", "ttyS0", "ttyUSB0", "ttyUSB1", "ttyUSB2", "ttyUSB3"]
        );
        let at: Vec<&Port> = ports.iter().filter(|p| p.is_likely_at()).collect();
        assert_eq!(at.len(), 1);
        assert!(at[0].device.ends_with("ttyUSB2"));
        assert_eq!(at[0].driver.as_deref(), Some("option1"));
        assert_eq!(at[0].aliases.len(), 1, "{:?}", at[0]);
        let u = at[0].usb.as_ref().unwrap();
        assert_eq!((u.vid, u.pid, u.interface), (0x1e0e, 0x9001, Some(2)));
        let acm = &ports[0];
        assert!(!acm.is_simcom());
        assert_eq!(acm.usb.as_ref().unwrap().interface, Some(0));
        assert!(ports[1].usb.is_none());
        assert_eq!(ports[3].role(), Some("NMEA"));
    }

    #[test]
    fn nothing_found_is_polite() {
        let p = std::env::temp_dir().join("cmqtt-ports-nonexistent-root");
        let ports = scan(&p, &p);
        assert!(ports.is_empty());
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["ttyUSB10", "ttyUSB2", "ttyACM0"];
        v.sort_by_key(|a| natural_key(a));
        assert_eq!(v, ["ttyACM0", "ttyUSB2", "ttyUSB10"]);
    }
}

//! What every part of the harness shares: the broker, the emulator, opening a session.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cmqtt::{Client, ConnectOptions, Modem, ModemOptions};
use cmqtt_sim::{Model, SimConfig, Simulator};

use crate::broker::BenchBroker;
use crate::stamp::{StampRead, StampWrite, Stamps};

pub type Res<T> = Result<T, String>;

pub fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// The run's settings and shared resources.
pub struct Ctx {
    pub smoke: bool,
    pub broker: BenchBroker,
    /// The workspace root.
    pub root: PathBuf,
    /// The cargo target directory.
    pub target: PathBuf,
}

impl Ctx {
    pub fn new(smoke: bool) -> Res<Ctx> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(PathBuf::from)
            .ok_or("no workspace root")?;
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        Ok(Ctx {
            smoke,
            broker: BenchBroker::start()?,
            root,
            target,
        })
    }

    /// A scratch directory under the target dir.
    pub fn scratch(&self) -> PathBuf {
        let d = self.target.join("bench");
        let _ = std::fs::create_dir_all(&d);
        d
    }
}

/// A fresh emulated A7600 on a pty: echo on (as a booted modem; the host switches it off), no
/// boot banner, paced at `baud` (`None` = unthrottled).
pub fn sim(baud: Option<u32>) -> Res<Simulator> {
    let mut cfg = SimConfig::new(Model::A7600);
    cfg.baud = baud;
    cfg.boot_banner = false;
    Simulator::start_pty(cfg).map_err(err("emulator"))
}

/// Opens the emulator's pty the way `Modem::open` does (serialport, 50 ms read timeout), with
/// the two directions wrapped in timestamping transports.
pub fn open_stamped(dev: &str, stamps: &Arc<Stamps>, opts: ModemOptions) -> Res<Modem> {
    let port = serialport::new(dev, 115_200)
        .timeout(Duration::from_millis(50))
        .open()
        .map_err(err("open pty"))?;
    let reader = port.try_clone().map_err(err("clone pty"))?;
    Modem::with_transport(
        StampRead {
            inner: reader,
            stamps: stamps.clone(),
        },
        StampWrite {
            inner: port,
            stamps: stamps.clone(),
            flush: false,
        },
        opts,
    )
    .map_err(err("open modem"))
}

/// START, ACCQ and CONNECT to the bench broker.
pub fn connect(modem: &Modem, ctx: &Ctx, id: &str) -> Res<Client> {
    modem.start().map_err(err("AT+CMQTTSTART"))?;
    let client = modem.client(0, id, false).map_err(err("AT+CMQTTACCQ"))?;
    client
        .connect(&ConnectOptions::new(ctx.broker.url()))
        .map_err(err("AT+CMQTTCONNECT"))?;
    Ok(client)
}

/// A payload of `n` printable bytes.
pub fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The exact bytes of one publish as cmqtt performs it on an A7600 with echo off:
/// (host to modem, modem to host).
pub fn publish_wire_bytes(topic: usize, payload: usize, qos: u8) -> (usize, usize) {
    let h2m = format!("AT+CMQTTTOPIC=0,{topic}\r").len()
        + topic
        + format!("AT+CMQTTPAYLOAD=0,{payload}\r").len()
        + payload
        + format!("AT+CMQTTPUB=0,{qos},60,0,0\r").len();
    let m2h = "\r\n>".len()
        + "\r\nOK\r\n".len()
        + "\r\n>".len()
        + "\r\nOK\r\n".len()
        + "\r\nOK\r\n".len()
        + "\r\n+CMQTTPUB: 0,0\r\n".len();
    (h2m, m2h)
}

/// The bytes of one received message as an A7600 reports it (RX chunks of `chunk` bytes).
pub fn rx_wire_bytes(topic: usize, payload: usize, chunk: usize) -> usize {
    let mut n = format!("\r\n+CMQTTRXSTART: 0,{topic},{payload}\r\n").len();
    let mut t = topic;
    while t > 0 {
        let c = t.min(chunk);
        n += format!("+CMQTTRXTOPIC: 0,{c}\r\n").len() + c + 2;
        t -= c;
    }
    let mut p = payload;
    while p > 0 {
        let c = p.min(chunk);
        n += format!("+CMQTTRXPAYLOAD: 0,{c}\r\n").len() + c + 2;
        p -= c;
    }
    n + "+CMQTTRXEND: 0\r\n".len()
}

/// Seconds as a float.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_bytes_are_counted_by_hand() {
        // "AT+CMQTTTOPIC=0,10\r" 19 + 10, "AT+CMQTTPAYLOAD=0,16\r" 21 + 16, "AT+CMQTTPUB=0,0,60,0,0\r" 23
        // "\r\n>" 3 + "\r\nOK\r\n" 6, twice, "\r\nOK\r\n" 6 + "\r\n+CMQTTPUB: 0,0\r\n" 18
        assert_eq!(publish_wire_bytes(10, 16, 0), (89, 42));
        // "\r\n+CMQTTRXSTART: 0,3,4\r\n" 24, "+CMQTTRXTOPIC: 0,3\r\n" 20 + 3 + 2,
        // "+CMQTTRXPAYLOAD: 0,4\r\n" 22 + 4 + 2, "+CMQTTRXEND: 0\r\n" 16
        assert_eq!(rx_wire_bytes(3, 4, 1500), 24 + 25 + 28 + 16);
    }
}

//! A raw-bytes "host" for driving the emulator in tests: opens the pty slave
//! (or connects to the TCP port), writes exact bytes and asserts exact bytes.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cmqtt_sim::{Model, SimConfig, Simulator};

pub const T: Duration = Duration::from_secs(10);

struct Buf {
    data: Vec<u8>,
    closed: bool,
}

/// The host side of the serial line.
pub struct Host {
    w: Box<dyn Write + Send>,
    buf: Arc<(Mutex<Buf>, Condvar)>,
    stop: Arc<AtomicBool>,
    tcp: Option<std::net::TcpStream>,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = &self.tcp {
            let _ = t.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Host {
    /// Opens the pty slave with plain open(2) (the emulator made it raw):
    /// once for writing (blocking) and once for reading (non-blocking, so
    /// that dropping the host really closes the device).
    pub fn open(dev: &str) -> Host {
        let open = |flags| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY | flags)
                .open(dev)
                .unwrap_or_else(|e| panic!("open {dev}: {e}"))
        };
        let w = open(0);
        let r = open(libc::O_NONBLOCK);
        let h = Host::with(Box::new(w), Box::new(r), None);
        // Let the emulator notice the host before anything is sent to it.
        std::thread::sleep(Duration::from_millis(30));
        h
    }

    pub fn tcp(addr: &str) -> Host {
        let s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let r = s.try_clone().unwrap();
        let k = s.try_clone().unwrap();
        Host::with(Box::new(s), Box::new(r), Some(k))
    }

    fn with(
        w: Box<dyn Write + Send>,
        mut r: Box<dyn Read + Send>,
        tcp: Option<std::net::TcpStream>,
    ) -> Host {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let buf = Arc::new((
            Mutex::new(Buf {
                data: Vec::new(),
                closed: false,
            }),
            Condvar::new(),
        ));
        let b2 = buf.clone();
        std::thread::spawn(move || {
            let mut tmp = [0u8; 4096];
            loop {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                match r.read(&mut tmp) {
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Ok(0) | Err(_) => {
                        let (m, c) = &*b2;
                        m.lock().unwrap().closed = true;
                        c.notify_all();
                        return;
                    }
                    Ok(n) => {
                        let (m, c) = &*b2;
                        m.lock().unwrap().data.extend_from_slice(&tmp[..n]);
                        c.notify_all();
                    }
                }
            }
        });
        Host { w, buf, stop, tcp }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
        self.w.flush().unwrap();
    }

    /// Waits until `pred(buffer)` returns `Some(n)`, then consumes and
    /// returns the first `n` bytes.
    fn wait_for(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&[u8]) -> Option<usize>,
    ) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let (m, c) = &*self.buf;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(n) = pred(&g.data) {
                return Some(g.data.drain(..n).collect());
            }
            let now = Instant::now();
            if now >= deadline || g.closed {
                return None;
            }
            g = c.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Asserts that the next bytes are exactly `want`.
    #[track_caller]
    pub fn expect(&mut self, want: &[u8]) {
        self.expect_within(want, T);
    }

    #[track_caller]
    pub fn expect_within(&mut self, want: &[u8], timeout: Duration) {
        let n = want.len();
        let got = self.wait_for(timeout, |d| if d.len() >= n { Some(n) } else { None });
        match got {
            Some(g) => assert_eq!(
                String::from_utf8_lossy(&g),
                String::from_utf8_lossy(want),
                "raw: {:?}",
                g
            ),
            None => panic!(
                "timed out waiting for {:?}; have {:?}",
                String::from_utf8_lossy(want),
                String::from_utf8_lossy(&self.pending())
            ),
        }
    }

    /// Consumes everything up to and including `pat`; returns it.
    #[track_caller]
    pub fn read_until(&mut self, pat: &[u8]) -> Vec<u8> {
        self.read_until_within(pat, T)
    }

    #[track_caller]
    pub fn read_until_within(&mut self, pat: &[u8], timeout: Duration) -> Vec<u8> {
        let got = self.wait_for(timeout, |d| {
            d.windows(pat.len())
                .position(|w| w == pat)
                .map(|p| p + pat.len())
        });
        got.unwrap_or_else(|| {
            panic!(
                "timed out waiting for {:?}; have {:?}",
                String::from_utf8_lossy(pat),
                String::from_utf8_lossy(&self.pending())
            )
        })
    }

    /// Waits until the device reports end of file or an error (the port
    /// vanished); `true` if it did within `timeout`.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (m, c) = &*self.buf;
        let mut g = m.lock().unwrap();
        while !g.closed {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = c.wait_timeout(g, deadline - now).unwrap().0;
        }
        true
    }

    /// Writes without asserting success.
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.w.write_all(bytes)?;
        self.w.flush()
    }

    /// What has arrived and not been consumed.
    pub fn pending(&self) -> Vec<u8> {
        self.buf.0.lock().unwrap().data.clone()
    }

    /// Drops everything received so far.
    pub fn clear(&mut self) {
        self.buf.0.lock().unwrap().data.clear();
    }

    /// Asserts nothing arrives for `d`.
    #[track_caller]
    pub fn quiet(&mut self, d: Duration) {
        std::thread::sleep(d);
        let p = self.pending();
        assert!(
            p.is_empty(),
            "unexpected output: {:?}",
            String::from_utf8_lossy(&p)
        );
    }

    /// Sends `line` + CR and asserts the exact response (echo off).
    #[track_caller]
    pub fn cmd(&mut self, line: &str, resp: &str) {
        self.send(format!("{line}\r").as_bytes());
        self.expect(resp.as_bytes());
    }

    /// Sends a prompting command, waits for the prompt, sends `data`,
    /// asserts `resp` after the data (echo off).
    #[track_caller]
    pub fn data_cmd(&mut self, line: &str, data: &[u8], resp: &str) {
        self.send(format!("{line}\r").as_bytes());
        self.expect(b"\r\n>");
        self.send(data);
        self.expect(resp.as_bytes());
    }
}

/// A quiet emulator (no boot banner, echo off) and a host on it.
pub fn sim(model: Model) -> (Simulator, Host) {
    let mut cfg = SimConfig::new(model);
    cfg.boot_banner = false;
    cfg.echo = false;
    sim_with(cfg)
}

pub fn sim_with(cfg: SimConfig) -> (Simulator, Host) {
    let s = Simulator::start_pty(cfg).unwrap();
    let h = Host::open(&s.device());
    (s, h)
}

/// `OK` then the result line (A76xx order).
pub fn ok_then(line: &str) -> String {
    format!("\r\nOK\r\n\r\n{line}\r\n")
}

pub const OK: &str = "\r\nOK\r\n";
pub const ERROR: &str = "\r\nERROR\r\n";

/// START + ACCQ (+ CONNECT to `url`) on client 0 with echo off.
pub fn connect(h: &mut Host, id: &str, url: &str) {
    h.cmd("AT+CMQTTSTART", &ok_then("+CMQTTSTART: 0"));
    h.cmd(&format!("AT+CMQTTACCQ=0,\"{id}\""), OK);
    h.cmd(
        &format!("AT+CMQTTCONNECT=0,\"{url}\",60,1"),
        &ok_then("+CMQTTCONNECT: 0,0"),
    );
}

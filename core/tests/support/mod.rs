//! An in-memory scripted modem: a test double that answers the host like the spec's examples.
//!
//! The host side gets a `(reader, writer)` pair for `Modem::with_transport`; the modem side runs
//! a handler on its own thread for every command line, which writes whatever bytes the test
//! wants (any order, any split) and can read prompted data by length.
#![allow(dead_code)]

pub mod driver;

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// One direction of an in-memory serial line.
/// Bytes in flight and whether the line is closed.
type Line = Arc<(Mutex<(VecDeque<u8>, bool)>, Condvar)>;

#[derive(Clone, Default)]
pub struct Pipe {
    inner: Line,
}

impl Pipe {
    pub fn new() -> Pipe {
        Pipe::default()
    }
    pub fn push(&self, b: &[u8]) {
        let (m, cv) = &*self.inner;
        m.lock().0.extend(b.iter().copied());
        cv.notify_all();
    }
    pub fn close(&self) {
        let (m, cv) = &*self.inner;
        m.lock().1 = true;
        cv.notify_all();
    }
    /// Reads exactly `n` bytes or gives up after `timeout`.
    pub fn read_exact_timeout(&self, n: usize, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.inner;
        let mut g = m.lock();
        while g.0.len() < n {
            if (g.1 || cv.wait_until(&mut g, deadline).timed_out()) && g.0.len() < n {
                return None;
            }
        }
        Some(g.0.drain(..n).collect())
    }
}

/// The host's read side: blocks up to 20 ms, then reports a timeout like a serial port.
pub struct PipeReader(pub Pipe);
impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (m, cv) = &*self.0.inner;
        let mut g = m.lock();
        if g.0.is_empty() {
            if g.1 {
                return Ok(0);
            }
            cv.wait_for(&mut g, Duration::from_millis(20));
            if g.0.is_empty() {
                return if g.1 {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::TimedOut.into())
                };
            }
        }
        let n = buf.len().min(g.0.len());
        for (i, b) in g.0.drain(..n).enumerate() {
            buf[i] = b;
        }
        Ok(n)
    }
}

/// The host's write side.
pub struct PipeWriter(pub Pipe);
impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a handler uses to answer.
pub struct ModemSide {
    to_host: Pipe,
    from_host: Pipe,
    /// Every command line the host sent, in order.
    pub log: Arc<Mutex<Vec<String>>>,
    /// Every block of prompted data the host sent, in order.
    pub data: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl ModemSide {
    /// Send bytes to the host.
    pub fn send(&self, b: &[u8]) {
        self.to_host.push(b);
    }
    /// Send text to the host.
    pub fn say(&self, s: &str) {
        self.to_host.push(s.as_bytes());
    }
    /// Send "\r\n>" and read exactly `n` bytes of data.
    pub fn prompt(&self, n: usize) -> Vec<u8> {
        self.say("\r\n>");
        self.read_data(n)
    }
    /// Read exactly `n` bytes of data (after a prompt sent some other way).
    pub fn read_data(&self, n: usize) -> Vec<u8> {
        let d = self
            .from_host
            .read_exact_timeout(n, Duration::from_secs(5))
            .expect("the host did not send the announced data");
        self.data.lock().push(d.clone());
        d
    }
    /// Bytes for the host, from another thread later (a delayed result line).
    pub fn to_host(&self) -> Pipe {
        self.to_host.clone()
    }
}

pub type Handler = Box<dyn FnMut(&str, &ModemSide) -> bool + Send>;

/// A scripted modem. `handler(line, side)` returns false to fall back to the defaults
/// (AT, ATE0, AT+CGMM -> model, AT+CGMR, otherwise ERROR).
pub struct Scripted {
    pub to_host: Pipe,
    pub from_host: Pipe,
    pub log: Arc<Mutex<Vec<String>>>,
    pub data: Arc<Mutex<Vec<Vec<u8>>>>,
    thread: Option<JoinHandle<()>>,
}

impl Scripted {
    pub fn start(
        model: &'static str,
        mut handler: impl FnMut(&str, &ModemSide) -> bool + Send + 'static,
    ) -> Scripted {
        let to_host = Pipe::new();
        let from_host = Pipe::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let data = Arc::new(Mutex::new(Vec::new()));
        let side = ModemSide {
            to_host: to_host.clone(),
            from_host: from_host.clone(),
            log: log.clone(),
            data: data.clone(),
        };
        let thread = std::thread::spawn(move || {
            let mut line = Vec::new();
            loop {
                let Some(b) = side
                    .from_host
                    .read_exact_timeout(1, Duration::from_secs(3600))
                else {
                    return;
                };
                if b[0] != b'\r' {
                    line.push(b[0]);
                    continue;
                }
                let l = String::from_utf8_lossy(&line).trim().to_string();
                line.clear();
                if l.is_empty() || l.starts_with('\x1b') && l.len() == 1 {
                    continue;
                }
                let l = l.trim_start_matches('\x1b').to_string();
                side.log.lock().push(l.clone());
                if handler(&l, &side) {
                    continue;
                }
                match l.as_str() {
                    "AT" | "ATE0" | "ATE1" => side.say("\r\nOK\r\n"),
                    "AT+CGMM" => side.say(&format!("\r\n{model}\r\n\r\nOK\r\n")),
                    "AT+CGMR" => side.say("\r\n+CGMR: TEST_FW_1.0\r\n\r\nOK\r\n"),
                    _ => side.say("\r\nERROR\r\n"),
                }
            }
        });
        Scripted {
            to_host,
            from_host,
            log,
            data,
            thread: Some(thread),
        }
    }

    pub fn host_io(&self) -> (PipeReader, PipeWriter) {
        (
            PipeReader(self.to_host.clone()),
            PipeWriter(self.from_host.clone()),
        )
    }

    /// Lines the host sent after the session set-up (AT, ATE0, CGMM, CGMR filtered out).
    pub fn commands(&self) -> Vec<String> {
        self.log
            .lock()
            .iter()
            .filter(|l| !matches!(l.as_str(), "AT" | "ATE0" | "AT+CGMM" | "AT+CGMR" | "ATI"))
            .cloned()
            .collect()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.to_host.close();
        self.from_host.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens a `cmqtt::Modem` on a scripted modem.
pub fn open(s: &Scripted) -> cmqtt::Modem {
    open_with(
        s,
        cmqtt::ModemOptions {
            sync_timeout: Duration::from_secs(3),
            ..Default::default()
        },
    )
}

/// Opens a `cmqtt::Modem` on a scripted modem with options.
pub fn open_with(s: &Scripted, opts: cmqtt::ModemOptions) -> cmqtt::Modem {
    let (r, w) = s.host_io();
    cmqtt::Modem::with_transport(r, w, opts).expect("open scripted modem")
}

/// Shortens the profile's waits so that failing paths finish fast.
pub fn fast(modem: &cmqtt::Modem, ok_grace_ms: u64, command_timeout_ms: u64) {
    let mut p = modem.profile();
    p.ok_grace = Duration::from_millis(ok_grace_ms);
    p.command_timeout = Duration::from_millis(command_timeout_ms);
    modem.set_profile(p);
}

/// Parses `AT+CMD=a,b,c` into ("AT+CMD", [a, b, c]) (numbers only; quoted args as text).
pub fn split_cmd(l: &str) -> (&str, Vec<&str>) {
    match l.split_once('=') {
        Some((c, a)) => (c, a.split(',').collect()),
        None => (l, Vec::new()),
    }
}

/// The A76xx answers of the spec's examples ("OK" first, then the result line), for every
/// MQTT command a test does not script itself. Returns false for anything else.
pub fn a76(l: &str, m: &ModemSide) -> bool {
    let (cmd, args) = split_cmd(l);
    let idx = args.first().copied().unwrap_or("0");
    let n = |i: usize| {
        args.get(i)
            .and_then(|a| a.parse::<usize>().ok())
            .unwrap_or(0)
    };
    match (cmd, args.len()) {
        ("AT+CMQTTSTART", 0) => m.say("\r\nOK\r\n\r\n+CMQTTSTART: 0\r\n"),
        ("AT+CMQTTSTOP", 0) => m.say("\r\nOK\r\n\r\n+CMQTTSTOP: 0\r\n"),
        ("AT+CMQTTACCQ", _) | ("AT+CMQTTREL", _) | ("AT+CMQTTCFG", _) => m.say("\r\nOK\r\n"),
        ("AT+CMQTTSSLCFG", _) | ("AT+CSSLCFG", _) | ("AT+CCERTDELE", _) => m.say("\r\nOK\r\n"),
        ("AT+CMQTTCONNECT", _) | ("AT+CMQTTDISC", _) | ("AT+CMQTTPUB", _) => {
            let p = &cmd[2..];
            m.say(&format!("\r\nOK\r\n\r\n{p}: {idx},0\r\n"));
        }
        ("AT+CMQTTTOPIC", 2)
        | ("AT+CMQTTPAYLOAD", 2)
        | ("AT+CMQTTWILLTOPIC", 2)
        | ("AT+CMQTTWILLMSG", 3)
        | ("AT+CMQTTSUBTOPIC", 3)
        | ("AT+CMQTTUNSUBTOPIC", 2)
        | ("AT+CCERTDOWN", 2) => {
            m.prompt(n(1));
            m.say("\r\nOK\r\n");
        }
        ("AT+CMQTTSUB", 4) | ("AT+CMQTTUNSUB", 3) => {
            m.prompt(n(1));
            let p = &cmd[2..];
            m.say(&format!("\r\nOK\r\n\r\n{p}: {idx},0\r\n"));
        }
        ("AT+CMQTTSUB", 2) | ("AT+CMQTTUNSUB", 2) => {
            let p = &cmd[2..];
            m.say(&format!("\r\nOK\r\n\r\n{p}: {idx},0\r\n"));
        }
        ("AT+CMQTTDISC?", 0) => m.say("\r\n+CMQTTDISC: 0,1\r\n+CMQTTDISC: 1,1\r\n\r\nOK\r\n"),
        ("AT+CSQ", 0) => m.say("\r\n+CSQ: 23,0\r\n\r\nOK\r\n"),
        ("AT+CGREG?", 0) => m.say("\r\n+CGREG: 0,1\r\n\r\nOK\r\n"),
        _ => return false,
    }
    true
}

/// Waits up to `timeout` for an event matching `f`; other events are returned too.
pub fn wait_event(
    modem: &cmqtt::Modem,
    timeout: Duration,
    mut f: impl FnMut(&cmqtt::Event) -> bool,
) -> (Option<cmqtt::Event>, Vec<cmqtt::Event>) {
    let deadline = Instant::now() + timeout;
    let mut others = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match modem.recv_event(left) {
            Some(e) if f(&e) => return (Some(e), others),
            Some(e) => others.push(e),
            None => return (None, others),
        }
    }
}

/// Drains the events queued now (waiting `quiet` for stragglers).
pub fn drain_events(modem: &cmqtt::Modem, quiet: Duration) -> Vec<cmqtt::Event> {
    let mut v = Vec::new();
    while let Some(e) = modem.recv_event(quiet) {
        v.push(e);
    }
    v
}

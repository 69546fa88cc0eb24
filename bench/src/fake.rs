//! A scripted modem that answers at once, on a Unix socket pair: the instrument for the host
//! turnaround (nothing between the library and the wire but one socket) and for counting the
//! library's allocations per received message.
//!
//! It answers the few commands a session needs (sync, echo off, identification, START, ACCQ,
//! CONNECT, SUB, TOPIC/PAYLOAD with their prompted data, PUB, DISC, REL) the way an A7600 does
//! with echo off, and timestamps, on its own side, the end of every answer it writes and the
//! arrival of the next bytes from the host.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct FakeModem {
    out: Arc<Mutex<UnixStream>>,
    measuring: Arc<AtomicBool>,
    gaps: Arc<Mutex<Vec<Duration>>>,
    thread: Option<JoinHandle<()>>,
    stream: UnixStream,
}

impl FakeModem {
    /// Starts the modem; returns it and the host's end of the link.
    pub fn start() -> std::io::Result<(FakeModem, UnixStream)> {
        let (host, modem) = UnixStream::pair()?;
        let out = Arc::new(Mutex::new(modem.try_clone()?));
        let measuring = Arc::new(AtomicBool::new(false));
        let gaps = Arc::new(Mutex::new(Vec::with_capacity(1 << 16)));
        let reader = modem.try_clone()?;
        let (o, m, g) = (out.clone(), measuring.clone(), gaps.clone());
        let thread = std::thread::Builder::new()
            .name("fake-modem".into())
            .spawn(move || serve(reader, o, m, g))?;
        Ok((
            FakeModem {
                out,
                measuring,
                gaps,
                thread: Some(thread),
                stream: modem,
            },
            host,
        ))
    }

    /// Start timing answer-to-command gaps (clears earlier ones).
    pub fn measure(&self, on: bool) {
        if on {
            self.gaps.lock().unwrap().clear();
        }
        self.measuring.store(on, Ordering::SeqCst);
    }

    /// The gaps timed so far.
    pub fn gaps(&self) -> Vec<Duration> {
        self.gaps.lock().unwrap().clone()
    }

    /// Writes raw bytes to the host (unsolicited output, e.g. a flood of received messages).
    pub fn inject(&self, bytes: &[u8]) {
        let _ = self.out.lock().unwrap().write_all(bytes);
    }
}

impl Drop for FakeModem {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer_for(line: &[u8]) -> (Vec<u8>, Option<usize>) {
    let text = String::from_utf8_lossy(line).to_ascii_uppercase();
    let ok = b"\r\nOK\r\n".to_vec();
    let with = |s: &str| format!("\r\nOK\r\n\r\n{s}\r\n").into_bytes();
    let num_after_comma = |t: &str| -> usize {
        t.split(',')
            .nth(1)
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    if !text.starts_with("AT") {
        return (Vec::new(), None);
    }
    if text == "AT+CGMM" {
        return (b"\r\nA7600E-H\r\n\r\nOK\r\n".to_vec(), None);
    }
    if text == "AT+CGMR" {
        return (b"\r\n+CGMR: A011B07A7600M7\r\n\r\nOK\r\n".to_vec(), None);
    }
    if text == "AT+CMQTTSTART" {
        return (with("+CMQTTSTART: 0"), None);
    }
    if let Some(a) = text.strip_prefix("AT+CMQTTCONNECT=") {
        let i = a.split(',').next().unwrap_or("0");
        return (with(&format!("+CMQTTCONNECT: {i},0")), None);
    }
    if let Some(a) = text.strip_prefix("AT+CMQTTPUB=") {
        let i = a.split(',').next().unwrap_or("0");
        return (with(&format!("+CMQTTPUB: {i},0")), None);
    }
    if let Some(a) = text.strip_prefix("AT+CMQTTDISC=") {
        let i = a.split(',').next().unwrap_or("0");
        return (with(&format!("+CMQTTDISC: {i},0")), None);
    }
    for p in [
        "AT+CMQTTTOPIC=",
        "AT+CMQTTPAYLOAD=",
        "AT+CMQTTSUB=",
        "AT+CMQTTWILLTOPIC=",
        "AT+CMQTTWILLMSG=",
    ] {
        if let Some(a) = text.strip_prefix(p) {
            return (b"\r\n>".to_vec(), Some(num_after_comma(a)));
        }
    }
    (ok, None)
}

fn serve(
    mut reader: UnixStream,
    out: Arc<Mutex<UnixStream>>,
    measuring: Arc<AtomicBool>,
    gaps: Arc<Mutex<Vec<Duration>>>,
) {
    crate::alloc::exclude_this_thread();
    let mut buf = vec![0u8; 64 * 1024];
    let mut line: Vec<u8> = Vec::new();
    // Prompted data still expected, and the command that asked for it.
    let mut want: Option<(usize, Vec<u8>)> = None;
    let mut answered_at: Option<Instant> = None;
    let send = |bytes: &[u8], answered_at: &mut Option<Instant>| {
        if bytes.is_empty() {
            return;
        }
        let mut o = out.lock().unwrap();
        if o.write_all(bytes).is_ok() {
            *answered_at = Some(Instant::now());
        }
    };
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let arrived = Instant::now();
        if let Some(t) = answered_at.take() {
            if measuring.load(Ordering::Relaxed) {
                gaps.lock().unwrap().push(arrived.duration_since(t));
            }
        }
        let mut i = 0;
        while i < n {
            if let Some((left, cmd)) = want.as_mut() {
                let take = (*left).min(n - i);
                *left -= take;
                i += take;
                if *left == 0 {
                    let cmd = std::mem::take(cmd);
                    want = None;
                    let reply = if cmd.starts_with(b"AT+CMQTTSUB=") {
                        b"\r\nOK\r\n\r\n+CMQTTSUB: 0,0\r\n".to_vec()
                    } else {
                        b"\r\nOK\r\n".to_vec()
                    };
                    send(&reply, &mut answered_at);
                }
                continue;
            }
            let b = buf[i];
            i += 1;
            match b {
                b'\r' | b'\n' => {
                    if line.is_empty() {
                        continue;
                    }
                    let l = std::mem::take(&mut line);
                    let (reply, data) = answer_for(&l);
                    if let Some(len) = data {
                        want = Some((len, l.to_ascii_uppercase()));
                    }
                    send(&reply, &mut answered_at);
                }
                _ => line.push(b),
            }
        }
    }
}

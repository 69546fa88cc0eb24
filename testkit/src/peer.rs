//! Independent MQTT peers: the mosquitto command-line clients.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{proc, require_tool, Broker, HOST};

/// How long a peer may take to connect/subscribe or to publish one message.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// Marks message records in mosquitto_sub's stdout (debug lines from `-d`
/// share the stream). ASCII RS; mosquitto rejects control characters in
/// topics, so it cannot appear inside one.
const RECORD_MARK: u8 = 0x1e;

/// The `-F` format: `RS retain qos length hex-payload topic\n`.
/// The topic comes last so that it may contain spaces.
const FORMAT: &str = "\u{1e}%r %q %l %x %t\n";

/// Keep at most this much mosquitto_sub chatter for diagnostics.
const MAX_CHATTER: usize = 64 * 1024;

/// How a peer connects. `PeerOptions::default()`: plain listener, anonymous,
/// generated client id, clean session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOptions {
    /// Connect to the broker's TLS listener, trusting its CA (`--cafile`).
    pub tls: bool,
    /// With `tls`: present the broker's client certificate (`--cert`,
    /// `--key`). Default `true`; harmless when the broker does not ask for
    /// one. Set to `false` to test `require_client_cert` rejections.
    pub client_cert: bool,
    /// `(username, password)` (`-u`, `-P`).
    pub credentials: Option<(String, String)>,
    /// Client id (`-i`). Default: none given (the tool or the broker picks
    /// a unique one).
    pub client_id: Option<String>,
    /// Clean session (default `true`). `false` (`-c`) needs `client_id`.
    /// Only used by [`Subscriber`].
    pub clean_session: bool,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            tls: false,
            client_cert: true,
            credentials: None,
            client_id: None,
            clean_session: true,
        }
    }
}

impl PeerOptions {
    /// `-h -p` and TLS / auth / id arguments common to both tools.
    fn connect_args(&self, broker: &Broker) -> Result<Vec<OsString>, String> {
        let mut a: Vec<OsString> = vec!["-h".into(), HOST.into()];
        if self.tls {
            let (port, certs) = broker.tls_port().zip(broker.certs()).ok_or(
                "PeerOptions::tls set but the broker has no TLS listener (BrokerOptions::tls)",
            )?;
            a.extend(["-p".into(), port.to_string().into()]);
            a.extend(["--cafile".into(), certs.ca_cert.clone().into_os_string()]);
            if self.client_cert {
                a.extend(["--cert".into(), certs.client_cert.clone().into_os_string()]);
                a.extend(["--key".into(), certs.client_key.clone().into_os_string()]);
            }
        } else {
            a.extend(["-p".into(), broker.port().to_string().into()]);
        }
        if let Some((user, pass)) = &self.credentials {
            a.extend(["-u".into(), user.into(), "-P".into(), pass.into()]);
        }
        if let Some(id) = &self.client_id {
            a.extend(["-i".into(), id.into()]);
        }
        Ok(a)
    }
}

/// One message as seen by a [`Subscriber`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Received {
    /// The topic name, exactly as delivered.
    pub topic: Vec<u8>,
    /// The payload, byte-exact.
    pub payload: Vec<u8>,
    /// The RETAIN flag as delivered to the subscriber (set only for messages
    /// sent because of the subscription, i.e. stored retained messages).
    pub retained: bool,
    /// The QoS of the delivery (the minimum of publish and subscribe QoS).
    pub qos: u8,
}

impl Received {
    /// The topic as text (lossy).
    pub fn topic_str(&self) -> String {
        String::from_utf8_lossy(&self.topic).into_owned()
    }

    /// Parses one record line (without the mark and the newline):
    /// `retain qos length hex topic`.
    fn parse(line: &[u8]) -> Option<Received> {
        let mut parts = line.splitn(5, |&b| b == b' ');
        let retained = match parts.next()? {
            b"0" => false,
            b"1" => true,
            _ => return None,
        };
        let qos = match parts.next()? {
            [d @ b'0'..=b'2'] => d - b'0',
            _ => return None,
        };
        let len: usize = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
        let hex = parts.next()?;
        let topic = parts.next()?.to_vec();
        if hex.len() != 2 * len || topic.is_empty() {
            return None;
        }
        let payload = hex
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Received {
            topic,
            payload,
            retained,
            qos,
        })
    }
}

#[derive(Debug)]
enum Event {
    Msg(Received),
    /// `Subscribed (mid: N): q1, q2` — the SUBACK arrived.
    Subscribed(String),
    Eof,
}

/// A running `mosquitto_sub`, independent of our MQTT code.
///
/// Runs `stdbuf -oL mosquitto_sub -d -N -F ...` (stdout is a pipe, and
/// mosquitto_sub's `-d` lines would otherwise sit in a stdio buffer) and a
/// reader thread that turns its output into [`Received`] values. The process
/// is killed on drop.
///
/// If the broker goes away, mosquitto_sub keeps running, reconnects (about
/// once a second) and subscribes again; see [`Subscriber::subacks`]. It exits
/// only when the broker refuses it (e.g. not authorised).
#[derive(Debug)]
pub struct Subscriber {
    child: Child,
    rx: Receiver<Event>,
    pending: VecDeque<Received>,
    eof: bool,
    chatter: Arc<Mutex<String>>,
    subacks: Arc<AtomicUsize>,
}

impl Subscriber {
    /// Subscribes to `topics` (filters) at `qos` on the broker's plain
    /// listener; returns once the SUBACK was received. Panics after 10 s or
    /// if mosquitto_sub fails (with its output).
    pub fn start(broker: &Broker, topics: &[&str], qos: u8) -> Subscriber {
        Subscriber::start_opts(broker, topics, qos, PeerOptions::default())
    }

    /// Like [`Subscriber::start`], connecting as `opts` says.
    pub fn start_opts(broker: &Broker, topics: &[&str], qos: u8, opts: PeerOptions) -> Subscriber {
        Subscriber::try_start_opts(broker, topics, qos, opts)
            .unwrap_or_else(|e| panic!("cmqtt-testkit: Subscriber::start failed: {e}"))
    }

    /// Like [`Subscriber::start_opts`], but returns the failure (connection
    /// refused, not authorised, TLS error, subscription refused, timeout) as
    /// `Err` with mosquitto_sub's output.
    pub fn try_start_opts(
        broker: &Broker,
        topics: &[&str],
        qos: u8,
        opts: PeerOptions,
    ) -> Result<Subscriber, String> {
        if topics.is_empty() {
            return Err("no topics given".into());
        }
        if qos > 2 {
            return Err(format!("invalid qos {qos}"));
        }
        let mut cmd = Command::new(require_tool("stdbuf"));
        cmd.arg("-oL").arg(require_tool("mosquitto_sub"));
        cmd.args(opts.connect_args(broker)?);
        if !opts.clean_session {
            if opts.client_id.is_none() {
                return Err("clean_session = false needs a client_id".into());
            }
            cmd.arg("-c");
        }
        cmd.args(["-d", "-N", "-F", FORMAT, "-q", &qos.to_string()]);
        for t in topics {
            cmd.arg("-t").arg(t);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let what = format!("{cmd:?}");
        let mut child = proc::spawn(cmd).map_err(|e| format!("cannot run {what}: {e}"))?;

        let chatter = Arc::new(Mutex::new(String::new()));
        let subacks = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        {
            let chatter = chatter.clone();
            let subacks = subacks.clone();
            std::thread::spawn(move || {
                if let Some(out) = stdout {
                    read_stdout(out, &tx, &chatter, &subacks);
                }
                let _ = tx.send(Event::Eof);
            });
        }
        {
            let chatter = chatter.clone();
            std::thread::spawn(move || {
                if let Some(err) = stderr {
                    for line in BufReader::new(err).split(b'\n').map_while(Result::ok) {
                        note(&chatter, &String::from_utf8_lossy(&line));
                    }
                }
            });
        }

        let mut sub = Subscriber {
            child,
            rx,
            pending: VecDeque::new(),
            eof: false,
            chatter,
            subacks,
        };
        let deadline = Instant::now() + PEER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match sub.rx.recv_timeout(left) {
                // With a persistent session, queued messages may arrive
                // before the SUBACK.
                Ok(Event::Msg(m)) => sub.pending.push_back(m),
                Ok(Event::Subscribed(line)) => {
                    let refused = line
                        .rsplit("):")
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .any(|q| q.trim() == "128");
                    if refused {
                        return Err(format!(
                            "subscription refused by the broker: {line}\n{what}\n{}",
                            sub.diagnostics()
                        ));
                    }
                    return Ok(sub);
                }
                Ok(Event::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    // Let the stderr thread catch up.
                    let _ = sub.child.wait();
                    std::thread::sleep(Duration::from_millis(20));
                    return Err(format!(
                        "mosquitto_sub exited before SUBACK\n{what}\n{}",
                        sub.diagnostics()
                    ));
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "no SUBACK within {PEER_TIMEOUT:?}\n{what}\n{}",
                        sub.diagnostics()
                    ));
                }
            }
        }
    }

    /// The next message, waiting up to `timeout`. `None` on timeout or if
    /// mosquitto_sub has exited.
    pub fn next(&mut self, timeout: Duration) -> Option<Received> {
        if let Some(m) = self.pending.pop_front() {
            return Some(m);
        }
        if self.eof {
            return None;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Event::Msg(m)) => return Some(m),
                Ok(Event::Subscribed(_)) => continue,
                Ok(Event::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    self.eof = true;
                    return None;
                }
                Err(RecvTimeoutError::Timeout) => return None,
            }
        }
    }

    /// Messages until `n` were received or `timeout` (in total) has passed;
    /// may return fewer than `n`.
    pub fn collect(&mut self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Some(m) => out.push(m),
                None => break,
            }
        }
        out
    }

    /// Whether the mosquitto_sub process is alive (it exits, e.g., when the
    /// broker refuses it).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// How many SUBACKs mosquitto_sub has received: 1 after `start`, one more
    /// after each automatic reconnect (e.g. after [`Broker::restart`]), so
    /// `wait_until(t, || sub.subacks() >= 2)` waits until it is subscribed
    /// again.
    pub fn subacks(&self) -> usize {
        self.subacks.load(Ordering::SeqCst)
    }

    /// mosquitto_sub's debug output and stderr so far (the last 64 KiB), for
    /// assertion messages.
    pub fn diagnostics(&self) -> String {
        self.chatter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn note(chatter: &Mutex<String>, line: &str) {
    let mut c = chatter.lock().unwrap_or_else(|e| e.into_inner());
    if c.len() > MAX_CHATTER {
        let mut cut = c.len() - MAX_CHATTER / 2;
        while !c.is_char_boundary(cut) {
            cut += 1;
        }
        c.drain(..cut);
    }
    c.push_str(line);
    c.push('\n');
}

fn read_stdout(
    out: impl Read,
    tx: &mpsc::Sender<Event>,
    chatter: &Mutex<String>,
    subacks: &AtomicUsize,
) {
    let mut r = BufReader::new(out);
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if let Some(rec) = line.strip_prefix(&[RECORD_MARK]) {
            match Received::parse(rec) {
                Some(m) => {
                    if tx.send(Event::Msg(m)).is_err() {
                        return;
                    }
                }
                None => note(
                    chatter,
                    &format!("unparsable record: {}", String::from_utf8_lossy(rec)),
                ),
            }
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        note(chatter, &text);
        let suback = text.starts_with("Subscribed (mid:");
        if suback {
            subacks.fetch_add(1, Ordering::SeqCst);
        }
        if suback && tx.send(Event::Subscribed(text.into_owned())).is_err() {
            return;
        }
    }
}

/// Publishes one message with `mosquitto_pub` on the plain listener and waits
/// for it to exit (for QoS 1/2 that is after the broker acknowledged).
/// Panics with mosquitto_pub's stderr on failure or after 10 s.
pub fn publish(broker: &Broker, topic: &str, payload: &[u8], qos: u8, retain: bool) {
    publish_opts(broker, topic, payload, qos, retain, &PeerOptions::default());
}

/// Like [`publish`], connecting as `opts` says.
pub fn publish_opts(
    broker: &Broker,
    topic: &str,
    payload: &[u8],
    qos: u8,
    retain: bool,
    opts: &PeerOptions,
) {
    if let Err(e) = try_publish_opts(broker, topic, payload, qos, retain, opts) {
        panic!("cmqtt-testkit: publish to {topic:?} failed: {e}");
    }
}

/// Like [`publish_opts`], but returns a failure (non-zero exit, e.g. not
/// authorised, or a timeout) as `Err` with mosquitto_pub's output.
///
/// The payload goes through stdin with `-s` (binary-safe); an empty payload
/// uses `-n`, because `-s` refuses zero-length input.
pub fn try_publish_opts(
    broker: &Broker,
    topic: &str,
    payload: &[u8],
    qos: u8,
    retain: bool,
    opts: &PeerOptions,
) -> Result<(), String> {
    if qos > 2 {
        return Err(format!("invalid qos {qos}"));
    }
    let mut cmd = Command::new(require_tool("mosquitto_pub"));
    cmd.args(opts.connect_args(broker)?);
    cmd.arg("-t").arg(topic).arg("-q").arg(qos.to_string());
    if retain {
        cmd.arg("-r");
    }
    cmd.arg(if payload.is_empty() { "-n" } else { "-s" });
    let what = format!("{cmd:?}");
    let out = proc::run(cmd, payload, PEER_TIMEOUT)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} exited with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

//! Real MQTT connections: one tokio task per connected client slot, speaking
//! MQTT 3.1.1 (or 3.1 when configured) over TCP or TLS to the broker.
//!
//! The task never reconnects: when the connection dies it reports
//! `Lost` once and ends, like a modem that needs a new `AT+CMQTTCONNECT`.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{ConnectReturnCode, Packet, SubscribeReasonCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc as tmpsc;
use tokio::time::Instant;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;

use crate::codes;
use crate::inbox::Inbox;
use crate::session::{SessCmd, SessionEvent, SessionHandle};
use crate::wire;

pub(crate) struct TlsParams {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
    pub handshake_timeout: Duration,
}

pub(crate) struct ConnectParams {
    pub session: u64,
    pub host: String,
    pub port: u16,
    /// 3 = MQTT 3.1, 4 = MQTT 3.1.1.
    pub level: u8,
    pub client_id: Vec<u8>,
    pub keepalive: u16,
    pub clean: bool,
    /// (topic, message, qos)
    pub will: Option<(Vec<u8>, Vec<u8>, u8)>,
    pub username: Option<Vec<u8>>,
    pub password: Option<Vec<u8>>,
    pub tls: Option<TlsParams>,
    /// DNS/TCP/CONNACK timeout.
    pub op_timeout: Duration,
}

/// A session with no network behind it, for running the engine offline
/// (fuzzing): the engine's commands arrive on the returned receiver and
/// [`loopback_answer`] answers them as a broker that accepts everything and
/// echoes every publish back.
pub(crate) fn loopback_session(session: u64) -> (SessionHandle, tmpsc::UnboundedReceiver<SessCmd>) {
    let (tx, rx) = tmpsc::unbounded_channel();
    (SessionHandle::new(session, tx), rx)
}

/// What a loopback broker answers to `cmd` of session `session`.
pub(crate) fn loopback_answer(session: u64, cmd: SessCmd) -> Vec<SessionEvent> {
    match cmd {
        SessCmd::Publish {
            op, topic, payload, ..
        } => vec![
            SessionEvent::Done { op, code: 0 },
            SessionEvent::Rx {
                session,
                topic,
                payload,
            },
        ],
        SessCmd::Subscribe { op, .. }
        | SessCmd::Unsubscribe { op, .. }
        | SessCmd::Disconnect { op } => vec![SessionEvent::Done { op, code: 0 }],
        SessCmd::Abort => Vec::new(),
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Starts connecting; the outcome arrives as `SessionEvent::Connected`.
pub(crate) fn spawn_connect(
    rt: &tokio::runtime::Handle,
    p: ConnectParams,
    op: u64,
    events: mpsc::Sender<Inbox>,
) {
    rt.spawn(async move {
        match establish(&p).await {
            Ok((stream, leftover)) => {
                let (tx, rx) = tmpsc::unbounded_channel();
                let handle = SessionHandle::new(p.session, tx);
                let _ = events.send(Inbox::Session(SessionEvent::Connected {
                    op,
                    result: Ok(handle),
                }));
                let session = Session {
                    id: p.session,
                    stream,
                    rbuf: leftover,
                    events,
                    keepalive: Duration::from_secs(u64::from(p.keepalive)),
                };
                session.run(rx).await;
            }
            Err(code) => {
                let _ = events.send(Inbox::Session(SessionEvent::Connected {
                    op,
                    result: Err(code),
                }));
            }
        }
    });
}

fn connect_error_code(e: &io::Error) -> u8 {
    match e.kind() {
        io::ErrorKind::TimedOut => codes::TIMEOUT,
        _ => codes::SOCK_CONNECT_FAIL,
    }
}

async fn establish(p: &ConnectParams) -> Result<(Box<dyn Io>, BytesMut), u8> {
    let t = p.op_timeout;
    let addrs: Vec<std::net::SocketAddr> =
        match tokio::time::timeout(t, tokio::net::lookup_host((p.host.as_str(), p.port))).await {
            Err(_) => return Err(codes::DNS_ERROR),
            Ok(Err(e)) => {
                log::info!("DNS lookup of {} failed: {e}", p.host);
                return Err(codes::DNS_ERROR);
            }
            Ok(Ok(a)) => a.collect(),
        };
    if addrs.is_empty() {
        return Err(codes::DNS_ERROR);
    }
    let deadline = Instant::now() + t;
    let mut last = codes::SOCK_CONNECT_FAIL;
    let mut tcp = None;
    for addr in addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => {
                last = codes::TIMEOUT;
                break;
            }
            Ok(Err(e)) => {
                log::info!("TCP connect to {addr} failed: {e}");
                last = connect_error_code(&e);
            }
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
        }
    }
    let tcp = tcp.ok_or(last)?;
    let _ = tcp.set_nodelay(true);
    let mut stream: Box<dyn Io> = match &p.tls {
        None => Box::new(tcp),
        Some(tls) => {
            let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
            match tokio::time::timeout(
                tls.handshake_timeout,
                connector.connect(tls.server_name.clone(), tcp),
            )
            .await
            {
                Err(_) => {
                    log::info!("TLS handshake timed out");
                    return Err(codes::HANDSHAKE_FAIL);
                }
                Ok(Err(e)) => {
                    log::info!("TLS handshake failed: {e}");
                    return Err(codes::HANDSHAKE_FAIL);
                }
                Ok(Ok(s)) => Box::new(s),
            }
        }
    };
    let will = p.will.as_ref().map(|(topic, message, qos)| wire::Will {
        topic,
        message,
        qos: *qos,
    });
    let packet = wire::connect(&wire::ConnectFields {
        level: p.level,
        client_id: &p.client_id,
        keepalive: p.keepalive,
        clean: p.clean,
        will,
        username: p.username.as_deref(),
        password: p.password.as_deref(),
    });
    let connack = async {
        stream.write_all(&packet).await?;
        stream.flush().await?;
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            match Packet::read(&mut buf, wire::MAX_INCOMING) {
                Ok(pkt) => return Ok::<_, io::Error>(Some((pkt, buf))),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => {
                    log::info!("bad packet while waiting for CONNACK: {e}");
                    return Ok(None);
                }
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
        }
    };
    match tokio::time::timeout_at(Instant::now() + t, connack).await {
        Err(_) => Err(codes::TIMEOUT),
        Ok(Err(e)) => {
            log::info!("connection closed before CONNACK: {e}");
            Err(codes::CLOSED_BY_SERVER)
        }
        Ok(Ok(None)) => Err(codes::PACKET_FAIL),
        Ok(Ok(Some((Packet::ConnAck(ack), buf)))) => match ack.code {
            ConnectReturnCode::Success => Ok((stream, buf)),
            ConnectReturnCode::RefusedProtocolVersion => Err(codes::REFUSED_PROTOCOL_VERSION),
            ConnectReturnCode::BadClientId => Err(codes::REFUSED_IDENTIFIER),
            ConnectReturnCode::ServiceUnavailable => Err(codes::REFUSED_SERVER_UNAVAILABLE),
            ConnectReturnCode::BadUserNamePassword => Err(codes::REFUSED_BAD_CREDENTIALS),
            ConnectReturnCode::NotAuthorized => Err(codes::REFUSED_NOT_AUTHORIZED),
        },
        Ok(Ok(Some((other, _)))) => {
            log::info!("expected CONNACK, got {other:?}");
            Err(codes::PACKET_FAIL)
        }
    }
}

/// What an in-flight packet id is waiting for.
#[derive(Debug)]
enum Awaiting {
    PubAck,
    PubRec,
    PubComp,
    SubAck,
    UnsubAck,
}

#[derive(Debug)]
struct Pending {
    op: u64,
    awaiting: Awaiting,
    deadline: Instant,
}

struct Session {
    id: u64,
    stream: Box<dyn Io>,
    rbuf: BytesMut,
    events: mpsc::Sender<Inbox>,
    keepalive: Duration,
}

enum Wake {
    Cmd(Option<SessCmd>),
    Read(io::Result<usize>),
    Timer,
}

/// How long after a SUBACK the result is held back so that retained
/// messages the broker sends right after it are reported first (as real
/// modems do: the retained message lands between `OK` and `+CMQTTSUB`).
/// mosquitto writes the retained PUBLISH in a second small segment that
/// Nagle holds until our delayed ACK (~40 ms on Linux), hence the margin.
const SUBACK_GRACE: Duration = Duration::from_millis(150);

impl Session {
    fn emit(&self, e: SessionEvent) {
        let _ = self.events.send(Inbox::Session(e));
    }

    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    async fn run(mut self, mut rx: tmpsc::UnboundedReceiver<SessCmd>) {
        let mut pending: HashMap<u16, Pending> = HashMap::new();
        let mut awaiting_rel: HashSet<u16> = HashSet::new();
        let mut next_pkid: u16 = 0;
        let mut last_tx = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        // (op, code, when)
        let mut delayed: Vec<(u64, u8, Instant)> = Vec::new();
        let cause = 'session: loop {
            // Earliest timer.
            let mut deadline = Instant::now() + Duration::from_secs(3600);
            for p in pending.values() {
                deadline = deadline.min(p.deadline);
            }
            for (_, _, at) in &delayed {
                deadline = deadline.min(*at);
            }
            if !self.keepalive.is_zero() {
                match ping_sent {
                    None => deadline = deadline.min(last_tx + self.keepalive),
                    Some(at) => deadline = deadline.min(at + ping_timeout(self.keepalive)),
                }
            }

            let wake = tokio::select! {
                c = rx.recv() => Wake::Cmd(c),
                r = self.stream.read_buf(&mut self.rbuf) => Wake::Read(r),
                _ = tokio::time::sleep_until(deadline) => Wake::Timer,
            };

            match wake {
                Wake::Cmd(None) | Wake::Cmd(Some(SessCmd::Abort)) => {
                    // Abrupt close: drop the socket without DISCONNECT.
                    for (_, p) in pending.drain() {
                        self.emit(SessionEvent::Done {
                            op: p.op,
                            code: codes::MESSAGE_RECEIVE_FAIL,
                        });
                    }
                    return;
                }
                Wake::Cmd(Some(SessCmd::Disconnect { op })) => {
                    let _ = self.send(&wire::disconnect()).await;
                    let _ = self.stream.shutdown().await;
                    for (_, p) in pending.drain() {
                        self.emit(SessionEvent::Done {
                            op: p.op,
                            code: codes::MESSAGE_RECEIVE_FAIL,
                        });
                    }
                    self.emit(SessionEvent::Done { op, code: 0 });
                    return;
                }
                Wake::Cmd(Some(SessCmd::Publish {
                    op,
                    topic,
                    payload,
                    qos,
                    retain,
                    dup,
                    timeout,
                })) => {
                    let pkid = if qos > 0 {
                        alloc_pkid(&mut next_pkid, &pending)
                    } else {
                        0
                    };
                    let bytes = wire::publish(&topic, &payload, qos, retain, dup, pkid);
                    if let Err(e) = self.send(&bytes).await {
                        self.emit(SessionEvent::Done {
                            op,
                            code: codes::SOCK_SENDING_FAIL,
                        });
                        break 'session io_cause(&e);
                    }
                    last_tx = Instant::now();
                    if qos == 0 {
                        self.emit(SessionEvent::Done { op, code: 0 });
                    } else {
                        pending.insert(
                            pkid,
                            Pending {
                                op,
                                awaiting: if qos == 1 {
                                    Awaiting::PubAck
                                } else {
                                    Awaiting::PubRec
                                },
                                deadline: Instant::now() + timeout,
                            },
                        );
                    }
                }
                Wake::Cmd(Some(SessCmd::Subscribe {
                    op,
                    topics,
                    timeout,
                })) => {
                    let pkid = alloc_pkid(&mut next_pkid, &pending);
                    if let Err(e) = self.send(&wire::subscribe(pkid, &topics)).await {
                        self.emit(SessionEvent::Done {
                            op,
                            code: codes::SOCK_SENDING_FAIL,
                        });
                        break 'session io_cause(&e);
                    }
                    last_tx = Instant::now();
                    pending.insert(
                        pkid,
                        Pending {
                            op,
                            awaiting: Awaiting::SubAck,
                            deadline: Instant::now() + timeout,
                        },
                    );
                }
                Wake::Cmd(Some(SessCmd::Unsubscribe {
                    op,
                    topics,
                    timeout,
                })) => {
                    let pkid = alloc_pkid(&mut next_pkid, &pending);
                    if let Err(e) = self.send(&wire::unsubscribe(pkid, &topics)).await {
                        self.emit(SessionEvent::Done {
                            op,
                            code: codes::SOCK_SENDING_FAIL,
                        });
                        break 'session io_cause(&e);
                    }
                    last_tx = Instant::now();
                    pending.insert(
                        pkid,
                        Pending {
                            op,
                            awaiting: Awaiting::UnsubAck,
                            deadline: Instant::now() + timeout,
                        },
                    );
                }
                Wake::Read(Err(e)) => break 'session io_cause(&e),
                Wake::Read(Ok(0)) => break 'session codes::LOST_CLOSED_PASSIVELY,
                Wake::Read(Ok(_)) => loop {
                    let pkt = match Packet::read(&mut self.rbuf, wire::MAX_INCOMING) {
                        Ok(p) => p,
                        Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => break,
                        Err(rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(n)) => {
                            log::warn!("broker sent a {n}-byte packet: closing");
                            break 'session codes::LOST_CLOSED_PASSIVELY;
                        }
                        Err(e) => {
                            // The packet's bytes were consumed: skip it.
                            log::warn!("undecodable packet from broker skipped: {e}");
                            continue;
                        }
                    };
                    let reply: Option<Vec<u8>> = match pkt {
                        Packet::Publish(p) => {
                            let qos = p.qos as u8;
                            let fresh = qos < 2 || !awaiting_rel.contains(&p.pkid);
                            if fresh {
                                self.emit(SessionEvent::Rx {
                                    session: self.id,
                                    topic: p.topic.into_bytes(),
                                    payload: p.payload.to_vec(),
                                });
                            }
                            match qos {
                                1 => Some(wire::puback(p.pkid)),
                                2 => {
                                    awaiting_rel.insert(p.pkid);
                                    Some(wire::pubrec(p.pkid))
                                }
                                _ => None,
                            }
                        }
                        Packet::PubRel(r) => {
                            awaiting_rel.remove(&r.pkid);
                            Some(wire::pubcomp(r.pkid))
                        }
                        Packet::PubAck(a) => {
                            if let Some(p) =
                                take_if(&mut pending, a.pkid, |w| matches!(w, Awaiting::PubAck))
                            {
                                self.emit(SessionEvent::Done { op: p.op, code: 0 });
                            }
                            None
                        }
                        Packet::PubRec(r) => {
                            if let Some(p) = pending.get_mut(&r.pkid) {
                                if matches!(p.awaiting, Awaiting::PubRec) {
                                    p.awaiting = Awaiting::PubComp;
                                }
                            }
                            Some(wire::pubrel(r.pkid))
                        }
                        Packet::PubComp(c) => {
                            if let Some(p) =
                                take_if(&mut pending, c.pkid, |w| matches!(w, Awaiting::PubComp))
                            {
                                self.emit(SessionEvent::Done { op: p.op, code: 0 });
                            }
                            None
                        }
                        Packet::SubAck(s) => {
                            if let Some(p) =
                                take_if(&mut pending, s.pkid, |w| matches!(w, Awaiting::SubAck))
                            {
                                let failed = s
                                    .return_codes
                                    .iter()
                                    .any(|c| matches!(c, SubscribeReasonCode::Failure));
                                let code = if failed {
                                    codes::MESSAGE_RECEIVE_FAIL
                                } else {
                                    0
                                };
                                delayed.push((p.op, code, Instant::now() + SUBACK_GRACE));
                            }
                            None
                        }
                        Packet::UnsubAck(u) => {
                            if let Some(p) =
                                take_if(&mut pending, u.pkid, |w| matches!(w, Awaiting::UnsubAck))
                            {
                                self.emit(SessionEvent::Done { op: p.op, code: 0 });
                            }
                            None
                        }
                        Packet::PingResp => {
                            ping_sent = None;
                            None
                        }
                        other => {
                            log::debug!("ignoring unexpected packet {other:?}");
                            None
                        }
                    };
                    if let Some(bytes) = reply {
                        if let Err(e) = self.send(&bytes).await {
                            break 'session io_cause(&e);
                        }
                        last_tx = Instant::now();
                    }
                },
                Wake::Timer => {
                    let now = Instant::now();
                    let expired: Vec<u16> = pending
                        .iter()
                        .filter(|(_, p)| p.deadline <= now)
                        .map(|(k, _)| *k)
                        .collect();
                    for k in expired {
                        if let Some(p) = pending.remove(&k) {
                            self.emit(SessionEvent::Done {
                                op: p.op,
                                code: codes::TIMEOUT,
                            });
                        }
                    }
                    let (due, later): (Vec<_>, Vec<_>) =
                        delayed.drain(..).partition(|(_, _, at)| *at <= now);
                    delayed = later;
                    for (op, code, _) in due {
                        self.emit(SessionEvent::Done { op, code });
                    }
                    if !self.keepalive.is_zero() {
                        match ping_sent {
                            Some(at) if now >= at + ping_timeout(self.keepalive) => {
                                log::info!("no PINGRESP: connection considered lost");
                                break 'session codes::LOST_CLOSED_PASSIVELY;
                            }
                            None if now >= last_tx + self.keepalive => {
                                if let Err(e) = self.send(&wire::pingreq()).await {
                                    break 'session io_cause(&e);
                                }
                                last_tx = now;
                                ping_sent = Some(now);
                            }
                            _ => {}
                        }
                    }
                }
            }
        };
        // The connection died: fail what was in flight, then report the loss.
        for (op, code, _) in delayed.drain(..) {
            self.emit(SessionEvent::Done { op, code });
        }
        for (_, p) in pending.drain() {
            self.emit(SessionEvent::Done {
                op: p.op,
                code: codes::MESSAGE_RECEIVE_FAIL,
            });
        }
        self.emit(SessionEvent::Lost {
            session: self.id,
            cause,
        });
    }
}

fn ping_timeout(keepalive: Duration) -> Duration {
    keepalive.max(Duration::from_secs(5))
}

fn io_cause(e: &io::Error) -> u8 {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => codes::LOST_RESET,
        _ => codes::LOST_CLOSED_PASSIVELY,
    }
}

fn alloc_pkid(next: &mut u16, pending: &HashMap<u16, Pending>) -> u16 {
    for _ in 0..u16::MAX {
        *next = next.wrapping_add(1);
        if *next == 0 {
            *next = 1;
        }
        if !pending.contains_key(next) {
            return *next;
        }
    }
    *next
}

fn take_if(
    pending: &mut HashMap<u16, Pending>,
    pkid: u16,
    f: impl Fn(&Awaiting) -> bool,
) -> Option<Pending> {
    if pending.get(&pkid).is_some_and(|p| f(&p.awaiting)) {
        pending.remove(&pkid)
    } else {
        None
    }
}

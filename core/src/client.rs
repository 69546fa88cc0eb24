//! One MQTT client of the modem (index 0 or 1): acquire, configure, connect, publish,
//! subscribe, receive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::command::{self, CfgSetting, ClientConfig};
use crate::error::{Error, Result};
use crate::event::Message;
use crate::profile::VersionDialect;
use crate::session::Session;
use crate::session::{ConnectionLostCallback, MessageCallback};

/// How to acquire a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// 1..=128 bytes, no `"`.
    pub client_id: String,
    /// Connect to an SSL/TLS server (`<server_type>` 1).
    pub tls: bool,
    /// The MQTT version: 3 = 3.1 (the modem's default), 4 = 3.1.1 (needed by Azure IoT Hub).
    /// Sent the way the model takes it (ACCQ argument or CMQTTCFG).
    pub version: Option<u8>,
    /// Whether the modem checks that topics are UTF-8 (its default: on).
    pub check_utf8: Option<bool>,
    /// The modem's send/receive operation timeout, 20..=120 s.
    pub op_timeout: Option<u32>,
    /// The SSL context (0..=9) for TLS; the modem uses the client index when unset.
    pub ssl_ctx: Option<u8>,
}

impl ClientOptions {
    /// Defaults for `client_id`: plain TCP, the modem's own defaults for everything else.
    pub fn new(client_id: &str) -> Self {
        ClientOptions {
            client_id: client_id.to_string(),
            tls: false,
            version: None,
            check_utf8: None,
            op_timeout: None,
            ssl_ctx: None,
        }
    }
}

/// How to connect to a broker.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The broker, in any form [`crate::BrokerUrl`] takes: `tcp://host[:port]`, `mqtt://`,
    /// `mqtts://` / `ssl://` (port 8883 by default; the client must be acquired with TLS, which
    /// is what chooses TLS on the modem), or a bare `host[:port]`; `user:password@` in the URL
    /// is used when [`ConnectOptions::username`] and [`ConnectOptions::password`] are unset.
    /// The modem is sent `tcp://host:port`.
    pub server: String,
    /// Keepalive, 1..=64800 s. Default 60.
    pub keepalive: u32,
    /// Clean session. Default true.
    pub clean_session: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// How long to wait for the broker's answer. Default 120 s (cellular TLS handshakes are slow).
    pub timeout: Duration,
}

impl ConnectOptions {
    /// Defaults for `server`.
    pub fn new(server: impl Into<String>) -> Self {
        ConnectOptions {
            server: server.into(),
            keepalive: 60,
            clean_session: true,
            username: None,
            password: None,
            timeout: Duration::from_secs(120),
        }
    }

    /// Set user name and password.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = Some(user.into());
        self.password = Some(password.into());
        self
    }
}

/// What [`ConnectOptions::server`] and the credentials come to for the modem.
pub(crate) struct Resolved {
    pub server: String,
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl ConnectOptions {
    /// Parses the server (any form [`crate::BrokerUrl`] takes); credentials given in the
    /// options win over those in the URL.
    pub(crate) fn resolve(&self) -> Result<Resolved> {
        let url = crate::url::BrokerUrl::parse(&self.server)?;
        let (username, password) = if self.username.is_some() || self.password.is_some() {
            (self.username.clone(), self.password.clone())
        } else {
            (url.username.clone(), url.password.clone())
        };
        Ok(Resolved {
            server: url.modem_server(),
            tls: url.tls,
            username,
            password,
        })
    }
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("server", &crate::url::redact(&self.server))
            .field("keepalive", &self.keepalive)
            .field("clean_session", &self.clean_session)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A message to publish, for [`Client::publish_message`].
#[derive(Debug, Clone, Copy)]
pub struct Publish<'a> {
    pub topic: &'a [u8],
    pub payload: &'a [u8],
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    /// The modem's `<pub_timeout>`: 60..=180 s.
    pub timeout: Duration,
}

/// An acquired MQTT client (index 0 or 1). Released (`AT+CMQTTREL`, after disconnecting if
/// needed) when dropped or with [`Client::release`].
///
/// All methods take `&self` and are safe from several threads; the operations of one client are
/// serialised (a publish is TOPIC + PAYLOAD + PUB and nothing comes between them).
pub struct Client {
    session: Arc<Session>,
    index: u8,
    released: AtomicBool,
    /// The modem's restart count when this client was acquired: after a restart the modem no
    /// longer knows the client, and there is nothing to release.
    generation: u64,
    /// Identifies this handle to the callback slots: a stale handle clears only its own.
    token: u64,
    /// Acquired for TLS (`mqtts://` servers need it).
    tls: bool,
    /// Serialises multi-command operations of this client.
    op: Mutex<()>,
    check_utf8: AtomicBool,
    /// The firmware refused `AT+CMQTTSUBTOPIC`: subscribe with the one-shot form only.
    subtopic_broken: AtomicBool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("index", &self.index)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Client {
    pub(crate) fn acquire(session: Arc<Session>, index: u8, o: &ClientOptions) -> Result<Client> {
        let profile = session.profile();
        let accq_version = match (o.version, profile.version_dialect) {
            (Some(v), VersionDialect::Accq) => Some(v),
            _ => None,
        };
        if let Some(v) = o.version {
            if profile.version_dialect == VersionDialect::None {
                return Err(Error::invalid(
                    "version",
                    format!("{} cannot change the MQTT version (got {v})", profile.model),
                ));
            }
        }
        // Check the settings too before the first byte goes out (ACCQ would need a REL).
        {
            use command::Command;
            let cfg = |setting| command::Cfg { index, setting };
            if let (Some(v), VersionDialect::Cfg) = (o.version, profile.version_dialect) {
                cfg(CfgSetting::Version(v)).request(&profile)?;
            }
            if let Some(t) = o.op_timeout {
                cfg(CfgSetting::OpTimeout(t)).request(&profile)?;
            }
            if let Some(ssl_ctx) = o.ssl_ctx {
                command::MqttSslCfg { index, ssl_ctx }.request(&profile)?;
            }
        }
        session.execute(&command::Accq {
            index,
            client_id: o.client_id.clone(),
            tls: o.tls,
            version: accq_version,
        })?;
        let generation = session.shared().health.generation();
        let client = Client {
            session,
            index,
            released: AtomicBool::new(false),
            generation,
            token: crate::dispatch::new_token(),
            tls: o.tls,
            op: Mutex::new(()),
            check_utf8: AtomicBool::new(true),
            subtopic_broken: AtomicBool::new(false),
        };
        client.session.shared().health.set_connected(index, false);
        // Configuration belongs to the acquired client: if any of it fails, release again.
        let configured = (|| {
            if let (Some(v), VersionDialect::Cfg) = (o.version, profile.version_dialect) {
                client.set_version(v)?;
            }
            if let Some(c) = o.check_utf8 {
                client.set_check_utf8(c)?;
            }
            if let Some(t) = o.op_timeout {
                client.set_op_timeout(t)?;
            }
            if let Some(ctx) = o.ssl_ctx {
                client.set_ssl_context(ctx)?;
            }
            Ok(())
        })();
        match configured {
            Ok(()) => Ok(client),
            Err(e) => {
                let _ = client.release();
                Err(e)
            }
        }
    }

    /// The client index (0 or 1).
    pub fn index(&self) -> u8 {
        self.index
    }

    /// Whether the client is connected, as far as the host knows (updated by connect,
    /// disconnect, `+CMQTTCONNLOST`, `+CMQTTNONET` and `RDY`).
    pub fn is_connected(&self) -> bool {
        self.session.shared().health.is_connected(self.index)
    }

    fn live(&self) -> Result<()> {
        if self.released.load(Ordering::SeqCst) {
            return Err(Error::invalid(
                "client",
                format!("client {} was released; acquire it again", self.index),
            ));
        }
        if self.stale() {
            return Err(Error::invalid(
                "client",
                format!(
                    "the modem restarted since client {} was acquired: start the service and acquire it again",
                    self.index
                ),
            ));
        }
        Ok(())
    }

    /// Whether the modem restarted since this client was acquired.
    pub fn is_stale(&self) -> bool {
        self.stale()
    }

    fn stale(&self) -> bool {
        self.session.shared().health.generation() != self.generation
    }

    fn topic_ok(&self, param: &'static str, t: &[u8]) -> Result<()> {
        if self.check_utf8.load(Ordering::Relaxed) {
            command::validate::utf8(param, t)?;
        }
        Ok(())
    }

    // ---- configuration -------------------------------------------------------------------

    /// `AT+CMQTTCFG="checkUTF8"`: whether the modem checks topics and messages for UTF-8.
    pub fn set_check_utf8(&self, on: bool) -> Result<()> {
        self.live()?;
        self.session.execute(&command::Cfg {
            index: self.index,
            setting: CfgSetting::CheckUtf8(on),
        })?;
        self.check_utf8.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// `AT+CMQTTCFG="optimeout"`: 20..=120 s.
    pub fn set_op_timeout(&self, seconds: u32) -> Result<()> {
        self.live()?;
        self.session.execute(&command::Cfg {
            index: self.index,
            setting: CfgSetting::OpTimeout(seconds),
        })
    }

    /// `AT+CMQTTCFG="version"`: 3 (MQTT 3.1) or 4 (MQTT 3.1.1), on models that take it there.
    pub fn set_version(&self, version: u8) -> Result<()> {
        self.live()?;
        self.session.execute(&command::Cfg {
            index: self.index,
            setting: CfgSetting::Version(version),
        })
    }

    /// `AT+CMQTTSSLCFG`: the SSL context (0..=9) this client's TLS connection uses.
    pub fn set_ssl_context(&self, ctx: u8) -> Result<()> {
        self.live()?;
        self.session.execute(&command::MqttSslCfg {
            index: self.index,
            ssl_ctx: ctx,
        })
    }

    /// This client's configuration as the modem reports it (`AT+CMQTTCFG?`).
    pub fn config(&self) -> Result<ClientConfig> {
        let all = self.session.execute(&command::CfgRead)?;
        all.into_iter()
            .find(|c| c.index == self.index)
            .ok_or_else(|| Error::Protocol {
                command: "AT+CMQTTCFG?",
                answer: format!("no line for client {}", self.index),
            })
    }

    /// Set the will (`AT+CMQTTWILLTOPIC` + `AT+CMQTTWILLMSG`), sent with the next connect.
    pub fn set_will(&self, topic: impl AsRef<[u8]>, message: &[u8], qos: u8) -> Result<()> {
        self.live()?;
        let topic = topic.as_ref();
        let p = self.session.profile();
        // Check both before sending either, so a bad message leaves no half-set will.
        command::validate_will(&p, topic, message, qos)?;
        self.topic_ok("will topic", topic)?;
        let _op = self.op.lock();
        self.session.execute(&command::WillTopic {
            index: self.index,
            topic,
        })?;
        self.session.execute(&command::WillMsg {
            index: self.index,
            message,
            qos,
        })
    }

    // ---- connection --------------------------------------------------------------------------

    /// `AT+CMQTTCONNECT`: returns when the broker accepted (or the modem reports why not).
    pub fn connect(&self, o: &ConnectOptions) -> Result<()> {
        self.live()?;
        let r = o.resolve()?;
        if r.tls && !self.tls {
            return Err(Error::invalid(
                "server",
                format!(
                    "{} asks for TLS but client {} was acquired without it: acquire it with TLS (ClientOptions::tls, tls=True in Python, --tls)",
                    crate::url::redact(&o.server),
                    self.index
                ),
            ));
        }
        let _op = self.op.lock();
        self.session.execute(&command::Connect {
            index: self.index,
            server: &r.server,
            keepalive: o.keepalive,
            clean_session: o.clean_session,
            username: r.username.as_deref(),
            password: r.password.as_deref(),
            timeout: o.timeout,
        })?;
        self.session.shared().health.set_connected(self.index, true);
        Ok(())
    }

    /// `AT+CMQTTDISC`: `timeout` is 0 (the model's default) or 60..=180 s.
    pub fn disconnect(&self, timeout: Duration) -> Result<()> {
        self.live()?;
        let secs = timeout.as_secs() as u32;
        let secs = if secs == 0 {
            self.session.profile().disc_default_timeout
        } else {
            secs
        };
        let _op = self.op.lock();
        let r = self.session.execute(&command::Disc {
            index: self.index,
            timeout: secs,
        });
        if r.is_ok() || matches!(&r, Err(e) if e.err_code() == Some(crate::ErrCode::NoConnection)) {
            self.session
                .shared()
                .health
                .set_connected(self.index, false);
        }
        r
    }

    /// Whether the modem says this client is connected (`AT+CMQTTDISC?`).
    pub fn query_connected(&self) -> Result<bool> {
        let states = self.session.execute(&command::DiscRead)?;
        Ok(states
            .into_iter()
            .any(|(i, connected)| i == self.index && connected))
    }

    // ---- publish -----------------------------------------------------------------------------

    /// Publish and wait until the modem reports the result: for QoS 1 and 2 that is the broker's
    /// acknowledgement. `timeout` is the modem's `<pub_timeout>`, 60..=180 s.
    pub fn publish(
        &self,
        topic: impl AsRef<[u8]>,
        payload: &[u8],
        qos: impl Into<u8>,
        retain: bool,
        timeout: Duration,
    ) -> Result<()> {
        self.publish_message(&Publish {
            topic: topic.as_ref(),
            payload,
            qos: qos.into(),
            retain,
            dup: false,
            timeout,
        })
    }

    /// [`Client::publish`] with every flag.
    pub fn publish_message(&self, m: &Publish<'_>) -> Result<()> {
        self.live()?;
        let p = self.session.profile();
        let pub_cmd = command::Pub {
            index: self.index,
            qos: m.qos,
            pub_timeout: m.timeout.as_secs().min(u32::MAX as u64) as u32,
            retain: m.retain,
            dup: m.dup,
        };
        // Every argument is checked before the first byte goes out.
        let topic_cmd = command::Topic {
            index: self.index,
            topic: m.topic,
        };
        let payload_cmd = command::Payload {
            index: self.index,
            payload: m.payload,
        };
        use command::Command;
        // Built once: the requests are both the check and what is sent.
        let topic_req = topic_cmd.request(&p)?;
        let payload_req = if m.payload.is_empty() {
            None
        } else {
            Some(payload_cmd.request(&p)?)
        };
        let pub_req = pub_cmd.request(&p)?;
        command::validate::publish_topic("topic", m.topic)?;
        self.topic_ok("topic", m.topic)?;
        if !self.is_connected() {
            return Err(Error::NotConnected { client: self.index });
        }
        let _op = self.op.lock();
        self.session.execute_prepared(&topic_cmd, &topic_req)?;
        if let Some(req) = &payload_req {
            self.session.execute_prepared(&payload_cmd, req)?;
        }
        self.session.execute_prepared(&pub_cmd, &pub_req)
    }

    // ---- subscribe ---------------------------------------------------------------------------

    /// Subscribe to one or more `(topic filter, qos)`. One topic uses the one-shot
    /// `AT+CMQTTSUB=<idx>,<len>,<qos>`; several use `AT+CMQTTSUBTOPIC` + `AT+CMQTTSUB`, falling
    /// back to one-shot subscribes on firmware that refuses SUBTOPIC.
    pub fn subscribe<T: AsRef<[u8]>>(&self, topics: &[(T, u8)]) -> Result<()> {
        self.live()?;
        let p = self.session.profile();
        if topics.is_empty() {
            return Err(Error::invalid("topics", "give at least one topic"));
        }
        for (t, q) in topics {
            use command::Command;
            command::SubTopic {
                index: self.index,
                topic: t.as_ref(),
                qos: *q,
            }
            .request(&p)?;
            command::validate::topic_filter("topic", t.as_ref())?;
            self.topic_ok("topic", t.as_ref())?;
        }
        if !self.is_connected() {
            return Err(Error::NotConnected { client: self.index });
        }
        let _op = self.op.lock();
        let one = |t: &[u8], qos: u8| {
            self.session.execute(&command::SubOne {
                index: self.index,
                topic: t,
                qos,
                dup: false,
            })
        };
        if topics.len() == 1 || self.subtopic_broken.load(Ordering::Relaxed) {
            for (t, q) in topics {
                one(t.as_ref(), *q)?;
            }
            return Ok(());
        }
        for (i, (t, q)) in topics.iter().enumerate() {
            let add = || {
                self.session.execute(&command::SubTopic {
                    index: self.index,
                    topic: t.as_ref(),
                    qos: *q,
                })
            };
            // Some firmware refuses SUBTOPIC once and accepts the retry; some never do.
            if let Err(e) = add().or_else(|_| add()) {
                if i == 0 && matches!(e, Error::Modem { .. }) {
                    log::info!("cmqtt: AT+CMQTTSUBTOPIC refused ({e}); using one-shot subscribes");
                    self.subtopic_broken.store(true, Ordering::Relaxed);
                    for (t, q) in topics {
                        one(t.as_ref(), *q)?;
                    }
                    return Ok(());
                }
                return Err(e);
            }
        }
        self.session.execute(&command::Sub {
            index: self.index,
            dup: false,
        })
    }

    /// Unsubscribe from one or more topic filters.
    pub fn unsubscribe<T: AsRef<[u8]>>(&self, topics: &[T]) -> Result<()> {
        self.live()?;
        let p = self.session.profile();
        if topics.is_empty() {
            return Err(Error::invalid("topics", "give at least one topic"));
        }
        for t in topics {
            use command::Command;
            command::UnsubTopic {
                index: self.index,
                topic: t.as_ref(),
            }
            .request(&p)?;
            command::validate::topic_filter("topic", t.as_ref())?;
            self.topic_ok("topic", t.as_ref())?;
        }
        if !self.is_connected() {
            return Err(Error::NotConnected { client: self.index });
        }
        let _op = self.op.lock();
        if topics.len() == 1 {
            return self.session.execute(&command::UnsubOne {
                index: self.index,
                topic: topics[0].as_ref(),
                dup: false,
            });
        }
        for t in topics {
            self.session.execute(&command::UnsubTopic {
                index: self.index,
                topic: t.as_ref(),
            })?;
        }
        self.session.execute(&command::Unsub {
            index: self.index,
            dup: false,
        })
    }

    /// This client's subscribed topics as the modem lists them (`AT+CMQTTSUB?`, SIM7672X
    /// only). Topics the modem lists without a client index are included.
    pub fn subscriptions(&self) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .session
            .execute(&command::SubRead)?
            .into_iter()
            .filter(|(i, _)| i.is_none_or(|i| i == self.index))
            .map(|(_, t)| t)
            .collect())
    }

    // ---- receive -----------------------------------------------------------------------------

    /// The next received message, waiting up to `timeout`. `None` on timeout or when the session
    /// has ended (see [`crate::Modem::closed_reason`]).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Message> {
        self.session.shared().messages[self.index as usize].pop(Some(timeout))
    }

    /// The next received message, waiting as long as the session lives.
    /// The next message, waiting up to `timeout` (`Ok(None)` then) — but never past the
    /// moment this client's connection is lost, the session ends or [`crate::Modem::interrupt`]
    /// is called: then it returns the error (after any message received before). The loop a
    /// subscriber needs, with no polling: it sleeps until one of these happens.
    pub fn next_message(&self, timeout: Duration) -> Result<Option<Message>> {
        use crate::event::Popped;
        let shared = self.session.shared();
        let q = &shared.messages[self.index as usize];
        let deadline = crate::time::deadline_after(timeout);
        let interrupts = shared.interrupts.load(Ordering::SeqCst);
        loop {
            let since = q.pokes();
            if let Some(m) = q.try_pop() {
                return Ok(Some(m));
            }
            if let Some(r) = shared.closed_reason() {
                return Err(Error::Closed(r));
            }
            if !self.is_connected() {
                let h = shared.health.snapshot();
                return Err(match h.last_cause[self.index as usize] {
                    Some(cause) if h.losses[self.index as usize] > 0 => Error::ConnectionLost {
                        client: self.index,
                        cause,
                    },
                    _ => Error::NotConnected { client: self.index },
                });
            }
            if shared.interrupts.load(Ordering::SeqCst) != interrupts {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "waiting for a message was interrupted",
                )));
            }
            match q.pop_until_poked(deadline, since) {
                Popped::Item(m) => return Ok(Some(m)),
                Popped::Timeout => return Ok(None),
                Popped::Poked | Popped::Closed => {}
            }
        }
    }

    pub fn recv(&self) -> Option<Message> {
        self.session.shared().messages[self.index as usize].pop(None)
    }

    /// A received message if one is waiting.
    pub fn try_recv(&self) -> Option<Message> {
        self.session.shared().messages[self.index as usize].try_pop()
    }

    /// Messages as they arrive, until none came for `idle` (or the session ended).
    pub fn messages(&self, idle: Duration) -> impl Iterator<Item = Message> + '_ {
        std::iter::from_fn(move || self.recv_timeout(idle))
    }

    /// Messages waiting in this client's queue.
    pub fn pending_messages(&self) -> usize {
        self.session.shared().messages[self.index as usize].len()
    }

    /// Messages dropped because this client's queue was full.
    pub fn dropped_messages(&self) -> u64 {
        self.session.shared().messages[self.index as usize].dropped()
    }

    /// Run `f` on the library's dispatch thread for every message: the dispatch thread drains
    /// this client's message queue into it (the queue [`Client::recv_timeout`] reads, so there
    /// is no second queue). `f` runs with no lock held and may call any method of this client
    /// (publish included). A slow `f` makes the queue fill; when full it drops the oldest
    /// message (counted in [`Client::dropped_messages`], reported as [`crate::Event::Overflow`]),
    /// while connection losses are never delayed behind messages (see [`crate::Health`]).
    ///
    /// Replacing a callback returns once the replaced one has returned (at once when called from
    /// a callback). The callback belongs to this handle: a stale handle of the same index (from
    /// before a modem restart) cannot clear it.
    pub fn on_message(&self, f: impl Fn(&Message) + Send + Sync + 'static) {
        let cb: MessageCallback = Arc::new(f);
        self.session
            .shared()
            .set_on_message(self.index, self.token, cb);
    }

    /// Run `f(client, cause)` on the dispatch thread when the broker connection is lost.
    /// [`Client::on_message`] without waiting for the replaced callback to return (for the
    /// supervisor's forwarder, which must not stall behind a user's slow callback).
    pub(crate) fn on_message_nowait(&self, f: impl Fn(&Message) + Send + Sync + 'static) {
        let cb: MessageCallback = Arc::new(f);
        self.session
            .shared()
            .set_on_message_nowait(self.index, self.token, cb);
    }

    pub fn on_connection_lost(&self, f: impl Fn(u8, u8) + Send + Sync + 'static) {
        let cb: ConnectionLostCallback = Arc::new(f);
        self.session
            .shared()
            .set_on_connection_lost(self.index, self.token, cb);
    }

    /// Remove both callbacks of this handle (messages are queued again). Returns once they are
    /// no longer running (at once when called from a callback). Release and drop clear them
    /// too, without waiting.
    pub fn clear_callbacks(&self) {
        self.session
            .shared()
            .clear_client_callbacks(self.index, self.token);
    }

    // ---- release -----------------------------------------------------------------------------

    /// Drop this handle without a word to the modem: for when the modem no longer has the
    /// client (it restarted, the port is gone) or it will be freed another way. Callbacks set
    /// for this index stay until the index is acquired again or released.
    pub fn discard(self) {
        self.released.store(true, Ordering::SeqCst);
    }

    /// Disconnect if connected, then `AT+CMQTTREL`. Done automatically on drop.
    pub fn release(&self) -> Result<()> {
        self.release_within(None)
    }

    fn release_within(&self, limit: Option<Duration>) -> Result<()> {
        if self.released.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // This handle's callbacks only (a newer handle for the same index keeps its own), and
        // without waiting for one that is running: releasing is about the modem, and a release
        // from a thread that the callback waits for must not deadlock.
        self.session
            .shared()
            .clear_client_callbacks_nowait(self.index, self.token);
        if self.stale() {
            return Ok(());
        }
        if self.is_connected() {
            let _op = self.op.lock();
            let t = self.session.profile().disc_default_timeout;
            let _ = self.session.execute_within(
                &command::Disc {
                    index: self.index,
                    timeout: if t == 0 { 60 } else { t },
                },
                limit,
            );
            self.session
                .shared()
                .health
                .set_connected(self.index, false);
        }
        self.session
            .execute_within(&command::Rel { index: self.index }, limit)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if self.released.load(Ordering::SeqCst) || self.session.shared().closed_reason().is_some() {
            return;
        }
        let started = Instant::now();
        // Bounded: a drop must not hang on a modem that stopped answering.
        if let Err(e) = self.release_within(Some(Duration::from_secs(10))) {
            log::debug!(
                "cmqtt: releasing client {} on drop failed after {:?}: {e}",
                self.index,
                started.elapsed()
            );
        }
    }
}

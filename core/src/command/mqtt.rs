//! The `AT+CMQTT*` commands, one type per command and form.

use std::time::Duration;

use super::validate as v;
use super::{num, split_args, unquote, Command, Request, Response};
use crate::error::{Error, Result};
use crate::profile::{Profile, VersionDialect};

/// Extra time allowed beyond a timeout the modem itself enforces, for the answer to travel.
const MARGIN: Duration = Duration::from_secs(15);

/// The name of every MQTT command, for the test form (`=?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttCommand {
    Start,
    Stop,
    Accq,
    Rel,
    SslCfg,
    WillTopic,
    WillMsg,
    Connect,
    Disc,
    Topic,
    Payload,
    Pub,
    SubTopic,
    Sub,
    UnsubTopic,
    Unsub,
    Cfg,
}

impl MqttCommand {
    /// The command as written on the line, e.g. `AT+CMQTTPUB`.
    pub fn at(self) -> &'static str {
        use MqttCommand::*;
        match self {
            Start => "AT+CMQTTSTART",
            Stop => "AT+CMQTTSTOP",
            Accq => "AT+CMQTTACCQ",
            Rel => "AT+CMQTTREL",
            SslCfg => "AT+CMQTTSSLCFG",
            WillTopic => "AT+CMQTTWILLTOPIC",
            WillMsg => "AT+CMQTTWILLMSG",
            Connect => "AT+CMQTTCONNECT",
            Disc => "AT+CMQTTDISC",
            Topic => "AT+CMQTTTOPIC",
            Payload => "AT+CMQTTPAYLOAD",
            Pub => "AT+CMQTTPUB",
            SubTopic => "AT+CMQTTSUBTOPIC",
            Sub => "AT+CMQTTSUB",
            UnsubTopic => "AT+CMQTTUNSUBTOPIC",
            Unsub => "AT+CMQTTUNSUB",
            Cfg => "AT+CMQTTCFG",
        }
    }

    /// The prefix of its information lines, e.g. `+CMQTTPUB:`.
    pub fn prefix(self) -> &'static str {
        use MqttCommand::*;
        match self {
            Start => "+CMQTTSTART:",
            Stop => "+CMQTTSTOP:",
            Accq => "+CMQTTACCQ:",
            Rel => "+CMQTTREL:",
            SslCfg => "+CMQTTSSLCFG:",
            WillTopic => "+CMQTTWILLTOPIC:",
            WillMsg => "+CMQTTWILLMSG:",
            Connect => "+CMQTTCONNECT:",
            Disc => "+CMQTTDISC:",
            Topic => "+CMQTTTOPIC:",
            Payload => "+CMQTTPAYLOAD:",
            Pub => "+CMQTTPUB:",
            SubTopic => "+CMQTTSUBTOPIC:",
            Sub => "+CMQTTSUB:",
            UnsubTopic => "+CMQTTUNSUBTOPIC:",
            Unsub => "+CMQTTUNSUB:",
            Cfg => "+CMQTTCFG:",
        }
    }
}

/// The test form `AT+CMQTTxxx=?`: the modem's parameter ranges, one string per line after the
/// prefix (e.g. `(0-1),(1-128)[,(0-1)]`).
#[derive(Debug, Clone, Copy)]
pub struct Test(pub MqttCommand);

impl Command for Test {
    type Output = Vec<String>;
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        let c = self.0;
        if c == MqttCommand::Start || c == MqttCommand::Stop {
            // START/STOP are execute-only; their "test" probes whether MQTT is supported at all.
            return Ok(Request::new(c.at(), format!("{}=?", c.at()), p.command_timeout).any_line());
        }
        Ok(Request::new(c.at(), format!("{}=?", c.at()), p.command_timeout).prefix(c.prefix()))
    }
    fn parse(&self, r: Response) -> Result<Vec<String>> {
        if self.0 == MqttCommand::Start || self.0 == MqttCommand::Stop {
            return Ok(r.text_lines().map(|s| s.into_owned()).collect());
        }
        Ok(r.args(self.0.prefix())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect())
    }
}

/// `AT+CMQTTSTART`: start the MQTT service (activates the PDP context).
#[derive(Debug, Clone, Copy, Default)]
pub struct Start;

impl Command for Start {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        Ok(Request::new(
            "AT+CMQTTSTART",
            "AT+CMQTTSTART".into(),
            p.start_timeout + MARGIN,
        )
        .prefix("+CMQTTSTART:")
        .result_line(None))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CMQTTSTOP`: stop the MQTT service.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stop;

impl Command for Stop {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        Ok(Request::new(
            "AT+CMQTTSTOP",
            "AT+CMQTTSTOP".into(),
            p.start_timeout + MARGIN,
        )
        .prefix("+CMQTTSTOP:")
        .result_line(None))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CMQTTACCQ=<idx>,"<clientID>"[,<server_type>[,<version>]]`: acquire a client.
#[derive(Debug, Clone)]
pub struct Accq {
    pub index: u8,
    pub client_id: String,
    /// `<server_type>` 1: SSL/TLS.
    pub tls: bool,
    /// The MQTT version as a 4th argument (SIM7600 dialect only): 3 = 3.1, 4 = 3.1.1.
    pub version: Option<u8>,
}

impl Command for Accq {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        v::len("clientID", self.client_id.len(), 1, p.max_client_id)?;
        v::quotable("clientID", &self.client_id)?;
        let mut line = format!(
            "AT+CMQTTACCQ={},\"{}\",{}",
            self.index, self.client_id, self.tls as u8
        );
        if let Some(ver) = self.version {
            if p.version_dialect != VersionDialect::Accq {
                return Err(Error::invalid(
                    "version",
                    format!(
                        "{} takes the MQTT version with CMQTTCFG=\"version\", not in ACCQ",
                        p.model
                    ),
                ));
            }
            v::range("version", ver, 3, 4)?;
            line.push_str(&format!(",{ver}"));
        }
        Ok(Request::new("AT+CMQTTACCQ", line, p.command_timeout).prefix("+CMQTTACCQ:"))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// One acquired client as `AT+CMQTTACCQ?` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquiredClient {
    pub index: u8,
    /// Empty when the index is free.
    pub client_id: String,
    pub tls: bool,
}

/// `AT+CMQTTACCQ?`
#[derive(Debug, Clone, Copy, Default)]
pub struct AccqRead;

impl Command for AccqRead {
    type Output = Vec<AcquiredClient>;
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        Ok(
            Request::new("AT+CMQTTACCQ?", "AT+CMQTTACCQ?".into(), p.command_timeout)
                .prefix("+CMQTTACCQ:"),
        )
    }
    fn parse(&self, r: Response) -> Result<Self::Output> {
        r.args("+CMQTTACCQ:")
            .map(|a| {
                let f = split_args(a);
                if f.len() < 2 {
                    return Err(protocol("AT+CMQTTACCQ?", a));
                }
                Ok(AcquiredClient {
                    index: num("AT+CMQTTACCQ?", f[0])? as u8,
                    client_id: unquote(f[1]),
                    tls: f.get(2).is_some_and(|s| *s == b"1"),
                })
            })
            .collect()
    }
}

/// `AT+CMQTTREL=<idx>`: release a client.
#[derive(Debug, Clone, Copy)]
pub struct Rel {
    pub index: u8,
}

impl Command for Rel {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        Ok(Request::new(
            "AT+CMQTTREL",
            format!("AT+CMQTTREL={}", self.index),
            p.command_timeout,
        )
        .prefix("+CMQTTREL:"))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CMQTTSSLCFG=<session>,<ssl_ctx>`: which SSL context a client's TLS connection uses.
#[derive(Debug, Clone, Copy)]
pub struct MqttSslCfg {
    pub index: u8,
    pub ssl_ctx: u8,
}

impl Command for MqttSslCfg {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::index("session_id", self.index)?;
        v::range("ssl_ctx_index", self.ssl_ctx, 0, 9)?;
        Ok(Request::new(
            "AT+CMQTTSSLCFG",
            format!("AT+CMQTTSSLCFG={},{}", self.index, self.ssl_ctx),
            p.command_timeout,
        )
        .prefix("+CMQTTSSLCFG:"))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CMQTTSSLCFG?`: (session, context) pairs; the context is `None` when unset.
#[derive(Debug, Clone, Copy, Default)]
pub struct MqttSslCfgRead;

impl Command for MqttSslCfgRead {
    type Output = Vec<(u8, Option<u8>)>;
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        Ok(Request::new(
            "AT+CMQTTSSLCFG?",
            "AT+CMQTTSSLCFG?".into(),
            p.command_timeout,
        )
        .prefix("+CMQTTSSLCFG:"))
    }
    fn parse(&self, r: Response) -> Result<Self::Output> {
        r.args("+CMQTTSSLCFG:")
            .map(|a| {
                let f = split_args(a);
                let s = num("AT+CMQTTSSLCFG?", f[0])? as u8;
                let ctx = f
                    .get(1)
                    .and_then(|c| crate::digest::parse_u32(c))
                    .map(|c| c as u8);
                Ok((s, ctx))
            })
            .collect()
    }
}

/// A prompted input (`>` then exactly the announced bytes): WILLTOPIC, TOPIC, SUBTOPIC,
/// UNSUBTOPIC and PAYLOAD share this shape.
/// `args` as `format_args!`: the line is formatted once, into one allocation.
fn prompted<'a>(
    c: MqttCommand,
    p: &Profile,
    args: std::fmt::Arguments<'_>,
    data: &'a [u8],
) -> Request<'a> {
    use std::fmt::Write as _;
    let mut line = String::with_capacity(c.at().len() + 24);
    let _ = write!(line, "{}={}", c.at(), args);
    Request::new(c.at(), line, p.command_timeout)
        .prefix(c.prefix())
        .data(data)
}

fn topic_len(p: &Profile, param: &'static str, t: &[u8]) -> Result<()> {
    v::len(param, t.len(), 1, p.max_topic)
}

/// `AT+CMQTTWILLTOPIC=<idx>,<len>` + topic: the will's topic.
#[derive(Debug, Clone)]
pub struct WillTopic<'a> {
    pub index: u8,
    pub topic: &'a [u8],
}

impl Command for WillTopic<'_> {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        topic_len(p, "will topic", self.topic)?;
        Ok(prompted(
            MqttCommand::WillTopic,
            p,
            format_args!("{},{}", self.index, self.topic.len()),
            self.topic,
        ))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CMQTTWILLMSG=<idx>,<len>,<qos>` + message: the will's message and QoS.
#[derive(Debug, Clone)]
pub struct WillMsg<'a> {
    pub index: u8,
    pub message: &'a [u8],
    pub qos: u8,
}

impl Command for WillMsg<'_> {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        v::len("will message", self.message.len(), 1, p.max_will_message)?;
        v::qos(self.qos)?;
        Ok(prompted(
            MqttCommand::WillMsg,
            p,
            format_args!("{},{},{}", self.index, self.message.len(), self.qos),
            self.message,
        ))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CMQTTCONNECT=<idx>,"<server>",<keepalive>,<clean>[,"<user>"[,"<pass>"]]`.
#[derive(Clone)]
pub struct Connect<'a> {
    pub index: u8,
    /// `tcp://host[:port]` (default port 1883); 9..256 bytes.
    pub server: &'a str,
    /// 1..=64800 seconds.
    pub keepalive: u32,
    pub clean_session: bool,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    /// How long to wait for the result line.
    pub timeout: Duration,
}

impl std::fmt::Debug for Connect<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("index", &self.index)
            .field("server", &self.server)
            .field("keepalive", &self.keepalive)
            .field("clean_session", &self.clean_session)
            .field("username", &self.username)
            .field("password", &self.password.map(|_| "<redacted>"))
            .finish()
    }
}

impl Command for Connect<'_> {
    type Output = ();
    fn request(&self, _: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        v::len("server_addr", self.server.len(), 9, 256)?;
        if !self.server.starts_with("tcp://") {
            return Err(Error::invalid(
                "server_addr",
                format!(
                    "must begin with \"tcp://\" (also for TLS: choose TLS when acquiring the client), got {:?}",
                    self.server
                ),
            ));
        }
        v::quotable("server_addr", self.server)?;
        v::range("keepalive_time", self.keepalive, 1, 64800)?;
        if self.password.is_some() && self.username.is_none() {
            return Err(Error::invalid("pass_word", "a password needs a user name"));
        }
        let mut line = format!(
            "AT+CMQTTCONNECT={},\"{}\",{},{}",
            self.index, self.server, self.keepalive, self.clean_session as u8
        );
        let mut redacted = None;
        if let Some(u) = self.username {
            v::len("user_name", u.len(), 1, 256)?;
            v::quotable("user_name", u)?;
            line.push_str(&format!(",\"{u}\""));
            if let Some(pw) = self.password {
                v::len("pass_word", pw.len(), 1, 256)?;
                v::quotable("pass_word", pw)?;
                redacted = Some(format!("{line},\"<redacted>\""));
                line.push_str(&format!(",\"{pw}\""));
            }
        }
        let mut r = Request::new("AT+CMQTTCONNECT", line, self.timeout)
            .prefix("+CMQTTCONNECT:")
            .result_line(Some(self.index));
        if let Some(t) = redacted {
            r = r.redacted(t);
        }
        Ok(r)
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// One client's connection as `AT+CMQTTCONNECT?` shows it (the password is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub index: u8,
    /// `None` when the client is not connected.
    pub server: Option<String>,
    pub keepalive: Option<u32>,
    pub clean_session: Option<bool>,
    pub username: Option<String>,
}

/// `AT+CMQTTCONNECT?`
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectRead;

impl Command for ConnectRead {
    type Output = Vec<ConnectionInfo>;
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        Ok(Request::new(
            "AT+CMQTTCONNECT?",
            "AT+CMQTTCONNECT?".into(),
            p.command_timeout,
        )
        .prefix("+CMQTTCONNECT:"))
    }
    fn parse(&self, r: Response) -> Result<Self::Output> {
        r.args("+CMQTTCONNECT:")
            .map(|a| {
                let f = split_args(a);
                let nonempty = |i: usize| f.get(i).filter(|s| !s.is_empty());
                Ok(ConnectionInfo {
                    index: num("AT+CMQTTCONNECT?", f[0])? as u8,
                    server: nonempty(1).map(|s| unquote(s)),
                    keepalive: nonempty(2).and_then(|s| crate::digest::parse_u32(s)),
                    clean_session: nonempty(3).map(|s| *s == b"1"),
                    username: nonempty(4).map(|s| unquote(s)),
                })
            })
            .collect()
    }
}

/// `AT+CMQTTDISC=<idx>,<timeout>`: disconnect. `timeout` is 0 (not set) or 60..=180 seconds.
#[derive(Debug, Clone, Copy)]
pub struct Disc {
    pub index: u8,
    pub timeout: u32,
}

impl Command for Disc {
    type Output = ();
    fn request(&self, _: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        if self.timeout != 0 {
            v::range("timeout", self.timeout, 60, 180)?;
        }
        let wait = Duration::from_secs(if self.timeout == 0 {
            60
        } else {
            self.timeout as u64
        });
        Ok(Request::new(
            "AT+CMQTTDISC",
            format!("AT+CMQTTDISC={},{}", self.index, self.timeout),
            wait + MARGIN,
        )
        .prefix("+CMQTTDISC:")
        .result_line(Some(self.index)))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CMQTTDISC?`: (index, connected) for each client.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscRead;

impl Command for DiscRead {
    type Output = Vec<(u8, bool)>;
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        Ok(
            Request::new("AT+CMQTTDISC?", "AT+CMQTTDISC?".into(), p.command_timeout)
                .prefix("+CMQTTDISC:"),
        )
    }
    fn parse(&self, r: Response) -> Result<Self::Output> {
        r.args("+CMQTTDISC:")
            .map(|a| {
                let f = split_args(a);
                let idx = num("AT+CMQTTDISC?", f[0])? as u8;
                let state = num("AT+CMQTTDISC?", f.get(1).copied().unwrap_or(b""))?;
                // <disc_state>: 1 = disconnected, 0 = connected.
                Ok((idx, state == 0))
            })
            .collect()
    }
}

/// `AT+CMQTTTOPIC=<idx>,<len>` + topic: the next publish's topic.
#[derive(Debug, Clone)]
pub struct Topic<'a> {
    pub index: u8,
    pub topic: &'a [u8],
}

impl Command for Topic<'_> {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        topic_len(p, "topic", self.topic)?;
        Ok(prompted(
            MqttCommand::Topic,
            p,
            format_args!("{},{}", self.index, self.topic.len()),
            self.topic,
        ))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CMQTTPAYLOAD=<idx>,<len>` + payload: the next publish's payload (1..=max_payload bytes).
#[derive(Debug, Clone)]
pub struct Payload<'a> {
    pub index: u8,
    pub payload: &'a [u8],
}

impl Command for Payload<'_> {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        v::len("payload", self.payload.len(), 1, p.max_payload)?;
        Ok(prompted(
            MqttCommand::Payload,
            p,
            format_args!("{},{}", self.index, self.payload.len()),
            self.payload,
        ))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CMQTTPUB=<idx>,<qos>,<pub_timeout>[,<retained>[,<dup>]]`: publish the topic and payload
/// set before. Finished when the modem reports the broker's acknowledgement (or its failure).
#[derive(Debug, Clone, Copy)]
pub struct Pub {
    pub index: u8,
    pub qos: u8,
    /// 60..=180 seconds.
    pub pub_timeout: u32,
    pub retain: bool,
    pub dup: bool,
}

impl Command for Pub {
    type Output = ();
    fn request(&self, _: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        v::qos(self.qos)?;
        v::range("pub_timeout", self.pub_timeout, 60, 180)?;
        Ok(Request::new(
            "AT+CMQTTPUB",
            format!(
                "AT+CMQTTPUB={},{},{},{},{}",
                self.index, self.qos, self.pub_timeout, self.retain as u8, self.dup as u8
            ),
            Duration::from_secs(self.pub_timeout as u64) + MARGIN,
        )
        .prefix("+CMQTTPUB:")
        .result_line(Some(self.index)))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CMQTTSUBTOPIC=<idx>,<len>,<qos>` + topic: add a topic to the next multi-topic SUB.
#[derive(Debug, Clone)]
pub struct SubTopic<'a> {
    pub index: u8,
    pub topic: &'a [u8],
    pub qos: u8,
}

impl Command for SubTopic<'_> {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        topic_len(p, "topic", self.topic)?;
        v::qos(self.qos)?;
        Ok(prompted(
            MqttCommand::SubTopic,
            p,
            format_args!("{},{},{}", self.index, self.topic.len(), self.qos),
            self.topic,
        ))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// Subscribe and unsubscribe wait for the broker's acknowledgement.
fn ack_timeout(p: &Profile) -> Duration {
    p.command_timeout.max(Duration::from_secs(60)) + MARGIN
}

/// `AT+CMQTTSUB=<idx>[,<dup>]`: subscribe the topics given with [`SubTopic`].
#[derive(Debug, Clone, Copy)]
pub struct Sub {
    pub index: u8,
    pub dup: bool,
}

impl Command for Sub {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        Ok(Request::new(
            "AT+CMQTTSUB",
            format!("AT+CMQTTSUB={},{}", self.index, self.dup as u8),
            ack_timeout(p),
        )
        .prefix("+CMQTTSUB:")
        .result_line(Some(self.index)))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CMQTTSUB=<idx>,<len>,<qos>[,<dup>]` + topic: subscribe one topic in one command.
#[derive(Debug, Clone)]
pub struct SubOne<'a> {
    pub index: u8,
    pub topic: &'a [u8],
    pub qos: u8,
    pub dup: bool,
}

impl Command for SubOne<'_> {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        topic_len(p, "topic", self.topic)?;
        v::qos(self.qos)?;
        Ok(Request::new(
            "AT+CMQTTSUB",
            format!(
                "AT+CMQTTSUB={},{},{},{}",
                self.index,
                self.topic.len(),
                self.qos,
                self.dup as u8
            ),
            ack_timeout(p),
        )
        .prefix("+CMQTTSUB:")
        .data(self.topic)
        .result_line(Some(self.index)))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CMQTTSUB?` (SIM7672X): the subscribed topics, with the client index when the modem
/// gives one.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubRead;

impl Command for SubRead {
    type Output = Vec<(Option<u8>, Vec<u8>)>;
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        if !p.has_sub_read {
            return Err(Error::Unsupported("AT+CMQTTSUB?"));
        }
        Ok(Request::new("AT+CMQTTSUB?", "AT+CMQTTSUB?".into(), p.command_timeout).any_line())
    }
    fn parse(&self, r: Response) -> Result<Self::Output> {
        // The note shows "+CMQTTSUB:" then one topic per line; firmware in the field prints
        // "+CMQTTSUB: <idx>,\"<topic>\"". Both are accepted.
        let mut out = Vec::new();
        for l in r.lines {
            let body = match l.strip_prefix(b"+CMQTTSUB:") {
                Some(rest) => crate::digest::trim(rest).to_vec(),
                None => l,
            };
            if body.is_empty() {
                continue;
            }
            let fields = split_args(&body);
            match fields.as_slice() {
                [idx, topic] if topic.starts_with(b"\"") => {
                    let idx = crate::digest::parse_u32(idx).map(|i| i as u8);
                    out.push((idx, strip_quotes(topic).to_vec()));
                }
                _ => out.push((None, body.clone())),
            }
        }
        Ok(out)
    }
}

fn strip_quotes(s: &[u8]) -> &[u8] {
    s.strip_prefix(b"\"")
        .and_then(|s| s.strip_suffix(b"\""))
        .unwrap_or(s)
}

/// `AT+CMQTTUNSUBTOPIC=<idx>,<len>` + topic: add a topic to the next multi-topic UNSUB.
#[derive(Debug, Clone)]
pub struct UnsubTopic<'a> {
    pub index: u8,
    pub topic: &'a [u8],
}

impl Command for UnsubTopic<'_> {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        topic_len(p, "topic", self.topic)?;
        Ok(prompted(
            MqttCommand::UnsubTopic,
            p,
            format_args!("{},{}", self.index, self.topic.len()),
            self.topic,
        ))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CMQTTUNSUB=<idx>,<dup>`: unsubscribe the topics given with [`UnsubTopic`].
#[derive(Debug, Clone, Copy)]
pub struct Unsub {
    pub index: u8,
    pub dup: bool,
}

impl Command for Unsub {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        Ok(Request::new(
            "AT+CMQTTUNSUB",
            format!("AT+CMQTTUNSUB={},{}", self.index, self.dup as u8),
            ack_timeout(p),
        )
        .prefix("+CMQTTUNSUB:")
        .result_line(Some(self.index)))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `AT+CMQTTUNSUB=<idx>,<len>,<dup>` + topic: unsubscribe one topic in one command.
#[derive(Debug, Clone)]
pub struct UnsubOne<'a> {
    pub index: u8,
    pub topic: &'a [u8],
    pub dup: bool,
}

impl Command for UnsubOne<'_> {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::index("client_index", self.index)?;
        topic_len(p, "topic", self.topic)?;
        Ok(Request::new(
            "AT+CMQTTUNSUB",
            format!(
                "AT+CMQTTUNSUB={},{},{}",
                self.index,
                self.topic.len(),
                self.dup as u8
            ),
            ack_timeout(p),
        )
        .prefix("+CMQTTUNSUB:")
        .data(self.topic)
        .result_line(Some(self.index)))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// One `AT+CMQTTCFG` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CfgSetting {
    /// `"checkUTF8"`: whether the modem checks that strings are UTF-8 (default on).
    CheckUtf8(bool),
    /// `"optimeout"`: the send/receive operation timeout, 20..=120 s (default 120).
    OpTimeout(u32),
    /// `"version"`: 3 = MQTT 3.1 (default), 4 = MQTT 3.1.1 (models with that dialect).
    Version(u8),
}

/// `AT+CMQTTCFG="<setting>",<idx>,<value>`
#[derive(Debug, Clone, Copy)]
pub struct Cfg {
    pub index: u8,
    pub setting: CfgSetting,
}

impl Command for Cfg {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        v::index("index", self.index)?;
        let (name, value) = match self.setting {
            CfgSetting::CheckUtf8(on) => ("checkUTF8", on as u32),
            CfgSetting::OpTimeout(s) => {
                v::range("optimeout_val", s, 20, 120)?;
                ("optimeout", s)
            }
            CfgSetting::Version(ver) => {
                if p.version_dialect != VersionDialect::Cfg {
                    return Err(Error::invalid(
                        "version",
                        match p.version_dialect {
                            VersionDialect::Accq => format!(
                                "{} takes the MQTT version as the 4th argument of ACCQ (Client options: version)",
                                p.model
                            ),
                            _ => format!("{} cannot change the MQTT version", p.model),
                        },
                    ));
                }
                v::range("version", ver, 3, 4)?;
                ("version", ver as u32)
            }
        };
        Ok(Request::new(
            "AT+CMQTTCFG",
            format!("AT+CMQTTCFG=\"{name}\",{},{value}", self.index),
            p.command_timeout,
        )
        .prefix("+CMQTTCFG:"))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// One client's configuration as `AT+CMQTTCFG?` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    pub index: u8,
    pub check_utf8: bool,
    pub optimeout: u32,
}

/// `AT+CMQTTCFG?`
#[derive(Debug, Clone, Copy, Default)]
pub struct CfgRead;

impl Command for CfgRead {
    type Output = Vec<ClientConfig>;
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        Ok(
            Request::new("AT+CMQTTCFG?", "AT+CMQTTCFG?".into(), p.command_timeout)
                .prefix("+CMQTTCFG:"),
        )
    }
    fn parse(&self, r: Response) -> Result<Self::Output> {
        r.args("+CMQTTCFG:")
            .map(|a| {
                let f = split_args(a);
                if f.len() < 3 {
                    return Err(protocol("AT+CMQTTCFG?", a));
                }
                Ok(ClientConfig {
                    index: num("AT+CMQTTCFG?", f[0])? as u8,
                    check_utf8: num("AT+CMQTTCFG?", f[1])? == 1,
                    optimeout: num("AT+CMQTTCFG?", f[2])?,
                })
            })
            .collect()
    }
}

pub(crate) fn protocol(command: &'static str, a: &[u8]) -> Error {
    Error::Protocol {
        command,
        // An answer may hold a connect line (line noise, an echo): never its password.
        answer: crate::trace::redact_line(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Model;

    fn a() -> Profile {
        Model::A7600.profile()
    }

    #[test]
    fn encodes_as_the_spec_writes_it() {
        let p = a();
        let c1 = Accq {
            index: 0,
            client_id: "client test0".into(),
            tls: false,
            version: None,
        };
        let r = c1.request(&p).unwrap();
        assert_eq!(r.line, "AT+CMQTTACCQ=0,\"client test0\",0");
        let c2 = Connect {
            index: 0,
            server: "tcp://test.mosquitto.org:1883",
            keepalive: 60,
            clean_session: true,
            username: Some("u"),
            password: Some("secret"),
            timeout: Duration::from_secs(30),
        };
        let r = c2.request(&p).unwrap();
        assert_eq!(
            r.line,
            "AT+CMQTTCONNECT=0,\"tcp://test.mosquitto.org:1883\",60,1,\"u\",\"secret\""
        );
        assert!(!r.trace_text().contains("secret"));
        let c3 = SubOne {
            index: 0,
            topic: b"simcommsg",
            qos: 1,
            dup: false,
        };
        let r = c3.request(&p).unwrap();
        assert_eq!(r.line, "AT+CMQTTSUB=0,9,1,0");
        assert_eq!(r.data.as_deref(), Some(&b"simcommsg"[..]));
        let c4 = Pub {
            index: 1,
            qos: 2,
            pub_timeout: 60,
            retain: true,
            dup: false,
        };
        let r = c4.request(&p).unwrap();
        assert_eq!(r.line, "AT+CMQTTPUB=1,2,60,1,0");
        let c5 = Cfg {
            index: 0,
            setting: CfgSetting::CheckUtf8(false),
        };
        let r = c5.request(&p).unwrap();
        assert_eq!(r.line, "AT+CMQTTCFG=\"checkUTF8\",0,0");
    }

    #[test]
    fn validation_names_the_parameter_and_range() {
        let p = Model::Sim7672x.profile();
        let big = vec![b'x'; 4097];
        let e = Payload {
            index: 0,
            payload: &big,
        }
        .request(&p)
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("payload: must be 1..=4096 bytes, got 4097"),
            "{e}"
        );
        let e = Pub {
            index: 2,
            qos: 0,
            pub_timeout: 60,
            retain: false,
            dup: false,
        }
        .request(&p)
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("client_index: must be 0 or 1, got 2"),
            "{e}"
        );
        let e = Pub {
            index: 0,
            qos: 3,
            pub_timeout: 60,
            retain: false,
            dup: false,
        }
        .request(&p)
        .unwrap_err();
        assert!(e.to_string().contains("qos"), "{e}");
        let e = Pub {
            index: 0,
            qos: 1,
            pub_timeout: 59,
            retain: false,
            dup: false,
        }
        .request(&p)
        .unwrap_err();
        assert!(e.to_string().contains("60..=180"), "{e}");
        let e = Connect {
            index: 0,
            server: "mqtt://x.example:1883",
            keepalive: 60,
            clean_session: true,
            username: None,
            password: None,
            timeout: Duration::from_secs(1),
        }
        .request(&p)
        .unwrap_err();
        assert!(e.to_string().contains("tcp://"), "{e}");
        let e = Accq {
            index: 0,
            client_id: "a\"b".into(),
            tls: false,
            version: None,
        }
        .request(&p)
        .unwrap_err();
        assert!(e.to_string().contains("clientID"), "{e}");
        assert!(Cfg {
            index: 0,
            setting: CfgSetting::Version(4)
        }
        .request(&Model::Sim7600.profile())
        .is_err());
        assert!(SubRead.request(&a()).is_err());
        assert!(SubRead.request(&p).is_ok());
    }
}

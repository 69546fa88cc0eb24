//! What several subcommands share: opening the modem, the broker options, starting the MQTT
//! service and connecting a client (with TLS), the AT trace and Ctrl-C handling.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use cmqtt::command::{AccqRead, Disc, Rel};
use cmqtt::{Client, ClientOptions, ConnectOptions, Direction, Error, Modem, ModemOptions};

use crate::failure::{code, Failure};

/// The modem families, as command-line values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    /// A7600 / A76xx (A7670, A7608, ...)
    A7600,
    /// SIM7600 family
    Sim7600,
    /// SIM7672X / SIM7652X
    Sim7672x,
}

impl ModelArg {
    pub fn to_cmqtt(self) -> cmqtt::Model {
        match self {
            ModelArg::A7600 => cmqtt::Model::A7600,
            ModelArg::Sim7600 => cmqtt::Model::Sim7600,
            ModelArg::Sim7672x => cmqtt::Model::Sim7672x,
        }
    }

    pub fn to_sim(self) -> cmqtt_sim::Model {
        match self {
            ModelArg::A7600 => cmqtt_sim::Model::A7600,
            ModelArg::Sim7600 => cmqtt_sim::Model::Sim7600,
            ModelArg::Sim7672x => cmqtt_sim::Model::Sim7672x,
        }
    }
}

/// The longest `--sync-timeout` and `--connect-timeout`: a day. Larger values are usage errors
/// (they used to overflow the clock and panic).
pub const MAX_WAIT_S: u64 = 86_400;

/// Which serial port, and how to talk to the modem on it.
#[derive(Debug, Clone, Args)]
pub struct PortArgs {
    /// Serial device of the modem's AT interface, e.g. /dev/ttyUSB2 (see `cmqtt ports`), or
    /// tcp://HOST:PORT for a serial-over-TCP bridge (ser2net, `cmqtt sim --tcp`).
    #[arg(long, value_name = "DEV", env = "CMQTT_PORT")]
    pub port: String,
    /// Baud rate (USB interfaces ignore it; UARTs need the modem's rate).
    #[arg(long, value_name = "N", default_value_t = 115200, env = "CMQTT_BAUD", value_parser = clap::value_parser!(u32).range(1..))]
    pub baud: u32,
    /// Modem family; identified with AT+CGMM when not given.
    #[arg(long, value_enum, value_name = "MODEL")]
    pub model: Option<ModelArg>,
    /// Seconds to keep sending AT until the modem answers OK (at most a day).
    #[arg(long, value_name = "S", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=MAX_WAIT_S))]
    pub sync_timeout: u64,
}

/// The MQTT protocol version the modem speaks to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (what mosquitto_pub/sub use by default; needed by most cloud brokers)
    #[value(name = "mqttv311", alias = "311")]
    V311,
    /// MQTT 3.1
    #[value(name = "mqttv31", alias = "31")]
    V31,
    /// Whatever the modem is configured for (nothing is sent; the factory default is 3.1)
    #[value(name = "modem")]
    Modem,
}

/// The broker and how to connect to it.
#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    /// Broker as tcp://HOST[:PORT] (1883 by default). mqtt:// is taken as tcp://; mqtts:// and
    /// ssl:// imply --tls (port 8883 by default). A bare HOST[:PORT] is taken as tcp://.
    #[arg(long, short = 'L', value_name = "URL", env = "CMQTT_SERVER")]
    pub server: String,
    /// Client id (1..128 bytes, no '"').
    #[arg(short = 'i', long = "id", value_name = "CLIENT_ID")]
    pub client_id: Option<String>,
    /// User name.
    #[arg(short = 'u', long = "username", value_name = "USER")]
    pub username: Option<String>,
    /// Password (also from $CMQTT_PASSWORD, which keeps it out of `ps`). Never traced.
    #[arg(
        short = 'P',
        long = "pw",
        alias = "password",
        value_name = "PASS",
        env = "CMQTT_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Keepalive in seconds (1..64800).
    #[arg(short = 'k', long, value_name = "S", default_value_t = 60)]
    pub keepalive: u32,
    /// Do not ask for a clean session (keep subscriptions and queued messages at the broker).
    #[arg(short = 'c', long = "disable-clean-session")]
    pub no_clean_session: bool,
    /// MQTT protocol version [default: mqttv311 where the modem lets it be set, else the
    /// modem's own]
    #[arg(short = 'V', long, value_enum, value_name = "VERSION")]
    pub protocol_version: Option<ProtocolVersion>,
    /// Seconds to wait for the broker to accept the connection (at most a day).
    #[arg(long, value_name = "S", default_value_t = 120, value_parser = clap::value_parser!(u64).range(0..=MAX_WAIT_S))]
    pub connect_timeout: u64,
    /// Which of the modem's two MQTT clients to use.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub index: u8,
    /// Keep the modem's UTF-8 check of topics and payloads (by default cmqtt switches it off
    /// with AT+CMQTTCFG="checkUTF8",N,0 so that any bytes can be sent and received).
    #[arg(long)]
    pub utf8_check: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// TLS options.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Connect with SSL/TLS (done by the modem, SSL context = --index). Implied by --cafile,
    /// --cert, --insecure and an mqtts:// server. Needs --cafile or --insecure.
    #[arg(long)]
    pub tls: bool,
    /// CA certificate (PEM) to verify the broker with; uploaded to the modem (authmode 1).
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub cafile: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --key (authmode 2 with --cafile).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM); needs --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Do not verify the broker's certificate (authmode 0, or 3 with --cert/--key).
    #[arg(long)]
    pub insecure: bool,
}

impl TlsArgs {
    /// Whether any TLS option was given.
    pub fn wanted(&self) -> bool {
        self.tls || self.cafile.is_some() || self.cert.is_some() || self.insecure
    }
}

// ---- trace ---------------------------------------------------------------------------------

/// The trace hook: every AT line on stderr as `>> AT+CMQTTSTART` / `<< OK`. The library has
/// already replaced passwords; control bytes are escaped so a terminal stays sane.
pub fn trace_line(dir: Direction, line: &str) {
    eprintln!("{} {}", dir.arrow(), printable(line));
}

/// `line` with control characters shown as `\xNN` (tabs kept).
pub fn printable(line: &str) -> String {
    let mut s = String::with_capacity(line.len());
    for c in line.chars() {
        if c.is_control() && c != '\t' {
            s.push_str(&format!("\\x{:02X}", c as u32));
        } else {
            s.push(c);
        }
    }
    s
}

/// Modem options for `args`, with the trace hook when asked for.
pub fn modem_options(model: Option<ModelArg>, sync_timeout: Duration, trace: bool) -> ModemOptions {
    let mut o = ModemOptions {
        sync_timeout,
        ..ModemOptions::default()
    };
    if let Some(m) = model {
        o = o.model(m.to_cmqtt());
    }
    if trace {
        o = o.trace(trace_line);
    }
    o
}

/// Open the modem on `args.port`: sync with AT, echo off, identify.
pub fn open_modem(args: &PortArgs, trace: bool) -> Result<Modem, Failure> {
    let opts = modem_options(
        args.model,
        Duration::from_secs(args.sync_timeout.max(1)),
        trace,
    );
    if let Some(addr) = strip_prefix_ci(&args.port, "tcp://") {
        // A serial-over-TCP bridge (ser2net, `cmqtt sim --tcp`).
        let stream = std::net::TcpStream::connect(addr.trim_end_matches('/')).map_err(|e| {
            Failure::new(code::PORT, format!("cannot connect to {}: {e}", args.port))
        })?;
        let modem = Modem::with_tcp(stream, opts)
            .map_err(|e| Failure::cmqtt(format!("modem on {}", args.port), e))?;
        crate::interrupt::watch(&modem);
        return Ok(modem);
    }
    let modem = Modem::open_with(&args.port, args.baud, opts).map_err(|e| match e {
        // Already names the port.
        e @ Error::Serial { .. } => Failure::new(code::PORT, format!("cannot open {e}")),
        e => Failure::cmqtt(format!("modem on {}", args.port), e),
    })?;
    crate::interrupt::watch(&modem);
    Ok(modem)
}

// ---- Ctrl-C ----------------------------------------------------------------------------------

/// Set by SIGINT/SIGTERM once [`install_signal_handlers`] ran. The first signal also ends
/// the wait for the modem at once (see [`crate::interrupt`]); a second one exits at once.
pub fn install_signal_handlers() -> Arc<AtomicBool> {
    crate::interrupt::install()
}

pub fn check_interrupted(flag: &AtomicBool) -> Result<(), Failure> {
    if flag.load(Ordering::SeqCst) {
        Err(Failure::new(code::INTERRUPTED, "interrupted"))
    } else {
        Ok(())
    }
}

// ---- broker address --------------------------------------------------------------------------

/// `(tcp://host:port, tls implied by the scheme)`.
pub fn normalize_server(s: &str) -> Result<(String, bool), Failure> {
    let s = s.trim();
    let (rest, tls, default_port) = if let Some(r) = strip_prefix_ci(s, "tcp://") {
        (r, false, 1883)
    } else if let Some(r) = strip_prefix_ci(s, "mqtt://") {
        (r, false, 1883)
    } else if let Some(r) = strip_prefix_ci(s, "mqtts://").or_else(|| strip_prefix_ci(s, "ssl://"))
    {
        (r, true, 8883)
    } else if s.contains("://") {
        return Err(Failure::usage(format!(
            "--server {s:?}: the modem speaks tcp:// (use --tls for TLS)"
        )));
    } else {
        (s, false, 1883)
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '"', ' ']) {
        return Err(Failure::usage(format!(
            "--server {s:?}: expected tcp://HOST[:PORT]"
        )));
    }
    // An explicit port: "host:1883" or "[v6]:1883".
    let has_port = match rest.rfind(':') {
        Some(i) => {
            let p = &rest[i + 1..];
            let bracketed_v6_without_port = rest.starts_with('[') && rest.ends_with(']');
            if bracketed_v6_without_port {
                false
            } else if p.parse::<u16>().map(|n| n > 0).unwrap_or(false) {
                true
            } else {
                return Err(Failure::usage(format!(
                    "--server {s:?}: the port must be 1..65535"
                )));
            }
        }
        None => false,
    };
    let url = if has_port {
        format!("tcp://{rest}")
    } else {
        format!("tcp://{rest}:{default_port}")
    };
    Ok((url, tls))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// Everything about the broker connection that can be checked before the modem is opened.
pub struct Plan {
    /// `tcp://host:port`
    pub server: String,
    pub tls: bool,
    pub auth_mode: u8,
    pub client_id: String,
    pub files: TlsFiles,
}

impl BrokerArgs {
    /// Check the options and read the certificate files: usage errors come before the modem is
    /// touched.
    pub fn plan(&self, default_client_id: &str) -> Result<Plan, Failure> {
        let (server, scheme_tls) = normalize_server(&self.server)?;
        let tls = self.tls.wanted() || scheme_tls;
        let auth_mode = tls_auth_mode(&self.tls, tls)?;
        if self.password.is_some() && self.username.is_none() {
            return Err(Failure::usage("a password (-P) needs a user name (-u)"));
        }
        let client_id = self
            .client_id
            .clone()
            .unwrap_or_else(|| default_client_id.to_string());
        if client_id.is_empty() || client_id.len() > 128 || client_id.contains('"') {
            return Err(Failure::usage(format!(
                "client id {client_id:?}: 1..128 bytes, no '\"'"
            )));
        }
        if !(1..=64800).contains(&self.keepalive) {
            return Err(Failure::usage(format!(
                "keepalive {}: must be 1..64800 s",
                self.keepalive
            )));
        }
        Ok(Plan {
            server,
            tls,
            auth_mode,
            client_id,
            files: TlsFiles::read(&self.tls)?,
        })
    }
}

// ---- the MQTT session ------------------------------------------------------------------------

/// The MQTT service started (if it was not already), one client acquired and connected.
/// Dropping it releases the client and stops the service if this session started it, so the
/// modem is left as it was found, also when a step failed.
pub struct MqttSession {
    pub modem: Modem,
    pub client: Option<Client>,
    pub started_service: bool,
    pub server: String,
    /// How long `AT+CMQTTCONNECT` took.
    pub connect_time: Duration,
    /// Why the modem's UTF-8 check could not be switched off, if it could not (some firmware
    /// has no `checkUTF8` setting): sending bytes that are not UTF-8 will then fail.
    pub utf8_check_on: Option<Failure>,
}

impl MqttSession {
    /// START, ACCQ (freeing a client left acquired by an earlier run), TLS set-up, CONNECT.
    pub fn connect(
        modem: &Modem,
        b: &BrokerArgs,
        plan: &Plan,
        interrupted: &AtomicBool,
    ) -> Result<MqttSession, Failure> {
        let Plan {
            server,
            tls,
            auth_mode,
            client_id,
            files,
        } = plan;
        let (tls, auth_mode) = (*tls, *auth_mode);
        let started = modem
            .start()
            .map_err(|e| Failure::cmqtt("starting the MQTT service (AT+CMQTTSTART)", e))?;
        let mut session = MqttSession {
            modem: modem.clone(),
            client: None,
            started_service: started,
            server: server.clone(),
            connect_time: Duration::ZERO,
            utf8_check_on: None,
        };
        check_interrupted(interrupted)?;

        if tls {
            configure_tls(modem, b.index, auth_mode, files)?;
        }
        let mut opts = ClientOptions::new(client_id);
        opts.tls = tls;
        opts.version = match b.protocol_version.unwrap_or(ProtocolVersion::V311) {
            ProtocolVersion::V311 => Some(4),
            ProtocolVersion::V31 => Some(3),
            ProtocolVersion::Modem => None,
        };
        if tls {
            opts.ssl_ctx = Some(b.index);
        }
        let client = acquire(modem, b.index, &opts, b.protocol_version.is_some())?;
        if !b.utf8_check {
            if let Err(e) = client.set_check_utf8(false) {
                session.utf8_check_on = Some(Failure::cmqtt(
                    "the modem checks UTF-8 and would not stop (AT+CMQTTCFG=\"checkUTF8\")",
                    e,
                ));
            }
        }
        session.client = Some(client);
        check_interrupted(interrupted)?;

        let mut c = ConnectOptions::new(server.clone());
        c.keepalive = b.keepalive;
        c.clean_session = !b.no_clean_session;
        c.username = b.username.clone();
        c.password = b.password.clone();
        c.timeout = Duration::from_secs(b.connect_timeout.max(1));
        let t0 = Instant::now();
        session.client().connect(&c).map_err(|e| {
            let not_authorized = e.err_code() == Some(cmqtt::ErrCode::RefusedNotAuthorized);
            let mut f = Failure::connect(format!("connecting to {server}"), e);
            if not_authorized && b.username.is_some() {
                // mosquitto (and others) answer a wrong password with "not authorized".
                f.message.push_str(
                    "; brokers such as mosquitto also say this for a wrong user name or password",
                );
            }
            f
        })?;
        session.connect_time = t0.elapsed();
        Ok(session)
    }

    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("client acquired")
    }

    /// DISC + REL (+ STOP if this session started the service). Errors here are ignored: the
    /// work is done, and the next run frees a client left behind anyway.
    pub fn finish(mut self) {
        self.close();
    }

    fn close(&mut self) {
        // After Ctrl-C the clean-up gets a short budget (see crate::interrupt).
        crate::interrupt::cleanup_started();
        if let Some(c) = self.client.take() {
            if c.is_connected() {
                let _ = c.disconnect(Duration::ZERO);
            }
            let _ = c.release();
        }
        if self.started_service && self.modem.closed_reason().is_none() {
            self.started_service = false;
            let _ = self.modem.stop();
        }
    }
}

impl Drop for MqttSession {
    fn drop(&mut self) {
        self.close();
    }
}

/// ACCQ (with the client's configuration). When the index is still held by an earlier run
/// that did not finish (killed, host unplugged...), disconnect and release it, then try once
/// more. When the MQTT version was not asked for explicitly (`version_explicit` false) and the
/// modem refuses to set it (A7600 manual firmware has no `AT+CMQTTCFG="version"`), acquire
/// without it: the modem then speaks its own default.
pub fn acquire(
    modem: &Modem,
    index: u8,
    opts: &ClientOptions,
    version_explicit: bool,
) -> Result<Client, Failure> {
    let ctx = || format!("acquiring MQTT client {index} (AT+CMQTTACCQ)");
    match acquire_freeing(modem, index, opts) {
        Ok(c) => Ok(c),
        Err(Error::Modem { .. }) if opts.version.is_some() && !version_explicit => {
            let mut o = opts.clone();
            o.version = None;
            acquire_freeing(modem, index, &o).map_err(|e| Failure::cmqtt(ctx(), e))
        }
        Err(e) => Err(Failure::cmqtt(ctx(), e)),
    }
}

fn acquire_freeing(modem: &Modem, index: u8, opts: &ClientOptions) -> cmqtt::Result<Client> {
    match modem.client_with(index, opts) {
        Err(e @ Error::Modem { .. }) => {
            let held = modem
                .execute(&AccqRead)
                .map(|l| {
                    l.iter()
                        .any(|c| c.index == index && !c.client_id.is_empty())
                })
                .unwrap_or(true);
            if !held {
                return Err(e);
            }
            let _ = modem.execute(&Disc { index, timeout: 60 });
            let _ = modem.execute(&Rel { index });
            modem.client_with(index, opts)
        }
        r => r,
    }
}

// ---- TLS -------------------------------------------------------------------------------------

/// `AT+CSSLCFG="authmode"`: 0 none, 1 server, 2 server + client, 3 client only.
pub fn tls_auth_mode(t: &TlsArgs, tls: bool) -> Result<u8, Failure> {
    let client_auth = t.cert.is_some() && t.key.is_some();
    Ok(match (t.insecure, t.cafile.is_some(), client_auth) {
        (true, _, false) => 0,
        (true, _, true) => 3,
        (false, true, false) => 1,
        (false, true, true) => 2,
        (false, false, true) => {
            return Err(Failure::usage(
                "--cert/--key: also give --cafile to verify the broker, or --insecure not to",
            ))
        }
        (false, false, false) => {
            if tls {
                return Err(Failure::usage(
                    "TLS: give --cafile to verify the broker, or --insecure not to",
                ));
            }
            0
        }
    })
}

/// The certificate files, read before the modem is touched.
pub struct TlsFiles {
    pub ca: Option<(String, Vec<u8>)>,
    pub cert: Option<(String, Vec<u8>)>,
    pub key: Option<(String, Vec<u8>)>,
}

impl TlsFiles {
    pub fn read(t: &TlsArgs) -> Result<TlsFiles, Failure> {
        let load =
            |p: &Option<PathBuf>, stem: &str| -> Result<Option<(String, Vec<u8>)>, Failure> {
                let Some(p) = p else { return Ok(None) };
                let data = read_file_bounded(
                    p,
                    cmqtt::command::MAX_CERT_LEN,
                    "the modem's certificate store takes",
                )?;
                if data.is_empty() {
                    return Err(Failure::usage(format!("{} is empty", p.display())));
                }
                Ok(Some((store_name(stem, p), data)))
            };
        Ok(TlsFiles {
            ca: load(&t.cafile, "cmqtt_ca")?,
            cert: load(&t.cert, "cmqtt_cert")?,
            key: load(&t.key, "cmqtt_key")?,
        })
    }
}

/// Reads at most `limit` bytes from `r` (`Read::take`: `/dev/zero` or an endless pipe costs
/// `limit + 1` bytes, never more); more than `limit` is a usage error naming `what` and the
/// limit (`takes`: who takes at most `limit` bytes, e.g. "one publish carries").
pub fn read_bounded(
    r: impl std::io::Read,
    limit: usize,
    what: &str,
    takes: &str,
) -> Result<Vec<u8>, Failure> {
    use std::io::Read;
    let mut data = Vec::new();
    r.take(limit as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| Failure::other(format!("cannot read {what}: {e}")))?;
    if data.len() > limit {
        return Err(Failure::usage(format!(
            "{what} is larger than {limit} bytes: {takes} at most {limit} bytes"
        )));
    }
    Ok(data)
}

/// [`read_bounded`] on the file `p`.
pub fn read_file_bounded(p: &Path, limit: usize, takes: &str) -> Result<Vec<u8>, Failure> {
    let f = std::fs::File::open(p)
        .map_err(|e| Failure::other(format!("cannot read {}: {e}", p.display())))?;
    read_bounded(f, limit, &p.display().to_string(), takes)
}

/// The name in the modem's store: fixed stem, the file's own extension (`.der` matters to some
/// firmware), `.pem` otherwise.
fn store_name(stem: &str, p: &Path) -> String {
    match p.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("der") => format!("{stem}.der"),
        _ => format!("{stem}.pem"),
    }
}

/// Upload the files (`AT+CCERTDOWN`) and configure SSL context `ctx` (`AT+CSSLCFG`).
pub fn configure_tls(modem: &Modem, ctx: u8, auth_mode: u8, f: &TlsFiles) -> Result<(), Failure> {
    for (name, data) in [&f.ca, &f.cert, &f.key].into_iter().flatten() {
        upload(modem, name, data)?;
    }
    let cfg = cmqtt::SslContext {
        ssl_version: Some(4),
        auth_mode: Some(auth_mode),
        ignore_local_time: Some(true),
        negotiate_time: None,
        ca_cert: f.ca.as_ref().map(|(n, _)| n.clone()),
        client_cert: f.cert.as_ref().map(|(n, _)| n.clone()),
        client_key: f.key.as_ref().map(|(n, _)| n.clone()),
        enable_sni: Some(true),
    };
    modem
        .ssl_configure(ctx, &cfg)
        .map_err(|e| Failure::cmqtt(format!("configuring SSL context {ctx} (AT+CSSLCFG)"), e))
}

/// `AT+CCERTDOWN`, with a progress line on an interactive stderr for files over 4 KiB (the
/// upload is one prompted write: there is no finer progress to show).
fn upload(modem: &Modem, name: &str, data: &[u8]) -> Result<(), Failure> {
    let show = data.len() > 4096 && std::io::stderr().is_terminal();
    if show {
        eprint!("uploading {name} ({} bytes)... ", data.len());
    }
    let r = modem.cert_upload(name, data);
    if show {
        eprintln!("{}", if r.is_ok() { "done" } else { "failed" });
    }
    r.map_err(|e| Failure::cmqtt(format!("uploading {name} (AT+CCERTDOWN)"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        let n = |s| normalize_server(s).map_err(|f| f.message);
        assert_eq!(n("tcp://h:1").unwrap(), ("tcp://h:1".into(), false));
        assert_eq!(n("h").unwrap(), ("tcp://h:1883".into(), false));
        assert_eq!(n("mqtt://h").unwrap(), ("tcp://h:1883".into(), false));
        assert_eq!(n("mqtts://h").unwrap(), ("tcp://h:8883".into(), true));
        assert_eq!(
            n("TCP://1.2.3.4:99/").unwrap(),
            ("tcp://1.2.3.4:99".into(), false)
        );
        assert_eq!(
            n("tcp://[::1]").unwrap(),
            ("tcp://[::1]:1883".into(), false)
        );
        assert_eq!(n("tcp://[::1]:5").unwrap(), ("tcp://[::1]:5".into(), false));
        assert!(n("ws://h").is_err());
        assert!(n("tcp://h:0").is_err());
        assert!(n("tcp://h:x").is_err());
        assert!(n("tcp://").is_err());
    }

    #[test]
    fn auth_modes() {
        let t = |tls, ca: bool, cc: bool, insecure| TlsArgs {
            tls,
            cafile: ca.then(|| "ca".into()),
            cert: cc.then(|| "c".into()),
            key: cc.then(|| "k".into()),
            insecure,
        };
        let m = |a: TlsArgs| tls_auth_mode(&a, a.wanted()).map_err(|f| f.message);
        assert_eq!(m(t(false, false, false, true)).unwrap(), 0);
        assert_eq!(m(t(false, true, false, false)).unwrap(), 1);
        assert_eq!(m(t(true, true, true, false)).unwrap(), 2);
        assert_eq!(m(t(false, false, true, true)).unwrap(), 3);
        assert!(m(t(false, false, true, false)).is_err());
        assert!(m(t(true, false, false, false)).is_err());
        assert_eq!(m(t(false, false, false, false)).unwrap(), 0);
        // mqtts:// without --cafile or --insecure
        assert!(tls_auth_mode(&t(false, false, false, false), true).is_err());
    }

    #[test]
    fn printable_escapes_controls() {
        assert_eq!(printable("a\rb\x00"), "a\\x0Db\\x00");
        assert_eq!(printable("ok\tü"), "ok\tü");
    }
}

//! One grammar for broker addresses, for the Rust API, the CLI, C and Python alike.
//!
//! `tcp://HOST[:PORT]`, `mqtt://...` (the same), `mqtts://...` and `ssl://...` (TLS, port 8883 by
//! default), or a bare `HOST[:PORT]`; IPv6 hosts in brackets (`[::1]:1883`). Like mosquitto's
//! `-L`, a URL may carry `USER[:PASSWORD]@` before the host and a `/TOPIC` after it. The modem
//! itself only takes `tcp://HOST:PORT`: [`BrokerUrl::modem_server`] is that form.

use std::fmt;

use crate::error::{Error, Result};

/// A parsed broker address. Its `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerUrl {
    /// The host name or address (IPv6 without brackets).
    pub host: String,
    /// The port (1883, or 8883 for TLS, when not given).
    pub port: u16,
    /// The scheme asks for TLS (`mqtts://`, `ssl://`).
    pub tls: bool,
    /// `USER` of a `USER[:PASSWORD]@` part.
    pub username: Option<String>,
    /// `PASSWORD` of a `USER:PASSWORD@` part.
    pub password: Option<String>,
    /// The `/TOPIC` part, without its leading slash.
    pub topic: Option<String>,
}

impl BrokerUrl {
    /// Parses `s` (see the module documentation).
    pub fn parse(s: &str) -> Result<BrokerUrl> {
        // Never echo the input: it may hold a password.
        let shown = redact(s);
        let bad = |why: &str| {
            Error::InvalidArgument {
            param: "server",
            reason: format!("{shown}: {why}; expected [tcp|mqtt|mqtts|ssl]://[USER[:PASSWORD]@]HOST[:PORT][/TOPIC]"),
        }
        };
        let s = s.trim();
        let (rest, tls) = match s.find("://") {
            Some(i) => match s[..i].to_ascii_lowercase().as_str() {
                "tcp" | "mqtt" => (&s[i + 3..], false),
                "mqtts" | "ssl" | "tls" => (&s[i + 3..], true),
                _ => return Err(bad("unknown scheme")),
            },
            None => (s, false),
        };
        let (authority, topic) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (Some(user.to_string()), Some(pass.to_string())),
                None => (Some(u.to_string()), None),
            },
        };
        if username.as_deref() == Some("") {
            return Err(bad("empty user name before '@'"));
        }
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p).ok_or_else(|| bad("the port must be 1..65535"))?,
                None if after.is_empty() => default_port,
                None => return Err(bad("junk after ']'")),
            };
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    parse_port(p).ok_or_else(|| bad("the port must be 1..65535"))?,
                ),
                None => (hostport.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.contains(['"', ' ', ',', '@']) {
            return Err(bad("the host has a character the modem cannot take"));
        }
        Ok(BrokerUrl {
            host,
            port,
            tls,
            username,
            password,
            topic: topic.filter(|t| !t.is_empty()).map(str::to_string),
        })
    }

    /// The form the modem takes: `tcp://HOST:PORT` (IPv6 in brackets).
    pub fn modem_server(&self) -> String {
        if self.host.contains(':') {
            format!("tcp://[{}]:{}", self.host, self.port)
        } else {
            format!("tcp://{}:{}", self.host, self.port)
        }
    }
}

fn parse_port(p: &str) -> Option<u16> {
    p.parse::<u16>().ok().filter(|p| *p > 0)
}

/// `s` with the password of a `USER:PASSWORD@` part replaced, for messages.
pub fn redact(s: &str) -> String {
    let start = s.find("://").map_or(0, |i| i + 3);
    let end = s[start..].find('/').map_or(s.len(), |i| start + i);
    match s[start..end].rfind('@') {
        Some(at) => {
            let userinfo = &s[start..start + at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &s[..start], &s[start + at..]),
                None => s.to_string(),
            }
        }
        None => s.to_string(),
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://")?;
        if let Some(u) = &self.username {
            write!(f, "{u}")?;
            if self.password.is_some() {
                f.write_str(":***")?;
            }
            f.write_str("@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        if let Some(t) = &self.topic {
            write!(f, "/{t}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("topic", &self.topic)
            .finish()
    }
}

impl std::str::FromStr for BrokerUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<BrokerUrl> {
        BrokerUrl::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> BrokerUrl {
        BrokerUrl::parse(s).unwrap()
    }

    #[test]
    fn every_form() {
        assert_eq!(p("tcp://h:1").modem_server(), "tcp://h:1");
        assert_eq!(p("h").modem_server(), "tcp://h:1883");
        assert_eq!(p("h:99").modem_server(), "tcp://h:99");
        assert_eq!(p("mqtt://h").modem_server(), "tcp://h:1883");
        let t = p("mqtts://h");
        assert!(t.tls);
        assert_eq!(t.modem_server(), "tcp://h:8883");
        assert!(p("ssl://h:1").tls);
        assert_eq!(p("tcp://[::1]").modem_server(), "tcp://[::1]:1883");
        assert_eq!(p("[::1]:5").modem_server(), "tcp://[::1]:5");
        assert_eq!(p("TCP://H:7/").modem_server(), "tcp://H:7");
        let u = p("mqtt://alice:s3cret@broker:1884/a/b");
        assert_eq!(u.username.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("s3cret"));
        assert_eq!(u.topic.as_deref(), Some("a/b"));
        assert_eq!(u.modem_server(), "tcp://broker:1884");
        let u = p("mqtt://bob@broker");
        assert_eq!(
            (u.username.as_deref(), u.password.as_deref()),
            (Some("bob"), None)
        );
        // A password may contain ':' and '@'.
        let u = p("mqtt://carol:a:b@c@broker");
        assert_eq!(u.password.as_deref(), Some("a:b@c"));
        assert_eq!(u.host, "broker");
    }

    #[test]
    fn errors_name_the_problem_and_never_the_password() {
        for bad in [
            "tcp://",
            "tcp://h:0",
            "tcp://h:x",
            "http://h",
            "mqtt://:pw@h",
            "tcp://[::1",
            "mqtt://u:hunter2@h:70000",
        ] {
            let e = BrokerUrl::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.contains("expected"), "{e}");
        }
        let u = p("mqtt://u:hunter2@h");
        assert!(!format!("{u} {u:?}").contains("hunter2"));
        assert_eq!(redact("mqtt://u:hunter2@h/t"), "mqtt://u:***@h/t");
        assert_eq!(redact("h:1883"), "h:1883");
    }
}

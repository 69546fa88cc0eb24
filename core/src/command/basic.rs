//! General commands: synchronisation, echo, identification, signal and registration.

use std::time::Duration;

use super::{num, split_args, Command, Request, Response};
use crate::error::{Error, Result};
use crate::profile::Profile;

/// `AT`: is anyone there?
#[derive(Debug, Clone, Copy, Default)]
pub struct At;

impl Command for At {
    type Output = ();
    fn request(&self, _: &Profile) -> Result<Request<'_>> {
        Ok(Request::new("AT", "AT".into(), Duration::from_millis(500)))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// `ATE0` / `ATE1`: echo off / on.
#[derive(Debug, Clone, Copy)]
pub struct Echo(pub bool);

impl Command for Echo {
    type Output = ();
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        Ok(Request::new(
            "ATE",
            format!("ATE{}", self.0 as u8),
            p.command_timeout,
        ))
    }
    fn parse(&self, _: Response) -> Result<()> {
        Ok(())
    }
}

/// A command answered by bare text lines (`AT+CGMM`, `AT+CGMR`, `AT+CGSN`, `ATI`), possibly with
/// a `+NAME:` prefix that is removed.
#[derive(Debug, Clone, Copy)]
pub struct Identify(pub IdentifyWhat);

/// What [`Identify`] asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifyWhat {
    /// `AT+CGMM`: the model.
    Model,
    /// `AT+CGMR`: the firmware revision.
    Revision,
    /// `AT+CGSN`: the IMEI.
    Imei,
    /// `ATI`: manufacturer, model, revision, IMEI as printed.
    Info,
}

impl Command for Identify {
    type Output = Vec<String>;
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        let (name, line) = match self.0 {
            IdentifyWhat::Model => ("AT+CGMM", "AT+CGMM"),
            IdentifyWhat::Revision => ("AT+CGMR", "AT+CGMR"),
            IdentifyWhat::Imei => ("AT+CGSN", "AT+CGSN"),
            IdentifyWhat::Info => ("ATI", "ATI"),
        };
        Ok(Request::new(name, line.into(), p.command_timeout).any_line())
    }
    fn parse(&self, r: Response) -> Result<Vec<String>> {
        Ok(r.text_lines()
            .map(|l| {
                let l = l.trim();
                for pre in ["+CGMM:", "+CGMR:", "+CGSN:"] {
                    if let Some(rest) = l.strip_prefix(pre) {
                        return rest.trim().to_string();
                    }
                }
                l.to_string()
            })
            .filter(|l| !l.is_empty())
            .collect())
    }
}

/// `AT+CSQ`: (rssi 0..31 or 99, ber 0..7 or 99).
#[derive(Debug, Clone, Copy, Default)]
pub struct Csq;

impl Command for Csq {
    type Output = (u8, u8);
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        Ok(Request::new("AT+CSQ", "AT+CSQ".into(), p.command_timeout).prefix("+CSQ:"))
    }
    fn parse(&self, r: Response) -> Result<(u8, u8)> {
        let a = r.args("+CSQ:").next().ok_or(Error::Protocol {
            command: "AT+CSQ",
            answer: "no +CSQ line".into(),
        })?;
        let f = split_args(a);
        Ok((
            num("AT+CSQ", f[0])? as u8,
            num("AT+CSQ", f.get(1).copied().unwrap_or(b"99"))? as u8,
        ))
    }
}

/// `AT+CREG?` / `AT+CGREG?`: registration `<stat>` (1 home, 5 roaming).
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// `true`: packet domain (`AT+CGREG?`), `false`: circuit domain (`AT+CREG?`).
    pub packet: bool,
}

impl Command for Registration {
    type Output = u8;
    fn request(&self, p: &Profile) -> Result<Request<'_>> {
        let (name, prefix) = if self.packet {
            ("AT+CGREG?", "+CGREG:")
        } else {
            ("AT+CREG?", "+CREG:")
        };
        Ok(Request::new(name, name.into(), p.command_timeout).prefix(prefix))
    }
    fn parse(&self, r: Response) -> Result<u8> {
        let (name, prefix) = if self.packet {
            ("AT+CGREG?", "+CGREG:")
        } else {
            ("AT+CREG?", "+CREG:")
        };
        let a = r.args(prefix).next().ok_or(Error::Protocol {
            command: name,
            answer: format!("no {prefix} line"),
        })?;
        let f = split_args(a);
        Ok(num(name, f.get(1).copied().unwrap_or(f[0]))? as u8)
    }
}

/// Any command line, answered by lines with `prefix` (or any line when the prefix is empty);
/// for what has no typed command yet.
#[derive(Debug, Clone)]
pub struct Raw<'a> {
    pub line: &'a str,
    pub prefix: &'static str,
    pub timeout: Duration,
}

impl Command for Raw<'_> {
    type Output = Vec<String>;
    fn request(&self, _: &Profile) -> Result<Request<'_>> {
        super::validate::len("line", self.line.len(), 2, 1024)?;
        if self.line.contains(['\r', '\n']) {
            return Err(Error::invalid(
                "line",
                "one command per call: no \\r or \\n inside",
            ));
        }
        let r = Request::new("AT (raw)", self.line.to_string(), self.timeout);
        Ok(if self.prefix.is_empty() {
            r.any_line()
        } else {
            r.prefix(self.prefix)
        })
    }
    fn parse(&self, r: Response) -> Result<Vec<String>> {
        Ok(r.text_lines().map(|s| s.into_owned()).collect())
    }
}

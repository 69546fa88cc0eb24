//! One type per AT command and form: each validates its arguments against the spec and the
//! model profile, encodes itself into a [`Request`], and parses the modem's [`Response`].
//!
//! Run any of them with [`crate::Modem::execute`]; the higher-level [`crate::Client`] methods
//! are built from these.

mod basic;
mod mqtt;
mod ssl;
pub(crate) mod validate;

pub use basic::*;
pub use mqtt::*;
pub use ssl::*;

use std::borrow::Cow;
use std::time::Duration;

use crate::digest::{parse_u32, trim};
use crate::error::{Error, Result};
use crate::profile::Profile;

/// How a command is known to be finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// At the final result (`OK` / `ERROR` / `+CME ERROR`).
    Final,
    /// When both `OK` and the result line `+CMQTTxxx: [<idx>,]<err>` have arrived, in either order
    /// (or the result line alone after a grace period; or `ERROR`).
    ResultLine,
}

/// A command ready to send.
#[derive(Clone)]
pub struct Request<'a> {
    /// The command's name for errors and logs, e.g. `AT+CMQTTCONNECT`.
    pub name: &'static str,
    /// The command line without its `\r`.
    pub line: String,
    /// The line as the trace shows it (passwords replaced), when it differs from `line`.
    pub redacted: Option<String>,
    /// Bytes to send after the `>` prompt.
    pub data: Option<Cow<'a, [u8]>>,
    /// Information lines starting with this belong to the response (e.g. `+CMQTTCONNECT:`).
    pub prefix: &'static str,
    /// Every line that is not a known URC belongs to the response (`ATI`, `AT+CMQTTSUB?`).
    pub any_line: bool,
    /// When the command is finished.
    pub completion: Completion,
    /// For [`Completion::ResultLine`] commands with a client index: the index the result line
    /// must carry.
    pub index: Option<u8>,
    /// How long to wait for the answer, counted from the last byte sent.
    pub timeout: Duration,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The line may hold a password: show it as the trace does.
        f.debug_struct("Request")
            .field("name", &self.name)
            .field("line", &self.trace_text())
            .field("data_len", &self.data.as_ref().map(|d| d.len()))
            .field("prefix", &self.prefix)
            .field("any_line", &self.any_line)
            .field("completion", &self.completion)
            .field("index", &self.index)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<'a> Request<'a> {
    pub(crate) fn new(name: &'static str, line: String, timeout: Duration) -> Self {
        Request {
            name,
            line,
            redacted: None,
            data: None,
            prefix: "",
            any_line: false,
            completion: Completion::Final,
            index: None,
            timeout,
        }
    }

    pub(crate) fn prefix(mut self, prefix: &'static str) -> Self {
        self.prefix = prefix;
        self
    }

    pub(crate) fn any_line(mut self) -> Self {
        self.any_line = true;
        self
    }

    pub(crate) fn data(mut self, data: impl Into<Cow<'a, [u8]>>) -> Self {
        self.data = Some(data.into());
        self
    }

    pub(crate) fn result_line(mut self, index: Option<u8>) -> Self {
        self.completion = Completion::ResultLine;
        self.index = index;
        self
    }

    pub(crate) fn redacted(mut self, text: String) -> Self {
        self.redacted = Some(text);
        self
    }

    /// The text the trace shows for this command.
    pub fn trace_text(&self) -> &str {
        self.redacted.as_deref().unwrap_or(&self.line)
    }
}

/// What the modem answered to a successful command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// Information lines belonging to the command, in order, without line endings.
    pub lines: Vec<Vec<u8>>,
    /// The `<err>` of the result line, for [`Completion::ResultLine`] commands (always 0 here:
    /// non-zero codes are errors).
    pub result: Option<u32>,
}

impl Response {
    /// Information lines as text (lossy).
    pub fn text_lines(&self) -> impl Iterator<Item = Cow<'_, str>> {
        self.lines.iter().map(|l| String::from_utf8_lossy(l))
    }

    /// The arguments after `prefix` of each line that has it.
    pub(crate) fn args<'s>(&'s self, prefix: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.lines
            .iter()
            .filter_map(move |l| l.strip_prefix(prefix.as_bytes()).map(trim))
    }
}

/// A typed AT command.
pub trait Command {
    /// What a successful answer parses into.
    type Output;
    /// Validate the arguments (for this model) and encode the command. Nothing is sent when this
    /// fails.
    fn request(&self, profile: &Profile) -> Result<Request<'_>>;
    /// Parse a successful answer.
    fn parse(&self, response: Response) -> Result<Self::Output>;
}

/// Checks a whole will (topic, message, QoS) before any part of it is sent.
pub(crate) fn validate_will(p: &Profile, topic: &[u8], message: &[u8], qos: u8) -> Result<()> {
    validate::len("will topic", topic.len(), 1, p.max_topic)?;
    validate::publish_topic("will topic", topic)?;
    validate::len("will message", message.len(), 1, p.max_will_message)?;
    validate::qos(qos)
}

/// Splits a comma-separated argument list, honouring double quotes.
pub(crate) fn split_args(s: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                out.push(trim(&s[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(trim(&s[start..]));
    out
}

/// A quoted argument's text (quotes removed); unquoted text as is.
pub(crate) fn unquote(s: &[u8]) -> String {
    let s = trim(s);
    let s = s
        .strip_prefix(b"\"")
        .and_then(|s| s.strip_suffix(b"\""))
        .unwrap_or(s);
    String::from_utf8_lossy(s).into_owned()
}

pub(crate) fn num(command: &'static str, s: &[u8]) -> Result<u32> {
    parse_u32(s).ok_or_else(|| Error::Protocol {
        command,
        answer: crate::trace::redact_line(s),
    })
}

/// Parses the `<err>` of a result line: `<idx>,<err>` (or just `<err>` for START/STOP).
/// Returns (index, err).
pub(crate) fn parse_result_args(args: &[u8]) -> Option<(Option<u32>, u32)> {
    // Numbers only, so a plain split gives what `split_args` would (a quote anywhere fails the
    // number either way), without allocating: this runs for every result line.
    let mut parts = args.split(|&b| b == b',');
    let first = parts.next()?;
    match (parts.next(), parts.next()) {
        (None, _) => Some((None, parse_u32(first)?)),
        (Some(err), None) => Some((Some(parse_u32(first)?), parse_u32(err)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arg_splitting() {
        assert_eq!(
            split_args(b"0,\"a,b\",1"),
            vec![&b"0"[..], &b"\"a,b\""[..], &b"1"[..]]
        );
        assert_eq!(unquote(b" \"x y\" "), "x y");
        assert_eq!(parse_result_args(b"0,23"), Some((Some(0), 23)));
        assert_eq!(parse_result_args(b"23"), Some((None, 23)));
        assert_eq!(parse_result_args(b"x"), None);
    }
}

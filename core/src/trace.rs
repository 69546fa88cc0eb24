//! The AT trace: every line sent and received, with secrets replaced before anyone sees them.

use std::sync::Arc;

use crate::command::split_args;

/// Which way a traced line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Host to modem.
    Send,
    /// Modem to host.
    Receive,
}

impl Direction {
    /// `>>` for sent, `<<` for received.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::Send => ">>",
            Direction::Receive => "<<",
        }
    }
}

/// A trace hook: called for every AT line, on the thread that sent or received it. Keep it fast.
pub type TraceFn = Arc<dyn Fn(Direction, &str) + Send + Sync>;

/// A received line as it may be shown: `AT+CMQTTCONNECT?` answers and echoed `AT+CMQTTCONNECT=`
/// lines carry the password as their 6th field; it is replaced.
pub(crate) fn redact_line(l: &[u8]) -> String {
    let text = String::from_utf8_lossy(l);
    let upper = text.to_ascii_uppercase();
    let body = if let Some(b) = upper.strip_prefix("+CMQTTCONNECT:") {
        Some(text.len() - b.len())
    } else {
        upper
            .strip_prefix("AT+CMQTTCONNECT=")
            .map(|b| text.len() - b.len())
    };
    let Some(start) = body else {
        return text.into_owned();
    };
    let fields = split_args(&l[start..]);
    if fields.len() < 6 {
        return text.into_owned();
    }
    let mut out = text[..start].to_string();
    let shown: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if i == 5 {
                "\"<redacted>\"".to_string()
            } else {
                String::from_utf8_lossy(f).into_owned()
            }
        })
        .collect();
    out.push_str(&shown.join(","));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        let l = br#"+CMQTTCONNECT: 0,"tcp://h:1883",60,1,"user","hunter2""#;
        let r = redact_line(l);
        assert!(!r.contains("hunter2"), "{r}");
        assert!(r.contains("user"), "{r}");
        let l = br#"AT+CMQTTCONNECT=0,"tcp://h:1883",60,1,"u","p,w""#;
        assert!(!redact_line(l).contains("p,w"));
        assert_eq!(redact_line(b"+CMQTTSTART: 0"), "+CMQTTSTART: 0");
    }
}

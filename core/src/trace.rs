//! The AT trace: every line sent and received, with secrets replaced before anyone sees them.

use std::sync::Arc;

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
/// lines carry the password as their 6th field; it is replaced. The connect line is found
/// wherever it appears in the line (line noise, a NUL or a stray byte before an echo, garbage
/// glued to it) and in any letter case; a connect line too damaged to tell its fields apart is
/// cut after its client index.
pub(crate) fn redact_line(l: &[u8]) -> String {
    match redact_bytes(l) {
        Some(r) => String::from_utf8_lossy(&r).into_owned(),
        None => String::from_utf8_lossy(l).into_owned(),
    }
}

/// [`redact_line`] for text already decoded (a `+CME ERROR:` text, an error message).
pub(crate) fn redact_text(s: &str) -> String {
    match redact_bytes(s.as_bytes()) {
        Some(r) => String::from_utf8_lossy(&r).into_owned(),
        None => s.to_string(),
    }
}

/// Where the arguments of the first `+CMQTTCONNECT:` / `+CMQTTCONNECT=` in `l` start.
fn connect_args(l: &[u8]) -> Option<usize> {
    const NAME: &[u8] = b"+CMQTTCONNECT";
    memchr::memchr_iter(b'+', l).find_map(|i| {
        let name = l.get(i..i + NAME.len())?;
        if !name.eq_ignore_ascii_case(NAME) {
            return None;
        }
        let mut j = i + NAME.len();
        while l.get(j) == Some(&b' ') {
            j += 1;
        }
        matches!(l.get(j), Some(b':' | b'=')).then_some(j + 1)
    })
}

/// `l` with the secret part of a connect line replaced; `None` when there is nothing to hide.
fn redact_bytes(l: &[u8]) -> Option<Vec<u8>> {
    let at = connect_args(l)?;
    let args = &l[at..];
    // Top-level commas (outside quotes): the field boundaries.
    let mut commas = Vec::new();
    let mut quoted = false;
    for (i, &b) in args.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas.push(at + i),
            _ => {}
        }
    }
    let fields = commas.len() + 1;
    let has_quotes = args.contains(&b'"');
    let last = &args[commas.last().map_or(0, |c| c + 1 - at)..];
    let numeric = |f: &[u8]| {
        let f = crate::digest::trim(f);
        !f.is_empty() && f.iter().all(u8::is_ascii_digit)
    };
    let cut = if fields >= 6 {
        // client, server, keepalive, clean session, user name: shown; the password and
        // anything after it: not.
        Some((commas[4] + 1, &b"\"<redacted>\""[..]))
    } else if (fields <= 2 && !has_quotes) || (fields == 4 && numeric(last)) {
        // `=?`, a result line (`0,0`), or a connect line without credentials.
        None
    } else if let Some(&first) = commas.first() {
        // Damaged (a quote lost, fields missing): keep only the client index.
        Some((first + 1, &b"<redacted>"[..]))
    } else {
        Some((at, &b"<redacted>"[..]))
    };
    let (keep, with) = cut?;
    let mut out = l[..keep].to_vec();
    out.extend_from_slice(with);
    Some(out)
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

    #[test]
    fn the_connect_line_is_found_anywhere_in_a_line() {
        let line = r#"AT+CMQTTCONNECT=0,"tcp://h:1883",60,1,"user","hunter2""#;
        for prefix in [&b"\0"[..], b" ", b"\xff", b"\x01\x02junk", b"+CPIN: READY "] {
            let l = [prefix, line.as_bytes()].concat();
            let r = redact_line(&l);
            assert!(!r.contains("hunter2"), "{r:?}");
            assert!(r.ends_with(r#""user","<redacted>""#), "{r:?}");
        }
        for l in [
            r#"at+cmqttconnect=0,"tcp://h:1883",60,1,"u","hunter2""#,
            r#"+CMQTTCONNECT : 0,"tcp://h:1883",60,1,"u","hunter2",junk"#,
            // A quote lost: the fields cannot be told apart.
            r#"AT+CMQTTCONNECT=0,"tcp://h:1883",60,1,"u,"hunter2""#,
            r#"AT+CMQTTCONNECT=0,"tcp://h:1883",60,1,u,hunter2"#,
            r#"AT+CMQTTCONNECT=0,"tcp://h:1883",60,1,"hunter2""#,
            r#"AT+CMQTTCONNECT="hunter2""#,
        ] {
            let r = redact_line(l.as_bytes());
            assert!(!r.contains("hunter2"), "{l:?} -> {r:?}");
            assert!(r.contains("<redacted>"), "{l:?} -> {r:?}");
            assert_eq!(redact_text(l), r);
        }
        // Nothing secret: shown as is.
        for l in [
            "+CMQTTCONNECT: 0,0",
            "+CMQTTCONNECT: 1,32",
            "AT+CMQTTCONNECT=?",
            "AT+CMQTTCONNECT?",
            r#"AT+CMQTTCONNECT=0,"tcp://h:1883",60,1"#,
            "+CMQTTCONNLOST: 0,1",
        ] {
            assert_eq!(redact_line(l.as_bytes()), l);
        }
    }
}

//! Argument checks against the spec's ranges, run before a byte is sent.

use crate::error::{Error, Result};

pub(crate) fn index(param: &'static str, i: u8) -> Result<()> {
    if i <= 1 {
        Ok(())
    } else {
        Err(Error::invalid(param, format!("must be 0 or 1, got {i}")))
    }
}

pub(crate) fn range<T: PartialOrd + std::fmt::Display + Copy>(
    param: &'static str,
    v: T,
    lo: T,
    hi: T,
) -> Result<()> {
    if v >= lo && v <= hi {
        Ok(())
    } else {
        Err(Error::invalid(
            param,
            format!("must be {lo}..={hi}, got {v}"),
        ))
    }
}

pub(crate) fn qos(q: u8) -> Result<()> {
    range("qos", q, 0, 2)
}

pub(crate) fn len(param: &'static str, n: usize, lo: usize, hi: usize) -> Result<()> {
    if n >= lo && n <= hi {
        Ok(())
    } else {
        Err(Error::invalid(
            param,
            format!("must be {lo}..={hi} bytes, got {n}"),
        ))
    }
}

/// A string that goes inside double quotes on the command line: AT has no escape for `"`, and
/// control characters would end or corrupt the line.
pub(crate) fn quotable(param: &'static str, s: &str) -> Result<()> {
    if let Some(c) = s.chars().find(|&c| c == '"' || c.is_control()) {
        return Err(Error::invalid(
            param,
            format!("cannot contain {c:?}: AT commands have no way to escape it"),
        ));
    }
    Ok(())
}

pub(crate) fn utf8(param: &'static str, b: &[u8]) -> Result<()> {
    std::str::from_utf8(b).map(|_| ()).map_err(|e| {
        Error::invalid(
            param,
            format!(
                "is not valid UTF-8 ({e}); the modem checks UTF-8: turn that off with set_check_utf8(false) to send raw bytes"
            ),
        )
    })
}

/// A file name in the modem's certificate store.
pub(crate) fn file_name(param: &'static str, s: &str) -> Result<()> {
    len(param, s.len(), 1, 108)?;
    quotable(param, s)?;
    if s.contains(['/', '\\']) {
        return Err(Error::invalid(
            param,
            "is a plain file name in the modem's store: no '/' or '\\'",
        ));
    }
    Ok(())
}

/// A topic to publish to: MQTT forbids wildcards (`+`, `#`) and NUL in it, and a broker that
/// receives one closes the connection (so would every retry).
pub(crate) fn publish_topic(param: &'static str, t: &[u8]) -> Result<()> {
    if let Some(b) = t.iter().find(|&&b| b == b'+' || b == b'#' || b == 0) {
        let what = match b {
            0 => "NUL".to_string(),
            b => format!("the wildcard '{}'", *b as char),
        };
        return Err(Error::InvalidArgument {
            param,
            reason: format!(
                "a topic to publish to must not contain {what} (wildcards are for subscribing); the broker would close the connection"
            ),
        });
    }
    Ok(())
}

/// A topic filter to subscribe to: `#` only as the whole last level, `+` only as a whole level,
/// no NUL (MQTT 3.1.1 section 4.7.1). A broker refuses anything else, every time.
pub(crate) fn topic_filter(param: &'static str, t: &[u8]) -> Result<()> {
    let bad = |why: String| Error::InvalidArgument { param, reason: why };
    if t.contains(&0) {
        return Err(bad("a topic filter must not contain NUL".into()));
    }
    let levels: Vec<&[u8]> = t.split(|&b| b == b'/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains(&b'#') && (*level != b"#" || i + 1 != levels.len()) {
            return Err(bad(format!(
                "'#' must be a whole level and the last one (like \"a/#\"), got {:?}",
                String::from_utf8_lossy(t)
            )));
        }
        if level.contains(&b'+') && *level != b"+" {
            return Err(bad(format!(
                "'+' must be a whole level (like \"a/+/c\"), got {:?}",
                String::from_utf8_lossy(t)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod topic_tests {
    use super::*;

    #[test]
    fn publish_topics_refuse_wildcards_and_nul() {
        assert!(publish_topic("topic", b"a/b/c").is_ok());
        for t in [&b"a/+"[..], b"a/#", b"#", b"a\0b", b"sport+"] {
            let e = publish_topic("topic", t).unwrap_err().to_string();
            assert!(e.contains("must not contain"), "{e}");
        }
    }

    #[test]
    fn filters_follow_the_mqtt_rules() {
        for ok in [
            &b"a/b"[..],
            b"#",
            b"a/#",
            b"+",
            b"+/+/c",
            b"a/+/#",
            b"/",
            b"a//b",
        ] {
            assert!(topic_filter("topic", ok).is_ok(), "{:?}", ok);
        }
        for bad in [&b"a/#/b"[..], b"a#", b"a/b#", b"sport+", b"a/+b/c", b"a\0"] {
            assert!(topic_filter("topic", bad).is_err(), "{:?}", bad);
        }
    }
}

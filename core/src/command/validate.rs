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

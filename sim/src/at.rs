//! AT command line parsing: `AT<cmd>[=?|?|=<args>]`.
//!
//! The `AT` prefix and the command name are case-insensitive; string
//! arguments are in double quotes (no escapes, like SIMCom firmware);
//! everything is bytes (arguments may carry any byte but `"` and `,`).

/// The form of an AT command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Form {
    /// `AT+X=?`
    Test,
    /// `AT+X?`
    Read,
    /// `AT+X=<args>`
    Write(Vec<Arg>),
    /// `AT+X` (or a basic command like `ATE0`, whose number is in `basic`).
    Exec,
}

/// One argument of a write command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    /// Nothing between the commas.
    Empty,
    /// `"..."` (the bytes between the quotes).
    Quoted(Vec<u8>),
    /// Anything unquoted (numbers, bare words), trimmed of spaces.
    Bare(Vec<u8>),
}

impl Arg {
    /// A decimal number (unquoted, digits only, at most 10 digits).
    pub fn num(&self) -> Option<u64> {
        match self {
            Arg::Bare(b) if !b.is_empty() && b.len() <= 10 && b.iter().all(u8::is_ascii_digit) => {
                std::str::from_utf8(b).ok()?.parse().ok()
            }
            _ => None,
        }
    }

    /// A quoted string.
    pub fn quoted(&self) -> Option<&[u8]> {
        match self {
            Arg::Quoted(b) => Some(b),
            _ => None,
        }
    }

    /// A quoted or bare string (file names are accepted both ways).
    pub fn text(&self) -> Option<&[u8]> {
        match self {
            Arg::Quoted(b) | Arg::Bare(b) => Some(b),
            Arg::Empty => None,
        }
    }
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    /// Upper-case name: `"+CMQTTSTART"`, `"E"`, `"I"`, `"&F"`, or `""` for a
    /// bare `AT`.
    pub name: String,
    /// The number after a basic command (`ATE1` → `Some(1)`).
    pub basic: Option<u32>,
    pub form: Form,
}

/// Why a line could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// The line does not contain `AT` at all: ignored, like real modems do.
    NotAt,
    /// It is an AT command but malformed: answered with `ERROR`.
    Syntax,
}

/// Parses one command line (without its terminator).
pub(crate) fn parse_line(line: &[u8]) -> Result<Command, ParseError> {
    let start = line
        .windows(2)
        .position(|w| w.eq_ignore_ascii_case(b"AT"))
        .ok_or(ParseError::NotAt)?;
    let mut rest = &line[start + 2..];
    // Trailing spaces are tolerated.
    while let [head @ .., b' '] = rest {
        rest = head;
    }
    if rest.is_empty() {
        return Ok(Command {
            name: String::new(),
            basic: None,
            form: Form::Exec,
        });
    }
    match rest[0] {
        b'+' | b'*' | b'$' | b'^' => {
            let name_len = 1 + rest[1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            if name_len == 1 {
                return Err(ParseError::Syntax);
            }
            let name = String::from_utf8_lossy(&rest[..name_len]).to_ascii_uppercase();
            let tail = &rest[name_len..];
            let form = match tail {
                [] => Form::Exec,
                b"?" => Form::Read,
                b"=?" => Form::Test,
                [b'=', args @ ..] => Form::Write(parse_args(args)?),
                _ => return Err(ParseError::Syntax),
            };
            Ok(Command {
                name,
                basic: None,
                form,
            })
        }
        c if c.is_ascii_alphabetic() || c == b'&' => {
            let (name, tail) = if c == b'&' {
                match rest.get(1) {
                    Some(l) if l.is_ascii_alphabetic() => (
                        format!("&{}", (*l as char).to_ascii_uppercase()),
                        &rest[2..],
                    ),
                    _ => return Err(ParseError::Syntax),
                }
            } else {
                ((c as char).to_ascii_uppercase().to_string(), &rest[1..])
            };
            let digits = tail.iter().take_while(|d| d.is_ascii_digit()).count();
            let basic = if digits == 0 {
                None
            } else if digits > 5 {
                return Err(ParseError::Syntax);
            } else {
                std::str::from_utf8(&tail[..digits])
                    .ok()
                    .and_then(|s| s.parse().ok())
            };
            let form = match &tail[digits..] {
                [] => Form::Exec,
                b"?" => Form::Read,
                b"=?" => Form::Test,
                _ => return Err(ParseError::Syntax),
            };
            Ok(Command { name, basic, form })
        }
        _ => Err(ParseError::Syntax),
    }
}

/// Splits `a,"b,c",,d` into arguments.
pub(crate) fn parse_args(mut s: &[u8]) -> Result<Vec<Arg>, ParseError> {
    let mut args = Vec::new();
    loop {
        // Skip leading spaces.
        while let [b' ', tail @ ..] = s {
            s = tail;
        }
        if let [b'"', tail @ ..] = s {
            let close = tail
                .iter()
                .position(|c| *c == b'"')
                .ok_or(ParseError::Syntax)?;
            args.push(Arg::Quoted(tail[..close].to_vec()));
            s = &tail[close + 1..];
            while let [b' ', t @ ..] = s {
                s = t;
            }
            match s {
                [] => return Ok(args),
                [b',', t @ ..] => s = t,
                _ => return Err(ParseError::Syntax),
            }
        } else {
            let end = s.iter().position(|c| *c == b',').unwrap_or(s.len());
            let mut piece = &s[..end];
            while let [head @ .., b' '] = piece {
                piece = head;
            }
            if piece.contains(&b'"') {
                return Err(ParseError::Syntax);
            }
            args.push(if piece.is_empty() {
                Arg::Empty
            } else {
                Arg::Bare(piece.to_vec())
            });
            if end == s.len() {
                return Ok(args);
            }
            s = &s[end + 1..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let c = parse_line(b"AT+CMQTTSTART").unwrap();
        assert_eq!(c.name, "+CMQTTSTART");
        assert_eq!(c.form, Form::Exec);
        assert_eq!(parse_line(b"at+cmqttaccq=?").unwrap().form, Form::Test);
        assert_eq!(parse_line(b"AT+CMQTTACCQ?").unwrap().form, Form::Read);
        let c = parse_line(b"AT+CMQTTACCQ=0,\"client, test0\",1").unwrap();
        assert_eq!(
            c.form,
            Form::Write(vec![
                Arg::Bare(b"0".to_vec()),
                Arg::Quoted(b"client, test0".to_vec()),
                Arg::Bare(b"1".to_vec())
            ])
        );
        let c = parse_line(b"ATE0").unwrap();
        assert_eq!((c.name.as_str(), c.basic), ("E", Some(0)));
        assert_eq!(parse_line(b"AT").unwrap().name, "");
        assert_eq!(parse_line(b"hello"), Err(ParseError::NotAt));
        assert_eq!(parse_line(b"AT+"), Err(ParseError::Syntax));
        assert_eq!(parse_line(b"AT+CMQTTACCQ=0,\"abc"), Err(ParseError::Syntax));
        let c = parse_line(b"AT+CMQTTSSLCFG=0,").unwrap();
        assert_eq!(
            c.form,
            Form::Write(vec![Arg::Bare(b"0".to_vec()), Arg::Empty])
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(Arg::Bare(b"120".to_vec()).num(), Some(120));
        assert_eq!(Arg::Bare(b"-1".to_vec()).num(), None);
        assert_eq!(Arg::Bare(b"99999999999".to_vec()).num(), None);
        assert_eq!(Arg::Quoted(b"1".to_vec()).num(), None);
    }

    #[test]
    fn never_panics_on_garbage() {
        for line in [
            &b"AT\xff\x00"[..],
            b"AT=",
            b"AT?",
            b"AT&",
            b"AT&F0",
            b"AT+X=\"",
            b"AT+X=,,,",
            b"ATE99999999",
        ] {
            let _ = parse_line(line);
        }
    }
}

//! The AT digester: a pure function from a byte buffer to the next unit the modem sent.
//!
//! [`digest`] looks at the front of a buffer and either finds one complete unit (a final result,
//! a `>` prompt, an information or unsolicited line, or one length-counted block of a received
//! message) and says how many bytes it used, or says that more bytes are needed and uses none.
//! It keeps no state: the caller owns the buffer and feeds it again after the next read, so a
//! unit split across reads at any byte is found whole once its last byte has arrived.
//!
//! Received topics and payloads (`+CMQTTRXTOPIC` / `+CMQTTRXPAYLOAD`) are taken by the length
//! their header announces, never by line: they may contain `\r\n`, `OK`, `+CMQTTRXEND: 0`, NUL or
//! any byte. An announced length beyond `max_block` is refused before anything is allocated.

use memchr::memchr2;

/// A final result code ending a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Final {
    /// `OK`
    Ok,
    /// `ERROR`
    Error,
    /// `+CME ERROR: <n>`; the text after the colon.
    CmeError(String),
    /// `+CMS ERROR: <n>`; the text after the colon.
    CmsError(String),
}

/// One unit of modem output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit<'a> {
    /// A final result code.
    Final(Final),
    /// The `>` data prompt (recognised only when one is awaited).
    Prompt,
    /// Any other line, without its line ending: an information line of the command in progress
    /// (`+CMQTTCONNECT: 0,0`) or an unsolicited one (`+CMQTTCONNLOST: 0,1`, `RDY`).
    Line(&'a [u8]),
    /// A line starting with `AT`: the modem echoing a command (echo is on).
    Echo(&'a [u8]),
    /// `+CMQTTRXSTART: <idx>,<topic_total_len>,<payload_total_len>`
    RxStart {
        client: u32,
        topic_len: u32,
        payload_len: u32,
    },
    /// `+CMQTTRXTOPIC: <idx>,<len>` and the `len` bytes that follow it.
    RxTopic { client: u32, data: &'a [u8] },
    /// `+CMQTTRXPAYLOAD: <idx>,<len>` and the `len` bytes that follow it.
    RxPayload { client: u32, data: &'a [u8] },
    /// `+CMQTTRXEND: <idx>`
    RxEnd { client: u32 },
    /// Something that announced itself as part of a received message but cannot be one (bad
    /// numbers, a length beyond the maximum). Carried as text for the error report.
    Invalid(&'a [u8]),
}

/// What [`digest`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Digested<'a> {
    /// Not enough bytes for a whole unit: feed the same bytes again with more appended.
    /// `skip` leading bytes (line separators) may be dropped already.
    Incomplete { skip: usize },
    /// A unit, and the number of bytes it used from the front of the buffer.
    Unit { used: usize, unit: Unit<'a> },
}

/// The knobs of [`digest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestOptions {
    /// A `>` prompt is expected now (a command that takes data was sent).
    pub awaiting_prompt: bool,
    /// Largest length-counted block accepted (the spec's received payload maximum, 10240).
    pub max_block: usize,
    /// Longest line kept whole; longer garbage is passed on in pieces of this size, so the
    /// buffer never grows without bound.
    pub max_line: usize,
}

impl Default for DigestOptions {
    fn default() -> Self {
        DigestOptions {
            awaiting_prompt: false,
            max_block: 10240,
            max_line: 4096,
        }
    }
}

/// Find the next unit at the front of `buf`. Pure: same input, same output; never panics.
pub fn digest<'a>(buf: &'a [u8], opts: &DigestOptions) -> Digested<'a> {
    digest_with(buf, opts, true)
}

/// Like [`digest`], but no length-counted block is taken: a `+CMQTTRXTOPIC` /
/// `+CMQTTRXPAYLOAD` header is returned as [`Unit::Invalid`] and the bytes after it are read
/// as lines. For the bytes held by a block that was abandoned (see [`pending_block`]): bytes were
/// lost in it, so what follows cannot be trusted to be counted right, and an answer among them
/// must be read as the line it is.
pub fn digest_lines<'a>(buf: &'a [u8], opts: &DigestOptions) -> Digested<'a> {
    digest_with(buf, opts, false)
}

/// A length-counted block at the front of a buffer whose header has arrived but not all of the
/// bytes it announced: what [`pending_block`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingBlock {
    /// `+CMQTTRXTOPIC` (true) or `+CMQTTRXPAYLOAD` (false).
    pub topic: bool,
    /// The client index of the header.
    pub client: u32,
    /// The length the header announced.
    pub announced: usize,
    /// How many of those bytes are in the buffer.
    pub arrived: usize,
    /// Where the block's data starts in the buffer (after the header and its line ending).
    pub data_start: usize,
}

/// When [`digest`] returns [`Digested::Incomplete`] for `buf` because a block's data has not
/// all arrived: which block, and how much of it is here. `None` otherwise (nothing pending, a
/// line without its end, a header without its line end). Pure, like [`digest`].
///
/// The modem writes each block in one go: a block still incomplete after the line has been
/// quiet for a while lost bytes on the way (a UART overrun), and waiting longer would only
/// swallow the answers that come next.
pub fn pending_block(buf: &[u8], opts: &DigestOptions) -> Option<PendingBlock> {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let rest = &buf[start..];
    if opts.awaiting_prompt && rest[0] == b'>' {
        return None;
    }
    let max_line = opts.max_line.max(1);
    let window = &rest[..rest.len().min(max_line + 1)];
    let end = memchr2(b'\r', b'\n', window)?;
    let after_line = match (rest[end], rest.get(end + 1)) {
        (b'\r', Some(b'\n')) => end + 2,
        (b'\r', None) => return None,
        _ => end + 1,
    };
    let line = trim_end(&rest[..end]);
    let (topic, args) = if let Some(a) = line.strip_prefix(b"+CMQTTRXTOPIC:") {
        (true, a)
    } else {
        (false, line.strip_prefix(b"+CMQTTRXPAYLOAD:")?)
    };
    let mut it = args.split(|&b| b == b',').map(parse_u32);
    let (Some(Some(client)), Some(Some(len)), None) = (it.next(), it.next(), it.next()) else {
        return None;
    };
    let announced = len as usize;
    if announced > opts.max_block {
        return None;
    }
    let data_start = start + after_line;
    let arrived = buf.len() - data_start;
    (arrived < announced).then_some(PendingBlock {
        topic,
        client,
        announced,
        arrived,
        data_start,
    })
}

fn digest_with<'a>(buf: &'a [u8], opts: &DigestOptions, blocks: bool) -> Digested<'a> {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let rest = &buf[start..];
    if rest.is_empty() {
        return Digested::Incomplete { skip: start };
    }
    if opts.awaiting_prompt && rest[0] == b'>' {
        // SIMCom prints "\r\n>" and, on some firmware, a space after it.
        let used = if rest.get(1) == Some(&b' ') { 2 } else { 1 };
        return Digested::Unit {
            used: start + used,
            unit: Unit::Prompt,
        };
    }
    // A line longer than `max_line` is cut into pieces of `max_line` bytes, whether or not its
    // end has arrived yet, so that the pieces do not depend on how the bytes were read.
    let max_line = opts.max_line.max(1);
    let window = &rest[..rest.len().min(max_line + 1)];
    let Some(end) = memchr2(b'\r', b'\n', window) else {
        if rest.len() > max_line {
            return Digested::Unit {
                used: start + max_line,
                unit: Unit::Line(&rest[..max_line]),
            };
        }
        return Digested::Incomplete { skip: start };
    };
    let line = &rest[..end];
    // A block header's data starts right after its line ending, so the whole "\r\n" must be
    // here before the header can be taken.
    let after_line = match (rest[end], rest.get(end + 1)) {
        (b'\r', Some(b'\n')) => end + 2,
        (b'\r', None) => {
            if is_block_header(line) {
                return Digested::Incomplete { skip: start };
            }
            end + 1
        }
        _ => end + 1,
    };
    let line_unit = |unit| Digested::Unit {
        used: start + after_line,
        unit,
    };
    let trimmed = trim_end(line);
    if trimmed.is_empty() {
        return line_unit(Unit::Line(trimmed));
    }
    if let Some(f) = parse_final(trimmed) {
        return line_unit(Unit::Final(f));
    }
    if trimmed.len() >= 2 && trimmed[..2].eq_ignore_ascii_case(b"AT") {
        return line_unit(Unit::Echo(trimmed));
    }
    if let Some(args) = trimmed.strip_prefix(b"+CMQTTRX") {
        if !blocks && is_block_header(trimmed) {
            return line_unit(Unit::Invalid(trimmed));
        }
        return rx_unit(buf, start, after_line, trimmed, args, opts);
    }
    line_unit(Unit::Line(trimmed))
}

pub(crate) fn is_block_header(line: &[u8]) -> bool {
    line.starts_with(b"+CMQTTRXTOPIC:") || line.starts_with(b"+CMQTTRXPAYLOAD:")
}

fn rx_unit<'a>(
    buf: &'a [u8],
    start: usize,
    after_line: usize,
    line: &'a [u8],
    args: &'a [u8],
    opts: &DigestOptions,
) -> Digested<'a> {
    let header_used = start + after_line;
    let invalid = Digested::Unit {
        used: header_used,
        unit: Unit::Invalid(line),
    };
    let (kind, nums) = match split_colon(args) {
        Some(x) => x,
        None => return invalid,
    };
    let mut it = nums.split(|&b| b == b',').map(parse_u32);
    let mut next = || it.next().flatten();
    match kind {
        b"START" => match (next(), next(), next(), next()) {
            (Some(client), Some(topic_len), Some(payload_len), None) => Digested::Unit {
                used: header_used,
                unit: Unit::RxStart {
                    client,
                    topic_len,
                    payload_len,
                },
            },
            _ => invalid,
        },
        b"END" => match (next(), next()) {
            (Some(client), None) => Digested::Unit {
                used: header_used,
                unit: Unit::RxEnd { client },
            },
            _ => invalid,
        },
        b"TOPIC" | b"PAYLOAD" => {
            let (Some(client), Some(len), None) = (next(), next(), next()) else {
                return invalid;
            };
            if len as usize > opts.max_block {
                return invalid;
            }
            let data_start = header_used;
            let data_end = data_start + len as usize;
            if buf.len() < data_end {
                return Digested::Incomplete { skip: start };
            }
            let data = &buf[data_start..data_end];
            let unit = if kind == b"TOPIC" {
                Unit::RxTopic { client, data }
            } else {
                Unit::RxPayload { client, data }
            };
            Digested::Unit {
                used: data_end,
                unit,
            }
        }
        _ => invalid,
    }
}

/// Splits `"TOPIC: 0,9"` into `("TOPIC", "0,9")`.
fn split_colon(args: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = args.iter().position(|&b| b == b':')?;
    Some((&args[..colon], &args[colon + 1..]))
}

/// Parses a decimal number with surrounding spaces; `None` for anything else or overflow.
pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    let s = trim(s);
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as u64;
    }
    u32::try_from(v).ok()
}

fn parse_final(line: &[u8]) -> Option<Final> {
    match line {
        b"OK" => Some(Final::Ok),
        b"ERROR" => Some(Final::Error),
        _ => {
            if let Some(rest) = line.strip_prefix(b"+CME ERROR:") {
                Some(Final::CmeError(text(rest)))
            } else {
                line.strip_prefix(b"+CMS ERROR:")
                    .map(|rest| Final::CmsError(text(rest)))
            }
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(trim(b)).into_owned()
}

pub(crate) fn trim(b: &[u8]) -> &[u8] {
    let b = trim_end(b);
    let s = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    &b[s..]
}

fn trim_end(b: &[u8]) -> &[u8] {
    let e = b
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(0, |p| p + 1);
    &b[..e]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> DigestOptions {
        DigestOptions::default()
    }

    #[test]
    fn finals_lines_and_blank_skipping() {
        let o = opts();
        assert_eq!(
            digest(b"\r\nOK\r\n", &o),
            Digested::Unit {
                used: 6,
                unit: Unit::Final(Final::Ok)
            }
        );
        assert_eq!(
            digest(b"\r\n+CME ERROR: 58\r\n", &o),
            Digested::Unit {
                used: 18,
                unit: Unit::Final(Final::CmeError("58".into()))
            }
        );
        assert_eq!(
            digest(b"\r\n+CMQTTSTART: 0\r\n", &o),
            Digested::Unit {
                used: 18,
                unit: Unit::Line(b"+CMQTTSTART: 0")
            }
        );
        assert_eq!(digest(b"\r\n\r\n", &o), Digested::Incomplete { skip: 4 });
        assert_eq!(digest(b"\r\nOK", &o), Digested::Incomplete { skip: 2 });
        assert_eq!(
            digest(b"AT+CMQTTSTART\r\r\nOK\r\n", &o),
            Digested::Unit {
                used: 14,
                unit: Unit::Echo(b"AT+CMQTTSTART")
            }
        );
    }

    #[test]
    fn prompt_only_when_awaited() {
        let mut o = opts();
        assert_eq!(digest(b"\r\n>", &o), Digested::Incomplete { skip: 2 });
        o.awaiting_prompt = true;
        assert_eq!(
            digest(b"\r\n> ", &o),
            Digested::Unit {
                used: 4,
                unit: Unit::Prompt
            }
        );
    }

    #[test]
    fn blocks_are_taken_by_length() {
        let o = opts();
        let s = b"+CMQTTRXPAYLOAD: 0,8\r\nOK\r\n\r\n\x00\xff\r\n+CMQTTRXEND: 0\r\n";
        match digest(s, &o) {
            Digested::Unit {
                used,
                unit: Unit::RxPayload { client: 0, data },
            } => {
                assert_eq!(data, b"OK\r\n\r\n\x00\xff");
                assert_eq!(used, 22 + 8);
            }
            other => panic!("{other:?}"),
        }
        // The header is not taken until its whole line ending is here.
        assert_eq!(
            digest(b"+CMQTTRXTOPIC: 0,3\r", &o),
            Digested::Incomplete { skip: 0 }
        );
        assert_eq!(
            digest(b"+CMQTTRXTOPIC: 0,3\r\nab", &o),
            Digested::Incomplete { skip: 0 }
        );
    }

    #[test]
    fn pending_blocks_are_reported_and_read_as_lines_when_abandoned() {
        let o = opts();
        let s = b"\r\n+CMQTTRXTOPIC: 0,50\r\nsensors/\r\n+CMQTTDISC: 0,0\r\nOK\r\n";
        assert_eq!(digest(s, &o), Digested::Incomplete { skip: 2 });
        let p = pending_block(s, &o).unwrap();
        assert_eq!(
            p,
            PendingBlock {
                topic: true,
                client: 0,
                announced: 50,
                arrived: s.len() - 23,
                data_start: 23,
            }
        );
        let mut rest = &s[p.data_start..];
        let mut units = Vec::new();
        while let Digested::Unit { used, unit } = digest_lines(rest, &o) {
            units.push(unit);
            rest = &rest[used..];
        }
        assert_eq!(
            units,
            vec![
                Unit::Line(b"sensors/"),
                Unit::Line(b"+CMQTTDISC: 0,0"),
                Unit::Final(Final::Ok)
            ]
        );
        // Complete blocks, partial lines and headers without their line end are not pending.
        assert_eq!(pending_block(b"+CMQTTRXPAYLOAD: 1,2\r\nab", &o), None);
        assert_eq!(pending_block(b"+CMQTTRXPAYLOAD: 1,2\r", &o), None);
        assert_eq!(pending_block(b"+CMQTTRXPAYL", &o), None);
        assert_eq!(pending_block(b"+CMQTTRXPAYLOAD: 0,99999\r\n", &o), None);
        assert_eq!(
            pending_block(b"+CMQTTRXPAYLOAD: 1,3\r\nab", &o).map(|p| (p.topic, p.client)),
            Some((false, 1))
        );
        // With no blocks taken, a header is only an invalid line.
        assert_eq!(
            digest_lines(b"+CMQTTRXPAYLOAD: 0,2\r\nOK\r\n", &o),
            Digested::Unit {
                used: 22,
                unit: Unit::Invalid(b"+CMQTTRXPAYLOAD: 0,2")
            }
        );
    }

    #[test]
    fn hostile_lengths_are_refused_without_allocating() {
        let o = opts();
        let s = b"+CMQTTRXPAYLOAD: 0,4294967295\r\nxyz";
        assert!(matches!(
            digest(s, &o),
            Digested::Unit {
                unit: Unit::Invalid(_),
                ..
            }
        ));
        let s = b"+CMQTTRXPAYLOAD: 0,99999999999999\r\n";
        assert!(matches!(
            digest(s, &o),
            Digested::Unit {
                unit: Unit::Invalid(_),
                ..
            }
        ));
        let long = vec![b'x'; 10_000];
        match digest(&long, &o) {
            Digested::Unit {
                used,
                unit: Unit::Line(l),
            } => assert_eq!((used, l.len()), (4096, 4096)),
            other => panic!("{other:?}"),
        }
    }
}

//! A small driver around the pure digester, shaped like the session's reader loop: it keeps a
//! buffer, digests it repeatedly after every chunk, feeds received-message units to an
//! `Assembler`, and records a normalised event list.

use cmqtt::assemble::{Assembled, Assembler};
use cmqtt::digest::{digest, DigestOptions, Digested, Final, Unit};
use cmqtt::Message;

/// What the host sees, normalised the way the session treats it (empty lines are dropped, as
/// the session drops them; message parts become whole messages or `Malformed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Final(Final),
    Line(Vec<u8>),
    Echo(Vec<u8>),
    Prompt,
    Message(Message),
    Malformed(String),
    Invalid(Vec<u8>),
}

pub fn ok() -> Ev {
    Ev::Final(Final::Ok)
}
pub fn error() -> Ev {
    Ev::Final(Final::Error)
}
pub fn cme(s: &str) -> Ev {
    Ev::Final(Final::CmeError(s.into()))
}
pub fn line(s: impl AsRef<[u8]>) -> Ev {
    Ev::Line(s.as_ref().to_vec())
}
pub fn echo(s: impl AsRef<[u8]>) -> Ev {
    Ev::Echo(s.as_ref().to_vec())
}
pub fn prompt() -> Ev {
    Ev::Prompt
}
pub fn msg(client: u8, topic: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> Ev {
    Ev::Message(Message {
        client,
        topic: topic.as_ref().to_vec(),
        payload: payload.as_ref().to_vec(),
    })
}

/// The options the session's reader uses, with a prompt awaited or not.
pub fn opts(awaiting_prompt: bool) -> DigestOptions {
    DigestOptions {
        awaiting_prompt,
        ..DigestOptions::default()
    }
}

pub struct Driver {
    buf: Vec<u8>,
    asm: Assembler,
    opts: DigestOptions,
    pub events: Vec<Ev>,
    /// The most bytes ever left in the buffer after digesting a chunk.
    pub max_buffered: usize,
    /// Bytes consumed by units and skips, in total.
    pub consumed: usize,
}

impl Driver {
    pub fn new(opts: DigestOptions) -> Driver {
        Driver {
            buf: Vec::new(),
            asm: Assembler::new(1024, 10240),
            opts,
            events: Vec::new(),
            max_buffered: 0,
            consumed: 0,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        let Driver {
            buf,
            asm,
            opts,
            events,
            ..
        } = self;
        buf.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            match digest(rest, opts) {
                Digested::Incomplete { skip } => {
                    assert!(
                        skip <= rest.len(),
                        "skip {skip} > {} bytes given",
                        rest.len()
                    );
                    pos += skip;
                    break;
                }
                Digested::Unit { used, unit } => {
                    assert!(used > 0, "a unit that used no bytes: {unit:?}");
                    assert!(
                        used <= rest.len(),
                        "used {used} > {} bytes given",
                        rest.len()
                    );
                    let a = match unit {
                        Unit::Final(f) => {
                            events.push(Ev::Final(f));
                            None
                        }
                        Unit::Prompt => {
                            events.push(Ev::Prompt);
                            None
                        }
                        Unit::Line(l) => {
                            if !l.is_empty() {
                                events.push(Ev::Line(l.to_vec()));
                            }
                            None
                        }
                        Unit::Echo(l) => {
                            events.push(Ev::Echo(l.to_vec()));
                            None
                        }
                        Unit::Invalid(l) => {
                            events.push(Ev::Invalid(l.to_vec()));
                            None
                        }
                        Unit::RxStart {
                            client,
                            topic_len,
                            payload_len,
                        } => Some(asm.start(client, topic_len, payload_len)),
                        Unit::RxTopic { client, data } => Some(asm.topic(client, data)),
                        Unit::RxPayload { client, data } => Some(asm.payload(client, data)),
                        Unit::RxEnd { client } => Some(asm.end(client)),
                    };
                    match a {
                        Some(Assembled::Message(m)) => events.push(Ev::Message(m)),
                        Some(Assembled::Malformed(w)) => events.push(Ev::Malformed(w)),
                        Some(Assembled::Pending) | None => {}
                    }
                    pos += used;
                }
            }
        }
        buf.drain(..pos);
        self.consumed += pos;
        self.max_buffered = self.max_buffered.max(self.buf.len());
    }

    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }
}

/// Events and leftover bytes of feeding `chunks` in order.
pub fn run<'a>(o: DigestOptions, chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<Ev>, Vec<u8>) {
    let mut d = Driver::new(o);
    for c in chunks {
        d.feed(c);
    }
    let left = d.leftover().to_vec();
    (d.events, left)
}

pub fn run_whole(o: DigestOptions, stream: &[u8]) -> (Vec<Ev>, Vec<u8>) {
    run(o, [stream])
}

pub fn run_bytewise(o: DigestOptions, stream: &[u8]) -> (Vec<Ev>, Vec<u8>) {
    run(o, stream.chunks(1))
}

pub fn run_split(o: DigestOptions, stream: &[u8], at: usize) -> (Vec<Ev>, Vec<u8>) {
    run(o, [&stream[..at], &stream[at..]])
}

/// Feeds `stream` in chunks whose sizes cycle through `sizes` (each at least 1).
pub fn run_sized(o: DigestOptions, stream: &[u8], sizes: &[usize]) -> (Vec<Ev>, Vec<u8>) {
    let mut chunks = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < stream.len() {
        let n = sizes[i % sizes.len()].max(1).min(stream.len() - pos);
        chunks.push(&stream[pos..pos + n]);
        pos += n;
        i += 1;
    }
    run(o, chunks)
}

/// Asserts that `stream` yields exactly `expected` (nothing left over) when fed whole, split in
/// two at every byte boundary, and one byte at a time.
pub fn assert_all_splits(name: &str, o: DigestOptions, stream: &[u8], expected: &[Ev]) {
    let (whole, left) = run_whole(o, stream);
    assert_eq!(whole, expected, "{name}: whole stream");
    assert!(
        left.is_empty(),
        "{name}: bytes left over: {:?}",
        String::from_utf8_lossy(&left)
    );
    for at in 0..=stream.len() {
        let (ev, left2) = run_split(o, stream, at);
        assert_eq!(ev, whole, "{name}: split at byte {at}");
        assert_eq!(left2, left, "{name}: leftover, split at byte {at}");
    }
    let (ev, left3) = run_bytewise(o, stream);
    assert_eq!(ev, whole, "{name}: one byte at a time");
    assert_eq!(left3, left, "{name}: leftover, one byte at a time");
}

//! The core's digester and assembler, driven like `core/src/session.rs`'s reader loop, on
//! arbitrary bytes arriving in arbitrary reads.
//!
//! Invariants: no panic; every unit uses at least one byte and no more than the buffer holds;
//! lines are at most `max_line` bytes and blocks at most `max_block`; what waits in the buffer
//! stays below `max_line + 2 + max_block`; assembled messages never exceed the maxima; and the
//! units found do not depend on how the bytes were split into reads.

#![no_main]

use cmqtt::assemble::{Assembled, Assembler};
use cmqtt::digest::{digest, DigestOptions, Digested, Unit};
use libfuzzer_sys::fuzz_target;

const MAX_TOPIC: usize = 1024;
const MAX_PAYLOAD: usize = 10240;

fn run(data: &[u8], read: usize, opts: &DigestOptions) -> Vec<String> {
    let mut asm = Assembler::new(MAX_TOPIC, MAX_PAYLOAD);
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut after_prompt = false;
    for chunk in data.chunks(read.max(1)) {
        buf.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            match digest(rest, opts) {
                Digested::Incomplete { skip } => {
                    assert!(skip <= rest.len(), "skip {skip} > {}", rest.len());
                    pos += skip;
                    break;
                }
                Digested::Unit { used, unit } => {
                    assert!(used > 0, "a unit that uses no byte: {unit:?}");
                    assert!(used <= rest.len(), "used {used} > {}", rest.len());
                    match &unit {
                        Unit::Line(l) | Unit::Echo(l) | Unit::Invalid(l) => {
                            assert!(l.len() <= opts.max_line, "line of {}", l.len())
                        }
                        Unit::RxTopic { data, .. } | Unit::RxPayload { data, .. } => {
                            assert!(data.len() <= opts.max_block, "block of {}", data.len())
                        }
                        _ => {}
                    }
                    let a = match unit {
                        Unit::RxStart {
                            client,
                            topic_len,
                            payload_len,
                        } => asm.start(client, topic_len, payload_len),
                        Unit::RxTopic { client, data } => asm.topic(client, data),
                        Unit::RxPayload { client, data } => asm.payload(client, data),
                        Unit::RxEnd { client } => asm.end(client),
                        _ => Assembled::Pending,
                    };
                    if let Assembled::Message(m) = &a {
                        assert!(m.topic.len() <= MAX_TOPIC, "topic of {}", m.topic.len());
                        assert!(
                            m.payload.len() <= MAX_PAYLOAD,
                            "payload of {}",
                            m.payload.len()
                        );
                        assert!(m.client <= 1);
                    }
                    // The prompt is "> " on some firmware; when a read ends right after '>',
                    // the prompt is taken alone (the modem may send nothing more until it gets
                    // the data) and the space starts what follows. The session drops that
                    // space (see `skip_echo`); compare the units the same way.
                    let text = match &unit {
                        Unit::Line(l) if after_prompt && l.first().is_none_or(|&b| b == b' ') => {
                            let rest = l.get(1..).unwrap_or_default();
                            (!rest.is_empty()).then(|| format!("{:?}", Unit::Line(rest)))
                        }
                        u => Some(format!("{u:?}")),
                    };
                    // Taken without its space (the read ended right after '>').
                    after_prompt = matches!(unit, Unit::Prompt) && rest[used - 1] == b'>';
                    out.extend(text);
                    if !matches!(a, Assembled::Pending) {
                        out.push(format!("{a:?}"));
                    }
                    pos += used;
                }
            }
        }
        buf.drain(..pos);
        assert!(
            buf.len() < opts.max_line + 2 + opts.max_block,
            "{} bytes wait in the buffer",
            buf.len()
        );
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, data)) = data.split_first() else {
        return;
    };
    let opts = DigestOptions {
        awaiting_prompt: head & 1 != 0,
        max_block: MAX_PAYLOAD,
        // Small lines now and then, so that cutting long lines is reached with short inputs.
        max_line: if head & 2 != 0 { 16 } else { 4096 },
    };
    let read = match head >> 2 {
        0 => usize::MAX,
        n => usize::from(n),
    };
    let whole = run(data, usize::MAX, &opts);
    // While a prompt is awaited, whether a '>' starts a unit (the prompt) or sits inside a line
    // depends on where the reads ended: the prompt must be taken as soon as it is seen, since the
    // modem sends nothing more until it has the data. Only the other invariants hold then.
    if read != usize::MAX && !opts.awaiting_prompt {
        let split = run(data, read, &opts);
        assert_eq!(whole, split, "units depend on the reads (size {read})");
    }
});

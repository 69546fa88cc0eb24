//! Property tests of the digester: random received-message streams (binary topics and payloads
//! up to 10240 bytes holding `\r\n`, `OK\r\n`, `+CMQTTRXEND: 0`, NUL, 0xFF; random chunk sizes
//! like the modem's 1500-byte chunking; random blank lines between URCs; result lines and finals
//! interleaved) give the same events however they are split into reads, and the messages come
//! out byte for byte. Arbitrary bytes never make the digester panic, take more than it was
//! given, or keep more than a bounded amount buffered.

mod support;

use cmqtt::digest::{digest, DigestOptions, Digested};
use cmqtt::Message;
use proptest::prelude::*;
use support::driver::*;

/// Lines that real modems print between (and inside) received messages.
const FILLERS: &[&str] = &[
    "OK",
    "ERROR",
    "+CMQTTPUB: 0,0",
    "+CMQTTPUB: 1,0",
    "+CMQTTSUB: 0,0",
    "+CMQTTCONNLOST: 0,1",
    "+CME ERROR: 58",
    "SMS DONE",
    "RDY",
];

fn filler_event(f: &str) -> Ev {
    match f {
        "OK" => ok(),
        "ERROR" => error(),
        "+CME ERROR: 58" => cme("58"),
        l => line(l),
    }
}

#[derive(Debug, Clone)]
struct RxMsg {
    client: u8,
    topic: Vec<u8>,
    payload: Vec<u8>,
    topic_chunk: usize,
    payload_chunk: usize,
    /// A line the modem prints right after `+CMQTTRXSTART` (between the parts of the message).
    inner: Option<&'static str>,
}

#[derive(Debug, Clone)]
enum Item {
    Msg(RxMsg),
    Filler(&'static str),
}

/// Pieces that look like protocol: a payload made of them is the hardest to take by length.
fn hostile_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 0..300),
        1 => Just(b"\r\n".to_vec()),
        1 => Just(b"OK\r\n".to_vec()),
        1 => Just(b"\r\nOK\r\n".to_vec()),
        1 => Just(b"+CMQTTRXEND: 0".to_vec()),
        1 => Just(b"\r\n+CMQTTRXEND: 1\r\n".to_vec()),
        1 => Just(b"+CMQTTRXSTART: 0,3,3\r\n".to_vec()),
        1 => Just(b"+CMQTTRXPAYLOAD: 1,9999\r\n".to_vec()),
        1 => Just(b"ERROR\r\n".to_vec()),
        1 => Just(b"\r\n>".to_vec()),
        1 => Just(vec![0]),
        1 => Just(vec![0xff]),
        1 => Just(vec![b'\r']),
        1 => Just(vec![b'\n']),
    ]
}

fn bytes_upto(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(hostile_piece(), 0..24).prop_map(move |v| {
            let mut b = v.concat();
            b.truncate(max);
            b
        }),
        1 => prop::collection::vec(any::<u8>(), 0..=max),
        // Large payloads, near and at the maximum.
        1 => (0..=max.min(400), any::<u8>()).prop_map(move |(less, fill)| {
            let mut b: Vec<u8> = (0..max - less).map(|i| (i as u8).wrapping_mul(31) ^ fill).collect();
            if !b.is_empty() {
                let n = b.len();
                b[n / 2] = b'\r';
                b[n - 1] = b'\n';
            }
            b
        }),
    ]
}

fn chunk_size() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1500usize), 1usize..=1500, 1usize..=16]
}

fn rx_msg() -> impl Strategy<Value = RxMsg> {
    (
        0u8..=1,
        bytes_upto(1024).prop_map(|mut t| {
            if t.is_empty() {
                t.push(b'/');
            }
            t
        }),
        bytes_upto(10240),
        chunk_size(),
        chunk_size(),
        prop::option::weighted(0.2, prop::sample::select(FILLERS)),
    )
        .prop_map(
            |(client, topic, payload, topic_chunk, payload_chunk, inner)| RxMsg {
                client,
                topic,
                payload,
                topic_chunk,
                payload_chunk,
                inner,
            },
        )
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        3 => rx_msg().prop_map(Item::Msg),
        1 => prop::sample::select(FILLERS).prop_map(Item::Filler),
    ]
}

/// Blank lines before each URC: mostly one "\r\n", sometimes none or several (SIM7600 style).
fn separators() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![4 => Just(1usize), 1 => Just(0usize), 2 => 2usize..=3],
        1..32,
    )
}

/// The modem's bytes for `items`, and the events the host must see.
fn build(items: &[Item], seps: &[usize]) -> (Vec<u8>, Vec<Ev>) {
    let mut s = Vec::new();
    let mut ev = Vec::new();
    let mut k = 0;
    let mut urc = |s: &mut Vec<u8>, text: &[u8]| {
        for _ in 0..seps[k % seps.len()] {
            s.extend_from_slice(b"\r\n");
        }
        k += 1;
        s.extend_from_slice(text);
        s.extend_from_slice(b"\r\n");
    };
    for it in items {
        match it {
            Item::Filler(f) => {
                // A final or result line is always on a line of its own.
                s.extend_from_slice(b"\r\n");
                urc(&mut s, f.as_bytes());
                ev.push(filler_event(f));
            }
            Item::Msg(m) => {
                let c = m.client;
                urc(
                    &mut s,
                    format!("+CMQTTRXSTART: {c},{},{}", m.topic.len(), m.payload.len()).as_bytes(),
                );
                if let Some(f) = m.inner {
                    urc(&mut s, f.as_bytes());
                    ev.push(filler_event(f));
                }
                for t in m.topic.chunks(m.topic_chunk) {
                    urc(&mut s, format!("+CMQTTRXTOPIC: {c},{}", t.len()).as_bytes());
                    s.extend_from_slice(t);
                }
                for p in m.payload.chunks(m.payload_chunk) {
                    urc(
                        &mut s,
                        format!("+CMQTTRXPAYLOAD: {c},{}", p.len()).as_bytes(),
                    );
                    s.extend_from_slice(p);
                }
                urc(&mut s, format!("+CMQTTRXEND: {c}").as_bytes());
                ev.push(msg(c, &m.topic, &m.payload));
            }
        }
    }
    (s, ev)
}

fn messages(ev: &[Ev]) -> Vec<&Message> {
    ev.iter()
        .filter_map(|e| match e {
            Ev::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Messages come out whole and byte for byte, however the stream is cut into reads.
    #[test]
    fn message_streams_survive_any_chunking(
        items in prop::collection::vec(item(), 1..5),
        seps in separators(),
        sizes in prop::collection::vec(1usize..3000, 1..40),
        split in any::<prop::sample::Index>(),
        awaiting in any::<bool>(),
    ) {
        let (stream, expected) = build(&items, &seps);
        let o = opts(awaiting);
        let (whole, left) = run_whole(o, &stream);
        prop_assert_eq!(&whole, &expected);
        prop_assert!(left.is_empty(), "left over: {:?}", String::from_utf8_lossy(&left));

        let originals: Vec<Message> = items.iter().filter_map(|i| match i {
            Item::Msg(m) => Some(Message { client: m.client, topic: m.topic.clone(), payload: m.payload.clone() }),
            Item::Filler(_) => None,
        }).collect();
        let got: Vec<Message> = messages(&whole).into_iter().cloned().collect();
        prop_assert_eq!(got, originals);

        let (chunked, left) = run_sized(o, &stream, &sizes);
        prop_assert_eq!(&chunked, &whole);
        prop_assert!(left.is_empty());

        let at = split.index(stream.len() + 1);
        let (two, left) = run_split(o, &stream, at);
        prop_assert_eq!(&two, &whole);
        prop_assert!(left.is_empty());

        // 1500-byte reads, like a UART driver's buffer.
        let (uart, _) = run_sized(o, &stream, &[1500]);
        prop_assert_eq!(&uart, &whole);

        if stream.len() <= 24_000 {
            let (bytewise, left) = run_bytewise(o, &stream);
            prop_assert_eq!(&bytewise, &whole);
            prop_assert!(left.is_empty());
        }
    }
}

/// Arbitrary bytes: protocol-looking pieces and random bytes mixed.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(
            prop_oneof![
                3 => hostile_piece(),
                1 => Just(b"+CMQTTRXTOPIC: 0,5\r\n".to_vec()),
                1 => Just(b"+CMQTTRXPAYLOAD: 0,4294967295\r\n".to_vec()),
                1 => Just(b"+CMQTTRXSTART: 4294967296,1,1\r\n".to_vec()),
                1 => Just(b"+CMQTTRX".to_vec()),
                1 => Just(b"AT+CMQTTPUB=0,1,60\r".to_vec()),
                1 => Just(b"+CME ERROR:".to_vec()),
                1 => Just(b"> ".to_vec()),
                1 => Just(b" \t ".to_vec()),
            ],
            0..40,
        ).prop_map(|v| v.concat()),
        1 => prop::collection::vec(any::<u8>(), 0..4000),
    ]
}

fn digest_options() -> impl Strategy<Value = DigestOptions> {
    (
        any::<bool>(),
        prop_oneof![Just(10240usize), 0usize..=64],
        prop_oneof![Just(4096usize), 0usize..=64],
    )
        .prop_map(|(awaiting_prompt, max_block, max_line)| DigestOptions {
            awaiting_prompt,
            max_block,
            max_line,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// One call: never panics, never uses more than it was given, a unit always uses a byte.
    #[test]
    fn digest_is_total_on_arbitrary_bytes(buf in garbage(), o in digest_options()) {
        match digest(&buf, &o) {
            Digested::Incomplete { skip } => prop_assert!(skip <= buf.len()),
            Digested::Unit { used, .. } => {
                prop_assert!(used > 0, "a unit used no bytes");
                prop_assert!(used <= buf.len(), "used {} of {}", used, buf.len());
            }
        }
    }

    /// Driven like the reader: every unit uses at least a byte and no more than it was given
    /// (asserted inside the driver), everything is consumed except one unfinished unit, and
    /// that leftover is bounded by the options, whatever the reads look like.
    #[test]
    fn driving_arbitrary_bytes_stays_bounded(
        buf in garbage(),
        o in digest_options(),
        sizes in prop::collection::vec(1usize..600, 1..20),
    ) {
        let mut d = Driver::new(o);
        let mut pos = 0;
        let mut i = 0;
        let max_chunk = sizes.iter().copied().max().unwrap_or(1);
        while pos < buf.len() {
            let n = sizes[i % sizes.len()].min(buf.len() - pos);
            d.feed(&buf[pos..pos + n]);
            pos += n;
            i += 1;
            let bound = o.max_line.max(1) + 2 + o.max_block;
            prop_assert!(
                d.leftover().len() <= bound,
                "{} bytes kept (bound {}; chunks up to {})", d.leftover().len(), bound, max_chunk
            );
        }
        prop_assert_eq!(d.consumed + d.leftover().len(), buf.len());
    }

    /// With no prompt awaited, even arbitrary bytes give the same units however they are read.
    #[test]
    fn arbitrary_bytes_are_chunking_invariant(
        buf in garbage(),
        small in any::<bool>(),
        sizes in prop::collection::vec(1usize..700, 1..20),
        split in any::<prop::sample::Index>(),
    ) {
        let o = DigestOptions {
            awaiting_prompt: false,
            max_block: if small { 16 } else { 10240 },
            max_line: if small { 8 } else { 4096 },
        };
        let (whole, left) = run_whole(o, &buf);
        let (chunked, left2) = run_sized(o, &buf, &sizes);
        prop_assert_eq!(&chunked, &whole);
        prop_assert_eq!(&left2, &left);
        let at = split.index(buf.len() + 1);
        let (two, left3) = run_split(o, &buf, at);
        prop_assert_eq!(&two, &whole);
        prop_assert_eq!(&left3, &left);
        let (bytewise, left4) = run_bytewise(o, &buf);
        prop_assert_eq!(&bytewise, &whole);
        prop_assert_eq!(&left4, &left);
    }
}

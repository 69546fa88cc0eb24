//! Assembles `+CMQTTRXSTART / RXTOPIC* / RXPAYLOAD* / RXEND` units into whole messages, checking
//! every chunk against the totals announced at the start.

use crate::event::Message;

/// What feeding one unit produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    /// Nothing yet: the message is still arriving.
    Pending,
    /// A whole message.
    Message(Message),
    /// The chunks did not add up; the partial message is discarded and this says why.
    Malformed(String),
}

#[derive(Debug)]
struct Partial {
    topic: Vec<u8>,
    payload: Vec<u8>,
    topic_total: usize,
    payload_total: usize,
}

/// Per-client assembly state. Memory is bounded by the announced totals, which are checked
/// against the maxima before anything is reserved.
#[derive(Debug)]
pub struct Assembler {
    slots: [Option<Partial>; 2],
    /// A message of this client was reported lost ([`Assembler::lost`]): its remaining chunks
    /// and its `+CMQTTRXEND` are dropped quietly instead of each being reported again.
    lost: [bool; 2],
    max_topic: usize,
    max_payload: usize,
}

impl Assembler {
    /// An assembler accepting topics up to `max_topic` and payloads up to `max_payload` bytes.
    pub fn new(max_topic: usize, max_payload: usize) -> Self {
        Assembler {
            slots: [None, None],
            lost: [false, false],
            max_topic,
            max_payload,
        }
    }

    /// `+CMQTTRXSTART`
    pub fn start(&mut self, client: u32, topic_len: u32, payload_len: u32) -> Assembled {
        let Some(slot) = self.slots.get_mut(client as usize) else {
            return Assembled::Malformed(format!("+CMQTTRXSTART for client {client} (not 0 or 1)"));
        };
        let previous = slot.take();
        self.lost[client as usize] = false;
        let (t, p) = (topic_len as usize, payload_len as usize);
        if t > self.max_topic || p > self.max_payload {
            return Assembled::Malformed(format!(
                "+CMQTTRXSTART: {client},{t},{p} announces more than the maximum ({} topic, {} payload bytes)",
                self.max_topic, self.max_payload
            ));
        }
        *slot = Some(Partial {
            topic: Vec::with_capacity(t),
            payload: Vec::with_capacity(p),
            topic_total: t,
            payload_total: p,
        });
        match previous {
            Some(p) => Assembled::Malformed(format!(
                "client {client}: a received message was cut off ({} of {} topic and {} of {} payload bytes) by a new +CMQTTRXSTART",
                p.topic.len(),
                p.topic_total,
                p.payload.len(),
                p.payload_total
            )),
            None => Assembled::Pending,
        }
    }

    /// `+CMQTTRXTOPIC` with its bytes.
    pub fn topic(&mut self, client: u32, data: &[u8]) -> Assembled {
        self.append(client, data, true)
    }

    /// `+CMQTTRXPAYLOAD` with its bytes.
    pub fn payload(&mut self, client: u32, data: &[u8]) -> Assembled {
        self.append(client, data, false)
    }

    fn append(&mut self, client: u32, data: &[u8], topic: bool) -> Assembled {
        let what = if topic { "RXTOPIC" } else { "RXPAYLOAD" };
        let Some(slot) = self.slots.get_mut(client as usize) else {
            return Assembled::Malformed(format!("+CMQTT{what} for client {client} (not 0 or 1)"));
        };
        let Some(p) = slot.as_mut() else {
            if self.lost[client as usize] {
                return Assembled::Pending;
            }
            return Assembled::Malformed(format!(
                "+CMQTT{what}: {client},{} without +CMQTTRXSTART",
                data.len()
            ));
        };
        let (buf, total) = if topic {
            (&mut p.topic, p.topic_total)
        } else {
            (&mut p.payload, p.payload_total)
        };
        if buf.len() + data.len() > total {
            let msg = format!(
                "client {client}: +CMQTT{what} chunks add up to more than the {total} bytes announced"
            );
            *slot = None;
            return Assembled::Malformed(msg);
        }
        buf.extend_from_slice(data);
        Assembled::Pending
    }

    /// `+CMQTTRXEND`
    pub fn end(&mut self, client: u32) -> Assembled {
        let Some(slot) = self.slots.get_mut(client as usize) else {
            return Assembled::Malformed(format!("+CMQTTRXEND for client {client} (not 0 or 1)"));
        };
        let Some(p) = slot.take() else {
            if std::mem::take(&mut self.lost[client as usize]) {
                return Assembled::Pending;
            }
            return Assembled::Malformed(format!("+CMQTTRXEND: {client} without +CMQTTRXSTART"));
        };
        if p.topic.len() != p.topic_total || p.payload.len() != p.payload_total {
            return Assembled::Malformed(format!(
                "client {client}: message ended with {} of {} topic and {} of {} payload bytes",
                p.topic.len(),
                p.topic_total,
                p.payload.len(),
                p.payload_total
            ));
        }
        Assembled::Message(Message {
            client: client as u8,
            topic: p.topic,
            payload: p.payload,
        })
    }

    /// A `+CMQTTRXTOPIC` (`topic`) or `+CMQTTRXPAYLOAD` block of `client` stopped after the
    /// bytes `arrived` of its `announced` (bytes were lost on the line) and was abandoned: the
    /// message it belonged to is dropped, and this says which it was (client, topic as far as it
    /// is known). Until the next `+CMQTTRXSTART` of that client, the rest of the lost message
    /// (chunks, `+CMQTTRXEND`) is dropped without a report of its own.
    pub fn lost(&mut self, client: u32, topic: bool, arrived: &[u8], announced: usize) -> String {
        let what = if topic { "RXTOPIC" } else { "RXPAYLOAD" };
        let block = format!(
            "its +CMQTT{what} block stopped after {} of {announced} bytes (bytes lost on the line)",
            arrived.len()
        );
        let shown = |t: &[u8]| {
            // A topic is at most 1024 bytes; the report shows the start of it.
            let t = &t[..t.len().min(128)];
            format!("{:?}", String::from_utf8_lossy(t))
        };
        let Some(slot) = self.slots.get_mut(client as usize) else {
            return format!("client {client} (not 0 or 1): a received message was lost: {block}");
        };
        self.lost[client as usize] = true;
        let partial = slot.take();
        let about = match (&partial, topic) {
            (Some(p), false) if p.topic.len() == p.topic_total => format!(
                "on topic {} ({} of {} payload bytes)",
                shown(&p.topic),
                p.payload.len() + arrived.len(),
                p.payload_total
            ),
            (Some(p), _) => {
                let mut t = p.topic.clone();
                if topic {
                    t.extend_from_slice(arrived);
                }
                format!(
                    "with a {}-byte topic starting {} and {} payload bytes",
                    p.topic_total,
                    shown(&t),
                    p.payload_total
                )
            }
            (None, true) => format!(
                "with a topic starting {} (its +CMQTTRXSTART was not seen)",
                shown(arrived)
            ),
            (None, false) => "(its +CMQTTRXSTART was not seen)".to_string(),
        };
        format!("client {client}: a received message {about} was lost: {block}")
    }

    /// Whether a message is being received on any client.
    pub fn in_progress(&self) -> bool {
        self.slots.iter().any(Option::is_some)
    }

    /// Drop partial messages (the modem restarted); says what was dropped.
    pub fn reset(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if let Some(p) = s.take() {
                out.push(format!(
                    "client {i}: partial message dropped at modem restart ({} of {} payload bytes)",
                    p.payload.len(),
                    p.payload_total
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_chunks_and_checks_totals() {
        let mut a = Assembler::new(1024, 10240);
        assert_eq!(a.start(0, 3, 5), Assembled::Pending);
        assert_eq!(a.topic(0, b"a/"), Assembled::Pending);
        assert_eq!(a.topic(0, b"b"), Assembled::Pending);
        assert_eq!(a.payload(0, b"12"), Assembled::Pending);
        assert_eq!(a.payload(0, b"345"), Assembled::Pending);
        assert_eq!(
            a.end(0),
            Assembled::Message(Message {
                client: 0,
                topic: b"a/b".to_vec(),
                payload: b"12345".to_vec()
            })
        );
        assert!(matches!(a.end(0), Assembled::Malformed(_)));
        assert!(matches!(a.start(0, 2000, 1), Assembled::Malformed(_)));
        assert!(matches!(a.start(2, 1, 1), Assembled::Malformed(_)));
        a.start(1, 1, 1);
        assert!(matches!(a.payload(1, b"xx"), Assembled::Malformed(_)));
        assert!(!a.in_progress());
    }

    #[test]
    fn a_lost_block_drops_its_message_and_the_rest_of_it_quietly() {
        let mut a = Assembler::new(1024, 10240);
        a.start(0, 10, 5);
        let why = a.lost(0, true, b"sens", 10);
        assert!(why.contains("client 0") && why.contains("lost"), "{why}");
        assert!(why.contains("RXTOPIC") && why.contains("4 of 10"), "{why}");
        assert!(why.contains("starting \"sens\""), "{why}");
        assert!(!a.in_progress());
        // The rest of the lost message: no second report.
        assert_eq!(a.payload(0, b"12345"), Assembled::Pending);
        assert_eq!(a.end(0), Assembled::Pending);
        // Then it is back to normal.
        assert!(matches!(a.end(0), Assembled::Malformed(_)));
        a.start(1, 3, 5);
        a.topic(1, b"a/b");
        let why = a.lost(1, false, b"12", 5);
        assert!(why.contains("on topic \"a/b\""), "{why}");
        a.start(1, 1, 1);
        a.topic(1, b"c");
        a.payload(1, b"d");
        assert!(matches!(a.end(1), Assembled::Message(_)));
    }

    #[test]
    fn zero_length_payload_is_a_message() {
        let mut a = Assembler::new(1024, 10240);
        a.start(0, 9, 0);
        a.topic(0, b"simcommsg");
        assert!(matches!(a.end(0), Assembled::Message(m) if m.payload.is_empty()));
    }
}

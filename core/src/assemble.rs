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
    max_topic: usize,
    max_payload: usize,
}

impl Assembler {
    /// An assembler accepting topics up to `max_topic` and payloads up to `max_payload` bytes.
    pub fn new(max_topic: usize, max_payload: usize) -> Self {
        Assembler {
            slots: [None, None],
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
    fn zero_length_payload_is_a_message() {
        let mut a = Assembler::new(1024, 10240);
        a.start(0, 9, 0);
        a.topic(0, b"simcommsg");
        assert!(matches!(a.end(0), Assembled::Message(m) if m.payload.is_empty()));
    }
}

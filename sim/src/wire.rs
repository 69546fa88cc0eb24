//! MQTT packet encoding for the packets whose strings may be arbitrary bytes
//! on a modem (topics with `checkUTF8` off) or that need MQTT 3.1
//! (`MQIsdp`, level 3): CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE.
//! Everything else (acks, PINGREQ, DISCONNECT, and all decoding) uses
//! rumqttc's `mqttbytes` codec.

use bytes::{BufMut, BytesMut};
use rumqttc::mqttbytes::v4::{Packet, PubAck, PubComp, PubRec, PubRel};

/// Largest packet the emulator accepts from the broker. Messages above the
/// modem's limits but below this are read and dropped; bigger ones end the
/// connection.
pub(crate) const MAX_INCOMING: usize = 1024 * 1024;

pub(crate) struct Will<'a> {
    pub topic: &'a [u8],
    pub message: &'a [u8],
    pub qos: u8,
}

pub(crate) struct ConnectFields<'a> {
    /// 3 = MQTT 3.1 (`MQIsdp`), 4 = MQTT 3.1.1 (`MQTT`).
    pub level: u8,
    pub client_id: &'a [u8],
    pub keepalive: u16,
    pub clean: bool,
    pub will: Option<Will<'a>>,
    pub username: Option<&'a [u8]>,
    pub password: Option<&'a [u8]>,
}

fn put_remaining_length(buf: &mut BytesMut, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if len == 0 {
            break;
        }
    }
}

fn put_str(buf: &mut BytesMut, s: &[u8]) {
    // Callers bound every string far below 65535 bytes.
    let len = s.len().min(u16::MAX as usize);
    buf.put_u16(len as u16);
    buf.put_slice(&s[..len]);
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::with_capacity(body.len() + 5);
    buf.put_u8(first);
    put_remaining_length(&mut buf, body.len());
    buf.put_slice(body);
    buf.to_vec()
}

pub(crate) fn connect(f: &ConnectFields<'_>) -> Vec<u8> {
    let mut body = BytesMut::new();
    if f.level == 3 {
        put_str(&mut body, b"MQIsdp");
        body.put_u8(3);
    } else {
        put_str(&mut body, b"MQTT");
        body.put_u8(4);
    }
    let mut flags = 0u8;
    if f.clean {
        flags |= 0x02;
    }
    if let Some(w) = &f.will {
        flags |= 0x04 | ((w.qos & 3) << 3);
    }
    if f.username.is_some() {
        flags |= 0x80;
        if f.password.is_some() {
            flags |= 0x40;
        }
    }
    body.put_u8(flags);
    body.put_u16(f.keepalive);
    put_str(&mut body, f.client_id);
    if let Some(w) = &f.will {
        put_str(&mut body, w.topic);
        put_str(&mut body, w.message);
    }
    if let Some(u) = f.username {
        put_str(&mut body, u);
        if let Some(p) = f.password {
            put_str(&mut body, p);
        }
    }
    frame(0x10, &body)
}

pub(crate) fn publish(
    topic: &[u8],
    payload: &[u8],
    qos: u8,
    retain: bool,
    dup: bool,
    pkid: u16,
) -> Vec<u8> {
    let mut first = 0x30 | ((qos & 3) << 1);
    if retain {
        first |= 0x01;
    }
    if dup {
        first |= 0x08;
    }
    let mut body = BytesMut::with_capacity(topic.len() + payload.len() + 4);
    put_str(&mut body, topic);
    if qos > 0 {
        body.put_u16(pkid);
    }
    body.put_slice(payload);
    frame(first, &body)
}

pub(crate) fn subscribe(pkid: u16, topics: &[(Vec<u8>, u8)]) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_u16(pkid);
    for (t, q) in topics {
        put_str(&mut body, t);
        body.put_u8(*q & 3);
    }
    frame(0x82, &body)
}

pub(crate) fn unsubscribe(pkid: u16, topics: &[Vec<u8>]) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_u16(pkid);
    for t in topics {
        put_str(&mut body, t);
    }
    frame(0xA2, &body)
}

fn encode(p: Packet) -> Vec<u8> {
    let mut buf = BytesMut::new();
    match p.write(&mut buf, MAX_INCOMING) {
        Ok(_) => buf.to_vec(),
        Err(e) => {
            log::error!("cannot encode {p:?}: {e}");
            Vec::new()
        }
    }
}

pub(crate) fn puback(pkid: u16) -> Vec<u8> {
    encode(Packet::PubAck(PubAck::new(pkid)))
}

pub(crate) fn pubrec(pkid: u16) -> Vec<u8> {
    encode(Packet::PubRec(PubRec::new(pkid)))
}

pub(crate) fn pubrel(pkid: u16) -> Vec<u8> {
    encode(Packet::PubRel(PubRel::new(pkid)))
}

pub(crate) fn pubcomp(pkid: u16) -> Vec<u8> {
    encode(Packet::PubComp(PubComp::new(pkid)))
}

pub(crate) fn pingreq() -> Vec<u8> {
    encode(Packet::PingReq)
}

pub(crate) fn disconnect() -> Vec<u8> {
    encode(Packet::Disconnect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_roundtrips_through_rumqttc() {
        let bytes = publish(b"a/b", b"\x00\xff\r\n", 1, true, false, 7);
        let mut buf = BytesMut::from(&bytes[..]);
        match Packet::read(&mut buf, MAX_INCOMING).unwrap() {
            Packet::Publish(p) => {
                assert_eq!(p.topic, "a/b");
                assert_eq!(&p.payload[..], b"\x00\xff\r\n");
                assert_eq!(p.pkid, 7);
                assert!(p.retain);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn connect_roundtrips_through_rumqttc() {
        let bytes = connect(&ConnectFields {
            level: 4,
            client_id: b"client test0",
            keepalive: 60,
            clean: true,
            will: Some(Will {
                topic: b"0123456789",
                message: b"qwerty",
                qos: 1,
            }),
            username: Some(b"u"),
            password: Some(b"p"),
        });
        let mut buf = BytesMut::from(&bytes[..]);
        match Packet::read(&mut buf, MAX_INCOMING).unwrap() {
            Packet::Connect(c) => {
                assert_eq!(c.client_id, "client test0");
                assert_eq!(c.keep_alive, 60);
                let w = c.last_will.unwrap();
                assert_eq!(w.topic, "0123456789");
                assert_eq!(&w.message[..], b"qwerty");
                assert_eq!(c.login.unwrap().username, "u");
            }
            other => panic!("{other:?}"),
        }
    }
}

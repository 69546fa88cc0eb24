//! A minimal MQTT 3.1.1 publisher (QoS 1) on a plain TCP socket, to feed the broker faster than
//! any serial line can carry: the source of the receive flood. PUBACKs are counted by a reader
//! thread.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct RawPublisher {
    stream: TcpStream,
    next_id: u16,
    acks: Arc<AtomicU64>,
    reader: Option<JoinHandle<()>>,
    buf: Vec<u8>,
}

fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

impl RawPublisher {
    /// Connects to `127.0.0.1:port` as `client_id` (clean session) and waits for the CONNACK.
    pub fn connect(port: u16, client_id: &str) -> io::Result<RawPublisher> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        let mut body = Vec::new();
        string(b"MQTT", &mut body);
        body.push(4); // 3.1.1
        body.push(0x02); // clean session
        body.extend_from_slice(&60u16.to_be_bytes());
        string(client_id.as_bytes(), &mut body);
        let mut pkt = vec![0x10];
        remaining_length(body.len(), &mut pkt);
        pkt.extend_from_slice(&body);
        stream.write_all(&pkt)?;
        let mut connack = [0u8; 4];
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.read_exact(&mut connack)?;
        if connack[0] != 0x20 || connack[3] != 0 {
            return Err(io::Error::other(format!("CONNACK {connack:?}")));
        }
        stream.set_read_timeout(None)?;
        let acks = Arc::new(AtomicU64::new(0));
        let mut r = stream.try_clone()?;
        let a = acks.clone();
        let reader = std::thread::Builder::new()
            .name("flood-acks".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                let mut pending: Vec<u8> = Vec::new();
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    // PUBACK = 0x40 0x02 id id; nothing else is expected.
                    let whole = pending.len() / 4 * 4;
                    let count = pending[..whole].chunks(4).filter(|c| c[0] == 0x40).count();
                    a.fetch_add(count as u64, Ordering::Relaxed);
                    pending.drain(..whole);
                }
            })?;
        Ok(RawPublisher {
            stream,
            next_id: 1,
            acks,
            reader: Some(reader),
            buf: Vec::new(),
        })
    }

    /// Queues one QoS 1 PUBLISH (written at the next [`RawPublisher::flush`]).
    pub fn publish(&mut self, topic: &str, payload: &[u8]) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let len = 2 + topic.len() + 2 + payload.len();
        self.buf.push(0x32);
        remaining_length(len, &mut self.buf);
        string(topic.as_bytes(), &mut self.buf);
        self.buf.extend_from_slice(&id.to_be_bytes());
        self.buf.extend_from_slice(payload);
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Waits until `n` PUBACKs arrived in all.
    pub fn wait_acks(&self, n: u64, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while self.acks.load(Ordering::Relaxed) < n {
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }
}

impl Drop for RawPublisher {
    fn drop(&mut self) {
        let _ = self.stream.write_all(&[0xe0, 0x00]);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

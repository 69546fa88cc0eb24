//! The outbox: publishes waiting to be sent, in order, bounded, optionally kept in a file so that
//! a crash or restart loses nothing. Every entry has a [`Delivery`] ticket the caller can wait on.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};

/// What a full outbox does with a new publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Wait until there is room (up to the publish call's own timeout).
    #[default]
    Block,
    /// Refuse the new publish with an error.
    Error,
    /// Drop the oldest waiting publish (its ticket says so, and an event reports it).
    DropOldest,
}

/// Outbox settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Most publishes waiting at once.
    pub capacity: usize,
    /// What happens when it is full.
    pub when_full: WhenFull,
    /// Keep the outbox in this file (created if missing; replayed at start).
    pub persist: Option<PathBuf>,
    /// `fsync` every change of the file (survives power loss, costs a disk flush per publish).
    pub sync: bool,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            capacity: 1000,
            when_full: WhenFull::Block,
            persist: None,
            sync: false,
        }
    }
}

/// Where a publish stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting in the outbox (not connected, or behind others).
    Queued,
    /// The modem reported success: for QoS 1/2 the broker acknowledged it.
    Delivered,
    /// It will never be sent; says why (rejected arguments, or given up after repeated modem
    /// failures).
    Failed(String),
    /// Dropped to make room (outbox full, drop-oldest policy).
    Dropped,
}

#[derive(Debug)]
struct Ticket {
    status: Mutex<DeliveryStatus>,
    cv: Condvar,
    attempts: AtomicU32,
}

/// A handle on one publish: check it or wait for it.
#[derive(Debug, Clone)]
pub struct Delivery {
    id: u64,
    ticket: Arc<Ticket>,
}

impl Delivery {
    fn new(id: u64) -> Delivery {
        Delivery {
            id,
            ticket: Arc::new(Ticket {
                status: Mutex::new(DeliveryStatus::Queued),
                cv: Condvar::new(),
                attempts: AtomicU32::new(0),
            }),
        }
    }

    /// The outbox's id of this publish (increasing; kept across restarts when persisted).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// How many times this publish was handed to the modem so far. More than one means an
    /// earlier attempt was interrupted (connection, modem or port lost before the modem
    /// reported the outcome) and the publish was sent again: the broker may then have received
    /// it twice, at QoS 2 too, since the retry is a new MQTT message. A publish delivered at its
    /// first attempt is never sent again.
    pub fn attempts(&self) -> u32 {
        self.ticket.attempts.load(Ordering::SeqCst)
    }

    /// Where it stands now.
    pub fn status(&self) -> DeliveryStatus {
        self.ticket.status.lock().clone()
    }

    /// Wait until it is no longer queued, up to `timeout`; returns the status then.
    pub fn wait(&self, timeout: Duration) -> DeliveryStatus {
        let deadline = Instant::now() + timeout;
        let mut s = self.ticket.status.lock();
        while *s == DeliveryStatus::Queued {
            if self.ticket.cv.wait_until(&mut s, deadline).timed_out() {
                break;
            }
        }
        s.clone()
    }

    /// Wait until delivered; an error if it failed, was dropped, or `timeout` passed.
    pub fn wait_delivered(&self, timeout: Duration) -> Result<()> {
        match self.wait(timeout) {
            DeliveryStatus::Delivered => Ok(()),
            DeliveryStatus::Queued => Err(Error::Timeout {
                command: "outbox delivery",
                timeout,
            }),
            DeliveryStatus::Failed(why) => Err(Error::invalid("publish", why)),
            DeliveryStatus::Dropped => Err(Error::invalid(
                "publish",
                "dropped from a full outbox (drop-oldest policy)",
            )),
        }
    }

    fn set(&self, s: DeliveryStatus) {
        *self.ticket.status.lock() = s;
        self.ticket.cv.notify_all();
    }
}

impl Entry {
    /// Count one more attempt at sending this publish (see [`Delivery::attempts`]).
    pub fn note_attempt(&self) {
        self.delivery.ticket.attempts.fetch_add(1, Ordering::SeqCst);
    }
}

/// One publish in the outbox.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: u64,
    pub topic: Vec<u8>,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    /// How many times sending it failed for a reason other than the connection.
    pub failures: u32,
    delivery: Delivery,
}

struct State {
    queue: VecDeque<Entry>,
    next_id: u64,
    file: Option<Journal>,
    dropped: u64,
    closed: bool,
}

/// A bounded FIFO of publishes with tickets.
pub struct Outbox {
    cfg: OutboxConfig,
    state: Mutex<State>,
    /// Signalled when an entry is added (sender side) or removed (blocked producers).
    changed: Condvar,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("len", &self.len())
            .field("capacity", &self.cfg.capacity)
            .finish()
    }
}

/// What [`Outbox::push`] did besides queueing.
#[derive(Debug)]
pub struct Pushed {
    pub delivery: Delivery,
    /// The id of an entry dropped to make room, if any.
    pub dropped: Option<u64>,
}

impl Outbox {
    /// An outbox; with `persist`, the file's waiting entries are loaded (and their tickets can
    /// be had with [`Outbox::pending`]).
    pub fn open(cfg: OutboxConfig) -> Result<Outbox> {
        let mut queue = VecDeque::new();
        let mut next_id = 1;
        let file = match &cfg.persist {
            Some(path) => {
                let (journal, entries) = Journal::open(path, cfg.sync)?;
                for e in entries {
                    next_id = next_id.max(e.id + 1);
                    queue.push_back(Entry {
                        delivery: Delivery::new(e.id),
                        id: e.id,
                        topic: e.topic,
                        payload: e.payload,
                        qos: e.qos,
                        retain: e.retain,
                        failures: 0,
                    });
                }
                Some(journal)
            }
            None => None,
        };
        Ok(Outbox {
            cfg: OutboxConfig {
                capacity: cfg.capacity.max(1),
                ..cfg
            },
            state: Mutex::new(State {
                queue,
                next_id,
                file,
                dropped: 0,
                closed: false,
            }),
            changed: Condvar::new(),
        })
    }

    /// Add a publish. With [`WhenFull::Block`] waits up to `block_for` for room.
    pub fn push(
        &self,
        topic: &[u8],
        payload: &[u8],
        qos: u8,
        retain: bool,
        block_for: Duration,
    ) -> Result<Pushed> {
        let deadline = Instant::now() + block_for;
        let mut st = self.state.lock();
        let mut dropped = None;
        while st.queue.len() >= self.cfg.capacity {
            if st.closed {
                return Err(Error::Closed("the outbox is closed".into()));
            }
            match self.cfg.when_full {
                WhenFull::Error => {
                    return Err(Error::invalid(
                        "publish",
                        format!(
                            "the outbox is full ({} waiting); wait for deliveries or raise its capacity",
                            st.queue.len()
                        ),
                    ))
                }
                WhenFull::DropOldest => {
                    if let Some(old) = st.queue.pop_front() {
                        if let Some(j) = st.file.as_mut() {
                            j.done(old.id)?;
                        }
                        old.delivery.set(DeliveryStatus::Dropped);
                        st.dropped += 1;
                        dropped = Some(old.id);
                    }
                }
                WhenFull::Block => {
                    if self.changed.wait_until(&mut st, deadline).timed_out()
                        && st.queue.len() >= self.cfg.capacity
                    {
                        return Err(Error::Timeout {
                            command: "outbox (full)",
                            timeout: block_for,
                        });
                    }
                }
            }
        }
        let id = st.next_id;
        st.next_id += 1;
        if let Some(j) = st.file.as_mut() {
            j.add(id, topic, payload, qos, retain)?;
        }
        let delivery = Delivery::new(id);
        st.queue.push_back(Entry {
            id,
            topic: topic.to_vec(),
            payload: payload.to_vec(),
            qos,
            retain,
            failures: 0,
            delivery: delivery.clone(),
        });
        drop(st);
        self.changed.notify_all();
        Ok(Pushed { delivery, dropped })
    }

    /// The oldest waiting entry, without removing it; waits up to `timeout` for one.
    pub fn front(&self, timeout: Duration) -> Option<Entry> {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock();
        loop {
            if let Some(e) = st.queue.front() {
                return Some(e.clone());
            }
            if st.closed || self.changed.wait_until(&mut st, deadline).timed_out() {
                return st.queue.front().cloned();
            }
        }
    }

    /// Mark entry `id` (the front) as done with `status`, removing it.
    pub fn complete(&self, id: u64, status: DeliveryStatus) -> Result<()> {
        let mut st = self.state.lock();
        if let Some(pos) = st.queue.iter().position(|e| e.id == id) {
            let e = st.queue.remove(pos).expect("position is in range");
            let now_empty = st.queue.is_empty();
            if let Some(j) = st.file.as_mut() {
                if now_empty {
                    // Nothing left: start the file afresh instead of recording the last done.
                    j.truncate()?;
                } else {
                    j.done(id)?;
                }
            }
            e.delivery.set(status);
        }
        drop(st);
        self.changed.notify_all();
        Ok(())
    }

    /// Count a non-connection failure of entry `id`; returns the new count.
    pub fn note_failure(&self, id: u64) -> u32 {
        let mut st = self.state.lock();
        match st.queue.iter_mut().find(|e| e.id == id) {
            Some(e) => {
                e.failures += 1;
                e.failures
            }
            None => 0,
        }
    }

    /// Tickets of every waiting entry (e.g. those replayed from the file).
    pub fn pending(&self) -> Vec<Delivery> {
        self.state
            .lock()
            .queue
            .iter()
            .map(|e| e.delivery.clone())
            .collect()
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries dropped by the drop-oldest policy.
    pub fn dropped(&self) -> u64 {
        self.state.lock().dropped
    }

    /// Wake everyone waiting; new pushes fail, waiting entries stay (and stay in the file).
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.changed.notify_all();
    }

    /// Wait until empty (everything delivered, failed or dropped), up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock();
        while !st.queue.is_empty() {
            if self.changed.wait_until(&mut st, deadline).timed_out() {
                return st.queue.is_empty();
            }
        }
        true
    }
}

// ---- the file ------------------------------------------------------------------------------

/// An append-only journal: `A` records add a publish, `D` records mark one done. Each record
/// ends with a checksum; a torn or corrupt tail (a crash mid-write) is cut off at open.
struct Journal {
    file: File,
    path: PathBuf,
    sync: bool,
    /// Bytes of records written since the last truncation, to know when to compact.
    written: u64,
}

struct Loaded {
    id: u64,
    topic: Vec<u8>,
    payload: Vec<u8>,
    qos: u8,
    retain: bool,
}

const MAGIC: &[u8; 8] = b"CMQTTOB1";
const MAX_FIELD: u32 = 16 * 1024 * 1024;

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Journal {
    fn open(path: &Path, sync: bool) -> Result<(Journal, Vec<Loaded>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io_at(path, e))?;
        let mut data = Vec::new();
        BufReader::new(&file)
            .read_to_end(&mut data)
            .map_err(|e| io_at(path, e))?;
        let mut entries: Vec<Loaded> = Vec::new();
        let mut good = 0usize;
        if data.len() >= MAGIC.len() && &data[..MAGIC.len()] == MAGIC {
            let mut pos = MAGIC.len();
            good = pos;
            while let Some((rec, used)) = parse_record(&data[pos..]) {
                match rec {
                    Record::Add(l) => entries.push(l),
                    Record::Done(id) => entries.retain(|e| e.id != id),
                }
                pos += used;
                good = pos;
            }
            if good < data.len() {
                log::warn!(
                    "cmqtt: outbox file {}: cut {} bytes of torn or corrupt tail",
                    path.display(),
                    data.len() - good
                );
            }
        } else if !data.is_empty() {
            return Err(Error::invalid(
                "outbox file",
                format!(
                    "{} is not a cmqtt outbox file; move it away or choose another path",
                    path.display()
                ),
            ));
        }
        if good == 0 {
            file.set_len(0).map_err(|e| io_at(path, e))?;
            file.seek(SeekFrom::Start(0)).map_err(|e| io_at(path, e))?;
            file.write_all(MAGIC).map_err(|e| io_at(path, e))?;
            good = MAGIC.len();
        } else {
            file.set_len(good as u64).map_err(|e| io_at(path, e))?;
        }
        file.seek(SeekFrom::Start(good as u64))
            .map_err(|e| io_at(path, e))?;
        let mut j = Journal {
            file,
            path: path.to_path_buf(),
            sync,
            written: good as u64,
        };
        // Rewrite without the done records when there is much dead weight.
        if j.written > 1 << 20 {
            j.rewrite(&entries)?;
        }
        Ok((j, entries))
    }

    fn append(&mut self, rec: &[u8]) -> Result<()> {
        let mut buf = Vec::with_capacity(rec.len() + 8);
        buf.extend_from_slice(rec);
        buf.extend_from_slice(&fnv(rec).to_le_bytes());
        self.file
            .write_all(&buf)
            .map_err(|e| io_at(&self.path, e))?;
        if self.sync {
            self.file.sync_data().map_err(|e| io_at(&self.path, e))?;
        }
        self.written += buf.len() as u64;
        Ok(())
    }

    fn add(&mut self, id: u64, topic: &[u8], payload: &[u8], qos: u8, retain: bool) -> Result<()> {
        let mut r = Vec::with_capacity(topic.len() + payload.len() + 24);
        r.push(b'A');
        r.extend_from_slice(&id.to_le_bytes());
        r.push(qos);
        r.push(retain as u8);
        r.extend_from_slice(&(topic.len() as u32).to_le_bytes());
        r.extend_from_slice(topic);
        r.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        r.extend_from_slice(payload);
        self.append(&r)
    }

    fn done(&mut self, id: u64) -> Result<()> {
        let mut r = Vec::with_capacity(9);
        r.push(b'D');
        r.extend_from_slice(&id.to_le_bytes());
        self.append(&r)
    }

    fn truncate(&mut self) -> Result<()> {
        self.file
            .set_len(MAGIC.len() as u64)
            .map_err(|e| io_at(&self.path, e))?;
        self.file
            .seek(SeekFrom::Start(MAGIC.len() as u64))
            .map_err(|e| io_at(&self.path, e))?;
        if self.sync {
            self.file.sync_data().map_err(|e| io_at(&self.path, e))?;
        }
        self.written = MAGIC.len() as u64;
        Ok(())
    }

    fn rewrite(&mut self, live: &[Loaded]) -> Result<()> {
        self.truncate()?;
        for e in live {
            self.add(e.id, &e.topic, &e.payload, e.qos, e.retain)?;
        }
        Ok(())
    }
}

enum Record {
    Add(Loaded),
    Done(u64),
}

fn parse_record(d: &[u8]) -> Option<(Record, usize)> {
    let take = |d: &[u8], at: usize, n: usize| d.get(at..at + n).map(|s| s.to_vec());
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(d.get(at..at + 8)?.try_into().ok()?))
    };
    let (rec, len) = match *d.first()? {
        b'A' => {
            let id = u64_at(1)?;
            let qos = *d.get(9)?;
            let retain = *d.get(10)? != 0;
            let tl = u32_at(11)?;
            if tl > MAX_FIELD {
                return None;
            }
            let topic = take(d, 15, tl as usize)?;
            let pl_at = 15 + tl as usize;
            let pl = u32_at(pl_at)?;
            if pl > MAX_FIELD {
                return None;
            }
            let payload = take(d, pl_at + 4, pl as usize)?;
            (
                Record::Add(Loaded {
                    id,
                    topic,
                    payload,
                    qos,
                    retain,
                }),
                pl_at + 4 + pl as usize,
            )
        }
        b'D' => (Record::Done(u64_at(1)?), 9),
        _ => return None,
    };
    let sum = u64_at(len)?;
    if sum != fnv(&d[..len]) {
        return None;
    }
    Some((rec, len + 8))
}

fn io_at(path: &Path, e: io::Error) -> Error {
    Error::Io(io::Error::new(
        e.kind(),
        format!("outbox file {}: {e}", path.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "cmqtt-outbox-{}-{}-{name}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn fifo_tickets_and_policies() {
        let o = Outbox::open(OutboxConfig {
            capacity: 2,
            when_full: WhenFull::DropOldest,
            ..Default::default()
        })
        .unwrap();
        let a = o.push(b"t", b"1", 1, false, Duration::ZERO).unwrap();
        let _b = o.push(b"t", b"2", 1, false, Duration::ZERO).unwrap();
        let c = o.push(b"t", b"3", 1, false, Duration::ZERO).unwrap();
        assert_eq!(c.dropped, Some(a.delivery.id()));
        assert_eq!(a.delivery.status(), DeliveryStatus::Dropped);
        let f = o.front(Duration::ZERO).unwrap();
        assert_eq!(f.payload, b"2");
        o.complete(f.id, DeliveryStatus::Delivered).unwrap();
        assert_eq!(o.len(), 1);
        let o = Outbox::open(OutboxConfig {
            capacity: 1,
            when_full: WhenFull::Error,
            ..Default::default()
        })
        .unwrap();
        o.push(b"t", b"1", 1, false, Duration::ZERO).unwrap();
        assert!(o.push(b"t", b"2", 1, false, Duration::ZERO).is_err());
        let o = Outbox::open(OutboxConfig {
            capacity: 1,
            ..Default::default()
        })
        .unwrap();
        o.push(b"t", b"1", 1, false, Duration::ZERO).unwrap();
        assert!(matches!(
            o.push(b"t", b"2", 1, false, Duration::from_millis(20)),
            Err(Error::Timeout { .. })
        ));
    }

    #[test]
    fn persisted_entries_survive_a_restart_and_a_torn_tail() {
        let path = tmp("persist");
        let cfg = OutboxConfig {
            persist: Some(path.clone()),
            ..Default::default()
        };
        {
            let o = Outbox::open(cfg.clone()).unwrap();
            for i in 0..5u8 {
                o.push(b"t/\xff", &[i, b'\r', b'\n', 0], 2, i == 3, Duration::ZERO)
                    .unwrap();
            }
            let f = o.front(Duration::ZERO).unwrap();
            o.complete(f.id, DeliveryStatus::Delivered).unwrap();
        }
        // A crash mid-append leaves half a record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"A\x09\x00\x00").unwrap();
        drop(f);
        let o = Outbox::open(cfg.clone()).unwrap();
        assert_eq!(o.len(), 4);
        let f = o.front(Duration::ZERO).unwrap();
        assert_eq!(f.payload, [1, b'\r', b'\n', 0]);
        assert_eq!(f.topic, b"t/\xff");
        assert_eq!(f.qos, 2);
        let n = o.push(b"x", b"y", 1, false, Duration::ZERO).unwrap();
        assert!(n.delivery.id() > 5, "ids continue after the file's");
        while let Some(e) = o.front(Duration::ZERO) {
            o.complete(e.id, DeliveryStatus::Delivered).unwrap();
        }
        drop(o);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), MAGIC.len() as u64);
        let o = Outbox::open(cfg).unwrap();
        assert!(o.is_empty());
        std::fs::write(&path, b"not an outbox").unwrap();
        assert!(Outbox::open(OutboxConfig {
            persist: Some(path.clone()),
            ..Default::default()
        })
        .is_err());
        let _ = std::fs::remove_file(&path);
    }
}

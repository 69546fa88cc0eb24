//! The outbox: publishes waiting to be sent, in order, bounded, optionally kept in a file so that
//! a crash or restart loses nothing. Every entry has a [`Delivery`] ticket the caller can wait on.
//!
//! # The journal file
//!
//! With [`OutboxConfig::persist`] every change is appended to a journal (format below), which is
//! guarded against what a shared, damaged or odd file would otherwise do:
//!
//! * **One owner.** The file is locked (an exclusive advisory lock, `flock` on Unix) for as long
//!   as the outbox lives; a second [`Outbox::open`] on it, from this process or another, fails
//!   with [`Error::InvalidArgument`] naming the holder's pid where the system tells it
//!   (`/proc/locks` on Linux). Two owners would both send every entry and each one's rewrite
//!   would erase the other's.
//! * **Damage is skipped, not a cut-off.** Every record carries its length and two CRC-32C
//!   checksums (one over its header, so a damaged length is never believed, and one over the
//!   whole record). At open a damaged record is skipped and reading resumes at the next record
//!   that verifies; the file as found is kept as `<path>.damaged-<unix time>` and
//!   [`Outbox::open_report`] says what was skipped (one warning is logged too). A record cut
//!   short at the very end (a crash in the middle of an append) is a torn tail: dropped and
//!   reported, but not kept aside, since it is what any crash mid-write leaves.
//! * **Atomic compaction.** The file is rewritten (only the waiting entries) into
//!   `<path>.compacting`, fsynced, renamed over the journal and the directory fsynced, so a crash
//!   at any moment leaves either the old or the new journal, both whole. It happens at open when
//!   anything was skipped or dead, and while running as soon as the dead bytes (completed
//!   entries) exceed twice the live ones and 256 KiB: the file stays below about three times the
//!   waiting data plus 256 KiB. When the outbox empties the file is cut back to its header in
//!   place (one `ftruncate`: either way nothing is waiting).
//! * **The lock survives compaction** because the new file is locked before it is renamed over
//!   the journal; an opener that locked the old file just before (its owner has moved on) sees
//!   that the path no longer names the file it locked, and tries again on the new one.
//! * **Regular files only.** A FIFO, device (`/dev/zero`), directory or socket is refused with
//!   an error naming the path, before anything is read; reads are bounded by the file's size and
//!   a record longer than the largest entry is damage, never an allocation.
//!
//! Format (version 2; all integers little-endian): the header `CMQTTOB2`, then records
//!
//! ```text
//! FE 4F 42 FF | kind u8 | body length u32 | CRC-32C of the 9 bytes before, u32
//!             | body | CRC-32C of everything before in the record, u32
//! kind 'A' (add):  id u64, qos u8, retain u8, topic length u32, topic, payload (the rest)
//! kind 'D' (done): id u64
//! ```
//!
//! Files of version 1 (`CMQTTOB1`, records without marker or length) are still read, and
//! rewritten in version 2 at open.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
        let deadline = crate::time::deadline_after(timeout);
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
            DeliveryStatus::Failed(why) => Err(Error::DeliveryFailed {
                id: self.id,
                status: "failed",
                reason: why,
            }),
            DeliveryStatus::Dropped => Err(Error::DeliveryFailed {
                id: self.id,
                status: "dropped",
                reason: "dropped from a full outbox (drop-oldest policy)".into(),
            }),
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

impl State {
    /// Rewrite the file when mostly dead. A failure is logged, not returned: the change that
    /// preceded it is already safely in the journal, which stays as it was.
    fn compact_if_due(&mut self) {
        let State { queue, file, .. } = self;
        if let Some(j) = file.as_mut() {
            if j.compaction_due() {
                if let Err(e) = j.compact(queue.iter().map(|e| EntryRef {
                    id: e.id,
                    topic: &e.topic,
                    payload: &e.payload,
                    qos: e.qos,
                    retain: e.retain,
                })) {
                    j.compaction_failed(&e);
                }
            }
        }
    }
}

/// What opening a persisted outbox found in its file (see [`Outbox::open_report`]). A clean
/// file gives a report with nothing skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenReport {
    /// The file, as configured.
    pub path: PathBuf,
    /// Waiting publishes loaded from it.
    pub loaded: usize,
    /// Damaged records skipped, as far as can be told (a record whose length verified counts
    /// as one, whatever its payload holds; in bytes whose lengths did not verify, each record
    /// marker counts as one). A skipped add record is a publish lost; a skipped done record
    /// brings its publish back (sent again: at least once).
    pub records_skipped: usize,
    /// Byte ranges of the file (as found) skipped as damaged, in order.
    pub skipped: Vec<Range<u64>>,
    /// The file did not start with the journal header; the records after it were still read.
    pub header_damaged: bool,
    /// A record cut short at the end of the file (a crash or power loss in the middle of an
    /// append), dropped: the publish or completion it was recording was still in flight. Not
    /// counted as damage.
    pub torn_tail: Option<Range<u64>>,
    /// Where the file as found was kept (`<path>.damaged-<unix time>`) before being rewritten
    /// without the damage; `None` when nothing was damaged, or when the copy could not be made
    /// (logged).
    pub damaged_copy: Option<PathBuf>,
    /// The file was in the previous format (`CMQTTOB1`) and was rewritten in the current one.
    pub upgraded: bool,
}

impl OpenReport {
    /// Whether anything was skipped as damaged (the header or records): publishes may have been
    /// lost, or completed ones may be sent again.
    pub fn is_damaged(&self) -> bool {
        self.header_damaged || !self.skipped.is_empty()
    }
}

impl std::fmt::Display for OpenReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "outbox file {}: {} waiting publishes loaded",
            self.path.display(),
            self.loaded
        )?;
        if self.header_damaged {
            f.write_str("; its header was damaged")?;
        }
        if !self.skipped.is_empty() {
            write!(
                f,
                "; {} damaged records skipped (publishes lost, or completed ones to be sent \
                 again), bytes ",
                self.records_skipped
            )?;
            for (i, r) in self.skipped.iter().take(8).enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                write!(f, "{sep}{}..{}", r.start, r.end)?;
            }
            if self.skipped.len() > 8 {
                write!(f, " and {} more ranges", self.skipped.len() - 8)?;
            }
        }
        if let Some(t) = &self.torn_tail {
            write!(
                f,
                "; a record cut short at the end (bytes {}..{}, a crash mid-write) dropped",
                t.start, t.end
            )?;
        }
        if let Some(p) = &self.damaged_copy {
            write!(f, "; the damaged file is kept as {}", p.display())?;
        } else if self.is_damaged() {
            f.write_str("; no copy of the damaged file could be kept")?;
        }
        if self.upgraded {
            f.write_str("; converted from the previous file format")?;
        }
        Ok(())
    }
}

/// A bounded FIFO of publishes with tickets.
pub struct Outbox {
    cfg: OutboxConfig,
    state: Mutex<State>,
    /// Signalled when an entry is added (sender side) or removed (blocked producers).
    changed: Condvar,
    /// What opening the file found (`None` without a file).
    report: Option<OpenReport>,
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
        let (file, report) = match &cfg.persist {
            Some(path) => {
                let (journal, entries, report) = Journal::open(path, cfg.sync)?;
                for e in entries.into_values() {
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
                (Some(journal), Some(report))
            }
            None => (None, None),
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
            report,
        })
    }

    /// What opening the file found: entries loaded, damaged records skipped (byte ranges), a
    /// torn tail, where the damaged file was kept. `None` when the outbox has no file. Check
    /// [`OpenReport::is_damaged`] to tell the user that publishes may have been lost.
    pub fn open_report(&self) -> Option<&OpenReport> {
        self.report.as_ref()
    }

    /// Add a publish. With [`WhenFull::Block`] waits up to `block_for` for room. A topic over
    /// 65535 bytes (MQTT's limit) or a payload over 16 MiB is refused: the file's records are
    /// bounded so that a damaged length can be told from a real one.
    pub fn push(
        &self,
        topic: &[u8],
        payload: &[u8],
        qos: u8,
        retain: bool,
        block_for: Duration,
    ) -> Result<Pushed> {
        if topic.len() > MAX_TOPIC {
            return Err(Error::invalid(
                "topic",
                format!(
                    "must be at most {MAX_TOPIC} bytes in the outbox, got {}",
                    topic.len()
                ),
            ));
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(Error::invalid(
                "payload",
                format!(
                    "must be at most {MAX_PAYLOAD} bytes in the outbox, got {}",
                    payload.len()
                ),
            ));
        }
        let deadline = crate::time::deadline_after(block_for);
        let mut st = self.state.lock();
        let mut dropped = None;
        while st.queue.len() >= self.cfg.capacity {
            if st.closed {
                return Err(Error::Closed("the outbox is closed".into()));
            }
            match self.cfg.when_full {
                WhenFull::Error => {
                    return Err(Error::OutboxFull {
                        waiting: st.queue.len(),
                    })
                }
                WhenFull::DropOldest => {
                    if let Some(old) = st.queue.pop_front() {
                        if let Some(j) = st.file.as_mut() {
                            j.done(old.id, add_len(&old.topic, &old.payload))?;
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
                        // Still full after waiting as long as allowed (not at all in a callback).
                        return Err(Error::OutboxFull {
                            waiting: st.queue.len(),
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
        st.compact_if_due();
        drop(st);
        self.changed.notify_all();
        Ok(Pushed { delivery, dropped })
    }

    /// The oldest waiting entry, without removing it; waits up to `timeout` for one.
    pub fn front(&self, timeout: Duration) -> Option<Entry> {
        let deadline = crate::time::deadline_after(timeout);
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
                    j.clear()?;
                } else {
                    j.done(id, add_len(&e.topic, &e.payload))?;
                }
            }
            st.compact_if_due();
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
        let deadline = crate::time::deadline_after(timeout);
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

/// The journal (format and guarantees in the module documentation).
struct Journal {
    file: File,
    /// The path as configured, for messages.
    path: PathBuf,
    /// The file's real path (symlinks resolved): compaction renames onto it, since renaming
    /// onto a symlink would replace the link, not the journal it points to.
    real: PathBuf,
    sync: bool,
    /// Length of the file, i.e. where the next record goes.
    len: u64,
    /// Bytes of the add records of waiting entries; the rest after the header is dead.
    live: u64,
    /// No compaction is tried before the file is this long (backs off after a failure, so that
    /// a full disk costs one warning per 256 KiB appended, not one per publish).
    retry_at: u64,
}

/// An entry read from the file.
struct Loaded {
    id: u64,
    topic: Vec<u8>,
    payload: Vec<u8>,
    qos: u8,
    retain: bool,
}

/// An entry to write.
struct EntryRef<'a> {
    id: u64,
    topic: &'a [u8],
    payload: &'a [u8],
    qos: u8,
    retain: bool,
}

const MAGIC: &[u8; 8] = b"CMQTTOB2";
const MAGIC_V1: &[u8; 8] = b"CMQTTOB1";
/// Starts every record: bytes that never occur in UTF-8 text, so that resynchronising after
/// damage rarely stops at a false start (and a false start must still pass two checksums).
const REC_MAGIC: [u8; 4] = [0xFE, b'O', b'B', 0xFF];
/// Marker, kind, body length, header checksum.
const REC_HEAD: usize = 13;
/// The record's checksum.
const REC_TAIL: usize = 4;
/// An add body before its topic: id, qos, retain, topic length.
const ADD_FIXED: usize = 14;
const DONE_BODY: usize = 8;
/// MQTT's limit on a topic.
const MAX_TOPIC: usize = 65535;
/// Far beyond any modem's payload limit (10 KiB to 1 MiB), small enough to always allocate.
const MAX_PAYLOAD: usize = 16 << 20;
const MAX_ADD_BODY: usize = ADD_FIXED + MAX_TOPIC + MAX_PAYLOAD;
/// Compact when the dead bytes exceed both this and `COMPACT_FACTOR` times the live bytes: the
/// file stays below `(1 + COMPACT_FACTOR) * live + COMPACT_MIN_DEAD` (plus one record), and
/// each compaction (which writes the live bytes) is paid for by at least twice as many bytes
/// appended since.
const COMPACT_MIN_DEAD: u64 = 256 << 10;
const COMPACT_FACTOR: u64 = 2;
/// Version 1's bound on a topic or payload.
const MAX_FIELD_V1: u32 = 16 * 1024 * 1024;
const COMPACTING: &str = ".compacting";

/// Bytes of the add record of an entry.
fn add_len(topic: &[u8], payload: &[u8]) -> u64 {
    (REC_HEAD + ADD_FIXED + topic.len() + payload.len() + REC_TAIL) as u64
}

/// CRC-32C (Castagnoli), bytewise from a table built at compile time.
fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0x82F6_3B78 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Append one record of `kind` with `body` to `out`.
fn encode(out: &mut Vec<u8>, kind: u8, body: &[&[u8]]) {
    let start = out.len();
    let len: usize = body.iter().map(|b| b.len()).sum();
    out.extend_from_slice(&REC_MAGIC);
    out.push(kind);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    let hcrc = crc32c(&out[start..]);
    out.extend_from_slice(&hcrc.to_le_bytes());
    for b in body {
        out.extend_from_slice(b);
    }
    let crc = crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

fn encode_add(out: &mut Vec<u8>, e: &EntryRef<'_>) {
    encode(
        out,
        b'A',
        &[
            &e.id.to_le_bytes(),
            &[e.qos, e.retain as u8],
            &(e.topic.len() as u32).to_le_bytes(),
            e.topic,
            e.payload,
        ],
    );
}

impl Journal {
    fn open(path: &Path, sync: bool) -> Result<(Journal, BTreeMap<u64, Loaded>, OpenReport)> {
        let (file, real) = open_locked(path)?;
        // Only the lock holder writes this file: one found now was left by a crash in the
        // middle of a compaction, before its rename, and the journal itself is still whole.
        let _ = fs::remove_file(sibling(&real, COMPACTING));
        let data = read_all(&file, path)?;
        let mut report = OpenReport {
            path: path.to_path_buf(),
            ..Default::default()
        };
        let mut j = Journal {
            file,
            path: path.to_path_buf(),
            real,
            sync,
            len: data.len() as u64,
            live: 0,
            retry_at: 0,
        };
        if data.is_empty() || (data.len() < MAGIC.len() && MAGIC.starts_with(&data)) {
            // A new file, or a crash while its header was first written: nothing in it.
            j.clear()?;
            if sync {
                sync_dir(&j.real).map_err(|e| io_at(path, e))?;
            }
            return Ok((j, BTreeMap::new(), report));
        }
        let mut entries = None;
        if data.starts_with(MAGIC_V1) {
            let (v1, good, records) = read_v1(&data);
            // Two flipped bytes could make a version 2 header read as version 1: when version 1
            // reads nothing, believe it only if version 2 does not read anything either.
            if records > 0 || scan(&data, 0).records == 0 {
                if good < data.len() {
                    // Version 1 cannot resynchronise: everything after the first bad record is
                    // lost, as it always was, but now reported and kept.
                    report.skipped.push(good as u64..data.len() as u64);
                    report.records_skipped += 1;
                }
                report.upgraded = true;
                entries = Some(v1);
            }
        }
        let entries = match entries {
            Some(e) => e,
            None => {
                let header_ok = data.starts_with(MAGIC);
                let scan = scan(&data, if header_ok { MAGIC.len() } else { 0 });
                if !header_ok && scan.records == 0 {
                    return Err(Error::invalid(
                        "outbox file",
                        format!(
                            "{} is not a cmqtt outbox file; move it away or choose another path",
                            path.display()
                        ),
                    ));
                }
                report.header_damaged = !header_ok;
                for run in scan.runs {
                    let range = run.range.start as u64..run.range.end as u64;
                    if run.torn {
                        report.torn_tail = Some(range);
                        continue;
                    }
                    report.records_skipped += run.records;
                    report.skipped.push(range);
                }
                scan.entries
            }
        };
        report.loaded = entries.len();
        j.live = entries
            .values()
            .map(|e| add_len(&e.topic, &e.payload))
            .sum();
        if report.is_damaged() {
            match keep_copy(&j.real, &data, &j.file) {
                Ok(p) => report.damaged_copy = Some(p),
                Err(e) => log::warn!(
                    "cmqtt: outbox file {}: could not keep a copy of the damaged file: {e}",
                    path.display()
                ),
            }
        }
        if report.is_damaged() || report.torn_tail.is_some() {
            log::warn!("cmqtt: {report}");
        } else if report.upgraded {
            log::info!("cmqtt: {report}");
        }
        drop(data);
        let must_rewrite = report.upgraded || report.is_damaged() || report.torn_tail.is_some();
        if must_rewrite || j.compaction_due() {
            let res = j.compact(entries.values().map(|e| EntryRef {
                id: e.id,
                topic: &e.topic,
                payload: &e.payload,
                qos: e.qos,
                retain: e.retain,
            }));
            match res {
                Ok(()) => {}
                // Appending after a torn record (whose verified length would swallow what
                // follows), after version 1 records or a damaged header is not safe: fail
                // rather than write on.
                Err(e) if must_rewrite => return Err(e),
                Err(e) => j.compaction_failed(&e),
            }
        }
        j.file
            .seek(SeekFrom::Start(j.len))
            .map_err(|e| io_at(path, e))?;
        Ok((j, entries, report))
    }

    fn append(&mut self, rec: &[u8]) -> Result<()> {
        if let Err(e) = self.file.write_all(rec) {
            // Cut a partial record off (a full disk), so that the next record is not appended
            // after it; if that fails too, the next open skips it.
            if self.file.set_len(self.len).is_ok() {
                let _ = self.file.seek(SeekFrom::Start(self.len));
            }
            return Err(io_at(&self.path, e));
        }
        if self.sync {
            self.file.sync_data().map_err(|e| io_at(&self.path, e))?;
        }
        self.len += rec.len() as u64;
        Ok(())
    }

    fn add(&mut self, id: u64, topic: &[u8], payload: &[u8], qos: u8, retain: bool) -> Result<()> {
        let mut r = Vec::with_capacity(add_len(topic, payload) as usize);
        encode_add(
            &mut r,
            &EntryRef {
                id,
                topic,
                payload,
                qos,
                retain,
            },
        );
        self.append(&r)?;
        self.live += r.len() as u64;
        Ok(())
    }

    /// Record entry `id` (whose add record is `add_len` bytes) done.
    fn done(&mut self, id: u64, add_len: u64) -> Result<()> {
        let mut r = Vec::with_capacity(REC_HEAD + DONE_BODY + REC_TAIL);
        encode(&mut r, b'D', &[&id.to_le_bytes()]);
        self.append(&r)?;
        self.live = self.live.saturating_sub(add_len);
        Ok(())
    }

    /// Nothing waits: cut the file back to its header, in place (a crash leaves either the old
    /// file or the header, and either way nothing is lost).
    fn clear(&mut self) -> Result<()> {
        let path = &self.path;
        if self.len < MAGIC.len() as u64 {
            self.file.set_len(0).map_err(|e| io_at(path, e))?;
            self.file
                .seek(SeekFrom::Start(0))
                .map_err(|e| io_at(path, e))?;
            self.file.write_all(MAGIC).map_err(|e| io_at(path, e))?;
        } else {
            self.file
                .set_len(MAGIC.len() as u64)
                .map_err(|e| io_at(path, e))?;
            self.file
                .seek(SeekFrom::Start(MAGIC.len() as u64))
                .map_err(|e| io_at(path, e))?;
        }
        if self.sync {
            self.file.sync_data().map_err(|e| io_at(path, e))?;
        }
        self.len = MAGIC.len() as u64;
        self.live = 0;
        self.retry_at = 0;
        Ok(())
    }

    fn compaction_due(&self) -> bool {
        let dead = self.len.saturating_sub(MAGIC.len() as u64 + self.live);
        self.len >= self.retry_at && dead > COMPACT_MIN_DEAD.max(COMPACT_FACTOR * self.live)
    }

    fn compaction_failed(&mut self, e: &Error) {
        log::warn!(
            "cmqtt: outbox file {}: compaction failed, the journal is kept as it is: {e}",
            self.path.display()
        );
        self.retry_at = self.len + COMPACT_MIN_DEAD;
    }

    /// Rewrite the journal with only `live`, atomically: write `<real>.compacting`, fsync it,
    /// rename it over the journal, fsync the directory. The data is fsynced even without
    /// `sync`, since otherwise a power loss after the rename could leave an empty journal in
    /// place of a full one; compaction is rare enough (see `COMPACT_MIN_DEAD`) for the cost.
    fn compact<'a>(&mut self, live: impl Iterator<Item = EntryRef<'a>>) -> Result<()> {
        let tmp = sibling(&self.real, COMPACTING);
        let written = (|| -> io::Result<(File, u64, u64)> {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            // Locked before it becomes the journal, so the lock never lapses (see the module
            // documentation). Nobody else uses this name: it cannot be held.
            try_lock(&f)?;
            // The journal holds payloads: the new file gets the old one's permissions.
            f.set_permissions(self.file.metadata()?.permissions())?;
            let mut w = BufWriter::with_capacity(256 << 10, &f);
            w.write_all(MAGIC)?;
            let mut len = MAGIC.len() as u64;
            let mut live_len = 0;
            let mut buf = Vec::new();
            for e in live {
                buf.clear();
                encode_add(&mut buf, &e);
                w.write_all(&buf)?;
                len += buf.len() as u64;
                live_len += buf.len() as u64;
            }
            w.flush()?;
            drop(w);
            f.sync_all()?;
            Ok((f, len, live_len))
        })();
        let (mut f, len, live_len) = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(io_at(&self.path, e));
            }
        };
        if let Err(e) = fs::rename(&tmp, &self.real) {
            let _ = fs::remove_file(&tmp);
            return Err(io_at(&self.path, e));
        }
        // From here the new file is the journal, whatever else fails: keep appending to it.
        let _ = f.seek(SeekFrom::Start(len));
        self.file = f;
        self.len = len;
        self.live = live_len;
        self.retry_at = 0;
        if let Err(e) = sync_dir(&self.real) {
            // The rename may not survive a power loss; the old journal is then still whole.
            log::warn!(
                "cmqtt: outbox file {}: fsync of its directory failed: {e}",
                self.path.display()
            );
        }
        Ok(())
    }
}

/// Open `path` for reading and writing, refusing anything but a regular file, and lock it.
/// Returns the file and its real path.
fn open_locked(path: &Path) -> Result<(File, PathBuf)> {
    // A compaction of the holder can replace the file between our open and our lock: then we
    // locked a file that is no longer the journal, and try again. A few times is plenty, since
    // a compaction needs at least 256 KiB of appends before the next.
    for attempt in 0..20 {
        match fs::metadata(path) {
            // Checked before opening: opening a FIFO for reading can block, and reading a
            // device (`/dev/zero`) never ends.
            Ok(m) if !m.is_file() => return Err(not_regular(path, &m)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(path, e)),
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io_at(path, e))?;
        // Checked again on what was opened, in case the path was replaced meanwhile.
        let meta = file.metadata().map_err(|e| io_at(path, e))?;
        if !meta.is_file() {
            return Err(not_regular(path, &meta));
        }
        if let Err(e) = try_lock(&file) {
            if e.kind() != io::ErrorKind::WouldBlock {
                return Err(io_at(path, e));
            }
            let holder = lock_holder(&file, path);
            // Not found: the holder moved its lock to a new file meanwhile; look again.
            if holder.is_none() && attempt < 3 {
                continue;
            }
            return Err(in_use(path, holder));
        }
        let real = fs::canonicalize(path).map_err(|e| io_at(path, e))?;
        match fs::metadata(&real) {
            Ok(now) if same_file(&meta, &now) => return Ok((file, real)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(path, e)),
        }
    }
    Err(Error::invalid(
        "outbox file",
        format!(
            "{} keeps being replaced while opening it: another process is rewriting it; \
             two outboxes must not share a file",
            path.display()
        ),
    ))
}

/// An exclusive lock, without waiting (`flock(LOCK_EX | LOCK_NB)` on Unix); `WouldBlock` when
/// held elsewhere. Released when the file is closed, so a crashed owner never leaves it held.
// `File::try_lock` is stable since Rust 1.89: the workspace's `rust-version` (1.85) has to
// follow; portable std beats a hand-declared `flock` and its per-platform constants.
fn try_lock(f: &File) -> io::Result<()> {
    match f.try_lock() {
        Ok(()) => Ok(()),
        Err(fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &fs::Metadata, _: &fs::Metadata) -> bool {
    // No inode to compare; renaming over an open file fails there anyway.
    true
}

fn not_regular(path: &Path, m: &fs::Metadata) -> Error {
    let t = m.file_type();
    let mut what = if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            what = "a FIFO";
        } else if t.is_char_device() {
            what = "a character device";
        } else if t.is_block_device() {
            what = "a block device";
        } else if t.is_socket() {
            what = "a socket";
        }
    }
    Error::invalid(
        "outbox file",
        format!(
            "{} is {what}; the outbox needs a regular file (created if missing): choose another path",
            path.display()
        ),
    )
}

fn in_use(path: &Path, holder: Option<u32>) -> Error {
    let who = match holder {
        Some(pid) if pid == std::process::id() => {
            format!("another outbox in this process (pid {pid})")
        }
        Some(pid) => format!("another process (pid {pid})"),
        None => "another process".to_string(),
    };
    Error::invalid(
        "outbox file",
        format!(
            "{} is in use by {who}; two outboxes on one file would both send its entries and \
             erase each other's: stop the other one, or give each its own file",
            path.display()
        ),
    )
}

/// The pid holding the `flock` on `file`, or on the file now at `path` (the holder may have
/// compacted since we tried), from `/proc/locks` (lines such as
/// `3: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF`, device numbers in hex).
#[cfg(target_os = "linux")]
fn lock_holder(file: &File, path: &Path) -> Option<u32> {
    let locks = fs::read_to_string("/proc/locks").ok()?;
    [file.metadata(), fs::metadata(path)]
        .into_iter()
        .flatten()
        .find_map(|m| lock_holder_in(&locks, &m))
}

#[cfg(target_os = "linux")]
fn lock_holder_in(locks: &str, m: &fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let (dev, ino) = (m.dev(), m.ino());
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let exact = format!("{major:02x}:{minor:02x}:{ino}");
    let suffix = format!(":{ino}");
    let mut by_ino = Vec::new();
    for line in locks.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Waiting requests are marked `->` and do not hold the lock.
        if f.len() < 6 || f[1] != "FLOCK" {
            continue;
        }
        let pid = f[4].parse().ok();
        if f[5] == exact {
            return pid;
        }
        if f[5].ends_with(&suffix) {
            by_ino.extend(pid);
        }
    }
    // Some file systems (overlays) show another device number than `stat`: an inode number
    // alone is good enough when only one lock has it.
    match by_ino[..] {
        [pid] => Some(pid),
        _ => None,
    }
}

#[cfg(not(target_os = "linux"))]
fn lock_holder(_: &File, _: &Path) -> Option<u32> {
    None
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Make the directory entries of `path`'s directory (a rename, a creation) durable.
fn sync_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// The whole file, bounded by its size (it is a regular file, locked, so it does not grow).
fn read_all(file: &File, path: &Path) -> Result<Vec<u8>> {
    let len = file.metadata().map_err(|e| io_at(path, e))?.len();
    let mut data = Vec::new();
    if data
        .try_reserve_exact(usize::try_from(len).unwrap_or(usize::MAX))
        .is_err()
    {
        return Err(Error::invalid(
            "outbox file",
            format!(
                "{} is {len} bytes, more than can be loaded: not an outbox this library wrote; \
                 move it away or choose another path",
                path.display()
            ),
        ));
    }
    Read::take(file, len)
        .read_to_end(&mut data)
        .map_err(|e| io_at(path, e))?;
    Ok(data)
}

/// Keep `data` (the file as found) as `<real>.damaged-<unix time>[-n]`, with the journal's
/// permissions.
fn keep_copy(real: &Path, data: &[u8], journal: &File) -> io::Result<PathBuf> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for n in 0..1000 {
        let name = match n {
            0 => format!(".damaged-{secs}"),
            n => format!(".damaged-{secs}-{n}"),
        };
        let p = sibling(real, &name);
        match OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(mut f) => {
                f.set_permissions(journal.metadata()?.permissions())?;
                f.write_all(data)?;
                f.sync_all()?;
                return Ok(p);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "1000 damaged copies already exist for this second",
    ))
}

enum Record {
    Add(Loaded),
    Done(u64),
}

fn apply(entries: &mut BTreeMap<u64, Loaded>, rec: Record) {
    match rec {
        Record::Add(l) => {
            entries.insert(l.id, l);
        }
        Record::Done(id) => {
            entries.remove(&id);
        }
    }
}

enum Parsed {
    /// A record and its length.
    Record(Record, usize),
    /// The start of a record the data ends inside of.
    Incomplete,
    /// Not a record here; with a verified header, the record's length, to skip over it whole.
    Bad(Option<usize>),
}

fn parse_v2(d: &[u8]) -> Parsed {
    let u32_at = |at: usize| u32::from_le_bytes(d[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(d[at..at + 8].try_into().expect("8 bytes"));
    if d.len() < REC_HEAD {
        let n = d.len().min(REC_MAGIC.len());
        return if d[..n] == REC_MAGIC[..n] {
            Parsed::Incomplete
        } else {
            Parsed::Bad(None)
        };
    }
    if d[..4] != REC_MAGIC || crc32c(&d[..9]) != u32_at(9) {
        return Parsed::Bad(None);
    }
    // The length is verified now, but only lengths an entry can have are believed.
    let (kind, len) = (d[4], u32_at(5) as usize);
    let fits = match kind {
        b'A' => (ADD_FIXED..=MAX_ADD_BODY).contains(&len),
        b'D' => len == DONE_BODY,
        _ => false,
    };
    if !fits {
        return Parsed::Bad(None);
    }
    let total = REC_HEAD + len + REC_TAIL;
    if d.len() < total {
        return Parsed::Incomplete;
    }
    if crc32c(&d[..REC_HEAD + len]) != u32_at(REC_HEAD + len) {
        return Parsed::Bad(Some(total));
    }
    let body = &d[REC_HEAD..REC_HEAD + len];
    let rec = if kind == b'D' {
        Record::Done(u64_at(REC_HEAD))
    } else {
        let tl = u32_at(REC_HEAD + 10) as usize;
        if tl > MAX_TOPIC || tl > len - ADD_FIXED || len - ADD_FIXED - tl > MAX_PAYLOAD {
            return Parsed::Bad(Some(total));
        }
        Record::Add(Loaded {
            id: u64_at(REC_HEAD),
            qos: body[8],
            retain: body[9] != 0,
            topic: body[ADD_FIXED..ADD_FIXED + tl].to_vec(),
            payload: body[ADD_FIXED + tl..].to_vec(),
        })
    };
    Parsed::Record(rec, total)
}

struct Run {
    range: Range<usize>,
    /// Only a record cut short by the end of the file.
    torn: bool,
    /// Records it held, as far as can be told: each place a record was expected and did not
    /// verify (where the run starts, and after that at a record's verified end or at a marker).
    records: usize,
}

#[derive(Default)]
struct Scan {
    entries: BTreeMap<u64, Loaded>,
    records: usize,
    runs: Vec<Run>,
}

/// Read version 2 records from `start`, skipping damage: after a bad record, resume at the
/// end of it when its header verified (so nothing inside its payload is taken for a record),
/// else at the next record marker.
fn scan(data: &[u8], start: usize) -> Scan {
    let mut s = Scan::default();
    let mut pos = start;
    // The damaged run in progress.
    let mut bad: Option<Run> = None;
    let next_marker = |from: usize| {
        memchr::memmem::find(&data[from.min(data.len())..], &REC_MAGIC)
            .map_or(data.len(), |i| from + i)
    };
    while pos < data.len() {
        match parse_v2(&data[pos..]) {
            Parsed::Record(rec, n) => {
                if let Some(mut run) = bad.take() {
                    run.range.end = pos;
                    run.torn = false;
                    s.runs.push(run);
                }
                apply(&mut s.entries, rec);
                s.records += 1;
                pos += n;
            }
            Parsed::Incomplete => {
                // A verified header whose record runs past the end (or the first bytes of a
                // header): the rest of the file is this record's, cut short.
                bad.get_or_insert(Run {
                    range: pos..pos,
                    torn: true,
                    records: 0,
                });
                pos = data.len();
            }
            Parsed::Bad(whole) => {
                let run = bad.get_or_insert(Run {
                    range: pos..pos,
                    torn: false,
                    records: 0,
                });
                // A damaged header is not a record.
                if pos != 0 {
                    run.records += 1;
                }
                pos = match whole {
                    Some(n) => pos + n,
                    None => next_marker(pos + 1),
                };
            }
        }
    }
    if let Some(mut run) = bad {
        run.range.end = data.len();
        s.runs.push(run);
    }
    s
}

/// Version 1: records without marker or length, each followed by an FNV-1a 64 checksum; read
/// up to the first one that does not verify. Returns the entries, the end of the last good
/// record and how many were read.
fn read_v1(data: &[u8]) -> (BTreeMap<u64, Loaded>, usize, usize) {
    let mut entries = BTreeMap::new();
    let mut pos = MAGIC_V1.len();
    let mut records = 0;
    while let Some((rec, used)) = parse_v1(&data[pos..]) {
        apply(&mut entries, rec);
        pos += used;
        records += 1;
    }
    (entries, pos, records)
}

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn parse_v1(d: &[u8]) -> Option<(Record, usize)> {
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
            if tl > MAX_FIELD_V1 {
                return None;
            }
            let topic = take(d, 15, tl as usize)?;
            let pl_at = 15 + tl as usize;
            let pl = u32_at(pl_at)?;
            if pl > MAX_FIELD_V1 {
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
    use std::time::Instant;

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
            Err(Error::OutboxFull { waiting: 1 })
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
        let before = f.metadata().unwrap().len();
        f.write_all(&REC_MAGIC).unwrap();
        f.write_all(b"A\x09\x00").unwrap();
        drop(f);
        let o = Outbox::open(cfg.clone()).unwrap();
        assert_eq!(o.len(), 4);
        let r = o.open_report().unwrap();
        assert_eq!(r.torn_tail, Some(before..before + 7));
        assert!(!r.is_damaged() && r.damaged_copy.is_none(), "{r}");
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
        drop(o);
        std::fs::write(&path, b"not an outbox").unwrap();
        assert!(Outbox::open(OutboxConfig {
            persist: Some(path.clone()),
            ..Default::default()
        })
        .is_err());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    fn persisted(path: &Path) -> OutboxConfig {
        OutboxConfig {
            persist: Some(path.to_path_buf()),
            ..Default::default()
        }
    }

    #[test]
    fn a_record_inside_a_damaged_payload_is_not_taken_for_one() {
        let path = tmp("embedded");
        let mut fake = Vec::new();
        encode_add(
            &mut fake,
            &EntryRef {
                id: 999,
                topic: b"fake",
                payload: b"from inside a payload",
                qos: 1,
                retain: false,
            },
        );
        {
            let o = Outbox::open(persisted(&path)).unwrap();
            o.push(b"t", b"before", 1, false, Duration::ZERO).unwrap();
            o.push(b"t", &fake, 1, false, Duration::ZERO).unwrap();
            o.push(b"t", b"after", 1, false, Duration::ZERO).unwrap();
        }
        // Damage the body of the record carrying the fake one (its last checksum byte): its
        // header still verifies, so it is skipped whole, fake record included.
        let mut data = fs::read(&path).unwrap();
        let at = memchr::memmem::find(&data, &fake).unwrap() + fake.len() + REC_TAIL - 1;
        data[at] ^= 0x01;
        fs::write(&path, &data).unwrap();
        let o = Outbox::open(persisted(&path)).unwrap();
        let r = o.open_report().unwrap().clone();
        let ids: Vec<u64> = o.pending().iter().map(|d| d.id()).collect();
        assert_eq!(ids, [1, 3], "{r}");
        assert_eq!(r.records_skipped, 1);
        let copy = r.damaged_copy.clone().unwrap();
        assert_eq!(fs::read(&copy).unwrap(), data);
        let _ = fs::remove_file(copy);
        drop(o);
        let _ = fs::remove_file(&path);
    }

    #[test]
    fn version_1_files_are_read_and_rewritten() {
        let path = tmp("v1");
        let mut d = MAGIC_V1.to_vec();
        let mut rec = |r: Vec<u8>| {
            let sum = fnv(&r);
            d.extend_from_slice(&r);
            d.extend_from_slice(&sum.to_le_bytes());
        };
        for id in 1..=3u64 {
            let mut r = vec![b'A'];
            r.extend_from_slice(&id.to_le_bytes());
            r.extend_from_slice(&[1, 0]);
            r.extend_from_slice(&1u32.to_le_bytes());
            r.push(b't');
            r.extend_from_slice(&2u32.to_le_bytes());
            r.extend_from_slice(&[b'p', b'0' + id as u8]);
            rec(r);
        }
        let mut r = vec![b'D'];
        r.extend_from_slice(&2u64.to_le_bytes());
        rec(r);
        fs::write(&path, &d).unwrap();
        let o = Outbox::open(persisted(&path)).unwrap();
        let r = o.open_report().unwrap();
        assert!(r.upgraded && !r.is_damaged(), "{r}");
        let ids: Vec<u64> = o.pending().iter().map(|d| d.id()).collect();
        assert_eq!(ids, [1, 3]);
        assert_eq!(o.front(Duration::ZERO).unwrap().payload, b"p1");
        drop(o);
        assert!(fs::read(&path).unwrap().starts_with(MAGIC));
        let o = Outbox::open(persisted(&path)).unwrap();
        assert!(!o.open_report().unwrap().upgraded);
        assert_eq!(o.len(), 2);
        drop(o);
        // A version 1 file whose first record was cut short: still a version 1 outbox, the
        // cut reported (and kept) as version 1 could not tell damage from a torn tail.
        fs::write(&path, b"CMQTTOB1A\x01\x00").unwrap();
        let o = Outbox::open(persisted(&path)).unwrap();
        let r = o.open_report().unwrap();
        assert!(r.upgraded && o.is_empty(), "{r}");
        assert_eq!(r.skipped, vec![8..11]);
        let copy = r.damaged_copy.clone().unwrap();
        drop(o);
        let _ = fs::remove_file(copy);
        let _ = fs::remove_file(&path);
    }

    #[test]
    fn a_second_outbox_on_the_file_is_refused_and_drop_oldest_keeps_the_count() {
        let path = tmp("twice");
        let cfg = OutboxConfig {
            capacity: 3,
            when_full: WhenFull::DropOldest,
            ..persisted(&path)
        };
        let o = Outbox::open(cfg.clone()).unwrap();
        let e = Outbox::open(cfg.clone()).unwrap_err().to_string();
        assert!(
            e.contains("in use by another outbox in this process"),
            "{e}"
        );
        for i in 0..10u8 {
            o.push(b"t", &[i; 100], 1, false, Duration::ZERO).unwrap();
        }
        let live: u64 = (0..3).map(|_| add_len(b"t", &[0; 100])).sum();
        assert_eq!(o.state.lock().file.as_ref().unwrap().live, live);
        drop(o);
        let o = Outbox::open(cfg).unwrap();
        let ids: Vec<u64> = o.pending().iter().map(|d| d.id()).collect();
        assert_eq!(ids, [8, 9, 10]);
        drop(o);
        let _ = fs::remove_file(&path);
    }
}

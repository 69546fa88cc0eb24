//! The outbox journal under hostile conditions (issue 12, item 3): a second process on the same
//! file, damaged bytes at several offsets, a file cut short, SIGKILL at random moments of a
//! compaction-heavy run, unbounded growth, and paths that are not regular files.
//!
//! Process-level tests re-execute this test binary (`--exact child_process`) with
//! `CMQTT_OJ_ROLE` naming the child's role, so that the second outbox really is another
//! process. The child prints what it did on lines starting with `@@`.
#![cfg(unix)]

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cmqtt::outbox::{OpenReport, Outbox, OutboxConfig};
use cmqtt::{DeliveryStatus, Error};

const ROLE: &str = "CMQTT_OJ_ROLE";
const PATH: &str = "CMQTT_OJ_PATH";

// ---- helpers -------------------------------------------------------------------------------

/// A directory removed at the end of the test (kept if it fails, for a look).
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p =
            std::env::temp_dir().join(format!("cmqtt-oj-{}-{name}-{nanos}", std::process::id()));
        fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Names of the files in it.
    fn names(&self) -> BTreeSet<String> {
        fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

fn cfg(path: &Path, sync: bool) -> OutboxConfig {
    OutboxConfig {
        capacity: 100_000,
        persist: Some(path.to_path_buf()),
        sync,
        ..Default::default()
    }
}

fn topic(id: u64) -> Vec<u8> {
    format!("t/{id}").into_bytes()
}

/// A payload that says which entry it belongs to, of a size that varies with it.
fn payload(id: u64, base: usize) -> Vec<u8> {
    let n = base + (id as usize * 7919) % (base / 2 + 1);
    let mut p: Vec<u8> = format!("[{id}]").into_bytes();
    p.extend((0..n).map(|i| (i as u64 ^ id) as u8));
    p
}

fn ids(o: &Outbox) -> Vec<u64> {
    o.pending().iter().map(|d| d.id()).collect()
}

/// Every waiting entry's topic and payload are the ones pushed under its id (checked on a copy
/// of the file, since checking consumes the entries).
fn check_contents(path: &Path, base: usize) {
    let copy = path.with_extension("check");
    fs::copy(path, &copy).unwrap();
    let o = Outbox::open(cfg(&copy, false)).unwrap();
    while let Some(e) = o.front(Duration::ZERO) {
        assert_eq!(e.topic, topic(e.id), "topic of entry {}", e.id);
        assert!(
            e.payload == payload(e.id, base),
            "payload of entry {} differs",
            e.id
        );
        o.complete(e.id, DeliveryStatus::Delivered).unwrap();
    }
    drop(o);
    fs::remove_file(&copy).unwrap();
}

fn invalid_reason(r: Result<Outbox, Error>) -> String {
    match r {
        Err(Error::InvalidArgument { reason, .. }) => reason,
        Err(e) => panic!("expected InvalidArgument, got {e:?}"),
        Ok(_) => panic!("expected InvalidArgument, the outbox opened"),
    }
}

// ---- the child process -----------------------------------------------------------------------

fn spawn(role: &str, path: &Path) -> (Child, ChildStdout) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(PATH, path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    (child, out)
}

/// The child's `@@` lines, without the `@@ ` (libtest may print `test child_process ... `
/// before the first one on the same line), through a channel so that the parent can wait for
/// them with a timeout instead of hanging on a child gone wrong.
fn said_lines(out: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if let Some(at) = l.find("@@ ") {
                if tx.send(l[at + 3..].to_string()).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

fn say(line: impl std::fmt::Display) {
    let mut o = std::io::stdout().lock();
    writeln!(o, "@@ {line}").unwrap();
    o.flush().unwrap();
}

/// Not a test of its own: the body of the child processes the tests start.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let path = PathBuf::from(std::env::var_os(PATH).unwrap());
    match role.as_str() {
        "hold" => hold(&path),
        "churn" => churn(&path, true),
        "churn-nosync" => churn(&path, false),
        r => panic!("unknown role {r}"),
    }
}

/// Hold the outbox with 50 waiting entries while pushing and completing big ones (compacting
/// every few), until told `stop` on stdin; then say which entries wait.
fn hold(path: &Path) {
    let o = Outbox::open(cfg(path, false)).unwrap();
    for _ in 0..50 {
        let id = ids(&o).last().map_or(1, |l| l + 1);
        o.push(&topic(id), &payload(id, 100), 1, false, Duration::ZERO)
            .unwrap();
    }
    let (stop_tx, stop) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = stop_tx.send(());
    });
    say(format!("ready {}", std::process::id()));
    let mut ino = fs::metadata(path).unwrap().ino();
    while stop.try_recv().is_err() {
        let big = o
            .push(b"big", &[7; 100 << 10], 1, false, Duration::ZERO)
            .unwrap();
        o.complete(big.delivery.id(), DeliveryStatus::Delivered)
            .unwrap();
        let now = fs::metadata(path).unwrap().ino();
        if now != ino {
            ino = now;
            say("compacted");
        }
    }
    let left: Vec<String> = ids(&o).iter().map(u64::to_string).collect();
    say(format!("left {}", left.join(" ")));
}

/// Push and complete for ever, keeping 4 to 5 entries of 32 to 48 KiB waiting, so that a
/// compaction comes every few completions; say each push (`Q id`) and completion (`D id`)
/// once it returned, i.e. once it is durable (against a kill of the process, which is what
/// is tested, with or without `sync`; without it compactions, which always fsync, take most
/// of the time, so more kills land inside one).
fn churn(path: &Path, sync: bool) {
    // Opening may compact too (and rewrote the file in place before).
    say("opening");
    let o = Outbox::open(cfg(path, sync)).unwrap();
    say("open");
    let mut ino = fs::metadata(path).unwrap().ino();
    loop {
        // Ids follow the newest waiting entry's (the queue never empties here), so the
        // payload can be made for the id before the push.
        let id = ids(&o).last().map_or(1, |l| l + 1);
        let got = o
            .push(&topic(id), &payload(id, 32 << 10), 1, false, Duration::ZERO)
            .unwrap();
        assert_eq!(got.delivery.id(), id);
        say(format!("Q {id}"));
        if o.len() > 4 {
            let f = o.front(Duration::ZERO).unwrap();
            o.complete(f.id, DeliveryStatus::Delivered).unwrap();
            say(format!("D {}", f.id));
        }
        let now = fs::metadata(path).unwrap().ino();
        if now != ino {
            ino = now;
            say("compacted");
        }
    }
}

// ---- (a) one owner ---------------------------------------------------------------------------

/// Two processes on one file: the second is refused, with the holder's pid, for as long as the
/// first lives, through all of its compactions (the lock moves to each new file before it
/// replaces the journal); once the first is gone, its entries are all there, once.
#[test]
fn a_second_process_is_refused_while_the_first_holds_the_file() {
    let dir = Dir::new("two");
    let path = dir.join("outbox.bin");
    let (mut child, out) = spawn("hold", &path);
    let lines = said_lines(out);
    let pid = match lines.recv_timeout(Duration::from_secs(60)) {
        Ok(l) if l.starts_with("ready ") => l[6..].parse::<u32>().unwrap(),
        got => {
            let _ = child.kill();
            panic!("the child did not say it was ready: {got:?}");
        }
    };
    assert_eq!(pid, child.id());
    let start = Instant::now();
    let mut refused = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        let reason = invalid_reason(Outbox::open(cfg(&path, false)));
        // The pid comes from /proc/locks, on Linux.
        let holder = if cfg!(target_os = "linux") {
            format!("in use by another process (pid {pid})")
        } else {
            "in use by another process".to_string()
        };
        assert!(reason.contains(&holder), "{reason}");
        assert!(reason.contains(&path.display().to_string()), "{reason}");
        refused += 1;
    }
    child.stdin.take().unwrap().write_all(b"stop\n").unwrap();
    let mut compactions = 0;
    let mut left = None;
    loop {
        let l = match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("the child did not stop");
            }
        };
        if l == "compacted" {
            compactions += 1;
        } else if let Some(rest) = l.strip_prefix("left ") {
            left = Some(
                rest.split(' ')
                    .map(|s| s.parse().unwrap())
                    .collect::<Vec<u64>>(),
            );
        }
    }
    assert!(child.wait().unwrap().success());
    eprintln!("refused {refused} opens during {compactions} compactions of the holder");
    assert!(refused > 10, "only {refused} attempts");
    assert!(
        compactions >= 3,
        "the holder compacted {compactions} times: the lock was not tested across renames"
    );
    let left = left.expect("the child said which entries wait");
    assert_eq!(left, (1..=50).collect::<Vec<u64>>());
    let o = Outbox::open(cfg(&path, false)).unwrap();
    assert_eq!(ids(&o), left);
    assert!(!o.open_report().unwrap().is_damaged());
    drop(o);
    check_contents(&path, 100);
}

/// In one process too (two supervisors on one file): the second open is refused, and the
/// file can be opened again once the first outbox is dropped.
#[test]
fn a_second_outbox_in_the_same_process_is_refused() {
    let dir = Dir::new("same");
    let path = dir.join("outbox.bin");
    let o = Outbox::open(cfg(&path, false)).unwrap();
    o.push(b"t", b"p", 1, false, Duration::ZERO).unwrap();
    let reason = invalid_reason(Outbox::open(cfg(&path, false)));
    assert!(
        reason.contains("in use by another outbox in this process"),
        "{reason}"
    );
    drop(o);
    let o = Outbox::open(cfg(&path, false)).unwrap();
    assert_eq!(o.len(), 1);
}

// ---- (b) damage ------------------------------------------------------------------------------

/// Byte ranges of the records of a journal, from the documented format: an 8-byte header, then
/// records of 13 header bytes (the body length at 5..9), the body and a 4-byte checksum.
fn records(data: &[u8]) -> Vec<Range<usize>> {
    let mut v = Vec::new();
    let mut pos = 8;
    while pos < data.len() {
        let len = u32::from_le_bytes(data[pos + 5..pos + 9].try_into().unwrap()) as usize;
        v.push(pos..pos + 13 + len + 4);
        pos += 13 + len + 4;
    }
    assert_eq!(pos, data.len());
    v
}

const BASE: usize = 40;

/// A journal of `n` entries, ids 1..=n, with `done` completed afterwards; returns its bytes.
fn journal(path: &Path, n: u64, done: &[u64]) -> Vec<u8> {
    let _ = fs::remove_file(path);
    let o = Outbox::open(cfg(path, false)).unwrap();
    for id in 1..=n {
        let p = o
            .push(
                &topic(id),
                &payload(id, BASE),
                1,
                id % 3 == 0,
                Duration::ZERO,
            )
            .unwrap();
        assert_eq!(p.delivery.id(), id);
    }
    for &id in done {
        o.complete(id, DeliveryStatus::Delivered).unwrap();
    }
    drop(o);
    fs::read(path).unwrap()
}

/// Open the damaged `data` at `path`; returns the ids loaded and the report, after checking
/// that the damaged file was kept aside exactly as it was (when damaged), that the journal
/// was rewritten clean, and that every survivor's contents are intact.
fn open_damaged(path: &Path, data: &[u8]) -> (Vec<u64>, OpenReport) {
    fs::write(path, data).unwrap();
    let o = Outbox::open(cfg(path, false)).unwrap();
    let r = o.open_report().unwrap().clone();
    let got = ids(&o);
    assert_eq!(r.loaded, got.len());
    drop(o);
    match &r.damaged_copy {
        Some(copy) => {
            assert!(r.is_damaged());
            assert_eq!(copy.parent(), path.parent());
            let name = copy.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.starts_with("outbox.bin.damaged-"), "{name}");
            assert!(
                fs::read(copy).unwrap() == data,
                "the copy is not the file as found"
            );
            fs::remove_file(copy).unwrap();
        }
        None => assert!(!r.is_damaged(), "damaged but no copy kept: {r}"),
    }
    let again = Outbox::open(cfg(path, false)).unwrap();
    let r2 = again.open_report().unwrap();
    assert!(
        !r2.is_damaged() && r2.torn_tail.is_none(),
        "not rewritten clean: {r2}"
    );
    assert_eq!(ids(&again), got);
    drop(again);
    check_contents(path, BASE);
    (got, r)
}

fn all_but(n: u64, lost: &[u64]) -> Vec<u64> {
    (1..=n).filter(|i| !lost.contains(i)).collect()
}

/// The one range skipped.
fn only(skipped: &[Range<u64>]) -> Range<u64> {
    assert_eq!(skipped.len(), 1, "skipped {skipped:?}");
    skipped[0].clone()
}

fn flipped(data: &[u8], at: usize) -> Vec<u8> {
    let mut d = data.to_vec();
    d[at] ^= 0x20;
    d
}

/// One flipped byte costs the one record it is in, wherever in the record (marker, kind,
/// length, header checksum, id, topic, payload, checksum) and wherever the record is (the
/// first, the 11th of 50, the last); the rest are kept, the damage reported by byte range.
#[test]
fn one_flipped_byte_costs_one_record() {
    let dir = Dir::new("flip");
    let path = dir.join("outbox.bin");
    let data = journal(&path, 50, &[]);
    let recs = records(&data);
    assert_eq!(recs.len(), 50);
    for (rec, lost) in [(0usize, 1u64), (10, 11), (49, 50)] {
        let r = recs[rec].clone();
        let inside = [
            ("marker", r.start),
            ("kind", r.start + 4),
            ("length", r.start + 6),
            ("header checksum", r.start + 10),
            ("id", r.start + 13),
            ("qos", r.start + 13 + 8),
            ("topic length", r.start + 13 + 10),
            ("topic", r.start + 13 + 14),
            ("payload", r.start + 13 + 14 + 5),
            ("last payload byte", r.end - 5),
            ("checksum", r.end - 1),
        ];
        for (what, at) in inside {
            let (got, report) = open_damaged(&path, &flipped(&data, at));
            assert_eq!(
                got,
                all_but(50, &[lost]),
                "{what} of record {rec}: {report}"
            );
            assert_eq!(
                only(&report.skipped),
                r.start as u64..r.end as u64,
                "{what} of record {rec}"
            );
            assert_eq!(report.records_skipped, 1, "{what} of record {rec}");
            assert!(!report.header_damaged && report.torn_tail.is_none());
            let text = report.to_string();
            assert!(
                text.contains("1 damaged records skipped") && text.contains("kept as"),
                "{text}"
            );
        }
    }
}

/// The case, found by content rather than by format (so that it reads the same on
/// any format): one byte flipped in the payload of the 1st, 11th or 50th of 50 entries costs
/// that entry only (it cost all 50, the 40 after the 11th, or the 50th).
#[test]
fn a_flipped_payload_byte_costs_that_entry_only() {
    let dir = Dir::new("payload-flip");
    let path = dir.join("outbox.bin");
    let data = journal(&path, 50, &[]);
    for id in [1u64, 11, 50] {
        let p = payload(id, BASE);
        let at = data.windows(p.len()).position(|w| w == p).unwrap() + p.len() / 2;
        let (got, r) = open_damaged(&path, &flipped(&data, at));
        assert_eq!(got, all_but(50, &[id]), "entry {id}: {r}");
        assert_eq!(r.records_skipped, 1, "entry {id}: {r}");
    }
}

/// A damaged header: every record is still read.
#[test]
fn a_damaged_header_loses_nothing() {
    let dir = Dir::new("header");
    let path = dir.join("outbox.bin");
    let data = journal(&path, 50, &[]);
    for at in [0, 3, 7] {
        let (got, r) = open_damaged(&path, &flipped(&data, at));
        assert_eq!(got, all_but(50, &[]), "{r}");
        assert!(r.header_damaged, "{r}");
        assert_eq!(only(&r.skipped), 0..8);
        assert_eq!(r.records_skipped, 0);
    }
    // Header and a record at once.
    let mut d = flipped(&data, 2);
    d[records(&data)[20].start + 20] ^= 1;
    let (got, r) = open_damaged(&path, &d);
    assert_eq!(got, all_but(50, &[21]), "{r}");
    assert_eq!(r.records_skipped, 1);
    // Not an outbox at all (no record verifies): refused, left alone.
    fs::write(&path, b"something else entirely").unwrap();
    let reason = invalid_reason(Outbox::open(cfg(&path, false)));
    assert!(reason.contains("not a cmqtt outbox file"), "{reason}");
    assert_eq!(fs::read(&path).unwrap(), b"something else entirely");
}

/// A length beyond any entry (4 GiB) is damage, not an allocation; two damaged records in one
/// file are two skipped ranges; a damaged done record brings its entry back (at least once).
#[test]
fn huge_lengths_several_damages_and_done_records() {
    let dir = Dir::new("lengths");
    let path = dir.join("outbox.bin");
    let data = journal(&path, 50, &[]);
    let recs = records(&data);
    let mut d = data.clone();
    d[recs[10].start + 5..recs[10].start + 9].copy_from_slice(&u32::MAX.to_le_bytes());
    let (got, r) = open_damaged(&path, &d);
    assert_eq!(got, all_but(50, &[11]), "{r}");

    let d = flipped(&flipped(&data, recs[3].start + 30), recs[40].start + 1);
    let (got, r) = open_damaged(&path, &d);
    assert_eq!(got, all_but(50, &[4, 41]), "{r}");
    assert_eq!(
        r.skipped,
        [
            recs[3].start as u64..recs[3].end as u64,
            recs[40].start as u64..recs[40].end as u64
        ]
    );
    assert_eq!(r.records_skipped, 2);

    // A run of garbage over records 20..=22 (their markers gone too): 3 records lost.
    let mut d = data.clone();
    for b in &mut d[recs[20].start..recs[22].end] {
        *b = 0x55;
    }
    let (got, r) = open_damaged(&path, &d);
    assert_eq!(got, all_but(50, &[21, 22, 23]), "{r}");
    assert_eq!(only(&r.skipped), recs[20].start as u64..recs[22].end as u64);

    // Entries 5 and 7 completed (done records at the end); the first done record damaged:
    // entry 5 comes back, 7 stays done.
    let data = journal(&path, 50, &[5, 7]);
    let recs = records(&data);
    assert_eq!(recs.len(), 52);
    let (got, r) = open_damaged(&path, &flipped(&data, recs[50].start + 15));
    assert_eq!(got, all_but(50, &[7]), "{r}");
    assert_eq!(r.records_skipped, 1);
}

/// A file cut short inside a record (a crash mid-append) keeps everything before it; the cut
/// record is reported as a torn tail, not as damage, and no copy is kept.
#[test]
fn a_file_cut_mid_record_keeps_what_precedes() {
    let dir = Dir::new("cut");
    let path = dir.join("outbox.bin");
    let data = journal(&path, 50, &[]);
    let recs = records(&data);
    for cut in [
        recs[30].start + 1,
        recs[30].start + 5,
        recs[30].start + 13,
        recs[30].start + 40,
        recs[30].end - 1,
        recs[49].end - 1,
    ] {
        let rec = recs.iter().position(|r| r.contains(&cut)).unwrap();
        let (got, r) = open_damaged(&path, &data[..cut]);
        assert_eq!(
            got,
            (1..=rec as u64).collect::<Vec<_>>(),
            "cut at {cut}: {r}"
        );
        assert_eq!(r.torn_tail, Some(recs[rec].start as u64..cut as u64));
        assert!(!r.is_damaged() && r.damaged_copy.is_none(), "{r}");
    }
    // Cut between records: nothing to report.
    let (got, r) = open_damaged(&path, &data[..recs[30].start]);
    assert_eq!(got, (1..=30).collect::<Vec<_>>());
    assert_eq!((r.loaded, r.records_skipped), (30, 0));
    assert!(r.torn_tail.is_none() && !r.is_damaged() && !r.upgraded);
    assert!(r.skipped.is_empty() && r.damaged_copy.is_none());
    // No copies and no compaction file left behind.
    assert_eq!(dir.names(), BTreeSet::from(["outbox.bin".to_string()]));
}

/// Every single-byte flip anywhere in a journal of adds and dones costs at most one record:
/// at most one entry lost, or at most one completed entry back; never a panic, never more.
#[test]
fn any_single_flip_costs_at_most_one_record() {
    let dir = Dir::new("sweep");
    let path = dir.join("outbox.bin");
    let data = journal(&path, 12, &[2, 5, 9]);
    let want = all_but(12, &[2, 5, 9]);
    for at in (0..data.len()).step_by(3) {
        let (got, r) = open_damaged(&path, &flipped(&data, at));
        let lost = want.iter().filter(|i| !got.contains(i)).count();
        let back = got.iter().filter(|i| !want.contains(i)).count();
        assert!(lost + back <= 1, "flip at {at}: got {got:?}: {r}");
        assert!(r.is_damaged(), "flip at {at} not reported");
    }
}

// ---- (c) SIGKILL during compaction -------------------------------------------------------------

/// What a killed churn child said.
#[derive(Default)]
struct Said {
    queued: Vec<u64>,
    done: Vec<u64>,
    compactions: usize,
    opening: bool,
}

/// Receive the child's lines into `early` until `what` (or 10 s of silence).
fn wait_said(lines: &mpsc::Receiver<String>, early: &mut Vec<String>, what: &str) {
    while let Ok(l) = lines.recv_timeout(Duration::from_secs(10)) {
        early.push(l);
        if early.last().unwrap() == what {
            break;
        }
    }
}

/// Everything the child said: `early` (already received), then the rest until its end. Each
/// line is one write of less than PIPE_BUF bytes, so none is cut short by the kill.
fn read_said(early: Vec<String>, rest: mpsc::Receiver<String>) -> Said {
    let mut said = Said::default();
    for l in early.into_iter().chain(rest) {
        if let Some(id) = l.strip_prefix("Q ") {
            said.queued.push(id.parse().unwrap());
        } else if let Some(id) = l.strip_prefix("D ") {
            said.done.push(id.parse().unwrap());
        } else if l == "compacted" {
            said.compactions += 1;
        } else if l == "opening" {
            said.opening = true;
        }
    }
    said
}

/// What may be in the journal after a kill, given what was there before and what the child
/// said. The protocol (`sync: true`): a push or completion that returned is durable. So every
/// entry said queued and not said done is there, in order; nothing said done is there. The
/// operation in flight at the kill may or may not have reached the file: one entry more (a
/// push not yet said, the newest) or one fewer (a completion not yet said, the oldest).
fn check_kill(before: &[u64], said: &Said, after: &[u64], iteration: usize) {
    let ctx = format!(
        "iteration {iteration}: before {before:?}, queued {:?}, done {:?}, after {after:?}",
        said.queued, said.done
    );
    assert!(after.windows(2).all(|w| w[0] < w[1]), "out of order: {ctx}");
    let done: BTreeSet<u64> = said.done.iter().copied().collect();
    let expect: Vec<u64> = before
        .iter()
        .chain(&said.queued)
        .copied()
        .filter(|i| !done.contains(i))
        .collect();
    for id in after {
        assert!(!done.contains(id), "entry {id} completed but back: {ctx}");
    }
    let missing: Vec<u64> = expect
        .iter()
        .copied()
        .filter(|i| !after.contains(i))
        .collect();
    let extra: Vec<u64> = after
        .iter()
        .copied()
        .filter(|i| !expect.contains(i))
        .collect();
    match missing[..] {
        [] => {}
        [m] => assert_eq!(Some(&m), expect.first(), "lost a queued entry: {ctx}"),
        _ => panic!("lost queued entries {missing:?}: {ctx}"),
    }
    let newest = expect.iter().chain(&said.done).max().copied().unwrap_or(0);
    match extra[..] {
        [] => {}
        [x] => assert!(x > newest, "entry {x} appeared from nowhere: {ctx}"),
        _ => panic!("entries {extra:?} appeared: {ctx}"),
    }
}

/// A child pushing and completing, compacting every few completions, is killed (SIGKILL) 24
/// times, with and without `sync`: a third of the times at a random moment, a third a random
/// 0 to 3 ms after a compaction began (its `.compacting` file appeared), a third 0 to 20 ms
/// after it began to open the outbox (which compacts when due; the previous code rewrote the
/// file in place there). After each kill everything it said was durably queued and not
/// completed is there, in order, intact, and nothing it completed came back.
#[test]
fn sigkill_at_random_moments_of_compaction_loses_nothing() {
    let dir = Dir::new("kill");
    let path = dir.join("outbox.bin");
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let tmp = path.with_file_name("outbox.bin.compacting");
    let mut before: Vec<u64> = Vec::new();
    let (mut compactions, mut mid_compaction, mut torn) = (0, 0, 0);
    for i in 0..24 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let role = if i % 2 == 0 { "churn" } else { "churn-nosync" };
        // One left by the previous kill would be taken for a compaction of this child (whose
        // open would remove it: checked at the end).
        let _ = fs::remove_file(&tmp);
        let (mut child, out) = spawn(role, &path);
        let lines = said_lines(out);
        let mut early = Vec::new();
        match i % 3 {
            0 => std::thread::sleep(Duration::from_millis(150 + seed % 400)),
            1 => {
                // A compaction begins when its file appears, or (the previous code's in-place
                // rewrite) when the journal shrinks.
                let mut size = fs::metadata(&path).map_or(0, |m| m.len());
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline && !tmp.exists() {
                    let now = fs::metadata(&path).map_or(0, |m| m.len());
                    if now < size {
                        break;
                    }
                    size = now;
                    std::thread::sleep(Duration::from_micros(50));
                }
                std::thread::sleep(Duration::from_micros(seed % 3000));
            }
            _ => {
                wait_said(&lines, &mut early, "opening");
                std::thread::sleep(Duration::from_micros(seed % 20_000));
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let said = read_said(early, lines);
        assert!(said.opening, "iteration {i}: the child never started");
        compactions += said.compactions;
        if tmp.exists() {
            mid_compaction += 1;
        }
        // Checked on a copy, so that the next child opens the file as this one left it (and
        // compacts it at open when due: another moment to be killed at).
        let copy = dir.join("after-kill.bin");
        fs::copy(&path, &copy).unwrap();
        let o = Outbox::open(cfg(&copy, false)).unwrap();
        let r = o.open_report().unwrap().clone();
        let after = ids(&o);
        drop(o);
        assert!(!r.is_damaged(), "iteration {i}: {r}");
        torn += r.torn_tail.is_some() as usize;
        check_kill(&before, &said, &after, i);
        check_contents(&copy, 32 << 10);
        before = after;
    }
    eprintln!(
        "{compactions} compactions, {mid_compaction} kills in the middle of one, {torn} torn tails"
    );
    assert!(compactions >= 20, "only {compactions} compactions");
    // Each kill aimed at a compaction lands in one unless it ended within the delay drawn.
    assert!(
        mid_compaction >= 2,
        "only {mid_compaction} kills in the middle of a compaction"
    );
    // The next opener removes a compaction file left by a kill, and the journal is whole.
    fs::write(&tmp, b"half a compaction").unwrap();
    let o = Outbox::open(cfg(&path, false)).unwrap();
    assert_eq!(ids(&o), before);
    assert!(!tmp.exists());
}

// ---- (d) growth --------------------------------------------------------------------------------

/// 20,000 pushes of 1 KiB with 10 entries waiting: the file stays within three times the live
/// data plus 256 KiB at every moment (it grew to 21.4 MB before).
#[test]
fn the_file_stays_within_a_small_multiple_of_the_live_data() {
    let dir = Dir::new("growth");
    let path = dir.join("outbox.bin");
    let o = Outbox::open(cfg(&path, false)).unwrap();
    let kib = vec![0x5a; 1024];
    let record = (13 + 14 + 3 + 1024 + 4) as u64;
    let live = 10 * record;
    let bound = 8 + 3 * live + (256 << 10) + record;
    let mut largest = 0;
    for i in 0..20_000u64 {
        o.push(b"t/x", &kib, 1, false, Duration::ZERO).unwrap();
        if o.len() > 10 {
            let f = o.front(Duration::ZERO).unwrap();
            o.complete(f.id, DeliveryStatus::Delivered).unwrap();
        }
        if i % 50 == 0 || i > 19_990 {
            largest = largest.max(fs::metadata(&path).unwrap().len());
        }
    }
    assert_eq!(o.len(), 10);
    eprintln!("largest file {largest} bytes for {live} live bytes (bound {bound})");
    assert!(
        largest <= bound,
        "the file reached {largest} bytes (bound {bound})"
    );
    assert!(
        largest > 2 * live,
        "it should not compact more often than needed"
    );
    let want = ids(&o);
    assert_eq!(want, (19_991..=20_000).collect::<Vec<_>>());
    drop(o);
    let o = Outbox::open(cfg(&path, false)).unwrap();
    assert_eq!(ids(&o), want);
    // Only the journal: no compaction file or copies left.
    assert_eq!(dir.names(), BTreeSet::from(["outbox.bin".to_string()]));
}

// ---- (e) not a regular file ------------------------------------------------------------------

/// Open in a thread, so that a hang fails the test instead of blocking it.
fn open_within(path: &Path, limit: Duration) -> Result<Outbox, Error> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(Outbox::open(cfg(&p, false)));
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("opening {} hangs", path.display()))
}

#[test]
fn fifos_devices_and_directories_are_refused() {
    let dir = Dir::new("special");
    let fifo = dir.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let link = dir.join("link-to-zero");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let sub = dir.join("a-directory");
    fs::create_dir(&sub).unwrap();
    for (path, what) in [
        (fifo.as_path(), "a FIFO"),
        (Path::new("/dev/zero"), "a character device"),
        (link.as_path(), "a character device"),
        (sub.as_path(), "a directory"),
    ] {
        let t = Instant::now();
        let reason = invalid_reason(open_within(path, Duration::from_secs(10)));
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(
            reason.contains(&path.display().to_string()) && reason.contains(what),
            "{reason}"
        );
        assert!(reason.contains("regular file"), "{reason}");
    }
}

/// A symlink to a regular file is fine, and stays a symlink through compactions (the new file
/// is renamed over the target, not over the link).
#[test]
fn a_symlinked_journal_stays_a_symlink() {
    let dir = Dir::new("link");
    let target = dir.join("real.bin");
    let link = dir.join("outbox.bin");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = Outbox::open(cfg(&link, false)).unwrap();
    for _ in 0..40 {
        let p = o
            .push(b"t", &[1; 64 << 10], 1, false, Duration::ZERO)
            .unwrap();
        o.push(b"keep", b"k", 1, false, Duration::ZERO).unwrap();
        o.complete(p.delivery.id(), DeliveryStatus::Delivered)
            .unwrap();
    }
    drop(o);
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let size = fs::metadata(&target).unwrap().len();
    assert!(size < 40 * (64 << 10), "not compacted: {size} bytes");
    let o = Outbox::open(cfg(&link, false)).unwrap();
    assert_eq!(o.len(), 40);
}

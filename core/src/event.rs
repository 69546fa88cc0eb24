//! What the modem says on its own: received messages, lost connections, boot noise; and the
//! bounded queues that hold them until the host asks.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A message received from the broker (`+CMQTTRXSTART` .. `+CMQTTRXEND`), assembled by length.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The client index (0 or 1) that received it.
    pub client: u8,
    /// The topic, byte for byte (not necessarily UTF-8 when the modem's checkUTF8 is off).
    pub topic: Vec<u8>,
    /// The payload, byte for byte.
    pub payload: Vec<u8>,
}

impl Message {
    /// The topic as text, if it is UTF-8.
    pub fn topic_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.topic).ok()
    }

    /// The topic as text, invalid UTF-8 replaced.
    pub fn topic_lossy(&self) -> String {
        String::from_utf8_lossy(&self.topic).into_owned()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("client", &self.client)
            .field("topic", &String::from_utf8_lossy(&self.topic))
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// An unsolicited event from the modem.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message arrived (only seen here when the client has no message callback and the
    /// modem-level stream is asked for; normally taken with [`crate::Client::recv_timeout`]).
    Message(Message),
    /// `+CMQTTCONNLOST: <client>,<cause>`: 1 socket closed passively, 2 socket reset, 3 network
    /// closed. The client must connect again.
    ConnectionLost { client: u8, cause: u8 },
    /// `+CMQTTNONET` (SIM7672X): the network is gone; the service must be started again.
    NoNetwork,
    /// `+CMQTTPING: <client>,<err>`: some firmware reports a failed keepalive ping.
    PingFailed { client: u8, code: u32 },
    /// The modem (re)booted: `RDY`. Every MQTT state on the modem is lost.
    ModemRestarted,
    /// Other boot noise: `+CPIN: READY`, `SMS DONE`, `PB DONE`, ...
    Boot(String),
    /// Any other unsolicited line, passed through as the modem printed it.
    Unsolicited(String),
    /// Bytes that should have been a received message but did not add up; says what was lost.
    Malformed(String),
    /// A queue was full and `dropped` events were discarded (oldest first).
    Overflow { queue: &'static str, dropped: u64 },
}

impl Event {
    /// Whether this event reports a change of the connection's health (connection lost, no
    /// network, modem restarted, ping failed). Such events are never evicted by data events
    /// from a full queue; and the change itself is recorded first in [`crate::Health`].
    pub fn is_control(&self) -> bool {
        matches!(
            self,
            Event::ConnectionLost { .. }
                | Event::NoNetwork
                | Event::ModemRestarted
                | Event::PingFailed { .. }
        )
    }

    /// A stable, short name for the kind of event (for logs, bindings and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Message(_) => "message",
            Event::ConnectionLost { .. } => "connection_lost",
            Event::NoNetwork => "no_network",
            Event::PingFailed { .. } => "ping_failed",
            Event::ModemRestarted => "modem_restarted",
            Event::Boot(_) => "boot",
            Event::Unsolicited(_) => "unsolicited",
            Event::Malformed(_) => "malformed",
            Event::Overflow { .. } => "overflow",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Message(m) => write!(
                f,
                "message on client {} topic {:?} ({} bytes)",
                m.client,
                m.topic_lossy(),
                m.payload.len()
            ),
            Event::ConnectionLost { client, cause } => {
                let why = match cause {
                    1 => "socket closed passively",
                    2 => "socket reset",
                    3 => "network closed",
                    _ => "unknown cause",
                };
                write!(f, "client {client}: connection lost (cause {cause}: {why})")
            }
            Event::NoNetwork => {
                f.write_str("no network (+CMQTTNONET): the service must be started again")
            }
            Event::PingFailed { client, code } => {
                write!(f, "client {client}: keepalive ping failed (code {code})")
            }
            Event::ModemRestarted => f.write_str("the modem restarted (RDY)"),
            Event::Boot(s) => write!(f, "boot: {s}"),
            Event::Unsolicited(s) => write!(f, "unsolicited: {s}"),
            Event::Malformed(s) => write!(f, "malformed: {s}"),
            Event::Overflow { queue, dropped } => {
                write!(f, "{queue} full: {dropped} dropped so far")
            }
        }
    }
}

/// The largest capacity any queue takes (event and message queues, the callback queue, the
/// supervisor's queues, the outbox): 1,048,576 items. A larger capacity is refused with
/// [`crate::Error::InvalidArgument`] rather than risking an allocation that aborts the process.
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;

/// Checks a queue capacity: `1..=MAX_QUEUE_CAPACITY`; `param` names it in the error.
pub(crate) fn check_capacity(param: &'static str, capacity: usize) -> crate::Result<()> {
    if (1..=MAX_QUEUE_CAPACITY).contains(&capacity) {
        Ok(())
    } else {
        Err(crate::Error::invalid(
            param,
            format!("must be 1..={MAX_QUEUE_CAPACITY}, got {capacity}"),
        ))
    }
}

/// What a full queue does with a new item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Discard the oldest item (the default: the newest state matters most).
    #[default]
    DropOldest,
    /// Discard the new item.
    DropNewest,
}

/// A bounded FIFO that never blocks its producer (the reader thread must keep draining the
/// port). Overflows are counted and reported by the caller; nothing disappears unnoticed.
pub(crate) struct Queue<T> {
    name: &'static str,
    inner: Mutex<QueueState<T>>,
    ready: Condvar,
    /// Also woken on every push: the dispatch thread, which drains the queue into a callback.
    wake: Option<std::sync::Arc<crate::dispatch::Wake>>,
}

struct QueueState<T> {
    items: VecDeque<T>,
    /// Bumped by [`Queue::poke`]: something a waiter may care about besides items happened.
    pokes: u64,
    capacity: usize,
    policy: OverflowPolicy,
    dropped: u64,
    closed: bool,
}

/// What [`Queue::pop_until_poked`] found.
pub(crate) enum Popped<T> {
    Item(T),
    Timeout,
    Poked,
    Closed,
}

/// What `push` did.
pub(crate) enum Pushed {
    Queued,
    /// The queue was full: one item was dropped; total dropped so far.
    Dropped(u64),
}

impl<T> Queue<T> {
    pub(crate) fn new(name: &'static str, capacity: usize, policy: OverflowPolicy) -> Self {
        Queue {
            name,
            inner: Mutex::new(QueueState {
                items: VecDeque::new(),
                pokes: 0,
                // Callers check capacities (`check_capacity`); this is the last line of defence.
                capacity: capacity.clamp(1, MAX_QUEUE_CAPACITY),
                policy,
                dropped: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            wake: None,
        }
    }

    /// Wake `w` too on every push (see [`crate::dispatch`]).
    pub(crate) fn with_wake(mut self, w: std::sync::Arc<crate::dispatch::Wake>) -> Self {
        self.wake = Some(w);
        self
    }

    /// Pushes into a queue holding items that may be dropped (`evictable`: data) and items
    /// that must not be lost to them (control). When full: a new data item is dropped
    /// (drop-newest) or the oldest data item makes room (drop-oldest); a new control item
    /// makes room by dropping the oldest data item, and when there is none the queue grows past
    /// its capacity by at most as many items again, then drops its oldest.
    pub(crate) fn push_keep(&self, item: T, evictable: impl Fn(&T) -> bool) -> Pushed {
        let mut st = self.inner.lock();
        let mut result = Pushed::Queued;
        if st.items.len() >= st.capacity {
            let data = evictable(&item);
            st.dropped += 1;
            result = Pushed::Dropped(st.dropped);
            if data && st.policy == OverflowPolicy::DropNewest {
                return result;
            }
            if let Some(pos) = st.items.iter().position(&evictable) {
                st.items.remove(pos);
            } else if data {
                // Only control items queued: the new data item goes.
                return result;
            } else if st.items.len() >= st.capacity.saturating_mul(2) {
                st.items.pop_front();
            } else {
                st.dropped -= 1;
                result = Pushed::Queued;
            }
        }
        st.items.push_back(item);
        drop(st);
        self.ready.notify_one();
        if let Some(w) = &self.wake {
            w.notify();
        }
        result
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn push(&self, item: T) -> Pushed {
        let mut st = self.inner.lock();
        let result = if st.items.len() >= st.capacity {
            st.dropped += 1;
            match st.policy {
                OverflowPolicy::DropOldest => {
                    st.items.pop_front();
                    st.items.push_back(item);
                }
                OverflowPolicy::DropNewest => drop(item),
            }
            Pushed::Dropped(st.dropped)
        } else {
            st.items.push_back(item);
            Pushed::Queued
        };
        drop(st);
        self.ready.notify_one();
        if let Some(w) = &self.wake {
            w.notify();
        }
        result
    }

    /// Waits up to `timeout` (`None`: forever) for an item. `None` on timeout or when closed and empty.
    pub(crate) fn pop(&self, timeout: Option<Duration>) -> Option<T> {
        let deadline = timeout.map(crate::time::deadline_after);
        let mut st = self.inner.lock();
        loop {
            if let Some(item) = st.items.pop_front() {
                return Some(item);
            }
            if st.closed {
                return None;
            }
            match deadline {
                Some(d) => {
                    if self.ready.wait_until(&mut st, d).timed_out() {
                        return st.items.pop_front();
                    }
                }
                None => self.ready.wait(&mut st),
            }
        }
    }

    /// How many pokes so far (see [`Queue::pop_until_poked`]).
    pub(crate) fn pokes(&self) -> u64 {
        self.inner.lock().pokes
    }

    /// Wakes every waiter of [`Queue::pop_until_poked`] (a loss, an interrupt).
    pub(crate) fn poke(&self) {
        self.inner.lock().pokes += 1;
        self.ready.notify_all();
    }

    /// Waits until `deadline` for an item, or until the queue is poked after `since` (see
    /// [`Queue::pokes`]) or closed.
    pub(crate) fn pop_until_poked(&self, deadline: Instant, since: u64) -> Popped<T> {
        let mut st = self.inner.lock();
        loop {
            if let Some(item) = st.items.pop_front() {
                return Popped::Item(item);
            }
            if st.closed {
                return Popped::Closed;
            }
            if st.pokes != since {
                return Popped::Poked;
            }
            if self.ready.wait_until(&mut st, deadline).timed_out() {
                return st.items.pop_front().map_or(Popped::Timeout, Popped::Item);
            }
        }
    }

    pub(crate) fn try_pop(&self) -> Option<T> {
        self.inner.lock().items.pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.lock().items.len()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.inner.lock().dropped
    }

    pub(crate) fn close(&self) {
        self.inner.lock().closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_drops_oldest_and_counts() {
        let q = Queue::new("t", 2, OverflowPolicy::DropOldest);
        q.push(1);
        q.push(2);
        assert!(matches!(q.push(3), Pushed::Dropped(1)));
        assert_eq!(q.pop(Some(Duration::ZERO)), Some(2));
        assert_eq!(q.pop(Some(Duration::ZERO)), Some(3));
        assert_eq!(q.pop(Some(Duration::from_millis(5))), None);
        assert_eq!(q.dropped(), 1);
        let q = Queue::new("t", 1, OverflowPolicy::DropNewest);
        q.push(1);
        q.push(2);
        assert_eq!(q.try_pop(), Some(1));
        q.close();
        assert_eq!(q.pop(None), None);
    }
}

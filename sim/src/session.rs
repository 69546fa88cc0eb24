//! What the engine and an MQTT session say to each other: the events a
//! session reports, the commands the engine sends it and the engine's handle
//! on a live session. The sessions themselves (real or loopback) are in
//! `mqtt`.

use std::time::Duration;

use tokio::sync::mpsc as tmpsc;

/// Events a session sends to the engine.
#[derive(Debug)]
pub(crate) enum SessionEvent {
    /// Outcome of a connect attempt started with [`crate::mqtt::spawn_connect`].
    Connected {
        op: u64,
        result: Result<SessionHandle, u8>,
    },
    /// An operation finished with `<err>` `code`.
    Done { op: u64, code: u8 },
    /// A PUBLISH arrived from the broker.
    Rx {
        session: u64,
        topic: Vec<u8>,
        payload: Vec<u8>,
    },
    /// The connection died (reported once).
    Lost { session: u64, cause: u8 },
}

#[derive(Debug)]
pub(crate) enum SessCmd {
    Publish {
        op: u64,
        topic: Vec<u8>,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
        dup: bool,
        timeout: Duration,
    },
    Subscribe {
        op: u64,
        topics: Vec<(Vec<u8>, u8)>,
        timeout: Duration,
    },
    Unsubscribe {
        op: u64,
        topics: Vec<Vec<u8>>,
        timeout: Duration,
    },
    Disconnect {
        op: u64,
    },
    Abort,
}

/// The engine's handle on a live session.
#[derive(Debug)]
pub(crate) struct SessionHandle {
    id: u64,
    tx: tmpsc::UnboundedSender<SessCmd>,
}

impl SessionHandle {
    pub fn new(id: u64, tx: tmpsc::UnboundedSender<SessCmd>) -> SessionHandle {
        SessionHandle { id, tx }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sends a command; `false` if the session task is gone.
    fn send(&self, c: SessCmd) -> bool {
        self.tx.send(c).is_ok()
    }

    #[allow(clippy::too_many_arguments)]
    pub fn publish(
        &self,
        op: u64,
        topic: Vec<u8>,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
        dup: bool,
        timeout: Duration,
    ) -> bool {
        self.send(SessCmd::Publish {
            op,
            topic,
            payload,
            qos,
            retain,
            dup,
            timeout,
        })
    }

    pub fn subscribe(&self, op: u64, topics: Vec<(Vec<u8>, u8)>, timeout: Duration) -> bool {
        self.send(SessCmd::Subscribe {
            op,
            topics,
            timeout,
        })
    }

    pub fn unsubscribe(&self, op: u64, topics: Vec<Vec<u8>>, timeout: Duration) -> bool {
        self.send(SessCmd::Unsubscribe {
            op,
            topics,
            timeout,
        })
    }

    pub fn disconnect(&self, op: u64) -> bool {
        self.send(SessCmd::Disconnect { op })
    }

    /// Closes the socket abruptly (no DISCONNECT: the broker sends the
    /// will). Silent: no `Lost` event.
    pub fn abort(&self) {
        let _ = self.tx.send(SessCmd::Abort);
    }
}

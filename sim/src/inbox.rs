//! What reaches the engine thread: host bytes, session events and faults,
//! all through one channel of [`Inbox`] messages.

use crate::session::SessionEvent;

/// Messages to the engine thread.
#[derive(Debug)]
pub(crate) enum Inbox {
    Bytes(Vec<u8>),
    Session(SessionEvent),
    Fault(FaultCmd),
    Shutdown,
}

/// What the engine is asked to do by a [`crate::Faults`] call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FaultCmd {
    DropConnection {
        client: u8,
        cause: u8,
    },
    LoseNetwork,
    Reset,
    /// The port vanished (USB unplugged): everything is lost, input is
    /// ignored until [`FaultCmd::Replugged`].
    Vanish,
    /// A new port is there: the modem boots (echo on, `RDY`).
    Replugged,
}

//! Errors: the modem's 36 `<err>` codes, and everything else that can go wrong on the way.

use std::fmt;
use std::time::Duration;

/// The result codes `<err>` 0..35 of the spec (A7600 manual chapter 2.2.1, SIM7672X note appendix 4.1).
///
/// `0` (success) is never turned into an error; it is listed so that every code the modem can
/// print has a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum ErrCode {
    Success = 0,
    Failed = 1,
    BadUtf8 = 2,
    SockConnectFail = 3,
    SockCreateFail = 4,
    SockCloseFail = 5,
    MessageReceiveFail = 6,
    NetworkOpenFail = 7,
    NetworkCloseFail = 8,
    NetworkNotOpened = 9,
    ClientIndexError = 10,
    NoConnection = 11,
    InvalidParameter = 12,
    NotSupported = 13,
    ClientBusy = 14,
    RequireConnectionFail = 15,
    SockSendingFail = 16,
    Timeout = 17,
    TopicEmpty = 18,
    ClientUsed = 19,
    ClientNotAcquired = 20,
    ClientNotReleased = 21,
    LengthOutOfRange = 22,
    NetworkIsOpened = 23,
    PacketFail = 24,
    DnsError = 25,
    SocketClosedByServer = 26,
    RefusedProtocolVersion = 27,
    RefusedIdentifier = 28,
    RefusedServerUnavailable = 29,
    RefusedBadCredentials = 30,
    RefusedNotAuthorized = 31,
    HandshakeFail = 32,
    CertificateNotSet = 33,
    OpenSessionFailed = 34,
    DisconnectFailed = 35,
}

const ALL_CODES: [ErrCode; 36] = {
    use ErrCode::*;
    [
        Success,
        Failed,
        BadUtf8,
        SockConnectFail,
        SockCreateFail,
        SockCloseFail,
        MessageReceiveFail,
        NetworkOpenFail,
        NetworkCloseFail,
        NetworkNotOpened,
        ClientIndexError,
        NoConnection,
        InvalidParameter,
        NotSupported,
        ClientBusy,
        RequireConnectionFail,
        SockSendingFail,
        Timeout,
        TopicEmpty,
        ClientUsed,
        ClientNotAcquired,
        ClientNotReleased,
        LengthOutOfRange,
        NetworkIsOpened,
        PacketFail,
        DnsError,
        SocketClosedByServer,
        RefusedProtocolVersion,
        RefusedIdentifier,
        RefusedServerUnavailable,
        RefusedBadCredentials,
        RefusedNotAuthorized,
        HandshakeFail,
        CertificateNotSet,
        OpenSessionFailed,
        DisconnectFailed,
    ]
};

impl ErrCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrCode; 36] = ALL_CODES;

    /// The code for a number the modem printed, if it is one of the spec's.
    pub fn from_code(code: u32) -> Option<ErrCode> {
        ALL_CODES.get(code as usize).copied()
    }

    /// The numeric value printed by the modem.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The manual's meaning, verbatim.
    pub fn meaning(self) -> &'static str {
        use ErrCode::*;
        match self {
            Success => "operation succeeded",
            Failed => "failed",
            BadUtf8 => "bad UTF-8 string",
            SockConnectFail => "sock connect fail",
            SockCreateFail => "sock create fail",
            SockCloseFail => "sock close fail",
            MessageReceiveFail => "message receive fail",
            NetworkOpenFail => "network open fail",
            NetworkCloseFail => "network close fail",
            NetworkNotOpened => "network not opened",
            ClientIndexError => "client index error",
            NoConnection => "no connection",
            InvalidParameter => "invalid parameter",
            NotSupported => "not supported operation",
            ClientBusy => "client is busy",
            RequireConnectionFail => "require connection fail",
            SockSendingFail => "sock sending fail",
            Timeout => "timeout",
            TopicEmpty => "topic is empty",
            ClientUsed => "client is used",
            ClientNotAcquired => "client not acquired",
            ClientNotReleased => "client not released",
            LengthOutOfRange => "length out of range",
            NetworkIsOpened => "network is opened",
            PacketFail => "packet fail",
            DnsError => "DNS error",
            SocketClosedByServer => "socket is closed by server",
            RefusedProtocolVersion => "connection refused: unaccepted protocol version",
            RefusedIdentifier => "connection refused: identifier rejected",
            RefusedServerUnavailable => "connection refused: server unavailable",
            RefusedBadCredentials => "connection refused: bad user name or password",
            RefusedNotAuthorized => "connection refused: not authorized",
            HandshakeFail => "handshake fail",
            CertificateNotSet => "not set certificate",
            OpenSessionFailed => "Open session failed",
            DisconnectFailed => "Disconnect from server failed",
        }
    }

    /// What a user can do about it, where that is known (from the manuals and field reports).
    pub fn hint(self) -> Option<&'static str> {
        use ErrCode::*;
        Some(match self {
            BadUtf8 => "the modem checks UTF-8: send valid UTF-8 or turn the check off with CMQTTCFG=\"checkUTF8\",<idx>,0",
            SockConnectFail | RequireConnectionFail => "check the server address and port, and that the broker is reachable from the modem's network",
            NetworkNotOpened | NetworkOpenFail => "the PDP context is not up: check AT+CGREG?/AT+CGACT? and start the service with AT+CMQTTSTART",
            ClientIndexError => "client indexes are 0 and 1",
            NoConnection => "the client is not connected: connect first (or reconnect after +CMQTTCONNLOST)",
            ClientBusy => "another operation is in progress on this client: retry after it finishes",
            Timeout => "the server did not answer in time: check the link, or raise the timeout",
            TopicEmpty => "set a topic before publishing",
            ClientUsed => "this client index is already acquired (or connected): release it, or use the other index",
            ClientNotAcquired => "acquire the client first (AT+CMQTTACCQ)",
            ClientNotReleased => "disconnect and release the clients before stopping the service",
            LengthOutOfRange => "the length is outside what this model accepts (see the model profile)",
            NetworkIsOpened => "the MQTT service is already started: treat it as started, or REL + STOP + START to reset it",
            DnsError => "the modem could not resolve the host name: check the APN/DNS or use an IP address",
            SocketClosedByServer => "the broker closed the socket: check credentials, client id uniqueness and broker policy",
            RefusedProtocolVersion => "the broker wants another MQTT version: set version 4 (MQTT 3.1.1)",
            RefusedIdentifier => "the broker rejected the client id: use another one",
            RefusedBadCredentials => "check the user name and password",
            RefusedNotAuthorized => "the broker refused this client: check its ACL/policy",
            HandshakeFail => "TLS handshake failed: check the CA certificate, authmode, SSL version, the clock (ignorelocaltime) and SNI",
            CertificateNotSet => "configure the certificates of the SSL context (AT+CSSLCFG cacert/clientcert/clientkey)",
            OpenSessionFailed => "the TLS/TCP session could not be opened: check the server, port and SSL context (enableSNI often helps)",
            _ => return None,
        })
    }
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.meaning())
    }
}

/// A failure reported by the modem: its `<err>` code when it gave one, otherwise what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemFailure {
    /// `+CMQTTxxx: <idx>,<err>` with a code from the spec's table.
    Code(ErrCode),
    /// A result code outside the spec's table.
    UnknownCode(u32),
    /// A bare `ERROR`.
    Error,
    /// `+CME ERROR: <n>` (or its verbose text form).
    Cme(String),
    /// `+CMS ERROR: <n>`.
    Cms(String),
}

impl ModemFailure {
    /// The modem's numeric `<err>` code, if it gave one.
    pub fn code(&self) -> Option<u32> {
        match self {
            ModemFailure::Code(c) => Some(c.code() as u32),
            ModemFailure::UnknownCode(n) => Some(*n),
            _ => None,
        }
    }
}

impl fmt::Display for ModemFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModemFailure::Code(c) => {
                write!(f, "error {c}")?;
                if let Some(h) = c.hint() {
                    write!(f, "; {h}")?;
                }
                Ok(())
            }
            ModemFailure::UnknownCode(n) => write!(f, "error {n} (not in the spec's table)"),
            ModemFailure::Error => f.write_str("ERROR"),
            ModemFailure::Cme(s) => write!(f, "+CME ERROR: {s}"),
            ModemFailure::Cms(s) => write!(f, "+CMS ERROR: {s}"),
        }
    }
}

/// Everything a cmqtt call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument is outside what the spec (or this model) allows. Nothing was sent.
    #[error("invalid argument {param}: {reason}")]
    InvalidArgument {
        /// The parameter's name as the spec writes it.
        param: &'static str,
        /// What is allowed, e.g. "must be 1..=1024 bytes, got 1500".
        reason: String,
    },
    /// The modem answered the command with a failure.
    #[error("{command} failed: {failure}")]
    Modem {
        /// The command, e.g. `AT+CMQTTCONNECT`.
        command: &'static str,
        /// What the modem said.
        failure: ModemFailure,
    },
    /// No (complete) answer within the time allowed.
    #[error("{command}: no answer within {:.1} s; the modem may be busy, stalled or gone (check the port and baud rate)", timeout.as_secs_f64())]
    Timeout {
        /// The command that was waiting.
        command: &'static str,
        /// How long it waited.
        timeout: Duration,
    },
    /// The modem answered something the library could not make sense of.
    #[error("{command}: unexpected answer {answer:?}")]
    Protocol {
        /// The command in progress.
        command: &'static str,
        /// What arrived.
        answer: String,
    },
    /// The serial port (or stream) failed.
    #[error("serial I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The serial port could not be opened or configured.
    #[error("serial port {path}: {source}")]
    Serial {
        /// The device path.
        path: String,
        /// The underlying error.
        #[source]
        source: serialport::Error,
    },
    /// The session is closed (the reader stopped: port gone, or the modem was dropped).
    #[error("the modem session is closed ({0}); open the modem again")]
    Closed(String),
    /// The client is not connected to a broker.
    #[error("client {client} is not connected; call connect() first")]
    NotConnected {
        /// The client index.
        client: u8,
    },
    /// The broker connection was lost while the call was waiting.
    #[error("client {client}: connection lost (cause {cause}); connect again")]
    ConnectionLost {
        /// The client index.
        client: u8,
        /// The `<cause>` of `+CMQTTCONNLOST` (1 socket closed, 2 reset, 3 network closed).
        cause: u8,
    },
    /// The modem does not support this command or form (for this model).
    #[error("{0} is not supported by this model")]
    Unsupported(&'static str),
    /// The outbox is full and its policy is [`crate::WhenFull::Error`] (or a blocking publish
    /// found no room in time, or was called from a callback, where it must not block).
    #[error("the outbox is full ({waiting} waiting); wait for deliveries (Supervisor::flush), raise its capacity, or choose WhenFull::DropOldest")]
    OutboxFull {
        /// Publishes waiting in it.
        waiting: usize,
    },
    /// A queued publish will never be delivered: failed (its reason says why) or dropped from a
    /// full outbox.
    #[error("publish {id} was {status}: {reason}")]
    DeliveryFailed {
        /// The [`crate::Delivery::id`].
        id: u64,
        /// `"failed"` or `"dropped"`.
        status: &'static str,
        /// Why.
        reason: String,
    },
}

/// What kind of failure an [`Error`] is: the one mapping from which C result codes, Python
/// exceptions and CLI exit codes are all derived (never from the message text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A bad argument or configuration; nothing was sent.
    InvalidArgument,
    /// The modem refused the command (its `<err>` code, if any, is in [`Error::modem_code`]).
    Modem,
    /// No answer in time.
    Timeout,
    /// The modem answered something unexpected.
    Protocol,
    /// The serial port (or stream) failed, or could not be opened.
    Serial,
    /// The session (or the supervisor, or the outbox) is closed.
    Closed,
    /// The client is not connected.
    NotConnected,
    /// The broker connection was lost while waiting.
    ConnectionLost,
    /// Not supported by this model.
    Unsupported,
    /// The outbox is full.
    OutboxFull,
    /// A queued publish was failed or dropped.
    DeliveryFailed,
}

impl ErrorKind {
    /// A stable, short name (`"invalid_argument"`, `"outbox_full"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Modem => "modem",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Serial => "serial",
            ErrorKind::Closed => "closed",
            ErrorKind::NotConnected => "not_connected",
            ErrorKind::ConnectionLost => "connection_lost",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::OutboxFull => "outbox_full",
            ErrorKind::DeliveryFailed => "delivery_failed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Error {
    /// What kind of failure this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Error::Modem { .. } => ErrorKind::Modem,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Protocol { .. } => ErrorKind::Protocol,
            Error::Io(_) | Error::Serial { .. } => ErrorKind::Serial,
            Error::Closed(_) => ErrorKind::Closed,
            Error::NotConnected { .. } => ErrorKind::NotConnected,
            Error::ConnectionLost { .. } => ErrorKind::ConnectionLost,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::OutboxFull { .. } => ErrorKind::OutboxFull,
            Error::DeliveryFailed { .. } => ErrorKind::DeliveryFailed,
        }
    }

    /// The modem's numeric `<err>` code, if the failure carried one.
    pub fn modem_code(&self) -> Option<u32> {
        match self {
            Error::Modem { failure, .. } => failure.code(),
            _ => None,
        }
    }

    /// The spec's error code, if the failure was one of the 36.
    pub fn err_code(&self) -> Option<ErrCode> {
        match self {
            Error::Modem {
                failure: ModemFailure::Code(c),
                ..
            } => Some(*c),
            _ => None,
        }
    }

    pub(crate) fn invalid(param: &'static str, reason: impl Into<String>) -> Error {
        Error::InvalidArgument {
            param,
            reason: reason.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_dense() {
        for (i, c) in ErrCode::ALL.iter().enumerate() {
            assert_eq!(c.code() as usize, i);
            assert_eq!(ErrCode::from_code(i as u32), Some(*c));
            assert!(!c.meaning().is_empty());
        }
        assert_eq!(ErrCode::from_code(36), None);
        assert_eq!(ErrCode::from_code(u32::MAX), None);
    }

    #[test]
    fn display_names_code_meaning_and_hint() {
        let e = Error::Modem {
            command: "AT+CMQTTSTART",
            failure: ModemFailure::Code(ErrCode::NetworkIsOpened),
        };
        let s = e.to_string();
        assert!(s.contains("AT+CMQTTSTART"), "{s}");
        assert!(s.contains("23 (network is opened)"), "{s}");
        assert!(s.contains("already started"), "{s}");
        assert_eq!(e.modem_code(), Some(23));
    }
}

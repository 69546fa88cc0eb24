//! `cmqtt_result`, its text, the thread-local "last error", and the guard every export runs in.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use cmqtt_core::{ErrCode, Error, ModemFailure};

/// The result of every fallible function. Values are stable (never renumbered) and grouped:
///
/// | range   | group |
/// |---------|-------|
/// | 0       | success |
/// | 1..99   | arguments and usage: nothing was sent to the modem |
/// | 100..199| transport: the serial port or the session |
/// | 200..299| AT layer: what the exchange with the modem came to |
/// | 301..335| the modem's own `<err>` code N (1..35) as 300 + N, one to one (`<err>` 0 is success: `CMQTT_OK`) |
/// | 400..499| the supervisor's outbox and delivery tickets |
/// | 900..   | internal |
///
/// On a failure, `cmqtt_last_error_message()` has the full text and `cmqtt_last_modem_code()` the
/// modem's numeric code (if it gave one).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cmqtt_result {
    /// Success.
    CMQTT_OK = 0,

    /// A required pointer argument is NULL.
    CMQTT_ERR_NULL_ARGUMENT = 1,
    /// A `const char *` argument is not valid UTF-8.
    CMQTT_ERR_INVALID_UTF8 = 2,
    /// An argument is outside what the spec or the model allows (QoS 3, a topic over 1024 bytes,
    /// client index 2, a `"` in a client id, ...). Nothing was sent.
    CMQTT_ERR_INVALID_ARGUMENT = 3,
    /// The function may not be called from this callback (see the contract at the top).
    CMQTT_ERR_IN_CALLBACK = 4,

    /// The serial port could not be opened or configured.
    CMQTT_ERR_SERIAL = 100,
    /// Reading or writing the port failed.
    CMQTT_ERR_IO = 101,
    /// The session is closed (port gone, EOF, or the modem handle was freed): open the modem again.
    CMQTT_ERR_CLOSED = 102,

    /// No (complete) answer in time; from `cmqtt_client_receive`: no message in time.
    CMQTT_ERR_TIMEOUT = 200,
    /// The modem answered something that makes no sense for the command.
    CMQTT_ERR_PROTOCOL = 201,
    /// The modem answered a bare `ERROR`.
    CMQTT_ERR_MODEM_ERROR = 202,
    /// The modem answered `+CME ERROR: <n>`.
    CMQTT_ERR_CME_ERROR = 203,
    /// The modem answered `+CMS ERROR: <n>`.
    CMQTT_ERR_CMS_ERROR = 204,
    /// The modem reported an `<err>` code outside the spec's table (see `cmqtt_last_modem_code`).
    CMQTT_ERR_MODEM_CODE_UNKNOWN = 205,
    /// The client is not connected to a broker (connect first).
    CMQTT_ERR_NOT_CONNECTED = 206,
    /// The broker connection was lost while the call waited (`+CMQTTCONNLOST`).
    CMQTT_ERR_CONNECTION_LOST = 207,
    /// This model does not support the command or form.
    CMQTT_ERR_UNSUPPORTED = 208,

    /// Modem `<err>` 1: failed.
    CMQTT_ERR_FAILED = 301,
    /// Modem `<err>` 2: bad UTF-8 string.
    CMQTT_ERR_BAD_UTF8 = 302,
    /// Modem `<err>` 3: sock connect fail.
    CMQTT_ERR_SOCK_CONNECT_FAIL = 303,
    /// Modem `<err>` 4: sock create fail.
    CMQTT_ERR_SOCK_CREATE_FAIL = 304,
    /// Modem `<err>` 5: sock close fail.
    CMQTT_ERR_SOCK_CLOSE_FAIL = 305,
    /// Modem `<err>` 6: message receive fail.
    CMQTT_ERR_MESSAGE_RECEIVE_FAIL = 306,
    /// Modem `<err>` 7: network open fail.
    CMQTT_ERR_NETWORK_OPEN_FAIL = 307,
    /// Modem `<err>` 8: network close fail.
    CMQTT_ERR_NETWORK_CLOSE_FAIL = 308,
    /// Modem `<err>` 9: network not opened.
    CMQTT_ERR_NETWORK_NOT_OPENED = 309,
    /// Modem `<err>` 10: client index error.
    CMQTT_ERR_CLIENT_INDEX_ERROR = 310,
    /// Modem `<err>` 11: no connection.
    CMQTT_ERR_NO_CONNECTION = 311,
    /// Modem `<err>` 12: invalid parameter.
    CMQTT_ERR_INVALID_PARAMETER = 312,
    /// Modem `<err>` 13: not supported operation.
    CMQTT_ERR_NOT_SUPPORTED = 313,
    /// Modem `<err>` 14: client is busy.
    CMQTT_ERR_CLIENT_BUSY = 314,
    /// Modem `<err>` 15: require connection fail.
    CMQTT_ERR_REQUIRE_CONNECTION_FAIL = 315,
    /// Modem `<err>` 16: sock sending fail.
    CMQTT_ERR_SOCK_SENDING_FAIL = 316,
    /// Modem `<err>` 17: timeout (the modem's own, e.g. no PUBACK from the broker).
    CMQTT_ERR_MODEM_TIMEOUT = 317,
    /// Modem `<err>` 18: topic is empty.
    CMQTT_ERR_TOPIC_EMPTY = 318,
    /// Modem `<err>` 19: client is used.
    CMQTT_ERR_CLIENT_USED = 319,
    /// Modem `<err>` 20: client not acquired.
    CMQTT_ERR_CLIENT_NOT_ACQUIRED = 320,
    /// Modem `<err>` 21: client not released.
    CMQTT_ERR_CLIENT_NOT_RELEASED = 321,
    /// Modem `<err>` 22: length out of range.
    CMQTT_ERR_LENGTH_OUT_OF_RANGE = 322,
    /// Modem `<err>` 23: network is opened.
    CMQTT_ERR_NETWORK_IS_OPENED = 323,
    /// Modem `<err>` 24: packet fail.
    CMQTT_ERR_PACKET_FAIL = 324,
    /// Modem `<err>` 25: DNS error.
    CMQTT_ERR_DNS_ERROR = 325,
    /// Modem `<err>` 26: socket is closed by server.
    CMQTT_ERR_SOCKET_CLOSED_BY_SERVER = 326,
    /// Modem `<err>` 27: connection refused: unaccepted protocol version.
    CMQTT_ERR_REFUSED_PROTOCOL_VERSION = 327,
    /// Modem `<err>` 28: connection refused: identifier rejected.
    CMQTT_ERR_REFUSED_IDENTIFIER = 328,
    /// Modem `<err>` 29: connection refused: server unavailable.
    CMQTT_ERR_REFUSED_SERVER_UNAVAILABLE = 329,
    /// Modem `<err>` 30: connection refused: bad user name or password.
    CMQTT_ERR_REFUSED_BAD_CREDENTIALS = 330,
    /// Modem `<err>` 31: connection refused: not authorized.
    CMQTT_ERR_REFUSED_NOT_AUTHORIZED = 331,
    /// Modem `<err>` 32: handshake fail.
    CMQTT_ERR_HANDSHAKE_FAIL = 332,
    /// Modem `<err>` 33: not set certificate.
    CMQTT_ERR_CERTIFICATE_NOT_SET = 333,
    /// Modem `<err>` 34: open session failed.
    CMQTT_ERR_OPEN_SESSION_FAILED = 334,
    /// Modem `<err>` 35: disconnect from server failed.
    CMQTT_ERR_DISCONNECT_FAILED = 335,

    /// The supervisor's outbox is full and its policy is `CMQTT_WHEN_FULL_ERROR`: nothing was
    /// queued. Wait for deliveries (`cmqtt_supervisor_flush`) or raise `outbox_capacity`.
    CMQTT_ERR_OUTBOX_FULL = 400,
    /// The publish will never be sent: the modem refused it repeatedly, or a QoS 0 publish was
    /// cut off by a connection loss. `cmqtt_last_error_message()` says why.
    CMQTT_ERR_DELIVERY_FAILED = 401,
    /// The publish was dropped from a full outbox to make room (`CMQTT_WHEN_FULL_DROP_OLDEST`).
    CMQTT_ERR_DELIVERY_DROPPED = 402,

    /// A bug in the library: a Rust panic was caught at the boundary (the handle stays usable
    /// as far as the library knows; please report it).
    CMQTT_ERR_PANIC = 900,
    /// An error kind this version of the C API does not know (from a newer core).
    CMQTT_ERR_INTERNAL = 901,
}

use cmqtt_result::*;

/// A `cmqtt_result` as received from C: any 32-bit value (the header names it `cmqtt_result`).
pub type cmqtt_result_raw = u32;

/// Every value, in numeric order (tests and `cmqtt_result_str`).
pub(crate) const ALL_RESULTS: &[cmqtt_result] = &[
    CMQTT_OK,
    CMQTT_ERR_NULL_ARGUMENT,
    CMQTT_ERR_INVALID_UTF8,
    CMQTT_ERR_INVALID_ARGUMENT,
    CMQTT_ERR_IN_CALLBACK,
    CMQTT_ERR_SERIAL,
    CMQTT_ERR_IO,
    CMQTT_ERR_CLOSED,
    CMQTT_ERR_TIMEOUT,
    CMQTT_ERR_PROTOCOL,
    CMQTT_ERR_MODEM_ERROR,
    CMQTT_ERR_CME_ERROR,
    CMQTT_ERR_CMS_ERROR,
    CMQTT_ERR_MODEM_CODE_UNKNOWN,
    CMQTT_ERR_NOT_CONNECTED,
    CMQTT_ERR_CONNECTION_LOST,
    CMQTT_ERR_UNSUPPORTED,
    CMQTT_ERR_FAILED,
    CMQTT_ERR_BAD_UTF8,
    CMQTT_ERR_SOCK_CONNECT_FAIL,
    CMQTT_ERR_SOCK_CREATE_FAIL,
    CMQTT_ERR_SOCK_CLOSE_FAIL,
    CMQTT_ERR_MESSAGE_RECEIVE_FAIL,
    CMQTT_ERR_NETWORK_OPEN_FAIL,
    CMQTT_ERR_NETWORK_CLOSE_FAIL,
    CMQTT_ERR_NETWORK_NOT_OPENED,
    CMQTT_ERR_CLIENT_INDEX_ERROR,
    CMQTT_ERR_NO_CONNECTION,
    CMQTT_ERR_INVALID_PARAMETER,
    CMQTT_ERR_NOT_SUPPORTED,
    CMQTT_ERR_CLIENT_BUSY,
    CMQTT_ERR_REQUIRE_CONNECTION_FAIL,
    CMQTT_ERR_SOCK_SENDING_FAIL,
    CMQTT_ERR_MODEM_TIMEOUT,
    CMQTT_ERR_TOPIC_EMPTY,
    CMQTT_ERR_CLIENT_USED,
    CMQTT_ERR_CLIENT_NOT_ACQUIRED,
    CMQTT_ERR_CLIENT_NOT_RELEASED,
    CMQTT_ERR_LENGTH_OUT_OF_RANGE,
    CMQTT_ERR_NETWORK_IS_OPENED,
    CMQTT_ERR_PACKET_FAIL,
    CMQTT_ERR_DNS_ERROR,
    CMQTT_ERR_SOCKET_CLOSED_BY_SERVER,
    CMQTT_ERR_REFUSED_PROTOCOL_VERSION,
    CMQTT_ERR_REFUSED_IDENTIFIER,
    CMQTT_ERR_REFUSED_SERVER_UNAVAILABLE,
    CMQTT_ERR_REFUSED_BAD_CREDENTIALS,
    CMQTT_ERR_REFUSED_NOT_AUTHORIZED,
    CMQTT_ERR_HANDSHAKE_FAIL,
    CMQTT_ERR_CERTIFICATE_NOT_SET,
    CMQTT_ERR_OPEN_SESSION_FAILED,
    CMQTT_ERR_DISCONNECT_FAILED,
    CMQTT_ERR_OUTBOX_FULL,
    CMQTT_ERR_DELIVERY_FAILED,
    CMQTT_ERR_DELIVERY_DROPPED,
    CMQTT_ERR_PANIC,
    CMQTT_ERR_INTERNAL,
];

/// The first modem `<err>` value: `300 + code`.
pub(crate) const MODEM_CODE_BASE: u32 = 300;

impl cmqtt_result {
    /// The value for a raw number, if it is one.
    pub(crate) fn from_raw(v: u32) -> Option<cmqtt_result> {
        ALL_RESULTS.iter().copied().find(|r| *r as u32 == v)
    }

    /// The value for the modem's `<err>` code 1..=35.
    pub(crate) fn from_modem_code(code: ErrCode) -> Option<cmqtt_result> {
        let v = MODEM_CODE_BASE + u32::from(code.code());
        if code.code() == 0 {
            return None;
        }
        cmqtt_result::from_raw(v)
    }

    /// The value of a core error.
    pub(crate) fn of_error(e: &Error) -> cmqtt_result {
        match e {
            Error::InvalidArgument { .. } => CMQTT_ERR_INVALID_ARGUMENT,
            Error::Modem { failure, .. } => match failure {
                ModemFailure::Code(c) => {
                    cmqtt_result::from_modem_code(*c).unwrap_or(CMQTT_ERR_MODEM_CODE_UNKNOWN)
                }
                ModemFailure::UnknownCode(_) => CMQTT_ERR_MODEM_CODE_UNKNOWN,
                ModemFailure::Error => CMQTT_ERR_MODEM_ERROR,
                ModemFailure::Cme(_) => CMQTT_ERR_CME_ERROR,
                ModemFailure::Cms(_) => CMQTT_ERR_CMS_ERROR,
            },
            Error::Timeout { .. } => CMQTT_ERR_TIMEOUT,
            Error::Protocol { .. } => CMQTT_ERR_PROTOCOL,
            Error::Io(_) => CMQTT_ERR_IO,
            Error::Serial { .. } => CMQTT_ERR_SERIAL,
            Error::Closed(_) => CMQTT_ERR_CLOSED,
            Error::NotConnected { .. } => CMQTT_ERR_NOT_CONNECTED,
            Error::ConnectionLost { .. } => CMQTT_ERR_CONNECTION_LOST,
            Error::Unsupported(_) => CMQTT_ERR_UNSUPPORTED,
            Error::OutboxFull { .. } => CMQTT_ERR_OUTBOX_FULL,
            Error::DeliveryFailed {
                status: "dropped", ..
            } => CMQTT_ERR_DELIVERY_DROPPED,
            Error::DeliveryFailed { .. } => CMQTT_ERR_DELIVERY_FAILED,
            _ => CMQTT_ERR_INTERNAL,
        }
    }

    /// Static, NUL-terminated text.
    pub(crate) fn text(self) -> &'static CStr {
        match self {
            CMQTT_OK => c"success",
            CMQTT_ERR_NULL_ARGUMENT => c"a required pointer argument is NULL",
            CMQTT_ERR_INVALID_UTF8 => c"a string argument is not valid UTF-8",
            CMQTT_ERR_INVALID_ARGUMENT => {
                c"invalid argument (outside what the spec or the model allows); nothing was sent"
            }
            CMQTT_ERR_IN_CALLBACK => {
                c"not allowed from this callback (see the contract in cmqtt.h)"
            }
            CMQTT_ERR_SERIAL => c"the serial port could not be opened or configured",
            CMQTT_ERR_IO => c"serial I/O error",
            CMQTT_ERR_CLOSED => c"the modem session is closed; open the modem again",
            CMQTT_ERR_TIMEOUT => c"timeout: no answer (or no message) in time",
            CMQTT_ERR_PROTOCOL => c"unexpected answer from the modem",
            CMQTT_ERR_MODEM_ERROR => c"the modem answered ERROR",
            CMQTT_ERR_CME_ERROR => c"the modem answered +CME ERROR",
            CMQTT_ERR_CMS_ERROR => c"the modem answered +CMS ERROR",
            CMQTT_ERR_MODEM_CODE_UNKNOWN => {
                c"the modem reported an error code outside the spec's table"
            }
            CMQTT_ERR_NOT_CONNECTED => c"the client is not connected; connect first",
            CMQTT_ERR_CONNECTION_LOST => c"the broker connection was lost; connect again",
            CMQTT_ERR_UNSUPPORTED => c"not supported by this modem model",
            CMQTT_ERR_OUTBOX_FULL => {
                c"the outbox is full (policy CMQTT_WHEN_FULL_ERROR); nothing was queued"
            }
            CMQTT_ERR_DELIVERY_FAILED => c"the publish failed and will never be sent",
            CMQTT_ERR_DELIVERY_DROPPED => {
                c"the publish was dropped from a full outbox (policy CMQTT_WHEN_FULL_DROP_OLDEST)"
            }
            CMQTT_ERR_PANIC => {
                c"internal error: a panic was caught at the C boundary (a bug; please report it)"
            }
            CMQTT_ERR_INTERNAL => c"internal error: an error kind unknown to this C API version",
            other => modem_code_text(other as u32 - MODEM_CODE_BASE),
        }
    }
}

/// "modem error N: <the manual's meaning>", built once from the core's table.
fn modem_code_text(code: u32) -> &'static CStr {
    static TABLE: OnceLock<Vec<CString>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        ErrCode::ALL
            .iter()
            .map(|c| {
                CString::new(format!("modem error {}: {}", c.code(), c.meaning()))
                    .unwrap_or_default()
            })
            .collect()
    });
    table
        .get(code as usize)
        .map(|s| s.as_c_str())
        .unwrap_or(c"unknown cmqtt_result value")
}

// ---- failures and the last error ------------------------------------------------------------

/// Why an export failed.
pub(crate) enum Fail {
    /// Checked in this crate (NULL, UTF-8, a value that does not fit the core's type...).
    Arg(cmqtt_result, String),
    /// From the core.
    Core(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::Core(e)
    }
}

pub(crate) type FfiResult<T> = Result<T, Fail>;

pub(crate) fn fail<T>(r: cmqtt_result, msg: impl Into<String>) -> FfiResult<T> {
    Err(Fail::Arg(r, msg.into()))
}

struct LastError {
    message: CString,
    modem_code: Option<u32>,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

fn set_last_error(message: String, modem_code: Option<u32>) {
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|l| {
        *l.borrow_mut() = Some(LastError {
            message,
            modem_code,
        })
    });
}

/// Records a failure as this thread's last error and returns its code.
pub(crate) fn record(f: Fail) -> cmqtt_result {
    match f {
        Fail::Arg(r, msg) => {
            set_last_error(msg, None);
            r
        }
        Fail::Core(e) => {
            let r = cmqtt_result::of_error(&e);
            set_last_error(e.to_string(), e.modem_code());
            r
        }
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Runs an export's body: panics become `CMQTT_ERR_PANIC`, failures are recorded.
pub(crate) fn guard(f: impl FnOnce() -> FfiResult<()>) -> cmqtt_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CMQTT_OK,
        Ok(Err(e)) => record(e),
        Err(p) => {
            set_last_error(
                format!(
                    "internal error (panic caught at the C boundary): {}",
                    panic_text(&*p)
                ),
                None,
            );
            CMQTT_ERR_PANIC
        }
    }
}

/// Runs an export that returns a value rather than a result: a panic gives `default`.
pub(crate) fn guard_value<T>(default: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(default)
}

// ---- exports ----------------------------------------------------------------------------------

/// Static text for a result (any value: unknown ones give "unknown cmqtt_result value").
/// Never NULL; never freed.
#[no_mangle]
pub extern "C" fn cmqtt_result_str(result: cmqtt_result_raw) -> *const c_char {
    guard_value(c"unknown cmqtt_result value".as_ptr(), || {
        cmqtt_result::from_raw(result)
            .map(|r| r.text())
            .unwrap_or(c"unknown cmqtt_result value")
            .as_ptr()
    })
}

/// The modem's numeric `<err>` (or unknown) code of the last failed call on this thread, or -1
/// when that failure carried none (or no call failed yet).
#[no_mangle]
pub extern "C" fn cmqtt_last_modem_code() -> i32 {
    guard_value(-1, || {
        LAST_ERROR.with(|l| {
            l.borrow()
                .as_ref()
                .and_then(|e| e.modem_code)
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(-1)
        })
    })
}

/// The full human text of the last failed call on this thread ("" when none): the command,
/// what the modem said and, where known, what to do about it. Passwords never appear in it.
/// Never NULL. Owned by the library: valid until the next failing call on this thread.
#[no_mangle]
pub extern "C" fn cmqtt_last_error_message() -> *const c_char {
    guard_value(c"".as_ptr(), || {
        LAST_ERROR.with(|l| {
            l.borrow()
                .as_ref()
                .map(|e| e.message.as_ptr())
                .unwrap_or(c"".as_ptr())
        })
    })
}

/// The library version, e.g. "0.1.0". Static; never NULL.
#[no_mangle]
pub extern "C" fn cmqtt_version() -> *const c_char {
    static V: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    guard_value(c"unknown".as_ptr(), || V.as_ptr())
}

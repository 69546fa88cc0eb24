//! Why a command failed, and the exit code a script sees for it.
//!
//! Every failure is printed as exactly one line on stderr, `cmqtt: <what went wrong>`, and
//! mapped to one of the codes below (documented in `cmqtt --help` and cli/README.md).

use std::fmt;

use cmqtt::Error;

/// Exit codes. Keep in sync with `EXIT_CODES_HELP` and cli/README.md.
pub mod code {
    /// Success.
    pub const OK: u8 = 0;
    /// Any other failure: an input file that cannot be read; any failure of `cmqtt demo`.
    pub const FAILURE: u8 = 1;
    /// Bad arguments: from the command-line parser, or values the modem would refuse (checked
    /// before anything is sent).
    pub const USAGE: u8 = 2;
    /// The serial port cannot be opened (or failed while in use).
    pub const PORT: u8 = 3;
    /// The modem does not answer (no `OK` to `AT`, a command timed out, or the session closed).
    pub const NO_ANSWER: u8 = 4;
    /// The modem answered a command with an error (its `<err>` code is printed).
    pub const MODEM: u8 = 5;
    /// The broker connection was lost (`+CMQTTCONNLOST`, the modem restarted or lost the
    /// network).
    pub const LOST: u8 = 6;
    /// The modem could not connect to the broker: refused (bad credentials, not authorised,
    /// client id rejected), unreachable, DNS or TLS failure. The `<err>` code is printed.
    pub const CONNECT: u8 = 7;
    /// `cmqtt sub -W`: the time ran out before `-C` messages arrived (mosquitto_sub's 27).
    pub const TIMEOUT: u8 = 27;
    /// Stopped by SIGINT or SIGTERM (after cleaning up the modem).
    pub const INTERRUPTED: u8 = 130;
}

/// The exit-code table shown at the end of `cmqtt --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
    0    success
    1    other failure (unreadable input file; any failure of `cmqtt demo`)
    2    usage error: bad or missing arguments, or a value the modem would refuse
    3    the serial port cannot be opened (no such device, permission denied, busy)
    4    the modem does not answer (no OK to AT, a command timed out, port closed)
    5    the modem answered an AT command with an error (its <err> code is printed)
    6    the broker connection was lost (+CMQTTCONNLOST, modem restart, no network)
    7    the modem could not connect to the broker: refused (e.g. error 30, bad user
         name or password), unreachable, DNS or TLS failure (<err> code printed)
    27   sub -W: the time ran out before -C messages arrived (like mosquitto_sub)
    130  interrupted by SIGINT/SIGTERM (the modem is cleaned up first)
Every failure prints exactly one line on stderr: `cmqtt: <what went wrong>`.";

/// A failure: exit code and the one line to print.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: one_line(message.into()),
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(code::USAGE, message)
    }

    pub fn other(message: impl Into<String>) -> Failure {
        Failure::new(code::FAILURE, message)
    }

    /// A library error from the connect step (see [`classify_connect`]).
    pub fn connect(context: impl fmt::Display, e: Error) -> Failure {
        Failure::new(classify_connect(&e), format!("{context}: {e}"))
    }

    /// A library error, with what we were doing when it happened (`"connecting to tcp://..."`).
    pub fn cmqtt(context: impl fmt::Display, e: Error) -> Failure {
        Failure::new(classify(&e), format!("{context}: {e}"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exit code of a library error.
pub fn classify(e: &Error) -> u8 {
    use cmqtt::ErrorKind as K;
    match e.kind() {
        K::InvalidArgument => code::USAGE,
        K::Serial => code::PORT,
        K::Timeout | K::Closed => code::NO_ANSWER,
        K::Modem | K::Protocol | K::Unsupported => code::MODEM,
        K::ConnectionLost | K::NotConnected => code::LOST,
        _ => code::FAILURE,
    }
}

/// [`classify`] for the connect step: the modem refusing the connection is its own exit code.
pub fn classify_connect(e: &Error) -> u8 {
    match e.kind() {
        cmqtt::ErrorKind::Modem => code::CONNECT,
        _ => classify(e),
    }
}

/// Messages are printed on one line: newlines inside become spaces.
fn one_line(s: String) -> String {
    if s.contains(['\n', '\r']) {
        s.split(['\n', '\r'])
            .filter(|p| !p.trim().is_empty())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn codes_of_library_errors() {
        let refused = Error::Modem {
            command: "AT+CMQTTCONNECT",
            failure: cmqtt::ModemFailure::Code(cmqtt::ErrCode::RefusedBadCredentials),
        };
        assert_eq!(classify_connect(&refused), code::CONNECT);
        assert_eq!(classify(&refused), code::MODEM);
        let f = Failure::connect("connecting to tcp://h:1883", refused);
        assert!(f.message.contains("error 30"), "{f}");
        let other = Error::Modem {
            command: "AT+CMQTTSTART",
            failure: cmqtt::ModemFailure::Error,
        };
        assert_eq!(classify(&other), code::MODEM);
        let t = Error::Timeout {
            command: "AT",
            timeout: Duration::from_secs(1),
        };
        assert_eq!(classify(&t), code::NO_ANSWER);
        assert_eq!(
            classify(&Error::ConnectionLost {
                client: 0,
                cause: 1
            }),
            code::LOST
        );
    }

    #[test]
    fn messages_are_one_line() {
        let f = Failure::other("a\nb\r\n c");
        assert_eq!(f.message, "a b c");
    }
}

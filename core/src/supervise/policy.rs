//! The supervisor's decisions, as pure functions: what broke, what a loss destroyed, how long to
//! wait, what an error means for the publish that met it. The actor in [`super`] only carries
//! them out; everything here is unit-tested without a modem.

use std::time::Duration;

use crate::error::{ErrCode, Error};
use crate::health::Health;

use super::{Backoff, Loss};

/// What broke between two health records of the same session (`before` taken when the
/// connection was being established, `now` later), for client `index`. The biggest loss wins:
/// a closed port over a restart over a network loss over a connection loss.
pub fn loss_between(before: &Health, now: &Health, index: u8) -> Option<Loss> {
    let i = index as usize & 1;
    if let Some(r) = &now.closed {
        return Some(Loss::Port(r.clone()));
    }
    if now.restarts > before.restarts {
        return Some(Loss::ModemRestart);
    }
    if now.no_network > before.no_network {
        return Some(Loss::Network);
    }
    if now.losses[i] > before.losses[i] {
        return Some(Loss::Connection {
            cause: now.last_cause[i].unwrap_or(0),
        });
    }
    None
}

/// What a loss destroyed, from the port up: each layer must be rebuilt from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// The port is gone or unusable: reopen it (everything above goes too).
    pub session: bool,
    /// The MQTT service must be stopped and started again (`+CMQTTNONET`).
    pub service: bool,
    /// The modem no longer has our client (acquire again; nothing to release).
    pub client: bool,
    /// The broker connection is gone (connect again, with the will and SSL context the modem
    /// cleared, and subscribe again).
    pub connection: bool,
}

/// See [`Damage`]. An unresponsive modem is checked with `AT` by the caller: when it answers,
/// only the client is rebuilt.
pub fn destroyed(loss: &Loss) -> Damage {
    let all = Damage {
        session: true,
        service: true,
        client: true,
        connection: true,
    };
    match loss {
        Loss::Connection { .. } => Damage {
            session: false,
            service: false,
            client: false,
            connection: true,
        },
        Loss::Network => Damage {
            session: false,
            service: true,
            client: true,
            connection: true,
        },
        Loss::ModemRestart | Loss::Unresponsive(_) => Damage {
            session: false,
            ..all
        },
        Loss::Port(_) => all,
    }
}

/// How bad a loss is (a bigger one reported at the same time wins).
pub fn rank(l: &Loss) -> u8 {
    match l {
        Loss::Connection { .. } => 1,
        Loss::Network => 2,
        Loss::ModemRestart => 3,
        Loss::Unresponsive(_) => 4,
        Loss::Port(_) => 5,
    }
}

/// Whether an error says the connection (or the port, or the modem) is gone, rather than that
/// this one request was refused.
pub fn is_connection_error(e: &Error) -> bool {
    match e {
        Error::NotConnected { .. }
        | Error::ConnectionLost { .. }
        | Error::Closed(_)
        | Error::Io(_)
        | Error::Serial { .. }
        | Error::Timeout { .. } => true,
        Error::Modem { .. } => {
            matches!(
                e.err_code(),
                Some(
                    ErrCode::NoConnection
                        | ErrCode::SockConnectFail
                        | ErrCode::SockSendingFail
                        | ErrCode::SocketClosedByServer
                        | ErrCode::MessageReceiveFail
                        | ErrCode::Timeout
                        | ErrCode::NetworkNotOpened
                        | ErrCode::ClientNotAcquired
                        | ErrCode::ClientBusy
                )
            ) || e.modem_code().is_none()
        }
        _ => false,
    }
}

/// The loss an error stands for (when the modem itself reported nothing more precise).
pub fn classify(e: &Error) -> Loss {
    match e {
        Error::Closed(r) => Loss::Port(r.clone()),
        Error::Io(err) => Loss::Port(err.to_string()),
        Error::Serial { source, .. } => Loss::Port(source.to_string()),
        Error::Timeout { command, .. } => Loss::Unresponsive(format!("{command} timed out")),
        Error::ConnectionLost { cause, .. } => Loss::Connection { cause: *cause },
        Error::Modem { .. } if e.err_code() == Some(ErrCode::NetworkNotOpened) => Loss::Network,
        Error::Modem { .. } if e.err_code() == Some(ErrCode::ClientNotAcquired) => {
            Loss::ModemRestart
        }
        _ => Loss::Connection { cause: 0 },
    }
}

/// Whether the broker may have dropped the connection *because of* the publish in flight (a
/// topic or payload its policy refuses, a packet over its size limit): then the publish is
/// charged with a send failure, so a poisonous entry cannot block the outbox forever. Port
/// failures and timeouts are not its fault.
pub fn blames_publish(e: &Error) -> bool {
    match e {
        Error::ConnectionLost { .. } => true,
        Error::Modem { .. } => matches!(
            e.err_code(),
            Some(
                ErrCode::SockSendingFail
                    | ErrCode::SocketClosedByServer
                    | ErrCode::MessageReceiveFail
                    | ErrCode::PacketFail
            )
        ),
        _ => false,
    }
}

/// What to do with the outbox entry a publish attempt was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    /// It was sent: complete it.
    Delivered,
    /// It will never be sent: fail it with this reason, go on with the next.
    Fail(String),
    /// Try it again after this pause (the connection is fine).
    Retry(Duration),
    /// The connection is gone: restore it; fail the entry first when `fail` says so.
    Reconnect { fail: Option<String> },
}

/// Decides about one publish attempt. `failures` counts this entry's failures including this
/// one (when the error is charged to it; see [`charged`]); `max_failures` is
/// [`super::SupervisorConfig::max_send_failures`].
pub fn after_send(
    result: &Result<(), Error>,
    qos: u8,
    failures: u32,
    max_failures: u32,
) -> SendDecision {
    let e = match result {
        Ok(()) => return SendDecision::Delivered,
        Err(e) => e,
    };
    let max = max_failures.max(1);
    if matches!(e, Error::InvalidArgument { .. } | Error::Unsupported(_)) {
        return SendDecision::Fail(e.to_string());
    }
    if is_connection_error(e) {
        let fail = if qos == 0 {
            // At most once: a QoS 0 publish cut off mid-way is not sent again.
            Some(format!("QoS 0 publish interrupted ({e}); not retried"))
        } else if blames_publish(e) && failures >= max {
            Some(format!(
                "the broker dropped the connection {failures} times while this publish was being sent (last: {e}); given up, as it is probably refused (topic or payload against the broker's policy or size limit)"
            ))
        } else {
            None
        };
        return SendDecision::Reconnect { fail };
    }
    if failures >= max {
        SendDecision::Fail(format!("gave up after {failures} failures: {e}"))
    } else {
        SendDecision::Retry(Duration::from_millis(100).saturating_mul(failures.max(1)))
    }
}

/// Whether a failed publish counts as a failure of its entry (see [`after_send`]).
pub fn charged(e: &Error) -> bool {
    !is_connection_error(e) || blames_publish(e)
}

/// Whether a connection that lasted `up` was stable: then the backoff starts again from its
/// first step after the next loss. A connection that drops sooner (a broker that kicks us for
/// a duplicate client id, a refused publish) keeps the backoff growing.
pub fn stable(up: Duration, backoff: &Backoff) -> bool {
    up >= backoff.max.max(Duration::from_secs(10))
}

/// Whether a subscribe error is the broker (or modem) refusing this filter, as opposed to the
/// connection failing: a refused filter is reported and dropped, never retried forever. A
/// modem failure while the client is `still_connected` is a refusal (a SUBACK with a failure
/// code is reported with an `<err>` code, which alone does not tell it from a lost socket).
pub fn refused_filter(e: &Error, still_connected: bool) -> bool {
    match e {
        Error::Modem { .. } if still_connected => true,
        e => !is_connection_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ModemFailure;

    fn h() -> Health {
        Health::default()
    }

    fn modem(code: ErrCode) -> Error {
        Error::Modem {
            command: "AT+CMQTTPUB",
            failure: ModemFailure::Code(code),
        }
    }

    #[test]
    fn every_loss_kind_is_found_and_the_biggest_wins() {
        let before = h();
        assert_eq!(loss_between(&before, &before, 0), None);
        let mut now = h();
        now.losses = [0, 1];
        now.last_cause = [None, Some(1)];
        assert_eq!(
            loss_between(&before, &now, 0),
            None,
            "client 1's loss is not ours"
        );
        assert_eq!(
            loss_between(&before, &now, 1),
            Some(Loss::Connection { cause: 1 })
        );
        now.no_network = 1;
        assert_eq!(loss_between(&before, &now, 1), Some(Loss::Network));
        now.restarts = 1;
        assert_eq!(loss_between(&before, &now, 1), Some(Loss::ModemRestart));
        now.closed = Some("EOF".into());
        assert_eq!(
            loss_between(&before, &now, 1),
            Some(Loss::Port("EOF".into()))
        );
        // Losses before the mark are history.
        let mut before = h();
        before.losses = [3, 0];
        let mut now = before.clone();
        now.seq = 9;
        assert_eq!(loss_between(&before, &now, 0), None);
        assert!(rank(&Loss::Port(String::new())) > rank(&Loss::Unresponsive(String::new())));
        assert!(rank(&Loss::ModemRestart) > rank(&Loss::Network));
        assert!(rank(&Loss::Network) > rank(&Loss::Connection { cause: 1 }));
    }

    #[test]
    fn what_each_loss_destroys() {
        let c = destroyed(&Loss::Connection { cause: 2 });
        assert!(c.connection && !c.client && !c.service && !c.session);
        let n = destroyed(&Loss::Network);
        assert!(n.connection && n.client && n.service && !n.session);
        let r = destroyed(&Loss::ModemRestart);
        assert!(r.client && r.service && !r.session);
        let u = destroyed(&Loss::Unresponsive("x".into()));
        assert!(u.client && !u.session);
        let p = destroyed(&Loss::Port("gone".into()));
        assert!(p.session && p.client);
    }

    #[test]
    fn errors_classify() {
        assert_eq!(
            classify(&Error::Closed("eof".into())),
            Loss::Port("eof".into())
        );
        assert!(matches!(
            classify(&Error::Timeout {
                command: "AT",
                timeout: Duration::from_secs(1)
            }),
            Loss::Unresponsive(_)
        ));
        assert_eq!(
            classify(&Error::ConnectionLost {
                client: 0,
                cause: 1
            }),
            Loss::Connection { cause: 1 }
        );
        assert_eq!(classify(&modem(ErrCode::NetworkNotOpened)), Loss::Network);
        assert_eq!(
            classify(&modem(ErrCode::ClientNotAcquired)),
            Loss::ModemRestart
        );
        assert!(is_connection_error(&modem(ErrCode::NoConnection)));
        assert!(!is_connection_error(&modem(ErrCode::TopicEmpty)));
        assert!(!is_connection_error(&Error::invalid("topic", "x")));
    }

    #[test]
    fn a_publish_that_keeps_dropping_the_connection_is_given_up() {
        let lost = Err(Error::ConnectionLost {
            client: 0,
            cause: 1,
        });
        assert!(charged(lost.as_ref().unwrap_err()));
        assert_eq!(
            after_send(&lost, 1, 1, 3),
            SendDecision::Reconnect { fail: None }
        );
        match after_send(&lost, 1, 3, 3) {
            SendDecision::Reconnect { fail: Some(why) } => {
                assert!(why.contains("3 times"), "{why}")
            }
            d => panic!("{d:?}"),
        }
        // QoS 0 is never sent twice.
        assert!(matches!(
            after_send(&lost, 0, 1, 3),
            SendDecision::Reconnect { fail: Some(_) }
        ));
        // A port failure is not the publish's fault: never charged, never failed for it.
        let port = Err(Error::Closed("EOF".into()));
        assert!(!charged(port.as_ref().unwrap_err()));
        assert_eq!(
            after_send(&port, 2, 0, 3),
            SendDecision::Reconnect { fail: None }
        );
    }

    #[test]
    fn refused_publishes_retry_then_fail_and_bad_arguments_fail_at_once() {
        let refused = Err(modem(ErrCode::TopicEmpty));
        assert_eq!(
            after_send(&refused, 1, 1, 3),
            SendDecision::Retry(Duration::from_millis(100))
        );
        assert!(matches!(
            after_send(&refused, 1, 3, 3),
            SendDecision::Fail(_)
        ));
        let bad = Err(Error::invalid("topic", "no wildcards"));
        assert!(matches!(after_send(&bad, 1, 1, 5), SendDecision::Fail(_)));
        assert_eq!(after_send(&Ok(()), 1, 0, 5), SendDecision::Delivered);
    }

    #[test]
    fn backoff_restarts_only_after_a_stable_connection() {
        let b = Backoff::default();
        assert!(!stable(Duration::from_millis(80), &b));
        assert!(!stable(Duration::from_secs(5), &b));
        assert!(stable(Duration::from_secs(61), &b));
        assert!(refused_filter(&modem(ErrCode::Failed), false));
        assert!(refused_filter(&modem(ErrCode::MessageReceiveFail), true));
        assert!(!refused_filter(&modem(ErrCode::MessageReceiveFail), false));
        assert!(!refused_filter(
            &Error::ConnectionLost {
                client: 0,
                cause: 1
            },
            true
        ));
    }
}

//! MQTT's quality of service, as a type.

use std::fmt;

use crate::error::Error;

/// The three MQTT delivery guarantees. Every call that takes a QoS takes this or a plain `u8`
/// (`impl Into<u8>`), checked to be 0..=2 before a byte is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum QoS {
    /// 0: sent once, no acknowledgement; lost if the connection drops meanwhile.
    #[default]
    AtMostOnce = 0,
    /// 1: acknowledged (PUBACK); may arrive twice after a reconnect.
    AtLeastOnce = 1,
    /// 2: acknowledged in two steps (PUBREC/PUBCOMP); arrives once.
    ExactlyOnce = 2,
}

impl From<QoS> for u8 {
    fn from(q: QoS) -> u8 {
        q as u8
    }
}

impl TryFrom<u8> for QoS {
    type Error = Error;

    fn try_from(v: u8) -> Result<QoS, Error> {
        match v {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            2 => Ok(QoS::ExactlyOnce),
            v => Err(Error::InvalidArgument {
                param: "qos",
                reason: format!("must be 0, 1 or 2, got {v}"),
            }),
        }
    }
}

impl fmt::Display for QoS {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            QoS::AtMostOnce => "at most once",
            QoS::AtLeastOnce => "at least once",
            QoS::ExactlyOnce => "exactly once",
        };
        write!(f, "{} ({name})", *self as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_3() {
        for q in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            assert_eq!(QoS::try_from(u8::from(q)).unwrap(), q);
        }
        assert!(QoS::try_from(3).is_err());
        assert_eq!(QoS::AtLeastOnce.to_string(), "1 (at least once)");
    }
}

//! The `<err>` result codes of chapter 2.2.1 (A7600) / appendix 4.1 (SIM7672X).

#![allow(dead_code)]

pub(crate) const OK: u8 = 0;
pub(crate) const FAILED: u8 = 1;
pub(crate) const BAD_UTF8: u8 = 2;
pub(crate) const SOCK_CONNECT_FAIL: u8 = 3;
pub(crate) const SOCK_CREATE_FAIL: u8 = 4;
pub(crate) const SOCK_CLOSE_FAIL: u8 = 5;
pub(crate) const MESSAGE_RECEIVE_FAIL: u8 = 6;
pub(crate) const NETWORK_OPEN_FAIL: u8 = 7;
pub(crate) const NETWORK_CLOSE_FAIL: u8 = 8;
pub(crate) const NETWORK_NOT_OPENED: u8 = 9;
pub(crate) const CLIENT_INDEX_ERROR: u8 = 10;
pub(crate) const NO_CONNECTION: u8 = 11;
pub(crate) const INVALID_PARAMETER: u8 = 12;
pub(crate) const NOT_SUPPORTED: u8 = 13;
pub(crate) const CLIENT_BUSY: u8 = 14;
pub(crate) const REQUIRE_CONNECTION_FAIL: u8 = 15;
pub(crate) const SOCK_SENDING_FAIL: u8 = 16;
pub(crate) const TIMEOUT: u8 = 17;
pub(crate) const TOPIC_EMPTY: u8 = 18;
pub(crate) const CLIENT_USED: u8 = 19;
pub(crate) const CLIENT_NOT_ACQUIRED: u8 = 20;
pub(crate) const CLIENT_NOT_RELEASED: u8 = 21;
pub(crate) const LENGTH_OUT_OF_RANGE: u8 = 22;
pub(crate) const NETWORK_IS_OPENED: u8 = 23;
pub(crate) const PACKET_FAIL: u8 = 24;
pub(crate) const DNS_ERROR: u8 = 25;
pub(crate) const CLOSED_BY_SERVER: u8 = 26;
pub(crate) const REFUSED_PROTOCOL_VERSION: u8 = 27;
pub(crate) const REFUSED_IDENTIFIER: u8 = 28;
pub(crate) const REFUSED_SERVER_UNAVAILABLE: u8 = 29;
pub(crate) const REFUSED_BAD_CREDENTIALS: u8 = 30;
pub(crate) const REFUSED_NOT_AUTHORIZED: u8 = 31;
pub(crate) const HANDSHAKE_FAIL: u8 = 32;
pub(crate) const NOT_SET_CERTIFICATE: u8 = 33;
pub(crate) const OPEN_SESSION_FAILED: u8 = 34;
pub(crate) const DISCONNECT_FAILED: u8 = 35;

/// `+CMQTTCONNLOST` causes.
pub(crate) const LOST_CLOSED_PASSIVELY: u8 = 1;
pub(crate) const LOST_RESET: u8 = 2;
pub(crate) const LOST_NETWORK_CLOSED: u8 = 3;

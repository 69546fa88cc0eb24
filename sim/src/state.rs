//! The modem's state: MQTT service, the two client slots, SSL contexts and
//! the certificate file store.

use std::collections::BTreeMap;

use crate::session::SessionHandle;

/// Number of MQTT client slots (`<client_index>` 0..1).
pub(crate) const CLIENTS: usize = 2;
/// Number of SSL contexts (`<ssl_ctx_index>` 0..9).
pub(crate) const SSL_CONTEXTS: usize = 10;
/// Topics accumulated by `AT+CMQTTSUBTOPIC` / `AT+CMQTTUNSUBTOPIC` per client.
pub(crate) const MAX_PENDING_TOPICS: usize = 16;
/// Largest file `AT+CCERTDOWN` accepts.
pub(crate) const CERT_MAX: usize = 10240;
/// Files the store holds at most.
pub(crate) const MAX_FILES: usize = 20;

/// Per-client `AT+CMQTTCFG` settings (cleared by `AT+CMQTTREL`).
#[derive(Debug, Clone)]
pub(crate) struct ClientCfg {
    pub check_utf8: bool,
    pub optimeout: u32,
    /// MQTT version explicitly configured (3 = 3.1, 4 = 3.1.1).
    pub version: Option<u8>,
}

impl Default for ClientCfg {
    fn default() -> ClientCfg {
        ClientCfg {
            check_utf8: true,
            optimeout: 120,
            version: None,
        }
    }
}

/// What `AT+CMQTTCONNECT?` reports for a connected client.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub server: Vec<u8>,
    pub keepalive: u32,
    pub clean: bool,
    pub username: Option<Vec<u8>>,
    pub password: Option<Vec<u8>>,
}

/// A live MQTT connection of a client slot.
pub(crate) struct Conn {
    pub handle: SessionHandle,
    pub info: ConnInfo,
}

/// One client slot.
#[derive(Default)]
pub(crate) struct Client {
    /// `Some((client_id, server_type))` once acquired.
    pub acquired: Option<(Vec<u8>, u8)>,
    pub cfg: ClientCfg,
    pub ssl_ctx: Option<u8>,
    pub will_topic: Option<Vec<u8>>,
    pub will_msg: Option<(Vec<u8>, u8)>,
    pub pub_topic: Option<Vec<u8>>,
    pub pub_payload: Option<Vec<u8>>,
    pub sub_topics: Vec<(Vec<u8>, u8)>,
    pub unsub_topics: Vec<Vec<u8>>,
    /// Topics subscribed on the current connection (for `AT+CMQTTSUB?`).
    pub subscribed: Vec<Vec<u8>>,
    pub conn: Option<Conn>,
}

impl Client {
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Drops everything but the slot itself (`AT+CMQTTREL`, reset).
    pub fn release(&mut self) {
        if let Some(c) = self.conn.take() {
            c.handle.abort();
        }
        *self = Client::default();
    }
}

/// One `AT+CSSLCFG` context.
#[derive(Debug, Clone)]
pub(crate) struct SslCtx {
    pub sslversion: u8,
    pub authmode: u8,
    pub ignore_local_time: bool,
    pub negotiate_time: u32,
    pub cacert: Option<Vec<u8>>,
    pub clientcert: Option<Vec<u8>>,
    pub clientkey: Option<Vec<u8>>,
    pub password: Option<Vec<u8>>,
    pub enable_sni: bool,
}

impl Default for SslCtx {
    fn default() -> SslCtx {
        SslCtx {
            sslversion: 4,
            authmode: 0,
            ignore_local_time: false,
            negotiate_time: 300,
            cacert: None,
            clientcert: None,
            clientkey: None,
            password: None,
            enable_sni: false,
        }
    }
}

/// Everything a modem remembers.
pub(crate) struct ModemState {
    pub started: bool,
    pub clients: [Client; CLIENTS],
    pub ssl: [SslCtx; SSL_CONTEXTS],
    /// Certificate files (flash: survive resets).
    pub files: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl ModemState {
    pub fn new() -> ModemState {
        ModemState {
            started: false,
            clients: Default::default(),
            ssl: Default::default(),
            files: BTreeMap::new(),
        }
    }
}

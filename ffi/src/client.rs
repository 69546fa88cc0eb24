//! The client handle: acquire, configure, connect, publish, subscribe, receive, callbacks.

use std::collections::VecDeque;
use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmqtt_core::{Client, ClientOptions, ConnectOptions, Error, Message, Modem};

use crate::message::cmqtt_message;
use crate::modem::cmqtt_modem;
use crate::result::cmqtt_result::*;
use crate::result::{cmqtt_result, fail, guard, guard_value, FfiResult};
use crate::util::{
    arg_bytes, arg_out, arg_ref, arg_str, arg_versioned, not_in_callback, not_in_trace, opt_bool,
    opt_num, opt_str, Slot, Userdata,
};

/// An acquired MQTT client of the modem, index 0 or 1 (opaque). Create with
/// `cmqtt_client_acquire`; free with `cmqtt_client_free` (which disconnects if needed and
/// releases the index).
pub struct cmqtt_client {
    client: Client,
    modem: Modem,
    cbs: Arc<ClientCallbacks>,
}

/// Called on the dispatch thread for every message the client receives (while set, messages are
/// not queued for `cmqtt_client_receive`). `msg` is valid during the call only: copy what you
/// keep (or use `cmqtt_message_copy`).
pub type cmqtt_message_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, msg: *const cmqtt_message)>;

/// Called on the dispatch thread when the client's broker connection is lost
/// (`+CMQTTCONNLOST`); `cause`: 1 socket closed passively, 2 socket reset, 3 network closed.
pub type cmqtt_connection_lost_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, client_index: u8, cause: u8)>;

#[derive(Clone, Copy)]
struct Callbacks {
    on_message: cmqtt_message_cb,
    on_connection_lost: cmqtt_connection_lost_cb,
    ud: Userdata,
}

struct ClientCallbacks {
    /// Serialises changes of the callbacks (the core's and the slot's change together).
    config: Mutex<()>,
    slot: Slot<Callbacks>,
    /// Messages that reached the message callback just as it was cleared: they are not lost
    /// but handed out by `cmqtt_client_receive` first.
    stash: Mutex<VecDeque<Message>>,
}

impl ClientCallbacks {
    fn stash(&self) -> std::sync::MutexGuard<'_, VecDeque<Message>> {
        self.stash.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn config(&self) -> std::sync::MutexGuard<'_, ()> {
        self.config.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn new_handle(client: Client, modem: &Modem) -> *mut cmqtt_client {
    Box::into_raw(Box::new(cmqtt_client {
        client,
        modem: modem.clone(),
        cbs: Arc::new(ClientCallbacks {
            config: Mutex::new(()),
            slot: Slot::new(),
            stash: Mutex::new(VecDeque::new()),
        }),
    }))
}

/// Acquires client `index` (0 or 1) with `client_id` (1..128 bytes, no `"`); `tls` selects an
/// SSL/TLS server (configure the SSL context first). On success `*client_out` is the new handle;
/// on failure NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_acquire(
    modem: *mut cmqtt_modem,
    index: u8,
    client_id: *const c_char,
    tls: bool,
    client_out: *mut *mut cmqtt_client,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let out = unsafe { arg_out(client_out, "client_out")? };
        let m = unsafe { arg_ref(modem, "modem")? };
        let id = unsafe { arg_str(client_id, "client_id")? };
        let client = m.modem.client(index, id, tls)?;
        *out = new_handle(client, &m.modem);
        Ok(())
    })
}

/// Options of `cmqtt_client_acquire_with`. Start from `cmqtt_client_options_default()`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cmqtt_client_options {
    /// `sizeof` this struct as the program was built: set by the `_default()` function, so
    /// that later versions of the library can add fields without breaking it. Leave it as
    /// set (a struct embedded in another is covered by the outer one's size).
    pub struct_size: u32,
    /// The client id, 1..128 bytes, no `"` (required).
    pub client_id: *const c_char,
    /// Connect to an SSL/TLS server.
    pub tls: bool,
    /// MQTT version: 3 = 3.1, 4 = 3.1.1; 0 = the modem's default.
    pub version: u8,
    /// Whether the modem checks that topics and messages are UTF-8 (`AT+CMQTTCFG="checkUTF8"`):
    /// 0 or 1; -1 = the modem's default (on).
    pub check_utf8: i32,
    /// The modem's send/receive operation timeout (`AT+CMQTTCFG="optimeout"`), 20..120 s;
    /// 0 = the modem's default.
    pub op_timeout_s: u32,
    /// The SSL context (0..9) for TLS; -1 = the modem's default (the client index).
    pub ssl_ctx: i32,
}

/// Default client options: no client id (set one), plain TCP, the modem's defaults.
#[no_mangle]
pub extern "C" fn cmqtt_client_options_default() -> cmqtt_client_options {
    cmqtt_client_options {
        struct_size: std::mem::size_of::<cmqtt_client_options>() as u32,
        client_id: std::ptr::null(),
        tls: false,
        version: 0,
        check_utf8: -1,
        op_timeout_s: 0,
        ssl_ctx: -1,
    }
}

/// `cmqtt_client_acquire` with options (MQTT version, UTF-8 check, operation timeout, SSL
/// context). If configuring fails, the index is released again and `*client_out` is NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_acquire_with(
    modem: *mut cmqtt_modem,
    index: u8,
    options: *const cmqtt_client_options,
    client_out: *mut *mut cmqtt_client,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let out = unsafe { arg_out(client_out, "client_out")? };
        let m = unsafe { arg_ref(modem, "modem")? };
        let o = unsafe { arg_versioned(options, "options")? };
        let opts = unsafe { client_options(&o, "options->")? };
        let client = m.modem.client_with(index, &opts)?;
        *out = new_handle(client, &m.modem);
        Ok(())
    })
}

/// The core's client options for `o`; `prefix` names the struct in error messages.
pub(crate) unsafe fn client_options(
    o: &cmqtt_client_options,
    prefix: &str,
) -> FfiResult<ClientOptions> {
    let id = unsafe { arg_str(o.client_id, &format!("{prefix}client_id"))? };
    let mut opts = ClientOptions::new(id);
    opts.tls = o.tls;
    opts.version = (o.version != 0).then_some(o.version);
    opts.check_utf8 = opt_bool(o.check_utf8, &format!("{prefix}check_utf8"))?;
    opts.op_timeout = (o.op_timeout_s != 0).then_some(o.op_timeout_s);
    opts.ssl_ctx = opt_num(i64::from(o.ssl_ctx), &format!("{prefix}ssl_ctx"))?;
    Ok(opts)
}

/// Frees the client: removes its callbacks (waiting for a running one to return), disconnects
/// if connected, releases the index (`AT+CMQTTREL`). NULL is a no-op (`CMQTT_OK`). The handle is
/// freed even when disconnecting or releasing fails (the result says so); the exception is a
/// call from a callback, which returns `CMQTT_ERR_IN_CALLBACK` and frees nothing. Freeing twice
/// is undefined behaviour, like free(3).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_free(client: *mut cmqtt_client) -> cmqtt_result {
    guard(|| {
        if client.is_null() {
            return Ok(());
        }
        not_in_callback("cmqtt_client_free")?;
        let c = unsafe { Box::from_raw(client) };
        {
            let _config = c.cbs.config();
            c.client.clear_callbacks();
            c.cbs.slot.replace(None);
        }
        c.cbs.slot.wait_idle();
        let released = if c.modem.closed_reason().is_none() {
            c.client.release()
        } else {
            Ok(())
        };
        drop(c);
        released?;
        Ok(())
    })
}

/// The client's index (0 or 1); -1 when `client` is NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_index(client: *const cmqtt_client) -> i32 {
    guard_value(-1, || {
        unsafe { client.as_ref() }.map_or(-1, |c| i32::from(c.client.index()))
    })
}

/// Whether the client is connected as far as the library knows (connect, disconnect,
/// connection lost, no network and modem restarts update it); false when `client` is NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_is_connected(client: *const cmqtt_client) -> bool {
    guard_value(false, || {
        unsafe { client.as_ref() }.is_some_and(|c| c.client.is_connected())
    })
}

/// The checks of every client call that talks to the modem (not from the trace callback, a
/// non-NULL handle), then `f` on the core client.
fn with_client(
    client: *mut cmqtt_client,
    f: impl FnOnce(&Client) -> cmqtt_core::Result<()>,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let c = unsafe { arg_ref(client, "client")? };
        f(&c.client)?;
        Ok(())
    })
}

// ---- configuration ----------------------------------------------------------------------------

/// `AT+CMQTTCFG="checkUTF8"`: whether the modem checks topics and messages for UTF-8.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_set_check_utf8(
    client: *mut cmqtt_client,
    on: bool,
) -> cmqtt_result {
    with_client(client, |c| c.set_check_utf8(on))
}

/// `AT+CMQTTCFG="optimeout"`: the modem's send/receive operation timeout, 20..120 s.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_set_op_timeout(
    client: *mut cmqtt_client,
    seconds: u32,
) -> cmqtt_result {
    with_client(client, |c| c.set_op_timeout(seconds))
}

/// `AT+CMQTTCFG="version"`: 3 (MQTT 3.1) or 4 (MQTT 3.1.1), on models that set it there
/// (SIM7600 takes it at acquire: use `cmqtt_client_acquire_with`).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_set_version(
    client: *mut cmqtt_client,
    version: u8,
) -> cmqtt_result {
    with_client(client, |c| c.set_version(version))
}

/// `AT+CMQTTSSLCFG`: the SSL context (0..9) this client's TLS connection uses.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_set_ssl_context(
    client: *mut cmqtt_client,
    ssl_ctx: u8,
) -> cmqtt_result {
    with_client(client, |c| c.set_ssl_context(ssl_ctx))
}

/// Sets the will (topic, message bytes, QoS 0..2), sent with the next connect. Both are checked
/// before either is sent.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_set_will(
    client: *mut cmqtt_client,
    topic: *const c_char,
    message: *const u8,
    message_len: usize,
    qos: u8,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let c = unsafe { arg_ref(client, "client")? };
        let topic = unsafe { arg_str(topic, "topic")? };
        let message = unsafe { arg_bytes(message, message_len, "message")? };
        c.client.set_will(topic, message, qos)?;
        Ok(())
    })
}

// ---- connection -------------------------------------------------------------------------------

/// Connects to `server` ("tcp://host:port"; also for TLS, chosen at acquire) with keepalive
/// 1..64800 s; `username`/`password` may be NULL. Waits up to 120 s for the broker. The password
/// never appears in traces or error messages.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_connect(
    client: *mut cmqtt_client,
    server: *const c_char,
    keepalive_s: u16,
    clean_session: bool,
    username: *const c_char,
    password: *const c_char,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let c = unsafe { arg_ref(client, "client")? };
        let server = unsafe { arg_str(server, "server")? };
        let username = unsafe { opt_str(username, "username")? };
        let password = unsafe { opt_str(password, "password")? };
        let mut o = ConnectOptions::new(server);
        o.keepalive = u32::from(keepalive_s);
        o.clean_session = clean_session;
        o.username = username.map(str::to_string);
        o.password = password.map(str::to_string);
        c.client.connect(&o)?;
        Ok(())
    })
}

/// Disconnects (`AT+CMQTTDISC`); `timeout_s` is 0 (the model's default) or 60..180.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_disconnect(
    client: *mut cmqtt_client,
    timeout_s: u32,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let c = unsafe { arg_ref(client, "client")? };
        c.client
            .disconnect(Duration::from_secs(u64::from(timeout_s)))?;
        Ok(())
    })
}

// ---- publish / subscribe ----------------------------------------------------------------------

/// Publishes `payload_len` bytes (any bytes; `payload` may be NULL when `payload_len` is 0) to
/// `topic` with QoS 0..2 and waits for the modem's result: for QoS 1 and 2 that is the broker's
/// acknowledgement. `timeout_s` is the modem's publish timeout, 60..180. Every argument is
/// checked before a byte is sent (`CMQTT_ERR_INVALID_ARGUMENT`); `CMQTT_ERR_NOT_CONNECTED` when
/// the client is not connected.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_publish(
    client: *mut cmqtt_client,
    topic: *const c_char,
    payload: *const u8,
    payload_len: usize,
    qos: u8,
    retain: bool,
    timeout_s: u32,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let c = unsafe { arg_ref(client, "client")? };
        let topic = unsafe { arg_str(topic, "topic")? };
        let payload = unsafe { arg_bytes(payload, payload_len, "payload")? };
        c.client.publish(
            topic,
            payload,
            qos,
            retain,
            Duration::from_secs(u64::from(timeout_s)),
        )?;
        Ok(())
    })
}

/// Subscribes to one topic filter with QoS 0..2.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_subscribe(
    client: *mut cmqtt_client,
    topic: *const c_char,
    qos: u8,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let c = unsafe { arg_ref(client, "client")? };
        let topic = unsafe { arg_str(topic, "topic")? };
        c.client.subscribe(&[(topic, qos)])?;
        Ok(())
    })
}

pub(crate) unsafe fn topic_array<'a>(
    topics: *const *const c_char,
    count: usize,
) -> FfiResult<Vec<&'a str>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if topics.is_null() {
        return fail(CMQTT_ERR_NULL_ARGUMENT, "topics is NULL");
    }
    let ptrs = unsafe { std::slice::from_raw_parts(topics, count) };
    ptrs.iter()
        .enumerate()
        .map(|(i, p)| unsafe { arg_str(*p, &format!("topics[{i}]")) })
        .collect()
}

/// Subscribes to `count` topic filters at once, `topics[i]` with QoS `qos[i]` (one SUBSCRIBE
/// packet where the firmware allows it). `count` must be at least 1.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_subscribe_many(
    client: *mut cmqtt_client,
    topics: *const *const c_char,
    qos: *const u8,
    count: usize,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let c = unsafe { arg_ref(client, "client")? };
        let topics = unsafe { topic_array(topics, count)? };
        let qos = unsafe { arg_bytes(qos, count, "qos")? };
        let pairs: Vec<(&str, u8)> = topics.into_iter().zip(qos.iter().copied()).collect();
        c.client.subscribe(&pairs)?;
        Ok(())
    })
}

/// Unsubscribes from one topic filter.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_unsubscribe(
    client: *mut cmqtt_client,
    topic: *const c_char,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let c = unsafe { arg_ref(client, "client")? };
        let topic = unsafe { arg_str(topic, "topic")? };
        c.client.unsubscribe(&[topic])?;
        Ok(())
    })
}

/// Unsubscribes from `count` (at least 1) topic filters at once.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_unsubscribe_many(
    client: *mut cmqtt_client,
    topics: *const *const c_char,
    count: usize,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let c = unsafe { arg_ref(client, "client")? };
        let topics = unsafe { topic_array(topics, count)? };
        c.client.unsubscribe(&topics)?;
        Ok(())
    })
}

// ---- receiving --------------------------------------------------------------------------------

/// Sets the client's callbacks; either may be NULL. NULL `on_message` means messages are queued
/// for `cmqtt_client_receive` again; both NULL clears everything. When this returns, the
/// previous callbacks are not running (unless this is called from one of them: then the change
/// applies from the next call) and will not be called again, so their userdata may be freed.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_set_callbacks(
    client: *mut cmqtt_client,
    userdata: *mut c_void,
    on_message: cmqtt_message_cb,
    on_connection_lost: cmqtt_connection_lost_cb,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let c = unsafe { arg_ref(client, "client")? };
        // The new callbacks are installed under the config lock; waiting for a running old
        // one happens after it is released (that callback may itself be changing callbacks).
        let config = c.cbs.config();
        if on_message.is_none() {
            c.client.clear_callbacks();
        } else {
            let st = c.cbs.clone();
            c.client.on_message(move |m| {
                let msg = cmqtt_message::new(m);
                let lent = &msg as *const cmqtt_message;
                st.slot.run(lent as usize, |cb| {
                    match cb.and_then(|cb| cb.on_message.map(|f| (f, cb.ud))) {
                        Some((f, ud)) => unsafe { f(ud.ptr(), lent) },
                        None => st.stash().push_back(m.clone()),
                    }
                })
            });
        }
        if on_connection_lost.is_some() {
            let st = c.cbs.clone();
            c.client.on_connection_lost(move |idx, cause| {
                st.slot.run(0, |cb| {
                    if let Some((f, ud)) =
                        cb.and_then(|cb| cb.on_connection_lost.map(|f| (f, cb.ud)))
                    {
                        unsafe { f(ud.ptr(), idx, cause) }
                    }
                })
            });
        }
        let new = (on_message.is_some() || on_connection_lost.is_some()).then_some(Callbacks {
            on_message,
            on_connection_lost,
            ud: Userdata(userdata),
        });
        c.cbs.slot.replace(new);
        drop(config);
        c.cbs.slot.wait_idle();
        Ok(())
    })
}

/// Waits up to `timeout_ms` (0 = just look) for the next received message and returns it in
/// `*msg_out`, owned by the caller: free it with `cmqtt_message_free`. `CMQTT_ERR_TIMEOUT` (and
/// `*msg_out` NULL) when none came; `CMQTT_ERR_CLOSED` when the session has ended. Messages go
/// to the message callback instead while one is set.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_client_receive(
    client: *mut cmqtt_client,
    timeout_ms: u32,
    msg_out: *mut *mut cmqtt_message,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let out = unsafe { arg_out(msg_out, "msg_out")? };
        let c = unsafe { arg_ref(client, "client")? };
        let stashed = c.cbs.stash().pop_front();
        let m = match stashed {
            Some(m) => m,
            None => match c
                .client
                .recv_timeout(Duration::from_millis(u64::from(timeout_ms)))
            {
                Some(m) => m,
                None => {
                    if let Some(r) = c.modem.closed_reason() {
                        return Err(Error::Closed(r).into());
                    }
                    return fail(
                        CMQTT_ERR_TIMEOUT,
                        format!(
                            "client {}: no message within {timeout_ms} ms",
                            c.client.index()
                        ),
                    );
                }
            },
        };
        *out = cmqtt_message::new(&m).boxed();
        Ok(())
    })
}

impl crate::util::Versioned for cmqtt_client_options {
    fn defaults() -> Self {
        cmqtt_client_options_default()
    }
}

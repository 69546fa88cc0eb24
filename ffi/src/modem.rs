//! The modem handle: open, start/stop, identity, events, the AT trace, TLS and certificates.

use std::ffi::{c_char, c_void, CString};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmqtt_core::{Direction, Event, Model, Modem, ModemOptions, OverflowPolicy, SslContext};

use crate::message::cmqtt_string_list;
use crate::result::cmqtt_result::*;
use crate::result::{cmqtt_result, fail, guard, guard_value, FfiResult};
use crate::util::{
    arg_bytes, arg_out, arg_ref, arg_str, arg_versioned, c_string, enter, not_in_callback,
    not_in_trace, opt_bool, opt_num, opt_str, Context, Slot, Userdata,
};

/// A modem session (opaque): the serial port, its reader and dispatch threads, the model's
/// profile. Create with `cmqtt_modem_open` or `cmqtt_modem_open_with`; free with
/// `cmqtt_modem_free`.
pub struct cmqtt_modem {
    pub(crate) modem: Modem,
    model_name: CString,
    firmware: CString,
    events: Arc<Slot<EventCb>>,
    /// Serialises changes of the event callback (the core's and the slot's change together).
    events_config: Mutex<()>,
}

/// The modem families the library knows.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cmqtt_model {
    /// In options: identify the model (`AT+CGMM`). As a result: no modem (NULL handle).
    CMQTT_MODEL_AUTO = 0,
    /// A7600 / A76xx (A7670, A7608, ...).
    CMQTT_MODEL_A7600 = 1,
    /// SIM7600 family.
    CMQTT_MODEL_SIM7600 = 2,
    /// SIM7672X / SIM7652X.
    CMQTT_MODEL_SIM7672X = 3,
}

/// A `cmqtt_model` as received from C: any 32-bit value (the header names it `cmqtt_model`).
pub type cmqtt_model_raw = u32;

impl cmqtt_model {
    fn of(m: Model) -> cmqtt_model {
        match m {
            Model::A7600 => cmqtt_model::CMQTT_MODEL_A7600,
            Model::Sim7600 => cmqtt_model::CMQTT_MODEL_SIM7600,
            Model::Sim7672x => cmqtt_model::CMQTT_MODEL_SIM7672X,
        }
    }

    fn from_raw(v: cmqtt_model_raw) -> FfiResult<Option<Model>> {
        match v {
            0 => Ok(None),
            1 => Ok(Some(Model::A7600)),
            2 => Ok(Some(Model::Sim7600)),
            3 => Ok(Some(Model::Sim7672x)),
            _ => fail(
                CMQTT_ERR_INVALID_ARGUMENT,
                format!("model = {v} is not a cmqtt_model value"),
            ),
        }
    }
}

/// Which way a traced AT line went.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cmqtt_direction {
    /// Host to modem.
    CMQTT_DIRECTION_SEND = 0,
    /// Modem to host.
    CMQTT_DIRECTION_RECEIVE = 1,
}

/// The AT trace: called with every line sent and received (passwords replaced by
/// `"<redacted>"`; data sent after a `>` prompt shown as `<N bytes of data>`). `line` is valid
/// during the call only. Runs on whichever thread sent or received the line, while the library
/// holds its command lock: it must return quickly and only copy the line. Functions that would
/// talk to the modem, change callbacks or free a handle return `CMQTT_ERR_IN_CALLBACK` there.
pub type cmqtt_trace_cb = Option<
    unsafe extern "C" fn(userdata: *mut c_void, direction: cmqtt_direction, line: *const c_char),
>;

/// The largest queue capacity (`cmqtt_modem_options.queue_capacity`,
/// `cmqtt_supervisor_config.queue_capacity` and `.outbox_capacity`): 1048576 items.
pub const CMQTT_MAX_QUEUE_CAPACITY: u32 = 1 << 20;

/// Options of `cmqtt_modem_open_with`. Start from `cmqtt_modem_options_default()`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cmqtt_modem_options {
    /// `sizeof` this struct as the program was built: set by the `_default()` function, so
    /// that later versions of the library can add fields without breaking it. Leave it as
    /// set (a struct embedded in another is covered by the outer one's size).
    pub struct_size: u32,
    /// Baud rate (default 115200).
    pub baud: u32,
    /// A `cmqtt_model` value: `CMQTT_MODEL_AUTO` (the default) identifies the modem; any other
    /// value forces that model's profile.
    pub model: cmqtt_model_raw,
    /// How long to keep sending `AT` until the modem answers, in ms (0 = default, 10 s).
    pub sync_timeout_ms: u32,
    /// Capacity of each event and message queue (0 = default, 1024; at most
    /// `CMQTT_MAX_QUEUE_CAPACITY`, larger is `CMQTT_ERR_INVALID_ARGUMENT`).
    pub queue_capacity: u32,
    /// What a full queue drops: false = the oldest item (the default), true = the new one.
    /// Overflows are reported as `CMQTT_EVENT_OVERFLOW`.
    pub drop_newest: bool,
    /// The AT trace (NULL = none). See `cmqtt_trace_cb`.
    pub trace: cmqtt_trace_cb,
    /// Passed to `trace`. Must stay valid until the modem and every client acquired from it are
    /// freed.
    pub trace_userdata: *mut c_void,
}

/// The default options: 115200 baud, model identified, default timeouts and queues, no trace.
#[no_mangle]
pub extern "C" fn cmqtt_modem_options_default() -> cmqtt_modem_options {
    cmqtt_modem_options {
        struct_size: std::mem::size_of::<cmqtt_modem_options>() as u32,
        baud: 115_200,
        model: cmqtt_model::CMQTT_MODEL_AUTO as u32,
        sync_timeout_ms: 0,
        queue_capacity: 0,
        drop_newest: false,
        trace: None,
        trace_userdata: std::ptr::null_mut(),
    }
}

fn new_handle(modem: Modem) -> *mut cmqtt_modem {
    let id = modem.identity().clone();
    Box::into_raw(Box::new(cmqtt_modem {
        model_name: c_string(&id.model_name),
        firmware: c_string(&id.firmware),
        modem,
        events: Arc::new(Slot::new()),
        events_config: Mutex::new(()),
    }))
}

/// Opens the serial device `port` (e.g. "/dev/ttyUSB2") at `baud`, synchronises with the modem
/// (`AT`), switches echo off and identifies the model. On success `*modem_out` is the new handle;
/// on failure it is NULL (`CMQTT_ERR_SERIAL` when the port cannot be opened, `CMQTT_ERR_TIMEOUT`
/// when nothing answers).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_open(
    port: *const c_char,
    baud: u32,
    modem_out: *mut *mut cmqtt_modem,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let out = unsafe { arg_out(modem_out, "modem_out")? };
        let port = unsafe { arg_str(port, "port")? };
        let modem = Modem::open(port, baud)?;
        *out = new_handle(modem);
        Ok(())
    })
}

/// `cmqtt_modem_open` with options (trace callback, forced model, baud, timeouts, queues).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_open_with(
    port: *const c_char,
    options: *const cmqtt_modem_options,
    modem_out: *mut *mut cmqtt_modem,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let out = unsafe { arg_out(modem_out, "modem_out")? };
        let port = unsafe { arg_str(port, "port")? };
        let o = unsafe { arg_versioned(options, "options")? };
        let opts = modem_options(&o)?;
        let modem = Modem::open_with(port, o.baud, opts)?;
        *out = new_handle(modem);
        Ok(())
    })
}

/// The core's options for `o` (everything but the baud rate, which goes with the port).
pub(crate) fn modem_options(o: &cmqtt_modem_options) -> FfiResult<ModemOptions> {
    let mut opts = ModemOptions {
        model: cmqtt_model::from_raw(o.model)?,
        ..ModemOptions::default()
    };
    if o.sync_timeout_ms > 0 {
        opts.sync_timeout = Duration::from_millis(u64::from(o.sync_timeout_ms));
    }
    if o.queue_capacity > CMQTT_MAX_QUEUE_CAPACITY {
        return fail(
            CMQTT_ERR_INVALID_ARGUMENT,
            format!(
                "invalid argument options->queue_capacity: must be 0 (the default, 1024) or at most \
                 {CMQTT_MAX_QUEUE_CAPACITY}, got {}",
                o.queue_capacity
            ),
        );
    }
    if o.queue_capacity > 0 {
        opts.queue_capacity = o.queue_capacity as usize;
    }
    if o.drop_newest {
        opts.overflow = OverflowPolicy::DropNewest;
    }
    if let Some(cb) = o.trace {
        let ud = Userdata(o.trace_userdata);
        opts = opts.trace(move |dir, text| {
            let _ctx = enter(Context::Trace, 0);
            let d = match dir {
                Direction::Send => cmqtt_direction::CMQTT_DIRECTION_SEND,
                Direction::Receive => cmqtt_direction::CMQTT_DIRECTION_RECEIVE,
            };
            let line = c_string(text);
            unsafe { cb(ud.ptr(), d, line.as_ptr()) };
        });
    }
    Ok(opts)
}

/// Frees the modem handle. NULL is a no-op (`CMQTT_OK`). The event callback is removed first
/// (and waited for, if it is running). Clients acquired from this modem stay usable: the session
/// (port and threads) ends when the modem and all its clients are freed. Returns
/// `CMQTT_ERR_IN_CALLBACK` (and frees nothing) when called from a callback. Freeing twice is
/// undefined behaviour, like free(3).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_free(modem: *mut cmqtt_modem) -> cmqtt_result {
    guard(|| {
        if modem.is_null() {
            return Ok(());
        }
        not_in_callback("cmqtt_modem_free")?;
        let m = unsafe { Box::from_raw(modem) };
        {
            let _config = m.events_config.lock().unwrap_or_else(|e| e.into_inner());
            m.modem.clear_on_event();
            m.events.replace(None);
        }
        m.events.wait_idle();
        drop(m);
        Ok(())
    })
}

/// Starts the MQTT service (`AT+CMQTTSTART`). A service that is already running counts as
/// success.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_start(modem: *mut cmqtt_modem) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let m = unsafe { arg_ref(modem, "modem")? };
        m.modem.start()?;
        Ok(())
    })
}

/// Stops the MQTT service (`AT+CMQTTSTOP`); release the clients first (`CMQTT_ERR_CLIENT_NOT_RELEASED`).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_stop(modem: *mut cmqtt_modem) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let m = unsafe { arg_ref(modem, "modem")? };
        m.modem.stop()?;
        Ok(())
    })
}

/// The model family in use (identified at open or forced); `CMQTT_MODEL_AUTO` when `modem` is
/// NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_model(modem: *const cmqtt_modem) -> cmqtt_model {
    guard_value(cmqtt_model::CMQTT_MODEL_AUTO, || {
        unsafe { modem.as_ref() }.map_or(cmqtt_model::CMQTT_MODEL_AUTO, |m| {
            cmqtt_model::of(m.modem.model())
        })
    })
}

/// Static lower-case name of a model value: "a7600", "sim7600", "sim7672x", "auto", or
/// "unknown". Never NULL.
#[no_mangle]
pub extern "C" fn cmqtt_model_name(model: cmqtt_model_raw) -> *const c_char {
    guard_value(c"unknown".as_ptr(), || {
        let name = match cmqtt_model::from_raw(model) {
            Ok(None) => c"auto",
            Ok(Some(Model::A7600)) => c"a7600",
            Ok(Some(Model::Sim7600)) => c"sim7600",
            Ok(Some(Model::Sim7672x)) => c"sim7672x",
            Err(_) => c"unknown",
        };
        name.as_ptr()
    })
}

/// What the modem answered to `AT+CGMM` at open (e.g. "A7600E-H"). Valid as long as the
/// handle; "" when `modem` is NULL. Never NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_model_name(modem: *const cmqtt_modem) -> *const c_char {
    guard_value(c"".as_ptr(), || {
        unsafe { modem.as_ref() }.map_or(c"".as_ptr(), |m| m.model_name.as_ptr())
    })
}

/// The firmware revision (`AT+CGMR` at open). Valid as long as the handle; "" when `modem` is
/// NULL. Never NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_firmware(modem: *const cmqtt_modem) -> *const c_char {
    guard_value(c"".as_ptr(), || {
        unsafe { modem.as_ref() }.map_or(c"".as_ptr(), |m| m.firmware.as_ptr())
    })
}

// ---- events -----------------------------------------------------------------------------------

/// What a modem-level event is.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cmqtt_event_kind {
    /// `+CMQTTCONNLOST`: `client` lost its broker connection; `code` is the cause (1 socket
    /// closed passively, 2 socket reset, 3 network closed). Connect again.
    CMQTT_EVENT_CONNECTION_LOST = 1,
    /// `+CMQTTNONET`: the network is gone; start the service again (`cmqtt_modem_start`).
    CMQTT_EVENT_NO_NETWORK = 2,
    /// `RDY`: the modem restarted; every MQTT state on it is lost.
    CMQTT_EVENT_MODEM_RESTARTED = 3,
    /// Bytes that should have been a received message did not add up; `text` says what was lost.
    CMQTT_EVENT_MALFORMED = 4,
    /// A queue was full: `dropped` items were discarded so far; `text` names the queue.
    CMQTT_EVENT_OVERFLOW = 5,
    /// Any other unsolicited line; `text` is the line.
    CMQTT_EVENT_UNSOLICITED = 6,
    /// Boot noise (`+CPIN: READY`, `SMS DONE`, ...); `text` is the line.
    CMQTT_EVENT_BOOT = 7,
    /// `+CMQTTPING`: a keepalive ping of `client` failed; `code` is the modem's code.
    CMQTT_EVENT_PING_FAILED = 8,
    /// A message reached the modem-level stream; `client` received it, `text` is its topic.
    CMQTT_EVENT_MESSAGE = 9,
    /// An event kind this version of the C API does not know; `text` describes it.
    CMQTT_EVENT_OTHER = 99,
}

/// A modem-level event, passed to a `cmqtt_event_cb`. Valid during the call only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cmqtt_event {
    /// What happened.
    pub kind: cmqtt_event_kind,
    /// The client index (0 or 1) concerned, or -1.
    pub client: i32,
    /// The cause or code (see the kind), or -1.
    pub code: i32,
    /// For `CMQTT_EVENT_OVERFLOW`: items dropped so far; 0 otherwise.
    pub dropped: u64,
    /// The line or detail (see the kind), or a short description. Never NULL.
    pub text: *const c_char,
}

/// Modem-level event callback; runs on the library's dispatch thread (see the contract).
pub type cmqtt_event_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const cmqtt_event)>;

#[derive(Clone, Copy)]
pub(crate) struct EventCb {
    f: unsafe extern "C" fn(*mut c_void, *const cmqtt_event),
    ud: Userdata,
}

pub(crate) fn event_parts(e: &Event) -> (cmqtt_event_kind, i32, i32, u64, String) {
    use cmqtt_event_kind::*;
    match e {
        Event::ConnectionLost { client, cause } => (
            CMQTT_EVENT_CONNECTION_LOST,
            i32::from(*client),
            i32::from(*cause),
            0,
            format!("client {client}: connection lost (cause {cause})"),
        ),
        Event::NoNetwork => (
            CMQTT_EVENT_NO_NETWORK,
            -1,
            -1,
            0,
            "no network (+CMQTTNONET)".into(),
        ),
        Event::PingFailed { client, code } => (
            CMQTT_EVENT_PING_FAILED,
            i32::from(*client),
            i32::try_from(*code).unwrap_or(-1),
            0,
            format!("client {client}: ping failed (code {code})"),
        ),
        Event::ModemRestarted => (
            CMQTT_EVENT_MODEM_RESTARTED,
            -1,
            -1,
            0,
            "the modem restarted (RDY)".into(),
        ),
        Event::Boot(s) => (CMQTT_EVENT_BOOT, -1, -1, 0, s.clone()),
        Event::Unsolicited(s) => (CMQTT_EVENT_UNSOLICITED, -1, -1, 0, s.clone()),
        Event::Malformed(s) => (CMQTT_EVENT_MALFORMED, -1, -1, 0, s.clone()),
        Event::Overflow { queue, dropped } => {
            (CMQTT_EVENT_OVERFLOW, -1, -1, *dropped, (*queue).to_string())
        }
        Event::Message(m) => (
            CMQTT_EVENT_MESSAGE,
            i32::from(m.client),
            -1,
            0,
            m.topic_lossy(),
        ),
        other => (CMQTT_EVENT_OTHER, -1, -1, 0, format!("{other:?}")),
    }
}

/// Sets (or, with `on_event` NULL, clears) the modem-level event callback: connection lost,
/// no network, modem restarted, malformed data, queue overflows, unsolicited lines. Without a
/// callback these events are queued (and the oldest dropped when the queue is full). When this
/// returns, the previous callback is not running (unless this is called from it) and will not
/// be called again.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_set_event_callback(
    modem: *mut cmqtt_modem,
    userdata: *mut c_void,
    on_event: cmqtt_event_cb,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let m = unsafe { arg_ref(modem, "modem")? };
        let config = m.events_config.lock().unwrap_or_else(|e| e.into_inner());
        match on_event {
            Some(f) => {
                m.events.replace(Some(EventCb {
                    f,
                    ud: Userdata(userdata),
                }));
                let slot = m.events.clone();
                m.modem.on_event(move |e| {
                    slot.run(0, |cb| {
                        if let Some(cb) = cb {
                            let (kind, client, code, dropped, text) = event_parts(e);
                            let text = c_string(&text);
                            let ev = cmqtt_event {
                                kind,
                                client,
                                code,
                                dropped,
                                text: text.as_ptr(),
                            };
                            unsafe { (cb.f)(cb.ud.ptr(), &ev) };
                        }
                    })
                });
            }
            None => {
                m.modem.clear_on_event();
                m.events.replace(None);
            }
        }
        drop(config);
        m.events.wait_idle();
        Ok(())
    })
}

// ---- TLS and certificates ---------------------------------------------------------------------

/// An SSL context (`AT+CSSLCFG`) for `cmqtt_modem_ssl_configure`. Start from
/// `cmqtt_ssl_config_default()` (everything unset) and set what you need; unset fields are not
/// sent.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cmqtt_ssl_config {
    /// `sizeof` this struct as the program was built: set by the `_default()` function, so
    /// that later versions of the library can add fields without breaking it. Leave it as
    /// set (a struct embedded in another is covered by the outer one's size).
    pub struct_size: u32,
    /// "sslversion": 0 SSL3.0, 1 TLS1.0, 2 TLS1.1, 3 TLS1.2, 4 all; -1 = unset.
    pub ssl_version: i32,
    /// "authmode": 0 none, 1 verify the server, 2 both, 3 client only; -1 = unset.
    pub auth_mode: i32,
    /// "ignorelocaltime": 0 or 1; -1 = unset.
    pub ignore_local_time: i32,
    /// "negotiatetime": handshake timeout, 10..300 s; -1 = unset.
    pub negotiate_time_s: i32,
    /// "cacert": a file name in the modem's certificate store; NULL = unset.
    pub ca_cert: *const c_char,
    /// "clientcert": a file name in the store; NULL = unset.
    pub client_cert: *const c_char,
    /// "clientkey": a file name in the store; NULL = unset.
    pub client_key: *const c_char,
    /// "enableSNI": 0 or 1; -1 = unset.
    pub enable_sni: i32,
}

/// An SSL context with every field unset.
#[no_mangle]
pub extern "C" fn cmqtt_ssl_config_default() -> cmqtt_ssl_config {
    cmqtt_ssl_config {
        struct_size: std::mem::size_of::<cmqtt_ssl_config>() as u32,
        ssl_version: -1,
        auth_mode: -1,
        ignore_local_time: -1,
        negotiate_time_s: -1,
        ca_cert: std::ptr::null(),
        client_cert: std::ptr::null(),
        client_key: std::ptr::null(),
        enable_sni: -1,
    }
}

/// Configures SSL context `ssl_ctx` (0..9): every set field of `config` is sent, in order; the
/// first failure stops. Use the context with `cmqtt_client_set_ssl_context` (or
/// `cmqtt_client_options.ssl_ctx`) and acquire the client with `tls` true.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_ssl_configure(
    modem: *mut cmqtt_modem,
    ssl_ctx: u8,
    config: *const cmqtt_ssl_config,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let m = unsafe { arg_ref(modem, "modem")? };
        let c = unsafe { arg_versioned(config, "config")? };
        let ctx = unsafe { ssl_context(&c, "")? };
        m.modem.ssl_configure(ssl_ctx, &ctx)?;
        Ok(())
    })
}

/// The core's SSL context for `c`; `prefix` names the struct in error messages ("config->ssl.").
pub(crate) unsafe fn ssl_context(c: &cmqtt_ssl_config, prefix: &str) -> FfiResult<SslContext> {
    let n = |f: &str| format!("{prefix}{f}");
    Ok(SslContext {
        ssl_version: opt_num(i64::from(c.ssl_version), &n("ssl_version"))?,
        auth_mode: opt_num(i64::from(c.auth_mode), &n("auth_mode"))?,
        ignore_local_time: opt_bool(c.ignore_local_time, &n("ignore_local_time"))?,
        negotiate_time: opt_num(i64::from(c.negotiate_time_s), &n("negotiate_time_s"))?,
        ca_cert: unsafe { opt_str(c.ca_cert, &n("ca_cert"))? }.map(str::to_string),
        client_cert: unsafe { opt_str(c.client_cert, &n("client_cert"))? }.map(str::to_string),
        client_key: unsafe { opt_str(c.client_key, &n("client_key"))? }.map(str::to_string),
        enable_sni: opt_bool(c.enable_sni, &n("enable_sni"))?,
    })
}

/// Stores a certificate or key (PEM bytes) in the modem's store as `name` (`AT+CCERTDOWN`).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_cert_upload(
    modem: *mut cmqtt_modem,
    name: *const c_char,
    data: *const u8,
    data_len: usize,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let m = unsafe { arg_ref(modem, "modem")? };
        let name = unsafe { arg_str(name, "name")? };
        let data = unsafe { arg_bytes(data, data_len, "data")? };
        m.modem.cert_upload(name, data)?;
        Ok(())
    })
}

/// The files in the modem's certificate store (`AT+CCERTLIST`), as a new list in `*list_out`
/// (free it with `cmqtt_string_list_free`; NULL on failure).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_cert_list(
    modem: *mut cmqtt_modem,
    list_out: *mut *mut cmqtt_string_list,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let out = unsafe { arg_out(list_out, "list_out")? };
        let m = unsafe { arg_ref(modem, "modem")? };
        let names = m.modem.cert_list()?;
        *out = cmqtt_string_list::boxed(&names);
        Ok(())
    })
}

/// Deletes `name` from the modem's certificate store (`AT+CCERTDELE`).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_cert_delete(
    modem: *mut cmqtt_modem,
    name: *const c_char,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let m = unsafe { arg_ref(modem, "modem")? };
        let name = unsafe { arg_str(name, "name")? };
        m.modem.cert_delete(name)?;
        Ok(())
    })
}

// ---- other commands ---------------------------------------------------------------------------

/// Runs one raw AT command line (e.g. "AT+CPSI?") for which the library has no function, waits
/// up to `timeout_ms` for its final result, and returns its information lines in `*lines_out`
/// (free with `cmqtt_string_list_free`; NULL on failure).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_command(
    modem: *mut cmqtt_modem,
    line: *const c_char,
    timeout_ms: u32,
    lines_out: *mut *mut cmqtt_string_list,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let out = unsafe { arg_out(lines_out, "lines_out")? };
        let m = unsafe { arg_ref(modem, "modem")? };
        let line = unsafe { arg_str(line, "line")? };
        let lines = m
            .modem
            .command(line, "", Duration::from_millis(u64::from(timeout_ms)))?;
        *out = cmqtt_string_list::boxed(&lines);
        Ok(())
    })
}

/// Signal quality (`AT+CSQ`): `*rssi_out` 0..31 (99 unknown), `*ber_out` 0..7 (99 unknown).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_signal_quality(
    modem: *mut cmqtt_modem,
    rssi_out: *mut u8,
    ber_out: *mut u8,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let m = unsafe { arg_ref(modem, "modem")? };
        let (Some(rssi), Some(ber)) = (unsafe { rssi_out.as_mut() }, unsafe { ber_out.as_mut() })
        else {
            return fail(CMQTT_ERR_NULL_ARGUMENT, "rssi_out or ber_out is NULL");
        };
        let (r, b) = m.modem.signal_quality()?;
        *rssi = r;
        *ber = b;
        Ok(())
    })
}

/// Packet-domain registration (`AT+CGREG?` `<stat>`): 1 registered (home), 5 roaming, ...
#[no_mangle]
pub unsafe extern "C" fn cmqtt_modem_registration(
    modem: *mut cmqtt_modem,
    stat_out: *mut u8,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let m = unsafe { arg_ref(modem, "modem")? };
        let Some(out) = (unsafe { stat_out.as_mut() }) else {
            return fail(CMQTT_ERR_NULL_ARGUMENT, "stat_out is NULL");
        };
        *out = m.modem.registration()?;
        Ok(())
    })
}

impl crate::util::Versioned for cmqtt_modem_options {
    fn defaults() -> Self {
        cmqtt_modem_options_default()
    }
}

impl crate::util::Versioned for cmqtt_ssl_config {
    fn defaults() -> Self {
        cmqtt_ssl_config_default()
    }
}

//! The supervised client (`cmqtt_supervisor`): one MQTT client kept connected through broker,
//! network, modem and port faults, with an outbox whose publishes return delivery tickets
//! (`cmqtt_delivery`). Every reconnect, retry and outbox rule lives in the core
//! (`cmqtt::supervise`, `cmqtt::outbox`); this file converts arguments and events.

use std::cell::Cell;
use std::collections::VecDeque;
use std::ffi::{c_char, c_void, CString};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::Duration;

use cmqtt_core::{
    Delivery, DeliveryStatus, Endpoint, Error, Loss, Message, State, Supervisor, SupervisorConfig,
    SupervisorEvent, WhenFull, Will,
};

use crate::client::{
    client_options, cmqtt_client_options, cmqtt_client_options_default, cmqtt_message_cb,
};
use crate::message::cmqtt_message;
use crate::modem::{
    cmqtt_event, cmqtt_modem_options, cmqtt_modem_options_default, cmqtt_ssl_config,
    cmqtt_ssl_config_default, event_parts, modem_options, ssl_context,
};
use crate::result::cmqtt_result::*;
use crate::result::{cmqtt_result, fail, guard, guard_value, Fail, FfiResult};
use crate::util::{
    arg_bytes, arg_out, arg_ref, arg_str, arg_versioned, c_string, context, not_in_callback,
    not_in_trace, opt_num, opt_str, Context, Slot, Userdata,
};

// ---- configuration ----------------------------------------------------------------------------

/// Where the supervisor finds the modem.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cmqtt_endpoint {
    /// A device path (`port`), reopened by the same path after it vanished.
    CMQTT_ENDPOINT_SERIAL = 0,
    /// A USB serial port found by identity (`usb_vid`, `usb_pid`, optionally `usb_serial` and
    /// `usb_interface`), wherever it re-enumerates (`/dev/ttyUSB2` today, `/dev/ttyUSB6` after
    /// a modem reset).
    CMQTT_ENDPOINT_USB = 1,
    /// A serial-over-TCP bridge (or `cmqtt sim --tcp`) at `tcp_address` ("host:port").
    CMQTT_ENDPOINT_TCP = 2,
}

/// A `cmqtt_endpoint` as received from C: any 32-bit value (the header names it
/// `cmqtt_endpoint`).
pub type cmqtt_endpoint_raw = u32;

/// What a full outbox does with a new publish.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cmqtt_when_full {
    /// `cmqtt_supervisor_publish` waits for room, up to `pub_timeout_s` (then
    /// `CMQTT_ERR_OUTBOX_FULL`); from any cmqtt callback it never waits (`CMQTT_ERR_OUTBOX_FULL`
    /// at once).
    CMQTT_WHEN_FULL_BLOCK = 0,
    /// `cmqtt_supervisor_publish` returns `CMQTT_ERR_OUTBOX_FULL` at once.
    CMQTT_WHEN_FULL_ERROR = 1,
    /// The oldest waiting publish is dropped: its ticket says `CMQTT_DELIVERY_DROPPED` and a
    /// `CMQTT_SUPERVISOR_EVENT_DROPPED` event reports it.
    CMQTT_WHEN_FULL_DROP_OLDEST = 2,
}

/// A `cmqtt_when_full` as received from C (the header names it `cmqtt_when_full`).
pub type cmqtt_when_full_raw = u32;

/// A topic filter subscribed after every connect.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cmqtt_subscription {
    /// The filter, NUL-terminated UTF-8, 1..1024 bytes.
    pub topic: *const c_char,
    /// 0..2.
    pub qos: u8,
}

/// A file for the modem's certificate store, uploaded (`AT+CCERTDOWN`) when it is missing.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cmqtt_cert_file {
    /// The file name in the store (e.g. "ca.pem"; no '/').
    pub name: *const c_char,
    /// Its content (PEM bytes).
    pub data: *const u8,
    pub data_len: usize,
}

/// Everything a supervisor needs to build (and rebuild) the session. Start from
/// `cmqtt_supervisor_config_default()` and set the endpoint, `client.client_id` and `server`.
/// `cmqtt_supervisor_new` copies everything it needs: the struct, its strings and arrays may be
/// freed once it returns (except `modem.trace_userdata`, which must stay valid until the
/// supervisor is freed).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cmqtt_supervisor_config {
    /// `sizeof` this struct as the program was built: set by the `_default()` function, so
    /// that later versions of the library can add fields without breaking it. Leave it as
    /// set (a struct embedded in another is covered by the outer one's size).
    pub struct_size: u32,
    /// A `cmqtt_endpoint` value (default `CMQTT_ENDPOINT_SERIAL`); it says which of the next
    /// fields are used.
    pub endpoint: cmqtt_endpoint_raw,
    /// SERIAL: where the modem is, in the library's one endpoint grammar: a device path
    /// ("/dev/ttyUSB2"), "tcp://HOST:PORT" / "socket://HOST:PORT" / "HOST:PORT" (a
    /// serial-over-TCP bridge) or "usb:VID:PID[:SERIAL][:INTERFACE]" (required).
    pub port: *const c_char,
    /// USB: vendor id (SIMCom: 0x1e0e) (required).
    pub usb_vid: u16,
    /// USB: product id (required).
    pub usb_pid: u16,
    /// USB: the device's serial number; NULL = any.
    pub usb_serial: *const c_char,
    /// USB: the interface number of the AT port (0..255); -1 = the first port found.
    pub usb_interface: i32,
    /// TCP: "host:port" of a serial-over-TCP bridge (required).
    pub tcp_address: *const c_char,
    /// Modem options: `baud` (SERIAL and USB), forced `model`, `sync_timeout_ms`, queues, and the
    /// AT `trace` (see `cmqtt_trace_cb`; it runs on the supervisor thread too).
    pub modem: cmqtt_modem_options,
    /// The client index, 0 or 1.
    pub index: u8,
    /// The client: `client_id` (required), `tls`, MQTT `version`, `check_utf8`, `op_timeout_s`,
    /// `ssl_ctx`; applied at every acquire.
    pub client: cmqtt_client_options,
    /// The broker, "tcp://host:port" (also for TLS) (required).
    pub server: *const c_char,
    /// Keepalive, 1..64800 s (default 60).
    pub keepalive_s: u32,
    /// Clean session (default true). With false the broker keeps the subscriptions and queued
    /// messages of this client id across reconnects.
    pub clean_session: bool,
    /// User name; NULL = none.
    pub username: *const c_char,
    /// Password (needs a user name); NULL = none. Never traced nor shown in errors.
    pub password: *const c_char,
    /// How long one connect waits for the broker, in ms (default 120000).
    pub connect_timeout_ms: u32,
    /// The will's topic; NULL = no will. Re-applied before every connect.
    pub will_topic: *const c_char,
    /// The will's message (1..1024 bytes).
    pub will_message: *const u8,
    pub will_message_len: usize,
    /// The will's QoS, 0..2.
    pub will_qos: u8,
    /// The SSL context (0..9) configured from `ssl` before every acquire; -1 = none (default).
    /// (Which context the client uses is `client.ssl_ctx`.)
    pub ssl_ctx: i32,
    /// The settings of SSL context `ssl_ctx` (see `cmqtt_ssl_config`).
    pub ssl: cmqtt_ssl_config,
    /// Certificate and key files uploaded to the modem when missing; NULL with 0 = none.
    pub certs: *const cmqtt_cert_file,
    pub cert_count: usize,
    /// Topic filters subscribed after every connect; NULL with 0 = none (more can be added
    /// with `cmqtt_supervisor_subscribe`).
    pub subscriptions: *const cmqtt_subscription,
    pub subscription_count: usize,
    /// Reconnect pacing: the first delay in ms (default 500), doubling up to `backoff_max_ms`
    /// (default 60000), each varied by +-`backoff_jitter` (0..1, default 0.25).
    pub backoff_initial_ms: u32,
    pub backoff_max_ms: u32,
    pub backoff_jitter: f64,
    /// Most publishes waiting in the outbox (default 1000; 0 is taken as 1).
    pub outbox_capacity: usize,
    /// A `cmqtt_when_full` value (default `CMQTT_WHEN_FULL_BLOCK`).
    pub when_full: cmqtt_when_full_raw,
    /// Keep the outbox in this file (created if missing; what it holds is sent first); NULL =
    /// in memory only.
    pub outbox_path: *const c_char,
    /// fsync the outbox file at every change (survives power loss; costs a disk flush each).
    pub outbox_sync: bool,
    /// The modem's publish timeout, 60..180 s (default 60).
    pub pub_timeout_s: u32,
    /// Give a publish up (`CMQTT_DELIVERY_FAILED`) after this many failures that are not about
    /// the connection (default 5).
    pub max_send_failures: u32,
    /// Capacity of the queue of received messages for `cmqtt_supervisor_receive` (default 4096).
    pub queue_capacity: u32,
    /// The callbacks, installed before the supervisor thread starts so that no event is missed
    /// (see `cmqtt_supervisor_set_callbacks` for the threads and rules); NULL = none (default).
    pub on_message: cmqtt_message_cb,
    pub on_event: cmqtt_supervisor_event_cb,
    /// Passed to the callbacks.
    pub userdata: *mut c_void,
}

/// The defaults: a SERIAL endpoint at 115200 baud (set `port`), client index 0, keepalive 60 s,
/// clean session, no will, no TLS, backoff 0.5 s..60 s with 25 % jitter, an in-memory outbox of
/// 1000 that blocks when full, publish timeout 60 s. Set at least the endpoint,
/// `client.client_id` and `server`.
#[no_mangle]
pub extern "C" fn cmqtt_supervisor_config_default() -> cmqtt_supervisor_config {
    // The core's defaults, read from the core (never restated here).
    let d = SupervisorConfig::new(
        Endpoint::Serial {
            path: String::new(),
            baud: 115_200,
        },
        "",
        "",
    );
    let ms = |t: Duration| u32::try_from(t.as_millis()).unwrap_or(u32::MAX);
    cmqtt_supervisor_config {
        struct_size: std::mem::size_of::<cmqtt_supervisor_config>() as u32,
        endpoint: cmqtt_endpoint::CMQTT_ENDPOINT_SERIAL as u32,
        port: std::ptr::null(),
        usb_vid: 0,
        usb_pid: 0,
        usb_serial: std::ptr::null(),
        usb_interface: -1,
        tcp_address: std::ptr::null(),
        modem: cmqtt_modem_options_default(),
        index: d.index,
        client: cmqtt_client_options_default(),
        server: std::ptr::null(),
        keepalive_s: d.connect.keepalive,
        clean_session: d.connect.clean_session,
        username: std::ptr::null(),
        password: std::ptr::null(),
        connect_timeout_ms: ms(d.connect.timeout),
        will_topic: std::ptr::null(),
        will_message: std::ptr::null(),
        will_message_len: 0,
        will_qos: 0,
        ssl_ctx: -1,
        ssl: cmqtt_ssl_config_default(),
        certs: std::ptr::null(),
        cert_count: 0,
        subscriptions: std::ptr::null(),
        subscription_count: 0,
        backoff_initial_ms: ms(d.backoff.initial),
        backoff_max_ms: ms(d.backoff.max),
        backoff_jitter: d.backoff.jitter,
        outbox_capacity: d.outbox.capacity,
        when_full: when_full_value(d.outbox.when_full) as u32,
        outbox_path: std::ptr::null(),
        outbox_sync: d.outbox.sync,
        pub_timeout_s: u32::try_from(d.pub_timeout.as_secs()).unwrap_or(u32::MAX),
        max_send_failures: d.max_send_failures,
        queue_capacity: u32::try_from(d.queue_capacity).unwrap_or(u32::MAX),
        on_message: None,
        on_event: None,
        userdata: std::ptr::null_mut(),
    }
}

fn when_full_value(w: WhenFull) -> cmqtt_when_full {
    match w {
        WhenFull::Block => cmqtt_when_full::CMQTT_WHEN_FULL_BLOCK,
        WhenFull::Error => cmqtt_when_full::CMQTT_WHEN_FULL_ERROR,
        WhenFull::DropOldest => cmqtt_when_full::CMQTT_WHEN_FULL_DROP_OLDEST,
    }
}

/// A C array: NULL is allowed only with `count` 0.
unsafe fn arg_array<'a, T>(p: *const T, count: usize, name: &str) -> FfiResult<&'a [T]> {
    if count == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return fail(
            CMQTT_ERR_NULL_ARGUMENT,
            format!("{name} is NULL but its count is {count}"),
        );
    }
    Ok(unsafe { std::slice::from_raw_parts(p, count) })
}

unsafe fn endpoint(c: &cmqtt_supervisor_config) -> FfiResult<Endpoint> {
    let baud = c.modem.baud;
    match c.endpoint {
        // The core's one grammar: a device path, tcp:// or socket:// HOST:PORT, a bare
        // HOST:PORT, usb:VID:PID[:SERIAL][:INTERFACE].
        0 => Endpoint::parse_with_baud(unsafe { arg_str(c.port, "config->port")? }, baud)
            .map_err(Fail::Core),
        1 => {
            if c.usb_vid == 0 && c.usb_pid == 0 {
                return fail(
                    CMQTT_ERR_INVALID_ARGUMENT,
                    "config->usb_vid and config->usb_pid are 0: set the USB identity of the modem (SIMCom: vendor 0x1e0e)",
                );
            }
            Ok(Endpoint::Usb {
                vid: c.usb_vid,
                pid: c.usb_pid,
                serial: unsafe { opt_str(c.usb_serial, "config->usb_serial")? }.map(str::to_string),
                interface: opt_num(i64::from(c.usb_interface), "config->usb_interface")?,
                baud,
            })
        }
        2 => {
            let a = unsafe { arg_str(c.tcp_address, "config->tcp_address")? };
            match Endpoint::parse_with_baud(
                &format!("tcp://{}", a.trim_start_matches("tcp://")),
                baud,
            ) {
                Ok(ep @ Endpoint::Tcp(_)) => Ok(ep),
                _ => fail(
                    CMQTT_ERR_INVALID_ARGUMENT,
                    format!("config->tcp_address {a:?} is not a \"host:port\" that resolves"),
                ),
            }
        }
        v => fail(
            CMQTT_ERR_INVALID_ARGUMENT,
            format!("config->endpoint = {v} is not a cmqtt_endpoint value"),
        ),
    }
}

/// The core's configuration for `c`, checked as far as it can be without a modem.
unsafe fn build_config(c: &cmqtt_supervisor_config) -> FfiResult<SupervisorConfig> {
    let endpoint = unsafe { endpoint(c)? };
    let client = unsafe { client_options(&c.client, "config->client.")? };
    let server = unsafe { arg_str(c.server, "config->server")? };
    let mut cfg = SupervisorConfig::new(endpoint, &client.client_id, server);
    cfg.modem = modem_options(&c.modem)?;
    cfg.index = c.index;
    cfg.client = client;
    cfg.connect.keepalive = c.keepalive_s;
    cfg.connect.clean_session = c.clean_session;
    cfg.connect.username = unsafe { opt_str(c.username, "config->username")? }.map(str::to_string);
    cfg.connect.password = unsafe { opt_str(c.password, "config->password")? }.map(str::to_string);
    cfg.connect.timeout = Duration::from_millis(u64::from(c.connect_timeout_ms));
    cfg.will = match unsafe { opt_str(c.will_topic, "config->will_topic")? } {
        Some(topic) => Some(Will {
            topic: topic.as_bytes().to_vec(),
            message: unsafe {
                arg_bytes(c.will_message, c.will_message_len, "config->will_message")?
            }
            .to_vec(),
            qos: c.will_qos,
        }),
        None if c.will_message_len > 0 => {
            return fail(
                CMQTT_ERR_INVALID_ARGUMENT,
                "config->will_message is set but config->will_topic is NULL",
            )
        }
        None => None,
    };
    if let Some(ctx) = opt_num::<u8>(i64::from(c.ssl_ctx), "config->ssl_ctx")? {
        cfg.ssl = Some((ctx, unsafe { ssl_context(&c.ssl, "config->ssl.")? }));
    }
    for (i, f) in unsafe { arg_array(c.certs, c.cert_count, "config->certs")? }
        .iter()
        .enumerate()
    {
        let name = unsafe { arg_str(f.name, &format!("config->certs[{i}].name"))? };
        let data = unsafe { arg_bytes(f.data, f.data_len, &format!("config->certs[{i}].data"))? };
        cfg.certs.push((name.to_string(), data.to_vec()));
    }
    for (i, s) in unsafe {
        arg_array(
            c.subscriptions,
            c.subscription_count,
            "config->subscriptions",
        )?
    }
    .iter()
    .enumerate()
    {
        let topic = unsafe { arg_str(s.topic, &format!("config->subscriptions[{i}].topic"))? };
        cfg.subscriptions.push((topic.as_bytes().to_vec(), s.qos));
    }
    cfg.backoff.initial = Duration::from_millis(u64::from(c.backoff_initial_ms));
    cfg.backoff.max = Duration::from_millis(u64::from(c.backoff_max_ms));
    cfg.backoff.jitter = c.backoff_jitter;
    cfg.outbox.capacity = c.outbox_capacity;
    cfg.outbox.when_full = match c.when_full {
        0 => WhenFull::Block,
        1 => WhenFull::Error,
        2 => WhenFull::DropOldest,
        v => {
            return fail(
                CMQTT_ERR_INVALID_ARGUMENT,
                format!("config->when_full = {v} is not a cmqtt_when_full value"),
            )
        }
    };
    cfg.outbox.persist =
        unsafe { opt_str(c.outbox_path, "config->outbox_path")? }.map(PathBuf::from);
    cfg.outbox.sync = c.outbox_sync;
    cfg.pub_timeout = Duration::from_secs(u64::from(c.pub_timeout_s));
    cfg.max_send_failures = c.max_send_failures;
    cfg.queue_capacity = c.queue_capacity as usize;
    cfg.validate()?;
    Ok(cfg)
}

// ---- the handle and its callbacks -------------------------------------------------------------

/// A supervised client (opaque): see `cmqtt_supervisor_new`. Free with
/// `cmqtt_supervisor_free`.
pub struct cmqtt_supervisor {
    /// None once `cmqtt_supervisor_free` has begun (calls from callbacks running meanwhile get
    /// `CMQTT_ERR_CLOSED`).
    sup: RwLock<Option<Supervisor>>,
    cbs: Arc<SupervisorCallbacks>,
}

/// Called for every supervisor event; see `cmqtt_supervisor_set_callbacks` for the thread.
/// `event` and everything it points to are valid during the call only.
pub type cmqtt_supervisor_event_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const cmqtt_supervisor_event)>;

#[derive(Clone, Copy)]
struct MessageCb {
    f: unsafe extern "C" fn(*mut c_void, *const cmqtt_message),
    ud: Userdata,
}

#[derive(Clone, Copy)]
struct EventCb {
    f: unsafe extern "C" fn(*mut c_void, *const cmqtt_supervisor_event),
    ud: Userdata,
}

struct SupervisorCallbacks {
    /// Serialises changes of the callbacks (the core's and the slots' change together).
    config: Mutex<()>,
    /// Messages run on the modem's dispatch thread, events mostly on the supervisor thread: two
    /// slots, so that neither waits for the other.
    messages: Slot<MessageCb>,
    events: Slot<EventCb>,
    /// Messages that reached the message callback just as it was cleared: handed out by
    /// `cmqtt_supervisor_receive` first.
    stash: Mutex<VecDeque<Message>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SupervisorCallbacks {
    fn in_own_callback(&self) -> bool {
        matches!(context(), Context::Dispatch { slot }
            if slot == self.messages.addr() || slot == self.events.addr())
    }
}

thread_local! {
    /// Set while a supervisor event callback runs on this thread: waiting there is refused.
    static IN_EVENT_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

struct EventFlag(bool);

impl EventFlag {
    fn set() -> EventFlag {
        EventFlag(IN_EVENT_CALLBACK.with(|f| f.replace(true)))
    }
}

impl Drop for EventFlag {
    fn drop(&mut self) {
        IN_EVENT_CALLBACK.with(|f| f.set(self.0));
    }
}

/// The core's message callback: hands each message to the C callback of the moment (or, if it
/// was just cleared, to `cmqtt_supervisor_receive` through the stash).
fn message_hook(st: Arc<SupervisorCallbacks>) -> impl Fn(&Message) + Send + Sync + 'static {
    move |m| {
        let msg = cmqtt_message::new(m);
        let lent = &msg as *const cmqtt_message;
        st.messages.run(lent as usize, |cb| match cb {
            Some(cb) => unsafe { (cb.f)(cb.ud.ptr(), lent) },
            None => lock(&st.stash).push_back(m.clone()),
        })
    }
}

/// The core's event callback: hands each event to the C callback of the moment.
fn event_hook(st: Arc<SupervisorCallbacks>) -> impl Fn(&SupervisorEvent) + Send + Sync + 'static {
    move |e| {
        st.events.run(0, |cb| {
            if let Some(cb) = cb {
                let _flag = EventFlag::set();
                with_c_event(e, |ev| unsafe { (cb.f)(cb.ud.ptr(), ev) });
            }
        })
    }
}

/// Waiting (for a connection, the outbox, a delivery) from an event callback would hold up
/// the thread the supervisor needs.
fn may_wait(timeout_ms: u32, what: &str) -> FfiResult<()> {
    if timeout_ms > 0 && IN_EVENT_CALLBACK.with(|f| f.get()) {
        return fail(
            CMQTT_ERR_IN_CALLBACK,
            format!("{what} with a timeout cannot be called from a supervisor event callback (the supervisor would wait for itself); use a timeout of 0 there"),
        );
    }
    Ok(())
}

impl cmqtt_supervisor {
    fn get(&self) -> FfiResult<RwLockReadGuard<'_, Option<Supervisor>>> {
        let g = self.sup.read().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            return Err(Fail::Core(Error::Closed(
                "the supervisor is being freed".into(),
            )));
        }
        Ok(g)
    }
}

macro_rules! with_sup {
    ($s:expr, |$sup:ident| $body:expr) => {{
        let guard = $s.get()?;
        let $sup = guard.as_ref().expect("checked by get");
        $body
    }};
}

/// Starts a supervisor for `config` and returns it in `*supervisor_out`. It returns at once:
/// the supervisor thread opens the port, starts the service, configures (SSL context, missing
/// certificates, will), acquires, connects and subscribes in the background, and does it all
/// again after every fault, with exponential backoff and jitter (see
/// `cmqtt_supervisor_wait_connected` and the events). Publishes are queued in the outbox until
/// they can be sent, in order.
///
/// Fails (and starts nothing) for a configuration that can never work: a required field NULL
/// (`CMQTT_ERR_NULL_ARGUMENT`), a string that is not UTF-8, an enum value out of range or any
/// setting outside what the spec allows (client id, server, keepalive, will, QoS, publish
/// timeout, backoff: `CMQTT_ERR_INVALID_ARGUMENT`), an outbox file that cannot be opened
/// (`CMQTT_ERR_IO`) or is not an outbox file (`CMQTT_ERR_INVALID_ARGUMENT`). An unreachable
/// modem or broker is not a failure here: the supervisor keeps trying.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_supervisor_new(
    config: *const cmqtt_supervisor_config,
    supervisor_out: *mut *mut cmqtt_supervisor,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let out = unsafe { arg_out(supervisor_out, "supervisor_out")? };
        let c = &unsafe { arg_versioned(config, "config")? };
        let cfg = unsafe { build_config(c)? };
        let ud = Userdata(c.userdata);
        let cbs = Arc::new(SupervisorCallbacks {
            config: Mutex::new(()),
            messages: Slot::new(),
            events: Slot::new(),
            stash: Mutex::new(VecDeque::new()),
        });
        cbs.messages
            .replace(c.on_message.map(|f| MessageCb { f, ud }));
        cbs.events.replace(c.on_event.map(|f| EventCb { f, ud }));
        let on_message = c
            .on_message
            .map(|_| Box::new(message_hook(cbs.clone())) as Box<dyn Fn(&Message) + Send + Sync>);
        let on_event = c.on_event.map(|_| {
            Box::new(event_hook(cbs.clone())) as Box<dyn Fn(&SupervisorEvent) + Send + Sync>
        });
        let sup = Supervisor::start_with_callbacks(cfg, on_event, on_message)?;
        *out = Box::into_raw(Box::new(cmqtt_supervisor {
            sup: RwLock::new(Some(sup)),
            cbs,
        }));
        Ok(())
    })
}

/// Stops and frees the supervisor: disconnects cleanly when connected, releases the client,
/// closes the port and ends the supervisor thread (waiting for it: up to the modem's answer to
/// the disconnect). Publishes still waiting stay in the outbox file when one is configured (the
/// next supervisor on that file sends them); their tickets stay `CMQTT_DELIVERY_QUEUED`.
/// The callbacks run until the thread has ended (the final `CMQTT_STATE_STOPPED` event runs on
/// the calling thread); functions they call on this supervisor meanwhile return
/// `CMQTT_ERR_CLOSED`. When this returns they are not running and will not be called again.
/// NULL is a no-op. Returns `CMQTT_ERR_IN_CALLBACK` (and frees nothing) when called from a
/// callback. Freeing twice is undefined behaviour, like free(3).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_supervisor_free(supervisor: *mut cmqtt_supervisor) -> cmqtt_result {
    guard(|| {
        if supervisor.is_null() {
            return Ok(());
        }
        not_in_callback("cmqtt_supervisor_free")?;
        // The handle stays allocated while the thread ends: callbacks running meanwhile may
        // still call functions on it (they get CMQTT_ERR_CLOSED).
        let s = unsafe { &*supervisor };
        // Publishes blocked on a full outbox (holding the handle) fail with CMQTT_ERR_CLOSED
        // at once, so that taking the supervisor out does not wait for them.
        if let Some(sup) = s.sup.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            sup.begin_close();
        }
        let taken = s.sup.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(sup) = taken {
            sup.close();
        }
        {
            let _config = lock(&s.cbs.config);
            s.cbs.messages.replace(None);
            s.cbs.events.replace(None);
        }
        s.cbs.messages.wait_idle();
        s.cbs.events.wait_idle();
        drop(unsafe { Box::from_raw(supervisor) });
        Ok(())
    })
}

/// Sets the supervisor's callbacks; either may be NULL.
///
/// `on_message` runs on the modem's dispatch thread for every received message (of every
/// reconnect), instead of queueing it for `cmqtt_supervisor_receive`; NULL queues again. The
/// message is lent for the call (see the contract).
///
/// `on_event` runs for every `cmqtt_supervisor_event`, on the thread that caused it: state
/// changes, losses, restores, failed attempts and failed publishes on the supervisor thread;
/// `CMQTT_SUPERVISOR_EVENT_DROPPED` on the thread whose publish made it (inside
/// `cmqtt_supervisor_publish`); `CMQTT_SUPERVISOR_EVENT_MODEM` on the modem's dispatch thread;
/// the final `CMQTT_STATE_STOPPED` on the thread calling `cmqtt_supervisor_free`. While it runs
/// on the supervisor thread supervision waits: keep it short. It may call any function
/// (publish included: from the supervisor thread a publish never waits for room in the outbox),
/// except the _free functions and waiting ones (`cmqtt_supervisor_wait_connected`,
/// `cmqtt_supervisor_flush` and `cmqtt_delivery_wait` with a timeout > 0 return
/// `CMQTT_ERR_IN_CALLBACK`: the supervisor would wait for itself). A publish it makes that drops
/// a message calls it again, nested, with the DROPPED event. Without an event callback, events
/// are not delivered to C.
///
/// When this returns, the previous callbacks are not running and will not be called again
/// (unless this is called from one of them: then the change applies from the next call).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_supervisor_set_callbacks(
    supervisor: *mut cmqtt_supervisor,
    userdata: *mut c_void,
    on_message: cmqtt_message_cb,
    on_event: cmqtt_supervisor_event_cb,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let s = unsafe { arg_ref(supervisor, "supervisor")? };
        let cbs = s.cbs.clone();
        with_sup!(s, |sup| {
            let config = lock(&cbs.config);
            let ud = Userdata(userdata);
            match on_message {
                None => sup.clear_on_message(),
                Some(_) => sup.on_message(message_hook(cbs.clone())),
            }
            cbs.messages
                .replace(on_message.map(|f| MessageCb { f, ud }));
            match on_event {
                None => sup.clear_on_event(),
                Some(_) => sup.on_event(event_hook(cbs.clone())),
            }
            cbs.events.replace(on_event.map(|f| EventCb { f, ud }));
            drop(config);
        });
        if !cbs.in_own_callback() {
            cbs.messages.wait_idle();
            cbs.events.wait_idle();
        }
        Ok(())
    })
}

// ---- events -----------------------------------------------------------------------------------

/// Where the supervised client stands.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cmqtt_state {
    /// No state: a NULL handle, or an event that is not a state change.
    CMQTT_STATE_NONE = 0,
    /// Opening the port and synchronising with the modem.
    CMQTT_STATE_OPENING = 1,
    /// Starting the service, uploading certificates, configuring SSL, acquiring the client.
    CMQTT_STATE_STARTING = 2,
    /// Connecting to the broker and subscribing.
    CMQTT_STATE_CONNECTING = 3,
    /// Connected: the outbox is being sent.
    CMQTT_STATE_CONNECTED = 4,
    /// Waiting before the next attempt (the event says which attempt and how long).
    CMQTT_STATE_WAITING = 5,
    /// Stopped by `cmqtt_supervisor_free`.
    CMQTT_STATE_STOPPED = 6,
}

/// A `cmqtt_state` as received from C (the header names it `cmqtt_state`).
pub type cmqtt_state_raw = u32;

/// What broke, in a `CMQTT_SUPERVISOR_EVENT_LOST` event.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cmqtt_loss {
    /// Not a loss event.
    CMQTT_LOSS_NONE = 0,
    /// The broker connection (`+CMQTTCONNLOST`); `cause` is its cause (1 socket closed
    /// passively, 2 socket reset, 3 network closed; 0 when inferred from a failed command).
    CMQTT_LOSS_CONNECTION = 1,
    /// The network (`+CMQTTNONET`): the service is restarted.
    CMQTT_LOSS_NETWORK = 2,
    /// The modem restarted (`RDY`): everything is rebuilt on it.
    CMQTT_LOSS_MODEM_RESTART = 3,
    /// The serial port failed or vanished; `text` says how. It is reopened (by path or USB
    /// identity).
    CMQTT_LOSS_PORT = 4,
    /// The modem stopped answering or answered nonsense; `text` says what.
    CMQTT_LOSS_UNRESPONSIVE = 5,
}

/// What a supervisor event is. Newer versions may add kinds: ignore the ones you do not know.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cmqtt_supervisor_event_kind {
    /// A new state in `state`; for `CMQTT_STATE_WAITING` also `attempt` (failed attempts so
    /// far) and `delay_ms` (the wait before the next one).
    CMQTT_SUPERVISOR_EVENT_STATE = 1,
    /// Something broke (`loss`, `cause`, `text`); restoring starts.
    CMQTT_SUPERVISOR_EVENT_LOST = 2,
    /// Connected again after a loss or failed attempts; `attempt` counts the attempts made
    /// (the successful one included).
    CMQTT_SUPERVISOR_EVENT_RESTORED = 3,
    /// Attempt number `attempt` to (re)connect failed; `text` is the error.
    CMQTT_SUPERVISOR_EVENT_ATTEMPT_FAILED = 4,
    /// The publish with ticket id `id` was dropped from a full outbox (drop-oldest policy).
    CMQTT_SUPERVISOR_EVENT_DROPPED = 5,
    /// The publish with ticket id `id` will never be sent; `text` says why.
    CMQTT_SUPERVISOR_EVENT_FAILED = 6,
    /// Any other modem event (unsolicited lines, boot noise, malformed data, queue overflows,
    /// ping failures), in `modem_event`.
    CMQTT_SUPERVISOR_EVENT_MODEM = 7,
    /// A subscription (`text`: "filter: reason") was refused by the broker or the modem and
    /// is dropped (not retried after reconnects).
    CMQTT_SUPERVISOR_EVENT_SUBSCRIBE_FAILED = 8,
    /// The outbox file was damaged at start: damaged records were skipped (the rest kept) and
    /// the file as found was kept aside; `text` says what and where.
    CMQTT_SUPERVISOR_EVENT_OUTBOX_RECOVERED = 9,
}

/// A supervisor event, passed to a `cmqtt_supervisor_event_cb`. Valid during the call only
/// (copy what you keep). Fields that do not apply to the kind are 0, -1 or NULL as stated.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cmqtt_supervisor_event {
    /// What happened.
    pub kind: cmqtt_supervisor_event_kind,
    /// STATE: the new state; otherwise `CMQTT_STATE_NONE`.
    pub state: cmqtt_state,
    /// STATE (WAITING): failed attempts so far; RESTORED: the failed attempts it took;
    /// ATTEMPT_FAILED: which attempt failed (from 1); otherwise 0.
    pub attempt: u32,
    /// STATE (WAITING): how long it waits, in ms; otherwise 0.
    pub delay_ms: u64,
    /// LOST: what broke; otherwise `CMQTT_LOSS_NONE`.
    pub loss: cmqtt_loss,
    /// LOST with `CMQTT_LOSS_CONNECTION`: the `+CMQTTCONNLOST` cause; otherwise -1.
    pub cause: i32,
    /// DROPPED, FAILED: the ticket id (`cmqtt_delivery_id`); otherwise 0.
    pub id: u64,
    /// A description (the error, the reason, the loss, the state). Never NULL.
    pub text: *const c_char,
    /// MODEM: the modem event (as `cmqtt_modem_set_event_callback` would give it); otherwise
    /// NULL.
    pub modem_event: *const cmqtt_event,
}

fn state_value(s: &State) -> cmqtt_state {
    use cmqtt_state::*;
    match s {
        State::Opening => CMQTT_STATE_OPENING,
        State::Starting => CMQTT_STATE_STARTING,
        State::Connecting => CMQTT_STATE_CONNECTING,
        State::Connected => CMQTT_STATE_CONNECTED,
        State::Waiting { .. } => CMQTT_STATE_WAITING,
        State::Stopped => CMQTT_STATE_STOPPED,
        _ => CMQTT_STATE_NONE,
    }
}

/// Builds the C view of `e` and hands it to `f`; the strings live during the call.
fn with_c_event<R>(e: &SupervisorEvent, f: impl FnOnce(&cmqtt_supervisor_event) -> R) -> R {
    use cmqtt_loss::*;
    use cmqtt_supervisor_event_kind::*;
    let mut ev = cmqtt_supervisor_event {
        kind: CMQTT_SUPERVISOR_EVENT_STATE,
        state: cmqtt_state::CMQTT_STATE_NONE,
        attempt: 0,
        delay_ms: 0,
        loss: CMQTT_LOSS_NONE,
        cause: -1,
        id: 0,
        text: std::ptr::null(),
        modem_event: std::ptr::null(),
    };
    let mut modem_text = CString::default();
    let mut modem = None;
    let text = match e {
        SupervisorEvent::State(s) => {
            ev.state = state_value(s);
            match s {
                State::Waiting { attempt, delay } => {
                    ev.attempt = *attempt;
                    ev.delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                    s.to_string()
                }
                other => other.to_string(),
            }
        }
        SupervisorEvent::Lost(l) => {
            ev.kind = CMQTT_SUPERVISOR_EVENT_LOST;
            ev.loss = match l {
                Loss::Connection { cause } => {
                    ev.cause = i32::from(*cause);
                    CMQTT_LOSS_CONNECTION
                }
                Loss::Network => CMQTT_LOSS_NETWORK,
                Loss::ModemRestart => CMQTT_LOSS_MODEM_RESTART,
                Loss::Port(_) => CMQTT_LOSS_PORT,
                Loss::Unresponsive(_) => CMQTT_LOSS_UNRESPONSIVE,
                _ => CMQTT_LOSS_NONE,
            };
            l.to_string()
        }
        SupervisorEvent::Restored { attempts } => {
            ev.kind = CMQTT_SUPERVISOR_EVENT_RESTORED;
            ev.attempt = *attempts;
            e.to_string()
        }
        SupervisorEvent::AttemptFailed { attempt, error } => {
            ev.kind = CMQTT_SUPERVISOR_EVENT_ATTEMPT_FAILED;
            ev.attempt = *attempt;
            error.clone()
        }
        SupervisorEvent::Dropped { id } => {
            ev.kind = CMQTT_SUPERVISOR_EVENT_DROPPED;
            ev.id = *id;
            format!("publish {id} dropped from the full outbox")
        }
        SupervisorEvent::Failed { id, reason } => {
            ev.kind = CMQTT_SUPERVISOR_EVENT_FAILED;
            ev.id = *id;
            reason.clone()
        }
        SupervisorEvent::SubscribeFailed { topic, reason } => {
            ev.kind = CMQTT_SUPERVISOR_EVENT_SUBSCRIBE_FAILED;
            format!("{}: {reason}", String::from_utf8_lossy(topic))
        }
        SupervisorEvent::OutboxRecovered { summary } => {
            ev.kind = CMQTT_SUPERVISOR_EVENT_OUTBOX_RECOVERED;
            summary.clone()
        }
        SupervisorEvent::Modem(me) => {
            ev.kind = CMQTT_SUPERVISOR_EVENT_MODEM;
            let (kind, client, code, dropped, t) = event_parts(me);
            modem_text = c_string(&t);
            modem = Some(cmqtt_event {
                kind,
                client,
                code,
                dropped,
                text: std::ptr::null(),
            });
            t
        }
        other => other.to_string(),
    };
    let text = c_string(&text);
    ev.text = text.as_ptr();
    if let Some(m) = modem.as_mut() {
        m.text = modem_text.as_ptr();
    }
    if let Some(m) = modem.as_ref() {
        ev.modem_event = m;
    }
    f(&ev)
}

/// Static lower-case name of a state: "opening", "starting", "connecting", "connected",
/// "waiting", "stopped", "none", or "unknown". Never NULL.
#[no_mangle]
pub extern "C" fn cmqtt_state_name(state: cmqtt_state_raw) -> *const c_char {
    guard_value(c"unknown".as_ptr(), || {
        let n = match state {
            0 => c"none",
            1 => c"opening",
            2 => c"starting",
            3 => c"connecting",
            4 => c"connected",
            5 => c"waiting",
            6 => c"stopped",
            _ => c"unknown",
        };
        n.as_ptr()
    })
}

// ---- state ------------------------------------------------------------------------------------

/// The current state; `CMQTT_STATE_NONE` when `supervisor` is NULL, `CMQTT_STATE_STOPPED`
/// while it is being freed.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_supervisor_state(
    supervisor: *const cmqtt_supervisor,
) -> cmqtt_state {
    guard_value(cmqtt_state::CMQTT_STATE_NONE, || {
        let Some(s) = (unsafe { supervisor.as_ref() }) else {
            return cmqtt_state::CMQTT_STATE_NONE;
        };
        let g = s.sup.read().unwrap_or_else(|e| e.into_inner());
        g.as_ref().map_or(cmqtt_state::CMQTT_STATE_STOPPED, |sup| {
            state_value(&sup.state())
        })
    })
}

/// Waits up to `timeout_ms` (0 = just look) until the client is connected: `CMQTT_OK`, or
/// `CMQTT_ERR_TIMEOUT` (the last error says the state it is in). `CMQTT_ERR_IN_CALLBACK` from
/// the event callback with a timeout > 0.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_supervisor_wait_connected(
    supervisor: *mut cmqtt_supervisor,
    timeout_ms: u32,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let s = unsafe { arg_ref(supervisor, "supervisor")? };
        may_wait(timeout_ms, "cmqtt_supervisor_wait_connected")?;
        with_sup!(s, |sup| {
            if sup.wait_connected(Duration::from_millis(u64::from(timeout_ms))) {
                Ok(())
            } else {
                fail(
                    CMQTT_ERR_TIMEOUT,
                    format!(
                        "not connected within {timeout_ms} ms (state: {:?})",
                        sup.state()
                    ),
                )
            }
        })
    })
}

/// Publishes waiting in the outbox (queued, or being sent); 0 when `supervisor` is NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_supervisor_outbox_len(supervisor: *const cmqtt_supervisor) -> usize {
    guard_value(0, || {
        let Some(s) = (unsafe { supervisor.as_ref() }) else {
            return 0;
        };
        let g = s.sup.read().unwrap_or_else(|e| e.into_inner());
        g.as_ref().map_or(0, |sup| sup.outbox_len())
    })
}

/// Waits up to `timeout_ms` until the outbox is empty (every publish delivered, failed or
/// dropped): `CMQTT_OK`, or `CMQTT_ERR_TIMEOUT` (the last error says how many wait).
/// `CMQTT_ERR_IN_CALLBACK` from the event callback with a timeout > 0.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_supervisor_flush(
    supervisor: *mut cmqtt_supervisor,
    timeout_ms: u32,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let s = unsafe { arg_ref(supervisor, "supervisor")? };
        may_wait(timeout_ms, "cmqtt_supervisor_flush")?;
        with_sup!(s, |sup| {
            if sup.flush(Duration::from_millis(u64::from(timeout_ms))) {
                Ok(())
            } else {
                fail(
                    CMQTT_ERR_TIMEOUT,
                    format!(
                        "{} publish(es) still in the outbox after {timeout_ms} ms (state: {:?})",
                        sup.outbox_len(),
                        sup.state()
                    ),
                )
            }
        })
    })
}

// ---- publish, subscribe, receive --------------------------------------------------------------

/// Queues a publish of `payload_len` bytes (any bytes; `payload` may be NULL when `payload_len`
/// is 0) to `topic` with QoS 0..2: it is sent, in order, as soon as the client is connected,
/// and again after a reconnect if the connection broke before the modem confirmed it (so QoS 1
/// may arrive twice; QoS 0 is never sent twice: an interrupted one fails). Arguments that can
/// never be sent are refused at once (`CMQTT_ERR_INVALID_ARGUMENT`). A full outbox follows
/// `when_full`: waits up to `pub_timeout_s` for room (then `CMQTT_ERR_OUTBOX_FULL`; never
/// waits from a callback), `CMQTT_ERR_OUTBOX_FULL` at once, or drops the oldest publish.
///
/// `delivery_out` is optional: when not NULL, `*delivery_out` is the publish's ticket (NULL on
/// failure); free it with `cmqtt_delivery_free`. Tickets are not needed for the publish to be
/// sent.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_supervisor_publish(
    supervisor: *mut cmqtt_supervisor,
    topic: *const c_char,
    payload: *const u8,
    payload_len: usize,
    qos: u8,
    retain: bool,
    delivery_out: *mut *mut cmqtt_delivery,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let out = match unsafe { delivery_out.as_mut() } {
            Some(o) => {
                *o = std::ptr::null_mut();
                Some(o)
            }
            None => None,
        };
        let s = unsafe { arg_ref(supervisor, "supervisor")? };
        let topic = unsafe { arg_str(topic, "topic")? };
        let payload = unsafe { arg_bytes(payload, payload_len, "payload")? };
        let d = with_sup!(s, |sup| sup.publish(topic, payload, qos, retain)).map_err(Fail::Core)?;
        if let Some(out) = out {
            *out = Box::into_raw(Box::new(cmqtt_delivery { d }));
        }
        Ok(())
    })
}

/// Adds a subscription (topic filter, QoS 0..2): applied now if connected, and after every
/// reconnect. Returns once it is recorded (the SUBSCRIBE itself is made by the supervisor
/// thread; a failure there counts as a connection problem and is retried).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_supervisor_subscribe(
    supervisor: *mut cmqtt_supervisor,
    topic: *const c_char,
    qos: u8,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let s = unsafe { arg_ref(supervisor, "supervisor")? };
        let topic = unsafe { arg_str(topic, "topic")? };
        with_sup!(s, |sup| sup.subscribe(topic, qos))?;
        Ok(())
    })
}

/// Waits up to `timeout_ms` (0 = just look) for the next received message (from any
/// connection of the supervised client) and returns it in `*msg_out`, owned by the caller: free
/// it with `cmqtt_message_free`. `CMQTT_ERR_TIMEOUT` (and `*msg_out` NULL) when none came.
/// Messages go to the message callback instead while one is set.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_supervisor_receive(
    supervisor: *mut cmqtt_supervisor,
    timeout_ms: u32,
    msg_out: *mut *mut cmqtt_message,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let out = unsafe { arg_out(msg_out, "msg_out")? };
        let s = unsafe { arg_ref(supervisor, "supervisor")? };
        may_wait(timeout_ms, "cmqtt_supervisor_receive")?;
        let stashed = lock(&s.cbs.stash).pop_front();
        let m = match stashed {
            Some(m) => m,
            None => with_sup!(s, |sup| sup
                .recv_timeout(Duration::from_millis(u64::from(timeout_ms))))
            .map_or_else(
                || {
                    fail(
                        CMQTT_ERR_TIMEOUT,
                        format!("no message within {timeout_ms} ms"),
                    )
                },
                Ok,
            )?,
        };
        *out = cmqtt_message::new(&m).boxed();
        Ok(())
    })
}

// ---- delivery tickets -------------------------------------------------------------------------

/// The ticket of one publish (opaque), from `cmqtt_supervisor_publish`. Thread-safe; may
/// outlive its supervisor (it then keeps the status it had). Free with `cmqtt_delivery_free`.
pub struct cmqtt_delivery {
    d: Delivery,
}

/// Where a publish stands.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cmqtt_delivery_state {
    /// No ticket (NULL).
    CMQTT_DELIVERY_NONE = 0,
    /// Waiting in the outbox (not connected, or behind others, or being sent).
    CMQTT_DELIVERY_QUEUED = 1,
    /// The modem reported it sent: for QoS 1 and 2 the broker acknowledged it.
    CMQTT_DELIVERY_DELIVERED = 2,
    /// It will never be sent (see `cmqtt_delivery_wait` for why).
    CMQTT_DELIVERY_FAILED = 3,
    /// Dropped from a full outbox (drop-oldest policy).
    CMQTT_DELIVERY_DROPPED = 4,
}

fn delivery_state(s: &DeliveryStatus) -> cmqtt_delivery_state {
    use cmqtt_delivery_state::*;
    match s {
        DeliveryStatus::Queued => CMQTT_DELIVERY_QUEUED,
        DeliveryStatus::Delivered => CMQTT_DELIVERY_DELIVERED,
        DeliveryStatus::Failed(_) => CMQTT_DELIVERY_FAILED,
        DeliveryStatus::Dropped => CMQTT_DELIVERY_DROPPED,
    }
}

/// The ticket's id: increasing from 1 in publish order, kept across restarts when the outbox
/// is persisted; the `id` of DROPPED and FAILED events. 0 when `delivery` is NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_delivery_id(delivery: *const cmqtt_delivery) -> u64 {
    guard_value(0, || unsafe { delivery.as_ref() }.map_or(0, |d| d.d.id()))
}

/// Where the publish stands now (never waits); `CMQTT_DELIVERY_NONE` when `delivery` is NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_delivery_status(
    delivery: *const cmqtt_delivery,
) -> cmqtt_delivery_state {
    guard_value(cmqtt_delivery_state::CMQTT_DELIVERY_NONE, || {
        unsafe { delivery.as_ref() }.map_or(cmqtt_delivery_state::CMQTT_DELIVERY_NONE, |d| {
            delivery_state(&d.d.status())
        })
    })
}

/// Waits up to `timeout_ms` (0 = just look) until the publish is no longer queued: `CMQTT_OK`
/// when delivered, `CMQTT_ERR_DELIVERY_FAILED` (the last error says why),
/// `CMQTT_ERR_DELIVERY_DROPPED`, or `CMQTT_ERR_TIMEOUT` while it is still queued.
/// `CMQTT_ERR_IN_CALLBACK` from the supervisor's event callback with a timeout > 0.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_delivery_wait(
    delivery: *const cmqtt_delivery,
    timeout_ms: u32,
) -> cmqtt_result {
    guard(|| {
        not_in_trace()?;
        let d = unsafe { arg_ref(delivery, "delivery")? };
        may_wait(timeout_ms, "cmqtt_delivery_wait")?;
        let id = d.d.id();
        match d.d.wait(Duration::from_millis(u64::from(timeout_ms))) {
            DeliveryStatus::Delivered => Ok(()),
            DeliveryStatus::Queued => fail(
                CMQTT_ERR_TIMEOUT,
                format!("publish {id} is still queued after {timeout_ms} ms"),
            ),
            DeliveryStatus::Failed(why) => fail(
                CMQTT_ERR_DELIVERY_FAILED,
                format!("publish {id} failed: {why}"),
            ),
            DeliveryStatus::Dropped => fail(
                CMQTT_ERR_DELIVERY_DROPPED,
                format!("publish {id} was dropped from the full outbox (drop-oldest policy)"),
            ),
        }
    })
}

/// Frees a ticket (the publish itself goes on). NULL is a no-op. Freeing twice is undefined
/// behaviour, like free(3).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_delivery_free(delivery: *mut cmqtt_delivery) {
    guard_value((), || {
        if !delivery.is_null() {
            drop(unsafe { Box::from_raw(delivery) });
        }
    })
}

impl crate::util::Versioned for cmqtt_supervisor_config {
    fn defaults() -> Self {
        cmqtt_supervisor_config_default()
    }
}

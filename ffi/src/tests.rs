//! Unit tests calling the exported functions as C would.

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::Mutex;

use crate::result::cmqtt_result::*;
use crate::result::{cmqtt_result, guard, ALL_RESULTS};
use crate::util::{enter, Context};
use crate::*;

fn text(p: *const c_char) -> String {
    assert!(!p.is_null());
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn last_message() -> String {
    text(cmqtt_last_error_message())
}

#[test]
fn header_is_current() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/cmqtt.h"));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../include/cmqtt.h");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        generated == committed,
        "include/cmqtt.h is not what ffi/src generates; run\n    CMQTT_REGENERATE_HEADER=1 cargo build -p cmqtt-ffi\nand commit include/cmqtt.h"
    );
}

#[test]
fn result_values_are_stable_and_grouped() {
    assert_eq!(CMQTT_OK as u32, 0);
    assert_eq!(CMQTT_ERR_NULL_ARGUMENT as u32, 1);
    assert_eq!(CMQTT_ERR_INVALID_UTF8 as u32, 2);
    assert_eq!(CMQTT_ERR_INVALID_ARGUMENT as u32, 3);
    assert_eq!(CMQTT_ERR_SERIAL as u32, 100);
    assert_eq!(CMQTT_ERR_TIMEOUT as u32, 200);
    assert_eq!(CMQTT_ERR_FAILED as u32, 301);
    assert_eq!(CMQTT_ERR_MODEM_TIMEOUT as u32, 317);
    assert_eq!(CMQTT_ERR_DISCONNECT_FAILED as u32, 335);
    assert_eq!(CMQTT_ERR_PANIC as u32, 900);
    // Sorted, no duplicates.
    for w in ALL_RESULTS.windows(2) {
        assert!((w[0] as u32) < (w[1] as u32));
    }
    // The 35 failure codes of the modem, one to one, with the manual's meaning.
    for c in cmqtt_core::ErrCode::ALL.iter().skip(1) {
        let r = cmqtt_result::from_modem_code(*c).expect("every modem code has a value");
        assert_eq!(r as u32, 300 + u32::from(c.code()));
        let s = text(cmqtt_result_str(r as u32));
        assert!(s.contains(c.meaning()), "{s}");
    }
    assert_eq!(
        cmqtt_result::from_modem_code(cmqtt_core::ErrCode::Success),
        None
    );
}

#[test]
fn result_str_covers_every_value_and_unknown_ones() {
    let unknown = "unknown cmqtt_result value";
    let mut seen = std::collections::HashSet::new();
    for r in ALL_RESULTS {
        let s = text(cmqtt_result_str(*r as u32));
        assert!(!s.is_empty() && s != unknown, "{r:?}: {s}");
        assert!(seen.insert(s.clone()), "duplicate text {s}");
        // Static: the same pointer every time.
        assert_eq!(cmqtt_result_str(*r as u32), cmqtt_result_str(*r as u32));
    }
    for v in [5, 99, 103, 209, 300, 336, 899, 902, u32::MAX] {
        assert_eq!(text(cmqtt_result_str(v)), unknown, "{v}");
    }
}

#[test]
fn core_errors_map_to_their_group() {
    use cmqtt_core::{ErrCode, Error, ModemFailure};
    let cases: Vec<(Error, cmqtt_result, i32)> = vec![
        (
            Error::InvalidArgument {
                param: "qos",
                reason: "x".into(),
            },
            CMQTT_ERR_INVALID_ARGUMENT,
            -1,
        ),
        (
            Error::Modem {
                command: "AT+CMQTTSTART",
                failure: ModemFailure::Code(ErrCode::NetworkIsOpened),
            },
            CMQTT_ERR_NETWORK_IS_OPENED,
            23,
        ),
        (
            Error::Modem {
                command: "AT+X",
                failure: ModemFailure::UnknownCode(77),
            },
            CMQTT_ERR_MODEM_CODE_UNKNOWN,
            77,
        ),
        (
            Error::Modem {
                command: "AT+X",
                failure: ModemFailure::Error,
            },
            CMQTT_ERR_MODEM_ERROR,
            -1,
        ),
        (
            Error::Modem {
                command: "AT+X",
                failure: ModemFailure::Cme("10".into()),
            },
            CMQTT_ERR_CME_ERROR,
            -1,
        ),
        (
            Error::Modem {
                command: "AT+X",
                failure: ModemFailure::Cms("500".into()),
            },
            CMQTT_ERR_CMS_ERROR,
            -1,
        ),
        (
            Error::Timeout {
                command: "AT",
                timeout: std::time::Duration::from_secs(1),
            },
            CMQTT_ERR_TIMEOUT,
            -1,
        ),
        (
            Error::Protocol {
                command: "AT",
                answer: "?".into(),
            },
            CMQTT_ERR_PROTOCOL,
            -1,
        ),
        (Error::Io(std::io::Error::other("x")), CMQTT_ERR_IO, -1),
        (Error::Closed("gone".into()), CMQTT_ERR_CLOSED, -1),
        (
            Error::NotConnected { client: 0 },
            CMQTT_ERR_NOT_CONNECTED,
            -1,
        ),
        (
            Error::ConnectionLost {
                client: 1,
                cause: 1,
            },
            CMQTT_ERR_CONNECTION_LOST,
            -1,
        ),
        (
            Error::Unsupported("AT+CMQTTSUB?"),
            CMQTT_ERR_UNSUPPORTED,
            -1,
        ),
    ];
    for (e, want, code) in cases {
        let shown = e.to_string();
        assert_eq!(guard(|| Err(e.into())), want);
        assert_eq!(cmqtt_last_modem_code(), code);
        assert_eq!(last_message(), shown);
    }
}

#[test]
fn panics_do_not_cross_the_boundary() {
    let r = guard(|| panic!("boom"));
    assert_eq!(r, CMQTT_ERR_PANIC);
    assert!(last_message().contains("boom"));
}

#[test]
fn version_is_the_crate_version() {
    assert_eq!(text(cmqtt_version()), env!("CARGO_PKG_VERSION"));
}

#[test]
fn free_null_is_a_no_op() {
    unsafe {
        assert_eq!(cmqtt_modem_free(null_mut()), CMQTT_OK);
        assert_eq!(cmqtt_client_free(null_mut()), CMQTT_OK);
        cmqtt_message_free(null_mut());
        cmqtt_string_list_free(null_mut());
    }
}

#[test]
fn null_handles_and_pointers_are_refused() {
    let s = c"x".as_ptr();
    let n = CMQTT_ERR_NULL_ARGUMENT;
    unsafe {
        let mut m: *mut cmqtt_modem = null_mut();
        let mut c: *mut cmqtt_client = null_mut();
        let mut msg: *mut cmqtt_message = null_mut();
        let mut list: *mut cmqtt_string_list = null_mut();
        let opts = cmqtt_modem_options_default();
        let copts = cmqtt_client_options_default();
        let ssl = cmqtt_ssl_config_default();
        let (mut u1, mut u2) = (0u8, 0u8);
        assert_eq!(cmqtt_modem_open(null(), 115200, &mut m), n);
        assert_eq!(cmqtt_modem_open(s, 115200, null_mut()), n);
        assert_eq!(cmqtt_modem_open_with(null(), &opts, &mut m), n);
        assert_eq!(cmqtt_modem_open_with(s, null(), &mut m), n);
        assert_eq!(cmqtt_modem_open_with(s, &opts, null_mut()), n);
        assert_eq!(cmqtt_modem_start(null_mut()), n);
        assert_eq!(cmqtt_modem_stop(null_mut()), n);
        assert_eq!(
            cmqtt_modem_set_event_callback(null_mut(), null_mut(), None),
            n
        );
        assert_eq!(cmqtt_modem_ssl_configure(null_mut(), 0, &ssl), n);
        assert_eq!(cmqtt_modem_cert_upload(null_mut(), s, null(), 0), n);
        assert_eq!(cmqtt_modem_cert_list(null_mut(), &mut list), n);
        assert_eq!(cmqtt_modem_cert_delete(null_mut(), s), n);
        assert_eq!(cmqtt_modem_command(null_mut(), s, 10, &mut list), n);
        assert_eq!(cmqtt_modem_signal_quality(null_mut(), &mut u1, &mut u2), n);
        assert_eq!(cmqtt_modem_registration(null_mut(), &mut u1), n);
        assert_eq!(cmqtt_client_acquire(null_mut(), 0, s, false, &mut c), n);
        assert_eq!(cmqtt_client_acquire_with(null_mut(), 0, &copts, &mut c), n);
        assert_eq!(cmqtt_client_set_check_utf8(null_mut(), true), n);
        assert_eq!(cmqtt_client_set_op_timeout(null_mut(), 60), n);
        assert_eq!(cmqtt_client_set_version(null_mut(), 4), n);
        assert_eq!(cmqtt_client_set_ssl_context(null_mut(), 0), n);
        assert_eq!(cmqtt_client_set_will(null_mut(), s, null(), 0, 0), n);
        assert_eq!(
            cmqtt_client_connect(null_mut(), s, 60, true, null(), null()),
            n
        );
        assert_eq!(cmqtt_client_disconnect(null_mut(), 0), n);
        assert_eq!(
            cmqtt_client_publish(null_mut(), s, null(), 0, 0, false, 60),
            n
        );
        assert_eq!(cmqtt_client_subscribe(null_mut(), s, 0), n);
        assert_eq!(cmqtt_client_subscribe_many(null_mut(), &s, &u1, 1), n);
        assert_eq!(cmqtt_client_unsubscribe(null_mut(), s), n);
        assert_eq!(cmqtt_client_unsubscribe_many(null_mut(), &s, 1), n);
        assert_eq!(
            cmqtt_client_set_callbacks(null_mut(), null_mut(), None, None),
            n
        );
        assert_eq!(cmqtt_client_receive(null_mut(), 0, &mut msg), n);
        assert_eq!(cmqtt_client_receive(null_mut(), 0, null_mut()), n);
        assert!(last_message().contains("msg_out"), "{}", last_message());
        assert!(m.is_null() && c.is_null() && msg.is_null() && list.is_null());

        // Accessors: NULL in, a neutral value out.
        assert_eq!(cmqtt_modem_model(null()), cmqtt_model::CMQTT_MODEL_AUTO);
        assert_eq!(text(cmqtt_modem_firmware(null())), "");
        assert_eq!(text(cmqtt_modem_model_name(null())), "");
        assert_eq!(cmqtt_client_index(null()), -1);
        assert!(!cmqtt_client_is_connected(null()));
        let mut len = 99usize;
        assert!(cmqtt_message_topic(null(), &mut len).is_null());
        assert_eq!(len, 0);
        len = 99;
        assert!(cmqtt_message_payload(null(), &mut len).is_null());
        assert_eq!(len, 0);
        assert!(cmqtt_message_topic(null(), null_mut()).is_null());
        assert_eq!(cmqtt_message_client(null()), -1);
        assert!(cmqtt_message_copy(null()).is_null());
        assert_eq!(cmqtt_string_list_len(null()), 0);
        assert!(cmqtt_string_list_get(null(), 0).is_null());
    }
}

#[test]
fn supervisor_nulls_defaults_and_bad_configs() {
    let n = CMQTT_ERR_NULL_ARGUMENT;
    unsafe {
        let mut s: *mut cmqtt_supervisor = std::ptr::dangling_mut();
        let mut d: *mut cmqtt_delivery = std::ptr::dangling_mut();
        let mut msg: *mut cmqtt_message = null_mut();
        let t = c"t".as_ptr();
        assert_eq!(cmqtt_supervisor_new(null(), &mut s), n);
        assert!(s.is_null());
        let mut cfg = cmqtt_supervisor_config_default();
        assert_eq!(cmqtt_supervisor_new(&cfg, null_mut()), n);
        assert_eq!(cmqtt_supervisor_new(&cfg, &mut s), n, "port is NULL");
        assert_eq!(
            cmqtt_supervisor_publish(null_mut(), t, null(), 0, 1, false, &mut d),
            n
        );
        assert!(d.is_null(), "the optional output is set to NULL first");
        assert_eq!(cmqtt_supervisor_subscribe(null_mut(), t, 1), n);
        assert_eq!(cmqtt_supervisor_receive(null_mut(), 0, &mut msg), n);
        assert_eq!(
            cmqtt_supervisor_set_callbacks(null_mut(), null_mut(), None, None),
            n
        );
        assert_eq!(cmqtt_supervisor_wait_connected(null_mut(), 0), n);
        assert_eq!(cmqtt_supervisor_flush(null_mut(), 0), n);
        assert_eq!(cmqtt_delivery_wait(null(), 0), n);
        assert_eq!(
            cmqtt_supervisor_state(null()),
            cmqtt_state::CMQTT_STATE_NONE
        );
        assert_eq!(cmqtt_supervisor_outbox_len(null()), 0);
        assert_eq!(cmqtt_delivery_id(null()), 0);
        assert_eq!(
            cmqtt_delivery_status(null()),
            cmqtt_delivery_state::CMQTT_DELIVERY_NONE
        );
        assert_eq!(cmqtt_supervisor_free(null_mut()), CMQTT_OK);
        cmqtt_delivery_free(null_mut());
        assert_eq!(text(cmqtt_state_name(4)), "connected");
        assert_eq!(text(cmqtt_state_name(99)), "unknown");

        // The defaults are the core's.
        let core = cmqtt_core::SupervisorConfig::new(
            cmqtt_core::Endpoint::Serial {
                path: String::new(),
                baud: 115200,
            },
            "x",
            "tcp://h:1883",
        );
        assert_eq!(cfg.outbox_capacity, core.outbox.capacity);
        assert_eq!(
            u64::from(cfg.backoff_max_ms),
            core.backoff.max.as_millis() as u64
        );
        assert_eq!(cfg.backoff_jitter, core.backoff.jitter);
        assert_eq!(u64::from(cfg.pub_timeout_s), core.pub_timeout.as_secs());
        assert_eq!(cfg.queue_capacity as usize, core.queue_capacity);

        let port = c"/dev/cmqtt-ffi-unit-no-such-port";
        let ok = |cfg: &mut cmqtt_supervisor_config| {
            *cfg = cmqtt_supervisor_config_default();
            cfg.port = port.as_ptr();
            cfg.client.client_id = c"ffi-unit-sup".as_ptr();
            cfg.server = c"tcp://127.0.0.1:1883".as_ptr();
        };
        type Edit = Box<dyn Fn(&mut cmqtt_supervisor_config)>;
        let cases: Vec<(Edit, cmqtt_result)> = vec![
            (Box::new(|c| c.endpoint = 3), CMQTT_ERR_INVALID_ARGUMENT),
            (Box::new(|c| c.when_full = 3), CMQTT_ERR_INVALID_ARGUMENT),
            (
                Box::new(|c| c.server = c"udp://x:1".as_ptr()),
                CMQTT_ERR_INVALID_ARGUMENT,
            ),
            (Box::new(|c| c.client.client_id = null()), n),
            (
                Box::new(|c| c.backoff_jitter = f64::NAN),
                CMQTT_ERR_INVALID_ARGUMENT,
            ),
            (
                Box::new(|c| c.backoff_jitter = f64::INFINITY),
                CMQTT_ERR_INVALID_ARGUMENT,
            ),
            (
                Box::new(|c| c.pub_timeout_s = 200),
                CMQTT_ERR_INVALID_ARGUMENT,
            ),
            (Box::new(|c| c.usb_interface = 256), CMQTT_OK), // not a USB endpoint: unused
            (
                Box::new(|c| {
                    c.endpoint = 1;
                    c.usb_vid = 0x1e0e;
                    c.usb_interface = 256;
                }),
                CMQTT_ERR_INVALID_ARGUMENT,
            ),
            (
                Box::new(|c| {
                    c.endpoint = 2;
                    c.tcp_address = c"127.0.0.1".as_ptr();
                }),
                CMQTT_ERR_INVALID_ARGUMENT,
            ),
            (Box::new(|c| c.cert_count = 1), n),
        ];
        for (i, (bad, want)) in cases.iter().enumerate() {
            ok(&mut cfg);
            bad(&mut cfg);
            s = std::ptr::dangling_mut();
            assert_eq!(
                cmqtt_supervisor_new(&cfg, &mut s),
                *want,
                "case {i}: {}",
                last_message()
            );
            if *want == CMQTT_OK {
                assert_eq!(cmqtt_supervisor_free(s), CMQTT_OK);
            } else {
                assert!(s.is_null(), "case {i}");
            }
        }
    }
}

static SUP_EVENTS: Mutex<Vec<(cmqtt_supervisor_event_kind, cmqtt_state, u64, String)>> =
    Mutex::new(Vec::new());

unsafe extern "C" fn sup_event_cb(_ud: *mut c_void, e: *const cmqtt_supervisor_event) {
    let e = unsafe { &*e };
    let t = unsafe { CStr::from_ptr(e.text) }
        .to_string_lossy()
        .into_owned();
    SUP_EVENTS.lock().unwrap().push((e.kind, e.state, e.id, t));
}

#[test]
fn supervisor_outbox_policies_and_events_without_a_modem() {
    use cmqtt_supervisor_event_kind::*;
    unsafe {
        let mut cfg = cmqtt_supervisor_config_default();
        cfg.port = c"/dev/cmqtt-ffi-unit-absent".as_ptr();
        cfg.client.client_id = c"ffi-unit-policies".as_ptr();
        cfg.server = c"tcp://127.0.0.1:1883".as_ptr();
        cfg.backoff_initial_ms = 10;
        cfg.backoff_max_ms = 50;
        cfg.outbox_capacity = 1;
        cfg.when_full = cmqtt_when_full::CMQTT_WHEN_FULL_DROP_OLDEST as u32;
        let mut s: *mut cmqtt_supervisor = null_mut();
        assert_eq!(
            cmqtt_supervisor_new(&cfg, &mut s),
            CMQTT_OK,
            "{}",
            last_message()
        );
        assert_eq!(
            cmqtt_supervisor_set_callbacks(s, null_mut(), None, Some(sup_event_cb)),
            CMQTT_OK
        );
        let (mut a, mut b) = (null_mut(), null_mut());
        let t = c"unit/t".as_ptr();
        assert_eq!(
            cmqtt_supervisor_publish(s, t, c"a".as_ptr().cast(), 1, 1, false, &mut a),
            CMQTT_OK
        );
        assert_eq!(
            cmqtt_supervisor_publish(s, t, c"b".as_ptr().cast(), 1, 1, false, &mut b),
            CMQTT_OK
        );
        assert_eq!(cmqtt_delivery_wait(a, 0), CMQTT_ERR_DELIVERY_DROPPED);
        assert_eq!(cmqtt_delivery_wait(b, 20), CMQTT_ERR_TIMEOUT);
        assert!(
            last_message().contains("still queued"),
            "{}",
            last_message()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(cmqtt_supervisor_free(s), CMQTT_OK);
        let events = SUP_EVENTS.lock().unwrap().clone();
        let id_a = cmqtt_delivery_id(a);
        assert!(
            events
                .iter()
                .any(|e| e.0 == CMQTT_SUPERVISOR_EVENT_DROPPED && e.2 == id_a),
            "{events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| e.0 == CMQTT_SUPERVISOR_EVENT_ATTEMPT_FAILED
                    && e.3.contains("cmqtt-ffi-unit-absent")),
            "{events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| e.0 == CMQTT_SUPERVISOR_EVENT_STATE
                    && e.1 == cmqtt_state::CMQTT_STATE_WAITING),
            "{events:?}"
        );
        assert_eq!(
            events.last().map(|e| (e.0, e.1)),
            Some((
                CMQTT_SUPERVISOR_EVENT_STATE,
                cmqtt_state::CMQTT_STATE_STOPPED
            )),
            "the last event is the stop"
        );
        // Tickets outlive the supervisor.
        assert_eq!(
            cmqtt_delivery_status(b),
            cmqtt_delivery_state::CMQTT_DELIVERY_QUEUED
        );
        cmqtt_delivery_free(a);
        cmqtt_delivery_free(b);

        // Error policy.
        cfg.when_full = cmqtt_when_full::CMQTT_WHEN_FULL_ERROR as u32;
        assert_eq!(cmqtt_supervisor_new(&cfg, &mut s), CMQTT_OK);
        assert_eq!(
            cmqtt_supervisor_publish(s, t, null(), 0, 1, false, null_mut()),
            CMQTT_OK
        );
        assert_eq!(
            cmqtt_supervisor_publish(s, t, null(), 0, 1, false, null_mut()),
            CMQTT_ERR_OUTBOX_FULL
        );
        assert!(last_message().contains("full"), "{}", last_message());
        // Argument errors keep their own code under that policy.
        assert_eq!(
            cmqtt_supervisor_publish(s, t, null(), 0, 7, false, null_mut()),
            CMQTT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(cmqtt_supervisor_free(s), CMQTT_OK);
    }
}

#[test]
fn invalid_utf8_and_bad_ports() {
    let bad = CString::new(vec![b'/', b'd', 0xff, 0xfe]).unwrap();
    let mut m: *mut cmqtt_modem = std::ptr::dangling_mut::<cmqtt_modem>();
    unsafe {
        assert_eq!(
            cmqtt_modem_open(bad.as_ptr(), 115200, &mut m),
            CMQTT_ERR_INVALID_UTF8
        );
        assert!(m.is_null(), "the output is NULL on failure");
        assert!(last_message().contains("port"), "{}", last_message());
        let path = c"/dev/cmqtt-no-such-port";
        assert_eq!(
            cmqtt_modem_open(path.as_ptr(), 115200, &mut m),
            CMQTT_ERR_SERIAL
        );
        assert!(m.is_null());
        assert!(last_message().contains("/dev/cmqtt-no-such-port"));
        assert_eq!(cmqtt_last_modem_code(), -1);
        let mut opts = cmqtt_modem_options_default();
        opts.model = 42;
        assert_eq!(
            cmqtt_modem_open_with(path.as_ptr(), &opts, &mut m),
            CMQTT_ERR_INVALID_ARGUMENT
        );
    }
}

#[test]
fn model_names() {
    assert_eq!(text(cmqtt_model_name(0)), "auto");
    assert_eq!(text(cmqtt_model_name(1)), "a7600");
    assert_eq!(text(cmqtt_model_name(2)), "sim7600");
    assert_eq!(text(cmqtt_model_name(3)), "sim7672x");
    assert_eq!(text(cmqtt_model_name(77)), "unknown");
}

#[test]
fn callbacks_may_not_free_and_trace_may_not_call_back() {
    // A fake non-NULL handle: the context check comes before the handle is touched.
    let fake_client = std::ptr::dangling_mut::<cmqtt_client>();
    let fake_modem = std::ptr::dangling_mut::<cmqtt_modem>();
    unsafe {
        {
            let _g = enter(Context::Dispatch { slot: 1 }, 0);
            assert_eq!(
                cmqtt_supervisor_free(std::ptr::dangling_mut()),
                CMQTT_ERR_IN_CALLBACK
            );
            assert_eq!(cmqtt_client_free(fake_client), CMQTT_ERR_IN_CALLBACK);
            assert_eq!(cmqtt_modem_free(fake_modem), CMQTT_ERR_IN_CALLBACK);
            assert_eq!(cmqtt_client_free(null_mut()), CMQTT_OK);
        }
        {
            let _g = enter(Context::Trace, 0);
            assert_eq!(cmqtt_modem_start(fake_modem), CMQTT_ERR_IN_CALLBACK);
            assert_eq!(
                cmqtt_client_publish(fake_client, c"t".as_ptr(), null(), 0, 0, false, 60),
                CMQTT_ERR_IN_CALLBACK
            );
            assert_eq!(cmqtt_client_free(fake_client), CMQTT_ERR_IN_CALLBACK);
        }
        assert_eq!(cmqtt_modem_start(null_mut()), CMQTT_ERR_NULL_ARGUMENT);
    }
}

#[test]
fn slot_waits_for_a_running_callback() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    let slot = Arc::new(crate::util::Slot::<u32>::new());
    slot.set(Some(7));
    let done = Arc::new(AtomicBool::new(false));
    let (s2, d2) = (slot.clone(), done.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        s2.run(0, |v| {
            assert_eq!(v, Some(7));
            tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            d2.store(true, Ordering::SeqCst);
        })
    });
    rx.recv().unwrap();
    slot.set(None);
    assert!(
        done.load(Ordering::SeqCst),
        "set returned while the callback ran"
    );
    t.join().unwrap();
    slot.run(0, |v| assert_eq!(v, None));
}

// ---- against the emulator ---------------------------------------------------------------------

static TRACE: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn trace_cb(_ud: *mut c_void, _dir: cmqtt_direction, line: *const c_char) {
    let l = unsafe { CStr::from_ptr(line) }
        .to_string_lossy()
        .into_owned();
    // Calling back from a trace is refused, not a deadlock (no assert here: a panic must not
    // unwind out of an extern "C" function).
    let refused = unsafe { cmqtt_modem_start(std::ptr::dangling_mut::<cmqtt_modem>()) }
        == CMQTT_ERR_IN_CALLBACK;
    let mut t = TRACE.lock().unwrap();
    if !refused {
        t.push("TRACE CALLBACK WAS NOT REFUSED".into());
    }
    t.push(l);
}

#[test]
fn emulator_session_misuse_and_redaction() {
    let sim = cmqtt_sim::Simulator::start_pty(cmqtt_sim::SimConfig::new(cmqtt_sim::Model::A7600))
        .expect("start the emulator");
    let dev = CString::new(sim.device()).unwrap();
    let secret = "hunter2-very-secret";
    unsafe {
        let mut opts = cmqtt_modem_options_default();
        opts.trace = Some(trace_cb);
        let mut m: *mut cmqtt_modem = null_mut();
        let r = cmqtt_modem_open_with(dev.as_ptr(), &opts, &mut m);
        assert_eq!(r, CMQTT_OK, "{}", last_message());
        assert_eq!(cmqtt_modem_model(m), cmqtt_model::CMQTT_MODEL_A7600);
        assert!(!text(cmqtt_modem_model_name(m)).is_empty());
        assert_eq!(cmqtt_modem_start(m), CMQTT_OK, "{}", last_message());

        let mut c: *mut cmqtt_client = null_mut();
        let bad_id = CString::new(vec![b'i', 0xc3, 0x28]).unwrap();
        assert_eq!(
            cmqtt_client_acquire(m, 0, bad_id.as_ptr(), false, &mut c),
            CMQTT_ERR_INVALID_UTF8
        );
        assert_eq!(
            cmqtt_client_acquire(m, 2, c"id".as_ptr(), false, &mut c),
            CMQTT_ERR_INVALID_ARGUMENT
        );
        let r = cmqtt_client_acquire(m, 0, c"ffi-unit".as_ptr(), false, &mut c);
        assert_eq!(r, CMQTT_OK, "{}", last_message());
        assert_eq!(cmqtt_client_index(c), 0);

        // Not connected yet; bad arguments are refused before that is even looked at.
        let t = c"a/b".as_ptr();
        assert_eq!(
            cmqtt_client_publish(c, t, c"x".as_ptr().cast(), 1, 0, false, 60),
            CMQTT_ERR_NOT_CONNECTED
        );
        assert_eq!(
            cmqtt_client_publish(c, t, null(), 0, 3, false, 60),
            CMQTT_ERR_INVALID_ARGUMENT
        );
        let long = CString::new("t".repeat(1025)).unwrap();
        assert_eq!(
            cmqtt_client_publish(c, long.as_ptr(), null(), 0, 0, false, 60),
            CMQTT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            cmqtt_client_publish(c, t, null(), 5, 0, false, 60),
            CMQTT_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            cmqtt_client_subscribe_many(c, null(), null(), 0),
            CMQTT_ERR_INVALID_ARGUMENT
        );
        let topics = [t, null()];
        let qos = [0u8, 1];
        assert_eq!(
            cmqtt_client_subscribe_many(c, topics.as_ptr(), qos.as_ptr(), 2),
            CMQTT_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            cmqtt_client_set_callbacks(c, null_mut(), None, None),
            CMQTT_OK
        );
        let mut msg: *mut cmqtt_message = null_mut();
        assert_eq!(cmqtt_client_receive(c, 10, &mut msg), CMQTT_ERR_TIMEOUT);
        assert!(msg.is_null());

        // A connect that fails (nothing listens on port 1) still sent the password: it must
        // not be in the trace nor in the error text.
        let pw = CString::new(secret).unwrap();
        let r = cmqtt_client_connect(
            c,
            c"tcp://127.0.0.1:1".as_ptr(),
            60,
            true,
            c"user".as_ptr(),
            pw.as_ptr(),
        );
        assert_ne!(r, CMQTT_OK);
        assert!(!last_message().contains(secret));
        let mut list: *mut cmqtt_string_list = null_mut();
        let _ = cmqtt_modem_command(m, c"AT+CMQTTCONNECT?".as_ptr(), 5000, &mut list);
        cmqtt_string_list_free(list);

        assert_eq!(cmqtt_client_free(c), CMQTT_OK, "{}", last_message());
        assert_eq!(cmqtt_modem_free(m), CMQTT_OK);
    }
    let trace = TRACE.lock().unwrap();
    assert!(
        trace.iter().any(|l| l.contains("AT+CMQTTCONNECT=")),
        "the connect was traced: {trace:?}"
    );
    assert!(
        trace
            .iter()
            .all(|l| !l.contains(secret) && !l.contains("NOT REFUSED")),
        "password in the trace: {trace:?}"
    );
    drop(trace);
    sim.shutdown();
}

#[test]
fn capacities_beyond_the_maximum_are_invalid_arguments_not_aborts() {
    assert_eq!(
        CMQTT_MAX_QUEUE_CAPACITY as usize,
        cmqtt_core::MAX_QUEUE_CAPACITY
    );
    unsafe {
        // Refused before the port is touched (the port does not even exist).
        let mut o = cmqtt_modem_options_default();
        o.queue_capacity = u32::MAX;
        let mut m: *mut cmqtt_modem = null_mut();
        let r = cmqtt_modem_open_with(c"/dev/cmqtt-ffi-unit-absent".as_ptr(), &o, &mut m);
        assert_eq!(r, CMQTT_ERR_INVALID_ARGUMENT, "{}", last_message());
        assert!(m.is_null());
        assert!(last_message().contains("1048576"), "{}", last_message());

        let base = || {
            let mut cfg = cmqtt_supervisor_config_default();
            cfg.port = c"/dev/cmqtt-ffi-unit-absent".as_ptr();
            cfg.client.client_id = c"ffi-unit-caps".as_ptr();
            cfg.server = c"tcp://127.0.0.1:1883".as_ptr();
            cfg
        };
        type Edit = fn(&mut cmqtt_supervisor_config);
        let edits: [(Edit, &str); 3] = [
            (|c| c.queue_capacity = u32::MAX, "queue_capacity"),
            (|c| c.outbox_capacity = usize::MAX, "outbox capacity"),
            (|c| c.modem.queue_capacity = u32::MAX, "queue_capacity"),
        ];
        for (edit, what) in edits {
            let mut cfg = base();
            edit(&mut cfg);
            let mut s: *mut cmqtt_supervisor = null_mut();
            let r = cmqtt_supervisor_new(&cfg, &mut s);
            assert_eq!(r, CMQTT_ERR_INVALID_ARGUMENT, "{what}: {}", last_message());
            assert!(s.is_null());
            assert!(last_message().contains(what), "{}", last_message());
            assert!(last_message().contains("1048576"), "{}", last_message());
        }
    }
}

// ---- the event plane through the C ABI ------------------------------------------------------

fn rx_block(client: u8, topic: &str, payload: &str) -> Vec<u8> {
    format!(
        "\r\n+CMQTTRXSTART: {client},{},{}\r\n+CMQTTRXTOPIC: {client},{}\r\n{topic}\r\n+CMQTTRXPAYLOAD: {client},{}\r\n{payload}\r\n+CMQTTRXEND: {client}\r\n",
        topic.len(),
        payload.len(),
        topic.len(),
        payload.len()
    )
    .into_bytes()
}

fn wait_for(timeout: std::time::Duration, f: impl Fn() -> bool) -> bool {
    let end = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    f()
}

/// What the C callbacks below record (each test passes its own through `userdata`).
#[derive(Default)]
struct Seen {
    gate: std::sync::atomic::AtomicBool,
    messages: std::sync::atomic::AtomicUsize,
    lost: std::sync::atomic::AtomicUsize,
    lost_events: std::sync::atomic::AtomicUsize,
}

unsafe extern "C" fn seen_event(ud: *mut c_void, ev: *const cmqtt_event) {
    let seen = unsafe { &*(ud as *const Seen) };
    if unsafe { (*ev).kind } == cmqtt_event_kind::CMQTT_EVENT_CONNECTION_LOST {
        seen.lost_events
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

unsafe extern "C" fn seen_message(ud: *mut c_void, _msg: *const cmqtt_message) {
    use std::sync::atomic::Ordering;
    let seen = unsafe { &*(ud as *const Seen) };
    seen.messages.fetch_add(1, Ordering::SeqCst);
    // Block until the test opens the gate (a slow consumer).
    while !seen.gate.load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

unsafe extern "C" fn seen_lost(ud: *mut c_void, _client: u8, _cause: u8) {
    let seen = unsafe { &*(ud as *const Seen) };
    seen.lost.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// Issue 11's reproduction in C: queue capacity 4, a blocking message callback, 12 messages,
/// then `+CMQTTCONNLOST`. Before, the loss never reached the modem's event callback (what a
/// supervisor listens to).
#[test]
fn c_connection_lost_callback_runs_after_a_blocked_message_callback() {
    use std::sync::atomic::Ordering;
    let sim = cmqtt_sim::Simulator::start_pty(cmqtt_sim::SimConfig::new(cmqtt_sim::Model::A7600))
        .expect("start the emulator");
    let dev = CString::new(sim.device()).unwrap();
    let seen = Box::new(Seen::default());
    unsafe {
        let mut opts = cmqtt_modem_options_default();
        opts.queue_capacity = 4;
        let mut m: *mut cmqtt_modem = null_mut();
        assert_eq!(
            cmqtt_modem_open_with(dev.as_ptr(), &opts, &mut m),
            CMQTT_OK,
            "{}",
            last_message()
        );
        assert_eq!(cmqtt_modem_start(m), CMQTT_OK, "{}", last_message());
        let mut c: *mut cmqtt_client = null_mut();
        assert_eq!(
            cmqtt_client_acquire(m, 0, c"ffi-plane".as_ptr(), false, &mut c),
            CMQTT_OK
        );
        let ud = &*seen as *const Seen as *mut c_void;
        assert_eq!(
            cmqtt_client_set_callbacks(c, ud, Some(seen_message), Some(seen_lost)),
            CMQTT_OK
        );
        assert_eq!(
            cmqtt_modem_set_event_callback(m, ud, Some(seen_event)),
            CMQTT_OK
        );
        let faults = sim.faults();
        for i in 0..12 {
            faults.inject(&rx_block(0, "t", &format!("m{i}")));
        }
        assert!(wait_for(std::time::Duration::from_secs(5), || seen
            .messages
            .load(Ordering::SeqCst)
            == 1));
        faults.inject(b"\r\n+CMQTTCONNLOST: 0,1\r\n");
        std::thread::sleep(std::time::Duration::from_millis(200));
        seen.gate.store(true, Ordering::SeqCst);
        assert!(
            wait_for(std::time::Duration::from_secs(5), || seen
                .lost
                .load(Ordering::SeqCst)
                == 1),
            "the connection-lost callback never ran"
        );
        assert!(
            wait_for(std::time::Duration::from_secs(5), || seen
                .lost_events
                .load(Ordering::SeqCst)
                == 1),
            "the modem event callback never saw the loss"
        );
        assert_eq!(
            cmqtt_modem_set_event_callback(m, null_mut(), None),
            CMQTT_OK
        );
        assert_eq!(
            cmqtt_client_set_callbacks(c, null_mut(), None, None),
            CMQTT_OK
        );
        assert_eq!(cmqtt_client_free(c), CMQTT_OK);
        assert_eq!(cmqtt_modem_free(m), CMQTT_OK);
    }
}

/// Before: freeing a client acquired before a modem restart cleared the callbacks that the
/// client acquired after it (same index) had installed.
#[test]
fn c_freeing_a_stale_client_keeps_the_new_clients_callbacks() {
    use std::sync::atomic::Ordering;
    let sim = cmqtt_sim::Simulator::start_pty(cmqtt_sim::SimConfig::new(cmqtt_sim::Model::A7600))
        .expect("start the emulator");
    let dev = CString::new(sim.device()).unwrap();
    let old_seen = Box::new(Seen::default());
    let new_seen = Box::new(Seen::default());
    old_seen.gate.store(true, Ordering::SeqCst);
    new_seen.gate.store(true, Ordering::SeqCst);
    unsafe {
        let mut m: *mut cmqtt_modem = null_mut();
        assert_eq!(
            cmqtt_modem_open(dev.as_ptr(), 115200, &mut m),
            CMQTT_OK,
            "{}",
            last_message()
        );
        assert_eq!(cmqtt_modem_start(m), CMQTT_OK);
        let mut old: *mut cmqtt_client = null_mut();
        assert_eq!(
            cmqtt_client_acquire(m, 0, c"ffi-old".as_ptr(), false, &mut old),
            CMQTT_OK
        );
        let ud = &*old_seen as *const Seen as *mut c_void;
        assert_eq!(
            cmqtt_client_set_callbacks(old, ud, Some(seen_message), None),
            CMQTT_OK
        );
        sim.faults().reset();
        // The restarted modem answers again once it has booted; start the service afresh.
        assert!(wait_for(
            std::time::Duration::from_secs(10),
            || cmqtt_modem_start(m) == CMQTT_OK
        ));
        let mut new: *mut cmqtt_client = null_mut();
        let r = cmqtt_client_acquire(m, 0, c"ffi-new".as_ptr(), false, &mut new);
        assert_eq!(r, CMQTT_OK, "{}", last_message());
        let ud = &*new_seen as *const Seen as *mut c_void;
        assert_eq!(
            cmqtt_client_set_callbacks(new, ud, Some(seen_message), None),
            CMQTT_OK
        );
        assert_eq!(cmqtt_client_free(old), CMQTT_OK);
        sim.faults().inject(&rx_block(0, "t", "after"));
        assert!(
            wait_for(std::time::Duration::from_secs(5), || new_seen
                .messages
                .load(Ordering::SeqCst)
                == 1),
            "freeing the stale client cleared the new client's callback"
        );
        assert_eq!(old_seen.messages.load(Ordering::SeqCst), 0);
        assert_eq!(
            cmqtt_client_set_callbacks(new, null_mut(), None, None),
            CMQTT_OK
        );
        assert_eq!(cmqtt_client_free(new), CMQTT_OK);
        assert_eq!(cmqtt_modem_free(m), CMQTT_OK);
    }
}

/// The options structs can grow: a program built against an older (smaller) struct still
/// works (the fields it does not have keep their defaults); a size never set, or larger than
/// this library knows, is refused with a message saying what to do.
#[test]
fn versioned_options_structs() {
    unsafe {
        let mut m: *mut cmqtt_modem = null_mut();
        let mut o = cmqtt_modem_options_default();
        o.struct_size = 0;
        assert_eq!(
            cmqtt_modem_open_with(c"/dev/cmqtt-none".as_ptr(), &o, &mut m),
            CMQTT_ERR_INVALID_ARGUMENT
        );
        assert!(last_message().contains("_default()"), "{}", last_message());
        o.struct_size = std::mem::size_of::<cmqtt_modem_options>() as u32 + 8;
        assert_eq!(
            cmqtt_modem_open_with(c"/dev/cmqtt-none".as_ptr(), &o, &mut m),
            CMQTT_ERR_INVALID_ARGUMENT
        );
        // An "older" struct that ends after `baud`: the queue capacity given beyond it is
        // ignored (an absurd one would be refused), the port is tried.
        o = cmqtt_modem_options_default();
        o.queue_capacity = u32::MAX;
        o.struct_size = 8;
        assert_eq!(
            cmqtt_modem_open_with(c"/dev/cmqtt-none".as_ptr(), &o, &mut m),
            CMQTT_ERR_SERIAL,
            "{}",
            last_message()
        );
        let mut cfg = cmqtt_supervisor_config_default();
        cfg.struct_size = 3;
        let mut s: *mut cmqtt_supervisor = null_mut();
        assert_eq!(
            cmqtt_supervisor_new(&cfg, &mut s),
            CMQTT_ERR_INVALID_ARGUMENT
        );
        assert!(s.is_null());
    }
}

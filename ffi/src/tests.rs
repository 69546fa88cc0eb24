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

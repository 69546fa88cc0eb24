//! Secrets never leak: the connect password and the bytes of an uploaded private key are absent
//! from the AT trace, from `log` output at trace level, from the `Debug` of every public type
//! that holds them and from error messages (a refused connect included).

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cmqtt::command::{CertDown, Command, Connect};
use cmqtt::{ConnectOptions, Endpoint, Profile, SupervisorConfig, SupervisorEvent, Will};
use support::*;

const PASSWORD: &str = "hunter2-Pa55w0rd";
const KEY: &[u8] = b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BSECRETKEYBYTES\n-----END PRIVATE KEY-----\n";
const KEY_MARK: &str = "SECRETKEYBYTES";

/// Everything logged by any crate, at every level.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}: {}", r.level(), r.target(), r.args()));
    }
    fn flush(&self) {}
}

fn logger() -> &'static Capture {
    static L: OnceLock<&'static Capture> = OnceLock::new();
    L.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(c).expect("the only logger of this test binary");
        log::set_max_level(log::LevelFilter::Trace);
        c
    })
}

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "{what} shows the password: {text}"
    );
    assert!(
        !text.contains(KEY_MARK),
        "{what} shows the private key: {text}"
    );
}

/// A modem with echo on (it echoes command lines and prompted data, as after a restart) that
/// accepts the first connect, refuses the second as bad credentials, and reports the
/// credentials back in `AT+CMQTTCONNECT?`.
fn modem_with_echo() -> Scripted {
    let connects = Arc::new(Mutex::new(0));
    Scripted::start("A7600E-H", move |l, m| {
        if l.starts_with("AT+CMQTTCONNECT=") {
            m.say(&format!("{l}\r"));
            let mut n = connects.lock().unwrap();
            *n += 1;
            let code = if *n == 1 { 0 } else { 30 };
            m.say(&format!("\r\nOK\r\n\r\n+CMQTTCONNECT: 0,{code}\r\n"));
            return true;
        }
        if l == "AT+CMQTTCONNECT?" {
            m.say(&format!(
                "{l}\r\r\n+CMQTTCONNECT: 0,\"tcp://broker.local:1883\",60,1,\"user\",\"{PASSWORD}\"\r\n\r\nOK\r\n"
            ));
            return true;
        }
        if let Some(rest) = l.strip_prefix("AT+CCERTDOWN=") {
            let n: usize = rest.rsplit(',').next().unwrap().parse().unwrap();
            m.say(&format!("{l}\r\r\n>"));
            let d = m.read_data(n);
            m.send(&d);
            m.say("\r\nOK\r\n");
            return true;
        }
        a76(l, m)
    })
}

#[test]
fn no_secret_in_traces_logs_or_errors() {
    let log = logger();
    let traced = Arc::new(Mutex::new(Vec::<String>::new()));
    let t2 = traced.clone();
    let s = modem_with_echo();
    let modem = open_with(
        &s,
        cmqtt::ModemOptions {
            sync_timeout: Duration::from_secs(3),
            echo_off: false,
            ..Default::default()
        }
        .trace(move |d, l| t2.lock().unwrap().push(format!("{} {l}", d.arrow()))),
    );
    fast(&modem, 100, 2000);
    modem.cert_upload("client.key", KEY).unwrap();
    let c = modem.client(0, "secret", false).unwrap();
    let opts = ConnectOptions::new("tcp://broker.local:1883").credentials("user", PASSWORD);
    c.connect(&opts).unwrap();
    let lines = modem
        .command("AT+CMQTTCONNECT?", "+CMQTTCONNECT:", Duration::from_secs(2))
        .unwrap();
    // The caller asked for it: the answer itself is not redacted, only what is traced or logged.
    assert!(lines[0].contains(PASSWORD));
    c.discard();
    let c = modem.client(0, "secret", false).unwrap();
    let err = c.connect(&opts).expect_err("bad credentials");
    assert_clean("the connect error (Display)", &err.to_string());
    assert_clean("the connect error (Debug)", &format!("{err:?}"));
    assert_clean("the connect error (source chain)", &{
        let mut s = String::new();
        let mut e: Option<&dyn std::error::Error> = Some(&err);
        while let Some(x) = e {
            s.push_str(&x.to_string());
            e = x.source();
        }
        s
    });
    c.discard();
    drop(modem);
    drop(s);

    let traced = traced.lock().unwrap().join("\n");
    assert!(
        traced.contains("AT+CMQTTCONNECT="),
        "nothing traced: {traced}"
    );
    assert!(traced.contains("<redacted>"), "{traced}");
    assert!(traced.contains("bytes of data"), "{traced}");
    assert_clean("the trace hook", &traced);
    let logged = log.0.lock().unwrap().join("\n");
    assert!(
        logged.contains("cmqtt::at"),
        "nothing logged at trace level"
    );
    assert_clean("the log", &logged);
}

#[test]
fn no_secret_in_debug_output() {
    let opts = ConnectOptions::new("tcp://broker.local:1883").credentials("user", PASSWORD);
    assert_clean("ConnectOptions", &format!("{opts:?} {opts:#?}"));

    let mut cfg = SupervisorConfig::new(
        Endpoint::Serial {
            path: "/dev/ttyUSB2".into(),
            baud: 115200,
        },
        "dev",
        "tcp://broker.local:1883",
    );
    cfg.connect = opts.clone();
    cfg.certs.push(("client.key".into(), KEY.to_vec()));
    cfg.will = Some(Will {
        topic: b"w".to_vec(),
        message: b"bye".to_vec(),
        qos: 1,
    });
    let d = format!("{cfg:?} {cfg:#?}");
    assert_clean("SupervisorConfig", &d);
    assert!(d.contains("client.key"), "{d}");

    let connect = Connect {
        index: 0,
        server: "tcp://broker.local:1883",
        keepalive: 60,
        clean_session: true,
        username: Some("user"),
        password: Some(PASSWORD),
        timeout: Duration::from_secs(30),
    };
    assert_clean("Connect", &format!("{connect:?}"));
    let profile = Profile::default();
    let req = connect.request(&profile).unwrap();
    assert!(req.line.contains(PASSWORD), "the line sent carries it");
    assert_clean("Request of Connect", &format!("{req:?} {req:#?}"));

    let cert = CertDown {
        name: "client.key",
        data: KEY,
    };
    assert_clean("CertDown", &format!("{cert:?}"));
    let req = cert.request(&profile).unwrap();
    assert_clean("Request of CertDown", &format!("{req:?} {req:#?}"));

    // A password the modem cannot take is refused without being quoted.
    for bad in [
        format!("{PASSWORD}\""),
        format!("{PASSWORD}{}", "x".repeat(300)),
    ] {
        let c = Connect {
            password: Some(&bad),
            ..connect.clone()
        };
        let e = c.request(&profile).expect_err("refused");
        assert_clean("a refused password's error", &format!("{e} {e:?}"));
        let ev = SupervisorEvent::AttemptFailed {
            attempt: 1,
            error: e.to_string(),
        };
        assert_clean("SupervisorEvent", &format!("{ev:?}"));
    }
}

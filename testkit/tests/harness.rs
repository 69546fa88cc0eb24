//! The harness against the real mosquitto tools.

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use cmqtt_testkit::{
    free_port, publish, publish_opts, require_tool, try_publish_opts, wait_until, Broker,
    BrokerOptions, Certs, PeerOptions, Received, Subscriber, TempDir,
};

const T: Duration = Duration::from_secs(5);

fn connects(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn broker_starts_and_accepts() {
    let b = Broker::start();
    assert!(b.is_running());
    assert!(connects(b.port()), "{}", b.log());
    assert_eq!(b.host(), "127.0.0.1");
    assert_eq!(b.url(), format!("tcp://127.0.0.1:{}", b.port()));
    assert_eq!(b.tls_port(), None);
    assert_eq!(b.tls_url(), None);
    assert!(b.certs().is_none());
    assert!(b.dir().join("mosquitto.conf").is_file());
    assert!(b.log().contains(" running"), "{}", b.log());
    let dir = b.dir().to_path_buf();
    drop(b);
    assert!(!dir.exists(), "temp dir not removed");
}

#[test]
fn binary_payload_is_byte_exact() {
    let b = Broker::start();
    let mut sub = Subscriber::start(&b, &["bin/#", "other"], 1);
    let all: Vec<u8> = (0..=255u8).chain(*b"\r\n\0\r\n").collect();
    publish(&b, "bin/all bytes", &all, 1, false);
    publish(&b, "bin/empty", b"", 0, false);
    publish(&b, "other", b"\n", 2, false);
    let got = sub.collect(3, T);
    assert_eq!(
        got,
        vec![
            Received {
                topic: b"bin/all bytes".to_vec(),
                payload: all,
                retained: false,
                qos: 1
            },
            Received {
                topic: b"bin/empty".to_vec(),
                payload: vec![],
                retained: false,
                qos: 0
            },
            Received {
                topic: b"other".to_vec(),
                payload: b"\n".to_vec(),
                retained: false,
                qos: 1
            },
        ],
        "{}",
        sub.diagnostics()
    );
    assert_eq!(got[0].topic_str(), "bin/all bytes");
    assert!(sub.next(Duration::from_millis(100)).is_none());
}

#[test]
fn big_payload() {
    let b = Broker::start();
    let mut sub = Subscriber::start(&b, &["big"], 0);
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    publish(&b, "big", &payload, 0, false);
    let m = sub.next(T).expect("no message");
    assert_eq!(m.payload, payload);
}

#[test]
fn retained_flag_and_qos() {
    let b = Broker::start();
    publish(&b, "ret/a", b"kept", 1, true);
    let mut sub2 = Subscriber::start(&b, &["ret/#"], 2);
    let mut sub0 = Subscriber::start(&b, &["ret/#"], 0);
    let m = sub2.next(T).expect("no retained message");
    assert_eq!(
        (m.payload.as_slice(), m.retained, m.qos),
        (&b"kept"[..], true, 1)
    );
    let m = sub0.next(T).expect("no retained message");
    assert_eq!((m.retained, m.qos), (true, 0));

    // Live messages are delivered without RETAIN, even if published retained.
    publish(&b, "ret/b", b"live", 2, true);
    let m = sub2.next(T).expect("no live message");
    assert_eq!(
        (m.payload.as_slice(), m.retained, m.qos),
        (&b"live"[..], false, 2)
    );
    let m = sub0.next(T).expect("no live message");
    assert_eq!((m.retained, m.qos), (false, 0));

    // Clearing a retained message with an empty payload.
    publish(&b, "ret/a", b"", 0, true);
    drop(sub2);
    let mut sub = Subscriber::start(&b, &["ret/#"], 1);
    let got = sub.collect(2, Duration::from_millis(500));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].topic, b"ret/b");
}

#[test]
fn persistent_session_queues_while_offline() {
    let b = Broker::start();
    let opts = PeerOptions {
        client_id: Some("persist-1".into()),
        clean_session: false,
        ..PeerOptions::default()
    };
    drop(Subscriber::start_opts(&b, &["q/#"], 1, opts.clone()));
    // The broker notices the killed client; queue for the offline session.
    assert!(wait_until(T, || b
        .log()
        .contains("persist-1 closed its connection")
        || b.log().contains("Client persist-1 disconnected")));
    publish(&b, "q/1", b"while offline", 1, false);
    let mut sub = Subscriber::start_opts(&b, &["q/#"], 1, opts);
    let m = sub.next(T).expect("queued message not delivered");
    assert_eq!(m.payload, b"while offline");
}

#[test]
fn tls_listener() {
    let b = Broker::start_with(BrokerOptions {
        tls: true,
        ..Default::default()
    });
    let tls_port = b.tls_port().expect("tls port");
    assert_ne!(tls_port, b.port());
    assert_eq!(b.tls_url(), Some(format!("tcp://127.0.0.1:{tls_port}")));
    let certs = b.certs().expect("certs");
    assert!(certs.ca_pem().starts_with(b"-----BEGIN CERTIFICATE-----"));

    let tls = PeerOptions {
        tls: true,
        client_cert: false,
        ..Default::default()
    };
    let mut sub = Subscriber::start_opts(&b, &["t"], 1, tls.clone());
    publish_opts(&b, "t", b"over tls", 1, false, &tls);
    publish(&b, "t", b"plain", 1, false);
    let got = sub.collect(2, T);
    let payloads: Vec<&[u8]> = got.iter().map(|m| m.payload.as_slice()).collect();
    assert_eq!(payloads, [&b"over tls"[..], b"plain"]);
}

#[test]
fn tls_client_cert_required() {
    let b = Broker::start_with(BrokerOptions {
        tls: true,
        require_client_cert: true,
        ..Default::default()
    });
    let with_cert = PeerOptions {
        tls: true,
        ..Default::default()
    };
    let without = PeerOptions {
        client_cert: false,
        ..with_cert.clone()
    };
    let mut sub = Subscriber::start_opts(&b, &["c"], 0, with_cert.clone());
    publish_opts(&b, "c", b"mtls", 0, false, &with_cert);
    assert_eq!(sub.next(T).expect("no message").payload, b"mtls");
    let err = try_publish_opts(&b, "c", b"x", 0, false, &without).unwrap_err();
    assert!(!err.is_empty());
    assert!(Subscriber::try_start_opts(&b, &["c"], 0, without).is_err());
}

#[test]
fn password_file() {
    let b = Broker::start_with(BrokerOptions {
        users: vec![
            ("alice".into(), "s3cret".into()),
            ("bob".into(), "with space".into()),
        ],
        ..Default::default()
    });
    let as_user = |u: &str, p: &str| PeerOptions {
        credentials: Some((u.into(), p.into())),
        ..Default::default()
    };
    let mut sub = Subscriber::start_opts(&b, &["auth"], 1, as_user("bob", "with space"));
    publish_opts(&b, "auth", b"ok", 1, false, &as_user("alice", "s3cret"));
    assert_eq!(sub.next(T).expect("no message").payload, b"ok");

    let err =
        try_publish_opts(&b, "auth", b"no", 1, false, &as_user("alice", "wrong")).unwrap_err();
    assert!(err.contains("not authorised"), "{err}");
    let err = try_publish_opts(&b, "auth", b"no", 1, false, &PeerOptions::default()).unwrap_err();
    assert!(err.contains("not authorised"), "{err}");
    let err = Subscriber::try_start_opts(&b, &["auth"], 1, as_user("bob", "nope")).unwrap_err();
    assert!(err.contains("not authorised"), "{err}");
    assert!(sub.next(Duration::from_millis(200)).is_none());
}

#[test]
fn kill_and_restart_on_same_ports() {
    let mut b = Broker::start_with(BrokerOptions {
        tls: true,
        ..Default::default()
    });
    let (port, tls_port) = (b.port(), b.tls_port());
    let pid = b.pid().expect("pid");
    let mut survivor = Subscriber::start(&b, &["r"], 1);
    assert_eq!(survivor.subacks(), 1);
    b.kill();
    assert!(!b.is_running());
    assert_eq!(b.pid(), None);
    assert!(!connects(port));
    b.restart();
    assert!(b.is_running());
    assert_ne!(b.pid(), Some(pid));
    assert_eq!((b.port(), b.tls_port()), (port, tls_port));
    assert!(connects(port));
    let tls = PeerOptions {
        tls: true,
        ..Default::default()
    };
    let mut sub = Subscriber::start_opts(&b, &["r"], 1, tls.clone());
    publish(&b, "r", b"after restart", 1, false);
    assert_eq!(sub.next(T).expect("no message").payload, b"after restart");
    // mosquitto_sub reconnects and subscribes again by itself.
    assert!(
        wait_until(T, || survivor.subacks() >= 2),
        "{}",
        survivor.diagnostics()
    );
    publish(&b, "r", b"again", 1, false);
    // (It may or may not have been back in time for "after restart".)
    let got = survivor.collect(2, Duration::from_millis(500));
    assert_eq!(got.last().expect("no message").payload, b"again", "{got:?}");

    // restart() of a running broker stops it first.
    b.restart();
    b.stop();
    assert!(!b.is_running());
    assert!(!connects(port));
    b.stop();
    b.kill();
    assert!(try_publish_opts(&b, "r", b"x", 0, false, &PeerOptions::default()).is_err());
    b.restart();
    publish(&b, "r", b"x", 0, false);
    assert_eq!(b.log().matches(" running").count(), 4, "{}", b.log());
}

#[test]
fn persistence_keeps_retained_messages_across_stop() {
    let mut b = Broker::start_with(BrokerOptions {
        persistence: true,
        ..Default::default()
    });
    publish(&b, "p", b"survives", 1, true);
    b.stop();
    b.restart();
    let mut sub = Subscriber::start(&b, &["p"], 1);
    let m = sub.next(T).expect("retained message lost");
    assert_eq!((m.payload.as_slice(), m.retained), (&b"survives"[..], true));
}

#[test]
fn certs_verify_with_openssl() {
    let dir = TempDir::new("cmqtt-certs-test");
    let c = Certs::generate(dir.path());
    let openssl = require_tool("openssl");
    for cert in [&c.server_cert, &c.client_cert] {
        let out = Command::new(&openssl)
            .args(["verify", "-x509_strict", "-CAfile"])
            .arg(&c.ca_cert)
            .arg(cert)
            .output()
            .expect("openssl verify");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = |p: &std::path::Path| {
        let out = Command::new(&openssl)
            .args(["x509", "-noout", "-text", "-in"])
            .arg(p)
            .output()
            .expect("openssl x509");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ca = text(&c.ca_cert);
    assert!(ca.contains("Version: 3") && ca.contains("CA:TRUE"), "{ca}");
    let server = text(&c.server_cert);
    assert!(
        server.contains("DNS:localhost, IP Address:127.0.0.1"),
        "{server}"
    );
    assert!(server.contains("TLS Web Server Authentication"), "{server}");
    assert!(server.contains("CA:FALSE"), "{server}");
    let client = text(&c.client_cert);
    assert!(client.contains("TLS Web Client Authentication"), "{client}");
    for k in [c.server_key_pem(), c.client_key_pem()] {
        assert!(k.starts_with(b"-----BEGIN PRIVATE KEY-----"));
    }
    assert!(c
        .server_cert_pem()
        .starts_with(b"-----BEGIN CERTIFICATE-----"));
    assert!(c
        .client_cert_pem()
        .starts_with(b"-----BEGIN CERTIFICATE-----"));
}

#[test]
fn helpers() {
    let p = free_port();
    assert_ne!(p, 0);
    assert!(std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
    assert!(require_tool("mosquitto").is_file());
    let mut n = 0;
    assert!(wait_until(T, || {
        n += 1;
        n == 3
    }));
    assert!(!wait_until(Duration::from_millis(30), || false));
}

#[test]
#[should_panic(
    expected = "no-such-tool-xyz not found: install it with `apt-get install mosquitto mosquitto-clients`"
)]
fn require_tool_panics_with_hint() {
    require_tool("no-such-tool-xyz");
}

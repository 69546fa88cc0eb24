//! The generated certificates are acceptable to rustls/webpki, both against
//! mosquitto (OpenSSL) and in a rustls server verifying the client cert.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use cmqtt_testkit::{Broker, BrokerOptions, Certs, TempDir};
use tokio_rustls::rustls::{
    self,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName},
    ClientConfig, RootCertStore, ServerConfig,
};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(certs: &Certs) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&certs.ca_pem()).expect("ca pem"))
        .expect("CA accepted as trust anchor");
    roots
}

fn client_config(certs: &Certs, with_client_cert: bool) -> Arc<ClientConfig> {
    let b = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots(certs));
    Arc::new(if with_client_cert {
        b.with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(&certs.client_cert_pem()).expect("client pem")],
            PrivateKeyDer::from_pem_slice(&certs.client_key_pem()).expect("client key"),
        )
        .expect("client cert accepted")
    } else {
        b.with_no_client_auth()
    })
}

/// MQTT 3.1.1 CONNECT (clean session, keepalive 60, client id "rustls").
const CONNECT: [u8; 20] = [
    0x10, 18, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 6, b'r', b'u', b's', b't', b'l', b's',
];

/// Connects over TLS with rustls and returns the CONNACK bytes.
fn connack(port: u16, name: &str, cfg: Arc<ClientConfig>) -> std::io::Result<[u8; 4]> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let name = ServerName::try_from(name.to_string()).expect("server name");
    let conn = rustls::ClientConnection::new(cfg, name).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(&CONNECT)?;
    let mut buf = [0u8; 4];
    tls.read_exact(&mut buf)?;
    Ok(buf)
}

#[test]
fn rustls_client_against_mosquitto() {
    let b = Broker::start_with(BrokerOptions {
        tls: true,
        require_client_cert: true,
        ..Default::default()
    });
    let certs = b.certs().expect("certs");
    let port = b.tls_port().expect("tls port");
    for name in ["localhost", "127.0.0.1"] {
        let ack = connack(port, name, client_config(certs, true))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", b.log()));
        assert_eq!(ack, [0x20, 2, 0, 0], "{}", b.log());
    }
    assert!(
        connack(port, "localhost", client_config(certs, false)).is_err(),
        "mosquitto accepted a client without certificate"
    );
    assert!(
        connack(port, "example.com", client_config(certs, true)).is_err(),
        "rustls accepted a wrong server name"
    );
}

#[test]
fn rustls_server_verifies_client_cert() {
    let dir = TempDir::new("cmqtt-rustls-test");
    let certs = Certs::generate(dir.path());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(&certs)),
        provider(),
    )
    .build()
    .expect("client verifier");
    let server_cfg = Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(&certs.server_cert_pem()).expect("pem")],
                PrivateKeyDer::from_pem_slice(&certs.server_key_pem()).expect("key"),
            )
            .expect("server cert accepted"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().expect("accept");
        tcp.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let conn = rustls::ServerConnection::new(server_cfg).expect("server conn");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).expect("server read");
        tls.write_all(&buf).expect("server write");
        tls.flush().expect("flush");
        tls.conn.peer_certificates().map(|c| c.len())
    });
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let conn = rustls::ClientConnection::new(
        client_config(&certs, true),
        ServerName::try_from("localhost").expect("name"),
    )
    .expect("client conn");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"ping").expect("client write");
    let mut buf = [0u8; 4];
    tls.read_exact(&mut buf).expect("client read");
    assert_eq!(&buf, b"ping");
    assert_eq!(server.join().expect("server thread"), Some(1));
}

//! Test certificates made with the `openssl` CLI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{proc, require_tool};

/// A test PKI: a self-signed CA, a server certificate and a client
/// certificate, all signed by the CA. Every file is PEM; keys are EC P-256 in
/// PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
///
/// The certificates are X.509 v3 and acceptable to rustls/webpki:
/// * CA: `CN=cmqtt test CA`, `basicConstraints=critical,CA:TRUE`,
///   `keyUsage=critical,keyCertSign,cRLSign`.
/// * server: `CN=localhost`, `subjectAltName=DNS:localhost,IP:127.0.0.1`,
///   `extendedKeyUsage=serverAuth`, `CA:FALSE`.
/// * client: `CN=cmqtt test client`, `extendedKeyUsage=clientAuth`, `CA:FALSE`.
///
/// Valid from the moment of generation for 10 years.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certs {
    /// The directory holding the files below.
    pub dir: PathBuf,
    /// `ca.pem`: the CA certificate (the trust anchor for both sides).
    pub ca_cert: PathBuf,
    /// `ca.key`: the CA private key.
    pub ca_key: PathBuf,
    /// `server.pem`: the server certificate.
    pub server_cert: PathBuf,
    /// `server.key`: the server private key.
    pub server_key: PathBuf,
    /// `client.pem`: the client certificate.
    pub client_cert: PathBuf,
    /// `client.key`: the client private key.
    pub client_key: PathBuf,
}

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no

[dn]
CN = unused

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

impl Certs {
    /// Generates a fresh CA, server and client certificate in `dir` (created
    /// if missing; existing files are overwritten).
    ///
    /// Panics with openssl's stderr if generation fails.
    pub fn generate(dir: &Path) -> Certs {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("cmqtt-testkit: cannot create {}: {e}", dir.display()));
        let certs = Certs {
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        };
        let cnf = dir.join("openssl.cnf");
        write(&cnf, OPENSSL_CNF.as_bytes());
        let openssl = require_tool("openssl");

        for (key, csr, cn) in [
            (&certs.ca_key, "ca.csr", "cmqtt test CA"),
            (&certs.server_key, "server.csr", "localhost"),
            (&certs.client_key, "client.csr", "cmqtt test client"),
        ] {
            openssl_run(&openssl, &cnf, |c| {
                c.args(["genpkey", "-algorithm", "EC"])
                    .args(["-pkeyopt", "ec_paramgen_curve:P-256"])
                    .arg("-out")
                    .arg(key);
            });
            openssl_run(&openssl, &cnf, |c| {
                c.args(["req", "-new", "-sha256", "-key"])
                    .arg(key)
                    .arg("-subj")
                    .arg(format!("/CN={cn}"))
                    .arg("-out")
                    .arg(dir.join(csr));
            });
        }
        // Self-signed CA.
        openssl_run(&openssl, &cnf, |c| {
            c.args(["x509", "-req", "-sha256", "-days", "3650", "-in"])
                .arg(dir.join("ca.csr"))
                .arg("-signkey")
                .arg(&certs.ca_key)
                .args(["-set_serial", &serial(1)])
                .arg("-extfile")
                .arg(&cnf)
                .args(["-extensions", "ca_ext", "-out"])
                .arg(&certs.ca_cert);
        });
        for (csr, ext, out, n) in [
            ("server.csr", "server_ext", &certs.server_cert, 2),
            ("client.csr", "client_ext", &certs.client_cert, 3),
        ] {
            openssl_run(&openssl, &cnf, |c| {
                c.args(["x509", "-req", "-sha256", "-days", "3650", "-in"])
                    .arg(dir.join(csr))
                    .arg("-CA")
                    .arg(&certs.ca_cert)
                    .arg("-CAkey")
                    .arg(&certs.ca_key)
                    .args(["-set_serial", &serial(n)])
                    .arg("-extfile")
                    .arg(&cnf)
                    .args(["-extensions", ext, "-out"])
                    .arg(out);
            });
        }
        for csr in ["ca.csr", "server.csr", "client.csr"] {
            let _ = std::fs::remove_file(dir.join(csr));
        }
        certs
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        read(&self.ca_cert)
    }
    /// The server certificate, PEM.
    pub fn server_cert_pem(&self) -> Vec<u8> {
        read(&self.server_cert)
    }
    /// The server private key, PEM (PKCS#8).
    pub fn server_key_pem(&self) -> Vec<u8> {
        read(&self.server_key)
    }
    /// The client certificate, PEM.
    pub fn client_cert_pem(&self) -> Vec<u8> {
        read(&self.client_cert)
    }
    /// The client private key, PEM (PKCS#8).
    pub fn client_key_pem(&self) -> Vec<u8> {
        read(&self.client_key)
    }
}

/// A serial number that differs between runs (so that a client caching
/// certificates by issuer+serial is not confused), positive, 64 bits.
fn serial(n: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let v = (nanos ^ (u64::from(std::process::id()) << 32)) & 0x3fff_ffff_ffff_fff0 | n;
    format!("0x{v:016x}")
}

fn openssl_run(openssl: &Path, cnf: &Path, build: impl FnOnce(&mut Command)) {
    let mut cmd = Command::new(openssl);
    build(&mut cmd);
    // Keep the system openssl.cnf out of the picture.
    cmd.env("OPENSSL_CONF", cnf);
    if matches!(cmd.get_args().next().and_then(|a| a.to_str()), Some("req")) {
        cmd.arg("-config").arg(cnf);
    }
    let what = format!("{cmd:?}");
    match proc::run(cmd, b"", Duration::from_secs(30)) {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "cmqtt-testkit: `{what}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("cmqtt-testkit: {e}"),
    }
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data)
        .unwrap_or_else(|e| panic!("cmqtt-testkit: cannot write {}: {e}", path.display()));
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("cmqtt-testkit: cannot read {}: {e}", path.display()))
}

//! Test harness for cmqtt end-to-end tests.
//!
//! Everything here talks to *real* tools, never to our own MQTT code:
//!
//! * [`Broker`]: a `mosquitto` child process with a generated config in a
//!   fresh temp dir (plain listener, optional TLS listener, optional
//!   password file), killable and restartable on the same ports.
//! * [`Subscriber`]: a `mosquitto_sub` child process whose output is parsed
//!   into byte-exact [`Received`] messages.
//! * [`publish`] / [`publish_opts`] / [`try_publish_opts`]: one
//!   `mosquitto_pub` run per message, binary-safe.
//! * [`Certs`]: a CA, a server certificate for `localhost`/`127.0.0.1` and a
//!   client certificate, generated with the `openssl` CLI.
//!
//! All sockets are on `127.0.0.1`. Required tools: `mosquitto`,
//! `mosquitto_sub`, `mosquitto_pub`, `mosquitto_passwd` (Debian packages
//! `mosquitto mosquitto-clients`), `openssl` and `stdbuf` (coreutils).
//!
//! This is a test harness: constructors panic with a descriptive message
//! (including the broker log or the tool's stderr) instead of returning
//! errors, so a test fails with something readable. Functions named `try_*`
//! return `Result<_, String>` for tests that expect a failure.
//!
//! Child processes are spawned so that they get `SIGKILL` when the test
//! process dies (Linux `PR_SET_PDEATHSIG`), so an aborted test run does not
//! leave brokers behind.

#![warn(missing_docs)]

mod broker;
mod certs;
mod peer;
mod proc;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use broker::{Broker, BrokerOptions};
pub use certs::Certs;
pub use peer::{publish, publish_opts, try_publish_opts, PeerOptions, Received, Subscriber};

/// The only host tests may use.
pub const HOST: &str = "127.0.0.1";

/// Returns a TCP port on `127.0.0.1` that was free a moment ago.
///
/// Binds `127.0.0.1:0`, reads the port and closes the socket. Another process
/// could grab the port before it is used; [`Broker::start_with`] retries with
/// new ports when that happens.
pub fn free_port() -> u16 {
    let l = TcpListener::bind((HOST, 0)).expect("cmqtt-testkit: cannot bind 127.0.0.1:0");
    l.local_addr()
        .expect("cmqtt-testkit: local_addr of a bound listener")
        .port()
}

/// Returns `n` distinct free ports (all bound at the same time, then released).
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind((HOST, 0)).expect("cmqtt-testkit: cannot bind 127.0.0.1:0"))
        .collect();
    ls.iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

/// Looks for an executable named `name` on `PATH`, then in `/usr/sbin`,
/// `/usr/local/sbin` and `/sbin` (Debian installs `mosquitto` in `/usr/sbin`,
/// which is not on a normal user's `PATH`).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin", "/bin"];
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Like [`find_tool`], but panics with an installation hint when the tool is
/// missing, e.g. "mosquitto not found: install it with `apt-get install
/// mosquitto mosquitto-clients` (CI's .ci/run does this)".
pub fn require_tool(name: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| {
        let packages = match name {
            "openssl" => "openssl",
            "stdbuf" => "coreutils",
            _ => "mosquitto mosquitto-clients",
        };
        panic!(
            "{name} not found: install it with `apt-get install {packages}` (CI's .ci/run does this)"
        )
    })
}

/// Polls `f` every 10 ms until it returns `true` (then returns `true`) or
/// `timeout` has passed (then returns `false`). `f` is always called at least
/// once, and once more after the deadline.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return f();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A directory under [`std::env::temp_dir`] that is removed (recursively) on
/// drop.
///
/// Set `CMQTT_KEEP_TMP=1` to keep it for inspection.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/<prefix>-<pid>-<counter>-<nanos>`.
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
            match std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))
                .and_then(|()| std::fs::create_dir(&path))
            {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cmqtt-testkit: cannot create {}: {e}", path.display()),
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("CMQTT_KEEP_TMP").is_some_and(|v| !v.is_empty() && v != "0") {
            eprintln!("cmqtt-testkit: keeping {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

//! mosquitto for benchmarking: like testkit's broker but quiet (`log_dest none`: testkit logs
//! every packet to a file, which would put file writes inside every QoS 1 round trip) and with
//! room for floods (`max_queued_messages`).

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cmqtt_testkit::{free_port, require_tool, TempDir};

pub struct BenchBroker {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl BenchBroker {
    pub fn start() -> Result<BenchBroker, String> {
        let mosquitto = require_tool("mosquitto");
        let dir = TempDir::new("cmqtt-bench-broker");
        for _ in 0..5 {
            let port = free_port();
            let mut conf = String::new();
            // SAFETY: getuid has no preconditions.
            if unsafe { libc::getuid() } == 0 {
                conf.push_str("user root\n");
            }
            conf.push_str(&format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n\
                 max_queued_messages 1000000\nmax_inflight_messages 100\n"
            ));
            let path = dir.path().join("mosquitto.conf");
            std::fs::write(&path, conf).map_err(|e| e.to_string())?;
            let mut cmd = Command::new(&mosquitto);
            cmd.arg("-c")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: only prctl between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let mut child = cmd.spawn().map_err(|e| format!("mosquitto: {e}"))?;
            let end = Instant::now() + Duration::from_secs(10);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(BenchBroker {
                        child,
                        port,
                        _dir: dir,
                    });
                }
                if child.try_wait().ok().flatten().is_some() || Instant::now() > end {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Err("mosquitto did not start".into())
    }

    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }
}

impl Drop for BenchBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

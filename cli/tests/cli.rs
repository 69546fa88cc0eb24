//! End to end with the real `cmqtt` binary: `cmqtt sim` child processes emulate the modems (one
//! per host process: a pty serves one host), a real mosquitto (cmqtt-testkit) is the broker,
//! and `cmqtt sub` / `cmqtt pub` run as separate processes, as a script would run them.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cmqtt_testkit::{Broker, BrokerOptions};

const BIN: &str = env!("CARGO_BIN_EXE_cmqtt");

// Exit codes, as documented in `cmqtt --help` and cli/README.md.
const USAGE: i32 = 2;
const PORT: i32 = 3;
const NO_ANSWER: i32 = 4;
const LOST: i32 = 6;
const CONNECT: i32 = 7;
const TIMEOUT: i32 = 27;
const INTERRUPTED: i32 = 130;

/// Kills (SIGTERM, then SIGKILL) and reaps the child when dropped.
struct Proc {
    child: Child,
    what: String,
}

impl Proc {
    fn spawn(args: &[&str], stdin: Stdio) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        Proc {
            child,
            what: args.join(" "),
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits up to `timeout` for the exit; panics (after killing it) if it does not come.
    fn finish(mut self, timeout: Duration) -> Output {
        let mut stdout = self.child.stdout.take().expect("stdout");
        let mut stderr = self.child.stderr.take().expect("stderr");
        let out_t = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = stdout.read_to_end(&mut v);
            v
        });
        let err_t = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = stderr.read_to_end(&mut v);
            v
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "`cmqtt {}` did not exit within {timeout:?}; stderr: {}",
                    self.what,
                    String::from_utf8_lossy(&err_t.join().unwrap_or_default())
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Output {
            status,
            stdout: out_t.join().unwrap_or_default(),
            stderr: err_t.join().unwrap_or_default(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `cmqtt sim` in its own process; `device` is what its `ready:` line named.
struct Sim {
    _proc: Proc,
    device: String,
    _stdout: BufReader<ChildStdout>,
}

impl Sim {
    fn start(model: &str) -> Sim {
        let mut p = Proc::spawn(&["sim", "--model", model], Stdio::null());
        let mut out = BufReader::new(p.child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("read the ready line");
        let device = line
            .trim()
            .strip_prefix("ready: ")
            .unwrap_or_else(|| panic!("`cmqtt sim` printed {line:?}, expected `ready: <device>`"))
            .to_string();
        assert!(
            std::path::Path::new(&device).exists(),
            "{device} does not exist"
        );
        Sim {
            _proc: p,
            device,
            _stdout: out,
        }
    }
}

/// Runs `cmqtt args...` to completion (with `stdin` bytes, if any).
fn cmqtt(args: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let mut p = Proc::spawn(
        args,
        if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        },
    );
    if let Some(data) = stdin {
        let mut s = p.child.stdin.take().expect("stdin");
        s.write_all(data).expect("write stdin");
    }
    p.finish(timeout)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The failure contract: exactly one line on stderr, `cmqtt: ...`.
fn assert_one_error_line(o: &Output) -> String {
    let e = stderr(o);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 1, "expected one stderr line, got: {e:?}");
    assert!(lines[0].starts_with("cmqtt: "), "{e:?}");
    lines[0].to_string()
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts `cmqtt sub ... -C 1` and returns once mosquitto has its subscription.
fn start_sub(broker: &Broker, sim: &Sim, topic: &str, extra: &[&str]) -> Proc {
    let id = unique("sub");
    let server = broker.url();
    let mut args = vec![
        "sub",
        "--port",
        &sim.device,
        "--server",
        &server,
        "-i",
        &id,
        "-t",
        topic,
        "-q",
        "1",
        "-C",
        "1",
        "-W",
        "20",
    ];
    args.extend_from_slice(extra);
    let mut p = Proc::spawn(&args, Stdio::null());
    let needle = format!("Received SUBSCRIBE from {id}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !broker.log().contains(&needle) {
        if let Ok(Some(_)) = p.child.try_wait() {
            let o = p.finish(Duration::from_secs(1));
            panic!("cmqtt sub exited early: {}", stderr(&o));
        }
        assert!(
            Instant::now() < deadline,
            "the subscription never reached the broker; log:\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

const T: Duration = Duration::from_secs(30);

#[test]
fn pub_and_sub_carry_text_and_binary_byte_for_byte() {
    let broker = Broker::start();
    let sub_sim = Sim::start("a7600");
    let pub_sim = Sim::start("sim7600");
    let server = broker.url();
    let binary: Vec<u8> = (0..3000u32).map(|i| (i % 256) as u8).collect();
    let dir = cmqtt_testkit::TempDir::new("cmqtt-cli-test");
    let file = dir.path().join("payload.bin");
    std::fs::write(&file, &binary).unwrap();
    let file = file.to_str().unwrap();

    // -m, printed with -v as `topic payload\n`.
    let sub = start_sub(&broker, &sub_sim, "cli/#", &["-v"]);
    let o = cmqtt(
        &[
            "pub",
            "--port",
            &pub_sim.device,
            "--server",
            &server,
            "-t",
            "cli/text",
            "-m",
            "hello, modem",
            "-q",
            "1",
        ],
        None,
        T,
    );
    assert_eq!(code(&o), 0, "pub: {}", stderr(&o));
    let s = sub.finish(T);
    assert_eq!(code(&s), 0, "sub: {}", stderr(&s));
    assert_eq!(s.stdout, b"cli/text hello, modem\n");

    // -f with every byte value, 3000 bytes, QoS 2; -N: the payload exactly.
    let sub = start_sub(&broker, &sub_sim, "cli/bin", &["-N"]);
    let o = cmqtt(
        &[
            "pub",
            "--port",
            &pub_sim.device,
            "--server",
            &server,
            "-t",
            "cli/bin",
            "-f",
            file,
            "-q",
            "2",
        ],
        None,
        T,
    );
    assert_eq!(code(&o), 0, "pub -f: {}", stderr(&o));
    let s = sub.finish(T);
    assert_eq!(code(&s), 0, "sub: {}", stderr(&s));
    assert_eq!(s.stdout.len(), binary.len());
    assert!(s.stdout == binary, "the binary payload changed on the way");

    // -s: all of stdin, binary-safe; without -N a newline follows the payload.
    let sub = start_sub(&broker, &sub_sim, "cli/stdin", &[]);
    let mut data = b"\r\nOK\r\n+CMQTTRXEND: 0\r\n".to_vec();
    data.extend((0..=255u8).rev());
    let o = cmqtt(
        &[
            "pub",
            "--port",
            &pub_sim.device,
            "--server",
            &server,
            "-t",
            "cli/stdin",
            "-s",
        ],
        Some(&data),
        T,
    );
    assert_eq!(code(&o), 0, "pub -s: {}", stderr(&o));
    let s = sub.finish(T);
    assert_eq!(code(&s), 0, "sub: {}", stderr(&s));
    let mut want = data.clone();
    want.push(b'\n');
    assert!(s.stdout == want, "stdin payload changed: {:?}", s.stdout);
}

#[test]
fn sub_reads_what_mosquitto_pub_sends_and_times_out_with_27() {
    let broker = Broker::start();
    let sim = Sim::start("sim7672x");
    let sub = start_sub(&broker, &sim, "peer/x", &[]);
    cmqtt_testkit::publish(&broker, "peer/x", b"from mosquitto_pub", 1, false);
    let s = sub.finish(T);
    assert_eq!(code(&s), 0, "{}", stderr(&s));
    assert_eq!(s.stdout, b"from mosquitto_pub\n");

    let server = broker.url();
    let o = cmqtt(
        &[
            "sub",
            "--port",
            &sim.device,
            "--server",
            &server,
            "-t",
            "nobody/publishes",
            "-C",
            "3",
            "-W",
            "1",
        ],
        None,
        T,
    );
    assert_eq!(code(&o), TIMEOUT, "{}", stderr(&o));
    let line = assert_one_error_line(&o);
    assert!(line.contains("timed out"), "{line}");
}

#[test]
fn no_such_port() {
    let o = cmqtt(
        &[
            "pub",
            "--port",
            "/dev/cmqtt-no-such-port",
            "--server",
            "tcp://127.0.0.1:1883",
            "-t",
            "t",
            "-m",
            "x",
        ],
        None,
        T,
    );
    assert_eq!(code(&o), PORT, "{}", stderr(&o));
    let line = assert_one_error_line(&o);
    assert!(line.contains("/dev/cmqtt-no-such-port"), "{line}");
}

#[test]
fn broker_not_listening_is_a_connect_failure() {
    let sim = Sim::start("a7600");
    // A port that was free a moment ago: nothing listens there.
    let port = cmqtt_testkit::free_port();
    let server = format!("tcp://127.0.0.1:{port}");
    let o = cmqtt(
        &[
            "pub",
            "--port",
            &sim.device,
            "--server",
            &server,
            "-t",
            "t",
            "-m",
            "x",
        ],
        None,
        T,
    );
    assert_eq!(code(&o), CONNECT, "{}", stderr(&o));
    let line = assert_one_error_line(&o);
    assert!(line.contains("AT+CMQTTCONNECT failed: error"), "{line}");
    assert!(line.contains(&server), "{line}");

    // The modem was left clean: the next run on the same port works up to the same point.
    let o = cmqtt(
        &[
            "pub",
            "--port",
            &sim.device,
            "--server",
            &server,
            "-t",
            "t",
            "-m",
            "x",
        ],
        None,
        T,
    );
    assert_eq!(code(&o), CONNECT, "{}", stderr(&o));
}

#[test]
fn wrong_password_is_refused_and_never_traced() {
    let broker = Broker::start_with(BrokerOptions {
        users: vec![("alice".into(), "right-secret".into())],
        ..Default::default()
    });
    let sim = Sim::start("a7600");
    let server = broker.url();
    let o = cmqtt(
        &[
            "--trace",
            "pub",
            "--port",
            &sim.device,
            "--server",
            &server,
            "-t",
            "t",
            "-m",
            "x",
            "-u",
            "alice",
            "-P",
            "wrong-secret-123",
        ],
        None,
        T,
    );
    assert_eq!(code(&o), CONNECT, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        !err.contains("wrong-secret-123"),
        "the password leaked: {err}"
    );
    assert!(err.contains("<redacted>"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("cmqtt: "), "{last}");
    // MQTT 3.1.1 mosquitto refuses a wrong password with "not authorized" (31); others say
    // "bad user name or password" (30).
    assert!(
        last.contains("error 30") || last.contains("error 31"),
        "{last}"
    );

    // Without --trace: one line only.
    let o = cmqtt(
        &[
            "pub",
            "--port",
            &sim.device,
            "--server",
            &server,
            "-t",
            "t",
            "-m",
            "x",
            "-u",
            "alice",
            "-P",
            "wrong-secret-123",
        ],
        None,
        T,
    );
    assert_eq!(code(&o), CONNECT);
    assert_one_error_line(&o);

    // The right password, from the environment.
    let out = Command::new(BIN)
        .args([
            "pub",
            "--port",
            &sim.device,
            "--server",
            &server,
            "-t",
            "t",
            "-m",
            "x",
            "-u",
            "alice",
        ])
        .env("CMQTT_PASSWORD", "right-secret")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_modem_that_does_not_answer() {
    // A pseudo-terminal nobody serves.
    // SAFETY: plain libc pty calls on a descriptor we own.
    let (master, slave) = unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(fd >= 0);
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        let mut buf = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len()), 0);
        let name = std::ffi::CStr::from_ptr(buf.as_ptr())
            .to_string_lossy()
            .into_owned();
        (fd, name)
    };
    let o = cmqtt(&["info", "--port", &slave, "--sync-timeout", "1"], None, T);
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(master) };
    assert_eq!(code(&o), NO_ANSWER, "{}", stderr(&o));
    let line = assert_one_error_line(&o);
    assert!(line.contains("no answer"), "{line}");
}

#[test]
fn a_killed_run_leaves_nothing_that_blocks_the_next() {
    let broker = Broker::start();
    let sim = Sim::start("a7600");
    let server = broker.url();
    // A subscriber killed with SIGKILL keeps client 0 acquired and connected in the modem...
    let sub = start_sub(&broker, &sim, "k/#", &[]);
    sub.signal(libc::SIGKILL);
    let _ = sub.finish(T);
    // ...and the next run frees it and works.
    let o = cmqtt(
        &[
            "pub",
            "--port",
            &sim.device,
            "--server",
            &server,
            "-t",
            "k/x",
            "-m",
            "again",
        ],
        None,
        T,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // Ctrl-C: a clean stop with 130.
    let sub = start_sub(&broker, &sim, "k/#", &[]);
    sub.signal(libc::SIGINT);
    let s = sub.finish(T);
    assert_eq!(code(&s), INTERRUPTED, "{}", stderr(&s));
    assert_one_error_line(&s);
    let o = cmqtt(
        &[
            "pub",
            "--port",
            &sim.device,
            "--server",
            &server,
            "-t",
            "k/x",
            "-m",
            "again",
        ],
        None,
        T,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn tls_with_a_ca_and_with_a_client_certificate() {
    let broker = Broker::start_with(BrokerOptions {
        tls: true,
        require_client_cert: true,
        ..Default::default()
    });
    let certs = broker.certs().expect("certs");
    let url = broker.tls_url().expect("tls url");
    let sim = Sim::start("a7600");
    let (ca, cert, key) = (
        certs.ca_cert.to_str().unwrap(),
        certs.client_cert.to_str().unwrap(),
        certs.client_key.to_str().unwrap(),
    );
    // Mutual TLS (authmode 2): accepted.
    let o = cmqtt(
        &[
            "pub",
            "--port",
            &sim.device,
            "--server",
            &url,
            "-t",
            "tls/x",
            "-m",
            "over tls",
            "--cafile",
            ca,
            "--cert",
            cert,
            "--key",
            key,
        ],
        None,
        T,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Without the client certificate the broker refuses the handshake.
    let o = cmqtt(
        &[
            "pub",
            "--port",
            &sim.device,
            "--server",
            &url,
            "-t",
            "tls/x",
            "-m",
            "x",
            "--cafile",
            ca,
        ],
        None,
        T,
    );
    assert_eq!(code(&o), CONNECT, "{}", stderr(&o));
    assert_one_error_line(&o);
    // --tls alone is a usage error (no way to verify the broker was chosen).
    let o = cmqtt(
        &[
            "pub",
            "--port",
            &sim.device,
            "--server",
            &url,
            "-t",
            "t",
            "-m",
            "x",
            "--tls",
        ],
        None,
        T,
    );
    assert_eq!(code(&o), USAGE, "{}", stderr(&o));
}

#[test]
fn sub_exits_6_when_the_broker_goes_away() {
    let mut broker = Broker::start();
    let sim = Sim::start("a7600");
    let sub = start_sub(&broker, &sim, "gone/#", &[]);
    broker.kill();
    let s = sub.finish(T);
    assert_eq!(code(&s), LOST, "{}", stderr(&s));
    let line = assert_one_error_line(&s);
    assert!(line.contains("lost"), "{line}");
}

#[test]
fn info_describes_the_modem() {
    let sim = Sim::start("sim7600");
    let o = cmqtt(&["info", "--port", &sim.device], None, T);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for key in [
        "model:",
        "firmware:",
        "IMEI:",
        "signal:",
        "dBm",
        "registration:",
        "MQTT:",
    ] {
        assert!(out.contains(key), "no {key} in:\n{out}");
    }
}

#[test]
fn demo_runs_and_exits_0() {
    let o = cmqtt(&["demo"], None, Duration::from_secs(60));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(code(&o), 0, "stdout:\n{out}\nstderr:\n{}", stderr(&o));
    assert!(out.contains("all 4 messages came back intact"), "{out}");
    assert!(out.contains("4000"), "{out}");
}

#[test]
fn demo_traces_the_at_exchange_on_stderr() {
    let o = cmqtt(
        &["demo", "--trace", "--model", "sim7672x"],
        None,
        Duration::from_secs(60),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(">> AT+CMQTTSTART"), "{err}");
    assert!(err.contains("<< OK"), "{err}");
    assert!(
        err.contains("<< +CMQTTRXPAYLOAD: 0,1500"),
        "no 1500-byte chunk: {err}"
    );
}

#[test]
fn ports_exits_0() {
    let o = cmqtt(&["ports"], None, T);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!o.stdout.is_empty());
}

#[test]
fn usage_errors_exit_2() {
    // No message source.
    let o = cmqtt(
        &[
            "pub",
            "--port",
            "/dev/null",
            "--server",
            "tcp://h",
            "-t",
            "t",
        ],
        None,
        T,
    );
    assert_eq!(code(&o), USAGE, "{}", stderr(&o));
    assert_one_error_line(&o);
    // QoS out of range.
    let o = cmqtt(
        &[
            "pub",
            "--port",
            "/dev/null",
            "--server",
            "tcp://h",
            "-t",
            "t",
            "-m",
            "x",
            "-q",
            "3",
        ],
        None,
        T,
    );
    assert_eq!(code(&o), USAGE);
    // A scheme the modem does not speak: checked before the port is opened.
    let o = cmqtt(
        &[
            "pub",
            "--port",
            "/dev/cmqtt-nope",
            "--server",
            "ws://h",
            "-t",
            "t",
            "-m",
            "x",
        ],
        None,
        T,
    );
    assert_eq!(code(&o), USAGE, "{}", stderr(&o));
    assert_one_error_line(&o);
    // --help documents the exit codes and exits 0.
    let o = cmqtt(&["--help"], None, T);
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Exit codes:"));
}

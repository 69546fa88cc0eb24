//! The `cmqtt` binary against hostile input: absurd timeouts, baud 0, endless input files, and
//! Ctrl-C while the modem swallows a command. The modem is a scripted one on a
//! pseudo-terminal (answers set-up commands, swallows the ones a test names), or none at all.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cmqtt");
const USAGE: i32 = 2;
const INTERRUPTED: i32 = 130;
const HUGE: &str = "18446744073709551615";

/// A `cmqtt` child: SIGKILLed with the test process; killed and reaped when dropped. Its
/// address space is capped at 2 GiB, so an unbounded read fails fast instead of eating the
/// machine's memory.
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
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl and setrlimit are async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    let lim = libc::rlimit {
                        rlim_cur: 2 << 30,
                        rlim_max: 2 << 30,
                    };
                    libc::setrlimit(libc::RLIMIT_AS, &lim);
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
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn run(args: &[&str], stdin: Stdio, timeout: Duration) -> (Output, Duration) {
    let t0 = Instant::now();
    let o = Proc::spawn(args, stdin).finish(timeout);
    (o, t0.elapsed())
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The failure contract: exactly one line on stderr, `cmqtt: ...`.
fn one_error_line(o: &Output) -> String {
    let e = stderr(o);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 1, "expected one stderr line, got: {e:?}");
    assert!(lines[0].starts_with("cmqtt: "), "{e:?}");
    lines[0].to_string()
}

// ---- a scripted modem on a pseudo-terminal ---------------------------------------------------

/// Answers like an A76xx: OK to set-up commands, OK + result line to START/STOP/DISC, nothing
/// at all to a command starting with one of `swallow`.
struct PtyModem {
    path: String,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _master: Arc<OwnedFd>,
}

impl PtyModem {
    /// A pseudo-terminal; `swallow: None` means nobody serves it at all.
    fn start(swallow: Option<&'static [&'static str]>) -> PtyModem {
        // SAFETY: plain libc pty calls on a descriptor we own.
        let (master, path) = unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(fd >= 0);
            assert_eq!(libc::grantpt(fd), 0);
            assert_eq!(libc::unlockpt(fd), 0);
            let mut buf = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len()), 0);
            let name = std::ffi::CStr::from_ptr(buf.as_ptr())
                .to_string_lossy()
                .into_owned();
            (Arc::new(OwnedFd::from_raw_fd(fd)), name)
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = swallow.map(|swallow| {
            let (m, seen, stop) = (master.clone(), seen.clone(), stop.clone());
            std::thread::spawn(move || serve(&m, swallow, &seen, &stop))
        });
        PtyModem {
            path,
            seen,
            stop,
            thread,
            _master: master,
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until the host sent a line starting with `prefix`.
    fn wait_for(&self, prefix: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.seen().iter().any(|l| l.starts_with(prefix)) {
            assert!(
                Instant::now() < deadline,
                "the host never sent {prefix}; it sent {:?}",
                self.seen()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for PtyModem {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_all(fd: &OwnedFd, s: &str) {
    let mut b = s.as_bytes();
    while !b.is_empty() {
        // SAFETY: writing from a live buffer to our own descriptor.
        let n = unsafe { libc::write(fd.as_raw_fd(), b.as_ptr().cast(), b.len()) };
        if n <= 0 {
            return;
        }
        b = &b[n as usize..];
    }
}

fn serve(fd: &OwnedFd, swallow: &[&str], seen: &Mutex<Vec<String>>, stop: &AtomicBool) {
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, ours.
        let r = unsafe { libc::poll(&mut p, 1, 50) };
        if r <= 0 || p.revents & libc::POLLIN == 0 {
            // No slave open yet (or any more): POLLHUP at once; do not spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        // SAFETY: reading into our buffer from our descriptor.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        for &b in &buf[..n as usize] {
            if b != b'\r' {
                line.push(b);
                continue;
            }
            let l = String::from_utf8_lossy(&line)
                .trim_matches(|c: char| c.is_whitespace() || c == '\x1b')
                .to_string();
            line.clear();
            if l.is_empty() {
                continue;
            }
            seen.lock().unwrap().push(l.clone());
            if swallow.iter().any(|s| l.starts_with(s)) {
                continue;
            }
            let cmd = l.split('=').next().unwrap_or("");
            let idx = l.split('=').nth(1).and_then(|a| a.split(',').next());
            let answer = match cmd {
                "AT+CGMM" => "\r\nA7600E-H\r\n\r\nOK\r\n".to_string(),
                "AT+CGMR" => "\r\n+CGMR: TEST\r\n\r\nOK\r\n".to_string(),
                "AT+CMQTTSTART" => "\r\nOK\r\n\r\n+CMQTTSTART: 0\r\n".to_string(),
                "AT+CMQTTSTOP" => "\r\nOK\r\n\r\n+CMQTTSTOP: 0\r\n".to_string(),
                "AT+CMQTTDISC" | "AT+CMQTTCONNECT" => {
                    format!("\r\nOK\r\n\r\n{}: {},0\r\n", &cmd[2..], idx.unwrap_or("0"))
                }
                _ => "\r\nOK\r\n".to_string(),
            };
            write_all(fd, &answer);
        }
    }
}

fn pub_args<'a>(port: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "pub",
        "--port",
        port,
        "--model",
        "a7600",
        "--server",
        "tcp://127.0.0.1:9",
        "-t",
        "hostile/x",
    ];
    v.extend_from_slice(extra);
    v
}

const T: Duration = Duration::from_secs(30);

// ---- absurd numbers ----------------------------------------------------------------------------

#[test]
fn huge_timeouts_are_usage_errors_not_panics() {
    let modem = PtyModem::start(Some(&[]));
    for (args, option) in [
        (
            pub_args(&modem.path, &["-m", "x", "--sync-timeout", HUGE]),
            "--sync-timeout",
        ),
        (
            pub_args(&modem.path, &["-m", "x", "--connect-timeout", HUGE]),
            "--connect-timeout",
        ),
        (
            vec![
                "sub",
                "--port",
                &modem.path,
                "--model",
                "a7600",
                "--server",
                "tcp://127.0.0.1:9",
                "-t",
                "x",
                "-W",
                HUGE,
            ],
            "--timeout",
        ),
    ] {
        let (o, _) = run(&args, Stdio::null(), T);
        assert_eq!(code(&o), USAGE, "{args:?}: {}", stderr(&o));
        let line = one_error_line(&o);
        assert!(line.contains(option), "{line}");
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
}

#[test]
fn baud_zero_is_a_usage_error() {
    let modem = PtyModem::start(Some(&[]));
    let (o, _) = run(
        &pub_args(&modem.path, &["-m", "x", "--baud", "0"]),
        Stdio::null(),
        T,
    );
    assert_eq!(code(&o), USAGE, "{}", stderr(&o));
    assert!(one_error_line(&o).contains("--baud"), "{}", stderr(&o));
    assert!(
        modem.seen().is_empty(),
        "nothing was sent: {:?}",
        modem.seen()
    );
}

// ---- endless input -----------------------------------------------------------------------------

#[test]
fn endless_payload_and_certificate_files_are_refused_quickly() {
    let modem = PtyModem::start(Some(&[]));
    let devzero = || Stdio::from(std::fs::File::open("/dev/zero").expect("/dev/zero"));
    let cases: Vec<(Vec<&str>, Stdio, &str, &str)> = vec![
        (
            pub_args(&modem.path, &["-f", "/dev/zero"]),
            Stdio::null(),
            "/dev/zero",
            "10240",
        ),
        (pub_args(&modem.path, &["-s"]), devzero(), "stdin", "10240"),
        (
            {
                let mut a = pub_args(&modem.path, &["-f", "/dev/zero"]);
                a[4] = "sim7672x";
                a
            },
            Stdio::null(),
            "/dev/zero",
            "4096",
        ),
        (
            pub_args(&modem.path, &["-m", "x", "--cafile", "/dev/zero"]),
            Stdio::null(),
            "/dev/zero",
            "10240",
        ),
    ];
    for (args, stdin, what, limit) in cases {
        let (o, took) = run(&args, stdin, T);
        assert_eq!(code(&o), USAGE, "{args:?}: {}", stderr(&o));
        let line = one_error_line(&o);
        assert!(
            line.contains(what) && line.contains(limit),
            "{args:?}: {line}"
        );
        assert!(took < Duration::from_secs(5), "{args:?} took {took:?}");
    }
    assert!(
        modem.seen().is_empty(),
        "nothing was sent: {:?}",
        modem.seen()
    );
}

// ---- Ctrl-C ------------------------------------------------------------------------------------

#[test]
fn sigint_while_the_modem_swallows_a_command_exits_130_at_once() {
    // AT+CMQTTSTART is swallowed: its timeout is many seconds; the first SIGINT ends the wait.
    let modem = PtyModem::start(Some(&["AT+CMQTTSTART"]));
    let p = Proc::spawn(&pub_args(&modem.path, &["-m", "x"]), Stdio::null());
    modem.wait_for("AT+CMQTTSTART", T);
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    p.signal(libc::SIGINT);
    let o = p.finish(T);
    let took = t0.elapsed();
    assert_eq!(code(&o), INTERRUPTED, "{}", stderr(&o));
    assert_eq!(one_error_line(&o), "cmqtt: interrupted");
    assert!(took < Duration::from_secs(2), "exit {took:?} after SIGINT");
}

#[test]
fn sigint_during_a_swallowed_connect_cleans_up_and_exits_130() {
    // CONNECT is swallowed; the clean-up (REL, STOP) is answered and must still happen.
    let modem = PtyModem::start(Some(&["AT+CMQTTCONNECT"]));
    let p = Proc::spawn(&pub_args(&modem.path, &["-m", "x"]), Stdio::null());
    modem.wait_for("AT+CMQTTCONNECT", T);
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    p.signal(libc::SIGINT);
    let o = p.finish(T);
    let took = t0.elapsed();
    assert_eq!(code(&o), INTERRUPTED, "{}", stderr(&o));
    assert_eq!(one_error_line(&o), "cmqtt: interrupted");
    assert!(took < Duration::from_secs(2), "exit {took:?} after SIGINT");
    let seen = modem.seen();
    let after: Vec<&String> = seen
        .iter()
        .skip_while(|l| !l.starts_with("AT+CMQTTCONNECT"))
        .collect();
    assert!(
        after.iter().any(|l| l.starts_with("AT+CMQTTREL"))
            && after.iter().any(|l| l.starts_with("AT+CMQTTSTOP")),
        "cleaned up after the interrupt: {seen:?}"
    );
}

#[test]
fn sigint_while_cleanup_is_swallowed_too_is_bounded() {
    // Nothing after START is answered: the clean-up's own waits are cut after a short budget.
    let modem = PtyModem::start(Some(&["AT+CMQTTCONNECT", "AT+CMQTTREL", "AT+CMQTTSTOP"]));
    let p = Proc::spawn(&pub_args(&modem.path, &["-m", "x"]), Stdio::null());
    modem.wait_for("AT+CMQTTCONNECT", T);
    let t0 = Instant::now();
    p.signal(libc::SIGINT);
    let o = p.finish(T);
    let took = t0.elapsed();
    assert_eq!(code(&o), INTERRUPTED, "{}", stderr(&o));
    assert!(took < Duration::from_secs(6), "exit {took:?} after SIGINT");
    assert!(one_error_line(&o).starts_with("cmqtt: interrupted"));
}

#[test]
fn sigint_while_the_modem_never_answers_at_open_exits_130_at_once() {
    let modem = PtyModem::start(None);
    let p = Proc::spawn(
        &pub_args(&modem.path, &["-m", "x", "--sync-timeout", "60"]),
        Stdio::null(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    p.signal(libc::SIGINT);
    let o = p.finish(T);
    assert_eq!(code(&o), INTERRUPTED, "{}", stderr(&o));
    assert_eq!(one_error_line(&o), "cmqtt: interrupted");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

//! Child-process helpers.

use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

type Job = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` so that the child gets `SIGKILL` when the test process dies.
///
/// On Linux `PR_SET_PDEATHSIG` fires when the *thread* that forked the child
/// exits, not the process. Test threads come and go (and a `Broker` may live
/// in a static), so all children are forked by one dedicated thread that lives
/// as long as the process.
pub(crate) fn spawn(mut cmd: Command) -> io::Result<Child> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure only calls async-signal-safe functions
        // (prctl, getppid, _exit) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    // The test process died between fork and prctl.
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("cmqtt-testkit-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cmqtt-testkit: cannot start the spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("cmqtt-testkit: spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("cmqtt-testkit: spawner thread is gone"))?
}

/// What a finished command produced.
pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `cmd` to completion with `stdin` as its standard input, killing it
/// after `timeout`. `Err` describes a spawn failure or a timeout (with the
/// stderr seen so far); a non-zero exit is *not* an error here.
pub(crate) fn run(mut cmd: Command, stdin: &[u8], timeout: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(cmd).map_err(|e| format!("cannot run {what}: {e}"))?;
    let mut input = child.stdin.take();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(w) = input.as_mut() {
            // The child may exit without reading (e.g. bad arguments).
            let _ = w.write_all(&data);
        }
        drop(input);
    });
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
    };
    let _ = writer.join();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(format!(
            "{what} did not finish within {timeout:?}; stderr: {}",
            String::from_utf8_lossy(&stderr)
        )),
    }
}

fn reader<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

/// Sends `signal` to `child` (if it is still ours to signal) and waits up to
/// `timeout` for it to exit, then `SIGKILL`s it. Always reaps the child.
pub(crate) fn terminate(child: &mut Child, signal: libc::c_int, timeout: Duration) {
    if let Ok(None) = child.try_wait() {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: plain kill(2) on our own, not yet reaped, child.
            unsafe {
                libc::kill(pid, signal);
            }
        }
        let deadline = Instant::now() + timeout;
        while let Ok(None) = child.try_wait() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let _ = child.wait();
}

//! Ctrl-C (SIGINT) and SIGTERM for `pub` and `sub`: the first signal interrupts what the modem
//! is being waited for, the modem is cleaned up with a short time budget, and the exit code is
//! 130; a second signal exits 130 at once.
//!
//! The signal handler only sets a flag. A watcher thread, woken by the first signal, then:
//! - before the modem is open (synchronising, identifying): exits 130 at once, there is
//!   nothing to clean up;
//! - while the main thread waits for a command (one the modem swallowed can take up to its
//!   timeout, 74 s on a SIM7600): calls [`cmqtt::Modem::interrupt`] so the wait ends now; the
//!   main thread sees the flag and cleans up (DISC, REL, STOP);
//! - during the clean-up: lets it run for [`CLEANUP_BUDGET`], then interrupts whatever it
//!   still waits for, and past [`CLEANUP_LIMIT`] exits 130 whatever the main thread does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cmqtt::Modem;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::failure::code;

/// How long the clean-up after an interrupt may wait for the modem before its waits are cut.
pub const CLEANUP_BUDGET: Duration = Duration::from_secs(2);
/// After this much clean-up the process exits 130 whatever is still running.
pub const CLEANUP_LIMIT: Duration = Duration::from_secs(5);
/// How often the watcher looks again once a signal came.
const POLL: Duration = Duration::from_millis(20);

struct State {
    /// Set by the signal handlers.
    flag: Arc<AtomicBool>,
    /// The open modem, once there is one.
    modem: Mutex<Option<Modem>>,
    /// When the clean-up began.
    cleanup_since: Mutex<Option<Instant>>,
}

fn state() -> &'static State {
    static S: OnceLock<State> = OnceLock::new();
    S.get_or_init(|| State {
        flag: Arc::new(AtomicBool::new(false)),
        modem: Mutex::new(None),
        cleanup_since: Mutex::new(None),
    })
}

/// Installs the handlers (once) and returns the flag the first signal sets.
pub fn install() -> Arc<AtomicBool> {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let s = state();
    INSTALLED.get_or_init(|| {
        for sig in [SIGINT, SIGTERM] {
            // Order matters: the conditional shutdown sees the flag before this signal sets it.
            let _ = signal_hook::flag::register_conditional_shutdown(
                sig,
                code::INTERRUPTED as i32,
                s.flag.clone(),
            );
            let _ = signal_hook::flag::register(sig, s.flag.clone());
        }
        match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
            Ok(mut signals) => {
                let spawned = std::thread::Builder::new()
                    .name("cmqtt-signals".into())
                    .spawn(move || {
                        if signals.forever().next().is_some() {
                            watch_after_signal();
                        }
                    });
                if let Err(e) = spawned {
                    log::warn!("cmqtt: no signal watcher ({e}); Ctrl-C waits for the command");
                }
            }
            Err(e) => log::warn!("cmqtt: no signal watcher ({e}); Ctrl-C waits for the command"),
        }
    });
    s.flag.clone()
}

/// Whether SIGINT/SIGTERM came.
pub fn interrupted() -> bool {
    state().flag.load(Ordering::SeqCst)
}

/// The modem is open: from now on a signal interrupts its waits instead of ending the process.
pub fn watch(modem: &Modem) {
    *lock(&state().modem) = Some(modem.clone());
}

/// The clean-up begins: its waits are left alone for [`CLEANUP_BUDGET`].
pub fn cleanup_started() {
    let mut c = lock(&state().cleanup_since);
    if c.is_none() {
        *c = Some(Instant::now());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn exit_now(why: &str) -> ! {
    eprintln!("cmqtt: {why}");
    std::process::exit(code::INTERRUPTED as i32)
}

fn watch_after_signal() {
    let s = state();
    loop {
        let modem = lock(&s.modem).clone();
        let Some(modem) = modem else {
            exit_now("interrupted");
        };
        let since = *lock(&s.cleanup_since);
        match since.map(|t| t.elapsed()) {
            // The main thread still waits for the modem: end that wait; it then cleans up.
            None => modem.interrupt(),
            Some(t) if t >= CLEANUP_LIMIT => {
                exit_now("interrupted; the modem did not let the clean-up finish")
            }
            Some(t) if t >= CLEANUP_BUDGET => modem.interrupt(),
            Some(_) => {}
        }
        drop(modem);
        std::thread::sleep(POLL);
    }
}

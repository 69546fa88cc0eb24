//! Fault injection handle and counters shared by all the emulator's threads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::inbox::{FaultCmd, Inbox};
use crate::output::{Output, Unit};
use crate::pty::PtyPort;
use crate::shared::Shared;

/// What [`Faults::vanish`] needs: the pty, its symlink and the stop flag of
/// the simulator.
pub(crate) struct PortCtl {
    pub pty: Arc<PtyPort>,
    pub link: Option<PathBuf>,
    pub stop: Arc<AtomicBool>,
    state: Mutex<VanishState>,
}

#[derive(Default)]
struct VanishState {
    /// Bumped by every vanish: a pending come-back of an earlier vanish is
    /// cancelled by a later one.
    epoch: u64,
    threads: Vec<JoinHandle<()>>,
}

impl PortCtl {
    pub fn new(pty: Arc<PtyPort>, link: Option<PathBuf>, stop: Arc<AtomicBool>) -> PortCtl {
        PortCtl {
            pty,
            link,
            stop,
            state: Mutex::new(VanishState::default()),
        }
    }

    /// At shutdown (after `stop` is set): waits for pending come-backs to
    /// give up and closes the pty.
    pub fn shutdown(&self) {
        let threads = std::mem::take(&mut self.state.lock().threads);
        for t in threads {
            let _ = t.join();
        }
        self.pty.unplug();
    }

    /// Points the symlink (if any) at `target`, replacing what is there.
    fn relink(&self, target: &str) {
        if let Some(link) = &self.link {
            let _ = std::fs::remove_file(link);
            if let Err(e) = std::os::unix::fs::symlink(target, link) {
                log::error!("cannot link {} to {target}: {e}", link.display());
            }
        }
    }
}

/// Counters of one emulated modem.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// AT command lines executed (including ones answered with `ERROR`).
    pub commands: u64,
    /// MQTT PUBLISH packets sent to the broker by `AT+CMQTTPUB`.
    pub publishes: u64,
    /// Received messages reported to the host (`+CMQTTRXSTART` blocks).
    pub messages_delivered: u64,
    /// Received messages dropped because they exceed what the modem can
    /// report (topic > 1024 or payload > 10240 bytes).
    pub messages_dropped: u64,
    /// Bytes read from the host.
    pub bytes_in: u64,
    /// Bytes written to the host.
    pub bytes_out: u64,
}

/// A cloneable handle to inject faults into a running [`crate::Simulator`].
#[derive(Clone)]
pub struct Faults {
    shared: Arc<Shared>,
    inbox: mpsc::Sender<Inbox>,
    out: Output,
    port: Option<Arc<PortCtl>>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

impl Faults {
    pub(crate) fn new(
        shared: Arc<Shared>,
        inbox: mpsc::Sender<Inbox>,
        out: Output,
        port: Option<Arc<PortCtl>>,
    ) -> Faults {
        Faults {
            shared,
            inbox,
            out,
            port,
        }
    }

    fn send(&self, f: FaultCmd) {
        let _ = self.inbox.send(Inbox::Fault(f));
    }

    /// Closes client `client`'s broker socket abruptly (no DISCONNECT packet,
    /// so the broker publishes the will) and reports
    /// `+CMQTTCONNLOST: <client>,<cause>`. No effect if that client is not
    /// connected.
    pub fn drop_connection(&self, client: u8, cause: u8) {
        self.send(FaultCmd::DropConnection { client, cause });
    }

    /// The network goes away: every connected client reports
    /// `+CMQTTCONNLOST: <idx>,3` (connections cut without DISCONNECT, so the
    /// broker sends their wills), the SIM7672X profile then reports
    /// `+CMQTTNONET`, and the MQTT service is stopped with its clients
    /// released: the host starts over with `AT+CMQTTSTART`, `AT+CMQTTACCQ`.
    pub fn lose_network(&self) {
        self.send(FaultCmd::LoseNetwork);
    }

    /// Power-cycles the modem: MQTT connections are cut, the service is
    /// stopped, clients are released, echo is back on; SSL contexts and
    /// downloaded certificate files survive (they live in flash). About 200 ms
    /// later the modem prints `RDY` (and, with `boot_banner`, `+CPIN: READY`,
    /// `SMS DONE`, `PB DONE`). Input is discarded while it boots.
    pub fn reset(&self) {
        self.send(FaultCmd::Reset);
    }

    /// The serial port vanishes, like a USB modem unplugged or re-enumerating
    /// after a crash: the pty is closed (a host with it open gets EOF/`EIO`
    /// on reads, `POLLHUP`, errors on writes), the symlink of
    /// [`crate::Simulator::start_pty_link`] is removed, MQTT connections are
    /// cut (wills published) and the modem's state is lost as in
    /// [`Faults::reset`]. After `gone_for` a **new** pty appears (a new slave
    /// path; the same symlink now points at it; [`crate::Simulator::device`]
    /// returns the new path) and the modem boots on it: echo on, `RDY` about
    /// 200 ms later (lost if nobody has the port open yet, like on a UART).
    ///
    /// Returns at once; the come-back happens on a helper thread. A vanish
    /// while already gone restarts the absence from now. No effect on a TCP
    /// modem (logged).
    pub fn vanish(&self, gone_for: Duration) {
        let Some(ctl) = self.port.clone() else {
            log::warn!("vanish: only a pty modem can vanish; ignored");
            return;
        };
        let epoch = {
            let mut st = ctl.state.lock();
            if ctl.stop.load(Ordering::SeqCst) {
                return;
            }
            st.epoch += 1;
            st.threads.retain(|t| !t.is_finished());
            ctl.pty.unplug();
            if let Some(link) = &ctl.link {
                let _ = std::fs::remove_file(link);
            }
            st.epoch
        };
        log::info!("port vanished for {gone_for:?}");
        self.send(FaultCmd::Vanish);
        let inbox = self.inbox.clone();
        let ctl2 = ctl.clone();
        let back = move || {
            let end = Instant::now() + gone_for;
            loop {
                if ctl2.stop.load(Ordering::SeqCst) {
                    return;
                }
                let now = Instant::now();
                if now >= end {
                    break;
                }
                std::thread::sleep((end - now).min(Duration::from_millis(20)));
            }
            let st = ctl2.state.lock();
            if st.epoch != epoch || ctl2.stop.load(Ordering::SeqCst) {
                return;
            }
            match ctl2.pty.plug() {
                Ok(path) => {
                    ctl2.relink(&path);
                    log::info!("port is back as {path}");
                    let _ = inbox.send(Inbox::Fault(FaultCmd::Replugged));
                }
                Err(e) => log::error!("the vanished port cannot come back: {e}"),
            }
            drop(st);
        };
        match std::thread::Builder::new()
            .name("cmqtt-sim-replug".into())
            .spawn(back)
        {
            Ok(h) => ctl.state.lock().threads.push(h),
            Err(e) => log::error!("vanish: cannot start the come-back thread: {e}"),
        }
    }

    /// `true`: the modem stops answering (input is read and discarded,
    /// nothing is sent, not even URCs). `false`: back to normal.
    pub fn stall(&self, on: bool) {
        self.shared.stalled.store(on, Ordering::SeqCst);
    }

    /// Delay every command response by this much (`None` = no delay).
    pub fn slow(&self, per_response_delay: Option<Duration>) {
        *self.shared.slow.lock() = per_response_delay;
    }

    /// Writes raw bytes (garbage, fake URCs) to the host now, as one unit
    /// (never inside another response or URC).
    pub fn inject(&self, bytes: &[u8]) {
        self.out.send(Unit::raw(bytes.to_vec()));
    }

    /// Changes the pacing of both directions (`None` = unthrottled).
    pub fn set_baud(&self, baud: Option<u32>) {
        self.shared.baud.store(baud.unwrap_or(0), Ordering::SeqCst);
    }

    /// The counters so far.
    pub fn stats(&self) -> SimStats {
        let s = &self.shared;
        SimStats {
            commands: s.commands.load(Ordering::Relaxed),
            publishes: s.publishes.load(Ordering::Relaxed),
            messages_delivered: s.delivered.load(Ordering::Relaxed),
            messages_dropped: s.dropped.load(Ordering::Relaxed),
            bytes_in: s.bytes_in.load(Ordering::Relaxed),
            bytes_out: s.bytes_out.load(Ordering::Relaxed),
        }
    }

    /// Whether a host currently has the device open (pty) or is connected
    /// (TCP), as far as the emulator can tell.
    pub fn host_connected(&self) -> bool {
        self.shared.host_connected.load(Ordering::Relaxed)
    }
}

//! The pseudo-terminal transport: the emulator keeps the master side, the
//! host opens the slave path like a serial port.
//!
//! While no host has the slave open, reading the master fails with `EIO` and
//! `poll` reports `POLLHUP`: that means "no host", never an exit condition.
//! Output written while no host is there is dropped (bytes sent on a UART
//! nobody listens to are lost), so a host that opens the port later does not
//! read stale responses.
//!
//! The pty can be unplugged and a new one plugged in (port vanishing, see
//! `Faults::vanish`): the reader and the writer look up the current master
//! for every poll, so the old one is closed within one poll interval.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serialport::SerialPort;

use crate::inbox::Inbox;
use crate::output::{Pacer, Sink};
use crate::shared::Shared;

/// The pty the emulator currently serves. [`crate::Faults::vanish`] unplugs it
/// (closes the master: the host's reads fail, like a USB modem pulled out)
/// and later plugs in a new one (a new slave path: the modem re-enumerated).
pub(crate) struct PtyPort {
    master: RwLock<Option<Arc<OwnedFd>>>,
    slave_path: Mutex<String>,
    /// Bumped at every unplug and plug, so that readers and writers holding
    /// the old master let go of it at once.
    generation: AtomicU64,
}

impl PtyPort {
    /// Opens a new pty pair (raw, 8-bit clean: `TTYPort::pair` applies
    /// `cfmakeraw` to the slave), keeps the master and closes the slave.
    pub fn open() -> io::Result<Arc<PtyPort>> {
        let (master, slave_path) = open_pair()?;
        Ok(Arc::new(PtyPort {
            master: RwLock::new(Some(Arc::new(master))),
            slave_path: Mutex::new(slave_path),
            generation: AtomicU64::new(0),
        }))
    }

    /// The current slave path (it changes when the port vanishes and comes
    /// back).
    pub fn slave_path(&self) -> String {
        self.slave_path.lock().clone()
    }

    /// Closes the master: a host with the slave open reads EOF/`EIO` and
    /// `poll` reports `POLLHUP`. The reader and the writer drop their
    /// references within one poll interval (50 ms).
    pub fn unplug(&self) {
        let old = self.master.write().take();
        self.generation.fetch_add(1, Ordering::SeqCst);
        drop(old);
    }

    /// Opens a fresh pty pair and serves it from now on; returns the new
    /// slave path.
    pub fn plug(&self) -> io::Result<String> {
        let (master, path) = open_pair()?;
        *self.slave_path.lock() = path.clone();
        *self.master.write() = Some(Arc::new(master));
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(path)
    }

    fn current(&self) -> (u64, Option<Arc<OwnedFd>>) {
        let m = self.master.read();
        (self.generation.load(Ordering::SeqCst), m.clone())
    }

    pub fn sink(self: &Arc<Self>) -> PtySink {
        PtySink { port: self.clone() }
    }

    /// The reader loop: forwards host bytes to the engine.
    pub fn reader(
        self: &Arc<Self>,
        inbox: mpsc::Sender<Inbox>,
        shared: Arc<Shared>,
        stop: Arc<AtomicBool>,
    ) -> impl FnOnce() + Send + 'static {
        let port = self.clone();
        move || {
            let mut buf = vec![0u8; 4096];
            let mut pacer = Pacer::new();
            let mut was_connected = false;
            let mut seen_generation = u64::MAX;
            while !stop.load(Ordering::Relaxed) {
                let (generation, master) = port.current();
                if generation != seen_generation {
                    seen_generation = generation;
                    if was_connected {
                        was_connected = false;
                        shared.host_connected.store(false, Ordering::Relaxed);
                    }
                }
                let Some(master) = master else {
                    // Unplugged: nothing to read until a new pty is plugged in.
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let fd = master.as_raw_fd();
                let rev = poll_fd(fd, libc::POLLIN, 50);
                if rev & libc::POLLIN != 0 {
                    // SAFETY: reading into a buffer we own, of the given length,
                    // from an fd kept open by `master`.
                    let n =
                        unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
                    if n > 0 {
                        let n = n as usize;
                        if !was_connected {
                            was_connected = true;
                            shared.host_connected.store(true, Ordering::Relaxed);
                        }
                        pacer.pace(n, shared.baud());
                        Shared::bump(&shared.bytes_in, n as u64);
                        if inbox.send(Inbox::Bytes(buf[..n].to_vec())).is_err() {
                            return;
                        }
                        continue;
                    }
                    let err = io::Error::last_os_error();
                    if n < 0 && err.kind() == io::ErrorKind::WouldBlock {
                        continue;
                    }
                    // EIO / 0: no host.
                }
                if rev & (libc::POLLHUP | libc::POLLERR) != 0 {
                    if was_connected {
                        was_connected = false;
                        shared.host_connected.store(false, Ordering::Relaxed);
                    }
                    drop(master);
                    std::thread::sleep(Duration::from_millis(10));
                } else if rev & libc::POLLNVAL != 0 {
                    drop(master);
                    std::thread::sleep(Duration::from_millis(50));
                } else if rev == 0 && !was_connected {
                    // A host opened the device but has not written yet.
                    was_connected = true;
                    shared.host_connected.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Opens a raw pty pair; returns the master (non-blocking) and the slave
/// path, the slave itself closed.
fn open_pair() -> io::Result<(OwnedFd, String)> {
    let (master, slave) = serialport::TTYPort::pair().map_err(io::Error::from)?;
    // `posix_openpt` is called without O_CLOEXEC: without this, every child process started
    // later (a broker, a test peer) would inherit the master and keep the pty alive after it
    // was closed here, so a vanished port would never hang up.
    set_cloexec(master.as_raw_fd())?;
    set_cloexec(slave.as_raw_fd())?;
    let slave_path = slave
        .name()
        .ok_or_else(|| io::Error::other("pty slave has no name"))?;
    // Make sure the slave really is raw (the termios settings persist
    // while the master is open, so a host opening it with plain
    // open(2) gets a raw line too).
    make_raw(slave.as_raw_fd())?;
    drop(slave);
    let master_fd = master.into_raw_fd();
    // SAFETY: `into_raw_fd` transferred ownership of a valid open fd.
    let master = unsafe { OwnedFd::from_raw_fd(master_fd) };
    set_nonblocking(master.as_raw_fd())?;
    Ok((master, slave_path))
}

pub(crate) struct PtySink {
    port: Arc<PtyPort>,
}

impl Sink for PtySink {
    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        let (generation, master) = self.port.current();
        // Unplugged: the bytes go nowhere.
        let Some(master) = master else {
            return Ok(());
        };
        let fd = master.as_raw_fd();
        // A host that stops reading for this long is treated like a UART
        // overrun: the rest of the unit is lost.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !data.is_empty() {
            if self.port.generation.load(Ordering::SeqCst) != generation {
                // The port vanished mid-unit: the rest is lost with it.
                return Ok(());
            }
            let rev = poll_fd(fd, libc::POLLOUT, 50);
            if rev & libc::POLLHUP != 0 {
                // No host: drop.
                return Ok(());
            }
            if rev & libc::POLLOUT != 0 {
                // SAFETY: writing from a slice we borrow, of its length, to an
                // fd kept open by `master`.
                let n =
                    unsafe { libc::write(fd, data.as_ptr() as *const libc::c_void, data.len()) };
                if n > 0 {
                    data = &data[n as usize..];
                    continue;
                }
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => {}
                    _ => return Ok(()),
                }
            }
            if Instant::now() >= deadline {
                log::warn!("host is not reading: dropped {} output bytes", data.len());
                return Ok(());
            }
        }
        Ok(())
    }
}

fn poll_fd(fd: RawFd, events: libc::c_short, timeout_ms: libc::c_int) -> libc::c_short {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd struct.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if r <= 0 {
        0
    } else {
        pfd.revents
    }
}

fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn make_raw(fd: RawFd) -> io::Result<()> {
    // SAFETY: termios is plain data; tcgetattr fills it in.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and pointer.
    if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: valid pointer.
    unsafe { libc::cfmakeraw(&mut t) };
    t.c_cflag |= libc::CREAD | libc::CLOCAL;
    t.c_cc[libc::VMIN] = 1;
    t.c_cc[libc::VTIME] = 0;
    // SAFETY: valid fd and pointer.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

//! The pseudo-terminal transport: the emulator keeps the master side, the
//! host opens the slave path like a serial port.
//!
//! While no host has the slave open, reading the master fails with `EIO` and
//! `poll` reports `POLLHUP`: that means "no host", never an exit condition.
//! Output written while no host is there is dropped (bytes sent on a UART
//! nobody listens to are lost), so a host that opens the port later does not
//! read stale responses.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serialport::SerialPort;

use crate::engine::Inbox;
use crate::faults::Shared;
use crate::output::{Pacer, Sink};

pub(crate) struct PtyPort {
    master: Arc<OwnedFd>,
    slave_path: String,
}

impl PtyPort {
    /// Opens a new pty pair (raw, 8-bit clean: `TTYPort::pair` applies
    /// `cfmakeraw` to the slave), keeps the master and closes the slave.
    pub fn open() -> io::Result<PtyPort> {
        let (master, slave) = serialport::TTYPort::pair().map_err(io::Error::from)?;
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
        Ok(PtyPort {
            master: Arc::new(master),
            slave_path,
        })
    }

    pub fn slave_path(&self) -> &str {
        &self.slave_path
    }

    pub fn sink(&self) -> PtySink {
        PtySink {
            master: self.master.clone(),
        }
    }

    /// The reader loop: forwards host bytes to the engine.
    pub fn reader(
        &self,
        inbox: mpsc::Sender<Inbox>,
        shared: Arc<Shared>,
        stop: Arc<AtomicBool>,
    ) -> impl FnOnce() + Send + 'static {
        let master = self.master.clone();
        move || {
            let fd = master.as_raw_fd();
            let mut buf = vec![0u8; 4096];
            let mut pacer = Pacer::new();
            let mut was_connected = false;
            while !stop.load(Ordering::Relaxed) {
                let rev = poll_fd(fd, libc::POLLIN, 50);
                if rev & libc::POLLIN != 0 {
                    // SAFETY: reading into a buffer we own, of the given length.
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
                    std::thread::sleep(Duration::from_millis(10));
                } else if rev & libc::POLLNVAL != 0 {
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

pub(crate) struct PtySink {
    master: Arc<OwnedFd>,
}

impl Sink for PtySink {
    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        let fd = self.master.as_raw_fd();
        // A host that stops reading for this long is treated like a UART
        // overrun: the rest of the unit is lost.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !data.is_empty() {
            let rev = poll_fd(fd, libc::POLLOUT, 50);
            if rev & libc::POLLHUP != 0 {
                // No host: drop.
                return Ok(());
            }
            if rev & libc::POLLOUT != 0 {
                // SAFETY: writing from a slice we borrow, of its length.
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

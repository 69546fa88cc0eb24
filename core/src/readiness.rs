//! The reader sleeps until the port has bytes, instead of waking on a read timeout.
//!
//! An idle session used to wake 20 times a second (a 50 ms read timeout, so that the reader
//! could notice it should stop). With the port's file descriptor the reader blocks in `poll(2)`
//! on it and on a wake pipe: it wakes when bytes arrive, when the session stops (a byte on the
//! pipe), or when a received block has been incomplete for `block_idle` (the only timeout it
//! needs). Transports without a descriptor (an in-memory pipe) keep the read-timeout loop.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// What [`Readiness::wait`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ready {
    /// The port has bytes (or hung up: the read will tell).
    Port,
    /// Someone called [`Readiness::wake`].
    Woken,
    /// The timeout passed.
    Timeout,
}

/// A wake pipe beside the port's descriptor.
pub(crate) struct Readiness {
    port: RawFd,
    read_end: OwnedFd,
    write_end: OwnedFd,
}

impl Readiness {
    /// For `port`, which must stay open as long as this is used (the reader owns both).
    pub(crate) fn new(port: RawFd) -> io::Result<Readiness> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Readiness {
            port,
            read_end,
            write_end,
        })
    }

    /// Makes a [`Readiness::wait`] in progress (or the next one) return [`Ready::Woken`].
    pub(crate) fn wake(&self) {
        // SAFETY: writing one byte from a valid buffer to our own open descriptor. A full pipe
        // (EAGAIN) already holds a wake-up, so the result does not matter.
        unsafe {
            libc::write(self.write_end.as_raw_fd(), [1u8].as_ptr().cast(), 1);
        }
    }

    /// Sleeps until the port is readable, [`Readiness::wake`] is called, or `timeout` passes
    /// (`None`: no timeout).
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<Ready> {
        let mut fds = [
            libc::pollfd {
                fd: self.port,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.read_end.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ms = match timeout {
            None => -1,
            Some(t) => t.as_millis().clamp(1, i32::MAX as u128) as libc::c_int,
        };
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(Ready::Woken);
            }
            return Err(e);
        }
        if fds[1].revents != 0 {
            let mut sink = [0u8; 64];
            // SAFETY: reading into a valid buffer from our own non-blocking descriptor.
            while unsafe {
                libc::read(
                    self.read_end.as_raw_fd(),
                    sink.as_mut_ptr().cast(),
                    sink.len(),
                )
            } > 0
            {}
            return Ok(Ready::Woken);
        }
        if n == 0 {
            return Ok(Ready::Timeout);
        }
        Ok(Ready::Port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;

    #[test]
    fn wakes_on_bytes_on_wake_and_on_timeout() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let r = Arc::new(Readiness::new(b.as_raw_fd()).unwrap());
        assert_eq!(
            r.wait(Some(Duration::from_millis(10))).unwrap(),
            Ready::Timeout
        );
        a.write_all(b"x").unwrap();
        assert_eq!(r.wait(None).unwrap(), Ready::Port);
        let mut buf = [0u8; 1];
        use std::io::Read;
        (&b).read_exact(&mut buf).unwrap();
        let r2 = r.clone();
        let t = std::thread::spawn(move || r2.wait(None).unwrap());
        std::thread::sleep(Duration::from_millis(20));
        r.wake();
        assert_eq!(t.join().unwrap(), Ready::Woken);
    }
}

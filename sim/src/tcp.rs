//! The TCP transport: the AT interface served on a TCP listener, one client
//! at a time (further clients wait in the listen backlog until the current
//! one disconnects). Output while no client is connected is dropped.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use parking_lot::Mutex;

use crate::inbox::Inbox;
use crate::output::{Pacer, Sink};
use crate::shared::Shared;

pub(crate) struct TcpPort;

pub(crate) struct TcpSink {
    current: Arc<Mutex<Option<TcpStream>>>,
}

impl Sink for TcpSink {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let stream = self
            .current
            .lock()
            .as_ref()
            .and_then(|s| s.try_clone().ok());
        if let Some(mut s) = stream {
            if let Err(e) = s.write_all(data) {
                log::debug!("tcp client write failed: {e}");
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
        Ok(())
    }
}

impl TcpPort {
    #[allow(clippy::new_ret_no_self)]
    pub fn new(
        listener: TcpListener,
        inbox: mpsc::Sender<Inbox>,
        shared: Arc<Shared>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<(TcpSink, impl FnOnce() + Send + 'static)> {
        listener.set_nonblocking(true)?;
        let current: Arc<Mutex<Option<TcpStream>>> = Arc::new(Mutex::new(None));
        let sink = TcpSink {
            current: current.clone(),
        };
        let reader = move || {
            let mut buf = vec![0u8; 4096];
            let mut pacer = Pacer::new();
            while !stop.load(Ordering::Relaxed) {
                let stream = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    Err(e) => {
                        log::warn!("accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                };
                if stream.set_nonblocking(false).is_err()
                    || stream
                        .set_read_timeout(Some(Duration::from_millis(50)))
                        .is_err()
                {
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                let mut reader = match stream.try_clone() {
                    Ok(r) => r,
                    Err(_) => continue,
                };
                *current.lock() = Some(stream);
                shared.host_connected.store(true, Ordering::Relaxed);
                while !stop.load(Ordering::Relaxed) {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            pacer.pace(n, shared.baud());
                            Shared::bump(&shared.bytes_in, n as u64);
                            if inbox.send(Inbox::Bytes(buf[..n].to_vec())).is_err() {
                                return;
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock
                                    | io::ErrorKind::TimedOut
                                    | io::ErrorKind::Interrupted
                            ) => {}
                        Err(_) => break,
                    }
                }
                if let Some(s) = current.lock().take() {
                    let _ = s.shutdown(std::net::Shutdown::Both);
                }
                shared.host_connected.store(false, Ordering::Relaxed);
            }
        };
        Ok((sink, reader))
    }
}

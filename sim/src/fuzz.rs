//! Running the AT engine with no pty, no threads and no network, for fuzzing and property tests.

use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;

use crate::config::{Model, ResultOrder, SimConfig};
use crate::engine::Engine;
use crate::inbox::{FaultCmd, Inbox};
use crate::output::{Output, Sink};
use crate::shared::Shared;

struct Collect(Arc<Mutex<Vec<u8>>>);

impl Sink for Collect {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.lock().extend_from_slice(data);
        Ok(())
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime for the offline engine")
    })
}

/// Runs the emulator's AT engine offline on `input` and returns everything it wrote to the host.
///
/// The first byte picks the model (`% 3`), whether echo is on (bit 2), the boot banner (bit 3),
/// the result order override (bits 4-5) and the RX chunk size (bits 6-7: 1500, 1, 7, 64). The rest
/// is a program: a byte `n < 0xf0` feeds the next `n` bytes as host input; `0xf0` makes whatever
/// the engine waits for time out now; `0xf1`/`0xf2` drop client 0/1's connection; `0xf3` loses
/// the network; `0xf4` resets; `0xf5` vanishes the port, `0xf6` plugs it back; `0xf7`/`0xf8` stall
/// on/off; anything above feeds the rest of the input at once. `AT+CMQTTCONNECT` reaches a
/// loopback broker that accepts everything and echoes every publish back, so the whole command
/// set, received-message reporting included, can be reached.
///
/// Panics if the engine panics or one of its buffers exceeds its bound (the fuzzers' oracle).
#[doc(hidden)]
pub fn fuzz_feed(input: &[u8]) -> Vec<u8> {
    let Some((&head, mut prog)) = input.split_first() else {
        return Vec::new();
    };
    let mut cfg = SimConfig::new(Model::ALL[usize::from(head % 3)]);
    cfg.echo = head & 4 != 0;
    cfg.boot_banner = head & 8 != 0;
    cfg.result_order = match (head >> 4) & 3 {
        1 => Some(ResultOrder::OkFirst),
        2 => Some(ResultOrder::ResultFirst),
        _ => None,
    };
    cfg.rx_chunk = [1500, 1, 7, 64][usize::from(head >> 6)];
    cfg.data_timeout = Duration::from_secs(3600);
    let shared = Arc::new(Shared::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let (inbox_tx, inbox_rx) = mpsc::channel::<Inbox>();
    let collected = Arc::new(Mutex::new(Vec::new()));
    let (out, writer) = Output::new(Box::new(Collect(collected.clone())), shared.clone(), stop);
    let mut engine = Engine::new(
        &cfg,
        inbox_rx,
        inbox_tx,
        out,
        shared.clone(),
        runtime().handle().clone(),
    );
    engine.set_offline();
    engine.step_boot();
    while let Some((&op, rest)) = prog.split_first() {
        prog = rest;
        match op {
            n if n < 0xf0 => {
                let n = usize::from(n).min(prog.len());
                let (chunk, rest) = prog.split_at(n);
                prog = rest;
                engine.step_bytes(chunk);
            }
            0xf0 => engine.step_expire(),
            0xf1 => engine.step_fault(FaultCmd::DropConnection {
                client: 0,
                cause: 1,
            }),
            0xf2 => engine.step_fault(FaultCmd::DropConnection {
                client: 1,
                cause: 2,
            }),
            0xf3 => engine.step_fault(FaultCmd::LoseNetwork),
            0xf4 => engine.step_fault(FaultCmd::Reset),
            0xf5 => engine.step_fault(FaultCmd::Vanish),
            0xf6 => engine.step_fault(FaultCmd::Replugged),
            0xf7 => shared
                .stalled
                .store(true, std::sync::atomic::Ordering::SeqCst),
            0xf8 => shared
                .stalled
                .store(false, std::sync::atomic::Ordering::SeqCst),
            _ => {
                engine.step_bytes(prog);
                prog = &[];
            }
        }
        engine.check_bounds();
    }
    // Every output sender is gone with the engine: the writer writes what is queued and ends.
    drop(engine);
    writer();
    let out = std::mem::take(&mut *collected.lock());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prog(head: u8, lines: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![head];
        for l in lines {
            for c in l.chunks(0xef) {
                v.push(c.len() as u8);
                v.extend_from_slice(c);
            }
        }
        v
    }

    #[test]
    fn offline_engine_runs_a_whole_session() {
        // A7600, echo off, no banner.
        let out = fuzz_feed(&prog(
            0,
            &[
                b"AT+CMQTTSTART\r",
                b"AT+CMQTTACCQ=0,\"fz\"\r",
                b"AT+CMQTTCONNECT=0,\"tcp://127.0.0.1:1883\",60,1\r",
                b"AT+CMQTTSUB=0,3,1\r",
                b"a/b",
                b"AT+CMQTTTOPIC=0,3\r",
                b"a/b",
                b"AT+CMQTTPAYLOAD=0,5\r",
                b"he\r\nl",
                b"AT+CMQTTPUB=0,1,60\r",
            ],
        ));
        let text = String::from_utf8_lossy(&out);
        for want in [
            "+CMQTTSTART: 0",
            "+CMQTTCONNECT: 0,0",
            "+CMQTTSUB: 0,0",
            "+CMQTTPUB: 0,0",
            "+CMQTTRXSTART: 0,3,5\r\n+CMQTTRXTOPIC: 0,3\r\na/b\r\n+CMQTTRXPAYLOAD: 0,5\r\nhe\r\nl\r\n+CMQTTRXEND: 0",
        ] {
            assert!(text.contains(want), "{want:?} not in {text:?}");
        }
    }

    #[test]
    fn faults_and_timeouts_offline() {
        let mut p = prog(4 | 8, &[b"AT+CMQTTSTART\r", b"AT+CMQTTTOPIC=0,5\r", b"ab"]);
        p.extend_from_slice(&[0xf0, 0xf3, 0xf4, 0xf0, 0xf5, 0xf6, 0xf0, 0xf7, 0xf8, 0xff]);
        p.extend_from_slice(b"AT\r");
        let out = fuzz_feed(&p);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("\r\nRDY\r\n"), "{text:?}");
        assert!(text.ends_with("AT\r\r\nOK\r\n"), "{text:?}");
        assert!(fuzz_feed(&[]).is_empty());
    }
}

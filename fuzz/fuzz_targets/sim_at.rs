//! The emulator's AT engine (command-line parser, prompted data, the MQTT state machine against a
//! loopback broker, faults and timeouts) fed arbitrary host bytes with no pty and no network;
//! its output is then read back by the core's digester, which must not choke on it either.
//!
//! Invariants: no panic; the engine's buffers stay within their bounds (checked after every
//! step by `cmqtt_sim::fuzz_feed`); the digester's units are well formed.

#![no_main]

use cmqtt::digest::{digest, DigestOptions, Digested};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = cmqtt_sim::fuzz_feed(data);
    let opts = DigestOptions::default();
    let mut pos = 0;
    loop {
        match digest(&out[pos..], &opts) {
            Digested::Incomplete { .. } => break,
            Digested::Unit { used, .. } => {
                assert!(used > 0 && used <= out.len() - pos);
                pos += used;
            }
        }
    }
});

//! `cmqtt-sim`: an emulator of the MQTT client built into SIMCom LTE modems
//! (A7600/A76xx, SIM7600, SIM7672X/SIM7652X).
//!
//! The emulator speaks the `AT+CMQTT*` command set (plus the TLS set-up
//! commands `AT+CSSLCFG`, `AT+CCERTDOWN`, `AT+CCERTLIST`, `AT+CCERTDELE` and a
//! few basic commands) over a pseudo terminal or a TCP socket, and drives a
//! **real** MQTT connection (plain TCP or TLS) to the broker named in
//! `AT+CMQTTCONNECT`. It is an independent implementation of the vendor
//! documents in `shared/spec/` plus the field notes on how real modems behave.
//!
//! ```no_run
//! use cmqtt_sim::{Model, SimConfig, Simulator};
//! let sim = Simulator::start_pty(SimConfig::new(Model::A7600)).unwrap();
//! println!("open {}", sim.device());
//! // ... drive it with AT commands ...
//! sim.shutdown();
//! ```
//!
//! See `sim/README.md` for the fault API, the error-code table and the known
//! differences from real modems.

#![warn(missing_docs)]

// Module layering: each module uses only modules on lower lines, so the
// module graph has no cycle (see "Code layout" in sim/README.md). The hub
// types several modules share live at the bottom, in modules named for what
// they hold.
//
//   lib.rs      re-exports only
//   cli         -> config, simulator
//   simulator   -> config, engine, faults, inbox, output, pty, shared, tcp
//   fuzz        -> config, engine, inbox, output, shared
//   engine      -> at, codes, config, inbox, mqtt, output, profile, session, shared, state, tls
//   faults      -> inbox, output, pty, shared
//   pty, tcp    -> inbox, output, shared
//   mqtt        -> codes, inbox, session, wire
//   tls         -> codes, state
//   profile     -> config
//   output      -> shared
//   inbox       -> session              (Inbox, FaultCmd: what reaches the engine)
//   state       -> session              (modem state, client slots, SSL contexts)
//   at, codes, config, session, shared, wire: nothing in the crate
mod at;
mod cli;
mod codes;
mod config;
mod engine;
mod faults;
mod fuzz;
mod inbox;
mod mqtt;
mod output;
mod profile;
mod pty;
mod session;
mod shared;
mod simulator;
mod state;
mod tcp;
mod tls;
mod wire;

pub use cli::{run_cli, SimArgs};
pub use config::{Model, ResultOrder, SimConfig, UnknownModel};
pub use faults::{Faults, SimStats};
#[doc(hidden)]
pub use fuzz::fuzz_feed;
pub use simulator::Simulator;

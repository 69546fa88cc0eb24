//! # cmqtt
//!
//! Drive the MQTT client built into SIMCom LTE modems (A7600/A76xx, SIM7600, SIM7672X/SIM7652X)
//! through its `AT+CMQTT*` commands, from a Linux host, over a serial port or any byte stream.
//!
//! - **Binary-safe**: received topics and payloads are read by their announced lengths, never by
//!   lines; a payload may hold `\r\n`, `OK`, `+CMQTTRXEND: 0`, NUL or any byte.
//! - **Loss-free**: one reader thread owns the port for the whole session and drains it while
//!   the host is busy; unsolicited codes become [`Event`]s in bounded queues whose overflows are
//!   reported, never silent.
//! - **Typed**: every command of the spec in every form is a type in [`command`] that checks
//!   its arguments against the spec and the model's [`Profile`] before a byte is sent; failures
//!   are [`Error`]s carrying the modem's [`ErrCode`].
//! - **Synchronous**: blocking calls with timeouts, `&self` everywhere, usable from many threads.
//!
//! ## Threads, callbacks and health
//! A session runs two threads. The *reader* owns the port (it sleeps in `poll(2)` until bytes
//! come), digests what arrives ([`digest::digest`]) and routes it: answers to the command in
//! progress, messages to their client's queue, other events to the modem's queue. Connection
//! health — connected, lost (`+CMQTTCONNLOST`), no network, modem restarted, port gone — is
//! recorded in [`Modem::health`] *before* anything is queued: [`Client::is_connected`] and the
//! [`Supervisor`] read that state, so no loss is ever hidden by a full queue.
//!
//! Each stream (a client's messages, the modem's events) is one bounded queue. Read it
//! ([`Client::next_message`], [`Client::recv_timeout`], [`Modem::recv_event`]) or install a
//! callback ([`Client::on_message`], [`Client::on_connection_lost`], [`Modem::on_event`]): then
//! the *dispatch* thread drains that same queue into it, one call at a time, connection losses
//! first, with no internal lock held — a callback may publish, subscribe or run any command. A
//! slow callback makes its queue fill and overflow (oldest dropped, counted, reported as
//! [`Event::Overflow`]); it never delays the reader or hides a loss. Replacing or clearing a
//! callback returns once the old one has returned (at once from inside a callback); a callback
//! belongs to the handle that installed it. [`in_callback`] is the one "may I block here?" rule.
//!
//! For a device that must stay connected for months, use the [`Supervisor`]: it restores
//! whatever a loss destroyed, with backoff, and sends an [`outbox`] (optionally kept in a file)
//! in order. The emulator crate `cmqtt-sim` runs all of this without hardware.
//!
//! ```no_run
//! use std::time::Duration;
//! use cmqtt::{ConnectOptions, Modem};
//!
//! let modem = Modem::open("/dev/ttyUSB2", 115200)?;   // syncs, echo off, identifies the model
//! modem.start()?;                                      // AT+CMQTTSTART
//! let client = modem.client(0, "device-1", false)?;   // AT+CMQTTACCQ
//! client.connect(&ConnectOptions::new("tcp://broker.example:1883"))?;
//! client.subscribe(&[("cmd/#", 1)])?;
//! client.publish("data/x", b"\x00\x01\r\n", 1, false, Duration::from_secs(60))?;
//! for msg in client.messages(Duration::from_secs(10)) {
//!     println!("{}: {} bytes", msg.topic_lossy(), msg.payload.len());
//! }
//! client.disconnect(Duration::from_secs(60))?;         // AT+CMQTTDISC; REL on drop
//! # Ok::<(), cmqtt::Error>(())
//! ```

#![warn(missing_debug_implementations)]

pub mod assemble;
mod client;
pub mod command;
pub mod digest;
mod dispatch;
mod error;
mod event;
mod health;
mod modem;
pub mod outbox;
pub mod ports;
mod profile;
mod qos;
mod ratelimit;
mod readiness;
mod session;
pub mod supervise;
mod time;
mod trace;
pub mod url;

pub use client::{Client, ClientOptions, ConnectOptions, Publish};
pub use command::{CfgSetting, ClientConfig, SslSetting};
pub use dispatch::in_callback;
pub use error::{ErrCode, Error, ErrorKind, ModemFailure, Result};
pub use event::{Event, Message, OverflowPolicy, MAX_QUEUE_CAPACITY};
pub use health::Health;
pub use modem::{Modem, ModemOptions, SslContext};
pub use outbox::{Delivery, DeliveryStatus, OpenReport, OutboxConfig, WhenFull};
pub use profile::{Model, Profile, VersionDialect};
pub use qos::QoS;
pub use session::Identity;
pub use supervise::{
    Backoff, Endpoint, Loss, State, Supervisor, SupervisorConfig, SupervisorEvent, Will,
};
pub use trace::{Direction, TraceFn};
pub use url::BrokerUrl;

/// This crate's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

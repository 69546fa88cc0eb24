//! Shared set-up of the end-to-end tests: a real mosquitto (127.0.0.1 only), the emulator on a
//! pseudo-terminal, and the library's `Modem` opened on it.

use std::time::Duration;

pub use cmqtt::{ClientOptions, ConnectOptions, Modem, ModemOptions};
pub use cmqtt_sim::{Model as SimModel, SimConfig, Simulator};
pub use cmqtt_testkit::{publish, Broker, BrokerOptions, PeerOptions, Received, Subscriber};

/// The usual publish timeout (the modem's minimum).
pub const PUB: Duration = Duration::from_secs(60);

/// A broker, an emulated modem and the library's session on it.
pub struct Rig {
    pub broker: Broker,
    pub sim: Simulator,
    pub modem: Modem,
}

impl Rig {
    /// Plain broker, default emulator of `model`, session opened and MQTT service started.
    pub fn new(model: SimModel) -> Rig {
        Rig::with(model, BrokerOptions::default(), |_| {})
    }

    /// With broker options and a chance to adjust the emulator's configuration.
    pub fn with(model: SimModel, b: BrokerOptions, tweak: impl FnOnce(&mut SimConfig)) -> Rig {
        let broker = Broker::start_with(b);
        let mut cfg = SimConfig::new(model);
        tweak(&mut cfg);
        let sim = Simulator::start_pty(cfg).expect("start the emulator");
        let modem = open(&sim);
        modem.start().expect("AT+CMQTTSTART");
        Rig { broker, sim, modem }
    }

    /// Connect options for this rig's plain listener.
    pub fn connect_opts(&self) -> ConnectOptions {
        let mut o = ConnectOptions::new(self.broker.url());
        o.timeout = Duration::from_secs(20);
        o
    }

    /// Acquire `index` as `id` and connect it to the plain listener.
    pub fn connected(&self, index: u8, id: &str) -> cmqtt::Client {
        let c = self.modem.client(index, id, false).expect("AT+CMQTTACCQ");
        c.connect(&self.connect_opts()).expect("AT+CMQTTCONNECT");
        c
    }
}

/// Opens the library on an emulator, with short timeouts fit for tests.
pub fn open(sim: &Simulator) -> Modem {
    let opts = ModemOptions {
        sync_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    Modem::open_with(&sim.device(), 115200, opts).expect("open the emulator's pty")
}

/// Every byte value, repeated to `len` bytes.
pub fn all_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 256) as u8).collect()
}

/// Waits for one message on `sub`, failing the test with a clear message when none comes.
pub fn expect_one(sub: &mut Subscriber, what: &str) -> Received {
    sub.next(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the independent subscriber saw nothing for {what}"))
}

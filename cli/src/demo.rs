//! `cmqtt demo`: the whole library end to end with nothing installed and no hardware: an
//! embedded MQTT broker (rumqttd) on 127.0.0.1, the modem emulator (cmqtt-sim) on a
//! pseudo-terminal, and the library driving the emulator through that pseudo-terminal exactly
//! as it drives a real modem on /dev/ttyUSB2.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use clap::Args;
use cmqtt::{ConnectOptions, Message, Modem};

use crate::common::{modem_options, ModelArg};
use crate::failure::{code, Failure};

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Modem family to emulate.
    #[arg(long, value_enum, value_name = "MODEL", default_value = "a7600")]
    pub model: ModelArg,
}

/// The topic filter the demo subscribes to; each message goes to a topic below it.
const FILTER: &str = "cmqtt/demo/#";
/// How long to wait for each message to come back.
const RX_TIMEOUT: Duration = Duration::from_secs(15);
/// The modem's publish timeout.
const PUB_TIMEOUT: Duration = Duration::from_secs(60);

struct Sample {
    topic: &'static str,
    qos: u8,
    payload: Vec<u8>,
    what: &'static str,
}

fn samples() -> Vec<Sample> {
    vec![
        Sample {
            topic: "cmqtt/demo/qos0",
            qos: 0,
            payload: b"hello from cmqtt at QoS 0".to_vec(),
            what: "text",
        },
        Sample {
            topic: "cmqtt/demo/qos1",
            qos: 1,
            // Bytes that look like the modem's own output must come back as data.
            payload: b"line 1\r\nOK\r\n+CMQTTRXEND: 0\r\nERROR\r\n\x00 end".to_vec(),
            what: "CR LF, OK, URC look-alikes, NUL",
        },
        Sample {
            topic: "cmqtt/demo/qos2",
            qos: 2,
            payload: "grüße, ✓ QoS 2".as_bytes().to_vec(),
            what: "UTF-8",
        },
        Sample {
            topic: "cmqtt/demo/binary",
            qos: 1,
            payload: (0..4000u32).map(|i| (i % 256) as u8).collect(),
            what: "all 256 byte values, in 1500-byte chunks",
        },
    ]
}

/// Exit 0 when every message came back intact; any failure exits 1 (code::FAILURE).
pub fn run(a: DemoArgs, trace: bool) -> Result<(), Failure> {
    let t_all = Instant::now();
    println!("cmqtt demo: an emulated modem on a pseudo-terminal and an embedded MQTT broker; no hardware");

    let broker = start_broker()?;
    println!("  broker      {broker} (rumqttd, in this process)");

    let sim = cmqtt_sim::Simulator::start_pty(cmqtt_sim::SimConfig::new(a.model.to_sim()))
        .map_err(|e| Failure::other(format!("cannot start the modem emulator: {e}")))?;
    let device = sim.device();
    println!(
        "  modem       {device} (cmqtt-sim emulating {})",
        a.model.to_sim()
    );

    let outcome = drive(&device, broker, trace);
    sim.shutdown();
    // The demo has one failure code: whatever went wrong, the message names it.
    let report = outcome.map_err(|f| Failure::new(code::FAILURE, f.message))?;
    println!(
        "\nall {} messages came back intact (total {} ms)",
        report,
        t_all.elapsed().as_millis()
    );
    Ok(())
}

/// Everything through the library; returns how many messages came back intact.
fn drive(device: &str, broker: SocketAddr, trace: bool) -> Result<usize, Failure> {
    let step = |name: &str, t: Instant, detail: String| {
        println!("  {name:<11} {:>5} ms  {detail}", t.elapsed().as_millis());
    };

    let t = Instant::now();
    let modem = Modem::open_with(
        device,
        115200,
        modem_options(None, Duration::from_secs(10), trace),
    )
    .map_err(|e| Failure::cmqtt(format!("opening the emulated modem on {device}"), e))?;
    step(
        "open",
        t,
        format!(
            "AT, ATE0, identified {:?} (profile {}), firmware {:?}",
            modem.identity().model_name,
            modem.model(),
            modem.firmware()
        ),
    );

    let t = Instant::now();
    let started = modem
        .start()
        .map_err(|e| Failure::cmqtt("AT+CMQTTSTART", e))?;
    step(
        "start",
        t,
        format!(
            "AT+CMQTTSTART ({})",
            if started { "started" } else { "was running" }
        ),
    );

    let client_id = format!("cmqtt-demo-{}", std::process::id());
    let t = Instant::now();
    let mut opts = cmqtt::ClientOptions::new(&client_id);
    // The embedded broker speaks MQTT 3.1.1 only; the factory default of real modems is 3.1.
    opts.version = Some(4);
    // Models without a way to set it speak their default.
    let client = crate::common::acquire(&modem, 0, &opts, false)?;
    step("acquire", t, format!("AT+CMQTTACCQ client 0 {client_id:?}"));

    let t = Instant::now();
    client
        .set_check_utf8(false)
        .map_err(|e| Failure::cmqtt("AT+CMQTTCFG=\"checkUTF8\"", e))?;
    step("checkUTF8", t, "off: payloads may be any bytes".into());

    let server = format!("tcp://{broker}");
    let t = Instant::now();
    let mut c = ConnectOptions::new(server.clone());
    c.timeout = Duration::from_secs(30);
    client
        .connect(&c)
        .map_err(|e| Failure::connect(format!("connecting to {server}"), e))?;
    let connect_ms = t.elapsed().as_secs_f64() * 1000.0;
    step("connect", t, server.clone());

    let t = Instant::now();
    client
        .subscribe(&[(FILTER, 2)])
        .map_err(|e| Failure::cmqtt(format!("subscribing to {FILTER}"), e))?;
    step("subscribe", t, format!("{FILTER} at QoS 2"));

    println!(
        "\n  {:<20} {:>3} {:>6} {:>8}  RESULT",
        "TOPIC", "QOS", "BYTES", "RTT ms"
    );
    let mut problems = Vec::new();
    let mut rtts = Vec::new();
    let samples = samples();
    for s in &samples {
        let t = Instant::now();
        if let Err(e) = client.publish(s.topic, &s.payload, s.qos, false, PUB_TIMEOUT) {
            return Err(Failure::cmqtt(
                format!("publishing to {} at QoS {}", s.topic, s.qos),
                e,
            ));
        }
        let got = wait_for(&client, s.topic, RX_TIMEOUT);
        let rtt = t.elapsed().as_secs_f64() * 1000.0;
        let (len, verdict) = match &got {
            Some(m) if m.payload == s.payload => {
                (m.payload.len().to_string(), format!("ok ({})", s.what))
            }
            Some(m) => {
                let msg = format!("DIFFERENT: {}", first_difference(&s.payload, &m.payload));
                problems.push(format!("{}: {}", s.topic, msg));
                (m.payload.len().to_string(), msg)
            }
            None => {
                let msg = format!(
                    "MISSING: nothing came back within {} s",
                    RX_TIMEOUT.as_secs()
                );
                problems.push(format!("{}: {}", s.topic, msg));
                ("-".into(), msg)
            }
        };
        println!(
            "  {:<20} {:>3} {:>6} {:>8.1}  {verdict}",
            s.topic, s.qos, len, rtt
        );
        rtts.push((s.qos, s.topic, rtt));
    }
    if let Some(m) = client.try_recv() {
        problems.push(format!(
            "an extra message arrived on {} ({} bytes)",
            m.topic_lossy(),
            m.payload.len()
        ));
    }

    let t = Instant::now();
    let disc = client.disconnect(Duration::ZERO);
    let rel = client.release();
    let stop = modem.stop();
    step("close", t, "AT+CMQTTDISC, AT+CMQTTREL, AT+CMQTTSTOP".into());
    for (what, r) in [
        ("AT+CMQTTDISC", disc),
        ("AT+CMQTTREL", rel),
        ("AT+CMQTTSTOP", stop),
    ] {
        if let Err(e) = r {
            problems.push(format!("{what}: {e}"));
        }
    }
    let (rx, tx) = modem.byte_counts();
    println!(
        "\n  timing: connect {connect_ms:.1} ms; publish-to-receive round trip: {}",
        rtts.iter()
            .map(|(q, topic, ms)| {
                let name = topic.rsplit('/').next().unwrap_or(topic);
                if name.starts_with("qos") {
                    format!("QoS {q} {ms:.1} ms")
                } else {
                    format!("{name} (QoS {q}) {ms:.1} ms")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  serial: {tx} bytes written, {rx} bytes read");
    if problems.is_empty() {
        Ok(samples.len())
    } else {
        Err(Failure::new(
            code::FAILURE,
            format!("demo failed: {}", problems.join("; ")),
        ))
    }
}

/// The next message on `topic`; messages on other topics are skipped.
fn wait_for(client: &cmqtt::Client, topic: &str, timeout: Duration) -> Option<Message> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let m = client.recv_timeout(left)?;
        if m.topic == topic.as_bytes() {
            return Some(m);
        }
    }
}

fn first_difference(want: &[u8], got: &[u8]) -> String {
    match want.iter().zip(got).position(|(a, b)| a != b) {
        Some(i) => format!(
            "byte {i} is 0x{:02x}, sent 0x{:02x} ({} of {} bytes came back)",
            got[i],
            want[i],
            got.len(),
            want.len()
        ),
        None => format!("{} bytes came back, {} were sent", got.len(), want.len()),
    }
}

// ---- the embedded broker ---------------------------------------------------------------------

/// Start rumqttd on 127.0.0.1 with a free port; returns its address once it accepts
/// connections. It runs on its own threads until the process exits.
fn start_broker() -> Result<SocketAddr, Failure> {
    let mut last = String::new();
    for _ in 0..3 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| Failure::other(format!("cannot find a free port on 127.0.0.1: {e}")))?
            .port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut broker = rumqttd::Broker::new(broker_config(addr));
        let spawned = std::thread::Builder::new()
            .name("demo-broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    log::warn!("embedded broker: {e}");
                }
            });
        if let Err(e) = spawned {
            return Err(Failure::other(format!(
                "cannot start the embedded broker: {e}"
            )));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(addr);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        last = format!("nothing listens on {addr} after 5 s");
    }
    Err(Failure::other(format!(
        "the embedded broker did not start: {last}"
    )))
}

fn broker_config(listen: SocketAddr) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 64 * 1024,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "cmqtt-demo".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 16,
            max_outgoing_packet_count: 200,
            max_segment_size: 1024 * 1024,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    }
}

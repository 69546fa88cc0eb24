//! The fault API: dropped connections (with the broker's will), broker
//! death, network loss, resets, stalls, slowness, injected garbage.

mod common;

use std::time::{Duration, Instant};

use cmqtt_sim::{Model, SimConfig};
use cmqtt_testkit::{Broker, Subscriber};
use common::*;

/// START, ACCQ, will "will/t" = "gone", CONNECT.
fn connect_with_will(h: &mut Host, broker: &Broker, id: &str) {
    h.cmd("AT+CMQTTSTART", &ok_then("+CMQTTSTART: 0"));
    h.cmd(&format!("AT+CMQTTACCQ=0,\"{id}\""), OK);
    h.data_cmd("AT+CMQTTWILLTOPIC=0,6", b"will/t", OK);
    h.data_cmd("AT+CMQTTWILLMSG=0,4,1", b"gone", OK);
    h.cmd(
        &format!("AT+CMQTTCONNECT=0,\"{}\",60,1", broker.url()),
        &ok_then("+CMQTTCONNECT: 0,0"),
    );
}

#[test]
fn drop_connection_reports_connlost_and_the_broker_sends_the_will() {
    let broker = Broker::start();
    let mut will = Subscriber::start(&broker, &["will/t"], 1);
    let (sim, mut h) = sim(Model::A7600);
    connect_with_will(&mut h, &broker, "dropper");
    sim.faults().drop_connection(0, 2);
    h.expect(b"\r\n+CMQTTCONNLOST: 0,2\r\n");
    let m = will.next(T).expect("will published");
    assert_eq!(m.payload, b"gone");
    // Disconnected: PUB says no connection; a new CONNECT works.
    h.data_cmd("AT+CMQTTTOPIC=0,1", b"t", OK);
    h.cmd("AT+CMQTTPUB=0,0,60", "\r\n+CMQTTPUB: 0,11\r\n\r\nERROR\r\n");
    h.cmd(
        &format!("AT+CMQTTCONNECT=0,\"{}\",60,1", broker.url()),
        &ok_then("+CMQTTCONNECT: 0,0"),
    );
    // Not connected clients: no effect.
    sim.faults().drop_connection(1, 1);
    h.quiet(Duration::from_millis(100));
}

#[test]
fn broker_death_gives_connlost_once_and_no_reconnect() {
    let mut broker = Broker::start();
    let (_sim, mut h) = sim(Model::A7600);
    connect_with_will(&mut h, &broker, "victim");
    broker.kill();
    h.expect(b"\r\n+CMQTTCONNLOST: 0,1\r\n");
    broker.restart();
    // No automatic reconnect, no second report.
    h.quiet(Duration::from_millis(500));
    h.cmd(
        "AT+CMQTTDISC?",
        "\r\n+CMQTTDISC: 0,1\r\n+CMQTTDISC: 1,1\r\n\r\nOK\r\n",
    );
    h.cmd(
        &format!("AT+CMQTTCONNECT=0,\"{}\",60,1", broker.url()),
        &ok_then("+CMQTTCONNECT: 0,0"),
    );
}

#[test]
fn in_flight_publish_fails_honestly_when_the_connection_drops() {
    let broker = Broker::start();
    let (sim, mut h) = sim(Model::A7600);
    connect_with_will(&mut h, &broker, "inflight");
    // Stop the broker from answering (SIGSTOP): the PUBACK never comes.
    let pid = broker.pid().unwrap() as i32;
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    h.data_cmd("AT+CMQTTTOPIC=0,1", b"t", OK);
    h.cmd("AT+CMQTTPUB=0,1,60", OK);
    std::thread::sleep(Duration::from_millis(100));
    sim.faults().drop_connection(0, 1);
    h.expect(b"\r\n+CMQTTPUB: 0,6\r\n\r\n+CMQTTCONNLOST: 0,1\r\n");
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
}

#[test]
fn lose_network_on_sim7672x_reports_nonet_and_stops_the_service() {
    let broker = Broker::start();
    let (sim, mut h) = sim(Model::Sim7672x);
    connect_with_will(&mut h, &broker, "nonet");
    sim.faults().lose_network();
    h.expect(b"\r\n+CMQTTCONNLOST: 0,3\r\n\r\n+CMQTTNONET\r\n");
    h.cmd("AT+CMQTTACCQ?", ERROR);
    h.cmd("AT+CMQTTSTART", &ok_then("+CMQTTSTART: 0"));
    h.cmd("AT+CMQTTACCQ=0,\"again\"", OK);

    // A76xx has no +CMQTTNONET.
    let (sim2, mut h2) = common::sim(Model::A7600);
    connect_with_will(&mut h2, &broker, "nonet2");
    sim2.faults().lose_network();
    h2.expect(b"\r\n+CMQTTCONNLOST: 0,3\r\n");
    h2.quiet(Duration::from_millis(100));
}

#[test]
fn reset_loses_state_and_says_rdy() {
    let broker = Broker::start();
    let mut will = Subscriber::start(&broker, &["will/t"], 1);
    let (sim, mut h) = sim(Model::A7600);
    let ca = b"-----BEGIN CERTIFICATE-----\r\nnot really\r\n-----END CERTIFICATE-----\r\n";
    h.data_cmd(&format!("AT+CCERTDOWN=\"ca.pem\",{}", ca.len()), ca, OK);
    connect_with_will(&mut h, &broker, "resetme");
    let t = Instant::now();
    sim.faults().reset();
    h.expect(b"\r\nRDY\r\n");
    assert!(t.elapsed() >= Duration::from_millis(150));
    // The connection died without DISCONNECT: the broker sends the will.
    assert_eq!(will.next(T).expect("will").payload, b"gone");
    // Echo is back on, the service is stopped, files survive.
    h.send(b"AT+CMQTTACCQ?\r");
    h.expect(b"AT+CMQTTACCQ?\r\r\nERROR\r\n");
    h.send(b"AT+CCERTLIST\r");
    h.expect(b"AT+CCERTLIST\r\r\n+CCERTLIST: \"ca.pem\"\r\n\r\nOK\r\n");
}

#[test]
fn at_creset_reports_lost_connections_then_rdy() {
    let broker = Broker::start();
    let mut cfg = SimConfig::new(Model::Sim7672x);
    cfg.echo = false;
    cfg.boot_banner = true;
    let (_sim, mut h) = sim_with(cfg);
    std::thread::sleep(Duration::from_millis(100));
    h.clear(); // the power-on banner, if the host was quick enough to see it
    connect_with_will(&mut h, &broker, "creset");
    h.cmd(
        "AT+CRESET",
        "\r\nOK\r\n\r\n+CMQTTCONNLOST: 0,3\r\n\r\n+CMQTTNONET\r\n",
    );
    // Input while booting is lost.
    h.send(b"AT\r");
    h.expect(b"\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n");
    h.quiet(Duration::from_millis(100));
    h.send(b"AT\r");
    h.expect(b"AT\r\r\nOK\r\n");
}

#[test]
fn stall_slow_and_inject() {
    let (sim, mut h) = sim(Model::A7600);
    let f = sim.faults();
    f.stall(true);
    h.send(b"AT\r");
    h.quiet(Duration::from_millis(200));
    f.stall(false);
    h.cmd("AT", OK);

    f.slow(Some(Duration::from_millis(200)));
    let t = Instant::now();
    h.cmd("AT", OK);
    assert!(t.elapsed() >= Duration::from_millis(200));
    f.slow(None);

    f.inject(b"\x00\xff garbage \r\n+CMQTTCONNLOST: 0,1\r\n");
    h.expect(b"\x00\xff garbage \r\n+CMQTTCONNLOST: 0,1\r\n");
    h.cmd("AT", OK);

    let s = f.stats();
    assert_eq!(s.commands, 3, "the stalled AT is discarded: {s:?}");
    assert!(s.bytes_in == 12 && s.bytes_out > 20, "{s:?}");
    assert!(f.host_connected());
}

#[test]
fn host_can_close_and_reopen_the_port() {
    let (sim, h) = sim(Model::A7600);
    drop(h);
    std::thread::sleep(Duration::from_millis(100));
    // Output while nobody listens is lost, not queued for the next host.
    sim.faults().inject(b"lost\r\n");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!sim.faults().host_connected());
    let mut h = Host::open(&sim.device());
    h.cmd("AT", OK);
    drop(h);
    std::thread::sleep(Duration::from_millis(100));
    let mut h = Host::open(&sim.device());
    h.cmd("AT", OK);
}

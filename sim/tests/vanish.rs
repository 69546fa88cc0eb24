//! Port vanishing: the pty closes under the host (like a USB modem unplugged), the symlink goes,
//! and after a while a new pty appears behind the same symlink with a freshly booted modem.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use cmqtt_sim::{Model, SimConfig, Simulator};
use cmqtt_testkit::{Broker, Subscriber, TempDir};
use common::*;

fn wait_for_link(link: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::fs::symlink_metadata(link).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn vanished_port_closes_under_the_host_and_comes_back_rebooted() {
    let broker = Broker::start();
    let mut will = Subscriber::start(&broker, &["will/v"], 1);
    let dir = TempDir::new("vanish");
    let link = dir.path().join("modem");
    let mut cfg = SimConfig::new(Model::A7600);
    cfg.echo = false;
    cfg.boot_banner = false;
    let sim = Simulator::start_pty_link(cfg, &link).unwrap();
    let first = sim.device();
    let mut h = Host::open(link.to_str().unwrap());
    h.cmd("AT+CMQTTSTART", &ok_then("+CMQTTSTART: 0"));
    h.cmd("AT+CMQTTACCQ=0,\"vanisher\"", OK);
    h.data_cmd("AT+CMQTTWILLTOPIC=0,6", b"will/v", OK);
    h.data_cmd("AT+CMQTTWILLMSG=0,4,1", b"gone", OK);
    h.cmd(
        &format!("AT+CMQTTCONNECT=0,\"{}\",60,1", broker.url()),
        &ok_then("+CMQTTCONNECT: 0,0"),
    );

    let t0 = Instant::now();
    sim.faults().vanish(Duration::from_millis(600));
    // The host's reads end (EOF/EIO), its writes fail, the link is gone.
    assert!(h.wait_closed(Duration::from_secs(2)), "reads did not fail");
    assert!(
        h.try_send(b"AT\r").is_err(),
        "writing to a vanished port succeeded"
    );
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "link still there"
    );
    assert!(!sim.faults().host_connected());
    // The broker lost the modem abruptly: the will goes out.
    assert_eq!(will.next(T).expect("will published").payload, b"gone");

    // A new pty behind the same link, not before `gone_for`.
    assert!(
        wait_for_link(&link, Duration::from_secs(5)),
        "never came back"
    );
    assert!(t0.elapsed() >= Duration::from_millis(600));
    let second = sim.device();
    assert_eq!(std::fs::read_link(&link).unwrap().to_string_lossy(), second);
    drop(h);
    let mut h = Host::open(link.to_str().unwrap());
    // Freshly booted: RDY, echo on, the MQTT service stopped, nothing acquired.
    h.read_until_within(b"\r\nRDY\r\n", Duration::from_secs(3));
    h.send(b"AT\r");
    h.expect(b"AT\r\r\nOK\r\n");
    h.send(b"ATE0\r");
    h.expect(b"ATE0\r\r\nOK\r\n");
    h.cmd("AT+CMQTTDISC?", ERROR);
    h.cmd("AT+CMQTTSTART", &ok_then("+CMQTTSTART: 0"));
    h.cmd("AT+CMQTTACCQ=0,\"vanisher\"", OK);
    h.cmd(
        &format!("AT+CMQTTCONNECT=0,\"{}\",60,1", broker.url()),
        &ok_then("+CMQTTCONNECT: 0,0"),
    );
    // The old slave path is not what the link points at any more (it may be reused by the
    // kernel for a later pty, but not while this one is open).
    if first == second {
        panic!("the new pty has the old path {first} while the old one should be gone");
    }
    sim.shutdown();
    assert!(std::fs::symlink_metadata(&link).is_err(), "link removed");
}

#[test]
fn vanish_again_while_gone_and_shutdown_while_gone() {
    let dir = TempDir::new("vanish2");
    let link = dir.path().join("modem");
    let mut cfg = SimConfig::new(Model::Sim7672x);
    cfg.echo = false;
    cfg.boot_banner = false;
    let sim = Simulator::start_pty_link(cfg, &link).unwrap();
    let f = sim.faults();
    f.vanish(Duration::from_millis(300));
    std::thread::sleep(Duration::from_millis(150));
    // A second vanish restarts the absence.
    let t0 = Instant::now();
    f.vanish(Duration::from_millis(400));
    assert!(wait_for_link(&link, Duration::from_secs(5)));
    assert!(
        t0.elapsed() >= Duration::from_millis(380),
        "{:?}",
        t0.elapsed()
    );
    let mut h = Host::open(link.to_str().unwrap());
    h.read_until_within(b"\r\nRDY\r\n", Duration::from_secs(3));
    h.send(b"ATE0\r");
    h.read_until(b"OK\r\n");
    h.cmd("AT", OK);
    drop(h);
    // Shut down while gone: the come-back is cancelled, no link is left behind.
    f.vanish(Duration::from_millis(300));
    sim.shutdown();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "link left behind"
    );
    // The handle outlives the simulator harmlessly.
    f.vanish(Duration::from_millis(10));
    std::thread::sleep(Duration::from_millis(100));
    assert!(std::fs::symlink_metadata(&link).is_err());
}

#[test]
fn a_plain_pty_gets_a_new_device_path() {
    let mut cfg = SimConfig::new(Model::Sim7600);
    cfg.echo = false;
    cfg.boot_banner = false;
    let sim = Simulator::start_pty(cfg).unwrap();
    let mut h = Host::open(&sim.device());
    h.cmd("AT", OK);
    sim.faults().vanish(Duration::from_millis(100));
    assert!(h.wait_closed(Duration::from_secs(2)));
    drop(h);
    let deadline = Instant::now() + Duration::from_secs(5);
    // The old pty is closed by now, so the kernel may hand out its number again: wait until a
    // host can open whatever device() says and talk to a booted modem.
    loop {
        assert!(Instant::now() < deadline, "never came back");
        std::thread::sleep(Duration::from_millis(50));
        if Path::new(&sim.device()).exists() {
            break;
        }
    }
    let mut h = Host::open(&sim.device());
    // Echo is on after the boot.
    std::thread::sleep(Duration::from_millis(400));
    h.clear();
    h.send(b"AT\r");
    h.expect(b"AT\r\r\nOK\r\n");
}

#[test]
fn children_started_later_do_not_keep_a_vanished_port_alive() {
    let mut cfg = SimConfig::new(Model::A7600);
    cfg.echo = false;
    cfg.boot_banner = false;
    let sim = Simulator::start_pty(cfg).unwrap();
    let mut h = Host::open(&sim.device());
    // A child forked after the pty was opened (a broker, a test peer) must not inherit it.
    let mut child = std::process::Command::new("sleep")
        .arg("10")
        .spawn()
        .unwrap();
    h.cmd("AT", OK);
    sim.faults().vanish(Duration::from_secs(5));
    let hung_up = h.wait_closed(Duration::from_secs(2));
    let _ = child.kill();
    let _ = child.wait();
    assert!(hung_up, "the vanished pty is still open somewhere");
}

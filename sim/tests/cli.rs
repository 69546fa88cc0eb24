//! `run_cli` (what `cmqtt sim` calls) serves a modem until SIGTERM.

mod common;

use std::time::Duration;

use cmqtt_sim::{run_cli, Model, SimArgs};
use common::*;

#[test]
fn run_cli_serves_until_sigterm() {
    let port = cmqtt_testkit::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut args = SimArgs::new(Model::Sim7672x);
    args.tcp = Some(addr.parse().unwrap());
    args.echo = Some(false);
    args.boot_banner = false;
    let t = std::thread::spawn(move || run_cli(args));
    let mut h = None;
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            std::thread::sleep(Duration::from_millis(50));
            h = Some(Host::tcp(&addr));
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut h = h.expect("run_cli listens");
    h.cmd("AT+CGMM", "\r\nSIM7672G-MNGV\r\n\r\nOK\r\n");
    // The handler is installed (the modem answered): SIGTERM stops it
    // instead of killing the test process.
    // SAFETY: raising a signal in our own process.
    unsafe { libc::raise(libc::SIGTERM) };
    assert_eq!(t.join().unwrap(), 0);
}

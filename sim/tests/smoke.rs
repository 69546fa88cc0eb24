mod common;

use cmqtt_sim::Model;
use cmqtt_testkit::Broker;
use common::*;

#[test]
fn basic_flow_against_mosquitto() {
    let broker = Broker::start();
    let (_sim, mut h) = sim(Model::A7600);
    h.cmd("AT", OK);
    connect(&mut h, "smoke", &broker.url());
    h.data_cmd(
        "AT+CMQTTSUB=0,9,1",
        b"simcommsg",
        &ok_then("+CMQTTSUB: 0,0"),
    );
    h.data_cmd("AT+CMQTTTOPIC=0,9", b"simcommsg", OK);
    h.data_cmd("AT+CMQTTPAYLOAD=0,5", b"hello", OK);
    h.cmd("AT+CMQTTPUB=0,1,60", &ok_then("+CMQTTPUB: 0,0"));
    h.expect(b"\r\n+CMQTTRXSTART: 0,9,5\r\n+CMQTTRXTOPIC: 0,9\r\nsimcommsg\r\n+CMQTTRXPAYLOAD: 0,5\r\nhello\r\n+CMQTTRXEND: 0\r\n");
}

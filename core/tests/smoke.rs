mod support;

use std::time::Duration;

use cmqtt::{ConnectOptions, Model};
use support::*;

#[test]
fn full_flow_a7600_order_with_urc_in_between() {
    let s = Scripted::start("A7600E-H", |l, m| {
        match l {
            "AT+CMQTTSTART" => m.say("\r\nOK\r\n\r\n+CMQTTSTART: 0\r\n"),
            "AT+CMQTTACCQ=0,\"client test0\",0" => m.say("\r\nOK\r\n"),
            l if l.starts_with("AT+CMQTTCONNECT=0,") => {
                m.say("\r\nOK\r\n\r\n+CMQTTCONNECT: 0,0\r\n")
            }
            "AT+CMQTTSUB=0,9,1,0" => {
                assert_eq!(m.prompt(9), b"simcommsg");
                // a retained message between OK and the result line
                m.say("\r\nOK\r\n\r\n+CMQTTRXSTART: 0,9,4\r\n+CMQTTRXTOPIC: 0,9\r\nsimcommsg\r\n+CMQTTRXPAYLOAD: 0,4\r\nOK\r\n\r\n+CMQTTRXEND: 0\r\n\r\n+CMQTTSUB: 0,0\r\n");
            }
            "AT+CMQTTTOPIC=0,9" => {
                m.prompt(9);
                m.say("\r\nOK\r\n");
            }
            "AT+CMQTTPAYLOAD=0,3" => {
                assert_eq!(m.prompt(3), b"\x00\r\n");
                m.say("\r\nOK\r\n");
            }
            "AT+CMQTTPUB=0,1,60,0,0" => m.say("\r\nOK\r\n\r\n+CMQTTPUB: 0,0\r\n"),
            l if l.starts_with("AT+CMQTTDISC=0,") => m.say("\r\nOK\r\n\r\n+CMQTTDISC: 0,0\r\n"),
            "AT+CMQTTREL=0" => m.say("\r\nOK\r\n"),
            _ => return false,
        }
        true
    });
    let modem = open(&s);
    assert_eq!(modem.model(), Model::A7600);
    assert_eq!(modem.firmware(), "TEST_FW_1.0");
    assert!(modem.start().unwrap());
    let c = modem.client(0, "client test0", false).unwrap();
    c.connect(&ConnectOptions::new("tcp://test.mosquitto.org:1883"))
        .unwrap();
    c.subscribe(&[("simcommsg", 1)]).unwrap();
    let m = c
        .recv_timeout(Duration::from_secs(2))
        .expect("retained message");
    assert_eq!(m.topic, b"simcommsg");
    assert_eq!(m.payload, b"OK\r\n");
    c.publish("simcommsg", b"\x00\r\n", 1, false, Duration::from_secs(60))
        .unwrap();
    c.disconnect(Duration::from_secs(120)).unwrap();
    c.release().unwrap();
    assert!(s.commands().contains(&"AT+CMQTTREL=0".to_string()));
}

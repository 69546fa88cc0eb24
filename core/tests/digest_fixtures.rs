//! Byte fixtures transcribed from every example of both spec documents (the modem's side of each
//! flow, `\r\n`-framed as a real modem sends it), plus the field notes of the spec README.
//!
//! Each fixture is digested by the pure `cmqtt::digest::digest` through a driver shaped like the
//! session's reader loop, and must give exactly the expected event list when fed whole, split in
//! two at every byte boundary, and fed one byte at a time.
//!
//! Transcription notes: the PDF extraction garbles some names (`CMQTT PUB`, `CMQTRXSTART`...);
//! the real names are used. Where the examples show typed data after `>` (`>0123456789`,
//! `> qwerty`), that is host input, not modem output: the modem side is `\r\n>` (or `\r\n> `).
//! The non-UTF-8 topic of the 3.5 examples is unreadable in both extractions (`!!!!!!?`,
//! `⸮⸮⸮⸮⸮？`); nine binary bytes (with CR LF and invalid UTF-8 inside) stand in for it.

mod support;

use cmqtt::digest::{digest, DigestOptions, Digested, Unit};
use support::driver::*;

const DIGITS60: &[u8] = b"012345678901234567890123456789012345678901234567890123456789";
/// Stand-in for the unreadable 9-byte topic of example 3.5.
const BIN9: &[u8] = b"\x80\x81\xfe\xff\x00\r\n\xc3\x28";

/// A fixture: the modem's output to a sequence of commands, and what the host must see.
struct Fx {
    name: &'static str,
    stream: Vec<u8>,
    expected: Vec<Ev>,
    prompts: bool,
}

impl Fx {
    fn new(name: &'static str) -> Fx {
        Fx {
            name,
            stream: Vec::new(),
            expected: Vec::new(),
            prompts: false,
        }
    }

    /// The modem's bytes in answer to `_cmd` (kept for reading), and the events they give.
    fn step(mut self, _cmd: &str, out: &[u8], ev: Vec<Ev>) -> Fx {
        self.stream.extend_from_slice(out);
        self.expected.extend(ev);
        self
    }

    /// `OK` alone.
    fn ok(self, cmd: &str) -> Fx {
        self.step(cmd, b"\r\nOK\r\n", vec![ok()])
    }

    /// A76xx order: `OK`, then the result line.
    fn ok_res(self, cmd: &str, res: &str) -> Fx {
        let out = format!("\r\nOK\r\n\r\n{res}\r\n");
        self.step(cmd, out.as_bytes(), vec![ok(), line(res)])
    }

    /// Information lines, then `OK`.
    fn info_ok(self, cmd: &str, lines: &[&str]) -> Fx {
        let mut out = String::from("\r\n");
        let mut ev = Vec::new();
        for l in lines {
            out.push_str(l);
            out.push_str("\r\n");
            ev.push(line(l));
        }
        out.push_str("\r\nOK\r\n");
        ev.push(ok());
        self.step(cmd, out.as_bytes(), ev)
    }

    /// A prompted input: the prompt (`>` or `> `), then (after the host's data) `OK`.
    fn prompt_ok(mut self, cmd: &str, p: &str) -> Fx {
        self.prompts = true;
        let out = format!("\r\n{p}\r\nOK\r\n");
        self.step(cmd, out.as_bytes(), vec![prompt(), ok()])
    }

    /// A prompted one-shot SUB/UNSUB: prompt, `OK`, result line.
    fn prompt_ok_res(mut self, cmd: &str, p: &str, res: &str) -> Fx {
        self.prompts = true;
        let out = format!("\r\n{p}\r\nOK\r\n\r\n{res}\r\n");
        self.step(cmd, out.as_bytes(), vec![prompt(), ok(), line(res)])
    }

    /// A received message, as literal bytes, and the message it must assemble into.
    fn rx(self, out: &[u8], m: Ev) -> Fx {
        self.step("(unsolicited)", out, vec![m])
    }

    fn check(&self) {
        assert_all_splits(self.name, opts(true), &self.stream, &self.expected);
        if !self.prompts {
            // Without prompts in the stream, whether one is awaited must not matter.
            assert_all_splits(self.name, opts(false), &self.stream, &self.expected);
        }
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `+CMQTTRXSTART: 0,9,60` .. `+CMQTTRXEND: 0` of the "simcommsg" examples.
fn rx_simcommsg() -> Vec<u8> {
    cat(&[
        b"\r\n+CMQTTRXSTART: 0,9,60\r\n+CMQTTRXTOPIC: 0,9\r\nsimcommsg\r\n+CMQTTRXPAYLOAD: 0,60\r\n",
        DIGITS60,
        b"\r\n+CMQTTRXEND: 0\r\n",
    ])
}

#[test]
fn transcription_constants() {
    assert_eq!(DIGITS60.len(), 60);
    assert_eq!(BIN9.len(), 9);
    assert!(String::from_utf8(BIN9.to_vec()).is_err());
}

// ---- A7600 Series MQTT AT Command Manual, chapter 3 ------------------------------------------

#[test]
fn a7600_3_0_network_checks() {
    Fx::new("A7600 3 (network checks)")
        .info_ok("AT+CSQ", &["+CSQ: 23,0"])
        .info_ok("AT+CREG?", &["+CREG: 0,1"])
        .info_ok("AT+CGREG?", &["+CGREG: 0,1"])
        .ok("AT+CGSOCKCONT=1,\"IP\",\"CMNET\"")
        .info_ok(
            "AT+CGPADDR",
            &["+CGPADDR: 1,10.49.14.68", "+CGPADDR: 4,0.0.0.0"],
        )
        .check();
}

#[test]
fn a7600_3_1_plain_tcp() {
    Fx::new("A7600 3.1")
        .ok_res("AT+CMQTTSTART", "+CMQTTSTART: 0")
        .ok("AT+CMQTTACCQ=0,\"client test0\"")
        .prompt_ok("AT+CMQTTWILLTOPIC=0,10", ">")
        .prompt_ok("AT+CMQTTWILLMSG=0,6,1", "> ")
        .ok_res(
            "AT+CMQTTCONNECT=0,\"tcp://test.mosquitto.org:1883\",60,1",
            "+CMQTTCONNECT: 0,0",
        )
        .prompt_ok_res("AT+CMQTTSUB=0,9,1", ">", "+CMQTTSUB: 0,0")
        .prompt_ok("AT+CMQTTTOPIC=0,9", "> ")
        .prompt_ok("AT+CMQTTPAYLOAD=0,60", "> ")
        .ok_res("AT+CMQTTPUB=0,1,60", "+CMQTTPUB: 0,0")
        .rx(&rx_simcommsg(), msg(0, "simcommsg", DIGITS60))
        .prompt_ok("AT+CMQTTSUBTOPIC=0,9,1", ">")
        .ok_res("AT+CMQTTSUB=0", "+CMQTTSUB: 0,0")
        .prompt_ok_res("AT+CMQTTUNSUB=0,9,0", ">", "+CMQTTUNSUB: 0,0")
        .ok_res("AT+CMQTTDISC=0,120", "+CMQTTDISC: 0,0")
        .ok("AT+CMQTTREL=0")
        .ok_res("AT+CMQTTSTOP", "+CMQTTSTOP: 0")
        .check();
}

#[test]
fn a7600_3_2_tls_no_verify() {
    Fx::new("A7600 3.2")
        .ok_res("AT+CMQTTSTART", "+CMQTTSTART: 0")
        .ok("AT+CMQTTACCQ=0,\"client test0\",1")
        .prompt_ok("AT+CMQTTWILLTOPIC=0,10", ">")
        .prompt_ok("AT+CMQTTWILLMSG=0,6,1", "> ")
        .ok_res(
            "AT+CMQTTCONNECT=0,\"tcp://test.mosquitto.org:8883\",60,1",
            "+CMQTTCONNECT: 0,0",
        )
        .prompt_ok("AT+CMQTTTOPIC=0,13", "> ")
        .prompt_ok("AT+CMQTTPAYLOAD=0,60", "> ")
        .ok_res("AT+CMQTTPUB=0,1,60", "+CMQTTPUB: 0,0")
        .prompt_ok("AT+CMQTTSUBTOPIC=0,9,1", ">")
        .ok_res("AT+CMQTTSUB=0", "+CMQTTSUB: 0,0")
        .prompt_ok_res("AT+CMQTTSUB=0,9,1", ">", "+CMQTTSUB: 0,0")
        .prompt_ok_res("AT+CMQTTUNSUB=0,9,0", ">", "+CMQTTUNSUB: 0,0")
        .ok_res("AT+CMQTTDISC=0,120", "+CMQTTDISC: 0,0")
        .ok("AT+CMQTTREL=0")
        .ok_res("AT+CMQTTSTOP", "+CMQTTSTOP: 0")
        .check();
}

/// 3.3 and 3.4 share everything after the SSL context set-up.
fn a7600_tls_flow(f: Fx, server: &str) -> Fx {
    f.ok_res("AT+CMQTTSTART", "+CMQTTSTART: 0")
        .ok("AT+CMQTTACCQ=0,\"client test0\",1")
        .ok("AT+CMQTTSSLCFG=0,0")
        .prompt_ok("AT+CMQTTWILLTOPIC=0,10", ">")
        .prompt_ok("AT+CMQTTWILLMSG=0,6,1", "> ")
        .ok_res(
            &format!("AT+CMQTTCONNECT=0,\"{server}\",60,1"),
            "+CMQTTCONNECT: 0,0",
        )
        .prompt_ok("AT+CMQTTTOPIC=0,13", "> ")
        .prompt_ok("AT+CMQTTPAYLOAD=0,60", "> ")
        .ok_res("AT+CMQTTPUB=0,1,60", "+CMQTTPUB: 0,0")
        .prompt_ok("AT+CMQTTSUBTOPIC=0,9,1", ">")
        .ok_res("AT+CMQTTSUB=0", "+CMQTTSUB: 0,0")
        .prompt_ok_res("AT+CMQTTSUB=0,9,1", ">", "+CMQTTSUB: 0,0")
        .prompt_ok_res("AT+CMQTTUNSUB=0,9,0", ">", "+CMQTTUNSUB: 0,0")
        .ok_res("AT+CMQTTDISC=0,120", "+CMQTTDISC: 0,0")
        .ok("AT+CMQTTREL=0")
        .ok_res("AT+CMQTTSTOP", "+CMQTTSTOP: 0")
}

#[test]
fn a7600_3_3_tls_verify_server() {
    let f = Fx::new("A7600 3.3")
        .ok("AT+CSSLCFG=\"sslversion\",0,4")
        .ok("AT+CSSLCFG=\"authmode\",0,1")
        .ok("AT+CSSLCFG=\"cacert\",0,\"server_ca.pem\"");
    a7600_tls_flow(f, "tcp://mqtts_server:port").check();
}

#[test]
fn a7600_3_4_tls_verify_both() {
    let f = Fx::new("A7600 3.4")
        .ok("AT+CSSLCFG=\"sslversion\",0,4")
        .ok("AT+CSSLCFG=\"authmode\",0,2")
        .ok("AT+CSSLCFG=\"cacert\",0,\"ca_cert.pem\"")
        .ok("AT+CSSLCFG=\"clientcert\",0,\"cert.pem\"")
        .ok("AT+CSSLCFG=\"clientkey\",0,\"key_cert.pem\"");
    a7600_tls_flow(f, "tcp://hooleeping.com:8883").check();
}

#[test]
fn a7600_3_5_no_utf8_check_zero_length_payload() {
    Fx::new("A7600 3.5")
        .ok_res("AT+CMQTTSTART", "+CMQTTSTART: 0")
        .ok("AT+CMQTTACCQ=0,\"client test0\"")
        .ok("AT+CMQTTCFG=\"checkUTF8\",0,0")
        .ok_res(
            "AT+CMQTTCONNECT=0,\"tcp://test.mosquitto.org:1883\",60,1",
            "+CMQTTCONNECT: 0,0",
        )
        .prompt_ok_res("AT+CMQTTSUB=0,9,1", "> ", "+CMQTTSUB: 0,0")
        .prompt_ok("AT+CMQTTTOPIC=0,9", "> ")
        .ok_res("AT+CMQTTPUB=0,1,60", "+CMQTTPUB: 0,0")
        .rx(
            &cat(&[
                b"\r\n+CMQTTRXSTART: 0,9,0\r\n+CMQTTRXTOPIC: 0,9\r\n",
                BIN9,
                b"\r\n+CMQTTRXEND: 0\r\n",
            ]),
            msg(0, BIN9, b""),
        )
        .ok_res("AT+CMQTTDISC=0,120", "+CMQTTDISC: 0,0")
        .ok("AT+CMQTTREL=0")
        .ok_res("AT+CMQTTSTOP", "+CMQTTSTOP: 0")
        .check();
}

// ---- SIM7672X & SIM7652X MQTT(S) Application Note, chapter 2 examples -------------------------

#[test]
fn sim7672x_2_per_command_examples() {
    Fx::new("SIM7672X chapter 2")
        // 2.2.1, 2.2.2
        .ok_res("AT+CMQTTSTART", "+CMQTTSTART: 0")
        .ok_res("AT+CMQTTSTOP", "+CMQTTSTOP: 0")
        // 2.2.3
        .ok("AT+CMQTTACCQ=0,\"a12mmmm\",0")
        .info_ok(
            "AT+CMQTTACCQ?",
            &["+CMQTTACCQ: 0,\"a12mmmm\",0", "+CMQTTACCQ: 1,\"\",0"],
        )
        .info_ok("AT+CMQTTACCQ=?", &["+CMQTTACCQ: (0-1),(1-128)[,(0-1)]"])
        // 2.2.4
        .info_ok("AT+CMQTTREL=?", &["+CMQTTREL: (0-1)"])
        .ok("AT+CMQTTREL=0")
        .ok("AT+CMQTTREL?")
        // 2.2.5
        .info_ok(
            "AT+CMQTTSSLCFG?",
            &["+CMQTTSSLCFG: 0,0", "+CMQTTSSLCFG: 1,0"],
        )
        .info_ok("AT+CMQTTSSLCFG=?", &["+CMQTTSSLCFG: (0,1),(0-9)"])
        .ok("AT+CMQTTSSLCFG=0,1")
        // 2.2.6, 2.2.7
        .prompt_ok("AT+CMQTTWILLTOPIC=0,10", ">")
        .prompt_ok("AT+CMQTTWILLMSG=0,6,1", ">")
        // 2.2.8
        .ok_res(
            "AT+CMQTTCONNECT=0,\"tcp://120.27.2.154:1883\",20,1",
            "+CMQTTCONNECT: 0,0",
        )
        .info_ok(
            "AT+CMQTTCONNECT?",
            &[
                "+CMQTTCONNECT: 0,\"tcp://120.27.2.154:1883\",20,1",
                "+CMQTTCONNECT: 1",
            ],
        )
        // 2.2.9
        .ok_res("AT+CMQTTDISC=0,120", "+CMQTTDISC: 0,0")
        // 2.2.10 .. 2.2.12
        .prompt_ok("AT+CMQTTTOPIC=0,9", ">")
        .prompt_ok("AT+CMQTTPAYLOAD=0,6", ">")
        .ok_res("AT+CMQTTPUB=0,1,60", "+CMQTTPUB: 0,0")
        // 2.2.13
        .prompt_ok_res("AT+CMQTTSUB=0,9,1", ">", "+CMQTTSUB: 0,0")
        .ok_res("AT+CMQTTSUB=0,1", "+CMQTTSUB: 0,0")
        // 2.2.14
        .ok_res("AT+CMQTTUNSUB=0,1", "+CMQTTUNSUB: 0,0")
        // 2.2.15
        .info_ok(
            "AT+CMQTTCFG?",
            &["+CMQTTCFG: 0,1,120", "+CMQTTCFG: 1,1,120"],
        )
        .ok("AT+CMQTTCFG=\"optimeout\",0,24")
        .ok("AT+CMQTTCFG=\"checkUTF8\",0,0")
        .info_ok("AT+CMQTTCFG?", &["+CMQTTCFG: 0,0,24", "+CMQTTCFG: 1,1,120"])
        .check();
}

#[test]
fn sim7672x_2_test_forms_and_read_forms() {
    Fx::new("SIM7672X chapter 2 test/read forms")
        .info_ok("AT+CMQTTWILLTOPIC=?", &["+CMQTTWILLTOPIC: (0-1),(1-1024)"])
        .info_ok(
            "AT+CMQTTWILLMSG=?",
            &["+CMQTTWILLMSG: (0-1),(1-1024),(0-2)"],
        )
        .info_ok(
            "AT+CMQTTCONNECT=?",
            &["+CMQTTCONNECT: (0-1),(9-256),(1-64800),(0-1)[,<user_name>,<pass_word>]"],
        )
        .info_ok("AT+CMQTTDISC=?", &["+CMQTTDISC: (0-1),(0, 60-180)"])
        .info_ok("AT+CMQTTDISC?", &["+CMQTTDISC: 0,1", "+CMQTTDISC: 1,1"])
        .info_ok("AT+CMQTTTOPIC=?", &["+CMQTTTOPIC: (0-1),(1-1024)"])
        .info_ok("AT+CMQTTPAYLOAD=?", &["+CMQTTPAYLOAD: (0-1),(1-4096)"])
        .info_ok(
            "AT+CMQTTPUB=?",
            &["+CMQTTPUB: (0-1),(0-2),(60-180),(0-1),(0-1)"],
        )
        .info_ok("AT+CMQTTSUB=?", &["+CMQTTSUB: (0-1),(1-1024),(0-2),(0-1)"])
        .info_ok("AT+CMQTTSUB?", &["+CMQTTSUB:", "simcommsg", "123456789"])
        .info_ok("AT+CMQTTUNSUB=?", &["+CMQTTUNSUB: (0-1),(1-1024),(0-1)"])
        .info_ok(
            "AT+CMQTTCFG=?",
            &[
                "+CMQTTCFG: \"checkUTF8\", (0-1), (0-1)",
                "+CMQTTCFG: \"optimeout \", (0-1), (20-120)",
                "+CMQTTCFG: \"version\",(0-1),(3-4)",
            ],
        )
        .check();
}

#[test]
fn sim7672x_2_failure_forms() {
    // The response shapes of chapter 2 for failures, with concrete codes.
    Fx::new("SIM7672X chapter 2 failures")
        .step("AT+CMQTTSTART (again)", b"\r\nERROR\r\n", vec![error()])
        .step(
            "AT+CMQTTSTOP",
            b"\r\n+CMQTTSTOP: 21\r\n\r\nERROR\r\n",
            vec![line("+CMQTTSTOP: 21"), error()],
        )
        .step(
            "AT+CMQTTACCQ=0,\"x\"",
            b"\r\n+CMQTTACCQ: 0,19\r\n\r\nERROR\r\n",
            vec![line("+CMQTTACCQ: 0,19"), error()],
        )
        .step(
            "AT+CMQTTREL=0",
            b"\r\n+CMQTTREL: 0,20\r\n\r\nERROR\r\n",
            vec![line("+CMQTTREL: 0,20"), error()],
        )
        .step(
            "AT+CMQTTCONNECT=...",
            b"\r\nOK\r\n\r\n+CMQTTCONNECT: 0,32\r\n",
            vec![ok(), line("+CMQTTCONNECT: 0,32")],
        )
        .step(
            "AT+CMQTTCONNECT=... (form 3)",
            b"\r\nERROR\r\n\r\n+CMQTTCONNECT: 0,34\r\n",
            vec![error(), line("+CMQTTCONNECT: 0,34")],
        )
        .step(
            "AT+CMQTTCONNECT=... (form 4)",
            b"\r\n+CMQTTCONNECT: 0,15\r\n\r\nERROR\r\n",
            vec![line("+CMQTTCONNECT: 0,15"), error()],
        )
        .step(
            "AT+CMQTTDISC=0,120",
            b"\r\n+CMQTTDISC: 0,11\r\n\r\nERROR\r\n",
            vec![line("+CMQTTDISC: 0,11"), error()],
        )
        .step(
            "AT+CMQTTTOPIC=0,9",
            b"\r\n+CMQTTTOPIC: 0,11\r\n\r\nERROR\r\n",
            vec![line("+CMQTTTOPIC: 0,11"), error()],
        )
        .step(
            "AT+CMQTTPUB=0,1,60",
            b"\r\nOK\r\n\r\n+CMQTTPUB: 0,17\r\n",
            vec![ok(), line("+CMQTTPUB: 0,17")],
        )
        .step(
            "AT+CMQTTSUB=0",
            b"\r\n+CMQTTSUB: 0,14\r\n\r\nERROR\r\n",
            vec![line("+CMQTTSUB: 0,14"), error()],
        )
        .step(
            "AT+CMQTTCFG=...",
            b"\r\n+CME ERROR: 58\r\n",
            vec![cme("58")],
        )
        .step(
            "AT+CMQTTSTART",
            b"\r\n+CME ERROR: SIM not inserted\r\n",
            vec![cme("SIM not inserted")],
        )
        .step(
            "AT+CMGS",
            b"\r\n+CMS ERROR: 500\r\n",
            vec![Ev::Final(cmqtt::digest::Final::CmsError("500".into()))],
        )
        .check();
}

// ---- SIM7672X note, chapter 3 -----------------------------------------------------------------

#[test]
fn sim7672x_3_0_network_checks() {
    Fx::new("SIM7672X 3 (network checks)")
        .info_ok("AT+CSQ", &["+CSQ: 23,0"])
        .info_ok(
            "AT+CPSI?",
            &["+CPSI: LTE,Online,460-00,0x333C,39589680,308,EUTRAN-BAND3,1350,5,0,0,54,0,22"],
        )
        .info_ok("AT+CGACT?", &["+CGACT: 1,1"])
        .check();
}

#[test]
fn sim7672x_3_1_plain_tcp() {
    Fx::new("SIM7672X 3.1")
        .ok_res("AT+CMQTTSTART", "+CMQTTSTART: 0")
        .ok("AT+CMQTTACCQ=0,\"client test0\"")
        .prompt_ok("AT+CMQTTWILLTOPIC=0,10", ">")
        .prompt_ok("AT+CMQTTWILLMSG=0,6,1", ">")
        .ok_res(
            "AT+CMQTTCONNECT=0,\"tcp://test.mosquitto.org:1883\",60,1",
            "+CMQTTCONNECT: 0,0",
        )
        .prompt_ok_res("AT+CMQTTSUB=0,9,1", ">", "+CMQTTSUB: 0,0")
        .prompt_ok("AT+CMQTTTOPIC=0,9", ">")
        .prompt_ok("AT+CMQTTPAYLOAD=0,60", ">")
        .ok_res("AT+CMQTTPUB=0,1,60", "+CMQTTPUB: 0,0")
        .rx(&rx_simcommsg(), msg(0, "simcommsg", DIGITS60))
        .ok_res("AT+CMQTTSUB=0", "+CMQTTSUB: 0,0")
        .prompt_ok_res("AT+CMQTTUNSUB=0,9,0", ">", "+CMQTTUNSUB: 0,0")
        .ok_res("AT+CMQTTDISC=0,120", "+CMQTTDISC: 0,0")
        .ok("AT+CMQTTREL=0")
        .ok_res("AT+CMQTTSTOP", "+CMQTTSTOP: 0")
        .check();
}

#[test]
fn sim7672x_3_2_tls_no_verify() {
    Fx::new("SIM7672X 3.2")
        .ok_res("AT+CMQTTSTART", "+CMQTTSTART: 0")
        .ok("AT+CMQTTACCQ=0,\"client test0\",1")
        .prompt_ok("AT+CMQTTWILLTOPIC=0,10", ">")
        .prompt_ok("AT+CMQTTWILLMSG=0,6,1", ">")
        .ok_res(
            "AT+CMQTTCONNECT=0,\"tcp://test.mosquitto.org:8883\",60,1",
            "+CMQTTCONNECT: 0,0",
        )
        .prompt_ok("AT+CMQTTTOPIC=0,13", ">")
        .prompt_ok("AT+CMQTTPAYLOAD=0,60", ">")
        .ok_res("AT+CMQTTPUB=0,1,60", "+CMQTTPUB: 0,0")
        .ok_res("AT+CMQTTSUB=0", "+CMQTTSUB: 0,0")
        .prompt_ok_res("AT+CMQTTSUB=0,9,1", ">", "+CMQTTSUB: 0,0")
        .prompt_ok_res("AT+CMQTTUNSUB=0,9,0", ">", "+CMQTTUNSUB: 0,0")
        .ok_res("AT+CMQTTDISC=0,120", "+CMQTTDISC: 0,0")
        .ok("AT+CMQTTREL=0")
        .ok_res("AT+CMQTTSTOP", "+CMQTTSTOP: 0")
        .check();
}

fn sim7672x_tls_flow(f: Fx, server: &str) -> Fx {
    f.ok_res("AT+CMQTTSTART", "+CMQTTSTART: 0")
        .ok("AT+CMQTTACCQ=0,\"client test0\",1")
        .ok("AT+CMQTTSSLCFG=0,0")
        .prompt_ok("AT+CMQTTWILLTOPIC=0,10", ">")
        .prompt_ok("AT+CMQTTWILLMSG=0,6,1", ">")
        .ok_res(
            &format!("AT+CMQTTCONNECT=0,\"{server}\",60,1"),
            "+CMQTTCONNECT: 0,0",
        )
        .prompt_ok("AT+CMQTTTOPIC=0,13", ">")
        .prompt_ok("AT+CMQTTPAYLOAD=0,60", ">")
        .ok_res("AT+CMQTTPUB=0,1,60", "+CMQTTPUB: 0,0")
        .ok_res("AT+CMQTTSUB=0", "+CMQTTSUB: 0,0")
        .prompt_ok_res("AT+CMQTTSUB=0,9,1", ">", "+CMQTTSUB: 0,0")
        .prompt_ok_res("AT+CMQTTUNSUB=0,9,0", ">", "+CMQTTUNSUB: 0,0")
        .ok_res("AT+CMQTTDISC=0,120", "+CMQTTDISC: 0,0")
        .ok("AT+CMQTTREL=0")
        .ok_res("AT+CMQTTSTOP", "+CMQTTSTOP: 0")
}

#[test]
fn sim7672x_3_3_tls_verify_server() {
    let f = Fx::new("SIM7672X 3.3")
        .ok("AT+CSSLCFG=\"sslversion\",0,4")
        .ok("AT+CSSLCFG=\"authmode\",0,1")
        .ok("AT+CSSLCFG=\"cacert\",0,\"server_ca.pem\"");
    sim7672x_tls_flow(f, "tcp://mqtts_server:port").check();
}

#[test]
fn sim7672x_3_4_tls_verify_both() {
    let f = Fx::new("SIM7672X 3.4")
        .ok("AT+CSSLCFG=\"sslversion\",0,4")
        .ok("AT+CSSLCFG=\"authmode\",0,2")
        .ok("AT+CSSLCFG=\"cacert\",0,\"ca_cert.pem\"")
        .ok("AT+CSSLCFG=\"clientcert\",0,\"cert.pem\"")
        .ok("AT+CSSLCFG=\"clientkey\",0,\"key_cert.pem\"");
    sim7672x_tls_flow(f, "tcp://hooleeping.com:8883").check();
}

#[test]
fn sim7672x_3_5_no_utf8_check_zero_length_payload() {
    Fx::new("SIM7672X 3.5")
        .ok_res("AT+CMQTTSTART", "+CMQTTSTART: 0")
        .ok("AT+CMQTTACCQ=0,\"client test0\"")
        .ok("AT+CMQTTCFG=\"checkUTF8\",0,0")
        .ok_res(
            "AT+CMQTTCONNECT=0,\"tcp://198.41.30.241:1883\",60,1",
            "+CMQTTCONNECT: 0,0",
        )
        .prompt_ok_res("AT+CMQTTSUB=0,9,1", ">", "+CMQTTSUB: 0,0")
        .prompt_ok("AT+CMQTTTOPIC=0,9", ">")
        .ok_res("AT+CMQTTPUB=0,1,60", "+CMQTTPUB: 0,0")
        // The note shows an empty line between the topic and +CMQTTRXEND.
        .rx(
            &cat(&[
                b"\r\n+CMQTTRXSTART: 0,9,0\r\n+CMQTTRXTOPIC: 0,9\r\n",
                BIN9,
                b"\r\n\r\n+CMQTTRXEND: 0\r\n",
            ]),
            msg(0, BIN9, b""),
        )
        .ok_res("AT+CMQTTDISC=0,120", "+CMQTTDISC: 0,0")
        .ok("AT+CMQTTREL=0")
        .ok_res("AT+CMQTTSTOP", "+CMQTTSTOP: 0")
        .check();
}

#[test]
fn sim7672x_4_2_urcs() {
    Fx::new("SIM7672X 4.2 URCs")
        .step(
            "(connection lost)",
            b"\r\n+CMQTTCONNLOST: 0,1\r\n\r\n+CMQTTCONNLOST: 1,2\r\n",
            vec![line("+CMQTTCONNLOST: 0,1"), line("+CMQTTCONNLOST: 1,2")],
        )
        .step(
            "(no network)",
            b"\r\n+CMQTTNONET\r\n",
            vec![line("+CMQTTNONET")],
        )
        // A long topic and a long payload, each split into several packets.
        .rx(
            b"\r\n+CMQTTRXSTART: 1,12,11\r\n+CMQTTRXTOPIC: 1,5\r\nlong/\r\n+CMQTTRXTOPIC: 1,7\r\ntopic/x\r\n+CMQTTRXPAYLOAD: 1,6\r\nhello \r\n+CMQTTRXPAYLOAD: 1,5\r\nworld\r\n+CMQTTRXEND: 1\r\n",
            msg(1, "long/topic/x", "hello world"),
        )
        .check();
}

// ---- The field notes of the spec README ---------------------------------------------------------

#[test]
fn field_result_orders() {
    Fx::new("result orders")
        // SIM7600: result line first, then OK.
        .step(
            "AT+CMQTTSTART",
            b"\r\n+CMQTTSTART: 0\r\n\r\nOK\r\n",
            vec![line("+CMQTTSTART: 0"), ok()],
        )
        // SIM7600G: the result line and no OK at all.
        .step(
            "AT+CMQTTCONNECT=...",
            b"\r\n+CMQTTCONNECT: 0,0\r\n",
            vec![line("+CMQTTCONNECT: 0,0")],
        )
        .step(
            "AT+CMQTTCONNECT=...",
            b"\r\n+CMQTTCONNECT: 0,3\r\n\r\nERROR\r\n",
            vec![line("+CMQTTCONNECT: 0,3"), error()],
        )
        .step(
            "AT+CMQTTREL=0",
            b"\r\n+CMQTTREL: 0,20\r\n\r\nERROR\r\n",
            vec![line("+CMQTTREL: 0,20"), error()],
        )
        .step(
            "AT+CMQTTSTART",
            b"\r\nOK\r\n\r\n+CMQTTSTART: 23\r\n",
            vec![ok(), line("+CMQTTSTART: 23")],
        )
        .check();
}

#[test]
fn field_urcs_inside_responses() {
    let retained = cat(&[
        b"\r\nOK\r\n",
        b"\r\n+CMQTTRXSTART: 0,9,8\r\n+CMQTTRXTOPIC: 0,9\r\nsimcommsg\r\n+CMQTTRXPAYLOAD: 0,8\r\nOK\r\n\x00\xff\r\n\r\n+CMQTTRXEND: 0\r\n",
        b"\r\n+CMQTTSUB: 0,0\r\n",
    ]);
    let after_pub = cat(&[b"\r\nOK\r\n\r\n+CMQTTPUB: 0,0\r\n", &rx_simcommsg()]);
    Fx::new("URCs inside responses")
        .step(
            "AT+CMQTTSUB=0,9,1,0 (retained message before the result)",
            &retained,
            vec![ok(), msg(0, "simcommsg", b"OK\r\n\x00\xff\r\n"), line("+CMQTTSUB: 0,0")],
        )
        .step(
            "AT+CMQTTPUB=0,1,60 (message right after the result)",
            &after_pub,
            vec![
                ok(),
                line("+CMQTTPUB: 0,0"),
                msg(0, "simcommsg", DIGITS60),
            ],
        )
        .step(
            "AT+CMQTTSUB=0 (policy violation)",
            b"\r\n+CMQTTSUB: 0,6\r\n\r\n+CMQTTCONNLOST: 0,1\r\n\r\nOK\r\n",
            vec![line("+CMQTTSUB: 0,6"), line("+CMQTTCONNLOST: 0,1"), ok()],
        )
        .step(
            "AT+CMQTTSTART (boot noise)",
            b"\r\nOK\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n\r\n+CPIN: READY\r\n\r\nRDY\r\n\r\n+CMQTTSTART: 0\r\n",
            vec![
                ok(),
                line("SMS DONE"),
                line("PB DONE"),
                line("+CPIN: READY"),
                line("RDY"),
                line("+CMQTTSTART: 0"),
            ],
        )
        .step(
            "AT+CRESET",
            b"\r\nOK\r\n\r\n+CMQTTCONNLOST: 0,3\r\n\r\n+CMQTTNONET\r\n\r\nRDY\r\n",
            vec![ok(), line("+CMQTTCONNLOST: 0,3"), line("+CMQTTNONET"), line("RDY")],
        )
        .step(
            "(keepalive)",
            b"\r\n+CMQTTPING: 0,1\r\n",
            vec![line("+CMQTTPING: 0,1")],
        )
        .check();
}

#[test]
fn field_echo_on() {
    let mut f = Fx::new("echo on")
        .step("AT", b"AT\r\r\nOK\r\n", vec![echo("AT"), ok()])
        .step("ATE1", b"ATE1\r\r\nOK\r\n", vec![echo("ATE1"), ok()])
        // The echoed data after '>' is a plain line to the digester (the session skips it).
        .step(
            "AT+CMQTTTOPIC=0,9",
            b"AT+CMQTTTOPIC=0,9\r\r\n>simcommsg\r\nOK\r\n",
            vec![echo("AT+CMQTTTOPIC=0,9"), prompt(), line("simcommsg"), ok()],
        )
        .step(
            "at+cmqttstart",
            b"at+cmqttstart\r\r\nOK\r\n\r\n+CMQTTSTART: 0\r\n",
            vec![echo("at+cmqttstart"), ok(), line("+CMQTTSTART: 0")],
        );
    f.prompts = true;
    f.check();
}

#[test]
fn field_blank_lines_and_chunking() {
    // SIM7600: an empty line between every URC of a received message.
    let blanks = cat(&[
        b"\r\n+CMQTTRXSTART: 0,9,60\r\n\r\n+CMQTTRXTOPIC: 0,9\r\nsimcommsg\r\n\r\n+CMQTTRXPAYLOAD: 0,60\r\n",
        DIGITS60,
        b"\r\n\r\n+CMQTTRXEND: 0\r\n",
    ]);
    // A76xx: a 2039-byte message arrives as 1500 + 539, with hostile bytes inside.
    let mut big = Vec::new();
    while big.len() < 2039 {
        big.extend_from_slice(b"\r\n+CMQTTRXEND: 0\r\nOK\r\n\x00\xff>");
    }
    big.truncate(2039);
    let chunked = cat(&[
        b"\r\n+CMQTTRXSTART: 1,7,2039\r\n+CMQTTRXTOPIC: 1,7\r\nbig/one\r\n+CMQTTRXPAYLOAD: 1,1500\r\n",
        &big[..1500],
        b"\r\n+CMQTTRXPAYLOAD: 1,539\r\n",
        &big[1500..],
        b"\r\n+CMQTTRXEND: 1\r\n",
    ]);
    // A7608: no blank lines and no separator at all between the two clients' messages.
    let tight = b"+CMQTTRXSTART: 0,1,1\r\n+CMQTTRXTOPIC: 0,1\r\na\r\n+CMQTTRXPAYLOAD: 0,1\r\n\n\r\n+CMQTTRXEND: 0\r\n+CMQTTRXSTART: 1,1,0\r\n+CMQTTRXTOPIC: 1,1\r\n\r\r\n+CMQTTRXEND: 1\r\n";
    Fx::new("blank lines and chunking")
        .rx(&blanks, msg(0, "simcommsg", DIGITS60))
        .rx(&chunked, msg(1, "big/one", &big))
        .step(
            "(two tight messages)",
            tight,
            vec![msg(0, "a", "\n"), msg(1, "\r", "")],
        )
        .check();
}

#[test]
fn prompt_is_only_recognised_when_awaited() {
    // Not awaited: "\r\n>" is an unfinished line; awaited: a prompt, with or without its space.
    assert_eq!(
        digest(b"\r\n>", &opts(false)),
        Digested::Incomplete { skip: 2 }
    );
    for (s, used) in [(&b"\r\n>"[..], 3), (b"\r\n> ", 4), (b">", 1)] {
        assert_eq!(
            digest(s, &opts(true)),
            Digested::Unit {
                used,
                unit: Unit::Prompt
            },
            "{s:?}"
        );
    }
    // A received message can come before the prompt; it is not a prompt.
    let s = b"\r\n+CMQTTRXSTART: 0,1,1\r\n\r\n>";
    assert!(matches!(
        digest(s, &opts(true)),
        Digested::Unit {
            unit: Unit::RxStart { .. },
            ..
        }
    ));
}

#[test]
fn digest_is_pure() {
    let s = rx_simcommsg();
    let o = DigestOptions::default();
    assert_eq!(digest(&s, &o), digest(&s, &o));
}

//! Property-based fuzz of the emulator's AT engine (command-line parser, prompted data, MQTT
//! state machine against a loopback broker, faults, timeouts), offline through
//! `cmqtt_sim::fuzz_feed`: arbitrary bytes never panic or exceed a buffer bound, and every
//! command line of a non-prompting command gets exactly one final result.

use proptest::prelude::*;

/// A program for `fuzz_feed`: header byte, then the given host bytes in one feed each.
fn program(head: u8, feeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![head];
    for f in feeds {
        for c in f.chunks(0xef) {
            v.push(c.len() as u8);
            v.extend_from_slice(c);
        }
    }
    v
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

const NAMES: &[&str] = &[
    "",
    "E0",
    "I",
    "+CGMM",
    "+CGMR",
    "+CSQ",
    "+CREG",
    "+CGREG",
    "+CPIN",
    "+CMQTTSTART",
    "+CMQTTSTOP",
    "+CMQTTACCQ",
    "+CMQTTREL",
    "+CMQTTCFG",
    "+CMQTTSSLCFG",
    "+CMQTTDISC",
    "+CMQTTCONNECT",
    "+CMQTTPUB",
    "+CSSLCFG",
    "+CCERTLIST",
    "+CCERTDELE",
    "+CMQTTFOO",
    "+X",
];

const ARGS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "60",
    "99999999999",
    "",
    "\"tcp://127.0.0.1:1883\"",
    "\"id\"",
    "\"checkUTF8\"",
    "\"authmode\"",
    "\"a\"b\"",
    "x y",
    "-1",
    "\"é\"",
];

fn command_line() -> impl Strategy<Value = String> {
    (
        prop::sample::select(NAMES),
        0u8..4,
        prop::collection::vec(prop::sample::select(ARGS), 0..6),
        any::<bool>(),
    )
        .prop_map(|(name, form, args, lower)| {
            let mut l = format!("AT{name}");
            match form {
                0 => {}
                1 => l.push('?'),
                2 => l.push_str("=?"),
                _ => {
                    l.push('=');
                    l.push_str(&args.join(","));
                }
            }
            if lower {
                l = l.to_ascii_lowercase();
            }
            l
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_break_the_engine(input in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = cmqtt_sim::fuzz_feed(&input);
    }

    #[test]
    fn arbitrary_programs_with_faults_and_timeouts(
        head in any::<u8>(),
        steps in prop::collection::vec(
            prop_oneof![
                4 => command_line().prop_map(|l| { let mut b = l.into_bytes(); b.push(b'\r'); b }),
                1 => prop::collection::vec(any::<u8>(), 0..64),
                1 => (0xf0u8..=0xf8).prop_map(|b| vec![b]),
            ],
            0..40,
        ),
    ) {
        let mut prog = vec![head];
        for s in &steps {
            if s.len() == 1 && s[0] >= 0xf0 {
                prog.push(s[0]);
            } else {
                for c in s.chunks(0xef) {
                    prog.push(c.len() as u8);
                    prog.extend_from_slice(c);
                }
            }
        }
        let _ = cmqtt_sim::fuzz_feed(&prog);
    }

    #[test]
    fn every_command_line_gets_one_final_result(
        model in 0u8..3,
        lines in prop::collection::vec(command_line(), 1..30),
    ) {
        // Echo off, no banner; one line per feed, CR-terminated.
        let feeds: Vec<Vec<u8>> = lines.iter().map(|l| format!("{l}\r").into_bytes()).collect();
        let out = cmqtt_sim::fuzz_feed(&program(model, &feeds));
        let finals = count(&out, b"\r\nOK\r\n") + count(&out, b"\r\nERROR\r\n");
        prop_assert_eq!(
            finals,
            lines.len(),
            "lines {:?} gave {:?}",
            lines,
            String::from_utf8_lossy(&out)
        );
    }
}

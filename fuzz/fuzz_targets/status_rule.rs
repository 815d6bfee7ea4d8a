//! `StatusRule::parse` on arbitrary UTF-8: it must never panic, a parsed rule
//! must answer `matches` for any status, and its Display must parse back to an
//! equal rule.
#![no_main]

use hookwatch::policy::StatusRule;
use libfuzzer_sys::fuzz_target;

const STATUSES: [u16; 14] = [0, 1, 99, 100, 101, 200, 404, 429, 499, 500, 503, 599, 600, u16::MAX];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match StatusRule::parse(text) {
        Ok(rule) => {
            for status in STATUSES {
                let matched = rule.matches(status);
                // Every term is clamped to 100..=599, so nothing outside matches.
                if !(100..=599).contains(&status) {
                    assert!(!matched, "{text:?} matched out-of-range status {status}");
                }
            }
            let shown = rule.to_string();
            let again = StatusRule::parse(&shown)
                .unwrap_or_else(|e| panic!("Display {shown:?} of {text:?} does not re-parse: {e}"));
            assert_eq!(again, rule, "Display of {text:?} re-parses to a different rule");
            for status in STATUSES {
                assert_eq!(again.matches(status), rule.matches(status));
            }
        }
        Err(err) => {
            // `position` is a 1-based character column into the input.
            assert!(
                err.position >= 1 && err.position <= text.chars().count() + 1,
                "{text:?}: error position {} out of range: {err}",
                err.position
            );
            let _ = err.to_string();
        }
    }
});

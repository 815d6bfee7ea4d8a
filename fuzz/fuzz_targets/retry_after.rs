//! `parse_retry_after` on arbitrary UTF-8 with fixed clocks: it must never
//! panic, and every error must quote the value it refused.
#![no_main]

use chrono::{DateTime, Utc};
use hookwatch::policy::{parse_retry_after, RetryAfter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = DateTime::<Utc>::from_timestamp(1_714_564_800, 0).expect("2024-05-01T12:00:00Z");
    // The realistic clock, plus the calendar's ends where the arithmetic is tightest.
    for clock in [now, DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
        match parse_retry_after(text, clock) {
            Ok(RetryAfter::Cancel) => assert_eq!(text.trim(), "-1", "{text:?} read as cancel"),
            Ok(RetryAfter::At(_)) => {}
            Err(message) => assert!(
                message.starts_with(&format!("invalid Retry-After \"{text}\"")),
                "{text:?}: error does not quote the value: {message}"
            ),
        }
    }
});

//! The `Retry-After` response header, as a point in time.
//!
//! Servers send it as delta-seconds, an HTTP-date, or (outside the RFC, but
//! common) an ISO 8601 / RFC 3339 timestamp, with or without an offset (UTC when
//! it has none); `-1` is a convention some receivers use to say
//! "stop retrying this event".

use chrono::{DateTime, TimeDelta, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: -1`: the receiver asks for no further automatic retries.
    Cancel,
    /// When the receiver wants the next attempt; may lie in the past, which the
    /// caller clamps, because "retry at a time already gone" means "retry now".
    At(DateTime<Utc>),
}

/// Reads a `Retry-After` value relative to `now`.
///
/// Delta-seconds too large for the calendar saturate to the far future rather
/// than failing: the server clearly meant "much later", and callers cap the
/// wait anyway.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Result<RetryAfter, String> {
    let text = value.trim();
    if text == "-1" {
        return Ok(RetryAfter::Cancel);
    }
    if let Some(digits) = text.strip_prefix('-') {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "invalid Retry-After \"{value}\": negative seconds (only -1, meaning cancel, is allowed)"
            ));
        }
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(RetryAfter::At(after_seconds(now, text)));
    }
    if let Ok(time) = httpdate::parse_http_date(text) {
        return Ok(RetryAfter::At(DateTime::<Utc>::from(time)));
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(RetryAfter::At(time.with_timezone(&Utc)));
    }
    // ISO 8601 without an offset ("2026-11-25T10:00:00"): the rule reference
    // accepts "an ISO string", and a receiver that leaves the zone out means
    // UTC far more often than the sender's local time.
    if let Ok(time) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(RetryAfter::At(time.and_utc()));
    }
    Err(format!(
        "invalid Retry-After \"{value}\": expected seconds, an HTTP-date or an ISO 8601 timestamp"
    ))
}

fn after_seconds(now: DateTime<Utc>, digits: &str) -> DateTime<Utc> {
    digits
        .parse::<i64>()
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|delta| now.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn at(text: &str) -> RetryAfter {
        RetryAfter::At(
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc),
        )
    }

    #[test]
    fn accepts_every_form() {
        let cases = [
            ("-1", RetryAfter::Cancel),
            (" -1 ", RetryAfter::Cancel),
            ("0", at("2024-05-01T12:00:00Z")),
            ("120", at("2024-05-01T12:02:00Z")),
            ("  30 ", at("2024-05-01T12:00:30Z")),
            ("Wed, 01 May 2024 13:00:00 GMT", at("2024-05-01T13:00:00Z")),
            // In the past: returned as is, the caller decides what "past" means.
            ("Tue, 30 Apr 2024 08:00:00 GMT", at("2024-04-30T08:00:00Z")),
            // Obsolete HTTP-date forms that httpdate also accepts.
            (
                "Wednesday, 01-May-24 13:00:00 GMT",
                at("2024-05-01T13:00:00Z"),
            ),
            ("Wed May  1 13:00:00 2024", at("2024-05-01T13:00:00Z")),
            ("2024-05-01T14:00:00Z", at("2024-05-01T14:00:00Z")),
            ("2024-05-01T16:00:00+02:00", at("2024-05-01T14:00:00Z")),
            // ISO 8601 without an offset is UTC.
            ("2024-05-01T14:00:00", at("2024-05-01T14:00:00Z")),
            ("2024-05-01T14:00:00.250", at("2024-05-01T14:00:00.250Z")),
            ("2026-11-25T10:00:00", at("2026-11-25T10:00:00Z")),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_retry_after(text, now()), Ok(expected), "{text}");
        }
    }

    #[test]
    fn huge_seconds_saturate() {
        for text in [
            "99999999999999999999999999",
            "9223372036854775807",
            "9223372036854775",
        ] {
            assert_eq!(
                parse_retry_after(text, now()),
                Ok(RetryAfter::At(DateTime::<Utc>::MAX_UTC)),
                "{text}"
            );
        }
    }

    #[test]
    fn errors_name_the_value() {
        for text in [
            "",
            "-2",
            "-0",
            "-",
            "1.5",
            "+5",
            "soon",
            "Wed, 32 May 2024 13:00:00 GMT",
            "--1",
            "2024-05-01",
            "2024-05-01T25:00:00",
        ] {
            let err = parse_retry_after(text, now()).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid Retry-After \"{text}\"")),
                "{err}"
            );
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*", secs in any::<i64>()) {
            let now = DateTime::<Utc>::from_timestamp(secs.rem_euclid(400_000_000_000) - 200_000_000_000, 0)
                .unwrap_or_else(now);
            let _ = parse_retry_after(&text, now);
        }

        #[test]
        fn digits_never_panic(text in "-?[0-9]{0,40}") {
            let _ = parse_retry_after(&text, DateTime::<Utc>::MAX_UTC);
            let _ = parse_retry_after(&text, now());
        }
    }
}

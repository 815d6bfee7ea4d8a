//! Durations and byte sizes as people write them in config files and API bodies.
//!
//! Every error names the offending input, because these strings travel far from
//! where they were typed (a TOML key, a PATCH body) before they are rejected.

use std::time::Duration;

/// Parses "90s", "3d", "1h 30m", "500ms" (anything `humantime` understands).
///
/// Surrounding whitespace is ignored so values copied out of a table still work.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let text = input.trim();
    if text.is_empty() {
        return Err(format!("invalid duration \"{input}\": it is empty"));
    }
    humantime::parse_duration(text).map_err(|e| format!("invalid duration \"{input}\": {e}"))
}

const SIZE_UNITS: [(&str, u64); 9] = [
    ("b", 1),
    ("kb", 1_000),
    ("kib", 1 << 10),
    ("mb", 1_000_000),
    ("mib", 1 << 20),
    ("gb", 1_000_000_000),
    ("gib", 1 << 30),
    ("tb", 1_000_000_000_000),
    ("tib", 1 << 40),
];

/// Parses a byte count: "1024", "64KiB", "10KB" (decimal), "1 MiB".
///
/// Units are case-insensitive; single-letter units such as "k" are refused
/// because they are ambiguous between decimal and binary multiples.
pub fn parse_size(input: &str) -> Result<u64, String> {
    let invalid = |why: &str| format!("invalid size \"{input}\": {why}");
    let text = input.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(invalid("expected a whole number of bytes, optionally followed by a unit (B, KB, KiB, MB, MiB, GB, GiB, TB, TiB)"));
    }
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier = if unit.is_empty() {
        1
    } else {
        SIZE_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, multiplier)| *multiplier)
            .ok_or_else(|| {
                invalid("unknown unit (expected B, KB, KiB, MB, MiB, GB, GiB, TB or TiB)")
            })?
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| invalid("too large"))
}

const SECONDS_PER_UNIT: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];

/// Short form for people: "45s", "8m", "1h 30m", "3d", "4d 2h", "500ms".
///
/// Two adjacent components at most, rounded down, because a decision like
/// "retry in 1h 30m" is read at a glance; precision below the second unit is
/// noise there. Whole seconds only, except below one second where milliseconds
/// are shown (so a 500ms delay is not printed as "0s"). The output always
/// parses back with [`parse_duration`].
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        let millis = d.subsec_millis();
        return if millis == 0 {
            "0s".to_string()
        } else {
            format!("{millis}ms")
        };
    }
    let largest = SECONDS_PER_UNIT
        .iter()
        .position(|(size, _)| secs >= *size)
        .unwrap_or(SECONDS_PER_UNIT.len() - 1);
    let (size, name) = SECONDS_PER_UNIT[largest];
    let mut out = format!("{}{name}", secs / size);
    if let Some((next_size, next_name)) = SECONDS_PER_UNIT.get(largest + 1) {
        let rest = (secs % size) / next_size;
        if rest > 0 {
            out.push_str(&format!(" {rest}{next_name}"));
        }
    }
    out
}

/// Lossless form: every non-zero component down to nanoseconds.
///
/// Used where a duration is persisted and must come back exactly (a resolved
/// policy written back as its spec); equal to [`format_duration`] whenever that
/// is lossless, which covers every value people usually write.
pub fn format_duration_exact(d: Duration) -> String {
    let short = format_duration(d);
    if parse_duration(&short) == Ok(d) {
        return short;
    }
    let mut secs = d.as_secs();
    let mut parts = Vec::new();
    for (size, name) in SECONDS_PER_UNIT {
        if secs >= size {
            parts.push(format!("{}{name}", secs / size));
            secs %= size;
        }
    }
    let nanos = d.subsec_nanos();
    for (size, name) in [(1_000_000, "ms"), (1_000, "us"), (1, "ns")] {
        let amount = (nanos / size) % 1_000;
        if amount > 0 {
            parts.push(format!("{amount}{name}"));
        }
    }
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_durations_people_write() {
        let cases = [
            ("90s", 90),
            ("3d", 3 * 86_400),
            ("1h 30m", 5_400),
            ("1h30m", 5_400),
            (" 8m ", 480),
            ("4d 2h", 4 * 86_400 + 7_200),
            ("0s", 0),
        ];
        for (text, secs) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn duration_errors_name_the_input() {
        for text in ["3x", "", "soon", "-5s", "99999999999999999999999d"] {
            let err = parse_duration(text).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid duration \"{text}\"")),
                "{err}"
            );
        }
    }

    #[test]
    fn parses_sizes() {
        let cases = [
            ("1024", 1024),
            ("0", 0),
            ("64KiB", 64 * 1024),
            ("1MiB", 1 << 20),
            ("1GiB", 1 << 30),
            ("1TiB", 1 << 40),
            ("10KB", 10_000),
            ("1MB", 1_000_000),
            ("1GB", 1_000_000_000),
            ("1 MiB", 1 << 20),
            ("  256kib  ", 256 * 1024),
            ("5b", 5),
            ("5 B", 5),
            ("2mb", 2_000_000),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn size_errors_name_the_input_and_overflow_is_an_error() {
        for text in [
            "",
            "KiB",
            "1.5MiB",
            "-1",
            "10 k",
            "10 bytes",
            "1 2",
            "18446744073709551616",
            "17179869184GiB",
            "99999999999999999999999999TiB",
        ] {
            let err = parse_size(text).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid size \"{text}\"")),
                "{err}"
            );
        }
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn formats_durations_compactly() {
        let cases = [
            (Duration::from_secs(45), "45s"),
            (Duration::from_secs(480), "8m"),
            (Duration::from_secs(5_400), "1h 30m"),
            (Duration::from_secs(3 * 86_400), "3d"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(4 * 86_400 + 7_200), "4d 2h"),
            (Duration::from_secs(4 * 86_400 + 7_200 + 59), "4d 2h"),
            (Duration::from_secs(86_400 + 300), "1d"),
            (Duration::from_secs(90), "1m 30s"),
            (Duration::from_millis(90_999), "1m 30s"),
            (Duration::from_secs(390_625), "4d 12h"),
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(999_999), "0s"),
        ];
        for (d, text) in cases {
            assert_eq!(format_duration(d), text, "{d:?}");
        }
    }

    #[test]
    fn exact_format_is_lossless() {
        let cases = [
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(86_400 + 300), "1d 5m"),
            (Duration::from_secs(90_061), "1d 1h 1m 1s"),
            (Duration::new(1, 500_000_000), "1s 500ms"),
            (Duration::new(0, 1_001), "1us 1ns"),
        ];
        for (d, text) in cases {
            assert_eq!(format_duration_exact(d), text);
            assert_eq!(parse_duration(text), Ok(d));
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC*") {
            let _ = parse_duration(&text);
            let _ = parse_size(&text);
        }

        #[test]
        fn size_like_strings_never_panic(
            text in "[ 0-9]{0,25}(b|B|kb|KiB|mib|GB|GiB|TiB|tb|x)?"
        ) {
            let _ = parse_size(&text);
        }

        #[test]
        fn formatted_whole_seconds_parse_back(secs in 0u64..=400 * 86_400 * 365) {
            let text = format_duration(Duration::from_secs(secs));
            let back = parse_duration(&text).unwrap();
            prop_assert!(back.as_secs() <= secs);
            prop_assert_eq!(format_duration(back), text);
        }

        #[test]
        fn formatted_sub_second_values_parse_back(nanos in 0u32..1_000_000_000) {
            let text = format_duration(Duration::from_nanos(nanos.into()));
            let back = parse_duration(&text).unwrap();
            prop_assert_eq!(back.as_millis(), u128::from(nanos / 1_000_000));
        }

        #[test]
        fn exact_format_round_trips(secs in 0u64..=u64::MAX / 4, nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            prop_assert_eq!(parse_duration(&format_duration_exact(d)), Ok(d));
        }
    }
}

//! Text helpers for the panes: durations relative to the app's clock, hosts,
//! results, identifiers and paths cut to fit, sparklines, bodies pretty-printed.
//! Plain strings in, plain strings out, so each is unit-tested on its own.

use crate::mask;
use chrono::{DateTime, Utc};

/// `12s`, `4m`, `3h`, `2d`.
pub fn short_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86_400)
    }
}

/// `in 4m`, `now`, or `—`.
pub fn next_attempt(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match at {
        None => "—".into(),
        Some(at) if at <= now => "now".into(),
        Some(at) => format!("in {}", short_duration((at - now).num_seconds().max(1))),
    }
}

/// Why an owed event waits although it may be due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldCause {
    Disabled,
    Paused,
}

/// What comes next for an event, as the screen says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Delivered, failed, cancelled or skipped: nothing comes next.
    Finished,
    /// Owed, but its destination takes no attempts now.
    Held(HoldCause),
    /// Due now, behind a destination whose every slot is taken; `ahead` is the
    /// number of its due events taken first, when known (the detail knows it).
    Queued { ahead: Option<u64> },
    /// Due now, and a slot is free.
    Now,
    /// Due later.
    At(DateTime<Utc>),
}

impl Schedule {
    /// Works out the schedule of `record` from its destination as last read
    /// (`None` when it is not known).
    pub fn of(
        record: &crate::model::EventRecord,
        destination: Option<&crate::engine::DestinationView>,
        ahead: Option<u64>,
        now: DateTime<Utc>,
    ) -> Schedule {
        if !record.state.awaits_delivery() {
            return Schedule::Finished;
        }
        if let Some(d) = destination {
            if !d.enabled {
                return Schedule::Held(HoldCause::Disabled);
            }
            if d.paused {
                return Schedule::Held(HoldCause::Paused);
            }
        }
        match record.next_attempt_at {
            Some(at) if at > now => Schedule::At(at),
            _ => {
                let saturated =
                    destination.is_some_and(|d| d.in_flight >= d.concurrency.max(1) as usize);
                // Events ahead in the due index are taken first however many
                // slots are free.
                if saturated || ahead.is_some_and(|n| n > 0) {
                    Schedule::Queued { ahead }
                } else {
                    Schedule::Now
                }
            }
        }
    }

    /// The words for the events pane's NEXT column and the detail.
    pub fn text(self, now: DateTime<Utc>) -> String {
        match self {
            Schedule::Finished => String::new(),
            Schedule::Held(HoldCause::Disabled) => "held (disabled)".into(),
            Schedule::Held(HoldCause::Paused) => "held (paused)".into(),
            Schedule::Queued { ahead: None } => "queued".into(),
            Schedule::Queued {
                ahead: Some(n @ crate::engine::AHEAD_CAP..),
            } => format!("queued ({n}+ ahead)"),
            Schedule::Queued { ahead: Some(0) } => "queued (next)".into(),
            Schedule::Queued { ahead: Some(n) } => format!("queued ({n} ahead)"),
            Schedule::Now => "now".into(),
            Schedule::At(at) => next_attempt(Some(at), now),
        }
    }
}

/// A notice's type in a few words (the header of its row).
pub fn notice_type_words(kind: crate::model::NoticeType) -> &'static str {
    use crate::model::NoticeType as T;
    match kind {
        T::DestinationDisabled => "disabled",
        T::DestinationEnabled => "enabled",
        T::InRetryTooLong => "in retry too long",
        T::DestinationRecovered => "recovered",
        T::DestinationPaused => "paused",
        T::DestinationResumed => "resumed",
        T::ConcurrencyLowered => "concurrency lowered",
        T::BulkJobFinished => "bulk job finished",
        T::StoreWriteFailed => "store write failed",
        T::StoreFull => "store full",
    }
}

/// `2024-05-01 11:42:10 UTC`.
pub fn absolute_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn age(created: DateTime<Utc>, now: DateTime<Utc>) -> String {
    short_duration((now - created).num_seconds())
}

pub fn host(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => url.to_string(),
        },
        Err(_) => url.to_string(),
    }
}

pub fn last_result(status: Option<u16>, error: Option<&str>) -> String {
    match (status, error) {
        (Some(s), _) => s.to_string(),
        (None, Some(e)) => e.to_string(),
        (None, None) => "—".into(),
    }
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub fn sparkline(values: &[u64]) -> String {
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if v == 0 || max == 0 {
                ' '
            } else {
                let i = ((v * 8).div_ceil(max)).clamp(1, 8) - 1;
                BARS[i as usize]
            }
        })
        .collect()
}

pub fn short_id(id: &str, wide: bool) -> String {
    if wide {
        id.to_string()
    } else {
        id[id.len().saturating_sub(8)..].to_string()
    }
}

/// The end of `text` in at most `room` columns, `…` in front when cut.
pub fn tail(text: &str, room: usize) -> String {
    let n = text.chars().count();
    if n <= room {
        return text.to_string();
    }
    let keep = room.saturating_sub(1);
    format!("…{}", text.chars().skip(n - keep).collect::<String>())
}

/// The start of `text` in at most `room` columns, `…` at the end when cut.
pub fn ellipsize(text: &str, room: usize) -> String {
    let n = text.chars().count();
    if n <= room {
        return text.to_string();
    }
    if room == 0 {
        return String::new();
    }
    let mut cut: String = text.chars().take(room - 1).collect();
    cut.push('…');
    cut
}

/// `text` in at most `room` columns, cut in the middle when it must be: ids
/// often share a prefix (`customer-`) and differ at the end, so both ends stay.
pub fn ellipsize_middle(text: &str, room: usize) -> String {
    let n = text.chars().count();
    if n <= room {
        return text.to_string();
    }
    if room < 5 {
        return ellipsize(text, room);
    }
    let keep = room - 1;
    let head = keep.div_ceil(2);
    let tail = keep - head;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

/// A count in at most four characters: `9999`, `12k`, `123k`, `4.5M`, `12M`.
/// Cut, not rounded, so a value never grows a digit (99,999 is `99k`).
pub fn compact(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{}k", n / 1_000),
        1_000_000..=9_999_999 => format!("{}.{}M", n / 1_000_000, n % 1_000_000 / 100_000),
        10_000_000..=999_999_999 => format!("{}M", n / 1_000_000),
        1_000_000_000..=9_999_999_999 => format!("{}G", n / 1_000_000_000),
        _ => ">9G".to_string(),
    }
}

/// Where `text` breaks into lines of at most `width` columns: the byte range
/// of each line. Lines break at spaces, which are dropped at the break; a word
/// is cut only when it alone is wider than a line (a long URL, a token, base64),
/// and then starts a line of its own unless the line holds nothing but indent.
/// The one wrapping rule of the TUI: [`wrap_words`] for plain text, the event
/// detail for its styled lines.
pub fn wrap_ranges(text: &str, width: usize) -> Vec<std::ops::Range<usize>> {
    use unicode_width::UnicodeWidthChar;
    let width = width.max(1);
    let columns = |s: &str| -> usize { s.chars().map(|c| c.width().unwrap_or(0)).sum() };
    let mut lines = Vec::new();
    // The current line: where it starts, how wide it is so far, and whether
    // it holds a word yet (or only the indent it started with).
    let mut start = 0;
    let mut used = 0;
    let mut has_word = false;
    let mut rest = text;
    while !rest.is_empty() {
        let offset = text.len() - rest.len();
        let is_space = rest.starts_with(' ');
        let len = rest
            .find(|c: char| (c == ' ') != is_space)
            .unwrap_or(rest.len());
        let (token, after) = rest.split_at(len);
        rest = after;
        let token_width = columns(token);
        if used + token_width <= width {
            used += token_width;
            has_word |= !is_space;
            continue;
        }
        if is_space {
            // Spaces that overflow end the line and are dropped.
            if offset > start {
                lines.push(start..offset);
            }
            (start, used, has_word) = (offset + len, 0, false);
            continue;
        }
        if has_word {
            // The word starts the next line; the spaces before it are dropped.
            let end = start + text[start..offset].trim_end_matches(' ').len();
            lines.push(start..end);
            (start, used) = (offset, 0);
            if token_width <= width {
                used = token_width;
                continue;
            }
        }
        // A word wider than a line: cut where the line is full.
        has_word = true;
        for (i, c) in token.char_indices() {
            let w = c.width().unwrap_or(0);
            if used + w > width && used > 0 {
                lines.push(start..offset + i);
                (start, used) = (offset + i, 0);
            }
            used += w;
        }
    }
    if start < text.len() || lines.is_empty() {
        lines.push(start..text.len());
    }
    lines
}

/// `text` broken into lines of at most `width` columns (see [`wrap_ranges`]).
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    wrap_ranges(text, width)
        .into_iter()
        .map(|range| text[range].to_string())
        .collect()
}

/// Pretty-printed when JSON (credentials masked), else as is.
pub fn pretty_body(text: &str) -> Vec<String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut value) if value.is_object() || value.is_array() => {
            mask::mask_json(&mut value);
            serde_json::to_string_pretty(&value)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect()
        }
        _ => text.lines().map(str::to_string).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn short_duration_uses_the_largest_whole_unit() {
        assert_eq!(short_duration(-5), "0s");
        assert_eq!(short_duration(59), "59s");
        assert_eq!(short_duration(60), "1m");
        assert_eq!(short_duration(3_599), "59m");
        assert_eq!(short_duration(3_600), "1h");
        assert_eq!(short_duration(86_399), "23h");
        assert_eq!(short_duration(86_400 * 3), "3d");
    }

    #[test]
    fn next_attempt_is_relative_to_now() {
        let now = at("2024-05-01T12:00:00Z");
        assert_eq!(next_attempt(None, now), "—");
        assert_eq!(next_attempt(Some(now - Duration::seconds(3)), now), "now");
        assert_eq!(next_attempt(Some(now), now), "now");
        assert_eq!(
            next_attempt(Some(now + Duration::milliseconds(200)), now),
            "in 1s"
        );
        assert_eq!(
            next_attempt(Some(now + Duration::seconds(240)), now),
            "in 4m"
        );
        assert_eq!(age(now - Duration::seconds(7_300), now), "2h");
    }

    #[test]
    fn host_keeps_an_explicit_port_and_falls_back_to_the_text() {
        assert_eq!(host("https://shop.example.com/hooks"), "shop.example.com");
        assert_eq!(
            host("http://127.0.0.1:9001/hooks/billing"),
            "127.0.0.1:9001"
        );
        assert_eq!(host("not a url"), "not a url");
    }

    #[test]
    fn last_result_prefers_the_status_over_the_error() {
        assert_eq!(last_result(Some(503), Some("ignored")), "503");
        assert_eq!(last_result(None, Some("timed out")), "timed out");
        assert_eq!(last_result(None, None), "—");
    }

    #[test]
    fn short_id_keeps_the_last_eight_characters_when_narrow() {
        let id = "01HX0000000000000000ABCDEF";
        assert_eq!(short_id(id, true), id);
        assert_eq!(short_id(id, false), "00ABCDEF");
        assert_eq!(short_id("abc", false), "abc");
    }

    #[test]
    fn tail_cuts_from_the_front_to_fit() {
        assert_eq!(tail("/var/lib/x.redb", 40), "/var/lib/x.redb");
        assert_eq!(tail("/var/lib/x.redb", 15), "/var/lib/x.redb");
        assert_eq!(tail("/var/lib/x.redb", 8), "…/x.redb");
        assert_eq!(tail("/var/lib/x.redb", 8).chars().count(), 8);
        assert_eq!(tail("/var/lib/x.redb", 0), "…");
    }

    #[test]
    fn ellipsize_cuts_with_an_ellipsis_and_fits_the_room() {
        assert_eq!(ellipsize("shop.example.com", 20), "shop.example.com");
        assert_eq!(ellipsize("shop.example.com", 8), "shop.ex…");
        assert_eq!(ellipsize("shop.example.com", 8).chars().count(), 8);
        assert_eq!(ellipsize("abc", 0), "");
        assert_eq!(ellipsize_middle("customer-00042", 14), "customer-00042");
        assert_eq!(
            ellipsize_middle("acme-corporation-customer-00042", 11),
            "acme-…00042"
        );
        assert_eq!(
            ellipsize_middle("acme-corporation-customer-00042", 11)
                .chars()
                .count(),
            11
        );
        assert_eq!(ellipsize_middle("abcdef", 4), "abc…");
    }

    #[test]
    fn compact_keeps_counts_within_four_characters() {
        assert_eq!(compact(0), "0");
        assert_eq!(compact(9_999), "9999");
        assert_eq!(compact(10_000), "10k");
        assert_eq!(compact(99_999), "99k");
        assert_eq!(compact(123_456), "123k");
        assert_eq!(compact(1_500_000), "1.5M");
        assert_eq!(compact(250_000_000), "250M");
        for n in [0, 9, 99_999, 999_999, 9_999_999, 999_999_999, u64::MAX] {
            assert!(compact(n).chars().count() <= 4, "{n}");
        }
    }

    #[test]
    fn sparkline_scales_to_the_largest_value() {
        assert_eq!(sparkline(&[0, 0, 0]), "   ");
        assert_eq!(sparkline(&[0, 1, 4, 8]), " ▁▄█");
        assert_eq!(sparkline(&[1, 1000]), "▁█");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn wrap_words_breaks_at_spaces_and_cuts_long_words() {
        assert_eq!(wrap_words("a bb ccc", 4), vec!["a bb", "ccc"]);
        assert_eq!(wrap_words("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap_words("", 4), vec![""]);
        for line in wrap_words(&"word ".repeat(40), 17) {
            assert!(line.chars().count() <= 17);
        }
    }

    #[test]
    fn wrap_words_never_breaks_a_word_that_fits_on_a_line() {
        // What the new destination form showed as "created th / rough the API".
        let message = "✗ a destination of the config file cannot be replaced; it was not created through the API";
        let lines = wrap_words(message, 30);
        assert_eq!(
            lines,
            vec![
                "✗ a destination of the config",
                "file cannot be replaced; it",
                "was not created through the",
                "API",
            ]
        );
        // Every word of the text is whole on some line.
        for word in message.split(' ') {
            assert!(
                lines.iter().any(|l| l.split(' ').any(|w| w == word)),
                "{word}: {lines:?}"
            );
        }
        // The detail's "(aut|omatic)".
        assert_eq!(
            wrap_words("  next in 4m (automatic)", 16),
            vec!["  next in 4m", "(automatic)"]
        );
    }

    #[test]
    fn wrap_words_cuts_only_a_word_wider_than_the_line_and_keeps_the_indent() {
        assert_eq!(
            wrap_words("  POST https://example.com/a/very/long/path", 16),
            vec!["  POST", "https://example.", "com/a/very/long/", "path"]
        );
        // An indent alone is not a word: the long one starts after it.
        assert_eq!(wrap_words("  abcdefgh", 6), vec!["  abcd", "efgh"]);
        // Columns, not characters: a wide character takes two.
        assert_eq!(wrap_words("日本語 ok", 6), vec!["日本語", "ok"]);
        assert_eq!(wrap_words("日本語", 4), vec!["日本", "語"]);
        // Lines never exceed the width.
        let text = "x ".repeat(10) + &"y".repeat(25) + " zz";
        for line in wrap_words(&text, 7) {
            assert!(line.chars().count() <= 7, "{line:?}");
        }
    }

    #[test]
    fn pretty_body_masks_json_credentials_and_keeps_other_text() {
        let lines = pretty_body(r#"{"order_id":"ord_1","payment_token":"tok_live"}"#);
        assert_eq!(
            lines,
            vec![
                "{".to_string(),
                r#"  "order_id": "ord_1","#.to_string(),
                format!(r#"  "payment_token": "{}""#, mask::MASK),
                "}".to_string(),
            ]
        );
        assert_eq!(
            pretty_body("Service Unavailable\ntry later"),
            vec!["Service Unavailable", "try later"]
        );
        // A JSON scalar is not a document to mask: shown as sent.
        assert_eq!(pretty_body(r#""token""#), vec![r#""token""#]);
    }
}

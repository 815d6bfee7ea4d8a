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

//! Output for people: aligned columns, relative times, key–value blocks.

use chrono::{DateTime, Utc};
use std::fmt::Write;

/// Rows under a header, each column as wide as its widest cell; the last
/// column is not padded (no trailing blanks).
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<const N: usize>(header: [&str; N]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len(), "one cell per column");
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let last = line.len().saturating_sub(1);
            let mut text = String::new();
            for (i, (cell, width)) in line.iter().zip(&widths).enumerate() {
                if i == last {
                    text.push_str(cell);
                } else {
                    let _ = write!(text, "{cell:<width$}  ");
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Labelled lines, the labels padded to one width.
#[derive(Default)]
pub struct Fields {
    lines: Vec<(String, String)>,
}

impl Fields {
    pub fn add(&mut self, label: &str, value: impl Into<String>) {
        self.lines.push((label.to_string(), value.into()));
    }

    pub fn render(&self) -> String {
        let width = self
            .lines
            .iter()
            .map(|(label, _)| label.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (label, value) in &self.lines {
            let _ = writeln!(out, "{label:<width$}  {value}");
        }
        out
    }
}

/// `at` relative to `now`, coarsely: "12s ago", "in 8m", "3h ago", "2d ago".
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    let span = short_span(seconds.unsigned_abs());
    if seconds >= 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// When a scheduled attempt happens, relative to `now`: "in 8m", or "now"
/// once its time has come (it is due, or running), never "0s ago".
pub fn due_in(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if at <= now {
        "now".to_string()
    } else {
        relative(at, now)
    }
}

fn short_span(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds}s"),
        60..=3599 => format!("{}m", seconds / 60),
        3600..=86_399 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// A time as people read it: relative, then the exact UTC time.
pub fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!(
        "{} ({})",
        relative(at, now),
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// An optional value, or a dash.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell_without_trailing_blanks() {
        let mut table = Table::new(["ID", "STATE", "NOTE"]);
        table.row(vec!["a".into(), "delivered".into(), String::new()]);
        table.row(vec!["longer".into(), "failed".into(), "gave up".into()]);
        assert_eq!(
            table.render(),
            "ID      STATE      NOTE\na       delivered\nlonger  failed     gave up\n"
        );
    }

    #[test]
    fn times_read_relative_to_now() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: i64| now - chrono::Duration::seconds(s);
        assert_eq!(relative(at(5), now), "5s ago");
        assert_eq!(relative(at(-480), now), "in 8m");
        assert_eq!(relative(at(7200), now), "2h ago");
        assert_eq!(relative(at(3 * 86_400), now), "3d ago");
        assert_eq!(when(at(0), now), "0s ago (2024-05-01T12:00:00Z)");
        // A scheduled attempt whose time has come is due now, not "0s ago".
        assert_eq!(due_in(at(0), now), "now");
        assert_eq!(due_in(at(3), now), "now");
        assert_eq!(due_in(at(-480), now), "in 8m");
    }
}

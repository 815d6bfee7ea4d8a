//! Event detail (Enter): the request as sent, the payload (credentials masked),
//! and the response of the selected attempt. It scrolls by wrapped lines (the
//! wrapping is done here, not by the paragraph, so key handling knows where
//! the end is); a large payload is shown truncated, with its size.

use crate::mask::MASK;
use crate::tui::app::App;
use crate::tui::layout::centered;
use crate::tui::text::{age, last_result, pretty_body, wrap_ranges, Schedule};
use crate::tui::theme::{popup_block, state_color, status_color};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use unicode_width::UnicodeWidthChar;

/// The most of a payload the detail shows: a screenful many times over, and
/// small enough to lay out every frame (a 1 MiB payload would not be).
pub const PAYLOAD_SHOWN: usize = 16 * 1024;
use ratatui::Frame;

pub fn lines(app: &App) -> Vec<Line<'static>> {
    let Some(detail) = app.selected_detail() else {
        return vec![Line::from("loading…")];
    };
    let e = &detail.event;
    let dest = app.dest_list.find(&app.destinations, &e.destination);
    let section = |t: &str| {
        Line::from(Span::styled(
            t.to_string(),
            Style::new().fg(Color::Cyan).bold(),
        ))
    };
    let kv = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("  {k}: "), Style::new().fg(Color::Gray)),
            Span::raw(v),
        ])
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(e.id.to_string(), Style::new().bold()),
            Span::raw(format!("  → {}", e.destination)),
        ]),
        Line::from(vec![
            Span::raw(format!(
                "topic {}  state ",
                // Posted straight to a destination, an event may have none.
                if e.topic.is_empty() {
                    "(none)"
                } else {
                    e.topic.as_str()
                }
            )),
            Span::styled(
                e.state.as_str(),
                Style::new().fg(state_color(e.state)).bold(),
            ),
            Span::raw(format!(
                "  attempts {}  age {}{}",
                e.attempt_count,
                age(e.created_at, app.now),
                match (Schedule::of(e, dest, detail.ahead, app.now), e.next_trigger) {
                    // A finished event has nothing next.
                    (Schedule::Finished, _) => String::new(),
                    (schedule @ Schedule::At(_), Some(trigger)) => {
                        format!("  next {} ({trigger})", schedule.text(app.now))
                    }
                    (schedule, _) => format!("  next {}", schedule.text(app.now)),
                }
            )),
        ]),
    ];
    if let Some(reason) = &e.reason {
        lines.push(Line::from(format!("reason {reason}")));
    }
    if let Some(dup) = &e.duplicate_of {
        lines.push(Line::from(format!("duplicate of {dup}")));
    }
    lines.push(Line::from(""));
    let attempt = app.selected_attempts().get(app.attempt_index).copied();
    lines.push(section("Request (what hookwatch sends)"));
    let url = dest.map_or("?".to_string(), |d| d.url.clone());
    lines.push(Line::from(format!("  POST {url}")));
    if let Some(ct) = &e.content_type {
        lines.push(kv("content-type", ct.clone()));
    }
    lines.push(kv("webhook-id", e.id.to_string()));
    lines.push(kv(
        "webhook-timestamp",
        attempt.map_or("(time of the attempt)".to_string(), |a| {
            a.at.timestamp().to_string()
        }),
    ));
    if let Some(d) = dest {
        if !d.secrets.is_empty() {
            let sigs: Vec<String> = d.secrets.iter().map(|_| format!("v1,{MASK}")).collect();
            lines.push(kv("webhook-signature", sigs.join(" ")));
        }
    }
    lines.push(kv(
        "hookwatch-attempt",
        attempt.map_or((e.attempt_count + 1).to_string(), |a| a.n.to_string()),
    ));
    if let Some(d) = dest {
        for (name, value) in &d.headers {
            lines.push(kv(name, value.clone()));
        }
    }
    lines.push(Line::from(""));
    lines.push(section(&format!("Payload ({} bytes)", e.payload_bytes)));
    match (&detail.payload, &detail.payload_base64) {
        (Some(text), _) if text.len() > PAYLOAD_SHOWN => {
            // Not pretty-printed: cut JSON is not JSON, and parsing a large
            // body every frame would freeze the screen.
            for l in head(text, PAYLOAD_SHOWN).lines() {
                lines.push(Line::from(format!("  {l}")));
            }
            lines.push(truncation_note(text.len()));
        }
        (Some(text), _) => {
            for l in pretty_body(text) {
                lines.push(Line::from(format!("  {l}")));
            }
        }
        (None, Some(b64)) => {
            lines.push(Line::from(format!(
                "  (binary, base64) {}",
                head(b64, PAYLOAD_SHOWN)
            )));
            if b64.len() > PAYLOAD_SHOWN {
                lines.push(truncation_note(e.payload_bytes as usize));
            }
        }
        (None, None) => lines.push(Line::from("  (empty)")),
    }
    lines.push(Line::from(""));
    match attempt {
        None => lines.push(section("Response: no attempt yet")),
        Some(a) => {
            lines.push(section(&format!(
                "Response of attempt {} ({}, {} UTC)",
                a.n,
                a.trigger.words(),
                a.at.format("%Y-%m-%d %H:%M:%S")
            )));
            lines.push(Line::from(vec![
                Span::styled("  result: ", Style::new().fg(Color::Gray)),
                Span::styled(
                    last_result(a.status, a.error.as_deref()),
                    Style::new().fg(status_color(a.status, a.error.as_deref())),
                ),
                Span::raw(format!("  in {} ms", a.duration_ms)),
            ]));
            lines.push(kv("decision", a.decision.clone()));
            if a.response_excerpt.is_empty() {
                lines.push(Line::from("  (no body)"));
            } else {
                for l in pretty_body(&a.response_excerpt) {
                    lines.push(Line::from(format!("  {l}")));
                }
            }
        }
    }
    lines
}

/// The first `max` bytes of `text`, cut at a character boundary.
fn head(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn truncation_note(total: usize) -> Line<'static> {
    Line::from(Span::styled(
        format!(
            "  … shown: the first {} KiB of {}; y copies it whole, the API serves it (GET /v1/events/{{id}})",
            PAYLOAD_SHOWN / 1024,
            size_text(total)
        ),
        Style::new().fg(Color::Yellow),
    ))
}

/// `231 bytes`, `16.0 KiB`, `1.0 MiB`.
pub fn size_text(bytes: usize) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{:.1} MiB", b / KIB / KIB)
    }
}

/// Where the popup sits on a screen of `area`.
fn rect(area: Rect) -> Rect {
    centered(
        area,
        area.width.saturating_sub(6).max(40),
        area.height.saturating_sub(2),
    )
}

/// Lines the popup shows at once on a screen of `size`.
pub fn inner_height(size: (u16, u16)) -> u16 {
    rect(Rect::new(0, 0, size.0, size.1))
        .height
        .saturating_sub(2)
}

fn inner_width(size: (u16, u16)) -> u16 {
    rect(Rect::new(0, 0, size.0, size.1))
        .width
        .saturating_sub(2)
}

/// `lines` as shown: wrapped at `width` columns on word boundaries (a word is
/// cut only when it alone is wider: long tokens, URLs, base64), or cut at the
/// edge when not wrapping. The wrapping is [`wrap_ranges`], shared with the forms.
pub fn layout(lines: Vec<Line<'static>>, width: u16, wrap: bool) -> Vec<Line<'static>> {
    let width = usize::from(width.max(1));
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        if line.width() <= width {
            out.push(line);
        } else if wrap {
            out.extend(wrap_line(&line, width));
        } else {
            out.push(cut_line(line, width));
        }
    }
    out
}

/// A styled line wrapped: the breaks are worked out on its text, then each
/// span is split where they fall.
fn wrap_line(line: &Line<'static>, width: usize) -> Vec<Line<'static>> {
    let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    let mut span_starts = Vec::with_capacity(line.spans.len());
    let mut at = 0;
    for span in &line.spans {
        span_starts.push(at);
        at += span.content.len();
    }
    wrap_ranges(&text, width)
        .into_iter()
        .map(|range| {
            let spans = line
                .spans
                .iter()
                .zip(&span_starts)
                .filter_map(|(span, &start)| {
                    let end = start + span.content.len();
                    let (from, to) = (range.start.max(start), range.end.min(end));
                    (from < to).then(|| Span::styled(text[from..to].to_string(), span.style))
                })
                .collect::<Vec<_>>();
            Line::from(spans)
        })
        .collect()
}

/// A styled line cut at `width` columns.
fn cut_line(line: Line<'static>, width: usize) -> Line<'static> {
    let mut spans = Vec::new();
    let mut used = 0;
    for span in line.spans {
        let mut piece = String::new();
        for c in span.content.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width {
                spans.push(Span::styled(piece, span.style));
                return Line::from(spans);
            }
            piece.push(c);
            used += w;
        }
        spans.push(Span::styled(piece, span.style));
    }
    Line::from(spans)
}

/// The furthest the detail scrolls at the app's size: its last line at the
/// bottom of the popup.
pub fn max_scroll(app: &App, wrap: bool) -> u16 {
    let shown = layout(lines(app), inner_width(app.size), wrap);
    let rows = shown
        .len()
        .saturating_sub(usize::from(inner_height(app.size)));
    u16::try_from(rows).unwrap_or(u16::MAX)
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect, scroll: u16, wrap: bool) {
    let rect = rect(area);
    let lines = layout(lines(app), rect.width.saturating_sub(2), wrap);
    let inner_height = rect.height.saturating_sub(2) as usize;
    let max_scroll = lines.len().saturating_sub(inner_height);
    let scroll = usize::from(scroll).min(max_scroll);
    let position = if max_scroll == 0 {
        String::new()
    } else {
        format!(
            " {}–{}/{}",
            scroll + 1,
            (scroll + inner_height).min(lines.len()),
            lines.len()
        )
    };
    let title = format!(
        "Event detail{position} · j/k g/G · y copy · w {} · Esc",
        if wrap { "unwrap" } else { "wrap" }
    );
    let visible: Vec<Line> = lines.into_iter().skip(scroll).take(inner_height).collect();
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(visible).block(popup_block(&title)), rect);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn wrapping_breaks_between_words_and_keeps_each_spans_style() {
        let red = Style::new().fg(Color::Red);
        let line = Line::from(vec![
            Span::raw("state "),
            Span::styled("retrying", red),
            Span::raw("  next in 4m (automatic)"),
        ]);
        let shown = layout(vec![line.clone()], 20, true);
        assert_eq!(
            texts(&shown),
            vec!["state retrying  next", "in 4m (automatic)"]
        );
        // The styled word kept its style, the break did not split a span's words.
        assert!(shown[0]
            .spans
            .iter()
            .any(|s| s.content == "retrying" && s.style == red));
        // Unwrapped: cut at the edge.
        assert_eq!(texts(&layout(vec![line], 10, false)), vec!["state retr"]);
        // A token wider than the popup is still cut to fit.
        let long = Line::from(format!("  (binary, base64) {}", "QUJD".repeat(10)));
        for l in layout(vec![long], 16, true) {
            assert!(l.width() <= 16, "{l}");
        }
    }
}

//! The new destination form (`n`): one line per key, the error under the field
//! it names (or at the bottom when it names none), scrolled to keep the focused
//! field in view on a small screen, with a "↓ N more" line saying what is cut
//! off.

use crate::tui::dest_form::DestinationForm;
use crate::tui::layout::centered;
use crate::tui::text::wrap_words;
use crate::tui::theme::{key_span, popup_block};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

/// Width of the key column: the longest key, `retry.flush_on_recovery`, and a space.
const KEY_WIDTH: usize = 24;

fn error_lines(message: &str, width: usize) -> Vec<Line<'static>> {
    wrap_words(&format!("✗ {message}"), width.saturating_sub(4))
        .into_iter()
        .map(|piece| {
            Line::from(Span::styled(
                format!("    {piece}"),
                Style::new().fg(Color::Red),
            ))
        })
        .collect()
}

pub fn draw(frame: &mut Frame, area: Rect, form: &DestinationForm) {
    let width = area.width.saturating_sub(4).min(84);
    let inner_width = width.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = Vec::new();
    let mut focus_line = 0;
    // One past the focused field's last line (itself and its error).
    let mut focus_end = 0;
    for (index, field) in form.fields.iter().enumerate() {
        let focused = index == form.focus;
        if focused {
            focus_line = lines.len();
        }
        let value = &form.values[index];
        let mut spans = vec![
            Span::raw(if focused { "▸ " } else { "  " }),
            Span::styled(
                format!("{:<KEY_WIDTH$}", field.name),
                if focused {
                    Style::new().fg(Color::Cyan).bold()
                } else {
                    Style::new()
                },
            ),
            Span::styled(value.clone(), Style::new().fg(Color::Yellow).bold()),
        ];
        if focused {
            spans.push(Span::styled("█", Style::new().fg(Color::Cyan)));
        }
        let used = 2 + KEY_WIDTH + value.chars().count() + usize::from(focused);
        let pad = (KEY_WIDTH + 22).saturating_sub(used).max(2);
        spans.push(Span::styled(
            format!("{}{}", " ".repeat(pad), field.hint),
            Style::new().fg(Color::DarkGray),
        ));
        lines.push(Line::from(spans));
        if let Some(error) = &form.error {
            if error.field == Some(index) {
                lines.extend(error_lines(&error.message, inner_width));
            }
        }
        if focused {
            focus_end = lines.len();
        }
    }
    let mut bottom: Vec<Line> = Vec::new();
    if let Some(error) = form.error.as_ref().filter(|e| e.field.is_none()) {
        bottom.extend(error_lines(&error.message, inner_width));
    }
    bottom.push(if form.saving {
        Line::from(Span::styled("saving…", Style::new().fg(Color::Cyan).bold()))
    } else {
        Line::from(vec![
            key_span("Enter"),
            Span::raw(" create  "),
            key_span("Tab ↑↓"),
            Span::raw(" field  "),
            key_span("C-u"),
            Span::raw(" clear  "),
            key_span("Space"),
            Span::raw(" true/false  "),
            key_span("Esc"),
            Span::raw(" cancel"),
        ])
    });
    let height = (lines.len() + bottom.len() + 1) as u16 + 2;
    let rect = centered(area, width, height.min(area.height.saturating_sub(2)));
    frame.render_widget(Clear, rect);
    let block = popup_block("New destination");
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [fields_area, hint_area, bottom_area] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(bottom.len() as u16),
    ])
    .areas(inner);
    let visible = fields_area.height as usize;
    let total = lines.len();
    let scroll = scroll_for(focus_line, focus_end, visible, total);
    frame.render_widget(
        Paragraph::new(lines).scroll((scroll as u16, 0)),
        fields_area,
    );
    if let Some(hint) = more_hint(scroll, visible, total) {
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(hint, Style::new().fg(Color::Cyan)))),
            hint_area,
        );
    }
    frame.render_widget(Paragraph::new(bottom), bottom_area);
}

/// The first line shown so that the focused field is in view with as much
/// of what follows it (its error, then the next field) as fits: the lines
/// `focus_line..focus_end` are the field and its error, of `total` lines. The
/// field itself wins over its error when the window is smaller than both.
fn scroll_for(focus_line: usize, focus_end: usize, visible: usize, total: usize) -> usize {
    // The field, its error and the next line, as far as they fit and exist.
    let want_end = (focus_end + 1)
        .min(total.max(focus_end))
        .min(focus_line + visible.max(1));
    want_end.saturating_sub(visible).min(focus_line)
}

/// "↑ 3 more · ↓ 7 more" when lines are cut off above or below the window.
fn more_hint(scroll: usize, visible: usize, total: usize) -> Option<String> {
    let above = scroll;
    let below = total.saturating_sub(scroll + visible);
    let mut parts = Vec::new();
    if above > 0 {
        parts.push(format!("↑ {above} more"));
    }
    if below > 0 {
        parts.push(format!("↓ {below} more"));
    }
    (!parts.is_empty()).then(|| format!("  {}", parts.join(" · ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_focused_field_is_always_in_view() {
        for visible in 1..12 {
            for focus_line in 0..30 {
                for error_lines in 0..4 {
                    let focus_end = focus_line + 1 + error_lines;
                    let scroll = scroll_for(focus_line, focus_end, visible, 40);
                    assert!(
                        scroll <= focus_line && focus_line < scroll + visible,
                        "visible {visible}, focus {focus_line}..{focus_end}: scroll {scroll}"
                    );
                }
            }
        }
        // Room to spare: the next field shows too.
        assert_eq!(scroll_for(10, 11, 5, 20), 7);
        assert_eq!(scroll_for(0, 1, 5, 20), 0);
        // The last field: no blank line below it.
        assert_eq!(scroll_for(19, 20, 18, 20), 2);
    }

    #[test]
    fn the_hint_says_what_is_cut_off() {
        assert_eq!(more_hint(0, 10, 10), None);
        assert_eq!(more_hint(0, 10, 25).as_deref(), Some("  ↓ 15 more"));
        assert_eq!(
            more_hint(4, 10, 25).as_deref(),
            Some("  ↑ 4 more · ↓ 11 more")
        );
        assert_eq!(more_hint(15, 10, 25).as_deref(), Some("  ↑ 15 more"));
    }
}

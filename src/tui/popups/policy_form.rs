//! The retry policy form (`e`): one line per key, changed values highlighted.
//! A validation error wraps inside the box, and the keys line stays at its
//! bottom however long the error or small the screen.

use crate::tui::form::{PolicyForm, FIELDS};
use crate::tui::layout::centered;
use crate::tui::text::wrap_words;
use crate::tui::theme::{key_span, popup_block};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

/// The form's width, borders included.
const WIDTH: u16 = 76;
/// The error's indent under its field.
const ERROR_INDENT: &str = "    ✗ ";

pub fn draw(frame: &mut Frame, area: Rect, form: &PolicyForm) {
    let inner_width = usize::from(WIDTH.min(area.width).saturating_sub(2));
    let mut lines: Vec<Line> = Vec::new();
    for (index, (key, _, hint)) in FIELDS.iter().enumerate() {
        let focused = index == form.focus;
        let value = &form.values[index];
        let changed = *value != form.initial[index];
        let mut spans = vec![
            Span::raw(if focused { "▸ " } else { "  " }),
            Span::styled(
                format!("{key:<18}"),
                if focused {
                    Style::new().fg(Color::Cyan).bold()
                } else {
                    Style::new()
                },
            ),
            Span::styled(
                value.clone(),
                if changed {
                    Style::new().fg(Color::Yellow).bold()
                } else {
                    Style::new()
                },
            ),
        ];
        if focused {
            spans.push(Span::styled("█", Style::new().fg(Color::Cyan)));
        }
        let used = 2 + 18 + value.chars().count() + usize::from(focused);
        let pad = 34usize.saturating_sub(used).max(2);
        spans.push(Span::styled(
            format!("{}{hint}", " ".repeat(pad)),
            Style::new().fg(Color::DarkGray),
        ));
        lines.push(Line::from(spans));
        if let Some((at, message)) = &form.error {
            if *at == index {
                let room = inner_width.saturating_sub(ERROR_INDENT.chars().count());
                for (n, part) in wrap_words(message, room).into_iter().enumerate() {
                    let indent = if n == 0 { ERROR_INDENT } else { "      " };
                    lines.push(Line::from(Span::styled(
                        format!("{indent}{part}"),
                        Style::new().fg(Color::Red),
                    )));
                }
            }
        }
    }
    let keys = vec![
        Line::from(""),
        Line::from(vec![
            key_span("Enter"),
            Span::raw(" save  "),
            key_span("Tab ↑↓"),
            Span::raw(" field  "),
            key_span("C-u"),
            Span::raw(" clear  "),
            key_span("Esc"),
            Span::raw(" cancel"),
        ]),
        Line::from(Span::styled(
            "Saved as a live edit of the changed keys; applies at the next attempt.",
            Style::new().fg(Color::DarkGray),
        )),
    ];
    let rect = centered(area, WIDTH, (lines.len() + keys.len()) as u16 + 2);
    let block = popup_block(&format!("Retry policy · {}", form.destination));
    let inner = block.inner(rect);
    let [fields_area, keys_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(keys.len() as u16)]).areas(inner);
    // On a short screen the fields scroll to keep the focused one in view.
    let focus_line = lines
        .iter()
        .position(|l| l.spans.first().is_some_and(|s| s.content == "▸ "))
        .unwrap_or(0);
    let scroll = (focus_line + 2).saturating_sub(usize::from(fields_area.height));
    frame.render_widget(Clear, rect);
    frame.render_widget(block, rect);
    frame.render_widget(
        Paragraph::new(lines).scroll((scroll as u16, 0)),
        fields_area,
    );
    frame.render_widget(Paragraph::new(keys), keys_area);
}

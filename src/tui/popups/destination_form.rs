//! The new destination form (`n`): one line per key, the error under the field
//! it names (or at the bottom when it names none), scrolled to keep the focused
//! field in view on a small screen.

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
    let [fields_area, _, bottom_area] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(bottom.len() as u16),
    ])
    .areas(inner);
    // Keep the focused field and the line under it (its error) in view.
    let visible = fields_area.height as usize;
    let scroll = (focus_line + 2).saturating_sub(visible);
    frame.render_widget(
        Paragraph::new(lines).scroll((scroll as u16, 0)),
        fields_area,
    );
    frame.render_widget(Paragraph::new(bottom), bottom_area);
}

//! The retry policy form (`e`): one line per key, changed values highlighted.

use crate::tui::form::{PolicyForm, FIELDS};
use crate::tui::layout::centered;
use crate::tui::theme::{key_span, popup_block};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(frame: &mut Frame, area: Rect, form: &PolicyForm) {
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
                lines.push(Line::from(Span::styled(
                    format!("    ✗ {message}"),
                    Style::new().fg(Color::Red),
                )));
            }
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        key_span("Enter"),
        Span::raw(" save  "),
        key_span("Tab ↑↓"),
        Span::raw(" field  "),
        key_span("C-u"),
        Span::raw(" clear  "),
        key_span("Esc"),
        Span::raw(" cancel"),
    ]));
    lines.push(Line::from(Span::styled(
        "Saved as a live edit of the changed keys; applies at the next attempt.",
        Style::new().fg(Color::DarkGray),
    )));
    let rect = centered(area, 76, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(popup_block(&format!("Retry policy · {}", form.destination)))
            .wrap(Wrap { trim: false }),
        rect,
    );
}

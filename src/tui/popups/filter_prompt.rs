//! The filter prompt (`/`): the input line, its error, and the syntax.

use crate::tui::app::FilterTarget;
use crate::tui::theme::{key_span, popup_block};
use crate::tui::{dest_list, filter};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

pub fn draw(frame: &mut Frame, area: Rect, input: &str, error: Option<&str>, target: FilterTarget) {
    let (title, syntax) = match target {
        FilterTarget::Events => ("Filter events", filter::SYNTAX),
        FilterTarget::Destinations => ("Filter destinations", dest_list::SYNTAX),
    };
    let height = 4 + syntax.len() as u16;
    let width = syntax.iter().map(|(e, _)| e.len()).max().unwrap_or(0) + 1;
    let popup_width = area.width.min(90);
    let rect = Rect::new(
        area.x + (area.width - popup_width) / 2,
        area.y + area.height.saturating_sub(height + 1),
        popup_width,
        height,
    );
    let mut lines = vec![
        Line::from(vec![
            key_span("/"),
            Span::raw(input.to_string()),
            Span::styled("█", Style::new().fg(Color::Cyan)),
        ]),
        match error {
            Some(e) => Line::from(Span::styled(e.to_string(), Style::new().fg(Color::Red))),
            None => Line::from(Span::styled(
                "Enter apply · Esc cancel · C-u clear",
                Style::new().fg(Color::DarkGray),
            )),
        },
    ];
    for (example, meaning) in syntax {
        lines.push(Line::from(vec![
            Span::styled(
                format!("  {example:<width$}"),
                Style::new().fg(Color::Yellow),
            ),
            Span::styled(meaning.to_string(), Style::new().fg(Color::Gray)),
        ]));
    }
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(popup_block(title)), rect);
}

//! Confirmation of a bulk retry or a mute, before anything is sent.

use crate::tui::app::{plural, Confirm};
use crate::tui::layout::centered;
use crate::tui::theme::{key_span, popup_block};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(frame: &mut Frame, area: Rect, confirm: &Confirm) {
    let (title, lines) = match confirm {
        Confirm::BulkRetry { scope, count, .. } => {
            let question = match count {
                None => Line::from("Counting the events to retry…"),
                Some(n) => Line::from(vec![
                    Span::raw("Retry "),
                    Span::styled(plural(*n as usize, "event"), Style::new().bold()),
                    Span::raw(" now?"),
                ]),
            };
            (
                "Bulk retry",
                vec![
                    question,
                    Line::from(Span::styled(scope.clone(), Style::new().fg(Color::Gray))),
                    Line::from(Span::styled(
                        "One attempt each, at most half of each destination's concurrency.",
                        Style::new().fg(Color::Gray),
                    )),
                ],
            )
        }
        Confirm::Mute { ids } => (
            "Cancel events",
            vec![
                Line::from(vec![
                    Span::raw("Cancel (mute) "),
                    Span::styled(plural(ids.len(), "event"), Style::new().bold()),
                    Span::raw("?"),
                ]),
                Line::from(Span::styled(
                    "Their automatic retries stop; manual retry still works.",
                    Style::new().fg(Color::Gray),
                )),
            ],
        ),
    };
    let mut lines = lines;
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        key_span("y"),
        Span::raw("/"),
        key_span("Enter"),
        Span::raw(" confirm   "),
        key_span("n"),
        Span::raw("/"),
        key_span("Esc"),
        Span::raw(" back"),
    ]));
    let width = lines.iter().map(|l| l.width() as u16).max().unwrap_or(30) + 4;
    let rect = centered(area, width.max(40), lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(popup_block(title))
            .wrap(Wrap { trim: true }),
        rect,
    );
}

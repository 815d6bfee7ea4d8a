//! Confirmation of a bulk retry, a mute, a resend or a destination's deletion, before
//! anything is sent.

use crate::config::ConfigSource;
use crate::engine::DestinationSource;
use crate::tui::app::{plural, resend_question, App, Confirm};
use crate::tui::layout::centered;
use crate::tui::theme::{key_span, popup_block};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

/// The keys line: what confirming does, and backing out.
fn keys_line(confirm: &Confirm) -> Line<'static> {
    let back = [
        key_span("n"),
        Span::raw("/"),
        key_span("Esc"),
        Span::raw(" back"),
    ];
    match confirm {
        Confirm::DeleteDestination {
            source: DestinationSource::File,
            ..
        } => Line::from(back.to_vec()),
        Confirm::Resend { .. } => {
            let mut spans = vec![key_span("y"), Span::raw(" resend   ")];
            spans.extend([
                key_span("n"),
                Span::raw("/"),
                key_span("Enter"),
                Span::raw("/"),
                key_span("Esc"),
                Span::raw(" back"),
            ]);
            Line::from(spans)
        }
        Confirm::DeleteDestination { draining, .. } => {
            let mut spans = vec![key_span("y"), Span::raw(" delete now   ")];
            if !draining {
                spans.extend([key_span("d"), Span::raw(" drain, then delete   ")]);
            }
            spans.extend(back);
            Line::from(spans)
        }
        _ => {
            let mut spans = vec![
                key_span("y"),
                Span::raw("/"),
                key_span("Enter"),
                Span::raw(" confirm   "),
            ];
            spans.extend(back);
            Line::from(spans)
        }
    }
}

fn delete_lines(
    app: &App,
    id: &str,
    owed: u64,
    source: DestinationSource,
    draining: bool,
) -> Vec<Line<'static>> {
    let gray = Style::new().fg(Color::Gray);
    if source == DestinationSource::File {
        let file = match (&app.info.attached, &app.info.config_source) {
            (None, ConfigSource::File(path)) => path.display().to_string(),
            _ => "the daemon's config file".to_string(),
        };
        return vec![
            Line::from(vec![
                Span::styled(id.to_string(), Style::new().bold()),
                Span::raw(" is defined in the config file."),
            ]),
            Line::from(Span::styled(
                format!("Remove its [[destinations]] table from {file} and restart;"),
                gray,
            )),
            Line::from(Span::styled("the API refuses to delete it (409).", gray)),
        ];
    }
    let mut lines = vec![Line::from(vec![
        Span::raw("Delete "),
        Span::styled(id.to_string(), Style::new().bold()),
        Span::raw("?"),
    ])];
    lines.push(Line::from(vec![
        Span::raw("y cancels its "),
        Span::styled(
            plural(owed as usize, "owed event"),
            Style::new()
                .fg(if owed > 0 { Color::Yellow } else { Color::Gray })
                .bold(),
        ),
        Span::raw(" (pending + retrying)."),
    ]));
    lines.push(Line::from(Span::styled(
        "They stay readable, with their history, for the retention period.",
        gray,
    )));
    if draining {
        lines.push(Line::from(Span::styled(
            "It is draining already: it goes once it owes nothing.",
            gray,
        )));
    } else {
        lines.push(Line::from(Span::styled(
            "d drains instead: no new events; deleted once the owed ones finish.",
            gray,
        )));
    }
    lines
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect, confirm: &Confirm) {
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
        Confirm::Resend { ids, delivered } => {
            let mut lines = vec![
                Line::from(Span::styled(
                    resend_question(delivered),
                    Style::new().bold(),
                )),
                Line::from(Span::styled(
                    if delivered.len() == 1 {
                        "The receiver gets it a second time; the attempt is recorded as a resend."
                    } else {
                        "The receiver gets them a second time; the attempt is recorded as a resend."
                    },
                    Style::new().fg(Color::Gray),
                )),
            ];
            if ids.len() > delivered.len() {
                lines.push(Line::from(Span::styled(
                    format!(
                        "The other {} are requeued as usual.",
                        plural(ids.len() - delivered.len(), "event")
                    ),
                    Style::new().fg(Color::Gray),
                )));
            }
            let title = if delivered.len() == 1 {
                "Resend delivered event"
            } else {
                "Resend delivered events"
            };
            (title, lines)
        }
        Confirm::DeleteDestination {
            id,
            owed,
            source,
            draining,
        } => (
            "Delete destination",
            delete_lines(app, id, *owed, *source, *draining),
        ),
    };
    let mut lines = lines;
    lines.push(Line::from(""));
    lines.push(keys_line(confirm));
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

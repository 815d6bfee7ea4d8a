//! A bulk retry job's progress, while it runs, while a cancelled one
//! finishes the attempts it had running, and after.

use crate::engine::JobState;
use crate::tui::app::{job_summary, App};
use crate::tui::layout::centered;
use crate::tui::theme::{key_span, popup_block};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Clear, Gauge, Paragraph};
use ratatui::Frame;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let rect = centered(area, 64, 8);
    frame.render_widget(Clear, rect);
    let block = popup_block("Bulk retry");
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [status, gauge, _, hint] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let (text, ratio, label) = match &app.bulk {
        None => (Text::from("starting…"), 0.0, "0%".to_string()),
        Some(job) => {
            let ratio = if job.total == 0 {
                1.0
            } else {
                (job.done as f64 / job.total as f64).clamp(0.0, 1.0)
            };
            let mut text = Text::from(job_summary(job));
            if job.state == JobState::Cancelled && !job.finished {
                text.push_line(Line::from(Span::styled(
                    "the attempts running when it was cancelled finish and count…",
                    Style::new().fg(Color::DarkGray),
                )));
            }
            (text, ratio, format!("{}/{}", job.done, job.total))
        }
    };
    frame.render_widget(Paragraph::new(text), status);
    frame.render_widget(
        Gauge::default()
            .gauge_style(Style::new().fg(Color::Cyan).bg(Color::DarkGray))
            .ratio(ratio)
            .label(label),
        gauge,
    );
    let cancellable = app.bulk_running().is_some() || app.bulk.is_none();
    let running = app.bulk_following().is_some() || app.bulk.is_none();
    let mut spans = Vec::new();
    if cancellable && !app.info.read_only {
        spans.extend([key_span("x"), Span::raw(" cancel the job   ")]);
    }
    spans.extend([
        key_span("Esc"),
        Span::raw(if running {
            " hide (it keeps running)"
        } else {
            " close"
        }),
    ]);
    frame.render_widget(Paragraph::new(Line::from(spans)), hint);
}

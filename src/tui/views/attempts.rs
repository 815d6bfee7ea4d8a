//! Pane 3: the selected event's attempts, newest first.

use crate::tui::app::App;
use crate::tui::keymap::Pane;
use crate::tui::text::{last_result, short_id};
use crate::tui::theme::{highlight, pane_block, status_color};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Span;
use ratatui::widgets::{Cell, HighlightSpacing, Paragraph, Row, Table, TableState};
use ratatui::Frame;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Pane::Attempts;
    let detail = app.selected_detail();
    let title = match app.selected_event {
        Some(id) => format!(" 3 Attempts · {} ", short_id(&id.to_string(), true)),
        None => " 3 Attempts ".to_string(),
    };
    let list = app.selected_attempts();
    let rows: Vec<Row> = list
        .iter()
        .map(|a| {
            Row::new(vec![
                Cell::from(a.n.to_string()),
                Cell::from(a.at.format("%H:%M:%S").to_string()),
                Cell::from(a.trigger.to_string()),
                Cell::from(Span::styled(
                    last_result(a.status, a.error.as_deref()),
                    Style::new().fg(status_color(a.status, a.error.as_deref())),
                )),
                Cell::from(format!("{} ms", a.duration_ms)),
                Cell::from(a.decision.clone()),
            ])
        })
        .collect();
    let empty = rows.is_empty();
    let widths = [
        Constraint::Length(3),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(12),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths)
        .header(
            Row::new(vec![
                "#", "TIME", "TRIGGER", "RESULT", "LATENCY", "DECISION",
            ])
            .style(Style::new().fg(Color::Gray).bold()),
        )
        .block(pane_block(title, focused))
        .row_highlight_style(highlight(focused))
        .highlight_symbol("▸ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected((!empty).then_some(app.attempt_index));
    frame.render_stateful_widget(table, area, &mut state);
    if empty && area.height > 3 {
        let text = match (app.selected_event, detail) {
            (None, _) => "no event selected",
            (Some(_), None) => "loading…",
            (Some(_), Some(_)) => "no attempts yet",
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, Style::new().fg(Color::DarkGray))),
            Rect::new(area.x + 2, area.y + 2, area.width.saturating_sub(4), 1),
        );
    }
}

//! Help (`?`): every binding by scope from the key table, the filter syntax, notes.

use crate::tui::app::App;
use crate::tui::keymap;
use crate::tui::layout::centered;
use crate::tui::theme::popup_block;
use crate::tui::{dest_list, filter};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

pub fn lines(app: &App) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for (scope, bindings) in keymap::help_sections(app.info.read_only) {
        lines.push(Line::from(Span::styled(
            scope.title(),
            Style::new().fg(Color::Cyan).bold(),
        )));
        for b in bindings {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<9}", b.label), Style::new().fg(Color::Yellow)),
                Span::raw(b.description),
            ]));
        }
        lines.push(Line::from(""));
    }
    lines.push(Line::from(Span::styled(
        "Filter events (/ in panes 2 and 3), terms combine",
        Style::new().fg(Color::Cyan).bold(),
    )));
    for (example, meaning) in filter::SYNTAX {
        lines.push(Line::from(vec![
            Span::styled(format!("  {example:<19}"), Style::new().fg(Color::Yellow)),
            Span::raw(*meaning),
        ]));
    }
    for text in [
        "  state:, topic: and label: are asked of the engine, over all events.",
        "  status: and free text filter the loaded page (100 events) only;",
        "  with them, R retries exactly the rows shown.",
    ] {
        lines.push(Line::from(Span::styled(text, Style::new().fg(Color::Gray))));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Filter destinations (/ in pane 1), terms combine",
        Style::new().fg(Color::Cyan).bold(),
    )));
    for (example, meaning) in dest_list::SYNTAX {
        lines.push(Line::from(vec![
            Span::styled(format!("  {example:<19}"), Style::new().fg(Color::Yellow)),
            Span::raw(*meaning),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Notes",
        Style::new().fg(Color::Cyan).bold(),
    )));
    for text in [
        "  Events are newest first; at the top the selection follows new events;",
        "  paging past the end loads the next page.",
        "  OK 5m and DELIVERIES (a bar a minute) come from the engine's minute statistics,",
        "  kept 24 h: what happened before this screen opened shows too.",
        "  Space marks the selected event and moves down, to mark a run quickly.",
        "  Policy edits are live edits: stored, and applied at the next attempt.",
    ] {
        lines.push(Line::from(Span::styled(text, Style::new().fg(Color::Gray))));
    }
    if app.info.read_only {
        lines.push(Line::from(Span::styled(
            "  --read-only: every action that changes state is off.",
            Style::new().fg(Color::Magenta),
        )));
    }
    lines
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect, scroll: u16) {
    let rect = centered(area, area.width.saturating_sub(4).min(100), area.height - 2);
    let lines = lines(app);
    let inner_height = rect.height.saturating_sub(2) as usize;
    let max_scroll = lines.len().saturating_sub(inner_height) as u16;
    let scroll = scroll.min(max_scroll);
    frame.render_widget(Clear, rect);
    let title = if max_scroll > 0 {
        "Help · j/k scroll · Esc close"
    } else {
        "Help · Esc close"
    };
    frame.render_widget(
        Paragraph::new(lines)
            .block(popup_block(title))
            .scroll((scroll, 0)),
        rect,
    );
}

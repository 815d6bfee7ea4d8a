//! Pane 2: the loaded page of events, filtered, for one destination or all.

use crate::model::EventRecord;
use crate::tui::app::App;
use crate::tui::keymap::Pane;
use crate::tui::text::{age, last_result, short_id, Schedule};
use crate::tui::theme::{highlight, pane_block, state_color, status_color};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Span;
use ratatui::widgets::{Cell, HighlightSpacing, Paragraph, Row, Table, TableState};
use ratatui::Frame;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Pane::Events;
    let wide = area.width >= 110;
    let show_dest = app.selected_destination_id().is_none();
    let shown = app.shown_events();
    let mut title = format!(
        " 2 Events · {}",
        app.selected_destination_id().unwrap_or("all")
    );
    if !app.filter_text.is_empty() {
        title.push_str(&format!(" · /{}", app.filter_text));
    }
    if app.page_number() > 1 {
        title.push_str(&format!(" · page {}", app.page_number()));
    }
    if !app.marks.is_empty() {
        title.push_str(&format!(" · {} marked", app.marks.len()));
    }
    if app.events_next.is_some() {
        title.push_str(" · more ↓");
    }
    title.push(' ');
    // Only the rows in view are formatted (a page is 100 events, a pane
    // shows a fifth of them): the ones the table itself would show with its
    // offset at 0, the selection scrolled to the bottom row once it is past
    // the pane, so what is drawn is the same.
    let (start, end) = visible_rows(
        shown.len(),
        app.event_index,
        area.height.saturating_sub(3) as usize,
    );
    let rows: Vec<Row> = shown[start..end]
        .iter()
        .map(|e| event_row(app, e, wide, show_dest))
        .collect();
    let mut header = vec!["", "ID", "TOPIC"];
    if show_dest {
        header.push("DEST");
    }
    header.extend(["STATE", "ATT", "LAST", "NEXT", "AGE"]);
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(if wide { 26 } else { 8 }),
        Constraint::Fill(1),
    ];
    if show_dest {
        widths.push(Constraint::Length(if wide { 14 } else { 10 }));
    }
    widths.extend([
        Constraint::Length(9),
        Constraint::Length(3),
        Constraint::Length(if wide { 12 } else { 5 }),
        // `held (disabled)`, the longest schedule.
        Constraint::Length(15),
        Constraint::Length(4),
    ]);
    let empty = shown.is_empty();
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().fg(Color::Gray).bold()))
        .block(pane_block(title, focused))
        .row_highlight_style(highlight(focused))
        .highlight_symbol("▸ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default()
        .with_selected((!empty).then_some(app.event_index.saturating_sub(start)));
    frame.render_stateful_widget(table, area, &mut state);
    if empty {
        let text = if app.filter.is_empty() {
            "no events yet"
        } else {
            "no events match the filter (Esc clears it)"
        };
        let inner = Rect::new(
            area.x + 2,
            area.y + 2,
            area.width.saturating_sub(4),
            1.min(area.height.saturating_sub(3)),
        );
        frame.render_widget(
            Paragraph::new(Span::styled(text, Style::new().fg(Color::DarkGray))),
            inner,
        );
    }
}

/// The rows `[start, end)` of `len` that a table `height` rows tall shows
/// with `selected` in view, as ratatui's `Table` picks them from offset 0
/// (every row one line high): the first `height`, or the `height` ending at
/// the selection once it is past them (a selection past the last row counts
/// as the last).
fn visible_rows(len: usize, selected: usize, height: usize) -> (usize, usize) {
    let Some(last) = len.checked_sub(1) else {
        return (0, 0);
    };
    let end = height.min(len).max(selected.min(last) + 1);
    (end.saturating_sub(height), end)
}

fn event_row<'a>(app: &App, e: &'a EventRecord, wide: bool, show_dest: bool) -> Row<'a> {
    let mark = if app.marks.contains(&e.id) {
        "●"
    } else {
        " "
    };
    let mut cells = vec![
        Cell::from(Span::styled(mark, Style::new().fg(Color::Magenta))),
        Cell::from(short_id(&e.id.to_string(), wide)),
        Cell::from(e.topic.clone()),
    ];
    if show_dest {
        cells.push(Cell::from(e.destination.clone()));
    }
    let last = if wide {
        last_result(e.last_status, e.last_error.as_deref())
    } else {
        match (e.last_status, &e.last_error) {
            (Some(s), _) => s.to_string(),
            (None, Some(_)) => "err".into(),
            _ => "—".into(),
        }
    };
    cells.extend([
        Cell::from(Span::styled(
            e.state.as_str(),
            Style::new().fg(state_color(e.state)).bold(),
        )),
        Cell::from(e.attempt_count.to_string()),
        Cell::from(Span::styled(
            last,
            Style::new().fg(status_color(e.last_status, e.last_error.as_deref())),
        )),
        Cell::from(schedule_text(app, e)),
        Cell::from(age(e.created_at, app.now)),
    ]);
    Row::new(cells)
}

/// The NEXT column: when the event is attempted next, or why not.
fn schedule_text(app: &App, e: &EventRecord) -> String {
    let destination = app.dest_list.find(&app.destinations, &e.destination);
    Schedule::of(e, destination, None, app.now).text(app.now)
}

#[cfg(test)]
mod tests {
    use super::visible_rows;

    #[test]
    fn visible_rows_follow_the_selection_as_the_table_scrolls() {
        // Fits: everything.
        assert_eq!(visible_rows(5, 2, 10), (0, 5));
        // Selection in the first screenful: the first screenful.
        assert_eq!(visible_rows(100, 0, 23), (0, 23));
        assert_eq!(visible_rows(100, 22, 23), (0, 23));
        // Past it: the selection is the bottom row.
        assert_eq!(visible_rows(100, 23, 23), (1, 24));
        assert_eq!(visible_rows(100, 99, 23), (77, 100));
        // A selection past the last row scrolls as if on the last.
        assert_eq!(visible_rows(100, 250, 23), (77, 100));
        assert_eq!(visible_rows(0, 0, 23), (0, 0));
        // No room: only the selected row's place, nothing drawn.
        assert_eq!(visible_rows(100, 5, 0), (6, 6));
    }
}

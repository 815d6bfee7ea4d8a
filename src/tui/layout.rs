//! Where each pane goes at a given terminal size. Shared by drawing and by key
//! handling (paging keys move by the rows the events pane shows), so it depends
//! on neither: it takes sizes and counts, not the app.

use ratatui::layout::{Constraint, Layout, Rect};

pub const MIN_WIDTH: u16 = 70;
pub const MIN_HEIGHT: u16 = 20;
/// From this width the attempts pane sits beside the events pane (and the
/// destinations pane shows full-width columns).
pub const WIDE: u16 = 140;

/// The screen split into panes.
pub struct Areas {
    pub header: Rect,
    pub body: Rect,
    pub destinations: Rect,
    pub events: Rect,
    pub attempts: Rect,
    pub footer: Rect,
}

/// The panes for a screen of `area` with `destinations` destinations: the
/// destinations pane is as tall as its rows, up to two fifths of the body and
/// at least five lines.
pub fn areas(area: Rect, destinations: usize) -> Areas {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let wanted = destinations as u16 + 1 + 3;
    let dest_height = wanted.min(body.height * 2 / 5).max(5);
    let [destinations, rest] =
        Layout::vertical([Constraint::Length(dest_height), Constraint::Min(0)]).areas(body);
    let (events, attempts) = if area.width >= WIDE {
        let [e, a] = Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
            .areas(rest);
        (e, a)
    } else {
        let attempts_height = (rest.height / 3).clamp(5, 10);
        let [e, a] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(attempts_height)]).areas(rest);
        (e, a)
    };
    Areas {
        header,
        body,
        destinations,
        events,
        attempts,
        footer,
    }
}

/// Event rows visible at this size (for paging keys): the pane less its
/// borders and header row.
pub fn events_rows(area: Rect, destinations: usize) -> usize {
    areas(area, destinations).events.height.saturating_sub(3) as usize
}

/// A `width`×`height` rectangle in the middle of `area`, clipped to it.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

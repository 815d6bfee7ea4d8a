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

/// Rows the destinations pane shows at this size (the `all` row included):
/// the pane less its borders and header row.
pub fn destination_rows(area: Rect, destinations: usize) -> usize {
    areas(area, destinations)
        .destinations
        .height
        .saturating_sub(3) as usize
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_sit_beside_events_only_when_wide() {
        let narrow = areas(Rect::new(0, 0, 80, 24), 4);
        assert_eq!(narrow.events.x, narrow.attempts.x);
        assert!(narrow.attempts.y > narrow.events.y);
        let wide = areas(Rect::new(0, 0, WIDE, 48), 4);
        assert_eq!(wide.events.y, wide.attempts.y);
        assert!(wide.attempts.x > wide.events.x);
    }

    #[test]
    fn destinations_pane_grows_with_destinations_up_to_two_fifths() {
        let area = Rect::new(0, 0, 80, 40);
        // Header 2 and footer 1 leave a body of 37 lines.
        assert_eq!(areas(area, 0).destinations.height, 5);
        assert_eq!(areas(area, 4).destinations.height, 8);
        assert_eq!(areas(area, 100).destinations.height, 37 * 2 / 5);
    }

    #[test]
    fn events_rows_leave_out_borders_and_the_header_row() {
        let area = Rect::new(0, 0, 80, 40);
        assert_eq!(
            events_rows(area, 4),
            areas(area, 4).events.height as usize - 3
        );
        // More destinations, a taller destinations pane, fewer event rows.
        assert!(events_rows(area, 10) < events_rows(area, 4));
    }

    #[test]
    fn centered_is_clipped_to_the_area() {
        let area = Rect::new(10, 5, 40, 10);
        assert_eq!(centered(area, 20, 4), Rect::new(20, 8, 20, 4));
        assert_eq!(centered(area, 100, 100), area);
    }
}

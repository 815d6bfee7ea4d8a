//! Drawing: `render(&App, frame)` reads the state and never changes it. All times
//! are relative to `app.now`, so a fixture renders the same every run. This file
//! only places things: each pane is drawn by its module in [`views`](super::views),
//! each popup by its module in [`popups`](super::popups), over the panes.

use super::app::{App, Mode};
use super::layout::{self, MIN_HEIGHT, MIN_WIDTH};
use super::{popups, views};
use ratatui::Frame;

pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        views::too_small::draw(frame, area);
        return;
    }
    let a = layout::areas(area, app.dest_list.shown.len());
    views::header::draw(app, frame, a.header);
    views::footer::draw(app, frame, a.footer);
    if app.destinations.is_empty() {
        views::guide::draw(app, frame, a.body);
    } else {
        views::destinations::draw(app, frame, a.destinations);
        views::events::draw(app, frame, a.events);
        views::attempts::draw(app, frame, a.attempts);
    }
    match &app.mode {
        Mode::Normal => {}
        Mode::Filter {
            input,
            error,
            target,
        } => popups::filter_prompt::draw(frame, area, input, error.as_deref(), *target),
        Mode::Help { scroll } => popups::help::draw(app, frame, area, *scroll),
        Mode::Detail { scroll, wrap } => popups::detail::draw(app, frame, area, *scroll, *wrap),
        Mode::Destination(screen) => views::destination::draw(app, frame, a.body, screen),
        Mode::Confirm(confirm) => popups::confirm::draw(app, frame, area, confirm),
        Mode::Form(form) => popups::policy_form::draw(frame, area, form),
        Mode::NewDestination(form) => popups::destination_form::draw(frame, area, form),
        Mode::Bulk => popups::bulk::draw(app, frame, area),
        Mode::Notices(list) => popups::notices::draw(app, frame, area, list),
        Mode::Jobs(list) => popups::jobs::draw(app, frame, area, list),
    }
}

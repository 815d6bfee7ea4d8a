//! The footer: a pending prompt's keys, else the latest status message, else
//! the key hints for the focused pane.

use crate::tui::app::{App, Mode, StatusLine};
use crate::tui::keymap::{self, Binding, Command};
use crate::tui::theme::key_span;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// The hints that always stay, whatever the width: how to learn the rest and
/// how to leave.
const KEPT: [Command; 2] = [Command::Help, Command::Quit];

fn width(b: &Binding) -> usize {
    keymap::first_label(b).chars().count() + b.hint.chars().count() + 3
}

/// The hints shown in `room` columns: `? help` and `q quit` always, the others
/// in priority order (table order) while they fit, all in table order.
pub fn fitting_hints(hints: Vec<&'static Binding>, room: usize) -> Vec<&'static Binding> {
    let kept: usize = hints
        .iter()
        .filter(|b| KEPT.contains(&b.command))
        .map(|b| width(b))
        .sum();
    let mut room = room.saturating_sub(kept);
    hints
        .into_iter()
        .filter(|b| {
            if KEPT.contains(&b.command) {
                return true;
            }
            let w = width(b);
            if w > room {
                return false;
            }
            room -= w;
            true
        })
        .collect()
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let line = match app.status_line() {
        Some(StatusLine::Prompt(text)) => Line::from(Span::styled(
            format!(" {text}"),
            Style::new().fg(Color::Yellow).bold(),
        )),
        Some(StatusLine::Greeting(text)) => Line::from(Span::styled(
            format!(" {text}"),
            Style::new().fg(Color::Yellow).bold(),
        )),
        Some(StatusLine::Message(status)) => Line::from(Span::styled(
            format!(" {}", status.text),
            if status.error {
                Style::new().fg(Color::Red).bold()
            } else {
                Style::new().fg(Color::Green)
            },
        )),
        None if matches!(app.mode, Mode::Destination(_)) => Line::from(vec![
            Span::raw(" "),
            key_span("Esc"),
            Span::styled(" back to the list  ", Style::new().fg(Color::Gray)),
            Span::styled(
                "charts of the engine's minute statistics, read every few seconds",
                Style::new().fg(Color::DarkGray),
            ),
        ]),
        None => {
            let hints = keymap::footer_bindings(app.focus, app.info.read_only);
            let mut spans = vec![Span::raw(" ")];
            for binding in fitting_hints(hints, (area.width as usize).saturating_sub(1)) {
                spans.push(key_span(keymap::first_label(binding)));
                spans.push(Span::styled(
                    format!(" {}  ", binding.hint),
                    Style::new().fg(Color::Gray),
                ));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::keymap::Pane;

    #[test]
    fn help_and_quit_stay_at_any_width() {
        for pane in Pane::ALL {
            for room in [20, 40, 60, 79, 200] {
                let shown = fitting_hints(keymap::footer_bindings(pane, false), room);
                for command in KEPT {
                    assert!(
                        shown.iter().any(|b| b.command == command),
                        "{command:?} at {room} in {pane:?}"
                    );
                }
                let used: usize = shown.iter().map(|b| width(b)).sum();
                assert!(used <= room.max(12), "{used} > {room}");
            }
        }
    }
}

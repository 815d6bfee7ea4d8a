//! The footer: the latest status message, or the key hints for the focused pane.

use crate::tui::app::App;
use crate::tui::keymap;
use crate::tui::theme::key_span;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let line = if let Some(status) = app.visible_status() {
        Line::from(Span::styled(
            format!(" {}", status.text),
            if status.error {
                Style::new().fg(Color::Red).bold()
            } else {
                Style::new().fg(Color::Green)
            },
        ))
    } else {
        // Help always shows, last; the rest in table order while they fit.
        let hints = keymap::footer_bindings(app.focus, app.info.read_only);
        let (help, rest): (Vec<_>, Vec<_>) = hints
            .into_iter()
            .partition(|b| b.command == keymap::Command::Help);
        let width = |b: &keymap::Binding| {
            keymap::first_label(b).chars().count() + b.hint.chars().count() + 3
        };
        let mut room =
            (area.width as usize).saturating_sub(1 + help.iter().map(|b| width(b)).sum::<usize>());
        let mut spans = vec![Span::raw(" ")];
        for binding in rest.into_iter().chain(help) {
            let w = width(binding);
            if binding.command != keymap::Command::Help {
                if w > room {
                    continue;
                }
                room -= w;
            }
            spans.push(key_span(keymap::first_label(binding)));
            spans.push(Span::styled(
                format!(" {}  ", binding.hint),
                Style::new().fg(Color::Gray),
            ));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}

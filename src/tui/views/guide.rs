//! First run: no destinations, so the body explains how to add one.

use crate::config::ConfigSource;
use crate::tui::app::App;
use crate::tui::theme::pane_block;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let mut lines = vec![
        Line::from(Span::styled(
            "No destinations yet",
            Style::new().fg(Color::Cyan).bold(),
        )),
        Line::from(""),
        Line::from(format!(
            "hookwatch is running and its HTTP API listens on {},",
            app.info.api_url()
        )),
        Line::from("but there is nowhere to deliver to. Add a destination to a config file:"),
        Line::from(""),
    ];
    for text in [
        "  [[destinations]]",
        "  id = \"orders\"",
        "  url = \"https://example.com/hooks\"",
        "  topics = [\"order.*\"]",
    ] {
        lines.push(Line::from(Span::styled(
            text,
            Style::new().fg(Color::Yellow),
        )));
    }
    lines.push(Line::from(""));
    match &app.info.config_source {
        ConfigSource::Defaults { searched } => {
            lines.push(Line::from(
                "then restart hookwatch. No config file was found; it looked in:",
            ));
            for path in searched {
                lines.push(Line::from(format!("  {}", path.display())));
            }
        }
        ConfigSource::File(path) => {
            lines.push(Line::from(format!(
                "then restart hookwatch. The config file {} has no [[destinations]].",
                path.display()
            )));
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::from(
        "Or pass a file with --config PATH (assets/ has one example per retry style),",
    ));
    lines.push(Line::from("or look around first with: hookwatch --demo"));
    let block = pane_block(" Getting started ".into(), true);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

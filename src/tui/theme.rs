//! Colours and frames shared by the panes and popups.

use crate::model::EventState;
use crate::model::Health;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, BorderType, Borders};

pub fn state_color(state: EventState) -> Color {
    match state {
        EventState::Pending => Color::Cyan,
        EventState::Retrying => Color::Yellow,
        EventState::Delivered => Color::Green,
        EventState::Failed => Color::Red,
        EventState::Cancelled => Color::Magenta,
        EventState::Skipped => Color::DarkGray,
    }
}

pub fn health_color(health: Health) -> Color {
    match health {
        Health::Healthy => Color::Green,
        Health::InRetry => Color::Yellow,
        Health::Degraded => Color::Magenta,
        Health::Disabled => Color::Red,
        Health::Paused => Color::Blue,
    }
}

pub fn status_color(status: Option<u16>, error: Option<&str>) -> Color {
    match status {
        Some(200..=299) => Color::Green,
        Some(429) | Some(500..=599) => Color::Yellow,
        Some(_) => Color::Red,
        None if error.is_some() => Color::Red,
        None => Color::Gray,
    }
}

pub fn pane_block(title: String, focused: bool) -> Block<'static> {
    let style = if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    Block::new()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(style)
        .title(Span::styled(
            title,
            if focused {
                Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
            } else {
                Style::new().fg(Color::Gray)
            },
        ))
}

pub fn highlight(focused: bool) -> Style {
    if focused {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new()
            .add_modifier(Modifier::BOLD)
            .bg(Color::DarkGray)
    }
}

pub fn popup_block(title: &str) -> Block<'static> {
    Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(Color::Cyan))
        .title(Span::styled(
            format!(" {title} "),
            Style::new().add_modifier(Modifier::BOLD),
        ))
}

pub fn key_span(label: &str) -> Span<'static> {
    Span::styled(
        label.to_string(),
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
    )
}

/// A popup's key hints: each key, then what it does in grey.
pub fn key_hints(pairs: &[(&str, &str)]) -> Vec<Span<'static>> {
    let mut spans = Vec::with_capacity(pairs.len() * 2);
    for (key, what) in pairs {
        spans.push(key_span(key));
        spans.push(Span::styled(
            format!(" {what}  "),
            Style::new().fg(Color::Gray),
        ));
    }
    spans
}

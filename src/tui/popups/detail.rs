//! Event detail (Enter): the request as sent, the payload (credentials masked),
//! and the response of the selected attempt.

use crate::mask::MASK;
use crate::tui::app::App;
use crate::tui::layout::centered;
use crate::tui::text::{age, last_result, next_attempt, pretty_body};
use crate::tui::theme::{popup_block, state_color, status_color};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

pub fn lines(app: &App) -> Vec<Line<'static>> {
    let Some(detail) = app.selected_detail() else {
        return vec![Line::from("loading…")];
    };
    let e = &detail.event;
    let dest = app.destinations.iter().find(|d| d.id == e.destination);
    let section = |t: &str| {
        Line::from(Span::styled(
            t.to_string(),
            Style::new().fg(Color::Cyan).bold(),
        ))
    };
    let kv = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("  {k}: "), Style::new().fg(Color::Gray)),
            Span::raw(v),
        ])
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(e.id.to_string(), Style::new().bold()),
            Span::raw(format!("  → {}", e.destination)),
        ]),
        Line::from(vec![
            Span::raw(format!("topic {}  state ", e.topic)),
            Span::styled(
                e.state.as_str(),
                Style::new().fg(state_color(e.state)).bold(),
            ),
            Span::raw(format!(
                "  attempts {}  age {}{}",
                e.attempt_count,
                age(e.created_at, app.now),
                match e.next_trigger {
                    // A finished event has nothing next.
                    None => String::new(),
                    Some(trigger) => format!(
                        "  next {} ({trigger})",
                        next_attempt(e.next_attempt_at, app.now)
                    ),
                }
            )),
        ]),
    ];
    if let Some(reason) = &e.reason {
        lines.push(Line::from(format!("reason {reason}")));
    }
    if let Some(dup) = &e.duplicate_of {
        lines.push(Line::from(format!("duplicate of {dup}")));
    }
    lines.push(Line::from(""));
    let attempt = app.selected_attempts().get(app.attempt_index).copied();
    lines.push(section("Request (what hookwatch sends)"));
    let url = dest.map_or("?".to_string(), |d| d.url.clone());
    lines.push(Line::from(format!("  POST {url}")));
    if let Some(ct) = &e.content_type {
        lines.push(kv("content-type", ct.clone()));
    }
    lines.push(kv("webhook-id", e.id.to_string()));
    lines.push(kv(
        "webhook-timestamp",
        attempt.map_or("(time of the attempt)".to_string(), |a| {
            a.at.timestamp().to_string()
        }),
    ));
    if let Some(d) = dest {
        if !d.secrets.is_empty() {
            let sigs: Vec<String> = d.secrets.iter().map(|_| format!("v1,{MASK}")).collect();
            lines.push(kv("webhook-signature", sigs.join(" ")));
        }
    }
    lines.push(kv(
        "hookwatch-attempt",
        attempt.map_or((e.attempt_count + 1).to_string(), |a| a.n.to_string()),
    ));
    if let Some(d) = dest {
        for (name, value) in &d.headers {
            lines.push(kv(name, value.clone()));
        }
    }
    lines.push(Line::from(""));
    lines.push(section(&format!("Payload ({} bytes)", e.payload_bytes)));
    match (&detail.payload, &detail.payload_base64) {
        (Some(text), _) => {
            for l in pretty_body(text) {
                lines.push(Line::from(format!("  {l}")));
            }
        }
        (None, Some(b64)) => lines.push(Line::from(format!("  (binary, base64) {b64}"))),
        (None, None) => lines.push(Line::from("  (empty)")),
    }
    lines.push(Line::from(""));
    match attempt {
        None => lines.push(section("Response: no attempt yet")),
        Some(a) => {
            lines.push(section(&format!(
                "Response of attempt {} ({}, {} UTC)",
                a.n,
                a.trigger,
                a.at.format("%Y-%m-%d %H:%M:%S")
            )));
            lines.push(Line::from(vec![
                Span::styled("  result: ", Style::new().fg(Color::Gray)),
                Span::styled(
                    last_result(a.status, a.error.as_deref()),
                    Style::new().fg(status_color(a.status, a.error.as_deref())),
                ),
                Span::raw(format!("  in {} ms", a.duration_ms)),
            ]));
            lines.push(kv("decision", a.decision.clone()));
            if a.response_excerpt.is_empty() {
                lines.push(Line::from("  (no body)"));
            } else {
                for l in pretty_body(&a.response_excerpt) {
                    lines.push(Line::from(format!("  {l}")));
                }
            }
        }
    }
    lines
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect, scroll: u16) {
    let rect = centered(
        area,
        area.width.saturating_sub(6).max(40),
        area.height.saturating_sub(2),
    );
    let lines = lines(app);
    let inner_height = rect.height.saturating_sub(2) as usize;
    let max_scroll = lines.len().saturating_sub(inner_height) as u16;
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(popup_block("Event detail · j/k scroll · Esc close"))
            .wrap(Wrap { trim: false })
            .scroll((scroll.min(max_scroll), 0)),
        rect,
    );
}

//! The two header lines: rates, totals, destination health, modes, and where it
//! listens and stores, or which running hookwatch it is attached to.

use crate::engine::JobState;
use crate::tui::app::App;
use crate::tui::text::tail;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    // Summed once per read (in the destinations view model), not per frame.
    let all = &app.dest_list.totals;
    let totals = &all.counts;
    let (in_retry, disabled) = (all.in_retry, all.disabled);
    let mut first = vec![
        Span::styled(
            " hookwatch ",
            Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        ),
        Span::raw("  in "),
        Span::styled(format!("{:.1}/s", app.rates.ingested), Style::new().bold()),
        Span::raw("  out "),
        Span::styled(format!("{:.1}/s", app.rates.delivered), Style::new().bold()),
        Span::raw("  retrying "),
        Span::styled(
            totals.retrying.to_string(),
            Style::new().fg(Color::Yellow).bold(),
        ),
        Span::raw("  failed "),
        Span::styled(
            totals.failed.to_string(),
            Style::new().fg(Color::Red).bold(),
        ),
    ];
    let mut dests = vec![Span::raw("dests: ")];
    if in_retry == 0 && disabled == 0 {
        dests.push(Span::styled("all healthy", Style::new().fg(Color::Green)));
    } else {
        dests.push(Span::styled(
            format!("{in_retry} in retry"),
            Style::new().fg(Color::Yellow),
        ));
        dests.push(Span::raw(", "));
        dests.push(Span::styled(
            format!("{disabled} disabled"),
            Style::new().fg(Color::Red),
        ));
    }
    let mut second = vec![Span::raw(" ")];
    if area.width >= 100 {
        first.push(Span::raw("  "));
        first.extend(dests);
    } else {
        second.extend(dests);
        second.push(Span::raw("  "));
    }
    if app.frozen {
        second.push(Span::styled(
            "FROZEN",
            Style::new().fg(Color::Black).bg(Color::Yellow).bold(),
        ));
        second.push(Span::raw(" "));
    }
    if app.info.read_only {
        second.push(Span::styled(
            "READ-ONLY",
            Style::new().fg(Color::Black).bg(Color::Magenta).bold(),
        ));
        second.push(Span::raw(" "));
    }
    if let Some(job) = &app.bulk {
        if job.state == JobState::Running {
            second.push(Span::styled(
                format!("bulk {}/{}", job.done, job.total),
                Style::new().fg(Color::Black).bg(Color::Cyan),
            ));
            second.push(Span::raw(" "));
        }
    }
    match &app.info.attached {
        None => {
            let used: usize = second.iter().map(|s| s.width()).sum();
            let listen = format!("listen {}  store ", app.info.listen);
            let room = (area.width as usize).saturating_sub(used + listen.chars().count());
            second.push(Span::styled(
                format!(
                    "{listen}{}",
                    tail(&app.info.store_path.display().to_string(), room)
                ),
                Style::new().fg(Color::DarkGray),
            ));
        }
        Some(attachment) => {
            if app.contact.lost {
                let reconnecting = match app.contact.last {
                    Some(last) => format!(
                        "reconnecting… (last contact {}s ago)",
                        (app.now - last).num_seconds().max(0)
                    ),
                    None => "reconnecting…".to_string(),
                };
                second.push(Span::styled(
                    reconnecting,
                    Style::new().fg(Color::Black).bg(Color::Yellow).bold(),
                ));
                second.push(Span::raw(" "));
            }
            let used: usize = second.iter().map(|s| s.width()).sum();
            let room = (area.width as usize).saturating_sub(used);
            // Where it is attached, shortened (to the pid alone at the last)
            // when the URL does not fit.
            let candidates = match attachment.pid {
                Some(pid) => vec![
                    format!("attached to pid {pid} at {}", attachment.url),
                    format!("attached to pid {pid}"),
                    format!("pid {pid}"),
                ],
                None => vec![format!("attached to {}", attachment.url), "attached".into()],
            };
            let attached = candidates
                .iter()
                .find(|text| text.chars().count() <= room)
                .cloned()
                .unwrap_or_else(|| tail(&candidates[candidates.len() - 1], room));
            second.push(Span::styled(attached, Style::new().fg(Color::DarkGray)));
        }
    }
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        area,
    );
}

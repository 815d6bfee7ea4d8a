//! The two header lines: rates, totals, destination health, modes, and where it
//! listens and stores, or which running hookwatch it is attached to.

use crate::model::Health;
use crate::tui::app::App;
use crate::tui::dest_list::Totals;
use crate::tui::text::tail;
use crate::tui::theme::health_color;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Of the store's path, the columns the destinations leave on a narrow
/// screen (`…ookwatch.redb`).
const STORE_TAIL: usize = 12;
/// What the destinations leave on a narrow screen for the words before the
/// URL of the hookwatch attached to (the longest pid included).
const ATTACHED_TO: &str = "attached to pid 4194304 at ";

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    // Summed once per read (in the destinations view model), not per frame.
    let all = &app.dest_list.totals;
    let totals = &all.counts;
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
    if app.unacked_notices > 0 {
        // Nothing when there are none: the line stays for what is going on.
        first.push(Span::raw("  "));
        first.push(Span::styled(
            format!(
                "! {}",
                crate::tui::app::plural(app.unacked_notices as usize, "notice")
            ),
            Style::new().fg(Color::Black).bg(Color::Yellow).bold(),
        ));
    }
    let mut modes = Vec::new();
    if let Some(usage) = app.store_budget.filter(|u| u.full) {
        // New events are refused: the first thing an operator must see.
        modes.push(Span::styled(
            format!(
                "STORE FULL {}/{}",
                crate::store::format_bytes(usage.used_bytes),
                crate::store::format_bytes(usage.ceiling_bytes)
            ),
            Style::new().fg(Color::White).bg(Color::Red).bold(),
        ));
        modes.push(Span::raw(" "));
    }
    if app.frozen {
        modes.push(Span::styled(
            "FROZEN",
            Style::new().fg(Color::Black).bg(Color::Yellow).bold(),
        ));
        modes.push(Span::raw(" "));
    }
    if app.info.read_only {
        modes.push(Span::styled(
            "READ-ONLY",
            Style::new().fg(Color::Black).bg(Color::Magenta).bold(),
        ));
        modes.push(Span::raw(" "));
    }
    // Until the job has finished: a cancelled one's attempts still count.
    if let Some(job) = app.bulk_following() {
        modes.push(Span::styled(
            format!("bulk {}/{}", job.done, job.total),
            Style::new().fg(Color::Black).bg(Color::Cyan),
        ));
        modes.push(Span::raw(" "));
    }
    let width = area.width as usize;
    let wide = area.width >= 100;
    // On the first line the destinations take what is left of it; on the
    // second, what the modes and where it listens or is attached leave.
    let room = if wide {
        let used: usize = first.iter().map(|s| s.width()).sum();
        width.saturating_sub(used + 2)
    } else {
        let modes_width: usize = modes.iter().map(|s| s.width()).sum();
        let where_width = match &app.info.attached {
            None => {
                format!("listen {}  store ", app.info.listen)
                    .chars()
                    .count()
                    + STORE_TAIL
            }
            Some(attachment) => ATTACHED_TO.len() + attachment.url.chars().count(),
        };
        width.saturating_sub(3 + modes_width + where_width)
    };
    let dests = destinations_summary(all, room);
    let mut second = vec![Span::raw(" ")];
    if wide {
        first.push(Span::raw("  "));
        first.extend(dests);
    } else {
        second.extend(dests);
        second.push(Span::raw("  "));
    }
    second.extend(modes);
    match &app.info.attached {
        None => {
            let used: usize = second.iter().map(|s| s.width()).sum();
            let listen = format!("listen {}  store ", app.info.listen);
            let room = (area.width as usize).saturating_sub(used + listen.chars().count());
            second.push(Span::styled(
                format!("{listen}{}", tail(&app.info.store, room)),
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

/// `dests: all healthy`, or how many destinations are of each troubled
/// health, by the health enum (a disabled destination is counted once, as
/// disabled, whatever it still has in retry). In retry and disabled are always
/// said; degraded, then paused, when they fit in `room` columns.
fn destinations_summary(totals: &Totals, room: usize) -> Vec<Span<'static>> {
    let mut spans = vec![Span::raw("dests: ")];
    if totals.of(Health::Healthy) == totals.destinations() {
        spans.push(Span::styled("all healthy", Style::new().fg(Color::Green)));
        return spans;
    }
    let parts = [
        (Health::InRetry, true),
        (Health::Disabled, true),
        (Health::Degraded, false),
        (Health::Paused, false),
    ];
    let mut used = "dests: ".len();
    for (health, always) in parts {
        let n = totals.of(health);
        if n == 0 {
            continue;
        }
        let separator = if spans.len() > 1 { ", " } else { "" };
        let text = format!("{n} {}", health.as_str());
        let width = separator.len() + text.chars().count();
        if !always && used + width > room {
            // The less troubled after it would not say more than it.
            break;
        }
        used += width;
        if !separator.is_empty() {
            spans.push(Span::raw(separator));
        }
        spans.push(Span::styled(text, Style::new().fg(health_color(health))));
    }
    if spans.len() == 1 {
        // Only healthy ones and some troubled ones that did not fit.
        spans.push(Span::styled(
            "some not healthy",
            Style::new().fg(Color::Yellow),
        ));
    }
    spans
}

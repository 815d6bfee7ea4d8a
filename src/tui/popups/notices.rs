//! The operational notices (`!`): newest first, one row each (acknowledged
//! or not, when, what, which destination, what happened), the selected one
//! told in full below the list, and the keys at the bottom.

use crate::model::{Notice, NoticeKind};
use crate::tui::app::App;
use crate::tui::notice_list::NoticeList;
use crate::tui::text::{absolute_time, age, ellipsize, ellipsize_middle, notice_type_words};
use crate::tui::theme::{key_hints, popup_block};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

/// Lines below the list telling the selected notice in full.
const DETAIL_LINES: u16 = 3;
/// The columns of a row's type (the longest, `concurrency lowered`).
const TYPE_WIDTH: usize = 19;

/// The rows of notices the popup shows at a terminal of `size` (for paging).
pub fn rows(size: (u16, u16)) -> usize {
    super::list_popup_rows(size, DETAIL_LINES)
}

fn row(notice: &Notice, app: &App, width: usize, selected: bool) -> Line<'static> {
    let dest_width = if width >= 120 { 28 } else { 14 };
    let acked = notice.is_acked();
    let (mark, mark_style) = if acked {
        ("✓", Style::new().fg(Color::DarkGray))
    } else {
        ("●", Style::new().fg(Color::Yellow).bold())
    };
    let text_style = if acked {
        Style::new().fg(Color::Gray)
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    };
    let when = format!("{:>4} ago", age(notice.at, app.now));
    let dest = ellipsize_middle(
        notice.destination.as_deref().unwrap_or("(hookwatch)"),
        dest_width,
    );
    // Selection, mark, when, type and destination, each with a space after it.
    let used = 3 + when.chars().count() + 1 + TYPE_WIDTH + 1 + dest_width + 1;
    let summary = ellipsize(&notice.summary(), width.saturating_sub(used));
    let mut line = Line::from(vec![
        Span::raw(if selected { "▸" } else { " " }),
        Span::styled(format!("{mark} "), mark_style),
        Span::styled(format!("{when} "), Style::new().fg(Color::Gray)),
        Span::styled(
            format!("{:<TYPE_WIDTH$} ", notice_type_words(notice.notice_type())),
            text_style.fg(type_color(notice)),
        ),
        Span::styled(format!("{dest:<dest_width$} "), text_style),
        Span::styled(summary, text_style),
    ]);
    if selected {
        line = line.patch_style(Style::new().add_modifier(Modifier::REVERSED));
    }
    line
}

/// Trouble red, good news green, the rest plain.
fn type_color(notice: &Notice) -> Color {
    match notice.kind {
        NoticeKind::DestinationDisabled { .. }
        | NoticeKind::InRetryTooLong { .. }
        | NoticeKind::StoreWriteFailed { .. }
        | NoticeKind::StoreFull { .. } => Color::Red,
        NoticeKind::ConcurrencyLowered { .. } => Color::Yellow,
        NoticeKind::DestinationRecovered | NoticeKind::DestinationEnabled => Color::Green,
        _ => Color::Reset,
    }
}

/// The selected notice in full: when (absolute and relative) and whether
/// acknowledged; what happened; its cause and where Enter goes.
fn selected_lines(notice: &Notice, app: &App, width: usize) -> Vec<Line<'static>> {
    let acked = match notice.acked_at {
        Some(at) => Span::styled(
            format!("acknowledged {} ago", age(at, app.now)),
            Style::new().fg(Color::Gray),
        ),
        None => Span::styled("not acknowledged", Style::new().fg(Color::Yellow).bold()),
    };
    let mut cause = format!("cause: {}", notice.cause);
    if let NoticeKind::DestinationDisabled {
        attempt: Some(attempt),
    } = notice.kind
    {
        cause.push_str(&format!(" (attempt {attempt})"));
    }
    let goes = match (&notice.destination, notice.event) {
        (Some(_), Some(event)) => format!("Enter: event {event}"),
        (Some(dest), None) => format!("Enter: destination {dest}"),
        (None, _) => String::new(),
    };
    let third = if goes.is_empty() {
        cause
    } else {
        format!("{cause} · {goes}")
    };
    vec![
        Line::from(vec![
            Span::styled(absolute_time(notice.at), Style::new().bold()),
            Span::raw(format!(" ({} ago) · ", age(notice.at, app.now))),
            acked,
        ]),
        Line::from(ellipsize(&notice.summary(), width)),
        Line::from(Span::styled(
            ellipsize(&third, width),
            Style::new().fg(Color::Gray),
        )),
    ]
}

fn keys_line(read_only: bool) -> Line<'static> {
    let mut pairs = vec![("j/k", "move"), ("Enter", "go to"), ("u", "unacked/all")];
    if !read_only {
        pairs.extend([("a", "ack"), ("A", "ack all")]);
    }
    pairs.push(("Esc", "close"));
    let mut spans = key_hints(&pairs);
    if read_only {
        spans.push(Span::styled(
            "read-only: a/A off",
            Style::new().fg(Color::Magenta),
        ));
    }
    Line::from(spans)
}

fn summary_line(app: &App, list: &NoticeList) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!("{} unacknowledged", app.unacked_notices),
        if app.unacked_notices > 0 {
            Style::new().fg(Color::Yellow).bold()
        } else {
            Style::new().fg(Color::Green)
        },
    )];
    spans.push(Span::styled(
        if list.unacked_only {
            " · showing unacknowledged only, newest first"
        } else {
            " · showing all, newest first"
        },
        Style::new().fg(Color::Gray),
    ));
    if list.reading && list.loaded {
        spans.push(Span::styled(
            " · reading…",
            Style::new().fg(Color::DarkGray),
        ));
    } else if list.next_before.is_some() {
        spans.push(Span::styled(
            " · older ones: j past the last",
            Style::new().fg(Color::DarkGray),
        ));
    }
    Line::from(spans)
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect, list: &NoticeList) {
    let rect = super::list_popup_rect(area);
    frame.render_widget(Clear, rect);
    let block = popup_block("Notices");
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [summary, list_area, rule, detail, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(DETAIL_LINES),
        Constraint::Length(1),
    ])
    .areas(inner);
    let width = inner.width as usize;
    frame.render_widget(Paragraph::new(summary_line(app, list)), summary);
    frame.render_widget(Paragraph::new(keys_line(app.info.read_only)), keys);
    frame.render_widget(
        Paragraph::new("─".repeat(width)).style(Style::new().fg(Color::DarkGray)),
        rule,
    );
    let empty = match (list.loaded, list.reading) {
        (false, true) => Some("reading the notices…"),
        (false, false) => Some("the notices could not be read (the status line says why)"),
        (true, _) if list.notices.is_empty() && list.unacked_only => {
            Some("no unacknowledged notices (u lists all of them)")
        }
        (true, _) if list.notices.is_empty() => Some(
            "no notices yet: one is kept whenever a destination is disabled, recovers, \
             stays in retry too long, is paused…",
        ),
        _ => None,
    };
    if let Some(text) = empty {
        frame.render_widget(
            Paragraph::new(ellipsize(text, width)).style(Style::new().fg(Color::DarkGray)),
            list_area,
        );
        return;
    }
    let shown = list_area.height as usize;
    let offset = (list.index + 1).saturating_sub(shown.max(1));
    let lines: Vec<Line> = list
        .notices
        .iter()
        .enumerate()
        .skip(offset)
        .take(shown)
        .map(|(i, n)| row(n, app, width, i == list.index))
        .collect();
    frame.render_widget(Paragraph::new(lines), list_area);
    if let Some(notice) = list.selected() {
        frame.render_widget(Paragraph::new(selected_lines(notice, app, width)), detail);
    }
}

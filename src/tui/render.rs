//! Drawing: `render(&App, frame)` reads the state and never changes it. All times
//! are relative to `app.now`, so a fixture renders the same every run.

use super::app::{plural, App, Confirm, Mode};
use super::filter;
use super::form::{PolicyForm, FIELDS};
use super::history::WINDOW_SECS;
use super::keymap::{self, Pane};
use crate::config::ConfigSource;
use crate::engine::{DestinationView, EventDetail, JobState, MASK};
use crate::model::{AttemptRecord, EventRecord, EventState, StateCounts};
use chrono::{DateTime, Utc};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Block, BorderType, Borders, Cell, Clear, Gauge, HighlightSpacing, Paragraph, Row, Table,
    TableState, Wrap,
};
use ratatui::Frame;

pub const MIN_WIDTH: u16 = 70;
pub const MIN_HEIGHT: u16 = 20;
/// From this width the attempts pane sits beside the events pane.
const WIDE: u16 = 140;
/// Seconds per sparkline bar.
const SPARK_STEP_SECS: i64 = 5;

pub struct Areas {
    pub header: Rect,
    pub body: Rect,
    pub destinations: Rect,
    pub events: Rect,
    pub attempts: Rect,
    pub footer: Rect,
}

pub fn areas(area: Rect, app: &App) -> Areas {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let wanted = app.destinations.len() as u16 + 1 + 3;
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

/// Event rows visible at this size (for paging keys).
pub fn events_rows(area: Rect, app: &App) -> usize {
    areas(area, app).events.height.saturating_sub(3) as usize
}

pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area);
        return;
    }
    let a = areas(area, app);
    header(app, frame, a.header);
    footer(app, frame, a.footer);
    if app.destinations.is_empty() {
        guide(app, frame, a.body);
    } else {
        destinations(app, frame, a.destinations);
        events(app, frame, a.events);
        attempts(app, frame, a.attempts);
    }
    match &app.mode {
        Mode::Normal => {}
        Mode::Filter { input, error } => filter_prompt(frame, area, input, error.as_deref()),
        Mode::Help { scroll } => help(app, frame, area, *scroll),
        Mode::Detail { scroll } => detail(app, frame, area, *scroll),
        Mode::Confirm(confirm) => confirm_popup(frame, area, confirm),
        Mode::Form(form) => form_popup(frame, area, form),
        Mode::Bulk => bulk_popup(app, frame, area),
    }
}

// ----- colours and words ------------------------------------------------------

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

pub fn health_color(health: crate::model::Health) -> Color {
    use crate::model::Health;
    match health {
        Health::Healthy => Color::Green,
        Health::InRetry => Color::Yellow,
        Health::Disabled => Color::Red,
        Health::Paused => Color::Blue,
    }
}

/// `12s`, `4m`, `3h`, `2d`.
pub fn short_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86_400)
    }
}

/// `in 4m`, `now`, or `—`.
pub fn next_attempt(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match at {
        None => "—".into(),
        Some(at) if at <= now => "now".into(),
        Some(at) => format!("in {}", short_duration((at - now).num_seconds().max(1))),
    }
}

pub fn age(created: DateTime<Utc>, now: DateTime<Utc>) -> String {
    short_duration((now - created).num_seconds())
}

pub fn host(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => url.to_string(),
        },
        Err(_) => url.to_string(),
    }
}

fn last_result(status: Option<u16>, error: Option<&str>) -> String {
    match (status, error) {
        (Some(s), _) => s.to_string(),
        (None, Some(e)) => e.to_string(),
        (None, None) => "—".into(),
    }
}

fn status_color(status: Option<u16>, error: Option<&str>) -> Color {
    match status {
        Some(200..=299) => Color::Green,
        Some(429) | Some(500..=599) => Color::Yellow,
        Some(_) => Color::Red,
        None if error.is_some() => Color::Red,
        None => Color::Gray,
    }
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub fn sparkline(values: &[u64]) -> String {
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if v == 0 || max == 0 {
                ' '
            } else {
                let i = ((v * 8).div_ceil(max)).clamp(1, 8) - 1;
                BARS[i as usize]
            }
        })
        .collect()
}

fn short_id(id: &str, wide: bool) -> String {
    if wide {
        id.to_string()
    } else {
        id[id.len().saturating_sub(8)..].to_string()
    }
}

fn pane_block(title: String, focused: bool) -> Block<'static> {
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

fn highlight(focused: bool) -> Style {
    if focused {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new()
            .add_modifier(Modifier::BOLD)
            .bg(Color::DarkGray)
    }
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

fn popup_block(title: &str) -> Block<'static> {
    Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(Color::Cyan))
        .title(Span::styled(
            format!(" {title} "),
            Style::new().add_modifier(Modifier::BOLD),
        ))
}

fn key_span(label: &str) -> Span<'static> {
    Span::styled(
        label.to_string(),
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
    )
}

// ----- screen parts -------------------------------------------------------------

fn too_small(frame: &mut Frame, area: Rect) {
    let text = vec![
        Line::from("Terminal too small".bold()),
        Line::from(format!(
            "hookwatch needs {MIN_WIDTH}×{MIN_HEIGHT}; this is {}×{}.",
            area.width, area.height
        )),
        Line::from("Enlarge the window, or press q to quit."),
    ];
    let height = 3.min(area.height);
    let y = area.y + (area.height - height) / 2;
    frame.render_widget(
        Paragraph::new(text).centered().wrap(Wrap { trim: true }),
        Rect::new(area.x, y, area.width, area.height - (y - area.y)),
    );
}

fn header(app: &App, frame: &mut Frame, area: Rect) {
    let mut totals = StateCounts::default();
    for d in &app.destinations {
        totals.add(&d.counts);
    }
    let in_retry = app.destinations.iter().filter(|d| d.in_retry).count();
    let disabled = app.destinations.iter().filter(|d| !d.enabled).count();
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
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        area,
    );
}

/// The end of `text` in at most `room` columns, `…` in front when cut.
fn tail(text: &str, room: usize) -> String {
    let n = text.chars().count();
    if n <= room {
        return text.to_string();
    }
    let keep = room.saturating_sub(1);
    format!("…{}", text.chars().skip(n - keep).collect::<String>())
}

fn footer(app: &App, frame: &mut Frame, area: Rect) {
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

fn guide(app: &App, frame: &mut Frame, area: Rect) {
    let mut lines = vec![
        Line::from(Span::styled(
            "No destinations yet",
            Style::new().fg(Color::Cyan).bold(),
        )),
        Line::from(""),
        Line::from(format!(
            "hookwatch is running and its HTTP API listens on http://{},",
            app.info.listen
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

fn success_rate(app: &App, destination: Option<&str>) -> String {
    match app.history.get(destination) {
        Some(h) => {
            let (d, f) = h.totals(app.now);
            match (d * 100).checked_div(d + f) {
                Some(rate) => format!("{rate}%"),
                None => "—".into(),
            }
        }
        None => "—".into(),
    }
}

fn spark(app: &App, destination: Option<&str>, n: usize) -> String {
    // Five seconds a bar: recent enough to move, long enough to read.
    let step = SPARK_STEP_SECS.min(WINDOW_SECS / n as i64).max(1);
    let values = app
        .history
        .get(destination)
        .map(|h| h.series(app.now, n, step))
        .unwrap_or_else(|| vec![0; n]);
    sparkline(&values)
}

fn counts_text(c: &StateCounts) -> String {
    format!("{}/{}/{}", c.pending, c.retrying, c.failed)
}

fn destinations(app: &App, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Pane::Destinations;
    let wide = area.width >= WIDE;
    let spark_n: u16 = if wide { 30 } else { 10 };
    let mut rows = Vec::with_capacity(app.destinations.len() + 1);
    let mut all = StateCounts::default();
    let (mut conc, mut max_conc) = (0u32, 0u32);
    for d in &app.destinations {
        all.add(&d.counts);
        conc += d.concurrency;
        max_conc += d.max_concurrency;
    }
    let healthy = app
        .destinations
        .iter()
        .filter(|d| d.health == crate::model::Health::Healthy)
        .count();
    rows.push(Row::new(vec![
        Cell::from("all".bold()),
        Cell::from(""),
        Cell::from(Span::styled(
            format!("{healthy} ok"),
            Style::new().fg(if healthy == app.destinations.len() {
                Color::Green
            } else {
                Color::Yellow
            }),
        )),
        Cell::from(format!("{conc}/{max_conc}")),
        Cell::from(counts_text(&all)),
        Cell::from(success_rate(app, None)),
        Cell::from(Span::styled(
            spark(app, None, spark_n as usize),
            Style::new().fg(Color::Green),
        )),
    ]));
    for d in &app.destinations {
        rows.push(destination_row(app, d, spark_n as usize));
    }
    let header = Row::new(vec![
        "ID",
        "HOST",
        "HEALTH",
        "CONC",
        "PEND/RETR/FAIL",
        "OK 5m",
        "DELIVERIES",
    ])
    .style(Style::new().fg(Color::Gray).bold());
    let widths = [
        Constraint::Length(if wide { 20 } else { 11 }),
        Constraint::Fill(1),
        Constraint::Length(9),
        Constraint::Length(if wide { 7 } else { 5 }),
        Constraint::Length(14),
        Constraint::Length(5),
        Constraint::Length(spark_n),
    ];
    let title = format!(" 1 Destinations ({}) ", app.destinations.len());
    let table = Table::new(rows, widths)
        .header(header)
        .block(pane_block(title, focused))
        .row_highlight_style(highlight(focused))
        .highlight_symbol("▸ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected(Some(app.dest_index));
    frame.render_stateful_widget(table, area, &mut state);
}

fn destination_row<'a>(app: &App, d: &'a DestinationView, spark_n: usize) -> Row<'a> {
    Row::new(vec![
        Cell::from(d.id.clone()),
        Cell::from(host(&d.url)),
        Cell::from(Span::styled(
            d.health.as_str(),
            Style::new().fg(health_color(d.health)).bold(),
        )),
        Cell::from(format!("{}/{}", d.concurrency, d.max_concurrency)),
        Cell::from(counts_text(&d.counts)),
        Cell::from(success_rate(app, Some(&d.id))),
        Cell::from(Span::styled(
            spark(app, Some(&d.id), spark_n),
            Style::new().fg(Color::Green),
        )),
    ])
}

fn events(app: &App, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Pane::Events;
    let wide = area.width >= 110;
    let show_dest = app.selected_destination_id().is_none();
    let shown = app.shown_events();
    let mut title = format!(
        " 2 Events · {}",
        app.selected_destination_id().unwrap_or("all")
    );
    if !app.filter_text.is_empty() {
        title.push_str(&format!(" · /{}", app.filter_text));
    }
    if app.page_number() > 1 {
        title.push_str(&format!(" · page {}", app.page_number()));
    }
    if !app.marks.is_empty() {
        title.push_str(&format!(" · {} marked", app.marks.len()));
    }
    if app.events_next.is_some() {
        title.push_str(" · more ↓");
    }
    title.push(' ');
    let rows: Vec<Row> = shown
        .iter()
        .map(|e| event_row(app, e, wide, show_dest))
        .collect();
    let mut header = vec!["", "ID", "TOPIC"];
    if show_dest {
        header.push("DEST");
    }
    header.extend(["STATE", "ATT", "LAST", "NEXT", "AGE"]);
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(if wide { 26 } else { 8 }),
        Constraint::Fill(1),
    ];
    if show_dest {
        widths.push(Constraint::Length(if wide { 14 } else { 10 }));
    }
    widths.extend([
        Constraint::Length(9),
        Constraint::Length(3),
        Constraint::Length(if wide { 12 } else { 5 }),
        Constraint::Length(7),
        Constraint::Length(4),
    ]);
    let empty = rows.is_empty();
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().fg(Color::Gray).bold()))
        .block(pane_block(title, focused))
        .row_highlight_style(highlight(focused))
        .highlight_symbol("▸ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected((!empty).then_some(app.event_index));
    frame.render_stateful_widget(table, area, &mut state);
    if empty {
        let text = if app.filter.is_empty() {
            "no events yet"
        } else {
            "no events match the filter (Esc clears it)"
        };
        let inner = Rect::new(
            area.x + 2,
            area.y + 2,
            area.width.saturating_sub(4),
            1.min(area.height.saturating_sub(3)),
        );
        frame.render_widget(
            Paragraph::new(Span::styled(text, Style::new().fg(Color::DarkGray))),
            inner,
        );
    }
}

fn event_row<'a>(app: &App, e: &'a EventRecord, wide: bool, show_dest: bool) -> Row<'a> {
    let mark = if app.marks.contains(&e.id) {
        "●"
    } else {
        " "
    };
    let mut cells = vec![
        Cell::from(Span::styled(mark, Style::new().fg(Color::Magenta))),
        Cell::from(short_id(&e.id.to_string(), wide)),
        Cell::from(e.topic.clone()),
    ];
    if show_dest {
        cells.push(Cell::from(e.destination.clone()));
    }
    let last = if wide {
        last_result(e.last_status, e.last_error.as_deref())
    } else {
        match (e.last_status, &e.last_error) {
            (Some(s), _) => s.to_string(),
            (None, Some(_)) => "err".into(),
            _ => "—".into(),
        }
    };
    cells.extend([
        Cell::from(Span::styled(
            e.state.as_str(),
            Style::new().fg(state_color(e.state)).bold(),
        )),
        Cell::from(e.attempt_count.to_string()),
        Cell::from(Span::styled(
            last,
            Style::new().fg(status_color(e.last_status, e.last_error.as_deref())),
        )),
        Cell::from(next_attempt(e.next_attempt_at, app.now)),
        Cell::from(age(e.created_at, app.now)),
    ]);
    Row::new(cells)
}

fn attempts_newest_first(detail: &EventDetail) -> Vec<&AttemptRecord> {
    detail.attempts.iter().rev().collect()
}

fn attempts(app: &App, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Pane::Attempts;
    let detail = app.selected_detail();
    let title = match app.selected_event {
        Some(id) => format!(" 3 Attempts · {} ", short_id(&id.to_string(), true)),
        None => " 3 Attempts ".to_string(),
    };
    let list = detail.map(attempts_newest_first).unwrap_or_default();
    let rows: Vec<Row> = list
        .iter()
        .map(|a| {
            Row::new(vec![
                Cell::from(a.n.to_string()),
                Cell::from(a.at.format("%H:%M:%S").to_string()),
                Cell::from(a.trigger.to_string()),
                Cell::from(Span::styled(
                    last_result(a.status, a.error.as_deref()),
                    Style::new().fg(status_color(a.status, a.error.as_deref())),
                )),
                Cell::from(format!("{} ms", a.duration_ms)),
                Cell::from(a.decision.clone()),
            ])
        })
        .collect();
    let empty = rows.is_empty();
    let widths = [
        Constraint::Length(3),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(12),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths)
        .header(
            Row::new(vec![
                "#", "TIME", "TRIGGER", "RESULT", "LATENCY", "DECISION",
            ])
            .style(Style::new().fg(Color::Gray).bold()),
        )
        .block(pane_block(title, focused))
        .row_highlight_style(highlight(focused))
        .highlight_symbol("▸ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected((!empty).then_some(app.attempt_index));
    frame.render_stateful_widget(table, area, &mut state);
    if empty && area.height > 3 {
        let text = match (app.selected_event, detail) {
            (None, _) => "no event selected",
            (Some(_), None) => "loading…",
            (Some(_), Some(_)) => "no attempts yet",
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, Style::new().fg(Color::DarkGray))),
            Rect::new(area.x + 2, area.y + 2, area.width.saturating_sub(4), 1),
        );
    }
}

// ----- popups -------------------------------------------------------------------

fn filter_prompt(frame: &mut Frame, area: Rect, input: &str, error: Option<&str>) {
    let height = 4 + filter::SYNTAX.len() as u16;
    let width = area.width.min(90);
    let rect = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + area.height.saturating_sub(height + 1),
        width,
        height,
    );
    let mut lines = vec![
        Line::from(vec![
            key_span("/"),
            Span::raw(input.to_string()),
            Span::styled("█", Style::new().fg(Color::Cyan)),
        ]),
        match error {
            Some(e) => Line::from(Span::styled(e.to_string(), Style::new().fg(Color::Red))),
            None => Line::from(Span::styled(
                "Enter apply · Esc cancel · C-u clear",
                Style::new().fg(Color::DarkGray),
            )),
        },
    ];
    for (example, meaning) in filter::SYNTAX {
        lines.push(Line::from(vec![
            Span::styled(format!("  {example:<16}"), Style::new().fg(Color::Yellow)),
            Span::styled(meaning.to_string(), Style::new().fg(Color::Gray)),
        ]));
    }
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(popup_block("Filter events")),
        rect,
    );
}

fn help_lines(app: &App) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for (scope, bindings) in keymap::help_sections(app.info.read_only) {
        lines.push(Line::from(Span::styled(
            scope.title(),
            Style::new().fg(Color::Cyan).bold(),
        )));
        for b in bindings {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<9}", b.label), Style::new().fg(Color::Yellow)),
                Span::raw(b.description),
            ]));
        }
        lines.push(Line::from(""));
    }
    lines.push(Line::from(Span::styled(
        "Filter (/), terms combine",
        Style::new().fg(Color::Cyan).bold(),
    )));
    for (example, meaning) in filter::SYNTAX {
        lines.push(Line::from(vec![
            Span::styled(format!("  {example:<15}"), Style::new().fg(Color::Yellow)),
            Span::raw(*meaning),
        ]));
    }
    for text in [
        "  state: and topic: are asked of the engine, over all events.",
        "  status: and free text filter the loaded page (100 events) only;",
        "  with them, R retries exactly the rows shown.",
    ] {
        lines.push(Line::from(Span::styled(text, Style::new().fg(Color::Gray))));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Notes",
        Style::new().fg(Color::Cyan).bold(),
    )));
    for text in [
        "  Events are newest first; at the top the selection follows new events;",
        "  paging past the end loads the next page.",
        "  OK 5m and DELIVERIES (a bar per 5 s) count outcomes seen since this screen opened.",
        "  Policy edits are live edits: stored, and applied at the next attempt.",
    ] {
        lines.push(Line::from(Span::styled(text, Style::new().fg(Color::Gray))));
    }
    if app.info.read_only {
        lines.push(Line::from(Span::styled(
            "  --read-only: every action that changes state is off.",
            Style::new().fg(Color::Magenta),
        )));
    }
    lines
}

fn help(app: &App, frame: &mut Frame, area: Rect, scroll: u16) {
    let rect = centered(area, area.width.saturating_sub(4).min(100), area.height - 2);
    let lines = help_lines(app);
    let inner_height = rect.height.saturating_sub(2) as usize;
    let max_scroll = lines.len().saturating_sub(inner_height) as u16;
    let scroll = scroll.min(max_scroll);
    frame.render_widget(Clear, rect);
    let title = if max_scroll > 0 {
        "Help · j/k scroll · Esc close"
    } else {
        "Help · Esc close"
    };
    frame.render_widget(
        Paragraph::new(lines)
            .block(popup_block(title))
            .scroll((scroll, 0)),
        rect,
    );
}

/// JSON object keys whose values are credentials.
fn sensitive_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "authorization",
        "api_key",
        "apikey",
        "cookie",
        "card_number",
        "cvv",
        "signature",
    ]
    .iter()
    .any(|w| key.contains(w))
}

fn mask_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if sensitive_key(k) && !v.is_object() && !v.is_array() {
                    *v = serde_json::Value::String(MASK.into());
                } else {
                    mask_json(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_json),
        _ => {}
    }
}

/// Pretty-printed when JSON (credentials masked), else as is.
pub fn pretty_body(text: &str) -> Vec<String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut value) if value.is_object() || value.is_array() => {
            mask_json(&mut value);
            serde_json::to_string_pretty(&value)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect()
        }
        _ => text.lines().map(str::to_string).collect(),
    }
}

pub fn detail_lines(app: &App) -> Vec<Line<'static>> {
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
                "  attempts {}  age {}  next {} ({})",
                e.attempt_count,
                age(e.created_at, app.now),
                next_attempt(e.next_attempt_at, app.now),
                e.next_trigger
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
    let list = attempts_newest_first(detail);
    let attempt = list.get(app.attempt_index).copied();
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

fn detail(app: &App, frame: &mut Frame, area: Rect, scroll: u16) {
    let rect = centered(
        area,
        area.width.saturating_sub(6).max(40),
        area.height.saturating_sub(2),
    );
    let lines = detail_lines(app);
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

fn confirm_popup(frame: &mut Frame, area: Rect, confirm: &Confirm) {
    let (title, lines) = match confirm {
        Confirm::BulkRetry { scope, count, .. } => {
            let question = match count {
                None => Line::from("Counting the events to retry…"),
                Some(n) => Line::from(vec![
                    Span::raw("Retry "),
                    Span::styled(plural(*n as usize, "event"), Style::new().bold()),
                    Span::raw(" now?"),
                ]),
            };
            (
                "Bulk retry",
                vec![
                    question,
                    Line::from(Span::styled(scope.clone(), Style::new().fg(Color::Gray))),
                    Line::from(Span::styled(
                        "One attempt each, at most half of each destination's concurrency.",
                        Style::new().fg(Color::Gray),
                    )),
                ],
            )
        }
        Confirm::Mute { ids } => (
            "Cancel events",
            vec![
                Line::from(vec![
                    Span::raw("Cancel (mute) "),
                    Span::styled(plural(ids.len(), "event"), Style::new().bold()),
                    Span::raw("?"),
                ]),
                Line::from(Span::styled(
                    "Their automatic retries stop; manual retry still works.",
                    Style::new().fg(Color::Gray),
                )),
            ],
        ),
    };
    let mut lines = lines;
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        key_span("y"),
        Span::raw("/"),
        key_span("Enter"),
        Span::raw(" confirm   "),
        key_span("n"),
        Span::raw("/"),
        key_span("Esc"),
        Span::raw(" back"),
    ]));
    let width = lines.iter().map(|l| l.width() as u16).max().unwrap_or(30) + 4;
    let rect = centered(area, width.max(40), lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(popup_block(title))
            .wrap(Wrap { trim: true }),
        rect,
    );
}

fn form_popup(frame: &mut Frame, area: Rect, form: &PolicyForm) {
    let mut lines: Vec<Line> = Vec::new();
    for (index, (key, _, hint)) in FIELDS.iter().enumerate() {
        let focused = index == form.focus;
        let value = &form.values[index];
        let changed = *value != form.initial[index];
        let mut spans = vec![
            Span::raw(if focused { "▸ " } else { "  " }),
            Span::styled(
                format!("{key:<18}"),
                if focused {
                    Style::new().fg(Color::Cyan).bold()
                } else {
                    Style::new()
                },
            ),
            Span::styled(
                value.clone(),
                if changed {
                    Style::new().fg(Color::Yellow).bold()
                } else {
                    Style::new()
                },
            ),
        ];
        if focused {
            spans.push(Span::styled("█", Style::new().fg(Color::Cyan)));
        }
        let used = 2 + 18 + value.chars().count() + usize::from(focused);
        let pad = 34usize.saturating_sub(used).max(2);
        spans.push(Span::styled(
            format!("{}{hint}", " ".repeat(pad)),
            Style::new().fg(Color::DarkGray),
        ));
        lines.push(Line::from(spans));
        if let Some((at, message)) = &form.error {
            if *at == index {
                lines.push(Line::from(Span::styled(
                    format!("    ✗ {message}"),
                    Style::new().fg(Color::Red),
                )));
            }
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        key_span("Enter"),
        Span::raw(" save  "),
        key_span("Tab ↑↓"),
        Span::raw(" field  "),
        key_span("C-u"),
        Span::raw(" clear  "),
        key_span("Esc"),
        Span::raw(" cancel"),
    ]));
    lines.push(Line::from(Span::styled(
        "Saved as a live edit of the changed keys; applies at the next attempt.",
        Style::new().fg(Color::DarkGray),
    )));
    let rect = centered(area, 76, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(popup_block(&format!("Retry policy · {}", form.destination)))
            .wrap(Wrap { trim: false }),
        rect,
    );
}

fn bulk_popup(app: &App, frame: &mut Frame, area: Rect) {
    let rect = centered(area, 64, 8);
    frame.render_widget(Clear, rect);
    let block = popup_block("Bulk retry");
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [status, gauge, _, hint] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let (text, ratio, label) = match &app.bulk {
        None => ("starting…".to_string(), 0.0, "0%".to_string()),
        Some(job) => {
            let state = match job.state {
                JobState::Running => "running",
                JobState::Completed => "completed",
                JobState::Cancelled => "cancelled",
            };
            let ratio = if job.total == 0 {
                1.0
            } else {
                (job.done as f64 / job.total as f64).clamp(0.0, 1.0)
            };
            (
                format!(
                    "{state}: {} of {} done, {} delivered, {} failed",
                    job.done, job.total, job.succeeded, job.failed
                ),
                ratio,
                format!("{}/{}", job.done, job.total),
            )
        }
    };
    frame.render_widget(Paragraph::new(Text::from(text)), status);
    frame.render_widget(
        Gauge::default()
            .gauge_style(Style::new().fg(Color::Cyan).bg(Color::DarkGray))
            .ratio(ratio)
            .label(label),
        gauge,
    );
    let running = app.bulk_running().is_some() || app.bulk.is_none();
    let mut spans = Vec::new();
    if running && !app.info.read_only {
        spans.extend([key_span("x"), Span::raw(" cancel the job   ")]);
    }
    spans.extend([
        key_span("Esc"),
        Span::raw(if running {
            " hide (it keeps running)"
        } else {
            " close"
        }),
    ]);
    frame.render_widget(Paragraph::new(Line::from(spans)), hint);
}

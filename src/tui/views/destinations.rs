//! Pane 1: an "all" row, then one row per destination with health, concurrency,
//! counts, the 5-minute success rate and a delivery sparkline.

use crate::engine::DestinationView;
use crate::model::Health;
use crate::model::StateCounts;
use crate::tui::app::App;
use crate::tui::history::WINDOW_SECS;
use crate::tui::keymap::Pane;
use crate::tui::layout::WIDE;
use crate::tui::text::{host, sparkline};
use crate::tui::theme::{health_color, highlight, pane_block};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Span;
use ratatui::widgets::{Cell, HighlightSpacing, Row, Table, TableState};
use ratatui::Frame;

/// Seconds per sparkline bar.
const SPARK_STEP_SECS: i64 = 5;

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

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
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
        .filter(|d| d.health == Health::Healthy)
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

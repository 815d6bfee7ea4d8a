//! Pane 1: an "all" row (every destination's totals, filtered out or not: it
//! says `all (unfiltered)` under a filter), then one row per destination with health, concurrency,
//! counts, the 5-minute success rate and a sparkline of deliveries a minute,
//! both from the engine's minute statistics.

use crate::engine::stats::MinuteStats;
use crate::engine::DestinationView;
use crate::model::Health;
use crate::tui::app::App;
use crate::tui::dest_list::{
    all_label, concurrency_text, counts_text, health_text, healthy_text, ColumnWidths,
};
use crate::tui::history::{delivered_series, success_rate_text};
use crate::tui::keymap::Pane;
use crate::tui::layout::WIDE;
use crate::tui::text::{ellipsize, ellipsize_middle, sparkline};
use crate::tui::theme::{health_color, highlight, pane_block};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Span;
use ratatui::widgets::{Cell, HighlightSpacing, Row, Table, TableState};
use ratatui::Frame;

/// The minutes of `destination` (every destination for `None`, the `all`
/// row), when read.
fn minutes<'a>(app: &'a App, destination: Option<&str>) -> Option<Vec<&'a MinuteStats>> {
    app.stats
        .minutes(destination, app.destinations.iter().map(|d| d.id.as_str()))
}

fn success_rate(app: &App, destination: Option<&str>) -> String {
    success_rate_text(minutes(app, destination).as_deref(), app.now)
}

/// Deliveries a minute, the current minute last, one bar each.
fn spark(app: &App, destination: Option<&str>, n: usize) -> String {
    if n == 0 {
        return String::new();
    }
    let values = minutes(app, destination)
        .map(|m| delivered_series(&m, app.now, n))
        .unwrap_or_else(|| vec![0; n]);
    sparkline(&values)
}

/// Column widths for a pane `width` wide: the fixed columns as wide as their
/// widest value (worked out per data change), the ID column as wide as the
/// longest id up to a third of the screen, the host the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Columns {
    pub id: u16,
    pub host: u16,
    pub health: u16,
    pub concurrency: u16,
    pub counts: u16,
    pub ok: u16,
    pub spark: u16,
}

/// The narrowest host column kept before the sparkline gives way.
const MIN_HOST: u16 = 6;

pub fn columns(width: u16, widths: &ColumnWidths) -> Columns {
    let spark_wanted: u16 = if width >= WIDE { 30 } else { 10 };
    // Borders, the highlight symbol and one space between the seven columns.
    let avail = width.saturating_sub(2 + 2 + 6);
    let health = (widths.health as u16).max("HEALTH".len() as u16);
    let concurrency = (widths.concurrency as u16).max("CONC".len() as u16);
    let counts = (widths.counts as u16).max("PEND/RETR/FAIL".len() as u16);
    let ok = "OK 5m".len() as u16;
    let fixed = health + concurrency + counts + ok;
    // The id comes first (it says which row is which), then the sparkline
    // gives way to keep a few columns of host, then the id does.
    let id_wanted = (widths.id as u16).clamp(3, (width / 3).max(3));
    let spark = spark_wanted.min(avail.saturating_sub(fixed + id_wanted + MIN_HOST));
    let id = id_wanted
        .min(avail.saturating_sub(fixed + spark + MIN_HOST))
        .max(3);
    let host = avail.saturating_sub(fixed + spark + id);
    Columns {
        id,
        host,
        health,
        concurrency,
        counts,
        ok,
        spark,
    }
}

fn cell<'a>(text: String, width: u16) -> Cell<'a> {
    Cell::from(ellipsize(&text, width as usize))
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Pane::Destinations;
    let list = &app.dest_list;
    let cols = columns(area.width, &list.widths);
    let visible = area.height.saturating_sub(3) as usize;
    let offset = app.dest_offset_for(visible);
    let total_rows = list.shown.len() + 1;
    let end = (offset + visible).min(total_rows);
    let mut rows = Vec::with_capacity(end.saturating_sub(offset));
    for row in offset..end {
        if row == 0 {
            rows.push(all_row(app, &cols));
        } else if let Some(d) = list
            .shown
            .get(row - 1)
            .and_then(|&i| app.destinations.get(i).map(|d| (d, &list.hosts[i])))
        {
            rows.push(destination_row(app, d.0, d.1, &cols));
        }
    }
    let header = Row::new(vec![
        cell("ID".into(), cols.id),
        cell("HOST".into(), cols.host),
        cell("HEALTH".into(), cols.health),
        cell("CONC".into(), cols.concurrency),
        cell("PEND/RETR/FAIL".into(), cols.counts),
        cell("OK 5m".into(), cols.ok),
        cell("DELIVERIES".into(), cols.spark),
    ])
    .style(Style::new().fg(Color::Gray).bold());
    let widths = [
        Constraint::Length(cols.id),
        Constraint::Length(cols.host),
        Constraint::Length(cols.health),
        Constraint::Length(cols.concurrency),
        Constraint::Length(cols.counts),
        Constraint::Length(cols.ok),
        Constraint::Length(cols.spark),
    ];
    let count = if list.filter_text.is_empty() {
        format!("{}", app.destinations.len())
    } else {
        format!(
            "{} of {} · {}",
            list.shown.len(),
            app.destinations.len(),
            list.filter_text
        )
    };
    let title = format!(" 1 Destinations ({count}) · sort {} ", list.sort.as_str());
    let table = Table::new(rows, widths)
        .header(header)
        .block(pane_block(title, focused))
        .row_highlight_style(highlight(focused))
        .highlight_symbol("▸ ")
        .highlight_spacing(HighlightSpacing::Always);
    let selected = app.dest_index.checked_sub(offset);
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

fn all_row<'a>(app: &App, cols: &Columns) -> Row<'a> {
    let totals = &app.dest_list.totals;
    let healthy = totals.of(Health::Healthy);
    let label = all_label(!app.dest_list.filter.is_empty());
    Row::new(vec![
        Cell::from(ellipsize(label, cols.id as usize).bold()),
        Cell::from(""),
        Cell::from(Span::styled(
            ellipsize(&healthy_text(healthy), cols.health as usize),
            Style::new().fg(if healthy == app.destinations.len() {
                Color::Green
            } else {
                Color::Yellow
            }),
        )),
        cell(
            concurrency_text(totals.concurrency, totals.max_concurrency),
            cols.concurrency,
        ),
        cell(counts_text(&totals.counts), cols.counts),
        cell(success_rate(app, None), cols.ok),
        Cell::from(Span::styled(
            spark(app, None, cols.spark as usize),
            Style::new().fg(Color::Green),
        )),
    ])
}

fn destination_row<'a>(app: &App, d: &DestinationView, host: &str, cols: &Columns) -> Row<'a> {
    let health = if d.draining {
        Style::new().fg(Color::Magenta).bold()
    } else {
        Style::new().fg(health_color(d.health)).bold()
    };
    Row::new(vec![
        Cell::from(ellipsize_middle(&d.id, cols.id as usize)),
        cell(host.to_string(), cols.host),
        Cell::from(Span::styled(
            ellipsize(health_text(d), cols.health as usize),
            health,
        )),
        cell(
            concurrency_text(d.concurrency.into(), d.max_concurrency.into()),
            cols.concurrency,
        ),
        cell(counts_text(&d.counts), cols.counts),
        cell(success_rate(app, Some(&d.id)), cols.ok),
        Cell::from(Span::styled(
            spark(app, Some(&d.id), cols.spark as usize),
            Style::new().fg(Color::Green),
        )),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widths(id: usize, concurrency: usize, counts: usize) -> ColumnWidths {
        ColumnWidths {
            id,
            health: 8,
            concurrency,
            counts,
        }
    }

    #[test]
    fn columns_fill_the_pane_and_the_id_takes_at_most_a_third() {
        for width in [70u16, 80, 120, 160, 200] {
            for w in [widths(14, 5, 14), widths(128, 11, 17), widths(3, 3, 5)] {
                let c = columns(width, &w);
                let sum = c.id + c.host + c.health + c.concurrency + c.counts + c.ok + c.spark;
                assert_eq!(sum, width - 10, "{width} {w:?} {c:?}");
                assert!(c.id <= (width / 3).max(3), "{width} {c:?}");
                assert!(c.concurrency as usize >= w.concurrency);
                assert!(c.counts as usize >= w.counts);
            }
        }
        // Ids of 14 characters are shown whole at 80 columns.
        assert_eq!(columns(80, &widths(14, 5, 14)).id, 14);
        assert_eq!(columns(200, &widths(128, 5, 14)).id, 200 / 3);
    }
}

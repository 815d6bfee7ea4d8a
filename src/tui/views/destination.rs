//! The destination view (Enter on a destination in pane 1): its last hour and
//! last 24 hours by the minute, from the engine's statistics: deliveries and
//! failures per minute, and latency p50/p99 of the minutes with attempts.
//! The destination's notices of the day (disabled, enabled, recovered, in
//! retry too long, paused, resumed) are marked on every chart as vertical
//! lines in their colour, listed with their times on a line above the charts.

use crate::engine::stats::{minute_of, MinuteStats};
use crate::model::{Notice, NoticeCause, NoticeKind};
use crate::tui::app::{App, DestinationScreen};
use crate::tui::dest_list::health_text;
use crate::tui::text::{ellipsize, notice_type_words};
use crate::tui::theme::{health_color, pane_block};
use chrono::{DateTime, Utc};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Clear, Dataset, GraphType, Paragraph};
use ratatui::Frame;

/// One chart's series, worked out from the minutes of a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// (minutes before now, count): every minute of the window, zeros included.
    pub delivered: Vec<(f64, f64)>,
    pub failed: Vec<(f64, f64)>,
    /// (minutes before now, ms): only minutes with attempts.
    pub p50: Vec<(f64, f64)>,
    pub p99: Vec<(f64, f64)>,
    pub attempts: u64,
    pub delivered_total: u64,
    /// The slowest p99 of the window, for the latency axis.
    pub max_latency_ms: u64,
    /// The busiest minute, for the count axis.
    pub max_count: u64,
}

/// The series of a window `span_minutes` long ending at `now`.
pub fn series(minutes: &[MinuteStats], now: DateTime<Utc>, span_minutes: i64) -> Series {
    let current = minute_of(now);
    let mut delivered = vec![0u64; span_minutes as usize];
    let mut failed = vec![0u64; span_minutes as usize];
    let mut out = Series::default();
    for m in minutes {
        let age = (current - m.minute).num_minutes();
        if !(0..span_minutes).contains(&age) {
            continue;
        }
        let slot = (span_minutes - 1 - age) as usize;
        delivered[slot] += u64::from(m.delivered);
        failed[slot] += u64::from(m.failed);
        out.attempts += u64::from(m.attempts);
        out.delivered_total += u64::from(m.delivered);
        let x = -(age as f64);
        if let Some(p50) = m.latency_p50_ms {
            out.p50.push((x, p50 as f64));
        }
        if let Some(p99) = m.latency_p99_ms {
            out.p99.push((x, p99 as f64));
            out.max_latency_ms = out.max_latency_ms.max(p99);
        }
    }
    let x = |slot: usize| -((span_minutes - 1) as f64) + slot as f64;
    out.max_count = delivered
        .iter()
        .zip(&failed)
        .map(|(d, f)| (*d).max(*f))
        .max()
        .unwrap_or(0);
    out.delivered = delivered
        .iter()
        .enumerate()
        .map(|(i, v)| (x(i), *v as f64))
        .collect();
    out.failed = failed
        .iter()
        .enumerate()
        .map(|(i, v)| (x(i), *v as f64))
        .collect();
    out
}

fn summary(label: &str, s: &Series) -> Span<'static> {
    let rate = match (s.delivered_total * 100).checked_div(s.attempts) {
        Some(rate) => format!("{rate}% delivered"),
        None => "no attempts".to_string(),
    };
    Span::raw(format!("{label}: {} attempts, {rate}", s.attempts))
}

fn x_labels(span_minutes: i64) -> Vec<Span<'static>> {
    if span_minutes <= 60 {
        vec!["-60m".into(), "-30m".into(), "now".into()]
    } else {
        vec!["-24h".into(), "-12h".into(), "now".into()]
    }
}

/// One line of a chart: its name, colour and points.
type Plot<'a> = (&'static str, Color, &'a [(f64, f64)]);

/// A notice marked on the charts: where (minutes before now) and in which
/// colour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mark {
    pub minutes_ago: i64,
    pub color: Color,
}

/// The colour of a notice's mark, for the kinds the charts mark: what changes
/// whether the destination delivers. Concurrency and bulk jobs are not marked.
fn mark_color(notice: &Notice) -> Option<Color> {
    match notice.kind {
        NoticeKind::DestinationDisabled { .. } | NoticeKind::InRetryTooLong { .. } => {
            Some(Color::Red)
        }
        NoticeKind::DestinationEnabled | NoticeKind::DestinationRecovered => Some(Color::Green),
        NoticeKind::DestinationPaused | NoticeKind::DestinationResumed => Some(Color::Yellow),
        NoticeKind::ConcurrencyLowered { .. }
        | NoticeKind::BulkJobFinished { .. }
        | NoticeKind::StoreWriteFailed { .. }
        | NoticeKind::StoreFull { .. } => None,
    }
}

/// The marks of `notices` (newest first) within the last `span_minutes`.
pub fn marks(notices: &[Notice], now: DateTime<Utc>, span_minutes: i64) -> Vec<Mark> {
    let current = minute_of(now);
    notices
        .iter()
        .filter_map(|n| {
            let minutes_ago = (current - minute_of(n.at)).num_minutes();
            let color = mark_color(n)?;
            (0..span_minutes)
                .contains(&minutes_ago)
                .then_some(Mark { minutes_ago, color })
        })
        .collect()
}

/// `▲ 10:42 disabled (answered 404)`: a marked notice in the legend line.
pub fn mark_label(notice: &Notice) -> String {
    let mut label = format!(
        "▲ {} {}",
        notice.at.format("%H:%M"),
        notice_type_words(notice.notice_type())
    );
    match &notice.cause {
        NoticeCause::Status { .. } | NoticeCause::NoAnswer { .. } => {
            label.push_str(&format!(" ({})", notice.cause));
        }
        NoticeCause::Operator
            if matches!(
                notice.kind,
                NoticeKind::DestinationDisabled { .. } | NoticeKind::DestinationEnabled
            ) =>
        {
            label.push_str(" (operator)");
        }
        _ => {}
    }
    label
}

/// The legend of the marks: each marked notice of the day, newest first, in
/// its colour, as many as fit in `width` (then how many more).
fn marks_legend(notices: &[Notice], width: usize) -> Line<'static> {
    let marked: Vec<(&Notice, Color)> = notices
        .iter()
        .filter_map(|n| mark_color(n).map(|c| (n, c)))
        .collect();
    let mut spans = vec![Span::styled(
        " notices 24 h: ",
        Style::new().fg(Color::Gray),
    )];
    let mut used = 15;
    for (i, (notice, color)) in marked.iter().enumerate() {
        let label = mark_label(notice);
        let more = marked.len() - i;
        let more_text = format!("+{more} more");
        let need = label.chars().count() + 2;
        // Room for this one, and for saying how many follow it.
        let reserve = if more > 1 { more_text.len() + 1 } else { 0 };
        if used + need + reserve > width {
            spans.push(Span::styled(
                ellipsize(&more_text, width.saturating_sub(used)),
                Style::new().fg(Color::Gray),
            ));
            break;
        }
        used += need;
        spans.push(Span::styled(label, Style::new().fg(*color)));
        spans.push(Span::raw("  "));
    }
    Line::from(spans)
}

/// A chart of two lines over the last `span_minutes`, from 0 to `top` (shown
/// as `top_label`).
fn two_line_chart<'a>(
    lines: [Plot<'a>; 2],
    marks: &'a [MarkLine],
    top: u64,
    top_label: String,
    span_minutes: i64,
    title: String,
) -> Chart<'a> {
    // The marks first, so the lines are drawn over them; unnamed, so the
    // chart's own legend names only the lines (the marks have their own).
    // Dotted, not braille: a mark shares its colour with a series (red for
    // disabled and failed), and must not read as a spike of it.
    let mut datasets: Vec<Dataset> = marks
        .iter()
        .map(|(color, points)| {
            Dataset::default()
                .marker(Marker::Dot)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(*color))
                .data(points)
        })
        .collect();
    datasets.extend(lines.into_iter().map(|(name, color, points)| {
        Dataset::default()
            .name(name)
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(color))
            .data(points)
    }));
    Chart::new(datasets)
        .block(pane_block(title, false))
        .x_axis(
            Axis::default()
                .bounds([-((span_minutes - 1) as f64), 0.0])
                .labels(x_labels(span_minutes))
                .style(Style::new().fg(Color::Gray)),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top.max(1) as f64])
                .labels(vec![Span::raw("0"), Span::raw(top_label)])
                .style(Style::new().fg(Color::Gray)),
        )
        .legend_position(Some(ratatui::widgets::LegendPosition::TopLeft))
        // The legend box is 4 rows; ratatui's default hides it below 16 rows
        // of chart, which the marks' legend line above the charts cost at
        // 80×24 and 120×40.
        .hidden_legend_constraints((Constraint::Ratio(1, 3), Constraint::Ratio(1, 2)))
}

/// A mark as a chart draws it: a vertical line from the bottom to the top.
type MarkLine = (Color, [(f64, f64); 2]);

fn mark_lines(marks: &[Mark], top: u64) -> Vec<MarkLine> {
    marks
        .iter()
        .map(|m| {
            let x = -(m.minutes_ago as f64);
            (m.color, [(x, 0.0), (x, top.max(1) as f64)])
        })
        .collect()
}

fn counts_chart<'a>(
    series: &'a Series,
    marks: &'a [MarkLine],
    span_minutes: i64,
    title: String,
) -> Chart<'a> {
    two_line_chart(
        [
            ("delivered", Color::Green, &series.delivered),
            ("failed", Color::Red, &series.failed),
        ],
        marks,
        series.max_count,
        series.max_count.to_string(),
        span_minutes,
        title,
    )
}

fn latency_chart<'a>(
    series: &'a Series,
    marks: &'a [MarkLine],
    span_minutes: i64,
    title: String,
) -> Chart<'a> {
    two_line_chart(
        [
            ("p50", Color::Cyan, &series.p50),
            ("p99", Color::Magenta, &series.p99),
        ],
        marks,
        series.max_latency_ms,
        format!("{}ms", series.max_latency_ms),
        span_minutes,
        title,
    )
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect, screen: &DestinationScreen) {
    frame.render_widget(Clear, area);
    let dest = app.dest_list.find(&app.destinations, &screen.id);
    let mut head = vec![
        Span::styled(format!(" {} ", screen.id), Style::new().bold()),
        Span::raw(" "),
    ];
    if let Some(d) = dest {
        head.push(Span::styled(
            health_text(d).to_string(),
            Style::new().fg(health_color(d.health)).bold(),
        ));
        head.push(Span::raw(format!("  {}", d.url)));
    }
    let [head_area, summary_area, charts] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(Line::from(head)).style(Style::new().bg(Color::Reset)),
        head_area,
    );
    let (Some(hour), Some(day)) = (&screen.hour, &screen.day) else {
        frame.render_widget(
            Paragraph::new(" reading the statistics… · Esc back").fg(Color::DarkGray),
            summary_area,
        );
        return;
    };
    let hour_series = series(&hour.minutes, app.now, 60);
    let day_series = series(&day.minutes, app.now, 24 * 60);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::raw(" "),
            summary("last hour", &hour_series),
            Span::raw(" · "),
            summary("24 h", &day_series),
        ])),
        summary_area,
    );
    let charts = if screen.notices.iter().any(|n| mark_color(n).is_some()) {
        let [legend, charts] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(charts);
        frame.render_widget(
            Paragraph::new(marks_legend(&screen.notices, legend.width as usize)),
            legend,
        );
        charts
    } else {
        charts
    };
    let hour_marks = marks(&screen.notices, app.now, 60);
    let day_marks = marks(&screen.notices, app.now, 24 * 60);
    let hour_count_marks = mark_lines(&hour_marks, hour_series.max_count);
    let hour_latency_marks = mark_lines(&hour_marks, hour_series.max_latency_ms);
    let day_count_marks = mark_lines(&day_marks, day_series.max_count);
    let day_latency_marks = mark_lines(&day_marks, day_series.max_latency_ms);
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts);
    let [top_left, top_right] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
    let [bottom_left, bottom_right] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(bottom);
    frame.render_widget(
        counts_chart(
            &hour_series,
            &hour_count_marks,
            60,
            " last hour · per minute ".into(),
        ),
        top_left,
    );
    frame.render_widget(
        latency_chart(
            &hour_series,
            &hour_latency_marks,
            60,
            " latency · last hour ".into(),
        ),
        top_right,
    );
    frame.render_widget(
        counts_chart(
            &day_series,
            &day_count_marks,
            24 * 60,
            " last 24 h · per minute ".into(),
        ),
        bottom_left,
    );
    frame.render_widget(
        latency_chart(
            &day_series,
            &day_latency_marks,
            24 * 60,
            " latency · 24 h ".into(),
        ),
        bottom_right,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn series_fill_every_minute_and_skip_latency_without_attempts() {
        let now = DateTime::from_timestamp(1_700_000_030, 0).unwrap();
        let minute = |ago: i64, delivered: u32, failed: u32, p99: Option<u64>| MinuteStats {
            minute: minute_of(now) - Duration::minutes(ago),
            attempts: delivered + failed,
            delivered,
            failed,
            latency_p50_ms: p99.map(|p| p / 2),
            latency_p99_ms: p99,
            ..MinuteStats::default()
        };
        let minutes = vec![
            minute(90, 9, 9, Some(5_000)),
            minute(2, 4, 1, Some(200)),
            minute(0, 1, 0, Some(50)),
        ];
        let s = series(&minutes, now, 60);
        assert_eq!(s.delivered.len(), 60);
        assert_eq!(s.delivered[59], (0.0, 1.0));
        assert_eq!(s.delivered[57], (-2.0, 4.0));
        assert_eq!(s.failed[57], (-2.0, 1.0));
        // The minute 90 ago is outside the hour.
        assert_eq!((s.attempts, s.delivered_total), (6, 5));
        assert_eq!(s.p99, vec![(-2.0, 200.0), (0.0, 50.0)]);
        assert_eq!((s.max_latency_ms, s.max_count), (200, 4));
        assert_eq!(series(&minutes, now, 24 * 60).attempts, 24);
    }

    #[test]
    fn marks_are_the_windows_notices_that_change_delivery() {
        use crate::model::{NoticeCause, NoticeKind};
        let now = DateTime::from_timestamp(1_700_000_030, 0).unwrap();
        let notice = |minutes_ago: i64, kind: NoticeKind, cause: NoticeCause| Notice {
            id: ulid::Ulid::nil(),
            at: now - Duration::minutes(minutes_ago),
            kind,
            destination: Some("orders".into()),
            event: None,
            cause,
            acked_at: None,
        };
        let notices = vec![
            notice(5, NoticeKind::DestinationRecovered, NoticeCause::Delivered),
            notice(
                10,
                NoticeKind::ConcurrencyLowered { from: 4, to: 3 },
                NoticeCause::Status { status: 429 },
            ),
            notice(
                90,
                NoticeKind::DestinationDisabled { attempt: Some(2) },
                NoticeCause::Status { status: 404 },
            ),
            notice(
                25 * 60,
                NoticeKind::DestinationPaused,
                NoticeCause::Operator,
            ),
        ];
        let hour = marks(&notices, now, 60);
        assert_eq!(
            hour,
            vec![Mark {
                minutes_ago: 5,
                color: Color::Green
            }]
        );
        let day: Vec<i64> = marks(&notices, now, 24 * 60)
            .iter()
            .map(|m| m.minutes_ago)
            .collect();
        assert_eq!(day, vec![5, 90], "no 429, nothing older than a day");
        assert!(mark_label(&notices[2]).ends_with("disabled (answered 404)"));
    }
}

//! The bulk jobs (`J`): every running job and the last 100 finished ones,
//! newest first, one row each (state, progress, results, when, what it
//! retries), the selected one told in full below, and the keys at the bottom.
//! Jobs are stored: a restart resumes a running one, and the list survives.

use crate::engine::JobProgress;
use crate::tui::app::{job_summary, App};
use crate::tui::job_list::JobList;
use crate::tui::text::{absolute_time, age, ellipsize};
use crate::tui::theme::{key_hints, popup_block};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

/// Lines below the list telling the selected job in full.
const DETAIL_LINES: u16 = 2;

/// The rows of jobs the popup shows at a terminal of `size`.
pub fn rows(size: (u16, u16)) -> usize {
    super::list_popup_rows(size, DETAIL_LINES)
}

fn state_color(job: &JobProgress) -> Color {
    match job.state_word() {
        "running" => Color::Cyan,
        "completed" if job.failed == 0 => Color::Green,
        "completed" => Color::Yellow,
        _ => Color::Gray,
    }
}

fn row(job: &JobProgress, app: &App, width: usize, selected: bool) -> Line<'static> {
    let progress = format!("{:>6}/{:<6}", job.done, job.total);
    // Skipped ones are in the detail line below: the row keeps its width.
    let results = format!("{:>6} ok {:>5} failed", job.succeeded, job.failed);
    let when = format!("{:>4} ago", age(job.started_at, app.now));
    // Selection, state, progress, results, when, each with a space after it.
    let used = 2 + 11 + progress.len() + 1 + results.len() + 1 + when.len() + 1;
    let mut line = Line::from(vec![
        Span::raw(if selected { "▸ " } else { "  " }),
        Span::styled(
            format!("{:<10} ", job.state_word()),
            Style::new().fg(state_color(job)).bold(),
        ),
        Span::raw(format!("{progress} ")),
        Span::raw(format!("{results} ")),
        Span::styled(format!("{when} "), Style::new().fg(Color::Gray)),
        Span::raw(ellipsize(
            &job.selection.words(),
            width.saturating_sub(used),
        )),
    ]);
    if selected {
        line = line.patch_style(Style::new().add_modifier(Modifier::REVERSED));
    }
    line
}

/// The selected job in full: its id and times; its results in words.
fn selected_lines(job: &JobProgress, app: &App, width: usize) -> Vec<Line<'static>> {
    let mut first = format!(
        "{} · started {} ({} ago)",
        job.id,
        absolute_time(job.started_at),
        age(job.started_at, app.now)
    );
    if let Some(at) = job.finished_at {
        first.push_str(&format!(" · finished {} ago", age(at, app.now)));
    }
    vec![
        Line::from(Span::styled(ellipsize(&first, width), Style::new().bold())),
        Line::from(ellipsize(
            &format!("{} · {}", job_summary(job), job.selection.words()),
            width,
        )),
    ]
}

fn keys_line(read_only: bool) -> Line<'static> {
    let mut pairs = vec![("j/k", "move")];
    if !read_only {
        pairs.push(("x", "cancel a running job"));
    }
    pairs.push(("Esc", "close"));
    Line::from(key_hints(&pairs))
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect, list: &JobList) {
    let rect = super::list_popup_rect(area);
    frame.render_widget(Clear, rect);
    let block = popup_block("Bulk jobs");
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [summary, rule, body, detail, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(DETAIL_LINES),
        Constraint::Length(1),
    ])
    .areas(inner);
    let width = inner.width as usize;
    let (running, finished) = list.counts();
    let summary_text = match (&list.error, list.loaded) {
        (Some(error), _) => Span::styled(ellipsize(error, width), Style::new().fg(Color::Red)),
        (None, false) => Span::raw("reading…"),
        (None, true) => Span::raw(ellipsize(
            &format!(
                "{running} running, {finished} finished (the last 100 are kept; a restart resumes a running job)"
            ),
            width,
        )),
    };
    frame.render_widget(Paragraph::new(Line::from(summary_text)), summary);
    frame.render_widget(
        Paragraph::new("─".repeat(width)).style(Style::new().fg(Color::DarkGray)),
        rule,
    );
    let shown = body.height as usize;
    let first = list.selected.saturating_sub(shown.saturating_sub(1));
    let lines: Vec<Line> = if list.loaded && list.jobs.is_empty() {
        vec![Line::from(Span::styled(
            "no bulk jobs yet (R on the main screen retries what the filter shows)",
            Style::new().fg(Color::Gray),
        ))]
    } else {
        list.jobs
            .iter()
            .enumerate()
            .skip(first)
            .take(shown)
            .map(|(i, job)| row(job, app, width, i == list.selected))
            .collect()
    };
    frame.render_widget(Paragraph::new(lines), body);
    if let Some(job) = list.selected_job() {
        frame.render_widget(Paragraph::new(selected_lines(job, app, width)), detail);
    }
    frame.render_widget(Paragraph::new(keys_line(app.info.read_only)), keys);
}

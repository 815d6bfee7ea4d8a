//! `hookwatch bulk retry|list|status|cancel`.

use super::table::{or_dash, when, Table};
use super::{print, print_json, BulkCommand, Daemon, Failure, Selection};
use crate::control::Control;
use crate::engine::{BulkSelection, JobProgress, JobState};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// How often `--wait` reads the job's progress.
const POLL: Duration = Duration::from_millis(200);

pub(super) async fn run(daemon: &Daemon, command: &BulkCommand) -> Result<(), Failure> {
    match command {
        BulkCommand::Retry {
            selection,
            wait,
            output,
        } => retry(daemon, selection, *wait, output.json).await,
        BulkCommand::List { output } => list(daemon, output.json).await,
        BulkCommand::Status { job, output } => {
            let progress = daemon
                .control
                .bulk_progress(job)
                .await
                .map_err(|e| daemon.failure(e))?;
            report(&progress, output.json)
        }
        BulkCommand::Cancel { job, output } => {
            let progress = daemon
                .control
                .cancel_bulk(job)
                .await
                .map_err(|e| daemon.failure(e))?;
            report(&progress, output.json)
        }
    }
}

/// The jobs as a table (`{"jobs": [...]}` with `--json`, as `GET /v1/bulk`).
async fn list(daemon: &Daemon, json: bool) -> Result<(), Failure> {
    let jobs = daemon
        .control
        .bulk_jobs()
        .await
        .map_err(|e| daemon.failure(e))?;
    if json {
        return print_json(&serde_json::json!({ "jobs": jobs }));
    }
    if jobs.is_empty() {
        return print("no bulk jobs\n");
    }
    let now = daemon.control.now();
    let mut table = Table::new([
        "ID",
        "STARTED",
        "STATE",
        "DONE",
        "DELIVERED",
        "FAILED",
        "SKIPPED",
        "FINISHED",
        "SELECTION",
    ]);
    for job in &jobs {
        table.row(vec![
            job.id.clone(),
            when(job.started_at, now),
            job.state_word().to_string(),
            format!("{}/{}", job.done, job.total),
            job.succeeded.to_string(),
            job.failed.to_string(),
            job.skipped.to_string(),
            or_dash(job.finished_at.map(|at| when(at, now))),
            job.selection.words(),
        ]);
    }
    print(&table.render())
}

fn report(progress: &JobProgress, json: bool) -> Result<(), Failure> {
    if json {
        print_json(progress)
    } else {
        print(&format!("{}\n", describe(progress)))
    }
}

/// "job J completed: 12 of 12 retried, 10 delivered, 2 failed" (and ", N
/// skipped" when some were delivered meanwhile and not retried).
fn describe(progress: &JobProgress) -> String {
    format!(
        "job {} {}: {} of {} retried, {}",
        progress.id,
        progress.state_word(),
        progress.done,
        progress.total,
        results(progress)
    )
}

/// "10 delivered, 2 failed[, 3 skipped]".
fn results(progress: &JobProgress) -> String {
    let mut text = format!(
        "{} delivered, {} failed",
        progress.succeeded, progress.failed
    );
    if progress.skipped > 0 {
        text.push_str(&format!(
            ", {} skipped (nothing owed any more)",
            progress.skipped
        ));
    }
    text
}

/// `bulk retry --json` when the selection matches nothing:
/// `{"started": false, "count": 0}` (a started job prints its progress).
#[derive(serde::Serialize)]
struct NothingStarted {
    started: bool,
    count: u64,
}

async fn retry(
    daemon: &Daemon,
    selection: &Selection,
    wait: bool,
    json: bool,
) -> Result<(), Failure> {
    if selection.destination.is_none()
        && selection.state.is_none()
        && selection.topic.is_none()
        && selection.label.is_none()
    {
        return Err(Failure::BadInput(
            "give at least one of --destination, --state, --topic, --label (a bulk retry of every event is refused)"
                .to_string(),
        ));
    }
    let selection = BulkSelection::from_filter(&selection.filter());
    // A selection of nothing starts no job (one of 0 events would only be
    // noise to follow): say so, and succeed.
    let count = daemon
        .control
        .count_selection(selection.clone())
        .await
        .map_err(|e| daemon.failure(e))?;
    if count == 0 {
        if json {
            return print_json(&NothingStarted {
                started: false,
                count,
            });
        }
        return print("nothing matches: no job started\n");
    }
    // Listening before the job starts: a Ctrl-C from then on asks, rather
    // than killing the client and leaving the job unmentioned.
    let interrupts = if wait {
        Some(signal(SignalKind::interrupt()).map_err(|e| {
            Failure::Output(std::io::Error::new(
                e.kind(),
                format!("cannot listen for Ctrl-C: {e}"),
            ))
        })?)
    } else {
        None
    };
    let job = daemon
        .control
        .start_bulk_retry(selection)
        .await
        .map_err(|e| daemon.failure(e))?;
    let Some(interrupts) = interrupts else {
        if json {
            return print_json(&job);
        }
        return print(&format!(
            "started job {} retrying {} events (follow it: hookwatch bulk status {})\n",
            job.id, job.total, job.id
        ));
    };
    if !json {
        print(&format!(
            "started job {} retrying {} events\n",
            job.id, job.total
        ))?;
    }
    let last = follow(daemon, job, interrupts).await?;
    report(&last, json)
}

/// Shows the job's progress until it ends. Ctrl-C asks whether to cancel the
/// job; a second Ctrl-C while asking leaves it running and stops following.
async fn follow(
    daemon: &Daemon,
    job: JobProgress,
    mut interrupts: Signal,
) -> Result<JobProgress, Failure> {
    let bar = ProgressBar::with_draw_target(Some(job.total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} retried, {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut progress = job;
    loop {
        bar.set_position(progress.done);
        bar.set_message(results(&progress));
        // A cancelled job still finishes the attempts it had running: its
        // counts are final only once it says it has finished.
        if progress.finished || progress.state == JobState::Completed {
            bar.finish_and_clear();
            return Ok(progress);
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = interrupts.recv() => {
                bar.set_draw_target(ProgressDrawTarget::hidden());
                match ask_to_cancel(&progress.id, &mut interrupts).await {
                    Some(true) => {
                        progress = daemon
                            .control
                            .cancel_bulk(&progress.id)
                            .await
                            .map_err(|e| daemon.failure(e))?;
                        continue;
                    }
                    Some(false) => bar.set_draw_target(ProgressDrawTarget::stderr()),
                    None => {
                        bar.finish_and_clear();
                        return Err(Failure::Interrupted { job: progress.id.clone() });
                    }
                }
            }
        }
        progress = daemon
            .control
            .bulk_progress(&progress.id)
            .await
            .map_err(|e| daemon.failure(e))?;
    }
}

/// Asks on the terminal; `Some(answer)`, or `None` when interrupted again.
/// Anything but "y"/"yes" (an empty line, end of input) is no.
async fn ask_to_cancel(job: &str, interrupts: &mut Signal) -> Option<bool> {
    eprint!("\ncancel the job {job}? [y/N] ");
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    });
    tokio::select! {
        answer = answer => {
            let line = answer.ok().and_then(Result::ok).unwrap_or_default();
            Some(matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
        }
        _ = interrupts.recv() => {
            eprintln!();
            None
        }
    }
}

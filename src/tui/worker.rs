//! Carries out [`Action`]s through [`Control`] in spawned tasks, so key handling
//! never waits on an HTTP attempt or a store read; results come back over a
//! channel.

use super::app::{plural, Action, ActionResult};
use crate::control::{Control, ControlError, Totals};
use crate::engine::stats::{DestinationStats, StatsWindow};
use crate::engine::JobProgress;
use crate::model::{EventId, Notice, NoticeQuery, MAX_NOTICE_PAGE};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// What a spawned task sends back to the loop.
pub enum Done {
    /// The answer to an [`Action`].
    Result(ActionResult),
    /// The counters the rate meters sample, every tick.
    Totals(Totals),
    /// A running bulk job's progress, every tick.
    BulkProgress(JobProgress),
    /// Pane 1's destinations' statistics of the last hour, every few seconds.
    ListStats(Vec<DestinationStats>),
}

impl From<ActionResult> for Done {
    fn from(result: ActionResult) -> Self {
        Done::Result(result)
    }
}

pub type Results = UnboundedSender<Done>;

/// The tick's reads: the totals for the rate meters and, while a bulk job
/// runs, its progress.
pub fn spawn_tick(control: &Arc<dyn Control>, bulk_job: Option<String>, results: Results) {
    let control = control.clone();
    tokio::spawn(async move {
        if let Ok(totals) = control.totals().await {
            let _ = results.send(Done::Totals(totals));
        }
        if let Some(job) = bulk_job {
            if let Ok(progress) = control.bulk_progress(&job).await {
                let _ = results.send(Done::BulkProgress(progress));
            }
        }
    });
}

/// Reads the last hour of each of `ids` for pane 1; a destination that fails
/// to answer (deleted meanwhile) is left out.
pub fn spawn_list_stats(control: &Arc<dyn Control>, ids: Vec<String>, results: Results) {
    let control = control.clone();
    tokio::spawn(async move {
        let reads = futures_util::future::join_all(
            ids.iter()
                .map(|id| control.destination_stats(id, StatsWindow::Hour)),
        )
        .await;
        let read = reads.into_iter().filter_map(Result::ok).collect();
        let _ = results.send(Done::ListStats(read));
    });
}

/// Starts `action`; `Quit`, `Refresh` and `CopyToClipboard` are the loop's
/// and are ignored here.
pub fn spawn(control: &Arc<dyn Control>, action: Action, results: Results) {
    let control = control.clone();
    match action {
        Action::Quit | Action::Refresh | Action::CopyToClipboard(_) => {}
        Action::ReadDestinationStats(id) => {
            let notices = (control.clone(), results.clone(), id.clone());
            tokio::spawn(async move {
                let (control, results, destination) = notices;
                // Marks on the charts: without them the charts still stand.
                if let Ok(notices) = destination_notices(&*control, &destination).await {
                    let _ = results.send(
                        ActionResult::DestinationNotices {
                            destination,
                            notices,
                        }
                        .into(),
                    );
                }
            });
            tokio::spawn(async move {
                let (hour, day) = futures_util::future::join(
                    control.destination_stats(&id, StatsWindow::Hour),
                    control.destination_stats(&id, StatsWindow::Day),
                )
                .await;
                let result = match (hour, day) {
                    (Ok(hour), Ok(day)) => ActionResult::DestinationStats {
                        hour: Box::new(hour),
                        day: Box::new(day),
                    },
                    (Err(e), _) | (_, Err(e)) => {
                        ActionResult::Error(format!("statistics of {id}: {e}"))
                    }
                };
                let _ = results.send(result.into());
            });
        }
        Action::ReadNotices(query) => {
            tokio::spawn(async move {
                let result = match control.notices(query).await {
                    Ok(page) => ActionResult::Notices { query, page },
                    Err(e) => ActionResult::NoticesFailed(format!("notices: {e}")),
                };
                let _ = results.send(result.into());
            });
        }
        Action::AckNotice(id) => {
            tokio::spawn(async move {
                let result = match control.ack_notice(id).await {
                    Ok(notice) => ActionResult::NoticeAcked(Box::new(notice)),
                    Err(e) => ActionResult::Error(format!("acknowledge: {e}")),
                };
                let _ = results.send(result.into());
            });
        }
        Action::ReadJobs => {
            tokio::spawn(async move {
                let result = match control.bulk_jobs().await {
                    Ok(jobs) => ActionResult::Jobs(jobs),
                    Err(e) => ActionResult::JobsFailed(format!("bulk jobs: {e}")),
                };
                let _ = results.send(result.into());
            });
        }
        Action::AckNotices(selection) => {
            tokio::spawn(async move {
                let result = match control.ack_notices(selection).await {
                    Ok(n) => ActionResult::NoticesAcked(n),
                    Err(e) => ActionResult::Error(format!("acknowledge: {e}")),
                };
                let _ = results.send(result.into());
            });
        }
        Action::RetryNow(ids) => {
            tokio::spawn(async move {
                let outcomes =
                    futures_util::future::join_all(ids.iter().map(|id| control.retry_now(*id)))
                        .await;
                let mut delivered = 0;
                let mut failed = 0;
                let mut errors = Vec::new();
                for outcome in outcomes {
                    match outcome {
                        Ok(s) if s.success => delivered += 1,
                        Ok(_) => failed += 1,
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                let result = if ids.len() == 1 && errors.len() == 1 {
                    ActionResult::Error(format!("retry: {}", errors[0]))
                } else if ids.len() == 1 {
                    ActionResult::Info(if delivered == 1 {
                        "retried: delivered".into()
                    } else {
                        "retried: failed again (schedule unchanged)".into()
                    })
                } else {
                    let mut text = format!(
                        "retried {}: {delivered} delivered, {failed} failed",
                        plural(ids.len(), "event")
                    );
                    if !errors.is_empty() {
                        text.push_str(&format!(", {} errors", errors.len()));
                    }
                    ActionResult::Info(text)
                };
                let _ = results.send(result.into());
            });
        }
        Action::Mute(ids) => {
            tokio::spawn(async move {
                let result = each(&ids, |id| {
                    let control = control.clone();
                    async move { control.mute(id).await.map(|_| ()) }
                })
                .await;
                let _ = results.send(summarise("cancelled", &ids, result).into());
            });
        }
        Action::Requeue(ids) => {
            tokio::spawn(async move {
                let result = each(&ids, |id| {
                    let control = control.clone();
                    async move { control.requeue(id).await.map(|_| ()) }
                })
                .await;
                let _ = results.send(summarise("requeued", &ids, result).into());
            });
        }
        Action::Resend(ids) => {
            tokio::spawn(async move {
                let result = each(&ids, |id| {
                    let control = control.clone();
                    async move { control.resend(id).await.map(|_| ()) }
                })
                .await;
                let _ = results
                    .send(summarise("requeued (delivered ones resent)", &ids, result).into());
            });
        }
        Action::CountBulk(selection) => {
            tokio::spawn(async move {
                let result = match control.count_selection(selection).await {
                    Ok(n) => ActionResult::Counted(n),
                    Err(e) => ActionResult::Error(format!("count: {e}")),
                };
                let _ = results.send(result.into());
            });
        }
        Action::StartBulk(selection) => {
            tokio::spawn(async move {
                let result = match control.start_bulk_retry(selection).await {
                    Ok(progress) => ActionResult::BulkStarted(progress),
                    Err(e) => ActionResult::Error(format!("bulk retry: {e}")),
                };
                let _ = results.send(result.into());
            });
        }
        Action::CancelBulk(id) => {
            tokio::spawn(async move {
                let result = match control.cancel_bulk(&id).await {
                    Ok(progress) => {
                        let _ = results.send(ActionResult::BulkProgress(progress).into());
                        ActionResult::Info(
                            "cancelling the bulk retry: the attempts running finish first".into(),
                        )
                    }
                    Err(e) => ActionResult::Error(format!("cancel: {e}")),
                };
                let _ = results.send(result.into());
            });
        }
        Action::PatchDestination { id, patch } => {
            tokio::spawn(async move {
                let what = describe_patch(&patch);
                let result = match control.patch_destination(&id, patch).await {
                    Ok(_) => ActionResult::Info(format!("{id}: {what}")),
                    Err(e) => ActionResult::Error(format!("{id}: {e}")),
                };
                let _ = results.send(result.into());
            });
        }
        Action::CreateDestination(definition) => {
            tokio::spawn(async move {
                let result = match control.create_destination(definition).await {
                    Ok(view) => ActionResult::Created(view.id),
                    Err(ControlError::Invalid { field, message }) => ActionResult::CreateRefused {
                        field: Some(field),
                        message,
                    },
                    Err(e) => ActionResult::CreateRefused {
                        field: None,
                        message: e.to_string(),
                    },
                };
                let _ = results.send(result.into());
            });
        }
        Action::DeleteDestination { id, drain } => {
            tokio::spawn(async move {
                let result = match control.delete_destination(&id, drain).await {
                    Ok(deleted) if deleted.draining => ActionResult::Info(format!(
                        "{id} is draining: it takes no new events and is deleted once it owes nothing"
                    )),
                    Ok(deleted) => ActionResult::Info(format!(
                        "deleted {id}; {} cancelled",
                        plural(deleted.cancelled as usize, "owed event")
                    )),
                    Err(e) => ActionResult::Error(format!("delete {id}: {e}")),
                };
                let _ = results.send(result.into());
            });
        }
    }
}

/// How many pages of notices the destination view reads back, newest first,
/// looking for the last day's notices of its destination: notices are few
/// (a handful per incident), so a day of them fits in far fewer; past this
/// the marks show the newest ones only.
const DESTINATION_NOTICE_PAGES: usize = 4;

/// `destination`'s notices of the last 24 hours, newest first, for the marks
/// on its charts. `Control::notices` lists every destination's, so this
/// pages back through them (at most [`DESTINATION_NOTICE_PAGES`] pages of
/// [`MAX_NOTICE_PAGE`]) until it passes a day ago, keeping the destination's.
pub async fn destination_notices(
    control: &dyn Control,
    destination: &str,
) -> Result<Vec<Notice>, ControlError> {
    let since = control.now() - chrono::TimeDelta::hours(24);
    let mut found = Vec::new();
    let mut before = None;
    for _ in 0..DESTINATION_NOTICE_PAGES {
        let page = control
            .notices(NoticeQuery {
                before,
                limit: MAX_NOTICE_PAGE,
                unacked_only: false,
            })
            .await?;
        let older = page.notices.last().is_none_or(|n| n.at < since);
        found.extend(
            page.notices
                .into_iter()
                .filter(|n| n.at >= since && n.destination.as_deref() == Some(destination)),
        );
        before = page.next_before;
        if older || before.is_none() {
            break;
        }
    }
    Ok(found)
}

fn describe_patch(patch: &crate::engine::DestinationPatch) -> &'static str {
    if patch.retry.is_some() {
        "retry policy saved; applies at the next attempt"
    } else if patch.paused == Some(true) {
        "paused"
    } else if patch.paused == Some(false) {
        "resumed"
    } else if patch.enabled == Some(true) {
        "enabled"
    } else {
        "saved"
    }
}

async fn each<F, Fut>(ids: &[EventId], f: F) -> (usize, Vec<String>)
where
    F: Fn(EventId) -> Fut,
    Fut: std::future::Future<Output = Result<(), ControlError>>,
{
    let mut ok = 0;
    let mut errors = Vec::new();
    for id in ids {
        match f(*id).await {
            Ok(()) => ok += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    (ok, errors)
}

fn summarise(verb: &str, ids: &[EventId], (ok, errors): (usize, Vec<String>)) -> ActionResult {
    match errors.first() {
        None => ActionResult::Info(format!("{verb} {}", plural(ok, "event"))),
        // One event: the refusal names it and says why; that is the whole line.
        Some(only) if ids.len() == 1 => ActionResult::Error(only.clone()),
        Some(first) => ActionResult::Error(format!(
            "{verb} {} of {}; {} failed: {first}",
            ok,
            ids.len(),
            errors.len()
        )),
    }
}

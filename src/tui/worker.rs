//! Carries out [`Action`]s against the engine in spawned tasks, so key handling
//! never waits on an HTTP attempt; results come back over a channel.

use super::app::{plural, Action, ActionResult};
use crate::engine::{BulkSelection, Engine, EngineError, MAX_PAGE};
use crate::model::EventId;
use tokio::sync::mpsc::UnboundedSender;

pub type Results = UnboundedSender<ActionResult>;

/// Starts `action`; `Quit` and `Refresh` are the loop's and are ignored here.
pub fn spawn(engine: &Engine, action: Action, results: Results) {
    let engine = engine.clone();
    match action {
        Action::Quit | Action::Refresh => {}
        Action::RetryNow(ids) => {
            tokio::spawn(async move {
                let outcomes =
                    futures_util::future::join_all(ids.iter().map(|id| engine.retry_now(*id)))
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
                let _ = results.send(result);
            });
        }
        Action::Mute(ids) => {
            tokio::spawn(async move {
                let result = each(&ids, |id| {
                    let engine = engine.clone();
                    async move { engine.mute(id).await.map(|_| ()) }
                })
                .await;
                let _ = results.send(summarise("cancelled", &ids, result));
            });
        }
        Action::Requeue(ids) => {
            tokio::spawn(async move {
                let result = each(&ids, |id| {
                    let engine = engine.clone();
                    async move { engine.requeue(id).await.map(|_| ()) }
                })
                .await;
                let _ = results.send(summarise("requeued", &ids, result));
            });
        }
        Action::CountBulk(selection) => {
            tokio::task::spawn_blocking(move || {
                let result = match count(&engine, &selection) {
                    Ok(n) => ActionResult::Counted(n),
                    Err(e) => ActionResult::Error(format!("count: {e}")),
                };
                let _ = results.send(result);
            });
        }
        Action::StartBulk(selection) => {
            let result = match engine.start_bulk_retry(selection) {
                Ok(progress) => ActionResult::BulkStarted(progress),
                Err(e) => ActionResult::Error(format!("bulk retry: {e}")),
            };
            let _ = results.send(result);
        }
        Action::CancelBulk(id) => {
            let result = match engine.cancel_bulk(&id) {
                Ok(progress) => {
                    let _ = results.send(ActionResult::BulkProgress(progress));
                    ActionResult::Info("bulk retry cancelled after the attempts running".into())
                }
                Err(e) => ActionResult::Error(format!("cancel: {e}")),
            };
            let _ = results.send(result);
        }
        Action::PatchDestination { id, patch } => {
            tokio::spawn(async move {
                let what = describe_patch(&patch);
                let result = match engine.patch_destination(&id, patch).await {
                    Ok(()) => ActionResult::Info(format!("{id}: {what}")),
                    Err(e) => ActionResult::Error(format!("{id}: {e}")),
                };
                let _ = results.send(result);
            });
        }
    }
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
    Fut: std::future::Future<Output = Result<(), EngineError>>,
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
        Some(first) => ActionResult::Error(format!(
            "{verb} {} of {}; {} failed: {first}",
            ok,
            ids.len(),
            errors.len()
        )),
    }
}

/// How many events a bulk selection covers: from the per-state counts when
/// that is exact, else by paging through the listing (never all at once).
pub fn count(engine: &Engine, selection: &BulkSelection) -> Result<u64, EngineError> {
    if let Some(ids) = &selection.ids {
        return Ok(ids.len() as u64);
    }
    if selection.topic.is_none()
        && selection.created_after.is_none()
        && selection.created_before.is_none()
    {
        let views = match &selection.destination {
            Some(id) => vec![engine.destination_view(id)?],
            None => engine.destinations()?,
        };
        return Ok(views
            .iter()
            .map(|v| match selection.state {
                Some(state) => v.counts.get(state),
                None => crate::model::EventState::ALL
                    .iter()
                    .map(|s| v.counts.get(*s))
                    .sum(),
            })
            .sum());
    }
    let filter = crate::model::EventFilter {
        destination: selection.destination.clone(),
        state: selection.state,
        topic: selection.topic.clone(),
        created_after: selection.created_after,
        created_before: selection.created_before,
    };
    let mut total = 0u64;
    let mut after = None;
    loop {
        let page = engine.list_events(&filter, after, MAX_PAGE)?;
        total += page.events.len() as u64;
        match page.next.and_then(|n| n.parse().ok()) {
            Some(next) => after = Some(next),
            None => return Ok(total),
        }
    }
}

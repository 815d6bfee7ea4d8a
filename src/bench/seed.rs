//! Stores built directly through the store module, for the scenarios that
//! start the engine on a backlog.

use super::load::payload;
use super::{setup, BenchError};
use crate::model::{
    AttemptRecord, EventState, EventTransition, FailReason, StateCounts, Trigger, Verdict,
};
use crate::store::{NewEvent, Store, Transitioned};
use std::path::Path;

/// What a seeded event has been through by the time the engine starts.
#[derive(Clone, Copy, Debug)]
pub(super) enum Fate {
    /// One failed attempt; the next automatic retry is due at this time.
    Retrying(chrono::DateTime<chrono::Utc>),
    /// One failed attempt and given up for good (`failed`, retries exhausted).
    Failed,
}

/// Writes `count` events for `bench-0` (topic `bench`) in state retrying, due
/// at `due(seq)`.
pub(super) async fn build_store(
    path: &Path,
    count: u64,
    payload_bytes: usize,
    due: impl Fn(u64) -> chrono::DateTime<chrono::Utc>,
) -> Result<(), BenchError> {
    build_store_with(path, count, payload_bytes, |seq| {
        ("bench", Fate::Retrying(due(seq)))
    })
    .await
}

/// Writes `count` events for `bench-0`, each with the topic and fate
/// `plan(seq)` gives it, in batches of 10,000.
pub(super) async fn build_store_with(
    path: &Path,
    count: u64,
    payload_bytes: usize,
    plan: impl Fn(u64) -> (&'static str, Fate),
) -> Result<(), BenchError> {
    let store = Store::open_redb(path).map_err(setup)?;
    let (retrying, failed) = write_events(&store, count, payload_bytes, |seq| {
        let (topic, fate) = plan(seq);
        ("bench-0".to_string(), topic, fate)
    })
    .await?;
    let counts: StateCounts = store.counts("bench-0").map_err(setup)?;
    if counts.retrying != retrying || counts.failed != failed {
        return Err(BenchError::Setup(format!(
            "built {} retrying and {} failed events, wanted {retrying} and {failed}",
            counts.retrying, counts.failed
        )));
    }
    store.close().await;
    Ok(())
}

/// Writes `count` events into an existing store (one the engine made and
/// left), each for the destination, with the topic and fate, `plan(seq)`
/// gives it.
pub(super) async fn add_events(
    path: &Path,
    count: u64,
    payload_bytes: usize,
    plan: impl Fn(u64) -> (String, &'static str, Fate),
) -> Result<(), BenchError> {
    let store = Store::open_redb(path).map_err(setup)?;
    write_events(&store, count, payload_bytes, plan).await?;
    store.close().await;
    Ok(())
}

/// The events `plan` describes, in batches of 10,000 (stored in one commit,
/// then given their failed attempt in a second): only through the store's
/// typed writes, so the same seed fills any store. Returns how many were
/// left retrying and how many failed.
async fn write_events(
    store: &Store,
    count: u64,
    payload_bytes: usize,
    plan: impl Fn(u64) -> (String, &'static str, Fate),
) -> Result<(u64, u64), BenchError> {
    let now = chrono::Utc::now();
    let mut generator = ulid::Generator::new();
    const BATCH: u64 = 10_000;
    let mut seq = 0;
    let (mut retrying, mut failed) = (0u64, 0u64);
    while seq < count {
        let end = (seq + BATCH).min(count);
        let mut batch = Vec::with_capacity((end - seq) as usize);
        for n in seq..end {
            let id = generator
                .generate_from_datetime(now.into())
                .map_err(|e| setup(format!("{e:?}")))?;
            let (destination, topic, fate) = plan(n);
            match fate {
                Fate::Retrying(_) => retrying += 1,
                Fate::Failed => failed += 1,
            }
            batch.push((id, destination, topic, fate, payload(n, payload_bytes)));
        }
        let mut events = Vec::with_capacity(batch.len());
        let mut attempts = Vec::with_capacity(batch.len());
        for (id, destination, topic, fate, body) in batch {
            events.push(NewEvent {
                id,
                destination,
                topic: topic.into(),
                content_type: Some("application/json".into()),
                payload: body,
                idempotency_key: None,
                created_at: now,
            });
            // One failed first attempt, as behind a real outage.
            let verdict = match fate {
                Fate::Retrying(due_at) => Verdict::Retry {
                    at: due_at,
                    pinned: false,
                },
                Fate::Failed => Verdict::Failed {
                    reason: FailReason::RetriesExhausted,
                },
            };
            attempts.push((id, failed_attempt(Trigger::Initial, now, verdict)));
        }
        store.insert_events(events).await.map_err(setup)?;
        apply_all(store, attempts).await?;
        seq = end;
    }
    Ok((retrying, failed))
}

/// A failed attempt (503) made at `at`, with the policy's `verdict`.
pub(super) fn failed_attempt(
    trigger: Trigger,
    at: chrono::DateTime<chrono::Utc>,
    verdict: Verdict,
) -> EventTransition {
    EventTransition::AttemptRecorded {
        attempt: AttemptRecord {
            n: 0,
            at,
            trigger,
            status: Some(503),
            error: None,
            duration_ms: 1,
            response_excerpt: String::new(),
            decision: "bench setup".into(),
        },
        verdict,
    }
}

/// Moves the first `count` events' due times earlier by `shift`, recording it
/// as one more failed retry.
pub(super) async fn shift_due_times(
    path: &Path,
    count: u64,
    shift: chrono::Duration,
) -> Result<(), BenchError> {
    let store = Store::open_redb(path).map_err(setup)?;
    let now = chrono::Utc::now();
    let ids = store
        .ids_in_state("bench-0", EventState::Retrying, None, count as usize)
        .map_err(setup)?;
    for chunk in ids.chunks(5000) {
        let mut retries = Vec::with_capacity(chunk.len());
        for &id in chunk {
            let Some(record) = store.get_event(id).map_err(setup)? else {
                continue;
            };
            if let Some(due_at) = record.next_attempt_at {
                // Another failed retry, rescheduling the event `shift` earlier.
                let verdict = Verdict::Retry {
                    at: due_at - shift,
                    pinned: false,
                };
                retries.push((id, failed_attempt(Trigger::Automatic, now, verdict)));
            }
        }
        apply_all(&store, retries).await?;
    }
    store.close().await;
    Ok(())
}

/// Applies `transitions` in one commit; any the store did not apply is a
/// setup failure (the scenario would measure something else).
async fn apply_all(
    store: &Store,
    transitions: Vec<(crate::model::EventId, EventTransition)>,
) -> Result<(), BenchError> {
    let answers = store.transition_many(transitions).await.map_err(setup)?;
    match answers
        .iter()
        .find(|answer| !matches!(answer, Transitioned::Applied { .. }))
    {
        Some(refused) => Err(setup(format!(
            "a seeded transition was not applied: {refused:?}"
        ))),
        None => Ok(()),
    }
}

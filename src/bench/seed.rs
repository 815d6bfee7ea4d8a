//! Stores built directly through the store module, for the scenarios that
//! start the engine on a backlog.

use super::load::payload;
use super::{setup, BenchError};
use crate::model::{
    AttemptRecord, EventState, EventTransition, FailReason, StateCounts, Trigger, Verdict,
};
use crate::store::{NewEvent, Store};
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
/// `plan(seq)` gives it, a batch of 10,000 per commit.
pub(super) async fn build_store_with(
    path: &Path,
    count: u64,
    payload_bytes: usize,
    plan: impl Fn(u64) -> (&'static str, Fate),
) -> Result<(), BenchError> {
    let store = Store::open(path).map_err(setup)?;
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
    let store = Store::open(path).map_err(setup)?;
    write_events(&store, count, payload_bytes, plan).await?;
    store.close().await;
    Ok(())
}

/// The events `plan` describes, a batch of 10,000 per commit; returns how
/// many were left retrying and how many failed.
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
        store
            .write(move |tables| {
                for (id, destination, topic, fate, body) in &batch {
                    tables.insert_event(NewEvent {
                        id: *id,
                        destination: destination.clone(),
                        topic: (*topic).into(),
                        content_type: Some("application/json".into()),
                        payload: body.clone(),
                        idempotency_key: None,
                        created_at: now,
                    })?;
                    // One failed first attempt, as behind a real outage.
                    let verdict = match *fate {
                        Fate::Retrying(due_at) => Verdict::Retry {
                            at: due_at,
                            pinned: false,
                        },
                        Fate::Failed => Verdict::Failed {
                            reason: FailReason::RetriesExhausted,
                        },
                    };
                    tables.transition(*id, failed_attempt(Trigger::Initial, now, verdict))?;
                }
                Ok(())
            })
            .await
            .map_err(setup)?;
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
    let store = Store::open(path).map_err(setup)?;
    let now = chrono::Utc::now();
    let ids = store
        .ids_in_state("bench-0", EventState::Retrying, None, count as usize)
        .map_err(setup)?;
    for chunk in ids.chunks(5000) {
        let chunk = chunk.to_vec();
        store
            .write(move |tables| {
                for &id in &chunk {
                    // Another failed retry, rescheduling the event `shift` earlier.
                    let Some(record) = tables.event(id)? else {
                        continue;
                    };
                    if let Some(due_at) = record.next_attempt_at {
                        tables.transition(
                            id,
                            failed_attempt(
                                Trigger::Automatic,
                                now,
                                Verdict::Retry {
                                    at: due_at - shift,
                                    pinned: false,
                                },
                            ),
                        )?;
                    }
                }
                Ok(())
            })
            .await
            .map_err(setup)?;
    }
    store.close().await;
    Ok(())
}

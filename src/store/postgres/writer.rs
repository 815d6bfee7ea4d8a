//! The writer: one task that gathers every write waiting at that moment into
//! one transaction (group commit, as the redb store's writer thread does).
//! A lone write is committed at once; under concurrent ingest many share one
//! COMMIT (one WAL flush). Each write learns its answer only after the COMMIT
//! that carried it.
//!
//! Writes are typed operations ([`Op`]) rather than closures over tables: a
//! closure over redb's tables cannot run on PostgreSQL. A write that fails on
//! its own data (a record that does not decode, a constraint) fails alone and
//! the rest of its group is committed without it; a write that met another
//! node's transaction in a deadlock runs again with its group; anything else
//! (the connection lost) fails the group, and nothing in it is acknowledged.

use super::error::{query_err, PgError};
use super::{bound_bytes, id_bytes, id_from};
use crate::model::{
    AttemptRecord, DestinationRuntime, EventId, EventRecord, EventState, EventTransition, Notice,
    NoticeId, NoticeSelection, Reason, Trigger,
};
use crate::store::{
    bulk_jobs::FINISHED_BULK_JOBS_KEPT, tables::decode, ulid_floor, BulkLane, CommitStats,
    Inserted, NewEvent, StoreError, Transitioned, IDEMPOTENCY_WINDOW,
};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::{Json, ToSql};

/// How many waiting writes one commit may carry; bounds a commit's latency.
const MAX_GROUP: usize = 2048;
/// How many times a group that lost a deadlock to another node's transaction
/// is run again before its writes fail.
const CONFLICT_RETRIES: u32 = 5;
/// Ids per stored chunk of a bulk job's id list.
const IDS_PER_CHUNK: usize = 4096;

type Txn<'a> = deadpool_postgres::Transaction<'a>;

/// One write.
pub(super) enum Op {
    Insert(Vec<NewEvent>),
    Transitions(Vec<(EventId, EventTransition)>),
    PutDestination {
        id: String,
        document: Vec<u8>,
    },
    DeleteDestination {
        id: String,
    },
    PutStats {
        minutes: Vec<(String, i64, Vec<u8>)>,
        keep_from_ms: i64,
    },
    AckNotice {
        id: NoticeId,
        at: DateTime<Utc>,
    },
    AckNotices {
        selection: NoticeSelection,
        at: DateTime<Utc>,
    },
    PruneNotices {
        cutoff: DateTime<Utc>,
    },
    StoreNotices {
        notices: Vec<Notice>,
        alerts: Vec<NewEvent>,
    },
    PutRuntime {
        destination: String,
        /// Boxed: it is many times the size of every other op.
        runtime: Box<DestinationRuntime>,
    },
    Purge {
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: usize,
    },
    PurgeOldest {
        limit: usize,
        /// Behind a mutex only so that an op is `Sync` (the writer holds it
        /// across awaits); it is called from the writer alone.
        spare: std::sync::Mutex<Box<dyn Fn(EventId) -> bool + Send>>,
    },
    CreateBulkJob {
        id: ulid::Ulid,
        record: Vec<u8>,
        lanes: Vec<BulkLane>,
    },
    SaveBulkJob {
        id: ulid::Ulid,
        record: Vec<u8>,
        finished: bool,
    },
}

/// What a write answers, by kind.
#[derive(Debug)]
pub(super) enum Answer {
    Inserted(Vec<Inserted>),
    Transitioned(Vec<Transitioned>),
    Done,
    Count(u64),
    Notice(Option<Notice>),
    Purged(usize),
}

// Each write's method knows which answer its op gets; another is a bug in
// `apply`, not something a caller could handle.
impl Answer {
    pub(super) fn inserted(self) -> Result<Vec<Inserted>, StoreError> {
        match self {
            Answer::Inserted(inserted) => Ok(inserted),
            other => unreachable!("an insert answered {other:?}"),
        }
    }

    pub(super) fn transitioned(self) -> Result<Vec<Transitioned>, StoreError> {
        match self {
            Answer::Transitioned(answers) => Ok(answers),
            other => unreachable!("transitions answered {other:?}"),
        }
    }

    pub(super) fn done(self) -> Result<(), StoreError> {
        match self {
            Answer::Done => Ok(()),
            other => unreachable!("a plain write answered {other:?}"),
        }
    }

    pub(super) fn count(self) -> Result<u64, StoreError> {
        match self {
            Answer::Count(n) => Ok(n),
            other => unreachable!("a counting write answered {other:?}"),
        }
    }

    pub(super) fn notice(self) -> Result<Option<Notice>, StoreError> {
        match self {
            Answer::Notice(notice) => Ok(notice),
            other => unreachable!("an acknowledgement answered {other:?}"),
        }
    }

    pub(super) fn purged(self) -> Result<usize, StoreError> {
        match self {
            Answer::Purged(n) => Ok(n),
            other => unreachable!("a purge answered {other:?}"),
        }
    }
}

/// A write and the one waiting for its answer.
pub(super) struct Job {
    pub(super) op: Op,
    pub(super) done: oneshot::Sender<Result<Answer, StoreError>>,
}

/// Gathers the writes waiting at each moment into one transaction, until
/// every sender is gone.
pub(super) async fn run(
    pool: deadpool_postgres::Pool,
    mut queue: mpsc::UnboundedReceiver<Job>,
    stats: Arc<CommitStats>,
) {
    let mut batch = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_group(&pool, &mut batch, &stats).await;
    }
}

/// How a group's transaction failed.
enum GroupFailure {
    /// The write at this position failed on its own.
    Alone(usize, StoreError),
    /// The transaction (connection, commit) failed.
    Group(StoreError),
    /// One of the writes merged into one statement failed on its own; which
    /// one is found by running them apart.
    InMerged,
}

/// Commits `batch` in one transaction and answers every job in it.
async fn commit_group(pool: &deadpool_postgres::Pool, batch: &mut Vec<Job>, stats: &CommitStats) {
    let mut conflicts = 0;
    // Runs of inserts (and of transitions) are merged into one statement
    // each, unless one of them failed on its own: then each runs alone, so
    // that the one at fault is found and the rest go on.
    let mut merge = true;
    while !batch.is_empty() {
        match try_group(pool, batch, merge).await {
            Ok(answers) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats
                    .writes
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                for (job, answer) in batch.drain(..).zip(answers) {
                    let _ = job.done.send(Ok(answer));
                }
            }
            Err(GroupFailure::InMerged) => merge = false,
            Err(GroupFailure::Alone(at, error)) => {
                tracing::warn!(%error, "a store write failed on its own; the rest of its group went on");
                let job = batch.remove(at);
                let _ = job.done.send(Err(error));
            }
            Err(GroupFailure::Group(StoreError::Postgres(e)))
                if e.is_conflict() && conflicts < CONFLICT_RETRIES =>
            {
                // Another node's transaction held rows this group wanted in
                // the other order; the server rolled ours back. Run it again.
                conflicts += 1;
                tracing::debug!(error = %e, conflicts, "store commit lost a conflict; running it again");
            }
            Err(GroupFailure::Group(error)) => {
                tracing::error!(%error, "store commit failed; nothing in it was acknowledged");
                if !stats.closing.load(Ordering::Relaxed) {
                    stats.record_failure(batch.len(), &error);
                }
                let shared = Arc::new(error);
                for job in batch.drain(..) {
                    let _ = job.done.send(Err(StoreError::CommitFailed(shared.clone())));
                }
            }
        }
    }
}

async fn try_group(
    pool: &deadpool_postgres::Pool,
    batch: &[Job],
    merge: bool,
) -> Result<Vec<Answer>, GroupFailure> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| GroupFailure::Group(PgError::Unreachable(e).into()))?;
    let txn = client
        .transaction()
        .await
        .map_err(|e| GroupFailure::Group(query_err(e)))?;
    let mut answers = Vec::with_capacity(batch.len());
    let mut at = 0;
    while at < batch.len() {
        let end = if merge { run_end(batch, at) } else { at + 1 };
        let applied = if end - at > 1 {
            apply_merged(&txn, &batch[at..end], &mut answers).await
        } else {
            apply(&txn, &batch[at].op)
                .await
                .map(|answer| answers.push(answer))
        };
        if let Err(error) = applied {
            let _ = txn.rollback().await;
            return Err(match (fails_alone(&error), end - at > 1) {
                (true, true) => GroupFailure::InMerged,
                (true, false) => GroupFailure::Alone(at, error),
                (false, _) => GroupFailure::Group(error),
            });
        }
        at = end;
    }
    txn.commit()
        .await
        .map_err(|e| GroupFailure::Group(query_err(e)))?;
    Ok(answers)
}

/// Where the run of writes of one mergeable kind (inserts, transitions)
/// starting at `at` ends.
fn run_end(batch: &[Job], at: usize) -> usize {
    let kind = |job: &Job| match job.op {
        Op::Insert(_) => Some(0),
        Op::Transitions(_) => Some(1),
        _ => None,
    };
    let Some(first) = kind(&batch[at]) else {
        return at + 1;
    };
    at + batch[at..]
        .iter()
        .take_while(|job| kind(job) == Some(first))
        .count()
}

/// Applies a run of inserts, or of transitions, as one write, and answers
/// each job its share, in order.
async fn apply_merged(
    txn: &Txn<'_>,
    run: &[Job],
    answers: &mut Vec<Answer>,
) -> Result<(), StoreError> {
    match &run[0].op {
        Op::Insert(_) => {
            let events: Vec<&NewEvent> = run
                .iter()
                .flat_map(|job| match &job.op {
                    Op::Insert(events) => events.iter(),
                    _ => unreachable!("a run of inserts holds inserts"),
                })
                .collect();
            let mut inserted = insert_events(txn, &events).await?.into_iter();
            for job in run {
                let Op::Insert(events) = &job.op else {
                    unreachable!("a run of inserts holds inserts")
                };
                answers.push(Answer::Inserted(
                    inserted.by_ref().take(events.len()).collect(),
                ));
            }
        }
        Op::Transitions(_) => {
            let list: Vec<&(EventId, EventTransition)> = run
                .iter()
                .flat_map(|job| match &job.op {
                    Op::Transitions(list) => list.iter(),
                    _ => unreachable!("a run of transitions holds transitions"),
                })
                .collect();
            let mut done = transitions(txn, &list).await?.into_iter();
            for job in run {
                let Op::Transitions(list) = &job.op else {
                    unreachable!("a run of transitions holds transitions")
                };
                answers.push(Answer::Transitioned(
                    done.by_ref().take(list.len()).collect(),
                ));
            }
        }
        _ => unreachable!("only inserts and transitions are merged"),
    }
    Ok(())
}

/// Whether a write's error is its own (its group goes on without it).
fn fails_alone(error: &StoreError) -> bool {
    match error {
        StoreError::CorruptJson { .. } | StoreError::CorruptBulkJob(_) => true,
        StoreError::Postgres(e) => e.is_own_failure(),
        _ => false,
    }
}

async fn apply(txn: &Txn<'_>, op: &Op) -> Result<Answer, StoreError> {
    Ok(match op {
        Op::Insert(events) => {
            let events: Vec<&NewEvent> = events.iter().collect();
            Answer::Inserted(insert_events(txn, &events).await?)
        }
        Op::Transitions(list) => {
            let list: Vec<&(EventId, EventTransition)> = list.iter().collect();
            Answer::Transitioned(transitions(txn, &list).await?)
        }
        Op::PutDestination { id, document } => {
            execute(
                txn,
                "INSERT INTO hookwatch.destinations (id, document) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document",
                &[id, document],
            )
            .await?;
            Answer::Done
        }
        Op::DeleteDestination { id } => Answer::Count(delete_destination(txn, id).await?),
        Op::PutStats {
            minutes,
            keep_from_ms,
        } => {
            put_stats(txn, minutes, *keep_from_ms).await?;
            Answer::Done
        }
        Op::AckNotice { id, at } => Answer::Notice(ack_notice(txn, *id, *at).await?),
        Op::AckNotices { selection, at } => Answer::Count(ack_notices(txn, selection, *at).await?),
        Op::PruneNotices { cutoff } => {
            execute(
                txn,
                "DELETE FROM hookwatch.notices WHERE id < $1",
                &[&bound_bytes(ulid_floor(*cutoff))],
            )
            .await?;
            Answer::Done
        }
        Op::StoreNotices { notices, alerts } => {
            for notice in notices {
                execute(
                    txn,
                    "INSERT INTO hookwatch.notices (id, acked, record) VALUES ($1, $2, $3)
                     ON CONFLICT (id) DO UPDATE SET acked = EXCLUDED.acked, record = EXCLUDED.record",
                    &[&id_bytes(notice.id), &notice.acked_at.is_some(), &Json(notice)],
                )
                .await?;
            }
            let alerts: Vec<&NewEvent> = alerts.iter().collect();
            Answer::Inserted(insert_events(txn, &alerts).await?)
        }
        Op::PutRuntime {
            destination,
            runtime,
        } => {
            execute(
                txn,
                "INSERT INTO hookwatch.destination_runtime (destination, runtime) VALUES ($1, $2)
                 ON CONFLICT (destination) DO UPDATE SET runtime = EXCLUDED.runtime",
                &[destination, &Json(runtime.as_ref())],
            )
            .await?;
            Answer::Done
        }
        Op::Purge { cutoff, now, limit } => {
            Answer::Purged(purge(txn, *cutoff, *now, *limit).await?)
        }
        Op::PurgeOldest { limit, spare } => Answer::Purged(purge_oldest(txn, *limit, spare).await?),
        Op::CreateBulkJob { id, record, lanes } => {
            create_bulk_job(txn, *id, record, lanes).await?;
            Answer::Done
        }
        Op::SaveBulkJob {
            id,
            record,
            finished,
        } => {
            save_bulk_job(txn, *id, record, *finished).await?;
            Answer::Done
        }
    })
}

async fn statement(txn: &Txn<'_>, sql: &str) -> Result<tokio_postgres::Statement, StoreError> {
    txn.prepare_cached(sql).await.map_err(query_err)
}

async fn execute(
    txn: &Txn<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let statement = statement(txn, sql).await?;
    txn.execute(&statement, params).await.map_err(query_err)
}

async fn query(
    txn: &Txn<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let statement = statement(txn, sql).await?;
    txn.query(&statement, params).await.map_err(query_err)
}

/// The state codes of owed events (pending, retrying) or of finished ones.
fn state_codes(owed: bool) -> Vec<i16> {
    EventState::ALL
        .into_iter()
        .filter(|s| s.awaits_delivery() == owed)
        .map(|s| s.code() as i16)
        .collect()
}

/// Where a record sits in the due index: its next attempt time, if its state
/// awaits delivery (the redb store's `due_ms`).
pub(super) fn due_ms(record: &EventRecord) -> Option<i64> {
    record
        .next_attempt_at
        .filter(|_| record.state.awaits_delivery())
        .map(|at| at.timestamp_millis())
}

/// The record of a new event: pending and due at once, or skipped as a
/// duplicate of `duplicate_of`. The same record the redb store's
/// `Tables::insert_event` builds.
fn new_record(event: &NewEvent, duplicate_of: Option<EventId>) -> EventRecord {
    let state = if duplicate_of.is_some() {
        EventState::Skipped
    } else {
        EventState::Pending
    };
    EventRecord {
        id: event.id,
        destination: event.destination.clone(),
        topic: event.topic.clone(),
        content_type: event.content_type.clone(),
        created_at: event.created_at,
        state,
        attempt_count: 0,
        automatic_retries: 0,
        cycle_started_at: event.created_at,
        next_attempt_at: (state == EventState::Pending).then_some(event.created_at),
        next_trigger: Some(Trigger::Initial),
        last_status: None,
        last_error: None,
        reason: duplicate_of.map(|_| Reason::Duplicate),
        duplicate_of,
        idempotency_key: event.idempotency_key.clone(),
        payload_bytes: event.payload.len() as u64,
        schedule_pinned: false,
    }
}

/// Claims an idempotency key for a new event: inserted when unseen, taken
/// over when the event holding it is older than the window, otherwise left
/// (no row returned: the new event is a duplicate). One statement, so two
/// nodes storing the same key at once cannot both claim it.
const CLAIM_KEY: &str =
    "INSERT INTO hookwatch.idempotency_keys (destination, key, event_id, created_ms)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (destination, key) DO UPDATE
         SET event_id = EXCLUDED.event_id, created_ms = EXCLUDED.created_ms
         WHERE hookwatch.idempotency_keys.created_ms < EXCLUDED.created_ms - $5
     RETURNING event_id";

/// Stores new events: their idempotency keys claimed first, one after the
/// other in order (a later event of the batch with an earlier one's key is
/// its duplicate), then every record and payload in one statement.
async fn insert_events(txn: &Txn<'_>, events: &[&NewEvent]) -> Result<Vec<Inserted>, StoreError> {
    let mut records = Vec::with_capacity(events.len());
    for event in events {
        let duplicate_of = match &event.idempotency_key {
            Some(key) => claim_key(txn, event, key).await?,
            None => None,
        };
        records.push(new_record(event, duplicate_of));
    }
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Vec<u8>> = records.iter().map(|r| id_bytes(r.id)).collect();
    let destinations: Vec<&str> = records.iter().map(|r| r.destination.as_str()).collect();
    let topics: Vec<&str> = records.iter().map(|r| r.topic.as_str()).collect();
    let states: Vec<i16> = records.iter().map(|r| r.state.code() as i16).collect();
    let dues: Vec<Option<i64>> = records.iter().map(due_ms).collect();
    let docs: Vec<Json<&EventRecord>> = records.iter().map(Json).collect();
    let bodies: Vec<&[u8]> = events.iter().map(|e| e.payload.as_ref()).collect();
    execute(
        txn,
        "WITH stored AS (
             INSERT INTO hookwatch.events (id, destination, topic, state, next_attempt_ms, record)
             SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::int2[], $5::int8[], $6::jsonb[]))
         INSERT INTO hookwatch.payloads (id, body) SELECT * FROM unnest($1::bytea[], $7::bytea[])",
        &[&ids, &destinations, &topics, &states, &dues, &docs, &bodies],
    )
    .await?;
    Ok(records
        .into_iter()
        .map(|record| Inserted {
            id: record.id,
            destination: record.destination,
            state: record.state,
            duplicate_of: record.duplicate_of,
        })
        .collect())
}

/// Claims `key` for `event`; answers the event holding it when the new one
/// is a duplicate.
async fn claim_key(
    txn: &Txn<'_>,
    event: &NewEvent,
    key: &str,
) -> Result<Option<EventId>, StoreError> {
    let created_ms = event.created_at.timestamp_millis();
    let window_ms = IDEMPOTENCY_WINDOW.num_milliseconds();
    let claimed = query(
        txn,
        CLAIM_KEY,
        &[
            &event.destination,
            &key,
            &id_bytes(event.id),
            &created_ms,
            &window_ms,
        ],
    )
    .await?;
    if !claimed.is_empty() {
        return Ok(None);
    }
    let holder = query(
        txn,
        "SELECT event_id FROM hookwatch.idempotency_keys WHERE destination = $1 AND key = $2",
        &[&event.destination, &key],
    )
    .await?;
    // The claim found the key held (it waits for a concurrent claim to
    // commit), so this later statement sees the holder.
    let first: Vec<u8> = holder
        .first()
        .map(|row| row.get(0))
        .ok_or(PgError::Inconsistent(
            "an idempotency key the claim found held has no holder",
        ))?;
    Ok(Some(id_from("event", &first)?))
}

/// Applies transitions in order: locks the rows (in id order, so that two
/// nodes' groups take them in the same order), applies each with
/// [`EventRecord::apply`], then writes the changed records and the attempts
/// in one statement each.
async fn transitions(
    txn: &Txn<'_>,
    list: &[&(EventId, EventTransition)],
) -> Result<Vec<Transitioned>, StoreError> {
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<Vec<u8>> = list.iter().map(|(id, _)| id_bytes(*id)).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = query(
        txn,
        "SELECT id, record::text FROM hookwatch.events WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[&ids],
    )
    .await?;
    // `None`: a record that does not decode, which nothing can change.
    let mut records: HashMap<EventId, Option<EventRecord>> = HashMap::with_capacity(rows.len());
    for row in rows {
        let id = id_from("event", row.get(0))?;
        let text: &str = row.get(1);
        let record = match serde_json::from_str::<EventRecord>(text) {
            Ok(record) => Some(record),
            Err(error) => {
                tracing::error!(event = %id, %error, "event record does not decode; it is left as it is and treated as gone");
                None
            }
        };
        records.insert(id, record);
    }
    let mut answers = Vec::with_capacity(list.len());
    let mut changed: Vec<EventId> = Vec::new();
    let mut changed_set: HashSet<EventId> = HashSet::new();
    let mut attempts: Vec<(EventId, AttemptRecord)> = Vec::new();
    for (id, transition) in list.iter().copied() {
        let Some(Some(record)) = records.get_mut(id) else {
            answers.push(Transitioned::NotFound);
            continue;
        };
        let mut after = record.clone();
        match after.apply(transition.clone()) {
            Err(refusal) => answers.push(Transitioned::Refused(refusal)),
            Ok(applied) => {
                if let Some(attempt) = applied.attempt {
                    attempts.push((*id, attempt));
                }
                if applied.changed {
                    *record = after.clone();
                    if changed_set.insert(*id) {
                        changed.push(*id);
                    }
                }
                answers.push(Transitioned::Applied {
                    record: Box::new(after),
                    changed: applied.changed,
                });
            }
        }
    }
    if !changed.is_empty() {
        let mut ids = Vec::with_capacity(changed.len());
        let mut states = Vec::with_capacity(changed.len());
        let mut dues = Vec::with_capacity(changed.len());
        let mut docs = Vec::with_capacity(changed.len());
        for id in &changed {
            let record = records[id].as_ref().expect("a changed record decoded");
            ids.push(id_bytes(*id));
            states.push(record.state.code() as i16);
            dues.push(due_ms(record));
            docs.push(Json(record));
        }
        execute(
            txn,
            "UPDATE hookwatch.events AS e
             SET state = u.state, next_attempt_ms = u.due, record = u.record
             FROM unnest($1::bytea[], $2::int2[], $3::int8[], $4::jsonb[]) AS u(id, state, due, record)
             WHERE e.id = u.id",
            &[&ids, &states, &dues, &docs],
        )
        .await?;
    }
    if !attempts.is_empty() {
        let ids: Vec<Vec<u8>> = attempts.iter().map(|(id, _)| id_bytes(*id)).collect();
        let ns: Vec<i32> = attempts.iter().map(|(_, a)| a.n as i32).collect();
        let ats: Vec<i64> = attempts
            .iter()
            .map(|(_, a)| a.at.timestamp_millis())
            .collect();
        let docs: Vec<Json<&AttemptRecord>> = attempts.iter().map(|(_, a)| Json(a)).collect();
        execute(
            txn,
            "INSERT INTO hookwatch.attempts (event_id, n, at_ms, record)
             SELECT * FROM unnest($1::bytea[], $2::int4[], $3::int8[], $4::jsonb[])",
            &[&ids, &ns, &ats, &docs],
        )
        .await?;
    }
    Ok(answers)
}

/// Cancels every event `id` still owes (with the same transition as the redb
/// store), and drops its document, runtime state and statistics.
async fn delete_destination(txn: &Txn<'_>, id: &str) -> Result<u64, StoreError> {
    let rows = query(
        txn,
        "SELECT id FROM hookwatch.events WHERE destination = $1 AND state = ANY($2) ORDER BY id",
        &[&id, &state_codes(true)],
    )
    .await?;
    let mut list = Vec::with_capacity(rows.len());
    for row in rows {
        list.push((
            id_from("event", row.get(0))?,
            EventTransition::DestinationDeleted,
        ));
    }
    let list: Vec<&(EventId, EventTransition)> = list.iter().collect();
    let cancelled = transitions(txn, &list)
        .await?
        .iter()
        .filter(|answer| matches!(answer, Transitioned::Applied { changed: true, .. }))
        .count() as u64;
    execute(
        txn,
        "DELETE FROM hookwatch.destinations WHERE id = $1",
        &[&id],
    )
    .await?;
    execute(
        txn,
        "DELETE FROM hookwatch.destination_runtime WHERE destination = $1",
        &[&id],
    )
    .await?;
    execute(
        txn,
        "DELETE FROM hookwatch.stats WHERE destination = $1",
        &[&id],
    )
    .await?;
    Ok(cancelled)
}

async fn put_stats(
    txn: &Txn<'_>,
    minutes: &[(String, i64, Vec<u8>)],
    keep_from_ms: i64,
) -> Result<(), StoreError> {
    let mut pruned = HashSet::new();
    for (destination, minute_ms, bytes) in minutes {
        execute(
            txn,
            "INSERT INTO hookwatch.stats (destination, minute_ms, bytes) VALUES ($1, $2, $3)
             ON CONFLICT (destination, minute_ms) DO UPDATE SET bytes = EXCLUDED.bytes",
            &[destination, minute_ms, bytes],
        )
        .await?;
        if pruned.insert(destination.as_str()) {
            execute(
                txn,
                "DELETE FROM hookwatch.stats WHERE destination = $1 AND minute_ms < $2",
                &[destination, &keep_from_ms],
            )
            .await?;
        }
    }
    Ok(())
}

/// Acknowledges one notice at `at`; an acknowledged one keeps its first time.
async fn ack_notice(
    txn: &Txn<'_>,
    id: NoticeId,
    at: DateTime<Utc>,
) -> Result<Option<Notice>, StoreError> {
    let key = id_bytes(id);
    let rows = query(
        txn,
        "SELECT record::text FROM hookwatch.notices WHERE id = $1 FOR UPDATE",
        &[&key],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let text: &str = row.get(0);
    let mut notice: Notice = decode("notice", text.as_bytes())?;
    if notice.acked_at.is_none() {
        notice.acked_at = Some(at);
        execute(
            txn,
            "UPDATE hookwatch.notices SET acked = true, record = $2 WHERE id = $1",
            &[&key, &Json(&notice)],
        )
        .await?;
    }
    Ok(Some(notice))
}

/// Acknowledges the unacknowledged notices `selection` covers; answers how
/// many. Reads the unacknowledged ones only (their partial index).
async fn ack_notices(
    txn: &Txn<'_>,
    selection: &NoticeSelection,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let upper = selection.before.map_or(u128::MAX, |b| b.0);
    let rows = query(
        txn,
        "SELECT id FROM hookwatch.notices WHERE NOT acked AND id < $1 ORDER BY id",
        &[&bound_bytes(upper)],
    )
    .await?;
    let mut acked = 0;
    for row in rows {
        let id = id_from("notice", row.get(0))?;
        if selection
            .ids
            .as_ref()
            .is_some_and(|only| !only.contains(&id))
        {
            continue;
        }
        if ack_notice(txn, id, at).await?.is_some() {
            acked += 1;
        }
    }
    Ok(acked)
}

/// Removes up to `limit` finished events created before `cutoff`, oldest
/// first (their payloads and attempts go with them), and, once none is left
/// below the cutoff, the idempotency keys past their window.
async fn purge(
    txn: &Txn<'_>,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StoreError> {
    let finished = state_codes(false);
    let upper = bound_bytes(ulid_floor(cutoff));
    let purged = execute(
        txn,
        "DELETE FROM hookwatch.events WHERE id IN (
             SELECT id FROM hookwatch.events WHERE state = ANY($1) AND id < $2
             ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)",
        &[&finished, &upper, &(limit as i64)],
    )
    .await?;
    let more_left: bool = query(
        txn,
        "SELECT EXISTS (SELECT 1 FROM hookwatch.events WHERE state = ANY($1) AND id < $2)",
        &[&finished, &upper],
    )
    .await?[0]
        .get(0);
    if !more_left {
        let window_start = (now - IDEMPOTENCY_WINDOW).timestamp_millis();
        execute(
            txn,
            "DELETE FROM hookwatch.idempotency_keys WHERE created_ms < $1",
            &[&window_start],
        )
        .await?;
    }
    Ok(purged as usize)
}

/// Removes up to `limit` finished events, oldest first, whatever their age,
/// passing over those `spare` answers true for.
async fn purge_oldest(
    txn: &Txn<'_>,
    limit: usize,
    spare: &std::sync::Mutex<Box<dyn Fn(EventId) -> bool + Send>>,
) -> Result<usize, StoreError> {
    let finished = state_codes(false);
    // Spared ids are read past, but not without end.
    let scan_limit = limit.saturating_mul(16).max(limit + 1);
    let rows = query(
        txn,
        "SELECT id FROM hookwatch.events WHERE state = ANY($1) ORDER BY id LIMIT $2",
        &[&finished, &(scan_limit as i64)],
    )
    .await?;
    let mut doomed = Vec::with_capacity(limit);
    {
        let spare = spare.lock().expect("spare lock");
        for row in rows {
            if doomed.len() == limit {
                break;
            }
            let id = id_from("event", row.get(0))?;
            if !spare(id) {
                doomed.push(id_bytes(id));
            }
        }
    }
    // Still finished when removed: another node may have requeued one since.
    let purged = execute(
        txn,
        "DELETE FROM hookwatch.events WHERE id = ANY($1) AND state = ANY($2)",
        &[&doomed, &finished],
    )
    .await?;
    Ok(purged as usize)
}

/// A chunk of a lane's ids as stored: 16 bytes each, big-endian.
fn chunk_bytes(ids: &[EventId]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.0.to_be_bytes()).collect()
}

async fn create_bulk_job(
    txn: &Txn<'_>,
    id: ulid::Ulid,
    record: &[u8],
    lanes: &[BulkLane],
) -> Result<(), StoreError> {
    let job = id_bytes(id);
    execute(
        txn,
        "INSERT INTO hookwatch.bulk_jobs (id, finished, record) VALUES ($1, false, $2)
         ON CONFLICT (id) DO UPDATE SET finished = false, record = EXCLUDED.record",
        &[&job, &record],
    )
    .await?;
    let mut n = 0i32;
    for lane in lanes {
        for ids in lane.ids.chunks(IDS_PER_CHUNK) {
            execute(
                txn,
                "INSERT INTO hookwatch.bulk_job_ids (job, n, destination, ids) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (job, n) DO UPDATE SET destination = EXCLUDED.destination, ids = EXCLUDED.ids",
                &[&job, &n, &lane.destination, &chunk_bytes(ids)],
            )
            .await?;
            n += 1;
        }
    }
    Ok(())
}

async fn save_bulk_job(
    txn: &Txn<'_>,
    id: ulid::Ulid,
    record: &[u8],
    finished: bool,
) -> Result<(), StoreError> {
    let job = id_bytes(id);
    execute(
        txn,
        "INSERT INTO hookwatch.bulk_jobs (id, finished, record) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET finished = EXCLUDED.finished, record = EXCLUDED.record",
        &[&job, &finished, &record],
    )
    .await?;
    if !finished {
        return Ok(());
    }
    execute(
        txn,
        "DELETE FROM hookwatch.bulk_job_ids WHERE job = $1",
        &[&job],
    )
    .await?;
    // The job finishing now is kept whenever it started, with the newest of
    // the other finished ones (their ids go with them, by cascade).
    let others_kept = (FINISHED_BULK_JOBS_KEPT - 1) as i64;
    execute(
        txn,
        "DELETE FROM hookwatch.bulk_jobs WHERE finished AND id <> $1 AND id NOT IN (
             SELECT id FROM hookwatch.bulk_jobs WHERE finished AND id <> $1
             ORDER BY id DESC LIMIT $2)",
        &[&job, &others_kept],
    )
    .await?;
    Ok(())
}

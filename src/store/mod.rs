//! The durable store: one redb file holding events, payloads, attempts, the due-time
//! index the dispatchers read, idempotency keys, per-destination counts and runtime
//! state. This module is the only one that names a table.
//!
//! Writes go through one writer thread that gathers every request waiting at that
//! moment into a single durable transaction (group commit): under concurrent ingest
//! many events share one fsync, and a lone request is committed at once, with no
//! timer adding latency. Each request learns its result only after the commit that
//! carried it is durable, which is what lets the API acknowledge an event.
//!
//! The rest of hookwatch sees none of this: it holds a [`Store`], a handle
//! over the [`EventStore`] boundary (see `backend`), of which [`RedbStore`]
//! is the redb implementation (see `delegate` for how both stores meet the trait).

mod backend;
mod budget;
mod bulk_jobs;
mod codec;
mod delegate;
pub mod postgres;
#[doc(hidden)]
pub mod power_cut;
mod tables;

pub use backend::{open, EventStore, SpareFn, Store};
pub use budget::{format_bytes, BudgetUse, MIN_BUDGET};

use crate::model::{
    AttemptRecord, DestinationRuntime, EventFilter, EventId, EventRecord, EventState,
    EventTransition, Notice, NoticeId, NoticeQuery, NoticeSelection, StateCounts, TransitionError,
};
use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use std::collections::HashSet;
use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tables::*;
use tokio::sync::{mpsc, oneshot};

pub use bulk_jobs::{BulkJobRow, BulkLane};
pub use tables::Tables;

/// Bumped whenever the layout of a table or record changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;
const MAGIC: &str = "hookwatch";
/// How many waiting requests one commit may carry; bounds a commit's latency.
const MAX_GROUP: usize = 2048;
/// A repeat `Idempotency-Key` is a duplicate only within this window.
pub const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path} is not a hookwatch store (refusing to touch it): {detail}")]
    Foreign { path: PathBuf, detail: String },
    #[error("{path} is a hookwatch store of schema version {found}, this build reads version {expected}; it was left untouched")]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{path} is already open in another process{holder}")]
    Locked { path: PathBuf, holder: String },
    #[error("cannot open store {path}: {detail}")]
    Open { path: PathBuf, detail: String },
    #[error("store write failed: {0}")]
    Write(#[source] redb::Error),
    #[error("store read failed: {0}")]
    Read(#[source] redb::Error),
    /// An event record whose bytes do not decode (see [`codec`]).
    #[error("corrupt event record: {0}")]
    CorruptEvent(String),
    /// A chunk of a bulk job's stored ids that does not decode.
    #[error("corrupt bulk job id list: {0}")]
    CorruptBulkJob(String),
    /// A JSON record (attempt, destination state) that does not decode.
    #[error("corrupt {what} record: {source}")]
    CorruptJson {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The group commit that carried this write failed; the failure is shared
    /// by every write in the group.
    #[error("the commit carrying this write failed: {0}")]
    CommitFailed(#[source] Arc<StoreError>),
    #[error("the store is shut down")]
    Closed,
    #[error("the store is unavailable after a failed write (disk full?); retrying every second")]
    Unavailable,
    /// The store is at its budget (`store.max_size`) with events still owed
    /// only: a new event is refused rather than stored past it.
    #[error("store full: {}", usage.refusal())]
    Full { usage: BudgetUse },
    /// What this store cannot do, or a store this build cannot open.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The database at `url` (shown with its password masked) could not be
    /// opened or reached.
    #[error("cannot open the store at {url}: {source}")]
    Database {
        url: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error(transparent)]
    Postgres(#[from] postgres::PgError),
}

impl StoreError {
    /// True when the storage itself failed (I/O, a poisoned transaction, a
    /// corrupt file): the database must be taken out of service and reopened.
    /// Anything else a write job returns is that job's own failure.
    fn is_storage_failure(&self) -> bool {
        match self {
            StoreError::Write(e) | StoreError::Read(e) => matches!(
                e,
                redb::Error::Io(_)
                    | redb::Error::Backend(_)
                    | redb::Error::PreviousIo
                    | redb::Error::Corrupted(_)
                    | redb::Error::DatabaseClosed
                    | redb::Error::LockPoisoned(_)
                    | redb::Error::TransactionPoisoned
                    | redb::Error::Unsupported
            ),
            StoreError::CommitFailed(inner) => inner.is_storage_failure(),
            StoreError::Unavailable | StoreError::Closed => true,
            _ => false,
        }
    }
}

fn write_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Write(e.into())
}

fn read_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Read(e.into())
}

/// A new event for [`RedbStore::insert_events`].
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub id: EventId,
    pub destination: String,
    pub topic: String,
    pub content_type: Option<String>,
    pub payload: bytes::Bytes,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl NewEvent {
    /// The record the store keeps for this event, and its payload: a new
    /// event is pending, due at once, unless it repeats an idempotency key
    /// (`duplicate_of`), which leaves it skipped. The engine builds the same
    /// record to hand a fresh event to its dispatcher without reading it back.
    pub fn into_record(self, duplicate_of: Option<EventId>) -> (EventRecord, bytes::Bytes) {
        let state = if duplicate_of.is_some() {
            EventState::Skipped
        } else {
            EventState::Pending
        };
        let record = EventRecord {
            id: self.id,
            destination: self.destination,
            topic: self.topic,
            content_type: self.content_type,
            created_at: self.created_at,
            state,
            attempt_count: 0,
            automatic_retries: 0,
            cycle_started_at: self.created_at,
            next_attempt_at: (state == EventState::Pending).then_some(self.created_at),
            next_trigger: Some(crate::model::Trigger::Initial),
            last_status: None,
            last_error: None,
            reason: duplicate_of.map(|_| crate::model::Reason::Duplicate),
            duplicate_of,
            idempotency_key: self.idempotency_key,
            payload_bytes: self.payload.len() as u64,
            schedule_pinned: false,
        };
        (record, self.payload)
    }
}

/// What became of a transition: applied (with the record as it now is), refused
/// by the event's state, or aimed at an event that does not exist (purged). A
/// failed write is the `Err` around it.
#[derive(Clone, Debug, PartialEq)]
pub enum Transitioned {
    Applied {
        record: Box<EventRecord>,
        /// False when the transition was accepted but had nothing to change.
        changed: bool,
    },
    Refused(TransitionError),
    NotFound,
}

/// What became of a [`NewEvent`].
#[derive(Clone, Debug, PartialEq)]
pub struct Inserted {
    pub id: EventId,
    pub destination: String,
    pub state: EventState,
    pub duplicate_of: Option<EventId>,
}

/// One request to the writer: `run` applies it inside the shared transaction,
/// `finish` tells its waiter how the commit that carried it ended. `run` may be
/// called more than once: when another job of the group fails on its own, the
/// group's transaction is abandoned and the remaining jobs run again without it.
struct Job {
    run: ApplyFn,
    finish: Box<dyn FnOnce(Result<(), StoreError>) + Send>,
    /// A fan-out's insert, which a client waits on: committed ahead of the
    /// other jobs waiting with it (see [`Writer::run`]).
    ahead: bool,
}

type ApplyFn = Box<dyn FnMut(&mut Tables<'_>) -> Result<(), StoreError> + Send>;

#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<StoreInner>,
}

/// The open database, or `None` while the writer reopens it after a failed
/// write (redb refuses every operation after an I/O error until reopened).
type DbSlot = Arc<std::sync::RwLock<Option<Arc<Database>>>>;

struct StoreInner {
    db: DbSlot,
    path: PathBuf,
    jobs: mpsc::UnboundedSender<Job>,
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    stats: Arc<CommitStats>,
    /// Events whose record did not decode, queued to be moved to quarantine.
    quarantine_pending: Arc<std::sync::Mutex<HashSet<EventId>>>,
    /// How many commits have written the destination-keyed entries of
    /// deferred inserts (see [`RedbStore::insert_events_deferred`]).
    index_rounds: tokio::sync::watch::Receiver<u64>,
    /// Some stored events still wait for their destination-keyed entries
    /// (set by the writer before their inserts are acknowledged).
    indexing_owed: Arc<std::sync::atomic::AtomicBool>,
}

/// The moment the destination-keyed entries (due, by destination and state,
/// counts) of a [`RedbStore::insert_events_deferred`] are committed: until then
/// its events are stored and readable by id, but no dispatcher sees them due.
#[derive(Debug)]
pub struct Indexed {
    rounds: tokio::sync::watch::Receiver<u64>,
    /// The index commits done when the insert was committed: the next one
    /// carries its entries.
    after: u64,
}

impl Indexed {
    /// The answer of a store that indexes inserted events in the commit
    /// that stores them: already done.
    pub fn done() -> Indexed {
        let (_, rounds) = tokio::sync::watch::channel(1);
        Indexed { rounds, after: 0 }
    }

    /// Waits for that commit. False when the store closed first (the events
    /// are then indexed when it is next opened).
    pub async fn wait(mut self) -> bool {
        let after = self.after;
        self.rounds.wait_for(|done| *done > after).await.is_ok()
    }
}

impl RedbStore {
    /// Opens the store at `path`, creating it (mode 0600) when it does not exist.
    /// A file that is not a hookwatch store, or of another schema version, is refused
    /// and left exactly as it was.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        RedbStore::open_on(path, Medium::File)
    }

    /// [`RedbStore::open`] with the bytes on `backend` instead of in the file at
    /// `path` (which still names the store, in messages and for the holder
    /// note beside it). For tests that cut the power under the store (see
    /// [`power_cut`]). A reopen after a failed write reopens on a clone of
    /// `backend`, so clones must share one disk.
    #[doc(hidden)]
    pub fn open_on_backend<B>(path: &Path, backend: B) -> Result<RedbStore, StoreError>
    where
        B: redb::StorageBackend + Clone,
    {
        RedbStore::open_on(path, Medium::Backend(Arc::new(backend)))
    }

    fn open_on(path: &Path, medium: Medium) -> Result<RedbStore, StoreError> {
        let open_err = |detail: String| StoreError::Open {
            path: path.to_path_buf(),
            detail,
        };
        let fresh = match &medium {
            Medium::File => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| open_err(format!("cannot create {}: {e}", dir.display())))?;
                }
                match std::fs::metadata(path) {
                    Ok(meta) => meta.len() == 0,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                    Err(e) => return Err(open_err(e.to_string())),
                }
            }
            Medium::Backend(backend) => backend.len().map_err(|e| open_err(e.to_string()))? == 0,
        };
        if fresh {
            if let Medium::File = medium {
                // Create it ourselves so the mode is 0600 from the first byte.
                OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| open_err(e.to_string()))?;
            }
        } else {
            check_header(path, &medium)?;
            inspect_read_only(path, &medium)?;
        }
        if let Medium::File = medium {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        let db = open_database_on(path, &medium).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
                path: path.to_path_buf(),
                holder: lock_holder(path),
            },
            other => StoreError::Foreign {
                path: path.to_path_buf(),
                detail: other.to_string(),
            },
        })?;
        verify_or_initialise(&db, path, fresh)?;
        write_lock_note(path);
        let db: DbSlot = Arc::new(std::sync::RwLock::new(Some(Arc::new(db))));
        let (jobs, queue) = mpsc::unbounded_channel();
        let (index_rounds_done, index_rounds) = tokio::sync::watch::channel(0);
        let writer = Writer {
            slot: db.clone(),
            path: path.to_path_buf(),
            medium,
            stats: Arc::new(CommitStats::default()),
            last_reopen: None,
            failed: false,
            unindexed: Vec::new(),
            index_rounds_done,
            indexing_owed: Arc::default(),
        };
        let stats = writer.stats.clone();
        let indexing_owed = writer.indexing_owed.clone();
        {
            let txn = db_for_count(&db)?;
            let quarantine = txn.open_table(QUARANTINE).map_err(read_err)?;
            stats.quarantined.store(
                quarantine.len().map_err(read_err)?,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        let writer = std::thread::Builder::new()
            .name("hookwatch-store-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| open_err(format!("cannot start writer thread: {e}")))?;
        Ok(RedbStore {
            inner: Arc::new(StoreInner {
                db,
                path: path.to_path_buf(),
                jobs,
                writer: std::sync::Mutex::new(Some(writer)),
                stats,
                quarantine_pending: Arc::default(),
                index_rounds,
                indexing_owed,
            }),
        })
    }

    /// Whether acknowledged events still wait for their destination-keyed
    /// entries (due, counts): until the writer's next commit writes them, the
    /// due index does not show them, so "nothing is due" is not yet true.
    pub fn indexing_pending(&self) -> bool {
        self.inner
            .indexing_owed
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Closes the database cleanly (redb records a clean shutdown, so the next
    /// open needs no repair) once the write in progress, if any, is committed.
    /// Writes after this fail with [`StoreError::Unavailable`]. For shutdown.
    pub fn close_now(&self) {
        self.inner
            .stats
            .closing
            .store(true, std::sync::atomic::Ordering::Relaxed);
        retire(&self.inner.db);
    }

    /// The commits that failed since the last call, if any did.
    pub fn take_write_failures(&self) -> Option<WriteFailures> {
        self.inner.stats.take_failures()
    }

    /// Resolves when a commit fails (at once if one failed since the last
    /// wait): for the engine's notice of it.
    pub async fn write_failed(&self) {
        self.inner.stats.failed().await
    }

    pub fn commit_stats(&self) -> &CommitStats {
        &self.inner.stats
    }

    /// Closes the store once every queued write is committed, releasing the file
    /// so another process may open it. Only the last handle closes; earlier ones
    /// just let go.
    pub async fn close(self) {
        let Ok(inner) = Arc::try_unwrap(self.inner) else {
            return;
        };
        let StoreInner {
            db, jobs, writer, ..
        } = inner;
        drop(jobs);
        db.write().expect("store slot lock").take();
        let writer = writer.lock().expect("writer handle lock").take();
        if let Some(writer) = writer {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
    }

    /// Runs `change` inside the next group commit and returns its result once that
    /// commit is durable. `change` may run more than once (each time in a fresh
    /// transaction) when another write of its group fails on its own, so it must
    /// not consume what it captures. Its own failure (a record that does not
    /// decode, say) fails this write alone; a storage failure fails the group and
    /// takes the database out of service until it is reopened. A failure aborts
    /// the change, so it must not be used for "not found"-style answers.
    pub async fn write<R, F>(&self, change: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnMut(&mut Tables<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.write_noting_rounds(change, false)
            .await
            .map(|(value, _)| value)
    }

    /// [`RedbStore::write`], answering also how many index commits of deferred
    /// inserts were done when its own commit was (read on the writer thread
    /// before it starts the next commit, so a deferred insert of this commit
    /// is indexed by the round after that number).
    async fn write_noting_rounds<R, F>(
        &self,
        mut change: F,
        ahead: bool,
    ) -> Result<(R, u64), StoreError>
    where
        R: Send + 'static,
        F: FnMut(&mut Tables<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let rounds = self.inner.index_rounds.clone();
        let (done, result) = oneshot::channel();
        let slot = Arc::new(std::sync::Mutex::new(None));
        let filled = slot.clone();
        let job = Job {
            run: Box::new(move |tables| {
                let value = change(tables)?;
                *filled.lock().expect("result slot") = Some(value);
                Ok(())
            }),
            finish: Box::new(move |committed| {
                let value = slot.lock().expect("result slot").take();
                // A committed job ran to completion in the committed transaction,
                // which filled the slot.
                let answer = committed.map(|()| {
                    (
                        value.expect("a committed change left its result"),
                        *rounds.borrow(),
                    )
                });
                let _ = done.send(answer);
            }),
            ahead,
        };
        self.inner.jobs.send(job).map_err(|_| StoreError::Closed)?;
        result.await.map_err(|_| StoreError::Closed)?
    }

    /// Stores new events (and their payloads) durably. A repeat idempotency key for
    /// the same destination within 24 h is stored as `skipped`.
    pub async fn insert_events(&self, events: Vec<NewEvent>) -> Result<Vec<Inserted>, StoreError> {
        self.refuse_if_full()?;
        let fits = self.insert_check();
        self.write(move |tables| {
            events
                .iter()
                .map(|event| {
                    fits(tables, event.payload.len() as u64)?;
                    tables.insert_event(event.clone())
                })
                .collect()
        })
        .await
    }

    /// Stores new events as [`RedbStore::insert_events`] does, answering once
    /// their records, payloads and id-keyed indexes are durable (so each is
    /// readable by id and survives a crash), and leaving their
    /// destination-keyed entries (due, by destination and state, counts) to
    /// the writer's next commit, right after: [`Indexed`] says when that is
    /// done. Until then the events are not due for any dispatcher, and
    /// listings by destination and the counts do not show them yet. A crash
    /// between the two commits leaves marks that the next open indexes.
    ///
    /// For a fan-out to many destinations: their entries would dirty a leaf
    /// page per destination in every index keyed by destination, which is
    /// most of what the commit the caller waits for would write.
    pub async fn insert_events_deferred(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<(Vec<Inserted>, Indexed), StoreError> {
        self.refuse_if_full()?;
        let fits = self.insert_check();
        let (inserted, after) = self
            .write_noting_rounds(
                move |tables| {
                    events
                        .iter()
                        .map(|event| {
                            fits(tables, event.payload.len() as u64)?;
                            tables.insert_event_deferred(event.clone())
                        })
                        .collect::<Result<Vec<_>, _>>()
                },
                true,
            )
            .await?;
        let indexed = Indexed {
            rounds: self.inner.index_rounds.clone(),
            after,
        };
        Ok((inserted, indexed))
    }

    /// Applies one named transition to an event in one durable transaction.
    pub async fn transition(
        &self,
        id: EventId,
        transition: EventTransition,
    ) -> Result<Transitioned, StoreError> {
        self.write(move |tables| tables.transition(id, transition.clone()))
            .await
    }

    /// Applies many transitions in one durable transaction (a flush moves a
    /// thousand events per commit); one answer per transition, in order.
    pub async fn transition_many(
        &self,
        transitions: Vec<(EventId, EventTransition)>,
    ) -> Result<Vec<Transitioned>, StoreError> {
        self.write(move |tables| {
            transitions
                .iter()
                .map(|(id, transition)| tables.transition(*id, transition.clone()))
                .collect()
        })
        .await
    }

    /// Stores (or replaces) the document of a destination created through
    /// the API, durably.
    pub async fn put_destination(&self, id: String, document: Vec<u8>) -> Result<(), StoreError> {
        self.write(move |tables| tables.put_destination(&id, &document))
            .await
    }

    /// Deletes a destination in one durable transaction (see
    /// [`Tables::delete_destination`]); answers how many owed events were
    /// cancelled.
    pub async fn delete_destination(&self, id: String) -> Result<u64, StoreError> {
        self.write(move |tables| tables.delete_destination(&id))
            .await
    }

    /// Stores minutes of statistics, `(destination, minute start ms, bytes)`,
    /// and drops the written destinations' minutes before `keep_from_ms`.
    pub async fn put_stats(
        &self,
        minutes: Vec<(String, i64, Vec<u8>)>,
        keep_from_ms: i64,
    ) -> Result<(), StoreError> {
        self.write(move |tables| tables.put_stats(&minutes, keep_from_ms))
            .await
    }

    /// A destination's stored minutes of statistics from `since_ms` on,
    /// oldest first.
    pub fn stats_since(
        &self,
        destination: &str,
        since_ms: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.read()?;
        let table = match txn.open_table(STATS) {
            Ok(table) => table,
            // A store from before statistics were kept: none yet.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(read_err(e)),
        };
        let mut out = Vec::new();
        for entry in table
            .range((destination, since_ms)..=(destination, i64::MAX))
            .map_err(read_err)?
        {
            out.push(entry.map_err(read_err)?.1.value().to_vec());
        }
        Ok(out)
    }

    /// Every destination created through the API, with its document.
    pub fn api_destinations(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.read()?;
        let table = match txn.open_table(DESTINATIONS) {
            Ok(table) => table,
            // A store from before destinations could be created through the
            // API: none were (the first one creates the table).
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(read_err(e)),
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(read_err)? {
            let (id, document) = entry.map_err(read_err)?;
            out.push((id.value().to_string(), document.value().to_vec()));
        }
        Ok(out)
    }

    /// Acknowledges one notice durably; `None` when there is no such notice.
    pub async fn ack_notice(
        &self,
        id: NoticeId,
        at: DateTime<Utc>,
    ) -> Result<Option<Notice>, StoreError> {
        self.write(move |tables| tables.ack_notice(id, at)).await
    }

    /// Acknowledges the notices `selection` covers durably; answers how many
    /// were unacknowledged before.
    pub async fn ack_notices(
        &self,
        selection: NoticeSelection,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.write(move |tables| tables.ack_notices(&selection, at))
            .await
    }

    /// Stores `notices`, and the alert events that carry them to `[alerts]`,
    /// in one durable transaction.
    pub async fn insert_notices(
        &self,
        notices: Vec<Notice>,
        alerts: Vec<NewEvent>,
    ) -> Result<(), StoreError> {
        self.write(move |tables| {
            for notice in &notices {
                tables.insert_notice(notice)?;
            }
            for alert in &alerts {
                tables.insert_event(alert.clone())?;
            }
            Ok(())
        })
        .await
    }

    /// Drops notices from before `cutoff`.
    pub async fn prune_notices(&self, cutoff: DateTime<Utc>) -> Result<(), StoreError> {
        self.write(move |tables| tables.prune_notices(cutoff)).await
    }

    /// Notices newest first, older than `query.before`, at most `query.limit`
    /// (only unacknowledged ones with `query.unacked_only`, read through
    /// their index): a reverse range, never the whole table. Answers the
    /// page, the cursor of the next page when there is one, and how many
    /// notices are unacknowledged, all from one read transaction.
    pub fn list_notices(
        &self,
        query: &NoticeQuery,
    ) -> Result<(Vec<Notice>, Option<NoticeId>, u64), StoreError> {
        let txn = self.read()?;
        let notices = match txn.open_table(NOTICES) {
            Ok(table) => table,
            // A store from before notices: none yet.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok((Vec::new(), None, 0)),
            Err(e) => return Err(read_err(e)),
        };
        let unacked = txn.open_table(UNACKED_NOTICES).map_err(read_err)?;
        let upper = query.before.map_or(u128::MAX, |b| b.0);
        let limit = query.limit.max(1);
        let mut out = Vec::with_capacity(limit.min(64));
        let mut more = false;
        let mut take = |raw: &[u8]| -> Result<bool, StoreError> {
            if out.len() == limit {
                more = true;
                return Ok(false);
            }
            out.push(decode::<Notice>("notice", raw)?);
            Ok(true)
        };
        if query.unacked_only {
            for entry in unacked.range(0..upper).map_err(read_err)?.rev() {
                let id = entry.map_err(read_err)?.0.value();
                if let Some(raw) = notices.get(id).map_err(read_err)? {
                    if !take(raw.value())? {
                        break;
                    }
                }
            }
        } else {
            for entry in notices.range(0..upper).map_err(read_err)?.rev() {
                let (_, raw) = entry.map_err(read_err)?;
                if !take(raw.value())? {
                    break;
                }
            }
        }
        let next = if more { out.last().map(|n| n.id) } else { None };
        Ok((out, next, unacked.len().map_err(read_err)?))
    }

    /// How many notices are unacknowledged: the length of their index, which
    /// redb keeps, so no entry is read.
    pub fn unacked_notices(&self) -> Result<u64, StoreError> {
        let txn = self.read()?;
        match txn.open_table(UNACKED_NOTICES) {
            Ok(table) => table.len().map_err(read_err),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(read_err(e)),
        }
    }

    pub async fn put_runtime(
        &self,
        destination: String,
        runtime: DestinationRuntime,
    ) -> Result<(), StoreError> {
        self.write(move |tables| tables.put_runtime(&destination, &runtime))
            .await
    }

    /// Removes finished events created before `cutoff` (and idempotency keys past
    /// their window), at most `limit` events per call so one purge never holds the
    /// writer for long. Returns how many events were removed.
    pub async fn purge(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.write(move |tables| tables.purge(cutoff, now, limit))
            .await
    }

    fn read(&self) -> Result<redb::ReadTransaction, StoreError> {
        self.database()?.begin_read().map_err(read_err)
    }

    /// The open database, unless the writer has it closed for a reopen.
    fn database(&self) -> Result<Arc<Database>, StoreError> {
        self.inner
            .db
            .read()
            .expect("store slot lock")
            .clone()
            .ok_or(StoreError::Unavailable)
    }

    pub fn get_event(&self, id: EventId) -> Result<Option<EventRecord>, StoreError> {
        let txn = self.read()?;
        let events = txn.open_table(EVENTS).map_err(read_err)?;
        let found = events.get(id.0).map_err(read_err)?;
        Ok(found.and_then(|raw| self.decode_or_quarantine(id.0, raw.value())))
    }

    /// The record and the payload in one read, for an attempt.
    pub fn get_for_delivery(
        &self,
        id: EventId,
    ) -> Result<Option<(EventRecord, Vec<u8>)>, StoreError> {
        let txn = self.read()?;
        let events = txn.open_table(EVENTS).map_err(read_err)?;
        let Some(raw) = events.get(id.0).map_err(read_err)? else {
            return Ok(None);
        };
        let Some(record) = self.decode_or_quarantine(id.0, raw.value()) else {
            return Ok(None);
        };
        let payloads = txn.open_table(PAYLOADS).map_err(read_err)?;
        let payload = payloads
            .get(id.0)
            .map_err(read_err)?
            .map(|raw| raw.value().to_vec())
            .unwrap_or_default();
        Ok(Some((record, payload)))
    }

    pub fn get_payload(&self, id: EventId) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.read()?;
        let payloads = txn.open_table(PAYLOADS).map_err(read_err)?;
        let found = payloads.get(id.0).map_err(read_err)?;
        Ok(found.map(|raw| raw.value().to_vec()))
    }

    pub fn attempts(&self, id: EventId) -> Result<Vec<AttemptRecord>, StoreError> {
        let txn = self.read()?;
        let attempts = txn.open_table(ATTEMPTS).map_err(read_err)?;
        let range = attempts
            .range((id.0, 0u32)..=(id.0, u32::MAX))
            .map_err(read_err)?;
        range
            .map(|entry| {
                let (_, raw) = entry.map_err(read_err)?;
                decode("attempt", raw.value())
            })
            .collect()
    }

    /// Newest first, `limit` at most, strictly older than `before` when given. Uses
    /// the narrowest index the filter allows: a destination's (with its state),
    /// else the topic index (the glob matched against the distinct topics, their
    /// ranges merged newest first), else the state index; only a listing without
    /// any of these filters walks the events table, and it keeps every record it
    /// reads. A record that does not decode is skipped and moved aside.
    ///
    /// `among`, when given, keeps only events of these destinations: what the
    /// engine resolved `filter.label` to (the store knows no labels and
    /// ignores `filter.label`).
    pub fn list_events(
        &self,
        filter: &EventFilter,
        among: Option<&[String]>,
        before: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let txn = self.read()?;
        let events = txn.open_table(EVENTS).map_err(read_err)?;
        let upper = before.map(|id| id.0).unwrap_or(u128::MAX);
        // Ids are ULIDs, so a created-at bound is an id bound.
        let upper = match filter.created_before {
            Some(t) => upper.min(ulid_floor(t)),
            None => upper,
        };
        let lower = filter.created_after.map(ulid_floor).unwrap_or(0);
        let mut out = Vec::with_capacity(limit.min(1024));
        // A pattern that cannot compile matches no topic.
        let topic_pattern = filter
            .topic
            .as_deref()
            .map(|topic| crate::model::TopicPattern::new(topic).ok());
        let fetch = |id: u128| -> Result<Option<EventRecord>, StoreError> {
            Ok(match events.get(id).map_err(read_err)? {
                Some(raw) => self.decode_or_quarantine(id, raw.value()),
                None => None,
            })
        };
        let mut take = |record: EventRecord| -> bool {
            if filter.state.is_some_and(|s| s != record.state) {
                return true;
            }
            if let Some(pattern) = &topic_pattern {
                if !pattern.as_ref().is_some_and(|p| p.matches(&record.topic)) {
                    return true;
                }
            }
            if filter
                .destination
                .as_deref()
                .is_some_and(|d| d != record.destination)
            {
                return true;
            }
            out.push(record);
            out.len() < limit
        };
        if limit == 0 || upper <= lower {
            return Ok(out);
        }
        if let Some(among) = among {
            // Each destination's own index range, newest first, merged: no
            // event of another destination is read. A topic is checked on the
            // records (decoded anyway to be listed).
            let wanted: Vec<&str> = among
                .iter()
                .map(String::as_str)
                .filter(|d| filter.destination.as_deref().is_none_or(|only| only == *d))
                .collect();
            let mut take_in_topic = |record: EventRecord| -> bool {
                match &topic_pattern {
                    Some(Some(pattern)) if !pattern.matches(&record.topic) => true,
                    Some(None) => false,
                    _ => take(record),
                }
            };
            let index = txn.open_table(BY_DEST_STATE).map_err(read_err)?;
            let ranges =
                dest_state_ranges(&index, &wanted, &state_codes(filter.state), lower, upper)?;
            merge_newest(ranges, &fetch, &mut take_in_topic)?;
            return Ok(out);
        }
        match (&filter.destination, filter.state, &topic_pattern) {
            (Some(dest), Some(state), _) => {
                let index = txn.open_table(BY_DEST_STATE).map_err(read_err)?;
                let range = index
                    .range(
                        (dest.as_str(), state.code(), lower)..(dest.as_str(), state.code(), upper),
                    )
                    .map_err(read_err)?;
                let ids = range
                    .rev()
                    .map(|entry| entry.map(|(key, _)| key.value().2).map_err(read_err));
                take_newest(ids, &fetch, &mut take)?;
            }
            (Some(dest), None, _) => {
                // The destination's six state ranges, merged newest first.
                let index = txn.open_table(BY_DEST_STATE).map_err(read_err)?;
                let ranges =
                    dest_state_ranges(&index, &[dest.as_str()], &state_codes(None), lower, upper)?;
                merge_newest(ranges, &fetch, &mut take)?;
            }
            (None, state, Some(pattern)) => {
                let Some(pattern) = pattern else {
                    return Ok(out);
                };
                let topic = filter.topic.as_deref().unwrap_or_default();
                let topics = self.topics_matching(&txn, topic, pattern)?;
                let index = txn.open_table(BY_TOPIC).map_err(read_err)?;
                // With a state, an id is kept only if the state index holds
                // (state, id): a point lookup, no record decoded.
                let in_state = match state {
                    Some(_) => Some(txn.open_table(BY_STATE).map_err(read_err)?),
                    None => None,
                };
                let mut ranges = Vec::with_capacity(topics.len());
                for topic in &topics {
                    let range = index
                        .range((topic.as_str(), lower)..(topic.as_str(), upper))
                        .map_err(read_err)?;
                    ranges.push(range.rev());
                }
                // Each range runs newest first; the heap holds each one's next
                // id, so popping the largest merges them newest first.
                let mut heads = std::collections::BinaryHeap::with_capacity(ranges.len());
                for (at, range) in ranges.iter_mut().enumerate() {
                    if let Some(entry) = range.next() {
                        heads.push((entry.map_err(read_err)?.0.value().1, at));
                    }
                }
                while let Some((id, at)) = heads.pop() {
                    let wanted = match (&in_state, state) {
                        (Some(in_state), Some(state)) => in_state
                            .get((state.code(), id))
                            .map_err(read_err)?
                            .is_some(),
                        _ => true,
                    };
                    if wanted {
                        if let Some(record) = fetch(id)? {
                            if !take(record) {
                                break;
                            }
                        }
                    }
                    if let Some(entry) = ranges[at].next() {
                        heads.push((entry.map_err(read_err)?.0.value().1, at));
                    }
                }
            }
            (None, Some(state), None) => {
                let index = txn.open_table(BY_STATE).map_err(read_err)?;
                let range = index
                    .range((state.code(), lower)..(state.code(), upper))
                    .map_err(read_err)?;
                let ids = range
                    .rev()
                    .map(|entry| entry.map(|(key, _)| key.value().1).map_err(read_err));
                take_newest(ids, &fetch, &mut take)?;
            }
            (None, None, None) => {
                for entry in events.range(lower..upper).map_err(read_err)?.rev() {
                    let (key, raw) = entry.map_err(read_err)?;
                    if let Some(record) = self.decode_or_quarantine(key.value(), raw.value()) {
                        if !take(record) {
                            break;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The stored topics `pattern` matches, found by range-scanning the distinct
    /// topics from the glob's literal prefix (what comes before its first `*`
    /// or `?`).
    fn topics_matching(
        &self,
        txn: &redb::ReadTransaction,
        glob: &str,
        pattern: &crate::model::TopicPattern,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = glob.split(['*', '?']).next().unwrap_or_default();
        let topics = txn.open_table(TOPICS).map_err(read_err)?;
        let mut out = Vec::new();
        for entry in topics.range(prefix..).map_err(read_err)? {
            let (key, _) = entry.map_err(read_err)?;
            let topic = key.value();
            if !topic.starts_with(prefix) {
                break;
            }
            if pattern.matches(topic) {
                out.push(topic.to_string());
            }
        }
        Ok(out)
    }

    /// Decodes an event record read outside the writer. One that does not
    /// decode is handed to the writer to be moved aside and reads as absent, so
    /// that a dispatcher or a listing carries on without it.
    fn decode_or_quarantine(&self, id: u128, raw: &[u8]) -> Option<EventRecord> {
        match codec::decode_event(raw) {
            Ok(record) => Some(record),
            Err(_) => {
                self.quarantine_later(ulid::Ulid(id));
                None
            }
        }
    }

    /// Queues the move of an undecodable record to quarantine, once per id
    /// while the move is pending (the writer logs it when it happens).
    fn quarantine_later(&self, id: EventId) {
        let pending = self.inner.quarantine_pending.clone();
        if !pending.lock().expect("quarantine lock").insert(id) {
            return;
        }
        let job = Job {
            run: Box::new(move |tables| tables.quarantine(id).map(drop)),
            finish: Box::new(move |_| {
                pending.lock().expect("quarantine lock").remove(&id);
            }),
            ahead: false,
        };
        if self.inner.jobs.send(job).is_err() {
            self.inner
                .quarantine_pending
                .lock()
                .expect("quarantine lock")
                .remove(&id);
        }
    }

    /// How many records were moved to quarantine, ever (they stay there).
    pub fn quarantined_total(&self) -> Result<u64, StoreError> {
        let txn = self.read()?;
        let quarantine = txn.open_table(QUARANTINE).map_err(read_err)?;
        quarantine.len().map_err(read_err)
    }

    /// Overwrites an event's stored record with `bytes`, as a damaged disk
    /// might: for tests of what happens to a record that does not decode.
    #[doc(hidden)]
    pub async fn corrupt_record_for_test(
        &self,
        id: EventId,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.write(move |tables| tables.overwrite_record(id, &bytes))
            .await
    }

    /// Events of `destination` due at or before `now`, earliest first, skipping the
    /// ones already in flight; at most `limit`.
    pub fn due(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        limit: usize,
        in_flight: &crate::model::EventIdSet,
    ) -> Result<Vec<EventId>, StoreError> {
        let txn = self.read()?;
        let due = txn.open_table(DUE).map_err(read_err)?;
        let range = due
            .range(
                (destination, i64::MIN, 0u128)..=(destination, now.timestamp_millis(), u128::MAX),
            )
            .map_err(read_err)?;
        let mut out = Vec::new();
        let quarantine_pending = self
            .inner
            .quarantine_pending
            .lock()
            .expect("quarantine lock");
        for entry in range {
            if out.len() >= limit {
                break;
            }
            let (key, _) = entry.map_err(read_err)?;
            let id = ulid::Ulid(key.value().2);
            // An event on its way to quarantine is not claimed again meanwhile.
            if !in_flight.contains(&id) && !quarantine_pending.contains(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// How many of `destination`'s due-index entries come before the entry
    /// (`due_ms`, `id`): the events its dispatcher takes first. Counts at most
    /// `cap`, so a destination with a million owed events answers at once.
    pub fn due_ahead(
        &self,
        destination: &str,
        id: EventId,
        due_ms: i64,
        cap: u64,
    ) -> Result<u64, StoreError> {
        let txn = self.read()?;
        let due = txn.open_table(DUE).map_err(read_err)?;
        let range = due
            .range((destination, i64::MIN, 0u128)..(destination, due_ms, id.0))
            .map_err(read_err)?;
        let mut ahead = 0;
        for entry in range {
            entry.map_err(read_err)?;
            ahead += 1;
            if ahead >= cap {
                break;
            }
        }
        Ok(ahead)
    }

    /// When the earliest not-in-flight event of `destination` falls due.
    pub fn next_due(
        &self,
        destination: &str,
        in_flight: &crate::model::EventIdSet,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let txn = self.read()?;
        let due = txn.open_table(DUE).map_err(read_err)?;
        let range = due
            .range((destination, i64::MIN, 0u128)..=(destination, i64::MAX, u128::MAX))
            .map_err(read_err)?;
        for entry in range {
            let (key, _) = entry.map_err(read_err)?;
            let (_, due_ms, id) = key.value();
            if !in_flight.contains(&ulid::Ulid(id)) {
                return Ok(DateTime::from_timestamp_millis(due_ms));
            }
        }
        Ok(None)
    }

    /// Ids of a destination's events in `state`, oldest first, after `after` (for
    /// flush on recovery and bulk jobs).
    pub fn ids_in_state(
        &self,
        destination: &str,
        state: EventState,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<EventId>, StoreError> {
        let txn = self.read()?;
        let index = txn.open_table(BY_DEST_STATE).map_err(read_err)?;
        let from = after.map_or(0, |id| id.0.saturating_add(1));
        let range = index
            .range((destination, state.code(), from)..=(destination, state.code(), u128::MAX))
            .map_err(read_err)?;
        let mut out = Vec::new();
        for entry in range.take(limit) {
            let (key, _) = entry.map_err(read_err)?;
            out.push(ulid::Ulid(key.value().2));
        }
        Ok(out)
    }

    pub fn counts(&self, destination: &str) -> Result<StateCounts, StoreError> {
        let txn = self.read()?;
        let counts = txn.open_table(COUNTS).map_err(read_err)?;
        let mut out = StateCounts::default();
        for state in EventState::ALL {
            if let Some(n) = counts.get((destination, state.code())).map_err(read_err)? {
                *out.slot(state) = n.value();
            }
        }
        Ok(out)
    }

    pub fn runtime(&self, destination: &str) -> Result<Option<DestinationRuntime>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(RUNTIME).map_err(read_err)?;
        let found = table.get(destination).map_err(read_err)?;
        found
            .map(|raw| decode("destination state", raw.value()))
            .transpose()
    }

    pub fn event_count(&self) -> Result<u64, StoreError> {
        let txn = self.read()?;
        let events = txn.open_table(EVENTS).map_err(read_err)?;
        events.len().map_err(read_err)
    }

    pub fn file_bytes(&self) -> u64 {
        std::fs::metadata(&self.inner.path)
            .map(|m| m.len())
            .unwrap_or(0)
    }
}

fn db_for_count(slot: &DbSlot) -> Result<redb::ReadTransaction, StoreError> {
    let db = slot
        .read()
        .expect("store slot lock")
        .clone()
        .ok_or(StoreError::Unavailable)?;
    db.begin_read().map_err(read_err)
}

/// Hands the records of `ids` (an index range, newest first) to `take` until it
/// has enough; ids whose record is gone or does not decode are passed over.
fn take_newest(
    ids: impl Iterator<Item = Result<u128, StoreError>>,
    fetch: &impl Fn(u128) -> Result<Option<EventRecord>, StoreError>,
    take: &mut impl FnMut(EventRecord) -> bool,
) -> Result<(), StoreError> {
    for id in ids {
        if let Some(record) = fetch(id?)? {
            if !take(record) {
                break;
            }
        }
    }
    Ok(())
}

/// The state codes a listing reads: the one asked for, or all six.
fn state_codes(state: Option<EventState>) -> Vec<u8> {
    match state {
        Some(state) => vec![state.code()],
        None => EventState::ALL.iter().map(|s| s.code()).collect(),
    }
}

/// The ids of each destination × state range of the per-state index between
/// `lower` and `upper`, each newest first.
fn dest_state_ranges<'t>(
    index: &'t redb::ReadOnlyTable<(&'static str, u8, u128), ()>,
    destinations: &[&str],
    states: &[u8],
    lower: u128,
    upper: u128,
) -> Result<Vec<impl Iterator<Item = Result<u128, StoreError>> + 't>, StoreError> {
    let mut ranges = Vec::with_capacity(destinations.len() * states.len());
    for dest in destinations {
        for &code in states {
            let range = index
                .range((*dest, code, lower)..(*dest, code, upper))
                .map_err(read_err)?;
            ranges.push(
                range
                    .rev()
                    .map(|entry| entry.map(|(key, _)| key.value().2).map_err(read_err)),
            );
        }
    }
    Ok(ranges)
}

/// Merges id ranges that each run newest first into one newest-first walk,
/// fetching and taking records until `take` says enough.
fn merge_newest(
    mut ranges: Vec<impl Iterator<Item = Result<u128, StoreError>>>,
    fetch: &impl Fn(u128) -> Result<Option<EventRecord>, StoreError>,
    take: &mut impl FnMut(EventRecord) -> bool,
) -> Result<(), StoreError> {
    // The heap holds each range's next id; popping the largest is the newest.
    let mut heads = std::collections::BinaryHeap::with_capacity(ranges.len());
    for (at, range) in ranges.iter_mut().enumerate() {
        if let Some(id) = range.next() {
            heads.push((id?, at));
        }
    }
    while let Some((id, at)) = heads.pop() {
        if let Some(record) = fetch(id)? {
            if !take(record) {
                break;
            }
        }
        if let Some(next) = ranges[at].next() {
            heads.push((next?, at));
        }
    }
    Ok(())
}

/// The smallest ULID of the millisecond `t`: ULIDs carry their creation time in
/// their top 48 bits, so time ranges are id ranges.
pub fn ulid_floor(t: DateTime<Utc>) -> u128 {
    let ms = t.timestamp_millis().max(0) as u128;
    ms << 80
}

/// How many commits the writer made and how many writes they carried: their
/// ratio is the group commit's effect, shown in `/metrics`.
#[derive(Default)]
pub struct CommitStats {
    pub commits: std::sync::atomic::AtomicU64,
    pub writes: std::sync::atomic::AtomicU64,
    /// Times the database was reopened after a storage failure.
    pub reopens: std::sync::atomic::AtomicU64,
    /// Event records in quarantine (moved aside because they do not decode),
    /// ever: the quarantine table's size at open plus those moved since.
    pub quarantined: std::sync::atomic::AtomicU64,
    /// Commits that failed since [`RedbStore::take_write_failures`] last asked.
    failures: std::sync::Mutex<Option<WriteFailures>>,
    /// Woken when a commit fails.
    failed: tokio::sync::Notify,
    /// Set by [`RedbStore::close_now`]: writes refused from then on are no failure.
    closing: std::sync::atomic::AtomicBool,
    /// `store.max_size`, once [`RedbStore::limit_size`] set it.
    budget: std::sync::OnceLock<budget::Budget>,
}

/// Store commits that failed (or were refused while the store was out of
/// service) since they were last taken: how many, carrying how many writes,
/// and the first one's error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteFailures {
    pub commits: u64,
    pub writes: u64,
    pub error: String,
}

impl CommitStats {
    /// The commits that failed since the last call, if any did.
    pub(crate) fn take_failures(&self) -> Option<WriteFailures> {
        self.failures.lock().expect("write failures lock").take()
    }

    /// Resolves when a commit fails (at once if one failed since the last
    /// wait).
    pub(crate) async fn failed(&self) {
        self.failed.notified().await
    }

    fn record_failure(&self, writes: usize, error: &StoreError) {
        let mut failures = self.failures.lock().expect("write failures lock");
        match failures.as_mut() {
            Some(seen) => {
                seen.commits += 1;
                seen.writes += writes as u64;
            }
            None => {
                *failures = Some(WriteFailures {
                    commits: 1,
                    writes: writes as u64,
                    error: error.to_string(),
                })
            }
        }
        drop(failures);
        self.failed.notify_one();
    }
}

/// The writer thread's state.
struct Writer {
    slot: DbSlot,
    path: PathBuf,
    /// Where the bytes live, for a reopen.
    medium: Medium,
    stats: Arc<CommitStats>,
    last_reopen: Option<std::time::Instant>,
    /// The database was taken out of service by a failed write (rather than
    /// closed on purpose), so it is reopened even with only indexing to do.
    failed: bool,
    /// Events the last commit stored without their destination-keyed entries:
    /// the next commit writes them first, whether or not a job waits.
    unindexed: Vec<u128>,
    /// Counts the commits that wrote such entries; read by [`Indexed`].
    index_rounds_done: tokio::sync::watch::Sender<u64>,
    /// `unindexed` is not empty, for [`RedbStore::indexing_pending`].
    indexing_owed: Arc<std::sync::atomic::AtomicBool>,
}

/// A group smaller than this, right after another commit, waits [`LINGER`]
/// for more writers.
const LINGER_BELOW: usize = 64;
const LINGER: std::time::Duration = std::time::Duration::from_micros(300);

fn drain(queue: &mut mpsc::UnboundedReceiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_GROUP {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Takes the database out of its slot and drops it once nobody else holds it,
/// which closes the file (cleanly, or for a reopen after a failure). Readers and
/// the writer hold it only for one read or one commit, so this is brief.
fn retire(slot: &DbSlot) {
    let Some(db) = slot.write().expect("store slot lock").take() else {
        return;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while Arc::strong_count(&db) > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    drop(db);
}

/// Takes out of `batch`, and returns, the jobs a fan-out's insert goes ahead
/// of. A fan-out's insert waiting among other jobs (the outcomes of many
/// attempts, say, each rewriting destination-keyed pages) commits with only
/// its own kind: its client waits for that commit, and the others follow in
/// the next one. Held back once at most (`held_once`: this batch already
/// carries jobs held back before): under a steady stream of fan-outs,
/// splitting every batch would hold the outcomes back for ever, and with them
/// every dispatcher's free slots.
fn split_for_fan_out(batch: &mut Vec<Job>, held_once: bool) -> Vec<Job> {
    if held_once || !batch.iter().any(|job| job.ahead) || !batch.iter().any(|job| !job.ahead) {
        return Vec::new();
    }
    let (ahead, rest): (Vec<Job>, Vec<Job>) = batch.drain(..).partition(|job| job.ahead);
    *batch = ahead;
    rest
}

/// How often a store that failed a write is reopened while it keeps failing.
const REOPEN_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Writer {
    fn run(mut self, mut queue: mpsc::UnboundedReceiver<Job>) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut batch: Vec<Job> = Vec::with_capacity(MAX_GROUP);
        // Jobs a fan-out went ahead of, for the next commit.
        let mut held: Vec<Job> = Vec::new();
        let mut last_commit_at = std::time::Instant::now();
        loop {
            // With events left to index or jobs held back, the next commit
            // starts at once (carrying whatever jobs wait); otherwise wait
            // for a job.
            let held_once = !held.is_empty();
            batch.append(&mut held);
            if self.unindexed.is_empty() && batch.is_empty() {
                match queue.blocking_recv() {
                    Some(first) => batch.push(first),
                    None => break,
                }
            }
            drain(&mut queue, &mut batch);
            // Under load (the previous commit was a moment ago), linger briefly
            // so more writers join this commit: fewer fsyncs and commits per
            // event. An idle store commits at once, and so does indexing.
            if self.unindexed.is_empty()
                && batch.len() < LINGER_BELOW
                && last_commit_at.elapsed() < LINGER
            {
                std::thread::sleep(LINGER);
                drain(&mut queue, &mut batch);
            }
            held = split_for_fan_out(&mut batch, held_once);
            let db = self.slot.read().expect("store slot lock").clone();
            let db = match db {
                Some(db) => Some(db),
                // Closed on purpose with only indexing left: the marks are
                // durable, and the next open indexes them.
                None if batch.is_empty()
                    && (!self.failed
                        || self
                            .stats
                            .closing
                            .load(std::sync::atomic::Ordering::Relaxed)) =>
                {
                    self.unindexed.clear();
                    self.indexing_owed
                        .store(false, std::sync::atomic::Ordering::SeqCst);
                    continue;
                }
                None => self.reopen(),
            };
            if db.is_none() && batch.is_empty() {
                // Only indexing to do on a store waiting to be reopened:
                // wait a little instead of spinning.
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
            let mut failed_alone = Vec::new();
            let outcome = match &db {
                Some(db) => {
                    self.stats.commits.fetch_add(1, Relaxed);
                    self.stats.writes.fetch_add(batch.len() as u64, Relaxed);
                    apply_group(db, &self.unindexed, &mut batch, &mut failed_alone)
                        .map(|committed| {
                            for record in &committed.quarantined {
                                record.report();
                            }
                            self.stats
                                .quarantined
                                .fetch_add(committed.quarantined.len() as u64, Relaxed);
                            // Owed or not is set before the round is
                            // announced, so a waiter woken by the round
                            // reads what this commit left.
                            self.indexing_owed.store(
                                !committed.deferred.is_empty(),
                                std::sync::atomic::Ordering::SeqCst,
                            );
                            if !self.unindexed.is_empty() {
                                self.index_rounds_done.send_modify(|done| *done += 1);
                            }
                            // Before any job learns it committed, so that a
                            // deferred insert notes the round before its own.
                            self.unindexed = committed.deferred;
                            if let Some(budget) = self.stats.budget.get() {
                                budget.note_commit(
                                    committed.footprint,
                                    committed.finished_some,
                                    std::fs::metadata(&self.path).map_or(0, |m| m.len()),
                                );
                            }
                        })
                        .map_err(Arc::new)
                }
                None => Err(Arc::new(StoreError::Unavailable)),
            };
            drop(db);
            for (job, error) in failed_alone {
                tracing::warn!(%error, "a store write failed on its own; the rest of its group went on");
                (job.finish)(Err(error));
            }
            if let Err(e) = &outcome {
                tracing::error!(error = %e, "store commit failed; nothing in it was acknowledged");
                // A store closed for shutdown refuses writes too; that is no failure.
                if !self.stats.closing.load(Relaxed) {
                    self.stats.record_failure(batch.len(), e);
                }
            }
            for job in batch.drain(..) {
                let result = match &outcome {
                    Ok(()) => Ok(()),
                    Err(e) if matches!(**e, StoreError::Unavailable) => {
                        Err(StoreError::Unavailable)
                    }
                    Err(e) => Err(StoreError::CommitFailed(e.clone())),
                };
                (job.finish)(result);
            }
            last_commit_at = std::time::Instant::now();
            if outcome.is_err() {
                self.close_failed();
            }
        }
    }

    /// Takes the database out of service after a failed write, so that it can be
    /// reopened (and repaired) once the cause — a full disk, say — is gone.
    fn close_failed(&mut self) {
        retire(&self.slot);
        // `last_reopen` stays: a store that fails again right after being
        // reopened (a disk still full, with only indexing left to write) is
        // reopened at most every REOPEN_EVERY, not in a tight loop.
        self.failed = true;
    }

    /// Reopens a database taken out of service, at most every [`REOPEN_EVERY`];
    /// until it succeeds, writes fail at once (the API answers 503).
    fn reopen(&mut self) -> Option<Arc<Database>> {
        // Shutting down: nothing is reopened (marks left are durable, and
        // indexed at the next start).
        if self
            .stats
            .closing
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return None;
        }
        if self
            .last_reopen
            .is_some_and(|at| at.elapsed() < REOPEN_EVERY)
        {
            return None;
        }
        self.last_reopen = Some(std::time::Instant::now());
        match open_database_on(&self.path, &self.medium) {
            Ok(db) => {
                self.stats
                    .reopens
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(store = %self.path.display(), "store reopened after a write failure");
                // A fan-out's commit that failed as far as its client knows
                // may still be on disk after the repair, its marks with it;
                // index them now rather than at the next start.
                if let Err(e) = index_left_unindexed(&db, &self.path) {
                    tracing::warn!(store = %self.path.display(), error = %e, "cannot index the events a failed commit left; they are indexed at the next start");
                }
                let db = Arc::new(db);
                *self.slot.write().expect("store slot lock") = Some(db.clone());
                self.failed = false;
                Some(db)
            }
            Err(e) => {
                tracing::warn!(store = %self.path.display(), error = %e, "store still unavailable");
                None
            }
        }
    }
}

/// What a committed group leaves for the writer.
#[derive(Default)]
struct Committed {
    /// Records moved to quarantine, to be reported.
    quarantined: Vec<tables::Quarantined>,
    /// Events stored without their destination-keyed entries, for the next
    /// commit to index.
    deferred: Vec<u128>,
    /// What the events hold once it committed, when it changed that.
    footprint: Option<u64>,
    /// It left an event finished (a delivery, a mute, a duplicate...): the
    /// budget's purge may have something to remove again.
    finished_some: bool,
}

/// Applies every job of the group in one transaction and commits it durably,
/// after writing the destination-keyed entries of `unindexed` (the events the
/// previous commit deferred), so that every job sees them indexed.
///
/// A job that fails on its own (a record that does not decode, say) is taken
/// out of the group into `failed_alone` with its error, and the rest of the
/// group runs again in a fresh transaction: one bad write must not fail its
/// neighbours nor take the store out of service. A storage failure (or a failed
/// commit) abandons the whole group, so no waiter is told "stored" for a change
/// that is not on disk.
fn apply_group(
    db: &Database,
    unindexed: &[u128],
    batch: &mut Vec<Job>,
    failed_alone: &mut Vec<(Job, StoreError)>,
) -> Result<Committed, StoreError> {
    loop {
        if batch.is_empty() && unindexed.is_empty() {
            return Ok(Committed::default());
        }
        let txn = db.begin_write().map_err(write_err)?;
        let mut own_failure = None;
        let committed;
        {
            let mut tables = Tables::open(&txn)?;
            if let Err(e) = tables.index_deferred(unindexed) {
                drop(tables);
                let _ = txn.abort();
                return Err(e);
            }
            for (at, job) in batch.iter_mut().enumerate() {
                if let Err(e) = (job.run)(&mut tables) {
                    if e.is_storage_failure() {
                        drop(tables);
                        let _ = txn.abort();
                        return Err(e);
                    }
                    own_failure = Some((at, e));
                    break;
                }
            }
            if own_failure.is_none() {
                tables.flush_counts()?;
            }
            committed = Committed {
                quarantined: tables.take_quarantined(),
                deferred: tables.take_deferred(),
                footprint: tables.take_footprint_total(),
                finished_some: tables.finished_some(),
            };
        }
        let Some((at, error)) = own_failure else {
            txn.commit().map_err(write_err)?;
            return Ok(committed);
        };
        txn.abort().map_err(write_err)?;
        failed_alone.push((batch.remove(at), error));
    }
}

/// redb's page cache (1 GiB by default) would grow toward the size of a large
/// store; the operating system's page cache already keeps hot pages, so a small
/// cache of our own keeps the engine's memory flat however big the backlog.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

#[cfg(test)]
fn open_database(path: &Path) -> Result<Database, redb::DatabaseError> {
    open_database_on(path, &Medium::File)
}

fn open_database_on(path: &Path, medium: &Medium) -> Result<Database, redb::DatabaseError> {
    let mut builder = Database::builder();
    builder.set_cache_size(CACHE_BYTES);
    match medium {
        Medium::File => builder.create(path),
        Medium::Backend(backend) => backend.open(&builder),
    }
}

/// Where a store's bytes live: in the file at its path, or (tests) on a
/// backend of their own.
#[derive(Clone)]
enum Medium {
    File,
    Backend(Arc<dyn SharedBackend>),
}

/// A redb backend the store can open more than once (each open takes a
/// backend by value: a clone sharing the same bytes).
trait SharedBackend: Send + Sync {
    fn len(&self) -> std::io::Result<u64>;
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()>;
    fn open(&self, builder: &redb::Builder) -> Result<Database, redb::DatabaseError>;
    fn open_read_only(
        &self,
        builder: &redb::Builder,
    ) -> Result<redb::ReadOnlyDatabase, redb::DatabaseError>;
}

impl<B: redb::StorageBackend + Clone> SharedBackend for B {
    fn len(&self) -> std::io::Result<u64> {
        redb::StorageBackend::len(self)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        redb::StorageBackend::read(self, offset, out)
    }

    fn open(&self, builder: &redb::Builder) -> Result<Database, redb::DatabaseError> {
        builder.create_with_backend(self.clone())
    }

    fn open_read_only(
        &self,
        builder: &redb::Builder,
    ) -> Result<redb::ReadOnlyDatabase, redb::DatabaseError> {
        builder.open_read_only_with_backend(self.clone())
    }
}

/// Reads the first bytes of an existing file: redb files start with a magic
/// number, so anything else is refused before redb is allowed near it.
fn check_header(path: &Path, medium: &Medium) -> Result<(), StoreError> {
    use std::io::Read;
    const REDB_MAGIC: &[u8] = b"redb";
    let mut head = [0u8; 4];
    let n = match medium {
        Medium::File => {
            let mut file = std::fs::File::open(path).map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
            file.read(&mut head).unwrap_or(0)
        }
        Medium::Backend(backend) => match backend.read(0, &mut head) {
            Ok(()) => head.len(),
            Err(_) => 0,
        },
    };
    if n < 4 || &head[..] != REDB_MAGIC {
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            detail: "the file does not start with a redb header".into(),
        });
    }
    Ok(())
}

/// What an existing redb file holds.
#[derive(Debug, PartialEq)]
enum Layout {
    Hookwatch,
    /// No tables at all: a file we just created.
    Empty,
}

fn inspect(db: &impl ReadableDatabase, path: &Path) -> Result<Layout, StoreError> {
    let foreign = |detail: &str| StoreError::Foreign {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    };
    let txn = db.begin_read().map_err(read_err)?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            let has_tables = txn.list_tables().map_err(read_err)?.next().is_some();
            return if has_tables {
                Err(foreign("it is a redb file without hookwatch's tables"))
            } else {
                Ok(Layout::Empty)
            };
        }
        Err(e) => return Err(foreign(&e.to_string())),
    };
    let magic = meta.get("magic").map_err(read_err)?;
    if magic.as_ref().map(|m| m.value()) != Some(MAGIC.as_bytes()) {
        return Err(foreign("its meta table has no hookwatch mark"));
    }
    let version = meta
        .get("schema_version")
        .map_err(read_err)?
        .and_then(|v| v.value().try_into().ok().map(u32::from_le_bytes))
        .ok_or_else(|| foreign("it records no schema version"))?;
    if version != SCHEMA_VERSION {
        return Err(StoreError::Version {
            path: path.to_path_buf(),
            found: version,
            expected: SCHEMA_VERSION,
        });
    }
    Ok(Layout::Hookwatch)
}

/// Checks an existing file without writing to it: opening a redb file for writing
/// may already change bytes, and a file that is not ours must stay untouched.
/// A store left unclean by a crash cannot be opened read-only (it needs repair);
/// it is checked again after the writable open.
fn inspect_read_only(path: &Path, medium: &Medium) -> Result<(), StoreError> {
    let opened = match medium {
        Medium::File => redb::ReadOnlyDatabase::open(path),
        Medium::Backend(backend) => backend.open_read_only(&redb::Builder::new()),
    };
    match opened {
        Ok(db) => match inspect(&db, path)? {
            Layout::Hookwatch => Ok(()),
            Layout::Empty => Err(StoreError::Foreign {
                path: path.to_path_buf(),
                detail: "it is an empty redb file that hookwatch did not create".into(),
            }),
        },
        Err(redb::DatabaseError::RepairAborted) => Ok(()),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::Locked {
            path: path.to_path_buf(),
            holder: lock_holder(path),
        }),
        Err(e) => Err(StoreError::Foreign {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
    }
}

/// Marks, in the meta table, a store whose listing indexes (by state, by
/// topic) are complete; one without it was written by a build without them,
/// or by an unreleased build whose topic index was (topic, state, id). Named
/// anew whenever the listing indexes change shape, so that they are rebuilt.
const LISTING_INDEXES_MARK: &str = "listing_indexes_by_topic";
/// The last event id the listing indexes were built to, while building.
const LISTING_INDEXES_CURSOR: &str = "listing_indexes_by_topic_built_to";
/// The marks of earlier shapes of the listing indexes, dropped once rebuilt.
const LEGACY_LISTING_INDEX_KEYS: [&str; 2] = ["listing_indexes", "listing_indexes_built_to"];
/// Events indexed per transaction while building the listing indexes.
const LISTING_INDEX_CHUNK: usize = 20_000;

/// Builds the listing indexes of a store written before they existed (same
/// schema version: the events are unchanged, only indexes are added). One pass
/// in id order, a chunk per transaction; each chunk records how far it got, so
/// an interrupted build resumes instead of counting topics twice.
fn ensure_listing_indexes(db: &Database, path: &Path) -> Result<(), StoreError> {
    {
        let txn = db.begin_read().map_err(read_err)?;
        let meta = txn.open_table(META).map_err(read_err)?;
        if meta.get(LISTING_INDEXES_MARK).map_err(read_err)?.is_some() {
            return Ok(());
        }
    }
    let started = std::time::Instant::now();
    let mut indexed = 0u64;
    loop {
        let txn = db.begin_write().map_err(write_err)?;
        let finished;
        let moved;
        {
            // Closed while the tables work: a record moved to quarantine
            // changes the budget's count, which is kept in this table.
            let mut meta = txn.open_table(META).map_err(write_err)?;
            let after = meta
                .get(LISTING_INDEXES_CURSOR)
                .map_err(write_err)?
                .and_then(|v| v.value().try_into().ok().map(u128::from_le_bytes));
            if after.is_none() {
                // A fresh build: whatever listing indexes an earlier shape left
                // (and the topic counts, which the build adds up again) go
                // first, so nothing is counted twice or left behind.
                txn.delete_table(BY_STATE).map_err(write_err)?;
                txn.delete_table(LEGACY_BY_TOPIC_STATE).map_err(write_err)?;
                txn.delete_table(BY_TOPIC).map_err(write_err)?;
                txn.delete_table(TOPICS).map_err(write_err)?;
                for key in LEGACY_LISTING_INDEX_KEYS {
                    meta.remove(key).map_err(write_err)?;
                }
            }
            drop(meta);
            let mut tables = Tables::open(&txn)?;
            let (last, count) = tables.index_for_listing_after(after, LISTING_INDEX_CHUNK)?;
            indexed += count;
            tables.flush_counts()?;
            moved = tables.take_quarantined();
            drop(tables);
            let mut meta = txn.open_table(META).map_err(write_err)?;
            match last {
                Some(last) => {
                    meta.insert(LISTING_INDEXES_CURSOR, last.to_le_bytes().as_slice())
                        .map_err(write_err)?;
                    finished = false;
                }
                None => {
                    meta.remove(LISTING_INDEXES_CURSOR).map_err(write_err)?;
                    meta.insert(LISTING_INDEXES_MARK, [1u8].as_slice())
                        .map_err(write_err)?;
                    finished = true;
                }
            }
        }
        txn.commit().map_err(write_err)?;
        for record in &moved {
            record.report();
        }
        if finished {
            break;
        }
    }
    tracing::info!(
        store = %path.display(),
        events = indexed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "built the listing indexes (by state, by topic) of a store written before them"
    );
    Ok(())
}

/// Drops the tables earlier builds kept and this one no longer reads (the
/// by-destination index), once, so their pages are freed.
fn drop_retired_tables(db: &Database, path: &Path) -> Result<(), StoreError> {
    use redb::TableHandle;
    let present = {
        let txn = db.begin_read().map_err(read_err)?;
        let mut tables = txn.list_tables().map_err(read_err)?;
        tables.any(|table| table.name() == RETIRED_BY_DEST.name())
    };
    if !present {
        return Ok(());
    }
    let txn = db.begin_write().map_err(write_err)?;
    txn.delete_table(RETIRED_BY_DEST).map_err(write_err)?;
    txn.commit().map_err(write_err)?;
    tracing::info!(store = %path.display(), "dropped the by-destination index of an earlier build (listings by destination read the per-state index)");
    Ok(())
}

/// Writes the destination-keyed entries of events a crash left marked as not
/// indexed (stored by a fan-out's commit, the writer's next commit not made),
/// before the engine reads the due index or the counts.
fn index_left_unindexed(db: &Database, path: &Path) -> Result<(), StoreError> {
    {
        let txn = db.begin_read().map_err(read_err)?;
        match txn.open_table(UNINDEXED) {
            Ok(marks) if marks.is_empty().map_err(read_err)? => return Ok(()),
            Ok(_) => {}
            // A store from before deferred indexing: nothing is marked.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(read_err(e)),
        }
    }
    let txn = db.begin_write().map_err(write_err)?;
    let (count, moved) = {
        let mut tables = Tables::open(&txn)?;
        let ids = tables.marked_unindexed()?;
        tables.index_deferred(&ids)?;
        tables.flush_counts()?;
        (ids.len(), tables.take_quarantined())
    };
    txn.commit().map_err(write_err)?;
    for record in &moved {
        record.report();
    }
    tracing::info!(
        store = %path.display(),
        events = count,
        "indexed the events of a fan-out whose indexing commit a stop interrupted"
    );
    Ok(())
}

fn verify_or_initialise(db: &Database, path: &Path, fresh: bool) -> Result<(), StoreError> {
    match inspect(db, path)? {
        Layout::Hookwatch => {
            ensure_listing_indexes(db, path)?;
            drop_retired_tables(db, path)?;
            index_left_unindexed(db, path)
        }
        Layout::Empty if !fresh => Err(StoreError::Foreign {
            path: path.to_path_buf(),
            detail: "it is a redb file without hookwatch's tables".into(),
        }),
        Layout::Empty => {
            let txn = db.begin_write().map_err(write_err)?;
            Tables::create_all(&txn)?;
            {
                let mut meta = txn.open_table(META).map_err(write_err)?;
                meta.insert("magic", MAGIC.as_bytes()).map_err(write_err)?;
                meta.insert("schema_version", SCHEMA_VERSION.to_le_bytes().as_slice())
                    .map_err(write_err)?;
                meta.insert(LISTING_INDEXES_MARK, [1u8].as_slice())
                    .map_err(write_err)?;
            }
            txn.commit().map_err(write_err)
        }
    }
}

fn lock_note_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pid");
    PathBuf::from(name)
}

/// What the note beside a store says about the process holding it: its pid
/// and, once its API listens, where to reach it. Written as `pid=N` and
/// `url=…` lines; an older build wrote the bare pid on one line, which still
/// reads (without a URL).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HolderNote {
    pub pid: Option<u32>,
    pub url: Option<String>,
}

impl HolderNote {
    /// Reads a note's text; lines it does not know are skipped (a newer build
    /// may write more).
    pub fn parse(text: &str) -> HolderNote {
        let mut note = HolderNote::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line.split_once('=') {
                Some(("pid", pid)) => note.pid = pid.trim().parse().ok(),
                Some(("url", url)) if !url.trim().is_empty() => {
                    note.url = Some(url.trim().to_string())
                }
                Some(_) => {}
                // The one-line format of older builds: the pid alone.
                None => note.pid = note.pid.or_else(|| line.parse().ok()),
            }
        }
        note
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Some(pid) = self.pid {
            text.push_str(&format!("pid={pid}\n"));
        }
        if let Some(url) = &self.url {
            text.push_str(&format!("url={url}\n"));
        }
        text
    }
}

/// The note beside the store at `path`, if there is one.
pub fn read_holder_note(path: &Path) -> Option<HolderNote> {
    let text = std::fs::read_to_string(lock_note_path(path)).ok()?;
    Some(HolderNote::parse(&text))
}

/// Adds where our API listens to the note beside the store at `path`, so a
/// TUI started on the same store can attach to us. Best effort, like the note.
pub fn announce_api_url(path: &Path, url: &str) {
    let note = HolderNote {
        pid: Some(std::process::id()),
        url: Some(url.to_string()),
    };
    let _ = std::fs::write(lock_note_path(path), note.render());
}

/// Removes the note beside the store at `path` if it is ours (a process that
/// opened the store after us may have written its own).
pub fn remove_holder_note(path: &Path) {
    if read_holder_note(path).and_then(|n| n.pid) == Some(std::process::id()) {
        let _ = std::fs::remove_file(lock_note_path(path));
    }
}

/// Leaves our pid beside the store so a second process can say who holds it.
fn write_lock_note(path: &Path) {
    let note = HolderNote {
        pid: Some(std::process::id()),
        url: None,
    };
    let _ = std::fs::write(lock_note_path(path), note.render());
}

fn lock_holder(path: &Path) -> String {
    match read_holder_note(path).and_then(|n| n.pid) {
        Some(pid) => format!(" (pid {pid})"),
        None => String::new(),
    }
}

#[cfg(test)]
mod holder_note_tests {
    use super::HolderNote;

    #[test]
    fn the_old_one_line_note_reads_as_a_pid_without_url() {
        assert_eq!(
            HolderNote::parse("4242\n"),
            HolderNote {
                pid: Some(4242),
                url: None
            }
        );
    }

    #[test]
    fn the_new_note_round_trips_pid_and_url() {
        let note = HolderNote {
            pid: Some(7),
            url: Some("http://127.0.0.1:8686".into()),
        };
        assert_eq!(note.render(), "pid=7\nurl=http://127.0.0.1:8686\n");
        assert_eq!(HolderNote::parse(&note.render()), note);
    }

    #[test]
    fn unknown_lines_and_garbage_are_skipped() {
        let note = HolderNote::parse("pid=12\nsince=yesterday\nurl=\nnonsense\n");
        assert_eq!(note.pid, Some(12));
        assert_eq!(note.url, None);
        assert_eq!(HolderNote::parse(""), HolderNote::default());
    }
}

#[cfg(test)]
mod tests;

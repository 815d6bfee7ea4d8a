//! The store boundary: [`EventStore`] is everything the engine, the bench, the
//! demo and the CLI ask of a store, whichever holds the data (the redb file of
//! one box, or PostgreSQL shared by several nodes); [`Store`] is the cheap-clone
//! handle they hold; [`open`] picks the store the config names.
//!
//! Reads are synchronous: callers run them on the blocking pool (the engine's
//! `read_store`), never on an async worker. Writes are async and answer once
//! durable.

use super::{
    BudgetUse, BulkJobRow, BulkLane, CommitStats, Indexed, Inserted, NewEvent, RedbStore,
    StoreError, Transitioned, WriteFailures,
};
use crate::config::{StoreConfig, StoreUrl};
use crate::model::{
    AttemptRecord, DestinationRuntime, EventFilter, EventId, EventIdSet, EventRecord, EventState,
    EventTransition, Notice, NoticeId, NoticeQuery, NoticeSelection, StateCounts, Trigger,
};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// What `spare` is for [`EventStore::purge_finished_oldest`]: asked inside the
/// commit whether an id must be passed over.
pub type SpareFn = Box<dyn Fn(EventId) -> bool + Send + 'static>;

/// One store, whichever backend holds it. Every method means the same on every
/// backend; where a backend has no such thing (a size budget is a redb file's),
/// the method says what it answers there.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    // --- events: writes ---------------------------------------------------

    /// Stores new events (and their payloads) durably. A repeat idempotency
    /// key for the same destination within [`super::IDEMPOTENCY_WINDOW`] is
    /// stored as `skipped`.
    async fn insert_events(&self, events: Vec<NewEvent>) -> Result<Vec<Inserted>, StoreError>;

    /// Stores new events, answering once they are durable and readable by id;
    /// [`Indexed`] says when they are also due for the dispatchers and counted
    /// (a store that indexes them in the same commit answers an `Indexed`
    /// that is already done).
    async fn insert_events_deferred(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<(Vec<Inserted>, Indexed), StoreError>;

    /// Applies one named transition to an event in one durable transaction.
    async fn transition(
        &self,
        id: EventId,
        transition: EventTransition,
    ) -> Result<Transitioned, StoreError>;

    /// Applies many transitions in one durable transaction; one answer per
    /// transition, in order.
    async fn transition_many(
        &self,
        transitions: Vec<(EventId, EventTransition)>,
    ) -> Result<Vec<Transitioned>, StoreError>;

    /// Removes finished events created before `cutoff` (and idempotency keys
    /// past their window), at most `limit`; answers how many were removed.
    async fn purge(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError>;

    // --- events: reads (blocking) ----------------------------------------

    fn get_event(&self, id: EventId) -> Result<Option<EventRecord>, StoreError>;
    /// The record and the payload in one read, for an attempt.
    fn get_for_delivery(&self, id: EventId) -> Result<Option<(EventRecord, Vec<u8>)>, StoreError>;
    fn get_payload(&self, id: EventId) -> Result<Option<Vec<u8>>, StoreError>;
    fn attempts(&self, id: EventId) -> Result<Vec<AttemptRecord>, StoreError>;
    /// Newest first, at most `limit`, strictly older than `before` when given;
    /// `among` keeps only events of these destinations (what the engine
    /// resolved `filter.label` to).
    fn list_events(
        &self,
        filter: &EventFilter,
        among: Option<&[String]>,
        before: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError>;
    /// Events of `destination` due at or before `now`, earliest first,
    /// skipping `in_flight`; at most `limit`.
    fn due(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        limit: usize,
        in_flight: &EventIdSet,
    ) -> Result<Vec<EventId>, StoreError>;
    /// How many of `destination`'s due events come before (`due_ms`, `id`),
    /// counting at most `cap`.
    fn due_ahead(
        &self,
        destination: &str,
        id: EventId,
        due_ms: i64,
        cap: u64,
    ) -> Result<u64, StoreError>;
    /// When the earliest event of `destination` not in `in_flight` falls due.
    fn next_due(
        &self,
        destination: &str,
        in_flight: &EventIdSet,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Ids of a destination's events in `state`, oldest first, after `after`.
    fn ids_in_state(
        &self,
        destination: &str,
        state: EventState,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<EventId>, StoreError>;
    fn counts(&self, destination: &str) -> Result<StateCounts, StoreError>;
    fn event_count(&self) -> Result<u64, StoreError>;
    /// Whether acknowledged events still wait to be indexed (see
    /// [`EventStore::insert_events_deferred`]), so "nothing is due" is not
    /// yet true.
    fn indexing_pending(&self) -> bool;

    // --- destinations and their state ------------------------------------

    /// Stores (or replaces) the document of a destination created through the API.
    async fn put_destination(&self, id: String, document: Vec<u8>) -> Result<(), StoreError>;
    /// Deletes a destination; answers how many owed events were cancelled.
    async fn delete_destination(&self, id: String) -> Result<u64, StoreError>;
    /// Every destination created through the API, with its document.
    fn api_destinations(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    async fn put_runtime(
        &self,
        destination: String,
        runtime: DestinationRuntime,
    ) -> Result<(), StoreError>;
    fn runtime(&self, destination: &str) -> Result<Option<DestinationRuntime>, StoreError>;
    /// Stores minutes of statistics, `(destination, minute start ms, bytes)`,
    /// and drops the written destinations' minutes before `keep_from_ms`.
    async fn put_stats(
        &self,
        minutes: Vec<(String, i64, Vec<u8>)>,
        keep_from_ms: i64,
    ) -> Result<(), StoreError>;
    /// A destination's stored minutes of statistics from `since_ms` on, oldest first.
    fn stats_since(&self, destination: &str, since_ms: i64) -> Result<Vec<Vec<u8>>, StoreError>;

    // --- notices -----------------------------------------------------------

    /// Stores `notices`, and the alert events that carry them to
    /// `[alerts]`, in one durable transaction: both or neither.
    async fn insert_notices(
        &self,
        notices: Vec<Notice>,
        alerts: Vec<NewEvent>,
    ) -> Result<(), StoreError>;
    /// Acknowledges one notice; `None` when there is no such notice.
    async fn ack_notice(
        &self,
        id: NoticeId,
        at: DateTime<Utc>,
    ) -> Result<Option<Notice>, StoreError>;
    /// Acknowledges the notices `selection` covers; answers how many were
    /// unacknowledged before.
    async fn ack_notices(
        &self,
        selection: NoticeSelection,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Drops notices from before `cutoff`.
    async fn prune_notices(&self, cutoff: DateTime<Utc>) -> Result<(), StoreError>;
    /// A page of notices newest first, the next page's cursor, and how many
    /// are unacknowledged.
    fn list_notices(
        &self,
        query: &NoticeQuery,
    ) -> Result<(Vec<Notice>, Option<NoticeId>, u64), StoreError>;
    fn unacked_notices(&self) -> Result<u64, StoreError>;

    // --- bulk jobs -----------------------------------------------------------

    /// Stores a new running job with its record and its ids, in one commit.
    async fn create_bulk_job(
        &self,
        id: ulid::Ulid,
        record: Vec<u8>,
        lanes: Vec<BulkLane>,
    ) -> Result<(), StoreError>;
    /// Replaces a job's record; a finished job's ids are dropped.
    async fn save_bulk_job(
        &self,
        id: ulid::Ulid,
        record: Vec<u8>,
        finished: bool,
    ) -> Result<(), StoreError>;
    fn bulk_job(&self, id: ulid::Ulid) -> Result<Option<BulkJobRow>, StoreError>;
    fn bulk_jobs(&self, running_only: bool) -> Result<Vec<BulkJobRow>, StoreError>;
    fn bulk_job_lanes(&self, id: ulid::Ulid) -> Result<Vec<BulkLane>, StoreError>;
    /// For each of `ids`, its last attempt with `trigger` at or after `since`.
    fn last_attempts_since(
        &self,
        ids: &[EventId],
        trigger: Trigger,
        since: DateTime<Utc>,
    ) -> Result<Vec<Option<AttemptRecord>>, StoreError>;

    // --- size budget (`store.max_size`: a redb file's) -----------------------

    /// Keeps the store within `max` bytes. A store without a size budget
    /// refuses with [`StoreError::Unsupported`] (the config refuses
    /// `store.max_size` beside `store.url`, so the engine never asks).
    fn limit_size(&self, max: u64) -> Result<(), StoreError>;
    /// Where the store stands against its budget; `None` without one
    /// (always, on a store without a size budget).
    fn budget_use(&self) -> Option<BudgetUse>;
    /// Whether finished events should be purged now for room (never
    /// without a budget).
    fn budget_wants_purge(&self) -> bool;
    /// Whether what the store holds has reached the purge mark (never
    /// without a budget).
    fn budget_at_purge_mark(&self) -> bool;
    /// Resolves when a commit brings the store to the purge mark (never
    /// without a budget).
    async fn budget_pressure(&self);
    /// Removes up to `limit` finished events, oldest first, whatever their
    /// age, passing over the ids `spare` answers true for.
    async fn purge_finished_oldest(
        &self,
        limit: usize,
        spare: SpareFn,
    ) -> Result<usize, StoreError>;

    // --- health and shutdown -------------------------------------------------

    /// Commits made and writes carried, for `/metrics`.
    fn commit_stats(&self) -> &CommitStats;
    /// The commits that failed since the last call, if any did.
    fn take_write_failures(&self) -> Option<WriteFailures>;
    /// Resolves when a commit fails (at once if one failed since the last wait).
    async fn write_failed(&self);
    /// Stops writing once the write in progress is done, leaving the store
    /// clean for the next start; writes after this fail. Blocking.
    fn close_now(&self);
    /// Closes the store once every queued write is done: the last handle's
    /// [`Store::close`].
    async fn close_last(self: Box<Self>);

    /// The redb store underneath, for what only a redb file has (its path
    /// and holder note, corrupting a record in tests); `None` on any other.
    fn as_redb(&self) -> Option<&RedbStore> {
        None
    }
}

/// The store the engine and every other caller hold: a cheap-clone handle
/// over whichever [`EventStore`] the config named, so none of them knows
/// which one it runs on. Its methods are the trait's (through `Deref`).
///
/// A trait object rather than an enum over the two backends: the PostgreSQL
/// store is built on its own branch and behind its own dependencies, and an
/// enum would make every method a hand-written match over both that each new
/// method must extend; the indirect call costs nothing next to a commit or
/// a read transaction. The `Box` inside the `Arc` lets the last handle hand
/// the store itself to [`EventStore::close_last`].
#[derive(Clone)]
pub struct Store {
    inner: Arc<Box<dyn EventStore>>,
}

impl Store {
    pub fn new(store: impl EventStore) -> Store {
        Store {
            inner: Arc::new(Box::new(store)),
        }
    }

    /// The redb store at `path` (see [`RedbStore::open`]).
    pub fn open_redb(path: &std::path::Path) -> Result<Store, StoreError> {
        RedbStore::open(path).map(Store::new)
    }

    /// The redb store at `path` with its bytes on `backend`: for tests that
    /// cut the power under it (see [`super::power_cut`]).
    #[doc(hidden)]
    pub fn open_redb_on_backend<B>(path: &std::path::Path, backend: B) -> Result<Store, StoreError>
    where
        B: redb::StorageBackend + Clone,
    {
        RedbStore::open_on_backend(path, backend).map(Store::new)
    }

    /// Closes the store once every queued write is committed. Only the last
    /// handle closes; earlier ones just let go.
    pub async fn close(self) {
        if let Some(store) = Arc::into_inner(self.inner) {
            store.close_last().await;
        }
    }
}

impl std::ops::Deref for Store {
    type Target = dyn EventStore;

    fn deref(&self) -> &Self::Target {
        &**self.inner
    }
}

/// Opens the store `config` names: PostgreSQL when it has a URL
/// (`store.url` or `HOOKWATCH_STORE_URL`), else the redb file at its path.
/// Every front end that runs an engine opens its store here.
pub fn open(config: &StoreConfig) -> Result<Store, StoreError> {
    match &config.url {
        Some(url) => open_postgres(url, config).map_err(|source| StoreError::Database {
            url: url.to_string(),
            source: Box::new(source),
        }),
        None => Store::open_redb(&config.path),
    }
}

/// The PostgreSQL store at `url`.
fn open_postgres(url: &StoreUrl, _config: &StoreConfig) -> Result<Store, StoreError> {
    // The engine starts from synchronous code inside the runtime it will run
    // on (the daemon's multi-thread runtime); the client's pool and writer
    // task must live on that runtime, so the connection is made there,
    // with this thread lent to the runtime while it waits.
    let handle = tokio::runtime::Handle::try_current().map_err(|_| {
        StoreError::Unsupported("a PostgreSQL store is opened from inside the async runtime")
    })?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return Err(StoreError::Unsupported(
            "a PostgreSQL store needs the multi-thread async runtime",
        ));
    }
    let connection_string = url.connection_string();
    let store = tokio::task::block_in_place(|| {
        handle.block_on(async {
            let store = super::postgres::PgStore::connect(connection_string).await?;
            store.hold_single_node_lock().await?;
            Ok::<_, StoreError>(store)
        })
    })?;
    Ok(Store::new(store))
}

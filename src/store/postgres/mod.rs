//! The store on PostgreSQL, for several hookwatch nodes sharing one database
//! (issue 17). [`PgStore`] answers the redb [`Store`](super::Store)'s public
//! methods with the same names, arguments and types, so that one interface
//! can front both.
//!
//! How it is laid out:
//! - An event is a row of `hookwatch.events`: the columns the queries select
//!   and order on (destination, topic, state, due time, lease) beside the
//!   whole [`EventRecord`] as jsonb. JSON because the record already is serde
//!   (a field added with `#[serde(default)]` needs no migration, as in the
//!   redb store's JSON records) and because an operator can read it with
//!   `psql`; jsonb rather than bytes so that a later migration can index a
//!   field of it. Payloads live in their own table so that a state change
//!   does not copy the body.
//! - A transition locks the row (`SELECT ... FOR UPDATE`), applies the same
//!   [`EventRecord::apply`] the redb store applies (so legality is one piece
//!   of code), and writes the record and its columns back in one UPDATE.
//! - Counts, the due index and listings are queries over indexes; nothing
//!   decodes a whole table.
//! - Writes go through one writer task that gathers every write waiting at
//!   that moment into one transaction (group commit, as the redb store's
//!   writer thread does); each learns its answer only after the COMMIT that
//!   carried it, so an acknowledged event is durable.
//! - Sync reads (`get_event`, `due`, `counts`, ...) keep the redb store's sync
//!   signatures: they block their thread on the async client (see
//!   [`PgStore::block`]), which is what the engine's `spawn_blocking` reads
//!   are for.
//!
//! Connections are plain TCP or unix sockets (`NoTls`): TLS to the database
//! is not supported yet, so use a loopback, a socket or a trusted network.

mod error;
mod reads;
mod schema;
#[doc(hidden)]
pub mod test_cluster;
mod url;
mod writer;

#[cfg(test)]
mod tests;

pub use error::PgError;
pub use schema::PG_SCHEMA_VERSION;
pub use url::masked_url;

use super::{
    BudgetUse, BulkLane, CommitStats, Indexed, Inserted, NewEvent, StoreError, Transitioned,
    WriteFailures,
};
use crate::model::{
    DestinationRuntime, EventId, EventTransition, Notice, NoticeId, NoticeSelection,
};
use chrono::{DateTime, Utc};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use writer::{Answer, Job, Op};

/// Connections kept open per node: the writer's, and the rest for reads
/// running at once on the blocking pool.
const POOL_SIZE: usize = 16;
/// How long a new connection may take before the database counts as
/// unreachable.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// tokio-postgres's keepalive idle time when the URL sets none.
const DEFAULT_KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(2 * 60 * 60);
const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(10);
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;

/// The store on a PostgreSQL database. Cheap to clone (one shared pool and
/// writer).
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<PgInner>,
}

struct PgInner {
    pool: deadpool_postgres::Pool,
    /// The URL with its password masked: what messages show.
    url: String,
    /// The runtime the pool's connections run on, for the sync reads.
    handle: tokio::runtime::Handle,
    jobs: mpsc::UnboundedSender<Job>,
    writer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    stats: Arc<CommitStats>,
    /// The connection holding the single-node lock, taken out of the pool
    /// for the store's life (see [`PgStore::hold_single_node_lock`]).
    single_node_lock: std::sync::Mutex<Option<deadpool_postgres::ClientWrapper>>,
}

/// The advisory lock one engine holds on its database while it runs ("hookwatc"
/// in ASCII plus one: the migrations' lock is the ASCII itself).
const SINGLE_NODE_LOCK: i64 = 0x686f_6f6b_7761_7464;

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host/db`, or
    /// libpq's key=value form), creating hookwatch's schema or migrating it
    /// to this build's version. A database whose schema is newer than this
    /// build knows is refused and left untouched; an unreachable one is
    /// refused naming the (masked) URL.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let masked = masked_url(url);
        let mut config: tokio_postgres::Config = url.parse().map_err(|source| PgError::BadUrl {
            url: masked.clone(),
            source,
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // A server that vanishes without closing the connection (a host
        // down, a partition) is noticed within about 25 s rather than the
        // two hours of the system's default keepalive.
        if config.get_keepalives_idle() >= DEFAULT_KEEPALIVE_IDLE {
            config.keepalives_idle(KEEPALIVE_IDLE);
            config.keepalives_interval(KEEPALIVE_INTERVAL);
            config.keepalives_retries(KEEPALIVE_RETRIES);
        }
        if config.get_application_name().is_none() {
            config.application_name("hookwatch");
        }
        let manager = deadpool_postgres::Manager::from_config(
            config,
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|source| PgError::Pool {
                url: masked.clone(),
                source,
            })?;
        {
            let mut client = pool.get().await.map_err(|source| PgError::Connect {
                url: masked.clone(),
                source,
            })?;
            schema::migrate(&mut client, &masked, schema::MIGRATIONS).await?;
        }
        let stats = Arc::new(CommitStats::default());
        let (jobs, queue) = mpsc::unbounded_channel();
        let writer = tokio::spawn(writer::run(pool.clone(), queue, stats.clone()));
        Ok(PgStore {
            inner: Arc::new(PgInner {
                pool,
                url: masked,
                handle: tokio::runtime::Handle::current(),
                jobs,
                writer: std::sync::Mutex::new(Some(writer)),
                stats,
                single_node_lock: std::sync::Mutex::new(None),
            }),
        })
    }

    /// The database's URL, its password masked.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Runs `read` to completion on this thread. Sound where the sync reads
    /// are called from: the engine runs them on the blocking pool
    /// (`spawn_blocking`), whose threads may block, while the connections'
    /// I/O is driven by the runtime's workers (or, on a current-thread
    /// runtime, by the thread in `Runtime::block_on` waiting for that very
    /// blocking task). The engine's start reads a few things (each
    /// destination's runtime state) before any task runs, on a worker of the
    /// daemon's multi-thread runtime: `block_in_place` first hands that
    /// worker's other tasks to another worker (on a blocking-pool thread it
    /// does nothing). On a current-thread runtime's own thread, blocking would
    /// stall every task, and tokio refuses it ("Cannot start a runtime from
    /// within a runtime"): call the read through `spawn_blocking` there.
    fn block<F: std::future::Future>(&self, read: F) -> F::Output {
        let multi_thread = tokio::runtime::Handle::try_current().is_ok_and(|current| {
            current.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        });
        if multi_thread {
            tokio::task::block_in_place(|| self.inner.handle.block_on(read))
        } else {
            self.inner.handle.block_on(read)
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| StoreError::Postgres(PgError::Unreachable(e)))
    }

    /// Hands `op` to the writer and waits for the commit that carries it.
    async fn submit(&self, op: Op) -> Result<Answer, StoreError> {
        if self.inner.stats.closing.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable);
        }
        let (done, answer) = oneshot::channel();
        self.inner
            .jobs
            .send(Job { op, done })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Nothing is deferred on PostgreSQL: an acknowledged insert is due at
    /// once.
    pub fn indexing_pending(&self) -> bool {
        false
    }

    /// Refuses writes from now on (they fail with [`StoreError::Unavailable`],
    /// which is no failure); the commit in progress, if any, completes. For
    /// shutdown.
    pub fn close_now(&self) {
        self.inner.stats.closing.store(true, Ordering::Relaxed);
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

    /// Closes the store once every queued write is committed. Only the last
    /// handle closes; earlier ones just let go.
    /// Makes this store the only hookwatch engine on its database, or refuses
    /// when another holds it: until nodes share the work (leases on owed
    /// events, concurrency limits for the whole cluster), two engines on one
    /// database would both attempt every due event. A session-level advisory
    /// lock on a connection kept out of the pool: it is released when that
    /// connection ends (this process stops or dies, or the server restarts).
    pub async fn hold_single_node_lock(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        let held: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&SINGLE_NODE_LOCK])
            .await
            .map_err(PgError::Query)?
            .get(0);
        if !held {
            return Err(PgError::HeldByAnother {
                url: self.inner.url.clone(),
            }
            .into());
        }
        let client = deadpool_postgres::Object::take(client);
        *self
            .inner
            .single_node_lock
            .lock()
            .expect("single-node lock slot") = Some(client);
        Ok(())
    }

    pub async fn close(self) {
        let Ok(inner) = Arc::try_unwrap(self.inner) else {
            return;
        };
        let PgInner {
            pool, jobs, writer, ..
        } = inner;
        drop(jobs);
        let writer = writer.lock().expect("writer handle lock").take();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
        pool.close();
    }

    /// Stores new events (and their payloads) durably. A repeat idempotency
    /// key for the same destination within 24 h is stored as `skipped`.
    pub async fn insert_events(&self, events: Vec<NewEvent>) -> Result<Vec<Inserted>, StoreError> {
        self.submit(Op::Insert(events)).await?.inserted()
    }

    /// [`PgStore::insert_events`]: PostgreSQL writes an event's index entries
    /// with its row, so there is nothing to defer, and the [`Indexed`]
    /// answered is already done.
    pub async fn insert_events_deferred(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<(Vec<Inserted>, Indexed), StoreError> {
        let inserted = self.insert_events(events).await?;
        let (_done, rounds) = tokio::sync::watch::channel(1);
        Ok((inserted, Indexed { rounds, after: 0 }))
    }

    /// Applies one named transition to an event in one durable transaction.
    pub async fn transition(
        &self,
        id: EventId,
        transition: EventTransition,
    ) -> Result<Transitioned, StoreError> {
        let mut answers = self.transition_many(vec![(id, transition)]).await?;
        Ok(answers.pop().expect("one answer per transition"))
    }

    /// Applies many transitions in one durable transaction; one answer per
    /// transition, in order.
    pub async fn transition_many(
        &self,
        transitions: Vec<(EventId, EventTransition)>,
    ) -> Result<Vec<Transitioned>, StoreError> {
        self.submit(Op::Transitions(transitions))
            .await?
            .transitioned()
    }

    /// Stores (or replaces) the document of a destination created through
    /// the API, durably.
    pub async fn put_destination(&self, id: String, document: Vec<u8>) -> Result<(), StoreError> {
        self.submit(Op::PutDestination { id, document })
            .await?
            .done()
    }

    /// Deletes a destination in one durable transaction: every event it still
    /// owes is cancelled (`destination_deleted`) and kept; its document,
    /// runtime state and statistics go. Answers how many were cancelled.
    pub async fn delete_destination(&self, id: String) -> Result<u64, StoreError> {
        self.submit(Op::DeleteDestination { id }).await?.count()
    }

    /// Stores minutes of statistics, `(destination, minute start ms, bytes)`,
    /// and drops the written destinations' minutes before `keep_from_ms`.
    pub async fn put_stats(
        &self,
        minutes: Vec<(String, i64, Vec<u8>)>,
        keep_from_ms: i64,
    ) -> Result<(), StoreError> {
        self.submit(Op::PutStats {
            minutes,
            keep_from_ms,
        })
        .await?
        .done()
    }

    /// Acknowledges one notice durably; `None` when there is no such notice.
    pub async fn ack_notice(
        &self,
        id: NoticeId,
        at: DateTime<Utc>,
    ) -> Result<Option<Notice>, StoreError> {
        self.submit(Op::AckNotice { id, at }).await?.notice()
    }

    /// Acknowledges the notices `selection` covers durably; answers how many
    /// were unacknowledged before.
    pub async fn ack_notices(
        &self,
        selection: NoticeSelection,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.submit(Op::AckNotices { selection, at }).await?.count()
    }

    /// Drops notices from before `cutoff`.
    pub async fn prune_notices(&self, cutoff: DateTime<Utc>) -> Result<(), StoreError> {
        self.submit(Op::PruneNotices { cutoff }).await?.done()
    }

    /// Stores notices and, in the same transaction, the alert events that
    /// report them: the typed form of what the engine's notices module does
    /// through the redb store's `write` closure. Answers the alerts' fates.
    pub async fn store_notices(
        &self,
        notices: Vec<Notice>,
        alerts: Vec<NewEvent>,
    ) -> Result<Vec<Inserted>, StoreError> {
        self.submit(Op::StoreNotices { notices, alerts })
            .await?
            .inserted()
    }

    /// [`PgStore::store_notices`] without the alerts' fates: the
    /// [`super::EventStore`] method the engine calls.
    pub async fn insert_notices(
        &self,
        notices: Vec<Notice>,
        alerts: Vec<NewEvent>,
    ) -> Result<(), StoreError> {
        self.store_notices(notices, alerts).await.map(|_| ())
    }

    pub async fn put_runtime(
        &self,
        destination: String,
        runtime: DestinationRuntime,
    ) -> Result<(), StoreError> {
        self.submit(Op::PutRuntime {
            destination,
            runtime: Box::new(runtime),
        })
        .await?
        .done()
    }

    /// Removes finished events created before `cutoff` (and idempotency keys
    /// past their window), at most `limit` events per call. Returns how many
    /// events were removed.
    pub async fn purge(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.submit(Op::Purge { cutoff, now, limit })
            .await?
            .purged()
    }

    /// Stores a new running bulk job with its record and its ids, in one
    /// commit.
    pub async fn create_bulk_job(
        &self,
        id: ulid::Ulid,
        record: Vec<u8>,
        lanes: Vec<BulkLane>,
    ) -> Result<(), StoreError> {
        self.submit(Op::CreateBulkJob { id, record, lanes })
            .await?
            .done()
    }

    /// Replaces a job's record (its progress). A finished job's ids are
    /// dropped, and finished jobs are pruned in the same commit: this one
    /// stays, with the newest (by start) others up to
    /// `FINISHED_BULK_JOBS_KEPT` in all.
    pub async fn save_bulk_job(
        &self,
        id: ulid::Ulid,
        record: Vec<u8>,
        finished: bool,
    ) -> Result<(), StoreError> {
        self.submit(Op::SaveBulkJob {
            id,
            record,
            finished,
        })
        .await?
        .done()
    }

    // What follows answers the redb store's budget (`store.max_size`), which
    // is about the redb file's size: a PostgreSQL database is sized and
    // vacuumed by its operator, so this store has no budget.

    /// No budget on PostgreSQL: `store.max_size` does not apply (logged once
    /// here, so that an operator who set it knows).
    pub fn limit_size(&self, max: u64) -> Result<(), StoreError> {
        tracing::warn!(
            store = %self.inner.url,
            max_size = max,
            "store.max_size applies to the redb file only; the PostgreSQL store is not limited by hookwatch"
        );
        Ok(())
    }

    /// Where the store stands against its budget: never one on PostgreSQL.
    pub fn budget_use(&self) -> Option<BudgetUse> {
        None
    }

    /// Never: there is no budget to purge for.
    pub fn budget_wants_purge(&self) -> bool {
        false
    }

    /// Never: there is no budget to purge for.
    pub fn budget_at_purge_mark(&self) -> bool {
        false
    }

    /// Never resolves: without a budget there is no pressure.
    pub async fn budget_pressure(&self) {
        std::future::pending().await
    }

    /// Removes up to `limit` finished events, oldest first, whatever their
    /// age, passing over the ids `spare` answers true for. The redb store's
    /// budget calls it; here it is the same removal without one.
    pub async fn purge_finished_oldest(
        &self,
        limit: usize,
        spare: impl Fn(EventId) -> bool + Send + 'static,
    ) -> Result<usize, StoreError> {
        self.submit(Op::PurgeOldest {
            limit,
            spare: std::sync::Mutex::new(Box::new(spare)),
        })
        .await?
        .purged()
    }

    /// There is no file: the database's size is its operator's to watch.
    pub fn file_bytes(&self) -> u64 {
        0
    }

    /// Records that do not decode are reported and skipped, not moved to a
    /// quarantine table (rows are written by hookwatch alone, in one
    /// transaction each): none is ever quarantined.
    pub fn quarantined_total(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// An event id as stored: the ULID's 16 bytes, big-endian, so that bytewise
/// order (bytea's) is id order.
pub(super) fn id_bytes(id: ulid::Ulid) -> Vec<u8> {
    id.0.to_be_bytes().to_vec()
}

/// The smallest or largest id bound as stored.
pub(super) fn bound_bytes(id: u128) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

pub(super) fn id_from(what: &'static str, raw: &[u8]) -> Result<ulid::Ulid, StoreError> {
    let bytes: [u8; 16] = raw.try_into().map_err(|_| {
        StoreError::Postgres(PgError::BadId {
            what,
            len: raw.len(),
        })
    })?;
    Ok(ulid::Ulid(u128::from_be_bytes(bytes)))
}

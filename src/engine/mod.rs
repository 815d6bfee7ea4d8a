//! The engine: one handle that front ends (the HTTP API, the TUI) use to ingest,
//! list, get, act and subscribe. Behind it, one dispatcher task per destination
//! reads that destination's slice of the due-time index, so a dead or slow
//! destination only ever occupies its own concurrency.

mod actions;
mod budget;
mod bulk_jobs;
pub mod deliver;
mod destinations;
mod dispatcher;
mod handoff;
pub mod metrics;
pub mod notices;
pub mod ops_log;
mod queries;
mod settle;
pub mod stats;

pub use actions::{BulkSelection, DestinationPatch, JobProgress, JobState};
pub use dispatcher::AttemptSummary;
pub use queries::*;

use crate::clock::SharedClock;
use crate::config::{Config, DestinationConfig};
use crate::model::{DestinationOverrides, DestinationRuntime, EventId, EventState, Health};
use crate::store::{Store, StoreError};
pub use destinations::Deleted;
use destinations::StoredDestination;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often finished events older than `store.retention` are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);
/// How often held events are checked against `max_age`.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);
/// Consecutive successes after which a destination lowered by 429s gets one more
/// concurrent attempt back.
pub const CONCURRENCY_RECOVERY_STREAK: u32 = 50;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown destination \"{0}\"")]
    UnknownDestination(String),
    #[error("no destination subscribes to topic \"{0}\"")]
    NoTopicMatch(String),
    #[error("no event with id \"{0}\"")]
    UnknownEvent(String),
    #[error("no bulk job with id \"{0}\"")]
    UnknownJob(String),
    #[error("no notice with id \"{0}\"")]
    UnknownNotice(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// One item of a batch cannot be stored (its `field`), so none is.
    #[error("events[{index}].{field}: {message}")]
    BadItem {
        index: usize,
        field: String,
        message: String,
    },
    /// A bad `Idempotency-Key` header (a request error, not a bad field value).
    #[error("Idempotency-Key: {0}")]
    IdempotencyKey(String),
    /// The event's state does not allow the action.
    #[error(transparent)]
    Refused(#[from] crate::model::TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A store read on the blocking pool did not finish (it panicked).
    #[error("a store read failed: {0}")]
    ReadFailed(#[source] tokio::task::JoinError),
    #[error("hookwatch is shutting down")]
    ShuttingDown,
    /// The request contradicts what exists (an id taken, a file-defined
    /// destination, a limit reached, a destination draining).
    #[error("{0}")]
    Conflict(String),
}

/// What changed, for subscribers such as the TUI. Sent after the change is durable.
/// Serialised tagged by `kind` (`event`, `destination` or `notices`) for
/// `GET /v1/changes`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Event {
        id: EventId,
        destination: String,
        state: EventState,
    },
    Destination {
        id: String,
    },
    /// A notice was stored or acknowledged; `unacked` is how many are
    /// unacknowledged now.
    Notices {
        unacked: u64,
    },
}

/// A destination as the engine runs it: the effective config (file plus live
/// edits), its runtime state, and the dispatcher's bookkeeping.
pub struct Destination {
    pub id: String,
    /// Where it was defined: the config file, or the API (stored).
    pub source: DestinationSource,
    /// Which addresses its attempts may reach (API destinations never reach
    /// link-local ones).
    reach: deliver::Reach,
    /// The config file's version (or the API's document), that live edits are
    /// applied over.
    base: RwLock<DestinationConfig>,
    config: RwLock<Arc<DestinationConfig>>,
    runtime: Mutex<DestinationRuntime>,
    /// Wakes the dispatcher: new events, a finished attempt, a changed setting.
    wake: Notify,
    in_flight: Mutex<InFlightSet>,
    /// Wakes bulk jobs waiting for a free slot.
    slot_freed: Notify,
    success_streak: AtomicU32,
    /// Whether the dispatcher's last look left due events unclaimed for want of
    /// a free slot: only then must a finished attempt that leaves nothing new
    /// due wake it (each wake costs a look, a hop to the blocking pool).
    waiting_for_slot: AtomicBool,
    /// Fresh events ingest hands straight to the dispatcher while it knows
    /// nothing else is due (see [`handoff`]).
    handoff: Mutex<handoff::Handoff>,
    /// Moves whenever an event of this destination may have changed other than
    /// by the dispatcher's own attempts (an operator action, a flush, a manual
    /// attempt, a setting): the dispatcher drops the events it claimed ahead of
    /// a free slot when it sees this move, so it never starts one from a stale
    /// record (a muted event, say).
    claims_epoch: AtomicU64,
    /// Cancelled when the destination is deleted (a child of the engine's
    /// shutdown token): its dispatcher returns.
    stop: CancellationToken,
    /// Being deleted once its owed events are done (`DELETE ?drain=true`):
    /// new events are refused.
    draining: AtomicBool,
    /// Its recent minutes of attempt statistics (the rest are in the store).
    recent: Mutex<stats::RecentMinutes>,
}

/// Where a destination is defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationSource {
    /// The config file: changed by editing it (live edits aside).
    File,
    /// Created through the API: kept in the store.
    Api,
    /// The built-in destination of `[alerts]` (`hookwatch-alerts`): made
    /// from the config file's `[alerts]` table, never through the API.
    Alerts,
}

impl Destination {
    fn new(
        base: DestinationConfig,
        source: DestinationSource,
        reach: deliver::Reach,
        runtime: DestinationRuntime,
        stop: CancellationToken,
    ) -> Destination {
        if !runtime.overrides.is_empty() {
            let keys = runtime.overrides.overridden();
            tracing::info!(destination = %base.id, edited = ?keys, "live edits are applied over the destination's definition");
        }
        let effective = apply_overrides(&base, &runtime.overrides).unwrap_or_else(|e| {
            tracing::warn!(destination = %base.id, error = %e, "stored live edits no longer apply; using the destination's definition");
            base.clone()
        });
        Destination {
            id: base.id.clone(),
            source,
            reach,
            base: RwLock::new(base),
            config: RwLock::new(Arc::new(effective)),
            runtime: Mutex::new(runtime),
            wake: Notify::new(),
            in_flight: Mutex::new(InFlightSet::default()),
            slot_freed: Notify::new(),
            success_streak: AtomicU32::new(0),
            waiting_for_slot: AtomicBool::new(false),
            handoff: Mutex::new(handoff::Handoff::default()),
            claims_epoch: AtomicU64::new(0),
            stop,
            draining: AtomicBool::new(false),
            recent: Mutex::new(stats::RecentMinutes::default()),
        }
    }

    /// Counts one finished attempt in its minute's statistics.
    fn record_attempt(
        &self,
        finished: chrono::DateTime<chrono::Utc>,
        outcome: deliver::AttemptOutcome,
        latency: Duration,
    ) {
        self.recent
            .lock()
            .expect("destination stats lock")
            .record(finished, outcome, latency);
    }

    /// The definition live edits apply over.
    fn base(&self) -> DestinationConfig {
        self.base.read().expect("destination base lock").clone()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Makes the dispatcher forget the events it claimed ahead (read again
    /// from the store before any is attempted) and look again.
    pub(crate) fn forget_claims_ahead(&self) {
        self.claims_epoch.fetch_add(1, Ordering::SeqCst);
        self.look_again();
    }

    /// Wakes the dispatcher to look at the store: events may have come due
    /// that ingest did not hand over (see [`handoff`]).
    pub(crate) fn look_again(&self) {
        self.handoff().close();
        self.wake.notify_one();
    }

    fn handoff(&self) -> std::sync::MutexGuard<'_, handoff::Handoff> {
        self.handoff.lock().expect("hand-over lock")
    }

    fn claims_epoch(&self) -> u64 {
        self.claims_epoch.load(Ordering::SeqCst)
    }

    pub fn config(&self) -> Arc<DestinationConfig> {
        self.config.read().expect("destination config lock").clone()
    }

    pub fn runtime(&self) -> DestinationRuntime {
        self.runtime
            .lock()
            .expect("destination runtime lock")
            .clone()
    }

    /// Attempts allowed at once now: the configured maximum, lowered by 429s.
    pub fn current_concurrency(&self) -> u32 {
        let max = self.config().concurrency;
        self.runtime
            .lock()
            .expect("destination runtime lock")
            .concurrency
            .map_or(max, |c| c.clamp(1, max))
    }

    /// What the API reports and `/metrics` exports at `now`: a hold
    /// (disabled, then paused) outranks being in retry, which outranks a
    /// poor recent record (`degraded`: under 90 % of the last 15 minutes'
    /// attempts, at least 10, got a 2xx).
    pub fn health(&self, now: chrono::DateTime<chrono::Utc>) -> Health {
        let (disabled, paused, in_retry) = {
            let runtime = self.runtime.lock().expect("destination runtime lock");
            (runtime.disabled, runtime.paused, runtime.in_retry)
        };
        if disabled {
            Health::Disabled
        } else if paused {
            Health::Paused
        } else if in_retry {
            Health::InRetry
        } else if self
            .recent
            .lock()
            .expect("destination stats lock")
            .degraded(now)
        {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }

    fn in_flight_snapshot(&self) -> crate::model::EventIdSet {
        self.in_flight.lock().expect("in-flight lock").ids()
    }

    /// Attempts of this destination running now.
    fn attempts_in_flight(&self) -> usize {
        self.in_flight.lock().expect("in-flight lock").len()
    }
}

/// The events a destination is attempting now, counted per event: a manual
/// retry may run while the dispatcher's own attempt of the same event does.
#[derive(Default)]
struct InFlightSet {
    attempts: HashMap<EventId, usize, foldhash::fast::RandomState>,
    total: usize,
}

impl InFlightSet {
    fn contains(&self, id: EventId) -> bool {
        self.attempts.contains_key(&id)
    }

    fn insert(&mut self, id: EventId) {
        *self.attempts.entry(id).or_default() += 1;
        self.total += 1;
    }

    fn remove(&mut self, id: EventId) {
        if let Some(n) = self.attempts.get_mut(&id) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.attempts.remove(&id);
            }
        }
    }

    /// Attempts running, counting each attempt of the same event.
    fn len(&self) -> usize {
        self.total
    }

    fn ids(&self) -> crate::model::EventIdSet {
        self.attempts.keys().copied().collect()
    }
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: SharedClock,
    /// The client of the config file's destinations, and what they may reach
    /// (`server.deny_private_destinations`).
    file_client: reqwest::Client,
    file_reach: deliver::Reach,
    /// The client of destinations created through the API, which never reach
    /// link-local addresses (cloud metadata services).
    api_client: reqwest::Client,
    api_reach: deliver::Reach,
    /// `server.max_destinations`.
    max_destinations: usize,
    /// Creating, replacing and deleting destinations, one at a time.
    admin: tokio::sync::Mutex<()>,
    destinations: RwLock<BTreeMap<String, Arc<Destination>>>,
    changes: broadcast::Sender<Change>,
    metrics: metrics::Metrics,
    retention: Duration,
    /// Cancelled when the engine stops: dispatchers and housekeeping return,
    /// bulk jobs start no more attempts, ingest is refused.
    shutdown: CancellationToken,
    /// Every task the engine spawns (dispatchers, housekeeping, bulk jobs,
    /// attempts), so that stopping can wait for them.
    tasks: TaskTracker,
    ids: Mutex<ulid::Generator>,
    jobs: Mutex<std::collections::HashMap<String, Arc<bulk_jobs::BulkJob>>>,
    /// The ids running bulk jobs have still to retry, spared by the budget's purge.
    bulk_owed: Arc<budget::BulkOwed>,
    /// Keeps attempt-driven destination log lines from flooding the journal.
    log_limiter: Mutex<ops_log::LineLimiter>,
    /// Wakes the summary task when a line was suppressed.
    log_summary_due: Notify,
    /// Operational notices not yet stored, and the unacknowledged count.
    notices: notices::NoticeBook,
}

impl Engine {
    /// Opens the store, restores each destination's runtime state and starts the
    /// dispatchers. Must run inside a tokio runtime. Every undelivered event in the
    /// store is picked up again, including after a kill -9.
    pub fn start(config: &Config, clock: SharedClock) -> Result<Engine, EngineError> {
        Engine::start_under(config, clock, CancellationToken::new())
    }

    /// [`Engine::start`], stopping when `shutdown` is cancelled (pass a child of
    /// the process's root token). [`Engine::shutdown`] cancels it too.
    pub fn start_under(
        config: &Config,
        clock: SharedClock,
        shutdown: CancellationToken,
    ) -> Result<Engine, EngineError> {
        Engine::start_on_store(config, clock, shutdown, crate::store::open(&config.store)?)
    }

    /// [`Engine::start_under`] on a store already opened (tests run it on a
    /// store whose power they cut: see [`crate::store::power_cut`]).
    #[doc(hidden)]
    pub fn start_on_store(
        config: &Config,
        clock: SharedClock,
        shutdown: CancellationToken,
        store: Store,
    ) -> Result<Engine, EngineError> {
        if let Some(max) = config.store.max_size {
            store.limit_size(max)?;
        }
        let (changes, _) = broadcast::channel(4096);
        let file_reach = if config.server.deny_private_destinations {
            deliver::Reach::PublicOnly
        } else {
            deliver::Reach::Any
        };
        let api_reach = if config.server.deny_private_destinations {
            deliver::Reach::PublicOnly
        } else {
            deliver::Reach::NotLinkLocal
        };
        let mut destinations = BTreeMap::new();
        for dest_config in &config.destinations {
            let runtime = store.runtime(&dest_config.id)?.unwrap_or_default();
            let destination = Destination::new(
                dest_config.clone(),
                DestinationSource::File,
                file_reach,
                runtime,
                shutdown.child_token(),
            );
            destinations.insert(dest_config.id.clone(), Arc::new(destination));
        }
        for (id, document) in store.api_destinations()? {
            let stored = match StoredDestination::decode(&document) {
                Ok(stored) => stored,
                Err(e) => {
                    tracing::error!(destination = %id, error = %e, "a destination created through the API no longer loads; its events are kept, it is not delivered to");
                    continue;
                }
            };
            if destinations.contains_key(&id) {
                tracing::warn!(destination = %id, "the config file defines a destination with the id of one created through the API; the file's is used");
                continue;
            }
            let runtime = store.runtime(&id)?.unwrap_or_default();
            let destination = Destination::new(
                stored.config,
                DestinationSource::Api,
                api_reach,
                runtime,
                shutdown.child_token(),
            );
            destination
                .draining
                .store(stored.draining, Ordering::SeqCst);
            destinations.insert(id, Arc::new(destination));
        }
        if let Some(alerts) = &config.alerts.destination {
            let runtime = store.runtime(&alerts.id)?.unwrap_or_default();
            let destination = Destination::new(
                alerts.clone(),
                DestinationSource::Alerts,
                file_reach,
                runtime,
                shutdown.child_token(),
            );
            destinations.insert(alerts.id.clone(), Arc::new(destination));
        }
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                clock,
                file_client: deliver::build_client_for(file_reach),
                api_client: deliver::build_client_for(api_reach),
                file_reach,
                api_reach,
                max_destinations: config.server.max_destinations,
                admin: tokio::sync::Mutex::new(()),
                destinations: RwLock::new(destinations),
                changes,
                metrics: metrics::Metrics::default(),
                retention: config.store.retention,
                shutdown,
                tasks: TaskTracker::new(),
                ids: Mutex::new(ulid::Generator::new()),
                jobs: Mutex::new(std::collections::HashMap::new()),
                bulk_owed: Arc::default(),
                log_limiter: Mutex::new(ops_log::LineLimiter::new(
                    ops_log::LINES_PER_WINDOW,
                    ops_log::LOG_WINDOW,
                )),
                log_summary_due: Notify::new(),
                notices: notices::NoticeBook::new(&config.alerts),
            }),
        };
        for destination in engine.destination_handles() {
            engine
                .inner
                .tasks
                .spawn(dispatcher::run(engine.clone(), destination));
        }
        let now = engine.inner.clock.now();
        for destination in engine.destination_handles() {
            engine.restore_recent_stats(&destination, now);
            if destination.is_draining() {
                engine.spawn_drain(destination);
            }
        }
        // Bulk jobs a stop left running go on where they stopped.
        engine.resume_bulk_jobs()?;
        engine.inner.tasks.spawn(housekeeping(engine.clone()));
        engine.inner.tasks.spawn(budget::keep(engine.clone()));
        engine.inner.tasks.spawn(ops_log::summaries(engine.clone()));
        engine.inner.tasks.spawn(notices::keep(engine.clone()));
        Ok(engine)
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.changes.subscribe()
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    fn publish(&self, change: Change) {
        // No subscriber is fine: the TUI may not be attached.
        let _ = self.inner.changes.send(change);
    }

    pub(crate) fn destination(&self, id: &str) -> Result<Arc<Destination>, EngineError> {
        self.inner
            .destinations
            .read()
            .expect("destinations lock")
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::UnknownDestination(id.to_string()))
    }

    /// How many destinations there are: the config file's and those created
    /// through the API.
    pub fn destination_count(&self) -> usize {
        self.inner
            .destinations
            .read()
            .expect("destinations lock")
            .len()
    }

    pub(crate) fn destination_handles(&self) -> Vec<Arc<Destination>> {
        self.inner
            .destinations
            .read()
            .expect("destinations lock")
            .values()
            .cloned()
            .collect()
    }

    /// The HTTP client for a destination's attempts (see [`deliver::Reach`]).
    fn client_for(&self, destination: &Destination) -> &reqwest::Client {
        if destination.reach == self.inner.file_reach {
            &self.inner.file_client
        } else {
            &self.inner.api_client
        }
    }

    fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Attempts running now, over all destinations (what a stopping engine
    /// is still waiting for).
    pub fn attempts_in_flight(&self) -> usize {
        self.destination_handles()
            .iter()
            .map(|d| d.attempts_in_flight())
            .sum()
    }

    /// Runs `task` on the engine's tracker, so that [`Engine::shutdown`] waits
    /// for it.
    fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.tasks.spawn(task)
    }

    /// Runs `write` (a store write and what must follow its commit: waking
    /// a dispatcher, handing it fresh events) to completion even if the
    /// caller stops waiting (a client that disconnects drops its request's
    /// future): the write goes on in the store's writer regardless, and what
    /// follows it must too, or a committed event could be left where no
    /// dispatcher looks (see [`handoff`]).
    async fn run_to_completion<T, F>(&self, write: F) -> Result<T, EngineError>
    where
        F: std::future::Future<Output = Result<T, EngineError>> + Send + 'static,
        T: Send + 'static,
    {
        match self.spawn(write).await {
            Ok(outcome) => outcome,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            // Only a runtime shutting down cancels a task of the tracker.
            Err(_) => Err(EngineError::ShuttingDown),
        }
    }

    /// Runs a synchronous store read on the blocking pool, off the async
    /// workers. A read that panicked is reported as a failed read.
    async fn read_store<T, F>(&self, read: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || read(&store))
            .await
            .map_err(EngineError::ReadFailed)?
            .map_err(EngineError::Store)
    }

    /// Stops claiming new attempts (every dispatcher, housekeeping and bulk job
    /// returns), waits up to `grace` for every task the engine spawned, the
    /// attempts in flight among them, to finish and be recorded, then closes the
    /// store. Attempts still running after that stay pending in the store and are
    /// made again on the next start (at-least-once). True when every task ended
    /// within the grace.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        let finished = tokio::time::timeout(grace, self.inner.tasks.wait())
            .await
            .is_ok();
        // The minutes still in memory, so a restart shows them.
        self.save_stats(self.inner.clock.now()).await;
        // Notices recorded by attempts that finished during the grace.
        if let Err(e) = self.write_pending_notices().await {
            tracing::warn!(error = %e, "notices recorded at shutdown could not be stored");
        }
        // A clean close spares the next start redb's repair pass.
        let store = self.inner.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close_now()).await;
        finished
    }

    /// Tasks the engine is still running (dispatchers, housekeeping, bulk jobs,
    /// attempts); zero once [`Engine::shutdown`] has returned true.
    pub fn tasks_running(&self) -> usize {
        self.inner.tasks.len()
    }

    /// Reads a destination's last minutes of statistics back from the store
    /// (its health looks at them).
    fn restore_recent_stats(&self, destination: &Destination, now: chrono::DateTime<chrono::Utc>) {
        let since = stats::minute_of(
            now - chrono::Duration::from_std(stats::HEALTH_WINDOW).expect("small"),
        );
        let stored = match self.stored_stats(&destination.id, since) {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(destination = %destination.id, error = %e, "cannot read its recent statistics");
                return;
            }
        };
        *destination.recent.lock().expect("destination stats lock") =
            stats::RecentMinutes::restore(stored);
    }

    /// A destination's stored minutes from `since` on. A minute that does not
    /// decode (written by another build) is skipped: it is only history.
    fn stored_stats(
        &self,
        id: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<stats::MinuteStats>, EngineError> {
        Ok(self
            .inner
            .store
            .stats_since(id, since.timestamp_millis())?
            .iter()
            .filter_map(|bytes| serde_json::from_slice(bytes).ok())
            .collect())
    }

    /// Writes every destination's minutes of statistics the store does not
    /// have yet, and drops minutes past [`stats::HISTORY`].
    async fn save_stats(&self, now: chrono::DateTime<chrono::Utc>) {
        let mut minutes = Vec::new();
        for destination in self.destination_handles() {
            let unstored = destination
                .recent
                .lock()
                .expect("destination stats lock")
                .take_unstored(now);
            for minute in unstored {
                let bytes = serde_json::to_vec(&minute).expect("statistics serialise");
                minutes.push((
                    destination.id.clone(),
                    minute.minute.timestamp_millis(),
                    bytes,
                ));
            }
        }
        if minutes.is_empty() {
            return;
        }
        let keep_from = now - chrono::Duration::from_std(stats::HISTORY).expect("small");
        if let Err(e) = self
            .inner
            .store
            .put_stats(minutes, keep_from.timestamp_millis())
            .await
        {
            tracing::warn!(error = %e, "cannot save attempt statistics");
        }
    }

    /// A destination's minutes of statistics over `window`, oldest first.
    pub fn destination_stats(
        &self,
        id: &str,
        window: stats::StatsWindow,
    ) -> Result<stats::DestinationStats, EngineError> {
        let destination = self.destination(id)?;
        let now = self.inner.clock.now();
        let since =
            stats::minute_of(now - chrono::Duration::from_std(window.duration()).expect("small"));
        let stored = self.stored_stats(id, since)?;
        let recent = destination
            .recent
            .lock()
            .expect("destination stats lock")
            .since(since);
        Ok(stats::DestinationStats {
            destination: id.to_string(),
            window,
            minutes: stats::merge(stored, recent),
        })
    }

    /// Persists a destination's runtime state and tells subscribers.
    async fn save_runtime(&self, destination: &Destination) -> Result<(), EngineError> {
        let runtime = destination.runtime();
        self.inner
            .store
            .put_runtime(destination.id.clone(), runtime)
            .await?;
        destination.forget_claims_ahead();
        self.publish(Change::Destination {
            id: destination.id.clone(),
        });
        Ok(())
    }
}

/// Applies live edits (as stored in the runtime state) over the config file's
/// destination. An edit that no longer validates is reported, not applied.
pub fn apply_overrides(
    base: &DestinationConfig,
    overrides: &DestinationOverrides,
) -> Result<DestinationConfig, EngineError> {
    let mut effective = base.clone();
    let invalid = |field: &str, message: String| EngineError::Invalid {
        field: field.to_string(),
        message,
    };
    if let Some(url) = &overrides.url {
        effective.url = crate::config::parse_url(url.as_str()).map_err(|m| invalid("url", m))?;
    }
    if let Some(headers) = &overrides.headers {
        crate::config::validate_headers(headers).map_err(|m| invalid("headers", m))?;
        effective.headers = headers.clone();
    }
    if let Some(concurrency) = overrides.concurrency {
        effective.concurrency = crate::config::validate_concurrency(i64::from(concurrency))
            .map_err(|m| invalid("concurrency", m))?;
    }
    if let Some(patch) = &overrides.retry {
        let spec = base.retry_spec.merged(patch);
        effective.retry = spec
            .resolve()
            .map_err(|e| invalid(&format!("retry.{}", e.key), e.message))?;
        effective.retry_spec = spec;
    }
    Ok(effective)
}

/// Drops the overrides that say what the config file already says, so that
/// setting a field back to the file's value undoes the edit (later changes to
/// the file then apply again).
pub fn without_file_values(
    base: &DestinationConfig,
    mut overrides: DestinationOverrides,
) -> DestinationOverrides {
    if overrides.url.as_ref() == Some(&base.url) {
        overrides.url = None;
    }
    if overrides.headers.as_ref() == Some(&base.headers) {
        overrides.headers = None;
    }
    if overrides.concurrency == Some(base.concurrency) {
        overrides.concurrency = None;
    }
    if let Some(patch) = &overrides.retry {
        if base.retry_spec.merged(patch).resolve().as_ref() == Ok(&base.retry) {
            overrides.retry = None;
        }
    }
    overrides
}

/// Purges finished events past retention, and expires events held (destination
/// disabled or paused) past `max_age`, every [`HOUSEKEEPING_EVERY`] of clock time.
async fn housekeeping(engine: Engine) {
    let mut last_purge: Option<chrono::DateTime<chrono::Utc>> = None;
    loop {
        let now = engine.inner.clock.now();
        expire_held(&engine, now).await;
        engine.save_stats(now).await;
        let purge_due = last_purge
            .is_none_or(|at| now - at >= chrono::Duration::from_std(PURGE_EVERY).expect("small"));
        if purge_due {
            last_purge = Some(now);
            purge(&engine, now).await;
        }
        let next = now + chrono::Duration::from_std(HOUSEKEEPING_EVERY).expect("small duration");
        tokio::select! {
            _ = engine.inner.clock.sleep_until(next) => {}
            _ = engine.inner.shutdown.cancelled() => return,
        }
    }
}

/// Events of held destinations are never claimed by the dispatcher, so their
/// `max_age` is enforced here. Oldest first; stops at the first one still young
/// (a cycle never starts before its event was created).
async fn expire_held(engine: &Engine, now: chrono::DateTime<chrono::Utc>) {
    for destination in engine.destination_handles() {
        let runtime = destination.runtime();
        if !runtime.disabled && !runtime.paused {
            continue;
        }
        let policy = destination.config().retry.clone();
        for state in [EventState::Pending, EventState::Retrying] {
            let mut after = None;
            'pages: loop {
                let id_of_destination = destination.id.clone();
                // One blocking read per page: the ids and their records.
                let page = engine
                    .read_store(move |store| {
                        let ids = store.ids_in_state(&id_of_destination, state, after, 1000)?;
                        let mut records = Vec::with_capacity(ids.len());
                        for id in ids {
                            // An unreadable record is skipped, not the page.
                            records.push((id, store.get_event(id).ok().flatten()));
                        }
                        Ok(records)
                    })
                    .await;
                let records = match page {
                    Ok(records) if !records.is_empty() => records,
                    _ => break,
                };
                after = records.last().map(|(id, _)| *id);
                for (id, record) in records {
                    let Some(record) = record else {
                        continue;
                    };
                    if dispatcher::past_max_age(&record, &policy, now) {
                        dispatcher::expire(engine, &destination, id, &policy).await;
                    } else if record.created_at == record.cycle_started_at {
                        break 'pages;
                    }
                }
            }
        }
    }
}

async fn purge(engine: &Engine, now: chrono::DateTime<chrono::Utc>) {
    {
        let retention =
            chrono::Duration::from_std(engine.inner.retention).unwrap_or(chrono::Duration::MAX);
        let cutoff = now.checked_sub_signed(retention).unwrap_or(now);
        // Notices are kept as long as events.
        if let Err(e) = engine.inner.store.prune_notices(cutoff).await {
            tracing::warn!(error = %e, "pruning notices failed; will try again");
        }
        // Batches as small as the budget's: a purge of half a million events
        // rides the group commit between ingests instead of holding them up.
        loop {
            match engine
                .inner
                .store
                .purge(cutoff, now, budget::PURGE_BATCH)
                .await
            {
                Ok(budget::PURGE_BATCH) => continue,
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(purged = n, "purged events past retention");
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purge failed; will try again");
                    break;
                }
            }
        }
    }
}

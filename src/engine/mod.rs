//! The engine: one handle that front ends (the HTTP API, the TUI) use to ingest,
//! list, get, act and subscribe. Behind it, one dispatcher task per destination
//! reads that destination's slice of the due-time index, so a dead or slow
//! destination only ever occupies its own concurrency.

mod actions;
mod control;
pub mod deliver;
mod dispatcher;
pub mod metrics;
mod settle;

pub use actions::{BulkSelection, DestinationPatch, JobProgress, JobState};
pub use control::*;
pub use dispatcher::AttemptSummary;

use crate::clock::SharedClock;
use crate::config::{Config, DestinationConfig};
use crate::model::{DestinationOverrides, DestinationRuntime, EventId, EventState};
use crate::store::{Store, StoreError};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, watch, Notify};

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
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A bad `Idempotency-Key` header (a request error, not a bad field value).
    #[error("Idempotency-Key: {0}")]
    IdempotencyKey(String),
    /// The event's state does not allow the action.
    #[error(transparent)]
    Refused(#[from] crate::model::TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("hookwatch is shutting down")]
    ShuttingDown,
}

/// What changed, for subscribers such as the TUI. Sent after the change is durable.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Event {
        id: EventId,
        destination: String,
        state: EventState,
    },
    Destination {
        id: String,
    },
}

/// A destination as the engine runs it: the effective config (file plus live
/// edits), its runtime state, and the dispatcher's bookkeeping.
pub struct Destination {
    pub id: String,
    /// The config file's version, that live edits are applied over.
    base: DestinationConfig,
    config: RwLock<Arc<DestinationConfig>>,
    runtime: Mutex<DestinationRuntime>,
    /// Wakes the dispatcher: new events, a finished attempt, a changed setting.
    wake: Notify,
    in_flight: Mutex<HashSet<EventId>>,
    /// Wakes bulk jobs waiting for a free slot.
    slot_freed: Notify,
    success_streak: AtomicU32,
}

impl Destination {
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

    fn in_flight_snapshot(&self) -> HashSet<EventId> {
        self.in_flight.lock().expect("in-flight lock").clone()
    }
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: SharedClock,
    client: reqwest::Client,
    /// `server.deny_private_destinations`: refuse private addresses at connect time.
    deny_private: bool,
    destinations: RwLock<BTreeMap<String, Arc<Destination>>>,
    changes: broadcast::Sender<Change>,
    metrics: metrics::Metrics,
    retention: Duration,
    shutting_down: AtomicBool,
    shutdown: watch::Sender<bool>,
    attempts_in_flight: AtomicUsize,
    attempts_done: Notify,
    ids: Mutex<ulid::Generator>,
    jobs: Mutex<std::collections::HashMap<String, Arc<actions::BulkJob>>>,
}

impl Engine {
    /// Opens the store, restores each destination's runtime state and starts the
    /// dispatchers. Must run inside a tokio runtime. Every undelivered event in the
    /// store is picked up again, including after a kill -9.
    pub fn start(config: &Config, clock: SharedClock) -> Result<Engine, EngineError> {
        let store = Store::open(&config.store.path)?;
        let (changes, _) = broadcast::channel(4096);
        let (shutdown, _) = watch::channel(false);
        let mut destinations = BTreeMap::new();
        for dest_config in &config.destinations {
            let runtime = store.runtime(&dest_config.id)?.unwrap_or_default();
            if !runtime.overrides.is_empty() {
                let keys = runtime.overrides.overridden();
                tracing::info!(destination = %dest_config.id, edited = ?keys, "live edits are applied over the config file");
            }
            let effective = apply_overrides(dest_config, &runtime.overrides).unwrap_or_else(|e| {
                tracing::warn!(destination = %dest_config.id, error = %e, "stored live edits no longer apply; using the config file");
                dest_config.clone()
            });
            destinations.insert(
                dest_config.id.clone(),
                Arc::new(Destination {
                    id: dest_config.id.clone(),
                    base: dest_config.clone(),
                    config: RwLock::new(Arc::new(effective)),
                    runtime: Mutex::new(runtime),
                    wake: Notify::new(),
                    in_flight: Mutex::new(HashSet::new()),
                    slot_freed: Notify::new(),
                    success_streak: AtomicU32::new(0),
                }),
            );
        }
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                clock,
                client: if config.server.deny_private_destinations {
                    deliver::build_public_only_client()
                } else {
                    deliver::build_client()
                },
                deny_private: config.server.deny_private_destinations,
                destinations: RwLock::new(destinations),
                changes,
                metrics: metrics::Metrics::default(),
                retention: config.store.retention,
                shutting_down: AtomicBool::new(false),
                shutdown,
                attempts_in_flight: AtomicUsize::new(0),
                attempts_done: Notify::new(),
                ids: Mutex::new(ulid::Generator::new()),
                jobs: Mutex::new(std::collections::HashMap::new()),
            }),
        };
        for destination in engine.destination_handles() {
            tokio::spawn(dispatcher::run(engine.clone(), destination));
        }
        tokio::spawn(housekeeping(engine.clone()));
        Ok(engine)
    }

    pub fn store_path(&self) -> &std::path::Path {
        self.inner.store.path()
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

    pub(crate) fn destination_handles(&self) -> Vec<Arc<Destination>> {
        self.inner
            .destinations
            .read()
            .expect("destinations lock")
            .values()
            .cloned()
            .collect()
    }

    fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Stops claiming new attempts and waits up to `grace` for the ones in flight
    /// to finish and be recorded, then closes the store. Attempts still running
    /// after that stay pending in the store and are made again on the next start
    /// (at-least-once).
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        self.inner.shutdown.send_replace(true);
        let deadline = tokio::time::Instant::now() + grace;
        let finished = loop {
            let done = self.inner.attempts_done.notified();
            if self.inner.attempts_in_flight.load(Ordering::SeqCst) == 0 {
                break true;
            }
            if tokio::time::timeout_at(deadline, done).await.is_err() {
                break self.inner.attempts_in_flight.load(Ordering::SeqCst) == 0;
            }
        };
        // A clean close spares the next start redb's repair pass.
        let store = self.inner.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close_now()).await;
        finished
    }

    /// Persists a destination's runtime state and tells subscribers.
    async fn save_runtime(&self, destination: &Destination) -> Result<(), EngineError> {
        let runtime = destination.runtime();
        self.inner
            .store
            .put_runtime(destination.id.clone(), runtime)
            .await?;
        destination.wake.notify_one();
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
    let mut shutdown = engine.inner.shutdown.subscribe();
    let mut last_purge: Option<chrono::DateTime<chrono::Utc>> = None;
    loop {
        let now = engine.inner.clock.now();
        expire_held(&engine, now).await;
        let purge_due = last_purge
            .is_none_or(|at| now - at >= chrono::Duration::from_std(PURGE_EVERY).expect("small"));
        if purge_due {
            last_purge = Some(now);
            purge(&engine, now).await;
        }
        let next = now + chrono::Duration::from_std(HOUSEKEEPING_EVERY).expect("small duration");
        tokio::select! {
            _ = engine.inner.clock.sleep_until(next) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
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
                let ids = match engine
                    .inner
                    .store
                    .ids_in_state(&destination.id, state, after, 1000)
                {
                    Ok(ids) if !ids.is_empty() => ids,
                    _ => break,
                };
                after = ids.last().copied();
                for id in ids {
                    let Ok(Some(record)) = engine.inner.store.get_event(id) else {
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
        loop {
            match engine.inner.store.purge(cutoff, now, 1000).await {
                Ok(1000) => continue,
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

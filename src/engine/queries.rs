//! Ingest and the engine's read side (listings, event detail, destination
//! views, counts, metrics). Front ends do not call these directly: they go
//! through [`crate::control::Control`], whose local implementation runs the
//! synchronous reads here on the blocking pool.

use super::metrics::DestinationGauges;
use super::{Change, Engine, EngineError};
use crate::mask;
use crate::model::{
    AttemptRecord, EventFilter, EventId, EventRecord, EventState, Health, StateCounts,
};
use crate::policy::RetrySpec;
use crate::store::{Inserted, NewEvent};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Longest accepted `Idempotency-Key`, in bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
/// A topic fan-out to at least this many destinations is acknowledged once
/// its events are stored, their due entries following in the next commit
/// (see [`crate::store::Store::insert_events_deferred`]): below it, the
/// destination-keyed writes are too few to matter and the dispatchers see the
/// events one commit sooner.
const DEFER_INDEX_FROM: usize = 32;
/// Why `request`'s idempotency key is refused, if it is.
fn check_idempotency_key(request: &IngestRequest) -> Result<(), String> {
    match &request.idempotency_key {
        Some(key) if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY => Err(format!(
            "must be 1 to {MAX_IDEMPOTENCY_KEY} bytes, got {}",
            key.len()
        )),
        _ => Ok(()),
    }
}

/// Most events one listing page returns.
pub const MAX_PAGE: usize = 1000;

/// An event to ingest, as the API received it.
#[derive(Clone, Debug, Default)]
pub struct IngestRequest {
    pub topic: Option<String>,
    pub content_type: Option<String>,
    pub payload: bytes::Bytes,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<EventRecord>,
    /// Pass as `after` to get the next (older) page; `None` on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventRecord,
    /// The body as text when it is UTF-8.
    pub payload: Option<String>,
    /// The body in base64 when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    pub attempts: Vec<AttemptRecord>,
    /// For an event that is due now: how many of its destination's due events
    /// its dispatcher takes first (counted up to [`AHEAD_CAP`]). `None` when it
    /// is not due yet or is finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ahead: Option<u64>,
}

/// The most due events [`EventDetail::ahead`] counts: enough to say "a lot",
/// bounded so reading one event's detail stays cheap.
pub const AHEAD_CAP: u64 = 10_000;

#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct DestinationView {
    pub id: String,
    pub url: String,
    pub topics: Vec<String>,
    pub timeout: String,
    pub enabled: bool,
    pub paused: bool,
    pub in_retry: bool,
    /// healthy, in retry, disabled or paused: what the TUI colours.
    pub health: Health,
    /// Attempts allowed at once now (lowered by 429s).
    pub concurrency: u32,
    pub max_concurrency: u32,
    pub in_flight: usize,
    /// Header values that look like credentials are masked.
    pub headers: BTreeMap<String, String>,
    /// Secrets are never shown, only how many there are.
    pub secrets: Vec<String>,
    pub retry: RetrySpec,
    pub counts: StateCounts,
    /// The fields a live edit overrides (`url`, `headers`, `concurrency`,
    /// `retry`); the others follow the config file.
    #[serde(deserialize_with = "overridden_names")]
    pub overridden: Vec<&'static str>,
    /// `file` (the config file) or `api` (created through the API).
    pub source: super::DestinationSource,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Deleted once it owes nothing (`DELETE ?drain=true`); takes no events.
    #[serde(default)]
    pub draining: bool,
}

/// Reads `overridden` back (a remote client): the names are the fixed set a
/// live edit can override, so each is mapped to its static name, and a name
/// outside that set is an error rather than a leaked allocation.
fn overridden_names<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<&'static str>, D::Error> {
    const OVERRIDABLE: [&str; 4] = ["url", "headers", "concurrency", "retry"];
    Vec::<String>::deserialize(deserializer)?
        .into_iter()
        .map(|name| {
            OVERRIDABLE
                .into_iter()
                .find(|known| *known == name)
                .ok_or_else(|| serde::de::Error::unknown_variant(&name, &OVERRIDABLE))
        })
        .collect()
}

/// Most events one batch may carry.
pub const MAX_BATCH: usize = 1000;

/// Where a batch of events goes: every item to one destination, or each item
/// to every destination subscribed to its topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchTarget {
    Destination(String),
    /// The topic of every item that names none of its own.
    Topic(String),
}

impl Engine {
    /// Stores one event for `destination`; it is acknowledged (this returns) only
    /// once its commit is durable.
    pub async fn ingest(
        &self,
        destination: &str,
        request: IngestRequest,
    ) -> Result<Inserted, EngineError> {
        let targets = vec![self.accepting_destination(destination)?];
        let mut inserted = self.insert(vec![(targets, request)]).await?;
        Ok(inserted.remove(0).remove(0))
    }

    /// Stores one event for every destination whose topic globs match `topic`.
    pub async fn ingest_topic(
        &self,
        topic: &str,
        mut request: IngestRequest,
    ) -> Result<Vec<Inserted>, EngineError> {
        let targets = self.subscribers(topic)?;
        request.topic = Some(topic.to_string());
        let mut inserted = self.insert(vec![(targets, request)]).await?;
        Ok(inserted.remove(0))
    }

    /// Stores a batch of events in one durable commit: every item is checked
    /// first, so one bad item (naming its index, `events[3].…`) stores none.
    /// One answer per item, in order: the events it made (one for a
    /// destination, one per subscriber for a topic).
    pub async fn ingest_batch(
        &self,
        target: &BatchTarget,
        requests: Vec<IngestRequest>,
    ) -> Result<Vec<Vec<Inserted>>, EngineError> {
        if requests.is_empty() || requests.len() > MAX_BATCH {
            return Err(EngineError::Invalid {
                field: "events".into(),
                message: format!(
                    "a batch holds 1 to {MAX_BATCH} events, got {}",
                    requests.len()
                ),
            });
        }
        let mut items = Vec::with_capacity(requests.len());
        match target {
            BatchTarget::Destination(destination) => {
                let destination = self.accepting_destination(destination)?;
                for request in requests {
                    items.push((vec![destination.clone()], request));
                }
            }
            BatchTarget::Topic(topic) => {
                // Items of one topic (the usual batch) share one lookup.
                let mut subscribers: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (index, mut request) in requests.into_iter().enumerate() {
                    let topic = request.topic.get_or_insert_with(|| topic.clone()).clone();
                    let targets = match subscribers.get(&topic) {
                        Some(targets) => targets.clone(),
                        None => {
                            let targets = self.subscribers(&topic).map_err(|e| match e {
                                EngineError::Invalid { field, message } => EngineError::BadItem {
                                    index,
                                    field,
                                    message,
                                },
                                no_match @ EngineError::NoTopicMatch(_) => EngineError::BadItem {
                                    index,
                                    field: "topic".into(),
                                    message: no_match.to_string(),
                                },
                                other => other,
                            })?;
                            subscribers.insert(topic, targets.clone());
                            targets
                        }
                    };
                    items.push((targets, request));
                }
            }
        }
        for (index, (_, request)) in items.iter().enumerate() {
            check_idempotency_key(request).map_err(|message| EngineError::BadItem {
                index,
                field: "idempotency_key".into(),
                message,
            })?;
        }
        self.insert(items).await
    }

    /// `destination`'s id, when it exists and takes new events.
    fn accepting_destination(&self, destination: &str) -> Result<String, EngineError> {
        let dest = self.destination(destination)?;
        if dest.is_draining() {
            return Err(EngineError::Conflict(format!(
                "destination \"{destination}\" is being deleted (draining) and takes no new events"
            )));
        }
        Ok(dest.id.clone())
    }

    /// The destinations (not draining) whose topic globs match `topic`.
    fn subscribers(&self, topic: &str) -> Result<Vec<String>, EngineError> {
        if topic.trim().is_empty() {
            return Err(EngineError::Invalid {
                field: "topic".into(),
                message: "must not be empty".into(),
            });
        }
        let targets: Vec<String> = self
            .destination_handles()
            .iter()
            .filter(|d| {
                !d.is_draining()
                    && d.config()
                        .topic_patterns
                        .iter()
                        .any(|pattern| pattern.matches(topic))
            })
            .map(|d| d.id.clone())
            .collect();
        if targets.is_empty() {
            return Err(EngineError::NoTopicMatch(topic.to_string()));
        }
        Ok(targets)
    }

    /// Stores every item's events (one per target destination) in one
    /// durable commit; one answer per item, in order.
    async fn insert(
        &self,
        items: Vec<(Vec<String>, IngestRequest)>,
    ) -> Result<Vec<Vec<Inserted>>, EngineError> {
        if self.is_shutting_down() {
            return Err(EngineError::ShuttingDown);
        }
        for (_, request) in &items {
            check_idempotency_key(request).map_err(EngineError::IdempotencyKey)?;
        }
        let now = self.inner.clock.now();
        let item_sizes: Vec<usize> = items.iter().map(|(targets, _)| targets.len()).collect();
        let mut events: Vec<NewEvent> = Vec::with_capacity(item_sizes.iter().sum());
        for (targets, request) in items {
            for destination in targets {
                events.push(NewEvent {
                    id: self.new_event_id(now),
                    destination,
                    topic: request.topic.clone().unwrap_or_default(),
                    content_type: request.content_type.clone(),
                    payload: request.payload.clone(),
                    idempotency_key: request.idempotency_key.clone(),
                    created_at: now,
                });
            }
        }
        // A fan-out to many destinations would dirty a leaf page per
        // destination in every destination-keyed index; a batch to one
        // destination writes neighbouring keys and gains nothing by waiting.
        let fan_out = item_sizes.iter().copied().max().unwrap_or(0);
        let engine = self.clone();
        let inserted = if fan_out >= DEFER_INDEX_FROM {
            // Acknowledged once stored; the due entries follow in the
            // writer's next commit, and the dispatchers are woken then.
            self.run_to_completion(async move {
                let (inserted, indexed) = engine.inner.store.insert_events_deferred(events).await?;
                let destinations: std::collections::BTreeSet<String> =
                    inserted.iter().map(|e| e.destination.clone()).collect();
                let waker = engine.clone();
                engine.spawn(async move {
                    tokio::select! {
                        _ = waker.inner.shutdown.cancelled() => {}
                        _ = indexed.wait() => waker.wake_all(destinations.iter().map(String::as_str)),
                    }
                });
                Ok(inserted)
            })
            .await?
        } else {
            self.run_to_completion(async move {
                let handing_over = HandingOver::begin(&engine, &events);
                let inserted = engine.inner.store.insert_events(events.clone()).await?;
                handing_over.finish(&inserted, events);
                Ok(inserted)
            })
            .await?
        };
        self.inner
            .metrics
            .ingested
            .fetch_add(inserted.len() as u64, Ordering::Relaxed);
        for event in &inserted {
            self.publish(Change::Event {
                id: event.id,
                destination: event.destination.clone(),
                state: event.state,
            });
        }
        let mut inserted = inserted.into_iter();
        Ok(item_sizes
            .into_iter()
            .map(|size| inserted.by_ref().take(size).collect())
            .collect())
    }

    /// Wakes the dispatchers of `destinations` (those that still exist) to
    /// look at the store.
    fn wake_all<'a>(&self, destinations: impl Iterator<Item = &'a str>) {
        for destination in destinations {
            if let Ok(dest) = self.destination(destination) {
                dest.look_again();
            }
        }
    }

    /// ULIDs from the engine's clock, monotonic within a millisecond, so ids sort
    /// by creation time even under virtual time.
    fn new_event_id(&self, now: chrono::DateTime<chrono::Utc>) -> EventId {
        let mut generator = self.inner.ids.lock().expect("id generator lock");
        generator
            .generate_from_datetime(now.into())
            .unwrap_or_else(|_| ulid::Ulid::from_datetime(now.into()))
    }

    /// One page of events, newest first.
    pub fn list_events(
        &self,
        filter: &EventFilter,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<EventPage, EngineError> {
        if let Some(dest) = &filter.destination {
            self.destination_or_its_history(dest)?;
        }
        let limit = limit.clamp(1, MAX_PAGE);
        let among = self.labelled(filter);
        // One extra tells whether there is a next page without a second read.
        let mut events =
            self.inner
                .store
                .list_events(filter, among.as_deref(), after, limit + 1)?;
        let next = if events.len() > limit {
            events.truncate(limit);
            events.last().map(|e| e.id.to_string())
        } else {
            None
        };
        Ok(EventPage { events, next })
    }

    /// The ids of the destinations `filter.label` selects, sorted (`None`:
    /// no label in the filter, every destination).
    pub(crate) fn labelled(&self, filter: &EventFilter) -> Option<Vec<String>> {
        let selector = filter.label.as_ref()?;
        Some(
            self.destination_handles()
                .iter()
                .filter(|d| selector.matches(&d.config().labels))
                .map(|d| d.id.clone())
                .collect(),
        )
    }

    /// A destination that exists, or one that did and left events (deleted
    /// through the API, or removed from the file): its events stay readable.
    pub(crate) fn destination_or_its_history(&self, id: &str) -> Result<(), EngineError> {
        if self.destination(id).is_ok() || self.inner.store.counts(id)?.total() > 0 {
            Ok(())
        } else {
            Err(EngineError::UnknownDestination(id.to_string()))
        }
    }

    pub fn get_event(&self, id: EventId) -> Result<EventDetail, EngineError> {
        let event = self
            .inner
            .store
            .get_event(id)?
            .ok_or_else(|| EngineError::UnknownEvent(id.to_string()))?;
        let payload = self.inner.store.get_payload(id)?.unwrap_or_default();
        let attempts = self.inner.store.attempts(id)?;
        let (payload, payload_base64) = match String::from_utf8(payload) {
            Ok(text) => (Some(text), None),
            Err(bytes) => {
                use base64::Engine as _;
                (
                    None,
                    Some(base64::engine::general_purpose::STANDARD.encode(bytes.into_bytes())),
                )
            }
        };
        let ahead = match event.next_attempt_at {
            Some(due) if event.state.awaits_delivery() && due <= self.inner.clock.now() => {
                Some(self.inner.store.due_ahead(
                    &event.destination,
                    event.id,
                    due.timestamp_millis(),
                    AHEAD_CAP,
                )?)
            }
            _ => None,
        };
        Ok(EventDetail {
            event,
            payload,
            payload_base64,
            attempts,
            ahead,
        })
    }

    pub fn destinations(&self) -> Result<Vec<DestinationView>, EngineError> {
        self.destination_handles()
            .iter()
            .map(|d| self.destination_view(&d.id))
            .collect()
    }

    /// The destinations whose labels `selector` matches.
    pub fn destinations_labelled(
        &self,
        selector: &crate::model::LabelSelector,
    ) -> Result<Vec<DestinationView>, EngineError> {
        self.destination_handles()
            .iter()
            .filter(|d| selector.matches(&d.config().labels))
            .map(|d| self.destination_view(&d.id))
            .collect()
    }

    pub fn destination_view(&self, id: &str) -> Result<DestinationView, EngineError> {
        let dest = self.destination(id)?;
        let config = dest.config();
        let runtime = dest.runtime();
        let in_flight = dest.in_flight.lock().expect("in-flight lock").len();
        let health = dest.health(self.inner.clock.now());
        Ok(DestinationView {
            id: dest.id.clone(),
            url: config.url.to_string(),
            topics: config.topics.clone(),
            timeout: crate::policy::units::format_duration(config.timeout),
            enabled: !runtime.disabled,
            paused: runtime.paused,
            in_retry: runtime.in_retry,
            health,
            concurrency: dest.current_concurrency(),
            max_concurrency: config.concurrency,
            in_flight,
            headers: config
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), mask::header_value(name, value)))
                .collect(),
            secrets: config
                .secrets
                .iter()
                .map(|_| format!("whsec_{}", mask::MASK))
                .collect(),
            retry: config.retry.to_spec(),
            counts: self.inner.store.counts(&dest.id)?,
            overridden: runtime.overrides.overridden(),
            source: dest.source,
            labels: config.labels.clone(),
            draining: dest.is_draining(),
        })
    }

    /// Counts by state for every destination, for `/metrics` and the TUI header.
    pub fn counts_by_destination(&self) -> Result<BTreeMap<String, StateCounts>, EngineError> {
        self.destination_handles()
            .iter()
            .map(|d| Ok((d.id.clone(), self.inner.store.counts(&d.id)?)))
            .collect()
    }

    /// The `/metrics` text. Synchronous store reads: callers run it on the
    /// blocking pool (the local [`crate::control::Control`] does).
    pub fn metrics_text(&self) -> Result<String, EngineError> {
        let now = self.inner.clock.now();
        let gauges = self
            .destination_handles()
            .iter()
            .map(|d| {
                Ok(DestinationGauges {
                    id: d.id.clone(),
                    health: d.health(now),
                    concurrency: d.current_concurrency(),
                    in_flight: d.attempts_in_flight(),
                    oldest_owed_age_seconds: self.oldest_owed_age(&d.id)?,
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        Ok(self.inner.metrics.render(
            &self.counts_by_destination()?,
            self.inner.store.commit_stats(),
            &gauges,
        ))
    }

    /// Seconds since the oldest pending or retrying event of `destination` was
    /// created; 0 when none is owed. Reads the first entry of each state's
    /// slice of the by-destination-state index (ids are ULIDs, ordered by
    /// creation time on the engine clock), so a scrape costs two index seeks
    /// per destination, never a table scan.
    fn oldest_owed_age(&self, destination: &str) -> Result<f64, EngineError> {
        let mut oldest: Option<chrono::DateTime<chrono::Utc>> = None;
        for state in [EventState::Pending, EventState::Retrying] {
            if let Some(id) = self
                .inner
                .store
                .ids_in_state(destination, state, None, 1)?
                .first()
            {
                let created: chrono::DateTime<chrono::Utc> = id.datetime().into();
                oldest = Some(oldest.map_or(created, |o| o.min(created)));
            }
        }
        Ok(oldest.map_or(0.0, |created| {
            (self.inner.clock.now() - created)
                .to_std()
                .map_or(0.0, |age| age.as_secs_f64())
        }))
    }
}

/// An insert's part in the hand-over of fresh events to their dispatchers (see
/// [`super::handoff`]): announced to each destination before the write, and
/// ended after it with the events it committed. Dropped unfinished (the
/// request was abandoned, the write failed), it makes the dispatchers look
/// instead: the events may be stored all the same.
struct HandingOver {
    destinations: Vec<Arc<super::Destination>>,
    finished: bool,
}

impl HandingOver {
    fn begin(engine: &Engine, events: &[NewEvent]) -> HandingOver {
        let ids: std::collections::BTreeSet<&str> =
            events.iter().map(|e| e.destination.as_str()).collect();
        let destinations: Vec<_> = ids
            .into_iter()
            .filter_map(|id| engine.destination(id).ok())
            .collect();
        for destination in &destinations {
            destination.handoff().begin_insert();
        }
        HandingOver {
            destinations,
            finished: false,
        }
    }

    /// Hands each destination the events the insert stored for it (duplicates
    /// are not owed) and wakes those with something new.
    fn finish(mut self, inserted: &[Inserted], events: Vec<NewEvent>) {
        self.finished = true;
        let mut fresh: BTreeMap<String, Vec<(crate::model::EventId, super::handoff::ForDelivery)>> =
            BTreeMap::new();
        for (answer, event) in inserted.iter().zip(events) {
            if answer.state != EventState::Pending || answer.id != event.id {
                continue;
            }
            let (record, payload) = event.into_record(None);
            fresh
                .entry(record.destination.clone())
                .or_default()
                .push((answer.id, (record, payload.to_vec())));
        }
        for destination in &self.destinations {
            let events = fresh.remove(&destination.id).unwrap_or_default();
            if destination.handoff().end_insert(events) {
                destination.wake.notify_one();
            }
        }
    }
}

impl Drop for HandingOver {
    fn drop(&mut self) {
        if !self.finished {
            for destination in &self.destinations {
                let mut handoff = destination.handoff();
                handoff.end_insert(Vec::new());
                handoff.close();
                drop(handoff);
                destination.wake.notify_one();
            }
        }
    }
}

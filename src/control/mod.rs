//! The one interface the front ends use: `api/ | tui/ ─▶ Control ─▶ engine`.
//!
//! [`Control`] is everything the HTTP API and the TUI ask of a running hookwatch,
//! as async methods on an object-safe trait, so a front end holds an
//! `Arc<dyn Control>` and does not know whether the engine runs in this process
//! ([`LocalControl`]) or behind HTTP (a remote implementation, later). Its
//! vocabulary is the types the API already serialises (`EventPage`,
//! `EventDetail`, `DestinationView`, `JobProgress`, ...), and its one error type,
//! [`ControlError`], travels over HTTP as a status plus a JSON body with a stable
//! `code`, from which a remote client rebuilds the same variant (the mapping is
//! in `api::error`).

mod local;
mod remote;

pub use local::LocalControl;
pub use remote::{RemoteControl, RemoteControlError};

use crate::engine::stats::{DestinationStats, StatsWindow};
use crate::engine::{
    AttemptSummary, BatchTarget, BulkSelection, Change, Deleted, DestinationPatch, DestinationView,
    EngineError, EventDetail, EventPage, IngestRequest, JobProgress,
};
use crate::model::{
    EventFilter, EventId, EventRecord, Notice, NoticeId, NoticePage, NoticeQuery, NoticeSelection,
    StateCounts, TransitionError,
};
use crate::store::Inserted;
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a subscriber to [`Control::subscribe`] receives.
#[derive(Clone, Debug, PartialEq)]
pub enum Notification {
    /// Something changed (sent after the change is durable).
    Changed(Change),
    /// Notifications were lost (the subscriber fell behind, or the connection
    /// was re-established): whatever the subscriber shows must be read again.
    Resync,
}

/// Counters that only grow, for rates (the TUI's ingest and delivery meters),
/// and the process that counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub ingested: u64,
    pub delivered: u64,
    /// Operational notices not acknowledged yet (the TUI header's count).
    /// Not a counter that only grows: acknowledging lowers it.
    #[serde(default)]
    pub unacked_notices: u64,
    /// The pid of the hookwatch that answers (so an attached client sees a
    /// restarted daemon as the new process it is); `None` from a server too
    /// old to say. `GET /v1/status` sends it at its top level, not here.
    #[serde(skip)]
    pub pid: Option<u32>,
    /// Where the store stands against `store.max_size`; `None` without a
    /// budget (or from a server too old to say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<crate::store::BudgetUse>,
}

/// Why a [`Control`] call failed. Serialised (tagged by `code`) into the API's
/// error bodies; `Display` is the `error` text the API has always sent.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ControlError {
    #[error("unknown destination \"{id}\"")]
    UnknownDestination { id: String },
    #[error("no destination subscribes to topic \"{topic}\"")]
    NoTopicMatch { topic: String },
    #[error("no event with id \"{id}\"")]
    UnknownEvent { id: String },
    #[error("no bulk job with id \"{id}\"")]
    UnknownJob { id: String },
    #[error("no notice with id \"{id}\"")]
    UnknownNotice { id: String },
    /// A value that does not validate, naming its field.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// One item of a batch (at `index`, counting from 0) cannot be stored,
    /// so none of the batch is.
    #[error("events[{index}].{field}: {message}")]
    BadItem {
        index: usize,
        field: String,
        message: String,
    },
    /// A bad `Idempotency-Key` (a request error, not a bad field value).
    #[error("Idempotency-Key: {message}")]
    IdempotencyKey { message: String },
    /// The event's state does not allow the action. The typed refusal is kept
    /// where it is known (in process); over HTTP only its words travel.
    #[error("{message}")]
    Refused {
        message: String,
        #[serde(skip)]
        #[source]
        refusal: Option<TransitionError>,
    },
    /// The store could not answer; worth trying again later.
    #[error("{message}")]
    Unavailable {
        message: String,
        #[serde(skip)]
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("hookwatch is shutting down")]
    ShuttingDown,
    /// The store is at its budget (`store.max_size`) with events still owed
    /// only: the event was not stored. Worth trying again once deliveries
    /// free room.
    #[error("store full: {}", usage.refusal())]
    StoreFull { usage: crate::store::BudgetUse },
    /// The request contradicts what exists (an id taken, a destination
    /// defined in the config file, a limit reached).
    #[error("{message}")]
    Conflict { message: String },
    /// A remote hookwatch could not be reached at `url`, its base URL (not
    /// the endpoint called), for `cause`. Made by the client side only; the
    /// server never answers it. The transport's whole error is the source.
    #[error("cannot reach hookwatch at {url}: {cause}")]
    Unreachable {
        url: String,
        cause: UnreachableCause,
        #[serde(skip)]
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A remote hookwatch refused the request itself (a missing or wrong
    /// token, a request it does not understand), with its own `code` as
    /// `api_code`. Made by the client side only.
    #[error("{message} (HTTP {status}, {api_code})")]
    Rejected {
        status: u16,
        api_code: String,
        message: String,
    },
}

/// Why a remote hookwatch did not answer, decided from the kind of the
/// transport's error (never its text); `Display` is the few words every front
/// end shows after "cannot reach hookwatch at URL: ".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnreachableCause {
    ConnectionRefused,
    TimedOut,
    ConnectionReset,
    ConnectionAborted,
    NameNotResolved,
    HostUnreachable,
    NetworkUnreachable,
    /// Connecting failed for another reason (see the error's source).
    CannotConnect,
    /// The connection broke after it was made (see the error's source).
    ConnectionLost,
}

impl UnreachableCause {
    pub fn as_str(self) -> &'static str {
        match self {
            UnreachableCause::ConnectionRefused => "connection refused",
            UnreachableCause::TimedOut => "timed out",
            UnreachableCause::ConnectionReset => "connection reset",
            UnreachableCause::ConnectionAborted => "connection aborted",
            UnreachableCause::NameNotResolved => "name not resolved",
            UnreachableCause::HostUnreachable => "host unreachable",
            UnreachableCause::NetworkUnreachable => "network unreachable",
            UnreachableCause::CannotConnect => "cannot connect",
            UnreachableCause::ConnectionLost => "connection lost",
        }
    }

    /// The cause an I/O error's kind names, if it is one of the above.
    pub fn of_io_kind(kind: std::io::ErrorKind) -> Option<UnreachableCause> {
        use std::io::ErrorKind;
        Some(match kind {
            ErrorKind::ConnectionRefused => UnreachableCause::ConnectionRefused,
            ErrorKind::TimedOut => UnreachableCause::TimedOut,
            ErrorKind::ConnectionReset => UnreachableCause::ConnectionReset,
            ErrorKind::ConnectionAborted => UnreachableCause::ConnectionAborted,
            ErrorKind::HostUnreachable => UnreachableCause::HostUnreachable,
            ErrorKind::NetworkUnreachable => UnreachableCause::NetworkUnreachable,
            ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe => UnreachableCause::ConnectionLost,
            _ => return None,
        })
    }
}

impl std::fmt::Display for UnreachableCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ControlError {
    /// The stable machine name of the variant (the `code` of an API error body).
    pub fn code(&self) -> &'static str {
        match self {
            ControlError::UnknownDestination { .. } => "unknown_destination",
            ControlError::NoTopicMatch { .. } => "no_topic_match",
            ControlError::UnknownEvent { .. } => "unknown_event",
            ControlError::UnknownJob { .. } => "unknown_job",
            ControlError::UnknownNotice { .. } => "unknown_notice",
            ControlError::Invalid { .. } => "invalid",
            ControlError::BadItem { .. } => "bad_item",
            ControlError::IdempotencyKey { .. } => "idempotency_key",
            ControlError::Refused { .. } => "refused",
            ControlError::Unavailable { .. } => "unavailable",
            ControlError::ShuttingDown => "shutting_down",
            ControlError::StoreFull { .. } => "store_full",
            ControlError::Conflict { .. } => "conflict",
            ControlError::Unreachable { .. } => "unreachable",
            ControlError::Rejected { .. } => "rejected",
        }
    }

    /// A value that does not validate.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ControlError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<EngineError> for ControlError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::UnknownDestination(id) => ControlError::UnknownDestination { id },
            EngineError::NoTopicMatch(topic) => ControlError::NoTopicMatch { topic },
            EngineError::UnknownEvent(id) => ControlError::UnknownEvent { id },
            EngineError::UnknownJob(id) => ControlError::UnknownJob { id },
            EngineError::UnknownNotice(id) => ControlError::UnknownNotice { id },
            EngineError::Invalid { field, message } => ControlError::Invalid { field, message },
            EngineError::BadItem {
                index,
                field,
                message,
            } => ControlError::BadItem {
                index,
                field,
                message,
            },
            EngineError::IdempotencyKey(message) => ControlError::IdempotencyKey { message },
            EngineError::Refused(refusal) => ControlError::Refused {
                message: refusal.to_string(),
                refusal: Some(refusal),
            },
            EngineError::Store(crate::store::StoreError::Full { usage }) => {
                ControlError::StoreFull { usage }
            }
            EngineError::Store(store) => ControlError::Unavailable {
                message: store.to_string(),
                source: Some(Box::new(store)),
            },
            EngineError::ReadFailed(join) => ControlError::Unavailable {
                message: format!("a store read failed: {join}"),
                source: Some(Box::new(join)),
            },
            EngineError::ShuttingDown => ControlError::ShuttingDown,
            EngineError::Conflict(message) => ControlError::Conflict { message },
        }
    }
}

pub type ControlResult<T> = Result<T, ControlError>;

/// Everything a front end may ask of hookwatch. Object safe: hold it as
/// `Arc<dyn Control>`.
#[async_trait::async_trait]
pub trait Control: Send + Sync {
    /// Stores one event for `destination`; returns once it is durable.
    async fn ingest(&self, destination: &str, request: IngestRequest) -> ControlResult<Inserted>;
    /// Stores one event for every destination whose topics match `topic`.
    async fn ingest_topic(
        &self,
        topic: &str,
        request: IngestRequest,
    ) -> ControlResult<Vec<Inserted>>;

    /// Stores a batch of events in one durable commit, each checked first
    /// (one bad item stores none); one answer per item, in order: its event,
    /// or for a topic one event per subscriber.
    async fn ingest_batch(
        &self,
        target: BatchTarget,
        requests: Vec<IngestRequest>,
    ) -> ControlResult<Vec<Vec<Inserted>>>;

    /// One page of events, newest first, older than the cursor `after`.
    async fn list_events(
        &self,
        filter: EventFilter,
        after: Option<EventId>,
        limit: usize,
    ) -> ControlResult<EventPage>;
    async fn event(&self, id: EventId) -> ControlResult<EventDetail>;

    async fn destinations(&self) -> ControlResult<Vec<DestinationView>>;
    async fn destination(&self, id: &str) -> ControlResult<DestinationView>;

    /// One attempt now, whatever the event's schedule; waits for its outcome.
    async fn retry_now(&self, id: EventId) -> ControlResult<AttemptSummary>;
    /// Stops the event's automatic retries.
    async fn mute(&self, id: EventId) -> ControlResult<EventRecord>;
    /// Restarts the event's automatic cycle. Refused for a delivered event.
    async fn requeue(&self, id: EventId) -> ControlResult<EventRecord>;
    /// Restarts the event's automatic cycle, a delivered event included: the
    /// receiver is sent it again (`requeue?resend=true`).
    async fn resend(&self, id: EventId) -> ControlResult<EventRecord>;

    /// How many events a bulk retry over `selection` would cover.
    async fn count_selection(&self, selection: BulkSelection) -> ControlResult<u64>;
    async fn start_bulk_retry(&self, selection: BulkSelection) -> ControlResult<JobProgress>;
    async fn bulk_progress(&self, job: &str) -> ControlResult<JobProgress>;
    async fn cancel_bulk(&self, job: &str) -> ControlResult<JobProgress>;
    /// Every running bulk job and the last 100 finished ones, newest first.
    async fn bulk_jobs(&self) -> ControlResult<Vec<JobProgress>>;

    /// Applies a live edit; answers the destination as it now is.
    async fn patch_destination(
        &self,
        id: &str,
        patch: DestinationPatch,
    ) -> ControlResult<DestinationView>;

    /// A destination's attempt statistics by the minute over `window`.
    async fn destination_stats(
        &self,
        id: &str,
        window: StatsWindow,
    ) -> ControlResult<DestinationStats>;

    /// Creates a destination from its definition (the config file's keys, as
    /// JSON); it is stored and survives restarts.
    async fn create_destination(
        &self,
        definition: serde_json::Value,
    ) -> ControlResult<DestinationView>;
    /// Replaces a destination created through the API with a new definition.
    async fn replace_destination(
        &self,
        id: &str,
        definition: serde_json::Value,
    ) -> ControlResult<DestinationView>;
    /// Deletes a destination created through the API (its owed events are
    /// cancelled), or with `drain` once it owes nothing.
    async fn delete_destination(&self, id: &str, drain: bool) -> ControlResult<Deleted>;

    async fn pause(&self, id: &str) -> ControlResult<DestinationView> {
        let patch = DestinationPatch {
            paused: Some(true),
            ..DestinationPatch::default()
        };
        self.patch_destination(id, patch).await
    }

    async fn resume(&self, id: &str) -> ControlResult<DestinationView> {
        let patch = DestinationPatch {
            paused: Some(false),
            ..DestinationPatch::default()
        };
        self.patch_destination(id, patch).await
    }

    async fn enable(&self, id: &str) -> ControlResult<DestinationView> {
        let patch = DestinationPatch {
            enabled: Some(true),
            ..DestinationPatch::default()
        };
        self.patch_destination(id, patch).await
    }

    /// One page of operational notices, newest first (`query.before` is the
    /// cursor: the `next_before` of the previous page), with the number
    /// unacknowledged in all.
    async fn notices(&self, query: NoticeQuery) -> ControlResult<NoticePage>;
    /// Acknowledges one notice (acknowledging it again keeps the first
    /// time); `UnknownNotice` when there is none with `id`.
    async fn ack_notice(&self, id: NoticeId) -> ControlResult<Notice>;
    /// Acknowledges every notice `selection` covers (all of them with
    /// [`NoticeSelection::all`]); answers how many were unacknowledged.
    async fn ack_notices(&self, selection: NoticeSelection) -> ControlResult<u64>;

    /// Counts by state for every destination.
    async fn counts(&self) -> ControlResult<BTreeMap<String, StateCounts>>;
    /// The Prometheus text of `/metrics`.
    async fn metrics_text(&self) -> ControlResult<String>;
    async fn totals(&self) -> ControlResult<Totals>;

    /// The time as hookwatch sees it (its clock, which tests may drive).
    fn now(&self) -> chrono::DateTime<chrono::Utc>;

    /// Changes from now on. Ends when hookwatch stops.
    fn subscribe(&self) -> BoxStream<'static, Notification>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventState, TransitionKind};

    #[test]
    fn a_refusal_keeps_its_words_and_its_source_in_process() {
        let refusal = TransitionError {
            id: ulid::Ulid::nil(),
            state: EventState::Delivered,
            kind: TransitionKind::Muted,
        };
        let error = ControlError::from(EngineError::Refused(refusal.clone()));
        assert_eq!(error.code(), "refused");
        assert_eq!(error.to_string(), refusal.to_string());
        let source = std::error::Error::source(&error).expect("the refusal is the source");
        assert_eq!(source.to_string(), refusal.to_string());
    }

    #[test]
    fn the_code_is_the_serialised_tag() {
        let errors = [
            ControlError::UnknownJob { id: "j".into() },
            ControlError::invalid("url", "is not a URL"),
            ControlError::ShuttingDown,
        ];
        for error in errors {
            let value = serde_json::to_value(&error).unwrap();
            assert_eq!(value["code"], error.code());
        }
    }
}

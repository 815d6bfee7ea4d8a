//! Operator actions: manual retry, mute, requeue, bulk retry jobs, destination
//! edits. The API and the TUI both call these; each change is durable before the
//! call returns.

use super::dispatcher::{spawn_attempt, AttemptError, AttemptSummary, Attempted};
use super::ops_log::{DestinationChange, DisableCause};
use super::{apply_overrides, without_file_values, Change, Engine, EngineError};
use crate::model::{
    field_edit, EventFilter, EventId, EventRecord, EventState, EventTransition, FieldEdit,
    OverridesEdit, RetrySpec, Trigger,
};
use crate::store::Transitioned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A key that, when present, must hold a boolean (absent is `None` by
/// `#[serde(default)]`); `null` is an error rather than "no change".
fn present_bool<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    <bool as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// What a bulk retry covers: a filter, or an explicit list of ids.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BulkSelection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<EventState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<EventId>>,
    /// `tenant:acme`: only events of destinations with these labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<crate::model::LabelSelector>,
}

impl BulkSelection {
    pub fn from_filter(filter: &EventFilter) -> Self {
        BulkSelection {
            destination: filter.destination.clone(),
            state: filter.state,
            topic: filter.topic.clone(),
            created_after: filter.created_after,
            created_before: filter.created_before,
            ids: None,
            label: filter.label.clone(),
        }
    }

    /// The selection in words (the log, job listings):
    /// `destination=orders state=failed`, or `3 ids`.
    pub fn words(&self) -> String {
        let selection = self;
        if let Some(ids) = &selection.ids {
            return format!("{} ids", ids.len());
        }
        let mut words = Vec::new();
        if let Some(destination) = &selection.destination {
            words.push(format!("destination={destination}"));
        }
        if let Some(state) = selection.state {
            words.push(format!("state={state}"));
        }
        if let Some(topic) = &selection.topic {
            words.push(format!("topic={topic}"));
        }
        if let Some(label) = &selection.label {
            words.push(format!("label={label}"));
        }
        if let Some(after) = selection.created_after {
            words.push(format!("created_after={}", after.to_rfc3339()));
        }
        if let Some(before) = selection.created_before {
            words.push(format!("created_before={}", before.to_rfc3339()));
        }
        if words.is_empty() {
            "all events".to_string()
        } else {
            words.join(" ")
        }
    }

    /// The listing filter this selection stands for (its `ids` aside).
    pub fn filter(&self) -> EventFilter {
        EventFilter {
            destination: self.destination.clone(),
            state: self.state,
            topic: self.topic.clone(),
            created_after: self.created_after,
            created_before: self.created_before,
            label: self.label.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    #[default]
    Running,
    Completed,
    Cancelled,
}

/// A bulk retry job's progress, as the API and the TUI's gauge show it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct JobProgress {
    pub id: String,
    pub total: u64,
    pub done: u64,
    pub succeeded: u64,
    /// Attempts made that did not deliver.
    pub failed: u64,
    /// Events not attempted because nothing was owed any more: delivered
    /// meanwhile (by a recovery flush, say), or their destination deleted.
    #[serde(default)]
    pub skipped: u64,
    pub state: JobState,
    /// The job's runner has ended: every attempt it started has finished and
    /// is counted. A cancelled job is `cancelled` at once but finishes only
    /// after the attempts running when it was cancelled; its counts are final
    /// then.
    #[serde(default)]
    pub finished: bool,
    /// When the job was started.
    #[serde(default)]
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// When its runner ended (see `finished`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// What it retries.
    #[serde(default)]
    pub selection: BulkSelection,
}

impl JobProgress {
    /// Its state in one word: `running`, `cancelling` (cancelled, while the
    /// attempts running then finish), `cancelled` or `completed`.
    pub fn state_word(&self) -> &'static str {
        match (self.state, self.finished) {
            (JobState::Running, _) => "running",
            (JobState::Cancelled, false) => "cancelling",
            (JobState::Cancelled, true) => "cancelled",
            (JobState::Completed, _) => "completed",
        }
    }
}

/// A live edit of a destination. Every field is optional; only the ones given
/// change. `retry` is merged key by key over the config file's retry table. For
/// `url`, `headers`, `concurrency` and `retry`, `Some(None)` (JSON `null`) drops
/// the live edit so that the config file's value applies again.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationPatch {
    #[serde(
        default,
        deserialize_with = "field_edit",
        skip_serializing_if = "Option::is_none"
    )]
    pub url: FieldEdit<String>,
    #[serde(
        default,
        deserialize_with = "field_edit",
        skip_serializing_if = "Option::is_none"
    )]
    pub headers: FieldEdit<BTreeMap<String, String>>,
    #[serde(
        default,
        deserialize_with = "field_edit",
        skip_serializing_if = "Option::is_none"
    )]
    pub concurrency: FieldEdit<i64>,
    /// `null` is refused: there is no file value to fall back to.
    #[serde(
        default,
        deserialize_with = "present_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub enabled: Option<bool>,
    #[serde(
        default,
        deserialize_with = "present_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub paused: Option<bool>,
    #[serde(
        default,
        deserialize_with = "field_edit",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry: FieldEdit<RetrySpec>,
}

impl DestinationPatch {
    /// The keys this patch sets and the ones it drops (`null`: back to the
    /// config file's value), for the log; a retry edit names its keys
    /// (`retry.delay`).
    fn edited_keys(&self) -> (Vec<String>, Vec<String>) {
        let mut set = Vec::new();
        let mut dropped = Vec::new();
        let mut sort = |name: &str, edit: Option<bool>| match edit {
            Some(true) => set.push(name.to_string()),
            Some(false) => dropped.push(name.to_string()),
            None => {}
        };
        sort("url", self.url.as_ref().map(|v| v.is_some()));
        sort("headers", self.headers.as_ref().map(|v| v.is_some()));
        sort(
            "concurrency",
            self.concurrency.as_ref().map(|v| v.is_some()),
        );
        match &self.retry {
            Some(Some(spec)) => match serde_json::to_value(spec) {
                Ok(serde_json::Value::Object(keys)) => set.extend(
                    keys.into_iter()
                        .filter(|(_, value)| !value.is_null())
                        .map(|(key, _)| format!("retry.{key}")),
                ),
                _ => set.push("retry".to_string()),
            },
            Some(None) => dropped.push("retry".to_string()),
            None => {}
        }
        // `enabled` and `paused` are left out: their changes have lines of
        // their own (enabled, disabled by an operator, paused, resumed).
        (set, dropped)
    }

    /// Validates the overridable fields, each error naming its field.
    fn overrides_edit(&self) -> Result<OverridesEdit, EngineError> {
        let invalid = |field: &str, message: String| EngineError::Invalid {
            field: field.to_string(),
            message,
        };
        let url = match &self.url {
            Some(Some(text)) => Some(Some(
                crate::config::parse_url(text).map_err(|m| invalid("url", m))?,
            )),
            Some(None) => Some(None),
            None => None,
        };
        if let Some(Some(headers)) = &self.headers {
            crate::config::validate_headers(headers).map_err(|m| invalid("headers", m))?;
        }
        let concurrency = match self.concurrency {
            Some(Some(n)) => Some(Some(
                crate::config::validate_concurrency(n).map_err(|m| invalid("concurrency", m))?,
            )),
            Some(None) => Some(None),
            None => None,
        };
        Ok(OverridesEdit {
            url,
            headers: self.headers.clone(),
            concurrency,
            retry: self.retry.clone(),
        })
    }
}

impl Engine {
    /// One attempt now, whatever the event's state. On 2xx the event is delivered
    /// and its scheduled retries are cancelled; otherwise its schedule goes on as
    /// before. Does not count toward `max_retries`.
    pub async fn retry_now(&self, id: EventId) -> Result<AttemptSummary, EngineError> {
        self.run_one(id, Trigger::Manual).await
    }

    async fn run_one(&self, id: EventId, trigger: Trigger) -> Result<AttemptSummary, EngineError> {
        let record = self
            .read_store(move |store| store.get_event(id))
            .await?
            .ok_or_else(|| EngineError::UnknownEvent(id.to_string()))?;
        record.check(&EventTransition::AttemptStarted { trigger })?;
        let destination = self.destination(&record.destination)?;
        let handle = spawn_attempt(self, &destination, id, Some(trigger));
        match handle.await {
            Ok(Ok(Attempted::Made(summary))) => Ok(summary),
            Ok(Ok(Attempted::NothingOwed)) => Err(EngineError::UnknownEvent(id.to_string())),
            Ok(Err(AttemptError::Read(e))) => Err(e),
            Ok(Err(AttemptError::Record(e))) => Err(EngineError::Store(e)),
            Err(e) => Err(EngineError::Invalid {
                field: "attempt".into(),
                message: format!("the attempt failed to run: {e}"),
            }),
        }
    }

    fn event_record(&self, id: EventId) -> Result<EventRecord, EngineError> {
        self.inner
            .store
            .get_event(id)?
            .ok_or_else(|| EngineError::UnknownEvent(id.to_string()))
    }

    async fn change_event(
        &self,
        id: EventId,
        transition: EventTransition,
    ) -> Result<EventRecord, EngineError> {
        // The dispatcher must hear of the change once it is committed, even
        // if the caller stops waiting for it (see `run_to_completion`).
        let engine = self.clone();
        let record = self
            .run_to_completion(async move {
                let record = match engine.inner.store.transition(id, transition).await? {
                    Transitioned::Applied { record, .. } => *record,
                    Transitioned::Refused(refusal) => return Err(refusal.into()),
                    Transitioned::NotFound => {
                        return Err(EngineError::UnknownEvent(id.to_string()))
                    }
                };
                if let Ok(destination) = engine.destination(&record.destination) {
                    destination.forget_claims_ahead();
                }
                Ok(record)
            })
            .await?;
        self.publish(Change::Event {
            id,
            destination: record.destination.clone(),
            state: record.state,
        });
        Ok(record)
    }

    /// Stops all scheduled automatic retries: the event is `cancelled` with no
    /// next attempt. Manual retry still works. Refused for an event that is
    /// delivered, failed or skipped (nothing to stop).
    pub async fn mute(&self, id: EventId) -> Result<EventRecord, EngineError> {
        self.change_event(id, EventTransition::Muted).await
    }

    /// Restarts the automatic cycle: retry count back to 0, `max_age` counted from
    /// now, first attempt now. Refused for a skipped event (a duplicate) and for
    /// a delivered one (that takes [`Engine::resend`]).
    pub async fn requeue(&self, id: EventId) -> Result<EventRecord, EngineError> {
        let now = self.inner.clock.now();
        self.change_event(id, EventTransition::Requeued { now, resend: false })
            .await
    }

    /// [`Engine::requeue`] that also takes a delivered event: the receiver is
    /// sent it again, and the attempt is recorded with the trigger `resend`.
    pub async fn resend(&self, id: EventId) -> Result<EventRecord, EngineError> {
        let now = self.inner.clock.now();
        self.change_event(id, EventTransition::Requeued { now, resend: true })
            .await
    }

    /// The ids a selection covers, grouped by destination, oldest first.
    pub(super) fn select_ids(
        &self,
        selection: &BulkSelection,
    ) -> Result<BTreeMap<String, Vec<EventId>>, EngineError> {
        let mut grouped: BTreeMap<String, Vec<EventId>> = BTreeMap::new();
        if let Some(ids) = &selection.ids {
            for id in ids {
                let record = self.event_record(*id)?;
                grouped.entry(record.destination).or_default().push(*id);
            }
            return Ok(grouped);
        }
        let filter = selection.filter();
        if let Some(destination) = &filter.destination {
            self.destination(destination)?;
        }
        let among = self.labelled(&filter);
        let mut before = None;
        loop {
            let page =
                self.inner
                    .store
                    .list_events(&filter, among.as_deref(), before, super::MAX_PAGE)?;
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            let short = page.len() < super::MAX_PAGE;
            for record in page {
                grouped
                    .entry(record.destination)
                    .or_default()
                    .push(record.id);
            }
            if short {
                break;
            }
        }
        for ids in grouped.values_mut() {
            ids.reverse();
        }
        Ok(grouped)
    }

    /// Applies a live edit. Validated as a whole before anything changes; persisted
    /// so it survives restarts (see the README on how it combines with the file).
    pub async fn patch_destination(
        &self,
        id: &str,
        patch: DestinationPatch,
    ) -> Result<(), EngineError> {
        let destination = self.destination(id)?;
        let mut runtime = destination.runtime();
        let before = (runtime.disabled, runtime.paused);
        let (set, dropped) = patch.edited_keys();
        let mut overrides = runtime.overrides.clone();
        overrides.merge(patch.overrides_edit()?);
        let base = destination.base();
        let overrides = without_file_values(&base, overrides);
        let effective = apply_overrides(&base, &overrides)?;
        if let Some(enabled) = patch.enabled {
            runtime.disabled = !enabled;
        }
        if let Some(paused) = patch.paused {
            runtime.paused = paused;
        }
        runtime.overrides = overrides;
        if runtime
            .concurrency
            .is_some_and(|c| c >= effective.concurrency)
        {
            runtime.concurrency = None;
        }
        *destination.config.write().expect("destination config lock") = Arc::new(effective);
        let after = (runtime.disabled, runtime.paused);
        *destination
            .runtime
            .lock()
            .expect("destination runtime lock") = runtime;
        self.save_runtime(&destination).await?;
        if !set.is_empty() || !dropped.is_empty() {
            tracing::info!(
                destination = %destination.id,
                set = ?set,
                dropped = ?dropped,
                "destination {} edited: set [{}], dropped [{}]",
                destination.id,
                set.join(", "),
                dropped.join(", ")
            );
        }
        let health = destination.health(self.inner.clock.now());
        let mut changes = Vec::new();
        match (before.0, after.0) {
            (false, true) => changes.push(DestinationChange::Disabled(DisableCause::Operator)),
            (true, false) => changes.push(DestinationChange::Enabled { health }),
            _ => {}
        }
        match (before.1, after.1) {
            (false, true) => changes.push(DestinationChange::Paused { health }),
            (true, false) => changes.push(DestinationChange::Resumed { health }),
            _ => {}
        }
        for change in changes {
            self.log_destination_change(&destination.id, change);
        }
        Ok(())
    }
}

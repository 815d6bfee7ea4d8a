//! Operational notices: the engine records one for each change an operator
//! should see later (a destination disabled, enabled, recovered, paused,
//! resumed, lowered by 429, in retry too long; a bulk job finished; store
//! writes failing), stores it, and, with `[alerts]`, queues it as an event
//! for the built-in `hookwatch-alerts` destination in the same transaction,
//! so the alert is delivered through the durable queue and retry policy like
//! any webhook and is never lost on restart.
//!
//! Notices are rare, so recording one never adds a commit to a delivery: it
//! goes to an in-memory queue that the keeper task writes (several at once
//! when they come together). While the store refuses writes the queue holds
//! them, with the notice of that failure, until it writes again.

use super::ops_log::{DestinationChange, DisableCause};
use super::{deliver::AttemptOutcome, Change, Engine, EngineError};
use crate::config::{AlertsConfig, ALERTS_DESTINATION};
use crate::model::{
    EventId, NoAnswer, Notice, NoticeCause, NoticeId, NoticeKind, NoticePage, NoticeQuery,
    NoticeSelection, NoticeType, MAX_NOTICE_PAGE,
};
use crate::store::NewEvent;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// How long the keeper waits before writing notices again after the store
/// refused them.
const RETRY_WRITE_EVERY: Duration = Duration::from_secs(1);

/// The engine's notices that are not written yet, and what it knows of the
/// stored ones.
pub(super) struct NoticeBook {
    /// Recorded, not yet stored (oldest first).
    pending: Mutex<Vec<Notice>>,
    /// Wakes the keeper: a notice was recorded, or a destination entered
    /// retry (its "too long" deadline is new).
    due: Notify,
    /// The notice types alerted (with `[alerts] url`); empty without it.
    alerted: BTreeSet<NoticeType>,
    in_retry_after: chrono::Duration,
}

impl NoticeBook {
    pub(super) fn new(alerts: &AlertsConfig) -> NoticeBook {
        NoticeBook {
            pending: Mutex::new(Vec::new()),
            due: Notify::new(),
            alerted: if alerts.destination.is_some() {
                alerts.types.clone()
            } else {
                BTreeSet::new()
            },
            in_retry_after: chrono::Duration::from_std(alerts.in_retry_after)
                .unwrap_or(chrono::Duration::MAX),
        }
    }
}

/// The notice cause of an attempt's outcome.
pub fn cause_of_outcome(outcome: AttemptOutcome) -> NoticeCause {
    let failure = match outcome {
        AttemptOutcome::Response(status) => return NoticeCause::Status { status },
        AttemptOutcome::Timeout => NoAnswer::Timeout,
        AttemptOutcome::Connect => NoAnswer::Connect,
        AttemptOutcome::TooManyRedirects => NoAnswer::TooManyRedirects,
        AttemptOutcome::PrivateAddress => NoAnswer::PrivateAddress,
        AttemptOutcome::Network => NoAnswer::Network,
    };
    NoticeCause::NoAnswer { failure }
}

/// The body of an alert: the Standard Webhooks shape (`type`, `timestamp`,
/// `data`), `data` being the notice as `GET /v1/notices` shows it.
pub fn alert_payload(notice: &Notice) -> serde_json::Value {
    serde_json::json!({
        "type": alert_topic(notice.notice_type()),
        "timestamp": notice.at,
        "data": notice_json(notice),
    })
}

/// The topic of an alert event: `hookwatch.notice.<type>`.
pub fn alert_topic(notice_type: NoticeType) -> String {
    format!("hookwatch.notice.{notice_type}")
}

/// A notice as the API shows it: its fields plus `message`, its words.
pub fn notice_json(notice: &Notice) -> serde_json::Value {
    let mut value = serde_json::to_value(notice).expect("notices serialise");
    value["message"] = serde_json::Value::from(notice.summary());
    value
}

impl Engine {
    /// Records a notice now; the keeper task stores it (and queues its alert).
    pub(crate) fn record_notice(
        &self,
        kind: NoticeKind,
        destination: Option<&str>,
        event: Option<EventId>,
        cause: NoticeCause,
    ) {
        let now = self.inner.clock.now();
        let notice = Notice {
            id: self.new_notice_id(now),
            at: now,
            kind,
            destination: destination.map(str::to_string),
            event,
            cause,
            acked_at: None,
        };
        self.inner
            .notices
            .pending
            .lock()
            .expect("notices lock")
            .push(notice);
        self.inner.notices.due.notify_one();
    }

    fn new_notice_id(&self, now: DateTime<Utc>) -> NoticeId {
        let mut generator = self.inner.ids.lock().expect("id generator lock");
        generator
            .generate_from_datetime(now.into())
            .unwrap_or_else(|_| ulid::Ulid::from_datetime(now.into()))
    }

    /// The notice a destination change makes, if it makes one.
    pub(super) fn notice_destination_change(&self, destination: &str, change: &DestinationChange) {
        let (kind, event, cause) = match change {
            DestinationChange::Disabled(DisableCause::Attempt {
                outcome,
                event,
                attempt,
            }) => (
                NoticeKind::DestinationDisabled {
                    attempt: Some(*attempt),
                },
                Some(*event),
                cause_of_outcome(*outcome),
            ),
            DestinationChange::Disabled(DisableCause::Operator) => (
                NoticeKind::DestinationDisabled { attempt: None },
                None,
                NoticeCause::Operator,
            ),
            DestinationChange::Enabled { .. } => {
                (NoticeKind::DestinationEnabled, None, NoticeCause::Operator)
            }
            DestinationChange::Paused { .. } => {
                (NoticeKind::DestinationPaused, None, NoticeCause::Operator)
            }
            DestinationChange::Resumed { .. } => {
                (NoticeKind::DestinationResumed, None, NoticeCause::Operator)
            }
            DestinationChange::Recovered => (
                NoticeKind::DestinationRecovered,
                None,
                NoticeCause::Delivered,
            ),
            // One notice per episode of 429s: the first step below the
            // configured concurrency. A burst of 429s lowers it step by step
            // (each step is in the log and the gauges); a notice, and an
            // alert, for every step would bury the others.
            DestinationChange::ConcurrencyLowered { from, .. }
                if self
                    .destination(destination)
                    .is_ok_and(|d| *from < d.config().concurrency) =>
            {
                return;
            }
            DestinationChange::ConcurrencyLowered { from, to } => (
                NoticeKind::ConcurrencyLowered {
                    from: *from,
                    to: *to,
                },
                None,
                NoticeCause::Status { status: 429 },
            ),
            DestinationChange::EnteredRetry { .. } => {
                // No notice yet; the keeper now has a deadline to watch.
                self.inner.notices.due.notify_one();
                return;
            }
            DestinationChange::BacklogFlushed { .. }
            | DestinationChange::ConcurrencyRaised { .. } => return,
        };
        self.record_notice(kind, Some(destination), event, cause);
    }

    /// Unacknowledged notices: the length of the store's index of them (no
    /// entry is read), so it always agrees with a listing. A store read: call
    /// it off the async workers.
    pub fn unacked_notices(&self) -> Result<u64, EngineError> {
        Ok(self.inner.store.unacked_notices()?)
    }

    /// One page of notices, newest first (a store read: call it off the
    /// async workers).
    pub fn notices(&self, query: &NoticeQuery) -> Result<NoticePage, EngineError> {
        let query = NoticeQuery {
            limit: query.limit.clamp(1, MAX_NOTICE_PAGE),
            ..*query
        };
        let (notices, next_before, unacked) = self.inner.store.list_notices(&query)?;
        Ok(NoticePage {
            notices,
            next_before,
            unacked,
        })
    }

    /// Acknowledges one notice; `UnknownNotice` when there is none with `id`.
    pub async fn ack_notice(&self, id: NoticeId) -> Result<Notice, EngineError> {
        let now = self.inner.clock.now();
        let notice = self
            .inner
            .store
            .ack_notice(id, now)
            .await?
            .ok_or_else(|| EngineError::UnknownNotice(id.to_string()))?;
        self.publish_unacked().await;
        Ok(notice)
    }

    /// Acknowledges the notices `selection` covers; answers how many were
    /// unacknowledged.
    pub async fn ack_notices(&self, selection: NoticeSelection) -> Result<u64, EngineError> {
        let now = self.inner.clock.now();
        let acked = self.inner.store.ack_notices(selection, now).await?;
        self.publish_unacked().await;
        Ok(acked)
    }

    /// Tells subscribers how many notices are unacknowledged now, after a
    /// notice was stored or acknowledged.
    async fn publish_unacked(&self) {
        match self.read_store(|store| store.unacked_notices()).await {
            Ok(unacked) => self.publish(Change::Notices { unacked }),
            Err(e) => tracing::warn!(error = %e, "cannot count unacknowledged notices"),
        }
    }

    /// Stores the notices recorded so far, each with its alert event when it
    /// is alerted, in one transaction. On failure they stay queued (in order)
    /// for the next try.
    pub(super) async fn write_pending_notices(&self) -> Result<(), EngineError> {
        self.take_store_failures();
        let notices: Vec<Notice> =
            std::mem::take(&mut *self.inner.notices.pending.lock().expect("notices lock"));
        if notices.is_empty() {
            return Ok(());
        }
        let alerts: Vec<NewEvent> = notices
            .iter()
            .filter(|n| self.is_alerted(n))
            .map(|n| self.alert_event(n))
            .collect();
        let written = self
            .inner
            .store
            .insert_notices(notices.clone(), alerts.clone())
            .await;
        if let Err(e) = written {
            let mut pending = self.inner.notices.pending.lock().expect("notices lock");
            let newer = std::mem::replace(&mut *pending, notices);
            pending.extend(newer);
            return Err(e.into());
        }
        for notice in &notices {
            if let NoticeKind::StoreWriteFailed {
                commits, writes, ..
            } = &notice.kind
            {
                tracing::info!(
                    commits,
                    writes,
                    "the store writes again; the notice of its {commits} failed commits is stored"
                );
            }
        }
        self.publish_unacked().await;
        if !alerts.is_empty() {
            if let Ok(destination) = self.destination(ALERTS_DESTINATION) {
                destination.look_again();
            }
            for alert in &alerts {
                self.publish(Change::Event {
                    id: alert.id,
                    destination: alert.destination.clone(),
                    state: crate::model::EventState::Pending,
                });
            }
        }
        Ok(())
    }

    /// Whether `notice` goes out as an alert: its type is chosen, and it is
    /// not about the alerts destination itself (that would feed a loop).
    fn is_alerted(&self, notice: &Notice) -> bool {
        self.inner.notices.alerted.contains(&notice.notice_type())
            && notice.destination.as_deref() != Some(ALERTS_DESTINATION)
    }

    fn alert_event(&self, notice: &Notice) -> NewEvent {
        let payload = serde_json::to_vec(&alert_payload(notice)).expect("alerts serialise");
        NewEvent {
            id: self.new_notice_id(notice.at),
            destination: ALERTS_DESTINATION.to_string(),
            topic: alert_topic(notice.notice_type()),
            content_type: Some("application/json".into()),
            payload: payload.into(),
            // A write retried after a failure that did commit stores no second
            // alert for the same notice.
            idempotency_key: Some(notice.id.to_string()),
            created_at: notice.at,
        }
    }

    /// Turns the store's failed commits into a `store_write_failed` notice,
    /// kept in memory until the store writes again; while one is waiting,
    /// later failures are added to it rather than making more.
    fn take_store_failures(&self) {
        let Some(failures) = self.inner.store.take_write_failures() else {
            return;
        };
        let mut pending = self.inner.notices.pending.lock().expect("notices lock");
        let waiting = pending.iter_mut().find_map(|n| match &mut n.kind {
            NoticeKind::StoreWriteFailed {
                commits, writes, ..
            } => Some((commits, writes)),
            _ => None,
        });
        match waiting {
            Some((commits, writes)) => {
                *commits += failures.commits;
                *writes += failures.writes;
            }
            None => {
                tracing::warn!(
                    error = %failures.error,
                    "store writes are failing; a notice of it is kept in memory until the store writes again"
                );
                drop(pending);
                self.record_notice(
                    NoticeKind::StoreWriteFailed {
                        commits: failures.commits,
                        writes: failures.writes,
                        error: failures.error,
                    },
                    None,
                    None,
                    NoticeCause::Store,
                );
            }
        }
    }

    /// Records `in_retry_too_long` for each destination continuously in
    /// retry for `alerts.in_retry_after` (once per retry episode); answers
    /// when the next such deadline falls.
    async fn check_in_retry(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let after = self.inner.notices.in_retry_after;
        let mut next: Option<DateTime<Utc>> = None;
        for destination in self.destination_handles() {
            let overdue = {
                let mut runtime = destination
                    .runtime
                    .lock()
                    .expect("destination runtime lock");
                if !runtime.in_retry || runtime.in_retry_noticed {
                    continue;
                }
                // A disabled or paused destination is held, not retrying: its
                // episode's clock stops, and starts again from the moment it
                // is enabled or resumed (which records a notice, and so wakes
                // this check).
                if runtime.disabled || runtime.paused {
                    runtime.in_retry_since = None;
                    continue;
                }
                // State saved before the episode's start was kept: it starts now.
                let since = *runtime.in_retry_since.get_or_insert(now);
                let deadline = since.checked_add_signed(after);
                match deadline {
                    Some(deadline) if deadline > now => {
                        next = Some(next.map_or(deadline, |n| n.min(deadline)));
                        None
                    }
                    Some(_) => {
                        runtime.in_retry_noticed = true;
                        Some(since)
                    }
                    None => None,
                }
            };
            if let Some(since) = overdue {
                self.record_notice(
                    NoticeKind::InRetryTooLong { since },
                    Some(&destination.id),
                    None,
                    NoticeCause::Elapsed,
                );
                if let Err(e) = self.save_runtime(&destination).await {
                    tracing::warn!(destination = %destination.id, error = %e, "cannot save destination state");
                }
            }
        }
        next
    }
}

/// The keeper: writes recorded notices, watches for store failures and for
/// destinations in retry too long, until shutdown (which writes what is left,
/// see `Engine::shutdown`).
pub(super) async fn keep(engine: Engine) {
    let mut retry_write_at: Option<DateTime<Utc>> = None;
    loop {
        let now = engine.inner.clock.now();
        let next_deadline = engine.check_in_retry(now).await;
        retry_write_at = match engine.write_pending_notices().await {
            Ok(()) => None,
            Err(e) => {
                if retry_write_at.is_none() {
                    tracing::warn!(error = %e, "cannot store notices; they are kept in memory until the store writes again");
                }
                Some(now + chrono::Duration::from_std(RETRY_WRITE_EVERY).expect("small"))
            }
        };
        let wake_at = match (next_deadline, retry_write_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sleep = async {
            match wake_at {
                Some(at) => engine.inner.clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let store = engine.inner.store.clone();
        // While its own write is refused, the keeper waits for the retry
        // time only: every refused write is a failure the store reports.
        let failed = async {
            if retry_write_at.is_some() {
                std::future::pending::<()>().await
            }
            store.write_failed().await
        };
        tokio::select! {
            _ = engine.inner.notices.due.notified() => {}
            _ = failed => {}
            _ = sleep => {}
            _ = engine.inner.shutdown.cancelled() => return,
        }
    }
}

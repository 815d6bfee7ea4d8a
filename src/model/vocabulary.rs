//! The words shared by the policy, the store, the engine and the front ends:
//! why an attempt was made, why an event stopped, how a destination is doing.
//! Each is an enum inside the program and becomes text only at the edges (JSON,
//! the TUI, the store's codes).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Why an attempt is being made; it decides whether the attempt counts as part
/// of the automatic retry cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The first attempt of a cycle (new event, or requeued).
    Initial,
    /// A scheduled retry.
    Automatic,
    /// An operator's one-off retry; never counted toward `max_retries`.
    Manual,
    /// Part of a bulk-retry job; counted like `Manual`.
    Bulk,
    /// A scheduled retry made early because the destination recovered; counted
    /// like `Automatic`.
    Flush,
    /// The first attempt of a cycle an operator restarted on a delivered event
    /// (`requeue?resend=true`): like `Initial`, but the history says the
    /// receiver was sent it again on purpose.
    Resend,
    /// The first attempt of a cycle an operator restarted (`requeue`) on an
    /// event that was not delivered: like `Initial`, but the history says who
    /// started it again.
    Requeue,
}

impl Trigger {
    pub const ALL: [Trigger; 7] = [
        Trigger::Initial,
        Trigger::Automatic,
        Trigger::Manual,
        Trigger::Bulk,
        Trigger::Flush,
        Trigger::Resend,
        Trigger::Requeue,
    ];

    /// The name used in the API and the attempt history.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Initial => "initial",
            Trigger::Automatic => "automatic",
            Trigger::Manual => "manual",
            Trigger::Bulk => "bulk",
            Trigger::Flush => "flush",
            Trigger::Resend => "resend",
            Trigger::Requeue => "requeue",
        }
    }

    /// What made the attempt, in words for people (the TUI's attempt detail).
    pub fn words(self) -> &'static str {
        match self {
            Trigger::Initial => "first attempt",
            Trigger::Automatic => "scheduled retry",
            Trigger::Manual => "retried by operator",
            Trigger::Bulk => "bulk retry by operator",
            Trigger::Flush => "flushed after recovery",
            Trigger::Resend => "resent by operator",
            Trigger::Requeue => "requeued by operator",
        }
    }

    /// Whether an operator asked for this attempt (it is outside the automatic
    /// cycle and may act on an event the cycle is done with).
    pub fn is_operator(self) -> bool {
        matches!(self, Trigger::Manual | Trigger::Bulk)
    }

    /// Whether the attempt counts as an automatic retry of the cycle. A flush
    /// attempt does not (like manual and bulk ones): a destination that flaps
    /// must not use up its events' retries faster than their schedule.
    pub fn counts_as_retry(self) -> bool {
        matches!(self, Trigger::Automatic)
    }
}

impl FromStr for Trigger {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Trigger::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown value \"{text}\" (expected initial, automatic, manual, bulk, flush or resend)"
                )
            })
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the retry policy gave up on an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    NotRetriable,
    TooManyRedirects,
    RetriesExhausted,
    Expired,
}

impl FailReason {
    pub const ALL: [FailReason; 4] = [
        FailReason::NotRetriable,
        FailReason::TooManyRedirects,
        FailReason::RetriesExhausted,
        FailReason::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::NotRetriable => "not_retriable",
            FailReason::TooManyRedirects => "too_many_redirects",
            FailReason::RetriesExhausted => "retries_exhausted",
            FailReason::Expired => "expired",
        }
    }
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the retry policy decided an attempt means for its event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Schedule the next automatic retry at `at` (state `retrying`).
    /// `pinned`: that time is not to be moved by a recovery flush (it was set
    /// by `Retry-After`, or by the event's own schedule after a flush attempt
    /// failed, so that flapping cannot burn the schedule).
    Retry {
        at: chrono::DateTime<chrono::Utc>,
        pinned: bool,
    },
    /// Give up for good.
    Failed {
        reason: FailReason,
    },
    /// The receiver sent `Retry-After: -1`.
    Cancelled,
    /// A failed manual or bulk attempt: state and schedule stay as they were,
    /// because an operator's extra try must not cost the event its retries.
    Unchanged,
}

/// Why an event is failed, cancelled or skipped. Serialised as the text the API
/// has always shown (`"muted"`, `"retries_exhausted"`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A repeat `Idempotency-Key` (state `skipped`).
    Duplicate,
    /// An operator muted it (state `cancelled`).
    Muted,
    /// The receiver answered `Retry-After: -1` (state `cancelled`).
    CancelledByRetryAfter,
    /// Its destination was deleted while the event was still owed (state
    /// `cancelled`); it stays readable, with its history, until retention.
    DestinationDeleted,
    /// The retry policy gave up (state `failed`).
    Failed(FailReason),
    /// A text this build does not know, read from an older store; kept verbatim
    /// so nothing an operator saw is lost.
    Unrecognised(String),
}

impl Reason {
    /// Every reason this build writes, for tests and codes.
    pub fn known() -> Vec<Reason> {
        let mut all = vec![
            Reason::Duplicate,
            Reason::Muted,
            Reason::CancelledByRetryAfter,
            Reason::DestinationDeleted,
        ];
        all.extend(FailReason::ALL.into_iter().map(Reason::Failed));
        all
    }

    pub fn as_str(&self) -> &str {
        match self {
            Reason::Duplicate => "duplicate",
            Reason::Muted => "muted",
            Reason::CancelledByRetryAfter => "cancelled by Retry-After: -1",
            Reason::DestinationDeleted => "destination_deleted",
            Reason::Failed(reason) => reason.as_str(),
            Reason::Unrecognised(text) => text,
        }
    }

    /// The reason a text names; texts of no known reason are kept as
    /// [`Reason::Unrecognised`].
    pub fn from_text(text: &str) -> Reason {
        Reason::known()
            .into_iter()
            .find(|reason| reason.as_str() == text)
            .unwrap_or_else(|| Reason::Unrecognised(text.to_string()))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Reason::from_text(&text))
    }
}

/// How a destination is doing, as the API reports it and the TUI colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Health {
    #[serde(rename = "healthy")]
    Healthy,
    /// The last attempt failed; events are being retried.
    #[serde(rename = "in retry")]
    InRetry,
    /// Delivering, but under 90 % of the last 15 minutes' attempts (at least
    /// 10) got a 2xx.
    #[serde(rename = "degraded")]
    Degraded,
    #[serde(rename = "disabled")]
    Disabled,
    #[serde(rename = "paused")]
    Paused,
}

impl Health {
    pub const ALL: [Health; 5] = [
        Health::Healthy,
        Health::Degraded,
        Health::InRetry,
        Health::Disabled,
        Health::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::InRetry => "in retry",
            Health::Degraded => "degraded",
            Health::Disabled => "disabled",
            Health::Paused => "paused",
        }
    }

    /// The `state` label of `hookwatch_destination_health`.
    pub fn metric_label(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::InRetry => "in_retry",
            Health::Degraded => "degraded",
            Health::Disabled => "disabled",
            Health::Paused => "paused",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API has always shown these exact strings; clients match on them.
    #[test]
    fn reasons_keep_their_api_strings() {
        let expected = [
            (Reason::Duplicate, "duplicate"),
            (Reason::Muted, "muted"),
            (
                Reason::CancelledByRetryAfter,
                "cancelled by Retry-After: -1",
            ),
            (Reason::Failed(FailReason::NotRetriable), "not_retriable"),
            (
                Reason::Failed(FailReason::TooManyRedirects),
                "too_many_redirects",
            ),
            (
                Reason::Failed(FailReason::RetriesExhausted),
                "retries_exhausted",
            ),
            (Reason::Failed(FailReason::Expired), "expired"),
            (Reason::DestinationDeleted, "destination_deleted"),
        ];
        assert_eq!(expected.len(), Reason::known().len());
        for (reason, text) in expected {
            let json = serde_json::to_value(&reason).unwrap();
            assert_eq!(json, serde_json::Value::String(text.into()));
            assert_eq!(serde_json::from_value::<Reason>(json).unwrap(), reason);
        }
        assert_eq!(
            Reason::from_text("gone fishing"),
            Reason::Unrecognised("gone fishing".into())
        );
    }

    #[test]
    fn health_keeps_its_api_strings() {
        for (health, text) in [
            (Health::Healthy, "healthy"),
            (Health::InRetry, "in retry"),
            (Health::Disabled, "disabled"),
            (Health::Paused, "paused"),
        ] {
            assert_eq!(serde_json::to_value(health).unwrap(), text);
            assert_eq!(health.as_str(), text);
        }
    }

    #[test]
    fn trigger_names_round_trip() {
        for trigger in Trigger::ALL {
            assert_eq!(trigger.as_str().parse::<Trigger>().unwrap(), trigger);
            assert_eq!(serde_json::to_value(trigger).unwrap(), trigger.as_str());
        }
        assert!("later".parse::<Trigger>().is_err());
    }
}

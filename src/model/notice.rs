//! Operational notices: what happened to a destination (or to hookwatch
//! itself) that an operator should see the next time they look, kept durably
//! until retention drops them and acknowledged one by one or all at once.
//!
//! A notice is typed through and through ([`NoticeKind`], [`NoticeCause`]);
//! its words ([`Notice::summary`], [`NoticeCause`]'s `Display`) are made only
//! where it is shown: the API's `message`, the CLI's table, the TUI's list.

use super::EventId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A ULID from the engine's clock: sortable by creation time, so the newest
/// notices are a reverse key range of the store's table.
pub type NoticeId = ulid::Ulid;

/// One operational notice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub id: NoticeId,
    pub at: DateTime<Utc>,
    /// What happened: `type` and the fields of that type.
    #[serde(flatten)]
    pub kind: NoticeKind,
    /// The destination it concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The event whose attempt caused it, if any (a disabling 4xx, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<EventId>,
    /// Who or what did it.
    pub cause: NoticeCause,
    /// When an operator acknowledged it; `None` while unacknowledged.
    #[serde(default)]
    pub acked_at: Option<DateTime<Utc>>,
}

/// What a notice reports, tagged by `type` (see [`NoticeType`] for the bare
/// names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NoticeKind {
    /// The destination was disabled: by an attempt's answer (the notice's
    /// `event`, `attempt` and `cause`) or by an operator.
    DestinationDisabled {
        /// The number of the attempt that disabled it, when one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
    },
    DestinationEnabled,
    /// The destination has been in retry continuously since `since`, longer
    /// than `alerts.in_retry_after`: one notice per retry episode.
    InRetryTooLong {
        since: DateTime<Utc>,
    },
    /// An attempt succeeded while the destination was in retry.
    DestinationRecovered,
    DestinationPaused,
    DestinationResumed,
    /// A 429 took one concurrent attempt away.
    ConcurrencyLowered {
        from: u32,
        to: u32,
    },
    /// A bulk retry ended (ran through, or was cancelled).
    BulkJobFinished {
        job: String,
        total: u64,
        succeeded: u64,
        failed: u64,
        /// Not attempted: nothing was owed any more.
        #[serde(default)]
        skipped: u64,
        cancelled: bool,
    },
    /// Store commits failed (a full disk, say): `commits` carrying `writes`
    /// requests, the first with `error`. Written once the store writes again.
    StoreWriteFailed {
        commits: u64,
        writes: u64,
        error: String,
    },
    /// The store reached its budget (`store.max_size`) with only events
    /// still owed in it: new events are refused until deliveries free room.
    StoreFull {
        used_bytes: u64,
        /// The largest the file may grow to within the budget.
        ceiling_bytes: u64,
        budget_bytes: u64,
    },
}

/// The bare type of a notice: its `type` in the API, the `types` of
/// `[alerts]`, the last part of an alert's topic (`hookwatch.notice.<type>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeType {
    DestinationDisabled,
    DestinationEnabled,
    InRetryTooLong,
    DestinationRecovered,
    DestinationPaused,
    DestinationResumed,
    ConcurrencyLowered,
    BulkJobFinished,
    StoreWriteFailed,
    StoreFull,
}

impl NoticeType {
    pub const ALL: [NoticeType; 10] = [
        NoticeType::DestinationDisabled,
        NoticeType::DestinationEnabled,
        NoticeType::InRetryTooLong,
        NoticeType::DestinationRecovered,
        NoticeType::DestinationPaused,
        NoticeType::DestinationResumed,
        NoticeType::ConcurrencyLowered,
        NoticeType::BulkJobFinished,
        NoticeType::StoreWriteFailed,
        NoticeType::StoreFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeType::DestinationDisabled => "destination_disabled",
            NoticeType::DestinationEnabled => "destination_enabled",
            NoticeType::InRetryTooLong => "in_retry_too_long",
            NoticeType::DestinationRecovered => "destination_recovered",
            NoticeType::DestinationPaused => "destination_paused",
            NoticeType::DestinationResumed => "destination_resumed",
            NoticeType::ConcurrencyLowered => "concurrency_lowered",
            NoticeType::BulkJobFinished => "bulk_job_finished",
            NoticeType::StoreWriteFailed => "store_write_failed",
            NoticeType::StoreFull => "store_full",
        }
    }
}

impl fmt::Display for NoticeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NoticeType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        NoticeType::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = NoticeType::ALL.iter().map(|t| t.as_str()).collect();
                format!(
                    "unknown notice type \"{text}\" (known: {})",
                    known.join(", ")
                )
            })
    }
}

impl NoticeKind {
    pub fn notice_type(&self) -> NoticeType {
        match self {
            NoticeKind::DestinationDisabled { .. } => NoticeType::DestinationDisabled,
            NoticeKind::DestinationEnabled => NoticeType::DestinationEnabled,
            NoticeKind::InRetryTooLong { .. } => NoticeType::InRetryTooLong,
            NoticeKind::DestinationRecovered => NoticeType::DestinationRecovered,
            NoticeKind::DestinationPaused => NoticeType::DestinationPaused,
            NoticeKind::DestinationResumed => NoticeType::DestinationResumed,
            NoticeKind::ConcurrencyLowered { .. } => NoticeType::ConcurrencyLowered,
            NoticeKind::BulkJobFinished { .. } => NoticeType::BulkJobFinished,
            NoticeKind::StoreWriteFailed { .. } => NoticeType::StoreWriteFailed,
            NoticeKind::StoreFull { .. } => NoticeType::StoreFull,
        }
    }
}

/// Who or what caused a notice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum NoticeCause {
    /// An operator (API, TUI or CLI).
    Operator,
    /// An attempt's answer with this status (a disabling 404, a 429, the 2xx
    /// of a recovery).
    Status { status: u16 },
    /// An attempt that got no answer.
    NoAnswer { failure: NoAnswer },
    /// An attempt was delivered (what ends a retry episode).
    Delivered,
    /// Time: the destination stayed in retry past `alerts.in_retry_after`.
    Elapsed,
    /// The store refused writes.
    Store,
}

/// Why an attempt got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoAnswer {
    Timeout,
    Connect,
    TooManyRedirects,
    PrivateAddress,
    Network,
}

impl fmt::Display for NoticeCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoticeCause::Operator => f.write_str("operator"),
            NoticeCause::Status { status: 429 } => f.write_str("429 Too Many Requests"),
            NoticeCause::Status { status } => write!(f, "answered {status}"),
            NoticeCause::NoAnswer { failure } => f.write_str(match failure {
                NoAnswer::Timeout => "timed out",
                NoAnswer::Connect => "could not connect",
                NoAnswer::TooManyRedirects => "too many redirects",
                NoAnswer::PrivateAddress => "private address refused",
                NoAnswer::Network => "network error",
            }),
            NoticeCause::Delivered => f.write_str("an attempt was delivered"),
            NoticeCause::Elapsed => f.write_str("time in retry"),
            NoticeCause::Store => f.write_str("store"),
        }
    }
}

impl Notice {
    pub fn notice_type(&self) -> NoticeType {
        self.kind.notice_type()
    }

    pub fn is_acked(&self) -> bool {
        self.acked_at.is_some()
    }

    /// One line saying what happened, for people.
    pub fn summary(&self) -> String {
        let dest = self.destination.as_deref().unwrap_or("?");
        match &self.kind {
            NoticeKind::DestinationDisabled { .. } => match (&self.cause, self.event) {
                (NoticeCause::Operator, _) => {
                    format!("destination {dest} disabled by an operator")
                }
                (cause, Some(event)) => {
                    format!("destination {dest} disabled: event {event} {cause}")
                }
                (cause, None) => format!("destination {dest} disabled ({cause})"),
            },
            NoticeKind::DestinationEnabled => format!("destination {dest} enabled"),
            NoticeKind::InRetryTooLong { since } => format!(
                "destination {dest} in retry since {}",
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            NoticeKind::DestinationRecovered => format!("destination {dest} recovered"),
            NoticeKind::DestinationPaused => format!("destination {dest} paused"),
            NoticeKind::DestinationResumed => format!("destination {dest} resumed"),
            NoticeKind::ConcurrencyLowered { from, to } => {
                format!("destination {dest}: concurrency lowered from {from} to {to}")
            }
            NoticeKind::BulkJobFinished {
                job,
                total,
                succeeded,
                failed,
                skipped,
                cancelled,
            } => {
                let skipped = if *skipped > 0 {
                    format!(", {skipped} skipped (nothing owed any more)")
                } else {
                    String::new()
                };
                format!(
                    "bulk job {job} {}: {succeeded} delivered, {failed} failed{skipped} of {total}",
                    if *cancelled { "cancelled" } else { "finished" }
                )
            }
            NoticeKind::StoreWriteFailed {
                commits,
                writes,
                error,
            } => format!("{commits} store commits ({writes} writes) failed: {error}"),
            NoticeKind::StoreFull {
                used_bytes,
                ceiling_bytes,
                budget_bytes,
            } => format!(
                "store full: {} used of the {} the file may grow to within store.max_size = {}, by events still owed; new events are refused (507) until deliveries free room (bring the destinations back, or raise store.max_size)",
                crate::store::format_bytes(*used_bytes),
                crate::store::format_bytes(*ceiling_bytes),
                crate::store::format_bytes(*budget_bytes)
            ),
        }
    }
}

/// Which notices an acknowledgement covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeSelection {
    /// These notices (unknown ids are passed over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<NoticeId>>,
    /// Every notice older than this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<NoticeId>,
}

impl NoticeSelection {
    /// Every notice.
    pub fn all() -> NoticeSelection {
        NoticeSelection::default()
    }
}

/// One page of notices, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoticePage {
    pub notices: Vec<Notice>,
    /// The cursor of the next (older) page: pass it as `before`.
    pub next_before: Option<NoticeId>,
    /// Unacknowledged notices in all (not only on this page).
    pub unacked: u64,
}

/// What a listing of notices asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoticeQuery {
    pub before: Option<NoticeId>,
    pub limit: usize,
    pub unacked_only: bool,
}

/// The longest page of notices.
pub const MAX_NOTICE_PAGE: usize = 1000;
/// A page of notices unless asked otherwise.
pub const DEFAULT_NOTICE_PAGE: usize = 50;

impl Default for NoticeQuery {
    fn default() -> Self {
        NoticeQuery {
            before: None,
            limit: DEFAULT_NOTICE_PAGE,
            unacked_only: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(kind: NoticeKind, cause: NoticeCause) -> Notice {
        Notice {
            id: ulid::Ulid::nil(),
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            kind,
            destination: Some("orders".into()),
            event: None,
            cause,
            acked_at: None,
        }
    }

    #[test]
    fn serialises_flat_with_its_type_and_reads_back() {
        let n = notice(
            NoticeKind::ConcurrencyLowered { from: 4, to: 3 },
            NoticeCause::Status { status: 429 },
        );
        let value = serde_json::to_value(&n).unwrap();
        assert_eq!(value["type"], "concurrency_lowered");
        assert_eq!(value["from"], 4);
        assert_eq!(value["cause"]["by"], "status");
        assert_eq!(value["cause"]["status"], 429);
        let back: Notice = serde_json::from_value(value).unwrap();
        assert_eq!(back, n);
    }

    #[test]
    fn every_type_name_parses_back_and_unknown_ones_are_named() {
        for t in NoticeType::ALL {
            assert_eq!(t.as_str().parse::<NoticeType>(), Ok(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        let error = "destination_exploded".parse::<NoticeType>().unwrap_err();
        assert!(error.contains("destination_exploded"), "{error}");
    }

    #[test]
    fn the_summary_names_the_event_and_status_of_a_disabling_attempt() {
        let mut n = notice(
            NoticeKind::DestinationDisabled { attempt: Some(1) },
            NoticeCause::Status { status: 404 },
        );
        n.event = Some(ulid::Ulid::nil());
        assert_eq!(
            n.summary(),
            format!(
                "destination orders disabled: event {} answered 404",
                ulid::Ulid::nil()
            )
        );
    }
}

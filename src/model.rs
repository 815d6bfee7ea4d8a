//! The records hookwatch keeps and the words it uses for them.
//!
//! These are shared by the store (which persists them), the engine (which changes
//! them) and the front ends (which show them), so they live apart from all three.

mod lifecycle;
mod notice;
mod overrides;
mod vocabulary;

pub use lifecycle::{Applied, EventTransition, TransitionError, TransitionKind};
pub use notice::{
    NoAnswer, Notice, NoticeCause, NoticeId, NoticeKind, NoticePage, NoticeQuery, NoticeSelection,
    NoticeType, DEFAULT_NOTICE_PAGE, MAX_NOTICE_PAGE,
};
pub use overrides::{field_edit, DestinationOverrides, FieldEdit, OverridesEdit, RetrySpec};
pub use vocabulary::{FailReason, Health, Reason, Trigger, Verdict};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub type EventId = ulid::Ulid;

/// A set of event ids hashed with foldhash instead of SipHash: the dispatcher
/// rebuilds its in-flight set on every look at the due index, and the ids are
/// the engine's own, so SipHash's resistance to crafted keys buys nothing here.
pub type EventIdSet = std::collections::HashSet<EventId, foldhash::fast::RandomState>;

/// Where an event is in its life. The README maps these to the names users know
/// from other delivery services (Unsent, Sent, Failed, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum EventState {
    /// Not attempted yet, or held (destination disabled or paused).
    Pending,
    /// Failed at least once; the next attempt is scheduled.
    Retrying,
    Delivered,
    /// Gave up (not retriable, retries exhausted, expired).
    Failed,
    /// Muted by an operator or by `Retry-After: -1`.
    Cancelled,
    /// A duplicate by `Idempotency-Key`; never delivered.
    Skipped,
}

impl EventState {
    pub const ALL: [EventState; 6] = [
        EventState::Pending,
        EventState::Retrying,
        EventState::Delivered,
        EventState::Failed,
        EventState::Cancelled,
        EventState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "pending",
            EventState::Retrying => "retrying",
            EventState::Delivered => "delivered",
            EventState::Failed => "failed",
            EventState::Cancelled => "cancelled",
            EventState::Skipped => "skipped",
        }
    }

    /// A stable small number for index keys; never reorder.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// States in which the dispatcher still owes the event an automatic attempt.
    pub fn awaits_delivery(self) -> bool {
        matches!(self, EventState::Pending | EventState::Retrying)
    }
}

impl fmt::Display for EventState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown state \"{s}\" (expected pending, retrying, delivered, failed, cancelled or skipped)"
                )
            })
    }
}

/// One event as stored, without its payload (kept apart so that state changes do
/// not rewrite the body).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EventRecord {
    pub id: EventId,
    pub destination: String,
    pub topic: String,
    pub content_type: Option<String>,
    pub created_at: DateTime<Utc>,
    pub state: EventState,
    /// All attempts ever made, of any trigger.
    pub attempt_count: u32,
    /// Automatic retries made in the current cycle (reset by requeue).
    pub automatic_retries: u32,
    /// Creation, or the last requeue: `max_age` counts from here.
    pub cycle_started_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// What the next scheduled attempt will be recorded as; `None` once the
    /// event is finished (delivered, failed, cancelled, skipped): nothing is
    /// scheduled.
    pub next_trigger: Option<Trigger>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// Why the event is failed, cancelled or skipped.
    pub reason: Option<Reason>,
    pub duplicate_of: Option<EventId>,
    pub idempotency_key: Option<String>,
    pub payload_bytes: u64,
    /// The scheduled retry's time is pinned: a recovery flush does not move
    /// it (set by `Retry-After`, or after a failed flush attempt).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub schedule_pinned: bool,
}

/// One delivery attempt as recorded in the history.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AttemptRecord {
    pub n: u32,
    pub at: DateTime<Utc>,
    pub trigger: Trigger,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub response_excerpt: String,
    /// The policy's decision in words: "retry in 8m", "gave up: 404 not retriable".
    pub decision: String,
}

/// Counts of a destination's events by state, kept transactionally by the store.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StateCounts {
    pub pending: u64,
    pub retrying: u64,
    pub delivered: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub skipped: u64,
}

impl StateCounts {
    pub fn get(&self, state: EventState) -> u64 {
        match state {
            EventState::Pending => self.pending,
            EventState::Retrying => self.retrying,
            EventState::Delivered => self.delivered,
            EventState::Failed => self.failed,
            EventState::Cancelled => self.cancelled,
            EventState::Skipped => self.skipped,
        }
    }

    pub fn slot(&mut self, state: EventState) -> &mut u64 {
        match state {
            EventState::Pending => &mut self.pending,
            EventState::Retrying => &mut self.retrying,
            EventState::Delivered => &mut self.delivered,
            EventState::Failed => &mut self.failed,
            EventState::Cancelled => &mut self.cancelled,
            EventState::Skipped => &mut self.skipped,
        }
    }

    /// Events in any state.
    pub fn total(&self) -> u64 {
        EventState::ALL
            .into_iter()
            .map(|state| self.get(state))
            .sum()
    }

    /// Events still owed an attempt (pending or retrying).
    pub fn owed(&self) -> u64 {
        self.pending + self.retrying
    }

    pub fn add(&mut self, other: &StateCounts) {
        for state in EventState::ALL {
            *self.slot(state) += other.get(state);
        }
    }
}

/// What the engine keeps about a destination across restarts, beside its config.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct DestinationRuntime {
    pub disabled: bool,
    pub paused: bool,
    pub in_retry: bool,
    /// When the current retry episode began (the failure that put the
    /// destination in retry); `None` while it is not in retry, or for state
    /// saved before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_retry_since: Option<DateTime<Utc>>,
    /// Whether this retry episode already has its "in retry too long" notice:
    /// one per episode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_retry_noticed: bool,
    /// Current concurrency, lowered by 429s; `None` means the configured maximum.
    pub concurrency: Option<u32>,
    /// Live edits made through the API or TUI, applied over the config file.
    #[serde(default)]
    pub overrides: DestinationOverrides,
}

/// Which events a listing wants.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub destination: Option<String>,
    pub state: Option<EventState>,
    /// A glob over the topic (`order.*`).
    pub topic: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Only events of destinations with these labels. The engine resolves it
    /// to a set of destinations (the store knows no labels).
    pub label: Option<LabelSelector>,
}

/// Destinations whose labels include every `key=value` pair: written
/// `tenant:acme` in the API and CLI, `tenant=acme` in the TUI filter, several
/// joined by commas (`tenant:acme,tier:gold`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub pairs: Vec<(String, String)>,
}

impl LabelSelector {
    /// Parses `key:value` or `key=value` pairs, comma-separated.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut pairs = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let (key, value) = part.split_once([':', '=']).ok_or_else(|| {
                format!("\"{part}\" is not a label like tenant=acme (or tenant:acme)")
            })?;
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() || value.is_empty() {
                return Err(format!(
                    "\"{part}\" is not a label like tenant=acme (or tenant:acme)"
                ));
            }
            pairs.push((key.to_string(), value.to_string()));
        }
        Ok(LabelSelector { pairs })
    }

    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.pairs
            .iter()
            .all(|(key, value)| labels.get(key).is_some_and(|v| v == value))
    }
}

impl fmt::Display for LabelSelector {
    /// The API's form, `tenant:acme,tier:gold`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.pairs.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        f.write_str(&parts.join(","))
    }
}

impl Serialize for LabelSelector {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LabelSelector {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        LabelSelector::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A destination's topic pattern, compiled once when the config is loaded: `*`
/// matches any run of characters (dots and slashes included), `?` one
/// character, and everything else only itself.
///
/// A compiled glob is a regex of about 10 KB; a platform with 10,000
/// destinations subscribing to a handful of distinct patterns shares one
/// compiled matcher per distinct pattern instead of holding 10,000 of them.
#[derive(Clone, Debug)]
pub struct TopicPattern {
    text: String,
    matcher: std::sync::Arc<globset::GlobMatcher>,
}

/// Compiled matchers by pattern text, while any destination uses them.
static COMPILED_PATTERNS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, std::sync::Weak<globset::GlobMatcher>>>,
> = std::sync::LazyLock::new(Default::default);

impl TopicPattern {
    pub fn new(pattern: &str) -> Result<TopicPattern, globset::Error> {
        let mut compiled = COMPILED_PATTERNS.lock().expect("pattern cache lock");
        if let Some(matcher) = compiled.get(pattern).and_then(std::sync::Weak::upgrade) {
            return Ok(TopicPattern {
                text: pattern.to_string(),
                matcher,
            });
        }
        let matcher = std::sync::Arc::new(TopicPattern::compile(pattern)?);
        // Forget the patterns no destination uses any more before growing.
        if compiled.len() >= 1024 && compiled.len().is_power_of_two() {
            compiled.retain(|_, matcher| matcher.strong_count() > 0);
        }
        compiled.insert(pattern.to_string(), std::sync::Arc::downgrade(&matcher));
        Ok(TopicPattern {
            text: pattern.to_string(),
            matcher,
        })
    }

    fn compile(pattern: &str) -> Result<globset::GlobMatcher, globset::Error> {
        // Only `*` and `?` are special to users; every other punctuation mark
        // (globset's `[...]`, `{a,b}`, `\`) is backslash-escaped so it matches
        // literally, and runs of `*` collapse to one because `**` means something
        // else to globset.
        let mut glob = String::with_capacity(pattern.len() * 2);
        for c in pattern.chars() {
            match c {
                '*' if glob.ends_with('*') => {}
                '*' | '?' => glob.push(c),
                c if c.is_alphanumeric() => glob.push(c),
                c => {
                    glob.push('\\');
                    glob.push(c);
                }
            }
        }
        Ok(globset::GlobBuilder::new(&glob)
            .literal_separator(false)
            .backslash_escape(true)
            .empty_alternates(false)
            .build()?
            .compile_matcher())
    }

    pub fn matches(&self, topic: &str) -> bool {
        self.matcher.is_match(topic)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for TopicPattern {
    fn eq(&self, other: &TopicPattern) -> bool {
        self.text == other.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_match_like_users_write_them() {
        let cases = [
            ("order.*", "order.created", true),
            ("order.*", "order.", true),
            ("order.*", "orders.created", false),
            ("*", "anything", true),
            ("*.created", "user.created", true),
            ("user.?d", "user.id", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("a/*", "a/b/c", true),
            ("order.**", "order.x.y", true),
            ("?", "/", true),
            ("[ab]", "a", false),
            ("[ab]", "[ab]", true),
            ("{x,y}", "{x,y}", true),
            ("{x,y}", "x", false),
            ("back\\slash", "back\\slash", true),
        ];
        for (pattern, text, expected) in cases {
            let compiled = TopicPattern::new(pattern).unwrap();
            assert_eq!(compiled.matches(text), expected, "{pattern} vs {text}");
        }
    }

    #[test]
    fn state_names_round_trip() {
        for state in EventState::ALL {
            assert_eq!(state.as_str().parse::<EventState>().unwrap(), state);
        }
        assert!("sent".parse::<EventState>().unwrap_err().contains("sent"));
    }
}

//! Retry policies: how a destination's `[destinations.retry]` table is read, and
//! the pure judgement of every delivery attempt ([`decide`]).
//!
//! Nothing here does I/O or reads a clock: the engine passes `now` in, so every
//! decision can be replayed and tested exactly.

mod decision;
pub mod retry_after;
pub mod rule;
pub mod units;

pub use decision::{decide, will_retry_after, Decision, History, Outcome};
// The vocabulary lives in `model`; re-exported so callers of the policy need
// not know where.
pub use crate::model::{FailReason, RetrySpec, Trigger, Verdict};
pub use retry_after::{parse_retry_after, RetryAfter};
pub use rule::{RuleError, StatusRule};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// How many automatic retries an event gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// Exactly one retry: for receivers where a second failure means a real outage.
    None,
    /// Up to `max_retries`.
    Bounded,
    /// No count limit; `max_age` alone ends the cycle.
    Always,
}

/// How long the n-th retry waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Fixed,
    Exponential,
    /// n^4 seconds: gentle at first, days apart later, as the large webhook
    /// services do it.
    Power,
}

/// What a 4xx (other than 429) does besides failing the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnClientError {
    Fail,
    /// Also disable the destination: a 404/410 usually means the endpoint is gone
    /// and every further event would fail the same way.
    Disable,
}

macro_rules! names {
    ($ty:ty { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The name used in config files, the API and the store.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(<$ty>::$variant => $name),+
                }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($name => Ok(<$ty>::$variant),)+
                    _ => Err(format!(
                        "unknown value \"{text}\" (expected {})",
                        names!(@list $($name),+)
                    )),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
    (@list $first:literal, $second:literal) => { concat!($first, " or ", $second) };
    (@list $first:literal, $second:literal, $third:literal) => {
        concat!($first, ", ", $second, " or ", $third)
    };
}

names!(PolicyKind { None => "none", Bounded => "bounded", Always => "always" });
names!(Schedule { Fixed => "fixed", Exponential => "exponential", Power => "power" });
names!(OnClientError { Fail => "fail", Disable => "disable" });

/// A validated retry policy, ready for [`decide`].
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    pub policy: PolicyKind,
    pub schedule: Schedule,
    /// Base wait of the fixed and exponential schedules.
    pub delay: Duration,
    /// Count limit of the `bounded` policy.
    pub max_retries: u32,
    /// Lower clamp of the power schedule.
    pub min_delay: Duration,
    /// Upper clamp of the exponential and power schedules.
    pub max_delay: Duration,
    /// Nothing is retried later than this after the cycle started.
    pub max_age: Duration,
    pub retry_on: StatusRule,
    /// Whether a `Retry-After` header may override the schedule.
    pub retry_after: bool,
    pub on_client_error: OnClientError,
    /// On the first 2xx after failures, make every waiting event due now.
    pub flush_on_recovery: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetrySpec::default()
            .resolve()
            .expect("the default retry spec resolves")
    }
}

/// A key of the retry table that does not validate; `key` lets callers prefix
/// the path they know (`destinations[a].retry.max_retries`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct PolicyError {
    pub key: &'static str,
    pub message: String,
}

impl PolicyError {
    fn new(key: &'static str, message: impl Into<String>) -> Self {
        PolicyError {
            key,
            message: message.into(),
        }
    }
}

pub const MAX_RETRIES_LIMIT: u32 = 50;

const DEFAULT_DELAY: &str = "30s";
const DEFAULT_MAX_RETRIES: i64 = 5;
const DEFAULT_POWER_MAX_RETRIES: i64 = 25;
const DEFAULT_MIN_DELAY: &str = "60s";
const DEFAULT_MAX_DELAY: &str = "4d";
const DEFAULT_MAX_AGE: &str = "3d";
const DEFAULT_POWER_MAX_AGE: &str = "30d";
const DEFAULT_RETRY_ON: &str = "429, >=500";

impl RetrySpec {
    /// Fills in defaults and validates.
    ///
    /// With the power schedule, 25 retries over up to 30 days are the defaults,
    /// because its delays grow to days and the general defaults (5 retries, 3
    /// days) would cut it off after a few minutes of retrying.
    pub fn resolve(&self) -> Result<RetryPolicy, PolicyError> {
        let policy: PolicyKind =
            named_value("policy", self.policy.as_deref().unwrap_or("bounded"))?;
        let schedule: Schedule = named_value(
            "schedule",
            self.schedule.as_deref().unwrap_or("exponential"),
        )?;
        let power = schedule == Schedule::Power;
        let delay = positive_duration("delay", self.delay.as_deref(), DEFAULT_DELAY)?;
        let max_retries = self.max_retries.unwrap_or(if power {
            DEFAULT_POWER_MAX_RETRIES
        } else {
            DEFAULT_MAX_RETRIES
        });
        if !(1..=i64::from(MAX_RETRIES_LIMIT)).contains(&max_retries) {
            return Err(PolicyError::new(
                "max_retries",
                format!("must be between 1 and {MAX_RETRIES_LIMIT}, got {max_retries}"),
            ));
        }
        let min_delay =
            positive_duration("min_delay", self.min_delay.as_deref(), DEFAULT_MIN_DELAY)?;
        let max_delay =
            positive_duration("max_delay", self.max_delay.as_deref(), DEFAULT_MAX_DELAY)?;
        let default_max_age = if power {
            DEFAULT_POWER_MAX_AGE
        } else {
            DEFAULT_MAX_AGE
        };
        let max_age = positive_duration("max_age", self.max_age.as_deref(), default_max_age)?;
        let retry_on = StatusRule::parse(self.retry_on.as_deref().unwrap_or(DEFAULT_RETRY_ON))
            .map_err(|e| PolicyError::new("retry_on", e.to_string()))?;
        let on_client_error: OnClientError = named_value(
            "on_client_error",
            self.on_client_error.as_deref().unwrap_or("fail"),
        )?;
        if min_delay > max_delay {
            return Err(PolicyError::new(
                "min_delay",
                format!(
                    "must not be greater than max_delay ({}), got {}",
                    units::format_duration_exact(max_delay),
                    units::format_duration_exact(min_delay)
                ),
            ));
        }
        Ok(RetryPolicy {
            policy,
            schedule,
            delay,
            max_retries: max_retries as u32,
            min_delay,
            max_delay,
            max_age,
            retry_on,
            retry_after: self.retry_after.unwrap_or(true),
            on_client_error,
            flush_on_recovery: self.flush_on_recovery.unwrap_or(true),
        })
    }
}

fn named_value<T: std::str::FromStr<Err = String>>(
    key: &'static str,
    text: &str,
) -> Result<T, PolicyError> {
    text.parse()
        .map_err(|message| PolicyError::new(key, message))
}

fn positive_duration(
    key: &'static str,
    text: Option<&str>,
    default: &str,
) -> Result<Duration, PolicyError> {
    let value =
        units::parse_duration(text.unwrap_or(default)).map_err(|e| PolicyError::new(key, e))?;
    if value.is_zero() {
        return Err(PolicyError::new(key, "must be greater than zero"));
    }
    Ok(value)
}

impl RetryPolicy {
    /// Every key spelled out, so the effective policy can be shown and stored
    /// without depending on today's defaults.
    ///
    /// Durations use [`units::format_duration`] unless that would lose
    /// precision, so `to_spec().resolve()` gives back this exact policy.
    pub fn to_spec(&self) -> RetrySpec {
        let duration = |d: Duration| Some(units::format_duration_exact(d));
        RetrySpec {
            policy: Some(self.policy.as_str().to_string()),
            schedule: Some(self.schedule.as_str().to_string()),
            delay: duration(self.delay),
            max_retries: Some(i64::from(self.max_retries)),
            min_delay: duration(self.min_delay),
            max_delay: duration(self.max_delay),
            max_age: duration(self.max_age),
            retry_on: Some(self.retry_on.to_string()),
            retry_after: Some(self.retry_after),
            on_client_error: Some(self.on_client_error.as_str().to_string()),
            flush_on_recovery: Some(self.flush_on_recovery),
        }
    }
}

/// How long the `n`-th retry of a cycle waits (n counts from 1; 0 is read as 1).
///
/// Saturates instead of overflowing: a large `n` simply lands on `max_delay`.
pub fn retry_delay(policy: &RetryPolicy, n: u32) -> Duration {
    let n = n.max(1);
    match policy.schedule {
        Schedule::Fixed => policy.delay,
        Schedule::Exponential => {
            let doubled = 2u128
                .checked_pow(n - 1)
                .and_then(|factor| factor.checked_mul(policy.delay.as_nanos()));
            match doubled {
                Some(nanos) if nanos < policy.max_delay.as_nanos() => duration_from_nanos(nanos),
                _ => policy.max_delay,
            }
        }
        Schedule::Power => {
            let seconds = u128::from(n).pow(4);
            let wait = u64::try_from(seconds).map_or(Duration::MAX, Duration::from_secs);
            // max() then min() rather than clamp(): a hand-built policy with
            // min_delay > max_delay must not panic; max_delay wins then.
            wait.max(policy.min_delay).min(policy.max_delay)
        }
    }
}

fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    match u64::try_from(nanos / NANOS_PER_SEC) {
        Ok(secs) => Duration::new(secs, (nanos % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests;

//! Retry policies: how a destination's `[destinations.retry]` table is read, and
//! the pure judgement of every delivery attempt ([`decide`]).
//!
//! Nothing here does I/O or reads a clock: the engine passes `now` in, so every
//! decision can be replayed and tested exactly.

mod decision;
pub mod retry_after;
pub mod rule;
pub mod units;

pub use decision::{decide, will_retry_after, Decision, History, Outcome, RETRY_AFTER_CAP};
// The vocabulary lives in `model`; re-exported so callers of the policy need
// not know where.
pub use crate::model::{FailReason, RetrySpec, Trigger, Verdict};
pub use retry_after::{parse_retry_after, RetryAfter};
pub use rule::{RuleError, StatusRule, ANY};

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
    /// The reference whose defaults and limits this policy was resolved with.
    pub preset: Option<Preset>,
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

/// A reference retry behaviour whose defaults and limits a destination takes
/// with `preset = "..."` (the README's presets table lists them all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// A vehicle-data monitor's notifications: every non-2xx answer is retried
    /// every `delay`, nothing past 3 days, the backlog sent on the first 2xx.
    Monitor,
    /// A marketplace's webhooks: `n⁴` s in [60 s, 4 d], 25 retries (1..=50),
    /// 30 days; a 4xx or a redirect loop fails the event and disables the
    /// destination.
    Webhook,
    /// A webhook gateway's retry rules: linear or exponential, status-code
    /// rules, at most 50 automatic retries, `Retry-After` over everything.
    Rule,
}

names!(Preset { Monitor => "monitor", Webhook => "webhook", Rule => "rule" });

/// The monitor reference keeps a notification "3 days maximum, in any case".
pub const MONITOR_MAX_AGE: Duration = Duration::from_secs(3 * 86_400);
/// The webhook reference: "Retries will stop 30 days after the payload was
/// generated, regardless of how many attempts have been made."
pub const WEBHOOK_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);
/// The webhook reference's clamp of `retry_count⁴` seconds.
pub const WEBHOOK_MIN_DELAY: Duration = Duration::from_secs(60);
pub const WEBHOOK_MAX_DELAY: Duration = Duration::from_secs(4 * 86_400);
/// The webhook reference's request timeout; the destination's `timeout` when
/// it sets none (the same as hookwatch's general default, by design).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(30);

impl Preset {
    /// The destination's request timeout when it sets none, if the reference
    /// names one.
    pub fn default_timeout(self) -> Option<Duration> {
        match self {
            Preset::Webhook => Some(WEBHOOK_TIMEOUT),
            Preset::Monitor | Preset::Rule => None,
        }
    }

    /// Whether a valid `Retry-After` wins over the status rule and the retry
    /// count (the rule reference: "the value will take precedence over any
    /// retry rule").
    pub fn retry_after_overrides_rule(self) -> bool {
        self == Preset::Rule
    }

    /// The keys the reference fixes: a value outside them is a config error
    /// naming the key.
    fn check(self, policy: &RetryPolicy) -> Result<(), PolicyError> {
        let exact = units::format_duration_exact;
        match self {
            Preset::Monitor => {
                if policy.schedule != Schedule::Fixed {
                    return Err(PolicyError::new(
                        "schedule",
                        format!(
                            "the monitor preset retries every `delay` (fixed), got {}",
                            policy.schedule
                        ),
                    ));
                }
                if policy.max_age > MONITOR_MAX_AGE {
                    return Err(PolicyError::new(
                        "max_age",
                        format!(
                            "the monitor preset caps every event at 3 days, got {}",
                            exact(policy.max_age)
                        ),
                    ));
                }
            }
            Preset::Webhook => {
                if policy.schedule != Schedule::Power {
                    return Err(PolicyError::new(
                        "schedule",
                        format!(
                            "the webhook preset waits n⁴ seconds (power), got {}",
                            policy.schedule
                        ),
                    ));
                }
                if policy.policy == PolicyKind::Always {
                    return Err(PolicyError::new(
                        "policy",
                        "the webhook preset makes 1 to 50 retries (none or bounded), got always",
                    ));
                }
                if policy.min_delay < WEBHOOK_MIN_DELAY {
                    return Err(PolicyError::new(
                        "min_delay",
                        format!(
                            "the webhook preset waits at least 1m between retries, got {}",
                            exact(policy.min_delay)
                        ),
                    ));
                }
                if policy.max_delay > WEBHOOK_MAX_DELAY {
                    return Err(PolicyError::new(
                        "max_delay",
                        format!(
                            "the webhook preset waits at most 4d between retries, got {}",
                            exact(policy.max_delay)
                        ),
                    ));
                }
                if policy.max_age > WEBHOOK_MAX_AGE {
                    return Err(PolicyError::new(
                        "max_age",
                        format!(
                            "the webhook preset stops retrying 30 days after an event was created, got {}",
                            exact(policy.max_age)
                        ),
                    ));
                }
            }
            Preset::Rule => {
                if policy.schedule == Schedule::Power {
                    return Err(PolicyError::new(
                        "schedule",
                        "the rule preset retries linear (fixed) or exponential, got power",
                    ));
                }
                if policy.policy == PolicyKind::Always {
                    return Err(PolicyError::new(
                        "policy",
                        "the rule preset makes at most 50 automatic retries (none or bounded), got always",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Every key's default, as written in a config file.
struct Defaults {
    policy: &'static str,
    schedule: &'static str,
    delay: &'static str,
    max_retries: i64,
    min_delay: &'static str,
    max_delay: &'static str,
    /// `None`: computed from the other keys (the rule preset).
    max_age: Option<&'static str>,
    retry_on: &'static str,
    retry_after: bool,
    on_client_error: &'static str,
    flush_on_recovery: bool,
}

/// No preset: hookwatch's own defaults (unchanged since before presets).
const NO_PRESET: Defaults = Defaults {
    policy: "bounded",
    schedule: "exponential",
    delay: "30s",
    max_retries: 5,
    min_delay: "60s",
    max_delay: "4d",
    max_age: Some("3d"),
    retry_on: "429, >=500",
    retry_after: true,
    on_client_error: "fail",
    flush_on_recovery: true,
};

/// Without a preset, the power schedule keeps 25 retries over up to 30 days,
/// because its delays grow to days and the general defaults (5 retries, 3
/// days) would cut it off after a few minutes of retrying.
const NO_PRESET_POWER_MAX_RETRIES: i64 = 25;
const NO_PRESET_POWER_MAX_AGE: &str = "30d";

impl Defaults {
    fn of(preset: Option<Preset>) -> Defaults {
        match preset {
            None => NO_PRESET,
            // The reference names no retry count or delay: hookwatch's own.
            // It retries "at the frequency set in retryDelay" and says nothing
            // of Retry-After, so the header is not honoured unless asked.
            Some(Preset::Monitor) => Defaults {
                schedule: "fixed",
                retry_on: rule::ANY,
                retry_after: false,
                ..NO_PRESET
            },
            // Its schedule is the formula alone: Retry-After is not honoured
            // and a recovery does not flush, unless asked.
            Some(Preset::Webhook) => Defaults {
                schedule: "power",
                max_retries: 25,
                min_delay: "60s",
                max_delay: "4d",
                max_age: Some("30d"),
                retry_after: false,
                on_client_error: "disable",
                flush_on_recovery: false,
                ..NO_PRESET
            },
            // Its example: "1 hour, 2 hours, 4 hours, etc."; any failed
            // answer is retried unless a status rule says otherwise.
            Some(Preset::Rule) => Defaults {
                schedule: "exponential",
                delay: "1h",
                max_delay: "7d",
                max_age: None,
                retry_on: rule::ANY,
                flush_on_recovery: false,
                ..NO_PRESET
            },
        }
    }
}

impl RetrySpec {
    /// Fills in defaults (the preset's, or hookwatch's own) and validates,
    /// including the preset's limits.
    pub fn resolve(&self) -> Result<RetryPolicy, PolicyError> {
        let preset: Option<Preset> = self
            .preset
            .as_deref()
            .map(|text| named_value("preset", text))
            .transpose()?;
        let defaults = Defaults::of(preset);
        let policy: PolicyKind =
            named_value("policy", self.policy.as_deref().unwrap_or(defaults.policy))?;
        let schedule: Schedule = named_value(
            "schedule",
            self.schedule.as_deref().unwrap_or(defaults.schedule),
        )?;
        let power_without_preset = preset.is_none() && schedule == Schedule::Power;
        let delay = positive_duration("delay", self.delay.as_deref(), defaults.delay)?;
        let max_retries = self.max_retries.unwrap_or(if power_without_preset {
            NO_PRESET_POWER_MAX_RETRIES
        } else {
            defaults.max_retries
        });
        if !(1..=i64::from(MAX_RETRIES_LIMIT)).contains(&max_retries) {
            return Err(PolicyError::new(
                "max_retries",
                format!("must be between 1 and {MAX_RETRIES_LIMIT}, got {max_retries}"),
            ));
        }
        let min_delay =
            positive_duration("min_delay", self.min_delay.as_deref(), defaults.min_delay)?;
        let max_delay =
            positive_duration("max_delay", self.max_delay.as_deref(), defaults.max_delay)?;
        let max_age = match (self.max_age.as_deref(), defaults.max_age) {
            (Some(text), _) => positive_duration("max_age", Some(text), "")?,
            (None, Some(_)) if power_without_preset => {
                positive_duration("max_age", None, NO_PRESET_POWER_MAX_AGE)?
            }
            (None, Some(default)) => positive_duration("max_age", None, default)?,
            (None, None) => rule_preset_max_age(max_delay),
        };
        let retry_on = StatusRule::parse(self.retry_on.as_deref().unwrap_or(defaults.retry_on))
            .map_err(|e| PolicyError::new("retry_on", e.to_string()))?;
        let on_client_error: OnClientError = named_value(
            "on_client_error",
            self.on_client_error
                .as_deref()
                .unwrap_or(defaults.on_client_error),
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
        let resolved = RetryPolicy {
            preset,
            policy,
            schedule,
            delay,
            max_retries: max_retries as u32,
            min_delay,
            max_delay,
            max_age,
            retry_on,
            retry_after: self.retry_after.unwrap_or(defaults.retry_after),
            on_client_error,
            flush_on_recovery: self.flush_on_recovery.unwrap_or(defaults.flush_on_recovery),
        };
        if let Some(preset) = preset {
            preset.check(&resolved)?;
        }
        Ok(resolved)
    }
}

/// The rule preset's default `max_age`: long enough that it never cuts a
/// retry the reference allows. A receiver may push each of the 50 automatic
/// retries up to 7 days ahead with `Retry-After`, and no scheduled wait is
/// longer than `max_delay`, so 50 waits of the longer of the two always fit
/// (350 days with the preset's 7-day `max_delay`): the cycle ends by its count,
/// never by age.
fn rule_preset_max_age(max_delay: Duration) -> Duration {
    max_delay
        .max(decision::RETRY_AFTER_CAP)
        .saturating_mul(MAX_RETRIES_LIMIT)
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
    /// Whether a valid `Retry-After` wins over the status rule and the retry
    /// count (the rule preset).
    pub fn retry_after_overrides_rule(&self) -> bool {
        self.preset.is_some_and(Preset::retry_after_overrides_rule)
    }

    /// Every key spelled out, so the effective policy can be shown and stored
    /// without depending on today's defaults.
    ///
    /// Durations use [`units::format_duration`] unless that would lose
    /// precision, so `to_spec().resolve()` gives back this exact policy.
    pub fn to_spec(&self) -> RetrySpec {
        let duration = |d: Duration| Some(units::format_duration_exact(d));
        RetrySpec {
            preset: self.preset.map(|preset| preset.as_str().to_string()),
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

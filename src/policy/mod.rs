//! TEMPORARY minimal policy interface; replaced by the real module.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub mod units {
    use std::time::Duration;
    pub fn parse_duration(input: &str) -> Result<Duration, String> {
        humantime::parse_duration(input).map_err(|e| format!("invalid duration \"{input}\": {e}"))
    }
    pub fn parse_size(input: &str) -> Result<u64, String> {
        let t = input.trim();
        let (num, mul) = if let Some(n) = t.strip_suffix("KiB") {
            (n, 1024)
        } else if let Some(n) = t.strip_suffix("MiB") {
            (n, 1 << 20)
        } else {
            (t, 1)
        };
        num.trim()
            .parse::<u64>()
            .map(|n| n * mul)
            .map_err(|_| format!("invalid size \"{input}\""))
    }
    pub fn format_duration(d: Duration) -> String {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Initial,
    Automatic,
    Manual,
    Bulk,
    Flush,
}
impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Trigger::Initial => "initial",
            Trigger::Automatic => "automatic",
            Trigger::Manual => "manual",
            Trigger::Bulk => "bulk",
            Trigger::Flush => "flush",
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    pub delay: Duration,
    pub max_retries: u32,
    pub max_age: Duration,
    pub flush_on_recovery: bool,
    pub on_client_error: OnClientError,
}
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OnClientError {
    Fail,
    Disable,
}
impl Default for RetryPolicy {
    fn default() -> Self {
        RetrySpec::default().resolve().unwrap()
    }
}
impl RetryPolicy {
    pub fn to_spec(&self) -> RetrySpec {
        RetrySpec {
            delay: Some(units::format_duration(self.delay)),
            max_retries: Some(self.max_retries as i64),
            ..Default::default()
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i64>,
}
#[derive(Debug)]
pub struct PolicyError {
    pub key: &'static str,
    pub message: String,
}
impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}
impl RetrySpec {
    pub fn resolve(&self) -> Result<RetryPolicy, PolicyError> {
        let delay = units::parse_duration(self.delay.as_deref().unwrap_or("30s")).map_err(|m| {
            PolicyError {
                key: "delay",
                message: m,
            }
        })?;
        let mr = self.max_retries.unwrap_or(5);
        if !(1..=50).contains(&mr) {
            return Err(PolicyError {
                key: "max_retries",
                message: format!("must be between 1 and 50, got {mr}"),
            });
        }
        Ok(RetryPolicy {
            delay,
            max_retries: mr as u32,
            max_age: Duration::from_secs(3 * 86400),
            flush_on_recovery: true,
            on_client_error: OnClientError::Fail,
        })
    }
    pub fn merged(&self, patch: &RetrySpec) -> RetrySpec {
        RetrySpec {
            schedule: patch.schedule.clone().or(self.schedule.clone()),
            delay: patch.delay.clone().or(self.delay.clone()),
            max_retries: patch.max_retries.or(self.max_retries),
        }
    }
}

pub struct History {
    pub cycle_started_at: DateTime<Utc>,
    pub automatic_retries: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
}
#[derive(Debug, Clone)]
pub enum Outcome {
    Response {
        status: u16,
        retry_after: Option<String>,
    },
    Timeout,
    Network(String),
    TooManyRedirects,
}
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    NotRetriable,
    TooManyRedirects,
    RetriesExhausted,
    Expired,
}
impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self)
    }
}
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Delivered,
    Retry { at: DateTime<Utc> },
    Failed { reason: FailReason },
    Cancelled,
    Unchanged,
}
pub struct Decision {
    pub verdict: Verdict,
    pub words: String,
    pub success: bool,
    pub disable_destination: bool,
    pub lower_concurrency: bool,
}

pub fn decide(
    policy: &RetryPolicy,
    history: &History,
    trigger: Trigger,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> Decision {
    let ok = matches!(outcome, Outcome::Response { status, .. } if (200..300).contains(status));
    if ok {
        return Decision {
            verdict: Verdict::Delivered,
            words: "delivered".into(),
            success: true,
            disable_destination: false,
            lower_concurrency: false,
        };
    }
    if matches!(trigger, Trigger::Manual | Trigger::Bulk) {
        return Decision {
            verdict: Verdict::Unchanged,
            words: "manual retry failed".into(),
            success: false,
            disable_destination: false,
            lower_concurrency: false,
        };
    }
    let made = if trigger == Trigger::Initial {
        0
    } else {
        history.automatic_retries + 1
    };
    if made >= policy.max_retries {
        return Decision {
            verdict: Verdict::Failed {
                reason: FailReason::RetriesExhausted,
            },
            words: "gave up".into(),
            success: false,
            disable_destination: false,
            lower_concurrency: false,
        };
    }
    let at = now + chrono::Duration::from_std(policy.delay).unwrap();
    Decision {
        verdict: Verdict::Retry { at },
        words: format!("retry in {}", units::format_duration(policy.delay)),
        success: false,
        disable_destination: false,
        lower_concurrency: false,
    }
}
pub fn will_retry_after(
    policy: &RetryPolicy,
    history: &History,
    trigger: Trigger,
    _now: DateTime<Utc>,
) -> Option<Duration> {
    let made = if trigger == Trigger::Initial {
        0
    } else {
        history.automatic_retries + 1
    };
    (made < policy.max_retries).then_some(policy.delay)
}

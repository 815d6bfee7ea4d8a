//! The judgement of one delivery attempt: what happens to the event next.

use super::retry_after::{parse_retry_after, RetryAfter};
use super::units::format_duration;
use super::{retry_delay, OnClientError, PolicyKind, RetryPolicy, MAX_RETRIES_LIMIT};
use crate::model::{FailReason, Trigger, Verdict};
use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;

/// A server's `Retry-After` may not park an event for longer than this, so a
/// misconfigured receiver cannot stall deliveries for months.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(7 * 86_400);

/// The soonest a `Retry-After` may bring the next attempt. A receiver answering
/// `Retry-After: 0` (or a date in the past) to every attempt would otherwise
/// have hookwatch retry it back to back, burning the CPU and store commits that
/// healthy destinations need.
pub const RETRY_AFTER_FLOOR: Duration = Duration::from_secs(1);

/// What the store knows about the event's automatic retry cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct History {
    /// Event creation, or its last requeue: `max_age` counts from here.
    pub cycle_started_at: DateTime<Utc>,
    /// Automatic retries already made in this cycle before the attempt being judged.
    pub automatic_retries: u32,
    /// The automatic retry currently scheduled, if any; what a failed manual or
    /// bulk attempt leaves in place.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// What happened to one attempt, as far as the policy cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Any HTTP response; `retry_after` is the raw `Retry-After` value, if sent.
    Response {
        status: u16,
        retry_after: Option<String>,
    },
    Timeout,
    /// Connection refused or reset, DNS, TLS...: the message is for people.
    Network(String),
    TooManyRedirects,
}

impl Outcome {
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Response { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The verdict plus the side effects the attempt has on its destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The decision in words for the attempt history: "retry in 8m",
    /// "gave up: 404 not retriable".
    pub words: String,
    /// The attempt got a 2xx.
    pub success: bool,
    /// A non-retriable 4xx (not 429) under `on_client_error = "disable"`.
    pub disable_destination: bool,
    /// The attempt got a 429: the receiver is asking for less load.
    pub lower_concurrency: bool,
}

/// Judges one attempt.
///
/// Counting, for the automatic cycle (`Initial` — or `Resend`/`Requeue`, which start a cycle too — `Automatic`, `Flush`; a flush
/// is a scheduled retry made early):
///
/// - `made` is the number of automatic retries made in this cycle *including the
///   attempt being judged*: 0 for `Initial` (and `Resend`, `Requeue`), `history.automatic_retries + 1` for
///   `Automatic` and `Flush`.
/// - The retry being decided is number `made + 1`; it waits
///   `retry_delay(policy, made + 1)` unless a `Retry-After` says otherwise.
/// - The limit is 1 for `none`, `max_retries` for `bounded`, unlimited for
///   `always`; while a `Retry-After` is in force it is at most 50, so a
///   receiver that always answers "come back in a second" cannot keep an event
///   alive forever. `made >= limit` means the retries are exhausted.
/// - Whatever the limit, a retry due later than `cycle_started_at + max_age`
///   is not scheduled: the event fails as expired.
///
/// `Manual` and `Bulk` attempts are outside the cycle: they never count, and a
/// failure leaves the event as it was ([`Verdict::Unchanged`]).
pub fn decide(
    policy: &RetryPolicy,
    history: &History,
    trigger: Trigger,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> Decision {
    let status = outcome.status();
    if status.is_some_and(|s| (200..=299).contains(&s)) {
        return Decision {
            verdict: Verdict::Delivered,
            words: "delivered".to_string(),
            success: true,
            disable_destination: false,
            lower_concurrency: false,
        };
    }

    let retry_after = match outcome {
        Outcome::Response {
            retry_after: Some(value),
            ..
        } if policy.retry_after => Some((value.as_str(), parse_retry_after(value, now))),
        _ => None,
    };
    // Under the rule preset a valid Retry-After makes any failed answer
    // retriable: "the value will take precedence over any retry rule".
    let retriable = is_retriable(policy, outcome)
        || (policy.retry_after_overrides_rule()
            && matches!(retry_after, Some((_, Ok(RetryAfter::At(_))))));
    let disable_destination = !retriable
        && policy.on_client_error == OnClientError::Disable
        && (status.is_some_and(|s| (400..=499).contains(&s) && s != 429)
            || *outcome == Outcome::TooManyRedirects);
    let decision = |verdict: Verdict, words: String| Decision {
        verdict,
        words: if disable_destination {
            format!("{words}; destination disabled")
        } else {
            words
        },
        success: false,
        disable_destination,
        lower_concurrency: status == Some(429),
    };

    if let Some((_, Ok(RetryAfter::Cancel))) = retry_after {
        return decision(
            Verdict::Cancelled,
            "cancelled by Retry-After: -1".to_string(),
        );
    }

    match trigger {
        Trigger::Manual | Trigger::Bulk => {
            let next = match history.next_attempt_at {
                Some(at) => match until(at, now) {
                    wait if wait.is_zero() => "next automatic retry now".to_string(),
                    wait => format!("next automatic retry in {}", format_duration(wait)),
                },
                None => "no automatic retry scheduled".to_string(),
            };
            return decision(
                Verdict::Unchanged,
                format!("{trigger} retry failed; {next}"),
            );
        }
        Trigger::Initial
        | Trigger::Resend
        | Trigger::Requeue
        | Trigger::Automatic
        | Trigger::Flush => {}
    }

    if !retriable && *outcome == Outcome::TooManyRedirects {
        return decision(
            Verdict::Failed {
                reason: FailReason::TooManyRedirects,
            },
            "gave up: too many redirects".to_string(),
        );
    }
    if !retriable {
        let what = status.map_or_else(|| "outcome".to_string(), |s| s.to_string());
        return decision(
            Verdict::Failed {
                reason: FailReason::NotRetriable,
            },
            format!("gave up: {what} not retriable"),
        );
    }

    let (requested_at, note) = match retry_after {
        Some((_, Ok(RetryAfter::At(at)))) => (
            Some(
                at.max(add(now, RETRY_AFTER_FLOOR))
                    .min(add(now, RETRY_AFTER_CAP)),
            ),
            None,
        ),
        Some((value, Err(_))) => (
            None,
            Some(format!("ignored unparsable Retry-After \"{value}\"")),
        ),
        _ => (None, None),
    };
    let with_note = |words: String| match &note {
        Some(note) => format!("{words}; {note}"),
        None => words,
    };

    let made = retries_made(trigger, history);
    if let Some(limit) = retry_limit(policy, requested_at.is_some()) {
        if made >= limit {
            let noun = if limit == 1 { "retry" } else { "retries" };
            return decision(
                Verdict::Failed {
                    reason: FailReason::RetriesExhausted,
                },
                with_note(format!("gave up: {limit} {noun} exhausted")),
            );
        }
    }
    let at = requested_at.unwrap_or_else(|| add(now, retry_delay(policy, made.saturating_add(1))));
    if at > add(history.cycle_started_at, policy.max_age) {
        return decision(
            Verdict::Failed {
                reason: FailReason::Expired,
            },
            with_note(format!("expired after {}", format_duration(policy.max_age))),
        );
    }
    let wait = until(at, now);
    let mut words = if wait.is_zero() {
        "retry now".to_string()
    } else {
        format!("retry in {}", format_duration(wait))
    };
    if requested_at.is_some() {
        words.push_str(" (Retry-After)");
    }
    // A time set by Retry-After, or the schedule an event returns to after
    // its flush attempt failed, is not moved by the next recovery flush.
    let pinned = requested_at.is_some() || trigger == Trigger::Flush;
    decision(Verdict::Retry { at, pinned }, with_note(words))
}

/// The `hookwatch-will-retry-after` header for the attempt about to be made:
/// how long until the next automatic retry should this attempt fail.
///
/// For the automatic cycle this is the schedule's delay (a `Retry-After` in the
/// response cannot be known yet), and `None` on the last automatic attempt:
/// when retries would be exhausted or the next retry would pass `max_age`.
/// For manual and bulk attempts it is the time left until the retry already
/// scheduled, since their failure does not move it.
pub fn will_retry_after(
    policy: &RetryPolicy,
    history: &History,
    trigger: Trigger,
    now: DateTime<Utc>,
) -> Option<Duration> {
    match trigger {
        Trigger::Manual | Trigger::Bulk => history.next_attempt_at.map(|at| until(at, now)),
        Trigger::Initial
        | Trigger::Resend
        | Trigger::Requeue
        | Trigger::Automatic
        | Trigger::Flush => {
            let made = retries_made(trigger, history);
            if retry_limit(policy, false).is_some_and(|limit| made >= limit) {
                return None;
            }
            let wait = retry_delay(policy, made.saturating_add(1));
            (add(now, wait) <= add(history.cycle_started_at, policy.max_age)).then_some(wait)
        }
    }
}

fn is_retriable(policy: &RetryPolicy, outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Response { status, .. } => policy.retry_on.matches(*status),
        Outcome::Timeout | Outcome::Network(_) => true,
        Outcome::TooManyRedirects => policy.retry_on.is_any(),
    }
}

/// Automatic retries made in the cycle, counting the attempt being judged.
fn retries_made(trigger: Trigger, history: &History) -> u32 {
    match trigger {
        Trigger::Initial | Trigger::Resend | Trigger::Requeue => 0,
        // A flush attempt is an extra try, not one of the schedule's retries:
        // its failure puts the event back where its schedule stands.
        Trigger::Flush => history.automatic_retries,
        _ => history.automatic_retries.saturating_add(1),
    }
}

/// How many automatic retries the cycle may make.
///
/// With `retry_after` on, 50 at most whatever the policy: any answer may carry
/// a `Retry-After`, which the references allow "at most 50 times", and the
/// `hookwatch-will-retry-after` header must know before the answer whether
/// another retry follows. `retry_after_in_force` (this answer set the next
/// time) lifts the policy's own count to those 50 under the rule preset,
/// where Retry-After takes precedence over the retry count.
fn retry_limit(policy: &RetryPolicy, retry_after_in_force: bool) -> Option<u32> {
    let own = match policy.policy {
        PolicyKind::None => Some(1),
        PolicyKind::Bounded => Some(policy.max_retries),
        PolicyKind::Always => None,
    };
    if retry_after_in_force && policy.retry_after_overrides_rule() {
        return Some(MAX_RETRIES_LIMIT);
    }
    if policy.retry_after {
        Some(own.map_or(MAX_RETRIES_LIMIT, |l| l.min(MAX_RETRIES_LIMIT)))
    } else {
        own
    }
}

/// Saturating, because policies may hold durations (say "1000y") that run off
/// the calendar; "never" is the right reading of those.
fn add(time: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| time.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn until(time: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    time.signed_duration_since(now)
        .to_std()
        .unwrap_or(Duration::ZERO)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::policy::{RetrySpec, Schedule};

    const MINUTE: i64 = 60;
    const HOUR: i64 = 3_600;
    const DAY: i64 = 86_400;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn later(secs: i64) -> DateTime<Utc> {
        now() + TimeDelta::seconds(secs)
    }

    fn policy(json: serde_json::Value) -> RetryPolicy {
        serde_json::from_value::<RetrySpec>(json)
            .unwrap()
            .resolve()
            .unwrap()
    }

    fn fresh() -> History {
        History {
            cycle_started_at: now(),
            automatic_retries: 0,
            next_attempt_at: None,
        }
    }

    fn after(automatic_retries: u32) -> History {
        History {
            automatic_retries,
            ..fresh()
        }
    }

    pub(in crate::policy) fn status(code: u16) -> Outcome {
        Outcome::Response {
            status: code,
            retry_after: None,
        }
    }

    pub(in crate::policy) fn with_retry_after(code: u16, value: &str) -> Outcome {
        Outcome::Response {
            status: code,
            retry_after: Some(value.to_string()),
        }
    }

    pub(in crate::policy) fn retry(at: DateTime<Utc>) -> Verdict {
        Verdict::Retry { at, pinned: false }
    }

    /// A retry whose time a recovery flush leaves alone.
    pub(in crate::policy) fn pinned(at: DateTime<Utc>) -> Verdict {
        Verdict::Retry { at, pinned: true }
    }

    pub(in crate::policy) fn failed(reason: FailReason) -> Verdict {
        Verdict::Failed { reason }
    }

    struct Case {
        name: &'static str,
        policy: RetryPolicy,
        history: History,
        trigger: Trigger,
        outcome: Outcome,
        now: DateTime<Utc>,
        verdict: Verdict,
        words: &'static str,
    }

    #[test]
    fn decisions() {
        let default = RetryPolicy::default;
        let bounded50 = || {
            policy(
                serde_json::json!({"max_retries": 50, "schedule": "fixed", "delay": "1m", "max_age": "30d"}),
            )
        };
        let none =
            || policy(serde_json::json!({"policy": "none", "schedule": "fixed", "delay": "10m"}));
        // Without Retry-After, `always` has no count limit at all.
        let always = || {
            policy(
                serde_json::json!({"policy": "always", "schedule": "fixed", "delay": "30s", "max_age": "1h", "retry_after": false}),
            )
        };
        // With it, any answer may set the next time, so 50 retries in all.
        let always_with_retry_after = || {
            policy(
                serde_json::json!({"policy": "always", "schedule": "fixed", "delay": "30s", "max_age": "1h"}),
            )
        };
        let rule = || policy(serde_json::json!({"retry_on": "429, 500-599, !501"}));
        let cases = vec![
            Case {
                name: "2xx delivers",
                policy: default(),
                history: after(3),
                trigger: Trigger::Automatic,
                outcome: status(204),
                now: now(),
                verdict: Verdict::Delivered,
                words: "delivered",
            },
            Case {
                name: "initial 503 retries after delay",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: status(503),
                now: now(),
                verdict: retry(later(30)),
                words: "retry in 30s",
            },
            Case {
                name: "timeout is retriable",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: Outcome::Timeout,
                now: now(),
                verdict: retry(later(30)),
                words: "retry in 30s",
            },
            Case {
                name: "network error is retriable",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: Outcome::Network("connection refused".into()),
                now: now(),
                verdict: retry(later(30)),
                words: "retry in 30s",
            },
            Case {
                name: "exponential: 4th retry after 3 made waits 30s*2^3",
                policy: default(),
                history: after(2),
                trigger: Trigger::Automatic,
                outcome: status(500),
                now: now(),
                verdict: retry(later(4 * MINUTE)),
                words: "retry in 4m",
            },
            Case {
                name: "a failed flush is not a retry: back to the schedule's 3rd retry, pinned",
                policy: default(),
                history: after(2),
                trigger: Trigger::Flush,
                outcome: status(500),
                now: now(),
                verdict: pinned(later(2 * MINUTE)),
                words: "retry in 2m",
            },
            Case {
                name: "a failed flush never exhausts the retries",
                policy: default(),
                history: after(4),
                trigger: Trigger::Flush,
                outcome: status(500),
                now: now(),
                verdict: pinned(later(8 * MINUTE)),
                words: "retry in 8m",
            },
            Case {
                name: "bounded: 5th retry fails, exhausted",
                policy: default(),
                history: after(4),
                trigger: Trigger::Automatic,
                outcome: status(500),
                now: now(),
                verdict: failed(FailReason::RetriesExhausted),
                words: "gave up: 5 retries exhausted",
            },
            Case {
                name: "bounded 50: 49th retry fails, the 50th is allowed",
                policy: bounded50(),
                history: after(48),
                trigger: Trigger::Automatic,
                outcome: status(500),
                now: now(),
                verdict: retry(later(MINUTE)),
                words: "retry in 1m",
            },
            Case {
                name: "bounded 50: 50th retry fails, no 51st",
                policy: bounded50(),
                history: after(49),
                trigger: Trigger::Automatic,
                outcome: status(500),
                now: now(),
                verdict: failed(FailReason::RetriesExhausted),
                words: "gave up: 50 retries exhausted",
            },
            Case {
                name: "none: initial failure gets one retry",
                policy: none(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: status(500),
                now: now(),
                verdict: retry(later(10 * MINUTE)),
                words: "retry in 10m",
            },
            Case {
                name: "none: the one retry failing ends it",
                policy: none(),
                history: fresh(),
                trigger: Trigger::Automatic,
                outcome: status(500),
                now: now(),
                verdict: failed(FailReason::RetriesExhausted),
                words: "gave up: 1 retry exhausted",
            },
            Case {
                name: "always: no count limit",
                policy: always(),
                history: after(500),
                trigger: Trigger::Automatic,
                outcome: status(500),
                now: later(10 * MINUTE),
                verdict: retry(later(10 * MINUTE + 30)),
                words: "retry in 30s",
            },
            Case {
                name: "always with retry_after on: the 50th retry's plain failure ends it too",
                policy: always_with_retry_after(),
                history: after(49),
                trigger: Trigger::Automatic,
                outcome: status(500),
                now: now(),
                verdict: failed(FailReason::RetriesExhausted),
                words: "gave up: 50 retries exhausted",
            },
            Case {
                name: "always: last retry that fits max_age",
                policy: always(),
                history: after(110),
                trigger: Trigger::Automatic,
                outcome: status(500),
                now: later(HOUR - 30),
                verdict: retry(later(HOUR)),
                words: "retry in 30s",
            },
            Case {
                name: "always: until max_age",
                policy: always(),
                history: after(111),
                trigger: Trigger::Automatic,
                outcome: status(500),
                now: later(HOUR - 29),
                verdict: failed(FailReason::Expired),
                words: "expired after 1h",
            },
            Case {
                name: "max_age reached between two retries",
                policy: default(),
                history: after(1),
                trigger: Trigger::Automatic,
                outcome: status(502),
                now: later(3 * DAY - 30),
                verdict: failed(FailReason::Expired),
                words: "expired after 3d",
            },
            Case {
                name: "404 not retriable",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: status(404),
                now: now(),
                verdict: failed(FailReason::NotRetriable),
                words: "gave up: 404 not retriable",
            },
            Case {
                name: "3xx not retriable",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: status(302),
                now: now(),
                verdict: failed(FailReason::NotRetriable),
                words: "gave up: 302 not retriable",
            },
            Case {
                name: "too many redirects",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: Outcome::TooManyRedirects,
                now: now(),
                verdict: failed(FailReason::TooManyRedirects),
                words: "gave up: too many redirects",
            },
            Case {
                name: "501 under \"429, 500-599, !501\"",
                policy: rule(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: status(501),
                now: now(),
                verdict: failed(FailReason::NotRetriable),
                words: "gave up: 501 not retriable",
            },
            Case {
                name: "502 under \"429, 500-599, !501\"",
                policy: rule(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: status(502),
                now: now(),
                verdict: retry(later(30)),
                words: "retry in 30s",
            },
            Case {
                name: "\"500, !500\" never retries 500",
                policy: policy(serde_json::json!({"retry_on": "500, !500"})),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: status(500),
                now: now(),
                verdict: failed(FailReason::NotRetriable),
                words: "gave up: 500 not retriable",
            },
            Case {
                name: "Retry-After seconds override the schedule",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: with_retry_after(503, "120"),
                now: now(),
                verdict: pinned(later(120)),
                words: "retry in 2m (Retry-After)",
            },
            Case {
                name: "Retry-After HTTP-date",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: with_retry_after(429, "Wed, 01 May 2024 13:30:00 GMT"),
                now: now(),
                verdict: pinned(later(90 * MINUTE)),
                words: "retry in 1h 30m (Retry-After)",
            },
            Case {
                name: "Retry-After HTTP-date in the past: retry after the 1 s floor",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: with_retry_after(503, "Wed, 01 May 2024 08:00:00 GMT"),
                now: now(),
                verdict: pinned(now() + chrono::Duration::seconds(1)),
                words: "retry in 1s (Retry-After)",
            },
            Case {
                name: "Retry-After capped at 7 days",
                policy: bounded50(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: with_retry_after(503, "2592000"),
                now: now(),
                verdict: pinned(later(7 * DAY)),
                words: "retry in 7d (Retry-After)",
            },
            Case {
                name: "Retry-After exactly 7 days",
                policy: bounded50(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: with_retry_after(503, "604800"),
                now: now(),
                verdict: pinned(later(7 * DAY)),
                words: "retry in 7d (Retry-After)",
            },
            Case {
                name: "Retry-After still bounded by max_age",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: with_retry_after(503, "604800"),
                now: now(),
                verdict: failed(FailReason::Expired),
                words: "expired after 3d",
            },
            Case {
                name: "Retry-After: -1 cancels",
                policy: default(),
                history: after(2),
                trigger: Trigger::Automatic,
                outcome: with_retry_after(503, "-1"),
                now: now(),
                verdict: Verdict::Cancelled,
                words: "cancelled by Retry-After: -1",
            },
            Case {
                name: "Retry-After: -1 cancels a non-retriable status too",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: with_retry_after(409, "-1"),
                now: now(),
                verdict: Verdict::Cancelled,
                words: "cancelled by Retry-After: -1",
            },
            Case {
                name: "Retry-After: -1 on a manual attempt",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Manual,
                outcome: with_retry_after(503, "-1"),
                now: now(),
                verdict: Verdict::Cancelled,
                words: "cancelled by Retry-After: -1",
            },
            Case {
                name: "Retry-After ignored when the policy says so",
                policy: policy(serde_json::json!({"retry_after": false})),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: with_retry_after(503, "-1"),
                now: now(),
                verdict: retry(later(30)),
                words: "retry in 30s",
            },
            Case {
                name: "Retry-After does not make a 404 retriable",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: with_retry_after(404, "60"),
                now: now(),
                verdict: failed(FailReason::NotRetriable),
                words: "gave up: 404 not retriable",
            },
            Case {
                name: "unparsable Retry-After: schedule used",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: with_retry_after(503, "soon"),
                now: now(),
                verdict: retry(later(30)),
                words: "retry in 30s; ignored unparsable Retry-After \"soon\"",
            },
            Case {
                name: "Retry-After keeps always at 50 retries",
                policy: always_with_retry_after(),
                history: after(49),
                trigger: Trigger::Automatic,
                outcome: with_retry_after(503, "1"),
                now: now(),
                verdict: failed(FailReason::RetriesExhausted),
                words: "gave up: 50 retries exhausted",
            },
            Case {
                name: "Retry-After lifts no lower limit",
                policy: none(),
                history: fresh(),
                trigger: Trigger::Automatic,
                outcome: with_retry_after(503, "1"),
                now: now(),
                verdict: failed(FailReason::RetriesExhausted),
                words: "gave up: 1 retry exhausted",
            },
            Case {
                name: "manual failure leaves the schedule",
                policy: default(),
                history: History {
                    next_attempt_at: Some(later(8 * MINUTE)),
                    ..after(3)
                },
                trigger: Trigger::Manual,
                outcome: status(500),
                now: now(),
                verdict: Verdict::Unchanged,
                words: "manual retry failed; next automatic retry in 8m",
            },
            Case {
                name: "bulk failure without a schedule",
                policy: default(),
                history: fresh(),
                trigger: Trigger::Bulk,
                outcome: Outcome::Timeout,
                now: now(),
                verdict: Verdict::Unchanged,
                words: "bulk retry failed; no automatic retry scheduled",
            },
            Case {
                name: "manual failure after retries are exhausted",
                policy: default(),
                history: after(40),
                trigger: Trigger::Manual,
                outcome: status(404),
                now: now(),
                verdict: Verdict::Unchanged,
                words: "manual retry failed; no automatic retry scheduled",
            },
            Case {
                name: "manual failure with an overdue retry",
                policy: default(),
                history: History {
                    next_attempt_at: Some(later(-5)),
                    ..fresh()
                },
                trigger: Trigger::Manual,
                outcome: status(500),
                now: now(),
                verdict: Verdict::Unchanged,
                words: "manual retry failed; next automatic retry now",
            },
            Case {
                name: "manual success delivers",
                policy: default(),
                history: after(40),
                trigger: Trigger::Manual,
                outcome: status(200),
                now: now(),
                verdict: Verdict::Delivered,
                words: "delivered",
            },
            Case {
                name: "power: first retry waits min_delay",
                policy: policy(serde_json::json!({"schedule": "power"})),
                history: fresh(),
                trigger: Trigger::Initial,
                outcome: status(500),
                now: now(),
                verdict: retry(later(60)),
                words: "retry in 1m",
            },
            Case {
                name: "power: 10th retry waits 10^4 s",
                policy: policy(serde_json::json!({"schedule": "power"})),
                history: after(8),
                trigger: Trigger::Automatic,
                outcome: status(500),
                now: later(DAY),
                verdict: retry(later(DAY + 10_000)),
                words: "retry in 2h 46m",
            },
            Case {
                name: "power: 25th retry fails, default 25 exhausted",
                policy: policy(serde_json::json!({"schedule": "power"})),
                history: after(24),
                trigger: Trigger::Automatic,
                outcome: status(500),
                now: later(DAY),
                verdict: failed(FailReason::RetriesExhausted),
                words: "gave up: 25 retries exhausted",
            },
        ];
        for case in cases {
            let decision = decide(
                &case.policy,
                &case.history,
                case.trigger,
                &case.outcome,
                case.now,
            );
            assert_eq!(decision.verdict, case.verdict, "{}", case.name);
            assert_eq!(decision.words, case.words, "{}", case.name);
            assert_eq!(
                decision.success,
                case.verdict == Verdict::Delivered,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn client_errors_disable_only_when_asked() {
        let disable = policy(serde_json::json!({"on_client_error": "disable"}));
        let cases = [
            (
                &disable,
                Trigger::Initial,
                404,
                true,
                "gave up: 404 not retriable; destination disabled",
            ),
            (
                &disable,
                Trigger::Automatic,
                410,
                true,
                "gave up: 410 not retriable; destination disabled",
            ),
            (
                &disable,
                Trigger::Initial,
                400,
                true,
                "gave up: 400 not retriable; destination disabled",
            ),
            (
                &disable,
                Trigger::Initial,
                499,
                true,
                "gave up: 499 not retriable; destination disabled",
            ),
            (
                &disable,
                Trigger::Manual,
                404,
                true,
                "manual retry failed; no automatic retry scheduled; destination disabled",
            ),
            (&disable, Trigger::Initial, 429, false, "retry in 30s"),
            (
                &disable,
                Trigger::Initial,
                302,
                false,
                "gave up: 302 not retriable",
            ),
            (&disable, Trigger::Initial, 500, false, "retry in 30s"),
            (
                &RetryPolicy::default(),
                Trigger::Initial,
                404,
                false,
                "gave up: 404 not retriable",
            ),
        ];
        for (policy, trigger, code, disabled, words) in cases {
            let decision = decide(policy, &fresh(), trigger, &status(code), now());
            assert_eq!(
                (decision.disable_destination, decision.words.as_str()),
                (disabled, words),
                "{trigger} {code}"
            );
        }
        // A status the rule retries is not a client error to act on.
        let retried_404 =
            policy(serde_json::json!({"on_client_error": "disable", "retry_on": "404, >=500"}));
        let decision = decide(
            &retried_404,
            &fresh(),
            Trigger::Initial,
            &status(404),
            now(),
        );
        assert!(!decision.disable_destination);
        assert_eq!(decision.verdict, retry(later(30)));
    }

    #[test]
    fn only_429_lowers_concurrency() {
        let never_429 = policy(serde_json::json!({"retry_on": ">=500"}));
        for (policy, outcome, lowered) in [
            (RetryPolicy::default(), status(429), true),
            (RetryPolicy::default(), with_retry_after(429, "30"), true),
            (never_429, status(429), true),
            (RetryPolicy::default(), status(503), false),
            (RetryPolicy::default(), status(200), false),
            (RetryPolicy::default(), Outcome::Timeout, false),
        ] {
            for trigger in [Trigger::Initial, Trigger::Automatic, Trigger::Manual] {
                let decision = decide(&policy, &fresh(), trigger, &outcome, now());
                assert_eq!(decision.lower_concurrency, lowered, "{outcome:?} {trigger}");
            }
        }
    }

    #[test]
    fn will_retry_after_announces_the_next_wait() {
        let default = RetryPolicy::default();
        let none =
            policy(serde_json::json!({"policy": "none", "schedule": "fixed", "delay": "10m"}));
        let power = policy(serde_json::json!({"schedule": "power"}));
        let always = policy(
            serde_json::json!({"policy": "always", "schedule": "fixed", "delay": "30s", "max_age": "1h", "retry_after": false}),
        );
        let always_with_retry_after = policy(
            serde_json::json!({"policy": "always", "schedule": "fixed", "delay": "30s", "max_age": "1h"}),
        );
        let scheduled = History {
            next_attempt_at: Some(later(8 * MINUTE)),
            ..after(2)
        };
        let overdue = History {
            next_attempt_at: Some(later(-8)),
            ..after(2)
        };
        let cases = [
            (
                "initial",
                &default,
                fresh(),
                Trigger::Initial,
                now(),
                Some(30),
            ),
            (
                "3rd retry",
                &default,
                after(1),
                Trigger::Automatic,
                now(),
                Some(120),
            ),
            (
                "a flush stands in for the 2nd retry, not a 3rd",
                &default,
                after(1),
                Trigger::Flush,
                now(),
                Some(60),
            ),
            (
                "4th retry",
                &default,
                after(3),
                Trigger::Automatic,
                now(),
                Some(480),
            ),
            (
                "5th retry is the last",
                &default,
                after(4),
                Trigger::Automatic,
                now(),
                None,
            ),
            (
                "next would pass max_age",
                &default,
                after(1),
                Trigger::Automatic,
                later(3 * DAY - 60),
                None,
            ),
            (
                "next lands exactly on max_age",
                &default,
                after(1),
                Trigger::Automatic,
                later(3 * DAY - 120),
                Some(120),
            ),
            (
                "none: initial",
                &none,
                fresh(),
                Trigger::Initial,
                now(),
                Some(600),
            ),
            (
                "none: the retry is the last",
                &none,
                fresh(),
                Trigger::Automatic,
                now(),
                None,
            ),
            (
                "power: initial",
                &power,
                fresh(),
                Trigger::Initial,
                now(),
                Some(60),
            ),
            (
                "power: 25th is the last",
                &power,
                after(24),
                Trigger::Automatic,
                now(),
                None,
            ),
            (
                "always: within max_age",
                &always,
                after(90),
                Trigger::Automatic,
                later(HOUR - 30),
                Some(30),
            ),
            (
                "always: past max_age",
                &always,
                after(90),
                Trigger::Automatic,
                later(HOUR - 29),
                None,
            ),
            (
                "always with retry_after on: the 49th retry announces the 50th",
                &always_with_retry_after,
                after(48),
                Trigger::Automatic,
                now(),
                Some(30),
            ),
            (
                "always with retry_after on: the 50th retry is the last",
                &always_with_retry_after,
                after(49),
                Trigger::Automatic,
                now(),
                None,
            ),
            (
                "manual: time to the scheduled retry",
                &default,
                scheduled,
                Trigger::Manual,
                now(),
                Some(480),
            ),
            (
                "bulk: overdue retry",
                &default,
                overdue,
                Trigger::Bulk,
                now(),
                Some(0),
            ),
            (
                "manual: nothing scheduled",
                &default,
                after(4),
                Trigger::Manual,
                now(),
                None,
            ),
        ];
        for (name, policy, history, trigger, at, expected) in cases {
            assert_eq!(
                will_retry_after(policy, &history, trigger, at),
                expected.map(Duration::from_secs),
                "{name}"
            );
        }
    }

    #[test]
    fn exponential_doubles_until_max_delay() {
        let policy = policy(
            serde_json::json!({"delay": "30s", "max_delay": "10m", "max_retries": 10, "max_age": "30d"}),
        );
        assert_eq!(policy.schedule, Schedule::Exponential);
        let mut history = fresh();
        let mut clock = now();
        let mut trigger = Trigger::Initial;
        let mut waits = Vec::new();
        loop {
            match decide(&policy, &history, trigger, &Outcome::Timeout, clock).verdict {
                Verdict::Retry { at, .. } => {
                    waits.push((at - clock).num_seconds());
                    if trigger == Trigger::Automatic {
                        history.automatic_retries += 1;
                    }
                    trigger = Trigger::Automatic;
                    clock = at;
                }
                verdict => {
                    assert_eq!(verdict, failed(FailReason::RetriesExhausted));
                    break;
                }
            }
        }
        assert_eq!(waits, [30, 60, 120, 240, 480, 600, 600, 600, 600, 600]);
    }

    #[test]
    fn extreme_durations_saturate() {
        let forever = policy(
            serde_json::json!({"policy": "always", "delay": "1000000y", "max_delay": "2000000y", "max_age": "5000000y"}),
        );
        let decision = decide(
            &forever,
            &after(10),
            Trigger::Automatic,
            &Outcome::Timeout,
            now(),
        );
        assert_eq!(decision.verdict, retry(DateTime::<Utc>::MAX_UTC));
        let shorter_age = RetryPolicy {
            max_age: Duration::from_secs(1_000 * 365 * 86_400),
            ..forever.clone()
        };
        let decision = decide(
            &shorter_age,
            &after(10),
            Trigger::Automatic,
            &Outcome::Timeout,
            now(),
        );
        assert_eq!(decision.verdict, failed(FailReason::Expired));
        let _ = will_retry_after(&forever, &after(u32::MAX), Trigger::Automatic, now());
        let decision = decide(
            &forever,
            &after(u32::MAX),
            Trigger::Flush,
            &with_retry_after(503, "99999999999999999999"),
            now(),
        );
        assert_eq!(decision.verdict, failed(FailReason::RetriesExhausted));
    }
}

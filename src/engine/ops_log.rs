//! What the daemon tells its journal: one info line for each change of a
//! destination's health or concurrency, emitted where the engine makes the
//! change, from typed [`DestinationChange`]s.
//!
//! Changes caused by attempts (entering retry, recovering, 429 back-off) can
//! flap as fast as attempts finish, so they pass a per-destination
//! [`LineLimiter`]: at most [`LINES_PER_WINDOW`] lines per [`LOG_WINDOW`], then
//! one "suppressed K similar lines" summary when the window ends. Operator
//! actions (enable, pause, resume, live edits, bulk jobs) are logged as they
//! come: they are as frequent as the operator makes them.

use super::deliver::AttemptOutcome;
use super::Engine;
use crate::model::{EventId, Health};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;

/// The length of one rate-limit window.
pub const LOG_WINDOW: Duration = Duration::from_secs(60);
/// Attempt-driven lines logged per destination per window before the rest are
/// only counted.
pub const LINES_PER_WINDOW: u32 = 10;

/// Why a destination was disabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisableCause {
    /// Attempt `attempt` of `event` ended with this non-retriable outcome (a
    /// 4xx or a redirect loop under `on_client_error = "disable"`).
    Attempt {
        outcome: AttemptOutcome,
        event: EventId,
        attempt: u32,
    },
    /// An operator disabled it (API, TUI or CLI).
    Operator,
}

/// One change of a destination the journal hears about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestinationChange {
    /// An attempt failed while the destination was healthy.
    EnteredRetry {
        failure: AttemptOutcome,
        /// The HTTP client's words for a failure without a response.
        error: Option<String>,
    },
    /// An attempt succeeded while the destination was in retry.
    Recovered,
    /// After recovering, its retrying events were made due now.
    BacklogFlushed {
        events: usize,
    },
    Disabled(DisableCause),
    /// An operator's actions; each carries the health the destination has
    /// afterwards (resuming a disabled destination leaves it disabled).
    Enabled {
        health: Health,
    },
    Paused {
        health: Health,
    },
    Resumed {
        health: Health,
    },
    /// A 429 took one concurrent attempt away.
    ConcurrencyLowered {
        from: u32,
        to: u32,
    },
    /// A streak of successes gave one back; `to == max` means fully restored.
    ConcurrencyRaised {
        from: u32,
        to: u32,
        max: u32,
    },
}

impl DestinationChange {
    /// Whether attempts cause it (and so it can come in storms): only those
    /// pass the limiter.
    fn is_attempt_driven(&self) -> bool {
        matches!(
            self,
            DestinationChange::EnteredRetry { .. }
                | DestinationChange::Recovered
                | DestinationChange::BacklogFlushed { .. }
                | DestinationChange::Disabled(DisableCause::Attempt { .. })
                | DestinationChange::ConcurrencyLowered { .. }
                | DestinationChange::ConcurrencyRaised { .. }
        )
    }

    /// Writes the line: structured fields plus a message a person can read.
    fn emit(&self, destination: &str) {
        match self {
            DestinationChange::EnteredRetry { failure, error } => match error {
                Some(error) => tracing::info!(
                    destination,
                    health = "in_retry",
                    failure = %failure,
                    %error,
                    "destination {destination} is in retry: an attempt failed ({failure}: {error})"
                ),
                None => tracing::info!(
                    destination,
                    health = "in_retry",
                    failure = %failure,
                    "destination {destination} is in retry: an attempt failed ({failure})"
                ),
            },
            DestinationChange::Recovered => tracing::info!(
                destination,
                health = "healthy",
                "destination {destination} recovered: an attempt succeeded"
            ),
            DestinationChange::BacklogFlushed { events } => tracing::info!(
                destination,
                events,
                "destination {destination} recovered; flushing its backlog ({} due now)",
                count_of_events(*events)
            ),
            DestinationChange::Disabled(DisableCause::Attempt {
                outcome: AttemptOutcome::Response(status),
                event,
                ..
            }) => tracing::info!(
                destination,
                health = "disabled",
                status,
                event = %event,
                cause = "client_error",
                "destination {destination} disabled: it answered {status} (on_client_error = \"disable\"); enable it to resume deliveries"
            ),
            DestinationChange::Disabled(DisableCause::Attempt {
                outcome: AttemptOutcome::TooManyRedirects,
                event,
                ..
            }) => tracing::info!(
                destination,
                health = "disabled",
                event = %event,
                cause = "too_many_redirects",
                "destination {destination} disabled: it redirected too many times (on_client_error = \"disable\"); enable it to resume deliveries"
            ),
            DestinationChange::Disabled(DisableCause::Attempt { outcome, event, .. }) => {
                tracing::info!(
                    destination,
                    health = "disabled",
                    failure = %outcome,
                    event = %event,
                    cause = "attempt",
                    "destination {destination} disabled: an attempt failed ({outcome}); enable it to resume deliveries"
                )
            }
            DestinationChange::Disabled(DisableCause::Operator) => tracing::info!(
                destination,
                health = "disabled",
                cause = "operator",
                "destination {destination} disabled by an operator"
            ),
            DestinationChange::Enabled { health }
            | DestinationChange::Paused { health }
            | DestinationChange::Resumed { health } => {
                let done = match self {
                    DestinationChange::Enabled { .. } => "enabled",
                    DestinationChange::Paused { .. } => "paused",
                    _ => "resumed",
                };
                tracing::info!(
                    destination,
                    health = health_field(*health),
                    cause = "operator",
                    "destination {destination} {done}"
                )
            }
            DestinationChange::ConcurrencyLowered { from, to } => tracing::info!(
                destination,
                concurrency_from = from,
                concurrency_to = to,
                "destination {destination} answered 429: concurrency lowered from {from} to {to}"
            ),
            DestinationChange::ConcurrencyRaised { from, to, max } if to == max => tracing::info!(
                destination,
                concurrency_from = from,
                concurrency_to = to,
                "destination {destination}: concurrency restored to {to} after a run of successes"
            ),
            DestinationChange::ConcurrencyRaised { from, to, max } => tracing::info!(
                destination,
                concurrency_from = from,
                concurrency_to = to,
                concurrency_max = max,
                "destination {destination}: concurrency raised from {from} to {to} (of {max}) after a run of successes"
            ),
        }
    }
}

/// "1 event", "3 events".
fn count_of_events(events: usize) -> String {
    match events {
        1 => "1 event".to_string(),
        n => format!("{n} events"),
    }
}

/// A health as the `health` field of a line: one word, as the metrics' `state`
/// label spells it.
fn health_field(health: Health) -> &'static str {
    match health {
        Health::Healthy => "healthy",
        Health::InRetry => "in_retry",
        Health::Degraded => "degraded",
        Health::Disabled => "disabled",
        Health::Paused => "paused",
    }
}

/// Lines held back for one destination in a window that has ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppressed {
    pub key: String,
    pub lines: u64,
}

/// One key's current window.
#[derive(Clone, Debug)]
struct Window {
    started: DateTime<Utc>,
    logged: u32,
    suppressed: u64,
}

/// A per-key fixed-window line limiter. Pure: the caller passes `now` (the
/// engine's clock), so it is tested without waiting.
#[derive(Debug)]
pub struct LineLimiter {
    limit: u32,
    window: chrono::Duration,
    windows: HashMap<String, Window>,
}

impl LineLimiter {
    pub fn new(limit: u32, window: Duration) -> LineLimiter {
        LineLimiter {
            limit,
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX),
            windows: HashMap::new(),
        }
    }

    /// Whether a line for `key` may be written at `now`. A window that ended
    /// with lines suppressed hands them back first (the caller logs the
    /// summary before the new line), so a summary is never lost even if the
    /// periodic [`LineLimiter::take_ended`] has not run yet.
    pub fn admit(&mut self, key: &str, now: DateTime<Utc>) -> (Option<Suppressed>, bool) {
        let mut ended = None;
        let window = self.windows.entry(key.to_string()).or_insert(Window {
            started: now,
            logged: 0,
            suppressed: 0,
        });
        if now >= window.started + self.window {
            if window.suppressed > 0 {
                ended = Some(Suppressed {
                    key: key.to_string(),
                    lines: window.suppressed,
                });
            }
            *window = Window {
                started: now,
                logged: 0,
                suppressed: 0,
            };
        }
        let admitted = window.logged < self.limit;
        if admitted {
            window.logged += 1;
        } else {
            window.suppressed += 1;
        }
        (ended, admitted)
    }

    /// The summaries of every window that has ended by `now` with lines
    /// suppressed; those windows are forgotten (the next line opens a new one).
    pub fn take_ended(&mut self, now: DateTime<Utc>) -> Vec<Suppressed> {
        let window = self.window;
        let mut ended = Vec::new();
        self.windows.retain(|key, w| {
            if now < w.started + window {
                return true;
            }
            if w.suppressed > 0 {
                ended.push(Suppressed {
                    key: key.clone(),
                    lines: w.suppressed,
                });
            }
            false
        });
        ended.sort_by(|a, b| a.key.cmp(&b.key));
        ended
    }

    /// Every suppressed count, ended or not (at shutdown).
    pub fn take_all(&mut self) -> Vec<Suppressed> {
        let mut all: Vec<Suppressed> = self
            .windows
            .drain()
            .filter(|(_, w)| w.suppressed > 0)
            .map(|(key, w)| Suppressed {
                key,
                lines: w.suppressed,
            })
            .collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }

    /// When the earliest window holding suppressed lines ends, if any does.
    pub fn next_summary_at(&self) -> Option<DateTime<Utc>> {
        self.windows
            .values()
            .filter(|w| w.suppressed > 0)
            .map(|w| w.started + self.window)
            .min()
    }
}

fn emit_suppressed(summary: &Suppressed) {
    let destination = summary.key.as_str();
    let lines = summary.lines;
    tracing::info!(
        destination,
        suppressed = lines,
        "destination {destination}: suppressed {lines} similar lines in the last {}s",
        LOG_WINDOW.as_secs()
    );
}

impl Engine {
    /// Logs a change of `destination`, through the limiter when attempts cause it.
    pub(super) fn log_destination_change(&self, destination: &str, change: DestinationChange) {
        // Every change the journal hears of may be a notice too (stored, and
        // alerted): this is the one place both learn of it.
        self.notice_destination_change(destination, &change);
        if !change.is_attempt_driven() {
            change.emit(destination);
            return;
        }
        let now = self.inner.clock.now();
        let (ended, admitted) = self
            .inner
            .log_limiter
            .lock()
            .expect("log limiter lock")
            .admit(destination, now);
        if let Some(summary) = ended {
            emit_suppressed(&summary);
        }
        if admitted {
            change.emit(destination);
        } else {
            // The summary task sleeps until this window ends.
            self.inner.log_summary_due.notify_one();
        }
    }
}

/// Writes the "suppressed K similar lines" summaries as windows end, and what
/// is left at shutdown.
pub(super) async fn summaries(engine: Engine) {
    loop {
        let next = {
            let mut limiter = engine.inner.log_limiter.lock().expect("log limiter lock");
            for summary in limiter.take_ended(engine.inner.clock.now()) {
                emit_suppressed(&summary);
            }
            limiter.next_summary_at()
        };
        let sleep = async {
            match next {
                Some(at) => engine.inner.clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = engine.inner.log_summary_due.notified() => {}
            _ = engine.inner.shutdown.cancelled() => {
                let left = engine.inner.log_limiter.lock().expect("log limiter lock").take_all();
                for summary in left {
                    emit_suppressed(&summary);
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn one_event_is_singular() {
        assert_eq!(count_of_events(1), "1 event");
        assert_eq!(count_of_events(0), "0 events");
        assert_eq!(count_of_events(2), "2 events");
    }

    #[test]
    fn admits_up_to_the_limit_then_counts() {
        let mut limiter = LineLimiter::new(3, Duration::from_secs(60));
        let admitted: Vec<bool> = (0..5).map(|i| limiter.admit("a", at(i)).1).collect();
        assert_eq!(admitted, [true, true, true, false, false]);
        assert_eq!(limiter.next_summary_at(), Some(at(60)));
        assert!(limiter.take_ended(at(59)).is_empty());
        assert_eq!(
            limiter.take_ended(at(60)),
            vec![Suppressed {
                key: "a".into(),
                lines: 2
            }]
        );
        assert_eq!(limiter.next_summary_at(), None);
        // A new window admits again.
        assert!(limiter.admit("a", at(61)).1);
    }

    #[test]
    fn keys_have_their_own_windows() {
        let mut limiter = LineLimiter::new(1, Duration::from_secs(60));
        assert!(limiter.admit("a", at(0)).1);
        assert!(!limiter.admit("a", at(1)).1);
        assert!(limiter.admit("b", at(1)).1);
        assert_eq!(limiter.next_summary_at(), Some(at(60)));
    }

    #[test]
    fn a_window_without_suppressions_ends_silently() {
        let mut limiter = LineLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.admit("a", at(0)).1);
        assert_eq!(limiter.next_summary_at(), None);
        assert!(limiter.take_ended(at(120)).is_empty());
        assert_eq!(limiter.admit("a", at(120)), (None, true));
    }

    #[test]
    fn the_next_line_after_a_window_hands_back_its_summary() {
        let mut limiter = LineLimiter::new(1, Duration::from_secs(60));
        limiter.admit("a", at(0));
        limiter.admit("a", at(1));
        limiter.admit("a", at(2));
        let (ended, admitted) = limiter.admit("a", at(90));
        assert_eq!(
            ended,
            Some(Suppressed {
                key: "a".into(),
                lines: 2
            })
        );
        assert!(admitted);
        // Handed back once only.
        assert!(limiter.take_ended(at(200)).is_empty());
    }

    #[test]
    fn a_storm_logs_a_bounded_number_of_lines() {
        let mut limiter = LineLimiter::new(LINES_PER_WINDOW, LOG_WINDOW);
        let logged = (0..10_000)
            .filter(|i| limiter.admit("a", at(i / 100)).1)
            .count();
        // 10,000 lines over 100 s: two windows' worth.
        assert_eq!(logged, 2 * LINES_PER_WINDOW as usize);
    }

    #[test]
    fn take_all_reports_open_windows() {
        let mut limiter = LineLimiter::new(1, Duration::from_secs(60));
        limiter.admit("b", at(0));
        limiter.admit("b", at(0));
        limiter.admit("a", at(0));
        assert_eq!(
            limiter.take_all(),
            vec![Suppressed {
                key: "b".into(),
                lines: 1
            }]
        );
    }
}

//! An event's life as named transitions. Every change of an event's state,
//! reason or schedule is one [`EventTransition`] applied by
//! [`EventRecord::apply`], which checks that the event is in a state the
//! transition may start from; the store applies it inside its transaction.
//!
//! Legality (rows: the event's state; `ok` changes it, `keep` is accepted and
//! leaves the state alone, `—` is refused with a [`TransitionError`]):
//!
//! | state \ transition | AttemptStarted auto | AttemptStarted manual/bulk | AttemptRecorded auto | AttemptRecorded manual/bulk | Muted | Requeued | Requeued resend | Expired | Flushed | DestinationDeleted |
//! |---|---|---|---|---|---|---|---|---|---|---|
//! | pending   | ok | ok | ok (verdict) | ok (verdict) | ok → cancelled | ok → pending | ok → pending | ok → failed | — | ok → cancelled |
//! | retrying  | ok | ok | ok (verdict) | ok (verdict) | ok → cancelled | ok → pending | ok → pending | ok → failed | ok (due now) | ok → cancelled |
//! | delivered | —  | ok | keep (attempt noted) | ok (verdict) | — | — | ok → pending (trigger `resend`) | — | — | — |
//! | failed    | —  | ok | keep (attempt noted) | ok (verdict) | — | ok → pending | ok → pending | — | — | — |
//! | cancelled | —  | ok | keep (attempt noted) | ok (verdict) | keep | ok → pending | ok → pending | — | — | — |
//! | skipped   | —  | —  | — | — | — | — | — | — | — | — |
//!
//! Why: an automatic attempt that finishes after an operator muted or requeued
//! the event must not undo that (its outcome is noted, the state stays). An
//! operator's retry works on any event that was ever meant to be delivered; a
//! skipped event is a duplicate and never is. Muting an event that is already
//! cancelled is accepted so that `PUT .../mute` stays idempotent; muting a
//! delivered or failed one has nothing to stop and is refused. Requeue replays a
//! finished event from the start of its cycle; for a delivered event that
//! means the receiver gets it a second time, so it takes an explicit resend,
//! whose first attempt is recorded with the trigger `resend`.

use super::{
    AttemptRecord, EventId, EventRecord, EventState, FailReason, Reason, Trigger, Verdict,
};
use chrono::{DateTime, Utc};
use std::fmt;

/// One named change of an event.
#[derive(Clone, Debug, PartialEq)]
pub enum EventTransition {
    /// An attempt with this trigger is about to be made. Changes nothing (a
    /// store write per attempt start would double the commits); it is the
    /// legality check before the request is sent.
    AttemptStarted { trigger: Trigger },
    /// An attempt finished: `attempt` is appended to the history (numbered by
    /// the record) and the policy's `verdict` applied where the table allows.
    AttemptRecorded {
        attempt: AttemptRecord,
        verdict: Verdict,
    },
    /// An operator stopped the automatic retries.
    Muted,
    /// An operator restarted the automatic cycle at `now`. `resend`: the
    /// operator asked for a delivered event to be sent again (without it a
    /// delivered event is refused).
    Requeued { now: DateTime<Utc>, resend: bool },
    /// The cycle outlived `max_age`; `error` says so in words.
    Expired { error: String },
    /// The destination recovered: a retry scheduled after `now` is made due now.
    Flushed { now: DateTime<Utc> },
    /// The event's destination was deleted while the event was owed.
    DestinationDeleted,
}

/// A transition without its data, for messages and the legality table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransitionKind {
    AttemptStarted { operator: bool },
    AttemptRecorded { operator: bool },
    Muted,
    Requeued { resend: bool },
    Expired,
    Flushed,
    DestinationDeleted,
}

impl EventTransition {
    pub fn kind(&self) -> TransitionKind {
        match self {
            EventTransition::AttemptStarted { trigger } => TransitionKind::AttemptStarted {
                operator: trigger.is_operator(),
            },
            EventTransition::AttemptRecorded { attempt, .. } => TransitionKind::AttemptRecorded {
                operator: attempt.trigger.is_operator(),
            },
            EventTransition::Muted => TransitionKind::Muted,
            EventTransition::Requeued { resend, .. } => {
                TransitionKind::Requeued { resend: *resend }
            }
            EventTransition::Expired { .. } => TransitionKind::Expired,
            EventTransition::Flushed { .. } => TransitionKind::Flushed,
            EventTransition::DestinationDeleted => TransitionKind::DestinationDeleted,
        }
    }
}

impl TransitionKind {
    /// The states this transition may start from (the table above).
    pub fn sources(self) -> &'static [EventState] {
        use EventState::*;
        match self {
            TransitionKind::AttemptStarted { operator: false } => &[Pending, Retrying],
            TransitionKind::AttemptStarted { operator: true }
            | TransitionKind::AttemptRecorded { .. }
            | TransitionKind::Requeued { resend: true } => {
                &[Pending, Retrying, Delivered, Failed, Cancelled]
            }
            TransitionKind::Requeued { resend: false } => &[Pending, Retrying, Failed, Cancelled],
            TransitionKind::Muted => &[Pending, Retrying, Cancelled],
            TransitionKind::Expired | TransitionKind::DestinationDeleted => &[Pending, Retrying],
            TransitionKind::Flushed => &[Retrying],
        }
    }

    /// The states the transition does something to, for the refusal's words:
    /// its sources less those it only accepts to stay idempotent (muting a
    /// cancelled event).
    fn acts_on(self) -> &'static [EventState] {
        use EventState::*;
        match self {
            TransitionKind::Muted => &[Pending, Retrying],
            other => other.sources(),
        }
    }

    fn verb(self) -> &'static str {
        match self {
            TransitionKind::AttemptStarted { operator: false } => "attempted automatically",
            TransitionKind::AttemptStarted { operator: true } => "retried",
            TransitionKind::AttemptRecorded { .. } => "attempted",
            TransitionKind::Muted => "muted",
            TransitionKind::Requeued { .. } => "requeued",
            TransitionKind::Expired => "expired",
            TransitionKind::Flushed => "flushed",
            TransitionKind::DestinationDeleted => "cancelled by deleting their destination",
        }
    }
}

/// A transition the event's state does not allow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TransitionError {
    pub id: EventId,
    pub state: EventState,
    pub kind: TransitionKind,
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.state == EventState::Delivered
            && self.kind == (TransitionKind::Requeued { resend: false })
        {
            return write!(
                f,
                "event {} was delivered; requeue with resend=true to send it again",
                self.id
            );
        }
        let names: Vec<&str> = self.kind.acts_on().iter().map(|s| s.as_str()).collect();
        let list = match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        write!(
            f,
            "event {} is {}: only {list} events can be {}",
            self.id,
            self.state,
            self.kind.verb()
        )
    }
}

/// What an accepted transition did.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// Whether the record changed (false: accepted, nothing to do).
    pub changed: bool,
    /// The attempt to append to the history, numbered.
    pub attempt: Option<AttemptRecord>,
}

impl EventRecord {
    /// Applies `transition` if the event's state allows it (see the module's
    /// table); otherwise leaves the record untouched and says why not.
    pub fn apply(&mut self, transition: EventTransition) -> Result<Applied, TransitionError> {
        let kind = transition.kind();
        if !kind.sources().contains(&self.state) {
            return Err(TransitionError {
                id: self.id,
                state: self.state,
                kind,
            });
        }
        let before = self.clone();
        let mut attempt_out = None;
        match transition {
            EventTransition::AttemptStarted { .. } => {}
            EventTransition::AttemptRecorded {
                mut attempt,
                verdict,
            } => {
                self.record_attempt(&attempt, verdict);
                self.attempt_count += 1;
                attempt.n = self.attempt_count;
                attempt_out = Some(attempt);
            }
            EventTransition::Muted => {
                if self.state.awaits_delivery() {
                    self.finish(EventState::Cancelled, Reason::Muted);
                }
            }
            EventTransition::Requeued { now, resend } => {
                let trigger = if resend && self.state == EventState::Delivered {
                    Trigger::Resend
                } else {
                    Trigger::Requeue
                };
                self.state = EventState::Pending;
                self.automatic_retries = 0;
                self.cycle_started_at = now;
                self.next_attempt_at = Some(now);
                self.next_trigger = Some(trigger);
                self.reason = None;
                self.schedule_pinned = false;
            }
            EventTransition::Expired { error } => {
                self.finish(EventState::Failed, Reason::Failed(FailReason::Expired));
                self.last_error = Some(error);
            }
            EventTransition::Flushed { now } => {
                if !self.schedule_pinned && self.next_attempt_at.is_some_and(|at| at > now) {
                    self.next_attempt_at = Some(now);
                    self.next_trigger = Some(Trigger::Flush);
                }
            }
            EventTransition::DestinationDeleted => {
                self.finish(EventState::Cancelled, Reason::DestinationDeleted);
            }
        }
        if !self.state.awaits_delivery() {
            self.next_attempt_at = None;
            self.next_trigger = None;
            self.schedule_pinned = false;
        }
        Ok(Applied {
            changed: *self != before,
            attempt: attempt_out,
        })
    }

    /// Notes an attempt's outcome and applies the verdict where the table
    /// allows: an automatic attempt on an event the cycle is done with (muted,
    /// requeued-and-finished, delivered meanwhile) only notes its outcome.
    fn record_attempt(&mut self, attempt: &AttemptRecord, verdict: Verdict) {
        self.last_status = attempt.status;
        self.last_error = attempt.error.clone();
        if attempt.trigger.counts_as_retry() {
            self.automatic_retries += 1;
        }
        if !attempt.trigger.is_operator() && !self.state.awaits_delivery() {
            return;
        }
        match verdict {
            Verdict::Delivered => {
                self.state = EventState::Delivered;
                self.next_attempt_at = None;
                self.reason = None;
            }
            Verdict::Retry { at, pinned } => {
                if self.state.awaits_delivery() {
                    self.state = EventState::Retrying;
                    self.next_attempt_at = Some(at);
                    self.next_trigger = Some(Trigger::Automatic);
                    self.schedule_pinned = pinned;
                }
            }
            Verdict::Failed { reason } => self.finish(EventState::Failed, Reason::Failed(reason)),
            Verdict::Cancelled => self.finish(EventState::Cancelled, Reason::CancelledByRetryAfter),
            Verdict::Unchanged => {}
        }
    }

    fn finish(&mut self, state: EventState, reason: Reason) {
        self.state = state;
        self.next_attempt_at = None;
        self.reason = Some(reason);
    }

    /// Whether `transition` would be accepted, without changing anything.
    pub fn check(&self, transition: &EventTransition) -> Result<(), TransitionError> {
        let kind = transition.kind();
        if kind.sources().contains(&self.state) {
            Ok(())
        } else {
            Err(TransitionError {
                id: self.id,
                state: self.state,
                kind,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn record(state: EventState) -> EventRecord {
        EventRecord {
            id: ulid::Ulid(7),
            destination: "orders".into(),
            topic: "order.created".into(),
            content_type: None,
            created_at: at(0),
            state,
            attempt_count: 2,
            automatic_retries: 1,
            cycle_started_at: at(0),
            next_attempt_at: state.awaits_delivery().then(|| at(600)),
            next_trigger: Some(Trigger::Automatic),
            last_status: Some(503),
            last_error: None,
            reason: match state {
                EventState::Failed => Some(Reason::Failed(FailReason::RetriesExhausted)),
                EventState::Cancelled => Some(Reason::Muted),
                EventState::Skipped => Some(Reason::Duplicate),
                _ => None,
            },
            duplicate_of: None,
            idempotency_key: None,
            payload_bytes: 10,
            schedule_pinned: false,
        }
    }

    fn attempt(trigger: Trigger, status: u16) -> AttemptRecord {
        AttemptRecord {
            n: 0,
            at: at(100),
            trigger,
            status: Some(status),
            error: None,
            duration_ms: 5,
            response_excerpt: String::new(),
            decision: "words".into(),
        }
    }

    /// What a transition did, in a form the table can spell out.
    #[derive(Debug, PartialEq)]
    enum Outcome {
        Refused,
        /// Accepted; the state afterwards, and the reason.
        To(EventState, Option<Reason>),
    }
    use EventState::*;
    use Outcome::*;

    fn run(state: EventState, transition: EventTransition) -> Outcome {
        let mut event = record(state);
        let checked = event.check(&transition);
        match event.apply(transition) {
            Ok(_) => {
                assert!(checked.is_ok());
                To(event.state, event.reason)
            }
            Err(e) => {
                assert_eq!(checked, Err(e.clone()));
                assert_eq!(event, record(state), "a refusal leaves the record alone");
                Refused
            }
        }
    }

    #[test]
    fn every_state_and_transition_pair() {
        let transitions: Vec<(&str, EventTransition)> = vec![
            (
                "start auto",
                EventTransition::AttemptStarted {
                    trigger: Trigger::Automatic,
                },
            ),
            (
                "start manual",
                EventTransition::AttemptStarted {
                    trigger: Trigger::Manual,
                },
            ),
            (
                "auto delivered",
                EventTransition::AttemptRecorded {
                    attempt: attempt(Trigger::Automatic, 200),
                    verdict: Verdict::Delivered,
                },
            ),
            (
                "auto retry",
                EventTransition::AttemptRecorded {
                    attempt: attempt(Trigger::Automatic, 503),
                    verdict: Verdict::Retry {
                        at: at(900),
                        pinned: false,
                    },
                },
            ),
            (
                "manual delivered",
                EventTransition::AttemptRecorded {
                    attempt: attempt(Trigger::Manual, 200),
                    verdict: Verdict::Delivered,
                },
            ),
            (
                "bulk unchanged",
                EventTransition::AttemptRecorded {
                    attempt: attempt(Trigger::Bulk, 503),
                    verdict: Verdict::Unchanged,
                },
            ),
            ("mute", EventTransition::Muted),
            (
                "requeue",
                EventTransition::Requeued {
                    now: at(50),
                    resend: false,
                },
            ),
            (
                "resend",
                EventTransition::Requeued {
                    now: at(50),
                    resend: true,
                },
            ),
            (
                "expire",
                EventTransition::Expired {
                    error: "expired after 3d".into(),
                },
            ),
            ("flush", EventTransition::Flushed { now: at(50) }),
        ];
        let same = |state: EventState| To(state, record(state).reason);
        let muted = || To(Cancelled, Some(Reason::Muted));
        let pending = || To(Pending, None);
        let expired = || To(Failed, Some(Reason::Failed(FailReason::Expired)));
        let delivered = || To(Delivered, None);
        let retrying = || To(Retrying, None);
        // Columns in the order of `transitions`.
        let table: Vec<(EventState, Vec<Outcome>)> = vec![
            (
                Pending,
                vec![
                    same(Pending),
                    same(Pending),
                    delivered(),
                    retrying(),
                    delivered(),
                    same(Pending),
                    muted(),
                    pending(),
                    pending(),
                    expired(),
                    Refused,
                ],
            ),
            (
                Retrying,
                vec![
                    same(Retrying),
                    same(Retrying),
                    delivered(),
                    retrying(),
                    delivered(),
                    same(Retrying),
                    muted(),
                    pending(),
                    pending(),
                    expired(),
                    same(Retrying),
                ],
            ),
            (
                Delivered,
                vec![
                    Refused,
                    same(Delivered),
                    same(Delivered),
                    same(Delivered),
                    delivered(),
                    same(Delivered),
                    Refused,
                    Refused,
                    pending(),
                    Refused,
                    Refused,
                ],
            ),
            (
                Failed,
                vec![
                    Refused,
                    same(Failed),
                    same(Failed),
                    same(Failed),
                    delivered(),
                    same(Failed),
                    Refused,
                    pending(),
                    pending(),
                    Refused,
                    Refused,
                ],
            ),
            (
                Cancelled,
                vec![
                    Refused,
                    same(Cancelled),
                    same(Cancelled),
                    same(Cancelled),
                    delivered(),
                    same(Cancelled),
                    muted(),
                    pending(),
                    pending(),
                    Refused,
                    Refused,
                ],
            ),
            (Skipped, (0..transitions.len()).map(|_| Refused).collect()),
        ];
        assert_eq!(table.len(), EventState::ALL.len());
        for (state, row) in table {
            assert_eq!(row.len(), transitions.len());
            for ((name, transition), expected) in transitions.iter().zip(row) {
                assert_eq!(run(state, transition.clone()), expected, "{state} × {name}");
            }
        }
    }

    #[test]
    fn recorded_attempts_are_numbered_and_counted() {
        let mut event = record(Retrying);
        let applied = event
            .apply(EventTransition::AttemptRecorded {
                attempt: attempt(Trigger::Automatic, 503),
                verdict: Verdict::Retry {
                    at: at(900),
                    pinned: false,
                },
            })
            .unwrap();
        assert_eq!(applied.attempt.unwrap().n, 3);
        assert_eq!((event.attempt_count, event.automatic_retries), (3, 2));
        assert_eq!(event.next_attempt_at, Some(at(900)));

        // A manual attempt on a muted event notes its outcome but is not a retry.
        let mut muted = record(Cancelled);
        muted
            .apply(EventTransition::AttemptRecorded {
                attempt: attempt(Trigger::Manual, 500),
                verdict: Verdict::Unchanged,
            })
            .unwrap();
        assert_eq!(muted.last_status, Some(500));
        assert_eq!(muted.automatic_retries, 1);
    }

    #[test]
    fn requeue_restarts_the_cycle_and_flush_only_brings_retries_forward() {
        let mut event = record(Failed);
        event
            .apply(EventTransition::Requeued {
                now: at(50),
                resend: false,
            })
            .unwrap();
        assert_eq!(event.automatic_retries, 0);
        assert_eq!(event.cycle_started_at, at(50));
        assert_eq!(event.next_attempt_at, Some(at(50)));
        assert_eq!(event.next_trigger, Some(Trigger::Requeue));

        let mut waiting = record(Retrying);
        let applied = waiting
            .apply(EventTransition::Flushed { now: at(50) })
            .unwrap();
        assert!(applied.changed);
        assert_eq!(waiting.next_attempt_at, Some(at(50)));
        assert_eq!(waiting.next_trigger, Some(Trigger::Flush));
        let again = waiting
            .apply(EventTransition::Flushed { now: at(50) })
            .unwrap();
        assert!(!again.changed, "already due: nothing to move");
    }

    #[test]
    fn a_failed_flush_attempt_pins_its_schedule_until_its_next_automatic_try() {
        let mut event = record(Retrying);
        event
            .apply(EventTransition::Flushed { now: at(50) })
            .unwrap();
        // The flush attempt fails: back to its own schedule, pinned there.
        event
            .apply(EventTransition::AttemptRecorded {
                attempt: attempt(Trigger::Flush, 500),
                verdict: Verdict::Retry {
                    at: at(900),
                    pinned: true,
                },
            })
            .unwrap();
        assert_eq!(event.automatic_retries, 1, "a flush attempt is not a retry");
        let next_flush = event
            .apply(EventTransition::Flushed { now: at(60) })
            .unwrap();
        assert!(!next_flush.changed, "a pinned schedule is not flushed");
        assert_eq!(event.next_attempt_at, Some(at(900)));
        // Its own automatic retry fails without Retry-After: flushable again.
        event
            .apply(EventTransition::AttemptRecorded {
                attempt: attempt(Trigger::Automatic, 500),
                verdict: Verdict::Retry {
                    at: at(2000),
                    pinned: false,
                },
            })
            .unwrap();
        assert!(
            event
                .apply(EventTransition::Flushed { now: at(950) })
                .unwrap()
                .changed
        );
        assert_eq!(event.next_attempt_at, Some(at(950)));
    }

    #[test]
    fn refusals_say_what_is_allowed() {
        let id = ulid::Ulid(7);
        for state in [Delivered, Failed, Skipped] {
            let err = record(state).apply(EventTransition::Muted).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("event {id} is {state}: only pending or retrying events can be muted")
            );
        }
        let err = record(Skipped)
            .apply(EventTransition::Requeued {
                now: at(1),
                resend: true,
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("event {id} is skipped: only pending, retrying, delivered, failed or cancelled events can be requeued")
        );
        let err = record(Delivered)
            .apply(EventTransition::Requeued {
                now: at(1),
                resend: false,
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("event {id} was delivered; requeue with resend=true to send it again")
        );
    }

    #[test]
    fn a_resend_restarts_a_delivered_event_with_its_own_trigger() {
        let mut event = record(Delivered);
        event
            .apply(EventTransition::Requeued {
                now: at(50),
                resend: true,
            })
            .unwrap();
        assert_eq!(event.state, Pending);
        assert_eq!(event.next_attempt_at, Some(at(50)));
        assert_eq!(event.next_trigger, Some(Trigger::Resend));
        assert_eq!(event.automatic_retries, 0);
        // The resend's attempt is the cycle's first, not an operator's one-off.
        event
            .check(&EventTransition::AttemptStarted {
                trigger: Trigger::Resend,
            })
            .unwrap();
        event
            .apply(EventTransition::AttemptRecorded {
                attempt: attempt(Trigger::Resend, 200),
                verdict: Verdict::Delivered,
            })
            .unwrap();
        assert_eq!(event.state, Delivered);
        assert_eq!(event.automatic_retries, 0);

        // `resend` on an event that was not delivered is a plain requeue.
        let mut failed = record(Failed);
        failed
            .apply(EventTransition::Requeued {
                now: at(50),
                resend: true,
            })
            .unwrap();
        assert_eq!(failed.next_trigger, Some(Trigger::Requeue));
    }
}

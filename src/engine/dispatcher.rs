//! One dispatcher per destination: claim what is due (up to the destination's
//! current concurrency), run each attempt as its own task, record the outcome and
//! the policy's decision in one transaction, then look again. When nothing is due
//! it sleeps until the earliest due time or until something wakes it, so an idle
//! engine does no work.

use super::deliver::AttemptOutcome;
use super::ops_log::{DestinationChange, DisableCause};
use super::{deliver, Change, Destination, Engine, EngineError, CONCURRENCY_RECOVERY_STREAK};
use crate::model::{AttemptRecord, EventId, EventRecord, EventState, EventTransition, Trigger};
use crate::policy::{self, Decision, History};
use crate::store::{StoreError, Transitioned};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// After a store error the dispatcher waits this long before reading again
/// (and a bulk job before retrying the ids whose attempt met one).
pub(super) const STORE_ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// Events moved to "due now" per transaction when a destination recovers.
const FLUSH_CHUNK: usize = 1000;

/// An event's record and payload, as read for its delivery.
use super::handoff::{ForDelivery, Fresh};

/// What one look at a destination's slice of the due index found.
enum Due {
    /// Claimable now, each with its record and payload as read for delivery
    /// (`None`: gone since it was indexed); and, when every event due now was
    /// read, the earliest due time after them (`Some(None)`: none), read in the
    /// same call so the dispatcher need not look again to know it.
    Now(
        Vec<(EventId, Option<ForDelivery>)>,
        Option<Option<chrono::DateTime<chrono::Utc>>>,
    ),
    /// Nothing due now; the earliest due time, if any.
    Later(Option<chrono::DateTime<chrono::Utc>>),
}

/// Payload bytes the dispatcher may hold for events claimed ahead of a free
/// slot: enough to keep a busy destination's slots fed without a store read
/// per attempt, small enough that large payloads do not pile up in memory.
const AHEAD_PAYLOAD_BUDGET: usize = 1 << 20;

/// Reads what is due, and what each due event needs for its attempt, in one
/// blocking call: one hop to the blocking pool per batch instead of per read.
/// Reads `free` events, then up to `ahead` more while their payloads fit
/// [`AHEAD_PAYLOAD_BUDGET`], for the slots that free up next.
async fn look(
    engine: &Engine,
    destination: &Destination,
    now: chrono::DateTime<chrono::Utc>,
    free: usize,
    ahead: usize,
    in_flight: crate::model::EventIdSet,
) -> Result<Due, crate::engine::EngineError> {
    let id = destination.id.clone();
    engine
        .read_store(move |store| {
            let wanted = free + ahead;
            let due = store.due(&id, now, wanted, &in_flight)?;
            if due.is_empty() {
                return Ok(Due::Later(store.next_due(&id, &in_flight)?));
            }
            let mut claimed = Vec::with_capacity(due.len());
            let mut ahead_bytes = 0usize;
            let mut read_all = due.len() < wanted;
            for event in due.iter().copied() {
                if claimed.len() >= free && ahead_bytes >= AHEAD_PAYLOAD_BUDGET {
                    read_all = false;
                    break;
                }
                match store.get_for_delivery(event) {
                    Ok(found) => {
                        if claimed.len() >= free {
                            ahead_bytes += found.as_ref().map_or(0, |(_, payload)| payload.len());
                        }
                        claimed.push((event, found));
                    }
                    // Left unclaimed: still in the index, so looked at again.
                    Err(e) => {
                        read_all = false;
                        tracing::warn!(event = %event, error = %e, "cannot read event for delivery")
                    }
                }
            }
            let next = if read_all {
                let mut claimed_or_in_flight = in_flight;
                claimed_or_in_flight.extend(due.iter().copied());
                Some(store.next_due(&id, &claimed_or_in_flight)?)
            } else {
                None
            };
            Ok(Due::Now(claimed, next))
        })
        .await
}

/// Events the dispatcher read from the due index ahead of a free slot, so that
/// a slot freeing up under a backlog starts the next attempt without a store
/// read. Valid only while the destination's claims epoch has not moved since
/// they were read (see [`Destination::forget_claims_ahead`]).
#[derive(Default)]
struct ClaimedAhead {
    events: std::collections::VecDeque<(EventId, Option<ForDelivery>)>,
    epoch: u64,
}

impl ClaimedAhead {
    /// Starts up to `free` of the events claimed ahead; answers how many
    /// slots are still free. Events already in flight (a manual attempt
    /// started meanwhile) are dropped: they stay in the due index.
    fn start(&mut self, engine: &Engine, destination: &Arc<Destination>, mut free: usize) -> usize {
        if self.epoch != destination.claims_epoch() {
            self.events.clear();
        }
        while free > 0 {
            let Some((id, found)) = self.events.pop_front() else {
                break;
            };
            if destination
                .in_flight
                .lock()
                .expect("in-flight lock")
                .contains(id)
            {
                continue;
            }
            start_attempt(engine, destination, id, None, Some(found));
            free -= 1;
        }
        free
    }
}

pub(super) async fn run(engine: Engine, destination: Arc<Destination>) {
    let mut ahead = ClaimedAhead::default();
    // The last look failed to read the store (logged once until one succeeds).
    let mut reads_failing = false;
    loop {
        if engine.is_shutting_down() {
            return;
        }
        let runtime = destination.runtime();
        let mut wake_at = None;
        if runtime.disabled || runtime.paused {
            ahead.events.clear();
            destination.handoff().close();
        } else {
            // Set before the look, so that an attempt finishing during it wakes
            // the dispatcher again; cleared below only when nothing due now is
            // left waiting for a slot.
            destination.waiting_for_slot.store(true, Ordering::SeqCst);
            let concurrency = destination.current_concurrency() as usize;
            let in_flight_count = destination.attempts_in_flight();
            let free = ahead.start(
                &engine,
                &destination,
                concurrency.saturating_sub(in_flight_count),
            );
            let look_stamp = if free > 0 {
                match destination.handoff().take(free) {
                    Fresh::Known {
                        events,
                        more_held,
                        next_due,
                    } => {
                        // Handed over by ingest: nothing else is due, so no look.
                        for (id, found) in events {
                            if !destination
                                .in_flight
                                .lock()
                                .expect("in-flight lock")
                                .contains(id)
                            {
                                start_attempt(&engine, &destination, id, None, Some(Some(found)));
                            }
                        }
                        if !more_held {
                            destination.waiting_for_slot.store(false, Ordering::SeqCst);
                        }
                        wake_at = next_due;
                        None
                    }
                    Fresh::Unknown { stamp } => Some(stamp),
                }
            } else {
                None
            };
            if let Some(stamp) = look_stamp {
                // Nothing is claimed ahead any more (`start` used it all).
                let epoch = destination.claims_epoch();
                let in_flight = destination.in_flight_snapshot();
                let now = engine.inner.clock.now();
                let looked = look(&engine, &destination, now, free, concurrency, in_flight).await;
                if looked.is_ok() && reads_failing {
                    reads_failing = false;
                    tracing::info!(destination = %destination.id, "reads the due index again");
                }
                match looked {
                    Ok(Due::Now(claimed, next)) if !claimed.is_empty() => {
                        if engine.is_shutting_down() {
                            return;
                        }
                        ahead.events.extend(claimed);
                        ahead.epoch = epoch;
                        ahead.start(&engine, &destination, free);
                        if ahead.events.is_empty() {
                            if let Some(next) = next {
                                destination.waiting_for_slot.store(false, Ordering::SeqCst);
                                // Every due event is started and the next due
                                // time known: ingest may hand new ones over.
                                destination.handoff().open_if_unchanged(stamp, next);
                            }
                        }
                        if let Some(next) = next {
                            // Everything due now is claimed and the next due
                            // time is known: sleep until it (or a wake) instead
                            // of looking again at once.
                            wake_at = next;
                        } else if ahead.events.is_empty() {
                            // More may be due: give the attempts (and a
                            // shutting-down runtime) a turn before looking
                            // again; without an await here this loop could
                            // spin if spawned tasks never get to run.
                            tokio::task::yield_now().await;
                            continue;
                        }
                        // Else every slot is busy and events wait ahead: a
                        // finished attempt wakes the dispatcher.
                    }
                    Ok(Due::Now(..)) => {
                        // Every due event was unreadable: back off.
                        wake_at = Some(
                            now + chrono::Duration::from_std(STORE_ERROR_BACKOFF).expect("small"),
                        );
                    }
                    Ok(Due::Later(next)) => {
                        destination.waiting_for_slot.store(false, Ordering::SeqCst);
                        destination.handoff().open_if_unchanged(stamp, next);
                        wake_at = next;
                    }
                    Err(e) => {
                        // Once per outage, not once per back-off: a store
                        // that is down says so in its own notice.
                        if !reads_failing {
                            tracing::warn!(destination = %destination.id, error = %e, "cannot read the due index; trying again every few seconds");
                            reads_failing = true;
                        } else {
                            tracing::debug!(destination = %destination.id, error = %e, "cannot read the due index");
                        }
                        wake_at = Some(
                            now + chrono::Duration::from_std(STORE_ERROR_BACKOFF).expect("small"),
                        );
                    }
                }
            }
        }
        let sleep = async {
            match wake_at {
                Some(at) => engine.inner.clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = destination.wake.notified() => {}
            // Something came due that ingest did not hand over: look.
            _ = sleep => destination.handoff().close(),
            // The engine stopping, or this destination deleted.
            _ = destination.stop.cancelled() => return,
        }
    }
}

/// Marks the event in flight and runs one attempt in its own task on the
/// engine's tracker. `trigger` overrides the one the record schedules (manual
/// and bulk retries).
pub(super) fn spawn_attempt(
    engine: &Engine,
    destination: &Arc<Destination>,
    id: EventId,
    trigger: Option<Trigger>,
) -> tokio::task::JoinHandle<Result<Attempted, AttemptError>> {
    let handle = start_attempt(engine, destination, id, trigger, None);
    // The dispatcher may hold this event's record, read ahead: it must not
    // start it too (it is in flight now, so a new look skips it).
    destination.forget_claims_ahead();
    handle
}

/// [`spawn_attempt`], with the record and payload already read when the
/// dispatcher claimed the event (`preread`), else read by the attempt.
fn start_attempt(
    engine: &Engine,
    destination: &Arc<Destination>,
    id: EventId,
    trigger: Option<Trigger>,
    preread: Option<Option<ForDelivery>>,
) -> tokio::task::JoinHandle<Result<Attempted, AttemptError>> {
    destination
        .in_flight
        .lock()
        .expect("in-flight lock")
        .insert(id);
    let mut guard = InFlight {
        destination: destination.clone(),
        id,
        left_nothing_due: false,
    };
    let engine = engine.clone();
    engine.clone().spawn(async move {
        let result = attempt(&engine, &guard.destination, id, trigger, preread).await;
        guard.left_nothing_due = matches!(
            &result,
            Ok(Attempted::Made(summary)) if !summary.state.awaits_delivery()
        );
        drop(guard);
        result
    })
}

/// Releases an attempt's claim however the attempt ends (even by panic), so the
/// event can be claimed again and `settled` sees the attempt gone.
struct InFlight {
    destination: Arc<Destination>,
    id: EventId,
    /// The attempt was recorded and left its event finished, so nothing new is
    /// due because of it: the dispatcher needs waking only if due events wait
    /// for this slot. False for a retry scheduled, an attempt not recorded, a
    /// panic: the dispatcher looks again.
    left_nothing_due: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.destination
            .in_flight
            .lock()
            .expect("in-flight lock")
            .remove(self.id);
        if !self.left_nothing_due {
            // A retry scheduled (or an attempt not recorded): the due index
            // changed behind the dispatcher's back.
            self.destination.look_again();
        } else if self.destination.waiting_for_slot.load(Ordering::SeqCst) {
            self.destination.wake.notify_one();
        }
        self.destination.slot_freed.notify_waiters();
    }
}

/// What an attempt came to, for callers that wait on it (manual and bulk retry).
#[derive(Clone, Debug)]
pub struct AttemptSummary {
    pub success: bool,
    pub state: EventState,
    pub decision: String,
}

/// What became of a call for an attempt that met no store error.
#[derive(Clone, Debug)]
pub(super) enum Attempted {
    /// Made and recorded.
    Made(AttemptSummary),
    /// Not made, or made and then found nothing to record it on: nothing is
    /// owed now (the event is gone, changed since it was claimed, muted, a
    /// duplicate, or expired by this call).
    NothingOwed,
}

/// An attempt the store kept from being made or recorded. The event is
/// still owed: the caller tries again later (the dispatcher finds it due
/// again by itself).
#[derive(Debug, thiserror::Error)]
pub(super) enum AttemptError {
    #[error("cannot read the event for delivery: {0}")]
    Read(#[source] EngineError),
    /// Made (the receiver may have it) but not recorded: at-least-once.
    #[error("cannot record the attempt: {0}")]
    Record(#[source] StoreError),
}

async fn attempt(
    engine: &Engine,
    destination: &Arc<Destination>,
    id: EventId,
    trigger_override: Option<Trigger>,
    preread: Option<Option<ForDelivery>>,
) -> Result<Attempted, AttemptError> {
    let store = &engine.inner.store;
    let found = match preread {
        Some(found) => found,
        None => match engine
            .read_store(move |store| store.get_for_delivery(id))
            .await
        {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(event = %id, error = %e, "cannot read event for delivery");
                return Err(AttemptError::Read(e));
            }
        },
    };
    let Some((record, payload)) = found else {
        return Ok(Attempted::NothingOwed);
    };
    let now = engine.inner.clock.now();
    // A finished event has nothing scheduled: only an operator's trigger
    // (manual, bulk) attempts it, and the check below refuses the rest.
    let trigger = trigger_override
        .or(record.next_trigger)
        .unwrap_or(Trigger::Automatic);
    if record
        .check(&EventTransition::AttemptStarted { trigger })
        .is_err()
        || (trigger_override.is_none() && record.next_attempt_at.is_none_or(|at| at > now))
    {
        // Changed since it was claimed (muted, or rescheduled), or never to be
        // delivered (a duplicate in a bulk job): nothing is owed now.
        return Ok(Attempted::NothingOwed);
    }
    let config = destination.config();
    if trigger_override.is_none() && past_max_age(&record, &config.retry, now) {
        expire(engine, destination, id, &config.retry).await;
        return Ok(Attempted::NothingOwed);
    }
    let payload = bytes::Bytes::from(payload);
    let history = History {
        cycle_started_at: record.cycle_started_at,
        automatic_retries: record.automatic_retries,
        next_attempt_at: record.next_attempt_at,
    };
    let will_retry_after = policy::will_retry_after(&config.retry, &history, trigger, now);
    let event_id = id.to_string();
    let delivery = deliver::send(
        engine.client_for(destination),
        &config,
        record.content_type.as_deref(),
        payload,
        deliver::AttemptHeaders {
            event_id: &event_id,
            timestamp: now.timestamp(),
            attempt: record.attempt_count + 1,
            will_retry_after,
        },
        destination.reach,
    )
    .await;
    let finished = engine.inner.clock.now();
    let decision = policy::decide(
        &config.retry,
        &history,
        trigger,
        &delivery.outcome,
        finished,
    );
    engine
        .inner
        .metrics
        .record_attempt(&destination.id, delivery.kind, delivery.duration);
    destination.record_attempt(finished, delivery.kind, delivery.duration);
    let attempt = AttemptRecord {
        n: 0,
        at: now,
        trigger,
        status: delivery.status,
        error: delivery.error.clone(),
        duration_ms: delivery.duration.as_millis() as u64,
        response_excerpt: delivery.excerpt,
        decision: decision.words.clone(),
    };
    let recorded = store
        .transition(
            id,
            EventTransition::AttemptRecorded {
                attempt,
                verdict: decision.verdict,
            },
        )
        .await;
    let updated = match recorded {
        Ok(Transitioned::Applied { record, .. }) => record,
        Ok(Transitioned::NotFound) => return Ok(Attempted::NothingOwed),
        Ok(Transitioned::Refused(refusal)) => {
            // Only a skipped event refuses an attempt, and none is ever started.
            tracing::warn!(event = %id, %refusal, "attempt not recorded");
            return Ok(Attempted::NothingOwed);
        }
        Err(e) => {
            // Not recorded: the event stays due and is attempted again (at-least-once).
            tracing::error!(event = %id, error = %e, "cannot record attempt");
            return Err(AttemptError::Record(e));
        }
    };
    engine.publish(Change::Event {
        id,
        destination: destination.id.clone(),
        state: updated.state,
    });
    let failure = (!decision.success).then(|| DestinationChange::EnteredRetry {
        failure: delivery.kind,
        error: delivery.error.clone(),
    });
    after_attempt(
        engine,
        destination,
        (id, updated.attempt_count),
        &decision,
        delivery.kind,
        failure,
        config.retry.flush_on_recovery,
    )
    .await;
    Ok(Attempted::Made(AttemptSummary {
        success: decision.success,
        state: updated.state,
        decision: decision.words,
    }))
}

/// Updates the destination after an attempt: retry mode, 429 back-off and its
/// recovery, disabling on 4xx, and the flush of the backlog on recovery. Each
/// change is logged (`failure` is the line for entering retry, for a failed
/// attempt; `outcome` how the attempt ended).
async fn after_attempt(
    engine: &Engine,
    destination: &Arc<Destination>,
    (event, attempt): (EventId, u32),
    decision: &Decision,
    outcome: AttemptOutcome,
    failure: Option<DestinationChange>,
    flush_on_recovery: bool,
) {
    let max = destination.config().concurrency;
    // An attempt that disables the destination logs that alone, not also
    // "in retry": the destination is held, not retrying.
    let failure = failure.filter(|_| !decision.disable_destination);
    let mut changed = false;
    let mut recovered = false;
    let mut changes = Vec::new();
    {
        let mut runtime = destination
            .runtime
            .lock()
            .expect("destination runtime lock");
        if decision.success {
            if runtime.in_retry {
                runtime.in_retry = false;
                runtime.in_retry_since = None;
                runtime.in_retry_noticed = false;
                recovered = true;
                changed = true;
                changes.push(DestinationChange::Recovered);
            }
            if let Some(current) = runtime.concurrency {
                let streak = destination.success_streak.fetch_add(1, Ordering::SeqCst) + 1;
                if streak >= CONCURRENCY_RECOVERY_STREAK {
                    destination.success_streak.store(0, Ordering::SeqCst);
                    runtime.concurrency = (current + 1 < max).then_some(current + 1);
                    changed = true;
                    changes.push(DestinationChange::ConcurrencyRaised {
                        from: current.min(max),
                        to: (current + 1).min(max),
                        max,
                    });
                }
            }
        } else {
            destination.success_streak.store(0, Ordering::SeqCst);
            if !runtime.in_retry {
                runtime.in_retry = true;
                // A new retry episode: its "in retry too long" notice is due
                // `alerts.in_retry_after` from now.
                runtime.in_retry_since = Some(engine.inner.clock.now());
                runtime.in_retry_noticed = false;
                changed = true;
                changes.extend(failure);
            }
        }
        if decision.lower_concurrency {
            let current = runtime.concurrency.unwrap_or(max).min(max);
            let lowered = current.saturating_sub(1).max(1);
            if runtime.concurrency != Some(lowered) {
                runtime.concurrency = Some(lowered);
                changed = true;
                if lowered != current {
                    changes.push(DestinationChange::ConcurrencyLowered {
                        from: current,
                        to: lowered,
                    });
                }
            }
        }
        if decision.disable_destination && !runtime.disabled {
            runtime.disabled = true;
            changed = true;
            // The policy disables only for a 4xx answer or a redirect loop.
            let cause = matches!(
                outcome,
                AttemptOutcome::Response(_) | AttemptOutcome::TooManyRedirects
            )
            .then_some(DisableCause::Attempt {
                outcome,
                event,
                attempt,
            });
            changes.extend(cause.map(DestinationChange::Disabled));
        }
    }
    for change in changes {
        engine.log_destination_change(&destination.id, change);
    }
    if changed {
        if let Err(e) = engine.save_runtime(destination).await {
            tracing::warn!(destination = %destination.id, error = %e, "cannot save destination state");
        }
    }
    if recovered && flush_on_recovery {
        flush(engine, destination).await;
    }
}

/// Makes every retrying event of the destination due now, oldest first; the
/// dispatcher then works through them within the destination's concurrency.
async fn flush(engine: &Engine, destination: &Arc<Destination>) {
    let store = &engine.inner.store;
    let mut flushed = 0usize;
    let mut after = None;
    loop {
        let id_of_destination = destination.id.clone();
        let listed = engine
            .read_store(move |store| {
                store.ids_in_state(&id_of_destination, EventState::Retrying, after, FLUSH_CHUNK)
            })
            .await;
        let ids = match listed {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(destination = %destination.id, error = %e, "cannot list events to flush");
                return;
            }
        };
        let Some(last) = ids.last().copied() else {
            break;
        };
        let page_len = ids.len();
        after = Some(last);
        let now = engine.inner.clock.now();
        let transitions = ids
            .into_iter()
            .map(|id| (id, EventTransition::Flushed { now }))
            .collect();
        match store.transition_many(transitions).await {
            // Refused: no longer retrying (delivered or muted since listed).
            Ok(answers) => {
                flushed += answers
                    .iter()
                    .filter(|a| matches!(a, Transitioned::Applied { changed: true, .. }))
                    .count()
            }
            Err(e) => {
                tracing::warn!(destination = %destination.id, error = %e, "flush failed");
                return;
            }
        }
        if page_len < FLUSH_CHUNK {
            break;
        }
    }
    if flushed > 0 {
        engine.log_destination_change(
            &destination.id,
            DestinationChange::BacklogFlushed { events: flushed },
        );
    }
    destination.forget_claims_ahead();
}

/// Whether the event's cycle has outlived `max_age`: nothing is attempted or kept
/// queued past it.
pub(super) fn past_max_age(
    record: &EventRecord,
    policy: &policy::RetryPolicy,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    let max_age = chrono::Duration::from_std(policy.max_age).unwrap_or(chrono::Duration::MAX);
    record
        .cycle_started_at
        .checked_add_signed(max_age)
        .is_some_and(|expiry| now >= expiry)
}

/// Marks an event failed because it outlived `max_age` without a delivery.
pub(super) async fn expire(
    engine: &Engine,
    destination: &Destination,
    id: EventId,
    policy: &policy::RetryPolicy,
) {
    let words = format!(
        "expired after {}",
        policy::units::format_duration(policy.max_age)
    );
    let result = engine
        .inner
        .store
        .transition(id, EventTransition::Expired { error: words })
        .await;
    match result {
        Ok(Transitioned::Applied { record, .. }) => engine.publish(Change::Event {
            id,
            destination: destination.id.clone(),
            state: record.state,
        }),
        // Finished meanwhile (delivered, muted) or purged: nothing to expire.
        Ok(Transitioned::Refused(_) | Transitioned::NotFound) => {}
        Err(e) => tracing::warn!(event = %id, error = %e, "cannot mark event expired"),
    }
}

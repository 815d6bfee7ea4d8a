//! Fresh events handed from ingest straight to their destination's dispatcher.
//!
//! Why: at a moderate rate every event used to cost its dispatcher a look at
//! the due index, a hop to the blocking pool and back (two thread wake-ups and
//! a read transaction), only to find the one event ingest had just stored. When
//! the dispatcher knows that nothing else is due, ingest can hand it the stored
//! record and payload instead, and the dispatcher starts the attempt without a
//! store read.
//!
//! The hand-over is only sound while the dispatcher's knowledge is complete.
//! It is *open* from the moment a look found every due event (all started, the
//! next due time known) until anything else could have made an event due: a
//! timer reaching that next due time, a retry scheduled, an operator action, a
//! setting, a deferred (fan-out) insert, a hand-over that would overflow. Each
//! of those *closes* it: the queued events are dropped (they are in the store's
//! due index, so the next look finds them) and the dispatcher looks again.
//!
//! No event may be both handed over and found by a look, or it would be
//! attempted twice. A look that overlaps an insert could see the insert's
//! commit while the insert, finishing after the look, sees the hand-over open.
//! So an insert announces itself before it writes ([`Handoff::begin_insert`]),
//! and the dispatcher opens the hand-over after a look only when no insert was
//! in progress and nothing changed since the look began
//! ([`Handoff::open_if_unchanged`]).

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::model::{EventId, EventRecord};

/// A stored event's record and payload, as an attempt needs them.
pub(crate) type ForDelivery = (EventRecord, Vec<u8>);

/// Events held for a dispatcher at most: beyond either bound the hand-over
/// closes and the dispatcher reads from the store, as under a backlog.
const MAX_HELD_EVENTS: usize = 1024;
const MAX_HELD_BYTES: usize = 1 << 20;

#[derive(Default)]
pub(crate) struct Handoff {
    /// The dispatcher knows every due event: ingest may hand it new ones.
    open: bool,
    /// Moves on every insert begun and every close, so a look can tell that
    /// nothing happened while it read.
    changes: u64,
    /// Inserts begun and not yet finished.
    inserting: u32,
    /// Handed over, not yet started (every slot was busy).
    held: VecDeque<(EventId, ForDelivery)>,
    held_bytes: usize,
    /// What the look that opened the hand-over found next due (`None`:
    /// nothing at all), for the dispatcher's timer.
    next_due: Option<DateTime<Utc>>,
}

/// What the dispatcher may start without looking.
pub(crate) enum Fresh {
    /// The hand-over is open: these events (possibly none) are everything due
    /// now beyond what is in flight; the next due time is `next_due`.
    Known {
        events: Vec<(EventId, ForDelivery)>,
        more_held: bool,
        next_due: Option<DateTime<Utc>>,
    },
    /// Closed: the dispatcher must look at the store. `stamp` is given back to
    /// [`Handoff::open_if_unchanged`] after the look.
    Unknown { stamp: u64 },
}

impl Handoff {
    /// An insert for this destination is about to be written.
    pub(crate) fn begin_insert(&mut self) {
        self.changes = self.changes.wrapping_add(1);
        self.inserting += 1;
    }

    /// The insert begun by [`Handoff::begin_insert`] finished: `fresh` are the
    /// events it committed that are due now (empty when it failed). Answers
    /// whether the dispatcher has anything new to do.
    pub(crate) fn end_insert(&mut self, fresh: Vec<(EventId, ForDelivery)>) -> bool {
        self.inserting = self.inserting.saturating_sub(1);
        if fresh.is_empty() {
            return false;
        }
        let bytes: usize = fresh.iter().map(|(_, (_, payload))| payload.len()).sum();
        if self.open
            && self.held.len() + fresh.len() <= MAX_HELD_EVENTS
            && self.held_bytes + bytes <= MAX_HELD_BYTES
        {
            self.held.extend(fresh);
            self.held_bytes += bytes;
        } else {
            self.close();
        }
        true
    }

    /// Something other than a plain insert may have made events due: drop what
    /// is held (the store has it) and make the dispatcher look.
    pub(crate) fn close(&mut self) {
        self.open = false;
        self.changes = self.changes.wrapping_add(1);
        self.held.clear();
        self.held_bytes = 0;
    }

    /// Up to `free` held events to start, or the stamp for a look.
    pub(crate) fn take(&mut self, free: usize) -> Fresh {
        if !self.open {
            return Fresh::Unknown {
                stamp: self.changes,
            };
        }
        let count = free.min(self.held.len());
        let events: Vec<_> = self.held.drain(..count).collect();
        self.held_bytes -= events
            .iter()
            .map(|(_, (_, payload))| payload.len())
            .sum::<usize>();
        Fresh::Known {
            events,
            more_held: !self.held.is_empty(),
            next_due: self.next_due,
        }
    }

    /// After a look that began at `stamp` found every due event (and started
    /// them all) with `next_due` the earliest due time after them: opens the
    /// hand-over, unless an insert was in progress or anything changed since
    /// the look began (the look may have missed it, or seen it).
    pub(crate) fn open_if_unchanged(&mut self, stamp: u64, next_due: Option<DateTime<Utc>>) {
        if self.changes == stamp && self.inserting == 0 {
            self.open = true;
            self.next_due = next_due;
        }
    }

    #[cfg(test)]
    fn is_open(&self) -> bool {
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventState, Trigger};

    fn fresh(n: u128, bytes: usize) -> (EventId, ForDelivery) {
        let id = ulid::Ulid(n);
        let created_at = DateTime::<Utc>::from_timestamp_millis(1_700_000_000_000).unwrap();
        let record = EventRecord {
            id,
            destination: "d".into(),
            topic: String::new(),
            content_type: None,
            created_at,
            state: EventState::Pending,
            attempt_count: 0,
            automatic_retries: 0,
            cycle_started_at: created_at,
            next_attempt_at: Some(created_at),
            next_trigger: Some(Trigger::Initial),
            last_status: None,
            last_error: None,
            reason: None,
            duplicate_of: None,
            idempotency_key: None,
            payload_bytes: bytes as u64,
            schedule_pinned: false,
        };
        (id, (record, vec![0; bytes]))
    }

    fn stamp(handoff: &mut Handoff) -> u64 {
        match handoff.take(0) {
            Fresh::Unknown { stamp } => stamp,
            Fresh::Known { .. } => panic!("expected a closed hand-over"),
        }
    }

    #[test]
    fn closed_at_first_so_the_dispatcher_looks() {
        let mut handoff = Handoff::default();
        assert!(matches!(handoff.take(4), Fresh::Unknown { .. }));
    }

    #[test]
    fn a_quiet_look_opens_it_and_inserts_are_handed_over_in_order() {
        let mut handoff = Handoff::default();
        let at = stamp(&mut handoff);
        handoff.open_if_unchanged(at, None);
        assert!(handoff.is_open());
        handoff.begin_insert();
        assert!(handoff.end_insert(vec![fresh(1, 10), fresh(2, 10)]));
        handoff.begin_insert();
        assert!(handoff.end_insert(vec![fresh(3, 10)]));
        match handoff.take(2) {
            Fresh::Known {
                events, more_held, ..
            } => {
                let ids: Vec<u128> = events.iter().map(|(id, _)| id.0).collect();
                assert_eq!(ids, vec![1, 2]);
                assert!(more_held);
            }
            Fresh::Unknown { .. } => panic!("open hand-over answered unknown"),
        }
        match handoff.take(5) {
            Fresh::Known {
                events, more_held, ..
            } => {
                assert_eq!(events.len(), 1);
                assert!(!more_held);
            }
            Fresh::Unknown { .. } => panic!("open hand-over answered unknown"),
        }
    }

    #[test]
    fn an_insert_begun_during_the_look_keeps_it_closed() {
        // The look may have read the insert's commit: handing the event over
        // as well would attempt it twice.
        let mut handoff = Handoff::default();
        let at = stamp(&mut handoff);
        handoff.begin_insert();
        handoff.end_insert(vec![fresh(1, 10)]);
        handoff.open_if_unchanged(at, None);
        assert!(!handoff.is_open());
    }

    #[test]
    fn an_insert_in_progress_when_the_look_ends_keeps_it_closed() {
        let mut handoff = Handoff::default();
        handoff.begin_insert();
        let at = stamp(&mut handoff);
        handoff.open_if_unchanged(at, None);
        assert!(!handoff.is_open());
        // Its end then finds it closed: nothing held, the dispatcher looks.
        assert!(handoff.end_insert(vec![fresh(1, 10)]));
        assert!(matches!(handoff.take(1), Fresh::Unknown { .. }));
    }

    #[test]
    fn closing_drops_what_is_held() {
        let mut handoff = Handoff::default();
        let at = stamp(&mut handoff);
        handoff.open_if_unchanged(at, None);
        handoff.begin_insert();
        handoff.end_insert(vec![fresh(1, 10)]);
        handoff.close();
        assert!(matches!(handoff.take(1), Fresh::Unknown { .. }));
        let at = stamp(&mut handoff);
        handoff.open_if_unchanged(at, None);
        match handoff.take(1) {
            Fresh::Known { events, .. } => assert!(events.is_empty()),
            Fresh::Unknown { .. } => panic!("reopened hand-over answered unknown"),
        }
    }

    #[test]
    fn overflowing_the_bounds_closes_it() {
        let mut handoff = Handoff::default();
        let at = stamp(&mut handoff);
        handoff.open_if_unchanged(at, None);
        handoff.begin_insert();
        handoff.end_insert(vec![fresh(1, MAX_HELD_BYTES)]);
        assert!(handoff.is_open());
        handoff.begin_insert();
        handoff.end_insert(vec![fresh(2, 1)]);
        assert!(!handoff.is_open());
    }

    #[test]
    fn a_failed_insert_changes_nothing_it_holds() {
        let mut handoff = Handoff::default();
        let at = stamp(&mut handoff);
        handoff.open_if_unchanged(at, Some(DateTime::<Utc>::MIN_UTC));
        handoff.begin_insert();
        assert!(!handoff.end_insert(Vec::new()));
        assert!(handoff.is_open());
        assert_eq!(handoff.inserting, 0);
    }
}

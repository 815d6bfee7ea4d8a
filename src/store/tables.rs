//! Table definitions and the write-side operations on them. Every change to an
//! event goes through [`Tables::transition`], which keeps the indexes and the
//! per-state counts in step with the record in the same transaction.

use super::{write_err, Inserted, NewEvent, StoreError, Transitioned, IDEMPOTENCY_WINDOW};
use crate::model::{
    DestinationRuntime, EventId, EventRecord, EventState, EventTransition, Notice, NoticeId,
    NoticeSelection,
};
use chrono::{DateTime, Utc};
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;

pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// event id → [`EventRecord`] in the binary layout of `codec`
pub(super) const EVENTS: TableDefinition<u128, &[u8]> = TableDefinition::new("events");
/// event id → body bytes, verbatim
pub(super) const PAYLOADS: TableDefinition<u128, &[u8]> = TableDefinition::new("payloads");
/// (event id, attempt n) → JSON [`AttemptRecord`]
pub(super) const ATTEMPTS: TableDefinition<(u128, u32), &[u8]> = TableDefinition::new("attempts");
/// (destination, due at ms, event id): what each dispatcher reads to know what is due
pub(super) const DUE: TableDefinition<(&str, i64, u128), ()> = TableDefinition::new("due");
/// (destination, event id): the by-destination index of earlier builds. A
/// destination's events are listed from [`BY_DEST_STATE`] (its six state
/// ranges merged), so every event writes one destination-keyed index fewer;
/// dropped when a store that has it is opened.
pub(super) const RETIRED_BY_DEST: TableDefinition<(&str, u128), ()> =
    TableDefinition::new("by_destination");
/// (destination, state code, event id)
pub(super) const BY_DEST_STATE: TableDefinition<(&str, u8, u128), ()> =
    TableDefinition::new("by_destination_state");
/// (state code, event id): listings by state across destinations
pub(super) const BY_STATE: TableDefinition<(u8, u128), ()> = TableDefinition::new("by_state");
/// (topic, event id): listings by topic (a glob is matched against [`TOPICS`]
/// first). A topic never changes, so this is written once at insert and
/// removed only with the event; a state is checked against [`BY_STATE`].
pub(super) const BY_TOPIC: TableDefinition<(&str, u128), ()> = TableDefinition::new("by_topic");
/// (topic, state code, event id): the by-topic index of unreleased builds,
/// which moved on every state change; dropped when [`BY_TOPIC`] is built.
pub(super) const LEGACY_BY_TOPIC_STATE: TableDefinition<(&str, u8, u128), ()> =
    TableDefinition::new("by_topic_state");
/// topic → number of stored events with it: the distinct topics a glob is
/// matched against
pub(super) const TOPICS: TableDefinition<&str, u64> = TableDefinition::new("topics");
/// event id → (record bytes, payload bytes) of an event whose record does not
/// decode, moved aside so that nothing reaches it again
pub(super) const QUARANTINE: TableDefinition<u128, (&[u8], &[u8])> =
    TableDefinition::new("quarantine");
/// (destination, idempotency key) → (first event id, created at ms)
pub(super) const IDEMPOTENCY: TableDefinition<(&str, &str), (u128, i64)> =
    TableDefinition::new("idempotency");
/// (destination, state code) → number of events
pub(super) const COUNTS: TableDefinition<(&str, u8), u64> = TableDefinition::new("counts");
/// destination id → its document as created through the API (the store
/// keeps the bytes; the engine reads them)
pub(super) const DESTINATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("destinations");
/// (destination, minute start in ms) → one minute of attempt statistics (the
/// engine's bytes); the last 24 hours of each destination's history
pub(super) const STATS: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("stats");
/// event id → (): events stored by a fan-out commit whose destination-keyed
/// entries (due, by destination and state, counts) are not written yet. Keyed
/// by id, so the marks of one commit append; the writer's next commit writes
/// those entries and removes the marks, and a store opened with marks left by
/// a crash writes them before anything reads it (see `Tables::index_deferred`).
pub(super) const UNINDEXED: TableDefinition<u128, ()> = TableDefinition::new("unindexed");
/// destination → JSON [`DestinationRuntime`]
pub(super) const RUNTIME: TableDefinition<&str, &[u8]> =
    TableDefinition::new("destination_runtime");

/// notice id → JSON [`Notice`]; ids are ULIDs, so newest first is a
/// reverse range
pub(super) const NOTICES: TableDefinition<u128, &[u8]> = TableDefinition::new("notices");
/// notice id → (): the notices not acknowledged yet. Its length is the
/// unacknowledged count, and an `unacked` listing is a range of it.
pub(super) const UNACKED_NOTICES: TableDefinition<u128, ()> =
    TableDefinition::new("unacked_notices");

/// bulk job id → (finished, the engine's JSON record of the job); ids are
/// ULIDs, so newest first is a reverse range. See `store::bulk_jobs`.
pub(super) const BULK_JOBS: TableDefinition<u128, (bool, &[u8])> =
    TableDefinition::new("bulk_jobs");
/// (bulk job id, chunk n) → one destination's share of a running job's ids,
/// in the layout of `store::bulk_jobs`; dropped when the job finishes.
pub(super) const BULK_JOB_IDS: TableDefinition<(u128, u32), &[u8]> =
    TableDefinition::new("bulk_job_ids");

pub(super) fn decode<T: DeserializeOwned>(what: &'static str, raw: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(raw).map_err(|source| StoreError::CorruptJson { what, source })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records always serialise")
}

/// An event record moved to quarantine, and the decoding error that sent it.
pub(super) struct Quarantined {
    pub id: EventId,
    pub error: StoreError,
}

impl Quarantined {
    /// The one report of a quarantined record, once its move is committed.
    pub(super) fn report(&self) {
        tracing::error!(
            event = %self.id,
            error = %self.error,
            "event record does not decode; moved to quarantine with its raw bytes"
        );
    }
}

/// The open tables of one write transaction.
pub struct Tables<'txn> {
    /// For tables only a rare write needs (destinations): opened when used,
    /// so that the common group commit does not pay for them.
    pub(super) txn: &'txn WriteTransaction,
    events: Table<'txn, u128, &'static [u8]>,
    payloads: Table<'txn, u128, &'static [u8]>,
    attempts: Table<'txn, (u128, u32), &'static [u8]>,
    due: Table<'txn, (&'static str, i64, u128), ()>,
    by_dest_state: Table<'txn, (&'static str, u8, u128), ()>,
    idempotency: Table<'txn, (&'static str, &'static str), (u128, i64)>,
    counts: Table<'txn, (&'static str, u8), u64>,
    runtime: Table<'txn, &'static str, &'static [u8]>,
    by_state: Table<'txn, (u8, u128), ()>,
    by_topic: Table<'txn, (&'static str, u128), ()>,
    topics: Table<'txn, &'static str, u64>,
    quarantine: Table<'txn, u128, (&'static [u8], &'static [u8])>,
    unindexed: Table<'txn, u128, ()>,
    /// Events this transaction stored without their destination-keyed
    /// entries (marked in [`UNINDEXED`]): a later change to one in the same
    /// transaction writes them first.
    deferred: std::collections::HashSet<u128>,
    /// Per-state count changes by destination, indexed by state code, and
    /// per-topic count changes, not yet written (see [`Tables::flush_counts`]).
    count_deltas: HashMap<String, [i64; EventState::ALL.len()]>,
    topic_deltas: HashMap<String, i64>,
    /// Records this transaction moved to quarantine, with why: logged and
    /// counted once it commits (a group may run more than once).
    quarantined: Vec<Quarantined>,
    /// The change this transaction makes to the bytes the events hold (see
    /// `budget::entry_footprint`), written by [`Tables::flush_counts`].
    footprint_delta: i64,
    /// The total those bytes come to once this transaction commits, when it
    /// wrote them.
    footprint_total: Option<u64>,
    /// Whether this transaction left an event finished (see
    /// [`Tables::finished_some`]).
    finished_some: bool,
}

impl<'txn> Tables<'txn> {
    pub(super) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Tables {
            txn,
            events: txn.open_table(EVENTS).map_err(write_err)?,
            payloads: txn.open_table(PAYLOADS).map_err(write_err)?,
            attempts: txn.open_table(ATTEMPTS).map_err(write_err)?,
            due: txn.open_table(DUE).map_err(write_err)?,
            by_dest_state: txn.open_table(BY_DEST_STATE).map_err(write_err)?,
            idempotency: txn.open_table(IDEMPOTENCY).map_err(write_err)?,
            counts: txn.open_table(COUNTS).map_err(write_err)?,
            runtime: txn.open_table(RUNTIME).map_err(write_err)?,
            by_state: txn.open_table(BY_STATE).map_err(write_err)?,
            by_topic: txn.open_table(BY_TOPIC).map_err(write_err)?,
            topics: txn.open_table(TOPICS).map_err(write_err)?,
            quarantine: txn.open_table(QUARANTINE).map_err(write_err)?,
            unindexed: txn.open_table(UNINDEXED).map_err(write_err)?,
            deferred: std::collections::HashSet::new(),
            count_deltas: HashMap::new(),
            topic_deltas: HashMap::new(),
            quarantined: Vec::new(),
            footprint_delta: 0,
            footprint_total: None,
            finished_some: false,
        })
    }

    /// Creates every table so that readers never meet a missing one.
    pub(super) fn create_all(txn: &WriteTransaction) -> Result<(), StoreError> {
        drop(Tables::open(txn)?);
        drop(txn.open_table(DESTINATIONS).map_err(write_err)?);
        drop(txn.open_table(STATS).map_err(write_err)?);
        drop(txn.open_table(NOTICES).map_err(write_err)?);
        drop(txn.open_table(UNACKED_NOTICES).map_err(write_err)?);
        drop(txn.open_table(BULK_JOBS).map_err(write_err)?);
        drop(txn.open_table(BULK_JOB_IDS).map_err(write_err)?);
        Ok(())
    }

    /// Stores a new notice (unacknowledged unless it says otherwise).
    pub fn insert_notice(&mut self, notice: &Notice) -> Result<(), StoreError> {
        let mut notices = self.txn.open_table(NOTICES).map_err(write_err)?;
        notices
            .insert(notice.id.0, encode(notice).as_slice())
            .map_err(write_err)?;
        if notice.acked_at.is_none() {
            let mut unacked = self.txn.open_table(UNACKED_NOTICES).map_err(write_err)?;
            unacked.insert(notice.id.0, ()).map_err(write_err)?;
        }
        Ok(())
    }

    /// Acknowledges one notice at `at`; an acknowledged one keeps its first
    /// time. `None` when there is no such notice.
    pub fn ack_notice(
        &mut self,
        id: NoticeId,
        at: DateTime<Utc>,
    ) -> Result<Option<Notice>, StoreError> {
        let mut notices = self.txn.open_table(NOTICES).map_err(write_err)?;
        let Some(raw) = notices
            .get(id.0)
            .map_err(write_err)?
            .map(|v| v.value().to_vec())
        else {
            return Ok(None);
        };
        let mut notice: Notice = decode("notice", &raw)?;
        if notice.acked_at.is_none() {
            notice.acked_at = Some(at);
            notices
                .insert(id.0, encode(&notice).as_slice())
                .map_err(write_err)?;
        }
        let mut unacked = self.txn.open_table(UNACKED_NOTICES).map_err(write_err)?;
        unacked.remove(id.0).map_err(write_err)?;
        Ok(Some(notice))
    }

    /// Acknowledges the unacknowledged notices `selection` covers, at `at`;
    /// answers how many it acknowledged. Walks the unacknowledged index only.
    pub fn ack_notices(
        &mut self,
        selection: &NoticeSelection,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let ids: Vec<NoticeId> = {
            let unacked = self.txn.open_table(UNACKED_NOTICES).map_err(write_err)?;
            let upper = selection.before.map_or(u128::MAX, |b| b.0);
            let mut ids = Vec::new();
            for entry in unacked.range(0..upper).map_err(write_err)? {
                let id = ulid::Ulid(entry.map_err(write_err)?.0.value());
                if selection.ids.as_ref().is_none_or(|only| only.contains(&id)) {
                    ids.push(id);
                }
            }
            // The range excludes `u128::MAX` itself; no ULID of a real time is it.
            ids
        };
        let mut acked = 0;
        for id in ids {
            if self.ack_notice(id, at)?.is_some() {
                acked += 1;
            }
        }
        Ok(acked)
    }

    /// Drops notices older than `cutoff` (their ids sort before it), with
    /// the same retention as events.
    pub fn prune_notices(&mut self, cutoff: DateTime<Utc>) -> Result<(), StoreError> {
        let upper = super::ulid_floor(cutoff);
        let mut notices = self.txn.open_table(NOTICES).map_err(write_err)?;
        notices
            .retain_in(0..upper, |_, _| false)
            .map_err(write_err)?;
        let mut unacked = self.txn.open_table(UNACKED_NOTICES).map_err(write_err)?;
        unacked
            .retain_in(0..upper, |_, _| false)
            .map_err(write_err)?;
        Ok(())
    }

    /// Writes minutes of statistics (replacing what a minute held) and drops
    /// each written destination's minutes from before `keep_from_ms`.
    pub fn put_stats(
        &mut self,
        minutes: &[(String, i64, Vec<u8>)],
        keep_from_ms: i64,
    ) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(STATS).map_err(write_err)?;
        let mut pruned = std::collections::HashSet::new();
        for (destination, minute_ms, bytes) in minutes {
            table
                .insert((destination.as_str(), *minute_ms), bytes.as_slice())
                .map_err(write_err)?;
            if pruned.insert(destination.as_str()) {
                table
                    .retain_in(
                        (destination.as_str(), i64::MIN)..(destination.as_str(), keep_from_ms),
                        |_, _| false,
                    )
                    .map_err(write_err)?;
            }
        }
        Ok(())
    }

    /// Stores (or replaces) a destination created through the API.
    pub fn put_destination(&mut self, id: &str, document: &[u8]) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(DESTINATIONS).map_err(write_err)?;
        table.insert(id, document).map_err(write_err)?;
        Ok(())
    }

    /// Deletes a destination: every event it still owes (pending, retrying)
    /// is cancelled with reason `destination_deleted` and kept, with its
    /// history, for retention; its stored document and runtime state go.
    /// Answers how many events were cancelled.
    pub fn delete_destination(&mut self, id: &str) -> Result<u64, StoreError> {
        // The owed events are found through the per-state index, so events
        // this transaction stored without it get it first.
        let deferred: Vec<u128> = self.deferred.iter().copied().collect();
        for event in deferred {
            self.ensure_indexed(event)?;
        }
        let mut owed = Vec::new();
        for state in [EventState::Pending, EventState::Retrying] {
            let range = self
                .by_dest_state
                .range((id, state.code(), 0u128)..=(id, state.code(), u128::MAX))
                .map_err(write_err)?;
            for entry in range {
                owed.push(ulid::Ulid(entry.map_err(write_err)?.0.value().2));
            }
        }
        let mut cancelled = 0;
        for event in owed {
            if let Transitioned::Applied { changed: true, .. } =
                self.transition(event, EventTransition::DestinationDeleted)?
            {
                cancelled += 1;
            }
        }
        let mut table = self.txn.open_table(DESTINATIONS).map_err(write_err)?;
        table.remove(id).map_err(write_err)?;
        self.runtime.remove(id).map_err(write_err)?;
        let mut stats = self.txn.open_table(STATS).map_err(write_err)?;
        stats
            .retain_in((id, i64::MIN)..=(id, i64::MAX), |_, _| false)
            .map_err(write_err)?;
        Ok(cancelled)
    }

    pub fn insert_event(&mut self, event: NewEvent) -> Result<Inserted, StoreError> {
        self.insert_event_indexing(event, true)
    }

    /// Stores an event with only its id-keyed entries (record, payload, by
    /// state, by topic, idempotency key) and a mark in [`UNINDEXED`]; its
    /// destination-keyed entries (due, by destination and state, counts) are
    /// written by [`Tables::index_deferred`] in a later transaction. For a
    /// fan-out: its events' ids are consecutive, so these entries append to a
    /// few pages, where the destination-keyed ones would dirty a leaf page
    /// per destination in the commit the caller waits for.
    pub fn insert_event_deferred(&mut self, event: NewEvent) -> Result<Inserted, StoreError> {
        self.insert_event_indexing(event, false)
    }

    /// Writes the destination-keyed entries of events stored by
    /// [`Tables::insert_event_deferred`] and removes their marks. An id that
    /// is not marked (already indexed, or gone) is passed over, so running it
    /// twice over the same ids changes nothing the second time.
    pub(super) fn index_deferred(&mut self, ids: &[u128]) -> Result<(), StoreError> {
        for &id in ids {
            self.deferred.remove(&id);
            if self.unindexed.remove(id).map_err(write_err)?.is_none() {
                continue;
            }
            let decoded = match self.events.get(id).map_err(write_err)? {
                Some(raw) => super::codec::decode_event(raw.value()),
                None => continue,
            };
            match decoded {
                Ok(record) => self.index_destination(&record, true)?,
                // Its destination-keyed entries were never written; the
                // record is moved aside like any other that does not decode.
                Err(_) => {
                    self.quarantine(ulid::Ulid(id))?;
                }
            }
        }
        Ok(())
    }

    /// Every event still marked as not indexed, oldest first: those a crash
    /// left between a fan-out's commit and the one that indexes it.
    pub(super) fn marked_unindexed(&self) -> Result<Vec<u128>, StoreError> {
        let mut out = Vec::new();
        for entry in self.unindexed.iter().map_err(write_err)? {
            out.push(entry.map_err(write_err)?.0.value());
        }
        Ok(out)
    }

    /// The ids this transaction stored without their destination-keyed
    /// entries, for the writer to index in its next commit.
    pub(super) fn take_deferred(&mut self) -> Vec<u128> {
        let mut ids: Vec<u128> = self.deferred.drain().collect();
        ids.sort_unstable();
        ids
    }

    /// Writes the destination-keyed entries of an event this transaction
    /// stored without them, before anything changes it.
    fn ensure_indexed(&mut self, id: u128) -> Result<(), StoreError> {
        if self.deferred.contains(&id) {
            self.index_deferred(&[id])?;
        }
        Ok(())
    }

    fn insert_event_indexing(
        &mut self,
        event: NewEvent,
        by_destination: bool,
    ) -> Result<Inserted, StoreError> {
        let mut duplicate_of = None;
        if let Some(key) = &event.idempotency_key {
            let window_start = (event.created_at - IDEMPOTENCY_WINDOW).timestamp_millis();
            let previous = self
                .idempotency
                .get((event.destination.as_str(), key.as_str()))
                .map_err(write_err)?
                .map(|v| v.value());
            match previous {
                Some((first, created_ms)) if created_ms >= window_start => {
                    duplicate_of = Some(ulid::Ulid(first));
                }
                _ => {
                    if previous.is_none() {
                        self.footprint_delta += super::budget::idempotency_footprint(
                            event.destination.len() as u64,
                            key.len() as u64,
                        ) as i64;
                    }
                    self.idempotency
                        .insert(
                            (event.destination.as_str(), key.as_str()),
                            (event.id.0, event.created_at.timestamp_millis()),
                        )
                        .map_err(write_err)?;
                }
            }
        }
        let (record, payload) = event.into_record(duplicate_of);
        let state = record.state;
        self.payloads
            .insert(record.id.0, payload.as_ref())
            .map_err(write_err)?;
        let encoded = super::codec::encode_event(&record);
        self.footprint_delta += (super::budget::payload_footprint(record.payload_bytes)
            + super::budget::record_footprint(&record, encoded.len() as u64))
            as i64;
        self.finished_some |= !state.awaits_delivery();
        if by_destination {
            self.index(&record, true)?;
        } else {
            self.index_by_state(&record, true)?;
            self.unindexed.insert(record.id.0, ()).map_err(write_err)?;
            self.deferred.insert(record.id.0);
        }
        self.index_topic(&record, true)?;
        self.events
            .insert(record.id.0, encoded.as_slice())
            .map_err(write_err)?;
        Ok(Inserted {
            id: record.id,
            destination: record.destination,
            state,
            duplicate_of,
        })
    }

    /// The event as this transaction sees it.
    pub fn event(&self, id: EventId) -> Result<Option<EventRecord>, StoreError> {
        match self.events.get(id.0).map_err(write_err)? {
            Some(raw) => super::codec::decode_event(raw.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Applies one named transition to an event, keeping its indexes and counts
    /// in step and appending the attempt it records, if any. A refusal is an
    /// answer, not an error: it must not abort the group commit it rides in.
    pub fn transition(
        &mut self,
        id: EventId,
        transition: EventTransition,
    ) -> Result<Transitioned, StoreError> {
        self.ensure_indexed(id.0)?;
        let (decoded, old_len) = match self.events.get(id.0).map_err(write_err)? {
            Some(raw) => (
                super::codec::decode_event(raw.value()),
                raw.value().len() as u64,
            ),
            None => return Ok(Transitioned::NotFound),
        };
        let before = match decoded {
            Ok(record) => record,
            Err(_) => {
                // Nothing can be done to a record that cannot be read: move it
                // aside, and it is gone for every later change too.
                self.quarantine(id)?;
                return Ok(Transitioned::NotFound);
            }
        };
        let mut after = before.clone();
        let applied = match after.apply(transition) {
            Ok(applied) => applied,
            Err(refusal) => return Ok(Transitioned::Refused(refusal)),
        };
        if let Some(attempt) = &applied.attempt {
            let encoded = encode(attempt);
            self.attempts
                .insert((id.0, attempt.n), encoded.as_slice())
                .map_err(write_err)?;
            self.footprint_delta += super::budget::attempt_footprint(encoded.len() as u64) as i64;
        }
        if applied.changed {
            // Finished now, newly or again (an operator's retry of a failed
            // event recorded): the budget's purge may remove it.
            self.finished_some |= !after.state.awaits_delivery();
            if before.state == after.state {
                // Same state (a retry rescheduled, say): only the due entry can
                // have moved; the state indexes and counts stay as they are.
                if due_ms(&before) != due_ms(&after) {
                    self.index_due(&before, false)?;
                    self.index_due(&after, true)?;
                }
            } else {
                self.index(&before, false)?;
                self.index(&after, true)?;
            }
            let encoded = super::codec::encode_event(&after);
            self.footprint_delta += super::budget::entry_footprint(16 + encoded.len() as u64)
                as i64
                - super::budget::entry_footprint(16 + old_len) as i64;
            self.events
                .insert(id.0, encoded.as_slice())
                .map_err(write_err)?;
        }
        Ok(Transitioned::Applied {
            record: Box::new(after),
            changed: applied.changed,
        })
    }

    /// Adds (`add = true`) or removes a record's entry in the topic index and
    /// its topic count: once when the event is stored, once when it goes, as a
    /// topic never changes.
    fn index_topic(&mut self, record: &EventRecord, add: bool) -> Result<(), StoreError> {
        let key = (record.topic.as_str(), record.id.0);
        if add {
            self.by_topic.insert(key, ()).map_err(write_err)?;
        } else {
            self.by_topic.remove(key).map_err(write_err)?;
        }
        self.count_topic(&record.topic, add);
        Ok(())
    }

    /// Adds (`add = true`) or removes a record's entries in the due index, the
    /// state indexes and the counts.
    fn index(&mut self, record: &EventRecord, add: bool) -> Result<(), StoreError> {
        self.index_destination(record, add)?;
        self.index_by_state(record, add)
    }

    /// The destination-keyed part of [`Tables::index`]: the due index, the
    /// per-destination state index and the counts.
    fn index_destination(&mut self, record: &EventRecord, add: bool) -> Result<(), StoreError> {
        self.index_due(record, add)?;
        let dest = record.destination.as_str();
        let state_key = (dest, record.state.code(), record.id.0);
        if add {
            self.by_dest_state
                .insert(state_key, ())
                .map_err(write_err)?;
        } else {
            self.by_dest_state.remove(state_key).map_err(write_err)?;
        }
        self.count_state(dest, record.state, if add { 1 } else { -1 });
        Ok(())
    }

    /// The id-keyed part of [`Tables::index`]: the by-state index.
    fn index_by_state(&mut self, record: &EventRecord, add: bool) -> Result<(), StoreError> {
        let by_state_key = (record.state.code(), record.id.0);
        if add {
            self.by_state.insert(by_state_key, ()).map_err(write_err)?;
        } else {
            self.by_state.remove(by_state_key).map_err(write_err)?;
        }
        Ok(())
    }

    /// Notes one more or one fewer event of `destination` in `state`; written
    /// by [`Tables::flush_counts`].
    fn count_state(&mut self, destination: &str, state: EventState, delta: i64) {
        let slot = match self.count_deltas.get_mut(destination) {
            Some(slot) => slot,
            None => self
                .count_deltas
                .entry(destination.to_string())
                .or_default(),
        };
        slot[state.code() as usize] += delta;
    }

    /// Writes the per-state and per-topic counts changed in this transaction,
    /// once each: a group of many events touches every count once instead of
    /// twice per event. Must run before the transaction commits, and before
    /// anything reads those counts inside it.
    pub(super) fn flush_counts(&mut self) -> Result<(), StoreError> {
        self.flush_footprint()?;
        for (destination, deltas) in std::mem::take(&mut self.count_deltas) {
            for state in EventState::ALL {
                let delta = deltas[state.code() as usize];
                if delta == 0 {
                    continue;
                }
                let key = (destination.as_str(), state.code());
                let current = self
                    .counts
                    .get(key)
                    .map_err(write_err)?
                    .map(|v| v.value())
                    .unwrap_or(0);
                let next = (current as i64 + delta).max(0) as u64;
                self.counts.insert(key, next).map_err(write_err)?;
            }
        }
        for (topic, delta) in std::mem::take(&mut self.topic_deltas) {
            if delta == 0 {
                continue;
            }
            let current = self
                .topics
                .get(topic.as_str())
                .map_err(write_err)?
                .map(|v| v.value())
                .unwrap_or(0);
            let next = current as i64 + delta;
            if next <= 0 {
                self.topics.remove(topic.as_str()).map_err(write_err)?;
            } else {
                self.topics
                    .insert(topic.as_str(), next as u64)
                    .map_err(write_err)?;
            }
        }
        Ok(())
    }

    /// Adds or removes a record's entry in the due index, if it has one.
    fn index_due(&mut self, record: &EventRecord, add: bool) -> Result<(), StoreError> {
        if let Some(due_ms) = due_ms(record) {
            let due_key = (record.destination.as_str(), due_ms, record.id.0);
            if add {
                self.due.insert(due_key, ()).map_err(write_err)?;
            } else {
                self.due.remove(due_key).map_err(write_err)?;
            }
        }
        Ok(())
    }

    /// Notes one more (`add = true`) or one fewer event under `topic`; a topic
    /// left with none is forgotten when the counts are flushed.
    fn count_topic(&mut self, topic: &str, add: bool) {
        let delta = if add { 1 } else { -1 };
        match self.topic_deltas.get_mut(topic) {
            Some(slot) => *slot += delta,
            None => {
                self.topic_deltas.insert(topic.to_string(), delta);
            }
        }
    }

    /// Adds the listing indexes of up to `limit` events after `after` (in id
    /// order) for a store written before those indexes existed, moving aside any
    /// record that does not decode. Returns the last id handled (`None` when
    /// there was none left) and how many records were indexed.
    pub(super) fn index_for_listing_after(
        &mut self,
        after: Option<u128>,
        limit: usize,
    ) -> Result<(Option<u128>, u64), StoreError> {
        let from = after.map_or(0, |id| id.saturating_add(1));
        let mut records = Vec::with_capacity(limit);
        let mut undecodable = Vec::new();
        let mut last = None;
        for entry in self.events.range(from..).map_err(write_err)?.take(limit) {
            let (key, raw) = entry.map_err(write_err)?;
            last = Some(key.value());
            match super::codec::decode_event(raw.value()) {
                Ok(record) => records.push(record),
                Err(_) => undecodable.push(ulid::Ulid(key.value())),
            }
        }
        for record in &records {
            self.add_listing_indexes(record)?;
        }
        for id in undecodable {
            self.quarantine(id)?;
        }
        Ok((last, records.len() as u64))
    }

    /// Adds the listing indexes (by state, by topic, the topic counts) for a
    /// record stored before they existed. For the one pass on open.
    fn add_listing_indexes(&mut self, record: &EventRecord) -> Result<(), StoreError> {
        self.by_state
            .insert((record.state.code(), record.id.0), ())
            .map_err(write_err)?;
        self.index_topic(record, true)
    }

    pub(super) fn take_quarantined(&mut self) -> Vec<Quarantined> {
        std::mem::take(&mut self.quarantined)
    }

    /// Replaces an event's stored record bytes as they are, bypassing the
    /// codec and every index: for tests that damage a record.
    pub(super) fn overwrite_record(&mut self, id: EventId, bytes: &[u8]) -> Result<(), StoreError> {
        self.events.insert(id.0, bytes).map_err(write_err)?;
        Ok(())
    }

    /// Moves an event whose record does not decode to the quarantine table (its
    /// record and payload bytes kept as they are) and removes every index entry
    /// that leads to it, so neither a dispatcher nor a listing meets it again.
    /// Returns false when there was nothing to move: the event is gone, or its
    /// record decodes after all.
    pub fn quarantine(&mut self, id: EventId) -> Result<bool, StoreError> {
        let raw = match self.events.get(id.0).map_err(write_err)? {
            Some(raw) => raw.value().to_vec(),
            None => return Ok(false),
        };
        let error = match super::codec::decode_event(&raw) {
            Ok(_) => return Ok(false),
            Err(e) => e,
        };
        let payload = self
            .payloads
            .remove(id.0)
            .map_err(write_err)?
            .map(|v| v.value().to_vec())
            .unwrap_or_default();
        self.events.remove(id.0).map_err(write_err)?;
        self.unindexed.remove(id.0).map_err(write_err)?;
        self.deferred.remove(&id.0);
        self.quarantine
            .insert(id.0, (raw.as_slice(), payload.as_slice()))
            .map_err(write_err)?;
        let mut attempts_removed = 0u64;
        self.attempts
            .retain_in((id.0, 0u32)..=(id.0, u32::MAX), |_, attempt| {
                attempts_removed += super::budget::attempt_footprint(attempt.len() as u64);
                false
            })
            .map_err(write_err)?;
        // The event as it was counted (its payload, record and attempts)
        // goes; its raw bytes in quarantine stay.
        self.footprint_delta -= (super::budget::payload_footprint(payload.len() as u64)
            + super::budget::undecodable_record_footprint(raw.len() as u64)
            + attempts_removed) as i64;
        self.footprint_delta +=
            super::budget::quarantined_footprint(raw.len() as u64, payload.len() as u64) as i64;
        self.quarantined.push(Quarantined { id, error });
        self.unindex_undecodable(id.0)
    }

    /// Removes the index entries of an event whose record cannot be read, so
    /// whose destination, state, topic and due time are unknown: every
    /// destination and topic the store knows is tried. Slow, and only for the
    /// rare quarantined record.
    fn unindex_undecodable(&mut self, id: u128) -> Result<bool, StoreError> {
        // The destinations and topics are read from the count tables.
        self.flush_counts()?;
        let mut destinations: Vec<String> = Vec::new();
        for entry in self.counts.iter().map_err(write_err)? {
            let (key, _) = entry.map_err(write_err)?;
            let dest = key.value().0;
            if destinations.last().map(String::as_str) != Some(dest) {
                destinations.push(dest.to_string());
            }
        }
        for dest in &destinations {
            for state in EventState::ALL {
                let removed = self
                    .by_dest_state
                    .remove((dest.as_str(), state.code(), id))
                    .map_err(write_err)?
                    .is_some();
                if removed {
                    self.count_state(dest, state, -1);
                }
            }
            let mut due_keys = Vec::new();
            for entry in self
                .due
                .range((dest.as_str(), i64::MIN, 0u128)..=(dest.as_str(), i64::MAX, u128::MAX))
                .map_err(write_err)?
            {
                let (key, _) = entry.map_err(write_err)?;
                let (_, due_ms, entry_id) = key.value();
                if entry_id == id {
                    due_keys.push(due_ms);
                }
            }
            for due_ms in due_keys {
                self.due
                    .remove((dest.as_str(), due_ms, id))
                    .map_err(write_err)?;
            }
        }
        for state in EventState::ALL {
            self.by_state
                .remove((state.code(), id))
                .map_err(write_err)?;
        }
        let mut topics: Vec<String> = Vec::new();
        for entry in self.topics.iter().map_err(write_err)? {
            let (key, _) = entry.map_err(write_err)?;
            topics.push(key.value().to_string());
        }
        for topic in &topics {
            let found = self
                .by_topic
                .remove((topic.as_str(), id))
                .map_err(write_err)?
                .is_some();
            if found {
                self.count_topic(topic, false);
            }
        }
        Ok(true)
    }

    pub(super) fn put_runtime(
        &mut self,
        destination: &str,
        runtime: &DestinationRuntime,
    ) -> Result<(), StoreError> {
        self.runtime
            .insert(destination, encode(runtime).as_slice())
            .map_err(write_err)?;
        Ok(())
    }

    pub(super) fn purge(
        &mut self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let batch = self.purge_finished(super::ulid_floor(cutoff), limit, &|_| false)?;
        // The keys' table has no time index, so expiring them reads all of
        // it: once per purge round (its last batch), not per batch.
        if !batch.more_left {
            let window_start = (now - IDEMPOTENCY_WINDOW).timestamp_millis();
            let mut expired = 0u64;
            self.idempotency
                .retain(|(destination, key), (_, created_ms)| {
                    let keep = created_ms >= window_start;
                    if !keep {
                        expired += super::budget::idempotency_footprint(
                            destination.len() as u64,
                            key.len() as u64,
                        );
                    }
                    keep
                })
                .map_err(write_err)?;
            self.footprint_delta -= expired as i64;
        }
        Ok(batch.purged)
    }

    /// Removes up to `limit` finished events (delivered, failed, cancelled,
    /// skipped) whose ids are below `upper`, oldest first, with their
    /// payloads, attempts and index entries. They are found through the
    /// by-state index, so no event still owed is read, however many there
    /// are. Ids for which `spare` answers true are passed over (an event an
    /// operator is retrying right now, say). Answers how many were removed,
    /// and whether finished events below `upper` not spared are left beyond
    /// this batch.
    pub(super) fn purge_finished(
        &mut self,
        upper: u128,
        limit: usize,
        spare: &dyn Fn(EventId) -> bool,
    ) -> Result<PurgeBatch, StoreError> {
        // Spared ids are read past, but not without end: a batch stops
        // looking after this many index entries of a state.
        let scan_limit = limit.saturating_mul(16).max(limit + 1);
        let mut ids = Vec::new();
        let mut scan_cut = false;
        for state in EventState::ALL.into_iter().filter(|s| !s.awaits_delivery()) {
            let range = self
                .by_state
                .range((state.code(), 0)..(state.code(), upper))
                .map_err(write_err)?;
            let mut taken = 0;
            for (read, entry) in range.enumerate() {
                if read == scan_limit {
                    scan_cut = true;
                    break;
                }
                let id = entry.map_err(write_err)?.0.value().1;
                if spare(ulid::Ulid(id)) {
                    continue;
                }
                ids.push(id);
                taken += 1;
                // One more than the batch takes: whether any is left beyond it.
                if taken > limit {
                    break;
                }
            }
        }
        // The oldest `limit` of the states' oldest: ids are ULIDs. Whether
        // more are left is known from the index, not from how many this
        // batch removed (a record moved to quarantine is not counted).
        ids.sort_unstable();
        let more_left = scan_cut || ids.len() > limit;
        ids.truncate(limit);
        let mut purged = 0;
        for id in ids {
            let record = match self.events.get(id).map_err(write_err)? {
                Some(raw) => super::codec::decode_event(raw.value()),
                None => continue,
            };
            let record = match record {
                Ok(record) if !record.state.awaits_delivery() => record,
                Ok(_) => continue,
                Err(_) => {
                    self.quarantine(ulid::Ulid(id))?;
                    continue;
                }
            };
            self.ensure_indexed(id)?;
            self.index(&record, false)?;
            self.index_topic(&record, false)?;
            // What is taken out of the count is what was removed, at its
            // encoded length.
            let mut removed = 0u64;
            if let Some(raw) = self.events.remove(id).map_err(write_err)? {
                removed += super::budget::record_footprint(&record, raw.value().len() as u64);
            }
            if let Some(raw) = self.payloads.remove(id).map_err(write_err)? {
                removed += super::budget::payload_footprint(raw.value().len() as u64);
            }
            for n in 1..=record.attempt_count {
                if let Some(raw) = self.attempts.remove((id, n)).map_err(write_err)? {
                    removed += super::budget::attempt_footprint(raw.value().len() as u64);
                }
            }
            self.footprint_delta -= removed as i64;
            purged += 1;
        }
        Ok(PurgeBatch { purged, more_left })
    }

    /// Writes this transaction's change to the bytes the events hold into
    /// the meta table. A store that does not count them yet (written before
    /// the count existed) is left without it until a budget asks for it
    /// (`budget::count_stored_bytes` adds it up once).
    fn flush_footprint(&mut self) -> Result<(), StoreError> {
        let delta = std::mem::take(&mut self.footprint_delta);
        if delta == 0 {
            return Ok(());
        }
        let mut meta = self.txn.open_table(META).map_err(write_err)?;
        let current = meta
            .get(super::budget::STORED_BYTES_KEY)
            .map_err(write_err)?
            .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes));
        let Some(current) = current else {
            return Ok(());
        };
        let total = (current as i64 + delta).max(0) as u64;
        meta.insert(
            super::budget::STORED_BYTES_KEY,
            total.to_le_bytes().as_slice(),
        )
        .map_err(write_err)?;
        let check =
            super::budget::footprint_check(&self.events, &self.attempts).map_err(write_err)?;
        meta.insert(super::budget::STORED_CHECK_KEY, check.as_slice())
            .map_err(write_err)?;
        self.footprint_total = Some(total);
        Ok(())
    }

    /// Whether this transaction left an event finished: stored one as a
    /// duplicate, or changed one that is finished afterwards.
    pub(super) fn finished_some(&self) -> bool {
        self.finished_some
    }

    /// What this transaction has added to the bytes the events hold so far.
    pub(super) fn footprint_pending(&self) -> i64 {
        self.footprint_delta
    }

    /// The bytes the events hold once this transaction commits, if it
    /// changed them.
    pub(super) fn take_footprint_total(&mut self) -> Option<u64> {
        self.footprint_total.take()
    }
}

/// What one batch of [`Tables::purge_finished`] did.
pub(super) struct PurgeBatch {
    /// Events removed.
    pub(super) purged: usize,
    /// Finished events (below the batch's bound) are left that this batch
    /// did not reach.
    pub(super) more_left: bool,
}

/// Where a record sits in the due index: its next attempt time, if its state
/// awaits delivery.
fn due_ms(record: &EventRecord) -> Option<i64> {
    record
        .next_attempt_at
        .filter(|_| record.state.awaits_delivery())
        .map(|at| at.timestamp_millis())
}

//! The disk budget (`store.max_size`): what the store holds is kept within
//! the file size the budget allows, finished events giving way first.
//!
//! How redb sizes its file decides the design. It grows the file when no
//! free page is left, by doubling it (until the file holds one 4 GiB region,
//! then a region at a time), so the file's length jumps and says little about
//! what it holds; pages freed by a removal are reused by later writes, and
//! the file shrinks only when its whole upper part is free. Its exact
//! occupancy (`WriteTransaction::stats`) walks every page of every table,
//! seconds on a large store, and `Database::compact` needs the database to
//! itself (no reader, no writer): neither can run beside ingestion. So:
//!
//! - the *ceiling* is the largest length the file can reach by redb's growth
//!   steps from its length now without passing the budget;
//! - what the events hold is counted as they are written and removed (their
//!   footprint in pages, see [`entry_footprint`], kept in the meta table in
//!   the same transactions), plus a fixed allowance for redb's own pages and
//!   the small tables;
//! - at [`PURGE_AT`] of the ceiling, finished events are purged oldest first
//!   (ahead of `retention`) in small batches through the group commit, down
//!   to [`PURGE_TO`], so freed pages are reused and the file stops growing;
//! - at [`FULL_AT`], with no finished event left to purge, the store is full:
//!   new events are refused (`StoreError::Full`, the API's 507) before they
//!   are queued, and an insert already queued that would pass the ceiling is
//!   refused inside its commit, so nothing acknowledged is left unstored.
//!   Ingestion resumes by itself once deliveries and purges bring it below
//!   [`RESUME_BELOW`].

use super::tables::{Tables, ATTEMPTS, EVENTS, IDEMPOTENCY, META, PAYLOADS, QUARANTINE};
use super::{read_err, write_err, RedbStore, StoreError};
use crate::model::EventRecord;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::Notify;

/// The meta key of the bytes the events hold (little-endian u64).
pub(super) const STORED_BYTES_KEY: &str = "stored_bytes";
/// The meta key of what the events and attempts tables were when the count
/// was last written (see [`footprint_check`]).
pub(super) const STORED_CHECK_KEY: &str = "stored_bytes_check";

/// redb's page size.
const PAGE: u64 = 4096;
/// The region size from which redb grows its file a region at a time.
const REGION: u64 = 4 << 30;
/// What one table entry takes in a leaf besides its key and value bytes
/// (its slot and lengths, and its share of the leaf left unfilled), as
/// measured against redb's own count of allocated pages (see this module's
/// tests).
const ENTRY_OVERHEAD: u64 = 24;
/// A string in a tuple key carries its length.
const KEY_STR_LEN: u64 = 4;
/// What the insert check reckons a new event's record, index entries and
/// idempotency key take before they are encoded (the count then takes
/// them at their encoded lengths).
const NEW_EVENT_ALLOWANCE: u64 = 1024;
/// redb's own pages (headers, allocator state, the table of tables) and the
/// small tables (meta, counts, runtime, notices, statistics), and the pages
/// a commit copies before the ones it replaces are free again.
const BASE_ALLOWANCE: u64 = 256 * 1024;
/// The smallest budget: an empty store's file is 72 KiB, and a budget
/// must leave room for events beside [`BASE_ALLOWANCE`].
pub const MIN_BUDGET: u64 = 1 << 20;

/// Fractions of the ceiling, in thousandths.
pub const PURGE_AT: u64 = 900;
pub const PURGE_TO: u64 = 800;
pub const FULL_AT: u64 = 950;
pub const RESUME_BELOW: u64 = 900;

/// The bytes an entry of `bytes` (key and value) takes: a small one shares
/// a leaf with others (appended in id order, they fill it), a large one gets
/// a run of pages of its own, a power of two of them (redb's allocator is a
/// buddy allocator).
pub(super) fn entry_footprint(bytes: u64) -> u64 {
    let entry = bytes + ENTRY_OVERHEAD;
    if entry <= PAGE / 4 {
        entry
    } else {
        entry.next_power_of_two().max(PAGE)
    }
}

/// What a payload of `len` bytes takes (its key is the event id).
pub(super) fn payload_footprint(len: u64) -> u64 {
    entry_footprint(16 + len)
}

/// What an event's entries keyed by its destination and topic take: by
/// state, by destination and state, by topic, and due (counted throughout,
/// as if always owed: the entry comes and goes with the state).
fn index_footprint(destination_len: u64, topic_len: u64) -> u64 {
    entry_footprint(1 + 16)
        + entry_footprint(KEY_STR_LEN + destination_len + 1 + 16)
        + entry_footprint(KEY_STR_LEN + topic_len + 16)
        + entry_footprint(KEY_STR_LEN + destination_len + 8 + 16)
}

/// What an event's record of `record_len` encoded bytes and its index
/// entries take.
pub(super) fn record_footprint(record: &EventRecord, record_len: u64) -> u64 {
    entry_footprint(16 + record_len)
        + index_footprint(record.destination.len() as u64, record.topic.len() as u64)
}

/// What a record that does not decode was counted at: its destination and
/// topic unknown, as if a few bytes each.
pub(super) fn undecodable_record_footprint(record_len: u64) -> u64 {
    entry_footprint(16 + record_len) + index_footprint(8, 8)
}

/// What an attempt record of `encoded_len` bytes takes (its key is the event
/// id and the attempt's number).
pub(super) fn attempt_footprint(encoded_len: u64) -> u64 {
    entry_footprint(16 + 4 + encoded_len)
}

/// What an idempotency key's entry takes (its key is the destination and
/// the key; its value the first event's id and time).
pub(super) fn idempotency_footprint(destination_len: u64, key_len: u64) -> u64 {
    entry_footprint(2 * KEY_STR_LEN + destination_len + key_len + 16 + 8)
}

/// What the events and attempts tables are now, in a few bytes read without
/// a walk (redb keeps each table's length in its header): their lengths and
/// the first and last event ids. It is written beside the count in the same
/// transactions. A binary from before the budget changes these tables
/// without the count (its schema version is the same), and then the check
/// no longer matches what the tables are, so the count is taken again.
pub(super) fn footprint_check(
    events: &impl ReadableTable<u128, &'static [u8]>,
    attempts: &impl ReadableTableMetadata,
) -> Result<Vec<u8>, redb::StorageError> {
    let first = events.first()?.map_or(0, |(k, _)| k.value());
    let last = events.last()?.map_or(0, |(k, _)| k.value());
    let mut check = Vec::with_capacity(48);
    check.extend_from_slice(&events.len()?.to_le_bytes());
    check.extend_from_slice(&attempts.len()?.to_le_bytes());
    check.extend_from_slice(&first.to_le_bytes());
    check.extend_from_slice(&last.to_le_bytes());
    Ok(check)
}

/// The largest length redb's growth steps take a file of `file_len` bytes to
/// without passing `budget`. A file already past it (the budget was lowered)
/// has the budget as its ceiling: it is not shrunk, and what it holds is kept
/// within the budget, so it does not grow.
pub fn ceiling(file_len: u64, budget: u64) -> u64 {
    if file_len >= budget {
        return budget;
    }
    let mut ceiling = file_len.max(PAGE);
    while ceiling < REGION && ceiling.saturating_mul(2) <= budget {
        ceiling *= 2;
    }
    if ceiling >= REGION {
        ceiling += (budget - ceiling) / REGION * REGION;
    }
    ceiling
}

/// `bytes` for people: "7.6 MiB".
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value >= 100.0 || value.fract() < 0.05 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Where the store stands against its budget: `GET /v1/status`'s `store`,
/// the TUI header's warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetUse {
    /// What the store holds (counted, see the module's notes).
    pub used_bytes: u64,
    /// The largest the file can grow to within the budget.
    pub ceiling_bytes: u64,
    /// `store.max_size`.
    pub budget_bytes: u64,
    /// The file's length now.
    pub file_bytes: u64,
    /// New events are refused until deliveries free room.
    pub full: bool,
}

impl BudgetUse {
    /// The words of a refusal: what is used of what.
    pub fn refusal(&self) -> String {
        format!(
            "{} used of the {} the file may grow to within store.max_size = {}, by events still owed; ingestion resumes when deliveries free room",
            format_bytes(self.used_bytes),
            format_bytes(self.ceiling_bytes),
            format_bytes(self.budget_bytes)
        )
    }
}

/// The budget's live state, shared by the store's handles and its writer.
pub(super) struct Budget {
    max: u64,
    /// What the events hold, as of the last commit.
    stored: AtomicU64,
    file_len: AtomicU64,
    full: AtomicBool,
    /// False once a purge left no finished event behind its batch; true
    /// again when a commit leaves one finished.
    finished_left: AtomicBool,
    /// What the store holds was at or above [`PURGE_AT`] after the last
    /// commit: the purge is woken when it crosses the mark, not by every
    /// commit above it (its own among them).
    at_purge_mark: AtomicBool,
    /// Woken when what the store holds reaches [`PURGE_AT`].
    pressure: Notify,
}

impl Budget {
    fn new(max: u64, stored: u64, file_len: u64) -> Budget {
        let budget = Budget {
            max,
            stored: AtomicU64::new(stored),
            file_len: AtomicU64::new(file_len),
            full: AtomicBool::new(false),
            finished_left: AtomicBool::new(true),
            at_purge_mark: AtomicBool::new(false),
            pressure: Notify::new(),
        };
        budget.update();
        budget
    }

    fn used(&self) -> u64 {
        self.stored.load(Ordering::SeqCst) + BASE_ALLOWANCE
    }

    fn ceiling(&self) -> u64 {
        ceiling(self.file_len.load(Ordering::SeqCst), self.max)
    }

    fn mark(&self, thousandths: u64) -> u64 {
        self.ceiling() / 1000 * thousandths
    }

    pub(super) fn usage(&self) -> BudgetUse {
        BudgetUse {
            used_bytes: self.used(),
            ceiling_bytes: self.ceiling(),
            budget_bytes: self.max,
            file_bytes: self.file_len.load(Ordering::SeqCst),
            full: self.full.load(Ordering::SeqCst),
        }
    }

    /// After a commit: what the events hold now (when it changed), whether
    /// it left an event finished, and the file's length.
    pub(super) fn note_commit(&self, stored: Option<u64>, finished_some: bool, file_len: u64) {
        if let Some(stored) = stored {
            self.stored.store(stored, Ordering::SeqCst);
        }
        if finished_some {
            self.finished_left.store(true, Ordering::SeqCst);
        }
        self.file_len.store(file_len, Ordering::SeqCst);
        self.update();
    }

    /// Sets or clears "full" from what is held now, and wakes the purge when
    /// it reaches the purge mark.
    fn update(&self) {
        let used = self.used();
        let at_mark = used >= self.mark(PURGE_AT);
        if self.at_purge_mark.swap(at_mark, Ordering::SeqCst) != at_mark && at_mark {
            self.pressure.notify_one();
        }
        if self.full.load(Ordering::SeqCst) {
            if used < self.mark(RESUME_BELOW) {
                self.full.store(false, Ordering::SeqCst);
            }
        } else if (used >= self.mark(FULL_AT) && !self.finished_left.load(Ordering::SeqCst))
            || used >= self.ceiling()
        {
            // At the ceiling itself the purge has fallen behind ingestion:
            // refusing is what keeps the file within the budget.
            self.full.store(true, Ordering::SeqCst);
        }
    }

    /// Whether an insert adding `adding` bytes, in a commit that has added
    /// `pending` so far, fits under the ceiling.
    fn fits(&self, pending: i64, adding: u64) -> bool {
        let after = self.used() as i64 + pending + adding as i64;
        after < self.ceiling() as i64
    }
}

impl RedbStore {
    /// Keeps the store within `max` bytes (`store.max_size`). Counts what
    /// the events hold first if this store has never counted it (once: it
    /// reads every record), so call it at start, before ingestion.
    pub fn limit_size(&self, max: u64) -> Result<(), StoreError> {
        let db = self.database()?;
        let stored = count_stored_bytes(&db, self.path())?;
        let budget = Budget::new(max, stored, self.file_bytes());
        let _ = self.inner.stats.budget.set(budget);
        Ok(())
    }

    /// Where the store stands against its budget; `None` without one.
    pub fn budget_use(&self) -> Option<BudgetUse> {
        self.inner.stats.budget.get().map(Budget::usage)
    }

    /// Whether finished events should be purged now for room: some may be
    /// left (the last purge did not run out of them, or a commit since
    /// finished one), and what the store holds is at or above [`PURGE_TO`]
    /// or it is full. False in the steady full state (owed events alone), so
    /// the purge writes nothing then.
    pub fn budget_wants_purge(&self) -> bool {
        let Some(budget) = self.inner.stats.budget.get() else {
            return false;
        };
        budget.finished_left.load(Ordering::SeqCst)
            && (budget.full.load(Ordering::SeqCst) || budget.used() >= budget.mark(PURGE_TO))
    }

    /// Whether what the store holds has reached [`PURGE_AT`]: the start of a
    /// purge run (which goes on down to [`PURGE_TO`]).
    pub fn budget_at_purge_mark(&self) -> bool {
        self.inner
            .stats
            .budget
            .get()
            .is_some_and(|b| b.used() >= b.mark(PURGE_AT))
    }

    /// Resolves when a commit brings what the store holds to the purge mark
    /// (never without a budget).
    pub async fn budget_pressure(&self) {
        match self.inner.stats.budget.get() {
            Some(budget) => budget.pressure.notified().await,
            None => std::future::pending().await,
        }
    }

    /// Removes up to `limit` finished events, oldest first, whatever their
    /// age, in one write of the group commit: a batch small enough not to
    /// hold ingestion up. Passes over the ids for which `spare` answers true
    /// (asked inside the commit): events the engine is still working on,
    /// such as an operator's retry in flight. Answers how many were removed.
    pub async fn purge_finished_oldest(
        &self,
        limit: usize,
        spare: impl Fn(crate::model::EventId) -> bool + Send + 'static,
    ) -> Result<usize, StoreError> {
        let batch = self
            .write(move |tables| tables.purge_finished(u128::MAX, limit, &spare))
            .await?;
        if let Some(budget) = self.inner.stats.budget.get() {
            budget
                .finished_left
                .store(batch.more_left, Ordering::SeqCst);
            budget.update();
        }
        Ok(batch.purged)
    }

    /// The refusal of a new event while the store is full.
    pub(super) fn refuse_if_full(&self) -> Result<(), StoreError> {
        match self.inner.stats.budget.get() {
            Some(budget) if budget.full.load(Ordering::SeqCst) => Err(StoreError::Full {
                usage: budget.usage(),
            }),
            _ => Ok(()),
        }
    }

    /// The check inside a commit: refuses an event of `payload_len` bytes
    /// that would take the store past its ceiling.
    pub(super) fn insert_check(
        &self,
    ) -> impl Fn(&Tables<'_>, u64) -> Result<(), StoreError> + Send + Sync + 'static {
        let stats = self.inner.stats.clone();
        move |tables, payload_len| match stats.budget.get() {
            Some(budget)
                if !budget.fits(
                    tables.footprint_pending(),
                    payload_footprint(payload_len) + NEW_EVENT_ALLOWANCE,
                ) =>
            {
                Err(StoreError::Full {
                    usage: BudgetUse {
                        full: true,
                        ..budget.usage()
                    },
                })
            }
            _ => Ok(()),
        }
    }
}

/// The bytes the events of the store at `path` hold, from the meta table;
/// added up once from every record (and stored) when the store has never
/// counted them, or when the tables are not what they were when the count
/// was written (a binary from before the budget wrote the store since, see
/// [`footprint_check`]). Done in one write transaction of its own, which
/// waits for the writer's commit in progress, so no commit's change is
/// missed.
fn count_stored_bytes(db: &Database, path: &Path) -> Result<u64, StoreError> {
    let mut stale = false;
    {
        let txn = db.begin_read().map_err(read_err)?;
        let meta = txn.open_table(META).map_err(read_err)?;
        let events = txn.open_table(EVENTS).map_err(read_err)?;
        let attempts = txn.open_table(ATTEMPTS).map_err(read_err)?;
        let stored = meta
            .get(STORED_BYTES_KEY)
            .map_err(read_err)?
            .and_then(|raw| raw.value().try_into().ok().map(u64::from_le_bytes));
        let check = meta.get(STORED_CHECK_KEY).map_err(read_err)?;
        let now = footprint_check(&events, &attempts).map_err(read_err)?;
        match (stored, check) {
            (Some(stored), Some(check)) if check.value() == now.as_slice() => return Ok(stored),
            (Some(_), _) => stale = true,
            (None, _) => {}
        }
    }
    let started = std::time::Instant::now();
    let txn = db.begin_write().map_err(write_err)?;
    let mut total = 0u64;
    let mut events_counted = 0u64;
    {
        let events = txn.open_table(EVENTS).map_err(write_err)?;
        let payloads = txn.open_table(PAYLOADS).map_err(write_err)?;
        let attempts = txn.open_table(ATTEMPTS).map_err(write_err)?;
        for entry in events.iter().map_err(write_err)? {
            let (key, raw) = entry.map_err(write_err)?;
            let record_len = raw.value().len() as u64;
            total += match super::codec::decode_event(raw.value()) {
                Ok(record) => {
                    payload_footprint(record.payload_bytes) + record_footprint(&record, record_len)
                }
                // A record that does not decode: counted as its move to
                // quarantine (by the next reader) subtracts it.
                Err(_) => {
                    let payload_len = payloads
                        .get(key.value())
                        .map_err(write_err)?
                        .map_or(0, |v| v.value().len() as u64);
                    payload_footprint(payload_len) + undecodable_record_footprint(record_len)
                }
            };
            events_counted += 1;
        }
        for entry in attempts.iter().map_err(write_err)? {
            let (_, raw) = entry.map_err(write_err)?;
            total += attempt_footprint(raw.value().len() as u64);
        }
        let keys = txn.open_table(IDEMPOTENCY).map_err(write_err)?;
        for entry in keys.iter().map_err(write_err)? {
            let (key, _) = entry.map_err(write_err)?;
            let (destination, key) = key.value();
            total += idempotency_footprint(destination.len() as u64, key.len() as u64);
        }
        let quarantine = txn.open_table(QUARANTINE).map_err(write_err)?;
        for entry in quarantine.iter().map_err(write_err)? {
            let (_, row) = entry.map_err(write_err)?;
            let (raw, payload) = row.value();
            total += quarantined_footprint(raw.len() as u64, payload.len() as u64);
        }
        let check = footprint_check(&events, &attempts).map_err(write_err)?;
        let mut meta = txn.open_table(META).map_err(write_err)?;
        meta.insert(STORED_BYTES_KEY, total.to_le_bytes().as_slice())
            .map_err(write_err)?;
        meta.insert(STORED_CHECK_KEY, check.as_slice())
            .map_err(write_err)?;
    }
    txn.commit().map_err(write_err)?;
    if events_counted > 0 || stale {
        tracing::info!(
            store = %path.display(),
            events = events_counted,
            bytes = total,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "counted what the events of the store hold (written before its budget, or since by a binary without one)"
        );
    }
    Ok(total)
}

/// What a record moved to quarantine holds there: one entry of its raw
/// record and payload bytes.
pub(super) fn quarantined_footprint(record_len: u64, payload_len: u64) -> u64 {
    payload_footprint(record_len + payload_len)
}

#[cfg(test)]
mod tests;

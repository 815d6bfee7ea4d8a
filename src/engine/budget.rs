//! Keeps the store within `store.max_size`: when the store reaches its purge
//! mark, finished events are purged oldest first, ahead of `retention`, in
//! small batches that ride the group commit between ingests; while it is
//! full, the events deliveries finish are purged as they finish, and the
//! operator hears when it fills (a `store_full` notice, the log) and when
//! ingestion resumes (the log; the TUI header and `GET /v1/status` show it
//! throughout). The store itself decides full or not (see `store::budget`).

use super::Engine;
use crate::model::{EventId, NoticeCause, NoticeKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Finished events removed per write: small enough that the commit carrying
/// them, and the ingests sharing it, are not held up.
pub const PURGE_BATCH: usize = 256;
/// How often a full store (or one at its purge mark) is looked at again:
/// deliveries finish events without waking anyone.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// The events running bulk jobs still have to retry, so the budget's purge
/// leaves them (finished events, most of them) for the job: counted per id,
/// as two jobs may hold the same one.
#[derive(Default)]
pub(super) struct BulkOwed {
    ids: Mutex<HashMap<EventId, usize, foldhash::fast::RandomState>>,
}

impl BulkOwed {
    fn holds(&self, id: EventId) -> bool {
        self.ids.lock().expect("bulk owed lock").contains_key(&id)
    }
}

/// A bulk job lane's hold on its ids; released when dropped.
pub(super) struct BulkHold {
    owed: Arc<BulkOwed>,
    ids: Vec<EventId>,
}

impl Drop for BulkHold {
    fn drop(&mut self) {
        let mut held = self.owed.ids.lock().expect("bulk owed lock");
        for id in &self.ids {
            if let Some(n) = held.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    held.remove(id);
                }
            }
        }
    }
}

impl Engine {
    /// Keeps the budget's purge off `ids` while the returned hold lives: a
    /// bulk job's lane holds the ids it has still to retry. Nothing to hold
    /// without a budget.
    pub(super) fn hold_from_purge(
        &self,
        ids: impl IntoIterator<Item = EventId>,
    ) -> Option<BulkHold> {
        self.inner.store.budget_use()?;
        let ids: Vec<EventId> = ids.into_iter().collect();
        let owed = self.inner.bulk_owed.clone();
        {
            let mut held = owed.ids.lock().expect("bulk owed lock");
            for id in &ids {
                *held.entry(*id).or_default() += 1;
            }
        }
        Some(BulkHold { owed, ids })
    }

    /// Whether the purge must leave `id` for now: an attempt of it is in
    /// flight (an operator's retry of a finished event, whose record the
    /// attempt's result must find), or a running bulk job has still to
    /// retry it.
    fn purge_spares(&self) -> crate::store::SpareFn {
        let destinations: Vec<Arc<super::Destination>> = self
            .inner
            .destinations
            .read()
            .expect("destinations lock")
            .values()
            .cloned()
            .collect();
        let owed = self.inner.bulk_owed.clone();
        Box::new(move |id| {
            owed.holds(id)
                || destinations
                    .iter()
                    .any(|d| d.in_flight.lock().expect("in-flight lock").contains(id))
        })
    }

    /// Where the store stands against `store.max_size` (no I/O: the store
    /// keeps it up to date at each commit); `None` without a budget.
    pub fn store_budget(&self) -> Option<crate::store::BudgetUse> {
        self.inner.store.budget_use()
    }
}

pub(super) async fn keep(engine: Engine) {
    let store = engine.inner.store.clone();
    if store.budget_use().is_none() {
        return;
    }
    let mut was_full = false;
    loop {
        // Only when a purge can remove something: at the steady full state
        // (owed events alone) an empty purge would be a commit every tick.
        if (store.budget_at_purge_mark() || store.budget_use().is_some_and(|u| u.full))
            && store.budget_wants_purge()
        {
            purge_for_room(&engine).await;
        }
        if let Some(usage) = store.budget_use() {
            if usage.full && !was_full {
                tracing::warn!(
                    used = usage.used_bytes,
                    ceiling = usage.ceiling_bytes,
                    budget = usage.budget_bytes,
                    "store full: new events are refused (507) until deliveries free room"
                );
                engine.record_notice(
                    NoticeKind::StoreFull {
                        used_bytes: usage.used_bytes,
                        ceiling_bytes: usage.ceiling_bytes,
                        budget_bytes: usage.budget_bytes,
                    },
                    None,
                    None,
                    NoticeCause::Store,
                );
            } else if !usage.full && was_full {
                tracing::info!(
                    used = usage.used_bytes,
                    ceiling = usage.ceiling_bytes,
                    "the store has room again: ingestion resumes"
                );
            }
            was_full = usage.full;
        }
        let next = engine.inner.clock.now()
            + chrono::Duration::from_std(CHECK_EVERY).expect("small duration");
        tokio::select! {
            _ = store.budget_pressure() => {}
            _ = engine.inner.clock.sleep_until(next) => {}
            _ = engine.inner.shutdown.cancelled() => return,
        }
    }
}

/// One purge run: batches until the store is back under its lower mark or
/// no finished event is left.
async fn purge_for_room(engine: &Engine) {
    let store = &engine.inner.store;
    let mut purged = 0;
    while !engine.inner.shutdown.is_cancelled() {
        match store
            .purge_finished_oldest(PURGE_BATCH, engine.purge_spares())
            .await
        {
            Ok(n) => {
                purged += n;
                if !store.budget_wants_purge() {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "purging finished events for room failed; will try again");
                break;
            }
        }
    }
    if purged > 0 {
        tracing::info!(
            purged,
            "purged the oldest finished events to stay within store.max_size"
        );
    }
}

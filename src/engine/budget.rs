//! Keeps the store within `store.max_size`: when the store reaches its purge
//! mark, finished events are purged oldest first, ahead of `retention`, in
//! small batches that ride the group commit between ingests; while it is
//! full, the events deliveries finish are purged as they finish, and the
//! operator hears when it fills (a `store_full` notice, the log) and when
//! ingestion resumes (the log; the TUI header and `GET /v1/status` show it
//! throughout). The store itself decides full or not (see `store::budget`).

use super::Engine;
use crate::model::{NoticeCause, NoticeKind};
use std::time::Duration;

/// Finished events removed per write: small enough that the commit carrying
/// them, and the ingests sharing it, are not held up.
pub const PURGE_BATCH: usize = 256;
/// How often a full store (or one at its purge mark) is looked at again:
/// deliveries finish events without waking anyone.
const CHECK_EVERY: Duration = Duration::from_millis(250);

impl Engine {
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
        match store.purge_finished_oldest(PURGE_BATCH).await {
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

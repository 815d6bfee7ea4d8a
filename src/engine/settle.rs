//! "Has the engine settled?": the signal tests (and anything else that must know
//! the engine has done everything it owes *so far*) wait on before asserting that
//! something did not happen.

use super::Engine;
use std::time::Duration;

/// How often `settled` looks again while an attempt runs or a dispatcher has
/// work it has not claimed yet.
const SETTLE_POLL: Duration = Duration::from_millis(5);

impl Engine {
    /// Resolves once the engine has nothing left to do at the clock's current
    /// time: no attempt is in flight, no bulk job is still running, and no event
    /// of an active (enabled, unpaused) destination is due at or before `now`.
    /// Every dispatcher is then idle, waiting for time to pass or for new work.
    ///
    /// Why a test cannot pass vacuously by waiting on this instead of sleeping: a
    /// sleep only gives the engine *some* time, and on a loaded machine a
    /// dispatcher may not have woken yet when the assertion runs, so "no retry
    /// happened" would hold without ever being tested. `settled` instead observes
    /// the work itself. An event that is due but not yet claimed is still in the
    /// due index, an event being attempted is counted in flight, and an attempt
    /// releases its in-flight claim only after its outcome and next due time are
    /// written; so until every owed attempt has actually been made and recorded,
    /// one of the conditions fails and this keeps waiting. A slow machine only
    /// makes it resolve later, never earlier.
    ///
    /// Under a real clock an engine with a steady stream of due work may never
    /// settle; callers bound the wait with their own deadline.
    pub async fn settled(&self) {
        loop {
            if self.is_settled().await {
                return;
            }
            // An attempt finishing or a dispatcher claiming its work: neither is
            // announced to anyone but the dispatcher, hence the short poll.
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }

    async fn is_settled(&self) -> bool {
        if self.attempts_in_flight() != 0 {
            return false;
        }
        // A fan-out's events are acknowledged a commit before they are due.
        if self.inner.store.indexing_pending() {
            return false;
        }
        let jobs_running = self
            .inner
            .jobs
            .lock()
            .expect("jobs lock")
            .values()
            .any(|job| job.is_running());
        if jobs_running {
            return false;
        }
        let engine = self.clone();
        // The due index is a store read: keep it off the async workers.
        let nothing_due = tokio::task::spawn_blocking(move || {
            let now = engine.inner.clock.now();
            let nobody_in_flight = crate::model::EventIdSet::default();
            engine.destination_handles().iter().all(|destination| {
                let runtime = destination.runtime();
                if runtime.disabled || runtime.paused {
                    // Held: its due events are owed nothing until it is resumed.
                    return true;
                }
                match engine
                    .inner
                    .store
                    .next_due(&destination.id, &nobody_in_flight)
                {
                    Ok(next) => next.is_none_or(|at| at > now),
                    // Unreadable: not provably settled.
                    Err(_) => false,
                }
            })
        })
        .await
        .unwrap_or(false);
        // An attempt may have started while the index was read.
        nothing_due && self.attempts_in_flight() == 0
    }
}

//! Running bulk retry jobs, and keeping them in the store so that a restart
//! resumes them.
//!
//! A job's ids are fixed when it starts, grouped by destination into lanes,
//! and stored with it. Each lane's progress is a cursor (every id before it
//! is done) and the indexes done beyond it (attempts finish out of order, at
//! most a lane's share of the concurrency apart), so the stored counts are
//! always exactly those of the ids the stored progress says are done. The
//! progress is saved every [`PROGRESS_SAVE`] through the store's group
//! commit, not once per event.
//!
//! A restart (clean or not) resumes each running job with the ids its
//! stored progress does not cover. Of those, the ones this job already
//! retried after that save (an attempt triggered by a bulk job, made since
//! the job started, is in the event's history) are counted from that attempt
//! and not retried again; only an attempt in flight at a kill, which left no
//! record, is made again (at-least-once for that one attempt). Attempts carry
//! no job id, so a bulk attempt by another job over the same event in that
//! window (after this job's last save, before the stop) counts for this one
//! too: the event was retried, which is what the job was for.
//!
//! That check reads the history of every id the job had not done at its last
//! save, in one read transaction on the blocking pool, once per resume.

use super::dispatcher::{spawn_attempt, AttemptError, Attempted, STORE_ERROR_BACKOFF};
use super::{actions::BulkSelection, Destination, Engine, EngineError, JobProgress, JobState};
use crate::model::{AttemptRecord, EventId, Trigger};
use crate::store::{BulkJobRow, BulkLane};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a running job's progress is saved (when it moved).
const PROGRESS_SAVE: Duration = Duration::from_millis(250);

/// How far one lane (a destination's share of a job) has got.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct LaneProgress {
    destination: String,
    /// Every id before this index is done.
    cursor: usize,
    /// Indexes at or after the cursor that are done too.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    done_ahead: BTreeSet<usize>,
}

impl LaneProgress {
    fn complete(&mut self, index: usize) {
        if index < self.cursor {
            return;
        }
        self.done_ahead.insert(index);
        while self.done_ahead.remove(&self.cursor) {
            self.cursor += 1;
        }
    }

    fn is_done(&self, index: usize) -> bool {
        index < self.cursor || self.done_ahead.contains(&index)
    }
}

/// The record of a job kept in the store.
#[derive(Debug, Serialize, Deserialize)]
struct StoredJob {
    progress: JobProgress,
    /// The attempts not made because nothing was owed (also in
    /// `progress.skipped`; kept here for records written before it was).
    #[serde(default)]
    skipped: u64,
    lanes: Vec<LaneProgress>,
}

/// What became of one id of a job.
enum Outcome {
    Succeeded,
    Failed,
    /// No attempt was made: nothing was owed (the event changed meanwhile,
    /// is a duplicate, or its destination is gone). Counted as skipped,
    /// neither delivered nor failed.
    NothingOwed,
}

impl Outcome {
    fn of(attempted: Attempted) -> Outcome {
        match attempted {
            Attempted::Made(summary) if summary.success => Outcome::Succeeded,
            Attempted::Made(_) => Outcome::Failed,
            Attempted::NothingOwed => Outcome::NothingOwed,
        }
    }

    /// An attempt already recorded: delivered when its receiver answered 2xx.
    fn of_record(record: &AttemptRecord) -> Outcome {
        if record.status.is_some_and(|s| (200..=299).contains(&s)) {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        }
    }
}

#[derive(Default)]
struct Tally {
    done: u64,
    succeeded: u64,
    failed: u64,
    skipped: u64,
    lanes: Vec<LaneProgress>,
    finished_at: Option<DateTime<Utc>>,
    /// Changed since the last save.
    unsaved: bool,
}

pub(super) struct BulkJob {
    id: ulid::Ulid,
    selection: BulkSelection,
    started_at: DateTime<Utc>,
    total: u64,
    tally: Mutex<Tally>,
    cancelled: AtomicBool,
    finished: AtomicBool,
    /// Held across a save (snapshot and commit), so that saves of this job
    /// commit in the order their snapshots were taken: a save never lands
    /// over a newer one, and a save that finds nothing changed knows the
    /// last snapshot is already durable.
    saving: tokio::sync::Mutex<()>,
}

impl BulkJob {
    fn new(
        id: ulid::Ulid,
        selection: BulkSelection,
        started_at: DateTime<Utc>,
        lanes: &[BulkLane],
    ) -> BulkJob {
        BulkJob {
            id,
            selection,
            started_at,
            total: lanes.iter().map(|lane| lane.ids.len() as u64).sum(),
            tally: Mutex::new(Tally {
                lanes: lanes
                    .iter()
                    .map(|lane| LaneProgress {
                        destination: lane.destination.clone(),
                        ..LaneProgress::default()
                    })
                    .collect(),
                ..Tally::default()
            }),
            cancelled: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            saving: tokio::sync::Mutex::new(()),
        }
    }

    /// A running job as the store kept it.
    fn restore(id: ulid::Ulid, stored: StoredJob) -> BulkJob {
        let progress = stored.progress;
        BulkJob {
            id,
            selection: progress.selection,
            started_at: progress.started_at,
            total: progress.total,
            tally: Mutex::new(Tally {
                done: progress.done,
                succeeded: progress.succeeded,
                failed: progress.failed,
                skipped: stored.skipped,
                lanes: stored.lanes,
                finished_at: None,
                unsaved: false,
            }),
            cancelled: AtomicBool::new(progress.state == JobState::Cancelled),
            finished: AtomicBool::new(false),
            saving: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether the job's runner has not yet finished (cancelled jobs still drain).
    pub(super) fn is_running(&self) -> bool {
        !self.finished.load(Ordering::SeqCst)
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    pub(super) fn cancel(&self) {
        if self.is_running() && !self.cancelled.swap(true, Ordering::SeqCst) {
            self.tally.lock().expect("job tally lock").unsaved = true;
        }
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().expect("job tally lock")
    }

    fn progress_of(&self, tally: &Tally) -> JobProgress {
        let finished = self.finished.load(Ordering::SeqCst);
        let state = if self.is_cancelled() {
            JobState::Cancelled
        } else if finished {
            JobState::Completed
        } else {
            JobState::Running
        };
        JobProgress {
            id: self.id.to_string(),
            total: self.total,
            done: tally.done,
            succeeded: tally.succeeded,
            failed: tally.failed,
            skipped: tally.skipped,
            state,
            finished,
            started_at: self.started_at,
            finished_at: tally.finished_at,
            selection: self.selection.clone(),
        }
    }

    pub(super) fn progress(&self) -> JobProgress {
        self.progress_of(&self.tally())
    }

    /// The record to store, whether anything changed since the last one
    /// (which this marks saved), and whether the job has finished.
    fn snapshot(&self) -> (Vec<u8>, bool, bool) {
        let mut tally = self.tally();
        let changed = std::mem::take(&mut tally.unsaved);
        let progress = self.progress_of(&tally);
        let finished = progress.finished;
        let stored = StoredJob {
            progress,
            skipped: tally.skipped,
            lanes: tally.lanes.clone(),
        };
        (
            serde_json::to_vec(&stored).expect("a job record serialises"),
            changed,
            finished,
        )
    }

    /// Marks the job finished now; the next save stores it so.
    fn finish(&self, at: DateTime<Utc>) {
        let mut tally = self.tally();
        tally.finished_at = Some(at);
        tally.unsaved = true;
        self.finished.store(true, Ordering::SeqCst);
    }

    fn record(&self, lane: usize, index: usize, outcome: Outcome) {
        let mut tally = self.tally();
        let Some(progress) = tally.lanes.get_mut(lane) else {
            return;
        };
        if progress.is_done(index) {
            return;
        }
        progress.complete(index);
        tally.done += 1;
        match outcome {
            Outcome::Succeeded => tally.succeeded += 1,
            Outcome::Failed => tally.failed += 1,
            Outcome::NothingOwed => tally.skipped += 1,
        }
        tally.unsaved = true;
    }

    /// The ids of each lane not done yet, with their indexes in the lane.
    fn remaining(&self, lanes: &[BulkLane]) -> Vec<Lane> {
        let tally = self.tally();
        lanes
            .iter()
            .enumerate()
            .map(|(n, lane)| {
                let progress = tally.lanes.get(n);
                Lane {
                    lane: n,
                    destination: lane.destination.clone(),
                    ids: lane
                        .ids
                        .iter()
                        .copied()
                        .enumerate()
                        .filter(|(i, _)| !progress.is_some_and(|p| p.is_done(*i)))
                        .collect(),
                }
            })
            .collect()
    }
}

/// The ids of one destination a job still has to retry.
struct Lane {
    lane: usize,
    destination: String,
    /// (index in the lane, event id)
    ids: Vec<(usize, EventId)>,
}

fn decode_job(row: &BulkJobRow) -> Result<StoredJob, serde_json::Error> {
    serde_json::from_slice(&row.record)
}

impl Engine {
    /// Starts a bulk retry job over `selection`. The job and its ids are
    /// stored before this returns; it runs in the background, on the engine's
    /// tracker, and starts no attempt once the engine is stopping (it is
    /// resumed by the next start).
    pub async fn start_bulk_retry(
        &self,
        selection: BulkSelection,
    ) -> Result<JobProgress, EngineError> {
        let engine = self.clone();
        let chosen = selection.clone();
        // The selection is a store read: on the blocking pool.
        let grouped = tokio::task::spawn_blocking(move || engine.select_ids(&chosen))
            .await
            .map_err(EngineError::ReadFailed)??;
        let lanes: Vec<BulkLane> = grouped
            .into_iter()
            .map(|(destination, ids)| BulkLane { destination, ids })
            .collect();
        let now = self.inner.clock.now();
        // From the engine's generator: monotonic, so a listing newest first
        // follows the order jobs were started in, even within a millisecond.
        let id = self
            .inner
            .ids
            .lock()
            .expect("id generator lock")
            .generate_from_datetime(now.into())
            .unwrap_or_else(|_| ulid::Ulid::from_datetime(now.into()));
        let job = Arc::new(BulkJob::new(id, selection, now, &lanes));
        let (record, _, _) = job.snapshot();
        self.inner
            .store
            .create_bulk_job(job.id, record, lanes.clone())
            .await?;
        self.inner
            .jobs
            .lock()
            .expect("jobs lock")
            .insert(job.id.to_string(), job.clone());
        tracing::info!(
            job = %job.id,
            events = job.total,
            selection = %job.selection.words(),
            "bulk retry {} started: {} events ({})",
            job.id,
            job.total,
            job.selection.words()
        );
        let remaining = job.remaining(&lanes);
        self.spawn(run_job(self.clone(), job.clone(), remaining));
        Ok(job.progress())
    }

    /// Picks up the jobs a stop left running: each is listed at once and
    /// resumed in the background. Called by [`Engine::start_under`], which
    /// reads the store synchronously as it opens.
    pub(super) fn resume_bulk_jobs(&self) -> Result<(), EngineError> {
        for row in self.inner.store.bulk_jobs(true)? {
            let stored = match decode_job(&row) {
                Ok(stored) => stored,
                Err(e) => {
                    tracing::error!(job = %row.id, error = %e, "a stored bulk job does not load; it is not resumed");
                    continue;
                }
            };
            let job = Arc::new(BulkJob::restore(row.id, stored));
            self.inner
                .jobs
                .lock()
                .expect("jobs lock")
                .insert(job.id.to_string(), job.clone());
            self.spawn(resume_job(self.clone(), job));
        }
        Ok(())
    }

    pub async fn bulk_progress(&self, id: &str) -> Result<JobProgress, EngineError> {
        if let Some(job) = self.live_job(id) {
            return Ok(job.progress());
        }
        self.stored_job(id).await
    }

    /// Stops a bulk job after the attempts already running; the rest are not
    /// made. Answers once the cancellation is stored, so a restart (even
    /// after kill -9) finds the job cancelled, not running. A finished job is
    /// answered as it is.
    pub async fn cancel_bulk(&self, id: &str) -> Result<JobProgress, EngineError> {
        if let Some(job) = self.live_job(id) {
            job.cancel();
            self.write_job(&job).await?;
            return Ok(job.progress());
        }
        self.stored_job(id).await
    }

    /// Every running job and the last 100 finished ones, newest first.
    pub async fn bulk_jobs(&self) -> Result<Vec<JobProgress>, EngineError> {
        let rows = self.read_store(|store| store.bulk_jobs(false)).await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in rows {
            // A live job's counts are ahead of its last save.
            if let Some(job) = self.live_job(&row.id.to_string()) {
                jobs.push(job.progress());
                continue;
            }
            match decode_job(&row) {
                Ok(stored) => jobs.push(stored.progress),
                Err(e) => {
                    tracing::warn!(job = %row.id, error = %e, "a stored bulk job does not load; left out of the listing")
                }
            }
        }
        Ok(jobs)
    }

    fn live_job(&self, id: &str) -> Option<Arc<BulkJob>> {
        self.inner.jobs.lock().expect("jobs lock").get(id).cloned()
    }

    async fn stored_job(&self, id: &str) -> Result<JobProgress, EngineError> {
        let unknown = || EngineError::UnknownJob(id.to_string());
        let job = ulid::Ulid::from_string(id).map_err(|_| unknown())?;
        let row = self
            .read_store(move |store| store.bulk_job(job))
            .await?
            .ok_or_else(unknown)?;
        decode_job(&row).map(|stored| stored.progress).map_err(|e| {
            EngineError::Store(crate::store::StoreError::CorruptJson {
                what: "bulk job",
                source: e,
            })
        })
    }

    /// Saves a job's progress if it moved; answers whether what the job
    /// holds now is stored.
    async fn save_job(&self, job: &BulkJob) -> bool {
        self.write_job(job).await.is_ok()
    }

    /// Saves a job's progress if it moved. When this returns `Ok`, every
    /// change made to the job before the call is durable (made by this save
    /// or by one that held the job's save lock before it).
    async fn write_job(&self, job: &BulkJob) -> Result<(), crate::store::StoreError> {
        let _saving = job.saving.lock().await;
        let (record, changed, finished) = job.snapshot();
        if !changed {
            return Ok(());
        }
        match self
            .inner
            .store
            .save_bulk_job(job.id, record, finished)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                job.tally().unsaved = true;
                tracing::warn!(job = %job.id, error = %e, "cannot save the bulk job's progress; trying again");
                Err(e)
            }
        }
    }
}

/// Resumes a job a stop left running: what its stored progress does not
/// cover, less what it had already retried after its last save.
async fn resume_job(engine: Engine, job: Arc<BulkJob>) {
    let id = job.id;
    let lanes = match engine
        .read_store(move |store| store.bulk_job_lanes(id))
        .await
    {
        Ok(lanes) => lanes,
        Err(e) => {
            tracing::error!(job = %job.id, error = %e, "cannot read the ids of a stored bulk job; it is not resumed");
            return;
        }
    };
    let mut remaining = job.remaining(&lanes);
    if job.is_cancelled() {
        // Cancelled before the stop: nothing more is started.
        remaining.clear();
    }
    let ids: Vec<EventId> = remaining
        .iter()
        .flat_map(|lane| lane.ids.iter().map(|(_, id)| *id))
        .collect();
    let since = job.started_at;
    let made = match engine
        .read_store(move |store| store.last_attempts_since(&ids, Trigger::Bulk, since))
        .await
    {
        Ok(made) => made,
        Err(e) => {
            tracing::error!(job = %job.id, error = %e, "cannot read which events a stored bulk job retried; it is not resumed");
            return;
        }
    };
    let mut made = made.into_iter();
    let mut already = 0u64;
    for lane in &mut remaining {
        lane.ids.retain(|(index, _)| match made.next().flatten() {
            Some(attempt) => {
                job.record(lane.lane, *index, Outcome::of_record(&attempt));
                already += 1;
                false
            }
            None => true,
        });
    }
    let progress = job.progress();
    tracing::info!(
        job = %job.id,
        events = job.total,
        done = progress.done,
        "bulk retry {} resumed: {} of {} events done ({already} of them retried before the stop but not yet saved)",
        job.id,
        progress.done,
        job.total
    );
    run_job(engine, job, remaining).await;
}

/// Runs a job's lanes to their end, saving its progress as it goes; then
/// records how it ended. A job stopped by the engine stopping stays running
/// in the store, to be resumed.
async fn run_job(engine: Engine, job: Arc<BulkJob>, lanes: Vec<Lane>) {
    let mut workers = tokio::task::JoinSet::new();
    for lane in lanes {
        match engine.destination(&lane.destination) {
            Ok(destination) => {
                workers.spawn(engine.inner.tasks.track_future(bulk_worker(
                    engine.clone(),
                    job.clone(),
                    destination,
                    lane,
                )));
            }
            // Deleted since: nothing is owed to it any more.
            Err(_) => {
                for (index, _) in lane.ids {
                    job.record(lane.lane, index, Outcome::NothingOwed);
                }
            }
        }
    }
    let mut save = tokio::time::interval(PROGRESS_SAVE);
    save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            next = workers.join_next() => if next.is_none() { break },
            _ = save.tick() => { engine.save_job(&job).await; }
        }
    }
    let progress = job.progress();
    if engine.is_shutting_down() && !job.is_cancelled() && progress.done < progress.total {
        engine.save_job(&job).await;
        tracing::info!(
            job = %job.id,
            done = progress.done,
            events = job.total,
            "bulk retry {} stopped with the engine after {} of {} events; the next start resumes it",
            job.id,
            progress.done,
            job.total
        );
        return;
    }
    job.finish(engine.inner.clock.now());
    if engine.save_job(&job).await {
        // Listed from the store from now on.
        engine
            .inner
            .jobs
            .lock()
            .expect("jobs lock")
            .remove(&job.id.to_string());
    }
    log_job_end(&job);
    let progress = job.progress();
    engine.record_notice(
        crate::model::NoticeKind::BulkJobFinished {
            job: progress.id,
            total: progress.total,
            succeeded: progress.succeeded,
            failed: progress.failed,
            skipped: progress.skipped,
            cancelled: progress.state == JobState::Cancelled,
        },
        None,
        None,
        crate::model::NoticeCause::Operator,
    );
}

/// The share of a destination's concurrency a bulk job may use, so that new
/// events keep flowing while a large backlog is retried.
fn bulk_share(concurrency: u32) -> usize {
    (concurrency as usize / 2).max(1)
}

/// Retries one destination's share of a bulk job, never using more than half of
/// its concurrency so new events are not starved. An id whose attempt met a
/// store error is still owed: it stays not done, and the lane pauses for
/// [`STORE_ERROR_BACKOFF`] and then tries it again, ahead of the rest. A
/// destination deleted meanwhile ends its lane: the attempts running finish
/// (the delete waits for them) and the ids not started are counted as
/// skipped, never sent to the deleted address or to a destination created
/// later under the same name.
async fn bulk_worker(engine: Engine, job: Arc<BulkJob>, destination: Arc<Destination>, lane: Lane) {
    // The budget's purge leaves the lane's events to it until it ends.
    let _held = engine.hold_from_purge(lane.ids.iter().map(|&(_, id)| id));
    type Ran = (usize, EventId, Result<Attempted, AttemptError>);
    let mut running: tokio::task::JoinSet<Ran> = tokio::task::JoinSet::new();
    // The destination's stop token is a child of the engine's shutdown: it
    // is cancelled with the engine, or alone when the destination is deleted.
    let deleted = || destination.stop.is_cancelled() && !engine.is_shutting_down();
    let stopped = |job: &BulkJob| job.is_cancelled() || engine.is_shutting_down() || deleted();
    let mut queue: VecDeque<(usize, EventId)> = lane.ids.into_iter().collect();
    let mut again = TryAgain::default();
    let finish = |result: Result<Ran, tokio::task::JoinError>, again: &mut TryAgain| {
        match result {
            Ok((index, _, Ok(attempted))) => {
                job.record(lane.lane, index, Outcome::of(attempted));
            }
            Ok((index, id, Err(e))) => {
                tracing::warn!(job = %job.id, event = %id, error = %e, "a bulk retry's attempt met a store error; it is tried again");
                again.push(index, id);
            }
            // A wrapper task only fails when the runtime drops it; its id stays
            // not done, to be looked at again on resume.
            Err(_) => {}
        }
    };
    loop {
        if stopped(&job) {
            break;
        }
        if let Some(until) = again.paused_until() {
            // The store failed: let it recover before starting more.
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = destination.stop.cancelled() => {}
                Some(result) = running.join_next() => {
                    finish(result, &mut again);
                    continue;
                }
            }
            if again
                .paused_until()
                .is_some_and(|at| at > tokio::time::Instant::now())
            {
                // Another error arrived meanwhile: pause from it.
                continue;
            }
            again.requeue(&mut queue);
            continue;
        }
        let Some((index, id)) = queue.pop_front() else {
            // Nothing left to start: wait for those running, which may
            // leave ids to try again.
            match running.join_next().await {
                Some(result) => {
                    finish(result, &mut again);
                    continue;
                }
                None => break,
            }
        };
        let concurrency = destination.current_concurrency();
        let slot_freed = destination.slot_freed.notified();
        let busy = destination.in_flight.lock().expect("in-flight lock").len();
        if running.len() >= bulk_share(concurrency) || busy >= concurrency as usize {
            queue.push_front((index, id));
            if running.is_empty() {
                // Every slot is taken by the dispatcher's own attempts.
                tokio::select! {
                    _ = slot_freed => {}
                    _ = destination.stop.cancelled() => {}
                }
            } else if let Some(result) = running.join_next().await {
                finish(result, &mut again);
            }
            continue;
        }
        let handle = spawn_attempt(&engine, &destination, id, Some(Trigger::Bulk));
        running.spawn(async move {
            // An attempt whose task panicked is not tried again (it would
            // panic again): counted as not made, as before.
            let result = handle.await.unwrap_or(Ok(Attempted::NothingOwed));
            (index, id, result)
        });
    }
    while let Some(result) = running.join_next().await {
        finish(result, &mut again);
    }
    if deleted() && !job.is_cancelled() {
        let left: Vec<(usize, EventId)> = queue.into_iter().chain(again.ids).collect();
        for &(index, _) in &left {
            job.record(lane.lane, index, Outcome::NothingOwed);
        }
        tracing::warn!(
            job = %job.id,
            destination = %destination.id,
            skipped = left.len(),
            "bulk retry {}: destination {} was deleted; its {} events not yet retried are skipped",
            job.id,
            destination.id,
            left.len()
        );
        // At once, not at the next tick: a restart must not find these ids
        // owed and resume them against a destination re-created meanwhile.
        engine.save_job(&job).await;
    }
}

/// A lane's ids whose attempt met a store error, tried again once the lane
/// has paused for [`STORE_ERROR_BACKOFF`] after the last such error.
#[derive(Default)]
struct TryAgain {
    ids: Vec<(usize, EventId)>,
    after: Option<tokio::time::Instant>,
}

impl TryAgain {
    fn push(&mut self, index: usize, id: EventId) {
        self.ids.push((index, id));
        self.after = Some(tokio::time::Instant::now() + STORE_ERROR_BACKOFF);
    }

    /// Until when the lane starts nothing, while ids wait to be tried again.
    fn paused_until(&self) -> Option<tokio::time::Instant> {
        self.after.filter(|_| !self.ids.is_empty())
    }

    /// Puts the ids back at the front of the lane, in lane order.
    fn requeue(&mut self, queue: &mut VecDeque<(usize, EventId)>) {
        self.ids
            .sort_unstable_by_key(|(index, _)| std::cmp::Reverse(*index));
        for owed in self.ids.drain(..) {
            queue.push_front(owed);
        }
        self.after = None;
    }
}

/// The line a bulk job's end leaves: its results, or how far it got when cancelled.
fn log_job_end(job: &BulkJob) {
    let tally = job.tally();
    let delivered = tally.succeeded;
    let skipped = tally.skipped;
    let failed = tally.failed;
    let done = tally.done;
    drop(tally);
    if job.is_cancelled() {
        tracing::info!(
            job = %job.id,
            events = job.total,
            done,
            delivered,
            failed,
            skipped,
            "bulk retry {} cancelled after {done} of {} events: {delivered} delivered, {failed} failed, {skipped} skipped",
            job.id,
            job.total
        );
    } else {
        tracing::info!(
            job = %job.id,
            events = job.total,
            delivered,
            failed,
            skipped,
            "bulk retry {} finished: {delivered} delivered, {failed} failed, {skipped} skipped",
            job.id
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_jobs_leave_room_for_new_events() {
        assert_eq!(bulk_share(1), 1);
        assert_eq!(bulk_share(2), 1);
        assert_eq!(bulk_share(8), 4);
    }

    #[test]
    fn a_lane_cursor_moves_past_every_index_done_in_order() {
        let mut lane = LaneProgress::default();
        lane.complete(1);
        lane.complete(3);
        assert_eq!((lane.cursor, lane.done_ahead.len()), (0, 2));
        assert!(!lane.is_done(0) && lane.is_done(1) && !lane.is_done(2));
        lane.complete(0);
        assert_eq!(lane.cursor, 2);
        lane.complete(2);
        assert_eq!(lane.cursor, 4);
        assert!(lane.done_ahead.is_empty());
    }

    #[test]
    fn an_id_is_counted_once_however_often_it_is_reported() {
        let lanes = vec![BulkLane {
            destination: "d".into(),
            ids: (1..=3u128).map(ulid::Ulid).collect(),
        }];
        let job = BulkJob::new(
            ulid::Ulid::new(),
            BulkSelection::default(),
            Utc::now(),
            &lanes,
        );
        job.record(0, 1, Outcome::Succeeded);
        job.record(0, 1, Outcome::Failed);
        let progress = job.progress();
        assert_eq!(
            (progress.done, progress.succeeded, progress.failed),
            (1, 1, 0)
        );
        let left: Vec<usize> = job.remaining(&lanes)[0]
            .ids
            .iter()
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(left, vec![0, 2]);
    }
}

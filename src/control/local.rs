//! [`Control`] over the engine in this process. Every store read runs on the
//! blocking pool (`spawn_blocking`) and is awaited, so an API handler or the
//! TUI's loop never holds an async worker thread while redb reads.

use super::{Control, ControlError, ControlResult, Notification, Totals};
use crate::engine::stats::{DestinationStats, StatsWindow};
use crate::engine::{
    AttemptSummary, BatchTarget, BulkSelection, Deleted, DestinationPatch, DestinationView, Engine,
    EngineError, EventDetail, EventPage, IngestRequest, JobProgress, MAX_PAGE,
};
use crate::model::{
    EventFilter, EventId, EventRecord, EventState, Notice, NoticeId, NoticePage, NoticeQuery,
    NoticeSelection, StateCounts,
};
use crate::store::Inserted;
use futures_util::stream::BoxStream;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use tokio::sync::broadcast::error::RecvError;

/// The engine, as a [`Control`].
#[derive(Clone)]
pub struct LocalControl {
    engine: Engine,
}

impl LocalControl {
    pub fn new(engine: Engine) -> Self {
        LocalControl { engine }
    }

    /// Runs a synchronous engine read on the blocking pool.
    async fn read<T, F>(&self, read: F) -> ControlResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    {
        let engine = self.engine.clone();
        match tokio::task::spawn_blocking(move || read(&engine)).await {
            Ok(result) => result.map_err(ControlError::from),
            Err(join) => Err(ControlError::Unavailable {
                message: format!("the store read did not finish: {join}"),
                source: Some(Box::new(join)),
            }),
        }
    }
}

#[async_trait::async_trait]
impl Control for LocalControl {
    async fn ingest(&self, destination: &str, request: IngestRequest) -> ControlResult<Inserted> {
        Ok(self.engine.ingest(destination, request).await?)
    }

    async fn ingest_topic(
        &self,
        topic: &str,
        request: IngestRequest,
    ) -> ControlResult<Vec<Inserted>> {
        Ok(self.engine.ingest_topic(topic, request).await?)
    }

    async fn ingest_batch(
        &self,
        target: BatchTarget,
        requests: Vec<IngestRequest>,
    ) -> ControlResult<Vec<Vec<Inserted>>> {
        Ok(self.engine.ingest_batch(&target, requests).await?)
    }

    async fn list_events(
        &self,
        filter: EventFilter,
        after: Option<EventId>,
        limit: usize,
    ) -> ControlResult<EventPage> {
        self.read(move |engine| engine.list_events(&filter, after, limit))
            .await
    }

    async fn event(&self, id: EventId) -> ControlResult<EventDetail> {
        self.read(move |engine| engine.get_event(id)).await
    }

    async fn destinations(&self) -> ControlResult<Vec<DestinationView>> {
        self.read(|engine| engine.destinations()).await
    }

    async fn destination(&self, id: &str) -> ControlResult<DestinationView> {
        let id = id.to_string();
        self.read(move |engine| engine.destination_view(&id)).await
    }

    async fn retry_now(&self, id: EventId) -> ControlResult<AttemptSummary> {
        Ok(self.engine.retry_now(id).await?)
    }

    async fn mute(&self, id: EventId) -> ControlResult<EventRecord> {
        Ok(self.engine.mute(id).await?)
    }

    async fn requeue(&self, id: EventId) -> ControlResult<EventRecord> {
        Ok(self.engine.requeue(id).await?)
    }

    async fn resend(&self, id: EventId) -> ControlResult<EventRecord> {
        Ok(self.engine.resend(id).await?)
    }

    async fn count_selection(&self, selection: BulkSelection) -> ControlResult<u64> {
        self.read(move |engine| count_selection(engine, &selection))
            .await
    }

    async fn start_bulk_retry(&self, selection: BulkSelection) -> ControlResult<JobProgress> {
        Ok(self.engine.start_bulk_retry(selection).await?)
    }

    async fn bulk_progress(&self, job: &str) -> ControlResult<JobProgress> {
        Ok(self.engine.bulk_progress(job).await?)
    }

    async fn cancel_bulk(&self, job: &str) -> ControlResult<JobProgress> {
        Ok(self.engine.cancel_bulk(job).await?)
    }

    async fn bulk_jobs(&self) -> ControlResult<Vec<JobProgress>> {
        Ok(self.engine.bulk_jobs().await?)
    }

    async fn patch_destination(
        &self,
        id: &str,
        patch: DestinationPatch,
    ) -> ControlResult<DestinationView> {
        self.engine.patch_destination(id, patch).await?;
        self.destination(id).await
    }

    async fn destination_stats(
        &self,
        id: &str,
        window: StatsWindow,
    ) -> ControlResult<DestinationStats> {
        let id = id.to_string();
        self.read(move |engine| engine.destination_stats(&id, window))
            .await
    }

    async fn create_destination(
        &self,
        definition: serde_json::Value,
    ) -> ControlResult<DestinationView> {
        let created = self.engine.create_destination(definition).await?;
        self.destination(&created.id).await
    }

    async fn replace_destination(
        &self,
        id: &str,
        definition: serde_json::Value,
    ) -> ControlResult<DestinationView> {
        self.engine.replace_destination(id, definition).await?;
        self.destination(id).await
    }

    async fn delete_destination(&self, id: &str, drain: bool) -> ControlResult<Deleted> {
        Ok(self.engine.delete_destination(id, drain).await?)
    }

    async fn notices(&self, query: NoticeQuery) -> ControlResult<NoticePage> {
        self.read(move |engine| engine.notices(&query)).await
    }

    async fn ack_notice(&self, id: NoticeId) -> ControlResult<Notice> {
        Ok(self.engine.ack_notice(id).await?)
    }

    async fn ack_notices(&self, selection: NoticeSelection) -> ControlResult<u64> {
        Ok(self.engine.ack_notices(selection).await?)
    }

    async fn counts(&self) -> ControlResult<BTreeMap<String, StateCounts>> {
        self.read(|engine| engine.counts_by_destination()).await
    }

    async fn metrics_text(&self) -> ControlResult<String> {
        self.read(|engine| engine.metrics_text()).await
    }

    async fn totals(&self) -> ControlResult<Totals> {
        let unacked_notices = self.read(|engine| engine.unacked_notices()).await?;
        let metrics = self.engine.metrics();
        Ok(Totals {
            ingested: metrics.ingested.load(Ordering::Relaxed),
            delivered: metrics.delivered.load(Ordering::Relaxed),
            unacked_notices,
            pid: Some(std::process::id()),
            store: self.engine.store_budget(),
        })
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.engine.clock().now()
    }

    fn subscribe(&self) -> BoxStream<'static, Notification> {
        let receiver = self.engine.subscribe();
        Box::pin(futures_util::stream::unfold(
            receiver,
            |mut receiver| async move {
                let notification = match receiver.recv().await {
                    Ok(change) => Notification::Changed(change),
                    Err(RecvError::Lagged(_)) => Notification::Resync,
                    Err(RecvError::Closed) => return None,
                };
                Some((notification, receiver))
            },
        ))
    }
}

/// How many events a bulk selection covers: from the per-state counts when
/// that is exact, else by paging through the listing (never all at once).
fn count_selection(engine: &Engine, selection: &BulkSelection) -> Result<u64, EngineError> {
    if let Some(ids) = &selection.ids {
        return Ok(ids.len() as u64);
    }
    if selection.topic.is_none()
        && selection.created_after.is_none()
        && selection.created_before.is_none()
    {
        let mut views = match &selection.destination {
            Some(id) => vec![engine.destination_view(id)?],
            None => engine.destinations()?,
        };
        // The per-state counts of the destinations the label selects.
        if let Some(selector) = &selection.label {
            views.retain(|v| selector.matches(&v.labels));
        }
        return Ok(views
            .iter()
            .map(|v| match selection.state {
                Some(state) => v.counts.get(state),
                None => EventState::ALL.iter().map(|s| v.counts.get(*s)).sum(),
            })
            .sum());
    }
    let filter = selection.filter();
    let mut total = 0u64;
    let mut after = None;
    loop {
        let page = engine.list_events(&filter, after, MAX_PAGE)?;
        total += page.events.len() as u64;
        match page.next.and_then(|n| n.parse().ok()) {
            Some(next) => after = Some(next),
            None => return Ok(total),
        }
    }
}

//! Both stores behind the [`EventStore`] boundary: every method hands over to
//! the store's inherent method of the same name and signature ([`RedbStore`]'s
//! and [`PgStore`]'s), which stay where they are, so each store's code is the
//! same whether called through the trait or, in its own tests, directly.
use super::postgres::PgStore;
use super::{
    BudgetUse, BulkJobRow, BulkLane, CommitStats, EventStore, Indexed, Inserted, NewEvent,
    RedbStore, SpareFn, StoreError, Transitioned, WriteFailures,
};
use crate::model::{
    AttemptRecord, DestinationRuntime, EventFilter, EventId, EventIdSet, EventRecord, EventState,
    EventTransition, Notice, NoticeId, NoticeQuery, NoticeSelection, StateCounts, Trigger,
};
use chrono::{DateTime, Utc};

/// Implements [`EventStore`] for `$store` by handing every method to the
/// store's inherent method of the same name and signature: both stores keep
/// their own methods (and their own tests call them directly), and the
/// boundary adds nothing but the call. Items after the `;` are added to the
/// impl (the redb store's `as_redb`).
macro_rules! delegate_event_store {
    ($store:ident; $($extra:item)*) => {
        #[async_trait::async_trait]
        impl EventStore for $store {
            async fn insert_events(&self, events: Vec<NewEvent>) -> Result<Vec<Inserted>, StoreError> {
                $store::insert_events(self, events).await
            }

            async fn insert_events_deferred(
                &self,
                events: Vec<NewEvent>,
            ) -> Result<(Vec<Inserted>, Indexed), StoreError> {
                $store::insert_events_deferred(self, events).await
            }

            async fn transition(
                &self,
                id: EventId,
                transition: EventTransition,
            ) -> Result<Transitioned, StoreError> {
                $store::transition(self, id, transition).await
            }

            async fn transition_many(
                &self,
                transitions: Vec<(EventId, EventTransition)>,
            ) -> Result<Vec<Transitioned>, StoreError> {
                $store::transition_many(self, transitions).await
            }

            async fn purge(
                &self,
                cutoff: DateTime<Utc>,
                now: DateTime<Utc>,
                limit: usize,
            ) -> Result<usize, StoreError> {
                $store::purge(self, cutoff, now, limit).await
            }

            fn get_event(&self, id: EventId) -> Result<Option<EventRecord>, StoreError> {
                $store::get_event(self, id)
            }

            fn get_for_delivery(&self, id: EventId) -> Result<Option<(EventRecord, Vec<u8>)>, StoreError> {
                $store::get_for_delivery(self, id)
            }

            fn get_payload(&self, id: EventId) -> Result<Option<Vec<u8>>, StoreError> {
                $store::get_payload(self, id)
            }

            fn attempts(&self, id: EventId) -> Result<Vec<AttemptRecord>, StoreError> {
                $store::attempts(self, id)
            }

            fn list_events(
                &self,
                filter: &EventFilter,
                among: Option<&[String]>,
                before: Option<EventId>,
                limit: usize,
            ) -> Result<Vec<EventRecord>, StoreError> {
                $store::list_events(self, filter, among, before, limit)
            }

            fn due(
                &self,
                destination: &str,
                now: DateTime<Utc>,
                limit: usize,
                in_flight: &EventIdSet,
            ) -> Result<Vec<EventId>, StoreError> {
                $store::due(self, destination, now, limit, in_flight)
            }

            fn due_ahead(
                &self,
                destination: &str,
                id: EventId,
                due_ms: i64,
                cap: u64,
            ) -> Result<u64, StoreError> {
                $store::due_ahead(self, destination, id, due_ms, cap)
            }

            fn next_due(
                &self,
                destination: &str,
                in_flight: &EventIdSet,
            ) -> Result<Option<DateTime<Utc>>, StoreError> {
                $store::next_due(self, destination, in_flight)
            }

            fn ids_in_state(
                &self,
                destination: &str,
                state: EventState,
                after: Option<EventId>,
                limit: usize,
            ) -> Result<Vec<EventId>, StoreError> {
                $store::ids_in_state(self, destination, state, after, limit)
            }

            fn counts(&self, destination: &str) -> Result<StateCounts, StoreError> {
                $store::counts(self, destination)
            }

            fn event_count(&self) -> Result<u64, StoreError> {
                $store::event_count(self)
            }

            fn indexing_pending(&self) -> bool {
                $store::indexing_pending(self)
            }

            async fn put_destination(&self, id: String, document: Vec<u8>) -> Result<(), StoreError> {
                $store::put_destination(self, id, document).await
            }

            async fn delete_destination(&self, id: String) -> Result<u64, StoreError> {
                $store::delete_destination(self, id).await
            }

            fn api_destinations(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
                $store::api_destinations(self)
            }

            async fn put_runtime(
                &self,
                destination: String,
                runtime: DestinationRuntime,
            ) -> Result<(), StoreError> {
                $store::put_runtime(self, destination, runtime).await
            }

            fn runtime(&self, destination: &str) -> Result<Option<DestinationRuntime>, StoreError> {
                $store::runtime(self, destination)
            }

            async fn put_stats(
                &self,
                minutes: Vec<(String, i64, Vec<u8>)>,
                keep_from_ms: i64,
            ) -> Result<(), StoreError> {
                $store::put_stats(self, minutes, keep_from_ms).await
            }

            fn stats_since(&self, destination: &str, since_ms: i64) -> Result<Vec<Vec<u8>>, StoreError> {
                $store::stats_since(self, destination, since_ms)
            }

            async fn insert_notices(
                &self,
                notices: Vec<Notice>,
                alerts: Vec<NewEvent>,
            ) -> Result<(), StoreError> {
                $store::insert_notices(self, notices, alerts).await
            }

            async fn ack_notice(
                &self,
                id: NoticeId,
                at: DateTime<Utc>,
            ) -> Result<Option<Notice>, StoreError> {
                $store::ack_notice(self, id, at).await
            }

            async fn ack_notices(
                &self,
                selection: NoticeSelection,
                at: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                $store::ack_notices(self, selection, at).await
            }

            async fn prune_notices(&self, cutoff: DateTime<Utc>) -> Result<(), StoreError> {
                $store::prune_notices(self, cutoff).await
            }

            fn list_notices(
                &self,
                query: &NoticeQuery,
            ) -> Result<(Vec<Notice>, Option<NoticeId>, u64), StoreError> {
                $store::list_notices(self, query)
            }

            fn unacked_notices(&self) -> Result<u64, StoreError> {
                $store::unacked_notices(self)
            }

            async fn create_bulk_job(
                &self,
                id: ulid::Ulid,
                record: Vec<u8>,
                lanes: Vec<BulkLane>,
            ) -> Result<(), StoreError> {
                $store::create_bulk_job(self, id, record, lanes).await
            }

            async fn save_bulk_job(
                &self,
                id: ulid::Ulid,
                record: Vec<u8>,
                finished: bool,
            ) -> Result<(), StoreError> {
                $store::save_bulk_job(self, id, record, finished).await
            }

            fn bulk_job(&self, id: ulid::Ulid) -> Result<Option<BulkJobRow>, StoreError> {
                $store::bulk_job(self, id)
            }

            fn bulk_jobs(&self, running_only: bool) -> Result<Vec<BulkJobRow>, StoreError> {
                $store::bulk_jobs(self, running_only)
            }

            fn bulk_job_lanes(&self, id: ulid::Ulid) -> Result<Vec<BulkLane>, StoreError> {
                $store::bulk_job_lanes(self, id)
            }

            fn last_attempts_since(
                &self,
                ids: &[EventId],
                trigger: Trigger,
                since: DateTime<Utc>,
            ) -> Result<Vec<Option<AttemptRecord>>, StoreError> {
                $store::last_attempts_since(self, ids, trigger, since)
            }

            fn limit_size(&self, max: u64) -> Result<(), StoreError> {
                $store::limit_size(self, max)
            }

            fn budget_use(&self) -> Option<BudgetUse> {
                $store::budget_use(self)
            }

            fn budget_wants_purge(&self) -> bool {
                $store::budget_wants_purge(self)
            }

            fn budget_at_purge_mark(&self) -> bool {
                $store::budget_at_purge_mark(self)
            }

            async fn budget_pressure(&self) {
                $store::budget_pressure(self).await
            }

            async fn purge_finished_oldest(
                &self,
                limit: usize,
                spare: SpareFn,
            ) -> Result<usize, StoreError> {
                $store::purge_finished_oldest(self, limit, spare).await
            }

            fn commit_stats(&self) -> &CommitStats {
                $store::commit_stats(self)
            }

            fn take_write_failures(&self) -> Option<WriteFailures> {
                $store::take_write_failures(self)
            }

            async fn write_failed(&self) {
                $store::write_failed(self).await
            }

            fn close_now(&self) {
                $store::close_now(self)
            }

            async fn close_last(self: Box<Self>) {
                $store::close(*self).await
            }

            $($extra)*
        }
    };
}

delegate_event_store!(PgStore;);

delegate_event_store!(RedbStore;
    fn as_redb(&self) -> Option<&RedbStore> {
        Some(self)
    }
);

#[cfg(test)]
mod tests {
    use super::super::{Indexed, Store};

    #[tokio::test]
    async fn an_indexed_already_done_resolves_at_once() {
        let waited =
            tokio::time::timeout(std::time::Duration::from_secs(5), Indexed::done().wait()).await;
        assert_eq!(waited, Ok(true));
    }

    #[tokio::test]
    async fn the_last_handle_closes_the_redb_file_so_it_opens_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let store = Store::open_redb(&path).unwrap();
        let other = store.clone();
        assert!(store.as_redb().is_some_and(|redb| redb.path() == path));
        store.close().await;
        // `other` still holds it: the file is still taken.
        assert!(matches!(
            Store::open_redb(&path),
            Err(super::StoreError::Locked { .. })
        ));
        other.close().await;
        Store::open_redb(&path).expect("closed by its last handle");
    }
}

//! The PostgreSQL store's suite, against a throwaway cluster per test (see
//! [`TestCluster`]): the redb store's cases (src/store/tests.rs) ported, each
//! written as a function of the store under test so that they can join one
//! suite over both stores, plus what only PostgreSQL has (migrations, URLs,
//! a server that goes away).
//!
//! Tests are plain `#[test]`s driving a multi-thread runtime: the store's
//! sync reads block their thread (as on the engine's blocking pool), so they
//! are called from the test thread, outside the runtime, and the async
//! writes through [`Case::run`].

use super::test_cluster::TestCluster;
use super::*;
use crate::model::{
    AttemptRecord, EventFilter, EventIdSet, EventRecord, EventState, FailReason, NoticeQuery,
    TransitionKind, Trigger, Verdict,
};
use crate::store::{ulid_floor, BulkJobRow};
use chrono::TimeZone;

/// A store on a fresh database of its own cluster.
struct Case {
    // Dropped in this order: the store, then its runtime, then the server.
    store: PgStore,
    rt: tokio::runtime::Runtime,
    cluster: TestCluster,
}

impl Case {
    /// `None` (the test skips, after a note) when PostgreSQL is not
    /// installed and `CI` is not set.
    fn start() -> Option<Case> {
        let cluster = TestCluster::start()?;
        let rt = runtime();
        let store = rt.block_on(PgStore::connect(&cluster.url())).unwrap();
        Some(Case { store, rt, cluster })
    }

    fn run<F: std::future::Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// Another store (another node) on the same database.
    fn second_node(&self) -> PgStore {
        self.run(PgStore::connect(&self.cluster.url())).unwrap()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

macro_rules! case {
    () => {
        match Case::start() {
            Some(case) => case,
            None => return,
        }
    };
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
}

fn new_event(destination: &str, created: DateTime<Utc>, key: Option<&str>) -> NewEvent {
    NewEvent {
        id: ulid::Ulid::from_datetime(created.into()),
        destination: destination.to_string(),
        topic: "order.created".into(),
        content_type: Some("application/json".into()),
        payload: bytes::Bytes::from_static(b"{\"n\":1}"),
        idempotency_key: key.map(str::to_string),
        created_at: created,
    }
}

fn attempt(trigger: Trigger, status: u16) -> AttemptRecord {
    AttemptRecord {
        n: 0,
        at: at(0),
        trigger,
        status: Some(status),
        error: None,
        duration_ms: 3,
        response_excerpt: "boom".into(),
        decision: "words".into(),
    }
}

fn failed_attempt(trigger: Trigger, retry_at: DateTime<Utc>) -> EventTransition {
    EventTransition::AttemptRecorded {
        attempt: attempt(trigger, 500),
        verdict: Verdict::Retry {
            at: retry_at,
            pinned: false,
        },
    }
}

fn delivered_attempt() -> EventTransition {
    EventTransition::AttemptRecorded {
        attempt: attempt(Trigger::Automatic, 200),
        verdict: Verdict::Delivered,
    }
}

fn none_in_flight() -> EventIdSet {
    EventIdSet::default()
}

// ---- events: insert, due, transitions, counts ----------------------------

fn inserted_event_is_due_counted_and_readable(c: &Case) {
    let store = &c.store;
    let inserted = c
        .run(store.insert_events(vec![new_event("orders", at(0), None)]))
        .unwrap();
    let id = inserted[0].id;
    assert_eq!(inserted[0].state, EventState::Pending);
    let record = store.get_event(id).unwrap().unwrap();
    assert_eq!(record.next_attempt_at, Some(at(0)));
    assert_eq!(store.get_payload(id).unwrap().unwrap(), b"{\"n\":1}");
    let (delivery, payload) = store.get_for_delivery(id).unwrap().unwrap();
    assert_eq!((delivery, payload), (record, b"{\"n\":1}".to_vec()));
    assert_eq!(store.counts("orders").unwrap().pending, 1);
    assert_eq!(
        store.due("orders", at(0), 10, &none_in_flight()).unwrap(),
        vec![id]
    );
    assert!(store
        .due("other", at(0), 10, &none_in_flight())
        .unwrap()
        .is_empty());
    let in_flight: EventIdSet = [id].into_iter().collect();
    assert!(store
        .due("orders", at(0), 10, &in_flight)
        .unwrap()
        .is_empty());
    assert_eq!(store.next_due("orders", &in_flight).unwrap(), None);
    assert_eq!(store.event_count().unwrap(), 1);
    assert!(store.get_event(ulid::Ulid(7)).unwrap().is_none());
}

#[test]
fn pg_inserted_event_is_due_counted_and_readable() {
    inserted_event_is_due_counted_and_readable(&case!());
}

fn update_moves_due_entry_and_counts_with_the_record(c: &Case) {
    let store = &c.store;
    let id = c
        .run(store.insert_events(vec![new_event("orders", at(0), None)]))
        .unwrap()[0]
        .id;
    let Transitioned::Applied {
        record: updated, ..
    } = c
        .run(store.transition(id, failed_attempt(Trigger::Initial, at(60))))
        .unwrap()
    else {
        panic!("a pending event takes an attempt");
    };
    assert_eq!(updated.attempt_count, 1);
    assert!(store
        .due("orders", at(59), 10, &none_in_flight())
        .unwrap()
        .is_empty());
    assert_eq!(
        store.due("orders", at(60), 10, &none_in_flight()).unwrap(),
        vec![id]
    );
    assert_eq!(
        store.next_due("orders", &none_in_flight()).unwrap(),
        Some(at(60))
    );
    let counts = store.counts("orders").unwrap();
    assert_eq!((counts.pending, counts.retrying), (0, 1));
    let attempts = store.attempts(id).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].n, 1);

    // Retrying again: same state, only the due time moves.
    c.run(store.transition(id, failed_attempt(Trigger::Automatic, at(120))))
        .unwrap();
    assert!(store
        .due("orders", at(119), 10, &none_in_flight())
        .unwrap()
        .is_empty());
    assert_eq!(
        store.due("orders", at(120), 10, &none_in_flight()).unwrap(),
        vec![id]
    );
    assert_eq!(store.counts("orders").unwrap().retrying, 1);

    c.run(store.transition(id, delivered_attempt())).unwrap();
    assert_eq!(store.next_due("orders", &none_in_flight()).unwrap(), None);
    assert_eq!(store.counts("orders").unwrap().delivered, 1);
    assert_eq!(store.get_event(id).unwrap().unwrap().next_attempt_at, None);
    assert_eq!(store.attempts(id).unwrap().len(), 3);
}

#[test]
fn pg_update_moves_due_entry_and_counts_with_the_record() {
    update_moves_due_entry_and_counts_with_the_record(&case!());
}

fn repeat_idempotency_key_within_a_day_is_skipped(c: &Case) {
    let store = &c.store;
    let insert = |event| c.run(store.insert_events(vec![event])).unwrap()[0].clone();
    let first = insert(new_event("orders", at(0), Some("k1")));
    let again = insert(new_event("orders", at(3600), Some("k1")));
    assert_eq!(again.state, EventState::Skipped);
    assert_eq!(again.duplicate_of, Some(first.id));
    let skipped = store.get_event(again.id).unwrap().unwrap();
    assert_eq!(skipped.reason, Some(crate::model::Reason::Duplicate));
    assert!(store
        .due("orders", at(3600), 10, &none_in_flight())
        .unwrap()
        .iter()
        .all(|id| *id != again.id));
    let other_destination = insert(new_event("billing", at(3600), Some("k1")));
    assert_eq!(other_destination.state, EventState::Pending);
    let next_day = insert(new_event("orders", at(86_400 + 1), Some("k1")));
    assert_eq!(next_day.state, EventState::Pending);
    // The next day's event holds the key now.
    let after = insert(new_event("orders", at(86_400 + 2), Some("k1")));
    assert_eq!(after.duplicate_of, Some(next_day.id));
    assert_eq!(store.counts("orders").unwrap().skipped, 2);

    // Within one batch, the second of two events with a key is the duplicate.
    let batch = c
        .run(store.insert_events(vec![
            new_event("orders", at(10), Some("k2")),
            new_event("orders", at(11), Some("k2")),
        ]))
        .unwrap();
    assert_eq!(batch[0].state, EventState::Pending);
    assert_eq!(batch[1].duplicate_of, Some(batch[0].id));
}

#[test]
fn pg_repeat_idempotency_key_within_a_day_is_skipped() {
    repeat_idempotency_key_within_a_day_is_skipped(&case!());
}

fn concurrent_writes_share_commits_and_all_land(c: &Case) {
    let store = &c.store;
    c.run(async {
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .insert_events(vec![new_event("orders", at(i), None)])
                    .await
                    .unwrap()
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert_eq!(store.event_count().unwrap(), 200);
    assert_eq!(store.counts("orders").unwrap().pending, 200);
    let stats = store.commit_stats();
    let commits = stats.commits.load(Ordering::Relaxed);
    let writes = stats.writes.load(Ordering::Relaxed);
    assert_eq!(writes, 200);
    assert!(
        commits < writes,
        "{commits} commits carried {writes} writes"
    );
}

#[test]
fn pg_concurrent_writes_share_commits_and_all_land() {
    concurrent_writes_share_commits_and_all_land(&case!());
}

fn a_write_failing_on_its_own_fails_alone_and_its_group_commits(c: &Case) {
    let store = &c.store;
    let taken = new_event("orders", at(0), None);
    c.run(store.insert_events(vec![taken.clone()])).unwrap();
    // Inserts waiting together share a commit (and a statement); one that
    // repeats a stored id fails, alone.
    let (answers, again) = c.run(async {
        let tasks: Vec<_> = (1..=50)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .insert_events(vec![new_event("orders", at(i), None)])
                        .await
                })
            })
            .collect();
        let again = store.insert_events(vec![taken.clone()]).await;
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        (answers, again)
    });
    assert!(
        matches!(&again, Err(StoreError::Postgres(e)) if !e.is_unavailable()),
        "{again:?}"
    );
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(store.counts("orders").unwrap().pending, 51);
    assert!(store.take_write_failures().is_none(), "no commit failed");
}

#[test]
fn pg_a_write_failing_on_its_own_fails_alone_and_its_group_commits() {
    a_write_failing_on_its_own_fails_alone_and_its_group_commits(&case!());
}

fn transitions_answer_applied_refused_or_not_found(c: &Case) {
    let store = &c.store;
    let inserted = c
        .run(store.insert_events(vec![
            new_event("orders", at(0), Some("k")),
            new_event("orders", at(1), Some("k")),
        ]))
        .unwrap();
    let (first, duplicate) = (inserted[0].id, inserted[1].id);
    match c.run(store.transition(duplicate, EventTransition::Muted)) {
        Ok(Transitioned::Refused(refusal)) => {
            assert_eq!(refusal.state, EventState::Skipped);
            assert_eq!(refusal.kind, TransitionKind::Muted);
        }
        other => panic!("muting a skipped event: {other:?}"),
    }
    assert_eq!(
        c.run(store.transition(ulid::Ulid(1), EventTransition::Muted))
            .unwrap(),
        Transitioned::NotFound
    );
    // A refusal in the same commit as an accepted change does not undo it.
    let answers = c
        .run(store.transition_many(vec![
            (duplicate, EventTransition::Muted),
            (first, EventTransition::Muted),
        ]))
        .unwrap();
    assert!(matches!(answers[0], Transitioned::Refused(_)));
    assert!(matches!(
        &answers[1],
        Transitioned::Applied { record, changed: true } if record.state == EventState::Cancelled
    ));
    let stored = store.get_event(first).unwrap().unwrap();
    assert_eq!(stored.state, EventState::Cancelled);
    assert_eq!(stored.reason, Some(crate::model::Reason::Muted));
    assert_eq!(store.counts("orders").unwrap().cancelled, 1);
    assert_eq!(store.next_due("orders", &none_in_flight()).unwrap(), None);
    // Muting again is accepted and changes nothing.
    assert!(matches!(
        c.run(store.transition(first, EventTransition::Muted))
            .unwrap(),
        Transitioned::Applied { changed: false, .. }
    ));
    // Two transitions of one event in one call apply in order.
    let answers = c
        .run(store.transition_many(vec![
            (
                first,
                EventTransition::Requeued {
                    now: at(500),
                    resend: false,
                },
            ),
            (first, failed_attempt(Trigger::Initial, at(900))),
        ]))
        .unwrap();
    assert!(answers
        .iter()
        .all(|a| matches!(a, Transitioned::Applied { changed: true, .. })));
    let stored = store.get_event(first).unwrap().unwrap();
    assert_eq!(stored.state, EventState::Retrying);
    assert_eq!(
        store.next_due("orders", &none_in_flight()).unwrap(),
        Some(at(900))
    );
}

#[test]
fn pg_transitions_answer_applied_refused_or_not_found() {
    transitions_answer_applied_refused_or_not_found(&case!());
}

fn due_ahead_counts_the_destinations_earlier_entries_up_to_the_cap(c: &Case) {
    let store = &c.store;
    let events: Vec<NewEvent> = (0..5)
        .map(|n| new_event("orders", at(n), None))
        .chain([new_event("other", at(0), None)])
        .collect();
    let inserted = c.run(store.insert_events(events)).unwrap();
    let ahead = |n: usize, cap: u64| {
        let record = store.get_event(inserted[n].id).unwrap().unwrap();
        let due_ms = record.next_attempt_at.unwrap().timestamp_millis();
        store
            .due_ahead(&record.destination, record.id, due_ms, cap)
            .unwrap()
    };
    assert_eq!(ahead(0, 10_000), 0);
    assert_eq!(ahead(3, 10_000), 3);
    assert_eq!(ahead(4, 10_000), 4);
    assert_eq!(ahead(5, 10_000), 0);
    assert_eq!(ahead(4, 2), 2);
    // Due order, limit, and ids by state oldest first after a cursor.
    let due = store.due("orders", at(10), 3, &none_in_flight()).unwrap();
    let ids: Vec<EventId> = inserted.iter().map(|i| i.id).collect();
    assert_eq!(due, ids[..3].to_vec());
    let in_state = store
        .ids_in_state("orders", EventState::Pending, Some(ids[1]), 2)
        .unwrap();
    assert_eq!(in_state, ids[2..4].to_vec());
    assert_eq!(
        store
            .ids_in_state("orders", EventState::Pending, None, 100)
            .unwrap(),
        ids[..5].to_vec()
    );
}

#[test]
fn pg_due_ahead_counts_the_destinations_earlier_entries_up_to_the_cap() {
    due_ahead_counts_the_destinations_earlier_entries_up_to_the_cap(&case!());
}

fn purge_removes_only_finished_events_before_cutoff(c: &Case) {
    let store = &c.store;
    let ids: Vec<_> = c
        .run(store.insert_events(vec![
            new_event("orders", at(0), Some("old-key")),
            new_event("orders", at(1), None),
            new_event("orders", at(100), None),
        ]))
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    for id in [ids[0], ids[2]] {
        c.run(store.transition(id, delivered_attempt())).unwrap();
    }
    let purged = c.run(store.purge(at(50), at(50), 100)).unwrap();
    assert_eq!(purged, 1, "only the old delivered event goes");
    assert!(store.get_event(ids[0]).unwrap().is_none());
    assert!(store.get_payload(ids[0]).unwrap().is_none());
    assert!(store.attempts(ids[0]).unwrap().is_empty());
    assert!(
        store.get_event(ids[1]).unwrap().is_some(),
        "pending is kept"
    );
    assert_eq!(store.counts("orders").unwrap().delivered, 1);
    // Its key was still within the window at 50 s; a day later it expires,
    // and the key is free again (not a duplicate of a purged event).
    c.run(store.purge(at(50), at(90_000), 100)).unwrap();
    let again = c
        .run(store.insert_events(vec![new_event("orders", at(200), Some("old-key"))]))
        .unwrap();
    assert_eq!(again[0].state, EventState::Pending);
}

#[test]
fn pg_purge_removes_only_finished_events_before_cutoff() {
    purge_removes_only_finished_events_before_cutoff(&case!());
}

fn purge_finished_oldest_spares_what_it_is_told_to(c: &Case) {
    let store = &c.store;
    let ids: Vec<EventId> = c
        .run(store.insert_events((0..4).map(|n| new_event("orders", at(n), None)).collect()))
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    for id in &ids[..3] {
        c.run(store.transition(*id, delivered_attempt())).unwrap();
    }
    let spared = ids[0];
    let purged = c
        .run(store.purge_finished_oldest(1, move |id| id == spared))
        .unwrap();
    assert_eq!(purged, 1);
    assert!(store.get_event(ids[0]).unwrap().is_some(), "spared");
    assert!(
        store.get_event(ids[1]).unwrap().is_none(),
        "oldest not spared"
    );
    assert!(store.get_event(ids[3]).unwrap().is_some(), "owed");
    assert_eq!(store.budget_use(), None);
    assert!(!store.budget_wants_purge());
}

#[test]
fn pg_purge_finished_oldest_spares_what_it_is_told_to() {
    purge_finished_oldest_spares_what_it_is_told_to(&case!());
}

// ---- listings -------------------------------------------------------------

fn listing_pages_newest_first_through_each_index(c: &Case) {
    let store = &c.store;
    let events = (0..6)
        .map(|i| new_event(if i % 2 == 0 { "a" } else { "b" }, at(i), None))
        .collect();
    c.run(store.insert_events(events)).unwrap();
    let all = store
        .list_events(&EventFilter::default(), None, None, 4)
        .unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let rest = store
        .list_events(&EventFilter::default(), None, Some(all[3].id), 10)
        .unwrap();
    assert_eq!(rest.len(), 2);
    let only_a = EventFilter {
        destination: Some("a".into()),
        ..Default::default()
    };
    assert_eq!(store.list_events(&only_a, None, None, 10).unwrap().len(), 3);
    let a_pending = EventFilter {
        destination: Some("a".into()),
        state: Some(EventState::Pending),
        ..Default::default()
    };
    assert_eq!(
        store.list_events(&a_pending, None, None, 10).unwrap().len(),
        3
    );
    let a_failed = EventFilter {
        destination: Some("a".into()),
        state: Some(EventState::Failed),
        ..Default::default()
    };
    assert!(store
        .list_events(&a_failed, None, None, 10)
        .unwrap()
        .is_empty());
    let recent = EventFilter {
        created_after: Some(at(4)),
        ..Default::default()
    };
    assert_eq!(store.list_events(&recent, None, None, 10).unwrap().len(), 2);
}

#[test]
fn pg_listing_pages_newest_first_through_each_index() {
    listing_pages_newest_first_through_each_index(&case!());
}

/// The listing a filter should give, worked out from every record by brute
/// force (the redb suite's).
fn brute_force_listing(
    all: &[EventRecord],
    filter: &EventFilter,
    among: Option<&[String]>,
    before: Option<EventId>,
    limit: usize,
) -> Vec<EventId> {
    let pattern = filter
        .topic
        .as_deref()
        .map(|t| crate::model::TopicPattern::new(t).ok());
    let mut ids: Vec<EventId> = all
        .iter()
        .filter(|r| {
            filter
                .destination
                .as_deref()
                .is_none_or(|d| d == r.destination)
        })
        .filter(|r| among.is_none_or(|among| among.contains(&r.destination)))
        .filter(|r| filter.state.is_none_or(|s| s == r.state))
        .filter(|r| match &pattern {
            None => true,
            Some(p) => p.as_ref().is_some_and(|p| p.matches(&r.topic)),
        })
        .filter(|r| filter.created_after.is_none_or(|t| r.id.0 >= ulid_floor(t)))
        .filter(|r| filter.created_before.is_none_or(|t| r.id.0 < ulid_floor(t)))
        .filter(|r| before.is_none_or(|b| r.id < b))
        .map(|r| r.id)
        .collect();
    ids.sort_by(|a, b| b.cmp(a));
    ids.truncate(limit);
    ids
}

/// Topics with LIKE's own wildcards in them too, which a prefix must match
/// literally.
const TOPICS_USED: [&str; 7] = [
    "order.created",
    "order.paid",
    "orders",
    "user.signup",
    "a?b",
    "50%_off",
    "500_off",
];
const GLOBS: [&str; 9] = [
    "order.*",
    "order.created",
    "*",
    "user.*",
    "a?b",
    "o*s",
    "none.*",
    "50%_*",
    "50_*",
];

/// One event: destination, topic and what happens to it (0 pending, 1
/// retrying, 2 failed, 3 delivered).
type EventPlan = (usize, usize, u8);

fn store_with(c: &Case, store: &PgStore, plan: &[EventPlan]) -> Vec<EventRecord> {
    let events: Vec<NewEvent> = plan
        .iter()
        .enumerate()
        .map(|(n, &(dest, topic, _))| {
            let mut event = new_event(["a", "b", "c"][dest], at(n as i64), None);
            event.topic = TOPICS_USED[topic].to_string();
            event
        })
        .collect();
    let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
    c.run(store.insert_events(events)).unwrap();
    let mut transitions = Vec::new();
    for (id, &(_, _, fate)) in ids.iter().zip(plan) {
        match fate {
            1 => transitions.push((*id, failed_attempt(Trigger::Initial, at(10_000)))),
            2 => transitions.push((
                *id,
                EventTransition::AttemptRecorded {
                    attempt: attempt(Trigger::Initial, 500),
                    verdict: Verdict::Failed {
                        reason: FailReason::RetriesExhausted,
                    },
                },
            )),
            3 => transitions.push((*id, delivered_attempt())),
            _ => {}
        }
    }
    c.run(store.transition_many(transitions)).unwrap();
    // Every other retrying event fails again: same state, a later due time.
    let again: Vec<(EventId, EventTransition)> = ids
        .iter()
        .zip(plan)
        .enumerate()
        .filter(|(n, (_, &(_, _, fate)))| fate == 1 && n % 2 == 0)
        .map(|(_, (id, _))| (*id, failed_attempt(Trigger::Automatic, at(20_000))))
        .collect();
    c.run(store.transition_many(again)).unwrap();
    ids.iter()
        .map(|id| store.get_event(*id).unwrap().unwrap())
        .collect()
}

/// Pages through a listing `page` at a time and checks each page against
/// the brute-force answer.
fn check_listing(
    store: &PgStore,
    all: &[EventRecord],
    filter: &EventFilter,
    among: Option<&[String]>,
    page: usize,
) {
    let mut before = None;
    loop {
        let got: Vec<EventId> = store
            .list_events(filter, among, before, page)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        let want = brute_force_listing(all, filter, among, before, page);
        assert_eq!(
            got, want,
            "filter {filter:?} among {among:?} before {before:?}"
        );
        match got.last() {
            Some(last) if got.len() == page => before = Some(*last),
            _ => break,
        }
    }
}

fn all_filters(all: &[EventRecord]) -> Vec<EventFilter> {
    let mut filters = Vec::new();
    let destinations = [None, Some("a"), Some("c")];
    let states = [
        None,
        Some(EventState::Failed),
        Some(EventState::Pending),
        Some(EventState::Retrying),
        Some(EventState::Delivered),
    ];
    let topics = std::iter::once(None).chain(GLOBS.iter().map(|g| Some(*g)));
    let middle = all.get(all.len() / 2).map(|r| r.created_at);
    for topic in topics {
        for destination in destinations {
            for state in states {
                filters.push(EventFilter {
                    destination: destination.map(str::to_string),
                    state,
                    topic: topic.map(str::to_string),
                    ..Default::default()
                });
            }
        }
        filters.push(EventFilter {
            topic: topic.map(str::to_string),
            created_after: middle,
            ..Default::default()
        });
        filters.push(EventFilter {
            topic: topic.map(str::to_string),
            state: Some(EventState::Failed),
            created_before: middle,
            ..Default::default()
        });
    }
    filters
}

fn check_every_filter(store: &PgStore, all: &[EventRecord], page: usize) {
    let ab = ["a".to_string(), "b".to_string()];
    let only_c = ["c".to_string()];
    let amongs: [Option<&[String]>; 4] = [None, Some(&ab), Some(&only_c), Some(&[])];
    for filter in all_filters(all) {
        for among in amongs {
            check_listing(store, all, &filter, among, page);
        }
    }
}

#[test]
fn pg_every_filter_lists_what_brute_force_finds() {
    use proptest::strategy::{Strategy, ValueTree};
    let c = case!();
    // Cases share the cluster, each on a database of its own.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (
        proptest::collection::vec((0usize..3, 0usize..TOPICS_USED.len(), 0u8..4), 0..40),
        1usize..7,
    );
    for n in 0..6 {
        let (plan, page) = strategy.new_tree(&mut runner).unwrap().current();
        let url = c.cluster.create_database(&format!("listing_{n}"));
        let store = c.run(PgStore::connect(&url)).unwrap();
        let all = store_with(&c, &store, &plan);
        check_every_filter(&store, &all, page);
        c.run(store.close());
    }
}

fn listing_follows_transitions_and_purge(c: &Case) {
    let plan: Vec<EventPlan> = (0..30)
        .map(|n| (n % 3, n % TOPICS_USED.len(), (n % 4) as u8))
        .collect();
    let store = &c.store;
    store_with(c, store, &plan);
    c.run(store.purge(at(20), at(20), 1000)).unwrap();
    let left: Vec<EventRecord> = store
        .list_events(&EventFilter::default(), None, None, 1000)
        .unwrap();
    assert!(left.len() < 30);
    for filter in all_filters(&left) {
        check_listing(store, &left, &filter, None, 4);
    }
}

#[test]
fn pg_listing_follows_transitions_and_purge() {
    listing_follows_transitions_and_purge(&case!());
}

// ---- destinations, runtime, statistics -----------------------------------

fn destinations_runtime_and_stats_are_kept_and_deleted_together(c: &Case) {
    let store = &c.store;
    c.run(store.put_destination("orders".into(), b"{\"v\":1}".to_vec()))
        .unwrap();
    c.run(store.put_destination("billing".into(), b"{}".to_vec()))
        .unwrap();
    c.run(store.put_destination("orders".into(), b"{\"v\":2}".to_vec()))
        .unwrap();
    assert_eq!(
        store.api_destinations().unwrap(),
        vec![
            ("billing".to_string(), b"{}".to_vec()),
            ("orders".to_string(), b"{\"v\":2}".to_vec())
        ]
    );
    let runtime = DestinationRuntime {
        paused: true,
        concurrency: Some(3),
        ..Default::default()
    };
    assert_eq!(store.runtime("orders").unwrap(), None);
    c.run(store.put_runtime("orders".into(), runtime.clone()))
        .unwrap();
    assert_eq!(store.runtime("orders").unwrap(), Some(runtime));
    c.run(store.put_stats(
        vec![
            ("orders".into(), 60_000, b"m1".to_vec()),
            ("orders".into(), 120_000, b"m2".to_vec()),
            ("billing".into(), 60_000, b"b1".to_vec()),
        ],
        0,
    ))
    .unwrap();
    assert_eq!(
        store.stats_since("orders", 0).unwrap(),
        vec![b"m1".to_vec(), b"m2".to_vec()]
    );
    // A minute rewritten replaces it; older minutes than kept go.
    c.run(store.put_stats(vec![("orders".into(), 120_000, b"m2'".to_vec())], 100_000))
        .unwrap();
    assert_eq!(
        store.stats_since("orders", 0).unwrap(),
        vec![b"m2'".to_vec()]
    );
    assert_eq!(
        store.stats_since("orders", 130_000).unwrap(),
        Vec::<Vec<u8>>::new()
    );

    // Deleting cancels what the destination owes and keeps its history.
    let ids: Vec<EventId> = c
        .run(store.insert_events(vec![
            new_event("orders", at(0), None),
            new_event("orders", at(1), None),
            new_event("orders", at(2), None),
            new_event("billing", at(3), None),
        ]))
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    c.run(store.transition(ids[0], delivered_attempt()))
        .unwrap();
    c.run(store.transition(ids[1], failed_attempt(Trigger::Initial, at(60))))
        .unwrap();
    assert_eq!(c.run(store.delete_destination("orders".into())).unwrap(), 2);
    let counts = store.counts("orders").unwrap();
    assert_eq!(
        (counts.delivered, counts.cancelled, counts.owed()),
        (1, 2, 0)
    );
    let cancelled = store.get_event(ids[1]).unwrap().unwrap();
    assert_eq!(
        cancelled.reason,
        Some(crate::model::Reason::DestinationDeleted)
    );
    assert_eq!(store.attempts(ids[1]).unwrap().len(), 1);
    assert_eq!(store.next_due("orders", &none_in_flight()).unwrap(), None);
    assert_eq!(store.counts("billing").unwrap().pending, 1);
    assert_eq!(
        store.api_destinations().unwrap(),
        vec![("billing".to_string(), b"{}".to_vec())]
    );
    assert_eq!(store.runtime("orders").unwrap(), None);
    assert!(store.stats_since("orders", 0).unwrap().is_empty());
    assert_eq!(
        store.stats_since("billing", 0).unwrap(),
        vec![b"b1".to_vec()]
    );
}

#[test]
fn pg_destinations_runtime_and_stats_are_kept_and_deleted_together() {
    destinations_runtime_and_stats_are_kept_and_deleted_together(&case!());
}

// ---- notices -------------------------------------------------------------

fn notice_at(seconds: i64, destination: &str) -> Notice {
    use crate::model::{NoticeCause, NoticeKind};
    Notice {
        id: ulid::Ulid::from_datetime(at(seconds).into()),
        at: at(seconds),
        kind: NoticeKind::DestinationPaused,
        destination: Some(destination.to_string()),
        event: None,
        cause: NoticeCause::Operator,
        acked_at: None,
    }
}

fn store_notices(c: &Case, notices: Vec<Notice>) {
    c.run(c.store.store_notices(notices, Vec::new())).unwrap();
}

fn notices_list_newest_first_in_pages_with_a_cursor(c: &Case) {
    let store = &c.store;
    let notices: Vec<_> = (0..5).map(|i| notice_at(i, "a")).collect();
    store_notices(c, notices.clone());
    let query = NoticeQuery {
        limit: 2,
        ..NoticeQuery::default()
    };
    let (first, next, unacked) = store.list_notices(&query).unwrap();
    assert_eq!(unacked, 5);
    let ids = |page: &[Notice]| page.iter().map(|n| n.id).collect::<Vec<_>>();
    assert_eq!(ids(&first), vec![notices[4].id, notices[3].id]);
    assert_eq!(next, Some(notices[3].id));
    let (second, next, _) = store
        .list_notices(&NoticeQuery {
            before: next,
            ..query
        })
        .unwrap();
    assert_eq!(ids(&second), vec![notices[2].id, notices[1].id]);
    let (last, next, _) = store
        .list_notices(&NoticeQuery {
            before: next,
            ..query
        })
        .unwrap();
    assert_eq!(ids(&last), vec![notices[0].id]);
    assert_eq!(next, None);
    assert_eq!(store.unacked_notices().unwrap(), 5);
}

#[test]
fn pg_notices_list_newest_first_in_pages_with_a_cursor() {
    notices_list_newest_first_in_pages_with_a_cursor(&case!());
}

fn acknowledging_keeps_the_count_and_the_unacked_listing_in_step(c: &Case) {
    use crate::model::NoticeSelection;
    let store = &c.store;
    let notices: Vec<_> = (0..6).map(|i| notice_at(i, "a")).collect();
    store_notices(c, notices.clone());

    let acked = c.run(store.ack_notice(notices[5].id, at(100))).unwrap();
    assert_eq!(acked.unwrap().acked_at, Some(at(100)));
    let again = c.run(store.ack_notice(notices[5].id, at(200))).unwrap();
    assert_eq!(again.unwrap().acked_at, Some(at(100)));
    assert_eq!(store.unacked_notices().unwrap(), 5);
    assert_eq!(
        c.run(store.ack_notice(ulid::Ulid::from_datetime(at(50).into()), at(100)))
            .unwrap(),
        None
    );

    let selection = NoticeSelection {
        ids: Some(vec![notices[0].id, notices[5].id]),
        before: None,
    };
    assert_eq!(c.run(store.ack_notices(selection, at(101))).unwrap(), 1);
    let before = NoticeSelection {
        ids: None,
        before: Some(notices[3].id),
    };
    assert_eq!(c.run(store.ack_notices(before, at(102))).unwrap(), 2);
    assert_eq!(store.unacked_notices().unwrap(), 2);
    let unacked = NoticeQuery {
        unacked_only: true,
        ..NoticeQuery::default()
    };
    let (page, _, count) = store.list_notices(&unacked).unwrap();
    assert_eq!(count, 2);
    let ids: Vec<_> = page.iter().map(|n| n.id).collect();
    assert_eq!(ids, vec![notices[4].id, notices[3].id]);
    assert!(page.iter().all(|n| n.acked_at.is_none()));

    assert_eq!(
        c.run(store.ack_notices(NoticeSelection::all(), at(103)))
            .unwrap(),
        2
    );
    assert_eq!(store.unacked_notices().unwrap(), 0);
    let (all, _, _) = store.list_notices(&NoticeQuery::default()).unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.iter().all(|n| n.acked_at.is_some()));
}

#[test]
fn pg_acknowledging_keeps_the_count_and_the_unacked_listing_in_step() {
    acknowledging_keeps_the_count_and_the_unacked_listing_in_step(&case!());
}

fn pruning_drops_old_notices_and_their_unacked_entries(c: &Case) {
    let store = &c.store;
    let notices: Vec<_> = (0..4).map(|i| notice_at(i * 10, "a")).collect();
    store_notices(c, notices.clone());
    c.run(store.prune_notices(at(15))).unwrap();
    let (left, _, _) = store.list_notices(&NoticeQuery::default()).unwrap();
    let ids: Vec<_> = left.iter().map(|n| n.id).collect();
    assert_eq!(ids, vec![notices[3].id, notices[2].id]);
    assert_eq!(store.unacked_notices().unwrap(), 2);
    // Durable, and seen by another node.
    let other = c.second_node();
    assert_eq!(other.unacked_notices().unwrap(), 2);
    assert_eq!(other.list_notices(&NoticeQuery::default()).unwrap().0, left);
}

#[test]
fn pg_pruning_drops_old_notices_and_their_unacked_entries() {
    pruning_drops_old_notices_and_their_unacked_entries(&case!());
}

fn notices_and_their_alert_events_are_stored_together(c: &Case) {
    let store = &c.store;
    let notice = notice_at(0, "a");
    let alert = new_event("alerts", at(0), None);
    let inserted = c
        .run(store.store_notices(vec![notice.clone()], vec![alert.clone()]))
        .unwrap();
    assert_eq!(inserted.len(), 1);
    assert_eq!(inserted[0].id, alert.id);
    assert_eq!(store.counts("alerts").unwrap().pending, 1);
    assert_eq!(
        store.list_notices(&NoticeQuery::default()).unwrap().0,
        vec![notice]
    );
}

#[test]
fn pg_notices_and_their_alert_events_are_stored_together() {
    notices_and_their_alert_events_are_stored_together(&case!());
}

// ---- bulk jobs -----------------------------------------------------------

fn bulk_jobs_keep_their_ids_until_finished_and_the_newest_finished(c: &Case) {
    use crate::store::bulk_jobs::FINISHED_BULK_JOBS_KEPT;
    let store = &c.store;
    // A lane longer than one stored chunk, and a second lane.
    let long: Vec<EventId> = (1..=5000u128).map(ulid::Ulid).collect();
    let lanes = vec![
        BulkLane {
            destination: "a".into(),
            ids: long.clone(),
        },
        BulkLane {
            destination: "b".into(),
            ids: vec![ulid::Ulid(9)],
        },
    ];
    let job = ulid::Ulid(1 << 100);
    c.run(store.create_bulk_job(job, b"{\"n\":0}".to_vec(), lanes.clone()))
        .unwrap();
    assert_eq!(store.bulk_job_lanes(job).unwrap(), lanes);
    c.run(store.save_bulk_job(job, b"{\"n\":1}".to_vec(), false))
        .unwrap();
    let row: BulkJobRow = store.bulk_job(job).unwrap().unwrap();
    assert_eq!((row.finished, row.record), (false, b"{\"n\":1}".to_vec()));
    assert_eq!(store.bulk_jobs(true).unwrap().len(), 1);

    // The redb suite's: a job finishing after 100 newer ones is kept and
    // the oldest others pruned.
    let one_lane = || {
        vec![BulkLane {
            destination: "d".into(),
            ids: vec![ulid::Ulid(1)],
        }]
    };
    let ids: Vec<ulid::Ulid> = (1..=FINISHED_BULK_JOBS_KEPT as u128 + 2)
        .map(ulid::Ulid)
        .collect();
    for id in &ids {
        c.run(store.create_bulk_job(*id, b"{}".to_vec(), one_lane()))
            .unwrap();
    }
    for id in &ids[1..] {
        c.run(store.save_bulk_job(*id, b"{}".to_vec(), true))
            .unwrap();
    }
    c.run(store.save_bulk_job(ids[0], b"{}".to_vec(), true))
        .unwrap();
    let listed = store.bulk_jobs(false).unwrap();
    // The newest 100 finished, and the running job (newest of all).
    assert_eq!(listed.len(), FINISHED_BULK_JOBS_KEPT + 1);
    assert_eq!(listed[0].id, job);
    assert!(listed.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert!(
        store.bulk_job(ids[0]).unwrap().is_some(),
        "pruned by its own finish"
    );
    assert!(store.bulk_job(ids[1]).unwrap().is_none());
    assert!(store.bulk_job(ids[2]).unwrap().is_none());
    assert!(store.bulk_job(ids[3]).unwrap().is_some());
    assert!(store.bulk_job_lanes(ids[0]).unwrap().is_empty());
    let running: Vec<ulid::Ulid> = store
        .bulk_jobs(true)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(running, vec![job]);
}

#[test]
fn pg_bulk_jobs_keep_their_ids_until_finished_and_the_newest_finished() {
    bulk_jobs_keep_their_ids_until_finished_and_the_newest_finished(&case!());
}

fn last_attempts_since_finds_each_events_newest_of_a_trigger(c: &Case) {
    let store = &c.store;
    let ids: Vec<EventId> = c
        .run(store.insert_events(vec![
            new_event("orders", at(0), None),
            new_event("orders", at(1), None),
        ]))
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    let manual_at = |seconds| EventTransition::AttemptRecorded {
        attempt: AttemptRecord {
            at: at(seconds),
            ..attempt(Trigger::Manual, 500)
        },
        verdict: Verdict::Unchanged,
    };
    c.run(store.transition_many(vec![
        (ids[0], manual_at(10)),
        (ids[0], manual_at(20)),
        (ids[1], manual_at(5)),
    ]))
    .unwrap();
    let found = store
        .last_attempts_since(&[ids[0], ids[1], ulid::Ulid(3)], Trigger::Manual, at(8))
        .unwrap();
    assert_eq!(found[0].as_ref().map(|a| (a.n, a.at)), Some((2, at(20))));
    assert_eq!(found[1], None, "older than since");
    assert_eq!(found[2], None, "no such event");
    let automatic = store
        .last_attempts_since(&ids, Trigger::Automatic, at(0))
        .unwrap();
    assert_eq!(automatic, vec![None, None]);
}

#[test]
fn pg_last_attempts_since_finds_each_events_newest_of_a_trigger() {
    last_attempts_since_finds_each_events_newest_of_a_trigger(&case!());
}

// ---- PostgreSQL's own: nodes, migrations, URLs, outages ------------------

#[test]
fn pg_two_nodes_share_idempotency_keys_and_see_each_others_writes() {
    let c = case!();
    let other = c.second_node();
    let first = c
        .run(
            c.store
                .insert_events(vec![new_event("orders", at(0), Some("k"))]),
        )
        .unwrap();
    let second = c
        .run(other.insert_events(vec![new_event("orders", at(1), Some("k"))]))
        .unwrap();
    assert_eq!(second[0].duplicate_of, Some(first[0].id));
    assert_eq!(other.counts("orders").unwrap().pending, 1);
    // Two nodes storing one key at once: exactly one holds it.
    let (a, b) = c.run(async {
        tokio::join!(
            c.store
                .insert_events(vec![new_event("orders", at(10), Some("race"))]),
            other.insert_events(vec![new_event("orders", at(11), Some("race"))])
        )
    });
    let fates = [a.unwrap()[0].state, b.unwrap()[0].state];
    assert_eq!(
        fates.iter().filter(|s| **s == EventState::Pending).count(),
        1,
        "{fates:?}"
    );
}

#[test]
fn pg_migrations_apply_once_and_a_newer_schema_is_refused() {
    let c = case!();
    let url = c.cluster.create_database("migrations");
    let migrate = || {
        c.run(async {
            let config: tokio_postgres::Config = url.parse().unwrap();
            let (mut client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            schema::migrate(&mut client, "test", schema::MIGRATIONS).await
        })
    };
    assert_eq!(migrate().unwrap(), vec![1]);
    assert_eq!(migrate().unwrap(), Vec::<i32>::new(), "a re-run is a no-op");
    assert_eq!(PG_SCHEMA_VERSION, 1);

    // Nodes starting at once on a fresh database: the lock makes one of them
    // migrate and the others find it done.
    let fresh = c.cluster.create_database("racing");
    let opened = c.run(async {
        let nodes = (0..4).map(|_| PgStore::connect(&fresh));
        futures_util::future::join_all(nodes).await
    });
    assert!(
        opened.iter().all(Result::is_ok),
        "{:?}",
        opened
            .iter()
            .filter_map(|r| r.as_ref().err())
            .collect::<Vec<_>>()
    );

    // A version this build does not know: refused, and nothing changed.
    c.run(async {
        let config: tokio_postgres::Config = url.parse().unwrap();
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
            .execute(
                "INSERT INTO hookwatch.schema_migrations (version, name) VALUES (99, 'future')",
                &[],
            )
            .await
            .unwrap();
    });
    let refused = c.run(PgStore::connect(&url)).err().expect("refused");
    assert!(
        matches!(
            refused,
            StoreError::Postgres(PgError::SchemaNewer {
                found: 99,
                known: 1,
                ..
            })
        ),
        "{refused:?}"
    );
    let message = refused.to_string();
    assert!(message.contains("version 99"), "{message}");
    assert!(message.contains("left untouched"), "{message}");
}

#[test]
fn pg_an_unreachable_database_is_named_without_its_password() {
    let rt = runtime();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://hook:hunter2@127.0.0.1:{port}/hw");
    let error = rt
        .block_on(PgStore::connect(&url))
        .err()
        .expect("nothing listens");
    assert!(
        matches!(error, StoreError::Postgres(PgError::Connect { .. })),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!format!("{error:?}").contains("hunter2"));
}

#[test]
fn pg_writes_fail_while_the_server_is_down_and_resume_when_it_is_back() {
    let c = case!();
    let store = &c.store;
    c.run(store.insert_events(vec![new_event("orders", at(0), None)]))
        .unwrap();
    c.cluster.stop();
    let refused = c.run(store.insert_events(vec![new_event("orders", at(1), None)]));
    assert!(refused.is_err(), "stored with no server: {refused:?}");
    assert!(store.take_write_failures().is_some());
    c.cluster.restart();
    // The pool drops the broken connections and makes new ones.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match c.run(store.insert_events(vec![new_event("orders", at(2), None)])) {
            Ok(_) => break,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => panic!("still failing after the server came back: {e}"),
        }
    }
    assert_eq!(store.counts("orders").unwrap().pending, 2);
}

#[test]
#[should_panic(expected = "Cannot start a runtime from within a runtime")]
fn pg_a_read_on_a_current_thread_runtimes_own_thread_is_refused() {
    let Some(cluster) = TestCluster::start() else {
        panic!("skipped: Cannot start a runtime from within a runtime");
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = PgStore::connect(&cluster.url()).await.unwrap();
        // On the runtime's only thread: blocking it would stall the reply.
        let _ = store.event_count();
    });
}

#[test]
fn pg_a_read_on_a_multi_thread_worker_hands_the_worker_to_blocking() {
    // The engine's start reads each destination's state on a worker of the
    // daemon's runtime before any task runs.
    let c = case!();
    let store = c.store.clone();
    let count = c
        .run(async move { tokio::spawn(async move { store.event_count() }).await })
        .unwrap()
        .unwrap();
    assert_eq!(count, 0);
}

#[test]
fn pg_reads_from_spawn_blocking_work_on_a_current_thread_runtime() {
    let Some(cluster) = TestCluster::start() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = PgStore::connect(&cluster.url()).await.unwrap();
        store
            .insert_events(vec![new_event("orders", at(0), None)])
            .await
            .unwrap();
        let reader = store.clone();
        let count = tokio::task::spawn_blocking(move || reader.counts("orders"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(count.pending, 1);
        let (_, indexed) = store
            .insert_events_deferred(vec![new_event("orders", at(1), None)])
            .await
            .unwrap();
        assert!(indexed.wait().await, "nothing is deferred on PostgreSQL");
        store.close().await;
    });
}

#[test]
fn pg_nodes_claiming_keys_in_opposite_orders_all_commit_each_key_held_once() {
    let c = case!();
    let other = c.second_node();
    for round in 0..4 {
        let keys = [format!("k{round}a"), format!("k{round}b")];
        let batch = |first: usize, base: i64| {
            vec![
                new_event("orders", at(base), Some(&keys[first])),
                new_event("orders", at(base + 1), Some(&keys[1 - first])),
            ]
        };
        // Each node claims both keys, in the other order: the server may
        // break the deadlock by rolling one group back, which runs again.
        let (a, b) = c.run(async {
            tokio::join!(
                c.store.insert_events(batch(0, round * 10)),
                other.insert_events(batch(1, round * 10 + 5))
            )
        });
        let (a, b) = (a.unwrap(), b.unwrap());
        for (n, key) in keys.iter().enumerate() {
            let holders: Vec<&Inserted> = a
                .iter()
                .chain(&b)
                .filter(|i| i.state == EventState::Pending)
                .filter(|i| {
                    let record = c.store.get_event(i.id).unwrap().unwrap();
                    record.idempotency_key.as_deref() == Some(key.as_str())
                })
                .collect();
            assert_eq!(holders.len(), 1, "round {round} key {n}: {a:?} {b:?}");
        }
    }
}

fn reconnecting_keeps_everything(c: &Case) {
    let store = c.run(PgStore::connect(&c.cluster.url())).unwrap();
    let id = c
        .run(store.insert_events(vec![new_event("orders", at(0), Some("k"))]))
        .unwrap()[0]
        .id;
    c.run(store.transition(id, failed_attempt(Trigger::Initial, at(60))))
        .unwrap();
    c.run(store.put_destination("orders".into(), b"{}".to_vec()))
        .unwrap();
    c.run(store.put_runtime("orders".into(), DestinationRuntime::default()))
        .unwrap();
    store_notices(c, vec![notice_at(0, "orders")]);
    let before = store.get_event(id).unwrap().unwrap();
    c.run(store.close());

    let store = c.run(PgStore::connect(&c.cluster.url())).unwrap();
    assert_eq!(store.get_event(id).unwrap().unwrap(), before);
    assert_eq!(store.attempts(id).unwrap().len(), 1);
    assert_eq!(
        store.next_due("orders", &none_in_flight()).unwrap(),
        Some(at(60))
    );
    assert_eq!(store.api_destinations().unwrap().len(), 1);
    assert!(store.runtime("orders").unwrap().is_some());
    assert_eq!(store.unacked_notices().unwrap(), 1);
    let repeat = c
        .run(store.insert_events(vec![new_event("orders", at(1), Some("k"))]))
        .unwrap();
    assert_eq!(repeat[0].duplicate_of, Some(id));
    c.run(store.close());
}

#[test]
fn pg_reconnecting_keeps_everything() {
    reconnecting_keeps_everything(&case!());
}

#[test]
fn pg_one_engine_per_database_until_nodes_share_the_work() {
    let c = case!();
    c.run(c.store.hold_single_node_lock()).unwrap();
    // A second engine on the same database would attempt every due event
    // again: refused, naming the database (masked) and what to do.
    let second = c.second_node();
    let refused = c
        .run(second.hold_single_node_lock())
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("another hookwatch already runs on the PostgreSQL database")
            && refused.contains("--url"),
        "{refused}"
    );
    // The lock goes with the store that held it.
    let Case { store, rt, cluster } = c;
    rt.block_on(store.close());
    rt.block_on(second.hold_single_node_lock())
        .expect("free once the first engine closed");
    rt.block_on(second.close());
    drop(cluster);
}

#[test]
fn pg_a_refused_connection_says_what_the_server_said() {
    let c = case!();
    let url = c.cluster.url();
    let wrong_database = format!("{}_missing", url);
    let refused = match c.run(PgStore::connect(&wrong_database)) {
        Ok(_) => panic!("connected to a database that does not exist"),
        Err(e) => e.to_string(),
    };
    assert!(refused.contains("does not exist"), "{refused}");
    assert!(!refused.contains("db error"), "{refused}");
}

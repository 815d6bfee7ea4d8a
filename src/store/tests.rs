use super::RedbStore as Store;
use super::*;
use crate::model::{EventFilter, EventIdSet, TransitionKind, Trigger, Verdict};
use chrono::TimeZone;

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

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    (dir, store)
}

#[tokio::test]
async fn inserted_event_is_due_counted_and_readable() {
    let (_dir, store) = temp_store();
    let inserted = store
        .insert_events(vec![new_event("orders", at(0), None)])
        .await
        .unwrap();
    let id = inserted[0].id;
    assert_eq!(inserted[0].state, EventState::Pending);
    let record = store.get_event(id).unwrap().unwrap();
    assert_eq!(record.next_attempt_at, Some(at(0)));
    assert_eq!(store.get_payload(id).unwrap().unwrap(), b"{\"n\":1}");
    assert_eq!(store.counts("orders").unwrap().pending, 1);
    assert_eq!(
        store
            .due("orders", at(0), 10, &EventIdSet::default())
            .unwrap(),
        vec![id]
    );
    assert!(store
        .due("other", at(0), 10, &EventIdSet::default())
        .unwrap()
        .is_empty());
    let in_flight: EventIdSet = [id].into_iter().collect();
    assert!(store
        .due("orders", at(0), 10, &in_flight)
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn update_moves_due_entry_and_counts_with_the_record() {
    let (_dir, store) = temp_store();
    let id = store
        .insert_events(vec![new_event("orders", at(0), None)])
        .await
        .unwrap()[0]
        .id;
    let Transitioned::Applied {
        record: updated, ..
    } = store
        .transition(id, failed_attempt(Trigger::Initial, at(60)))
        .await
        .unwrap()
    else {
        panic!("a pending event takes an attempt");
    };
    assert_eq!(updated.attempt_count, 1);
    assert!(store
        .due("orders", at(59), 10, &EventIdSet::default())
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .due("orders", at(60), 10, &EventIdSet::default())
            .unwrap(),
        vec![id]
    );
    assert_eq!(
        store.next_due("orders", &EventIdSet::default()).unwrap(),
        Some(at(60))
    );
    let counts = store.counts("orders").unwrap();
    assert_eq!((counts.pending, counts.retrying), (0, 1));
    let attempts = store.attempts(id).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].n, 1);

    // Retrying again: same state, so only the due entry moves.
    store
        .transition(id, failed_attempt(Trigger::Automatic, at(120)))
        .await
        .unwrap();
    assert!(store
        .due("orders", at(119), 10, &EventIdSet::default())
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .due("orders", at(120), 10, &EventIdSet::default())
            .unwrap(),
        vec![id]
    );
    assert_eq!(store.counts("orders").unwrap().retrying, 1);

    store.transition(id, delivered_attempt()).await.unwrap();
    assert_eq!(
        store.next_due("orders", &EventIdSet::default()).unwrap(),
        None
    );
    assert_eq!(store.counts("orders").unwrap().delivered, 1);
    assert_eq!(store.get_event(id).unwrap().unwrap().next_attempt_at, None);
}

#[tokio::test]
async fn repeat_idempotency_key_within_a_day_is_skipped() {
    let (_dir, store) = temp_store();
    let first = store
        .insert_events(vec![new_event("orders", at(0), Some("k1"))])
        .await
        .unwrap()[0]
        .clone();
    let again = store
        .insert_events(vec![new_event("orders", at(3600), Some("k1"))])
        .await
        .unwrap()[0]
        .clone();
    assert_eq!(again.state, EventState::Skipped);
    assert_eq!(again.duplicate_of, Some(first.id));
    let other_destination = store
        .insert_events(vec![new_event("billing", at(3600), Some("k1"))])
        .await
        .unwrap()[0]
        .clone();
    assert_eq!(other_destination.state, EventState::Pending);
    let next_day = store
        .insert_events(vec![new_event("orders", at(86_400 + 1), Some("k1"))])
        .await
        .unwrap()[0]
        .clone();
    assert_eq!(next_day.state, EventState::Pending);
    assert_eq!(store.counts("orders").unwrap().skipped, 1);
}

#[tokio::test]
async fn concurrent_writes_share_commits_and_all_land() {
    let (_dir, store) = temp_store();
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
    assert_eq!(store.event_count().unwrap(), 200);
    assert_eq!(store.counts("orders").unwrap().pending, 200);
}

#[tokio::test]
async fn listing_pages_newest_first_through_each_index() {
    let (_dir, store) = temp_store();
    let mut events = Vec::new();
    for i in 0..6 {
        let destination = if i % 2 == 0 { "a" } else { "b" };
        events.push(new_event(destination, at(i), None));
    }
    store.insert_events(events).await.unwrap();
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

#[tokio::test]
async fn purge_removes_only_finished_events_before_cutoff() {
    let (_dir, store) = temp_store();
    let ids: Vec<_> = store
        .insert_events(vec![
            new_event("orders", at(0), None),
            new_event("orders", at(1), None),
            new_event("orders", at(100), None),
        ])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    for id in [ids[0], ids[2]] {
        store.transition(id, delivered_attempt()).await.unwrap();
    }
    let purged = store.purge(at(50), at(50), 100).await.unwrap();
    assert_eq!(purged, 1, "only the old delivered event goes");
    assert!(store.get_event(ids[0]).unwrap().is_none());
    assert!(store.get_payload(ids[0]).unwrap().is_none());
    assert!(
        store.get_event(ids[1]).unwrap().is_some(),
        "pending is kept"
    );
    assert_eq!(store.counts("orders").unwrap().delivered, 1);
}

#[tokio::test]
async fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let id = {
        let store = Store::open(&path).unwrap();
        store
            .insert_events(vec![new_event("orders", at(0), None)])
            .await
            .unwrap()[0]
            .id
    };
    // The writer thread holds the database until its channel closes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let store = loop {
        match Store::open(&path) {
            Ok(store) => break store,
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("reopen failed: {e}"),
        }
    };
    assert!(store.get_event(id).unwrap().is_some());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_file_that_is_not_a_store_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, b"my precious notes").unwrap();
    let err = Store::open(&path).err().expect("must refuse");
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"my precious notes");
}

#[test]
fn a_foreign_redb_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("theirs");
            let mut table = txn.open_table(def).unwrap();
            table.insert("x", 1).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = Store::open(&path).err().expect("must refuse");
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
}

#[test]
fn another_schema_version_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.redb");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            meta.insert("magic", MAGIC.as_bytes()).unwrap();
            meta.insert("schema_version", 99u32.to_le_bytes().as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path).err().expect("must refuse");
    assert!(
        matches!(
            &err,
            StoreError::Version { path: p, found: 99, expected: SCHEMA_VERSION } if *p == path
        ),
        "{err}"
    );
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the file was modified"
    );
}

#[tokio::test]
async fn transitions_answer_applied_refused_or_not_found() {
    let (_dir, store) = temp_store();
    let inserted = store
        .insert_events(vec![
            new_event("orders", at(0), Some("k")),
            new_event("orders", at(1), Some("k")),
        ])
        .await
        .unwrap();
    let (first, duplicate) = (inserted[0].id, inserted[1].id);
    match store.transition(duplicate, EventTransition::Muted).await {
        Ok(Transitioned::Refused(refusal)) => {
            assert_eq!(refusal.state, EventState::Skipped);
            assert_eq!(refusal.kind, TransitionKind::Muted);
        }
        other => panic!("muting a skipped event: {other:?}"),
    }
    assert_eq!(
        store
            .transition(ulid::Ulid(1), EventTransition::Muted)
            .await
            .unwrap(),
        Transitioned::NotFound
    );
    // A refusal in the same commit as an accepted change does not undo it.
    let answers = store
        .transition_many(vec![
            (duplicate, EventTransition::Muted),
            (first, EventTransition::Muted),
        ])
        .await
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
    assert_eq!(
        store.next_due("orders", &EventIdSet::default()).unwrap(),
        None
    );
}

/// The listing a filter should give, worked out from every record by brute force.
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

const TOPICS_USED: [&str; 5] = [
    "order.created",
    "order.paid",
    "orders",
    "user.signup",
    "a?b",
];
const GLOBS: [&str; 7] = [
    "order.*",
    "order.created",
    "*",
    "user.*",
    "a?b",
    "o*s",
    "none.*",
];

/// One event: destination, topic and what happens to it (0 pending, 1 retrying,
/// 2 failed, 3 delivered).
type EventPlan = (usize, usize, u8);

async fn store_with(plan: &[EventPlan]) -> (tempfile::TempDir, Store, Vec<EventRecord>) {
    let (dir, store) = temp_store();
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
    store.insert_events(events).await.unwrap();
    let mut transitions = Vec::new();
    for (id, &(_, _, fate)) in ids.iter().zip(plan) {
        match fate {
            1 => transitions.push((*id, failed_attempt(Trigger::Initial, at(10_000)))),
            2 => transitions.push((
                *id,
                EventTransition::AttemptRecorded {
                    attempt: attempt(Trigger::Initial, 500),
                    verdict: Verdict::Failed {
                        reason: crate::model::FailReason::RetriesExhausted,
                    },
                },
            )),
            3 => transitions.push((*id, delivered_attempt())),
            _ => {}
        }
    }
    store.transition_many(transitions).await.unwrap();
    // Every other retrying event fails again: same state, a later due time.
    let again: Vec<(EventId, EventTransition)> = ids
        .iter()
        .zip(plan)
        .enumerate()
        .filter(|(n, (_, &(_, _, fate)))| fate == 1 && n % 2 == 0)
        .map(|(_, (id, _))| (*id, failed_attempt(Trigger::Automatic, at(20_000))))
        .collect();
    store.transition_many(again).await.unwrap();
    let all = ids
        .iter()
        .map(|id| store.get_event(*id).unwrap().unwrap())
        .collect();
    (dir, store, all)
}

/// Pages through a listing `page` at a time and checks each page against the
/// brute-force answer.
fn check_listing(
    store: &Store,
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

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(12))]
    #[test]
    fn every_filter_lists_what_brute_force_finds(
        plan in proptest::collection::vec((0usize..3, 0usize..5, 0u8..4), 0..40),
        page in 1usize..7,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (_dir, store, all) = store_with(&plan).await;
            // What a label selector resolves to: none, some, one, or no
            // destination at all.
            let ab = ["a".to_string(), "b".to_string()];
            let c = ["c".to_string()];
            let amongs: [Option<&[String]>; 4] = [None, Some(&ab), Some(&c), Some(&[])];
            for filter in all_filters(&all) {
                for among in amongs {
                    check_listing(&store, &all, &filter, among, page);
                }
            }
            store.close().await;
        });
    }
}

#[tokio::test]
async fn listing_indexes_follow_transitions_and_purge() {
    let plan: Vec<EventPlan> = (0..30).map(|n| (n % 3, n % 5, (n % 4) as u8)).collect();
    let (_dir, store, _) = store_with(&plan).await;
    // Purge the finished ones (failed, delivered) created before 20 s.
    store.purge(at(20), at(20), 1000).await.unwrap();
    let left: Vec<EventRecord> = store
        .list_events(&EventFilter::default(), None, None, 1000)
        .unwrap();
    assert!(left.len() < 30);
    for filter in all_filters(&left) {
        check_listing(&store, &left, &filter, None, 4);
    }
}

#[tokio::test]
async fn a_store_written_before_the_listing_indexes_gets_them_on_open() {
    let plan: Vec<EventPlan> = (0..25).map(|n| (n % 3, n % 5, (n % 4) as u8)).collect();
    let (dir, store, all) = store_with(&plan).await;
    // One record damaged on disk too: the index build moves it aside.
    let victim = all[3].id;
    store
        .corrupt_record_for_test(victim, vec![2, 1])
        .await
        .unwrap();
    let all: Vec<EventRecord> = all.into_iter().filter(|r| r.id != victim).collect();
    let path = store.path().to_path_buf();
    store.close().await;
    {
        // Take the store back to what a build without the indexes wrote.
        let db = open_database(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(BY_STATE).unwrap();
        txn.delete_table(BY_TOPIC).unwrap();
        txn.delete_table(TOPICS).unwrap();
        txn.open_table(META)
            .unwrap()
            .remove(LISTING_INDEXES_MARK)
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.quarantined_total().unwrap(), 1);
    for filter in all_filters(&all) {
        check_listing(&store, &all, &filter, None, 5);
    }
    drop(dir);
}

#[tokio::test]
async fn the_retired_by_destination_index_is_dropped_and_listings_do_not_need_it() {
    use redb::TableHandle;
    let plan: Vec<EventPlan> = (0..25).map(|n| (n % 3, n % 5, (n % 4) as u8)).collect();
    let (_dir, store, all) = store_with(&plan).await;
    let path = store.path().to_path_buf();
    store.close().await;
    {
        // What earlier builds wrote: a (destination, id) index of every event.
        let db = open_database(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut retired = txn.open_table(RETIRED_BY_DEST).unwrap();
            for record in &all {
                retired
                    .insert((record.destination.as_str(), record.id.0), ())
                    .unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    for filter in all_filters(&all) {
        check_listing(&store, &all, &filter, None, 5);
    }
    store.close().await;
    let db = open_database(&path).unwrap();
    let txn = db.begin_read().unwrap();
    let names: Vec<String> = txn
        .list_tables()
        .unwrap()
        .map(|table| table.name().to_string())
        .collect();
    assert!(
        !names.contains(&RETIRED_BY_DEST.name().to_string()),
        "{names:?}"
    );
}

#[tokio::test]
async fn a_store_with_the_unreleased_topic_state_index_gets_the_topic_index_counted_once() {
    let plan: Vec<EventPlan> = (0..25).map(|n| (n % 3, n % 5, (n % 4) as u8)).collect();
    let (dir, store, all) = store_with(&plan).await;
    let path = store.path().to_path_buf();
    store.close().await;
    {
        // Take the store back to what the unreleased build wrote: a complete
        // by_state, the topic counts, a (topic, state, id) index and its mark.
        let db = open_database(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(BY_TOPIC).unwrap();
        {
            let mut legacy = txn.open_table(LEGACY_BY_TOPIC_STATE).unwrap();
            for record in &all {
                legacy
                    .insert(
                        (record.topic.as_str(), record.state.code(), record.id.0),
                        (),
                    )
                    .unwrap();
            }
            let mut meta = txn.open_table(META).unwrap();
            meta.remove(LISTING_INDEXES_MARK).unwrap();
            meta.insert(LEGACY_LISTING_INDEX_KEYS[0], [1u8].as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    for filter in all_filters(&all) {
        check_listing(&store, &all, &filter, None, 5);
    }
    store.close().await;
    let db = open_database(&path).unwrap();
    let txn = db.begin_read().unwrap();
    let mut want: std::collections::BTreeMap<String, u64> = Default::default();
    for record in &all {
        *want.entry(record.topic.clone()).or_default() += 1;
    }
    let got: std::collections::BTreeMap<String, u64> = txn
        .open_table(TOPICS)
        .unwrap()
        .iter()
        .unwrap()
        .map(|entry| {
            let (topic, count) = entry.unwrap();
            (topic.value().to_string(), count.value())
        })
        .collect();
    assert_eq!(got, want, "each topic counted once");
    assert!(
        txn.open_table(LEGACY_BY_TOPIC_STATE).is_err(),
        "the old topic index is dropped"
    );
    let meta = txn.open_table(META).unwrap();
    assert!(meta.get(LEGACY_LISTING_INDEX_KEYS[0]).unwrap().is_none());
    assert!(meta.get(LISTING_INDEXES_MARK).unwrap().is_some());
    drop(dir);
}

async fn wait_quarantined(store: &Store, n: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.quarantined_total().unwrap() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the record was not quarantined in time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn an_undecodable_record_is_skipped_by_listings_and_moved_aside() {
    let plan: Vec<EventPlan> = (0..10).map(|n| (0, n % 2, 2)).collect();
    let (_dir, store, all) = store_with(&plan).await;
    let victim = all[4].id;
    store
        .corrupt_record_for_test(victim, vec![2, 0xff, 0xff])
        .await
        .unwrap();
    let failed = EventFilter {
        state: Some(EventState::Failed),
        ..Default::default()
    };
    let listed = store.list_events(&failed, None, None, 100).unwrap();
    assert_eq!(listed.len(), 9, "the listing skips the damaged record");
    assert!(listed.iter().all(|r| r.id != victim));
    wait_quarantined(&store, 1).await;
    assert_eq!(store.get_event(victim).unwrap(), None);
    assert_eq!(store.counts("a").unwrap().failed, 9);
    let survivors: Vec<EventRecord> = all.into_iter().filter(|r| r.id != victim).collect();
    for filter in all_filters(&survivors) {
        check_listing(&store, &survivors, &filter, None, 3);
    }
    let txn = store.read().unwrap();
    let quarantine = txn.open_table(QUARANTINE).unwrap();
    let kept = quarantine.get(victim.0).unwrap().unwrap();
    assert_eq!(kept.value().0, &[2, 0xff, 0xff], "raw bytes kept");
    assert_eq!(kept.value().1, b"{\"n\":1}");
    drop(kept);
    assert_eq!(
        store
            .commit_stats()
            .quarantined
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn an_undecodable_due_record_leaves_the_due_index() {
    let (_dir, store) = temp_store();
    let events: Vec<NewEvent> = (0..5).map(|n| new_event("a", at(n), None)).collect();
    let victim = events[2].id;
    store.insert_events(events).await.unwrap();
    store
        .corrupt_record_for_test(victim, b"not a record".to_vec())
        .await
        .unwrap();
    let none = EventIdSet::default();
    assert_eq!(store.get_for_delivery(victim).unwrap(), None);
    // While the move is pending, the dispatcher is not handed it again.
    assert!(!store
        .due("a", at(100), 10, &none)
        .unwrap()
        .contains(&victim));
    wait_quarantined(&store, 1).await;
    let due = store.due("a", at(100), 10, &none).unwrap();
    assert_eq!(due.len(), 4);
    assert!(!due.contains(&victim));
    assert_eq!(store.counts("a").unwrap().pending, 4);
    assert_eq!(
        store.transition(victim, delivered_attempt()).await.unwrap(),
        Transitioned::NotFound
    );
}

#[tokio::test]
async fn a_transition_that_meets_an_undecodable_record_moves_it_aside() {
    let (_dir, store) = temp_store();
    let event = new_event("a", at(0), None);
    let id = event.id;
    store.insert_events(vec![event]).await.unwrap();
    store.corrupt_record_for_test(id, vec![9]).await.unwrap();
    assert_eq!(
        store.transition(id, delivered_attempt()).await.unwrap(),
        Transitioned::NotFound
    );
    assert_eq!(store.quarantined_total().unwrap(), 1);
    assert_eq!(store.counts("a").unwrap().pending, 0);
    assert!(store
        .due("a", at(100), 10, &EventIdSet::default())
        .unwrap()
        .is_empty());
}

/// How each test job ended, by its number.
type JobResults = Arc<std::sync::Mutex<Vec<(usize, Result<(), String>)>>>;

/// A job for [`apply_group`] that inserts one event, or fails on its own, and
/// reports how it ended.
fn test_job(event: Option<NewEvent>, results: &JobResults, n: usize) -> Job {
    let results = results.clone();
    Job {
        run: Box::new(move |tables| match &event {
            Some(event) => tables.insert_event(event.clone()).map(drop),
            None => Err(StoreError::CorruptEvent("a job's own failure".into())),
        }),
        finish: Box::new(move |outcome| {
            results
                .lock()
                .unwrap()
                .push((n, outcome.map_err(|e| e.to_string())));
        }),
        ahead: false,
    }
}

#[test]
fn a_job_failing_on_its_own_fails_alone_and_the_group_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(Store::open(&path).unwrap().close());
    let db = open_database(&path).unwrap();
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    let events: Vec<NewEvent> = (0..4).map(|n| new_event("a", at(n), None)).collect();
    let mut batch = vec![
        test_job(Some(events[0].clone()), &results, 0),
        test_job(Some(events[1].clone()), &results, 1),
        test_job(None, &results, 2),
        test_job(Some(events[2].clone()), &results, 3),
        test_job(None, &results, 4),
        test_job(Some(events[3].clone()), &results, 5),
    ];
    let mut failed_alone = Vec::new();
    apply_group(&db, &[], &mut batch, &mut failed_alone).unwrap();
    assert_eq!(batch.len(), 4, "the others stay in the group");
    let failed: Vec<usize> = failed_alone
        .into_iter()
        .map(|(job, e)| {
            assert!(matches!(e, StoreError::CorruptEvent(_)));
            (job.finish)(Err(e));
            results.lock().unwrap().last().unwrap().0
        })
        .collect();
    assert_eq!(failed, vec![2, 4]);
    // Each of the others was applied exactly once in what was committed.
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(EVENTS).unwrap();
    assert_eq!(table.len().unwrap(), 4);
    let counts = txn.open_table(COUNTS).unwrap();
    assert_eq!(
        counts
            .get(("a", EventState::Pending.code()))
            .unwrap()
            .unwrap()
            .value(),
        4
    );
}

#[tokio::test]
async fn a_write_failing_on_its_own_leaves_the_store_in_service() {
    let (_dir, store) = temp_store();
    let mut writes = Vec::new();
    for n in 0..20 {
        let store = store.clone();
        writes.push(tokio::spawn(async move {
            if n == 7 {
                store
                    .write(|_| Err::<(), _>(StoreError::CorruptEvent("bad".into())))
                    .await
                    .map(drop)
            } else {
                store
                    .insert_events(vec![new_event("a", at(n), None)])
                    .await
                    .map(drop)
            }
        }));
    }
    for (n, write) in writes.into_iter().enumerate() {
        let result = write.await.unwrap();
        if n == 7 {
            assert!(
                matches!(result, Err(StoreError::CorruptEvent(_))),
                "{result:?}"
            );
        } else {
            result.unwrap();
        }
    }
    assert_eq!(store.event_count().unwrap(), 19);
    let reopens = store
        .commit_stats()
        .reopens
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(reopens, 0, "a job's own failure is not a disk failure");
}

#[tokio::test]
async fn a_storage_failure_fails_the_group_and_the_store_is_reopened() {
    let (_dir, store) = temp_store();
    let failed = store
        .write(|_| {
            Err::<(), _>(StoreError::Write(redb::Error::Io(std::io::Error::other(
                "no space left on device",
            ))))
        })
        .await
        .unwrap_err();
    let StoreError::CommitFailed(cause) = &failed else {
        panic!("expected the commit to fail, got {failed:?}");
    };
    assert!(matches!(**cause, StoreError::Write(redb::Error::Io(_))));
    assert!(
        std::error::Error::source(&failed).is_some(),
        "the cause is kept as the source"
    );
    // The database was taken out of service; the next write reopens it.
    store
        .insert_events(vec![new_event("a", at(1), None)])
        .await
        .unwrap();
    assert_eq!(
        store
            .commit_stats()
            .reopens
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(store.event_count().unwrap(), 1);
}

#[tokio::test]
async fn due_ahead_counts_the_destinations_earlier_entries_up_to_the_cap() {
    let (_dir, store) = temp_store();
    let events: Vec<NewEvent> = (0..5)
        .map(|n| new_event("orders", at(n), None))
        .chain([new_event("other", at(0), None)])
        .collect();
    let inserted = store.insert_events(events).await.unwrap();
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
    // Another destination's entries are not ahead of this one's.
    assert_eq!(ahead(5, 10_000), 0);
    assert_eq!(ahead(4, 2), 2);
}

fn notice_at(seconds: i64, destination: &str) -> crate::model::Notice {
    use crate::model::{Notice, NoticeCause, NoticeKind};
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

async fn store_notices(store: &Store, notices: Vec<crate::model::Notice>) {
    store
        .write(move |tables| {
            for notice in &notices {
                tables.insert_notice(notice)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn notices_list_newest_first_in_pages_with_a_cursor() {
    use crate::model::NoticeQuery;
    let (_dir, store) = temp_store();
    let notices: Vec<_> = (0..5).map(|i| notice_at(i, "a")).collect();
    store_notices(&store, notices.clone()).await;
    let query = NoticeQuery {
        limit: 2,
        ..NoticeQuery::default()
    };
    let (first, next, unacked) = store.list_notices(&query).unwrap();
    assert_eq!(unacked, 5);
    let ids = |page: &[crate::model::Notice]| page.iter().map(|n| n.id).collect::<Vec<_>>();
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

#[tokio::test]
async fn acknowledging_keeps_the_count_and_the_unacked_listing_in_step() {
    use crate::model::{NoticeQuery, NoticeSelection};
    let (_dir, store) = temp_store();
    let notices: Vec<_> = (0..6).map(|i| notice_at(i, "a")).collect();
    store_notices(&store, notices.clone()).await;

    let acked = store.ack_notice(notices[5].id, at(100)).await.unwrap();
    assert_eq!(acked.unwrap().acked_at, Some(at(100)));
    // Acknowledging again keeps the first time and the count.
    let again = store.ack_notice(notices[5].id, at(200)).await.unwrap();
    assert_eq!(again.unwrap().acked_at, Some(at(100)));
    assert_eq!(store.unacked_notices().unwrap(), 5);
    assert_eq!(
        store
            .ack_notice(ulid::Ulid::from_datetime(at(50).into()), at(100))
            .await
            .unwrap(),
        None
    );

    let selection = NoticeSelection {
        ids: Some(vec![notices[0].id, notices[5].id]),
        before: None,
    };
    assert_eq!(store.ack_notices(selection, at(101)).await.unwrap(), 1);
    let before = NoticeSelection {
        ids: None,
        before: Some(notices[3].id),
    };
    // 1 and 2 (0 is acknowledged already).
    assert_eq!(store.ack_notices(before, at(102)).await.unwrap(), 2);
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
        store
            .ack_notices(NoticeSelection::all(), at(103))
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.unacked_notices().unwrap(), 0);
    let (all, _, _) = store.list_notices(&NoticeQuery::default()).unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.iter().all(|n| n.acked_at.is_some()));
}

#[tokio::test]
async fn pruning_drops_old_notices_and_their_unacked_entries() {
    use crate::model::NoticeQuery;
    let (dir, store) = temp_store();
    let notices: Vec<_> = (0..4).map(|i| notice_at(i * 10, "a")).collect();
    store_notices(&store, notices.clone()).await;
    store.prune_notices(at(15)).await.unwrap();
    let (left, _, _) = store.list_notices(&NoticeQuery::default()).unwrap();
    let ids: Vec<_> = left.iter().map(|n| n.id).collect();
    assert_eq!(ids, vec![notices[3].id, notices[2].id]);
    assert_eq!(store.unacked_notices().unwrap(), 2);
    // Durable across a reopen.
    store.close().await;
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    assert_eq!(store.unacked_notices().unwrap(), 2);
    assert_eq!(store.list_notices(&NoticeQuery::default()).unwrap().0, left);
}

/// Commits `events` as a fan-out's acknowledging commit does (records and
/// id-keyed entries, destination-keyed ones deferred) straight on `db`, and
/// nothing after it: the state a crash leaves between that commit and the
/// writer's next.
fn commit_deferred_only(db: &Database, events: &[NewEvent]) -> Vec<u128> {
    let txn = db.begin_write().unwrap();
    let deferred = {
        let mut tables = Tables::open(&txn).unwrap();
        for event in events {
            tables.insert_event_deferred(event.clone()).unwrap();
        }
        tables.flush_counts().unwrap();
        tables.take_deferred()
    };
    txn.commit().unwrap();
    deferred
}

fn fan_out(destinations: usize, created: DateTime<Utc>) -> Vec<NewEvent> {
    (0..destinations)
        .map(|n| {
            let mut event = new_event(&format!("d{n:03}"), created, None);
            event.id = ulid::Ulid::from_parts(created.timestamp_millis() as u64, n as u128);
            event
        })
        .collect()
}

fn marks(db: &Database) -> u64 {
    let txn = db.begin_read().unwrap();
    txn.open_table(UNINDEXED).unwrap().len().unwrap()
}

#[test]
fn a_deferred_insert_is_readable_at_once_and_due_after_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(Store::open(&path).unwrap().close());
    let db = open_database(&path).unwrap();
    let events = fan_out(3, at(0));
    let deferred = commit_deferred_only(&db, &events);
    assert_eq!(deferred.len(), 3);
    assert_eq!(marks(&db), 3);
    {
        let txn = db.begin_read().unwrap();
        assert_eq!(txn.open_table(EVENTS).unwrap().len().unwrap(), 3);
        assert_eq!(txn.open_table(PAYLOADS).unwrap().len().unwrap(), 3);
        assert_eq!(txn.open_table(BY_STATE).unwrap().len().unwrap(), 3);
        assert_eq!(txn.open_table(DUE).unwrap().len().unwrap(), 0);
        assert_eq!(txn.open_table(BY_DEST_STATE).unwrap().len().unwrap(), 0);
        assert_eq!(txn.open_table(COUNTS).unwrap().len().unwrap(), 0);
    }
    // The next group, with no job of its own, writes them and drops the marks.
    let mut failed_alone = Vec::new();
    let committed = apply_group(&db, &deferred, &mut Vec::new(), &mut failed_alone).unwrap();
    assert!(committed.deferred.is_empty());
    assert_eq!(marks(&db), 0);
    // Indexing the same ids again (a group that ran twice) changes nothing.
    apply_group(&db, &deferred, &mut Vec::new(), &mut failed_alone).unwrap();
    let txn = db.begin_read().unwrap();
    assert_eq!(txn.open_table(DUE).unwrap().len().unwrap(), 3);
    assert_eq!(txn.open_table(BY_DEST_STATE).unwrap().len().unwrap(), 3);
    let counts = txn.open_table(COUNTS).unwrap();
    for event in &events {
        let pending = counts
            .get((event.destination.as_str(), EventState::Pending.code()))
            .unwrap()
            .unwrap()
            .value();
        assert_eq!(pending, 1, "{}", event.destination);
    }
}

#[test]
fn a_transition_in_the_same_commit_indexes_a_deferred_event_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(Store::open(&path).unwrap().close());
    let db = open_database(&path).unwrap();
    let events = fan_out(2, at(0));
    let txn = db.begin_write().unwrap();
    let deferred = {
        let mut tables = Tables::open(&txn).unwrap();
        for event in &events {
            tables.insert_event_deferred(event.clone()).unwrap();
        }
        let applied = tables
            .transition(events[0].id, delivered_attempt())
            .unwrap();
        assert!(matches!(
            applied,
            Transitioned::Applied { changed: true, .. }
        ));
        tables.flush_counts().unwrap();
        tables.take_deferred()
    };
    txn.commit().unwrap();
    assert_eq!(
        deferred,
        vec![events[1].id.0],
        "the delivered one was indexed"
    );
    apply_group(&db, &deferred, &mut Vec::new(), &mut Vec::new()).unwrap();
    let txn = db.begin_read().unwrap();
    let counts = txn.open_table(COUNTS).unwrap();
    let count = |dest: &str, state: EventState| {
        counts
            .get((dest, state.code()))
            .unwrap()
            .map_or(0, |v| v.value())
    };
    assert_eq!(count("d000", EventState::Pending), 0);
    assert_eq!(count("d000", EventState::Delivered), 1);
    assert_eq!(count("d001", EventState::Pending), 1);
    let due = txn.open_table(DUE).unwrap();
    let due_ids: Vec<u128> = due
        .iter()
        .unwrap()
        .map(|entry| entry.unwrap().0.value().2)
        .collect();
    assert_eq!(due_ids, vec![events[1].id.0]);
    assert_eq!(marks(&db), 0);
}

#[tokio::test]
async fn a_crash_between_a_fan_out_and_its_indexing_is_indexed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    Store::open(&path).unwrap().close().await;
    let events = fan_out(40, at(0));
    {
        let db = open_database(&path).unwrap();
        commit_deferred_only(&db, &events);
        assert_eq!(marks(&db), 40);
        // Dropped without the writer's next commit, as a kill -9 would.
    }
    let store = Store::open(&path).unwrap();
    for event in &events {
        assert_eq!(
            store
                .due(&event.destination, at(0), 10, &EventIdSet::default())
                .unwrap(),
            vec![event.id],
            "{}",
            event.destination
        );
        assert_eq!(store.counts(&event.destination).unwrap().pending, 1);
        let listed = store
            .list_events(
                &EventFilter {
                    destination: Some(event.destination.clone()),
                    ..EventFilter::default()
                },
                None,
                None,
                10,
            )
            .unwrap();
        assert_eq!(listed.len(), 1);
    }
    store.close().await;
    let db = open_database(&path).unwrap();
    assert_eq!(marks(&db), 0);
}

#[tokio::test]
async fn a_deferred_insert_through_the_writer_is_indexed_right_after_its_commit() {
    let (_dir, store) = temp_store();
    let events = fan_out(50, at(0));
    let (inserted, indexed) = store.insert_events_deferred(events.clone()).await.unwrap();
    assert_eq!(inserted.len(), 50);
    // Readable by id as soon as it is acknowledged.
    for event in &events {
        assert!(store.get_event(event.id).unwrap().is_some());
    }
    // No other write comes: the writer commits the indexing on its own.
    tokio::time::timeout(std::time::Duration::from_secs(10), indexed.wait())
        .await
        .expect("indexed within the deadline");
    assert!(!store.indexing_pending());
    for event in &events {
        assert_eq!(
            store
                .due(&event.destination, at(0), 10, &EventIdSet::default())
                .unwrap(),
            vec![event.id]
        );
        assert_eq!(store.counts(&event.destination).unwrap().pending, 1);
    }
    // A second fan-out, and a transition of one of its events queued right
    // behind it, land with consistent counts.
    let second = fan_out(50, at(1));
    let (_, indexed) = store.insert_events_deferred(second.clone()).await.unwrap();
    let muted = store
        .transition(second[7].id, delivered_attempt())
        .await
        .unwrap();
    assert!(matches!(muted, Transitioned::Applied { changed: true, .. }));
    tokio::time::timeout(std::time::Duration::from_secs(10), indexed.wait())
        .await
        .expect("indexed within the deadline");
    let counts = store.counts(&second[7].destination).unwrap();
    assert_eq!((counts.pending, counts.delivered), (1, 1));
}

/// A fan-out's insert goes ahead of the jobs waiting with it, but those are
/// held back once at most: a steady stream of fan-outs must not starve them.
#[test]
fn a_fan_out_goes_ahead_of_other_jobs_once_at_most() {
    let results = JobResults::default();
    let job = |n: usize, ahead: bool| Job {
        ahead,
        ..test_job(None, &results, n)
    };
    // Outcomes waiting with a fan-out: the fan-out commits alone first.
    let mut batch = vec![job(0, false), job(1, true), job(2, false)];
    let held = split_for_fan_out(&mut batch, false);
    assert_eq!(
        (batch.len(), held.len()),
        (1, 2),
        "the fan-out alone, the others held"
    );
    assert!(batch[0].ahead);
    // Next round: the held jobs and another fan-out arriving meanwhile
    // commit together; nothing is held a second time.
    let mut batch: Vec<Job> = held.into_iter().chain([job(3, true)]).collect();
    let held = split_for_fan_out(&mut batch, true);
    assert!(held.is_empty());
    assert_eq!(batch.len(), 3);
    // Only one kind: nothing to split.
    let mut batch = vec![job(4, false), job(5, false)];
    assert!(split_for_fan_out(&mut batch, false).is_empty());
    assert_eq!(batch.len(), 2);
}

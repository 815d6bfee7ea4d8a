use super::*;
use crate::model::{EventFilter, TransitionKind, Trigger, Verdict};
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
        verdict: Verdict::Retry { at: retry_at },
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
        store.due("orders", at(0), 10, &HashSet::new()).unwrap(),
        vec![id]
    );
    assert!(store
        .due("other", at(0), 10, &HashSet::new())
        .unwrap()
        .is_empty());
    let in_flight: HashSet<_> = [id].into_iter().collect();
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
        .due("orders", at(59), 10, &HashSet::new())
        .unwrap()
        .is_empty());
    assert_eq!(
        store.due("orders", at(60), 10, &HashSet::new()).unwrap(),
        vec![id]
    );
    assert_eq!(
        store.next_due("orders", &HashSet::new()).unwrap(),
        Some(at(60))
    );
    let counts = store.counts("orders").unwrap();
    assert_eq!((counts.pending, counts.retrying), (0, 1));
    let attempts = store.attempts(id).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].n, 1);

    store.transition(id, delivered_attempt()).await.unwrap();
    assert_eq!(store.next_due("orders", &HashSet::new()).unwrap(), None);
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
    let all = store.list_events(&EventFilter::default(), None, 4).unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let rest = store
        .list_events(&EventFilter::default(), Some(all[3].id), 10)
        .unwrap();
    assert_eq!(rest.len(), 2);
    let only_a = EventFilter {
        destination: Some("a".into()),
        ..Default::default()
    };
    assert_eq!(store.list_events(&only_a, None, 10).unwrap().len(), 3);
    let a_pending = EventFilter {
        destination: Some("a".into()),
        state: Some(EventState::Pending),
        ..Default::default()
    };
    assert_eq!(store.list_events(&a_pending, None, 10).unwrap().len(), 3);
    let a_failed = EventFilter {
        destination: Some("a".into()),
        state: Some(EventState::Failed),
        ..Default::default()
    };
    assert!(store.list_events(&a_failed, None, 10).unwrap().is_empty());
    let recent = EventFilter {
        created_after: Some(at(4)),
        ..Default::default()
    };
    assert_eq!(store.list_events(&recent, None, 10).unwrap().len(), 2);
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
    assert_eq!(
        err,
        StoreError::Version {
            path: path.clone(),
            found: 99,
            expected: SCHEMA_VERSION
        }
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
    assert_eq!(store.next_due("orders", &HashSet::new()).unwrap(), None);
}

use super::RedbStore as Store;
use super::*;
use crate::store::NewEvent;

#[test]
fn ceilings_follow_redbs_doubling_within_the_budget() {
    const MIB: u64 = 1 << 20;
    assert_eq!(ceiling(MIB, 10 * MIB), 8 * MIB);
    assert_eq!(ceiling(3 * MIB, 10 * MIB), 6 * MIB);
    assert_eq!(ceiling(8 * MIB, 10 * MIB), 8 * MIB);
    // Past the budget (lowered since): the budget itself.
    assert_eq!(ceiling(12 * MIB, 10 * MIB), 10 * MIB);
    // Beyond one 4 GiB region, a region at a time.
    assert_eq!(ceiling(REGION, 3 * REGION + MIB), 3 * REGION);
}

#[test]
fn sizes_read_as_people_write_them() {
    assert_eq!(format_bytes(512), "512 B");
    assert_eq!(format_bytes(4 << 20), "4 MiB");
    assert_eq!(format_bytes(7_969_177), "7.6 MiB");
    assert_eq!(format_bytes(2 << 30), "2 GiB");
}

fn event(seq: u64, payload_len: usize) -> NewEvent {
    NewEvent {
        id: ulid::Ulid::from_parts(1_700_000_000_000 + seq, seq as u128),
        destination: "a".into(),
        topic: "t".into(),
        content_type: None,
        payload: bytes::Bytes::from(vec![b'x'; payload_len]),
        idempotency_key: None,
        created_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + seq as i64)
            .unwrap(),
    }
}

/// What redb really has allocated: its stats walk every page, which is why
/// the budget counts instead (fine on a test's small store).
fn allocated(store: &Store) -> u64 {
    let db = store.inner.db.read().unwrap().clone().unwrap();
    let txn = db.begin_write().unwrap();
    let stats = txn.stats().unwrap();
    let bytes = stats.allocated_pages() * stats.page_size() as u64;
    txn.abort().unwrap();
    bytes
}

/// The count the budget keeps is what redb allocates, give or take, for
/// small payloads and for large ones, before and after a purge: too low and
/// the file would grow past the budget, far too high and the budget would
/// purge and refuse for nothing.
#[tokio::test]
async fn the_counted_bytes_follow_what_redb_allocates() {
    for payload_len in [200usize, 3_000, 16 * 1024] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        store.limit_size(1 << 30).unwrap();
        let base = allocated(&store);
        let mut seq = 0;
        for _ in 0..10 {
            let events = (0..100).map(|_| {
                seq += 1;
                event(seq, payload_len)
            });
            store.insert_events(events.collect()).await.unwrap();
        }
        let check = |store: &Store, when: &str| {
            let used = store.budget_use().unwrap().used_bytes;
            let real = allocated(store);
            let grown = real.saturating_sub(base) as f64;
            let counted = (used - BASE_ALLOWANCE) as f64;
            println!("{payload_len} B payloads, {when}: counted {counted}, redb allocated {grown} more than empty");
            assert!(
                counted >= grown * 0.9 && counted <= grown * 1.6 + 64.0 * 1024.0,
                "{payload_len} B payloads, {when}: counted {counted}, allocated {grown}"
            );
        };
        check(&store, "stored");
        // Finish half of them and purge those: the count goes down with them.
        let ids: Vec<_> = (1..=500).map(|s| event(s, 0).id).collect();
        store
            .transition_many(
                ids.iter()
                    .map(|id| (*id, crate::model::EventTransition::Muted))
                    .collect(),
            )
            .await
            .unwrap();
        let purged = store.purge_finished_oldest(2000, |_| false).await.unwrap();
        assert_eq!(purged, 500);
        check(&store, "half purged");
    }
}

/// Long destinations, topics and idempotency keys, and attempts with full
/// response excerpts, are counted at their encoded lengths (a fixed size
/// per record and per attempt counted far too little of them), and a purge
/// takes out what it removed, leaving the idempotency keys counted.
#[tokio::test]
async fn long_keys_and_large_attempts_are_counted_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    store.limit_size(1 << 30).unwrap();
    let base = allocated(&store);
    let long = |c: char, n: usize| std::iter::repeat_n(c, n).collect::<String>();
    let events: Vec<NewEvent> = (1..=300)
        .map(|s| NewEvent {
            destination: long('d', 100),
            topic: format!("{}{s}", long('t', 150)),
            idempotency_key: Some(format!("{}{s}", long('k', 200))),
            ..event(s, 200)
        })
        .collect();
    let ids: Vec<_> = events.iter().map(|e| e.id).collect();
    store.insert_events(events).await.unwrap();
    let attempt = |status: u16| crate::model::AttemptRecord {
        n: 0,
        at: chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
        trigger: crate::model::Trigger::Automatic,
        status: Some(status),
        error: None,
        duration_ms: 3,
        response_excerpt: long('r', 4096),
        decision: "words".into(),
    };
    for verdict in [
        crate::model::Verdict::Retry {
            at: chrono::DateTime::from_timestamp_millis(1_700_000_100_000).unwrap(),
            pinned: false,
        },
        crate::model::Verdict::Delivered,
    ] {
        let status = if verdict == crate::model::Verdict::Delivered {
            200
        } else {
            500
        };
        store
            .transition_many(
                ids.iter()
                    .map(|id| {
                        (
                            *id,
                            crate::model::EventTransition::AttemptRecorded {
                                attempt: attempt(status),
                                verdict,
                            },
                        )
                    })
                    .collect(),
            )
            .await
            .unwrap();
    }
    let used = store.budget_use().unwrap().used_bytes - BASE_ALLOWANCE;
    let grown = allocated(&store).saturating_sub(base);
    println!("long keys, large attempts: counted {used}, redb allocated {grown} more than empty");
    assert!(
        used as f64 >= grown as f64 * 0.9 && used as f64 <= grown as f64 * 1.6 + 65536.0,
        "counted {used}, allocated {grown}"
    );
    assert_eq!(
        store.purge_finished_oldest(1000, |_| false).await.unwrap(),
        300
    );
    let kept = kept_count(&store);
    assert_eq!(kept, recounted(&store), "after the purge");
    assert!(
        kept >= 300 * 300,
        "the idempotency keys stay counted: {kept}"
    );
}

/// The budget's purge takes the oldest finished events, whatever their
/// state, and never an owed one.
#[tokio::test]
async fn the_purge_takes_the_oldest_finished_events_and_no_owed_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    store
        .insert_events((1..=10).map(|s| event(s, 100)).collect())
        .await
        .unwrap();
    // Odd ones finished (cancelled), even ones still owed.
    let finished: Vec<_> = (1..=10)
        .filter(|s| s % 2 == 1)
        .map(|s| event(s, 0).id)
        .collect();
    store
        .transition_many(
            finished
                .iter()
                .map(|id| (*id, crate::model::EventTransition::Muted))
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(store.purge_finished_oldest(2, |_| false).await.unwrap(), 2);
    for (at, id) in finished.iter().enumerate() {
        assert_eq!(store.get_event(*id).unwrap().is_some(), at >= 2, "{at}");
    }
    assert_eq!(store.purge_finished_oldest(10, |_| false).await.unwrap(), 3);
    assert_eq!(store.purge_finished_oldest(10, |_| false).await.unwrap(), 0);
    assert_eq!(store.event_count().unwrap(), 5, "the owed ones stay");
}

/// Full when owed events alone reach the full mark; a new event is refused
/// before it is queued, one that would pass the ceiling inside its commit;
/// room below the resume mark clears it.
#[tokio::test]
async fn full_refuses_inserts_and_room_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    store.limit_size(MIN_BUDGET).unwrap();
    let mut seq = 0;
    let refused = loop {
        seq += 1;
        match store.insert_events(vec![event(seq, 16 * 1024)]).await {
            Ok(_) => {
                // The budget task's part: purging finds nothing finished.
                if store.budget_at_purge_mark() {
                    assert_eq!(store.purge_finished_oldest(16, |_| false).await.unwrap(), 0);
                }
            }
            Err(e) => break e,
        }
        assert!(seq < 1000, "never full");
    };
    let StoreError::Full { usage } = &refused else {
        panic!("{refused}")
    };
    assert!(
        usage.full && usage.used_bytes <= usage.ceiling_bytes,
        "{usage:?}"
    );
    assert!(usage.file_bytes <= MIN_BUDGET, "{usage:?}");
    assert!(refused.to_string().starts_with("store full: "), "{refused}");
    assert!(store.budget_use().unwrap().full);
    // Deliveries finish a third of them; the purge frees their room.
    let done: Vec<_> = (1..seq / 3)
        .map(|s| (event(s, 0).id, crate::model::EventTransition::Muted))
        .collect();
    store.transition_many(done).await.unwrap();
    while store.purge_finished_oldest(16, |_| false).await.unwrap() > 0 {}
    assert!(
        !store.budget_use().unwrap().full,
        "{:?}",
        store.budget_use()
    );
    store
        .insert_events(vec![event(seq + 1, 16 * 1024)])
        .await
        .unwrap();
}

fn finished_left(store: &Store) -> bool {
    store
        .inner
        .stats
        .budget
        .get()
        .unwrap()
        .finished_left
        .load(Ordering::SeqCst)
}

/// A store under a budget holding events 1 to 4, each muted (finished).
async fn four_finished_events(dir: &std::path::Path) -> Store {
    let store = Store::open(&dir.join("s.redb")).unwrap();
    store.limit_size(1 << 30).unwrap();
    store
        .insert_events((1..=4).map(|s| event(s, 100)).collect())
        .await
        .unwrap();
    store
        .transition_many(
            (1..=4)
                .map(|s| (event(s, 0).id, crate::model::EventTransition::Muted))
                .collect(),
        )
        .await
        .unwrap();
    store
}

/// A batch cut short by a record moved to quarantine does not mean that no
/// finished event is left: that would let the store count as full while
/// finished events could still make room.
#[tokio::test]
async fn a_short_batch_leaves_finished_events_known() {
    let dir = tempfile::tempdir().unwrap();
    let store = four_finished_events(dir.path()).await;
    store
        .corrupt_record_for_test(event(1, 0).id, b"not a record".to_vec())
        .await
        .unwrap();
    assert_eq!(store.purge_finished_oldest(2, |_| false).await.unwrap(), 1);
    assert!(finished_left(&store), "two finished events are left");
    assert_eq!(store.purge_finished_oldest(2, |_| false).await.unwrap(), 2);
    assert!(!finished_left(&store), "none is left");
}

/// Events the engine spares (an attempt in flight, a bulk job's) are passed
/// over and kept, and do not count as finished events left to purge.
#[tokio::test]
async fn the_purge_passes_over_spared_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = four_finished_events(dir.path()).await;
    let spared = [event(1, 0).id, event(2, 0).id];
    assert_eq!(
        store
            .purge_finished_oldest(10, move |id| spared.contains(&id))
            .await
            .unwrap(),
        2
    );
    assert!(!finished_left(&store), "only spared ones are left");
    for s in 1..=4 {
        assert_eq!(
            store.get_event(event(s, 0).id).unwrap().is_some(),
            s <= 2,
            "{s}"
        );
    }
    assert_eq!(store.purge_finished_oldest(10, |_| false).await.unwrap(), 2);
}

/// The count as a store counting from scratch would take it.
fn recounted(store: &Store) -> u64 {
    let db = store.inner.db.read().unwrap().clone().unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(META)
        .unwrap()
        .remove(STORED_BYTES_KEY)
        .unwrap();
    txn.commit().unwrap();
    count_stored_bytes(&db, store.path()).unwrap()
}

fn kept_count(store: &Store) -> u64 {
    let db = store.inner.db.read().unwrap().clone().unwrap();
    count_stored_bytes(&db, store.path()).unwrap()
}

/// A binary from before the budget (same schema version) removes events
/// without the count: the next start sees the tables changed and counts
/// again, instead of keeping a count too high forever.
#[tokio::test]
async fn a_count_left_stale_by_an_older_binary_is_taken_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    store.limit_size(1 << 30).unwrap();
    store
        .insert_events((1..=10).map(|s| event(s, 3_000)).collect())
        .await
        .unwrap();
    let before = kept_count(&store);
    assert_eq!(
        before,
        store.budget_use().unwrap().used_bytes - BASE_ALLOWANCE
    );
    {
        // The older binary's retention purge: events go, the count stays.
        let db = store.inner.db.read().unwrap().clone().unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut events = txn.open_table(EVENTS).unwrap();
            let mut payloads = txn.open_table(PAYLOADS).unwrap();
            for s in 1..=5 {
                events.remove(event(s, 0).id.0).unwrap();
                payloads.remove(event(s, 0).id.0).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let after = kept_count(&store);
    assert!(after < before, "{after} < {before}");
    assert_eq!(after, recounted(&store));
}

/// Moving a record that does not decode to quarantine takes its payload
/// and attempts out of the count (its raw bytes stay, in quarantine): the
/// count stays what counting from scratch gives.
#[tokio::test]
async fn quarantine_keeps_the_count_true() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    store.limit_size(1 << 30).unwrap();
    store
        .insert_events((1..=3).map(|s| event(s, 10_000)).collect())
        .await
        .unwrap();
    let id = event(2, 0).id;
    store
        .corrupt_record_for_test(id, b"not a record".to_vec())
        .await
        .unwrap();
    store
        .transition_many(vec![(id, crate::model::EventTransition::Muted)])
        .await
        .unwrap();
    assert!(store.get_event(id).unwrap().is_none(), "quarantined");
    let kept = kept_count(&store);
    assert_eq!(
        kept,
        store.budget_use().unwrap().used_bytes - BASE_ALLOWANCE
    );
    // Within what the damaged record's length and unknown destination and
    // topic change; its 10 kB payload is not counted twice.
    let recounted = recounted(&store);
    assert!(kept.abs_diff(recounted) < 512, "{kept} against {recounted}");
}

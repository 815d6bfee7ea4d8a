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
        let purged = store.purge_finished_oldest(2000).await.unwrap();
        assert_eq!(purged, 500);
        check(&store, "half purged");
    }
}

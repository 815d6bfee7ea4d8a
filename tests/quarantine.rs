//! A record that does not decode, met by the dispatcher: moved aside once, the
//! other events delivered, and nothing left due that could be claimed again.

mod harness;

use harness::*;
use hookwatch::clock::ManualClock;
use hookwatch::engine::Engine;
use hookwatch::model::{EventFilter, EventState};
use hookwatch::store::{NewEvent, RedbStore};

const EVENTS: usize = 12;

fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatcher_moves_an_undecodable_record_aside_and_delivers_the_rest() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("store.redb");
    let mut generator = ulid::Generator::new();
    let events: Vec<NewEvent> = (0..EVENTS)
        .map(|n| NewEvent {
            id: generator.generate_from_datetime(epoch().into()).unwrap(),
            destination: "orders".into(),
            topic: "order.created".into(),
            content_type: Some("application/json".into()),
            payload: bytes::Bytes::from(format!("{{\"n\":{n}}}")),
            idempotency_key: None,
            created_at: epoch(),
        })
        .collect();
    let victim = events[5].id;
    {
        let store = RedbStore::open(&store_path).unwrap();
        store.insert_events(events).await.unwrap();
        store
            .corrupt_record_for_test(victim, vec![2, 0xde, 0xad])
            .await
            .unwrap();
        store.close().await;
    }
    let config = TestConfig::new()
        .destination(Dest::new("orders", &receiver.url()))
        .parse(&store_path);
    let engine = Engine::start(&config, ManualClock::new(epoch())).unwrap();
    wait_until("the other events to be delivered", || {
        receiver.distinct_count() == EVENTS - 1
    })
    .await;
    wait_until("the damaged record to be counted in quarantine", || {
        let text = engine.metrics_text().unwrap();
        metric(&text, "hookwatch_store_quarantined_total ") == Some(1)
    })
    .await;
    // Settling means nothing is due at the clock's time any more: the damaged
    // event left the due index, so no dispatcher can claim it again.
    tokio::time::timeout(wait::DEADLINE, engine.settled())
        .await
        .expect("the engine settles: nothing left to claim");
    assert!(!receiver.has_id(&victim.to_string()));
    assert_eq!(receiver.count(), EVENTS - 1, "each of the others once");
    let metrics = engine.metrics_text().unwrap();
    assert_eq!(
        metric(
            &metrics,
            "hookwatch_attempts_total{destination=\"orders\",outcome=\"success\"} "
        ),
        Some((EVENTS - 1) as u64),
        "no attempt was made for the damaged event"
    );
    let counts = engine.counts_by_destination().unwrap();
    assert_eq!(counts["orders"].delivered, (EVENTS - 1) as u64);
    assert_eq!(counts["orders"].pending, 0);
    let listed = engine
        .list_events(&EventFilter::default(), None, 100)
        .unwrap();
    assert_eq!(listed.events.len(), EVENTS - 1);
    assert!(listed
        .events
        .iter()
        .all(|e| e.id != victim && e.state == EventState::Delivered));
    engine.shutdown(std::time::Duration::from_secs(5)).await;
}

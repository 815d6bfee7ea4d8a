//! Fresh events go from ingest straight to their dispatcher while it knows
//! nothing else is due, and through a look at the store's due index whenever
//! that knowledge lapses (a retry scheduled, a pause, a resume). Both paths
//! race with concurrent ingests; either way each event must be attempted once
//! per attempt it owes, never twice.

mod harness;

use harness::engine::Harness;
use harness::{both_stores, Dest, Receiver, TestStore};
use hookwatch::engine::DestinationPatch;
use hookwatch::model::EventState;
use std::time::Duration;

/// The early failures schedule retries, each of which makes the dispatcher
/// look at the store again.
const FAILURES: usize = 6;
const CLIENTS: usize = 8;
const EVENTS_PER_CLIENT: usize = 60;

async fn set_paused(harness: &Harness, paused: bool) {
    let patch: DestinationPatch =
        serde_json::from_value(serde_json::json!({ "paused": paused })).unwrap();
    harness
        .engine
        .patch_destination("orders", patch)
        .await
        .unwrap();
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    concurrent_ingests_pauses_and_retries_attempt_each_event_once
);
async fn concurrent_ingests_pauses_and_retries_attempt_each_event_once(store: TestStore) {
    let receiver = Receiver::start().await;
    receiver.push_statuses(&[500; FAILURES]);
    let harness = std::sync::Arc::new(
        Harness::start(
            store.config().destination(
                Dest::new("orders", &receiver.url())
                    .concurrency(4)
                    .retry_fixed("1s", 5),
            ),
        )
        .await,
    );

    // Clients ingest at an uneven pace (the dispatcher goes idle between
    // some events and not others) while the destination is paused and
    // resumed under them.
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let harness = harness.clone();
        clients.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..EVENTS_PER_CLIENT {
                ids.push(harness.ingest("orders").await);
                if (n + client) % 3 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            ids
        }));
    }
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        set_paused(&harness, true).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        set_paused(&harness, false).await;
    }
    let mut ids = Vec::new();
    for client in clients {
        ids.extend(client.await.unwrap());
    }

    // The failed ones are due again a second later on the engine's clock.
    for _ in 0..10 {
        harness.settled().await;
        harness.advance(Duration::from_secs(1));
    }
    harness.settled().await;
    for id in &ids {
        assert_eq!(harness.state(*id), EventState::Delivered, "event {id}");
    }
    let by_id = receiver.counts_by_id();
    assert_eq!(by_id.len(), ids.len(), "every event reached the receiver");
    let extra: usize = by_id.values().map(|hits| hits - 1).sum();
    assert_eq!(
        extra,
        FAILURES,
        "only the events that failed are attempted again, once each: {:?}",
        by_id
            .iter()
            .filter(|(_, hits)| **hits > 1)
            .collect::<Vec<_>>()
    );
    for id in &ids {
        let attempts = harness.engine.get_event(*id).unwrap().event.attempt_count as usize;
        assert_eq!(
            by_id[&id.to_string()],
            attempts,
            "event {id}: requests received and attempts recorded differ"
        );
    }
}

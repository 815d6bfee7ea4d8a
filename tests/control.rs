//! The `Control` interface over the in-process engine.

mod harness;

use futures_util::StreamExt;
use harness::*;
use hookwatch::control::{Control, LocalControl, Notification};
use hookwatch::engine::IngestRequest;

fn request() -> IngestRequest {
    IngestRequest {
        topic: Some("test.event".into()),
        content_type: Some("application/json".into()),
        payload: bytes::Bytes::from_static(b"{}"),
        idempotency_key: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_is_told_to_resync() {
    let receiver = Receiver::start().await;
    let h = Harness::start(TestConfig::new().destination(Dest::new("a", &receiver.url()))).await;
    let control = LocalControl::new(h.engine.clone());
    let mut changes = control.subscribe();
    // More changes than the engine keeps for a subscriber that does not read.
    let ingests = (0..5000).map(|_| control.ingest("a", request()));
    for result in futures_util::future::join_all(ingests).await {
        result.unwrap();
    }
    let first = tokio::time::timeout(DEADLINE, changes.next())
        .await
        .unwrap();
    assert_eq!(first, Some(Notification::Resync));
    let next = tokio::time::timeout(DEADLINE, changes.next())
        .await
        .unwrap();
    assert!(matches!(next, Some(Notification::Changed(_))), "{next:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_actions_answer_through_the_interface() {
    let receiver = Receiver::start().await;
    let h = Harness::start(TestConfig::new().destination(Dest::new("a", &receiver.url()))).await;
    let control: std::sync::Arc<dyn Control> =
        std::sync::Arc::new(LocalControl::new(h.engine.clone()));
    assert!(control.pause("a").await.unwrap().paused);
    let id = control.ingest("a", request()).await.unwrap().id;
    let page = control
        .list_events(Default::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(page.events.iter().map(|e| e.id).collect::<Vec<_>>(), [id]);
    assert_eq!(
        control.event(id).await.unwrap().payload.as_deref(),
        Some("{}")
    );
    let selection = hookwatch::engine::BulkSelection {
        destination: Some("a".into()),
        ..Default::default()
    };
    assert_eq!(control.count_selection(selection).await.unwrap(), 1);
    assert!(control.destination("a").await.unwrap().paused);
    assert!(!control.resume("a").await.unwrap().paused);
    let counts = control.counts().await.unwrap();
    assert!(counts.contains_key("a"));
    assert!(control.metrics_text().await.unwrap().contains("hookwatch_"));
    assert_eq!(control.totals().await.unwrap().ingested, 1);
    let missing = control.destination("nope").await.unwrap_err();
    assert_eq!(missing.code(), "unknown_destination");
}

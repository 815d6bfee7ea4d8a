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

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_subscriber_that_falls_behind_is_told_to_resync
);
async fn a_subscriber_that_falls_behind_is_told_to_resync(store: TestStore) {
    let receiver = Receiver::start().await;
    let h = Harness::start(store.config().destination(Dest::new("a", &receiver.url()))).await;
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

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    reads_and_actions_answer_through_the_interface
);
async fn reads_and_actions_answer_through_the_interface(store: TestStore) {
    let receiver = Receiver::start().await;
    let h = Harness::start(store.config().destination(Dest::new("a", &receiver.url()))).await;
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

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_event_muted_while_claimed_ahead_is_not_sent
);
/// The dispatcher reads a few due events ahead of a free slot (so a busy
/// destination does not pay a store read per attempt); an operator acting on
/// one of those meanwhile must win: a muted event is never sent.
async fn an_event_muted_while_claimed_ahead_is_not_sent(store: TestStore) {
    let receiver = Receiver::start().await;
    // The first attempt holds the only slot for a while; the second holds it
    // while the third waits, read ahead, for that slot.
    receiver.then([
        Reply::status(200).after(std::time::Duration::from_millis(1500)),
        Reply::status(200).after(std::time::Duration::from_millis(1500)),
    ]);
    let h = Harness::start(
        store
            .config()
            .destination(Dest::new("a", &receiver.url()).concurrency(1)),
    )
    .await;
    let control = LocalControl::new(h.engine.clone());
    let first = control.ingest("a", request()).await.unwrap().id;
    receiver.wait_for_hits(1).await;
    let second = control.ingest("a", request()).await.unwrap().id;
    let third = control.ingest("a", request()).await.unwrap().id;
    // The look that claimed the second (when the first finished) read both
    // the second and the third.
    receiver.wait_for_hits(2).await;
    let muted = control.mute(third).await.unwrap();
    assert_eq!(muted.state, hookwatch::model::EventState::Cancelled);
    h.settled().await;
    for delivered in [first, second] {
        assert_eq!(h.state(delivered), hookwatch::model::EventState::Delivered);
    }
    assert_eq!(h.state(third), hookwatch::model::EventState::Cancelled);
    assert!(
        !receiver.has_id(&third.to_string()),
        "the muted event was sent: {:?}",
        receiver.counts_by_id()
    );
    assert_eq!(h.engine.get_event(third).unwrap().event.attempt_count, 0);
}

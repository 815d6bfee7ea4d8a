//! A write whose caller stops waiting (a client that disconnects) still tells
//! the dispatcher once committed: an ingest or a requeue dropped mid-write is delivered.
mod harness;

use harness::engine::Harness;
use harness::{Dest, Receiver, TestConfig};
use hookwatch::engine::IngestRequest;
use hookwatch::model::EventState;
use std::future::Future;
use std::time::Duration;

fn request(key: &str) -> IngestRequest {
    IngestRequest {
        topic: Some("test.event".into()),
        content_type: Some("application/json".into()),
        payload: bytes::Bytes::from_static(b"{}"),
        idempotency_key: Some(key.to_string()),
    }
}

/// Keeps the store's writer busy with a large commit (1,000 events of 4 KiB
/// for destination `other`), so a write queued behind it is still pending
/// when its caller is dropped.
fn keep_the_writer_busy(harness: &Harness) -> tokio::task::JoinHandle<()> {
    let engine = harness.engine.clone();
    tokio::spawn(async move {
        let requests = (0..1000)
            .map(|_| IngestRequest {
                topic: Some("t".into()),
                content_type: None,
                payload: bytes::Bytes::from(vec![b'x'; 4096]),
                idempotency_key: None,
            })
            .collect();
        let _ = engine
            .ingest_batch(
                &hookwatch::engine::BatchTarget::Destination("other".into()),
                requests,
            )
            .await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_ingest_is_not_stranded() {
    let receiver = Receiver::start().await;
    let harness = Harness::start(
        TestConfig::new()
            .destination(Dest::new("orders", &receiver.url()).concurrency(4))
            .destination(Dest::new("other", &receiver.url()).concurrency(1)),
    )
    .await;
    // Warm up: the dispatcher looks, finds nothing, opens the hand-over.
    let warm = harness.ingest("orders").await;
    harness.wait_state(warm, EventState::Delivered).await;

    let mut firsts = Vec::new();
    for i in 0..10 {
        let key = format!("k{i}");
        // Keep the writer busy with a big commit for another destination.
        let busy = keep_the_writer_busy(&harness);
        tokio::time::sleep(Duration::from_millis(2)).await;
        {
            let engine = harness.engine.clone();
            let mut fut = Box::pin(async move { engine.ingest("orders", request(&key)).await });
            // One poll: the write is submitted to the writer; then the
            // client goes away.
            std::future::poll_fn(|cx| {
                let _ = fut.as_mut().poll(cx);
                std::task::Poll::Ready(())
            })
            .await;
            drop(fut);
            eprintln!("dropped at {:?}", std::time::Instant::now());
        }
        busy.await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        // The client tries again with the same key: acknowledged as a duplicate.
        let again = harness
            .engine
            .ingest("orders", request(&format!("k{i}")))
            .await
            .unwrap();
        if let Some(first) = again.duplicate_of {
            eprintln!(
                "iteration {i}: right after the duplicate, first is {}",
                harness.state(first)
            );
        }
        // Fresh events keep flowing through the hand-over meanwhile.
        for _ in 0..3 {
            let fresh = harness.ingest("orders").await;
            harness.wait_state(fresh, EventState::Delivered).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(first) = again.duplicate_of {
            if harness.state(first) != EventState::Delivered {
                eprintln!(
                    "iteration {i}: {first} still {} after fresh events were delivered",
                    harness.state(first)
                );
            }
            firsts.push(first);
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stranded: Vec<_> = firsts
        .iter()
        .filter(|id| harness.state(**id) != EventState::Delivered)
        .collect();
    eprintln!(
        "cancelled-but-committed: {}, stranded: {}",
        firsts.len(),
        stranded.len()
    );
    assert!(
        stranded.is_empty(),
        "stranded (acknowledged as duplicates, never attempted): {stranded:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_requeue_is_not_stranded() {
    let receiver = Receiver::start().await;
    receiver.push_statuses(&[500]);
    let harness = Harness::start(
        TestConfig::new()
            .destination(
                Dest::new("orders", &receiver.url())
                    .concurrency(4)
                    .retry_fixed("1h", 5),
            )
            .destination(Dest::new("other", &receiver.url()).concurrency(1)),
    )
    .await;
    let victim = harness.ingest("orders").await;
    harness.wait_state(victim, EventState::Retrying).await;
    harness.engine.mute(victim).await.unwrap();
    let warm = harness.ingest("orders").await;
    harness.wait_state(warm, EventState::Delivered).await;
    let busy = keep_the_writer_busy(&harness);
    tokio::time::sleep(Duration::from_millis(2)).await;
    {
        let engine = harness.engine.clone();
        let mut fut = Box::pin(async move { engine.requeue(victim).await });
        std::future::poll_fn(|cx| {
            let _ = fut.as_mut().poll(cx);
            std::task::Poll::Ready(())
        })
        .await;
        drop(fut);
    }
    busy.await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    eprintln!("victim after requeue: {}", harness.state(victim));
    for _ in 0..5 {
        let fresh = harness.ingest("orders").await;
        harness.wait_state(fresh, EventState::Delivered).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        harness.state(victim),
        EventState::Delivered,
        "requeued event never attempted while fresh events flowed"
    );
}

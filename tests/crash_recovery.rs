//! Durability across a crash: every event hookwatch acknowledged (202) before a
//! SIGKILL is delivered after a restart on the same store.

mod harness;

use harness::*;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOTAL_EVENTS: usize = 1000;
const POSTERS: usize = 16;
/// The daemon is killed once this many events were acknowledged...
const KILL_AFTER_ACKS: usize = 300;
/// ...and the receiver has seen at least this many requests.
const KILL_AFTER_DELIVERIES: usize = 20;
const RECEIVER_DELAY: Duration = Duration::from_millis(30);
const DELIVERY_DEADLINE: Duration = Duration::from_secs(60);

/// What the posting tasks share.
#[derive(Default)]
struct Posting {
    /// Event numbers still to post.
    queue: Mutex<VecDeque<usize>>,
    /// Event number and id of every event answered 202.
    acked: Mutex<Vec<(usize, String)>>,
    /// Event numbers whose post failed (connection error): not acknowledged.
    unacked: Mutex<Vec<usize>>,
    /// Answers other than 202, which should never happen.
    unexpected: Mutex<Vec<String>>,
}

impl Posting {
    fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }
}

fn body_of(n: usize) -> String {
    format!(r#"{{"n":{n}}}"#)
}

/// Posts events from the shared queue until it is empty or, when
/// `stop_on_error`, the daemon stops answering.
async fn poster(client: reqwest::Client, url: String, posting: Arc<Posting>, stop_on_error: bool) {
    loop {
        let Some(n) = posting.queue.lock().unwrap().pop_front() else {
            return;
        };
        let result = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body_of(n))
            .send()
            .await;
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                posting.unacked.lock().unwrap().push(n);
                if stop_on_error {
                    return;
                }
                panic!("post of event {n} failed after the restart: {error}");
            }
        };
        let status = response.status().as_u16();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => {
                // The answer was lost with the process: not acknowledged.
                posting.unacked.lock().unwrap().push(n);
                if stop_on_error {
                    return;
                }
                panic!("reading the answer for event {n} failed after the restart: {error}");
            }
        };
        if status != 202 {
            posting.unexpected.lock().unwrap().push(format!(
                "event {n}: {status} {}",
                String::from_utf8_lossy(&bytes)
            ));
            posting.unacked.lock().unwrap().push(n);
            continue;
        }
        let reply: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("202 answer for event {n} is not JSON: {e}"));
        let id = event_id_of(&reply);
        posting.acked.lock().unwrap().push((n, id));
    }
}

async fn post_all(
    daemon: &Daemon,
    posting: &Arc<Posting>,
    stop_on_error: bool,
) -> Vec<tokio::task::JoinHandle<()>> {
    let client = http_client();
    let url = daemon.url("/v1/destinations/orders/events");
    (0..POSTERS)
        .map(|_| {
            tokio::spawn(poster(
                client.clone(),
                url.clone(),
                posting.clone(),
                stop_on_error,
            ))
        })
        .collect()
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    acknowledged_events_survive_sigkill_and_are_delivered
);
async fn acknowledged_events_survive_sigkill_and_are_delivered(store: TestStore) {
    let test_start = Instant::now();
    let receiver = Receiver::start_with(Reply::status(200).after(RECEIVER_DELAY)).await;
    let mut daemon = Daemon::start(
        store.config().destination(
            Dest::new("orders", &receiver.url())
                .concurrency(8)
                .retry_fixed("1s", 5),
        ),
    )
    .await;

    let posting = Arc::new(Posting::default());
    posting.queue.lock().unwrap().extend(0..TOTAL_EVENTS);

    // Phase 1: post concurrently, and SIGKILL the daemon mid-way.
    let tasks = post_all(&daemon, &posting, true).await;
    let kill_deadline = Instant::now() + Duration::from_secs(30);
    while posting.acked_count() < KILL_AFTER_ACKS || receiver.count() < KILL_AFTER_DELIVERIES {
        assert!(
            Instant::now() < kill_deadline,
            "before the kill: expected {KILL_AFTER_ACKS} acks and {KILL_AFTER_DELIVERIES} deliveries within 30s, got {} acks and {} deliveries (unexpected answers: {:?})",
            posting.acked_count(),
            receiver.count(),
            posting.unexpected.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    daemon.sigkill().await;
    let acked_at_kill = posting.acked_count();
    let delivered_at_kill = receiver.distinct_count();
    for task in tasks {
        task.await.expect("poster task");
    }
    let acked_before_restart = posting.acked_count();
    assert!(
        acked_before_restart < TOTAL_EVENTS,
        "the kill should land mid-way, but all {TOTAL_EVENTS} events were acknowledged first"
    );
    assert!(
        posting.unexpected.lock().unwrap().is_empty(),
        "answers other than 202 before the kill: {:?}",
        posting.unexpected.lock().unwrap()
    );

    // Phase 2: restart on the same store and post what was not acknowledged.
    daemon.restart().await;
    {
        let unacked: Vec<usize> = posting.unacked.lock().unwrap().drain(..).collect();
        posting.queue.lock().unwrap().extend(unacked);
    }
    let tasks = post_all(&daemon, &posting, false).await;
    for task in tasks {
        task.await.expect("poster task after the restart");
    }
    assert!(
        posting.unexpected.lock().unwrap().is_empty(),
        "answers other than 202 after the restart: {:?}",
        posting.unexpected.lock().unwrap()
    );
    let acked: BTreeMap<String, usize> = posting
        .acked
        .lock()
        .unwrap()
        .iter()
        .map(|(n, id)| (id.clone(), *n))
        .collect();
    let numbers: HashSet<usize> = acked.values().copied().collect();
    assert_eq!(
        numbers.len(),
        TOTAL_EVENTS,
        "every event number should have been acknowledged once in the end"
    );

    // Every acknowledged id reaches the receiver.
    wait_for_within(
        DELIVERY_DEADLINE,
        "every acknowledged event to reach the receiver",
        || async {
            let missing = receiver.missing(acked.keys());
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} of {} acknowledged ids not yet received, e.g. {:?}",
                    missing.len(),
                    acked.len(),
                    &missing[..missing.len().min(5)]
                ))
            }
        },
    )
    .await;

    // Each delivery carried the body that was acknowledged under its id.
    for hit in receiver.hits() {
        if let Some(n) = acked.get(&hit.webhook_id()) {
            assert_eq!(
                hit.body_text(),
                body_of(*n),
                "the body delivered as {} should be event {n}'s",
                hit.webhook_id()
            );
        }
    }

    // The store agrees: nothing left to deliver, at least every ack delivered.
    let view = wait_for("no pending or retrying events left", || async {
        let view = daemon.destination("orders").await;
        let counts = &view["counts"];
        if counts["pending"] == 0 && counts["retrying"] == 0 {
            Ok(view)
        } else {
            Err(counts.to_string())
        }
    })
    .await;
    let delivered = view["counts"]["delivered"].as_u64().unwrap_or(0);
    assert!(
        delivered >= acked.len() as u64,
        "counts.delivered {delivered} should be at least the {} acknowledged events: {view}",
        acked.len()
    );

    let hits = receiver.count();
    let distinct = receiver.distinct_count();
    let duplicated_ids = receiver.counts_by_id().values().filter(|c| **c > 1).count();
    println!(
        "crash recovery: killed after {acked_at_kill} acks ({delivered_at_kill} delivered); \
         {acked_before_restart} acked before the restart, {} in total; \
         receiver got {hits} requests for {distinct} distinct ids: \
         {} duplicate deliveries over {duplicated_ids} ids; took {:?}",
        acked.len(),
        hits - distinct,
        test_start.elapsed()
    );
}

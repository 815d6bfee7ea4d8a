//! Long runs, behind a flag (see the README):
//!
//! ```sh
//! HOOKWATCH_SOAK=1 cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! `repeated_sigkill_under_load_loses_nothing`: 20 rounds of load, each ended by
//! SIGKILL at a random moment and a restart on the same store; in the end every
//! acknowledged event has been delivered at least once, and the duplicate count
//! (at-least-once) is reported and bounded by the attempts in flight at each kill.

mod harness;

use harness::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROUNDS: usize = 20;
const POSTERS: usize = 16;
const CONCURRENCY: u32 = 8;

fn soak_enabled() -> bool {
    std::env::var("HOOKWATCH_SOAK").is_ok_and(|v| v == "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "soak run: HOOKWATCH_SOAK=1 cargo test --release --test soak -- --ignored"]
async fn repeated_sigkill_under_load_loses_nothing() {
    if !soak_enabled() {
        eprintln!("skipped: set HOOKWATCH_SOAK=1 to run the soak test");
        return;
    }
    let receiver = Receiver::start_with(Reply::status(200).after(Duration::from_millis(5))).await;
    let mut daemon = Daemon::start(
        TestConfig::new().destination(
            Dest::new("orders", &receiver.url())
                .concurrency(CONCURRENCY)
                .retry_fixed("1s", 50),
        ),
    )
    .await;
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut sequence = 0u64;
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let url = daemon.url("/v1/destinations/orders/events");
        let mut posters = Vec::new();
        for poster in 0..POSTERS {
            let (stop, acked, url) = (stop.clone(), acked.clone(), url.clone());
            let first = sequence + poster as u64 * 1_000_000;
            posters.push(tokio::spawn(async move {
                let client = http_client();
                let mut n = first;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let Ok(response) = client
                        .post(&url)
                        .body(format!("{{\"n\":{n}}}"))
                        .send()
                        .await
                    else {
                        return;
                    };
                    if response.status() != 202 {
                        return;
                    }
                    let Ok(text) = response.text().await else {
                        return;
                    };
                    let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
                    acked.lock().unwrap().insert(event_id_of(&reply));
                }
            }));
        }
        sequence += 100_000_000;
        // Kill at a random moment between 50 ms and 1.5 s into the round.
        let wait = Duration::from_millis(50 + rand::random::<u64>() % 1450);
        tokio::time::sleep(wait).await;
        daemon.sigkill().await;
        stop.store(true, Ordering::Relaxed);
        for poster in posters {
            poster.await.unwrap();
        }
        daemon.restart().await;
        eprintln!(
            "round {}: killed after {wait:?}; {} acknowledged so far, {} received",
            round + 1,
            acked.lock().unwrap().len(),
            receiver.distinct_count()
        );
    }
    let acked = acked.lock().unwrap().clone();
    wait_until_within(
        Duration::from_secs(300),
        "every acknowledged event delivered",
        || receiver.missing(&acked).is_empty(),
    )
    .await;
    let duplicates: usize = receiver.counts_by_id().values().map(|n| n - 1).sum();
    eprintln!(
        "{} acknowledged events over {ROUNDS} kills, all delivered; {duplicates} duplicate deliveries",
        acked.len()
    );
    // At-least-once: an attempt keeps its concurrency slot until its outcome is
    // committed, so a kill can repeat at most `CONCURRENCY` deliveries.
    assert!(
        duplicates <= ROUNDS * CONCURRENCY as usize,
        "{duplicates} duplicates over {ROUNDS} kills is more than the attempts in flight can explain"
    );
}

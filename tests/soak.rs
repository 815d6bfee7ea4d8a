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
//!
//! The load is bounded by count, not by time: each round posts at most
//! `HOOKWATCH_SOAK_EVENTS` events (default [`DEFAULT_EVENTS_PER_ROUND`]) and is
//! killed once a random share of them has been acknowledged. A time-bounded load
//! lets a faster machine build a backlog the final wait cannot drain; a count
//! keeps what is owed the same everywhere, and the drain's deadline scales with
//! it, so a slow machine is told apart from a stuck engine.

mod harness;

use harness::receiver::Arrivals;
use harness::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROUNDS: usize = 20;
const POSTERS: usize = 16;
const CONCURRENCY: u32 = 8;
/// Events posted per round unless `HOOKWATCH_SOAK_EVENTS` says otherwise.
const DEFAULT_EVENTS_PER_ROUND: u64 = 10_000;
/// The final drain always gets at least this long...
const DRAIN_FLOOR: Duration = Duration::from_secs(120);
/// ...plus this much per event still owed (a drain slower than 50 events/s
/// fails: far below what any machine delivers to a loopback receiver).
const DRAIN_PER_EVENT: Duration = Duration::from_millis(20);
/// A drain that delivers nothing for this long is stuck, whatever the deadline.
const STALL: Duration = Duration::from_secs(60);
/// How often the drain reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

fn soak_enabled() -> bool {
    std::env::var("HOOKWATCH_SOAK").is_ok_and(|v| v == "1")
}

fn events_per_round() -> u64 {
    match std::env::var("HOOKWATCH_SOAK_EVENTS") {
        Ok(value) => match value.parse::<u64>() {
            Ok(n) if n >= 10 => n,
            _ => {
                panic!("HOOKWATCH_SOAK_EVENTS must be a whole number of at least 10, got {value:?}")
            }
        },
        Err(_) => DEFAULT_EVENTS_PER_ROUND,
    }
}

/// What the posters of one round share.
#[derive(Default)]
struct Round {
    /// Events taken by posters this round (each poster takes the next number).
    taken: AtomicU64,
    /// Events answered `202` this round.
    acked: AtomicU64,
    /// Answers other than `202` (none expected while the daemon is up).
    unexpected: Mutex<Vec<String>>,
    /// Set once the daemon has been killed: errors after it are expected.
    killed: AtomicBool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "soak run: HOOKWATCH_SOAK=1 cargo test --release --test soak -- --ignored"]
async fn repeated_sigkill_under_load_loses_nothing() {
    if !soak_enabled() {
        eprintln!("skipped: set HOOKWATCH_SOAK=1 to run the soak test");
        return;
    }
    let started = Instant::now();
    let per_round = events_per_round();
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
    for round_number in 1..=ROUNDS {
        let round = Arc::new(Round::default());
        let url = daemon.url("/v1/destinations/orders/events");
        let mut posters = Vec::new();
        for _ in 0..POSTERS {
            let (round, acked, url) = (round.clone(), acked.clone(), url.clone());
            posters.push(tokio::spawn(async move {
                let client = http_client();
                loop {
                    let n = round.taken.fetch_add(1, Ordering::Relaxed);
                    if n >= per_round {
                        return;
                    }
                    let body = format!("{{\"round\":{round_number},\"n\":{n}}}");
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let response = match sent {
                        Ok(response) => response,
                        Err(error) => {
                            if !round.killed.load(Ordering::Relaxed) {
                                round.unexpected.lock().unwrap().push(error.to_string());
                            }
                            return;
                        }
                    };
                    let status = response.status().as_u16();
                    let Ok(text) = response.text().await else {
                        return;
                    };
                    if status != 202 {
                        if !round.killed.load(Ordering::Relaxed) {
                            round
                                .unexpected
                                .lock()
                                .unwrap()
                                .push(format!("{status}: {text}"));
                        }
                        return;
                    }
                    let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
                    acked.lock().unwrap().insert(event_id_of(&reply));
                    round.acked.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        // Kill at a random moment of the load: once a random share (10 % to
        // 100 %) of the round's events has been acknowledged.
        let kill_after = per_round / 10 + rand::random::<u64>() % (per_round - per_round / 10);
        wait_for_within(
            Duration::from_secs(60) + Duration::from_millis(per_round),
            &format!("{kill_after} acknowledgements in round {round_number}"),
            || {
                let round = round.clone();
                async move {
                    let unexpected = round.unexpected.lock().unwrap().clone();
                    assert!(
                        unexpected.is_empty(),
                        "round {round_number}: answers other than 202 before the kill: {unexpected:?}"
                    );
                    let acked = round.acked.load(Ordering::Relaxed);
                    if acked >= kill_after {
                        Ok(())
                    } else {
                        Err(format!("{acked} acknowledged"))
                    }
                }
            },
        )
        .await;
        round.killed.store(true, Ordering::Relaxed);
        daemon.sigkill().await;
        for poster in posters {
            poster.await.unwrap();
        }
        daemon.restart().await;
        eprintln!(
            "round {round_number}: killed after {} of {per_round} acknowledged; \
             {} acknowledged so far, {} received ({:.0?})",
            round.acked.load(Ordering::Relaxed),
            acked.lock().unwrap().len(),
            receiver.distinct_count(),
            started.elapsed()
        );
    }

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let acked_count = acked.len();
    let mut arrivals = receiver.arrivals(acked);
    let owed_at_start = arrivals.remaining();
    let drain = drain(&receiver, &mut arrivals, owed_at_start).await;

    // The store agrees: nothing is left to deliver (events that were stored but
    // whose answer the kill cut off are delivered too).
    wait_for_within(
        DRAIN_FLOOR,
        "no pending or retrying events left in the store",
        || async {
            let view = daemon.destination("orders").await;
            let counts = &view["counts"];
            if counts["pending"] == 0 && counts["retrying"] == 0 {
                Ok(())
            } else {
                Err(counts.to_string())
            }
        },
    )
    .await;

    let duplicates: usize = receiver.counts_by_id().values().map(|n| n - 1).sum();
    eprintln!(
        "{ROUNDS} kills, {per_round} events per round at most: {acked_count} acknowledged, \
         0 lost, {duplicates} duplicate deliveries; the final drain delivered \
         {owed_at_start} owed events in {:.1?} ({:.0} delivered/s); wall time {:.0?}",
        drain.elapsed,
        drain.rate(),
        started.elapsed()
    );
    // At-least-once: an attempt keeps its concurrency slot until its outcome is
    // committed, so a kill can repeat at most `CONCURRENCY` deliveries.
    assert!(
        duplicates <= ROUNDS * CONCURRENCY as usize,
        "{duplicates} duplicates over {ROUNDS} kills is more than the attempts in flight can explain"
    );
}

/// How the final drain went.
struct Drain {
    /// Deliveries the receiver got during the drain (distinct ids, acknowledged
    /// or not).
    delivered: usize,
    elapsed: Duration,
}

impl Drain {
    fn rate(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(0.001)
    }
}

/// Waits until every acknowledged event has arrived, printing delivered/s and
/// what remains every [`PROGRESS_EVERY`]. The deadline scales with what is
/// owed; a drain that makes no progress for [`STALL`] fails at once, naming a
/// few of the ids still owed.
async fn drain(receiver: &Receiver, arrivals: &mut Arrivals, owed: usize) -> Drain {
    let deadline = DRAIN_FLOOR + DRAIN_PER_EVENT * owed as u32;
    eprintln!("draining: {owed} acknowledged events not received yet; deadline {deadline:?}");
    let start = Instant::now();
    let distinct_at_start = receiver.distinct_count();
    let (mut last_report, mut distinct_at_report) = (start, distinct_at_start);
    let (mut last_progress, mut last_remaining) = (start, owed);
    loop {
        let remaining = arrivals.remaining();
        let now = Instant::now();
        if remaining == 0 {
            return Drain {
                delivered: receiver.distinct_count() - distinct_at_start,
                elapsed: now - start,
            };
        }
        if remaining < last_remaining {
            (last_progress, last_remaining) = (now, remaining);
        }
        if now - last_report >= PROGRESS_EVERY {
            let distinct = receiver.distinct_count();
            eprintln!(
                "draining: {:.0} delivered/s, {remaining} of {owed} remaining ({:.0?})",
                (distinct - distinct_at_report) as f64 / (now - last_report).as_secs_f64(),
                now - start
            );
            (last_report, distinct_at_report) = (now, distinct);
        }
        assert!(
            now - last_progress < STALL,
            "stuck: no acknowledged event arrived for {STALL:?}; {remaining} of {owed} still owed, e.g. {:?}",
            arrivals.sample(5)
        );
        assert!(
            now - start < deadline,
            "timed out after {deadline:?} waiting for every acknowledged event delivered; \
             {remaining} of {owed} still owed, e.g. {:?}",
            arrivals.sample(5)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

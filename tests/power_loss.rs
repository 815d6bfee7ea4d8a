//! Durability across a power cut, simulated: the real engine and HTTP API run
//! in-process on a store whose disk ([`PowerCutBackend`]) keeps only what was
//! synced. Sixteen clients ingest while the engine delivers to a loopback
//! receiver; at a random moment the power is cut (the unsynced writes dropped,
//! or a random prefix of them kept with the last page torn), the engine is
//! stopped, and the store is reopened on what the disk kept. Then:
//!
//! - the store opens (redb repairs the unclean image);
//! - every event answered 202 is in it, and is delivered in the end;
//! - every event the receiver saw is in it (an event is delivered only once
//!   committed, and committed means synced): none is delivered and then lost;
//! - its per-state counts match the events listed in each state.
//!
//! An event whose commit was durable before its 202 reached the client may be
//! present without an acknowledgement; that is allowed.
//!
//! 20 rounds in `cargo test`; 500 under `HOOKWATCH_SOAK=1`. The seed is
//! printed; `HOOKWATCH_POWER_SEED=<seed>` replays the same cuts.

mod harness;

use harness::*;
use hookwatch::clock::SystemClock;
use hookwatch::model::{EventFilter, EventId, EventState};
use hookwatch::store::power_cut::{CutMode, PowerCutBackend};
use hookwatch::store::Store;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const CLIENTS: usize = 16;
/// Of the clients, this many post to the topic that fans out to
/// [`FAN_OUT`] destinations (acknowledged once stored, their due entries
/// written by the writer's next commit); the rest post to one destination.
const TOPIC_CLIENTS: usize = 1;
/// The engine defers the indexing of fan-outs to 32 destinations or more.
const FAN_OUT: usize = 32;
const TOPIC: &str = "fan.out";
/// Rounds on one disk before it is drained and checked whole, then replaced
/// by a fresh one: keeps the image (held twice in memory) and each round's
/// checks small, however many rounds run.
const ROUNDS_PER_DISK: usize = 10;
/// Ingest runs this long, at random, before the cut.
const INGEST_MIN: Duration = Duration::from_millis(100);
const INGEST_MAX: Duration = Duration::from_millis(700);
/// The share of cuts armed to go off in the middle of a commit (at one of its
/// first writes), rather than at the random moment itself, when the disk is
/// most often between commits.
const MID_COMMIT_SHARE: f64 = 0.75;
const MAX_WRITES_BEFORE_CUT: usize = 12;
/// How long an armed cut may wait for a commit that large.
const ARMED_CUT_WAIT: Duration = Duration::from_secs(2);
/// Attempts still running after the cut get this long to finish.
const STOP_GRACE: Duration = Duration::from_secs(2);
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);
const STATES: [EventState; 6] = [
    EventState::Pending,
    EventState::Retrying,
    EventState::Delivered,
    EventState::Failed,
    EventState::Cancelled,
    EventState::Skipped,
];

/// What the ingesting clients share during one round.
#[derive(Default)]
struct Ingest {
    /// Set just before the power is cut: an answer other than 202 seen while
    /// it is unset is a real failure.
    cutting: AtomicBool,
    stop: AtomicBool,
    next_body: AtomicUsize,
    acked: Mutex<Vec<String>>,
    /// Of `acked`, the events acknowledged as part of a topic's fan-out.
    fanned_out: AtomicUsize,
    refused_after_cut: AtomicUsize,
    unexpected: Mutex<Vec<String>>,
}

async fn client(http: reqwest::Client, url: String, ingest: Arc<Ingest>) {
    while !ingest.stop.load(Ordering::SeqCst) {
        let n = ingest.next_body.fetch_add(1, Ordering::Relaxed);
        let answer = http
            .post(&url)
            .header("content-type", "application/json")
            .body(format!(r#"{{"n":{n}}}"#))
            .send()
            .await;
        let (status, body) = match answer {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(body) => (status, body),
                    Err(_) => continue,
                }
            }
            // The API is stopping: no answer, no acknowledgement.
            Err(_) => continue,
        };
        if status == 202 {
            let reply: serde_json::Value = serde_json::from_slice(&body).expect("202 is JSON");
            let mut acked = ingest.acked.lock().unwrap();
            match reply["events"].as_array() {
                // A topic's fan-out: one event per destination.
                Some(events) => {
                    ingest.fanned_out.fetch_add(events.len(), Ordering::Relaxed);
                    acked.extend(events.iter().map(event_id_of))
                }
                None => acked.push(event_id_of(&reply)),
            }
        } else if ingest.cutting.load(Ordering::SeqCst) {
            ingest.refused_after_cut.fetch_add(1, Ordering::Relaxed);
        } else {
            ingest
                .unexpected
                .lock()
                .unwrap()
                .push(format!("{status} {}", String::from_utf8_lossy(&body)));
        }
    }
}

/// The figures of a whole run.
#[derive(Debug, Default)]
struct Tally {
    rounds: usize,
    acknowledged: usize,
    fanned_out: usize,
    lost: usize,
    delivered_then_lost: usize,
    repairs: usize,
    torn_tail_cuts: usize,
    /// Cuts that found writes not yet synced (a commit under way).
    cuts_mid_commit: usize,
    stored_without_ack: u64,
}

/// What one reopen found.
struct Reopened {
    store: Store,
    repaired: bool,
    lost: Vec<String>,
    delivered_then_lost: Vec<String>,
}

/// Whether redb must repair this image (it was not closed cleanly): a
/// read-only open refuses such a file rather than repair it.
fn needs_repair(image: &PowerCutBackend) -> bool {
    matches!(
        redb::Builder::new().open_read_only_with_backend(image.clone()),
        Err(redb::DatabaseError::RepairAborted)
    )
}

/// Opens the store on `disk` and checks it against what was acknowledged and
/// delivered, and its counts against its listings. Blocking (store reads).
fn reopen_and_check(
    path: &Path,
    disk: PowerCutBackend,
    acked: &BTreeSet<String>,
    delivered: &BTreeSet<String>,
    context: &str,
) -> Reopened {
    let repaired = needs_repair(&disk);
    let store = Store::open_redb_on_backend(path, disk)
        .unwrap_or_else(|e| panic!("{context}: the store does not open after the cut: {e}"));
    let present = |id: &String| {
        let id: EventId = id.parse().expect("acknowledged ids are ULIDs");
        store
            .get_event(id)
            .unwrap_or_else(|e| panic!("{context}: reading event {id}: {e}"))
            .is_some()
    };
    let lost: Vec<String> = acked.iter().filter(|id| !present(id)).cloned().collect();
    let delivered_then_lost: Vec<String> = delivered
        .iter()
        .filter(|id| !present(id))
        .cloned()
        .collect();

    let mut listed_total = 0;
    for (destination, state) in destinations()
        .into_iter()
        .flat_map(|d| STATES.map(|state| (d.clone(), state)))
    {
        let counts = store
            .counts(&destination)
            .unwrap_or_else(|e| panic!("{context}: counts of {destination}: {e}"));
        let filter = EventFilter {
            destination: Some(destination.clone()),
            state: Some(state),
            ..EventFilter::default()
        };
        let mut listed = 0u64;
        let mut before = None;
        loop {
            let page = store
                .list_events(&filter, None, before, 1000)
                .unwrap_or_else(|e| panic!("{context}: listing {state} events: {e}"));
            for event in &page {
                assert_eq!(
                    event.state, state,
                    "{context}: event {} listed as {state}",
                    event.id
                );
            }
            listed += page.len() as u64;
            match page.last() {
                Some(last) => before = Some(last.id),
                None => break,
            }
        }
        assert_eq!(
            counts.get(state),
            listed,
            "{context}: {destination}'s count of {state} events is {} but {listed} are listed ({counts:?})",
            counts.get(state)
        );
        listed_total += listed;
    }
    let events = store
        .event_count()
        .unwrap_or_else(|e| panic!("{context}: event count: {e}"));
    assert_eq!(
        events, listed_total,
        "{context}: {events} events stored but {listed_total} listed by state"
    );
    Reopened {
        store,
        repaired,
        lost,
        delivered_then_lost,
    }
}

/// Opens the store on `disk` in a blocking thread and checks it.
async fn reopen(
    path: &Path,
    disk: PowerCutBackend,
    acked: &BTreeSet<String>,
    delivered: BTreeSet<String>,
    context: String,
) -> Reopened {
    let path = path.to_path_buf();
    let acked = acked.clone();
    tokio::task::spawn_blocking(move || reopen_and_check(&path, disk, &acked, &delivered, &context))
        .await
        .expect("reopen thread")
}

fn delivered_ids(receiver: &Receiver) -> BTreeSet<String> {
    receiver.counts_by_id().into_keys().collect()
}

/// "orders", which clients post to directly, and the fan-out's destinations.
fn destinations() -> Vec<String> {
    std::iter::once("orders".to_string())
        .chain((0..FAN_OUT).map(|n| format!("fan-{n:02}")))
        .collect()
}

fn config(receiver: &Receiver, path: &Path) -> hookwatch::config::Config {
    let mut config = TestConfig::new().destination(
        Dest::new("orders", &receiver.url())
            .concurrency(8)
            .retry_fixed("200ms", 20),
    );
    for id in destinations().iter().skip(1) {
        config = config.destination(
            Dest::new(id, &receiver.url())
                .topics(&["fan.*"])
                .concurrency(2)
                .retry_fixed("200ms", 20),
        );
    }
    config.parse(path)
}

async fn start(
    config: &hookwatch::config::Config,
    store: Store,
) -> (hookwatch::daemon::Running, CancellationToken) {
    let root = CancellationToken::new();
    let running = hookwatch::daemon::start_on_store(config, Arc::new(SystemClock), &root, store)
        .await
        .expect("the engine starts on the reopened store");
    (running, root)
}

/// Runs `rounds` cuts on one disk, then drains and checks it whole.
async fn run_disk(
    dir: &Path,
    disk_number: usize,
    rounds: usize,
    rng: &mut rand::rngs::StdRng,
    seed: u64,
    tally: &mut Tally,
) {
    let path: PathBuf = dir.join(format!("disk-{disk_number}.redb"));
    let receiver = Receiver::start().await;
    let config = config(&receiver, &path);
    let http = http_client();
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut disk = PowerCutBackend::new();
    let mut store = Store::open_redb_on_backend(&path, disk.clone()).expect("a fresh store opens");

    for round in 0..rounds {
        let context = format!("seed {seed}, disk {disk_number}, round {round}");
        let (running, root) = start(&config, store).await;
        let api = hookwatch::daemon::local_api_url(running.local_addr);
        let ingest = Arc::new(Ingest::default());
        let clients: Vec<_> = (0..CLIENTS)
            .map(|n| {
                let url = if n < TOPIC_CLIENTS {
                    format!("{api}/v1/topics/{TOPIC}/events")
                } else {
                    format!("{api}/v1/destinations/orders/events")
                };
                tokio::spawn(client(http.clone(), url, ingest.clone()))
            })
            .collect();

        let ingest_for = rng.gen_range(INGEST_MIN..INGEST_MAX);
        let mode = if rng.gen_bool(0.5) {
            CutMode::TornTail
        } else {
            CutMode::DropUnsynced
        };
        let mid_commit_at = rng
            .gen_bool(MID_COMMIT_SHARE)
            .then(|| rng.gen_range(0..MAX_WRITES_BEFORE_CUT));
        let cut_seed = rng.gen();
        tokio::time::sleep(ingest_for).await;
        ingest.cutting.store(true, Ordering::SeqCst);
        let image = match mid_commit_at {
            Some(at) => {
                disk.arm_cut(mode, at, cut_seed);
                let fired = Instant::now() + ARMED_CUT_WAIT;
                loop {
                    if let Some(image) = disk.left_by_cut() {
                        tally.cuts_mid_commit += 1;
                        break image;
                    }
                    if Instant::now() > fired {
                        // No commit of that many writes came: cut now.
                        tally.cuts_mid_commit += usize::from(disk.unsynced() > 0);
                        break disk.cut_power(mode, rng);
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            None => {
                tally.cuts_mid_commit += usize::from(disk.unsynced() > 0);
                disk.cut_power(mode, rng)
            }
        };
        ingest.stop.store(true, Ordering::SeqCst);
        for task in clients {
            task.await.expect("client task");
        }
        // The machine is off: the engine's last writes (statistics, a clean
        // close) fail, and how its stop reports that is not under test.
        let _ = running.shutdown(STOP_GRACE).await;
        root.cancel();

        let unexpected = ingest.unexpected.lock().unwrap().clone();
        assert!(
            unexpected.is_empty(),
            "{context}: answers other than 202 before the cut: {unexpected:?}"
        );
        let acked_now = ingest.acked.lock().unwrap().clone();
        acked.extend(acked_now.iter().cloned());
        tally.rounds += 1;
        tally.acknowledged += acked_now.len();
        tally.fanned_out += ingest.fanned_out.load(Ordering::Relaxed);
        if mode == CutMode::TornTail {
            tally.torn_tail_cuts += 1;
        }

        disk = PowerCutBackend::from_image(image);
        let reopened = reopen(
            &path,
            disk.clone(),
            &acked,
            delivered_ids(&receiver),
            context.clone(),
        )
        .await;
        tally.repairs += usize::from(reopened.repaired);
        tally.lost += reopened.lost.len();
        tally.delivered_then_lost += reopened.delivered_then_lost.len();
        assert!(
            reopened.lost.is_empty() && reopened.delivered_then_lost.is_empty(),
            "{context} ({mode:?} after {ingest_for:?}, {} acked this round): \
             {} acknowledged events lost, e.g. {:?}; {} delivered events lost, e.g. {:?}",
            acked_now.len(),
            reopened.lost.len(),
            &reopened.lost[..reopened.lost.len().min(5)],
            reopened.delivered_then_lost.len(),
            &reopened.delivered_then_lost[..reopened.delivered_then_lost.len().min(5)],
        );
        store = reopened.store;
    }

    // The last reopen was checked; now everything acknowledged is delivered.
    let events = store.event_count().expect("event count");
    tally.stored_without_ack += events.saturating_sub(acked.len() as u64);
    let (running, root) = start(&config, store).await;
    wait_for_within(
        DRAIN_DEADLINE,
        "every acknowledged event delivered after the last cut",
        || async {
            let missing = receiver.missing(acked.iter());
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "seed {seed}, disk {disk_number}: {} of {} acknowledged not delivered, e.g. {:?}",
                    missing.len(),
                    acked.len(),
                    &missing[..missing.len().min(5)]
                ))
            }
        },
    )
    .await;
    // Nothing is left owed, and the counts say every stored event was delivered.
    let control = running.control.clone();
    let delivered_count = wait_for_within(DRAIN_DEADLINE, "nothing pending or retrying", || {
        let control = control.clone();
        async move {
            let mut delivered = 0;
            for id in destinations() {
                let counts = control
                    .destination(&id)
                    .await
                    .map_err(|e| e.to_string())?
                    .counts;
                if counts.pending != 0 || counts.retrying != 0 {
                    return Err(format!("{id}: {counts:?}"));
                }
                delivered += counts.delivered;
            }
            Ok(delivered)
        }
    })
    .await;
    assert_eq!(
        delivered_count, events,
        "seed {seed}, disk {disk_number}: every stored event delivered"
    );
    let delivered = delivered_ids(&receiver);
    assert!(
        delivered.len() as u64 >= events,
        "seed {seed}, disk {disk_number}: {} ids at the receiver for {events} stored events",
        delivered.len()
    );
    running
        .shutdown(STOP_GRACE)
        .await
        .expect("a clean stop once drained");
    root.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_events_survive_power_cuts() {
    let soak = std::env::var_os("HOOKWATCH_SOAK").is_some_and(|v| v == "1");
    let rounds = if soak { 500 } else { 20 };
    let seed = match std::env::var("HOOKWATCH_POWER_SEED") {
        Ok(text) => text.parse().expect("HOOKWATCH_POWER_SEED is a u64"),
        Err(_) => rand::random(),
    };
    println!("power loss: seed {seed} (replay with HOOKWATCH_POWER_SEED={seed}), {rounds} rounds");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut done = 0;
    let mut disk_number = 0;
    while done < rounds {
        let these = ROUNDS_PER_DISK.min(rounds - done);
        run_disk(dir.path(), disk_number, these, &mut rng, seed, &mut tally).await;
        done += these;
        disk_number += 1;
    }
    println!(
        "power loss: rounds {}, acknowledged {} ({} of them by fan-out), lost {}, delivered then lost {}, repairs {}, \
         torn-tail cuts {}, cuts mid-commit {}, stored without an ack {}, seed {seed}, took {:?}",
        tally.rounds,
        tally.acknowledged,
        tally.fanned_out,
        tally.lost,
        tally.delivered_then_lost,
        tally.repairs,
        tally.torn_tail_cuts,
        tally.cuts_mid_commit,
        tally.stored_without_ack,
        started.elapsed()
    );
    assert_eq!(tally.lost, 0);
    assert_eq!(tally.delivered_then_lost, 0);
}

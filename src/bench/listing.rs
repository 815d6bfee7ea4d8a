//! First-page reads of listings that name no destination, over HTTP, on the
//! 1,000,000-event backlog store while the engine delivers 5,000 events/s:
//! `GET /v1/events?state=failed&limit=50` (the state index) and
//! `?topic=order.*&limit=50` (the topic index, a glob over several topics).

use super::load::{generate, wait_delivered, write_config, Load};
use super::proc::EngineProcess;
use super::receiver::{start_receiver, Tally};
use super::report::{percentiles, LatencyMs};
use super::seed::{build_store_with, Fate};
use super::{setup, BenchArgs, BenchError, Scenario};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize)]
pub struct ListingReport {
    pub scenario: Scenario,
    pub stored_events: u64,
    /// Of which failed, spread over every topic.
    pub failed_events: u64,
    pub topics: usize,
    /// The load delivered while the listings were read.
    pub load_events_per_s: f64,
    pub load_delivered_per_s: f64,
    /// Reads of each listing made during the load.
    pub samples: usize,
    /// `GET /v1/events?state=failed&limit=50`
    pub state_failed_ms: LatencyMs,
    /// `GET /v1/events?topic=order.*&limit=50`
    pub topic_glob_ms: LatencyMs,
}

/// The seeded topics: `order.*` matches three of them.
const TOPICS: [&str; 6] = [
    "order.created",
    "order.paid",
    "order.refunded",
    "user.signup",
    "user.deleted",
    "invoice.sent",
];
/// One seeded event in this many is failed; the rest wait to retry tomorrow.
const FAILED_EVERY: u64 = 10;
/// The load's default rate: the "while the engine delivers 5,000/s".
const LOAD_RATE: f64 = 5000.0;
const PAGE: usize = 50;

pub(super) async fn run(args: &BenchArgs, exe: &Path) -> Result<ListingReport, BenchError> {
    if args.backlog_events < FAILED_EVERY * TOPICS.len() as u64 {
        return Err(BenchError::Setup(format!(
            "--backlog-events must be at least {}",
            FAILED_EVERY * TOPICS.len() as u64
        )));
    }
    let dir = tempfile::tempdir().map_err(setup)?;
    let epoch = Instant::now();
    let tally = Tally::new(epoch, args.events as usize, 0.0);
    let receiver = start_receiver(tally.clone())?;
    let config = write_config(dir.path(), receiver, 1, args.concurrency)?;
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    build_store_with(
        &dir.path().join("bench.redb"),
        args.backlog_events,
        args.payload_bytes,
        |seq| {
            let topic = TOPICS[(seq / FAILED_EVERY) as usize % TOPICS.len()];
            if seq % FAILED_EVERY == 0 {
                (topic, Fate::Failed)
            } else {
                (topic, Fate::Retrying(tomorrow))
            }
        },
    )
    .await?;
    let failed_events = args.backlog_events.div_ceil(FAILED_EVERY);

    let engine = EngineProcess::start(exe, &config)?;
    let base = format!("http://{}", engine.addr);
    let rate = args.rate.unwrap_or(LOAD_RATE);
    let load_done = Arc::new(AtomicBool::new(false));
    let reader = spawn_reader(engine.addr, load_done.clone())?;
    let load_started = Instant::now();
    let load = generate(
        Load {
            events: args.events,
            concurrency: args.concurrency,
            payload_bytes: args.payload_bytes,
            rate: Some(rate),
            batch: 1,
        },
        None,
        epoch,
        Arc::new(move |_| format!("{base}/v1/destinations/bench-0/events?topic=order.created")),
    )
    .await;
    let delivered = match load {
        Ok(_) => {
            let limit =
                Duration::from_secs(60).max(Duration::from_secs_f64(args.events as f64 / 500.0));
            wait_delivered(&tally, args.events, limit).await
        }
        Err(e) => Err(e),
    };
    let load_seconds = load_started.elapsed().as_secs_f64();
    load_done.store(true, Ordering::Relaxed);
    let samples = reader
        .join()
        .map_err(|_| setup("the listing reader panicked"))??;
    delivered?;
    engine.stop()?;
    Ok(ListingReport {
        scenario: Scenario::Listing,
        stored_events: args.backlog_events,
        failed_events,
        topics: TOPICS.len(),
        load_events_per_s: rate,
        load_delivered_per_s: tally.delivered.load(Ordering::Relaxed) as f64 / load_seconds,
        samples: samples.state_failed.len(),
        state_failed_ms: percentiles(samples.state_failed),
        topic_glob_ms: percentiles(samples.topic_glob),
    })
}

struct Samples {
    state_failed: Vec<f64>,
    topic_glob: Vec<f64>,
}

/// Reads the two listings one after the other, on their own thread and
/// connection so the load generator's tasks do not delay them, until `done`.
/// Each read is timed from the request to the last byte of the page, which
/// must hold a full page of matching events.
fn spawn_reader(
    addr: SocketAddr,
    done: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<Result<Samples, BenchError>>, BenchError> {
    std::thread::Builder::new()
        .name("bench-listing-reader".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(setup)?;
            runtime.block_on(read_listings(addr, done))
        })
        .map_err(setup)
}

async fn read_listings(addr: SocketAddr, done: Arc<AtomicBool>) -> Result<Samples, BenchError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .map_err(setup)?;
    let state_failed = format!("http://{addr}/v1/events?state=failed&limit={PAGE}");
    let topic_glob = format!("http://{addr}/v1/events?topic=order.*&limit={PAGE}");
    let mut samples = Samples {
        state_failed: Vec::new(),
        topic_glob: Vec::new(),
    };
    while !done.load(Ordering::Relaxed) {
        samples
            .state_failed
            .push(time_page(&client, &state_failed, |e| e["state"] == "failed").await?);
        samples.topic_glob.push(
            time_page(&client, &topic_glob, |e| {
                e["topic"].as_str().is_some_and(|t| t.starts_with("order."))
            })
            .await?,
        );
    }
    Ok(samples)
}

/// One first-page read, in milliseconds; an error unless it is a full page of
/// events that `matches`.
async fn time_page(
    client: &reqwest::Client,
    url: &str,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> Result<f64, BenchError> {
    let started = Instant::now();
    let response = client.get(url).send().await.map_err(setup)?;
    let status = response.status();
    let body = response.bytes().await.map_err(setup)?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    if !status.is_success() {
        return Err(BenchError::Setup(format!("{url} answered {status}")));
    }
    let page: serde_json::Value = serde_json::from_slice(&body).map_err(setup)?;
    let events = page["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if events.len() != PAGE || !events.iter().all(matches) {
        return Err(BenchError::Setup(format!(
            "{url} did not answer a full page of matching events: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )));
    }
    Ok(elapsed)
}

//! Events posted as fast as possible (or at `--rate`) and delivered: rates,
//! end-to-end latency, the loopback ceiling they are compared with.

use super::load::{generate, wait_delivered, write_config, Load};
use super::proc::EngineProcess;
use super::receiver::{start_receiver, Tally};
use super::report::{percentiles, LatencyMs};
use super::{setup, BenchArgs, BenchError, Scenario};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize)]
pub struct ThroughputReport {
    pub scenario: Scenario,
    pub events: u64,
    pub concurrency: usize,
    /// Events per ingest request (1: one request per event).
    pub batch: u64,
    /// Whether delivery was paused while the load was posted.
    pub paused: bool,
    pub payload_bytes: usize,
    pub destinations: usize,
    pub fail_rate: f64,
    pub offered_rate: Option<f64>,
    pub ingest_per_s: f64,
    pub delivered: u64,
    pub delivered_per_s: f64,
    pub duplicates: u64,
    pub raw_http_per_s: f64,
    pub ratio: f64,
    pub latency_ms: LatencyMs,
    pub peak_rss_mb: f64,
    pub engine_cpu_ms_per_event: f64,
    pub store_bytes: u64,
    /// Durable commits the engine made, and writes per commit (group commit).
    pub store_commits: u64,
    pub writes_per_commit: f64,
}

pub(super) async fn run(args: &BenchArgs, exe: &Path) -> Result<ThroughputReport, BenchError> {
    if !(0.0..1.0).contains(&args.fail_rate) {
        return Err(BenchError::Setup(format!(
            "--fail-rate {} must be in 0..1",
            args.fail_rate
        )));
    }
    let dir = tempfile::tempdir().map_err(setup)?;
    let epoch = Instant::now();
    let tally = Tally::new(epoch, args.events as usize, args.fail_rate);
    let receiver = start_receiver(tally.clone())?;

    // The loopback ceiling first, with nothing else running.
    let raw_url = format!("http://{receiver}/raw");
    // One event a request, whatever --batch says: the ceiling of
    // request-per-event HTTP on this machine.
    let raw_elapsed = generate(
        Load {
            events: args.events,
            concurrency: args.concurrency,
            payload_bytes: args.payload_bytes,
            rate: None,
            batch: 1,
        },
        None,
        epoch,
        Arc::new(move |_| raw_url.clone()),
    )
    .await?;
    let raw_http_per_s = args.events as f64 / raw_elapsed.as_secs_f64();

    let config = write_config(
        dir.path(),
        receiver,
        args.destinations.unwrap_or(1).max(1),
        args.concurrency,
    )?;
    let engine = EngineProcess::start(exe, &config)?;
    let base = format!("http://{}", engine.addr);
    let destinations = args.destinations.unwrap_or(1).max(1) as u64;
    let starts: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.events).map(|_| AtomicU64::new(0)).collect());
    if args.paused {
        set_paused(&base, destinations, true).await?;
    }
    let run_started = Instant::now();
    let ingest_elapsed = generate(
        Load {
            events: args.events,
            concurrency: args.concurrency,
            payload_bytes: args.payload_bytes,
            rate: args.rate,
            batch: args.batch as usize,
        },
        Some(starts.clone()),
        epoch,
        {
            let base = base.clone();
            Arc::new(move |seq| {
                format!("{base}/v1/destinations/bench-{}/events", seq % destinations)
            })
        },
    )
    .await?;
    if args.paused {
        set_paused(&base, destinations, false).await?;
    }
    let limit = Duration::from_secs(60).max(Duration::from_secs_f64(args.events as f64 / 500.0));
    let finished = wait_delivered(&tally, args.events, limit).await?;
    // Let any duplicate deliveries in flight land before counting them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (store_commits, store_writes) = commit_counts(engine.addr).await;
    let usage = engine.stop()?;
    let delivered = tally.delivered.load(Ordering::Relaxed);
    let delivered_per_s = delivered as f64 / (finished - run_started).as_secs_f64();
    let latencies: Vec<f64> = starts
        .iter()
        .zip(&tally.arrivals)
        .filter_map(|(start, arrival)| {
            let (s, a) = (
                start.load(Ordering::Relaxed),
                arrival.load(Ordering::Relaxed),
            );
            (s > 0 && a >= s).then(|| (a - s) as f64 / 1e6)
        })
        .collect();
    let store_bytes = std::fs::metadata(dir.path().join("bench.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(ThroughputReport {
        scenario: Scenario::Throughput,
        events: args.events,
        concurrency: args.concurrency,
        batch: args.batch,
        paused: args.paused,
        payload_bytes: args.payload_bytes,
        destinations: args.destinations.unwrap_or(1).max(1),
        fail_rate: args.fail_rate,
        offered_rate: args.rate,
        ingest_per_s: args.events as f64 / ingest_elapsed.as_secs_f64(),
        delivered,
        delivered_per_s,
        duplicates: tally.duplicates.load(Ordering::Relaxed),
        raw_http_per_s,
        ratio: delivered_per_s / raw_http_per_s,
        latency_ms: percentiles(latencies),
        peak_rss_mb: usage.peak_rss_kb as f64 / 1024.0,
        engine_cpu_ms_per_event: usage.cpu.as_secs_f64() * 1000.0 / delivered.max(1) as f64,
        store_bytes,
        store_commits,
        writes_per_commit: store_writes as f64 / store_commits.max(1) as f64,
    })
}

/// Reads the store's commit counters from the engine's `/metrics`.
async fn commit_counts(addr: SocketAddr) -> (u64, u64) {
    let text = match reqwest::get(format!("http://{addr}/metrics")).await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        value("hookwatch_store_commits_total "),
        value("hookwatch_store_writes_total "),
    )
}

/// Pauses or resumes delivery to every bench destination (`PATCH
/// /v1/destinations/{id}` with `{"paused": …}`).
async fn set_paused(base: &str, destinations: u64, paused: bool) -> Result<(), BenchError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(setup)?;
    for i in 0..destinations {
        let response = client
            .patch(format!("{base}/v1/destinations/bench-{i}"))
            .header("content-type", "application/json")
            .body(format!("{{\"paused\": {paused}}}"))
            .send()
            .await
            .map_err(setup)?;
        if !response.status().is_success() {
            return Err(BenchError::Setup(format!(
                "PATCH bench-{i} paused={paused}: {}",
                response.status()
            )));
        }
    }
    Ok(())
}

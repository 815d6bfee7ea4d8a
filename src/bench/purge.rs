//! 500,000 finished events purged while events are ingested at a steady
//! rate: how long ingestion waits meanwhile (p50, p99, max), and how long the
//! purge takes. The purge is the one `store.retention` makes (the store is
//! built, then the engine starts with a retention of one second, and its
//! first housekeeping purges every seeded event); the budget's purge
//! (`store.max_size`) removes events in the same batches through the same
//! group commit.

use super::load::{payload, write_config};
use super::proc::EngineProcess;
use super::receiver::{start_receiver, Tally};
use super::report::{percentiles, LatencyMs};
use super::seed::{build_store_with, Fate};
use super::{setup, BenchArgs, BenchError, Scenario};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Serialize)]
pub struct PurgeReport {
    pub scenario: Scenario,
    pub purged_events: u64,
    pub build_seconds: f64,
    pub store_bytes_before: u64,
    pub purge_seconds: f64,
    /// The offered ingest rate during the purge (events/s).
    pub ingest_rate: f64,
    pub ingested_during_purge: u64,
    /// Request to `202`, for the events ingested while the purge ran.
    pub ingest_latency_ms: LatencyMs,
}

/// The offered load unless `--rate` says otherwise.
const DEFAULT_RATE: f64 = 1_000.0;
/// Connections posting the load.
const CONNECTIONS: usize = 16;

pub(super) async fn run(args: &BenchArgs, exe: &Path) -> Result<PurgeReport, BenchError> {
    let dir = tempfile::tempdir().map_err(setup)?;
    let count = args.purge_events;
    let build_started = Instant::now();
    let store_path = dir.path().join("bench.redb");
    build_store_with(&store_path, count, args.payload_bytes, |_| {
        ("bench", Fate::Failed)
    })
    .await?;
    let build_seconds = build_started.elapsed().as_secs_f64();
    let store_bytes_before = std::fs::metadata(&store_path).map(|m| m.len()).unwrap_or(0);
    let tally = Tally::new(Instant::now(), 0, 0.0);
    let receiver = start_receiver(tally)?;
    let config = write_config(dir.path(), receiver, 1, args.concurrency)?;
    let text = std::fs::read_to_string(&config).map_err(setup)?;
    std::fs::write(
        &config,
        text.replacen("[store]\n", "[store]\nretention = \"1s\"\n", 1),
    )
    .map_err(setup)?;
    // Every seeded event past the retention when the engine starts.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let started = Instant::now();
    let engine = EngineProcess::start(exe, &config)?;
    let base = format!("http://{}", engine.addr);
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .map_err(setup)?;
    let rate = args.rate.unwrap_or(DEFAULT_RATE);
    let purging = Arc::new(AtomicBool::new(true));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut load = tokio::task::JoinSet::new();
    let began = Instant::now();
    for connection in 0..CONNECTIONS {
        let (client, purging, latencies, failures) = (
            client.clone(),
            purging.clone(),
            latencies.clone(),
            failures.clone(),
        );
        let url = format!("{base}/v1/destinations/bench-0/events");
        let size = args.payload_bytes;
        load.spawn(async move {
            let mut seq = connection as u64;
            while purging.load(Ordering::Relaxed) {
                let due = began + Duration::from_secs_f64(seq as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let sent = Instant::now();
                let answer = client.post(&url).body(payload(seq, size)).send().await;
                let elapsed = sent.elapsed().as_secs_f64() * 1000.0;
                match answer {
                    Ok(r) if r.status().is_success() => {
                        latencies.lock().expect("latencies lock").push(elapsed)
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                seq += CONNECTIONS as u64;
            }
        });
    }
    // The purge is done when no failed (seeded) event is left.
    let status_url = format!("{base}/v1/status");
    let limit = Duration::from_secs(600);
    let purge_seconds = loop {
        let bytes = client
            .get(&status_url)
            .send()
            .await
            .map_err(setup)?
            .bytes()
            .await
            .map_err(setup)?;
        let status: serde_json::Value = serde_json::from_slice(&bytes).map_err(setup)?;
        if status["counts"]["bench-0"]["failed"].as_u64() == Some(0) {
            break started.elapsed().as_secs_f64();
        }
        if started.elapsed() > limit {
            return Err(BenchError::Setup(format!(
                "the purge did not finish within {limit:?}: {status}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    purging.store(false, Ordering::Relaxed);
    while load.join_next().await.is_some() {}
    engine.stop()?;
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(BenchError::Setup(format!(
            "{failed} ingest requests were not accepted during the purge"
        )));
    }
    let samples = std::mem::take(&mut *latencies.lock().expect("latencies lock"));
    Ok(PurgeReport {
        scenario: Scenario::Purge,
        purged_events: count,
        build_seconds,
        store_bytes_before,
        purge_seconds,
        ingest_rate: rate,
        ingested_during_purge: samples.len() as u64,
        ingest_latency_ms: percentiles(samples),
    })
}

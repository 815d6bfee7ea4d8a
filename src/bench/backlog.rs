//! 1,000,000 events waiting on retry: build time, RSS, restart to first
//! delivery, scheduler lateness.

use super::load::{wait_delivered, write_config};
use super::proc::EngineProcess;
use super::receiver::{start_receiver, Tally};
use super::report::{percentiles, LatencyMs};
use super::seed::{build_store, shift_due_times};
use super::{setup, BenchArgs, BenchError, Scenario};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize)]
pub struct BacklogReport {
    pub scenario: Scenario,
    pub backlog_events: u64,
    pub build_seconds: f64,
    pub store_bytes: u64,
    pub rss_mb: f64,
    pub restart_to_first_delivery_ms: f64,
    pub lateness_sample: u64,
    pub lateness_ms: LatencyMs,
}

/// How many of the backlog come due during the measurement, and over how long:
/// the rest wait until tomorrow, as a real backlog behind a long outage would.
const LATENESS_SAMPLE: u64 = 20_000;
const LATENESS_WINDOW: Duration = Duration::from_secs(10);
/// Time between the restart and the first sampled due time.
const LATENESS_LEAD: Duration = Duration::from_secs(8);

pub(super) async fn run(args: &BenchArgs, exe: &Path) -> Result<BacklogReport, BenchError> {
    let dir = tempfile::tempdir().map_err(setup)?;
    let epoch = Instant::now();
    if args.backlog_events < 2 {
        return Err(BenchError::Setup(
            "--backlog-events must be at least 2".into(),
        ));
    }
    // The last event is due at once (restart to first delivery); the sample is
    // taken from the others.
    let sample = LATENESS_SAMPLE.min(args.backlog_events - 1);
    let tally = Tally::new(epoch, args.backlog_events as usize, 0.0);
    let receiver = start_receiver(tally.clone())?;
    let config = write_config(dir.path(), receiver, 1, args.concurrency)?;
    let store_path = dir.path().join("bench.redb");

    // Sampled events come due over LATENESS_WINDOW starting LATENESS_LEAD after
    // the build; the build time is not known in advance, so the due times are
    // anchored to a wall-clock instant chosen after a generous estimate and the
    // build is timed on its own.
    let build_started = Instant::now();
    let anchor = chrono::Utc::now() + chrono::Duration::seconds(3600);
    let built_at = chrono::Utc::now();
    let last = args.backlog_events - 1;
    build_store(
        &store_path,
        args.backlog_events,
        args.payload_bytes,
        |seq| {
            if seq == last {
                // Due at once: the restart's first delivery.
                built_at
            } else if seq < sample {
                anchor
                    + chrono::Duration::from_std(
                        LATENESS_WINDOW.mul_f64(seq as f64 / sample as f64),
                    )
                    .unwrap_or_default()
            } else {
                anchor + chrono::Duration::days(1)
            }
        },
    )
    .await?;
    let build_seconds = build_started.elapsed().as_secs_f64();
    // Shift the sample's due times to start LATENESS_LEAD from now: they were
    // written an hour ahead so that none came due during the build.
    let sample_start =
        chrono::Utc::now() + chrono::Duration::from_std(LATENESS_LEAD).unwrap_or_default();
    shift_due_times(&store_path, sample, anchor - sample_start).await?;
    let wall_epoch =
        chrono::Utc::now() - chrono::Duration::from_std(epoch.elapsed()).unwrap_or_default();

    // The one event already due measures restart → first delivery.
    let restart = Instant::now();
    let engine = EngineProcess::start(exe, &config)?;
    wait_delivered(&tally, 1, Duration::from_secs(30)).await?;
    let restart_to_first_delivery_ms = restart.elapsed().as_secs_f64() * 1000.0;
    wait_delivered(
        &tally,
        sample + 1,
        LATENESS_LEAD + LATENESS_WINDOW + Duration::from_secs(60),
    )
    .await?;
    let lateness: Vec<f64> = (0..sample)
        .filter_map(|seq| {
            let arrival = tally.arrivals[seq as usize].load(Ordering::Relaxed);
            (arrival > 0).then(|| {
                let due = sample_start
                    + chrono::Duration::from_std(
                        LATENESS_WINDOW.mul_f64(seq as f64 / sample as f64),
                    )
                    .unwrap_or_default();
                let arrived = wall_epoch + chrono::Duration::nanoseconds(arrival as i64);
                (arrived - due).num_microseconds().unwrap_or(0) as f64 / 1000.0
            })
        })
        .collect();
    let usage = engine.stop()?;
    Ok(BacklogReport {
        scenario: Scenario::Backlog,
        backlog_events: args.backlog_events,
        build_seconds,
        store_bytes: std::fs::metadata(&store_path).map(|m| m.len()).unwrap_or(0),
        rss_mb: usage.peak_rss_kb as f64 / 1024.0,
        restart_to_first_delivery_ms,
        lateness_sample: sample,
        lateness_ms: percentiles(lateness),
    })
}

//! 100,000 events scheduled for tomorrow: the CPU an idle engine uses.

use super::load::write_config;
use super::proc::{process_cpu, process_rss_mb, EngineProcess};
use super::receiver::{start_receiver, Tally};
use super::seed::build_store;
use super::{setup, BenchArgs, BenchError, Scenario};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize)]
pub struct IdleReport {
    pub scenario: Scenario,
    pub idle_events: u64,
    pub measured_seconds: f64,
    pub cpu_percent: f64,
    pub rss_mb: f64,
}

pub(super) async fn run(args: &BenchArgs, exe: &Path) -> Result<IdleReport, BenchError> {
    let dir = tempfile::tempdir().map_err(setup)?;
    let tally = Tally::new(Instant::now(), 1, 0.0);
    let receiver = start_receiver(tally)?;
    let config = write_config(dir.path(), receiver, 1, args.concurrency)?;
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    build_store(
        &dir.path().join("bench.redb"),
        args.idle_events,
        args.payload_bytes,
        |_| tomorrow,
    )
    .await?;
    let engine = EngineProcess::start(exe, &config)?;
    // Let start-up work finish before measuring the idle state.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_before = process_cpu(engine.pid());
    let measured = Instant::now();
    tokio::time::sleep(args.idle_for).await;
    let cpu = process_cpu(engine.pid()).saturating_sub(cpu_before);
    let seconds = measured.elapsed().as_secs_f64();
    let rss_mb = process_rss_mb(engine.pid());
    engine.stop()?;
    Ok(IdleReport {
        scenario: Scenario::Idle,
        idle_events: args.idle_events,
        measured_seconds: seconds,
        cpu_percent: cpu.as_secs_f64() / seconds * 100.0,
        rss_mb,
    })
}

//! `hookwatch bench`: a reproducible end-to-end benchmark in the spirit of
//! redis-benchmark.
//!
//! The engine runs as a child process (the real `hookwatch --daemon`, production
//! durability) on a temporary store; a fast receiver runs on 127.0.0.1 in its own
//! runtime thread; a load generator posts events over the real ingestion API on
//! keep-alive connections. The same generator against the receiver alone gives
//! this machine's loopback ceiling at that moment (`raw_http_per_s`), so the
//! result is a ratio that travels between machines.
//!
//! Latency is measured from the start of each ingest request to its receipt at
//! the receiver: each payload carries its sequence number, so both ends index
//! the same slot without any lookup.
//!
//! `--scenario tui --attach` measures the other side: the TUI attached over
//! HTTP to such a daemon child process, driven in this process through the
//! TUI's own loop (`tui::drive`) on a test backend (see `tui_attach`).

mod backlog;
mod destinations;
mod idle;
mod listing;
mod load;
mod proc;
mod purge;
mod receiver;
mod report;
mod seed;
mod throughput;
mod tui;
mod tui_attach;

pub use backlog::BacklogReport;
pub use destinations::DestinationsReport;
pub use idle::IdleReport;
pub use listing::ListingReport;
pub use purge::PurgeReport;
pub use report::LatencyMs;
pub use throughput::ThroughputReport;
pub use tui::TuiReport;
pub use tui_attach::TuiAttachReport;

use report::print_report;
use serde::Serialize;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Post events as fast as possible (or at --rate) and deliver them all.
    Throughput,
    /// 1,000,000 events waiting on retry: build time, RSS, restart to first
    /// delivery, scheduler lateness.
    Backlog,
    /// 100,000 events scheduled for tomorrow: CPU use of an idle engine.
    Idle,
    /// Render time per frame of the full TUI with 1,000,000 events stored, on
    /// ratatui's TestBackend. With --attach: the TUI attached over HTTP to a
    /// daemon child process on that store (open, key to frame, and redraws and
    /// counter lag while the daemon takes --events events at --rate, 5,000/s
    /// unless given).
    Tui,
    /// The first page of `GET /v1/events?state=failed` and `?topic=order.*`
    /// over HTTP on the 1,000,000-event backlog store, while the engine
    /// delivers 5,000 events/s.
    Listing,
    /// 10,000 destinations created through the API, 1,000,000 events owed
    /// over them: create latency, engine start, idle CPU, RSS, and a topic
    /// fan-out to 1,000 of them.
    Destinations,
    /// 500,000 finished events purged (by retention) while events are
    /// ingested at a steady rate (--rate, 1,000/s unless given): ingest
    /// latency during the purge and the purge's duration.
    Purge,
}

#[derive(Clone, Debug, clap::Args)]
pub struct BenchArgs {
    /// Events to send.
    #[arg(long, default_value_t = 20_000)]
    pub events: u64,
    /// Keep-alive connections of the load generator (and each destination's
    /// delivery concurrency).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Size of each event body.
    #[arg(long, default_value_t = 200)]
    pub payload_bytes: usize,
    /// Destinations the events are spread over (round robin; default 1), or
    /// created through the API in the destinations scenario (default 10,000).
    #[arg(long)]
    pub destinations: Option<usize>,
    /// Share (0..1) of receiver answers that are 500, to exercise retries.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Fixed offered load in events/s instead of as fast as possible.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Events per ingest request: more than 1 posts batches of that many to
    /// the batch endpoint (throughput scenario; 1 to 1000).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub batch: u64,
    /// Throughput: pause delivery while the load is posted, to time ingest
    /// alone; delivery resumes after it and every event must still arrive
    /// (latency then includes the pause).
    #[arg(long)]
    pub paused: bool,
    #[arg(long, value_enum, default_value_t = Scenario::Throughput)]
    pub scenario: Scenario,
    /// Events in the backlog scenario.
    #[arg(long, default_value_t = 1_000_000)]
    pub backlog_events: u64,
    /// Finished events purged in the purge scenario.
    #[arg(long, default_value_t = 500_000)]
    pub purge_events: u64,
    /// Events scheduled for tomorrow in the idle scenario.
    #[arg(long, default_value_t = 100_000)]
    pub idle_events: u64,
    /// How long the idle scenario measures CPU.
    #[arg(long, default_value = "30s", value_parser = parse_duration_arg)]
    pub idle_for: Duration,
    /// With --scenario tui: run the engine as a `--daemon` child process and
    /// drive the TUI against it over its HTTP API, as `hookwatch --url` does.
    #[arg(long)]
    pub attach: bool,
    /// Print one JSON object on the last line as well as the table.
    #[arg(long)]
    pub json: bool,
}

fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    crate::policy::units::parse_duration(text)
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Setup(String),
    #[error("the engine did not deliver every event: {delivered} of {expected} arrived within {waited:?}")]
    Incomplete {
        delivered: u64,
        expected: u64,
        waited: Duration,
    },
}

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

/// Runs the chosen scenario, prints the table (and JSON line), and returns it.
pub fn run(args: &BenchArgs) -> Result<(), BenchError> {
    if args.attach && args.scenario != Scenario::Tui {
        return Err(BenchError::Setup(
            "--attach applies to --scenario tui only".into(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(setup)?;
    let exe = std::env::current_exe().map_err(setup)?;
    match args.scenario {
        Scenario::Throughput => {
            let report = runtime.block_on(throughput::run(args, &exe))?;
            print_report(&report, args.json);
        }
        Scenario::Backlog => {
            let report = runtime.block_on(backlog::run(args, &exe))?;
            print_report(&report, args.json);
        }
        Scenario::Idle => {
            let report = runtime.block_on(idle::run(args, &exe))?;
            print_report(&report, args.json);
        }
        Scenario::Tui if args.attach => {
            let report = runtime.block_on(tui_attach::run(args, &exe))?;
            print_report(&report, args.json);
        }
        Scenario::Tui => {
            let report = runtime.block_on(tui::run(args))?;
            print_report(&report, args.json);
        }
        Scenario::Listing => {
            let report = runtime.block_on(listing::run(args, &exe))?;
            print_report(&report, args.json);
        }
        Scenario::Destinations => {
            let report = runtime.block_on(destinations::run(args, &exe))?;
            print_report(&report, args.json);
        }
        Scenario::Purge => {
            let report = runtime.block_on(purge::run(args, &exe))?;
            print_report(&report, args.json);
        }
    }
    Ok(())
}

//! Destinations as data at the scale of a platform: 10,000 destinations
//! created through the API, 1,000,000 events owed over them.
//!
//! 1. The engine starts on an empty store and every destination is created
//!    with `POST /v1/destinations`, one after the other on one keep-alive
//!    connection (each create is its own durable commit: its latency is the
//!    figure). Destination `i` has the label `tenant = tenant-{i % 100}` and
//!    subscribes to `fanout.{i % 10}.*`, so one topic reaches a tenth of them.
//! 2. The engine stops and the events are written straight into its store
//!    (as the backlog scenario does: posting 1,000,000 events would take the
//!    run well past its ~3 minutes), each retrying with its next attempt due
//!    tomorrow, spread round robin over the destinations.
//! 3. The engine starts again: start time is process start until `/healthz`
//!    answers and `GET /v1/destinations` lists every destination. Then its
//!    CPU over 10 idle seconds and its RSS, then topic fan-outs
//!    (`POST /v1/topics/fanout.K.created/events`), each acknowledged once
//!    its events for a tenth of the destinations are durable; each is sent
//!    once the previous one's events have all arrived, and both times are
//!    reported (acknowledged, all delivered).

use super::load::{payload, wait_delivered};
use super::proc::{process_cpu, process_rss_mb, EngineProcess};
use super::receiver::{start_receiver, Tally};
use super::report::{percentiles, LatencyMs};
use super::seed::{add_events, Fate};
use super::{setup, BenchArgs, BenchError, Scenario};
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The destinations created when `--destinations` is not given.
const DEFAULT_DESTINATIONS: usize = 10_000;
/// Destinations `i` subscribes to `fanout.{i % TOPIC_GROUPS}.*`.
const TOPIC_GROUPS: usize = 10;
/// Tenants the destinations are labelled with, round robin.
const TENANTS: usize = 100;
/// How long the idle CPU is measured.
const IDLE_MEASURE: Duration = Duration::from_secs(10);
/// Topic fan-outs measured, one at a time, this far apart (the deliveries of
/// one run on while the next is acknowledged, as they would in production).
const FANOUTS: usize = 100;

#[derive(Debug, Serialize)]
pub struct DestinationsReport {
    pub scenario: Scenario,
    pub destinations: usize,
    pub backlog_events: u64,
    /// `POST /v1/destinations`, from request to answer, as the count grows
    /// from 0 to `destinations`.
    pub create_ms: LatencyMs,
    pub created_per_s: f64,
    /// Writing the events into the store (setup, not a target).
    pub seed_seconds: f64,
    /// Process start until `/healthz` answers and every destination is listed.
    pub engine_start_ms: f64,
    pub idle_cpu_percent: f64,
    pub rss_mb: f64,
    /// Destinations one topic fan-out reaches.
    pub fanout_destinations: usize,
    pub fanouts: usize,
    /// `POST /v1/topics/{topic}/events`, from request to acknowledgement.
    pub fanout_ack_ms: LatencyMs,
    /// Every fan-out event arrived at the receiver (checked).
    pub fanout_delivered: u64,
    /// From a fan-out's request until its last event arrived at the
    /// receiver (each fan-out is sent once the previous one is delivered,
    /// so each is timed on an engine that is not still working off the last).
    pub fanout_all_delivered_ms: LatencyMs,
    /// A TUI frame (one key, one full draw at 160×48) attached to the
    /// daemon with every destination loaded, the destinations pane filtered
    /// to one tenant and sorted by backlog.
    pub tui_frame_ms: Option<LatencyMs>,
}

pub(super) async fn run(args: &BenchArgs, exe: &Path) -> Result<DestinationsReport, BenchError> {
    let count = args.destinations.unwrap_or(DEFAULT_DESTINATIONS).max(1);
    let dir = tempfile::tempdir().map_err(setup)?;
    let store = dir.path().join("bench.redb");
    let config = write_config(dir.path(), &store, count)?;
    let tally = Tally::new(Instant::now(), 0, 0.0);
    let receiver = start_receiver(tally.clone())?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .map_err(setup)?;

    // 1. Every destination through the API.
    let engine = EngineProcess::start(exe, &config)?;
    let base = format!("http://{}", engine.addr);
    let began = Instant::now();
    let mut create_samples = Vec::with_capacity(count);
    for i in 0..count {
        let body = json!({
            "id": destination_id(i),
            "url": format!("http://{receiver}/hook/{i}"),
            "topics": [format!("fanout.{}.*", i % TOPIC_GROUPS)],
            "timeout": "10s",
            "concurrency": 4,
            "labels": { "tenant": format!("tenant-{:02}", i % TENANTS) },
        });
        let sent = Instant::now();
        let response = client
            .post(format!("{base}/v1/destinations"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(setup)?;
        let status = response.status();
        if status != reqwest::StatusCode::CREATED {
            let text = response.text().await.unwrap_or_default();
            return Err(BenchError::Setup(format!(
                "creating destination {i} answered {status}: {text}"
            )));
        }
        create_samples.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    let created_per_s = count as f64 / began.elapsed().as_secs_f64();
    engine.stop()?;

    // 2. The backlog, straight into the store the engine left.
    let seeded = Instant::now();
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    add_events(&store, args.backlog_events, args.payload_bytes, |seq| {
        (
            destination_id(seq as usize % count),
            "backlog",
            Fate::Retrying(tomorrow),
        )
    })
    .await?;
    let seed_seconds = seeded.elapsed().as_secs_f64();

    // 3. The engine again, on both.
    let started = Instant::now();
    let engine = EngineProcess::start(exe, &config)?;
    let base = format!("http://{}", engine.addr);
    wait_started(&client, &base, count).await?;
    let engine_start_ms = started.elapsed().as_secs_f64() * 1000.0;

    // Let start-up work finish before measuring the idle state.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_before = process_cpu(engine.pid());
    let measured = Instant::now();
    tokio::time::sleep(IDLE_MEASURE).await;
    let cpu = process_cpu(engine.pid()).saturating_sub(cpu_before);
    let idle_cpu_percent = cpu.as_secs_f64() / measured.elapsed().as_secs_f64() * 100.0;
    let rss_mb = process_rss_mb(engine.pid());

    let fanout_destinations = (0..count).filter(|i| i % TOPIC_GROUPS == 0).count();
    let mut fanout_samples = Vec::with_capacity(FANOUTS);
    let mut delivered_samples = Vec::with_capacity(FANOUTS);
    let mut expected = 0u64;
    for n in 0..FANOUTS {
        let group = n % TOPIC_GROUPS.min(count);
        let reached = (0..count).filter(|i| i % TOPIC_GROUPS == group).count();
        let sent = Instant::now();
        let response = client
            .post(format!("{base}/v1/topics/fanout.{group}.created/events"))
            .header("content-type", "application/json")
            .body(payload(n as u64, args.payload_bytes))
            .send()
            .await
            .map_err(setup)?;
        let status = response.status();
        let answer = json_of(response).await?;
        fanout_samples.push(sent.elapsed().as_secs_f64() * 1000.0);
        let events = answer["events"].as_array().map_or(0, Vec::len);
        if !status.is_success() || events != reached {
            return Err(BenchError::Setup(format!(
                "fan-out to fanout.{group}.created answered {status} with {events} events, wanted {reached}"
            )));
        }
        expected += reached as u64;
        let all_delivered = wait_delivered(&tally, expected, Duration::from_secs(60)).await?;
        delivered_samples.push((all_delivered - sent).as_secs_f64() * 1000.0);
    }
    let fanout_delivered = tally.delivered.load(Ordering::Relaxed);
    let tui_frame_ms = Some(tui_frames(&base, &store).await?);
    engine.stop()?;

    Ok(DestinationsReport {
        scenario: Scenario::Destinations,
        destinations: count,
        backlog_events: args.backlog_events,
        create_ms: percentiles(create_samples),
        created_per_s,
        seed_seconds,
        engine_start_ms,
        idle_cpu_percent,
        rss_mb,
        fanout_destinations,
        fanouts: FANOUTS,
        tui_frame_ms,
        fanout_ack_ms: percentiles(fanout_samples),
        fanout_all_delivered_ms: percentiles(delivered_samples),
        fanout_delivered,
    })
}

fn destination_id(i: usize) -> String {
    format!("customer-{i:05}")
}

/// The engine's config: no destinations in the file (they all come through
/// the API), and room for as many as asked.
fn write_config(dir: &Path, store: &Path, count: usize) -> Result<PathBuf, BenchError> {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_body = \"1MiB\"\nmax_destinations = {}\n\n[store]\npath = \"{}\"\n",
        count.max(100_000),
        store.display()
    );
    let path = dir.join("bench.toml");
    std::fs::write(&path, text).map_err(setup)?;
    Ok(path)
}

/// Polls until `/healthz` answers and `GET /v1/destinations` lists `count`.
/// Frames of the TUI attached to the daemon (over HTTP, as `hookwatch --url`
/// reads it) with every destination loaded, the destinations pane filtered
/// to one tenant and sorted by backlog: each frame is one step of the
/// selection and one draw of the full 160×48 screen.
async fn tui_frames(base: &str, store: &Path) -> Result<LatencyMs, BenchError> {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::backend::TestBackend;
    let control = crate::control::RemoteControl::new(base, None).map_err(setup)?;
    let info = crate::tui::TuiInfo {
        listen: "127.0.0.1:8686".parse().expect("address"),
        store: store.display().to_string(),
        config_source: crate::config::ConfigSource::File(store.with_extension("toml")),
        read_only: true,
        attached: Some(crate::tui::Attachment {
            pid: None,
            url: base.to_string(),
        }),
    };
    let (width, height) = (160u16, 48u16);
    let mut app = crate::tui::App::new(info, chrono::Utc::now());
    app.size = (width, height);
    let mut terminal = ratatui::Terminal::new(TestBackend::new(width, height)).map_err(setup)?;
    crate::tui::refresh(&control, &mut app).await;
    let press = |code| KeyEvent::new(code, KeyModifiers::NONE);
    // Pane 1, filter to one tenant (a hundredth of the destinations), sort by
    // backlog (id → health → backlog).
    let _ = app.handle_key(press(KeyCode::Char('1')));
    let _ = app.handle_key(press(KeyCode::Char('/')));
    for c in "label:tenant=tenant-07".chars() {
        let _ = app.handle_key(press(KeyCode::Char(c)));
    }
    let _ = app.handle_key(press(KeyCode::Enter));
    let _ = app.handle_key(press(KeyCode::Char('s')));
    let _ = app.handle_key(press(KeyCode::Char('s')));
    let shown = app.shown_destinations().count();
    let wanted = app
        .destinations
        .iter()
        .filter(|d| d.labels.get("tenant").map(String::as_str) == Some("tenant-07"))
        .count();
    if shown != wanted
        || wanted == 0
        || app.dest_list.sort != crate::tui::dest_list::DestSort::Backlog
    {
        return Err(BenchError::Setup(format!(
            "the TUI shows {shown} destinations sorted by {}, wanted the {wanted} of tenant-07 by backlog",
            app.dest_list.sort.as_str()
        )));
    }
    let mut frames = Vec::with_capacity(300);
    for n in 0..300 {
        let key = if n % 50 == 49 {
            KeyCode::Char('g')
        } else {
            KeyCode::Char('j')
        };
        let step = Instant::now();
        let _ = app.handle_key(press(key));
        terminal
            .draw(|frame| crate::tui::render(&app, frame))
            .map_err(setup)?;
        frames.push(step.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(percentiles(frames))
}

async fn wait_started(
    client: &reqwest::Client,
    base: &str,
    count: usize,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let answered = |response: Result<reqwest::Response, reqwest::Error>| {
        response.ok().filter(|r| r.status().is_success())
    };
    while answered(client.get(format!("{base}/healthz")).send().await).is_none() {
        if Instant::now() > deadline {
            return Err(BenchError::Setup("/healthz never answered".into()));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    loop {
        let mut found = 0;
        if let Some(response) = answered(client.get(format!("{base}/v1/destinations")).send().await)
        {
            let listed = json_of(response).await?;
            found = listed["destinations"].as_array().map_or(0, Vec::len);
            if found == count {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "the engine lists {found} destinations, wanted {count}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A response's body as JSON (reqwest is built without its `json` feature).
async fn json_of(response: reqwest::Response) -> Result<serde_json::Value, BenchError> {
    let bytes = response.bytes().await.map_err(setup)?;
    serde_json::from_slice(&bytes).map_err(setup)
}

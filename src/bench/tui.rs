//! Render time per frame of the full TUI with 1,000,000 events stored, on
//! ratatui's TestBackend, idle and while the engine ingests and delivers.

use super::load::{payload, write_config};
use super::receiver::{start_receiver, Tally};
use super::report::{percentiles, LatencyMs};
use super::seed::build_store;
use super::{setup, BenchArgs, BenchError, Scenario};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize)]
pub struct TuiReport {
    pub scenario: Scenario,
    pub stored_events: u64,
    pub width: u16,
    pub height: u16,
    /// Engine start, first read of the visible window and first frame.
    pub open_ms: f64,
    pub frames: u64,
    /// Drawing one frame of the full screen.
    pub render_ms: LatencyMs,
    /// Reading the visible window from the store and drawing it: one step of
    /// scrolling.
    pub refresh_and_render_ms: LatencyMs,
    /// While events are ingested (and delivered) at this rate...
    pub load_events_per_s: f64,
    /// ...the screen still redraws this often (the UI aims at 10/s)...
    pub load_frames_per_s: f64,
    /// ...after draining this many change notifications...
    pub load_notifications: u64,
    /// ...and a refresh + draw takes this long.
    pub load_refresh_and_render_ms: LatencyMs,
}

/// The live load of the TUI scenario: the "responsive at 5,000 events/s".
const TUI_LOAD_RATE: f64 = 5000.0;
const TUI_LOAD_SECONDS: f64 = 3.0;

/// What both TUI scenarios (in process and attached) run on: a store of
/// `--backlog-events` events due tomorrow, a live loopback receiver (so a
/// load phase really delivers), and a config pointing at both.
pub(super) struct TuiSetup {
    /// Holds the store and config; removed when dropped.
    pub dir: tempfile::TempDir,
    pub store_path: std::path::PathBuf,
    pub tally: Arc<Tally>,
    pub config_path: std::path::PathBuf,
    pub config: crate::config::Config,
}

pub(super) async fn prepare(args: &BenchArgs) -> Result<TuiSetup, BenchError> {
    let dir = tempfile::tempdir().map_err(setup)?;
    let store_path = dir.path().join("bench.redb");
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    build_store(&store_path, args.backlog_events, args.payload_bytes, |_| {
        tomorrow
    })
    .await?;
    let tally = Tally::new(Instant::now(), 1, 0.0);
    let receiver = start_receiver(tally.clone())?;
    let config_path = write_config(dir.path(), receiver, 1, args.concurrency)?;
    let config = crate::config::Config::load(Some(&config_path)).map_err(setup)?;
    Ok(TuiSetup {
        dir,
        store_path,
        tally,
        config_path,
        config,
    })
}

/// Builds a store of `backlog_events` events, opens the engine on it in this
/// process, and times the TUI's frames while scrolling down the events pane.
pub(super) async fn run(args: &BenchArgs) -> Result<TuiReport, BenchError> {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::backend::TestBackend;
    let TuiSetup {
        dir: _dir,
        store_path,
        config,
        ..
    } = prepare(args).await?;
    let (width, height) = (160u16, 48u16);

    let opened = Instant::now();
    let engine = crate::engine::Engine::start(&config, Arc::new(crate::clock::SystemClock))
        .map_err(setup)?;
    let info = crate::tui::TuiInfo {
        listen: "127.0.0.1:8686".parse().expect("address"),
        store: store_path.display().to_string(),
        config_source: config.source.clone(),
        read_only: false,
        attached: None,
    };
    let mut app = crate::tui::App::new(info, chrono::Utc::now());
    app.size = (width, height);
    let mut terminal = ratatui::Terminal::new(TestBackend::new(width, height)).map_err(setup)?;
    let control = crate::control::LocalControl::new(engine.clone());
    crate::tui::refresh(&control, &mut app).await;
    terminal
        .draw(|frame| crate::tui::render(&app, frame))
        .map_err(setup)?;
    let open_ms = opened.elapsed().as_secs_f64() * 1000.0;

    // Focus the events pane, then scroll: j, j, PgDn, ... each step reads the
    // visible window again and draws it.
    let press = |code| KeyEvent::new(code, KeyModifiers::NONE);
    let _ = app.handle_key(press(KeyCode::Char('2')));
    let frames = 300;
    let mut render_ms = Vec::with_capacity(frames);
    let mut step_ms = Vec::with_capacity(frames);
    for frame_no in 0..frames {
        let key = if frame_no % 10 == 9 {
            KeyCode::PageDown
        } else {
            KeyCode::Char('j')
        };
        let step = Instant::now();
        let _ = app.handle_key(press(key));
        crate::tui::refresh(&control, &mut app).await;
        let drawn = Instant::now();
        terminal
            .draw(|frame| crate::tui::render(&app, frame))
            .map_err(setup)?;
        render_ms.push(drawn.elapsed().as_secs_f64() * 1000.0);
        step_ms.push(step.elapsed().as_secs_f64() * 1000.0);
    }

    // Under load: events ingested at TUI_LOAD_RATE while the screen follows the
    // engine's change notifications and redraws every 100 ms, as the live UI
    // does. Every notification is drained; a frame step is one refresh + draw.
    let mut changes = engine.subscribe();
    let load_engine = engine.clone();
    let load = tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let total = (TUI_LOAD_RATE * TUI_LOAD_SECONDS) as u64;
        for n in 0..total {
            tokio::time::sleep_until(started + Duration::from_secs_f64(n as f64 / TUI_LOAD_RATE))
                .await;
            let engine = load_engine.clone();
            tokio::spawn(async move {
                let request = crate::engine::IngestRequest {
                    topic: Some("bench".into()),
                    content_type: Some("application/json".into()),
                    payload: payload(n, 200),
                    idempotency_key: None,
                };
                let _ = engine.ingest("bench-0", request).await;
            });
        }
    });
    let mut loaded_ms = Vec::new();
    let mut notifications = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let load_started = Instant::now();
    while !load.is_finished() {
        tokio::select! {
            change = changes.recv() => {
                if change.is_ok() {
                    notifications += 1;
                }
            }
            _ = tick.tick() => {
                let step = Instant::now();
                crate::tui::refresh(&control, &mut app).await;
                terminal.draw(|frame| crate::tui::render(&app, frame)).map_err(setup)?;
                loaded_ms.push(step.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    let loaded_seconds = load_started.elapsed().as_secs_f64();
    engine.shutdown(Duration::from_secs(1)).await;
    Ok(TuiReport {
        load_events_per_s: TUI_LOAD_RATE,
        load_frames_per_s: loaded_ms.len() as f64 / loaded_seconds,
        load_notifications: notifications,
        load_refresh_and_render_ms: percentiles(loaded_ms),
        scenario: Scenario::Tui,
        stored_events: args.backlog_events,
        width,
        height,
        open_ms,
        frames: frames as u64,
        render_ms: percentiles(render_ms),
        refresh_and_render_ms: percentiles(step_ms),
    })
}

//! The terminal UI: a front end over [`Engine`]'s control interface (never the
//! store), in three parts after ratatui's async component template:
//!
//! - [`app`]: the state and pure key handling (`App::handle_key` → [`Action`]);
//! - [`worker`]: actions carried out against the engine in spawned tasks, their
//!   results sent back over a channel, so key handling never awaits;
//! - [`render`]: `render(&App, frame)`, drawing only: the top-level layout, which
//!   calls one module per pane ([`views`]) and per popup ([`popups`]), with
//!   [`theme`] for colours and frames and [`text`] for formatting. [`layout`]
//!   holds the pane geometry both drawing and paging keys need.
//!
//! [`run`] owns the terminal and the loop: crossterm key events, engine change
//! notifications, a 100 ms tick and action results, under one `tokio::select!`.
//! Panes read only the visible window (one page of events, the selected event's
//! detail), so a store with a million events opens at once.

pub mod app;
pub mod filter;
/// Fixture state for the TUI's tests; compiled only with the `test-fixtures`
/// feature, which the crate's integration tests turn on.
#[cfg(feature = "test-fixtures")]
pub mod fixture;
pub mod form;
pub mod history;
pub mod keymap;
pub mod layout;
pub mod popups;
pub mod render;
pub mod text;
pub mod theme;
pub mod views;
pub mod worker;

pub use app::{Action, ActionResult, App, TuiInfo};
pub use render::render;

use crate::engine::Engine;
use futures_util::StreamExt;
use history::RateMeter;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// Redraws happen at most this often (about 10 a second).
const FRAME: Duration = Duration::from_millis(100);

/// Runs the TUI until the operator quits (q, Ctrl-C) or SIGTERM. Sets up the
/// terminal (raw mode, alternate screen) and always restores it: on return, on
/// error, and on panic (ratatui's hook restores before the panic is printed).
pub async fn run(engine: Engine, info: TuiInfo) -> color_eyre::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, engine, info).await;
    let restored = ratatui::try_restore();
    result?;
    restored?;
    Ok(())
}

/// Reads the visible window from the engine into the app: destinations, one
/// page of events, the selected event's detail. Sync redb reads, all bounded.
pub fn refresh(engine: &Engine, app: &mut App) {
    match engine.destinations() {
        Ok(views) => app.set_destinations(views),
        Err(e) => app.error_status(format!("destinations: {e}")),
    }
    if app.destinations.is_empty() {
        return;
    }
    let (filter, after) = app.events_query();
    match engine.list_events(&filter, after, app::PAGE) {
        Ok(page) => app.set_events(page),
        Err(e) => app.error_status(format!("events: {e}")),
    }
    let detail = app.selected_event.and_then(|id| engine.get_event(id).ok());
    app.set_detail(detail);
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    engine: Engine,
    info: TuiInfo,
) -> color_eyre::Result<()> {
    let mut app = App::new(info, engine.clock().now());
    let size = terminal.size()?;
    app.size = (size.width, size.height);
    refresh(&engine, &mut app);

    let mut keys = crossterm::event::EventStream::new();
    let mut changes = engine.subscribe();
    let (results_tx, mut results) = tokio::sync::mpsc::unbounded_channel();
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut ingested = RateMeter::default();
    let mut delivered = RateMeter::default();
    // Data changed in the engine since the last read.
    let mut stale = false;
    // Something to draw since the last frame.
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;

    loop {
        if dirty && last_draw.is_none_or(|at| at.elapsed() >= FRAME / 2) {
            terminal.draw(|frame| render(&app, frame))?;
            last_draw = Some(Instant::now());
            dirty = false;
        }
        tokio::select! {
            event = keys.next() => {
                match event {
                    Some(Ok(crossterm::event::Event::Key(key))) => {
                        app.now = engine.clock().now();
                        if let Some(action) = app.handle_key(key) {
                            match action {
                                Action::Quit => break,
                                Action::Refresh => refresh(&engine, &mut app),
                                other => worker::spawn(&engine, other, results_tx.clone()),
                            }
                        }
                        if app.quit {
                            break;
                        }
                        dirty = true;
                        last_draw = None;
                    }
                    Some(Ok(crossterm::event::Event::Resize(w, h))) => {
                        app.size = (w, h);
                        terminal.autoresize()?;
                        dirty = true;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => break,
                }
            }
            change = changes.recv() => {
                match change {
                    Ok(change) => {
                        app.now = engine.clock().now();
                        app.on_change(&change);
                        // Take whatever else is queued in one go.
                        while let Ok(change) = changes.try_recv() {
                            app.on_change(&change);
                        }
                        stale = true;
                    }
                    Err(RecvError::Lagged(_)) => stale = true,
                    Err(RecvError::Closed) => {}
                }
            }
            result = results.recv() => {
                if let Some(result) = result {
                    app.now = engine.clock().now();
                    if app.apply_result(result) {
                        refresh(&engine, &mut app);
                    }
                    dirty = true;
                }
            }
            _ = tick.tick() => {
                app.now = engine.clock().now();
                let now = Instant::now();
                let metrics = engine.metrics();
                app.rates.ingested = ingested.sample(
                    now,
                    metrics.ingested.load(std::sync::atomic::Ordering::Relaxed),
                );
                app.rates.delivered = delivered.sample(
                    now,
                    metrics.delivered.load(std::sync::atomic::Ordering::Relaxed),
                );
                if let Some(id) = app.bulk_running().map(|job| job.id.clone()) {
                    if let Ok(progress) = engine.bulk_progress(&id) {
                        app.set_bulk_progress(progress);
                    }
                }
                if stale && !app.frozen {
                    refresh(&engine, &mut app);
                    stale = false;
                }
                dirty = true;
            }
            _ = async {
                match term.as_mut() {
                    Some(signal) => { signal.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => break,
        }
    }
    Ok(())
}

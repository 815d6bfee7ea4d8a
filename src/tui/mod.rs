//! The terminal UI: a front end over the [`Control`] interface (never the
//! engine or the store), in three parts after ratatui's async component template:
//!
//! - [`app`]: the state and pure key handling (`App::handle_key` → [`Action`]);
//! - [`worker`]: actions carried out through [`Control`] in spawned tasks, their
//!   results sent back over a channel, so key handling never awaits (reads of
//!   the visible window go the same way, through [`Refresher`]);
//! - [`render`]: `render(&App, frame)`, drawing only: the top-level layout, which
//!   calls one module per pane ([`views`]) and per popup ([`popups`]), with
//!   [`theme`] for colours and frames and [`text`] for formatting. [`layout`]
//!   holds the pane geometry both drawing and paging keys need.
//!
//! [`run`] owns the terminal and the loop: crossterm key events, change
//! notifications, a 100 ms tick, action results and reads, under one
//! `tokio::select!`; it stops on `q` or when its shutdown token is cancelled.
//! Panes read only the visible window (one page of events, the selected event's
//! detail), so a store with a million events opens at once.

pub mod app;
pub mod clipboard;
pub mod dest_form;
pub mod dest_list;
pub mod filter;
/// Fixture state for the TUI's tests; compiled only with the `test-fixtures`
/// feature, which the crate's integration tests turn on.
#[cfg(feature = "test-fixtures")]
pub mod fixture;
pub mod form;
pub mod history;
pub mod job_list;
pub mod keymap;
pub mod layout;
pub mod notice_list;
pub mod popups;
pub mod quit;
pub mod render;
pub mod text;
pub mod theme;
pub mod views;
pub mod worker;

pub use app::{Action, ActionResult, App, Attachment, TuiInfo};
pub use quit::QuitNotice;
pub use render::render;

use crate::control::{Control, ControlError, Notification};
use crate::engine::{DestinationView, EventDetail, EventPage};
use crate::model::{EventFilter, EventId};
use futures_util::StreamExt;
use history::RateMeter;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// Redraws happen at most this often (about 10 a second).
const FRAME: Duration = Duration::from_millis(100);
/// The least time between two frames that are not a key's own answer, so a
/// burst of answers is drawn once rather than once each.
const MIN_FRAME_GAP: Duration = Duration::from_millis(50);
/// How often an attached TUI makes sure the remote still answers.
const CONTACT_CHECK: chrono::TimeDelta = chrono::TimeDelta::seconds(1);
/// How often the destinations' minute statistics are read again (pane 1's
/// sparklines and the destination view): they change by the minute, so a few
/// seconds is fresh enough, and never per frame.
const STATS_EVERY: Duration = Duration::from_secs(5);

/// Runs the TUI until the operator quits (q, Ctrl-C) or `shutdown` is cancelled
/// (SIGTERM). Sets up the terminal (raw mode, alternate screen) and always
/// restores it: on return, on error, and on panic (ratatui's hook restores
/// before the panic is printed).
pub async fn run(
    control: Arc<dyn Control>,
    info: TuiInfo,
    shutdown: CancellationToken,
) -> color_eyre::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let keys = crossterm::event::EventStream::new();
    let mut clipboard = std::io::stdout();
    let result = drive(
        &mut terminal,
        keys,
        control,
        info,
        shutdown,
        &mut clipboard,
        |_| {},
    )
    .await;
    let restored = ratatui::try_restore();
    result?;
    restored?;
    Ok(())
}

/// The visible window as read: destinations and one page of events.
pub struct Window {
    destinations: Result<Vec<DestinationView>, String>,
    /// `None` when there is no destination (nothing is listed then) or the
    /// engine did not answer the destinations read.
    events: Option<Result<EventPage, String>>,
    /// A read found the engine unreachable (only an attached TUI's can).
    unreachable: bool,
}

/// Reads the visible window for `query` (the app's [`App::events_query`]).
pub async fn read_window(control: &dyn Control, query: (EventFilter, Option<EventId>)) -> Window {
    let is_unreachable = |e: &ControlError| matches!(e, ControlError::Unreachable { .. });
    let destinations = control.destinations().await;
    let mut unreachable = destinations.as_ref().is_err_and(is_unreachable);
    let destinations = destinations.map_err(|e| format!("destinations: {e}"));
    // Without an engine to answer, the events read would only fail the same way.
    if unreachable || destinations.as_ref().is_ok_and(|d| d.is_empty()) {
        return Window {
            destinations,
            events: None,
            unreachable,
        };
    }
    let (filter, after) = query;
    let events = control.list_events(filter, after, app::PAGE).await;
    unreachable |= events.as_ref().is_err_and(is_unreachable);
    Window {
        destinations,
        events: Some(events.map_err(|e| format!("events: {e}"))),
        unreachable,
    }
}

/// Puts a window read into the app; the selection may move with it. True
/// when the selected destination was gone and the selection moved to another:
/// the window's events are then of the one gone, so they are not shown, and
/// the window must be read again.
pub fn apply_window(app: &mut App, window: Window) -> bool {
    if window.unreachable {
        app.contact_lost();
    } else if window.destinations.is_ok() {
        app.contact_made();
    }
    let moved = match window.destinations {
        Ok(views) => app.set_destinations(views),
        Err(e) => {
            app.error_status(e);
            false
        }
    };
    if moved {
        return true;
    }
    match window.events {
        Some(Ok(page)) => app.set_events(page),
        Some(Err(e)) => app.error_status(e),
        None => {}
    }
    false
}

/// The selected event's detail, if one is selected and readable.
pub async fn read_detail(control: &dyn Control, id: Option<EventId>) -> Option<EventDetail> {
    control.event(id?).await.ok()
}

/// Reads the visible window into the app: destinations, one page of events,
/// the selected event's detail. For callers that may wait (the first frame,
/// benchmarks); the loop reads through [`Refresher`] instead.
pub async fn refresh(control: &dyn Control, app: &mut App) {
    let mut window = read_window(control, app.events_query()).await;
    let mut had_destinations = window.events.is_some();
    if apply_window(app, window) {
        // The selected destination was gone: read the events of the one now selected.
        window = read_window(control, app.events_query()).await;
        had_destinations = window.events.is_some();
        apply_window(app, window);
    }
    if had_destinations {
        let detail = read_detail(control, app.selected_event).await;
        app.set_detail(detail);
    }
}

/// What a background read brings back to the loop.
enum Loaded {
    Window(Window),
    Detail(Option<Box<EventDetail>>),
}

/// Reads the visible window in background tasks, one at a time: a request
/// while one is running is remembered and made when it ends (its answer would
/// be stale), so keys never wait on a read and reads never pile up.
struct Refresher {
    control: Arc<dyn Control>,
    loaded: UnboundedSender<Loaded>,
    running: bool,
    again: bool,
}

impl Refresher {
    fn request(&mut self, app: &App) {
        if self.running {
            self.again = true;
            return;
        }
        self.running = true;
        let control = self.control.clone();
        let loaded = self.loaded.clone();
        let query = app.events_query();
        tokio::spawn(async move {
            let _ = loaded.send(Loaded::Window(read_window(&*control, query).await));
        });
    }

    /// Takes a read's answer into the app; starts the next read when one was
    /// asked for meanwhile.
    fn arrived(&mut self, app: &mut App, loaded: Loaded) {
        match loaded {
            Loaded::Window(window) => {
                if self.again {
                    self.running = false;
                    self.again = false;
                    self.request(app);
                    return;
                }
                let had_destinations = window.events.is_some();
                if apply_window(app, window) {
                    // The selected destination was gone: the events of the
                    // one now selected are read before its detail.
                    self.running = false;
                    self.request(app);
                    return;
                }
                if !had_destinations {
                    self.running = false;
                    return;
                }
                let control = self.control.clone();
                let loaded = self.loaded.clone();
                let id = app.selected_event;
                tokio::spawn(async move {
                    let detail = read_detail(&*control, id).await.map(Box::new);
                    let _ = loaded.send(Loaded::Detail(detail));
                });
            }
            Loaded::Detail(detail) => {
                // A detail for an event no longer selected is not shown
                // (`App::selected_detail` checks the id).
                app.set_detail(detail.map(|d| *d));
                self.running = false;
                if std::mem::take(&mut self.again) {
                    self.request(app);
                }
            }
        }
    }
}

/// The TUI's loop on any terminal backend, reading terminal events from
/// `keys`: what [`run`] does on the real terminal, and what a benchmark drives
/// on ratatui's `TestBackend` with keys of its own. `clipboard` is the
/// terminal `y` writes its OSC 52 escape to (stdout for a real one). `on_frame`
/// sees the state each frame was drawn from, right after it is drawn. Returns
/// when the operator quits, `keys` ends or `shutdown` is cancelled.
pub async fn drive<B, K>(
    terminal: &mut ratatui::Terminal<B>,
    mut keys: K,
    control: Arc<dyn Control>,
    info: TuiInfo,
    shutdown: CancellationToken,
    clipboard: &mut (dyn std::io::Write + Send),
    mut on_frame: impl FnMut(&App),
) -> color_eyre::Result<()>
where
    B: ratatui::backend::Backend,
    B::Error: Send + Sync + 'static,
    K: futures_util::Stream<Item = std::io::Result<crossterm::event::Event>> + Unpin,
{
    let mut app = App::new(info, control.now());
    let size = terminal.size()?;
    app.size = (size.width, size.height);
    refresh(&*control, &mut app).await;
    // What happened while nobody watched: the status line says so until a key.
    if let Ok(totals) = control.totals().await {
        app.greet(totals.unacked_notices);
    }

    let mut changes = control.subscribe();
    let (results_tx, mut results) = tokio::sync::mpsc::unbounded_channel();
    let (loaded_tx, mut loaded) = tokio::sync::mpsc::unbounded_channel();
    let mut refresher = Refresher {
        control: control.clone(),
        loaded: loaded_tx,
        running: false,
        again: false,
    };
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut ingested = RateMeter::default();
    let mut delivered = RateMeter::default();
    // Data changed in the engine since the last read.
    let mut stale = false;
    // Something to draw since the last frame.
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut stats_read: Option<Instant> = None;

    loop {
        if dirty && last_draw.is_none_or(|at| at.elapsed() >= MIN_FRAME_GAP) {
            terminal.draw(|frame| render(&app, frame))?;
            on_frame(&app);
            last_draw = Some(Instant::now());
            dirty = false;
        }
        // A change held back by the gap between frames is drawn when the gap
        // ends, not at the next tick: a read that answers just after a key's
        // frame would otherwise wait up to a whole FRAME to show.
        let held_back_until = match (dirty, last_draw) {
            (true, Some(at)) => Some(tokio::time::Instant::from_std(at + MIN_FRAME_GAP)),
            _ => None,
        };
        tokio::select! {
            _ = tokio::time::sleep_until(held_back_until.unwrap_or_else(tokio::time::Instant::now)),
                if held_back_until.is_some() => {}
            event = keys.next() => {
                match event {
                    Some(Ok(crossterm::event::Event::Key(key))) => {
                        app.now = control.now();
                        if let Some(action) = app.handle_key(key) {
                            match action {
                                Action::Quit => break,
                                Action::Refresh => refresher.request(&app),
                                Action::CopyToClipboard(text) => {
                                    if let Err(e) = clipboard::copy(clipboard, &text) {
                                        app.error_status(format!("copy: {e}"));
                                    }
                                }
                                other => worker::spawn(&control, other, results_tx.clone()),
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
            notification = changes.next() => {
                match notification {
                    Some(Notification::Changed(change)) => {
                        app.now = control.now();
                        app.on_change(&change);
                        stale = true;
                    }
                    Some(Notification::Resync) => stale = true,
                    // The engine stopped: nothing more will change.
                    None => changes = Box::pin(futures_util::stream::pending()),
                }
            }
            result = results.recv() => {
                if let Some(result) = result {
                    app.now = control.now();
                    match result {
                        worker::Done::Result(result) => {
                            if app.apply_result(result) {
                                refresher.request(&app);
                            }
                        }
                        worker::Done::BulkProgress(progress) => app.set_bulk_progress(progress),
                        worker::Done::ListStats(read) => app.set_list_stats(read),
                        worker::Done::Totals(totals) => {
                            let now = Instant::now();
                            app.rates.ingested = ingested.sample(now, totals.ingested);
                            app.rates.delivered = delivered.sample(now, totals.delivered);
                            app.set_unacked_notices(totals.unacked_notices);
                            app.store_budget = totals.store;
                            // The header names the process that answers now (a
                            // restarted daemon is a new pid).
                            if let (Some(attachment), Some(pid)) = (&mut app.info.attached, totals.pid) {
                                attachment.pid = Some(pid);
                            }
                        }
                    }
                    dirty = true;
                }
            }
            read = loaded.recv() => {
                if let Some(read) = read {
                    app.now = control.now();
                    refresher.arrived(&mut app, read);
                    dirty = true;
                    // A read's last answer (the window and the selected
                    // event's detail are both in) is drawn at once, not held
                    // back by the gap since the frame a key drew: that is the
                    // frame the key was waiting for. At most one per read, and
                    // reads run one at a time.
                    if !refresher.running {
                        last_draw = None;
                    }
                }
            }
            _ = tick.tick() => {
                app.now = control.now();
                worker::spawn_tick(&control, app.bulk_following().map(|job| job.id.clone()), results_tx.clone());
                if let Some(read) = app.take_notices_reread() {
                    worker::spawn(&control, read, results_tx.clone());
                }
                if let Some(read) = app.jobs_reread() {
                    worker::spawn(&control, read, results_tx.clone());
                }
                if stats_read.is_none_or(|at| at.elapsed() >= STATS_EVERY) && !app.frozen {
                    stats_read = Some(Instant::now());
                    worker::spawn_list_stats(&control, app.stats_targets(), results_tx.clone());
                    if let Some(id) = app.destination_screen_id() {
                        worker::spawn(&control, Action::ReadDestinationStats(id.to_string()), results_tx.clone());
                    }
                }
                // An attached TUI hears nothing when the remote goes away (its
                // change stream just goes quiet), so it reads at least every
                // CONTACT_CHECK; one that stopped answering is asked on every
                // tick (one read at a time), so the TUI resumes as soon as it is back.
                let check_contact = app.info.attached.is_some()
                    && app
                        .contact
                        .last
                        .is_none_or(|last| app.now - last >= CONTACT_CHECK);
                if (stale || app.contact.lost || check_contact) && !app.frozen {
                    refresher.request(&app);
                    stale = false;
                }
                dirty = true;
            }
            _ = shutdown.cancelled() => break,
        }
    }
    Ok(())
}

//! `bench --scenario tui --attach`: the TUI attached to a daemon child process
//! over HTTP, as an operator runs it against `hookwatch --daemon`.
//!
//! The daemon (the current executable, `--daemon`) runs on a store of
//! `--backlog-events` events with a loopback receiver. The TUI runs in this
//! process on ratatui's `TestBackend`, through [`crate::tui::drive`] (the loop
//! the real terminal runs) over a [`RemoteControl`]: every read is a request to
//! the daemon's public API and every change arrives over `GET /v1/changes`.
//! Keys go in through the loop's key stream; each drawn frame is reported back
//! with what it showed, so a key is timed to the first frame that shows its
//! effect.

use super::load::{generate, Load};
use super::proc::EngineProcess;
use super::receiver::Tally;
use super::report::{percentiles, LatencyMs};
use super::{setup, BenchArgs, BenchError, Scenario};
use crate::control::{Control, RemoteControl};
use crate::model::EventId;
use crate::tui::app::Mode;
use crate::tui::{App, Attachment, TuiInfo};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Serialize)]
pub struct TuiAttachReport {
    pub scenario: Scenario,
    pub attach: bool,
    pub stored_events: u64,
    pub width: u16,
    pub height: u16,
    /// From creating the HTTP client to the first frame showing rows of events
    /// (the attach probe, the first reads and the first draw).
    pub open_ms: f64,
    /// Scroll keys timed (`j`, every tenth a PageDown).
    pub scroll_keys: u64,
    /// A scroll key to the first frame with the new selection and its detail.
    pub scroll_to_frame_ms: LatencyMs,
    /// Detail popups opened (Enter on the selected event).
    pub detail_keys: u64,
    /// Enter to the first frame with the popup showing the selected event.
    pub open_detail_to_frame_ms: LatencyMs,
    /// While events are posted to the daemon at this rate...
    pub load_events_per_s: f64,
    /// ...and delivered at this rate (receiver's count over the load phase)...
    pub load_delivered_per_s: f64,
    /// ...the attached TUI draws this many frames a second...
    pub load_frames_per_s: f64,
    /// ...and the delivered count it shows reaches what the daemon reported
    /// this long after the daemon was asked (`GET /v1/status` every 100 ms).
    pub load_counter_lag_ms: LatencyMs,
    /// Daemon samples compared.
    pub load_lag_samples: u64,
}

/// What one drawn frame showed, as the bench needs it.
#[derive(Clone, Debug)]
struct Frame {
    at: Instant,
    /// Events listed (the page read over HTTP).
    rows: usize,
    selected: Option<EventId>,
    /// The selected event's detail is loaded and current.
    detail_shown: bool,
    popup_open: bool,
    /// The delivered count the destinations pane shows, summed.
    delivered: u64,
}

impl Frame {
    fn of(app: &App) -> Frame {
        Frame {
            at: Instant::now(),
            rows: app.events.len(),
            selected: app.selected_event,
            detail_shown: app.selected_event.is_some() && app.selected_detail().is_some(),
            popup_open: matches!(app.mode, Mode::Detail { .. }),
            delivered: app.destinations.iter().map(|d| d.counts.delivered).sum(),
        }
    }
}

/// The live load unless `--rate` says otherwise: the issue's "while the
/// daemon ingests and delivers 5,000 events/s". `--events` events are posted.
const DEFAULT_LOAD_RATE: f64 = 5000.0;
/// Scroll steps timed; every tenth step is a PageDown, every twentieth step
/// also opens (and closes) the detail popup.
const SCROLL_STEPS: usize = 300;
/// How long one key may take to show before the run is called broken.
const FRAME_DEADLINE: Duration = Duration::from_secs(10);
const STATUS_EVERY: Duration = Duration::from_millis(100);

pub(super) async fn run(args: &BenchArgs, exe: &Path) -> Result<TuiAttachReport, BenchError> {
    let super::tui::TuiSetup {
        dir: _dir,
        store_path,
        tally,
        config_path,
        config,
    } = super::tui::prepare(args).await?;
    let engine = EngineProcess::start(exe, &config_path)?;
    let base = format!("http://{}", engine.addr);
    let (width, height) = (160u16, 48u16);

    let (keys_tx, keys_rx) = unbounded_channel::<Event>();
    let keys = Box::pin(futures_util::stream::unfold(keys_rx, |mut keys| async {
        keys.recv().await.map(|key| (Ok(key), keys))
    }));
    let (frames_tx, frames_rx) = unbounded_channel::<Frame>();
    let shutdown = CancellationToken::new();

    // As `hookwatch --url` does: the client, one probe read, then the loop.
    let opened = Instant::now();
    let control = RemoteControl::new(&base, None).map_err(setup)?;
    control.destinations().await.map_err(setup)?;
    let info = TuiInfo {
        listen: engine.addr,
        store: store_path.display().to_string(),
        config_source: config.source.clone(),
        read_only: false,
        attached: Some(Attachment {
            pid: Some(engine.pid() as u32),
            url: base.clone(),
        }),
    };
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).map_err(setup)?;
    // The benchmark presses no `y`: nothing is copied.
    let mut clipboard = std::io::sink();
    let tui = crate::tui::drive(
        &mut terminal,
        keys,
        Arc::new(control),
        info,
        shutdown.clone(),
        &mut clipboard,
        move |app: &App| {
            let _ = frames_tx.send(Frame::of(app));
        },
    );
    let mut driver = Driver {
        keys: keys_tx,
        frames: frames_rx,
    };
    let load_rate = args.rate.unwrap_or(DEFAULT_LOAD_RATE);
    let script = async {
        let result = measure(&mut driver, opened, &base, args, &tally, load_rate).await;
        shutdown.cancel();
        result
    };
    let (shown, measured) = tokio::join!(tui, script);
    shown.map_err(|e| BenchError::Setup(format!("the attached TUI failed: {e:#}")))?;
    let figures = measured?;
    engine.stop()?;
    Ok(TuiAttachReport {
        scenario: Scenario::Tui,
        attach: true,
        stored_events: args.backlog_events,
        width,
        height,
        open_ms: figures.open_ms,
        scroll_keys: figures.scroll_ms.len() as u64,
        scroll_to_frame_ms: percentiles(figures.scroll_ms),
        detail_keys: figures.detail_ms.len() as u64,
        open_detail_to_frame_ms: percentiles(figures.detail_ms),
        load_events_per_s: load_rate,
        load_delivered_per_s: figures.delivered_per_s,
        load_frames_per_s: figures.frames_per_s,
        load_lag_samples: figures.lag_ms.len() as u64,
        load_counter_lag_ms: percentiles(figures.lag_ms),
    })
}

/// The bench's side of the TUI: keys in, frames out.
struct Driver {
    keys: UnboundedSender<Event>,
    frames: UnboundedReceiver<Frame>,
}

impl Driver {
    fn press(&self, code: KeyCode) -> Result<Instant, BenchError> {
        let at = Instant::now();
        self.keys
            .send(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
            .map_err(|_| BenchError::Setup("the attached TUI stopped taking keys".into()))?;
        Ok(at)
    }

    /// The first frame from now on that `shows`; an error naming `what` after
    /// [`FRAME_DEADLINE`].
    async fn frame_where(
        &mut self,
        what: &str,
        shows: impl Fn(&Frame) -> bool,
    ) -> Result<Frame, BenchError> {
        let deadline = tokio::time::Instant::now() + FRAME_DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.frames.recv()).await {
                Ok(Some(frame)) if shows(&frame) => return Ok(frame),
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(BenchError::Setup(format!(
                        "the attached TUI stopped before {what}"
                    )))
                }
                Err(_) => {
                    return Err(BenchError::Setup(format!(
                        "no frame showed {what} within {FRAME_DEADLINE:?}"
                    )))
                }
            }
        }
    }
}

struct Figures {
    open_ms: f64,
    scroll_ms: Vec<f64>,
    detail_ms: Vec<f64>,
    frames_per_s: f64,
    delivered_per_s: f64,
    lag_ms: Vec<f64>,
}

fn ms(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

async fn measure(
    driver: &mut Driver,
    opened: Instant,
    base: &str,
    args: &BenchArgs,
    tally: &Tally,
    load_rate: f64,
) -> Result<Figures, BenchError> {
    let first = driver
        .frame_where("rows of events", |f| f.rows > 0 && f.selected.is_some())
        .await?;
    let open_ms = ms(opened, first.at);

    // Focus the events pane, then scroll: each step waits for the frame that
    // shows the new selection with its detail (read over HTTP).
    driver.press(KeyCode::Char('2'))?;
    let mut selected = first.selected;
    let mut scroll_ms = Vec::with_capacity(SCROLL_STEPS);
    let mut detail_ms = Vec::new();
    for step in 0..SCROLL_STEPS {
        let key = if step % 10 == 9 {
            KeyCode::PageDown
        } else {
            KeyCode::Char('j')
        };
        let before = selected;
        let pressed = driver.press(key)?;
        let frame = driver
            .frame_where("the next selection with its detail", |f| {
                f.selected.is_some() && f.selected != before && f.detail_shown
            })
            .await?;
        scroll_ms.push(ms(pressed, frame.at));
        selected = frame.selected;
        if step % 20 == 19 {
            let pressed = driver.press(KeyCode::Enter)?;
            let frame = driver
                .frame_where("the detail popup", |f| {
                    f.popup_open && f.detail_shown && f.selected == selected
                })
                .await?;
            detail_ms.push(ms(pressed, frame.at));
            driver.press(KeyCode::Esc)?;
            driver
                .frame_where("the popup closed", |f| !f.popup_open)
                .await?;
        }
    }

    // Under load: the daemon's own delivered count, sampled every 100 ms, and
    // the first frame whose shown count reaches each sample.
    let events = args.events;
    let url_base = base.to_string();
    let url_for: Arc<dyn Fn(u64) -> String + Send + Sync> =
        Arc::new(move |_| format!("{url_base}/v1/destinations/bench-0/events"));
    let (concurrency, payload_bytes) = (args.concurrency, args.payload_bytes);
    let delivered_before = tally.delivered.load(Ordering::Relaxed);
    let load_started = Instant::now();
    let mut load = tokio::spawn(generate(
        Load {
            events,
            concurrency,
            payload_bytes,
            rate: Some(load_rate),
            batch: 1,
        },
        None,
        load_started,
        url_for,
    ));
    let (samples_tx, mut samples) = unbounded_channel::<(Instant, u64)>();
    let sampler = tokio::spawn(sample_delivered(base.to_string(), samples_tx));
    // Frames are drained as they come, so waiting for samples never holds
    // back the TUI.
    let mut pending: Vec<(Instant, u64)> = Vec::new();
    let mut lag_ms = Vec::new();
    let mut frames_in_load = 0u64;
    let mut load_done = false;
    let mut load_ended = load_started;
    let mut load_result = None;
    let settle_deadline = |ended: Instant| ended + Duration::from_secs(5);
    loop {
        tokio::select! {
            frame = driver.frames.recv() => {
                let Some(frame) = frame else {
                    return Err(BenchError::Setup("the attached TUI stopped under load".into()));
                };
                if !load_done {
                    frames_in_load += 1;
                }
                pending.retain(|&(asked, count)| {
                    if frame.delivered >= count && frame.at >= asked {
                        lag_ms.push(ms(asked, frame.at));
                        false
                    } else {
                        true
                    }
                });
            }
            sample = samples.recv(), if !load_done => {
                if let Some(sample) = sample {
                    pending.push(sample);
                }
            }
            result = &mut load, if !load_done => {
                load_done = true;
                load_ended = Instant::now();
                sampler.abort();
                load_result = Some(result);
            }
        }
        if load_done && (pending.is_empty() || Instant::now() > settle_deadline(load_ended)) {
            break;
        }
    }
    match load_result {
        Some(Ok(Ok(_))) => {}
        Some(Ok(Err(e))) => return Err(e),
        Some(Err(e)) => return Err(setup(e)),
        None => unreachable!("the loop ends only after the load"),
    }
    if !pending.is_empty() {
        return Err(BenchError::Setup(format!(
            "the TUI never showed {} of the daemon's delivered counts (the last: {})",
            pending.len(),
            pending.last().map_or(0, |p| p.1)
        )));
    }
    let load_seconds = load_ended.duration_since(load_started).as_secs_f64();
    let delivered = tally.delivered.load(Ordering::Relaxed) - delivered_before;
    driver.press(KeyCode::Char('q'))?;
    Ok(Figures {
        open_ms,
        scroll_ms,
        detail_ms,
        frames_per_s: frames_in_load as f64 / load_seconds,
        delivered_per_s: delivered as f64 / load_seconds,
        lag_ms,
    })
}

/// `GET /v1/status` every [`STATUS_EVERY`]: the daemon's delivered count,
/// stamped with when it was asked for (the earliest it can have been read, so
/// a lag is never understated).
async fn sample_delivered(base: String, samples: UnboundedSender<(Instant, u64)>) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client without TLS settings builds");
    let url = format!("{base}/v1/status");
    let mut every = tokio::time::interval(STATUS_EVERY);
    loop {
        every.tick().await;
        let asked = Instant::now();
        let Ok(response) = client.get(&url).send().await else {
            continue;
        };
        let Ok(body) = response.bytes().await else {
            continue;
        };
        let Ok(status) = serde_json::from_slice::<serde_json::Value>(&body) else {
            continue;
        };
        let delivered = status["counts"]
            .as_object()
            .map(|counts| {
                counts
                    .values()
                    .filter_map(|c| c["delivered"].as_u64())
                    .sum::<u64>()
            })
            .unwrap_or(0);
        if samples.send((asked, delivered)).is_err() {
            return;
        }
    }
}

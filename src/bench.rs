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

use crate::model::{AttemptRecord, EventState, EventTransition, StateCounts, Trigger, Verdict};
use crate::store::{NewEvent, Store};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Serialize;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// ratatui's TestBackend.
    Tui,
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
    /// Destinations the events are spread over (round robin).
    #[arg(long, default_value_t = 1)]
    pub destinations: usize,
    /// Share (0..1) of receiver answers that are 500, to exercise retries.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Fixed offered load in events/s instead of as fast as possible.
    #[arg(long)]
    pub rate: Option<f64>,
    #[arg(long, value_enum, default_value_t = Scenario::Throughput)]
    pub scenario: Scenario,
    /// Events in the backlog scenario.
    #[arg(long, default_value_t = 1_000_000)]
    pub backlog_events: u64,
    /// Events scheduled for tomorrow in the idle scenario.
    #[arg(long, default_value_t = 100_000)]
    pub idle_events: u64,
    /// How long the idle scenario measures CPU.
    #[arg(long, default_value = "30s", value_parser = parse_duration_arg)]
    pub idle_for: Duration,
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

#[derive(Debug, Default, Serialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Serialize)]
pub struct ThroughputReport {
    pub scenario: Scenario,
    pub events: u64,
    pub concurrency: usize,
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

#[derive(Debug, Serialize)]
pub struct IdleReport {
    pub scenario: Scenario,
    pub idle_events: u64,
    pub measured_seconds: f64,
    pub cpu_percent: f64,
    pub rss_mb: f64,
}

/// Runs the chosen scenario, prints the table (and JSON line), and returns it.
pub fn run(args: &BenchArgs) -> Result<(), BenchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(setup)?;
    let exe = std::env::current_exe().map_err(setup)?;
    match args.scenario {
        Scenario::Throughput => {
            let report = runtime.block_on(throughput(args, &exe))?;
            print_report(&report, args.json);
        }
        Scenario::Backlog => {
            let report = runtime.block_on(backlog(args, &exe))?;
            print_report(&report, args.json);
        }
        Scenario::Idle => {
            let report = runtime.block_on(idle(args, &exe))?;
            print_report(&report, args.json);
        }
        Scenario::Tui => {
            let report = runtime.block_on(tui(args))?;
            print_report(&report, args.json);
        }
    }
    Ok(())
}

fn print_report<T: Serialize>(report: &T, json: bool) {
    let value = serde_json::to_value(report).expect("reports serialise");
    if let serde_json::Value::Object(fields) = &value {
        let width = fields.keys().map(String::len).max().unwrap_or(0);
        for (key, value) in fields {
            let shown = match value {
                serde_json::Value::Object(inner) => inner
                    .iter()
                    .map(|(k, v)| format!("{k} {}", show(v)))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => show(other),
            };
            println!("{key:<width$}  {shown}");
        }
    }
    if json {
        println!("{value}");
    }
}

fn show(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => format!("{:.3}", n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------
// The receiver
// ---------------------------------------------------------------------------

/// What the receiver records. Arrival times are nanoseconds since `epoch`, plus
/// one so that zero means "not yet".
struct Tally {
    epoch: Instant,
    arrivals: Vec<AtomicU64>,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    raw: AtomicU64,
    seen: Mutex<HashSet<String>>,
    fail_rate: f64,
}

impl Tally {
    fn new(epoch: Instant, slots: usize, fail_rate: f64) -> Arc<Tally> {
        Arc::new(Tally {
            epoch,
            arrivals: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            raw: AtomicU64::new(0),
            seen: Mutex::new(HashSet::with_capacity(slots)),
            fail_rate,
        })
    }

    fn nanos(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64 + 1
    }
}

/// Reads `"seq":N` from the start of a payload.
fn seq_of(body: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(body.get(..body.len().min(64))?).ok()?;
    let start = text.find("\"seq\":")? + 6;
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn receive(
    State(tally): State<Arc<Tally>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> impl IntoResponse {
    if uri.path() == "/raw" {
        tally.raw.fetch_add(1, Ordering::Relaxed);
        return StatusCode::OK;
    }
    if tally.fail_rate > 0.0 && rand::random::<f64>() < tally.fail_rate {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let first = tally.seen.lock().expect("tally lock").insert(id);
    if !first {
        tally.duplicates.fetch_add(1, Ordering::Relaxed);
        return StatusCode::OK;
    }
    if let Some(slot) = seq_of(&body).and_then(|seq| tally.arrivals.get(seq)) {
        let _ = slot.compare_exchange(0, tally.nanos(), Ordering::Relaxed, Ordering::Relaxed);
    }
    tally.delivered.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

/// Starts the receiver on its own runtime thread; returns its address.
fn start_receiver(tally: Arc<Tally>) -> Result<SocketAddr, BenchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(setup)?;
    listener.set_nonblocking(true).map_err(setup)?;
    let addr = listener.local_addr().map_err(setup)?;
    std::thread::Builder::new()
        .name("bench-receiver".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("receiver runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("receiver listener");
                let app = axum::Router::new().fallback(receive).with_state(tally);
                let _ = axum::serve(listener, app).await;
            });
        })
        .map_err(setup)?;
    Ok(addr)
}

// ---------------------------------------------------------------------------
// The engine as a child process
// ---------------------------------------------------------------------------

struct EngineProcess {
    child: Child,
    addr: SocketAddr,
}

impl EngineProcess {
    /// `HOOKWATCH_BENCH_ENGINE_PREFIX` (e.g. `perf record -g -o engine.perf --`)
    /// runs the engine under a profiler; everything else stays the same.
    fn start(exe: &Path, config: &Path) -> Result<EngineProcess, BenchError> {
        let prefix: Vec<String> = std::env::var("HOOKWATCH_BENCH_ENGINE_PREFIX")
            .map(|p| p.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        let mut child = command
            .args(["--daemon", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn,hookwatch=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(setup)?;
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            let mut told = false;
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if !told {
                    if let Some(at) = line.find("listening on http://") {
                        let rest = &line[at + "listening on http://".len()..];
                        let addr: String = rest
                            .chars()
                            .take_while(|c| !c.is_whitespace() && *c != '"')
                            .collect();
                        if let Ok(addr) = addr.parse::<SocketAddr>() {
                            let _ = found.send(addr);
                            told = true;
                        }
                    }
                }
                line.clear();
            }
        });
        match wait.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => Ok(EngineProcess { child, addr }),
            Err(_) => {
                let _ = child.kill();
                Err(BenchError::Setup(
                    "the engine did not start listening within 60 s".into(),
                ))
            }
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGTERM, then wait; returns the child's CPU time and peak RSS from rusage.
    fn stop(mut self) -> Result<ChildUsage, BenchError> {
        let before = children_usage();
        // SAFETY: kill(2) takes plain integers and touches no memory of ours; the
        // pid is our own child, not yet waited for, so it cannot name a reused pid.
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
        self.child.wait().map_err(setup)?;
        let after = children_usage();
        Ok(ChildUsage {
            cpu: after.cpu.saturating_sub(before.cpu),
            peak_rss_kb: after.peak_rss_kb,
        })
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct ChildUsage {
    cpu: Duration,
    peak_rss_kb: u64,
}

fn children_usage() -> ChildUsage {
    // SAFETY: rusage is a plain C struct of integers and timevals, for which
    // all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage(2) writes one rusage through a pointer to a live, properly
    // aligned local of exactly that type.
    unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    ChildUsage {
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        peak_rss_kb: usage.ru_maxrss as u64,
    }
}

/// user+system CPU of a live process, from /proc.
fn process_cpu(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf(3) takes an integer name and reads no memory of ours.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / per_second)
}

/// Resident set size of a live process, in MB.
fn process_rss_mb(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn write_config(
    dir: &Path,
    receiver: SocketAddr,
    destinations: usize,
    concurrency: usize,
) -> Result<PathBuf, BenchError> {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_body = \"1MiB\"\n\n[store]\npath = \"{}\"\n",
        dir.join("bench.redb").display()
    );
    for i in 0..destinations {
        text.push_str(&format!(
            "\n[[destinations]]\nid = \"bench-{i}\"\nurl = \"http://{receiver}/hook\"\ntimeout = \"10s\"\nconcurrency = {}\n[destinations.retry]\nschedule = \"fixed\"\ndelay = \"100ms\"\nmax_retries = 50\nmax_age = \"1h\"\n",
            concurrency.clamp(1, crate::config::MAX_CONCURRENCY as usize)
        ));
    }
    let path = dir.join("bench.toml");
    std::fs::write(&path, text).map_err(setup)?;
    Ok(path)
}

// ---------------------------------------------------------------------------
// The load generator
// ---------------------------------------------------------------------------

fn payload(seq: u64, size: usize) -> bytes::Bytes {
    let head = format!("{{\"seq\":{seq},\"pad\":\"");
    let tail = "\"}";
    let pad = size.saturating_sub(head.len() + tail.len());
    let mut body = String::with_capacity(size.max(head.len() + tail.len()));
    body.push_str(&head);
    body.extend(std::iter::repeat_n('x', pad));
    body.push_str(tail);
    bytes::Bytes::from(body)
}

/// Posts `events` payloads over `concurrency` keep-alive connections; `url_for`
/// picks each event's URL. Returns the elapsed time of the whole run.
async fn generate(
    events: u64,
    concurrency: usize,
    payload_bytes: usize,
    rate: Option<f64>,
    starts: Option<Arc<Vec<AtomicU64>>>,
    epoch: Instant,
    url_for: Arc<dyn Fn(u64) -> String + Send + Sync>,
) -> Result<Duration, BenchError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()
        .map_err(setup)?;
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let client = client.clone();
        let next = next.clone();
        let starts = starts.clone();
        let url_for = url_for.clone();
        let failures = failures.clone();
        tasks.spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= events {
                    return;
                }
                if let Some(rate) = rate {
                    let due = began + Duration::from_secs_f64(seq as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let body = payload(seq, payload_bytes);
                if let Some(starts) = &starts {
                    starts[seq as usize]
                        .store(epoch.elapsed().as_nanos() as u64 + 1, Ordering::Relaxed);
                }
                let mut sent = false;
                for _ in 0..5 {
                    let response = client
                        .post(url_for(seq))
                        .header("content-type", "application/json")
                        .header("webhook-id", seq.to_string())
                        .body(body.clone())
                        .send()
                        .await;
                    if matches!(&response, Ok(r) if r.status().is_success()) {
                        sent = true;
                        break;
                    }
                }
                if !sent {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(BenchError::Setup(format!(
            "{failed} requests were not accepted after 5 tries"
        )));
    }
    Ok(began.elapsed())
}

fn percentiles(mut samples: Vec<f64>) -> LatencyMs {
    if samples.is_empty() {
        return LatencyMs::default();
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    LatencyMs {
        p50: at(0.50),
        p99: at(0.99),
        max: *samples.last().expect("not empty"),
    }
}

async fn wait_delivered(
    tally: &Tally,
    expected: u64,
    limit: Duration,
) -> Result<Instant, BenchError> {
    let started = Instant::now();
    loop {
        let delivered = tally.delivered.load(Ordering::Relaxed);
        if delivered >= expected {
            return Ok(Instant::now());
        }
        if started.elapsed() > limit {
            return Err(BenchError::Incomplete {
                delivered,
                expected,
                waited: limit,
            });
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn throughput(args: &BenchArgs, exe: &Path) -> Result<ThroughputReport, BenchError> {
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
    let raw_elapsed = generate(
        args.events,
        args.concurrency,
        args.payload_bytes,
        None,
        None,
        epoch,
        Arc::new(move |_| raw_url.clone()),
    )
    .await?;
    let raw_http_per_s = args.events as f64 / raw_elapsed.as_secs_f64();

    let config = write_config(
        dir.path(),
        receiver,
        args.destinations.max(1),
        args.concurrency,
    )?;
    let engine = EngineProcess::start(exe, &config)?;
    let base = format!("http://{}", engine.addr);
    let destinations = args.destinations.max(1) as u64;
    let starts: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.events).map(|_| AtomicU64::new(0)).collect());
    let run_started = Instant::now();
    let ingest_elapsed = generate(
        args.events,
        args.concurrency,
        args.payload_bytes,
        args.rate,
        Some(starts.clone()),
        epoch,
        Arc::new(move |seq| format!("{base}/v1/destinations/bench-{}/events", seq % destinations)),
    )
    .await?;
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
        payload_bytes: args.payload_bytes,
        destinations: args.destinations.max(1),
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

// ---------------------------------------------------------------------------
// Backlog and idle: stores built directly through the store module
// ---------------------------------------------------------------------------

/// Writes `count` events for `bench-0` in state retrying, due at `due(seq)`.
async fn build_store(
    path: &Path,
    count: u64,
    payload_bytes: usize,
    due: impl Fn(u64) -> chrono::DateTime<chrono::Utc>,
) -> Result<(), BenchError> {
    let store = Store::open(path).map_err(setup)?;
    let now = chrono::Utc::now();
    let mut generator = ulid::Generator::new();
    const BATCH: u64 = 10_000;
    let mut seq = 0;
    while seq < count {
        let end = (seq + BATCH).min(count);
        let mut batch = Vec::with_capacity((end - seq) as usize);
        for n in seq..end {
            let id = generator
                .generate_from_datetime(now.into())
                .map_err(|e| setup(format!("{e:?}")))?;
            batch.push((id, due(n), payload(n, payload_bytes)));
        }
        store
            .write(move |tables| {
                for &(id, due_at, ref body) in &batch {
                    tables.insert_event(NewEvent {
                        id,
                        destination: "bench-0".into(),
                        topic: "bench".into(),
                        content_type: Some("application/json".into()),
                        payload: body.clone(),
                        idempotency_key: None,
                        created_at: now,
                    })?;
                    // One failed first attempt, as behind a real outage.
                    tables.transition(id, failed_attempt(Trigger::Initial, now, due_at))?;
                }
                Ok(())
            })
            .await
            .map_err(setup)?;
        seq = end;
    }
    let counts: StateCounts = store.counts("bench-0").map_err(setup)?;
    if counts.retrying != count {
        return Err(BenchError::Setup(format!(
            "built {} retrying events, wanted {count}",
            counts.retrying
        )));
    }
    store.close().await;
    Ok(())
}

/// How many of the backlog come due during the measurement, and over how long:
/// the rest wait until tomorrow, as a real backlog behind a long outage would.
const LATENESS_SAMPLE: u64 = 20_000;
const LATENESS_WINDOW: Duration = Duration::from_secs(10);
/// Time between the restart and the first sampled due time.
const LATENESS_LEAD: Duration = Duration::from_secs(8);

async fn backlog(args: &BenchArgs, exe: &Path) -> Result<BacklogReport, BenchError> {
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

/// A failed attempt (503) made at `at` that schedules the next retry at `retry_at`.
fn failed_attempt(
    trigger: Trigger,
    at: chrono::DateTime<chrono::Utc>,
    retry_at: chrono::DateTime<chrono::Utc>,
) -> EventTransition {
    EventTransition::AttemptRecorded {
        attempt: AttemptRecord {
            n: 0,
            at,
            trigger,
            status: Some(503),
            error: None,
            duration_ms: 1,
            response_excerpt: String::new(),
            decision: "retry (bench setup)".into(),
        },
        verdict: Verdict::Retry { at: retry_at },
    }
}

/// Moves the first `count` events' due times earlier by `shift`, recording it
/// as one more failed retry.
async fn shift_due_times(
    path: &Path,
    count: u64,
    shift: chrono::Duration,
) -> Result<(), BenchError> {
    let store = Store::open(path).map_err(setup)?;
    let now = chrono::Utc::now();
    let ids = store
        .ids_in_state("bench-0", EventState::Retrying, None, count as usize)
        .map_err(setup)?;
    for chunk in ids.chunks(5000) {
        let chunk = chunk.to_vec();
        store
            .write(move |tables| {
                for &id in &chunk {
                    // Another failed retry, rescheduling the event `shift` earlier.
                    let Some(record) = tables.event(id)? else {
                        continue;
                    };
                    if let Some(due_at) = record.next_attempt_at {
                        tables.transition(
                            id,
                            failed_attempt(Trigger::Automatic, now, due_at - shift),
                        )?;
                    }
                }
                Ok(())
            })
            .await
            .map_err(setup)?;
    }
    store.close().await;
    Ok(())
}

async fn idle(args: &BenchArgs, exe: &Path) -> Result<IdleReport, BenchError> {
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

/// Builds a store of `backlog_events` events, opens the engine on it in this
/// process, and times the TUI's frames while scrolling down the events pane.
async fn tui(args: &BenchArgs) -> Result<TuiReport, BenchError> {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::backend::TestBackend;
    let dir = tempfile::tempdir().map_err(setup)?;
    let store_path = dir.path().join("bench.redb");
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    build_store(&store_path, args.backlog_events, args.payload_bytes, |_| {
        tomorrow
    })
    .await?;
    // A live receiver, so that the load phase below really delivers.
    let tally = Tally::new(Instant::now(), 1, 0.0);
    let receiver = start_receiver(tally.clone())?;
    let config_path = write_config(dir.path(), receiver, 1, args.concurrency)?;
    let config = crate::config::Config::load(Some(&config_path)).map_err(setup)?;
    let (width, height) = (160u16, 48u16);

    let opened = Instant::now();
    let engine = crate::engine::Engine::start(&config, Arc::new(crate::clock::SystemClock))
        .map_err(setup)?;
    let info = crate::tui::TuiInfo {
        listen: "127.0.0.1:8686".parse().expect("address"),
        store_path: store_path.clone(),
        config_source: config.source.clone(),
        read_only: false,
    };
    let mut app = crate::tui::App::new(info, chrono::Utc::now());
    app.size = (width, height);
    let mut terminal = ratatui::Terminal::new(TestBackend::new(width, height)).map_err(setup)?;
    crate::tui::refresh(&engine, &mut app);
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
        crate::tui::refresh(&engine, &mut app);
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
                crate::tui::refresh(&engine, &mut app);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_requested_size_and_its_sequence_number() {
        let body = payload(1234, 200);
        assert_eq!(body.len(), 200);
        assert_eq!(seq_of(&body), Some(1234));
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
        assert_eq!(
            seq_of(&payload(7, 1)),
            Some(7),
            "tiny sizes still carry the number"
        );
    }

    #[test]
    fn percentiles_pick_from_sorted_samples() {
        let p = percentiles((1..=100).map(f64::from).collect());
        assert_eq!((p.p50, p.max), (51.0, 100.0));
        assert_eq!(p.p99, 99.0);
    }
}

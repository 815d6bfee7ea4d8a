//! Shared helpers for the integration tests: a running `hookwatch --daemon`
//! (`Daemon`), a recording webhook receiver (`Receiver`), config builders and
//! deadline-based waiting.
//!
//! Every test binary uses a different subset of these helpers.
#![allow(dead_code)]

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for something that should happen within a second or two.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(25);

// ---------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------

/// Polls `cond` until it holds; panics naming `what` after `timeout`.
pub async fn wait_until<F>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> bool,
{
    let start = Instant::now();
    loop {
        if cond() {
            return;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` until it returns `Ok`; panics after `timeout` naming `what` and
/// quoting the last `Err` (a description of what was seen instead).
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(POLL).await;
    }
}

// ---------------------------------------------------------------------------
// Config builders
// ---------------------------------------------------------------------------

/// Quotes a string as a TOML basic string.
pub fn toml_str(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One `[[destinations]]` entry.
#[derive(Clone, Debug)]
pub struct Dest {
    pub id: String,
    pub url: String,
    topics: Vec<String>,
    timeout: Option<String>,
    concurrency: Option<u32>,
    headers: Vec<(String, String)>,
    secret: Option<String>,
    retry: Option<(String, String, u32)>,
}

impl Dest {
    pub fn new(id: &str, url: &str) -> Dest {
        Dest {
            id: id.to_string(),
            url: url.to_string(),
            topics: Vec::new(),
            timeout: None,
            concurrency: None,
            headers: Vec::new(),
            secret: None,
            retry: None,
        }
    }

    pub fn topics(mut self, topics: &[&str]) -> Dest {
        self.topics = topics.iter().map(|t| t.to_string()).collect();
        self
    }

    pub fn timeout(mut self, timeout: &str) -> Dest {
        self.timeout = Some(timeout.to_string());
        self
    }

    pub fn concurrency(mut self, n: u32) -> Dest {
        self.concurrency = Some(n);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Dest {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn secret(mut self, secret: &str) -> Dest {
        self.secret = Some(secret.to_string());
        self
    }

    /// `[destinations.retry] schedule = "fixed"` with this delay and retry count.
    pub fn retry_fixed(self, delay: &str, max_retries: u32) -> Dest {
        self.retry("fixed", delay, max_retries)
    }

    /// `[destinations.retry]` with this schedule, delay and retry count.
    pub fn retry(mut self, schedule: &str, delay: &str, max_retries: u32) -> Dest {
        self.retry = Some((schedule.to_string(), delay.to_string(), max_retries));
        self
    }

    pub fn render(&self) -> String {
        let mut out = String::from("[[destinations]]\n");
        out += &format!("id = {}\n", toml_str(&self.id));
        out += &format!("url = {}\n", toml_str(&self.url));
        if !self.topics.is_empty() {
            let list: Vec<String> = self.topics.iter().map(|t| toml_str(t)).collect();
            out += &format!("topics = [{}]\n", list.join(", "));
        }
        if let Some(timeout) = &self.timeout {
            out += &format!("timeout = {}\n", toml_str(timeout));
        }
        if let Some(n) = self.concurrency {
            out += &format!("concurrency = {n}\n");
        }
        if !self.headers.is_empty() {
            let pairs: Vec<String> = self
                .headers
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_str(k), toml_str(v)))
                .collect();
            out += &format!("headers = {{ {} }}\n", pairs.join(", "));
        }
        if let Some(secret) = &self.secret {
            out += &format!("secret = {}\n", toml_str(secret));
        }
        if let Some((schedule, delay, max_retries)) = &self.retry {
            out += "[destinations.retry]\n";
            out += &format!("schedule = {}\n", toml_str(schedule));
            out += &format!("delay = {}\n", toml_str(delay));
            out += &format!("max_retries = {max_retries}\n");
        }
        out
    }
}

/// A whole config file. `listen` is always `127.0.0.1:0` and the store lives in
/// the daemon's temporary directory.
#[derive(Clone, Debug, Default)]
pub struct TestConfig {
    server_lines: Vec<String>,
    destinations: Vec<Dest>,
    pub token: Option<String>,
    /// Environment variables for the daemon process.
    pub env: Vec<(String, String)>,
}

impl TestConfig {
    pub fn new() -> TestConfig {
        TestConfig::default()
    }

    /// Sets `server.token`; the daemon's client then sends it.
    pub fn token(mut self, token: &str) -> TestConfig {
        self.server_lines
            .push(format!("token = {}", toml_str(token)));
        self.token = Some(token.to_string());
        self
    }

    /// Leaves `server.token` out of the file and passes the token in
    /// `HOOKWATCH_TOKEN`; the daemon's client sends it.
    pub fn token_from_env(mut self, token: &str) -> TestConfig {
        self.env
            .push(("HOOKWATCH_TOKEN".to_string(), token.to_string()));
        self.token = Some(token.to_string());
        self
    }

    /// Adds a raw line to the `[server]` table, e.g. `max_connections = 50`.
    pub fn server_line(mut self, line: &str) -> TestConfig {
        self.server_lines.push(line.to_string());
        self
    }

    pub fn max_body(mut self, size: &str) -> TestConfig {
        self.server_lines
            .push(format!("max_body = {}", toml_str(size)));
        self
    }

    pub fn destination(mut self, dest: Dest) -> TestConfig {
        self.destinations.push(dest);
        self
    }

    pub fn render(&self, store_path: &Path) -> String {
        let mut out = String::from("[server]\nlisten = \"127.0.0.1:0\"\n");
        for line in &self.server_lines {
            out += line;
            out += "\n";
        }
        out += &format!(
            "\n[store]\npath = {}\n\n",
            toml_str(&store_path.display().to_string())
        );
        for dest in &self.destinations {
            out += &dest.render();
            out += "\n";
        }
        out
    }
}

// ---------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------

/// Lines the daemon wrote to stderr, shared with the thread that drains the pipe.
type LogLines = Arc<Mutex<Vec<String>>>;

/// A running `hookwatch --daemon`, killed when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub base_url: String,
    pub config_path: PathBuf,
    pub store_path: PathBuf,
    pub token: Option<String>,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    log: LogLines,
    /// Index in `log` where the current process's lines start.
    log_start: usize,
    http: reqwest::Client,
    dir: Arc<tempfile::TempDir>,
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build reqwest client")
}

/// Removes ANSI colour escapes, in case the daemon colours its log lines.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Finds `listening on http://ADDR` in a log line (text or JSON).
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    let line = strip_ansi(line);
    let start = line.find("listening on http://")? + "listening on http://".len();
    let rest = &line[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '/' || c == ',')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

impl Daemon {
    /// Writes `config` to a fresh temporary directory and starts the daemon on it.
    pub async fn start(config: TestConfig) -> Daemon {
        Daemon::start_with_args(config, &[]).await
    }

    pub async fn start_with_args(config: TestConfig, extra_args: &[&str]) -> Daemon {
        let dir = Arc::new(tempfile::tempdir().expect("create temp dir"));
        let config_path = dir.path().join("hookwatch.toml");
        let store_path = dir.path().join("hookwatch.redb");
        std::fs::write(&config_path, config.render(&store_path)).expect("write config");
        let mut daemon = Daemon {
            child: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            base_url: String::new(),
            config_path,
            store_path,
            token: config.token.clone(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            env: config.env.clone(),
            log: Arc::new(Mutex::new(Vec::new())),
            log_start: 0,
            http: http_client(),
            dir,
        };
        daemon.spawn().await;
        daemon
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("daemon is running").id() as i32
    }

    /// Whether the process is still alive (it has not exited by itself).
    pub fn is_running(&mut self) -> bool {
        let child = self.child.as_mut().expect("daemon was started");
        child.try_wait().expect("try_wait").is_none()
    }

    /// Starts the process on `config_path` and waits for its "listening on" line.
    async fn spawn(&mut self) {
        assert!(
            self.child.is_none(),
            "spawn while a daemon is still running"
        );
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookwatch"));
        command
            .arg("--daemon")
            .arg("--config")
            .arg(&self.config_path)
            .args(&self.extra_args)
            .env_remove("HOOKWATCH_TOKEN")
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn hookwatch");
        let stderr = child.stderr.take().expect("piped stderr");
        {
            let mut log = self.log.lock().unwrap();
            if !log.is_empty() {
                log.push("----- restart -----".to_string());
            }
            self.log_start = log.len();
        }
        let log = self.log.clone();
        // Drains stderr for the life of the process so the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                match line {
                    Ok(line) => log.lock().unwrap().push(line),
                    Err(_) => break,
                }
            }
        });
        self.child = Some(child);

        let start = Instant::now();
        let addr = loop {
            let found = self.log.lock().unwrap()[self.log_start..]
                .iter()
                .find_map(|line| parse_listening(line));
            if let Some(addr) = found {
                break addr;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                // Let the drain thread catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                self.child = None;
                panic!(
                    "hookwatch exited ({status}) before logging \"listening on http://...\"; stderr:\n{}",
                    self.log_text()
                );
            }
            if start.elapsed() > DEADLINE {
                panic!(
                    "hookwatch did not log \"listening on http://...\" within {DEADLINE:?}; stderr:\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.addr = addr;
        self.base_url = format!("http://{addr}");
    }

    /// Everything the daemon (all of its runs) wrote to stderr.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends a signal to the running process.
    pub fn signal(&self, signal: i32) {
        let pid = self.pid();
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    pub fn sigint(&self) {
        self.signal(libc::SIGINT);
    }

    /// SIGKILL, then reap the process.
    pub async fn sigkill(&mut self) {
        self.signal(libc::SIGKILL);
        let status = self.wait_exit(Duration::from_secs(10)).await;
        assert!(!status.success(), "SIGKILLed daemon reported success");
    }

    /// Waits for the process to exit by itself; panics after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            let child = self.child.as_mut().expect("daemon is running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            if start.elapsed() > timeout {
                panic!(
                    "hookwatch did not exit within {timeout:?}; stderr:\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the daemon again on the same config and store (the previous process
    /// must have exited). The port may change.
    pub async fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            if child.try_wait().expect("try_wait").is_none() {
                panic!("restart() while the previous daemon is still running");
            }
        }
        self.spawn().await;
    }

    // ----- HTTP -----

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// A request with the configured bearer token, if any.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// A request with no Authorization header at all.
    pub fn request_without_token(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// Sends and returns status and JSON body (panics if the body is not JSON).
    pub async fn send(&self, builder: reqwest::RequestBuilder) -> (u16, Value) {
        send_json(builder).await
    }

    /// GET that must answer 200 with JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.send(self.request(reqwest::Method::GET, path)).await;
        assert_eq!(
            status, 200,
            "GET {path}: expected 200, got {status}: {body}"
        );
        body
    }

    /// POST /v1/destinations/{dest}/events with a JSON body.
    pub async fn post_event(&self, dest: &str, body: &str) -> (u16, Value) {
        self.send(
            self.request(
                reqwest::Method::POST,
                &format!("/v1/destinations/{dest}/events"),
            )
            .header("content-type", "application/json")
            .body(body.to_string()),
        )
        .await
    }

    /// Ingests a JSON body for `dest`; asserts 202 and returns the event id.
    pub async fn ingest(&self, dest: &str, body: &str) -> String {
        let (status, reply) = self.post_event(dest, body).await;
        assert_eq!(
            status, 202,
            "POST /v1/destinations/{dest}/events: expected 202, got {status}: {reply}"
        );
        event_id_of(&reply)
    }

    /// GET /v1/events/{id}.
    pub async fn event(&self, id: &str) -> Value {
        self.get_json(&format!("/v1/events/{id}")).await
    }

    /// Waits until the event is in `state`; returns its detail.
    pub async fn wait_event_state(&self, id: &str, state: &str) -> Value {
        wait_for(
            DEADLINE,
            &format!("event {id} to be {state}"),
            || async move {
                let event = self.event(id).await;
                if event["state"] == state {
                    Ok(event)
                } else {
                    Err(event.to_string())
                }
            },
        )
        .await
    }

    /// GET /v1/destinations/{id}.
    pub async fn destination(&self, id: &str) -> Value {
        self.get_json(&format!("/v1/destinations/{id}")).await
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
            let tail: Vec<&String> = log.iter().rev().take(60).collect();
            eprintln!("----- hookwatch stderr (last {} lines) -----", tail.len());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Sends a request; returns status and the body parsed as JSON.
pub async fn send_json(builder: reqwest::RequestBuilder) -> (u16, Value) {
    let response = builder.send().await.expect("HTTP request to hookwatch");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("read response body");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "response ({status}) is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, body)
}

/// The `id` of an ingest reply, checked to look like a ULID.
pub fn event_id_of(reply: &Value) -> String {
    let id = reply["id"]
        .as_str()
        .unwrap_or_else(|| panic!("reply has no string \"id\": {reply}"))
        .to_string();
    assert_ulid(&id);
    id
}

/// Asserts `id` is a 26-character Crockford base32 ULID.
pub fn assert_ulid(id: &str) {
    const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    assert_eq!(
        id.len(),
        26,
        "event id {id:?} should be a 26-character ULID"
    );
    assert!(
        id.to_ascii_uppercase()
            .chars()
            .all(|c| CROCKFORD.contains(c)),
        "event id {id:?} should be Crockford base32 (a ULID)"
    );
}

/// Sums the samples of a Prometheus metric whose line starts with `name` followed
/// by `{` or a space (comments ignored).
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let value: f64 = line
            .split_whitespace()
            .last()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("cannot parse the value of metric line {line:?}"));
        *found.get_or_insert(0.0) += value;
    }
    found
}

// ---------------------------------------------------------------------------
// The receiver
// ---------------------------------------------------------------------------

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    pub fn webhook_id(&self) -> String {
        self.header("webhook-id").unwrap_or_default()
    }

    pub fn attempt(&self) -> Option<u32> {
        self.header("hookwatch-attempt")
            .and_then(|v| v.parse().ok())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How to answer one request.
#[derive(Clone, Copy, Debug)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            delay: Duration::ZERO,
        }
    }

    pub fn delayed(status: u16, delay: Duration) -> Reply {
        Reply { status, delay }
    }
}

struct ReceiverState {
    hits: Mutex<Vec<Hit>>,
    /// Answers for the next requests, in arrival order; then `default`.
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
}

/// An HTTP server on 127.0.0.1:0 that records every request and answers from a
/// script, then with a default reply.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

async fn receive(State(state): State<Arc<ReceiverState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let hit = Hit {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers: parts.headers,
        body,
        at: Instant::now(),
    };
    state.hits.lock().unwrap().push(hit);
    let reply = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| *state.default.lock().unwrap());
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).expect("valid status code");
    (status, format!("receiver says {}", reply.status)).into_response()
}

impl Receiver {
    /// A receiver that answers 200 to everything.
    pub async fn start() -> Receiver {
        Receiver::start_with(Reply::status(200)).await
    }

    pub async fn start_with(default: Reply) -> Receiver {
        let state = Arc::new(ReceiverState {
            hits: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(default),
        });
        let app = Router::new().fallback(receive).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, state }
    }

    /// The URL to configure as a destination (path `/hook`).
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Queues answers for the next requests.
    pub fn push_replies(&self, replies: &[Reply]) {
        self.state
            .script
            .lock()
            .unwrap()
            .extend(replies.iter().copied());
    }

    pub fn push_statuses(&self, statuses: &[u16]) {
        let replies: Vec<Reply> = statuses.iter().map(|s| Reply::status(*s)).collect();
        self.push_replies(&replies);
    }

    pub fn set_default(&self, reply: Reply) {
        *self.state.default.lock().unwrap() = reply;
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.state.hits.lock().unwrap().len()
    }

    pub fn hits_for(&self, webhook_id: &str) -> Vec<Hit> {
        self.state
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.webhook_id() == webhook_id)
            .cloned()
            .collect()
    }

    /// The distinct `webhook-id`s received.
    pub fn distinct_ids(&self) -> HashSet<String> {
        self.state
            .hits
            .lock()
            .unwrap()
            .iter()
            .map(Hit::webhook_id)
            .collect()
    }

    /// How many requests arrived per `webhook-id`.
    pub fn counts_by_id(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for hit in self.state.hits.lock().unwrap().iter() {
            *counts.entry(hit.webhook_id()).or_insert(0) += 1;
        }
        counts
    }

    /// Waits until at least `n` requests have arrived; returns them all.
    pub async fn wait_for_hits(&self, n: usize) -> Vec<Hit> {
        wait_until(DEADLINE, &format!("{n} request(s) at the receiver"), || {
            self.count() >= n
        })
        .await;
        self.hits()
    }
}

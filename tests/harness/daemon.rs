//! The real binary as a subprocess: `hookwatch --daemon` on a rendered config
//! in a temporary directory, its stderr collected, killed and reaped on drop.

use super::config::TestConfig;
use super::wait::{wait_for, DEADLINE};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
            .env_remove("HOOKWATCH_STORE_URL")
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

    /// `PATCH /v1/destinations/{destination}` with `body`, which must succeed
    /// (a live edit, a pause, an enable).
    pub async fn patch_destination(&self, destination: &str, body: &Value) {
        let (status, reply) = self
            .send(
                self.request(
                    reqwest::Method::PATCH,
                    &format!("/v1/destinations/{destination}"),
                )
                .header("content-type", "application/json")
                .body(body.to_string()),
            )
            .await;
        assert!(
            (200..300).contains(&status),
            "PATCH {destination} {body}: {status} {reply}"
        );
    }

    /// GET that must answer 200; its body as text (`/metrics`).
    pub async fn get_text(&self, path: &str) -> String {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
        response.text().await.expect("a text body")
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
        wait_for(&format!("event {id} to be {state}"), || async move {
            let event = self.event(id).await;
            if event["state"] == state {
                Ok(event)
            } else {
                Err(event.to_string())
            }
        })
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

/// A loopback port that was free a moment ago, so a daemon can be started (and
/// restarted) on an address the test knows in advance.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How a `hookwatch` run that was expected to end, ended.
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The temporary directory the config was written to (the redb file
    /// would be there too).
    pub dir: tempfile::TempDir,
}

/// Writes `config` to a fresh temporary directory and runs
/// `hookwatch ARGS --config FILE` with its environment (and none of the
/// caller's `HOOKWATCH_*`), waiting up to [`DEADLINE`] for it to exit: for
/// starts and commands that must fail, or finish, by themselves.
pub async fn run_to_exit(config: &TestConfig, args: &[&str]) -> Finished {
    let dir = tempfile::tempdir().expect("create temp dir");
    let config_path = dir.path().join("hookwatch.toml");
    std::fs::write(
        &config_path,
        config.render(&dir.path().join("hookwatch.redb")),
    )
    .expect("write config");
    let child = Command::new(env!("CARGO_BIN_EXE_hookwatch"))
        .args(args)
        .arg("--config")
        .arg(&config_path)
        .env_remove("HOOKWATCH_TOKEN")
        .env_remove("HOOKWATCH_STORE_URL")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        // The default store path, were one used, is inside `dir`.
        .env("XDG_DATA_HOME", dir.path())
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hookwatch");
    let pid = child.id() as i32;
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match tokio::time::timeout(DEADLINE, finished).await {
        Ok(output) => output
            .expect("the waiting thread answers")
            .expect("wait for hookwatch"),
        Err(_) => {
            // SAFETY: kill(2) on the child we spawned, not yet reaped (its
            // waiting thread has not returned).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("hookwatch {args:?} did not exit within {DEADLINE:?}");
        }
    };
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        dir,
    }
}

//! End to end: the real binary's TUI in tmux. Events go in through the HTTP API,
//! keys are pressed with `tmux send-keys`, the screen is read with
//! `tmux capture-pane`, and the effect of a bulk retry and a mute pressed in the
//! UI is checked through the API. Skipped (with a note) when tmux is missing.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A tmux session, killed on drop whatever happens.
struct Session {
    name: String,
}

impl Session {
    fn start(command: &str) -> Session {
        let name = format!(
            "hookwatch-tui-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-x", "120", "-y", "40", "-s", &name])
            .arg(command)
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session failed");
        Session { name }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.name])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    async fn wait_screen(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if cond(&screen) {
                return screen;
            }
            if start.elapsed() > DEADLINE {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .output();
    }
}

/// Polls `check` until it gives `Some`; panics naming `what` after the deadline.
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        let seen = match check().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        if start.elapsed() > DEADLINE {
            panic!("timed out waiting for {what}; last seen: {seen}");
        }
        tokio::time::sleep(POLL).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A receiver that always answers 500, so events stay `retrying`.
async fn failing_receiver() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "{\"error\":\"down\"}",
        )
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn write_config(dir: &Path, port: u16, receiver: std::net::SocketAddr) -> std::path::PathBuf {
    let path = dir.join("hookwatch.toml");
    let store = dir.join("store.redb");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"

[store]
path = "{}"

[[destinations]]
id = "orders"
url = "http://{receiver}/hook"
topics = ["order.*"]
timeout = "5s"

[destinations.retry]
delay = "1h"
max_retries = 5
"#,
            store.display()
        ),
    )
    .unwrap();
    path
}

async fn json(response: reqwest::Response) -> serde_json::Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

async fn event(client: &reqwest::Client, base: &str, id: &str) -> serde_json::Value {
    json(
        client
            .get(format!("{base}/v1/events/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_retry_and_mute_pressed_in_the_tui_take_effect() {
    if !tmux_available() {
        eprintln!("note: tmux is not on PATH; skipping the TUI end-to-end test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let receiver = failing_receiver().await;
    let port = free_port();
    let config = write_config(dir.path(), port, receiver);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let command = format!(
        "{} --config '{}' 2>'{}'",
        env!("CARGO_BIN_EXE_hookwatch"),
        config.display(),
        dir.path().join("stderr.log").display()
    );
    let session = Session::start(&command);

    // The UI is up, with the API listening beside it.
    session
        .wait_screen("the destinations pane", |s| {
            s.contains("Destinations") && s.contains("orders")
        })
        .await;
    wait_for("the API", || async {
        match client.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Three events, each failing once: retrying, next attempt in an hour.
    let mut ids = Vec::new();
    for n in 0..3 {
        let response = json(
            client
                .post(format!("{base}/v1/destinations/orders/events"))
                .header("content-type", "application/json")
                .body(format!("{{\"order\": {n}}}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        ids.push(response["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        wait_for("the first attempt", || async {
            let e = event(&client, &base, id).await;
            if e["state"] == "retrying" && e["attempt_count"] == 1 {
                Ok(())
            } else {
                Err(e.to_string())
            }
        })
        .await;
    }
    session
        .wait_screen("three retrying rows", |s| {
            s.matches("retrying").count() >= 3
        })
        .await;

    // R: the confirmation states the count; y starts the job; its gauge shows.
    session.keys(&["R"]);
    session
        .wait_screen("the bulk confirmation", |s| {
            s.contains("Retry 3 events now?")
        })
        .await;
    session.keys(&["y"]);
    for id in &ids {
        wait_for("a bulk attempt on every event", || async {
            let e = event(&client, &base, id).await;
            let bulk = e["attempts"]
                .as_array()
                .is_some_and(|a| a.iter().any(|a| a["trigger"] == "bulk"));
            if bulk && e["attempt_count"] == 2 {
                Ok(())
            } else {
                Err(e.to_string())
            }
        })
        .await;
    }
    session
        .wait_screen("the completed gauge", |s| {
            s.contains("Bulk retry") && s.contains("completed: 3 of 3")
        })
        .await;
    session.keys(&["Escape"]);
    session
        .wait_screen("the gauge closed", |s| !s.contains("Bulk retry"))
        .await;

    // c on the selected (newest) event mutes it.
    session.keys(&["c"]);
    wait_for("the newest event cancelled", || async {
        let e = event(&client, &base, &ids[2]).await;
        if e["state"] == "cancelled" {
            Ok(())
        } else {
            Err(e.to_string())
        }
    })
    .await;
    session
        .wait_screen("the cancelled row", |s| s.contains("cancelled"))
        .await;
    for id in &ids[..2] {
        assert_eq!(event(&client, &base, id).await["state"], "retrying");
    }

    // q quits and the process exits.
    session.keys(&["q"]);
    let start = Instant::now();
    while session.alive() {
        assert!(start.elapsed() < DEADLINE, "hookwatch did not exit on q");
        tokio::time::sleep(POLL).await;
    }
}

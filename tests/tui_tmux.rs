//! End to end: the real binary's TUI in tmux. Events go in through the HTTP API,
//! keys are pressed with `tmux send-keys`, the screen is read with
//! `tmux capture-pane`, and the effect of a bulk retry and a mute pressed in the
//! UI is checked through the API. When tmux is missing it is skipped with a
//! note, except under CI (`CI` set), where that is a failure: CI installs tmux,
//! so a missing one means the test would silently stop running.

mod harness;

use harness::*;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(dir: &Path, port: u16, receiver_url: &str) -> std::path::PathBuf {
    let path = dir.join("hookwatch.toml");
    let config = TestConfig::new()
        .listen(&format!("127.0.0.1:{port}"))
        .destination(
            Dest::new("orders", receiver_url)
                .topics(&["order.*"])
                .timeout("5s")
                .retry(Retry::new().delay("1h").max_retries(5)),
        );
    std::fs::write(&path, config.render(&dir.join("store.redb"))).unwrap();
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
        if std::env::var_os("CI").is_some() {
            panic!(
                "tmux is not on PATH under CI; .ci/run installs it, so this must not be skipped"
            );
        }
        eprintln!("note: tmux is not on PATH; skipping the TUI end-to-end test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Always 500, so events stay `retrying`.
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let port = free_port();
    let config = write_config(dir.path(), port, &receiver.url());
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

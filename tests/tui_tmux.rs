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

    // The selection stays on the event it was on as newer ones arrive above
    // it: g goes to the top (the newest), and c mutes it.
    session.keys(&["g", "c"]);
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

/// Skips (or, under CI, fails) a test that needs tmux when it is missing.
fn tmux_or_skip() -> bool {
    if tmux_available() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("tmux is not on PATH under CI; .ci/run installs it, so this must not be skipped");
    }
    eprintln!("note: tmux is not on PATH; skipping the TUI end-to-end test");
    false
}

const TOKEN: &str = "attach-s3cret";

/// A daemon on a fixed port (so a restart comes back where the TUI looks),
/// with a token, delivering `orders` to a receiver that always fails.
async fn daemon_for_attaching(receiver: &Receiver) -> Daemon {
    let config = TestConfig::new()
        .listen(&format!("127.0.0.1:{}", free_port()))
        .token(TOKEN)
        .destination(
            Dest::new("orders", &receiver.url())
                .topics(&["order.*"])
                .timeout("5s")
                .retry(Retry::new().delay("1h").max_retries(5)),
        );
    Daemon::start(config).await
}

fn holder_note_path(daemon: &Daemon) -> std::path::PathBuf {
    let mut name = daemon.store_path.as_os_str().to_owned();
    name.push(".pid");
    name.into()
}

/// The TUI command, with no token or URL from the test's own environment
/// (`vars`, `NAME=VALUE` words, are set instead).
fn tui_command(vars: &str, args: &str, dir: &Path) -> String {
    format!(
        "env -u HOOKWATCH_TOKEN -u HOOKWATCH_URL {vars} {} {args} 2>'{}'",
        env!("CARGO_BIN_EXE_hookwatch"),
        dir.join("tui-stderr.log").display()
    )
}

async fn wait_exited(session: &Session) {
    let start = Instant::now();
    while session.alive() {
        assert!(start.elapsed() < DEADLINE, "hookwatch did not exit on q");
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tui_attaches_to_the_daemon_holding_its_store_and_survives_its_restart() {
    if !tmux_or_skip() {
        return;
    }
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let mut daemon = daemon_for_attaching(&receiver).await;
    let id = daemon.ingest("orders", "{\"order\": 1}").await;
    daemon.wait_event_state(&id, "retrying").await;
    let note = std::fs::read_to_string(holder_note_path(&daemon)).unwrap();
    assert_eq!(
        note,
        format!("pid={}\nurl={}\n", daemon.pid(), daemon.base_url)
    );

    // Same config, no --url: the store is held, so the TUI attaches.
    let session = Session::start(&tui_command(
        "",
        &format!("--config '{}'", daemon.config_path.display()),
        daemon.dir(),
    ));
    let attached = format!("attached to pid {} at {}", daemon.pid(), daemon.base_url);
    let screen = session
        .wait_screen("the attached header and the daemon's event", |s| {
            s.contains(&attached) && s.contains("orders") && s.contains("retrying")
        })
        .await;
    assert!(!screen.contains(TOKEN), "the token is on screen:\n{screen}");

    // c on the selected event mutes it, in the daemon.
    session.keys(&["c"]);
    daemon.wait_event_state(&id, "cancelled").await;
    session
        .wait_screen("the cancelled row", |s| s.contains("cancelled"))
        .await;

    // The daemon stops cleanly: its note goes, the TUI keeps running and says so.
    daemon.sigterm();
    assert!(daemon.wait_exit(DEADLINE).await.success());
    assert!(
        !holder_note_path(&daemon).exists(),
        "note left on a clean exit"
    );
    session
        .wait_screen("the reconnecting header", |s| {
            s.contains("reconnecting") && s.contains("last contact")
        })
        .await;
    assert!(session.alive());

    // Back on the same port: the TUI resumes and sees new events.
    daemon.restart().await;
    let second = daemon.ingest("orders", "{\"order\": 2}").await;
    daemon.wait_event_state(&second, "retrying").await;
    session
        .wait_screen("the resumed header and the new event", |s| {
            !s.contains("reconnecting") && s.contains("attached to pid") && s.contains("retrying")
        })
        .await;

    session.keys(&["q"]);
    wait_exited(&session).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tui_attaches_to_an_explicit_url() {
    if !tmux_or_skip() {
        return;
    }
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let daemon = daemon_for_attaching(&receiver).await;
    let id = daemon.ingest("orders", "{\"order\": 1}").await;
    daemon.wait_event_state(&id, "retrying").await;

    let session = Session::start(&tui_command(
        "",
        &format!("--url {} --token {TOKEN}", daemon.base_url),
        daemon.dir(),
    ));
    let attached = format!("attached to {}", daemon.base_url);
    session
        .wait_screen("the attached header and the daemon's event", |s| {
            s.contains(&attached) && s.contains("orders") && s.contains("retrying")
        })
        .await;
    session.keys(&["c"]);
    daemon.wait_event_state(&id, "cancelled").await;
    session.keys(&["q"]);
    wait_exited(&session).await;

    // --read-only holds attached too; the URL may come from HOOKWATCH_URL.
    let read_only = Session::start(&tui_command(
        &format!("HOOKWATCH_URL={}", daemon.base_url),
        &format!("--read-only --token {TOKEN}"),
        daemon.dir(),
    ));
    read_only
        .wait_screen("the read-only attached header", |s| {
            s.contains("READ-ONLY") && s.contains(&attached) && s.contains("cancelled")
        })
        .await;
    read_only.keys(&["q"]);
    wait_exited(&read_only).await;
}

/// Runs the binary without a terminal; attaching fails before the TUI starts.
fn run_without_terminal(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hookwatch"))
        .args(args)
        .env_remove("HOOKWATCH_TOKEN")
        .env_remove("HOOKWATCH_URL")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run hookwatch")
}

#[tokio::test(flavor = "multi_thread")]
async fn attaching_that_cannot_work_fails_saying_what_was_tried() {
    // Nothing listens at the URL: exit 2 at once, naming it.
    let url = format!("http://127.0.0.1:{}", free_port());
    let output = run_without_terminal(&["--url", &url]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(
        stderr,
        format!("hookwatch: cannot reach hookwatch at {url}: connection refused\n")
    );

    // A note in the old format (no URL) beside a held store: the error says so.
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let daemon = daemon_for_attaching(&receiver).await;
    std::fs::write(holder_note_path(&daemon), format!("{}\n", daemon.pid())).unwrap();
    let config = daemon.config_path.display().to_string();
    let output = run_without_terminal(&["--config", &config]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "already open in another process (pid {})",
            daemon.pid()
        )) && stderr.contains("does not say where its API listens"),
        "{stderr}"
    );

    // The daemon's URL with a wrong token: refused, and the error says where.
    std::fs::write(
        holder_note_path(&daemon),
        format!("pid={}\nurl={}\n", daemon.pid(), daemon.base_url),
    )
    .unwrap();
    let output = run_without_terminal(&["--config", &config, "--token", "wrong"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("attaching to it at {} failed", daemon.base_url)),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn quitting_while_attempts_hang_says_what_the_stop_waits_for() {
    if !tmux_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Answers only after a minute: attempts hang until their 5 s timeout.
    let receiver =
        Receiver::start_with(Reply::status(200).after(std::time::Duration::from_secs(60))).await;
    let port = free_port();
    let config = write_config(dir.path(), port, &receiver.url());
    let base = format!("http://127.0.0.1:{port}");
    let session = Session::start(&tui_command(
        "",
        &format!("--config '{}'", config.display()),
        dir.path(),
    ));
    session
        .wait_screen("the destinations pane", |s| {
            s.contains("Destinations") && s.contains("orders")
        })
        .await;
    let client = reqwest::Client::new();
    for n in 0..2 {
        let response = client
            .post(format!("{base}/v1/destinations/orders/events"))
            .header("content-type", "application/json")
            .body(format!("{{\"order\": {n}}}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
    }
    receiver.wait_for_hits(2).await;

    session.keys(&["q"]);
    let screen = session
        .wait_screen("the waiting line", |s| {
            s.contains("attempts to finish (up to 10 s)")
                || s.contains("attempt to finish (up to 10 s)")
        })
        .await;
    let waiting: usize = screen
        .split("waiting for ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in the waiting line:\n{screen}"));
    assert!(waiting >= 1, "{screen}");
    // The attempts time out (5 s), and the process ends.
    wait_exited(&session).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn n_in_the_tui_creates_a_destination_the_api_then_serves() {
    if !tmux_or_skip() {
        return;
    }
    let receiver = Receiver::start_with(Reply::status(200)).await;
    let daemon = daemon_for_attaching(&receiver).await;
    let session = Session::start(&tui_command(
        "",
        &format!("--config '{}'", daemon.config_path.display()),
        daemon.dir(),
    ));
    session
        .wait_screen("the attached TUI with its destination", |s| {
            s.contains("attached to pid") && s.contains("orders")
        })
        .await;

    // Pane 1, n, then the form: id, url, topics, and (five fields on) labels.
    session.keys(&["1", "n"]);
    session
        .wait_screen("the new destination form", |s| {
            s.contains("New destination")
        })
        .await;
    session.keys(&["-l", "customer-00042"]);
    session.keys(&["Tab"]);
    session.keys(&["-l", &format!("{}/customer-42", receiver.url())]);
    session.keys(&["Tab"]);
    session.keys(&["-l", "order.*"]);
    for _ in 0..5 {
        session.keys(&["Tab"]);
    }
    session.keys(&["-l", "tenant=acme"]);
    session
        .wait_screen("the typed labels, the form valid", |s| {
            s.contains("tenant=acme") && !s.contains('✗')
        })
        .await;
    session.keys(&["Enter"]);

    // The daemon has it, as typed.
    let created = wait_for("the created destination through the API", || async {
        let (status, body) = daemon
            .send(daemon.request(reqwest::Method::GET, "/v1/destinations/customer-00042"))
            .await;
        if status == 200 {
            Ok(body)
        } else {
            Err(format!("{status}: {body}"))
        }
    })
    .await;
    assert_eq!(created["source"], "api");
    assert_eq!(created["labels"]["tenant"], "acme");
    assert_eq!(created["topics"], serde_json::json!(["order.*"]));
    assert_eq!(
        created["url"],
        format!("{}/customer-42", receiver.url()).as_str()
    );
    // And the TUI shows it in pane 1 once the form has closed.
    session
        .wait_screen("the new destination in pane 1", |s| {
            !s.contains("New destination") && s.contains("customer-00042")
        })
        .await;

    session.keys(&["q"]);
    wait_exited(&session).await;
}

/// A destination whose receiver answers 404, under `on_client_error =
/// "disable"`: its first event disables it, and a notice says so.
fn disabling_destination(receiver: &Receiver) -> Dest {
    Dest::new("orders", &receiver.url())
        .topics(&["order.*"])
        .timeout("5s")
        .retry(
            Retry::new()
                .delay("1h")
                .max_retries(5)
                .on_client_error("disable"),
        )
}

/// The notices as `GET /v1/notices` lists them, with `token` if any.
async fn listed_notices(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
) -> Vec<serde_json::Value> {
    let mut request = client.get(format!("{base}/v1/notices"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let page = json(request.send().await.unwrap()).await;
    page["notices"].as_array().cloned().unwrap_or_default()
}

/// The header counts the disabling notice, `!` lists it, `a` acknowledges it
/// (checked through the API), and the header's count goes.
async fn acknowledge_the_disabling_notice_in_the_tui(
    session: &Session,
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
) {
    let notice = wait_for("the destination_disabled notice", || async {
        listed_notices(client, base, token)
            .await
            .into_iter()
            .find(|n| n["type"] == "destination_disabled" && n["destination"] == "orders")
            .ok_or_else(|| "not yet".to_string())
    })
    .await;
    assert!(notice["acked_at"].is_null(), "{notice}");
    session
        .wait_screen("the header's notice count", |s| s.contains("! 1 notice"))
        .await;
    session.keys(&["!"]);
    session
        .wait_screen("the notices popup with the disabling notice", |s| {
            s.contains("Notices") && s.contains("disabled") && s.contains("not acknowledged")
        })
        .await;
    session.keys(&["a"]);
    wait_for("the notice acknowledged through the API", || async {
        let listed = listed_notices(client, base, token).await;
        let found = listed.iter().find(|n| n["id"] == notice["id"]).cloned();
        match found {
            Some(n) if !n["acked_at"].is_null() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    session
        .wait_screen("the acknowledged row and no count in the header", |s| {
            s.contains("acknowledged")
                && !s.contains("not acknowledged")
                && !s.contains("! 1 notice")
        })
        .await;
    session.keys(&["Escape"]);
    session
        .wait_screen("the popup closed", |s| !s.contains("Notices"))
        .await;
    session.keys(&["q"]);
    wait_exited(session).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabling_404_is_a_notice_the_tui_counts_lists_and_acknowledges() {
    if !tmux_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start_with(Reply::status(404)).await;
    let port = free_port();
    let config_path = dir.path().join("hookwatch.toml");
    let config = TestConfig::new()
        .listen(&format!("127.0.0.1:{port}"))
        .destination(disabling_destination(&receiver));
    std::fs::write(&config_path, config.render(&dir.path().join("store.redb"))).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let session = Session::start(&tui_command(
        "",
        &format!("--config '{}'", config_path.display()),
        dir.path(),
    ));
    session
        .wait_screen("the destinations pane", |s| s.contains("orders"))
        .await;
    wait_for("the API", || async {
        match client.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let reply = client
        .post(format!("{base}/v1/destinations/orders/events"))
        .header("content-type", "application/json")
        .body("{\"order\": 1}")
        .send()
        .await
        .unwrap();
    assert!(reply.status().is_success());
    acknowledge_the_disabling_notice_in_the_tui(&session, &client, &base, None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attached_tui_greets_with_the_notices_and_acknowledges_through_the_daemon() {
    if !tmux_or_skip() {
        return;
    }
    let receiver = Receiver::start_with(Reply::status(404)).await;
    let config = TestConfig::new()
        .listen(&format!("127.0.0.1:{}", free_port()))
        .token(TOKEN)
        .destination(disabling_destination(&receiver));
    let daemon = Daemon::start(config).await;
    daemon.ingest("orders", "{\"order\": 1}").await;
    let client = reqwest::Client::new();
    // The notice happened before the TUI opened: it says so on start.
    wait_for("the notice before the TUI opens", || async {
        let listed = listed_notices(&client, &daemon.base_url, Some(TOKEN)).await;
        if listed.iter().any(|n| n["type"] == "destination_disabled") {
            Ok(())
        } else {
            Err(format!("{listed:?}"))
        }
    })
    .await;
    let session = Session::start(&tui_command(
        "",
        &format!("--url {} --token {TOKEN}", daemon.base_url),
        daemon.dir(),
    ));
    session
        .wait_screen("the greeting", |s| {
            s.contains("1 unacknowledged notice since you last looked — press ! to see them")
        })
        .await;
    acknowledge_the_disabling_notice_in_the_tui(&session, &client, &daemon.base_url, Some(TOKEN))
        .await;
}

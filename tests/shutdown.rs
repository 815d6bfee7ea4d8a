//! Stopping and sharing a store: SIGTERM under load loses nothing and exits in
//! time; a second process on the same store is refused with a message that says
//! who holds it.

mod harness;

use harness::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test]
async fn sigterm_under_load_exits_cleanly_in_time_and_loses_nothing() {
    let receiver = Receiver::start_with(Reply::status(200).after(Duration::from_millis(40))).await;
    let config = TestConfig::new().destination(Dest::new("slow", &receiver.url()).concurrency(4));
    let mut daemon = Daemon::start(config).await;
    let url = daemon.url("/v1/destinations/slow/events");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut posters = Vec::new();
    for poster in 0..8 {
        let acked = acked.clone();
        let url = url.clone();
        posters.push(tokio::spawn(async move {
            let client = http_client();
            for n in 0..100 {
                let reply = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(format!("{{\"poster\":{poster},\"n\":{n}}}"))
                    .send()
                    .await;
                match reply {
                    Ok(response) if response.status() == 202 => {
                        let body: serde_json::Value = response.json_value().await;
                        acked
                            .lock()
                            .unwrap()
                            .push(body["id"].as_str().unwrap().to_string());
                    }
                    // Refused or cut off by the shutdown: not acknowledged.
                    _ => return,
                }
            }
        }));
    }
    wait_until("100 acknowledged events", || {
        acked.lock().unwrap().len() >= 100
    })
    .await;
    let stopping = Instant::now();
    daemon.sigterm();
    let status = daemon.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "SIGTERM must exit 0, got {status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(12),
        "took {:?}, past the 10 s grace",
        stopping.elapsed()
    );
    for poster in posters {
        poster.await.unwrap();
    }

    daemon.restart().await;
    let acked = acked.lock().unwrap().clone();
    wait_until_within(
        Duration::from_secs(60),
        "every acknowledged event delivered",
        || receiver.missing(&acked).is_empty(),
    )
    .await;
}

#[tokio::test]
async fn a_second_process_on_the_same_store_is_refused_naming_the_holder() {
    let receiver = Receiver::start().await;
    let config = TestConfig::new().destination(Dest::new("a", &receiver.url()));
    let first = Daemon::start(config).await;
    let config_path = first.config_path.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hookwatch"))
            .args(["--daemon", "--config"])
            .arg(config_path)
            .output()
    });
    let output = tokio::time::timeout(Duration::from_secs(20), output)
        .await
        .expect("the second process must exit by itself")
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already open"), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.pid())), "{stderr}");
}

#[tokio::test]
async fn a_file_that_is_not_a_store_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("precious.txt");
    std::fs::write(&store, "not a database").unwrap();
    let config = dir.path().join("hookwatch.toml");
    std::fs::write(&config, TestConfig::new().render(&store)).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hookwatch"))
        .args(["--daemon", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a hookwatch store"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&store).unwrap(), "not a database");
}

/// The engine on a manual clock over a store in `dir`, with one destination.
fn start_engine(dir: &std::path::Path, receiver: &Receiver) -> hookwatch::engine::Engine {
    let config = TestConfig::new()
        .destination(Dest::new("a", &receiver.url()))
        .parse(&dir.join("store.redb"));
    hookwatch::engine::Engine::start(&config, hookwatch::clock::ManualClock::new(epoch())).unwrap()
}

async fn ingest_one(engine: &hookwatch::engine::Engine) -> hookwatch::model::EventId {
    let request = hookwatch::engine::IngestRequest {
        topic: Some("test.event".into()),
        content_type: Some("application/json".into()),
        payload: bytes::Bytes::from_static(b"{}"),
        idempotency_key: None,
    };
    engine.ingest("a", request).await.unwrap().id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_once_every_task_is_joined_and_the_attempt_recorded() {
    let receiver = Receiver::start_with(Reply::status(200).after(Duration::from_millis(300))).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = start_engine(dir.path(), &receiver);
    // The dispatcher and housekeeping run on the engine's tracker.
    assert!(
        engine.tasks_running() >= 2,
        "{} tasks",
        engine.tasks_running()
    );
    let id = ingest_one(&engine).await;
    receiver.wait_for_hits(1).await;

    assert!(
        engine.shutdown(Duration::from_secs(10)).await,
        "every task ends within the grace"
    );
    assert_eq!(
        engine.tasks_running(),
        0,
        "shutdown returned with tasks left"
    );
    drop(engine);

    // The attempt that was in flight was recorded before the store closed.
    let reopened = start_engine(dir.path(), &receiver);
    let detail = reopened.get_event(id).unwrap();
    assert_eq!(detail.event.state, hookwatch::model::EventState::Delivered);
    assert_eq!(detail.attempts.len(), 1);
    assert!(reopened.shutdown(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_past_the_grace_for_a_late_attempt() {
    let receiver = Receiver::start_with(Reply::status(200).after(Duration::from_secs(2))).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = start_engine(dir.path(), &receiver);
    ingest_one(&engine).await;
    receiver.wait_for_hits(1).await;

    let stopping = Instant::now();
    assert!(
        !engine.shutdown(Duration::from_millis(100)).await,
        "the attempt cannot finish within 100 ms"
    );
    assert!(
        stopping.elapsed() < Duration::from_secs(1),
        "took {:?}",
        stopping.elapsed()
    );
    assert!(engine.tasks_running() >= 1, "the attempt still runs");
    // It ends by itself (its outcome is not recorded into the closed store, so
    // the event stays owed: see the SIGTERM test above for the redelivery).
    wait_until("the late attempt to end", || engine.tasks_running() == 0).await;
    assert_eq!(receiver.count(), 1, "no attempt started after the shutdown");
}

/// reqwest here has no `json` feature; read the body as JSON by hand.
trait JsonValue {
    async fn json_value(self) -> serde_json::Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> serde_json::Value {
        serde_json::from_str(&self.text().await.unwrap()).unwrap()
    }
}

//! Operator actions through the HTTP API, and the example configs.

mod harness;

use harness::*;
use hookwatch::clock::SystemClock;
use hookwatch::config::Config;
use hookwatch::daemon;
use serde_json::{json, Value};
use std::sync::Arc;

struct Api {
    base: String,
    client: reqwest::Client,
    _running: daemon::Running,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start(store: &TestStore, receiver_url: &str) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let config = store
            .config()
            .destination(
                Dest::new("orders", receiver_url)
                    .concurrency(2)
                    .header("Authorization", "Bearer customer-secret")
                    .header("X-Env", "test")
                    .retry(Retry::new().schedule("fixed").delay("1h")),
            )
            .parse(&dir.path().join("store.redb"));
        let running = daemon::start(&config, Arc::new(SystemClock)).await.unwrap();
        Api {
            base: format!("http://{}", running.local_addr),
            client: reqwest::Client::new(),
            _running: running,
            _dir: dir,
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn ingest(&self) -> String {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/v1/destinations/orders/events",
                Some(json!({"n": 1})),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn event(&self, id: &str) -> Value {
        self.send(reqwest::Method::GET, &format!("/v1/events/{id}"), None)
            .await
            .1
    }
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    retry_mute_requeue_and_bulk_over_http
);
async fn retry_mute_requeue_and_bulk_over_http(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let api = Api::start(&store, &receiver.url()).await;
    let id = api.ingest().await;
    wait_until_async("the first attempt", || async {
        api.event(&id).await["attempt_count"] == 1
    })
    .await;

    let (status, body) = api
        .send(reqwest::Method::PUT, &format!("/v1/events/{id}/mute"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "cancelled");
    assert_eq!(body["next_attempt_at"], Value::Null);

    let (status, body) = api
        .send(
            reqwest::Method::POST,
            &format!("/v1/events/{id}/requeue"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_until_async("the requeued attempt", || async {
        api.event(&id).await["attempt_count"] == 2
    })
    .await;
    assert_eq!(api.event(&id).await["state"], "retrying");
    // The history says who started the cycle again.
    assert_eq!(api.event(&id).await["attempts"][1]["trigger"], "requeue");

    receiver.set_default(Reply::status(200));
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            &format!("/v1/events/{id}/retry"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "delivered");
    assert_eq!(body["success"], true);
    assert_eq!(api.event(&id).await["attempts"][2]["trigger"], "manual");

    // Bulk over a filter, then read its progress to the end.
    receiver.set_default(Reply::status(500));
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(api.ingest().await);
    }
    for id in &ids {
        wait_until_async("first attempts", || async {
            api.event(id).await["state"] == "retrying"
        })
        .await;
    }
    receiver.set_default(Reply::status(200));
    let (status, job) = api
        .send(
            reqwest::Method::POST,
            "/v1/bulk/retry",
            Some(json!({"destination": "orders", "state": "retrying"})),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["total"], 5);
    let job_id = job["id"].as_str().unwrap().to_string();
    wait_until_async("the bulk job", || async {
        api.send(reqwest::Method::GET, &format!("/v1/bulk/{job_id}"), None)
            .await
            .1["state"]
            == "completed"
    })
    .await;
    let (_, progress) = api
        .send(reqwest::Method::GET, &format!("/v1/bulk/{job_id}"), None)
        .await;
    assert_eq!(progress["succeeded"], 5, "{progress}");
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            &format!("/v1/bulk/{job_id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = api.send(reqwest::Method::GET, "/v1/bulk/nope", None).await;
    assert_eq!(status, 404, "{body}");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    destination_patch_validates_each_field_and_masks_credentials
);
async fn destination_patch_validates_each_field_and_masks_credentials(store: TestStore) {
    let receiver = Receiver::start().await;
    let api = Api::start(&store, &receiver.url()).await;
    let (_, view) = api
        .send(reqwest::Method::GET, "/v1/destinations/orders", None)
        .await;
    assert_eq!(view["headers"]["Authorization"], "********", "{view}");
    assert_eq!(view["headers"]["X-Env"], "test");
    assert!(!view.to_string().contains("customer-secret"));

    let bad = [
        (json!({"concurrency": 0}), "concurrency"),
        (json!({"concurrency": "many"}), "concurrency"),
        (json!({"url": "ftp://x"}), "url"),
        (json!({"retry": {"max_retries": 51}}), "retry.max_retries"),
        (json!({"retry": {"delay": "soon"}}), "retry.delay"),
        (json!({"retry": {"retry_on": "5xx"}}), "retry.retry_on"),
        (json!({"colour": "red"}), "colour"),
    ];
    for (body, field) in bad {
        let (status, answer) = api
            .send(
                reqwest::Method::PATCH,
                "/v1/destinations/orders",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 422, "{body} → {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(
            message.starts_with(field),
            "{body}: expected the error to name {field}: {message}"
        );
    }
    let (status, answer) = api
        .client
        .patch(format!("{}/v1/destinations/orders", api.base))
        .body("{\"url\": ")
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 400);
    assert!(answer.text().await.unwrap().contains("not valid JSON"));

    let (status, view) = api
        .send(
            reqwest::Method::PATCH,
            "/v1/destinations/orders",
            Some(json!({"concurrency": 5, "paused": true, "retry": {"delay": "10m"}})),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["max_concurrency"], 5);
    assert_eq!(view["paused"], true);
    assert_eq!(view["health"], "paused");
    assert_eq!(view["retry"]["delay"], "10m");
    assert_eq!(
        view["retry"]["schedule"], "fixed",
        "other retry keys keep the file's values"
    );
}

#[test]
fn example_configs_in_assets_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                !config.destinations.is_empty(),
                "{} has destinations",
                path.display()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 3, "one example per retry style");
}

#[tokio::test]
async fn engine_errors_carry_a_code_from_which_the_variant_is_rebuilt() {
    use hookwatch::control::ControlError;
    let receiver = Receiver::start().await;
    let api = Api::start(&TestStore::Redb, &receiver.url()).await;
    let missing = "01J00000000000000000000000";
    let (status, body) = api
        .send(reqwest::Method::GET, &format!("/v1/events/{missing}"), None)
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "unknown_event", "{body}");
    let status = reqwest::StatusCode::from_u16(status).unwrap();
    match hookwatch::api::control_error_from(status, &body) {
        Some(ControlError::UnknownEvent { id }) => assert_eq!(id, missing),
        other => panic!("rebuilt {other:?} from {body}"),
    }

    let (status, body) = api
        .send(
            reqwest::Method::PATCH,
            "/v1/destinations/orders",
            Some(json!({"concurrency": 0})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let status = reqwest::StatusCode::from_u16(status).unwrap();
    match hookwatch::api::control_error_from(status, &body) {
        Some(ControlError::Invalid { field, .. }) => assert_eq!(field, "concurrency"),
        other => panic!("rebuilt {other:?} from {body}"),
    }

    // A request the API refuses by itself has a code but is no engine error.
    let (status, body) = api
        .send(reqwest::Method::GET, "/v1/events?limit=x", None)
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")));
    let status = reqwest::StatusCode::from_u16(status).unwrap();
    assert!(hookwatch::api::control_error_from(status, &body).is_none());
}

//! The event lifecycle over HTTP: actions an event's state does not allow are
//! refused with 409 and a sentence, reasons keep their strings, and live edits
//! of a destination can be undone.

mod harness;

use harness::{both_stores, wait_until_async, Daemon, Dest, Receiver, Reply, TestStore};
use serde_json::{json, Value};

async fn start(store: &TestStore, receiver: &Receiver) -> Daemon {
    Daemon::start(
        store.config().destination(
            Dest::new("orders", &receiver.url())
                .concurrency(2)
                .retry_fixed("1h", 5),
        ),
    )
    .await
}

async fn action(daemon: &Daemon, method: reqwest::Method, id: &str, verb: &str) -> (u16, Value) {
    daemon
        .send(daemon.request(method, &format!("/v1/events/{id}/{verb}")))
        .await
}

async fn patch(daemon: &Daemon, body: Value) -> (u16, Value) {
    daemon
        .send(
            daemon
                .request(reqwest::Method::PATCH, "/v1/destinations/orders")
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
}

async fn post_with_key(daemon: &Daemon, key: &str) -> (u16, Value) {
    daemon
        .send(
            daemon
                .request(reqwest::Method::POST, "/v1/destinations/orders/events")
                .header("content-type", "application/json")
                .header("Idempotency-Key", key)
                .body("{}"),
        )
        .await
}

both_stores!(
    #[tokio::test]
    muting_a_delivered_event_is_a_conflict_that_says_why
);
async fn muting_a_delivered_event_is_a_conflict_that_says_why(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = start(&store, &receiver).await;
    let id = daemon.ingest("orders", "{}").await;
    daemon.wait_event_state(&id, "delivered").await;

    let (status, body) = action(&daemon, reqwest::Method::PUT, &id, "mute").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"],
        format!("event {id} is delivered: only pending or retrying events can be muted")
    );
    let event = daemon.event(&id).await;
    assert_eq!(event["state"], "delivered");
    assert_eq!(event["reason"], Value::Null);
}

both_stores!(
    #[tokio::test]
    finished_events_refuse_mute_and_a_delivered_one_plain_requeue
);
async fn finished_events_refuse_mute_and_a_delivered_one_plain_requeue(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = start(&store, &receiver).await;
    let delivered = daemon.ingest("orders", "{}").await;
    daemon.wait_event_state(&delivered, "delivered").await;
    receiver.set_default(Reply::status(404));
    let failed = daemon.ingest("orders", "{}").await;
    daemon.wait_event_state(&failed, "failed").await;

    let refusals = [
        (
            &delivered,
            reqwest::Method::PUT,
            "mute",
            format!("event {delivered} is delivered: only pending or retrying events can be muted"),
        ),
        (
            &failed,
            reqwest::Method::PUT,
            "mute",
            format!("event {failed} is failed: only pending or retrying events can be muted"),
        ),
        (
            &delivered,
            reqwest::Method::POST,
            "requeue",
            format!("event {delivered} was delivered; requeue with resend=true to send it again"),
        ),
        (
            &delivered,
            reqwest::Method::POST,
            "requeue?resend=false",
            format!("event {delivered} was delivered; requeue with resend=true to send it again"),
        ),
    ];
    for (id, method, verb, message) in refusals {
        let before = daemon.event(id).await;
        let (status, body) = action(&daemon, method, id, verb).await;
        assert_eq!(status, 409, "{verb}: {body}");
        assert_eq!(body["code"], "refused", "{body}");
        assert_eq!(body["error"], message);
        assert_eq!(daemon.event(id).await, before, "{verb} left {id} alone");
    }
    let (status, body) = action(
        &daemon,
        reqwest::Method::POST,
        &delivered,
        "requeue?resend=yes",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "resend: \"yes\" is not true or false");
    assert_eq!(receiver.hits_for(&delivered).len(), 1, "never sent again");
}

both_stores!(
    #[tokio::test]
    a_resend_delivers_a_delivered_event_again_and_says_so
);
async fn a_resend_delivers_a_delivered_event_again_and_says_so(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = start(&store, &receiver).await;
    let id = daemon.ingest("orders", r#"{"n":1}"#).await;
    daemon.wait_event_state(&id, "delivered").await;

    let (status, body) = action(&daemon, reqwest::Method::POST, &id, "requeue?resend=true").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "pending", "{body}");
    assert_eq!(body["next_trigger"], "resend", "{body}");

    wait_until_async("the resend's attempt", || async {
        let event = daemon.event(&id).await;
        event["state"] == "delivered" && event["attempt_count"] == 2
    })
    .await;
    let hits = receiver.hits_for(&id);
    assert_eq!(hits.len(), 2, "the receiver got it a second time");
    assert_eq!(hits[0].body, hits[1].body);
    let event = daemon.event(&id).await;
    let attempts = event["attempts"].as_array().unwrap();
    let triggers: Vec<&str> = attempts
        .iter()
        .map(|a| a["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["initial", "resend"], "{event}");
    assert_eq!(attempts[1]["status"], 200);
    assert_eq!(event["reason"], Value::Null);
}

both_stores!(
    #[tokio::test]
    a_duplicate_cannot_be_retried_requeued_or_muted
);
async fn a_duplicate_cannot_be_retried_requeued_or_muted(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = start(&store, &receiver).await;
    let (status, first) = post_with_key(&daemon, "order-1").await;
    assert_eq!(status, 202, "{first}");
    let (status, duplicate) = post_with_key(&daemon, "order-1").await;
    assert_eq!(status, 200, "{duplicate}");
    assert_eq!(duplicate["state"], "skipped");
    let id = duplicate["id"].as_str().unwrap().to_string();
    daemon
        .wait_event_state(first["id"].as_str().unwrap(), "delivered")
        .await;

    for (method, verb, what) in [
        (reqwest::Method::POST, "retry", "retried"),
        (reqwest::Method::POST, "requeue", "requeued"),
        (reqwest::Method::PUT, "mute", "muted"),
    ] {
        let (status, body) = action(&daemon, method, &id, verb).await;
        assert_eq!(status, 409, "{verb}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("event {id} is skipped: only ")),
            "{error}"
        );
        assert!(error.ends_with(&format!("events can be {what}")), "{error}");
    }
    let event = daemon.event(&id).await;
    assert_eq!(event["state"], "skipped");
    assert_eq!(event["reason"], "duplicate");
    assert_eq!(event["attempt_count"], 0);
    assert_eq!(
        receiver.count(),
        1,
        "only the first event was ever delivered"
    );
}

both_stores!(
    #[tokio::test]
    an_idempotency_key_over_255_bytes_is_a_bad_request
);
async fn an_idempotency_key_over_255_bytes_is_a_bad_request(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = start(&store, &receiver).await;
    let (status, body) = post_with_key(&daemon, &"k".repeat(256)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "Idempotency-Key: must be 1 to 255 bytes, got 256"
    );
}

both_stores!(
    #[tokio::test]
    reasons_read_as_they_always_have
);
async fn reasons_read_as_they_always_have(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let daemon = start(&store, &receiver).await;
    let muted = daemon.ingest("orders", "{}").await;
    daemon.wait_event_state(&muted, "retrying").await;
    let (status, body) = action(&daemon, reqwest::Method::PUT, &muted, "mute").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reason"], "muted");
    // Muting again is accepted (PUT is idempotent) and changes nothing.
    let (status, again) = action(&daemon, reqwest::Method::PUT, &muted, "mute").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, body);

    receiver.set_default(Reply::status(404));
    let gone = daemon.ingest("orders", "{}").await;
    let event = daemon.wait_event_state(&gone, "failed").await;
    assert_eq!(event["reason"], "not_retriable");

    // Requeue clears the reason and starts over.
    receiver.set_default(Reply::status(200));
    let (status, body) = action(&daemon, reqwest::Method::POST, &gone, "requeue").await;
    assert_eq!(status, 200, "{body}");
    let event = daemon.wait_event_state(&gone, "delivered").await;
    assert_eq!(event["reason"], Value::Null);
}

both_stores!(
    #[tokio::test]
    a_finished_event_has_no_next_trigger
);
async fn a_finished_event_has_no_next_trigger(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let daemon = start(&store, &receiver).await;
    let owed = daemon.ingest("orders", "{}").await;
    let retrying = daemon.wait_event_state(&owed, "retrying").await;
    assert_eq!(retrying["next_trigger"], "automatic", "{retrying}");
    assert!(retrying["next_attempt_at"].is_string(), "{retrying}");
    let (status, muted) = action(&daemon, reqwest::Method::PUT, &owed, "mute").await;
    assert_eq!(status, 200, "{muted}");
    assert_eq!(muted["next_trigger"], Value::Null, "{muted}");
    assert_eq!(muted["next_attempt_at"], Value::Null, "{muted}");
    receiver.set_default(Reply::status(200));
    let delivered = daemon.ingest("orders", "{}").await;
    let event = daemon.wait_event_state(&delivered, "delivered").await;
    assert_eq!(event["next_trigger"], Value::Null, "{event}");
}

both_stores!(
    #[tokio::test]
    null_undoes_a_live_edit_and_overridden_lists_the_edits
);
async fn null_undoes_a_live_edit_and_overridden_lists_the_edits(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = start(&store, &receiver).await;
    let view = daemon.destination("orders").await;
    assert_eq!(view["overridden"], json!([]));

    let (status, view) = patch(
        &daemon,
        json!({"concurrency": 5, "retry": {"max_retries": 9}}),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["max_concurrency"], 5);
    assert_eq!(view["retry"]["max_retries"], 9);
    assert_eq!(view["overridden"], json!(["concurrency", "retry"]));

    let (status, view) = patch(&daemon, json!({"concurrency": null})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["max_concurrency"], 2, "the file's value applies again");
    assert_eq!(view["overridden"], json!(["retry"]));
    assert_eq!(daemon.destination("orders").await, view);

    let (status, view) = patch(&daemon, json!({"retry": null})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["retry"]["max_retries"], 5);
    assert_eq!(view["overridden"], json!([]));
}

both_stores!(
    #[tokio::test]
    setting_the_files_value_drops_the_override
);
async fn setting_the_files_value_drops_the_override(store: TestStore) {
    let receiver = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    let daemon = start(&store, &receiver).await;

    let (status, view) = patch(&daemon, json!({"url": elsewhere.url()})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["url"], elsewhere.url());
    assert_eq!(view["overridden"], json!(["url"]));
    let (status, view) = patch(&daemon, json!({"url": receiver.url()})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["overridden"], json!([]));

    let (_, view) = patch(&daemon, json!({"retry": {"max_retries": 9}})).await;
    assert_eq!(view["overridden"], json!(["retry"]));
    let (status, view) = patch(&daemon, json!({"retry": {"max_retries": 5}})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["overridden"], json!([]));

    let (_, view) = patch(&daemon, json!({"concurrency": 2})).await;
    assert_eq!(view["overridden"], json!([]));

    // Deliveries go where the file says.
    let id = daemon.ingest("orders", "{}").await;
    daemon.wait_event_state(&id, "delivered").await;
    assert_eq!(receiver.hits_for(&id).len(), 1);
    assert_eq!(elsewhere.count(), 0);
}

both_stores!(
    #[tokio::test]
    live_edits_survive_a_restart
);
async fn live_edits_survive_a_restart(store: TestStore) {
    let receiver = Receiver::start().await;
    let mut daemon = start(&store, &receiver).await;
    let (status, view) = patch(
        &daemon,
        json!({"concurrency": 4, "headers": {"X-Env": "staging"}}),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    daemon.sigterm();
    daemon.wait_exit(std::time::Duration::from_secs(15)).await;
    daemon.restart().await;
    let view = daemon.destination("orders").await;
    assert_eq!(view["overridden"], json!(["headers", "concurrency"]));
    assert_eq!(view["max_concurrency"], 4);
    assert_eq!(view["headers"]["X-Env"], "staging");
}

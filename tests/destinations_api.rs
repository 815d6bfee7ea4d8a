//! Destinations as data, against the real binary: created, replaced and
//! deleted through the API, kept across restarts, selected by label, and every
//! bad definition refused with the field it names (and no trace left).

mod harness;

use harness::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn create(daemon: &Daemon, body: Value) -> (u16, Value) {
    daemon
        .send(
            daemon
                .request(Method::POST, "/v1/destinations")
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
}

async fn delete(daemon: &Daemon, path: &str) -> (u16, Value) {
    daemon.send(daemon.request(Method::DELETE, path)).await
}

async fn status_of(daemon: &Daemon, path: &str) -> u16 {
    daemon.send(daemon.request(Method::GET, path)).await.0
}

/// A daemon with one destination in its config file (`from-file`).
async fn start(receiver: &Receiver, config: TestConfig) -> Daemon {
    Daemon::start(config.destination(Dest::new("from-file", &receiver.url()))).await
}

both_stores!(
    #[tokio::test]
    a_created_destination_delivers_and_survives_a_restart
);
async fn a_created_destination_delivers_and_survives_a_restart(store: TestStore) {
    let receiver = Receiver::start().await;
    let mut daemon = start(&receiver, store.config()).await;
    let body = Dest::new("customer-00001", &receiver.url())
        .label("tenant", "acme")
        .topics(&["order.*"])
        .to_json();
    let (status, created) = create(&daemon, body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["id"], "customer-00001");
    assert_eq!(created["source"], "api");
    assert_eq!(created["labels"], json!({ "tenant": "acme" }));
    assert_eq!(daemon.destination("from-file").await["source"], "file");

    let id = daemon.ingest("customer-00001", r#"{"n":1}"#).await;
    daemon.wait_event_state(&id, "delivered").await;
    assert!(receiver.has_id(&id));

    daemon.sigterm();
    daemon.wait_exit(DEADLINE).await;
    daemon.restart().await;
    let kept = daemon.destination("customer-00001").await;
    assert_eq!(kept["source"], "api");
    assert_eq!(kept["labels"], json!({ "tenant": "acme" }));
    assert_eq!(kept["topics"], json!(["order.*"]));
    let after_restart = daemon.ingest("customer-00001", r#"{"n":2}"#).await;
    daemon.wait_event_state(&after_restart, "delivered").await;
}

both_stores!(
    #[tokio::test]
    ids_that_exist_are_conflicts_that_say_where_they_are_defined
);
async fn ids_that_exist_are_conflicts_that_say_where_they_are_defined(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = start(&receiver, store.config()).await;
    let (status, body) = create(&daemon, Dest::new("from-file", &receiver.url()).to_json()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "conflict");
    assert!(
        body["error"].as_str().unwrap().contains("config file"),
        "{body}"
    );
    let (status, _) = create(&daemon, Dest::new("twice", &receiver.url()).to_json()).await;
    assert_eq!(status, 201);
    let (status, body) = create(&daemon, Dest::new("twice", &receiver.url()).to_json()).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("\"twice\" exists"));
}

both_stores!(
    #[tokio::test]
    bad_definitions_name_their_field_and_leave_no_trace
);
async fn bad_definitions_name_their_field_and_leave_no_trace(store: TestStore) {
    let receiver = Receiver::start().await;
    let mut daemon = start(&receiver, store.config()).await;
    let url = receiver.url();
    let too_long = "x".repeat(129);
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "id": "", "url": url }), "id"),
        (json!({ "id": too_long, "url": url }), "id"),
        (json!({ "id": "has space", "url": url }), "id"),
        (json!({ "id": "no-url" }), "url"),
        (json!({ "id": "ftp", "url": "ftp://example.com/" }), "url"),
        (
            json!({ "id": "metadata", "url": "http://169.254.169.254/latest/meta-data" }),
            "url",
        ),
        (
            json!({ "id": "metadata6", "url": "http://[fe80::1]/" }),
            "url",
        ),
        (
            json!({ "id": "secret", "url": url, "secret": "whsec_not base64!" }),
            "secret",
        ),
        (
            json!({ "id": "wrong-type", "url": url, "concurrency": "8" }),
            "concurrency",
        ),
        (
            json!({ "id": "retry", "url": url, "retry": { "max_retries": -1 } }),
            "retry.max_retries",
        ),
        (
            json!({ "id": "label", "url": url, "labels": { "tenant": "a b" } }),
            "labels",
        ),
        (
            json!({ "id": "unknown", "url": url, "colour": "red" }),
            "colour",
        ),
    ];
    for (body, field) in &cases {
        let (status, reply) = create(&daemon, body.clone()).await;
        assert_eq!(status, 422, "{body} → {reply}");
        let message = reply["error"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}:")) || message.contains(&format!(".{field}")),
            "{body} → {message} (should name {field})"
        );
    }
    // A key unknown at the top level is named alone, not doubled ("colour.colour").
    let (_, reply) = create(
        &daemon,
        json!({ "id": "unknown", "url": url, "colour": "red" }),
    )
    .await;
    assert_eq!(reply["field"], "colour", "{reply}");
    let message = reply["error"].as_str().unwrap();
    assert!(message.starts_with("colour: unknown key ("), "{message}");
    let (status, reply) = daemon
        .send(
            daemon
                .request(Method::POST, "/v1/destinations")
                .header("content-type", "application/json")
                .body("[1, 2]"),
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    // Nothing was created, now or after a restart.
    let listed = || async {
        daemon.get_json("/v1/destinations").await["destinations"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(listed().await, 1);
    daemon.sigterm();
    daemon.wait_exit(DEADLINE).await;
    daemon.restart().await;
    assert_eq!(
        daemon.get_json("/v1/destinations").await["destinations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

both_stores!(
    #[tokio::test]
    private_addresses_are_refused_under_deny_private_destinations
);
async fn private_addresses_are_refused_under_deny_private_destinations(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = start(&receiver, store.config().deny_private_destinations()).await;
    let (status, reply) = create(
        &daemon,
        json!({ "id": "loopback", "url": "http://127.0.0.1:9/hook" }),
    )
    .await;
    assert_eq!(status, 422, "{reply}");
    assert!(reply["error"].as_str().unwrap().starts_with("url:"));
    let (status, reply) = create(
        &daemon,
        json!({ "id": "named", "url": "http://localhost:9/hook" }),
    )
    .await;
    assert_eq!(status, 422, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("resolves to"),
        "{reply}"
    );
}

both_stores!(
    #[tokio::test]
    creating_past_max_destinations_is_refused_with_the_limit
);
async fn creating_past_max_destinations_is_refused_with_the_limit(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = start(&receiver, store.config().max_destinations(2)).await;
    let (status, _) = create(&daemon, Dest::new("second", &receiver.url()).to_json()).await;
    assert_eq!(status, 201);
    let (status, reply) = create(&daemon, Dest::new("third", &receiver.url()).to_json()).await;
    assert_eq!(status, 409, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("max_destinations (2)"),
        "{reply}"
    );
    assert_eq!(status_of(&daemon, "/v1/destinations/third").await, 404);
}

both_stores!(
    #[tokio::test]
    deleting_cancels_owed_events_which_stay_readable
);
async fn deleting_cancels_owed_events_which_stay_readable(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let daemon = start(&receiver, store.config()).await;
    let body = Dest::new("doomed", &receiver.url())
        .retry(Retry::fixed("1h", 5))
        .to_json();
    assert_eq!(create(&daemon, body).await.0, 201);
    let first = daemon.ingest("doomed", "{}").await;
    let second = daemon.ingest("doomed", "{}").await;
    daemon.wait_event_state(&first, "retrying").await;
    daemon.wait_event_state(&second, "retrying").await;

    let (status, reply) = delete(&daemon, "/v1/destinations/doomed").await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        json!({ "id": "doomed", "cancelled": 2, "draining": false })
    );
    assert_eq!(status_of(&daemon, "/v1/destinations/doomed").await, 404);
    for id in [&first, &second] {
        let event = daemon.event(id).await;
        assert_eq!(event["state"], "cancelled", "{event}");
        assert_eq!(event["reason"], "destination_deleted", "{event}");
        assert_eq!(event["attempts"].as_array().unwrap().len(), 1, "{event}");
    }
    let listed = daemon.get_json("/v1/events?destination=doomed").await;
    assert_eq!(listed["events"].as_array().unwrap().len(), 2, "{listed}");
    let (status, _) = daemon.post_event("doomed", "{}").await;
    assert_eq!(status, 404);
    // A file destination is the file's to remove.
    let (status, reply) = delete(&daemon, "/v1/destinations/from-file").await;
    assert_eq!(status, 409, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("config file"));
}

both_stores!(
    #[tokio::test]
    draining_refuses_new_events_and_deletes_once_nothing_is_owed
);
async fn draining_refuses_new_events_and_deletes_once_nothing_is_owed(store: TestStore) {
    let receiver = Receiver::start().await;
    // The first attempt fails, so an event is still owed when the drain starts.
    receiver.then([Reply::status(500)]);
    let daemon = start(&receiver, store.config()).await;
    let body = Dest::new("leaving", &receiver.url())
        .retry(Retry::fixed("2s", 5))
        .to_json();
    assert_eq!(create(&daemon, body).await.0, 201);
    let owed = daemon.ingest("leaving", "{}").await;
    daemon.wait_event_state(&owed, "retrying").await;

    let (status, reply) = delete(&daemon, "/v1/destinations/leaving?drain=true").await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["draining"], true);
    assert_eq!(daemon.destination("leaving").await["draining"], true);
    let (status, reply) = daemon.post_event("leaving", "{}").await;
    assert_eq!(status, 409, "{reply}");
    // The owed event is delivered, then the destination goes.
    daemon.wait_event_state(&owed, "delivered").await;
    wait_until_async("the drained destination to be deleted", || async {
        status_of(&daemon, "/v1/destinations/leaving").await == 404
    })
    .await;
    assert_eq!(daemon.event(&owed).await["state"], "delivered");
}

both_stores!(
    #[tokio::test]
    put_replaces_an_api_destination_and_not_a_file_one
);
async fn put_replaces_an_api_destination_and_not_a_file_one(store: TestStore) {
    let receiver = Receiver::start().await;
    let other = Receiver::start().await;
    let daemon = start(&receiver, store.config()).await;
    assert_eq!(
        create(&daemon, Dest::new("moving", &receiver.url()).to_json())
            .await
            .0,
        201
    );
    let replaced = daemon
        .send(
            daemon
                .request(Method::PUT, "/v1/destinations/moving")
                .header("content-type", "application/json")
                .body(json!({ "url": other.url(), "labels": { "tier": "gold" } }).to_string()),
        )
        .await;
    assert_eq!(replaced.0, 200, "{}", replaced.1);
    assert_eq!(replaced.1["url"], other.url());
    assert_eq!(replaced.1["labels"], json!({ "tier": "gold" }));
    let id = daemon.ingest("moving", "{}").await;
    daemon.wait_event_state(&id, "delivered").await;
    assert!(other.has_id(&id) && !receiver.has_id(&id));

    let (status, reply) = daemon
        .send(
            daemon
                .request(Method::PUT, "/v1/destinations/from-file")
                .header("content-type", "application/json")
                .body(json!({ "url": other.url() }).to_string()),
        )
        .await;
    assert_eq!(status, 409, "{reply}");
}

both_stores!(
    #[tokio::test]
    labels_select_destinations_events_and_bulk_retries
);
async fn labels_select_destinations_events_and_bulk_retries(store: TestStore) {
    // A 400 fails an event at once (and leaves the destination enabled).
    let receiver = Receiver::start_with(Reply::status(400)).await;
    let daemon = start(&receiver, store.config()).await;
    for (id, tenant) in [
        ("acme-1", "acme"),
        ("acme-2", "acme"),
        ("globex-1", "globex"),
    ] {
        let body = Dest::new(id, &receiver.url())
            .label("tenant", tenant)
            .retry(Retry::new().on_client_error("fail"))
            .to_json();
        let (status, reply) = create(&daemon, body).await;
        assert_eq!(status, 201, "{reply}");
    }
    let mut acme = Vec::new();
    for id in ["acme-1", "acme-2"] {
        acme.push(daemon.ingest(id, "{}").await);
    }
    let globex = daemon.ingest("globex-1", "{}").await;
    for id in acme.iter().chain([&globex]) {
        daemon.wait_event_state(id, "failed").await;
    }

    let listed = daemon.get_json("/v1/destinations?label=tenant:acme").await;
    let ids: Vec<&str> = listed["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme-1", "acme-2"]);

    let events = daemon
        .get_json("/v1/events?label=tenant:acme&state=failed")
        .await;
    let mut got: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    got.sort();
    let mut want: Vec<&str> = acme.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(got, want);

    let (status, reply) = daemon
        .send(daemon.request(Method::GET, "/v1/events?label=tenant"))
        .await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply["error"].as_str().unwrap().starts_with("label:"));

    // The count a bulk retry shows first agrees with the label.
    for (body, want) in [
        (json!({ "label": "tenant:acme", "state": "failed" }), 2),
        (json!({ "label": "tenant:acme" }), 2),
        (json!({ "label": "tenant:nobody" }), 0),
    ] {
        let (status, counted) = daemon
            .send(
                daemon
                    .request(Method::POST, "/v1/bulk/count")
                    .header("content-type", "application/json")
                    .body(body.to_string()),
            )
            .await;
        assert_eq!(status, 200, "{counted}");
        assert_eq!(counted["count"], want, "{body} → {counted}");
    }

    // "Retry everything failed for acme": two attempts, none for globex.
    receiver.set_default(Reply::status(200));
    let (status, job) = daemon
        .send(
            daemon
                .request(Method::POST, "/v1/bulk/retry")
                .header("content-type", "application/json")
                .body(json!({ "label": "tenant:acme", "state": "failed" }).to_string()),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["total"], 2, "{job}");
    for id in &acme {
        daemon.wait_event_state(id, "delivered").await;
    }
    assert_eq!(daemon.event(&globex).await["state"], "failed");
    let log = daemon.log_text();
    assert!(
        log.contains("state=failed label=tenant:acme"),
        "the log names the job's selection: {log}"
    );
}

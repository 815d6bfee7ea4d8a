//! End-to-end delivery through the real `hookwatch --daemon` binary: ingest over
//! the HTTP API, delivery to real receivers on loopback, and the read API.

mod harness;

use base64::Engine as _;
use harness::*;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::Value;
use sha2::Sha256;
use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>` keyed with the base64
/// part of a `whsec_` secret, computed independently of hookwatch.
fn standard_webhooks_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("secret is base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn statuses_of(attempts: &Value) -> Vec<Value> {
    attempts
        .as_array()
        .expect("attempts is an array")
        .iter()
        .map(|a| a["status"].clone())
        .collect()
}

/// A config with one destination `orders` pointing at `receiver`.
fn one_destination(store: &TestStore, receiver: &Receiver) -> TestConfig {
    store
        .config()
        .destination(Dest::new("orders", &receiver.url()).retry_fixed("1s", 5))
}

#[test]
fn signature_helper_matches_the_standard_webhooks_spec_example() {
    // The example from the Standard Webhooks specification, so the helper used
    // below is known to be right independently of hookwatch.
    let signature = standard_webhooks_signature(
        SPEC_SECRET,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        br#"{"test": 2432232314}"#,
    );
    assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    ingested_event_is_delivered_with_body_content_type_and_headers
);
async fn ingested_event_is_delivered_with_body_content_type_and_headers(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = Daemon::start(
        store.config().destination(
            Dest::new("orders", &receiver.url())
                .header("X-Env", "test")
                .retry_fixed("1s", 5),
        ),
    )
    .await;

    let body = r#"{"order":42,"note":"héllo"}"#;
    let (status, reply) = daemon
        .send(
            daemon
                .request(
                    Method::POST,
                    "/v1/destinations/orders/events?topic=order.created",
                )
                .header("content-type", "application/vnd.test+json; charset=utf-8")
                .body(body),
        )
        .await;
    assert_eq!(status, 202, "ingest: expected 202, got {status}: {reply}");
    assert_eq!(reply["state"], "pending", "ingest reply: {reply}");
    let id = event_id_of(&reply);

    let hits = receiver.wait_for_hits(1).await;
    let hit = &hits[0];
    assert_eq!(hit.method, "POST");
    assert_eq!(hit.path, "/hook", "delivered to the destination url's path");
    assert_eq!(hit.body_text(), body, "body delivered verbatim");
    assert_eq!(
        hit.header("content-type").as_deref(),
        Some("application/vnd.test+json; charset=utf-8"),
        "content-type kept from ingest"
    );
    assert_eq!(
        hit.header("x-env").as_deref(),
        Some("test"),
        "custom header"
    );
    assert_eq!(hit.webhook_id(), id, "webhook-id is the event id");
    assert_eq!(hit.header("hookwatch-attempt").as_deref(), Some("1"));
    let timestamp: i64 = hit
        .header("webhook-timestamp")
        .expect("webhook-timestamp header")
        .parse()
        .expect("webhook-timestamp is unix seconds");
    assert!(
        (timestamp - unix_now()).abs() < 120,
        "webhook-timestamp {timestamp} should be close to now ({})",
        unix_now()
    );
    assert!(
        hit.header("webhook-signature").is_none(),
        "no secret configured, so no webhook-signature expected"
    );

    let event = daemon.wait_event_state(&id, "delivered").await;
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["destination"], "orders");
    assert_eq!(event["topic"], "order.created");
    assert_eq!(event["payload"], body);
    assert_eq!(
        event["content_type"],
        "application/vnd.test+json; charset=utf-8"
    );
    assert_eq!(event["attempt_count"], 1, "{event}");
    assert_eq!(event["last_status"], 200, "{event}");
    assert!(event["next_attempt_at"].is_null(), "{event}");
    chrono::DateTime::parse_from_rfc3339(event["created_at"].as_str().expect("created_at"))
        .expect("created_at is RFC 3339");
    let attempts = event["attempts"].as_array().expect("attempts array");
    assert_eq!(attempts.len(), 1, "{event}");
    assert_eq!(attempts[0]["n"], 1);
    assert_eq!(attempts[0]["trigger"], "initial");
    assert_eq!(attempts[0]["status"], 200);
    assert!(
        attempts[0]["decision"]
            .as_str()
            .unwrap_or("")
            .contains("delivered"),
        "decision of a 200 should say delivered: {}",
        attempts[0]
    );
    assert_eq!(receiver.count(), 1, "exactly one request for one event");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    failed_attempts_are_retried_until_delivered
);
async fn failed_attempts_are_retried_until_delivered(store: TestStore) {
    let receiver = Receiver::start().await;
    receiver.push_statuses(&[500, 500]);
    let daemon = Daemon::start(one_destination(&store, &receiver)).await;

    let id = daemon.ingest("orders", r#"{"retry":"me"}"#).await;

    let hits = receiver.wait_for_hits(3).await;
    let attempts: Vec<Option<u32>> = hits.iter().map(|h| h.attempt()).collect();
    assert_eq!(
        attempts,
        vec![Some(1), Some(2), Some(3)],
        "hookwatch-attempt headers"
    );
    for hit in &hits {
        assert_eq!(hit.webhook_id(), id, "same webhook-id on every attempt");
        assert_eq!(hit.body_text(), r#"{"retry":"me"}"#);
    }
    for pair in hits.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(800),
            "fixed delay 1s: retries came only {gap:?} apart"
        );
    }

    let event = daemon.wait_event_state(&id, "delivered").await;
    assert_eq!(event["attempt_count"], 3, "{event}");
    assert_eq!(event["last_status"], 200, "{event}");
    assert_eq!(
        statuses_of(&event["attempts"]),
        vec![Value::from(500), Value::from(500), Value::from(200)],
        "attempt statuses: {event}"
    );
    let attempts = event["attempts"].as_array().unwrap();
    let triggers: Vec<&str> = attempts
        .iter()
        .map(|a| a["trigger"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(triggers, ["initial", "automatic", "automatic"]);
    let numbers: Vec<&Value> = attempts.iter().map(|a| &a["n"]).collect();
    assert_eq!(numbers, [1, 2, 3], "attempt numbers in the history");
    assert!(
        attempts[0]["decision"]
            .as_str()
            .unwrap_or("")
            .contains("retry"),
        "the decision after a 500 should say retry: {}",
        attempts[0]
    );
    assert!(
        attempts[2]["decision"]
            .as_str()
            .unwrap_or("")
            .contains("delivered"),
        "the decision after the 200 should say delivered: {}",
        attempts[2]
    );
    // Nothing more arrives once delivered.
    assert_eq!(receiver.count(), 3, "no request after the delivering one");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    attempt_timeout_is_recorded_as_an_error_and_retried
);
async fn attempt_timeout_is_recorded_as_an_error_and_retried(store: TestStore) {
    let receiver = Receiver::start().await;
    receiver.then([Reply::status(200).after(Duration::from_secs(5))]);
    let daemon = Daemon::start(
        store.config().destination(
            Dest::new("orders", &receiver.url())
                .timeout("1s")
                .retry_fixed("1s", 5),
        ),
    )
    .await;

    let id = daemon.ingest("orders", "{}").await;
    let event = daemon.wait_event_state(&id, "delivered").await;
    let attempts = event["attempts"].as_array().expect("attempts array");
    assert_eq!(
        attempts.len(),
        2,
        "one timed-out attempt, then one delivered: {event}"
    );
    assert!(
        attempts[0]["status"].is_null(),
        "a timed-out attempt has no status: {}",
        attempts[0]
    );
    assert!(
        attempts[0]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "a timed-out attempt records an error: {}",
        attempts[0]
    );
    assert_eq!(attempts[1]["status"], 200);
    let hits = receiver.hits_for(&id);
    assert_eq!(hits.len(), 2, "two requests reached the receiver");
    assert_eq!(hits[1].attempt(), Some(2), "hookwatch-attempt of the retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_carry_a_standard_webhooks_signature() {
    let receiver = Receiver::start().await;
    let daemon = Daemon::start(
        TestConfig::new().destination(
            Dest::new("orders", &receiver.url())
                .secret(SPEC_SECRET)
                .retry_fixed("1s", 5),
        ),
    )
    .await;

    let body = r#"{"test": 2432232314}"#;
    let id = daemon.ingest("orders", body).await;
    let hits = receiver.wait_for_hits(1).await;
    let hit = &hits[0];
    assert_eq!(hit.webhook_id(), id, "webhook-id is the event id");
    let timestamp = hit.header("webhook-timestamp").expect("webhook-timestamp");
    let header = hit
        .header("webhook-signature")
        .expect("webhook-signature header when a secret is set");
    let expected = standard_webhooks_signature(SPEC_SECRET, &id, &timestamp, &hit.body);
    let presented: Vec<&str> = header.split(' ').collect();
    assert!(
        presented.contains(&expected.as_str()),
        "webhook-signature {header:?} should contain {expected:?} (HMAC over \"{id}.{timestamp}.{body}\")"
    );
    assert_eq!(hit.body_text(), body, "body delivered verbatim");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    repeated_idempotency_key_is_skipped_and_not_delivered
);
async fn repeated_idempotency_key_is_skipped_and_not_delivered(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = Daemon::start(one_destination(&store, &receiver)).await;

    let post_with_key = |body: &'static str| {
        daemon
            .request(Method::POST, "/v1/destinations/orders/events")
            .header("content-type", "application/json")
            .header("Idempotency-Key", "order-42-created")
            .body(body)
    };
    let (status, first) = daemon.send(post_with_key(r#"{"n":1}"#)).await;
    assert_eq!(status, 202, "first post: {first}");
    let first_id = event_id_of(&first);

    let (status, second) = daemon.send(post_with_key(r#"{"n":2}"#)).await;
    assert_eq!(
        status, 200,
        "repeat with the same Idempotency-Key: {second}"
    );
    assert_eq!(second["state"], "skipped", "{second}");
    assert_eq!(second["duplicate_of"], first_id.as_str(), "{second}");
    let second_id = event_id_of(&second);
    assert_ne!(second_id, first_id, "the duplicate gets an id of its own");

    daemon.wait_event_state(&first_id, "delivered").await;
    // A later event, delivered after it, shows the dispatcher had every chance to
    // (wrongly) deliver the skipped one.
    let barrier = daemon.ingest("orders", r#"{"n":3}"#).await;
    daemon.wait_event_state(&barrier, "delivered").await;

    let skipped = daemon.event(&second_id).await;
    assert_eq!(skipped["state"], "skipped", "{skipped}");
    assert_eq!(skipped["attempt_count"], 0, "{skipped}");
    assert_eq!(
        receiver.hits_for(&first_id).len(),
        1,
        "the first event is delivered once"
    );
    assert_eq!(
        receiver.hits_for(&second_id).len(),
        0,
        "the skipped duplicate must not be delivered"
    );
    assert_eq!(receiver.count(), 2, "first event and barrier only");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    idempotency_key_is_scoped_to_one_destination
);
async fn idempotency_key_is_scoped_to_one_destination(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = Daemon::start(
        store
            .config()
            .destination(Dest::new("a", &receiver.url()))
            .destination(Dest::new("b", &receiver.url())),
    )
    .await;
    for dest in ["a", "b"] {
        let (status, reply) = daemon
            .send(
                daemon
                    .request(Method::POST, &format!("/v1/destinations/{dest}/events"))
                    .header("Idempotency-Key", "same-key")
                    .body("{}"),
            )
            .await;
        assert_eq!(
            status, 202,
            "the same key for another destination is not a duplicate ({dest}): {reply}"
        );
    }
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    topic_fans_out_to_matching_destinations_only
);
async fn topic_fans_out_to_matching_destinations_only(store: TestStore) {
    let orders = Receiver::start().await;
    let mixed = Receiver::start().await;
    let users = Receiver::start().await;
    let daemon = Daemon::start(
        store
            .config()
            .destination(Dest::new("orders", &orders.url()).topics(&["order.*"]))
            .destination(Dest::new("mixed", &mixed.url()).topics(&["order.created", "user.*"]))
            .destination(Dest::new("users", &users.url()).topics(&["user.*"])),
    )
    .await;

    let (status, reply) = daemon
        .send(
            daemon
                .request(Method::POST, "/v1/topics/order.created/events")
                .header("content-type", "application/json")
                .body(r#"{"fan":"out"}"#),
        )
        .await;
    assert_eq!(status, 202, "topic ingest: {reply}");
    let events = reply["events"].as_array().expect("events array");
    let mut by_destination: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["destination"].as_str().expect("destination").to_string(),
                event_id_of(e),
            )
        })
        .collect();
    by_destination.sort();
    let names: Vec<&str> = by_destination.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(names, ["mixed", "orders"], "matching destinations: {reply}");

    for (dest, id) in &by_destination {
        let event = daemon.wait_event_state(id, "delivered").await;
        assert_eq!(event["destination"], dest.as_str());
        assert_eq!(event["topic"], "order.created");
    }
    let (mixed_id, orders_id) = (&by_destination[0].1, &by_destination[1].1);
    assert_eq!(orders.hits_for(orders_id).len(), 1, "orders got its event");
    assert_eq!(mixed.hits_for(mixed_id).len(), 1, "mixed got its event");
    assert_eq!(orders.count(), 1, "orders got only its own event");
    assert_eq!(mixed.count(), 1, "mixed got only its own event");
    assert_eq!(
        orders.hits()[0].body_text(),
        r#"{"fan":"out"}"#,
        "body fanned out verbatim"
    );
    assert_eq!(users.count(), 0, "user.* must not receive order.created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_destination_and_unmatched_topic_are_404() {
    let receiver = Receiver::start().await;
    let daemon = Daemon::start(
        TestConfig::new().destination(Dest::new("orders", &receiver.url()).topics(&["order.*"])),
    )
    .await;

    let (status, reply) = daemon.post_event("nope", "{}").await;
    assert_eq!(status, 404, "unknown destination: {reply}");
    assert!(
        reply["error"].is_string(),
        "errors are {{\"error\": ...}}: {reply}"
    );

    let (status, reply) = daemon
        .send(
            daemon
                .request(Method::POST, "/v1/topics/invoice.paid/events")
                .body("{}"),
        )
        .await;
    assert_eq!(status, 404, "topic no destination subscribes to: {reply}");
    assert!(reply["error"].is_string(), "{reply}");

    let (status, reply) = daemon
        .send(daemon.request(Method::GET, "/v1/destinations/nope"))
        .await;
    assert_eq!(status, 404, "GET unknown destination: {reply}");
    assert_eq!(receiver.count(), 0, "refused requests deliver nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn body_over_max_body_is_413() {
    let receiver = Receiver::start().await;
    let daemon = Daemon::start(
        TestConfig::new()
            .max_body("1KiB")
            .destination(Dest::new("orders", &receiver.url()).topics(&["order.*"])),
    )
    .await;

    let (status, reply) = daemon.post_event("orders", &"x".repeat(2048)).await;
    assert_eq!(status, 413, "2 KiB body with max_body 1KiB: {reply}");
    assert!(reply["error"].is_string(), "{reply}");

    let (status, reply) = daemon
        .send(
            daemon
                .request(Method::POST, "/v1/topics/order.created/events")
                .body("z".repeat(2048)),
        )
        .await;
    assert_eq!(status, 413, "2 KiB body to the topic endpoint: {reply}");

    let (status, reply) = daemon.post_event("orders", &"y".repeat(1024)).await;
    assert_eq!(
        status, 202,
        "a body of exactly max_body is accepted: {reply}"
    );

    let page = daemon.get_json("/v1/events").await;
    assert_eq!(
        page["events"].as_array().map(Vec::len),
        Some(1),
        "only the accepted event is stored: {page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_is_required_on_api_and_metrics_but_not_healthz() {
    let receiver = Receiver::start().await;
    let daemon =
        Daemon::start(one_destination(&TestStore::Redb, &receiver).token("secret-token")).await;
    let ingest_path = "/v1/destinations/orders/events";

    let (status, reply) = daemon
        .send(
            daemon
                .request_without_token(Method::POST, ingest_path)
                .body("{}"),
        )
        .await;
    assert_eq!(status, 401, "missing token: {reply}");
    assert!(reply["error"].is_string(), "{reply}");

    let (status, reply) = daemon
        .send(
            daemon
                .request_without_token(Method::POST, ingest_path)
                .bearer_auth("wrong-token")
                .body("{}"),
        )
        .await;
    assert_eq!(status, 401, "wrong token: {reply}");

    let (status, reply) = daemon
        .send(daemon.request(Method::POST, ingest_path).body("{}"))
        .await;
    assert_eq!(status, 202, "right token: {reply}");

    for path in ["/v1/events", "/v1/destinations", "/v1/destinations/orders"] {
        let (status, reply) = daemon
            .send(daemon.request_without_token(Method::GET, path))
            .await;
        assert_eq!(status, 401, "GET {path} without token: {reply}");
    }
    let metrics = daemon
        .request_without_token(Method::GET, "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 401, "GET /metrics without token");

    let (status, reply) = daemon
        .send(daemon.request_without_token(Method::GET, "/healthz"))
        .await;
    assert_eq!(status, 200, "/healthz is open: {reply}");
    let metrics = daemon
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200, "GET /metrics with token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_can_come_from_hookwatch_token_env() {
    let receiver = Receiver::start().await;
    let daemon =
        Daemon::start(one_destination(&TestStore::Redb, &receiver).token_from_env("env-token"))
            .await;
    let ingest_path = "/v1/destinations/orders/events";
    let (status, reply) = daemon
        .send(
            daemon
                .request_without_token(Method::POST, ingest_path)
                .body("{}"),
        )
        .await;
    assert_eq!(status, 401, "HOOKWATCH_TOKEN set, no token sent: {reply}");
    let (status, reply) = daemon
        .send(daemon.request(Method::POST, ingest_path).body("{}"))
        .await;
    assert_eq!(status, 202, "token from HOOKWATCH_TOKEN sent: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_documented_retry_schedule_is_accepted() {
    let receiver = Receiver::start().await;
    let mut config = TestConfig::new();
    for schedule in ["fixed", "exponential", "power"] {
        config = config.destination(
            Dest::new(schedule, &receiver.url())
                .retry(Retry::new().schedule(schedule).delay("1s").max_retries(5)),
        );
    }
    let daemon = Daemon::start(config).await;
    for schedule in ["fixed", "exponential", "power"] {
        let id = daemon.ingest(schedule, "{}").await;
        daemon.wait_event_state(&id, "delivered").await;
    }
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    event_listing_pages_newest_first_without_duplicates
);
async fn event_listing_pages_newest_first_without_duplicates(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = Daemon::start(one_destination(&store, &receiver)).await;
    let mut ingested = Vec::new();
    for n in 0..5 {
        ingested.push(daemon.ingest("orders", &format!(r#"{{"n":{n}}}"#)).await);
    }
    let newest_first: Vec<String> = ingested.iter().rev().cloned().collect();

    let mut seen = Vec::new();
    let mut path = "/v1/events?limit=2".to_string();
    for page_number in 1.. {
        assert!(page_number <= 5, "more pages than events; seen {seen:?}");
        let page = daemon.get_json(&path).await;
        let events = page["events"].as_array().expect("events array");
        assert!(
            events.len() <= 2,
            "limit=2 returned {}: {page}",
            events.len()
        );
        for event in events {
            for field in [
                "id",
                "destination",
                "topic",
                "state",
                "created_at",
                "attempt_count",
                "next_attempt_at",
                "last_status",
                "last_error",
                "reason",
            ] {
                assert!(
                    event.get(field).is_some(),
                    "listed event lacks {field:?}: {event}"
                );
            }
            seen.push(event["id"].as_str().expect("id").to_string());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/events?limit=2&after={next}"),
            None => {
                assert!(page["next"].is_null(), "next is a string or null: {page}");
                break;
            }
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "duplicates across pages: {seen:?}"
    );
    assert_eq!(seen, newest_first, "all 5 events, newest first");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "ULIDs sort by creation time");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    event_listing_filters_by_destination_and_state
);
async fn event_listing_filters_by_destination_and_state(store: TestStore) {
    let good = Receiver::start().await;
    let bad = Receiver::start_with(Reply::status(500)).await;
    let daemon = Daemon::start(
        store
            .config()
            .destination(Dest::new("good", &good.url()).retry_fixed("1s", 5))
            .destination(Dest::new("bad", &bad.url()).retry_fixed("1h", 5)),
    )
    .await;
    let delivered = daemon.ingest("good", "{}").await;
    let retrying = daemon.ingest("bad", "{}").await;
    daemon.wait_event_state(&delivered, "delivered").await;
    let event = daemon.wait_event_state(&retrying, "retrying").await;
    assert_eq!(event["last_status"], 500, "{event}");
    assert!(
        event["next_attempt_at"].is_string(),
        "a retrying event has next_attempt_at: {event}"
    );

    let ids = |page: &Value| -> Vec<String> {
        page["events"]
            .as_array()
            .expect("events array")
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (retrying, delivered) = (vec![retrying], vec![delivered]);
    let page = daemon.get_json("/v1/events?destination=bad").await;
    assert_eq!(ids(&page), retrying, "destination=bad: {page}");
    let page = daemon.get_json("/v1/events?state=delivered").await;
    assert_eq!(ids(&page), delivered, "state=delivered: {page}");
    let page = daemon.get_json("/v1/events?state=retrying").await;
    assert_eq!(ids(&page), retrying, "state=retrying: {page}");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    destinations_report_counts_by_state
);
async fn destinations_report_counts_by_state(store: TestStore) {
    let good = Receiver::start().await;
    let bad = Receiver::start_with(Reply::status(500)).await;
    let daemon = Daemon::start(
        store
            .config()
            .destination(
                Dest::new("good", &good.url())
                    .topics(&["order.*"])
                    .concurrency(4)
                    .retry_fixed("1s", 5),
            )
            .destination(Dest::new("bad", &bad.url()).retry_fixed("1h", 5)),
    )
    .await;

    let first = daemon.ingest("good", "{}").await;
    daemon.ingest("good", "{}").await;
    let (status, reply) = daemon
        .send(
            daemon
                .request(Method::POST, "/v1/destinations/good/events")
                .header("Idempotency-Key", "k")
                .body("{}"),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let (status, reply) = daemon
        .send(
            daemon
                .request(Method::POST, "/v1/destinations/good/events")
                .header("Idempotency-Key", "k")
                .body("{}"),
        )
        .await;
    assert_eq!(status, 200, "duplicate: {reply}");
    daemon.ingest("bad", "{}").await;
    daemon.wait_event_state(&first, "delivered").await;

    let zero = serde_json::json!({
        "pending": 0, "retrying": 0, "delivered": 0, "failed": 0, "cancelled": 0, "skipped": 0
    });
    let mut good_counts = zero.clone();
    good_counts["delivered"] = 3.into();
    good_counts["skipped"] = 1.into();
    let mut bad_counts = zero.clone();
    bad_counts["retrying"] = 1.into();

    let list = wait_for("destination counts to settle", || async {
        let list = daemon.get_json("/v1/destinations").await;
        let counts = |id: &str| {
            list["destinations"]
                .as_array()
                .and_then(|all| all.iter().find(|d| d["id"] == id))
                .map(|d| d["counts"].clone())
        };
        if counts("good").as_ref() == Some(&good_counts)
            && counts("bad").as_ref() == Some(&bad_counts)
        {
            Ok(list)
        } else {
            Err(list.to_string())
        }
    })
    .await;

    let all = list["destinations"].as_array().unwrap();
    assert_eq!(all.len(), 2, "{list}");
    let good_view = all.iter().find(|d| d["id"] == "good").unwrap();
    assert_eq!(good_view["url"], good.url().as_str(), "{good_view}");
    assert_eq!(good_view["topics"], serde_json::json!(["order.*"]));
    assert_eq!(good_view["enabled"], true, "{good_view}");
    assert!(good_view["in_retry"].is_boolean(), "{good_view}");
    assert_eq!(good_view["max_concurrency"], 4, "{good_view}");
    assert_eq!(good_view["concurrency"], 4, "{good_view}");
    assert!(good_view["retry"].is_object(), "{good_view}");

    let single = daemon.destination("bad").await;
    assert_eq!(single["id"], "bad");
    assert_eq!(single["counts"], bad_counts, "{single}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healthz_is_ok() {
    let daemon = Daemon::start(TestConfig::new()).await;
    let (status, body) = daemon.send(daemon.request(Method::GET, "/healthz")).await;
    assert_eq!(status, 200, "GET /healthz: {body}");
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    metrics_expose_ingest_attempts_durations_and_states
);
async fn metrics_expose_ingest_attempts_durations_and_states(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = Daemon::start(one_destination(&store, &receiver)).await;
    let id = daemon.ingest("orders", "{}").await;
    daemon.wait_event_state(&id, "delivered").await;

    let response = daemon
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "GET /metrics");
    let text = response.text().await.unwrap();
    for needle in [
        "hookwatch_events_ingested_total",
        "hookwatch_attempts_total{",
        "destination=\"orders\"",
        "outcome=\"",
        "hookwatch_attempt_duration_seconds_bucket",
        "hookwatch_attempt_duration_seconds_count",
        "hookwatch_events{",
        "state=\"delivered\"",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle:?}:\n{text}");
    }
    assert_eq!(
        metric_sum(&text, "hookwatch_events_ingested_total"),
        Some(1.0),
        "one event ingested:\n{text}"
    );
    assert_eq!(
        metric_sum(&text, "hookwatch_attempts_total"),
        Some(1.0),
        "one attempt made:\n{text}"
    );
    assert_eq!(
        metric_sum(&text, "hookwatch_attempt_duration_seconds_count"),
        Some(1.0),
        "one attempt timed:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_and_sigint_exit_zero() {
    for (name, signal) in [("SIGTERM", libc::SIGTERM), ("SIGINT", libc::SIGINT)] {
        let mut daemon = Daemon::start(TestConfig::new()).await;
        daemon.signal(signal);
        let status = daemon.wait_exit(Duration::from_secs(15)).await;
        assert_eq!(
            status.code(),
            Some(0),
            "{name} should exit 0, got {status}; stderr:\n{}",
            daemon.log_text()
        );
    }
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    events_survive_a_graceful_restart
);
async fn events_survive_a_graceful_restart(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let mut daemon = Daemon::start(
        store
            .config()
            .destination(Dest::new("orders", &receiver.url()).retry_fixed("1s", 5)),
    )
    .await;
    let id = daemon.ingest("orders", r#"{"keep":"me"}"#).await;
    receiver.wait_for_hits(1).await;
    daemon.sigterm();
    let status = daemon.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "SIGTERM exit code");

    receiver.set_default(Reply::status(200));
    daemon.restart().await;
    let event = daemon.wait_event_state(&id, "delivered").await;
    assert_eq!(event["payload"], r#"{"keep":"me"}"#);
    let last = receiver.hits_for(&id).last().cloned().expect("a delivery");
    assert_eq!(last.body_text(), r#"{"keep":"me"}"#);
    assert!(
        last.attempt().unwrap_or(0) >= 2,
        "attempt numbering continues after a restart: {:?}",
        last.attempt()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_log_format_writes_json_lines() {
    let mut daemon = Daemon::start_with_args(TestConfig::new(), &["--log-format", "json"]).await;
    daemon.sigterm();
    daemon.wait_exit(Duration::from_secs(15)).await;
    let log = daemon.log_text();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in lines {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(
            parsed.as_ref().is_ok_and(Value::is_object),
            "--log-format json: not a JSON object line: {line:?}"
        );
    }
}

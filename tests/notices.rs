//! Operational notices against the real binary: stored when a destination is
//! disabled, enabled, paused, resumed; listed newest first in pages;
//! acknowledged one by one or all at once; kept across a restart; alerted
//! as signed Standard Webhooks posts through hookwatch's own durable queue.
//! "In retry too long" runs on virtual time in process.

mod harness;

use base64::Engine as _;
use harness::*;
use hmac::{Hmac, Mac};
use hookwatch::model::{NoticeQuery, NoticeType};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The notices of `GET /v1/notices?...`.
async fn notices(daemon: &Daemon, query: &str) -> Value {
    daemon.get_json(&format!("/v1/notices{query}")).await
}

/// Waits until a notice of `kind` (about `destination`) is listed; returns it.
async fn wait_notice(daemon: &Daemon, kind: &str, destination: &str) -> Value {
    wait_for(
        &format!("a {kind} notice for {destination}"),
        || async move {
            let page = notices(daemon, "?limit=1000").await;
            page["notices"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["type"] == kind && n["destination"] == destination)
                .cloned()
                .ok_or_else(|| page.to_string())
        },
    )
    .await
}

async fn post(daemon: &Daemon, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = daemon.request(Method::POST, path);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    daemon.send(request).await
}

/// Checks a Standard Webhooks signature as a receiver would, independently
/// of hookwatch's code: HMAC-SHA256 over `id.timestamp.body` keyed with the
/// base64 bytes after `whsec_`, compared against each `v1,` signature.
fn signature_verifies(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    header
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| s == expected)
}

#[test]
fn the_independent_check_accepts_the_standard_webhooks_reference_vector() {
    // The example of the Standard Webhooks specification.
    let body = br#"{"test": 2432232314}"#;
    assert!(signature_verifies(
        SECRET,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        body,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    ));
    assert!(!signature_verifies(
        SECRET,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265331",
        body,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    ));
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_destination_disabled_by_a_404_is_a_notice_naming_the_event_and_status
);
async fn a_destination_disabled_by_a_404_is_a_notice_naming_the_event_and_status(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(404)).await;
    let daemon = Daemon::start(
        store.config().destination(
            Dest::new("orders", &receiver.url())
                .retry(Retry::fixed("100ms", 3).on_client_error("disable")),
        ),
    )
    .await;
    let id = daemon.ingest("orders", r#"{"n":1}"#).await;
    let notice = wait_notice(&daemon, "destination_disabled", "orders").await;
    assert_eq!(notice["event"], id.as_str(), "{notice}");
    assert_eq!(notice["attempt"], 1, "{notice}");
    assert_eq!(notice["cause"], json!({"by": "status", "status": 404}));
    assert_eq!(notice["acked_at"], Value::Null);
    assert!(
        notice["message"].as_str().unwrap().contains("404"),
        "{notice}"
    );
    let status = daemon.get_json("/v1/status").await;
    assert_eq!(status["unacked_notices"], 1, "{status}");
    assert_eq!(status["totals"]["unacked_notices"], 1, "{status}");

    // Enabling it again is a notice of its own, by an operator.
    daemon
        .patch_destination("orders", &json!({"enabled": true}))
        .await;
    let enabled = wait_notice(&daemon, "destination_enabled", "orders").await;
    assert_eq!(enabled["cause"], json!({"by": "operator"}));
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    notices_page_newest_first_are_acknowledged_and_survive_a_restart
);
async fn notices_page_newest_first_are_acknowledged_and_survive_a_restart(store: TestStore) {
    let receiver = Receiver::start().await;
    let mut daemon = Daemon::start(
        store
            .config()
            .token("sesame")
            .destination(Dest::new("a", &receiver.url())),
    )
    .await;
    // Six operator notices: paused, resumed, three times over.
    for _ in 0..3 {
        daemon
            .patch_destination("a", &json!({"paused": true}))
            .await;
        daemon
            .patch_destination("a", &json!({"paused": false}))
            .await;
    }
    let all = wait_for("six notices", || async {
        let page = notices(&daemon, "").await;
        if page["unacked"] == 6 {
            Ok(page)
        } else {
            Err(page.to_string())
        }
    })
    .await;
    let listed = all["notices"].as_array().unwrap().clone();
    let types: Vec<&str> = listed.iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "destination_resumed",
            "destination_paused",
            "destination_resumed",
            "destination_paused",
            "destination_resumed",
            "destination_paused"
        ],
        "{all}"
    );
    let ids: Vec<String> = listed
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    // Pages of four, then two, joined by the cursor.
    let first = notices(&daemon, "?limit=4").await;
    assert_eq!(first["notices"].as_array().unwrap().len(), 4);
    let cursor = first["next_before"].as_str().unwrap().to_string();
    assert_eq!(cursor, ids[3]);
    let second = notices(&daemon, &format!("?limit=4&before={cursor}")).await;
    let second_ids: Vec<&str> = second["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(second_ids, [ids[4].as_str(), ids[5].as_str()]);
    assert_eq!(second["next_before"], Value::Null);
    let (status, _) = daemon
        .send(daemon.request(Method::GET, "/v1/notices?limit=0"))
        .await;
    assert_eq!(status, 400);

    // Auth like every other endpoint.
    let (status, _) = daemon
        .send(daemon.request_without_token(Method::GET, "/v1/notices"))
        .await;
    assert_eq!(status, 401);

    // Acknowledge one.
    let (status, acked) = post(&daemon, &format!("/v1/notices/{}/ack", ids[0]), None).await;
    assert_eq!(status, 200, "{acked}");
    assert!(acked["acked_at"].is_string(), "{acked}");
    let (status, unknown) = post(&daemon, "/v1/notices/01ARZ3NDEKTSV4RRFFQ69G5FAV/ack", None).await;
    assert_eq!(status, 404, "{unknown}");
    assert_eq!(unknown["code"], "unknown_notice");
    let unacked = notices(&daemon, "?unacked=true").await;
    assert_eq!(unacked["unacked"], 5);
    assert_eq!(unacked["notices"].as_array().unwrap().len(), 5);
    assert!(unacked["notices"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["id"] != ids[0].as_str()));

    // Acknowledge the two oldest by id, then those older than the 2nd.
    let (status, reply) = post(
        &daemon,
        "/v1/notices/ack",
        Some(json!({"ids": [ids[5], ids[4]]})),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"acked": 2, "unacked": 3}));
    let (_, reply) = post(&daemon, "/v1/notices/ack", Some(json!({"before": ids[1]}))).await;
    assert_eq!(reply, json!({"acked": 2, "unacked": 1}));
    let (status, reply) = post(&daemon, "/v1/notices/ack", Some(json!({"id": "x"}))).await;
    assert_eq!(status, 422, "{reply}");

    // A restart keeps every notice and what was acknowledged.
    daemon.sigterm();
    daemon.wait_exit(Duration::from_secs(10)).await;
    daemon.restart().await;
    let after = notices(&daemon, "").await;
    assert_eq!(after["notices"].as_array().unwrap().len(), 6);
    assert_eq!(after["unacked"], 1);
    assert_eq!(after["notices"][1]["id"], ids[1].as_str());
    assert!(after["notices"][1]["acked_at"].is_null());

    // Acknowledge all (no body).
    let (status, reply) = post(&daemon, "/v1/notices/ack", None).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"acked": 1, "unacked": 0}));
    assert_eq!(daemon.get_json("/v1/status").await["unacked_notices"], 0);
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    alerts_are_signed_standard_webhooks_posts_of_the_chosen_types
);
async fn alerts_are_signed_standard_webhooks_posts_of_the_chosen_types(store: TestStore) {
    let receiver = Receiver::start().await;
    let alerts = Receiver::start().await;
    let daemon = Daemon::start(
        store
            .config()
            .destination(Dest::new("a", &receiver.url()))
            .alerts(
                Alerts::new()
                    .url(&alerts.url())
                    .secret(SECRET)
                    .types(&["destination_paused", "destination_resumed"]),
            ),
    )
    .await;
    // The alerts destination is built in and reserved.
    let builtin = daemon.destination("hookwatch-alerts").await;
    assert_eq!(builtin["source"], "alerts", "{builtin}");
    let (status, reply) = post(
        &daemon,
        "/v1/destinations",
        Some(json!({"id": "hookwatch-alerts", "url": receiver.url()})),
    )
    .await;
    assert_eq!(status, 409, "{reply}");
    let (status, reply) = daemon
        .send(daemon.request(Method::DELETE, "/v1/destinations/hookwatch-alerts"))
        .await;
    assert_eq!(status, 409, "{reply}");

    daemon
        .patch_destination("a", &json!({"paused": true}))
        .await;
    daemon
        .patch_destination("a", &json!({"paused": false}))
        .await;
    // Not a chosen type: stored, not alerted.
    daemon
        .patch_destination("a", &json!({"enabled": false}))
        .await;
    wait_notice(&daemon, "destination_disabled", "a").await;
    // Pausing the alerts destination itself is a notice, never an alert.
    daemon
        .patch_destination("hookwatch-alerts", &json!({"paused": true}))
        .await;
    wait_notice(&daemon, "destination_paused", "hookwatch-alerts").await;
    daemon
        .patch_destination("hookwatch-alerts", &json!({"paused": false}))
        .await;
    wait_notice(&daemon, "destination_resumed", "hookwatch-alerts").await;

    let hits = alerts.wait_for_hits(2).await;
    let listed = notices(&daemon, "?limit=1000").await;
    let mut types = Vec::new();
    for hit in &hits {
        let id = hit.webhook_id();
        let timestamp = hit.header("webhook-timestamp").expect("webhook-timestamp");
        let signature = hit.header("webhook-signature").expect("webhook-signature");
        assert!(
            signature_verifies(SECRET, &id, &timestamp, &hit.body, &signature),
            "signature {signature} does not verify for {}",
            hit.body_text()
        );
        let body: Value = serde_json::from_slice(&hit.body).unwrap();
        let notice = &body["data"];
        assert_eq!(
            body["type"],
            format!("hookwatch.notice.{}", notice["type"].as_str().unwrap())
        );
        assert_eq!(notice["destination"], "a");
        assert!(
            listed["notices"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["id"] == notice["id"]),
            "the alert's notice is listed: {notice}"
        );
        types.push(notice["type"].as_str().unwrap().to_string());
    }
    types.sort();
    assert_eq!(types, ["destination_paused", "destination_resumed"]);
    // Every alert that will come has been queued with its notice: the
    // alerts destination owes nothing more and got exactly two.
    wait_until_async("the alerts destination to owe nothing", || async {
        let d = daemon.destination("hookwatch-alerts").await;
        d["counts"]["pending"] == 0 && d["counts"]["retrying"] == 0
    })
    .await;
    assert_eq!(alerts.count(), 2, "{:?}", alerts.hits());
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_alert_whose_receiver_is_down_arrives_after_a_crash_and_restart
);
async fn an_alert_whose_receiver_is_down_arrives_after_a_crash_and_restart(store: TestStore) {
    let receiver = Receiver::start().await;
    let alerts = Receiver::start_with(Reply::status(503)).await;
    let mut daemon = Daemon::start(
        store
            .config()
            .destination(Dest::new("a", &receiver.url()))
            .alerts(
                Alerts::new()
                    .url(&alerts.url())
                    .secret(SECRET)
                    .retry(Retry::fixed("200ms", 50)),
            ),
    )
    .await;
    daemon
        .patch_destination("a", &json!({"paused": true}))
        .await;
    let notice = wait_notice(&daemon, "destination_paused", "a").await;
    alerts.wait_for_hits(1).await;
    daemon.sigkill().await;
    alerts.set_default(Reply::status(200));
    let refused = alerts.count();
    daemon.restart().await;
    let delivered = wait_for("the alert delivered after the restart", || async {
        let hits = alerts.hits();
        match hits.get(refused..).and_then(|after| after.first()) {
            Some(hit) => Ok(hit.clone()),
            None => Err(format!("{} hits", hits.len())),
        }
    })
    .await;
    let body: Value = serde_json::from_slice(&delivered.body).unwrap();
    assert_eq!(body["data"]["id"], notice["id"]);
    assert!(signature_verifies(
        SECRET,
        &delivered.webhook_id(),
        &delivered.header("webhook-timestamp").unwrap(),
        &delivered.body,
        &delivered.header("webhook-signature").unwrap()
    ));
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    in_retry_too_long_is_one_notice_per_retry_episode_on_virtual_time
);
async fn in_retry_too_long_is_one_notice_per_retry_episode_on_virtual_time(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let harness = Harness::start(
        store
            .config()
            .destination(Dest::new("a", &receiver.url()).retry_fixed("1h", 50)),
    )
    .await;
    let in_retry_too_long =
        |engine: &hookwatch::engine::Engine| notices_of(engine, NoticeType::InRetryTooLong);
    let in_retry =
        |engine: &hookwatch::engine::Engine| engine.destination_view("a").unwrap().in_retry;
    let id = harness.ingest("a").await;
    // The episode starts when the failed attempt puts the destination in
    // retry, just after the attempt is recorded.
    let engine = harness.engine.clone();
    wait_until("the destination in retry", || in_retry(&engine)).await;
    // 14 minutes in retry: not yet (the default in_retry_after is 15m).
    harness.advance(Duration::from_secs(14 * 60));
    harness.settled().await;
    assert!(in_retry_too_long(&harness.engine).is_empty());
    harness.advance(Duration::from_secs(2 * 60));
    wait_until("the in_retry_too_long notice", || {
        !in_retry_too_long(&engine).is_empty()
    })
    .await;
    let notice = in_retry_too_long(&engine).remove(0);
    assert_eq!(notice.destination.as_deref(), Some("a"));
    assert_eq!(
        notice.kind,
        hookwatch::model::NoticeKind::InRetryTooLong { since: epoch() }
    );
    // Still in retry an hour and more later: still one notice.
    harness.advance(Duration::from_secs(3600));
    harness.wait_attempts(id, 2).await;
    harness.settled().await;
    assert_eq!(in_retry_too_long(&engine).len(), 1);

    // It recovers, then fails again: a new episode, a new notice.
    receiver.set_default(Reply::status(200));
    harness.advance(Duration::from_secs(3600));
    harness
        .wait_state(id, hookwatch::model::EventState::Delivered)
        .await;
    wait_until("the recovered notice", || {
        !notices_of(&engine, NoticeType::DestinationRecovered).is_empty()
    })
    .await;
    receiver.set_default(Reply::status(500));
    wait_until("the destination out of retry", || !in_retry(&engine)).await;
    harness.ingest("a").await;
    wait_until("the destination in retry again", || in_retry(&engine)).await;
    harness.advance(Duration::from_secs(16 * 60));
    wait_until("a second in_retry_too_long notice", || {
        in_retry_too_long(&engine).len() == 2
    })
    .await;
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_disabled_destination_is_not_in_retry_too_long
);
/// A destination disabled by its answer is held, not retrying: it never
/// reads as "in retry too long", while one failing beside it (the control
/// that shows the check ran past the deadline) does.
async fn a_disabled_destination_is_not_in_retry_too_long(store: TestStore) {
    let gone = Receiver::start_with(Reply::status(404)).await;
    let failing = Receiver::start_with(Reply::status(500)).await;
    let harness = Harness::start(
        store
            .config()
            .destination(
                Dest::new("gone", &gone.url())
                    .retry(Retry::fixed("1h", 50).on_client_error("disable")),
            )
            .destination(Dest::new("failing", &failing.url()).retry_fixed("1h", 50)),
    )
    .await;
    let engine = harness.engine.clone();
    let too_long = |engine: &hookwatch::engine::Engine, destination: &str| {
        notices_of(engine, NoticeType::InRetryTooLong)
            .iter()
            .filter(|n| n.destination.as_deref() == Some(destination))
            .count()
    };
    harness.ingest("gone").await;
    harness.ingest("failing").await;
    wait_until("gone disabled and failing in retry", || {
        !engine.destination_view("gone").unwrap().enabled
            && engine.destination_view("failing").unwrap().in_retry
    })
    .await;
    harness.advance(Duration::from_secs(16 * 60));
    wait_until("failing's in_retry_too_long notice", || {
        too_long(&engine, "failing") == 1
    })
    .await;
    harness.settled().await;
    assert_eq!(too_long(&engine, "gone"), 0);
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_burst_of_429s_is_one_concurrency_notice
);
/// A burst of 429s lowers concurrency step by step, but makes one notice
/// (the first step below the configured concurrency), not one per step.
async fn a_burst_of_429s_is_one_concurrency_notice(store: TestStore) {
    let busy = Receiver::start_with(Reply::status(429)).await;
    let harness = Harness::start(
        store.config().destination(
            Dest::new("busy", &busy.url())
                .concurrency(4)
                .retry_fixed("1h", 50),
        ),
    )
    .await;
    let engine = harness.engine.clone();
    for _ in 0..6 {
        harness.ingest("busy").await;
    }
    wait_until("concurrency lowered to 1", || {
        engine.destination_view("busy").unwrap().concurrency == 1
    })
    .await;
    harness.settled().await;
    let lowered = notices_of(&engine, NoticeType::ConcurrencyLowered);
    assert_eq!(lowered.len(), 1, "{lowered:?}");
    assert_eq!(
        lowered[0].kind,
        hookwatch::model::NoticeKind::ConcurrencyLowered { from: 4, to: 3 }
    );
}

/// The in-process engine's notices of one type, newest first (the first
/// page, which holds every notice these tests make).
fn notices_of(
    engine: &hookwatch::engine::Engine,
    kind: NoticeType,
) -> Vec<hookwatch::model::Notice> {
    engine
        .notices(&NoticeQuery::default())
        .unwrap()
        .notices
        .into_iter()
        .filter(|n| n.notice_type() == kind)
        .collect()
}

/// Runs `hookwatch ARGS --url DAEMON` off the async workers; answers the
/// exit code and stdout.
async fn cli(daemon: &Daemon, args: &[&str]) -> (i32, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hookwatch"));
    command
        .args(args)
        .args(["--url", &daemon.base_url])
        .env_remove("HOOKWATCH_URL")
        .env_remove("HOOKWATCH_TOKEN")
        .stdin(std::process::Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run hookwatch");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    the_cli_lists_and_acknowledges_notices
);
async fn the_cli_lists_and_acknowledges_notices(store: TestStore) {
    let receiver = Receiver::start().await;
    let daemon = Daemon::start(store.config().destination(Dest::new("a", &receiver.url()))).await;
    daemon
        .patch_destination("a", &json!({"paused": true}))
        .await;
    daemon
        .patch_destination("a", &json!({"paused": false}))
        .await;
    wait_notice(&daemon, "destination_resumed", "a").await;
    let (code, table) = cli(&daemon, &["notices"]).await;
    assert_eq!(code, 0, "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID"), "{table}");
    for column in ["WHEN", "TYPE", "WHAT", "CAUSE", "ACKED"] {
        assert!(lines[0].contains(column), "{table}");
    }
    assert!(lines[1].contains("destination_resumed"), "{table}");
    assert!(lines[1].contains("operator"), "{table}");
    assert!(lines[2].contains("destination_paused"), "{table}");
    assert_eq!(lines.last(), Some(&"2 unacknowledged"), "{table}");

    let newest = lines[1].split_whitespace().next().unwrap().to_string();
    let (code, out) = cli(&daemon, &["notices", "ack", &newest]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&newest), "{out}");
    let (code, out) = cli(&daemon, &["notices", "--unacked", "--json"]).await;
    assert_eq!(code, 0, "{out}");
    let page: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["unacked"], 1);
    assert_eq!(page["notices"][0]["type"], "destination_paused");

    let (code, out) = cli(&daemon, &["notices", "ack", "--all"]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), "acknowledged 1 notices");
    let (code, _) = cli(&daemon, &["notices", "ack", "01ARZ3NDEKTSV4RRFFQ69G5FAV"]).await;
    assert_eq!(code, 1);
    let (code, _) = cli(&daemon, &["notices", "ack", "nope"]).await;
    assert_eq!(code, 2);
}

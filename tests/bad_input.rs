//! Bad input gets a clear error that names it, and nothing is lost or
//! overwritten: idempotency keys, a truncated store file, any config text.

mod harness;

use harness::*;
use hookwatch::config::{Config, ConfigSource};
use proptest::prelude::*;

#[tokio::test]
async fn invalid_idempotency_keys_are_refused_with_400() {
    let receiver = Receiver::start().await;
    let daemon =
        Daemon::start(TestConfig::new().destination(Dest::new("a", &receiver.url()))).await;
    let too_long = "k".repeat(256);
    for (key, what) in [("", "empty"), (too_long.as_str(), "256 bytes")] {
        let (status, body) = daemon
            .send(
                daemon
                    .request(reqwest::Method::POST, "/v1/destinations/a/events")
                    .header("Idempotency-Key", key)
                    .body("{}"),
            )
            .await;
        assert_eq!(status, 400, "{what}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("Idempotency-Key"),
            "{what}: {body}"
        );
    }
    let listed = daemon.get_json("/v1/events").await;
    assert_eq!(
        listed["events"].as_array().unwrap().len(),
        0,
        "nothing refused was stored: {listed}"
    );
    let longest = "k".repeat(255);
    let (status, body) = daemon
        .send(
            daemon
                .request(reqwest::Method::POST, "/v1/destinations/a/events")
                .header("Idempotency-Key", longest)
                .body("{}"),
        )
        .await;
    assert_eq!(status, 202, "255 bytes is allowed: {body}");
}

#[tokio::test]
async fn bad_values_in_queries_and_bodies_name_their_key() {
    let receiver = Receiver::start().await;
    let daemon =
        Daemon::start(TestConfig::new().destination(Dest::new("a", &receiver.url()))).await;
    let (status, body) = daemon
        .send(daemon.request(reqwest::Method::GET, "/v1/events?after=garbage"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("after: \"garbage\""),
        "{body}"
    );
    for (patch, key) in [
        (r#"{"retry": {"max_retries": "lots"}}"#, "retry.max_retries"),
        (r#"{"enabled": null}"#, "enabled"),
        (r#"{"concurrency": "8"}"#, "concurrency"),
    ] {
        let (status, body) = daemon
            .send(
                daemon
                    .request(reqwest::Method::PATCH, "/v1/destinations/a")
                    .header("content-type", "application/json")
                    .body(patch),
            )
            .await;
        assert_eq!(status, 422, "{patch}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{key}: ")),
            "{patch}: {body}"
        );
    }
}

#[tokio::test]
async fn a_truncated_store_is_refused_clearly_and_left_as_it_was() {
    let receiver = Receiver::start().await;
    let mut daemon =
        Daemon::start(TestConfig::new().destination(Dest::new("a", &receiver.url()))).await;
    for _ in 0..20 {
        daemon.ingest("a", r#"{"keep":true}"#).await;
    }
    daemon.sigterm();
    assert!(daemon
        .wait_exit(std::time::Duration::from_secs(15))
        .await
        .success());
    let store = daemon.store_path.clone();
    let bytes = std::fs::read(&store).unwrap();
    std::fs::write(&store, &bytes[..bytes.len() / 3]).unwrap();
    let truncated = std::fs::read(&store).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hookwatch"))
        .args(["--daemon", "--config"])
        .arg(&daemon.config_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&store.display().to_string()),
        "names the file: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        std::fs::read(&store).unwrap() == truncated,
        "the truncated file was modified"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any text, TOML-looking or not: an error naming the file, never a panic.
    #[test]
    fn config_parsing_never_panics_and_errors_name_the_file(text in "(?s).{0,400}") {
        if let Err(e) = Config::parse(&text, ConfigSource::File("prop.toml".into()), None) {
            prop_assert!(e.to_string().starts_with("prop.toml: "), "{}", e);
        }
    }

    /// Well-formed TOML with arbitrary values in the known keys.
    #[test]
    fn config_values_never_panic(
        listen in "[0-9a-z.:]{0,24}",
        size in "[0-9A-Za-z ]{0,10}",
        duration in "[0-9a-z ]{0,10}",
        concurrency in any::<i64>(),
        retries in any::<i64>(),
        rule in "[0-9<>=!, -]{0,16}",
    ) {
        let text = format!(
            "[server]\nlisten = \"{listen}\"\nmax_body = \"{size}\"\n[store]\nretention = \"{duration}\"\n\
             [[destinations]]\nid = \"d\"\nurl = \"http://127.0.0.1:1/\"\ntimeout = \"{duration}\"\nconcurrency = {concurrency}\n\
             [destinations.retry]\nmax_retries = {retries}\nretry_on = \"{rule}\"\ndelay = \"{duration}\"\n"
        );
        if let Err(e) = Config::parse(&text, ConfigSource::File("prop.toml".into()), None) {
            prop_assert!(e.to_string().starts_with("prop.toml: "), "{}", e);
            prop_assert!(!e.key.is_empty(), "a value error names its key: {}", e);
        }
    }
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json_errors() {
    let daemon = Daemon::start(TestConfig::new().token("sesame")).await;
    for (method, path, status) in [
        (reqwest::Method::GET, "/no/such/thing", 404),
        (reqwest::Method::DELETE, "/v1/status", 405),
        (reqwest::Method::GET, "/v1/bulk/retry", 405),
        (reqwest::Method::PUT, "/healthz", 405),
    ] {
        let response = daemon
            .request(method.clone(), path)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("application/json"),
            "{method} {path}: content-type {content_type:?}"
        );
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.expect("a body")).expect("a JSON body");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{method} {path}: {body}"
        );
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_accepted_in_any_case_and_401_names_it() {
    let daemon = Daemon::start(TestConfig::new().token("sesame")).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (status, body) = daemon
            .send(
                daemon
                    .request_without_token(reqwest::Method::GET, "/v1/status")
                    .header("Authorization", format!("{scheme} sesame")),
            )
            .await;
        assert_eq!(status, 200, "scheme {scheme:?}: {body}");
    }
    for authorization in [None, Some("bearer wrong"), Some("Basic c2VzYW1l")] {
        let mut request = daemon.request_without_token(reqwest::Method::GET, "/v1/status");
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.expect("send");
        assert_eq!(response.status().as_u16(), 401, "{authorization:?}");
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer"),
            "{authorization:?}"
        );
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.expect("a body")).expect("a JSON body");
        assert!(body["error"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn bulk_retry_refuses_empty_ids_names_a_bad_id_and_lists_states() {
    let receiver = Receiver::start().await;
    let daemon =
        Daemon::start(TestConfig::new().destination(Dest::new("a", &receiver.url()))).await;
    let good = daemon.ingest("a", "{}").await;
    let bulk = |body: serde_json::Value| {
        daemon
            .request(reqwest::Method::POST, "/v1/bulk/retry")
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let (status, body) = daemon.send(bulk(serde_json::json!({"ids": []}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("ids:"),
        "{body}"
    );

    let (status, body) = daemon
        .send(bulk(serde_json::json!({"ids": [good, good, good, "bad"]})))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "ids[3]: not an event id: \"bad\"", "{body}");

    // A bulk filter and a listing read an unknown state alike.
    for request in [
        bulk(serde_json::json!({"state": "wat"})),
        daemon.request(reqwest::Method::GET, "/v1/events?state=wat"),
    ] {
        let (status, body) = daemon.send(request).await;
        assert_eq!(status, 400, "{body}");
        let error = body["error"].as_str().unwrap();
        for valid in [
            "pending",
            "retrying",
            "delivered",
            "failed",
            "cancelled",
            "skipped",
        ] {
            assert!(error.contains(valid), "{error}");
        }
        assert!(error.starts_with("state:"), "{error}");
    }
}

//! The daemon tells what happens: a real `hookwatch --daemon` logs each change
//! of a destination's health, 429 back-off, bulk job and live edit (and no
//! more than its rate limit allows in a storm), exports per-destination gauges
//! on `/metrics`, and the alert rules in `assets/alerts/` use only metrics it
//! exports.

mod harness;

use harness::*;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

/// The daemon's log lines that contain every one of `needles`.
fn lines_with(daemon: &Daemon, needles: &[&str]) -> Vec<String> {
    daemon
        .log_text()
        .lines()
        .filter(|line| needles.iter().all(|n| line.contains(n)))
        .map(str::to_string)
        .collect()
}

/// Waits for a log line containing every one of `needles`; returns it.
async fn wait_log(daemon: &Daemon, needles: &[&str]) -> String {
    let what = format!("a log line with {needles:?}");
    wait_for(&what, || async {
        lines_with(daemon, needles)
            .into_iter()
            .next()
            .ok_or_else(|| "not logged yet".to_string())
    })
    .await
}

async fn metrics(daemon: &Daemon) -> String {
    daemon.get_text("/metrics").await
}

/// The value of one exact series (`name{labels}`) in a scrape.
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name_and_labels).then(|| value.parse().ok())?
        })
}

fn health_series(destination: &str, state: &str) -> String {
    format!("hookwatch_destination_health{{destination=\"{destination}\",state=\"{state}\"}}")
}

/// Waits until the scrape has `name_and_labels` at `value`.
async fn wait_metric(daemon: &Daemon, name_and_labels: &str, value: f64) {
    wait_for(&format!("{name_and_labels} to be {value}"), || async {
        let text = metrics(daemon).await;
        match series(&text, name_and_labels) {
            Some(v) if v == value => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

#[tokio::test]
async fn a_destination_disabled_by_a_404_then_enabled_logs_each_change_and_shows_in_metrics() {
    let receiver = Receiver::start().await;
    receiver.push_statuses(&[404]);
    let daemon = Daemon::start(TestConfig::new().destination(
        Dest::new("orders", &receiver.url()).retry(Retry::new().on_client_error("disable")),
    ))
    .await;

    // Before anything happens: healthy, every state present.
    let text = metrics(&daemon).await;
    for (state, value) in [
        ("healthy", 1.0),
        ("in_retry", 0.0),
        ("disabled", 0.0),
        ("paused", 0.0),
    ] {
        assert_eq!(
            series(&text, &health_series("orders", state)),
            Some(value),
            "{state} in:\n{text}"
        );
    }
    assert_eq!(
        series(
            &text,
            "hookwatch_destination_oldest_owed_age_seconds{destination=\"orders\"}"
        ),
        Some(0.0)
    );

    daemon.ingest("orders", r#"{"n":1}"#).await;
    let disabled = wait_log(&daemon, &["orders", "disabled", "404"]).await;
    assert!(disabled.contains("INFO"), "{disabled}");
    wait_metric(&daemon, &health_series("orders", "disabled"), 1.0).await;
    wait_metric(&daemon, &health_series("orders", "healthy"), 0.0).await;

    // Held: a new event waits, and the oldest owed age grows from it.
    daemon.ingest("orders", r#"{"n":2}"#).await;
    wait_for("the oldest owed age to be above 0", || async {
        let text = metrics(&daemon).await;
        match series(
            &text,
            "hookwatch_destination_oldest_owed_age_seconds{destination=\"orders\"}",
        ) {
            Some(age) if age > 0.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    daemon
        .patch_destination("orders", &json!({ "enabled": true }))
        .await;
    let enabled = wait_log(&daemon, &["destination orders enabled"]).await;
    assert!(enabled.contains("cause=\"operator\""), "{enabled}");
    assert!(enabled.contains("health="), "{enabled}");
    // The held event is delivered (the receiver now answers 200): recovered.
    wait_log(&daemon, &["orders", "recovered"]).await;
    wait_metric(&daemon, &health_series("orders", "disabled"), 0.0).await;
    wait_metric(&daemon, &health_series("orders", "healthy"), 1.0).await;
    wait_metric(
        &daemon,
        "hookwatch_destination_oldest_owed_age_seconds{destination=\"orders\"}",
        0.0,
    )
    .await;
    // The 404 disabled it: that is its one line, not also "in retry".
    assert_eq!(
        lines_with(&daemon, &["orders", "in retry"]).len(),
        0,
        "{}",
        daemon.log_text()
    );
    // Enabling is not an edit: no "edited" line for it.
    assert_eq!(lines_with(&daemon, &["orders", "edited"]).len(), 0);
}

#[tokio::test]
async fn a_storm_of_failures_logs_a_bounded_number_of_lines() {
    // "steady" fails every attempt: in retry once, however many fail.
    let steady = Receiver::start_with(Reply::status(400)).await;
    // "flappy" alternates failure and success: every attempt changes its health.
    let flappy = Receiver::start().await;
    let attempts = 60;
    flappy.push_statuses(&[400, 200].repeat(attempts / 2));
    let daemon = Daemon::start(
        TestConfig::new()
            .destination(
                Dest::new("steady", &steady.url())
                    .concurrency(1)
                    .retry(Retry::new().on_client_error("fail")),
            )
            .destination(
                Dest::new("flappy", &flappy.url())
                    .concurrency(1)
                    .retry(Retry::new().on_client_error("fail")),
            ),
    )
    .await;
    for n in 0..attempts {
        daemon.ingest("steady", &format!(r#"{{"n":{n}}}"#)).await;
        daemon.ingest("flappy", &format!(r#"{{"n":{n}}}"#)).await;
    }
    // Every attempt made and recorded (a 400 is not retried under
    // on_client_error = "fail": each event is finished by its one attempt).
    for (destination, delivered, failed) in [
        ("steady", 0, attempts),
        ("flappy", attempts / 2, attempts / 2),
    ] {
        wait_for(
            &format!("every attempt of {destination} to be recorded"),
            || async {
                let counts = daemon.destination(destination).await["counts"].clone();
                if counts["delivered"] == delivered && counts["failed"] == failed {
                    Ok(())
                } else {
                    Err(counts.to_string())
                }
            },
        )
        .await;
    }

    assert_eq!(
        lines_with(&daemon, &["steady", "is in retry"]).len(),
        1,
        "{}",
        daemon.log_text()
    );
    let flaps = lines_with(&daemon, &["flappy", "is in retry"]).len()
        + lines_with(&daemon, &["flappy", "recovered"]).len();
    assert!(
        (1..=10).contains(&flaps),
        "{flaps} health lines for 60 flapping attempts:\n{}",
        daemon.log_text()
    );

    // The rest is summed up when the window ends, or at the latest on stop.
    let mut daemon = daemon;
    daemon.sigterm();
    daemon.wait_exit(Duration::from_secs(20)).await;
    let summary = lines_with(&daemon, &["flappy", "suppressed"]);
    assert_eq!(summary.len(), 1, "{}", daemon.log_text());
    assert!(
        summary[0].contains(&format!("suppressed {} similar lines", attempts - flaps)),
        "{}",
        summary[0]
    );
}

#[tokio::test]
async fn a_429_lowers_concurrency_with_a_log_line_and_the_gauge() {
    let receiver = Receiver::start().await;
    receiver.push_statuses(&[429]);
    let daemon = Daemon::start(
        TestConfig::new().destination(
            Dest::new("busy", &receiver.url())
                .concurrency(4)
                .retry_fixed("1h", 5),
        ),
    )
    .await;
    wait_metric(
        &daemon,
        "hookwatch_destination_concurrency{destination=\"busy\"}",
        4.0,
    )
    .await;
    daemon.ingest("busy", "{}").await;
    wait_log(&daemon, &["busy", "429", "concurrency lowered from 4 to 3"]).await;
    wait_metric(
        &daemon,
        "hookwatch_destination_concurrency{destination=\"busy\"}",
        3.0,
    )
    .await;
    // The attempt is over once its outcome is recorded.
    wait_metric(
        &daemon,
        "hookwatch_destination_in_flight{destination=\"busy\"}",
        0.0,
    )
    .await;
}

#[tokio::test]
async fn a_bulk_retry_logs_its_start_and_results() {
    // A 400 under on_client_error = "fail" fails the event at once.
    let receiver = Receiver::start_with(Reply::status(400)).await;
    let daemon = Daemon::start(TestConfig::new().destination(
        Dest::new("bulk", &receiver.url()).retry(Retry::new().on_client_error("fail")),
    ))
    .await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(daemon.ingest("bulk", &format!(r#"{{"n":{n}}}"#)).await);
    }
    for id in &ids {
        daemon.wait_event_state(id, "failed").await;
    }
    receiver.set_default(Reply::status(200));
    let (status, job) = daemon
        .send(
            daemon
                .request(Method::POST, "/v1/bulk/retry")
                .header("content-type", "application/json")
                .body(json!({ "destination": "bulk", "state": "failed" }).to_string()),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let job_id = job["id"].as_str().expect("job id").to_string();
    let started = wait_log(&daemon, &["bulk retry", &job_id, "started"]).await;
    assert!(started.contains("3 events"), "{started}");
    assert!(started.contains("destination=bulk"), "{started}");
    assert!(started.contains("state=failed"), "{started}");
    let finished = wait_log(&daemon, &["bulk retry", &job_id, "finished"]).await;
    assert!(
        finished.contains("3 delivered, 0 failed, 0 skipped"),
        "{finished}"
    );
}

#[tokio::test]
async fn a_live_edit_logs_the_keys_it_set_and_dropped() {
    let receiver = Receiver::start().await;
    let daemon =
        Daemon::start(TestConfig::new().destination(Dest::new("edited", &receiver.url()))).await;
    daemon
        .patch_destination(
            "edited",
            &json!({ "concurrency": 2, "retry": { "delay": "5s" }, "paused": true }),
        )
        .await;
    let line = wait_log(&daemon, &["edited", "set ["]).await;
    for key in ["concurrency", "retry.delay"] {
        assert!(line.contains(key), "{key} missing: {line}");
    }
    // Pausing has its own line, with the health and who did it.
    assert!(!line.contains("paused"), "{line}");
    let paused = wait_log(&daemon, &["destination edited paused"]).await;
    assert!(paused.contains("health=\"paused\""), "{paused}");
    assert!(paused.contains("cause=\"operator\""), "{paused}");
    wait_metric(&daemon, &health_series("edited", "paused"), 1.0).await;
    wait_metric(
        &daemon,
        "hookwatch_destination_concurrency{destination=\"edited\"}",
        2.0,
    )
    .await;

    daemon
        .patch_destination("edited", &json!({ "concurrency": null, "paused": false }))
        .await;
    let line = wait_log(&daemon, &["edited", "dropped [concurrency]"]).await;
    assert!(line.contains("set []"), "{line}");
    let resumed = wait_log(&daemon, &["destination edited resumed"]).await;
    assert!(resumed.contains("health=\"healthy\""), "{resumed}");
    assert!(resumed.contains("cause=\"operator\""), "{resumed}");
    wait_metric(&daemon, &health_series("edited", "healthy"), 1.0).await;
    // A pause and a resume alone are no edit: their own lines only.
    daemon
        .patch_destination("edited", &json!({ "paused": true }))
        .await;
    wait_log(&daemon, &["destination edited paused", "operator"]).await;
    daemon
        .patch_destination("edited", &json!({ "paused": false }))
        .await;
    wait_for("a second resumed line", || async {
        match lines_with(&daemon, &["destination edited resumed"]).len() {
            2 => Ok(()),
            n => Err(format!("{n} resumed lines")),
        }
    })
    .await;
    assert_eq!(
        lines_with(&daemon, &["edited", "edited: set"]).len(),
        2,
        "{}",
        daemon.log_text()
    );
}

/// The metric names an alert rule's `expr` uses: identifiers starting with
/// `hookwatch_`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("hookwatch_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn the_alert_rules_use_only_metrics_a_daemon_exports() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/alerts/hookwatch.rules.yml"
    );
    let rules = std::fs::read_to_string(path).expect("read the alert rules");

    // No YAML crate in the dependencies: a structural check of the shape
    // Prometheus expects (groups, a named group, rules with alert and expr),
    // and no tabs (YAML forbids them for indentation).
    assert!(!rules.contains('\t'), "tabs in {path}");
    assert!(
        rules.lines().any(|l| l == "groups:"),
        "no top-level groups:"
    );
    assert!(rules.contains("  - name: hookwatch"), "no named group");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- alert: "))
        .collect();
    let exprs: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("expr: "))
        .collect();
    assert_eq!(alerts.len(), exprs.len(), "each rule needs one expr");
    for wanted in [
        "HookwatchDestinationDisabled",
        "HookwatchDestinationInRetry",
        "HookwatchOldestOwedEventOld",
    ] {
        assert!(alerts.contains(&wanted), "{wanted} missing");
    }

    let receiver = Receiver::start().await;
    let daemon =
        Daemon::start(TestConfig::new().destination(Dest::new("orders", &receiver.url()))).await;
    let text = metrics(&daemon).await;
    let exported: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut used = 0;
    for expr in exprs {
        for name in metric_names(expr) {
            used += 1;
            assert!(
                exported.contains(&name.as_str()),
                "the alert rules use {name}, which /metrics does not export:\n{text}"
            );
        }
    }
    assert!(used >= 3, "the rules name no metrics?");
}

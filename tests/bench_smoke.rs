//! A CI-sized run of every `hookwatch bench` scenario, so the benchmark itself
//! never rots. The figures are not judged here (a debug build on a busy CI box
//! proves nothing about speed); only that each scenario runs to the end, every
//! event arrives and the JSON line carries every field the README promises.

use serde_json::Value;
use std::process::Command;

fn bench(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_hookwatch"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("run hookwatch bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().expect("bench printed nothing");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

#[test]
fn throughput_delivers_every_event_and_reports_every_field() {
    let report = bench(&[
        "--events",
        "300",
        "--concurrency",
        "8",
        "--destinations",
        "2",
    ]);
    assert_eq!(report["delivered"], 300, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    for field in [
        "events",
        "concurrency",
        "payload_bytes",
        "ingest_per_s",
        "delivered_per_s",
        "raw_http_per_s",
        "ratio",
        "peak_rss_mb",
        "engine_cpu_ms_per_event",
        "store_bytes",
    ] {
        assert!(report[field].is_number(), "{field} missing in {report}");
    }
    for field in ["p50", "p99", "max"] {
        assert!(
            report["latency_ms"][field].as_f64().unwrap() > 0.0,
            "{report}"
        );
    }
}

#[test]
fn throughput_with_batches_delivers_every_event_once() {
    // 310 events in batches of 50 (the last one short), posted while
    // delivery is paused: every one still arrives once it resumes.
    let report = bench(&[
        "--paused",
        "--events",
        "310",
        "--concurrency",
        "4",
        "--batch",
        "50",
        "--destinations",
        "2",
    ]);
    assert_eq!(report["batch"], 50, "{report}");
    assert_eq!(report["paused"], true, "{report}");
    assert_eq!(report["delivered"], 310, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert!(
        report["latency_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{report}"
    );
}

#[test]
fn throughput_with_failures_still_delivers_everything() {
    let report = bench(&[
        "--events",
        "200",
        "--concurrency",
        "8",
        "--fail-rate",
        "0.2",
    ]);
    assert_eq!(report["delivered"], 200, "{report}");
}

#[test]
fn idle_and_backlog_scenarios_run() {
    let idle = bench(&[
        "--scenario",
        "idle",
        "--idle-events",
        "500",
        "--idle-for",
        "1s",
    ]);
    assert!(idle["cpu_percent"].is_number(), "{idle}");
    let backlog = bench(&["--scenario", "backlog", "--backlog-events", "1000"]);
    assert_eq!(backlog["lateness_sample"], 999, "{backlog}");
    assert!(
        backlog["restart_to_first_delivery_ms"].as_f64().unwrap() > 0.0,
        "{backlog}"
    );
}

#[test]
fn tui_scenario_times_frames_over_a_stored_backlog() {
    let report = bench(&["--scenario", "tui", "--backlog-events", "2000"]);
    assert_eq!(report["stored_events"], 2000, "{report}");
    assert_eq!(report["frames"], 300, "{report}");
    assert!(
        report["render_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(report["open_ms"].as_f64().unwrap() > 0.0, "{report}");
    assert!(
        report["load_notifications"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert!(
        report["load_frames_per_s"].as_f64().unwrap() > 0.0,
        "{report}"
    );
}

#[test]
fn listing_scenario_times_first_pages_under_load() {
    let report = bench(&[
        "--scenario",
        "listing",
        "--backlog-events",
        "3000",
        "--events",
        "400",
        "--rate",
        "400",
        "--concurrency",
        "8",
    ]);
    assert_eq!(report["stored_events"], 3000, "{report}");
    assert_eq!(report["failed_events"], 300, "{report}");
    assert!(report["samples"].as_u64().unwrap() > 0, "{report}");
    for listing in ["state_failed_ms", "topic_glob_ms"] {
        for field in ["p50", "p99", "max"] {
            assert!(
                report[listing][field].as_f64().unwrap() > 0.0,
                "{listing}.{field} in {report}"
            );
        }
    }
}

#[test]
fn tui_scenario_attached_to_a_daemon_times_keys_and_follows_the_load() {
    let report = bench(&[
        "--scenario",
        "tui",
        "--attach",
        "--backlog-events",
        "2000",
        "--events",
        "1000",
        "--rate",
        "1000",
        "--concurrency",
        "8",
    ]);
    assert_eq!(report["attach"], true, "{report}");
    assert_eq!(report["stored_events"], 2000, "{report}");
    assert_eq!(report["scroll_keys"], 300, "{report}");
    assert_eq!(report["detail_keys"], 15, "{report}");
    assert!(report["open_ms"].as_f64().unwrap() > 0.0, "{report}");
    for latency in ["scroll_to_frame_ms", "open_detail_to_frame_ms"] {
        assert!(
            report[latency]["p99"].as_f64().unwrap() > 0.0,
            "{latency} in {report}"
        );
    }
    assert!(
        report["load_delivered_per_s"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        report["load_frames_per_s"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(report["load_lag_samples"].as_u64().unwrap() > 0, "{report}");
}

#[test]
fn destinations_scenario_creates_through_the_api_and_fans_out() {
    let report = bench(&[
        "--scenario",
        "destinations",
        "--destinations",
        "200",
        "--backlog-events",
        "2000",
    ]);
    assert_eq!(report["destinations"], 200, "{report}");
    assert_eq!(report["backlog_events"], 2000, "{report}");
    // A tenth of the destinations subscribe to each fan-out topic, and every
    // fan-out event arrived.
    assert_eq!(report["fanout_destinations"], 20, "{report}");
    assert_eq!(report["fanout_delivered"], 100 * 20, "{report}");
    for latency in ["create_ms", "fanout_ack_ms"] {
        for field in ["p50", "p99", "max"] {
            assert!(
                report[latency][field].as_f64().unwrap() > 0.0,
                "{latency}.{field} in {report}"
            );
        }
    }
    for field in [
        "engine_start_ms",
        "idle_cpu_percent",
        "rss_mb",
        "created_per_s",
    ] {
        assert!(report[field].is_number(), "{field} missing in {report}");
    }
    assert!(
        report["engine_start_ms"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        report["tui_frame_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        report["fanout_all_delivered_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{report}"
    );
}

#[test]
fn purge_scenario_purges_every_seeded_event_while_ingesting() {
    let report = bench(&[
        "--scenario",
        "purge",
        "--purge-events",
        "2000",
        "--rate",
        "200",
    ]);
    assert_eq!(report["purged_events"], 2000, "{report}");
    assert!(report["purge_seconds"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["ingest_latency_ms"]["p99"].is_number(), "{report}");
}

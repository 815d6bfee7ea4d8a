//! The disk budget (`store.max_size`), step by step, against the real binary:
//! finished events are purged first as the store nears its budget; once owed
//! events alone fill it, ingestion answers 507 (and nothing it acknowledged
//! is missing), a `store_full` notice and `GET /v1/status` say so, and when
//! deliveries free room ingestion resumes by itself. The file never grows
//! past the budget.

mod harness;

use harness::*;
use serde_json::json;
use std::time::Duration;

const BUDGET: u64 = 4 << 20;

fn body(seq: usize) -> String {
    // 16 KiB bodies fill a small budget in a few hundred events.
    format!("{{\"seq\":{seq},\"pad\":\"{}\"}}", "x".repeat(16 * 1024))
}

fn file_len(daemon: &Daemon) -> u64 {
    std::fs::metadata(&daemon.store_path).unwrap().len()
}

/// The store's commits so far, from `/metrics`.
async fn commits(daemon: &Daemon) -> u64 {
    let metrics = daemon.get_text("/metrics").await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("hookwatch_store_commits_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no commit count in {metrics}"))
}

#[tokio::test]
async fn a_small_budget_purges_finished_events_then_refuses_then_resumes() {
    let receiver = Receiver::start().await;
    let daemon = Daemon::start(
        TestConfig::new()
            .max_size("4MiB")
            .destination(Dest::new("done", &receiver.url()))
            .destination(Dest::new("held", &receiver.url())),
    )
    .await;
    daemon
        .patch_destination("held", &json!({ "paused": true }))
        .await;

    // Step 1: events delivered, so finished.
    let mut finished = Vec::new();
    for seq in 0..20 {
        finished.push(daemon.ingest("done", &body(seq)).await);
    }
    wait_until("the finished events delivered", || {
        receiver.missing(&finished).is_empty()
    })
    .await;
    for id in &finished {
        daemon.wait_event_state(id, "delivered").await;
    }

    // Step 2: events owed (their destination is paused) until the store is
    // full. The finished events make room first: they are gone before
    // anything is refused.
    let mut owed = Vec::new();
    let mut refusal = None;
    for seq in 100..1100 {
        let (status, reply) = daemon.post_event("held", &body(seq)).await;
        match status {
            202 => owed.push(event_id_of(&reply)),
            507 => {
                refusal = Some(reply);
                break;
            }
            other => panic!("unexpected {other}: {reply}"),
        }
        assert!(
            file_len(&daemon) <= BUDGET,
            "the file grew to {} past the budget",
            file_len(&daemon)
        );
    }
    let refusal = refusal.expect("the store never filled up");
    println!(
        "{} owed events acknowledged, then 507: {refusal}",
        owed.len()
    );
    let error = refusal["error"].as_str().unwrap();
    assert!(error.starts_with("store full: "), "{refusal}");
    assert!(error.contains("used of"), "{refusal}");
    assert!(error.contains("store.max_size = 4 MiB"), "{refusal}");
    assert_eq!(refusal["code"], "store_full", "{refusal}");
    assert!(
        owed.len() > finished.len(),
        "the purged finished events made room for more owed ones ({} owed)",
        owed.len()
    );
    for id in &finished {
        let (status, _) = daemon
            .send(daemon.request(reqwest::Method::GET, &format!("/v1/events/{id}")))
            .await;
        assert_eq!(status, 404, "finished event {id} still stored");
    }
    // Nothing acknowledged is missing.
    for id in &owed {
        assert_eq!(daemon.event(id).await["state"], "pending", "{id}");
    }
    assert!(file_len(&daemon) <= BUDGET);

    // Step 3: it keeps refusing while full, and says so.
    let (status, _) = daemon.post_event("held", &body(0)).await;
    assert_eq!(status, 507);
    let status = daemon.get_json("/v1/status").await;
    assert_eq!(status["store"]["full"], true, "{status}");
    assert_eq!(status["store"]["budget_bytes"], BUDGET, "{status}");
    assert!(
        status["store"]["used_bytes"].as_u64().unwrap()
            <= status["store"]["ceiling_bytes"].as_u64().unwrap(),
        "{status}"
    );
    let notice = wait_for("the store_full notice", || async {
        let page = daemon.get_json("/v1/notices").await;
        page["notices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "store_full")
            .cloned()
            .ok_or_else(|| page.to_string())
    })
    .await;
    assert_eq!(notice["budget_bytes"], BUDGET, "{notice}");
    assert_eq!(notice["cause"]["by"], "store", "{notice}");
    assert!(
        notice["message"]
            .as_str()
            .unwrap()
            .contains("until deliveries free room"),
        "{notice}"
    );

    // Full with owed events alone is a steady state: the purge has nothing
    // to remove, so it writes nothing (no commit per wake, no spinning).
    let settled = wait_for_within(
        Duration::from_secs(30),
        "the store's commits to settle while full",
        || async {
            let before = commits(&daemon).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let after = commits(&daemon).await;
            if after - before <= 2 {
                Ok(after - before)
            } else {
                Err(format!("{} commits in a second while full", after - before))
            }
        },
    )
    .await;
    println!("{settled} commits in a settled second while full");

    // Step 4: deliveries free room, and ingestion resumes by itself.
    daemon
        .patch_destination("held", &json!({ "paused": false }))
        .await;
    let resumed = wait_for_within(Duration::from_secs(60), "ingestion to resume", || async {
        let (status, reply) = daemon.post_event("held", &body(9999)).await;
        match status {
            202 => Ok(event_id_of(&reply)),
            507 => Err(reply.to_string()),
            other => panic!("unexpected {other}: {reply}"),
        }
    })
    .await;
    owed.push(resumed);
    wait_until_within(
        Duration::from_secs(60),
        "every acknowledged event delivered",
        || receiver.missing(&owed).is_empty(),
    )
    .await;
    let status = daemon.get_json("/v1/status").await;
    assert_eq!(status["store"]["full"], false, "{status}");
    assert!(file_len(&daemon) <= BUDGET);
    assert!(
        daemon.log_text().contains("ingestion resumes"),
        "{}",
        daemon.log_text()
    );
}

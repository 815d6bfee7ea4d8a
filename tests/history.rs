//! A destination's history by the minute: kept across restarts, served by
//! `GET /v1/destinations/{id}/stats`, and read by its health (`degraded`).

mod harness;

use harness::*;
use serde_json::Value;

fn sums(stats: &Value) -> (u64, u64, u64) {
    let minutes = stats["minutes"].as_array().expect("minutes");
    minutes.iter().fold((0, 0, 0), |(a, d, c), m| {
        (
            a + m["attempts"].as_u64().unwrap(),
            d + m["delivered"].as_u64().unwrap(),
            c + m["outcomes"]["client_error"].as_u64().unwrap_or(0),
        )
    })
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_mostly_failing_destination_is_degraded_and_its_minutes_survive_a_restart
);
async fn a_mostly_failing_destination_is_degraded_and_its_minutes_survive_a_restart(
    store: TestStore,
) {
    let receiver = Receiver::start().await;
    // 5 of 12 answered with a 2xx (42 %), ending on a success, so the
    // destination is not in retry: only its record says something is wrong.
    receiver.then(
        std::iter::repeat_n(Reply::status(400), 7)
            .chain(std::iter::repeat_n(Reply::status(200), 5)),
    );
    let mut daemon = Daemon::start(
        store.config().destination(
            Dest::new("shaky", &receiver.url())
                .concurrency(1)
                .retry(Retry::new().on_client_error("fail")),
        ),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(daemon.ingest("shaky", "{}").await);
    }
    for id in &ids {
        wait_until_async("every event to finish", || async {
            let state = daemon.event(id).await["state"].clone();
            state == "delivered" || state == "failed"
        })
        .await;
    }
    let destination = daemon.destination("shaky").await;
    assert_eq!(destination["health"], "degraded", "{destination}");
    let stats = daemon
        .get_json("/v1/destinations/shaky/stats?window=1h")
        .await;
    assert_eq!(stats["window"], "1h");
    assert_eq!(sums(&stats), (12, 5, 7), "{stats}");
    let minute = &stats["minutes"][0];
    assert!(minute["latency_p50_ms"].is_u64(), "{minute}");
    let metrics = daemon.get_text("/metrics").await;
    assert!(
        metrics
            .contains("hookwatch_destination_health{destination=\"shaky\",state=\"degraded\"} 1"),
        "{metrics}"
    );

    daemon.sigterm();
    daemon.wait_exit(DEADLINE).await;
    daemon.restart().await;
    let day = daemon
        .get_json("/v1/destinations/shaky/stats?window=24h")
        .await;
    assert_eq!(sums(&day), (12, 5, 7), "{day}");
    assert_eq!(daemon.destination("shaky").await["health"], "degraded");

    let (status, reply) = daemon
        .send(daemon.request(
            reqwest::Method::GET,
            "/v1/destinations/shaky/stats?window=7d",
        ))
        .await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply["error"].as_str().unwrap().starts_with("window:"));
    let (status, _) = daemon
        .send(daemon.request(reqwest::Method::GET, "/v1/destinations/nope/stats"))
        .await;
    assert_eq!(status, 404);
}

//! The retry designs end to end: the real engine on virtual time against scripted
//! receivers on 127.0.0.1.

mod harness;

use harness::*;
use hookwatch::engine::{BulkSelection, DestinationPatch, JobState};
use hookwatch::model::EventState;
use hookwatch::policy::Trigger;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    fails_then_retries_on_schedule_then_delivers_with_history
);
async fn fails_then_retries_on_schedule_then_delivers_with_history(store: TestStore) {
    let receiver = Receiver::start().await;
    receiver.then([Reply::status(500), Reply::status(503)]);
    let h = Harness::start(
        store.config().destination(
            Dest::new("a", &receiver.url())
                .retry(Retry::new().schedule("fixed").delay("1m").max_retries(3)),
        ),
    )
    .await;
    let id = h.ingest("a").await;
    h.wait_attempts(id, 1).await;
    assert_eq!(h.state(id), EventState::Retrying);
    let event = h.engine.get_event(id).unwrap().event;
    assert_eq!(
        event.next_attempt_at,
        Some(epoch() + chrono::Duration::minutes(1))
    );

    // Nothing happens before the due time.
    h.advance(Duration::from_secs(59));
    h.settled().await;
    assert_eq!(receiver.count(), 1, "retried before its due time");

    h.advance(Duration::from_secs(1));
    h.wait_attempts(id, 2).await;
    h.advance(MINUTE);
    h.wait_state(id, EventState::Delivered).await;

    let detail = h.engine.get_event(id).unwrap();
    let triggers: Vec<Trigger> = detail.attempts.iter().map(|a| a.trigger).collect();
    assert_eq!(
        triggers,
        [Trigger::Initial, Trigger::Automatic, Trigger::Automatic]
    );
    let statuses: Vec<Option<u16>> = detail.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
    assert_eq!(detail.attempts[0].decision, "retry in 1m");
    assert_eq!(detail.attempts[2].decision, "delivered");

    let seen = receiver.hits();
    let attempt_numbers: Vec<String> = seen
        .iter()
        .map(|s| s.header("hookwatch-attempt").unwrap())
        .collect();
    assert_eq!(attempt_numbers, ["1", "2", "3"]);
    assert!(seen
        .iter()
        .all(|s| s.header("webhook-id").unwrap() == id.to_string()));
    assert_eq!(
        seen[0].header("hookwatch-will-retry-after").as_deref(),
        Some("60")
    );
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    last_automatic_attempt_carries_no_will_retry_after
);
async fn last_automatic_attempt_carries_no_will_retry_after(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let h = Harness::start(
        store.config().destination(
            Dest::new("a", &receiver.url())
                .retry(Retry::new().schedule("fixed").delay("1m").max_retries(1)),
        ),
    )
    .await;
    let id = h.ingest("a").await;
    h.wait_attempts(id, 1).await;
    h.advance(MINUTE);
    h.wait_state(id, EventState::Failed).await;
    let seen = receiver.hits();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].header("hookwatch-will-retry-after").is_some());
    assert_eq!(seen[1].header("hookwatch-will-retry-after"), None);
    let detail = h.engine.get_event(id).unwrap();
    assert_eq!(
        detail.event.reason.as_ref().map(|r| r.as_str()),
        Some("retries_exhausted")
    );
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    retry_mode_then_recovery_flushes_the_backlog_oldest_first
);
async fn retry_mode_then_recovery_flushes_the_backlog_oldest_first(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let h = Harness::start(
        store.config().destination(
            Dest::new("a", &receiver.url())
                .concurrency(1)
                .retry(Retry::new().schedule("fixed").delay("1h").max_retries(5)),
        ),
    )
    .await;
    let mut backlog = Vec::new();
    for _ in 0..3 {
        let id = h.ingest("a").await;
        h.wait_attempts(id, 1).await;
        backlog.push(id);
    }
    assert!(h.engine.destination_view("a").unwrap().in_retry);

    // The endpoint recovers: a new event is attempted at once (no clock advance),
    // its 2xx ends retry mode and the backlog is attempted now, oldest first.
    receiver.set_default(Reply::status(200));
    let fresh = h.ingest("a").await;
    h.wait_state(fresh, EventState::Delivered).await;
    for id in &backlog {
        h.wait_state(*id, EventState::Delivered).await;
    }
    assert!(!h.engine.destination_view("a").unwrap().in_retry);
    for id in &backlog {
        let detail = h.engine.get_event(*id).unwrap();
        assert_eq!(detail.attempts.last().unwrap().trigger, Trigger::Flush);
    }
    let order: Vec<String> = receiver.hits()[4..]
        .iter()
        .map(|s| s.header("webhook-id").unwrap())
        .collect();
    let expected: Vec<String> = backlog.iter().map(|id| id.to_string()).collect();
    assert_eq!(order, expected, "flushed oldest first");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    client_error_fails_at_once_and_disables_the_destination_until_enabled
);
async fn client_error_fails_at_once_and_disables_the_destination_until_enabled(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(404)).await;
    let h = Harness::start(store.config().destination(
        Dest::new("a", &receiver.url()).retry(Retry::new().on_client_error("disable")),
    ))
    .await;
    let id = h.ingest("a").await;
    h.wait_state(id, EventState::Failed).await;
    // The destination is disabled after the outcome is recorded, by the same attempt.
    h.settled().await;
    let detail = h.engine.get_event(id).unwrap();
    assert!(
        detail.attempts[0]
            .decision
            .starts_with("gave up: 404 not retriable"),
        "{}",
        detail.attempts[0].decision
    );
    assert_eq!(
        detail.event.reason.as_ref().map(|r| r.as_str()),
        Some("not_retriable")
    );
    let view = h.engine.destination_view("a").unwrap();
    assert!(
        !view.enabled,
        "a 404 with on_client_error=disable disables the destination"
    );

    receiver.set_default(Reply::status(200));
    let held = h.ingest("a").await;
    h.advance(HOUR);
    h.settled().await;
    assert_eq!(h.state(held), EventState::Pending, "held while disabled");
    assert_eq!(receiver.count(), 1);

    h.engine
        .patch_destination(
            "a",
            DestinationPatch {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.wait_state(held, EventState::Delivered).await;
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    too_many_redirects_is_not_retried
);
async fn too_many_redirects_is_not_retried(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(302)).await;
    receiver.set_default(Reply::status(302).header("location", "/loop"));
    let h = Harness::start(
        store
            .config()
            .destination(Dest::new("a", &receiver.url()).retry(Retry::new().max_retries(5))),
    )
    .await;
    let id = h.ingest("a").await;
    h.wait_state(id, EventState::Failed).await;
    let detail = h.engine.get_event(id).unwrap();
    assert_eq!(
        detail.event.reason.as_ref().map(|r| r.as_str()),
        Some("too_many_redirects")
    );
    assert_eq!(receiver.count(), 4, "the first request and 3 redirects");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    rate_limiting_lowers_concurrency_but_never_below_one
);
async fn rate_limiting_lowers_concurrency_but_never_below_one(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(429)).await;
    let h = Harness::start(
        store.config().destination(
            Dest::new("a", &receiver.url())
                .concurrency(3)
                .retry(Retry::new().delay("1h")),
        ),
    )
    .await;
    for expected in [2, 1, 1] {
        let id = h.ingest("a").await;
        h.wait_attempts(id, 1).await;
        let engine = h.engine.clone();
        wait_until_async("concurrency to settle", || {
            let engine = engine.clone();
            async move { engine.destination_view("a").unwrap().concurrency == expected }
        })
        .await;
    }
    assert_eq!(h.engine.destination_view("a").unwrap().max_concurrency, 3);
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    retry_after_overrides_the_schedule_and_minus_one_cancels
);
async fn retry_after_overrides_the_schedule_and_minus_one_cancels(store: TestStore) {
    let receiver = Receiver::start().await;
    receiver.then([
        Reply::status(503).header("retry-after", "120"),
        Reply::status(503).header("retry-after", "-1"),
    ]);
    let h = Harness::start(store.config().destination(
        Dest::new("a", &receiver.url()).retry(Retry::new().schedule("fixed").delay("1h")),
    ))
    .await;
    let id = h.ingest("a").await;
    h.wait_attempts(id, 1).await;
    let event = h.engine.get_event(id).unwrap().event;
    assert_eq!(
        event.next_attempt_at,
        Some(epoch() + chrono::Duration::seconds(120)),
        "Retry-After: 120 replaces the 1h delay"
    );
    h.advance(Duration::from_secs(120));
    h.wait_state(id, EventState::Cancelled).await;
    let detail = h.engine.get_event(id).unwrap();
    assert_eq!(detail.attempts[1].decision, "cancelled by Retry-After: -1");
    assert_eq!(detail.event.next_attempt_at, None);
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    manual_retry_success_cancels_the_schedule_and_failure_keeps_it
);
async fn manual_retry_success_cancels_the_schedule_and_failure_keeps_it(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let h = Harness::start(
        store.config().destination(
            Dest::new("a", &receiver.url())
                .retry(Retry::new().schedule("fixed").delay("1h").max_retries(2)),
        ),
    )
    .await;
    let id = h.ingest("a").await;
    h.wait_attempts(id, 1).await;
    let scheduled = h.engine.get_event(id).unwrap().event.next_attempt_at;

    let failed = h.engine.retry_now(id).await.unwrap();
    assert!(!failed.success);
    let after_failure = h.engine.get_event(id).unwrap().event;
    assert_eq!(after_failure.state, EventState::Retrying);
    assert_eq!(
        after_failure.next_attempt_at, scheduled,
        "the schedule goes on as before"
    );
    assert_eq!(
        after_failure.automatic_retries, 0,
        "manual attempts do not count"
    );

    receiver.set_default(Reply::status(200));
    let delivered = h.engine.retry_now(id).await.unwrap();
    assert!(delivered.success);
    let event = h.engine.get_event(id).unwrap().event;
    assert_eq!(event.state, EventState::Delivered);
    assert_eq!(event.next_attempt_at, None);
    h.advance(DAY);
    h.settled().await;
    assert_eq!(
        receiver.count(),
        3,
        "no automatic retry after a manual success"
    );
    let triggers: Vec<Trigger> = h
        .engine
        .get_event(id)
        .unwrap()
        .attempts
        .iter()
        .map(|a| a.trigger)
        .collect();
    assert_eq!(
        triggers,
        [Trigger::Initial, Trigger::Manual, Trigger::Manual]
    );
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    mute_stops_automatic_retries_but_manual_retry_still_works
);
async fn mute_stops_automatic_retries_but_manual_retry_still_works(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let h = Harness::start(store.config().destination(
        Dest::new("a", &receiver.url()).retry(Retry::new().schedule("fixed").delay("1m")),
    ))
    .await;
    let id = h.ingest("a").await;
    h.wait_attempts(id, 1).await;
    let muted = h.engine.mute(id).await.unwrap();
    assert_eq!(muted.state, EventState::Cancelled);
    assert_eq!(muted.next_attempt_at, None);
    h.advance(DAY);
    h.settled().await;
    assert_eq!(receiver.count(), 1, "muted events are not retried");
    receiver.set_default(Reply::status(200));
    assert!(h.engine.retry_now(id).await.unwrap().success);
    assert_eq!(h.state(id), EventState::Delivered);
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    requeue_restarts_the_cycle_and_max_age_counts_from_it
);
async fn requeue_restarts_the_cycle_and_max_age_counts_from_it(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let h = Harness::start(
        store.config().destination(
            Dest::new("a", &receiver.url())
                .retry(Retry::new().policy("none").schedule("fixed").delay("1m")),
        ),
    )
    .await;
    let id = h.ingest("a").await;
    h.wait_attempts(id, 1).await;
    h.advance(MINUTE);
    h.wait_state(id, EventState::Failed).await;
    assert_eq!(receiver.count(), 2, "policy none: exactly one retry");

    h.advance(DAY);
    let requeued = h.engine.requeue(id).await.unwrap();
    assert_eq!(requeued.automatic_retries, 0);
    assert_eq!(
        requeued.cycle_started_at,
        epoch() + chrono::Duration::minutes(1441)
    );
    h.wait_attempts(id, 3).await;
    h.advance(MINUTE);
    h.wait_attempts(id, 4).await;
    h.wait_state(id, EventState::Failed).await;
    let detail = h.engine.get_event(id).unwrap();
    let triggers: Vec<Trigger> = detail.attempts.iter().map(|a| a.trigger).collect();
    assert_eq!(
        triggers,
        [
            Trigger::Initial,
            Trigger::Automatic,
            Trigger::Requeue,
            Trigger::Automatic
        ]
    );
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    max_age_reached_between_two_retries_expires_the_event
);
async fn max_age_reached_between_two_retries_expires_the_event(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let h = Harness::start(
        store.config().destination(
            Dest::new("a", &receiver.url()).retry(
                Retry::new()
                    .policy("always")
                    .schedule("fixed")
                    .delay("2d")
                    .max_age("3d"),
            ),
        ),
    )
    .await;
    let id = h.ingest("a").await;
    h.wait_attempts(id, 1).await;
    h.advance(2 * DAY);
    h.wait_state(id, EventState::Failed).await;
    let detail = h.engine.get_event(id).unwrap();
    assert_eq!(
        detail.event.reason.as_ref().map(|r| r.as_str()),
        Some("expired")
    );
    assert_eq!(detail.attempts.last().unwrap().decision, "expired after 3d");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    held_events_expire_at_max_age_too
);
async fn held_events_expire_at_max_age_too(store: TestStore) {
    let receiver = Receiver::start().await;
    let h = Harness::start(
        store
            .config()
            .destination(Dest::new("a", &receiver.url()).retry(Retry::new().max_age("1h"))),
    )
    .await;
    h.engine
        .patch_destination(
            "a",
            DestinationPatch {
                paused: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = h.ingest("a").await;
    h.advance(2 * HOUR);
    h.wait_state(id, EventState::Failed).await;
    assert_eq!(receiver.count(), 0);
    assert_eq!(
        h.engine
            .get_event(id)
            .unwrap()
            .event
            .reason
            .as_ref()
            .map(|r| r.as_str()),
        Some("expired")
    );
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    bulk_retry_reports_progress_and_completes
);
async fn bulk_retry_reports_progress_and_completes(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(404)).await;
    let h = Harness::start(
        store
            .config()
            .destination(Dest::new("a", &receiver.url()).concurrency(4)),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        let id = h.ingest("a").await;
        ids.push(id);
    }
    for id in &ids {
        h.wait_state(*id, EventState::Failed).await;
    }
    receiver.set_default(Reply::status(200).after(Duration::from_millis(20)));
    let job = h
        .engine
        .start_bulk_retry(BulkSelection {
            destination: Some("a".into()),
            state: Some(EventState::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(job.total, 12);
    let engine = h.engine.clone();
    let job_id = job.id.clone();
    wait_until_async("the bulk job to complete", || {
        let engine = engine.clone();
        let job_id = job_id.clone();
        async move { engine.bulk_progress(&job_id).await.unwrap().state == JobState::Completed }
    })
    .await;
    let progress = h.engine.bulk_progress(&job.id).await.unwrap();
    assert_eq!(
        (progress.done, progress.succeeded, progress.failed),
        (12, 12, 0)
    );
    assert!(
        receiver.max_in_flight() <= 2,
        "bulk uses at most half of the concurrency"
    );
    for id in &ids {
        assert_eq!(h.state(*id), EventState::Delivered);
        let detail = h.engine.get_event(*id).unwrap();
        assert_eq!(detail.attempts.last().unwrap().trigger, Trigger::Bulk);
    }
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    bulk_retry_can_be_cancelled
);
async fn bulk_retry_can_be_cancelled(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(404)).await;
    let h = Harness::start(
        store
            .config()
            .destination(Dest::new("a", &receiver.url()).concurrency(2)),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(h.ingest("a").await);
    }
    for id in &ids {
        h.wait_state(*id, EventState::Failed).await;
    }
    receiver.set_default(Reply::status(200).after(Duration::from_millis(200)));
    let job = h
        .engine
        .start_bulk_retry(BulkSelection {
            ids: Some(ids.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let engine = h.engine.clone();
    let job_id = job.id.clone();
    wait_until_async("the first bulk attempt", || {
        let engine = engine.clone();
        let job_id = job_id.clone();
        async move { engine.bulk_progress(&job_id).await.unwrap().done >= 1 }
    })
    .await;
    let cancelled = h.engine.cancel_bulk(&job.id).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    h.settled().await;
    let progress = h.engine.bulk_progress(&job.id).await.unwrap();
    assert!(progress.done < progress.total, "{progress:?}");
    let delivered = ids
        .iter()
        .filter(|id| h.state(**id) == EventState::Delivered)
        .count();
    assert_eq!(delivered as u64, progress.succeeded);
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    policy_edits_between_retries_apply_at_the_next_retry
);
async fn policy_edits_between_retries_apply_at_the_next_retry(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let h = Harness::start(store.config().destination(
        Dest::new("a", &receiver.url()).retry(Retry::new().schedule("fixed").delay("1h")),
    ))
    .await;
    let id = h.ingest("a").await;
    h.wait_attempts(id, 1).await;
    let patch: hookwatch::policy::RetrySpec = serde_json::from_str(r#"{"delay": "5m"}"#).unwrap();
    h.engine
        .patch_destination(
            "a",
            DestinationPatch {
                retry: Some(Some(patch)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.advance(HOUR);
    h.wait_attempts(id, 2).await;
    let detail = h.engine.get_event(id).unwrap();
    assert_eq!(detail.attempts[1].decision, "retry in 5m");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_flapping_receiver_cannot_burn_a_schedule_through_flushes
);
/// A receiver that flaps between 200 and 500 every 200 ms makes the
/// destination recover (and flush its backlog) again and again. One attempt
/// at a time of 40 ms each means most of a flushed backlog meets a 500 phase.
/// Flush attempts must not use up the events' retries, and an event whose
/// flush attempt failed waits for its own schedule instead of being flushed
/// straight away again: no event may exhaust its retries before its
/// schedule's own span (1+2+4+8+16 = 31 s), which this test never reaches.
/// Counting flushes as retries (the old behaviour) exhausts events within a
/// few seconds here.
async fn a_flapping_receiver_cannot_burn_a_schedule_through_flushes(store: TestStore) {
    const FLAP: Duration = Duration::from_millis(200);
    const FLAPS: u32 = 60;
    let slow = |status| Reply::status(status).after(Duration::from_millis(40));
    let receiver = Receiver::start_with(slow(500)).await;
    let daemon = Daemon::start(
        store.config().destination(
            Dest::new("flappy", &receiver.url()).concurrency(1).retry(
                Retry::new()
                    .schedule("exponential")
                    .delay("1s")
                    .max_retries(5),
            ),
        ),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(daemon.ingest("flappy", "{}").await);
    }
    let flapping = {
        let receiver = receiver.clone();
        tokio::spawn(async move {
            for n in 0..FLAPS {
                receiver.set_default(slow(if n % 2 == 0 { 200 } else { 500 }));
                tokio::time::sleep(FLAP).await;
            }
            receiver.set_default(slow(500));
        })
    };
    flapping.await.unwrap();
    let mut flush_attempts = 0;
    let mut failed_flushes = 0;
    for id in &ids {
        let event = daemon.event(id).await;
        assert_ne!(
            event["reason"],
            "retries_exhausted",
            "an event ran out of retries within {:?} of a 31 s schedule: {event}",
            FLAP * FLAPS
        );
        let attempts = event["attempts"].as_array().unwrap();
        flush_attempts += attempts.iter().filter(|a| a["trigger"] == "flush").count();
        // A failed flush attempt is followed by an automatic one, never
        // straight by another flush.
        for pair in attempts.windows(2) {
            if pair[0]["trigger"] == "flush" && pair[0]["status"] != 200 {
                failed_flushes += 1;
                assert_ne!(
                    pair[1]["trigger"], "flush",
                    "flushed again at once: {event}"
                );
            }
        }
    }
    assert!(
        flush_attempts > 0 && failed_flushes > 0,
        "the flapping never made a flush attempt fail ({flush_attempts} flush attempts)"
    );
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_failed_flush_attempt_is_not_flushed_again_and_costs_no_retry
);
/// The same, step by step on virtual time: a destination that recovers four
/// times while one event keeps failing flushes that event once; the failed
/// flush attempt does not count as a retry and puts the event back on its own
/// schedule, where the next recoveries leave it.
async fn a_failed_flush_attempt_is_not_flushed_again_and_costs_no_retry(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let h = Harness::start(
        store.config().destination(
            Dest::new("a", &receiver.url()).concurrency(1).retry(
                Retry::new()
                    .schedule("exponential")
                    .delay("10m")
                    .max_retries(3),
            ),
        ),
    )
    .await;
    let stuck = h.ingest("a").await;
    h.wait_attempts(stuck, 1).await;
    h.settled().await;
    for _ in 0..4 {
        // Another event gets the one 2xx: the destination recovers and
        // flushes its backlog, whose attempts meet the default 500.
        receiver.then([Reply::status(200)]);
        let canary = h.ingest("a").await;
        h.wait_state(canary, EventState::Delivered).await;
        h.settled().await;
    }
    let detail = h.engine.get_event(stuck).unwrap();
    let triggers: Vec<Trigger> = detail.attempts.iter().map(|a| a.trigger).collect();
    assert_eq!(triggers, [Trigger::Initial, Trigger::Flush], "{triggers:?}");
    assert_eq!(detail.event.state, EventState::Retrying);
    assert_eq!(
        detail.event.automatic_retries, 0,
        "a flush attempt is no retry"
    );
    // Its own schedule is what runs next: the first retry, 10 min after the
    // failed flush.
    let flushed_at = detail.attempts[1].at;
    assert_eq!(
        detail.event.next_attempt_at,
        Some(flushed_at + chrono::Duration::minutes(10))
    );
}

fn reason(h: &Harness, id: hookwatch::model::EventId) -> Option<String> {
    h.engine
        .get_event(id)
        .unwrap()
        .event
        .reason
        .map(|r| r.as_str().to_string())
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    monitor_preset_retries_any_non_2xx_until_the_three_day_cap
);
/// The monitor preset retries every answer that is not 2xx (a 404 and a
/// redirect loop included) every `delay`, and nothing outlives 3 days.
async fn monitor_preset_retries_any_non_2xx_until_the_three_day_cap(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(404)).await;
    let looping = Receiver::start_with(Reply::status(302).header("location", "/loop")).await;
    let h = Harness::start(
        store
            .config()
            .destination(
                Dest::new("a", &receiver.url())
                    .retry(Retry::new().preset("monitor").policy("always").delay("1d")),
            )
            .destination(
                Dest::new("loop", &looping.url()).retry(Retry::new().preset("monitor").delay("1h")),
            ),
    )
    .await;
    let id = h.ingest("a").await;
    let redirected = h.ingest("loop").await;
    h.wait_attempts(id, 1).await;
    h.wait_attempts(redirected, 1).await;
    assert_eq!(h.state(id), EventState::Retrying, "a 404 is retried");
    assert_eq!(
        h.state(redirected),
        EventState::Retrying,
        "a redirect loop is retried"
    );
    assert_eq!(
        h.engine.get_event(redirected).unwrap().attempts[0].decision,
        "retry in 1h"
    );
    for attempts in 2..=3 {
        h.advance(DAY);
        h.wait_attempts(id, attempts).await;
    }
    // The next retry falls due at exactly 3 days: the cap, so it is not made.
    h.advance(DAY);
    h.wait_state(id, EventState::Failed).await;
    assert_eq!(reason(&h, id).as_deref(), Some("expired"));
    let detail = h.engine.get_event(id).unwrap();
    assert_eq!(detail.attempts.len(), 3);
    assert_eq!(receiver.count(), 3);
    assert!(h.engine.destination_view("a").unwrap().enabled);
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    webhook_preset_a_redirect_loop_fails_and_disables_the_destination
);
/// Under the webhook preset a redirect loop is not retried: it fails the
/// event and disables the destination, like a 4xx.
async fn webhook_preset_a_redirect_loop_fails_and_disables_the_destination(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(302).header("location", "/loop")).await;
    let h = Harness::start(
        store
            .config()
            .destination(Dest::new("a", &receiver.url()).retry(Retry::new().preset("webhook"))),
    )
    .await;
    let id = h.ingest("a").await;
    h.wait_state(id, EventState::Failed).await;
    h.settled().await;
    assert_eq!(reason(&h, id).as_deref(), Some("too_many_redirects"));
    assert_eq!(
        h.engine.get_event(id).unwrap().attempts[0].decision,
        "gave up: too many redirects; destination disabled"
    );
    assert!(
        !h.engine.destination_view("a").unwrap().enabled,
        "a redirect loop disables a webhook-preset destination"
    );
    let held = h.ingest("a").await;
    h.advance(HOUR);
    h.settled().await;
    assert_eq!(h.state(held), EventState::Pending, "held while disabled");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    webhook_preset_waits_n_to_the_fourth_and_a_404_disables
);
/// The webhook preset's schedule: n⁴ s clamped to [60 s, 4 d], announced in
/// `hookwatch-will-retry-after`; a 404 disables.
async fn webhook_preset_waits_n_to_the_fourth_and_a_404_disables(store: TestStore) {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let h = Harness::start(
        store
            .config()
            .destination(Dest::new("a", &receiver.url()).retry(Retry::new().preset("webhook"))),
    )
    .await;
    let id = h.ingest("a").await;
    // Retries 1, 2, 3, 4: 60 s (1 and 16 raised to the minimum), 81 s, 256 s.
    for (attempts, wait) in [(2, 60), (3, 60), (4, 81), (5, 256)] {
        h.wait_attempts(id, attempts - 1).await;
        h.advance(Duration::from_secs(wait));
        h.wait_attempts(id, attempts).await;
    }
    let announced: Vec<Option<String>> = receiver
        .hits()
        .iter()
        .map(|hit| hit.header("hookwatch-will-retry-after"))
        .collect();
    let expected: Vec<Option<String>> = ["60", "60", "81", "256", "625"]
        .iter()
        .map(|s| Some(s.to_string()))
        .collect();
    assert_eq!(announced, expected);
    receiver.set_default(Reply::status(404));
    h.advance(Duration::from_secs(625));
    h.wait_state(id, EventState::Failed).await;
    h.settled().await;
    assert_eq!(reason(&h, id).as_deref(), Some("not_retriable"));
    assert!(!h.engine.destination_view("a").unwrap().enabled);
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    rule_preset_retry_after_wins_over_the_status_rule_and_max_age
);
/// Under the rule preset a Retry-After wins over the status rule: a 400 the
/// rule does not retry is retried when the receiver asks, and a 6-day
/// Retry-After is not cut by the default max_age.
async fn rule_preset_retry_after_wins_over_the_status_rule_and_max_age(store: TestStore) {
    let receiver = Receiver::start().await;
    receiver.then([
        Reply::status(400).header("retry-after", "60"),
        Reply::status(503).header("retry-after", "518400"),
        Reply::status(400),
    ]);
    let h = Harness::start(store.config().destination(
        Dest::new("a", &receiver.url()).retry(Retry::new().preset("rule").retry_on(">=500")),
    ))
    .await;
    let id = h.ingest("a").await;
    h.wait_attempts(id, 1).await;
    let event = h.engine.get_event(id).unwrap();
    assert_eq!(event.attempts[0].decision, "retry in 1m (Retry-After)");
    assert_eq!(
        event.event.next_attempt_at,
        Some(epoch() + chrono::Duration::seconds(60))
    );
    h.advance(MINUTE);
    h.wait_attempts(id, 2).await;
    assert_eq!(
        h.engine.get_event(id).unwrap().attempts[1].decision,
        "retry in 6d (Retry-After)"
    );
    h.advance(6 * DAY);
    h.wait_attempts(id, 3).await;
    h.wait_state(id, EventState::Failed).await;
    assert_eq!(reason(&h, id).as_deref(), Some("not_retriable"));
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    will_retry_after_is_absent_on_the_last_retry_when_retry_after_sets_the_delays
);
/// `hookwatch-will-retry-after` is sent exactly when another automatic retry
/// would follow: an `always` destination whose receiver sets every delay
/// with Retry-After makes 50 retries, and the 50th carries no header.
async fn will_retry_after_is_absent_on_the_last_retry_when_retry_after_sets_the_delays(
    store: TestStore,
) {
    let receiver = Receiver::start_with(Reply::status(503).header("retry-after", "1")).await;
    let h = Harness::start(
        store.config().destination(
            Dest::new("a", &receiver.url()).retry(
                Retry::new()
                    .policy("always")
                    .schedule("fixed")
                    .delay("1h")
                    .max_age("1d"),
            ),
        ),
    )
    .await;
    let id = h.ingest("a").await;
    for attempts in 1..=50 {
        h.wait_attempts(id, attempts).await;
        h.advance(Duration::from_secs(1));
    }
    h.wait_state(id, EventState::Failed).await;
    assert_eq!(reason(&h, id).as_deref(), Some("retries_exhausted"));
    let hits = receiver.hits();
    assert_eq!(hits.len(), 51, "the first attempt and 50 retries");
    for hit in &hits[..50] {
        assert_eq!(
            hit.header("hookwatch-will-retry-after").as_deref(),
            Some("3600")
        );
    }
    assert_eq!(hits[50].header("hookwatch-will-retry-after"), None);
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    retry_after_iso_without_offset_is_utc
);
/// A Retry-After in ISO 8601 without an offset is read as UTC.
async fn retry_after_iso_without_offset_is_utc(store: TestStore) {
    let receiver = Receiver::start().await;
    let at = epoch() + chrono::Duration::hours(2);
    receiver.then([
        Reply::status(503).header("retry-after", &at.format("%Y-%m-%dT%H:%M:%S").to_string())
    ]);
    let h = Harness::start(store.config().destination(
        Dest::new("a", &receiver.url()).retry(Retry::new().schedule("fixed").delay("1m")),
    ))
    .await;
    let id = h.ingest("a").await;
    h.wait_attempts(id, 1).await;
    assert_eq!(
        h.engine.get_event(id).unwrap().event.next_attempt_at,
        Some(at)
    );
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    presets_through_the_api_show_their_effective_values
);
/// A preset through the API: POST creates a destination with one (limits
/// checked, the error naming the key), GET shows the preset and every
/// effective value, PATCH switches an existing destination to another.
async fn presets_through_the_api_show_their_effective_values(store: TestStore) {
    use reqwest::Method;
    use serde_json::json;
    let receiver = Receiver::start().await;
    let daemon = Daemon::start(
        store
            .config()
            .destination(Dest::new("file", &receiver.url())),
    )
    .await;
    let send = |method: Method, path: &str, body: serde_json::Value| {
        daemon
            .request(method, path)
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let (status, answer) = daemon
        .send(send(
            Method::POST,
            "/v1/destinations",
            json!({"id": "m", "url": receiver.url(), "retry": {"preset": "monitor", "max_age": "5d"}}),
        ))
        .await;
    assert!((400..500).contains(&status), "{status}: {answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("retry.max_age: the monitor preset caps every event at 3 days, got 5d"),
        "{answer}"
    );
    let (status, answer) = daemon
        .send(send(
            Method::POST,
            "/v1/destinations",
            json!({"id": "w", "url": receiver.url(), "retry": {"preset": "webhook"}}),
        ))
        .await;
    assert!((200..300).contains(&status), "{status}: {answer}");
    let shown = daemon.destination("w").await;
    assert_eq!(
        shown["retry"],
        json!({
            "preset": "webhook", "policy": "bounded", "schedule": "power", "delay": "30s",
            "max_retries": 25, "min_delay": "1m", "max_delay": "4d", "max_age": "30d",
            "retry_on": "429, >=500", "retry_after": false, "on_client_error": "disable",
            "flush_on_recovery": false
        }),
        "{shown}"
    );
    assert_eq!(shown["timeout"], "30s");
    let (status, answer) = daemon
        .send(send(
            Method::PATCH,
            "/v1/destinations/file",
            json!({"retry": {"preset": "rule"}}),
        ))
        .await;
    assert!((200..300).contains(&status), "{status}: {answer}");
    let shown = daemon.destination("file").await;
    assert_eq!(shown["retry"]["preset"], "rule", "{shown}");
    assert_eq!(shown["retry"]["retry_on"], "any", "{shown}");
    assert_eq!(shown["retry"]["max_age"], "350d", "{shown}");
}

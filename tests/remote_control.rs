//! `RemoteControl`: the `Control` interface over a real daemon's HTTP API, and
//! the change stream it follows (`GET /v1/changes`, Server-Sent Events).

mod harness;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use harness::*;
use hookwatch::control::{Control, ControlError, Notification, RemoteControl, UnreachableCause};
use hookwatch::engine::{
    BatchTarget, BulkSelection, Change, DestinationPatch, IngestRequest, JobState,
};
use hookwatch::model::{EventFilter, EventState};
use std::time::Duration;

const TOKEN: &str = "remote-test-token";

fn request(body: &str) -> IngestRequest {
    IngestRequest {
        topic: None,
        content_type: Some("application/json".into()),
        payload: bytes::Bytes::from(body.to_string()),
        idempotency_key: None,
    }
}

fn remote(daemon: &Daemon) -> RemoteControl {
    RemoteControl::new(&daemon.base_url, daemon.token.clone()).expect("a valid base URL")
}

/// The next notification, within the deadline.
async fn next(changes: &mut BoxStream<'static, Notification>) -> Notification {
    tokio::time::timeout(DEADLINE, changes.next())
        .await
        .expect("a notification within the deadline")
        .expect("the change stream does not end")
}

/// Reads notifications until every one of `events` has been seen delivered
/// (in whatever order the deliveries finish).
async fn wait_delivered(
    changes: &mut BoxStream<'static, Notification>,
    events: &[hookwatch::model::EventId],
) {
    let mut missing: std::collections::BTreeSet<_> = events.iter().copied().collect();
    let seen = tokio::time::timeout(DEADLINE, async {
        while !missing.is_empty() {
            if let Notification::Changed(Change::Event { id, state, .. }) = next(changes).await {
                if state == EventState::Delivered {
                    missing.remove(&id);
                }
            }
        }
    })
    .await;
    assert!(
        seen.is_ok(),
        "no change to delivered within {DEADLINE:?} for {missing:?}"
    );
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    every_call_answers_through_the_http_api
);
async fn every_call_answers_through_the_http_api(store: TestStore) {
    let ok = Receiver::start().await;
    let down = Receiver::start_with(Reply::status(500).after(Duration::from_millis(300))).await;
    let config = store
        .config()
        .token(TOKEN)
        .destination(Dest::new("ok", &ok.url()).topics(&["order.*"]))
        .destination(
            Dest::new("down", &down.url())
                .concurrency(1)
                .retry_fixed("1h", 5),
        );
    let daemon = Daemon::start(config).await;
    let control: std::sync::Arc<dyn Control> = std::sync::Arc::new(remote(&daemon));

    // Ingest, to a destination and to a topic; read back.
    let delivered = control.ingest("ok", request("{\"n\":1}")).await.unwrap();
    assert_eq!(delivered.destination, "ok");
    let by_topic = control
        .ingest_topic("order.created", request("{\"n\":2}"))
        .await
        .unwrap();
    assert_eq!(by_topic.len(), 1);
    assert_eq!(by_topic[0].destination, "ok");
    // Batches: one answer per item, in order, the text body kept as text.
    let mut text = request("plain words");
    text.content_type = Some("text/plain".into());
    let batch = control
        .ingest_batch(
            BatchTarget::Destination("ok".into()),
            vec![request("{\"n\":3}"), text],
        )
        .await
        .unwrap();
    assert_eq!(batch.len(), 2);
    assert!(batch
        .iter()
        .all(|item| item.len() == 1 && item[0].destination == "ok"));
    assert!(batch[0][0].id < batch[1][0].id);
    let text_detail = control.event(batch[1][0].id).await.unwrap();
    assert_eq!(text_detail.payload.as_deref(), Some("plain words"));
    let by_topic_batch = control
        .ingest_batch(
            BatchTarget::Topic("order.created".into()),
            vec![request("{\"n\":4}")],
        )
        .await
        .unwrap();
    assert_eq!(by_topic_batch[0][0].destination, "ok");
    let empty = control
        .ingest_batch(BatchTarget::Destination("ok".into()), Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&empty, ControlError::Rejected { status: 400, message, .. } if message.contains("at least one event")),
        "{empty:?}"
    );
    daemon
        .wait_event_state(&delivered.id.to_string(), "delivered")
        .await;
    let detail = control.event(delivered.id).await.unwrap();
    assert_eq!(detail.event.id, delivered.id);
    assert_eq!(detail.payload.as_deref(), Some("{\"n\":1}"));
    let filter = EventFilter {
        destination: Some("ok".into()),
        ..EventFilter::default()
    };
    let page = control.list_events(filter, None, 1).await.unwrap();
    assert_eq!(page.events.len(), 1);
    assert!(page.next.is_some(), "two events, one per page");

    // A refusal comes back as the daemon's own variant and sentence.
    let refused = control.mute(delivered.id).await.unwrap_err();
    let ControlError::Refused { message, .. } = &refused else {
        panic!("expected Refused, got {refused:?}");
    };
    let (status, body) = daemon
        .send(daemon.request(
            reqwest::Method::PUT,
            &format!("/v1/events/{}/mute", delivered.id),
        ))
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"].as_str(), Some(message.as_str()));
    let unknown = control.event(ulid::Ulid::new()).await.unwrap_err();
    assert!(
        matches!(unknown, ControlError::UnknownEvent { .. }),
        "{unknown:?}"
    );
    let unknown = control.destination("nope").await.unwrap_err();
    assert!(
        matches!(&unknown, ControlError::UnknownDestination { id } if id == "nope"),
        "{unknown:?}"
    );

    // Actions on events that fail.
    let mut failing = Vec::new();
    for n in 0..3 {
        failing.push(
            control
                .ingest("down", request(&format!("{{\"n\":{n}}}")))
                .await
                .unwrap()
                .id,
        );
    }
    for id in &failing {
        daemon.wait_event_state(&id.to_string(), "retrying").await;
    }
    let attempt = control.retry_now(failing[0]).await.unwrap();
    assert!(!attempt.success);
    assert_eq!(attempt.state, EventState::Retrying);
    let muted = control.mute(failing[0]).await.unwrap();
    assert_eq!(muted.state, EventState::Cancelled);
    let requeued = control.requeue(failing[0]).await.unwrap();
    assert_ne!(requeued.state, EventState::Cancelled);
    daemon
        .wait_event_state(&failing[0].to_string(), "retrying")
        .await;

    // Bulk: count, start, progress, cancel, list.
    let selection = BulkSelection {
        destination: Some("down".into()),
        ..BulkSelection::default()
    };
    assert_eq!(control.count_selection(selection.clone()).await.unwrap(), 3);
    let job = control.start_bulk_retry(selection).await.unwrap();
    assert_eq!(job.total, 3);
    assert_eq!(control.bulk_progress(&job.id).await.unwrap().id, job.id);
    let cancelled = control.cancel_bulk(&job.id).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled, "{cancelled:?}");
    let jobs = control.bulk_jobs().await.unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!((&jobs[0].id, jobs[0].state), (&job.id, JobState::Cancelled));
    assert_eq!(jobs[0].selection.destination.as_deref(), Some("down"));
    let missing = control.bulk_progress("no-such-job").await.unwrap_err();
    assert!(
        matches!(missing, ControlError::UnknownJob { .. }),
        "{missing:?}"
    );

    // Destinations: list, patch, pause and resume.
    let ids: Vec<String> = control
        .destinations()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, ["down", "ok"]);
    let patched = control
        .patch_destination(
            "down",
            DestinationPatch {
                concurrency: Some(Some(3)),
                ..DestinationPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.max_concurrency, 3);
    assert_eq!(patched.overridden, ["concurrency"]);
    let invalid = control
        .patch_destination(
            "down",
            DestinationPatch {
                concurrency: Some(Some(0)),
                ..DestinationPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&invalid, ControlError::Invalid { field, .. } if field == "concurrency"),
        "{invalid:?}"
    );
    assert!(control.pause("ok").await.unwrap().paused);
    assert!(!control.resume("ok").await.unwrap().paused);

    // Counts, totals and metrics.
    let counts = control.counts().await.unwrap();
    assert!(counts["ok"].delivered >= 1, "{counts:?}");
    let totals = control.totals().await.unwrap();
    assert_eq!(
        totals.ingested, 8,
        "two single events, three in batches, three to down"
    );
    assert!(totals.delivered >= 1);
    assert!(control.metrics_text().await.unwrap().contains("hookwatch_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_rejected_in_the_servers_words() {
    let daemon = Daemon::start(TestConfig::new().token(TOKEN)).await;
    let control = RemoteControl::new(&daemon.base_url, Some("wrong".into())).unwrap();
    let error = control.destinations().await.unwrap_err();
    assert!(
        matches!(&error, ControlError::Rejected { status: 401, api_code, .. } if api_code == "unauthorized"),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_address_is_named() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let control = RemoteControl::new(&url, None).unwrap();
    let error = control.destinations().await.unwrap_err();
    let ControlError::Unreachable {
        url: tried, cause, ..
    } = &error
    else {
        panic!("expected Unreachable, got {error:?}");
    };
    // The base URL, not the endpoint called, and the cause in words.
    assert_eq!(tried, &url);
    assert_eq!(*cause, UnreachableCause::ConnectionRefused);
    assert_eq!(error.code(), "unreachable");
    assert_eq!(
        error.to_string(),
        format!("cannot reach hookwatch at {url}: connection refused")
    );
    // The transport's whole error stays available as the source.
    let source = std::error::Error::source(&error).expect("the transport error is the source");
    assert!(
        source.downcast_ref::<reqwest::Error>().is_some(),
        "{source:?}"
    );
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    two_followers_see_the_same_changes
);
async fn two_followers_see_the_same_changes(store: TestStore) {
    let receiver = Receiver::start().await;
    let config = store
        .config()
        .token(TOKEN)
        .destination(Dest::new("a", &receiver.url()));
    let daemon = Daemon::start(config).await;
    let control = remote(&daemon);
    let mut first = control.subscribe();
    let mut second = control.subscribe();
    // Each stream says Resync once it is connected: from then on it sees all.
    assert_eq!(next(&mut first).await, Notification::Resync);
    assert_eq!(next(&mut second).await, Notification::Resync);
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            control
                .ingest("a", request(&format!("{{\"n\":{n}}}")))
                .await
                .unwrap()
                .id,
        );
    }
    for follower in [&mut first, &mut second] {
        wait_delivered(follower, &ids).await;
    }
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_follower_survives_a_daemon_restart
);
async fn a_follower_survives_a_daemon_restart(store: TestStore) {
    let receiver = Receiver::start().await;
    let config = store
        .config()
        .listen(&format!("127.0.0.1:{}", free_port()))
        .destination(Dest::new("a", &receiver.url()));
    let mut daemon = Daemon::start(config).await;
    let address = daemon.addr;
    let control = remote(&daemon);
    let mut changes = control.subscribe();
    assert_eq!(next(&mut changes).await, Notification::Resync);
    let before = control.ingest("a", request("{}")).await.unwrap().id;
    wait_delivered(&mut changes, &[before]).await;

    daemon.sigterm();
    let status = daemon.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "{status}");
    daemon.restart().await;
    assert_eq!(daemon.addr, address, "the restart listens where it did");

    assert_eq!(next(&mut changes).await, Notification::Resync);
    let after = control.ingest("a", request("{}")).await.unwrap().id;
    wait_delivered(&mut changes, &[after]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_follower_connected_exits_in_time() {
    let receiver = Receiver::start().await;
    let mut daemon =
        Daemon::start(TestConfig::new().destination(Dest::new("a", &receiver.url()))).await;
    let response = daemon
        .request(reqwest::Method::GET, "/v1/changes")
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    // The opening comment: the stream is being served.
    tokio::time::timeout(DEADLINE, body.next())
        .await
        .expect("the opening comment")
        .expect("a chunk")
        .unwrap();
    let stopping = std::time::Instant::now();
    daemon.sigterm();
    let status = daemon.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "SIGTERM must exit 0, got {status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "an open change stream held the shutdown for {:?}",
        stopping.elapsed()
    );
    // The server ended the stream rather than leaving it hanging.
    let rest = tokio::time::timeout(DEADLINE, async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(rest.is_ok(), "the stream did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_stream_is_server_sent_events_behind_the_token() {
    let receiver = Receiver::start().await;
    let config = TestConfig::new()
        .token(TOKEN)
        .destination(Dest::new("a", &receiver.url()));
    let daemon = Daemon::start(config).await;

    let (status, body) = daemon
        .send(daemon.request_without_token(reqwest::Method::GET, "/v1/changes"))
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "unauthorized");

    let response = daemon
        .request(reqwest::Method::GET, "/v1/changes")
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut body = response.bytes_stream();
    let mut text = String::new();
    // Ingest once the stream is served (its opening comment has arrived).
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(DEADLINE, body.next())
            .await
            .expect("the opening comment")
            .expect("a chunk")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let id = daemon.ingest("a", "{}").await;
    let expected = format!("\"id\":\"{id}\"");
    tokio::time::timeout(DEADLINE, async {
        while !text.contains(&expected) {
            let chunk = body.next().await.expect("a chunk").unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no change of {id} within {DEADLINE:?}; got {text:?}"));
    let event = text
        .split("\n\n")
        .find(|event| event.contains(&expected))
        .unwrap();
    let lines: Vec<&str> = event.lines().collect();
    assert!(lines.contains(&"event: change"), "{event}");
    assert!(lines.iter().any(|l| l.starts_with("id: ")), "{event}");
    let data = lines.iter().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let change: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(change["kind"], "event");
    assert_eq!(change["destination"], "a");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    the_pid_comes_from_the_process_that_answers_even_after_a_restart
);
async fn the_pid_comes_from_the_process_that_answers_even_after_a_restart(store: TestStore) {
    let mut daemon = Daemon::start(store.config().token(TOKEN)).await;
    let status = daemon.get_json("/v1/status").await;
    assert_eq!(status["pid"], daemon.pid(), "{status}");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"), "{status}");
    let control = RemoteControl::new(&daemon.base_url, Some(TOKEN.into())).unwrap();
    let first = control
        .totals()
        .await
        .unwrap()
        .pid
        .expect("the server names its pid");
    assert_eq!(first as i32, daemon.pid());

    daemon.sigterm();
    daemon.wait_exit(DEADLINE).await;
    daemon.restart().await;
    let control = RemoteControl::new(&daemon.base_url, Some(TOKEN.into())).unwrap();
    let second = control
        .totals()
        .await
        .unwrap()
        .pid
        .expect("the server names its pid");
    assert_eq!(second as i32, daemon.pid());
    assert_ne!(second, first);
}

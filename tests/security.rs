//! Doors an ops box keeps shut: private destinations, credentials in output.

mod support;

use hookwatch::model::EventState;
use support::{Harness, Receiver, Reply};

#[tokio::test]
async fn deny_private_destinations_refuses_loopback_literals_and_names() {
    let receiver = Receiver::start(Reply::status(200)).await;
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let h = Harness::start_with(
        "[server]\ndeny_private_destinations = true",
        &format!(
            "[[destinations]]\nid = \"literal\"\nurl = \"{}\"\n[destinations.retry]\nmax_retries = 1\ndelay = \"1h\"\n\n\
             [[destinations]]\nid = \"named\"\nurl = \"{by_name}\"\n[destinations.retry]\nmax_retries = 1\ndelay = \"1h\"\n",
            receiver.url
        ),
    )
    .await;
    for destination in ["literal", "named"] {
        let id = h.ingest(destination).await;
        h.wait_attempts(id, 1).await;
        let detail = h.engine.get_event(id).unwrap();
        assert_eq!(detail.event.state, EventState::Retrying);
        let error = detail.attempts[0].error.clone().unwrap_or_default();
        assert!(
            error.contains("deny_private_destinations"),
            "{destination}: {error}"
        );
    }
    assert_eq!(receiver.count(), 0, "nothing reached the private receiver");
}

#[tokio::test]
async fn private_destinations_are_allowed_by_default() {
    let receiver = Receiver::start(Reply::status(200)).await;
    let h = Harness::start(&format!(
        "[[destinations]]\nid = \"a\"\nurl = \"{}\"\n",
        receiver.url
    ))
    .await;
    let id = h.ingest("a").await;
    h.wait_state(id, EventState::Delivered).await;
}

//! Doors an ops box keeps shut: private destinations, credentials in output.

mod harness;

use harness::*;
use hookwatch::model::EventState;

#[tokio::test]
async fn deny_private_destinations_refuses_loopback_literals_and_names() {
    let receiver = Receiver::start().await;
    let by_name = receiver.url().replace("127.0.0.1", "localhost");
    let dest =
        |id: &str, url: &str| Dest::new(id, url).retry(Retry::new().max_retries(1).delay("1h"));
    let h = Harness::start(
        TestConfig::new()
            .deny_private_destinations()
            .destination(dest("literal", &receiver.url()))
            .destination(dest("named", &by_name)),
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
    let receiver = Receiver::start().await;
    let h = Harness::start(TestConfig::new().destination(Dest::new("a", &receiver.url()))).await;
    let id = h.ingest("a").await;
    h.wait_state(id, EventState::Delivered).await;
}

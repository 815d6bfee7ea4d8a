//! The real engine in-process on a manual clock. Time only moves when a test
//! advances it, so days of retry schedule run in milliseconds while every
//! attempt is real HTTP to a scripted receiver.

use super::config::TestConfig;
use super::wait::{wait_until_async, DEADLINE};
use chrono::{DateTime, TimeZone, Utc};
use hookwatch::clock::ManualClock;
use hookwatch::engine::{Engine, IngestRequest};
use hookwatch::model::{EventId, EventState};
use std::sync::Arc;
use std::time::Duration;

/// Where the manual clock starts.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// The engine on a manual clock with a temporary store.
pub struct Harness {
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start(config: TestConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = config.parse(&dir.path().join("store.redb"));
        let clock = ManualClock::new(epoch());
        let engine = Engine::start(&config, clock.clone()).unwrap();
        Harness {
            engine,
            clock,
            _dir: dir,
        }
    }

    pub async fn ingest(&self, destination: &str) -> EventId {
        self.engine
            .ingest(
                destination,
                IngestRequest {
                    topic: Some("test.event".into()),
                    content_type: Some("application/json".into()),
                    payload: bytes::Bytes::from_static(b"{\"hello\":\"world\"}"),
                    idempotency_key: None,
                },
            )
            .await
            .unwrap()
            .id
    }

    pub fn state(&self, id: EventId) -> EventState {
        self.engine.get_event(id).unwrap().event.state
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Waits until the engine owes nothing at the clock's current time (see
    /// `Engine::settled`); the wait before asserting that something did *not*
    /// happen.
    pub async fn settled(&self) {
        tokio::time::timeout(DEADLINE, self.engine.settled())
            .await
            .unwrap_or_else(|_| panic!("the engine did not settle within {DEADLINE:?}"));
    }

    /// Waits until the event has had `attempts` attempts.
    pub async fn wait_attempts(&self, id: EventId, attempts: u32) {
        let engine = self.engine.clone();
        wait_until_async(&format!("event {id} to reach {attempts} attempts"), || {
            let engine = engine.clone();
            async move { engine.get_event(id).unwrap().event.attempt_count >= attempts }
        })
        .await;
    }

    pub async fn wait_state(&self, id: EventId, state: EventState) {
        let engine = self.engine.clone();
        wait_until_async(&format!("event {id} to become {state}"), || {
            let engine = engine.clone();
            async move { engine.get_event(id).unwrap().event.state == state }
        })
        .await;
    }
}

//! In-process harness: the real engine on a manual clock, against scripted HTTP
//! receivers on 127.0.0.1. Time only moves when a test advances it, so days of
//! retry schedule run in milliseconds while every attempt is real HTTP.
#![allow(dead_code)]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use hookwatch::clock::ManualClock;
use hookwatch::config::{Config, ConfigSource};
use hookwatch::engine::{Engine, IngestRequest};
use hookwatch::model::{EventId, EventState};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the receiver saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Reply>,
    default: Option<Reply>,
    seen: Vec<Seen>,
    in_flight: usize,
    max_in_flight: usize,
}

/// An HTTP receiver on 127.0.0.1:0 answering from a script.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    pub async fn start(default: Reply) -> Receiver {
        let script = Arc::new(Mutex::new(Script {
            default: Some(default),
            ..Default::default()
        }));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, script }
    }

    /// Answers the next requests with `replies`, in order, then the default.
    pub fn then(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().queue.extend(replies);
    }

    pub fn set_default(&self, reply: Reply) {
        self.script.lock().unwrap().default = Some(reply);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.script.lock().unwrap().seen.clone()
    }

    pub fn count(&self) -> usize {
        self.script.lock().unwrap().seen.len()
    }

    pub fn max_in_flight(&self) -> usize {
        self.script.lock().unwrap().max_in_flight
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let reply = {
        let mut script = script.lock().unwrap();
        script.seen.push(Seen { headers, body });
        script.in_flight += 1;
        script.max_in_flight = script.max_in_flight.max(script.in_flight);
        script
            .queue
            .pop_front()
            .or_else(|| script.default.clone())
            .unwrap()
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    script.lock().unwrap().in_flight -= 1;
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), "scripted").into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

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
    /// `destinations` is the TOML of the `[[destinations]]` tables.
    pub async fn start(destinations: &str) -> Harness {
        Harness::start_with("", destinations).await
    }

    /// `server` is the TOML of a `[server]` table (or empty).
    pub async fn start_with(server: &str, destinations: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{server}\n[store]\npath = \"{}\"\n\n{destinations}",
            dir.path().join("store.redb").display()
        );
        let config = Config::parse(&text, ConfigSource::File("test.toml".into()), None)
            .unwrap_or_else(|e| panic!("test config: {e}"));
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

    /// Waits until the event has had `attempts` attempts and is not in flight.
    pub async fn wait_attempts(&self, id: EventId, attempts: u32) {
        let engine = self.engine.clone();
        wait_for(&format!("event {id} to reach {attempts} attempts"), || {
            let engine = engine.clone();
            async move { engine.get_event(id).unwrap().event.attempt_count >= attempts }
        })
        .await;
    }

    pub async fn wait_state(&self, id: EventId, state: EventState) {
        let engine = self.engine.clone();
        wait_for(&format!("event {id} to become {state}"), || {
            let engine = engine.clone();
            async move { engine.get_event(id).unwrap().event.state == state }
        })
        .await;
    }
}

/// Polls `condition` every 10 ms until it holds; fails after 15 s of real time.
pub async fn wait_for<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if condition().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

//! `hookwatch --demo`: a temporary store, four built-in local receivers (healthy,
//! flaky, gone, too slow) and a trickle of realistic events, so a newcomer sees
//! every state within the first minute.
//!
//! ```text
//! let (config, _guard) = hookwatch::demo::start_demo().await?;
//! let running = hookwatch::daemon::start_under(&config, clock, &root).await?;
//! hookwatch::demo::spawn_trickle(running.control.clone(), root.child_token());
//! ```

use crate::config::{Config, ConfigError, ConfigSource};
use crate::control::{Control, ControlError};
use crate::engine::IngestRequest;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo: {0}")]
    Io(#[from] std::io::Error),
    #[error("demo config: {0}")]
    Config(#[from] ConfigError),
}

/// Keeps the demo alive: the temporary directory (removed on drop) and the
/// receiver tasks (stopped on drop).
pub struct DemoGuard {
    dir: PathBuf,
    tasks: Vec<JoinHandle<()>>,
    /// The receivers' addresses: healthy, flaky, gone, slow.
    pub receivers: Vec<SocketAddr>,
}

impl DemoGuard {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DemoGuard {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The slow receiver answers after this; its destination times out sooner.
const SLOW_ANSWER: Duration = Duration::from_secs(3);

async fn serve(router: Router) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((addr, task))
}

fn json(status: StatusCode, body: &'static str) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

async fn healthy() -> Response {
    json(StatusCode::OK, r#"{"received":true}"#)
}

/// Mostly fine; sometimes 500, sometimes 429 with `Retry-After: 5`.
async fn flaky(_headers: HeaderMap) -> Response {
    let roll: f64 = rand::random();
    if roll < 0.45 {
        json(StatusCode::OK, r#"{"received":true}"#)
    } else if roll < 0.8 {
        json(
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"database is locked","request_id":"req_7f3a"}"#,
        )
    } else {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "5"), ("content-type", "application/json")],
            r#"{"error":"slow down"}"#,
        )
            .into_response()
    }
}

async fn gone() -> Response {
    json(
        StatusCode::NOT_FOUND,
        r#"{"error":"no such webhook endpoint"}"#,
    )
}

async fn slow() -> Response {
    tokio::time::sleep(SLOW_ANSWER).await;
    json(StatusCode::OK, r#"{"received":true}"#)
}

fn retry_table(keys: &[(&str, &str)]) -> String {
    let mut out = String::from("[destinations.retry]\n");
    for (key, value) in keys {
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}

/// One demo destination: id, receiver, topics, extra keys, retry keys.
type DemoDestination<'a> = (
    &'a str,
    SocketAddr,
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
);

/// The demo's config text for receivers at `addrs` (healthy, flaky, gone, slow).
pub fn demo_config_text(store: &Path, addrs: &[SocketAddr]) -> String {
    let store = store.display().to_string().replace('\\', "\\\\");
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\npath = \"{store}\"\nretention = \"1d\"\n\n"
    );
    let destinations: [DemoDestination; 4] = [
        (
            "shop",
            addrs[0],
            r#"["order.*", "user.*"]"#,
            "timeout = \"5s\"\nconcurrency = 4\nheaders = { \"X-Env\" = \"demo\", \"Authorization\" = \"Bearer demo-token\" }\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n",
            &[("schedule", "\"exponential\""), ("delay", "\"30s\"")],
        ),
        (
            "billing",
            addrs[1],
            r#"["order.*", "invoice.*"]"#,
            "timeout = \"5s\"\nconcurrency = 4\n",
            &[
                ("policy", "\"bounded\""),
                ("schedule", "\"exponential\""),
                ("delay", "\"5s\""),
                ("max_retries", "6"),
                ("max_delay", "\"1m\""),
                ("retry_on", "\"429, >=500\""),
                ("retry_after", "true"),
                ("flush_on_recovery", "true"),
            ],
        ),
        (
            "crm",
            addrs[2],
            r#"["user.*"]"#,
            "timeout = \"5s\"\nconcurrency = 2\n",
            &[
                ("schedule", "\"power\""),
                ("min_delay", "\"60s\""),
                ("max_delay", "\"4d\""),
                ("on_client_error", "\"disable\""),
            ],
        ),
        (
            "analytics",
            addrs[3],
            r#"["order.*", "user.*", "invoice.*"]"#,
            "timeout = \"2s\"\nconcurrency = 2\n",
            &[
                ("policy", "\"bounded\""),
                ("schedule", "\"fixed\""),
                ("delay", "\"10s\""),
                ("max_retries", "3"),
                ("max_age", "\"10m\""),
            ],
        ),
    ];
    for (id, addr, topics, extra, retry) in destinations {
        text.push_str(&format!(
            "[[destinations]]\nid = \"{id}\"\nurl = \"http://{addr}/hooks/{id}\"\ntopics = {topics}\n{extra}"
        ));
        text.push_str(&retry_table(retry));
        text.push('\n');
    }
    text
}

/// Creates the temporary store directory, starts the receivers and builds the
/// demo config (API on 127.0.0.1, a free port).
pub async fn start_demo() -> Result<(Config, DemoGuard), DemoError> {
    let dir = std::env::temp_dir().join(format!(
        "hookwatch-demo-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir)?;
    let mut guard = DemoGuard {
        dir: dir.clone(),
        tasks: Vec::new(),
        receivers: Vec::new(),
    };
    let routers = [
        Router::new().fallback(healthy),
        Router::new().fallback(flaky),
        Router::new().fallback(gone),
        Router::new().fallback(slow),
    ];
    for router in routers {
        let (addr, task) = serve(router).await?;
        guard.receivers.push(addr);
        guard.tasks.push(task);
    }
    let text = demo_config_text(&dir.join("demo.redb"), &guard.receivers);
    let config = Config::parse(&text, ConfigSource::File("demo".into()), None)?;
    Ok((config, guard))
}

const NAMES: [&str; 6] = [
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Katherine Johnson",
    "Edsger Dijkstra",
    "Barbara Liskov",
];

/// One realistic event: (topic, JSON payload).
pub fn demo_event(n: u64) -> (&'static str, String) {
    let name = NAMES[(n as usize) % NAMES.len()];
    let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match n % 5 {
        0 | 1 => (
            "order.created",
            serde_json::json!({
                "type": "order.created",
                "order_id": format!("ord_{}", 10_000 + n),
                "customer": {"name": name, "email": email},
                "items": [
                    {"sku": "TSHIRT-M", "quantity": 1 + n % 3, "unit_price": 19.9},
                    {"sku": "MUG", "quantity": 1, "unit_price": 9.5}
                ],
                "total": 29.4 + (n % 3) as f64 * 19.9,
                "currency": "EUR",
                "payment_token": format!("tok_live_{:016x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                "created_at": now,
            })
            .to_string(),
        ),
        2 => (
            "user.signup",
            serde_json::json!({
                "type": "user.signup",
                "user_id": format!("usr_{}", 500 + n),
                "name": name,
                "email": email,
                "plan": if n.is_multiple_of(2) { "pro" } else { "free" },
                "created_at": now,
            })
            .to_string(),
        ),
        3 => (
            "invoice.paid",
            serde_json::json!({
                "type": "invoice.paid",
                "invoice_id": format!("inv_{}", 7_000 + n),
                "amount_due": 4900,
                "currency": "EUR",
                "customer_email": email,
                "paid_at": now,
            })
            .to_string(),
        ),
        _ => (
            "order.shipped",
            serde_json::json!({
                "type": "order.shipped",
                "order_id": format!("ord_{}", 10_000 + n.saturating_sub(3)),
                "carrier": "DHL",
                "tracking_number": format!("JD0{:09}", n * 7919),
                "shipped_at": now,
            })
            .to_string(),
        ),
    }
}

/// Ingests a few events a second (topic fan-out, and now and then straight to
/// one destination) until `shutdown` is cancelled or the engine shuts down.
pub fn spawn_trickle(control: Arc<dyn Control>, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut n: u64 = 0;
        loop {
            let (topic, payload) = demo_event(n);
            let request = IngestRequest {
                topic: None,
                content_type: Some("application/json".into()),
                payload: payload.into(),
                idempotency_key: None,
            };
            let result = if n % 7 == 6 {
                let request = IngestRequest {
                    topic: Some(topic.to_string()),
                    ..request
                };
                control.ingest("shop", request).await.map(|_| ())
            } else {
                control.ingest_topic(topic, request).await.map(|_| ())
            };
            if matches!(result, Err(ControlError::ShuttingDown)) {
                return;
            }
            n += 1;
            let pause = 250 + rand::random::<u64>() % 400;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(pause)) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn demo_config_parses_with_four_destinations() {
        let (config, guard) = start_demo().await.unwrap();
        assert_eq!(config.destinations.len(), 4);
        assert!(config.store.path.starts_with(guard.dir()));
        assert!(config.server.listen.ip().is_loopback());
        let dir = guard.dir().to_path_buf();
        drop(guard);
        assert!(!dir.exists());
    }

    #[test]
    fn demo_events_are_json() {
        for n in 0..10 {
            let (topic, payload) = demo_event(n);
            assert!(!topic.is_empty());
            serde_json::from_str::<serde_json::Value>(&payload).unwrap();
        }
    }
}

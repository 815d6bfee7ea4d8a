//! The receiver the engine delivers to: counts deliveries and duplicates and
//! records each event's arrival time by the sequence number in its payload.

use super::{setup, BenchError};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the receiver records. Arrival times are nanoseconds since `epoch`, plus
/// one so that zero means "not yet".
pub(super) struct Tally {
    epoch: Instant,
    pub(super) arrivals: Vec<AtomicU64>,
    pub(super) delivered: AtomicU64,
    pub(super) duplicates: AtomicU64,
    raw: AtomicU64,
    seen: Mutex<HashSet<String>>,
    fail_rate: f64,
}

impl Tally {
    pub(super) fn new(epoch: Instant, slots: usize, fail_rate: f64) -> Arc<Tally> {
        Arc::new(Tally {
            epoch,
            arrivals: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            raw: AtomicU64::new(0),
            seen: Mutex::new(HashSet::with_capacity(slots)),
            fail_rate,
        })
    }

    fn nanos(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64 + 1
    }
}

/// Reads `"seq":N` from the start of a payload.
pub(super) fn seq_of(body: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(body.get(..body.len().min(64))?).ok()?;
    let start = text.find("\"seq\":")? + 6;
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

pub(super) async fn receive(
    State(tally): State<Arc<Tally>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> impl IntoResponse {
    if uri.path() == "/raw" {
        tally.raw.fetch_add(1, Ordering::Relaxed);
        return StatusCode::OK;
    }
    if tally.fail_rate > 0.0 && rand::random::<f64>() < tally.fail_rate {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let first = tally.seen.lock().expect("tally lock").insert(id);
    if !first {
        tally.duplicates.fetch_add(1, Ordering::Relaxed);
        return StatusCode::OK;
    }
    if let Some(slot) = seq_of(&body).and_then(|seq| tally.arrivals.get(seq)) {
        let _ = slot.compare_exchange(0, tally.nanos(), Ordering::Relaxed, Ordering::Relaxed);
    }
    tally.delivered.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

/// Starts the receiver on its own runtime thread; returns its address.
pub(super) fn start_receiver(tally: Arc<Tally>) -> Result<SocketAddr, BenchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(setup)?;
    listener.set_nonblocking(true).map_err(setup)?;
    let addr = listener.local_addr().map_err(setup)?;
    std::thread::Builder::new()
        .name("bench-receiver".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("receiver runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("receiver listener");
                let app = axum::Router::new().fallback(receive).with_state(tally);
                let _ = axum::serve(listener, app).await;
            });
        })
        .map_err(setup)?;
    Ok(addr)
}

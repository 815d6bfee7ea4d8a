//! The load generator: the engine's config, event payloads carrying their
//! sequence number, keep-alive posting at full speed or a fixed rate, and the
//! wait for every delivery.

use super::receiver::Tally;
use super::{setup, BenchError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) fn write_config(
    dir: &Path,
    receiver: SocketAddr,
    destinations: usize,
    concurrency: usize,
) -> Result<PathBuf, BenchError> {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_body = \"1MiB\"\n\n[store]\npath = \"{}\"\n",
        dir.join("bench.redb").display()
    );
    for i in 0..destinations {
        text.push_str(&format!(
            "\n[[destinations]]\nid = \"bench-{i}\"\nurl = \"http://{receiver}/hook\"\ntimeout = \"10s\"\nconcurrency = {}\n[destinations.retry]\nschedule = \"fixed\"\ndelay = \"100ms\"\nmax_retries = 50\nmax_age = \"1h\"\n",
            concurrency.clamp(1, crate::config::MAX_CONCURRENCY as usize)
        ));
    }
    let path = dir.join("bench.toml");
    std::fs::write(&path, text).map_err(setup)?;
    Ok(path)
}

pub(super) fn payload(seq: u64, size: usize) -> bytes::Bytes {
    let head = format!("{{\"seq\":{seq},\"pad\":\"");
    let tail = "\"}";
    let pad = size.saturating_sub(head.len() + tail.len());
    let mut body = String::with_capacity(size.max(head.len() + tail.len()));
    body.push_str(&head);
    body.extend(std::iter::repeat_n('x', pad));
    body.push_str(tail);
    bytes::Bytes::from(body)
}

/// What the load generator sends.
#[derive(Clone, Copy, Debug)]
pub(super) struct Load {
    pub events: u64,
    /// Keep-alive connections, each posting one request at a time.
    pub concurrency: usize,
    pub payload_bytes: usize,
    /// Events/s offered; `None` posts as fast as the engine answers.
    pub rate: Option<f64>,
    /// Events per request: 1 posts each to its URL, more post batches of
    /// that many to its URL + `/batch`.
    pub batch: usize,
}

/// A batch request's body: `events` payloads from `first` as the batch
/// endpoint's items.
fn batch_body(first: u64, count: u64, payload_bytes: usize) -> bytes::Bytes {
    let mut body = Vec::with_capacity((payload_bytes + 16) * count as usize + 2);
    body.push(b'[');
    for seq in first..first + count {
        if seq > first {
            body.push(b',');
        }
        body.extend_from_slice(b"{\"payload\":");
        body.extend_from_slice(&payload(seq, payload_bytes));
        body.push(b'}');
    }
    body.push(b']');
    bytes::Bytes::from(body)
}

/// Posts `load.events` payloads over `load.concurrency` keep-alive
/// connections; `url_for` picks each event's URL (a batch's, its first
/// event's). Returns the elapsed time of the whole run.
pub(super) async fn generate(
    load: Load,
    starts: Option<Arc<Vec<AtomicU64>>>,
    epoch: Instant,
    url_for: Arc<dyn Fn(u64) -> String + Send + Sync>,
) -> Result<Duration, BenchError> {
    let Load {
        events,
        concurrency,
        payload_bytes,
        rate,
        batch,
    } = load;
    let batch = batch.max(1) as u64;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()
        .map_err(setup)?;
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let client = client.clone();
        let next = next.clone();
        let starts = starts.clone();
        let url_for = url_for.clone();
        let failures = failures.clone();
        tasks.spawn(async move {
            loop {
                let seq = next.fetch_add(batch, Ordering::Relaxed);
                if seq >= events {
                    return;
                }
                let count = batch.min(events - seq);
                if let Some(rate) = rate {
                    let due = began + Duration::from_secs_f64(seq as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let (body, url) = if batch == 1 {
                    (payload(seq, payload_bytes), url_for(seq))
                } else {
                    (
                        batch_body(seq, count, payload_bytes),
                        format!("{}/batch", url_for(seq)),
                    )
                };
                if let Some(starts) = &starts {
                    let now = epoch.elapsed().as_nanos() as u64 + 1;
                    for started in &starts[seq as usize..(seq + count) as usize] {
                        started.store(now, Ordering::Relaxed);
                    }
                }
                let mut sent = false;
                for _ in 0..5 {
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("webhook-id", seq.to_string())
                        .body(body.clone())
                        .send()
                        .await;
                    if matches!(&response, Ok(r) if r.status().is_success()) {
                        sent = true;
                        break;
                    }
                }
                if !sent {
                    failures.fetch_add(count, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(BenchError::Setup(format!(
            "{failed} events were not accepted after 5 tries"
        )));
    }
    Ok(began.elapsed())
}

pub(super) async fn wait_delivered(
    tally: &Tally,
    expected: u64,
    limit: Duration,
) -> Result<Instant, BenchError> {
    let started = Instant::now();
    loop {
        let delivered = tally.delivered.load(Ordering::Relaxed);
        if delivered >= expected {
            return Ok(Instant::now());
        }
        if started.elapsed() > limit {
            return Err(BenchError::Incomplete {
                delivered,
                expected,
                waited: limit,
            });
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::receiver::seq_of;

    #[test]
    fn payload_has_the_requested_size_and_its_sequence_number() {
        let body = payload(1234, 200);
        assert_eq!(body.len(), 200);
        assert_eq!(seq_of(&body), Some(1234));
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
        assert_eq!(
            seq_of(&payload(7, 1)),
            Some(7),
            "tiny sizes still carry the number"
        );
    }
}

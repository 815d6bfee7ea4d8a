//! Fault injection: the real engine against receivers on 127.0.0.1 that misbehave
//! at the socket level (hang, reset, drip, break off, refuse, loop, speak no TLS),
//! and a check that dead destinations do not slow a healthy one.
//!
//! Every fault is local: raw `tokio::net` sockets on loopback, plus one lookup of
//! a `.invalid` name, which no resolver can answer.

mod harness;

use harness::*;
use hookwatch::clock::SystemClock;
use hookwatch::engine::{Engine, IngestRequest};
use hookwatch::model::{AttemptRecord, EventId, EventState};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a raw receiver does with each connection once it has read a request.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Holds the connection open and never answers.
    Hang,
    /// Resets the connection (SO_LINGER 0, then close: the peer gets an RST).
    Reset,
    /// A valid, empty `200` written one byte every `gap`.
    Drip { gap: Duration },
    /// `200` with `Content-Length: 100`, then only 10 bytes, then close.
    ShortBody,
    /// Whatever arrives, an HTTP/1.1 `400` in plain text (for TLS clients).
    PlainText,
}

/// The empty `200` the drip fault writes.
const DRIP_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";

/// A raw TCP receiver on 127.0.0.1 applying `fault` to every connection; returns
/// its base URL (`http://127.0.0.1:port/hook`).
async fn fault_receiver(fault: Fault) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve(stream, fault));
        }
    });
    format!("http://{addr}/hook")
}

async fn serve(mut stream: TcpStream, fault: Fault) {
    if let Fault::PlainText = fault {
        // A TLS ClientHello is not HTTP: answer the way a plain server would.
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).await;
        let _ = stream
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await;
        let _ = stream.shutdown().await;
        return;
    }
    if !read_request(&mut stream).await {
        return;
    }
    match fault {
        Fault::Hang => {
            // Keep the socket open; the task ends with the test's runtime.
            std::future::pending::<()>().await;
        }
        Fault::Reset => {
            // Deprecated because a non-zero linger blocks the thread on drop; a
            // zero linger does not block, it just sends an RST.
            #[allow(deprecated)]
            stream.set_linger(Some(Duration::ZERO)).unwrap();
            drop(stream);
        }
        Fault::Drip { gap } => {
            for byte in DRIP_RESPONSE {
                if stream.write_all(&[*byte]).await.is_err() {
                    return;
                }
                let _ = stream.flush().await;
                tokio::time::sleep(gap).await;
            }
            let _ = stream.shutdown().await;
        }
        Fault::ShortBody => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
                .await;
            let _ = stream.flush().await;
            let _ = stream.shutdown().await;
        }
        Fault::PlainText => unreachable!(),
    }
}

/// Reads one HTTP/1.1 request (head, then `Content-Length` bytes of body).
/// False if the peer went away first.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// A URL on 127.0.0.1 where nothing listens: bound, then released.
async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/hook")
}

/// The event's only attempt so far, after checking the event is in `state`.
async fn single_attempt(h: &Harness, id: EventId, state: EventState) -> AttemptRecord {
    h.wait_attempts(id, 1).await;
    let detail = h.engine.get_event(id).unwrap();
    assert_eq!(detail.event.state, state, "{detail:#?}");
    assert_eq!(detail.attempts.len(), 1, "{detail:#?}");
    detail.attempts[0].clone()
}

/// The attempt's error, asserted present and readable: non-empty and naming
/// one of `words` (case-insensitively).
fn readable_error(attempt: &AttemptRecord, words: &[&str]) -> String {
    let error = attempt
        .error
        .clone()
        .unwrap_or_else(|| panic!("attempt without an error: {attempt:#?}"));
    assert!(!error.trim().is_empty(), "empty error: {attempt:#?}");
    eprintln!("attempt error: {error}");
    let lower = error.to_lowercase();
    assert!(
        words.iter().any(|w| lower.contains(w)),
        "error {error:?} names none of {words:?}"
    );
    error
}

fn retry_in_a_minute(h: &Harness, id: EventId) {
    let event = h.engine.get_event(id).unwrap().event;
    assert_eq!(
        event.next_attempt_at,
        Some(epoch() + chrono::Duration::minutes(1))
    );
}

#[tokio::test]
async fn hanging_receiver_times_out_and_retries() {
    let url = fault_receiver(Fault::Hang).await;
    let h = Harness::start(
        TestConfig::new().destination(Dest::new("a", &url).timeout("300ms").retry_fixed("1m", 3)),
    )
    .await;
    let started = Instant::now();
    let id = h.ingest("a").await;
    let attempt = single_attempt(&h, id, EventState::Retrying).await;
    assert_eq!(attempt.status, None);
    assert_eq!(attempt.error.as_deref(), Some("timed out"));
    assert!(
        (250..5_000).contains(&attempt.duration_ms),
        "a 300ms timeout took {}ms",
        attempt.duration_ms
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(attempt.decision, "retry in 1m");
    retry_in_a_minute(&h, id);
}

#[tokio::test]
async fn connection_reset_after_the_request_retries() {
    let url = fault_receiver(Fault::Reset).await;
    let h = Harness::start(
        TestConfig::new().destination(Dest::new("a", &url).timeout("5s").retry_fixed("1m", 3)),
    )
    .await;
    let id = h.ingest("a").await;
    let attempt = single_attempt(&h, id, EventState::Retrying).await;
    assert_eq!(attempt.status, None);
    readable_error(&attempt, &["reset"]);
    assert_eq!(attempt.decision, "retry in 1m");
    retry_in_a_minute(&h, id);
}

#[tokio::test]
async fn byte_by_byte_answer_within_the_timeout_is_delivered() {
    let url = fault_receiver(Fault::Drip {
        gap: Duration::from_millis(20),
    })
    .await;
    let h = Harness::start(
        TestConfig::new().destination(Dest::new("a", &url).timeout("10s").retry_fixed("1m", 3)),
    )
    .await;
    let id = h.ingest("a").await;
    let attempt = single_attempt(&h, id, EventState::Delivered).await;
    assert_eq!(attempt.status, Some(200));
    assert_eq!(attempt.error, None);
    // 38 bytes, 20ms apart: the answer really was slow.
    assert!(attempt.duration_ms >= 500, "{attempt:#?}");
}

#[tokio::test]
async fn byte_by_byte_answer_past_the_timeout_times_out() {
    let url = fault_receiver(Fault::Drip {
        gap: Duration::from_millis(20),
    })
    .await;
    let h = Harness::start(
        TestConfig::new().destination(Dest::new("a", &url).timeout("300ms").retry_fixed("1m", 3)),
    )
    .await;
    let id = h.ingest("a").await;
    let attempt = single_attempt(&h, id, EventState::Retrying).await;
    // The status line arrives in time, the rest of the head does not.
    assert_eq!(attempt.status, None);
    assert_eq!(attempt.error.as_deref(), Some("timed out"));
    assert!(attempt.duration_ms < 5_000, "{attempt:#?}");
    retry_in_a_minute(&h, id);
}

/// The status arrived, so the attempt counts as delivered; the broken body is
/// noted in the attempt's error (deliver.rs, `read_excerpt`).
#[tokio::test]
async fn body_broken_off_after_a_200_is_delivered_with_a_note() {
    let url = fault_receiver(Fault::ShortBody).await;
    let h = Harness::start(
        TestConfig::new().destination(Dest::new("a", &url).timeout("5s").retry_fixed("1m", 3)),
    )
    .await;
    let id = h.ingest("a").await;
    let attempt = single_attempt(&h, id, EventState::Delivered).await;
    assert_eq!(attempt.status, Some(200));
    assert_eq!(attempt.decision, "delivered");
    let error = readable_error(&attempt, &["response body broke off"]);
    assert!(error.starts_with("response body broke off: "), "{error}");
    assert!(
        error.len() > "response body broke off: ".len(),
        "no cause given: {error}"
    );
    assert_eq!(attempt.response_excerpt, "0123456789");
}

#[tokio::test]
async fn storm_of_429_with_retry_after_waits_and_lowers_concurrency() {
    let receiver = Receiver::start_with(Reply::status(429).header("retry-after", "1")).await;
    let h = Harness::start(
        TestConfig::new().destination(
            Dest::new("a", &receiver.url())
                .timeout("5s")
                .concurrency(4)
                .retry_fixed("1m", 3),
        ),
    )
    .await;
    assert_eq!(h.engine.destination_view("a").unwrap().concurrency, 4);
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(h.ingest("a").await);
    }
    for id in &ids {
        h.wait_attempts(*id, 1).await;
    }
    for id in &ids {
        let detail = h.engine.get_event(*id).unwrap();
        assert_eq!(detail.event.state, EventState::Retrying);
        assert_eq!(detail.event.last_status, Some(429));
        assert_eq!(
            detail.event.next_attempt_at,
            Some(epoch() + chrono::Duration::seconds(1)),
            "Retry-After: 1 replaces the 1m schedule"
        );
        assert_eq!(detail.attempts[0].decision, "retry in 1s (Retry-After)");
    }
    // Six 429s from a concurrency of 4: down to the floor of 1, not below.
    let view = h.engine.destination_view("a").unwrap();
    assert_eq!((view.concurrency, view.max_concurrency), (1, 4));
    assert!(view.in_retry);

    // Another round in virtual time: still retrying, still at 1.
    h.advance(Duration::from_secs(1));
    for id in &ids {
        h.wait_attempts(*id, 2).await;
    }
    let detail = h.engine.get_event(ids[0]).unwrap();
    assert_eq!(detail.event.state, EventState::Retrying);
    assert_eq!(
        detail.event.next_attempt_at,
        Some(epoch() + chrono::Duration::seconds(2))
    );
    assert_eq!(h.engine.destination_view("a").unwrap().concurrency, 1);
}

#[tokio::test]
async fn redirect_loop_fails_as_too_many_redirects() {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    receiver.set_default(Reply::status(302).header("location", &receiver.url()));
    let h = Harness::start(
        TestConfig::new().destination(
            Dest::new("a", &receiver.url())
                .timeout("5s")
                .retry_fixed("1m", 3),
        ),
    )
    .await;
    let id = h.ingest("a").await;
    let attempt = single_attempt(&h, id, EventState::Failed).await;
    let event = h.engine.get_event(id).unwrap().event;
    assert_eq!(
        event.reason.as_ref().map(|r| r.as_str()),
        Some("too_many_redirects")
    );
    assert_eq!(event.next_attempt_at, None);
    assert_eq!(attempt.status, None);
    readable_error(&attempt, &["redirect"]);
    assert_eq!(attempt.decision, "gave up: too many redirects");
    // The first request plus MAX_REDIRECTS (3) followed.
    assert_eq!(receiver.count(), 4);
}

#[tokio::test]
async fn nobody_listening_is_connection_refused_and_retries() {
    let url = closed_port_url().await;
    let h = Harness::start(
        TestConfig::new().destination(Dest::new("a", &url).timeout("5s").retry_fixed("1m", 3)),
    )
    .await;
    let id = h.ingest("a").await;
    let attempt = single_attempt(&h, id, EventState::Retrying).await;
    assert_eq!(attempt.status, None);
    readable_error(&attempt, &["connection refused"]);
    retry_in_a_minute(&h, id);
}

/// `.invalid` never resolves (RFC 2606); only the local resolver is asked. The
/// destination timeout bounds the test should the resolver hang.
#[tokio::test]
async fn unresolvable_host_is_a_dns_error_and_retries() {
    let h = Harness::start(
        TestConfig::new().destination(
            Dest::new("a", "http://nonexistent.invalid/hook")
                .timeout("3s")
                .retry_fixed("1m", 3),
        ),
    )
    .await;
    let id = h.ingest("a").await;
    let attempt = single_attempt(&h, id, EventState::Retrying).await;
    assert_eq!(attempt.status, None);
    readable_error(&attempt, &["dns", "resolve", "lookup"]);
    retry_in_a_minute(&h, id);
}

#[tokio::test]
async fn https_to_a_plain_http_listener_is_a_tls_error_and_retries() {
    let url = fault_receiver(Fault::PlainText)
        .await
        .replacen("http://", "https://", 1);
    let h = Harness::start(
        TestConfig::new().destination(Dest::new("a", &url).timeout("5s").retry_fixed("1m", 3)),
    )
    .await;
    let id = h.ingest("a").await;
    let attempt = single_attempt(&h, id, EventState::Retrying).await;
    assert_eq!(attempt.status, None);
    // Today the message is rustls's "client error (Connect): received corrupt
    // message of type InvalidContentType", which never says TLS; "corrupt
    // message" is accepted until describe() names the handshake.
    readable_error(
        &attempt,
        &["tls", "certificate", "handshake", "corrupt message"],
    );
    retry_in_a_minute(&h, id);
}

// ---------------------------------------------------------------------------
// Isolation: dead destinations must not slow a healthy one (README: "A dead
// endpoint never slows a healthy one"). Real time, real sockets.

const DEAD: [&str; 3] = ["hanging", "refusing", "storming"];

/// A fresh engine on the system clock with `healthy` and three dead destinations. The tempdir must outlive the engine.
async fn isolation_engine() -> (Engine, tempfile::TempDir) {
    let hanging = fault_receiver(Fault::Hang).await;
    let refusing = closed_port_url().await;
    let storming = Receiver::start_with(Reply::status(429).header("retry-after", "0")).await;
    let receiver = Receiver::start().await;
    let dest = |id: &str, url: &str, timeout: &str| {
        Dest::new(id, url).timeout(timeout).retry_fixed("1m", 3)
    };
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new()
        .destination(dest("hanging", &hanging, "2s").concurrency(8))
        .destination(dest("refusing", &refusing, "2s"))
        .destination(dest("storming", &storming.url(), "2s"))
        .destination(dest("healthy", &receiver.url(), "5s"))
        .parse(&dir.path().join("store.redb"));
    let engine = Engine::start(&config, Arc::new(SystemClock)).unwrap();
    (engine, dir)
}

fn request() -> IngestRequest {
    IngestRequest {
        topic: Some("faults.event".into()),
        content_type: Some("application/json".into()),
        payload: bytes::Bytes::from_static(b"{\"hello\":\"world\"}"),
        idempotency_key: None,
    }
}

/// Ingests `n` events into `healthy` and into each of `neighbours` at once, and
/// returns `healthy`'s deliveries per second: `n` over the time from the first
/// ingest until it has `n` more delivered (polled every 10ms, small against a
/// phase of half a second or more).
async fn healthy_rate(engine: &Engine, neighbours: &[&str], n: usize) -> f64 {
    let delivered = || engine.destination_view("healthy").unwrap().counts.delivered;
    let target = delivered() + n as u64;
    let started = Instant::now();
    let mut ingests = tokio::task::JoinSet::new();
    for _ in 0..n {
        for dest in ["healthy"].iter().chain(neighbours) {
            let engine = engine.clone();
            let dest = dest.to_string();
            ingests.spawn(async move { engine.ingest(&dest, request()).await.unwrap() });
        }
    }
    while let Some(done) = ingests.join_next().await {
        done.unwrap();
    }
    wait_until_async(&format!("{n} deliveries to healthy"), || {
        let done = delivered() >= target;
        async move { done }
    })
    .await;
    let took = started.elapsed();
    let rate = n as f64 / took.as_secs_f64();
    eprintln!("isolation: healthy with {neighbours:?}, {n} events each: {took:?}, {rate:.0}/s");
    rate
}

struct Rates {
    alone: f64,
    dead: f64,
}

/// Gives each dead destination `n` events (not timed) and waits until each has
/// attempts under way: from then on they hang, are refused, or are answered 429
/// with `Retry-After: 0` again and again while `healthy` is measured.
async fn wake_the_dead(engine: &Engine, n: usize) {
    let mut ingests = tokio::task::JoinSet::new();
    for _ in 0..n {
        for dest in DEAD {
            let engine = engine.clone();
            ingests.spawn(async move { engine.ingest(dest, request()).await.unwrap() });
        }
    }
    while let Some(done) = ingests.join_next().await {
        done.unwrap();
    }
    for dest in DEAD {
        wait_until_async(&format!("{dest} to be attempted"), || {
            let view = engine.destination_view(dest).unwrap();
            async move { view.in_flight > 0 || view.counts.retrying + view.counts.failed > 0 }
        })
        .await;
    }
}

/// Offers `healthy` events at `per_second`, `count` of them, and returns the
/// rate they were delivered at: `count` over the time from the first ingest
/// until the last delivery.
async fn healthy_rate_at(engine: &Engine, per_second: f64, count: usize) -> f64 {
    let delivered = || engine.destination_view("healthy").unwrap().counts.delivered;
    let target = delivered() + count as u64;
    let started = tokio::time::Instant::now();
    let mut ingests = tokio::task::JoinSet::new();
    for k in 0..count {
        tokio::time::sleep_until(started + Duration::from_secs_f64(k as f64 / per_second)).await;
        let engine = engine.clone();
        ingests.spawn(async move { engine.ingest("healthy", request()).await.unwrap() });
    }
    while let Some(done) = ingests.join_next().await {
        done.unwrap();
    }
    wait_until_async(&format!("{count} deliveries to healthy"), || {
        let done = delivered() >= target;
        async move { done }
    })
    .await;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    eprintln!("isolation: healthy offered {per_second:.0}/s, delivered {rate:.0}/s");
    rate
}

/// One measurement on a fresh engine. First the engine's capacity for
/// `healthy` alone (as fast as it goes); then a steady offered load at a third
/// of that, delivered alone and again while the three dead destinations fail
/// through a backlog each. A dead destination must not take a healthy one's
/// delivery capacity. (At full CPU saturation every attempt, dead or healthy,
/// shares the two cores and the store writer, so the load stays below it.)
async fn measure_isolation() -> Rates {
    let (engine, _dir) = isolation_engine().await;
    healthy_rate(&engine, &[], 20).await;
    let capacity = healthy_rate(&engine, &[], 300).await;
    let offered = (capacity / 3.0).max(50.0);
    let count = (offered * 1.5) as usize;
    let alone = healthy_rate_at(&engine, offered, count).await;
    let backlog = 300;
    wake_the_dead(&engine, backlog).await;
    let dead = healthy_rate_at(&engine, offered, count).await;
    let views: Vec<_> = DEAD
        .iter()
        .map(|id| engine.destination_view(id).unwrap())
        .collect();
    // Stop the dispatchers before the runtime goes.
    engine.shutdown(Duration::from_millis(200)).await;
    // The neighbours really are dead, and really were busy.
    for view in &views {
        assert_eq!(view.counts.delivered, 0, "{}", view.id);
        assert_eq!(
            view.counts.pending + view.counts.retrying + view.counts.failed,
            backlog as u64,
            "{}",
            view.id
        );
    }
    assert_eq!(
        views[2].concurrency, 1,
        "429s lowered storming's concurrency"
    );
    eprintln!(
        "isolation: capacity {capacity:.0}/s, offered {offered:.0}/s: alone {alone:.0}/s; \
         with dead neighbours {dead:.0}/s ({:.2}×)",
        dead / alone
    );
    Rates { alone, dead }
}

/// Runs `body` on its own two-thread runtime and never waits more than a
/// moment for that runtime to stop, so a panic that skips the engine's
/// shutdown fails the test instead of hanging it.
fn on_bounded_runtime(body: impl std::future::Future<Output = ()> + Send + 'static) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async { tokio::spawn(body).await });
    runtime.shutdown_timeout(Duration::from_secs(2));
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Three dead destinations (hanging until a 2s timeout at concurrency 8,
/// refusing, storming 429 with `Retry-After: 0`), each with a backlog being
/// attempted, leave a healthy destination within 20% of its rate alone.
#[test]
fn dead_destinations_do_not_slow_a_healthy_one() {
    on_bounded_runtime(async {
        let rates = measure_isolation().await;
        if rates.dead >= 0.8 * rates.alone {
            return;
        }
        eprintln!(
            "isolation: first comparison failed ({:.0}/s < 0.8 × {:.0}/s); measuring once more",
            rates.dead, rates.alone
        );
        let Rates { alone, dead } = measure_isolation().await;
        assert!(
            dead >= 0.8 * alone,
            "next to dead destinations the healthy one ran at {dead:.0}/s, below 80% of \
             its {alone:.0}/s alone; measured twice"
        );
    });
}

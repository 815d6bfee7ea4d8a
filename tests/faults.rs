//! Fault injection: the real engine against receivers on 127.0.0.1 that misbehave
//! at the socket level (hang, reset, drip, break off, refuse, loop, speak no TLS),
//! and a check that dead destinations do not slow a healthy one.
//!
//! Every fault is local: raw `tokio::net` sockets on loopback, plus one lookup of
//! a `.invalid` name, which no resolver can answer.

mod support;

use hookwatch::clock::SystemClock;
use hookwatch::config::{Config, ConfigSource};
use hookwatch::engine::{Engine, IngestRequest};
use hookwatch::model::{AttemptRecord, EventId, EventState};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{wait_for, Harness, Receiver, Reply};
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

fn destination(id: &str, url: &str, extra: &str) -> String {
    format!(
        "[[destinations]]\nid = \"{id}\"\nurl = \"{url}\"\n{extra}\n\
         [destinations.retry]\nschedule = \"fixed\"\ndelay = \"1m\"\nmax_retries = 3\n"
    )
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
        Some(support::epoch() + chrono::Duration::minutes(1))
    );
}

#[tokio::test]
async fn hanging_receiver_times_out_and_retries() {
    let url = fault_receiver(Fault::Hang).await;
    let h = Harness::start(&destination("a", &url, "timeout = \"300ms\"")).await;
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
    let h = Harness::start(&destination("a", &url, "timeout = \"5s\"")).await;
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
    let h = Harness::start(&destination("a", &url, "timeout = \"10s\"")).await;
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
    let h = Harness::start(&destination("a", &url, "timeout = \"300ms\"")).await;
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
    let h = Harness::start(&destination("a", &url, "timeout = \"5s\"")).await;
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
    let receiver = Receiver::start(Reply::status(429).header("retry-after", "1")).await;
    let h = Harness::start(&destination(
        "a",
        &receiver.url,
        "timeout = \"5s\"\nconcurrency = 4",
    ))
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
            Some(support::epoch() + chrono::Duration::seconds(1)),
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
        Some(support::epoch() + chrono::Duration::seconds(2))
    );
    assert_eq!(h.engine.destination_view("a").unwrap().concurrency, 1);
}

#[tokio::test]
async fn redirect_loop_fails_as_too_many_redirects() {
    let receiver = Receiver::start(Reply::status(500)).await;
    receiver.set_default(Reply::status(302).header("location", &receiver.url));
    let h = Harness::start(&destination("a", &receiver.url, "timeout = \"5s\"")).await;
    let id = h.ingest("a").await;
    let attempt = single_attempt(&h, id, EventState::Failed).await;
    let event = h.engine.get_event(id).unwrap().event;
    assert_eq!(event.reason.as_deref(), Some("too_many_redirects"));
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
    let h = Harness::start(&destination("a", &url, "timeout = \"5s\"")).await;
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
    let h = Harness::start(&destination(
        "a",
        "http://nonexistent.invalid/hook",
        "timeout = \"3s\"",
    ))
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
    let h = Harness::start(&destination("a", &url, "timeout = \"5s\"")).await;
    let id = h.ingest("a").await;
    let attempt = single_attempt(&h, id, EventState::Retrying).await;
    assert_eq!(attempt.status, None);
    readable_error(&attempt, &["tls", "certificate", "handshake"]);
    retry_in_a_minute(&h, id);
}

// ---------------------------------------------------------------------------
// Isolation: dead destinations must not slow a healthy one (README: "A dead
// endpoint never slows a healthy one"). Real time, real sockets.

/// A fresh engine on the system clock with one healthy and three dead
/// destinations. The tempdir must outlive the engine.
async fn isolation_engine() -> (Engine, tempfile::TempDir) {
    let healthy = Receiver::start(Reply::status(200)).await;
    let hanging = fault_receiver(Fault::Hang).await;
    let refusing = closed_port_url().await;
    let storming = Receiver::start(Reply::status(429).header("retry-after", "0")).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"{}\"\n\n{}\n{}\n{}\n{}",
        dir.path().join("store.redb").display(),
        destination("healthy", &healthy.url, "timeout = \"5s\""),
        destination("hanging", &hanging, "timeout = \"2s\"\nconcurrency = 8"),
        destination("refusing", &refusing, "timeout = \"2s\""),
        destination("storming", &storming.url, "timeout = \"2s\""),
    );
    let config = Config::parse(&text, ConfigSource::File("faults.toml".into()), None)
        .unwrap_or_else(|e| panic!("faults config: {e}"));
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

/// Ingests `n` events into each of `destinations` at once, and returns the time
/// from the first ingest until `healthy` has `delivered_before + n` delivered.
async fn time_healthy_delivery(engine: &Engine, destinations: &[&str], n: usize) -> Duration {
    let delivered_before = engine.destination_view("healthy").unwrap().counts.delivered;
    let started = Instant::now();
    let mut ingests = tokio::task::JoinSet::new();
    for _ in 0..n {
        for dest in destinations {
            let engine = engine.clone();
            let dest = dest.to_string();
            ingests.spawn(async move { engine.ingest(&dest, request()).await.unwrap() });
        }
    }
    while let Some(done) = ingests.join_next().await {
        done.unwrap();
    }
    eprintln!("ingested {destinations:?} x{n} in {:?}", started.elapsed());
    let target = delivered_before + n as u64;
    // Polled every 10ms: small against a phase of half a second or more.
    wait_for(&format!("{n} deliveries to healthy"), || {
        let delivered = engine.destination_view("healthy").unwrap().counts.delivered;
        async move { delivered >= target }
    })
    .await;
    started.elapsed()
}

/// One measurement on a fresh engine: the healthy destination's deliveries per
/// second alone, then with the three dead destinations getting as many events.
async fn measure_isolation(n: usize) -> (f64, f64) {
    let (engine, _dir) = isolation_engine().await;
    // Warm up the connection pool and the store.
    time_healthy_delivery(&engine, &["healthy"], 20).await;
    let alone = time_healthy_delivery(&engine, &["healthy"], n).await;
    let crowded =
        time_healthy_delivery(&engine, &["healthy", "hanging", "refusing", "storming"], n).await;
    let view = |id: &str| engine.destination_view(id).unwrap();
    // The neighbours really are dead, and really were busy.
    assert_eq!(view("hanging").counts.delivered, 0);
    assert_eq!(view("refusing").counts.delivered, 0);
    assert_eq!(view("storming").counts.delivered, 0);
    assert!(view("refusing").counts.retrying > 0);
    assert_eq!(view("storming").concurrency, 1, "429s lowered it");
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    eprintln!(
        "isolation: n={n} alone {alone:?} ({:.0}/s), with dead neighbours {crowded:?} ({:.0}/s)",
        rate(alone),
        rate(crowded)
    );
    (rate(alone), rate(crowded))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_destinations_do_not_slow_a_healthy_one() {
    // At least 300 events, and enough that the phase alone takes ~0.5 s here.
    let mut n = 300;
    {
        let (engine, _dir) = isolation_engine().await;
        time_healthy_delivery(&engine, &["healthy"], 20).await;
        let probe = time_healthy_delivery(&engine, &["healthy"], n).await;
        let per_event = probe.as_secs_f64() / n as f64;
        if probe < Duration::from_millis(500) {
            n = ((0.6 / per_event) as usize).clamp(300, 3_000);
        }
        eprintln!("isolation: probe of 300 took {probe:?}; measuring with n={n}");
    }
    let (alone, crowded) = measure_isolation(n).await;
    if crowded >= 0.8 * alone {
        return;
    }
    eprintln!("isolation: first comparison failed ({crowded:.0}/s < 0.8 × {alone:.0}/s); measuring once more");
    let (alone, crowded) = measure_isolation(n).await;
    assert!(
        crowded >= 0.8 * alone,
        "with dead neighbours the healthy destination ran at {crowded:.0}/s, \
         below 80% of {alone:.0}/s alone (twice)"
    );
}

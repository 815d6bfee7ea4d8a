//! What the API fuzzers share: a real engine on a temporary store behind the
//! real router (driven in-process with tower's `oneshot`, no sockets), the
//! pieces requests are built from, and the one check every answer must pass.
//!
//! Used by `tests/api_fuzz.rs` (proptest, in `cargo test`) and by the
//! cargo-fuzz target `fuzz/fuzz_targets/api.rs` (which includes this file by
//! path), so both hold the API to the same promise.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::Router;
use chrono::{TimeZone, Utc};
use hookwatch::api::{self, ApiState};
use hookwatch::clock::ManualClock;
use hookwatch::config::{Config, ConfigSource};
use hookwatch::control::{Control, LocalControl};
use hookwatch::engine::{Engine, IngestRequest};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The token the API under test wants.
pub const TOKEN: &str = "fuzz-token";

/// `server.max_body` of the API under test: above axum's own 2 MB default
/// body limit, so a body between the two shows which limit answers.
pub const MAX_BODY: &str = "3MiB";

/// How long one answer (head and whole body) may take before it counts as a hang.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(10);

/// The engine behind the router, on a manual clock (so nothing is retried
/// while a fuzzer runs) with a store in a temporary folder.
pub struct FuzzApi {
    pub router: Router,
    /// An event that exists, so paths that name one reach past the id check.
    pub event_id: String,
    /// Held so the engine lives exactly as long as the API under test.
    _engine: Engine,
    _dir: tempfile::TempDir,
}

impl FuzzApi {
    /// Must run inside a tokio runtime (the engine spawns its tasks).
    pub async fn start() -> FuzzApi {
        let dir = tempfile::tempdir().expect("a temporary folder");
        // Port 9 (discard) on loopback: nothing listens, so attempts fail
        // fast and never leave the machine.
        let text = format!(
            r#"
[server]
listen = "127.0.0.1:0"
max_body = "{MAX_BODY}"

[store]
path = {store:?}

[[destinations]]
id = "a"
url = "http://127.0.0.1:9/hook"
topics = ["order.*"]
labels = {{ tenant = "acme" }}
"#,
            store = dir.path().join("store.redb").display().to_string(),
        );
        let config = Config::parse(&text, ConfigSource::File("fuzz.toml".into()), None)
            .unwrap_or_else(|e| panic!("fuzz config: {e}\n{text}"));
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
        let engine = Engine::start(&config, clock).expect("the engine starts");
        let event_id = engine
            .ingest(
                "a",
                IngestRequest {
                    topic: Some("order.created".into()),
                    content_type: Some("application/json".into()),
                    payload: bytes::Bytes::from_static(b"{\"n\":1}"),
                    idempotency_key: None,
                },
            )
            .await
            .expect("a first event")
            .id
            .to_string();
        let control: Arc<dyn Control> = Arc::new(LocalControl::new(engine.clone()));
        let router = api::router(ApiState {
            control,
            token: Some(Arc::from(TOKEN)),
            max_body: config.server.max_body,
            shutdown: CancellationToken::new(),
        });
        FuzzApi {
            router,
            event_id,
            _engine: engine,
            _dir: dir,
        }
    }

    /// Sends one request and checks its answer (see [`check_answer`]).
    pub async fn send(&self, request: Request<Body>) -> Result<(), String> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let what = format!("{method} {}", shorten(&uri.to_string()));
        let response = tokio::time::timeout(ANSWER_DEADLINE, self.router.clone().oneshot(request))
            .await
            .map_err(|_| format!("{what}: no answer within {ANSWER_DEADLINE:?}"))?
            .unwrap_or_else(|never| match never {});
        let (parts, body) = response.into_parts();
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        // The change stream never ends by itself: its head is the answer
        // (to a GET, and to a HEAD, which routing answers as a GET).
        if parts.status.is_success() && content_type.starts_with("text/event-stream") {
            let reads = method == Method::GET || method == Method::HEAD;
            return if reads && uri.path() == "/v1/changes" {
                Ok(())
            } else {
                Err(format!(
                    "{what}: an event stream from a path that is not /v1/changes"
                ))
            };
        }
        let body = tokio::time::timeout(ANSWER_DEADLINE, axum::body::to_bytes(body, usize::MAX))
            .await
            .map_err(|_| format!("{what}: body not finished within {ANSWER_DEADLINE:?}"))?
            .map_err(|e| format!("{what}: the body failed: {e}"))?;
        check_answer(&method, uri.path(), parts.status, &content_type, &body)
            .map_err(|problem| format!("{what}: {problem}"))
    }
}

/// The promise: never a 5xx (none is documented for a running engine with
/// room on disk: 503 only while shutting down or with the store closed, 507
/// only past `store.max_size`, and this API has neither), and every answer is
/// either a success with a JSON body (or the two documented others:
/// `/metrics` as Prometheus text, `/v1/changes` as an event stream) or an
/// error with a JSON object body holding a string `error`. A HEAD answer
/// carries no body, only the head a GET would have.
pub fn check_answer(
    method: &Method,
    path: &str,
    status: StatusCode,
    content_type: &str,
    body: &[u8],
) -> Result<(), String> {
    let shown = || String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    if status.is_server_error() {
        return Err(format!("answered {status}: {}", shown()));
    }
    if !(status.is_success() || status.is_client_error()) {
        return Err(format!("answered {status}, neither a success nor an error"));
    }
    if method == Method::HEAD {
        return if body.is_empty() {
            Ok(())
        } else {
            Err(format!("HEAD answered {status} with a body: {}", shown()))
        };
    }
    if status.is_success() && path == "/metrics" {
        return if content_type.starts_with("text/plain") && std::str::from_utf8(body).is_ok() {
            Ok(())
        } else {
            Err(format!(
                "/metrics answered {content_type:?}, not UTF-8 text"
            ))
        };
    }
    if !content_type.starts_with("application/json") {
        return Err(format!(
            "answered {status} as {content_type:?}, not JSON: {}",
            shown()
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "answered {status} with a body that is not JSON ({e}): {}",
            shown()
        )
    })?;
    if status.is_client_error() && !value.get("error").is_some_and(|e| e.is_string()) {
        return Err(format!(
            "answered {status} without a string \"error\": {}",
            shown()
        ));
    }
    Ok(())
}

fn shorten(text: &str) -> String {
    if text.len() <= 200 {
        return text.to_string();
    }
    let mut end = 200;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
}

/// Methods to try: the ones routes use, the ones none does, and extension
/// methods (which HTTP allows: any token).
pub const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND",
    "get", "X-CUSTOM", "M",
];

/// Every route, with `{}` where a segment goes.
pub const ROUTES: &[&str] = &[
    "/healthz",
    "/metrics",
    "/v1/status",
    "/v1/changes",
    "/v1/events",
    "/v1/events/{}",
    "/v1/events/{}/retry",
    "/v1/events/{}/mute",
    "/v1/events/{}/requeue",
    "/v1/destinations",
    "/v1/destinations/{}",
    "/v1/destinations/{}/events",
    "/v1/destinations/{}/stats",
    "/v1/topics/{}/events",
    "/v1/destinations/{}/events/batch",
    "/v1/topics/{}/events/batch",
    "/v1/bulk",
    "/v1/bulk/retry",
    "/v1/bulk/count",
    "/v1/bulk/{}",
    "/v1/bulk/{}/cancel",
    "/v1/notices",
    "/v1/notices/ack",
    "/v1/notices/{}/ack",
    "/",
    "/v1",
    "/v1/",
    "/v2/events",
];

/// Path segments that are already URI-safe, chosen for what they reach:
/// real names, traversal, broken and overlong percent-encoding.
pub const RAW_SEGMENTS: &[&str] = &[
    "a",
    "order.created",
    "..",
    ".",
    "",
    "%2e%2e",
    "%2F",
    "%00",
    "%FF%FE",
    "%C3%A9",
    "%E2%82",
    "%ZZ",
    "%",
    "01J0000000000000000000000A",
    "0000000000000000000000000Z",
    "ZZZZZZZZZZZZZZZZZZZZZZZZZZ",
    "a/b",
    "a;b",
    "*",
];

/// Query parameter names the routes read, and some they do not.
pub const QUERY_KEYS: &[&str] = &[
    "limit",
    "after",
    "before",
    "state",
    "topic",
    "label",
    "destination",
    "created_after",
    "created_before",
    "window",
    "resend",
    "drain",
    "unacked",
    "colour",
    "",
    "%FF",
    "limit[]",
];

/// Query values worth trying for those names.
pub const QUERY_VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "500",
    "501",
    "18446744073709551616",
    "1e3",
    "true",
    "false",
    "TRUE",
    "delivered",
    "failed",
    "bogus",
    "1h",
    "24h",
    "7d",
    "2026-03-01T12:00:00Z",
    "2026-13-45T99:99:99Z",
    "tenant:acme",
    "tenant",
    ":",
    "%FF",
    "%00",
    "%E2%82",
    "a%26b%3Dc",
    "01J0000000000000000000000A",
];

/// `Content-Type` values, from right to wrong to unreadable.
pub const CONTENT_TYPES: &[&[u8]] = &[
    b"application/json",
    b"application/json; charset=utf-8",
    b"APPLICATION/JSON",
    b"text/plain",
    b"application/x-ndjson",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=x",
    b"",
    b";;;",
    b"application/\xff\xfe",
];

/// `Authorization` values: the right token in every case of the scheme,
/// wrong tokens, other schemes, no token, bytes that are not text.
pub fn authorizations() -> Vec<Vec<u8>> {
    vec![
        format!("Bearer {TOKEN}").into_bytes(),
        format!("bearer {TOKEN}").into_bytes(),
        format!("BEARER {TOKEN}").into_bytes(),
        format!("Bearer   {TOKEN}").into_bytes(),
        format!("Bearer {TOKEN} ").into_bytes(),
        format!("Basic {TOKEN}").into_bytes(),
        TOKEN.as_bytes().to_vec(),
        b"Bearer".to_vec(),
        b"Bearer ".to_vec(),
        b"Bearer wrong".to_vec(),
        b"".to_vec(),
        b"Bearer \xff\xfe".to_vec(),
        format!("Bearer {}", "x".repeat(10_000)).into_bytes(),
    ]
}

/// Top-level fields the JSON bodies know (destinations, bulk selections,
/// notice acks), to be sent with values of every type.
pub const BODY_FIELDS: &[&str] = &[
    "id",
    "url",
    "topics",
    "labels",
    "headers",
    "concurrency",
    "enabled",
    "paused",
    "timeout",
    "secret",
    "retry",
    "destination",
    "state",
    "topic",
    "label",
    "created_after",
    "created_before",
    "ids",
    "before",
    "payload",
    "idempotency_key",
    "content_type",
];

/// Nested fields (`retry.*`), sent inside the `retry` object.
pub const RETRY_FIELDS: &[&str] = &[
    "preset",
    "policy",
    "schedule",
    "delay",
    "max_retries",
    "max_age",
    "on_client_error",
    "retry_on",
    "retry_after",
];

/// Percent-encodes everything but the unreserved characters, so any text
/// becomes one valid path segment or query component.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A request from its parts; `None` when the parts do not make a valid HTTP
/// request (a URI or header value hyper would itself refuse before routing).
pub fn build_request(
    method: &str,
    path_and_query: &str,
    headers: &[(&str, Vec<u8>)],
    body: Vec<u8>,
) -> Option<Request<Body>> {
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    let mut builder = Request::builder().method(method).uri(path_and_query);
    for (name, value) in headers {
        builder = builder.header(*name, HeaderValue::from_bytes(value).ok()?);
    }
    builder.body(Body::from(body)).ok()
}

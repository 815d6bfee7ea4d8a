//! The API under arbitrary requests, in-process over a real engine: odd
//! methods, paths (every route with random, traversing, broken-encoding,
//! unicode and very long segments), query strings, headers (content types,
//! authorizations, idempotency keys) and bodies (random bytes, truncated and
//! deeply nested JSON, huge numbers, every known field with values of every
//! type, bodies past the size limits). Nothing panics, and every answer is a
//! success with a JSON body (or the documented text of /metrics and stream
//! of /v1/changes) or an error with a JSON `{"error": string}` body, never a
//! 5xx (see `api_fuzz_support::check_answer`).
//!
//! `HOOKWATCH_FUZZ_CASES=5000 cargo test --test api_fuzz` runs longer; the
//! cargo-fuzz target `fuzz/fuzz_targets/api.rs` runs the same check.

mod api_fuzz_support;

use api_fuzz_support::*;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};

/// The requests, as parts (so a failing case shrinks and prints readably).
#[derive(Clone)]
struct Case {
    method: String,
    path: String,
    query: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |bytes: &[u8]| {
            let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            if bytes.len() > 200 {
                format!("{shown}... ({} bytes)", bytes.len())
            } else {
                shown
            }
        };
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {}", text(value)))
            .collect();
        f.debug_struct("Case")
            .field(
                "request",
                &format!(
                    "{} {}{}",
                    self.method,
                    text(self.path.as_bytes()),
                    text(self.query.as_bytes())
                ),
            )
            .field("headers", &headers)
            .field("body", &text(&self.body))
            .finish()
    }
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(RAW_SEGMENTS).prop_map(str::to_string),
        2 => any::<String>().prop_map(|s| percent_encode(&s)),
        1 => "[a-z0-9._-]{1,40}",
        1 => (1usize..20_000).prop_map(|n| "x".repeat(n)),
        1 => Just(percent_encode("é/ünï/コード/🦀")),
    ]
}

fn path(event_id: String) -> impl Strategy<Value = String> {
    let segment = prop_oneof![4 => segment(), 1 => Just(event_id)];
    (
        prop::sample::select(ROUTES),
        segment,
        prop::option::weighted(0.2, segment_suffix()),
    )
        .prop_map(|(route, segment, suffix)| {
            let mut path = route.replace("{}", &segment);
            if let Some(suffix) = suffix {
                path.push_str(&suffix);
            }
            path
        })
}

/// Something stuck to the end of a route: a trailing slash, traversal, another segment.
fn segment_suffix() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_string()),
        Just("/..".to_string()),
        Just("/../../etc/passwd".to_string()),
        Just("//".to_string()),
        segment().prop_map(|s| format!("/{s}")),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let pair = (
        prop_oneof![
            4 => prop::sample::select(QUERY_KEYS).prop_map(str::to_string),
            1 => any::<String>().prop_map(|s| percent_encode(&s)),
        ],
        prop_oneof![
            4 => prop::sample::select(QUERY_VALUES).prop_map(str::to_string),
            1 => any::<String>().prop_map(|s| percent_encode(&s)),
            1 => (1usize..10_000).prop_map(|n| "9".repeat(n)),
        ],
    )
        .prop_map(|(k, v)| format!("{k}={v}"));
    prop_oneof![
        3 => Just(String::new()),
        4 => prop::collection::vec(pair, 1..4).prop_map(|pairs| format!("?{}", pairs.join("&"))),
        1 => prop::sample::select(&["?", "?&&&", "?=", "?a", "?limit=1&limit=2", "?%", "?a=%ZZ"][..])
            .prop_map(str::to_string),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    let authorization = prop_oneof![
        // Mostly the right token, so requests reach the handlers.
        6 => Just(Some(format!("Bearer {TOKEN}").into_bytes())),
        3 => prop::sample::select(authorizations()).prop_map(Some),
        1 => Just(None),
    ];
    let content_type = prop::option::weighted(
        0.7,
        prop::sample::select(CONTENT_TYPES).prop_map(<[u8]>::to_vec),
    );
    let idempotency_key = prop::option::weighted(
        0.3,
        prop_oneof![
            Just(Vec::new()),
            "[ -~]{1,40}".prop_map(String::into_bytes),
            Just(vec![b'k'; 255]),
            Just(vec![b'k'; 256]),
            Just(b"caf\xc3\xa9".to_vec()),
            Just(b"\xff\x80\x01".to_vec()),
            Just(b"\t key\t".to_vec()),
        ],
    );
    let content_length = prop::option::weighted(
        0.1,
        prop::sample::select(&["0", "1", "-1", "99999999999999999999", "abc", "3145729"][..])
            .prop_map(|v| v.as_bytes().to_vec()),
    );
    (authorization, content_type, idempotency_key, content_length).prop_map(
        |(authorization, content_type, key, length)| {
            let mut headers = Vec::new();
            if let Some(value) = authorization {
                headers.push(("authorization", value));
            }
            if let Some(value) = content_type {
                headers.push(("content-type", value));
            }
            if let Some(value) = key {
                headers.push(("idempotency-key", value));
            }
            if let Some(value) = length {
                headers.push(("content-length", value));
            }
            headers
        },
    )
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::from),
        prop::sample::select(QUERY_VALUES).prop_map(Value::from),
        Just(Value::from("http://127.0.0.1:9/other")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object of known fields (and `retry.*` inside `retry`) with values of any type.
fn known_fields_object() -> impl Strategy<Value = Value> {
    let retry = prop::collection::vec((prop::sample::select(RETRY_FIELDS), json_value()), 0..4)
        .prop_map(|fields| {
            Value::Object(
                fields
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            )
        });
    (
        prop::collection::vec((prop::sample::select(BODY_FIELDS), json_value()), 0..5),
        prop::option::of(retry),
    )
        .prop_map(|(fields, retry)| {
            let mut object: Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            if let Some(retry) = retry {
                object.insert("retry".into(), retry);
            }
            Value::Object(object)
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(Vec::new()),
        2 => prop::collection::vec(any::<u8>(), 0..256),
        6 => known_fields_object().prop_map(|v| v.to_string().into_bytes()),
        // A batch: a JSON array of objects, or the same as NDJSON lines.
        2 => (prop::collection::vec(known_fields_object(), 0..6), any::<bool>()).prop_map(
            |(items, ndjson)| {
                if ndjson {
                    items.iter().map(Value::to_string).collect::<Vec<_>>().join("\n").into_bytes()
                } else {
                    Value::Array(items).to_string().into_bytes()
                }
            }
        ),
        2 => (known_fields_object(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string().into_bytes();
            let at = cut.index(text.len());
            text[..at].to_vec()
        }),
        1 => (1usize..5_000, prop::bool::ANY).prop_map(|(depth, arrays)| {
            if arrays {
                format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
            } else {
                format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes()
            }
        }),
        1 => prop::sample::select(&[
            "{\"concurrency\": 1e999999}",
            "{\"concurrency\": 123456789012345678901234567890}",
            "{\"retry\": {\"max_retries\": -123456789012345678901234567890}}",
            "{\"ids\": [1e400]}",
            "{\"before\": 18446744073709551616}",
            "-0",
            "1e999",
            "null",
            "\"\\ud800\"",
            "{\"a\":1,\"a\":2}",
        ][..]).prop_map(|s| s.as_bytes().to_vec()),
        // Between axum's 2 MB default limit and `server.max_body`, and past both.
        1 => prop::sample::select(&[2_500_000usize, 3 * 1024 * 1024 + 1][..])
            .prop_map(|n| format!("{{\"url\": \"{}\"}}", "x".repeat(n)).into_bytes()),
    ]
}

fn case(event_id: String) -> impl Strategy<Value = Case> {
    (
        prop::sample::select(METHODS).prop_map(str::to_string),
        path(event_id),
        query(),
        headers(),
        body(),
    )
        .prop_map(|(method, path, query, headers, body)| Case {
            method,
            path,
            query,
            headers,
            body,
        })
}

#[test]
fn every_answer_is_json_and_none_is_a_server_error() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let api = runtime.block_on(FuzzApi::start());
    let cases = std::env::var("HOOKWATCH_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let built = std::cell::Cell::new(0u32);
    let result = runner.run(&case(api.event_id.clone()), |case| {
        let Some(request) = build_request(
            &case.method,
            &format!("{}{}", case.path, case.query),
            &case.headers,
            case.body.clone(),
        ) else {
            // Parts hyper would refuse before any routing: not the API's to answer.
            return Ok(());
        };
        built.set(built.get() + 1);
        runtime
            .block_on(api.send(request))
            .map_err(TestCaseError::fail)
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let built = built.get();
    assert!(
        built >= cases / 2,
        "only {built} of {cases} cases made a request"
    );
}

/// The status and JSON body of one answer (which must be JSON).
async fn answer(api: &FuzzApi, method: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    use tower::ServiceExt;
    let request = build_request(
        method,
        path,
        &[("authorization", format!("Bearer {TOKEN}").into_bytes())],
        body,
    )
    .expect("a valid request");
    let response = api.router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{method} {path}: {status} is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, value)
}

/// Found by this fuzzer: axum's own refusal of a path segment that is not
/// UTF-8 once answered in plain text.
#[tokio::test]
async fn a_path_segment_that_is_not_utf8_is_a_json_400() {
    let api = FuzzApi::start().await;
    for path in [
        "/v1/events/%FF%FE",
        "/v1/events/%FF/retry",
        "/v1/destinations/%C3/stats",
        "/v1/topics/%E2%82/events",
        "/v1/notices/%FF/ack",
    ] {
        let method =
            if path.ends_with("/events") || path.ends_with("/ack") || path.ends_with("/retry") {
                "POST"
            } else {
                "GET"
            };
        let (status, body) = answer(&api, method, path, Vec::new()).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("UTF-8"),
            "{path}: {body}"
        );
    }
}

/// Found by this fuzzer: a JSON body between axum's 2 MB default limit and
/// `server.max_body` was refused with axum's plain-text 413; it is read up
/// to `server.max_body`, and only past it refused, as JSON.
#[tokio::test]
async fn bodies_are_held_to_max_body_alone_and_refused_as_json() {
    let api = FuzzApi::start().await;
    let within = format!("{{\"ids\": [], \"pad\": \"{}\"}}", "x".repeat(2_500_000));
    let (status, body) = answer(&api, "POST", "/v1/bulk/count", within.into_bytes()).await;
    assert_eq!(status, 400, "read and judged on its content: {body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("ids: "),
        "{body}"
    );

    let past = format!("{{\"url\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    for (method, path) in [
        ("POST", "/v1/bulk/retry"),
        ("PATCH", "/v1/destinations/a"),
        ("POST", "/v1/destinations"),
        ("POST", "/v1/notices/ack"),
        ("POST", "/v1/destinations/a/events"),
    ] {
        let (status, body) = answer(&api, method, path, past.clone().into_bytes()).await;
        assert_eq!(status, 413, "{method} {path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("server.max_body"),
            "{method} {path}: {body}"
        );
    }
}

//! The HTTP API under requests decoded from the fuzzer's bytes, in-process
//! over a real engine (one, shared by every input): the same parts and the
//! same check as `tests/api_fuzz.rs` (whose support module this includes),
//! so nothing panics, no answer is a 5xx, and every answer is JSON (an error
//! as `{"error": string}`), or the documented text of /metrics and stream of
//! /v1/changes.
#![no_main]

#[path = "../../tests/api_fuzz_support/mod.rs"]
mod support;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use std::sync::OnceLock;
use support::*;

#[derive(Arbitrary, Debug)]
enum MethodChoice {
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Segment {
    Raw(u8),
    Text(String),
    Long(u16),
    /// The event that exists.
    Event,
}

#[derive(Arbitrary, Debug)]
enum QueryPart {
    Pair { key: Word, value: Word },
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Word {
    Known(u8),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
    Known(u8),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

#[derive(Arbitrary, Debug)]
enum BodyChoice {
    Empty,
    Bytes(Vec<u8>),
    Fields {
        fields: Vec<(u8, Json)>,
        retry: Option<Vec<(u8, Json)>>,
        /// Where to cut the text, if at all: truncated JSON.
        cut: Option<u16>,
    },
    Deep {
        depth: u16,
        arrays: bool,
    },
    Huge(bool),
}

#[derive(Arbitrary, Debug)]
struct FuzzRequest {
    method: MethodChoice,
    route: u8,
    segment: Segment,
    suffix: Option<Segment>,
    query: Vec<QueryPart>,
    authorization: Option<u8>,
    content_type: Option<u8>,
    idempotency_key: Option<Vec<u8>>,
    body: BodyChoice,
}

fn pick<'a, T>(items: &'a [T], index: u8) -> &'a T {
    &items[index as usize % items.len()]
}

fn segment_text(segment: &Segment, event_id: &str) -> String {
    match segment {
        Segment::Raw(i) => pick(RAW_SEGMENTS, *i).to_string(),
        Segment::Text(text) => percent_encode(text),
        Segment::Long(n) => "x".repeat(*n as usize),
        Segment::Event => event_id.to_string(),
    }
}

fn word(word: &Word, known: &[&str]) -> String {
    match word {
        Word::Known(i) => pick(known, *i).to_string(),
        Word::Text(text) => percent_encode(text),
    }
}

fn json(value: &Json) -> Value {
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::from(*b),
        Json::Int(n) => Value::from(*n),
        Json::UInt(n) => Value::from(*n),
        Json::Float(f) => serde_json::json!(f),
        Json::Text(text) => Value::from(text.as_str()),
        Json::Known(i) => Value::from(*pick(QUERY_VALUES, *i)),
        Json::Array(items) => Value::Array(items.iter().map(json).collect()),
        Json::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), json(v))).collect())
        }
    }
}

fn fields(fields: &[(u8, Json)], names: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .map(|(i, v)| (pick(names, *i).to_string(), json(v)))
        .collect()
}

fn body_bytes(body: &BodyChoice) -> Vec<u8> {
    match body {
        BodyChoice::Empty => Vec::new(),
        BodyChoice::Bytes(bytes) => bytes.clone(),
        BodyChoice::Fields {
            fields: top,
            retry,
            cut,
        } => {
            let mut object = fields(top, BODY_FIELDS);
            if let Some(retry) = retry {
                object.insert("retry".into(), Value::Object(fields(retry, RETRY_FIELDS)));
            }
            let mut text = Value::Object(object).to_string().into_bytes();
            if let Some(cut) = cut {
                text.truncate(*cut as usize % (text.len() + 1));
            }
            text
        }
        BodyChoice::Deep { depth, arrays } => {
            let depth = *depth as usize % 5_000;
            if *arrays {
                format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
            } else {
                format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes()
            }
        }
        // Between axum's 2 MB default limit and `server.max_body`, or past both.
        BodyChoice::Huge(past) => {
            let n = if *past {
                3 * 1024 * 1024 + 1
            } else {
                2_500_000
            };
            format!("{{\"url\": \"{}\"}}", "x".repeat(n)).into_bytes()
        }
    }
}

fn api() -> &'static (tokio::runtime::Runtime, FuzzApi) {
    static API: OnceLock<(tokio::runtime::Runtime, FuzzApi)> = OnceLock::new();
    API.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let api = runtime.block_on(FuzzApi::start());
        (runtime, api)
    })
}

fuzz_target!(|input: FuzzRequest| {
    let (runtime, api) = api();
    let method = match &input.method {
        MethodChoice::Known(i) => pick(METHODS, *i).to_string(),
        MethodChoice::Other(text) => text.clone(),
    };
    let mut path =
        pick(ROUTES, input.route).replace("{}", &segment_text(&input.segment, &api.event_id));
    if let Some(suffix) = &input.suffix {
        path.push('/');
        path.push_str(&segment_text(suffix, &api.event_id));
    }
    let query: Vec<String> = input
        .query
        .iter()
        .map(|part| match part {
            QueryPart::Pair { key, value } => {
                format!("{}={}", word(key, QUERY_KEYS), word(value, QUERY_VALUES))
            }
            QueryPart::Raw(text) => text.clone(),
        })
        .collect();
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    let mut headers = Vec::new();
    match input.authorization {
        // Mostly the right token, so requests reach the handlers.
        None => headers.push(("authorization", format!("Bearer {TOKEN}").into_bytes())),
        Some(i) => headers.push(("authorization", pick(&authorizations(), i).clone())),
    }
    if let Some(i) = input.content_type {
        headers.push(("content-type", pick(CONTENT_TYPES, i).to_vec()));
    }
    if let Some(key) = &input.idempotency_key {
        headers.push(("idempotency-key", key.clone()));
    }
    // Parts hyper would refuse before any routing are not the API's to answer.
    let Some(request) = build_request(&method, &path, &headers, body_bytes(&input.body)) else {
        return;
    };
    if let Err(problem) = runtime.block_on(api.send(request)) {
        panic!("{problem}");
    }
});

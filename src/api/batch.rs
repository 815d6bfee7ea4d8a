//! Batch ingestion: `POST /v1/destinations/{id}/events/batch` and
//! `POST /v1/topics/{topic}/events/batch` take up to [`MAX_BATCH`] events as a
//! JSON array, or as NDJSON (one event a line) with
//! `content-type: application/x-ndjson`, and store them in one durable commit.
//!
//! Every item is read and checked before anything is stored, so a bad one
//! fails the whole batch with `400` naming it (`events[17].payload: …`) and
//! nothing is acknowledged. The item's wire shape lives here, and the remote
//! control client encodes with the same type, so the two cannot drift.

use super::extract::Path;
use super::{read_body, ApiError, ApiResult, ApiState};
use crate::engine::{BatchTarget, IngestRequest, MAX_BATCH, MAX_IDEMPOTENCY_KEY};
use crate::store::Inserted;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// The content type of an NDJSON batch.
pub const NDJSON: &str = "application/x-ndjson";
/// An item's content type when it names none: its payload is JSON.
const DEFAULT_CONTENT_TYPE: &str = "application/json";

/// One event of a batch, as it travels.
#[derive(Debug, Deserialize, Serialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an event: {\"payload\": …, \"topic\"?, \"idempotency_key\"?, \"content_type\"?}"
)]
pub struct BatchItem {
    /// The event's body. Under a JSON content type (the default), any JSON
    /// value, stored exactly as written; under another, a JSON string holding
    /// the body's text.
    pub payload: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// Why an item cannot be stored, before the `events[N]` prefix is added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ItemError {
    #[error("payload: with content_type \"{content_type}\" the payload is a JSON string (the body's text)")]
    PayloadNotText { content_type: String },
    #[error("payload: the body is not UTF-8 text, which a batch cannot carry (post it alone)")]
    PayloadNotUtf8,
    #[error("idempotency_key: must be 1 to {MAX_IDEMPOTENCY_KEY} bytes, got {0}")]
    IdempotencyKey(usize),
    #[error("topic: must not be empty")]
    EmptyTopic,
    #[error("content_type: not a media type (type/subtype, e.g. application/json): {0:?}")]
    ContentType(String),
}

/// Whether a body of `content_type` is JSON (`application/json`,
/// `application/cloudevents+json`, …), parameters aside.
fn is_json(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || mime.ends_with("+json")
}

/// Whether `content_type` reads as `type/subtype[; parameters]`: both
/// names non-empty HTTP tokens, as a `Content-Type` header needs.
fn is_media_type(content_type: &str) -> bool {
    let token = |name: &str| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    matches!(mime.split_once('/'), Some((kind, sub)) if token(kind) && token(sub))
        && !content_type.bytes().any(|b| b.is_ascii_control())
}

impl BatchItem {
    /// The event this item asks to store.
    pub fn into_request(self) -> Result<IngestRequest, ItemError> {
        if let Some(key) = &self.idempotency_key {
            if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
                return Err(ItemError::IdempotencyKey(key.len()));
            }
        }
        if self.topic.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(ItemError::EmptyTopic);
        }
        let content_type = self
            .content_type
            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string());
        if !is_media_type(&content_type) {
            return Err(ItemError::ContentType(content_type));
        }
        let payload = if is_json(&content_type) {
            bytes::Bytes::copy_from_slice(self.payload.get().as_bytes())
        } else {
            match serde_json::from_str::<String>(self.payload.get()) {
                Ok(text) => bytes::Bytes::from(text),
                Err(_) => return Err(ItemError::PayloadNotText { content_type }),
            }
        };
        Ok(IngestRequest {
            topic: self.topic,
            content_type: Some(content_type),
            payload,
            idempotency_key: self.idempotency_key,
        })
    }

    /// The item that carries `request` (the remote client's side).
    pub fn from_request(request: &IngestRequest) -> Result<BatchItem, ItemError> {
        let content_type = request
            .content_type
            .clone()
            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string());
        let payload = if is_json(&content_type) {
            match std::str::from_utf8(&request.payload)
                .ok()
                .and_then(|text| RawValue::from_string(text.to_string()).ok())
            {
                Some(raw) => raw,
                // Not JSON after all: carried as text, stored as sent.
                None => return BatchItem::text(request, "text/plain".into()),
            }
        } else {
            return BatchItem::text(request, content_type);
        };
        Ok(BatchItem {
            payload,
            topic: request.topic.clone(),
            idempotency_key: request.idempotency_key.clone(),
            content_type: request.content_type.clone(),
        })
    }

    fn text(request: &IngestRequest, content_type: String) -> Result<BatchItem, ItemError> {
        let text = std::str::from_utf8(&request.payload).map_err(|_| ItemError::PayloadNotUtf8)?;
        let quoted = serde_json::to_string(text).expect("a string always encodes");
        Ok(BatchItem {
            payload: RawValue::from_string(quoted).expect("an encoded string is JSON"),
            topic: request.topic.clone(),
            idempotency_key: request.idempotency_key.clone(),
            content_type: Some(content_type),
        })
    }
}

/// Why one NDJSON line is not an item: where in it (`.payload`, empty for
/// the line as a whole) and serde's words.
#[derive(Debug)]
pub struct LineError {
    pub at: String,
    pub message: String,
}

/// Reads one NDJSON line as an item (the API's NDJSON body and `hookwatch
/// send` read lines the same way).
pub fn read_item_line(line: &str) -> Result<BatchItem, LineError> {
    let mut reader = serde_json::Deserializer::from_str(line);
    serde_path_to_error::deserialize(&mut reader).map_err(|e| {
        let path = e.path().to_string();
        LineError {
            at: if path == "." {
                String::new()
            } else {
                format!(".{path}")
            },
            message: e.inner().to_string(),
        }
    })
}

/// Reads a batch body: a JSON array, or NDJSON under [`NDJSON`]. Every error
/// names the item (`events[3]…`), and for NDJSON its line too.
pub fn parse_batch(content_type: Option<&str>, body: &[u8]) -> ApiResult<Vec<IngestRequest>> {
    let ndjson = content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(NDJSON))
    });
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("events: the body is not UTF-8 ({e})")))?;
    let items: Vec<(BatchItem, Option<usize>)> = if ndjson {
        let mut items = Vec::new();
        for (line_index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let index = items.len();
            if index == MAX_BATCH {
                return Err(too_many(
                    text.lines().filter(|l| !l.trim().is_empty()).count(),
                ));
            }
            let item = read_item_line(line).map_err(|e| {
                ApiError::bad_request(format!(
                    "events[{index}]{} (line {}): {}",
                    e.at,
                    line_index + 1,
                    e.message
                ))
            })?;
            items.push((item, Some(line_index + 1)));
        }
        items
    } else {
        let mut reader = serde_json::Deserializer::from_str(text);
        let items: Vec<BatchItem> = serde_path_to_error::deserialize(&mut reader).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." { String::new() } else { path };
            // One object where an array belongs: most likely NDJSON sent
            // under another content type.
            let hint = if text.trim_start().starts_with('{') {
                "; a batch is a JSON array of events, or NDJSON (one event a line) with content-type: application/x-ndjson"
            } else {
                ""
            };
            ApiError::bad_request(format!("events{at}: {}{hint}", e.inner()))
        })?;
        if items.len() > MAX_BATCH {
            return Err(too_many(items.len()));
        }
        items.into_iter().map(|item| (item, None)).collect()
    };
    if items.is_empty() {
        return Err(ApiError::bad_request(
            "events: a batch holds at least one event",
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, (item, line))| {
            item.into_request().map_err(|e| {
                let line = line.map(|l| format!(" (line {l})")).unwrap_or_default();
                ApiError::bad_request(format!("events[{index}].{e}{line}"))
            })
        })
        .collect()
}

fn too_many(count: usize) -> ApiError {
    ApiError::bad_request(format!(
        "events: a batch holds at most {MAX_BATCH} events, got {count}; split it"
    ))
}

/// One item's answer: its event (to a destination) or its events (to a topic).
fn item_answer(target: &BatchTarget, inserted: &[Inserted]) -> Value {
    let event = |e: &Inserted| {
        let mut entry = json!({ "id": e.id.to_string(), "state": e.state });
        if matches!(target, BatchTarget::Topic(_)) {
            entry["destination"] = json!(e.destination);
        }
        if let Some(first) = e.duplicate_of {
            entry["duplicate_of"] = json!(first.to_string());
        }
        entry
    };
    match target {
        BatchTarget::Destination(_) => inserted.first().map(event).unwrap_or(Value::Null),
        BatchTarget::Topic(_) => {
            json!({ "events": inserted.iter().map(event).collect::<Vec<_>>() })
        }
    }
}

async fn ingest_batch(
    state: ApiState,
    target: BatchTarget,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(&state, &headers, body).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let requests = parse_batch(content_type, &body)?;
    let inserted = state.control.ingest_batch(target.clone(), requests).await?;
    let events: Vec<Value> = inserted
        .iter()
        .map(|item| item_answer(&target, item))
        .collect();
    Ok((StatusCode::ACCEPTED, Json(json!({ "events": events }))).into_response())
}

pub async fn ingest_batch_to_destination(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    ingest_batch(state, BatchTarget::Destination(id), headers, body).await
}

pub async fn ingest_batch_to_topic(
    State(state): State<ApiState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    ingest_batch(state, BatchTarget::Topic(topic), headers, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: ApiResult<Vec<IngestRequest>>) -> String {
        result.expect_err("the batch is refused").message
    }

    #[test]
    fn a_json_array_keeps_each_payload_exactly_as_written() {
        let body = br#"[{"payload": {"b": 1, "a": 2.50}}, {"payload": "hi", "content_type": "text/plain", "topic": "t", "idempotency_key": "k"}]"#;
        let requests = parse_batch(Some("application/json"), body).unwrap();
        assert_eq!(&requests[0].payload[..], br#"{"b": 1, "a": 2.50}"#);
        assert_eq!(
            requests[0].content_type.as_deref(),
            Some("application/json")
        );
        assert_eq!(&requests[1].payload[..], b"hi");
        assert_eq!(requests[1].topic.as_deref(), Some("t"));
        assert_eq!(requests[1].idempotency_key.as_deref(), Some("k"));
    }

    #[test]
    fn ndjson_reads_one_event_a_line_skipping_blank_lines() {
        let body = b"{\"payload\": 1}\n\n{\"payload\": [2]}\n";
        let requests = parse_batch(Some("application/x-ndjson; charset=utf-8"), body).unwrap();
        assert_eq!(requests.len(), 2);
        assert_eq!(&requests[1].payload[..], b"[2]");
    }

    #[test]
    fn a_bad_item_is_named_by_its_index_and_field() {
        let body = br#"[{"payload": 1}, {"payload": 2}, {"paylod": 3}]"#;
        let text = message(parse_batch(None, body));
        assert!(text.starts_with("events[2]"), "{text}");
        assert!(text.contains("paylod"), "{text}");

        let body = br#"[{"payload": 1}, {"payload": 2, "topic": 5}]"#;
        let text = message(parse_batch(None, body));
        assert!(text.starts_with("events[1].topic: invalid type"), "{text}");

        let body = br#"[{"payload": {"a": 1}, "content_type": "text/plain"}]"#;
        assert_eq!(
            message(parse_batch(None, body)),
            "events[0].payload: with content_type \"text/plain\" the payload is a JSON string (the body's text)"
        );

        let long = "k".repeat(MAX_IDEMPOTENCY_KEY + 1);
        let body = format!(r#"[{{"payload": 1}}, {{"payload": 1, "idempotency_key": "{long}"}}]"#);
        assert_eq!(
            message(parse_batch(None, body.as_bytes())),
            "events[1].idempotency_key: must be 1 to 255 bytes, got 256"
        );

        let body = b"{\"payload\": 1}\n\n{\"payload\": }\n";
        let text = message(parse_batch(Some(NDJSON), body));
        assert!(text.starts_with("events[1].payload (line 3): "), "{text}");
    }

    #[test]
    fn a_batch_holds_one_to_max_batch_events() {
        assert_eq!(
            message(parse_batch(None, b"[]")),
            "events: a batch holds at least one event"
        );
        assert_eq!(
            message(parse_batch(Some(NDJSON), b"\n\n")),
            "events: a batch holds at least one event"
        );
        let many = format!("[{}]", vec![r#"{"payload":1}"#; MAX_BATCH + 1].join(","));
        assert!(
            message(parse_batch(None, many.as_bytes())).contains("at most 1000 events, got 1001")
        );
        let many = vec![r#"{"payload":1}"#; MAX_BATCH + 1].join("\n");
        assert!(message(parse_batch(Some(NDJSON), many.as_bytes())).contains("got 1001"));
        let text = message(parse_batch(None, br#"{"payload": 1}"#));
        assert!(
            text.starts_with("events: invalid type: map, expected a sequence"),
            "{text}"
        );
    }

    #[test]
    fn an_item_made_from_a_request_reads_back_as_that_request() {
        let cases = [
            (Some("application/json"), &b"{\"x\": [1, 2]}"[..]),
            (None, &b"42"[..]),
            (Some("text/plain"), &b"hello \"there\"\n"[..]),
            (Some("application/json"), &b"not json"[..]),
        ];
        for (content_type, payload) in cases {
            let request = IngestRequest {
                topic: Some("t".into()),
                content_type: content_type.map(str::to_string),
                payload: bytes::Bytes::copy_from_slice(payload),
                idempotency_key: Some("key".into()),
            };
            let item = BatchItem::from_request(&request).unwrap();
            let wire = serde_json::to_string(&item).unwrap();
            let back: BatchItem = serde_json::from_str(&wire).unwrap();
            let back = back.into_request().unwrap();
            assert_eq!(back.payload, request.payload, "{wire}");
            assert_eq!(back.topic, request.topic);
            assert_eq!(back.idempotency_key, request.idempotency_key);
        }
        let binary = IngestRequest {
            payload: bytes::Bytes::from_static(&[0xff, 0x00]),
            content_type: Some("application/octet-stream".into()),
            ..IngestRequest::default()
        };
        assert_eq!(
            BatchItem::from_request(&binary).unwrap_err(),
            ItemError::PayloadNotUtf8
        );
    }
}

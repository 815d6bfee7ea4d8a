//! The HTTP API (axum): a thin layer that turns requests into calls on the engine's
//! control interface ([`Control`]) and its answers into JSON. Every error is
//! `{"error": "...", "code": "..."}` (see [`error`]).

use crate::control::Control;
use crate::engine::stats::StatsWindow;
use crate::engine::IngestRequest;
use crate::model::{EventFilter, EventId, EventState, LabelSelector};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use extract::{Path, Query};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub mod actions;
pub mod batch;
pub mod changes;
pub mod error;
mod extract;
pub mod listener;
pub mod notices;

pub use error::{control_error_from, status_of, ApiError};

#[derive(Clone)]
pub struct ApiState {
    pub control: Arc<dyn Control>,
    pub token: Option<Arc<str>>,
    pub max_body: u64,
    /// Cancelled when the server stops: ends long-lived responses (the
    /// change stream) so a graceful shutdown does not wait on them.
    pub shutdown: CancellationToken,
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/v1/destinations/{id}/events", post(ingest_to_destination))
        .route("/v1/topics/{topic}/events", post(ingest_to_topic))
        .route(
            "/v1/destinations/{id}/events/batch",
            post(batch::ingest_batch_to_destination),
        )
        .route(
            "/v1/topics/{topic}/events/batch",
            post(batch::ingest_batch_to_topic),
        )
        .route("/v1/events", get(list_events))
        .route("/v1/events/{id}", get(get_event))
        .route(
            "/v1/destinations",
            get(list_destinations).post(actions::create_destination),
        )
        .route(
            "/v1/destinations/{id}",
            get(get_destination)
                .patch(actions::patch_destination)
                .put(actions::replace_destination)
                .delete(actions::delete_destination),
        )
        .route("/v1/destinations/{id}/stats", get(destination_stats))
        .route("/v1/status", get(status))
        .route("/v1/changes", get(changes::follow_changes))
        .route("/metrics", get(metrics))
        .merge(actions::routes())
        .merge(notices::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(protected)
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_such_endpoint",
                "no such endpoint",
            )
        })
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed on this endpoint"),
            )
        })
        .with_state(state)
}

/// Bearer-token check, in constant time so the token cannot be guessed byte by
/// byte from response timings.
async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if let Some(expected) = &state.token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_credentials)
            .unwrap_or("");
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), expected.as_bytes()).into();
        if !matches {
            let message = if presented.is_empty() {
                "missing bearer token (send Authorization: Bearer <token>)"
            } else {
                "wrong bearer token"
            };
            let mut response =
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
            // RFC 9110: a 401 names the scheme that would be accepted.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    next.run(request).await
}

/// The token of an `Authorization` value; the scheme's case does not
/// matter (RFC 9110: `bearer`, `BEARER` and `Bearer` are the same scheme).
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Reads the body up to `max_body`, answering 413 (as JSON) past it.
async fn read_body(state: &ApiState, headers: &HeaderMap, body: Body) -> ApiResult<bytes::Bytes> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "body is larger than server.max_body ({} bytes)",
                state.max_body
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, state.max_body as usize)
        .await
        .map_err(|_| too_large())
}

fn ingest_request(
    headers: &HeaderMap,
    payload: bytes::Bytes,
    topic: Option<String>,
) -> ApiResult<IngestRequest> {
    let idempotency_key = match headers.get("idempotency-key") {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?
                .to_string(),
        ),
        None => None,
    };
    Ok(IngestRequest {
        topic,
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        payload,
        idempotency_key,
    })
}

async fn ingest_to_destination(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let payload = read_body(&state, &headers, body).await?;
    let request = ingest_request(&headers, payload, query.get("topic").cloned())?;
    let inserted = state.control.ingest(&id, request).await?;
    Ok(match inserted.duplicate_of {
        Some(first) => (
            StatusCode::OK,
            Json(json!({ "id": inserted.id.to_string(), "state": inserted.state, "duplicate_of": first.to_string() })),
        )
            .into_response(),
        None => (
            StatusCode::ACCEPTED,
            Json(json!({ "id": inserted.id.to_string(), "state": inserted.state })),
        )
            .into_response(),
    })
}

async fn ingest_to_topic(
    State(state): State<ApiState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let payload = read_body(&state, &headers, body).await?;
    let request = ingest_request(&headers, payload, None)?;
    let inserted = state.control.ingest_topic(&topic, request).await?;
    let events: Vec<_> = inserted
        .iter()
        .map(|e| {
            let mut entry =
                json!({ "id": e.id.to_string(), "destination": e.destination, "state": e.state });
            if let Some(first) = e.duplicate_of {
                entry["duplicate_of"] = json!(first.to_string());
            }
            entry
        })
        .collect();
    Ok((StatusCode::ACCEPTED, Json(json!({ "events": events }))).into_response())
}

pub fn parse_event_id(text: &str) -> ApiResult<EventId> {
    text.parse::<EventId>().map_err(|_| {
        ApiError::bad_request(format!(
            "\"{text}\" is not an event id (a 26-character ULID)"
        ))
    })
}

fn parse_time(field: &str, text: &str) -> ApiResult<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| ApiError::bad_request(format!("{field}: \"{text}\" is not an RFC 3339 time")))
}

/// Builds a filter from query parameters (also used by bulk jobs), refusing any
/// parameter it does not know so a typo does not silently widen a filter.
pub fn filter_from_query(
    query: &HashMap<String, String>,
    extra_allowed: &[&str],
) -> ApiResult<EventFilter> {
    const KNOWN: [&str; 6] = [
        "destination",
        "state",
        "topic",
        "created_after",
        "created_before",
        "label",
    ];
    for key in query.keys() {
        if !KNOWN.contains(&key.as_str()) && !extra_allowed.contains(&key.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter \"{key}\""
            )));
        }
    }
    let state = match query.get("state") {
        Some(text) => Some(
            text.parse::<EventState>()
                .map_err(|m| ApiError::bad_request(format!("state: {m}")))?,
        ),
        None => None,
    };
    Ok(EventFilter {
        destination: query.get("destination").cloned(),
        state,
        topic: query.get("topic").cloned(),
        created_after: query
            .get("created_after")
            .map(|t| parse_time("created_after", t))
            .transpose()?,
        created_before: query
            .get("created_before")
            .map(|t| parse_time("created_before", t))
            .transpose()?,
        label: query
            .get("label")
            .map(|text| LabelSelector::parse(text))
            .transpose()
            .map_err(|m| ApiError::bad_request(format!("label: {m}")))?,
    })
}

async fn list_events(
    State(state): State<ApiState>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let filter = filter_from_query(&query, &["limit", "after"])?;
    let limit = match query.get("limit") {
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=crate::engine::MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit: \"{text}\" must be a number from 1 to {}",
                    crate::engine::MAX_PAGE
                ))
            })?,
        None => 50,
    };
    let after = query
        .get("after")
        .map(|t| parse_event_id(t).map_err(|e| e.in_field("after")))
        .transpose()?;
    let page = state.control.list_events(filter, after, limit).await?;
    Ok(Json(page).into_response())
}

async fn get_event(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_event_id(&id)?;
    Ok(Json(state.control.event(id).await?).into_response())
}

/// `GET /v1/destinations[?label=tenant:acme]`.
async fn list_destinations(
    State(state): State<ApiState>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    if let Some(key) = query.keys().find(|key| key.as_str() != "label") {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter \"{key}\""
        )));
    }
    let selector = query
        .get("label")
        .map(|text| LabelSelector::parse(text))
        .transpose()
        .map_err(|m| ApiError::bad_request(format!("label: {m}")))?;
    let mut destinations = state.control.destinations().await?;
    if let Some(selector) = selector {
        destinations.retain(|d| selector.matches(&d.labels));
    }
    Ok(Json(json!({ "destinations": destinations })).into_response())
}

/// `GET /v1/destinations/{id}/stats?window=1h|24h` (default 1h).
async fn destination_stats(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    if let Some(key) = query.keys().find(|key| key.as_str() != "window") {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter \"{key}\""
        )));
    }
    let window = match query.get("window") {
        Some(text) => {
            StatsWindow::parse(text).map_err(|m| ApiError::bad_request(format!("window: {m}")))?
        }
        None => StatsWindow::Hour,
    };
    Ok(Json(state.control.destination_stats(&id, window).await?).into_response())
}

async fn get_destination(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(state.control.destination(&id).await?).into_response())
}

async fn metrics(State(state): State<ApiState>) -> ApiResult<Response> {
    let text = state.control.metrics_text().await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// Which process answers (its pid and version, so a client sees a restart),
/// totals (counters that only grow, and the unacknowledged notices, also at
/// the top level as `unacked_notices`) and counts by state per destination.
async fn status(State(state): State<ApiState>) -> ApiResult<Response> {
    let totals = state.control.totals().await?;
    let counts = state.control.counts().await?;
    Ok(Json(json!({
        "pid": totals.pid,
        "version": env!("CARGO_PKG_VERSION"),
        "totals": totals,
        "unacked_notices": totals.unacked_notices,
        "store": totals.store,
        "counts": counts,
    }))
    .into_response())
}

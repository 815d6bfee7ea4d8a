//! Operator actions over HTTP: everything the TUI's keys do, for scripts.

use super::extract::{LimitedBody, Path, Query};
use super::{parse_event_id, ApiError, ApiResult, ApiState};
use crate::control::ControlError;
use crate::engine::{BulkSelection, DestinationPatch};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/events/{id}/retry", post(retry))
        .route("/v1/events/{id}/mute", put(mute))
        .route("/v1/events/{id}/requeue", post(requeue))
        .route("/v1/bulk", get(bulk_jobs))
        .route("/v1/bulk/retry", post(bulk_retry))
        .route("/v1/bulk/count", post(bulk_count))
        .route("/v1/bulk/{id}", get(bulk_progress))
        .route("/v1/bulk/{id}/cancel", post(bulk_cancel))
}

/// Parses a JSON object body: malformed JSON is a 400 that says where it broke.
pub(super) fn json_object(body: &[u8]) -> ApiResult<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

/// Deserialises an object: a bad value is a 422 that names its key path
/// (`retry.max_retries`, found by serde_path_to_error), and an unknown
/// top-level field is refused rather than ignored.
pub(super) fn typed_fields<T: DeserializeOwned>(
    map: Map<String, Value>,
    known: &[&str],
) -> ApiResult<T> {
    if let Some(key) = map.keys().find(|key| !known.contains(&key.as_str())) {
        return Err(ControlError::invalid(
            key.clone(),
            format!("unknown field (expected one of {})", known.join(", ")),
        )
        .into());
    }
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let (field, message) = crate::config::serde_error(&path, &e.inner().to_string());
        ControlError::invalid(field.trim_start_matches('.').to_string(), message).into()
    })
}

async fn retry(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_event_id(&id)?;
    let summary = state.control.retry_now(id).await?;
    Ok(Json(json!({
        "id": id.to_string(),
        "state": summary.state,
        "success": summary.success,
        "decision": summary.decision,
    }))
    .into_response())
}

async fn mute(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_event_id(&id)?;
    Ok(Json(state.control.mute(id).await?).into_response())
}

/// A query that may hold only the boolean `name` (absent is false); anything
/// else is a 400 that says what.
fn only_flag(query: &HashMap<String, String>, name: &str) -> ApiResult<bool> {
    if let Some(key) = query.keys().find(|key| key.as_str() != name) {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter \"{key}\""
        )));
    }
    match query.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "{name}: \"{other}\" is not true or false"
        ))),
    }
}

/// `POST /v1/events/{id}/requeue[?resend=true]`: a delivered event is
/// requeued (sent again) only with `resend=true`.
async fn requeue(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let id = parse_event_id(&id)?;
    let resend = only_flag(&query, "resend")?;
    let record = if resend {
        state.control.resend(id).await?
    } else {
        state.control.requeue(id).await?
    };
    Ok(Json(record).into_response())
}

/// The selection of a bulk action: a filter or ids, never an empty body
/// (which would mean everything).
fn bulk_selection(body: &[u8]) -> ApiResult<BulkSelection> {
    let fields = json_object(body)?;
    if fields.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_selection",
            "give a filter (destination, state, topic, label, created_after, created_before) or ids; an empty body would retry everything",
        ));
    }
    check_selection_values(&fields)?;
    typed_fields(
        fields,
        &[
            "destination",
            "state",
            "topic",
            "created_after",
            "created_before",
            "ids",
            "label",
        ],
    )
}

/// The values a selection is most often got wrong in, refused as a 400
/// that says which one and what would do: an empty `ids` (which selects
/// nothing, so is surely not what was meant), an id that is not one (named
/// by its index), and a `state` that is not one (listing those that are).
fn check_selection_values(fields: &Map<String, Value>) -> ApiResult<()> {
    if let Some(Value::Array(ids)) = fields.get("ids") {
        if ids.is_empty() {
            return Err(ApiError::bad_request(
                "ids: the list is empty; give at least one event id, or a filter",
            ));
        }
        for (index, id) in ids.iter().enumerate() {
            let valid = id
                .as_str()
                .is_some_and(|text| text.parse::<crate::model::EventId>().is_ok());
            if !valid {
                return Err(ApiError::bad_request(format!(
                    "ids[{index}]: not an event id: {id}"
                )));
            }
        }
    }
    if let Some(Value::String(state)) = fields.get("state") {
        state
            .parse::<crate::model::EventState>()
            .map_err(|message| ApiError::bad_request(message).in_field("state"))?;
    }
    Ok(())
}

async fn bulk_retry(
    State(state): State<ApiState>,
    LimitedBody(body): LimitedBody,
) -> ApiResult<Response> {
    let selection = bulk_selection(&body)?;
    let job = state.control.start_bulk_retry(selection).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// How many events a bulk retry over the same body would cover.
async fn bulk_count(
    State(state): State<ApiState>,
    LimitedBody(body): LimitedBody,
) -> ApiResult<Response> {
    let selection = bulk_selection(&body)?;
    let count = state.control.count_selection(selection).await?;
    Ok(Json(json!({ "count": count })).into_response())
}

/// Every running job and the last 100 finished ones, newest first:
/// `{"jobs": [...]}`.
async fn bulk_jobs(State(state): State<ApiState>) -> ApiResult<Response> {
    let jobs = state.control.bulk_jobs().await?;
    Ok(Json(json!({ "jobs": jobs })).into_response())
}

async fn bulk_progress(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(state.control.bulk_progress(&id).await?).into_response())
}

async fn bulk_cancel(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(state.control.cancel_bulk(&id).await?).into_response())
}

pub(super) async fn patch_destination(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    LimitedBody(body): LimitedBody,
) -> ApiResult<Response> {
    let fields = json_object(&body)?;
    let patch: DestinationPatch = typed_fields(
        fields,
        &[
            "url",
            "headers",
            "concurrency",
            "enabled",
            "paused",
            "retry",
        ],
    )?;
    Ok(Json(state.control.patch_destination(&id, patch).await?).into_response())
}

/// `POST /v1/destinations`: the config file's `[[destinations]]` keys as a
/// JSON object; `201` with the destination.
pub(super) async fn create_destination(
    State(state): State<ApiState>,
    LimitedBody(body): LimitedBody,
) -> ApiResult<Response> {
    let definition = Value::Object(json_object(&body)?);
    let created = state.control.create_destination(definition).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// `PUT /v1/destinations/{id}`: a whole new definition of a destination
/// created through the API.
pub(super) async fn replace_destination(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    LimitedBody(body): LimitedBody,
) -> ApiResult<Response> {
    let definition = Value::Object(json_object(&body)?);
    Ok(Json(state.control.replace_destination(&id, definition).await?).into_response())
}

/// `DELETE /v1/destinations/{id}[?drain=true]`.
pub(super) async fn delete_destination(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let drain = only_flag(&query, "drain")?;
    let deleted = state.control.delete_destination(&id, drain).await?;
    let status = if deleted.draining {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(deleted)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_field() {
        let body = br#"{"concurrency": "many"}"#;
        let err = typed_fields::<DestinationPatch>(json_object(body).unwrap(), &["concurrency"])
            .unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(err.message.starts_with("concurrency: "), "{}", err.message);
        let err = typed_fields::<DestinationPatch>(
            json_object(br#"{"colour": 1}"#).unwrap(),
            &["concurrency"],
        )
        .unwrap_err();
        assert!(
            err.message.starts_with("colour: unknown field"),
            "{}",
            err.message
        );
    }

    #[test]
    fn nested_bad_values_name_their_key_path() {
        let body = br#"{"retry": {"max_retries": "lots"}}"#;
        let err =
            typed_fields::<DestinationPatch>(json_object(body).unwrap(), &["retry"]).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            err.message.starts_with("retry.max_retries: "),
            "{}",
            err.message
        );
    }

    #[test]
    fn enabled_and_paused_refuse_null() {
        let body = br#"{"enabled": null}"#;
        let err =
            typed_fields::<DestinationPatch>(json_object(body).unwrap(), &["enabled"]).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(err.message.starts_with("enabled: "), "{}", err.message);
        let body = br#"{"concurrency": "8"}"#;
        let err = typed_fields::<DestinationPatch>(json_object(body).unwrap(), &["concurrency"])
            .unwrap_err();
        assert!(
            err.message.contains("expected an integer"),
            "{}",
            err.message
        );
    }

    #[test]
    fn malformed_json_is_a_400_saying_where() {
        let err = json_object(b"{\"url\": ").unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.message.contains("line 1"), "{}", err.message);
    }
}

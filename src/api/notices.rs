//! Operational notices over HTTP: `GET /v1/notices` (newest first, paged by
//! a `before` cursor), `POST /v1/notices/{id}/ack` and `POST /v1/notices/ack`.

use super::actions::{json_object, typed_fields};
use super::extract::{LimitedBody, Path, Query};
use super::{ApiError, ApiResult, ApiState};
use crate::engine::notices::notice_json;
use crate::model::{NoticeId, NoticeQuery, NoticeSelection, DEFAULT_NOTICE_PAGE, MAX_NOTICE_PAGE};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::collections::HashMap;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/notices", get(list_notices))
        .route("/v1/notices/ack", post(ack_notices))
        .route("/v1/notices/{id}/ack", post(ack_notice))
}

fn parse_notice_id(field: &str, text: &str) -> ApiResult<NoticeId> {
    text.parse::<NoticeId>().map_err(|_| {
        ApiError::bad_request(format!(
            "{field}: \"{text}\" is not a notice id (a 26-character ULID)"
        ))
    })
}

/// `GET /v1/notices[?limit=N][&before=ID][&unacked=true]`.
async fn list_notices(
    State(state): State<ApiState>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    if let Some(key) = query
        .keys()
        .find(|key| !["limit", "before", "unacked"].contains(&key.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter \"{key}\""
        )));
    }
    let limit = match query.get("limit") {
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_NOTICE_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit: \"{text}\" must be a number from 1 to {MAX_NOTICE_PAGE}"
                ))
            })?,
        None => DEFAULT_NOTICE_PAGE,
    };
    let before = query
        .get("before")
        .map(|text| parse_notice_id("before", text))
        .transpose()?;
    let unacked_only = match query.get("unacked").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unacked: \"{other}\" must be true or false"
            )))
        }
    };
    let page = state
        .control
        .notices(NoticeQuery {
            before,
            limit,
            unacked_only,
        })
        .await?;
    let notices: Vec<_> = page.notices.iter().map(notice_json).collect();
    Ok(Json(json!({
        "notices": notices,
        "next_before": page.next_before.map(|id| id.to_string()),
        "unacked": page.unacked,
    }))
    .into_response())
}

/// `POST /v1/notices/{id}/ack`: the notice as it now is; 404 for an unknown id.
async fn ack_notice(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_notice_id("id", &id)?;
    let notice = state.control.ack_notice(id).await?;
    Ok(Json(notice_json(&notice)).into_response())
}

/// `POST /v1/notices/ack`: no body (or `{}`) acknowledges every notice;
/// `{"ids": [...]}` those; `{"before": ID}` every one older than ID (both:
/// those of the ids older than ID). Answers `{"acked": N, "unacked": M}`.
async fn ack_notices(
    State(state): State<ApiState>,
    LimitedBody(body): LimitedBody,
) -> ApiResult<Response> {
    let map = json_object(&body)?;
    let selection: NoticeSelection = typed_fields(map, &["ids", "before"])?;
    let acked = state.control.ack_notices(selection).await?;
    let totals = state.control.totals().await?;
    Ok(Json(json!({ "acked": acked, "unacked": totals.unacked_notices })).into_response())
}

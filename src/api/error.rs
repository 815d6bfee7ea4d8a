//! API errors, and the one place where a [`ControlError`] meets HTTP: which
//! status each variant answers with, and how a client rebuilds the variant from
//! a status and the JSON body (`{"error": "...", "code": "...", ...}`).

use crate::control::ControlError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};

/// The status a [`ControlError`] answers with.
pub fn status_of(error: &ControlError) -> StatusCode {
    match error {
        ControlError::UnknownDestination { .. }
        | ControlError::NoTopicMatch { .. }
        | ControlError::UnknownEvent { .. }
        | ControlError::UnknownJob { .. }
        | ControlError::UnknownNotice { .. } => StatusCode::NOT_FOUND,
        ControlError::IdempotencyKey { .. } | ControlError::BadItem { .. } => {
            StatusCode::BAD_REQUEST
        }
        ControlError::Refused { .. } | ControlError::Conflict { .. } => StatusCode::CONFLICT,
        ControlError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ControlError::Unavailable { .. } | ControlError::ShuttingDown => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ControlError::StoreFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
        // Client-side only: a server in front that could not reach hookwatch
        // would say 502, and a rejection keeps the status it came with.
        ControlError::Unreachable { .. } => StatusCode::BAD_GATEWAY,
        ControlError::Rejected { status, .. } => {
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
        }
    }
}

/// Rebuilds the [`ControlError`] an API answer carries, from its status and
/// body. `None` when the answer is not one (a request the API itself refused:
/// a malformed body, a missing token, an unknown endpoint), or when status and
/// code disagree.
pub fn control_error_from(status: StatusCode, body: &Value) -> Option<ControlError> {
    let error: ControlError = serde_json::from_value(body.clone()).ok()?;
    (status_of(&error) == status).then_some(error)
}

/// An API error: a status, a stable machine `code`, and a message that names
/// what was wrong. Errors from the control interface also carry their fields
/// (the id, the field name...), so a client can rebuild them.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The variant's own fields, for errors from the control interface.
    fields: Map<String, Value>,
}

impl ApiError {
    /// An error of the request itself, not from the control interface.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: Map::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// The same error about a value that came from `field` (a query
    /// parameter, say): the message names it first.
    pub fn in_field(mut self, field: &str) -> Self {
        self.message = format!("{field}: {}", self.message);
        self
    }

    /// The JSON body: the variant's fields, `code` and `error`.
    pub fn body(&self) -> Value {
        let mut body = self.fields.clone();
        body.insert("code".into(), Value::from(self.code));
        body.insert("error".into(), Value::from(self.message.clone()));
        Value::Object(body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> Self {
        let fields = match serde_json::to_value(&error) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::new(),
        };
        ApiError {
            status: status_of(&error),
            code: error.code(),
            message: error.to_string(),
            fields,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> Vec<ControlError> {
        vec![
            ControlError::UnknownDestination { id: "shop".into() },
            ControlError::NoTopicMatch {
                topic: "order.created".into(),
            },
            ControlError::UnknownEvent {
                id: "01J0000000000000000000000A".into(),
            },
            ControlError::UnknownJob { id: "job".into() },
            ControlError::invalid("retry.max_age", "must be a duration"),
            ControlError::IdempotencyKey {
                message: "must be 1 to 255 bytes, got 0".into(),
            },
            ControlError::BadItem {
                index: 17,
                field: "topic".into(),
                message: "no destination subscribes to topic \"x\"".into(),
            },
            ControlError::Refused {
                message: "cannot mute a delivered event".into(),
                refusal: None,
            },
            ControlError::Unavailable {
                message: "the store is closed".into(),
                source: None,
            },
            ControlError::ShuttingDown,
            ControlError::StoreFull {
                usage: crate::store::BudgetUse {
                    used_bytes: 7 << 20,
                    ceiling_bytes: 8 << 20,
                    budget_bytes: 10 << 20,
                    file_bytes: 8 << 20,
                    full: true,
                },
            },
            ControlError::Unreachable {
                url: "http://127.0.0.1:1".into(),
                cause: crate::control::UnreachableCause::ConnectionRefused,
                source: None,
            },
            ControlError::Rejected {
                status: 401,
                api_code: "unauthorized".into(),
                message: "wrong bearer token".into(),
            },
        ]
    }

    #[test]
    fn every_variant_survives_status_and_body() {
        for error in every_variant() {
            let api = ApiError::from(error);
            let body = api.body();
            assert_eq!(body["code"], api.code);
            let rebuilt = control_error_from(api.status, &body)
                .unwrap_or_else(|| panic!("{} not rebuilt from {body}", api.code));
            assert_eq!(rebuilt.code(), api.code);
            assert_eq!(rebuilt.to_string(), api.message, "the error text is kept");
            assert_eq!(ApiError::from(rebuilt).body(), body);
        }
    }

    #[test]
    fn statuses_are_the_documented_ones() {
        let statuses: Vec<u16> = every_variant()
            .iter()
            .map(|e| status_of(e).as_u16())
            .collect();
        assert_eq!(
            statuses,
            [404, 404, 404, 404, 422, 400, 400, 409, 503, 503, 507, 502, 401]
        );
    }

    #[test]
    fn a_code_with_the_wrong_status_or_no_code_is_not_rebuilt() {
        let body = ApiError::from(ControlError::ShuttingDown).body();
        assert!(control_error_from(StatusCode::NOT_FOUND, &body).is_none());
        let request_error = ApiError::bad_request("limit: \"x\" must be a number").body();
        assert!(control_error_from(StatusCode::BAD_REQUEST, &request_error).is_none());
        let no_code = serde_json::json!({ "error": "unknown destination \"shop\"" });
        assert!(control_error_from(StatusCode::NOT_FOUND, &no_code).is_none());
    }
}

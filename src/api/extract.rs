//! The extractors handlers use in place of axum's, so that a request axum
//! would refuse in its own words (a path segment that is not UTF-8, a query
//! that does not parse, a body past a limit) is refused as every other error
//! is: a JSON `{"error": ...}` (see [`ApiError`]), with the status axum chose.

use super::{read_body, ApiError, ApiState};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// `axum::extract::Path`, refusing as JSON.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(ApiError::new(
                rejection.status(),
                "bad_request",
                rejection.body_text(),
            )),
        }
    }
}

/// `axum::extract::Query`, refusing as JSON.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(ApiError::new(
                rejection.status(),
                "bad_request",
                rejection.body_text(),
            )),
        }
    }
}

/// The whole body, up to `server.max_body` (413 as JSON past it). Unlike
/// `bytes::Bytes` it is not also held to axum's own 2 MB default limit,
/// which answered in plain text when `server.max_body` was set above it.
pub struct LimitedBody(pub bytes::Bytes);

impl FromRequest<ApiState> for LimitedBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        read_body(state, &parts.headers, body)
            .await
            .map(LimitedBody)
    }
}

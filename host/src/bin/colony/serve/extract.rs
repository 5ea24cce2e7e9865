//! The request parts handlers take — a path segment, a query, a JSON body — refused in
//! the API's own error shape.
//!
//! Why: axum's extractors answer a malformed request with a plain-text body, while every
//! other refusal of this API is `{"error": "…"}`; a client (the page, a script, a
//! third-party tool) should read one shape. Each wrapper keeps axum's status (400 for a
//! bad query or body, 413 past the body limit, 415 without a JSON content type, 422 for
//! JSON of the wrong shape) and its words.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A path segment (a worker id).
pub(super) struct Path<T>(pub T);

/// The query string, deserialized.
pub(super) struct Query<T>(pub T);

/// A JSON body, deserialized.
pub(super) struct JsonBody<T>(pub T);

/// `$wrapper` as axum's `$inner`, its refusal an [`ApiError`].
macro_rules! from_parts {
    ($wrapper:ident, $inner:ident) => {
        impl<T, S> FromRequestParts<S> for $wrapper<T>
        where
            T: DeserializeOwned + Send,
            S: Send + Sync,
        {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                axum::extract::$inner::from_request_parts(parts, state)
                    .await
                    .map(|axum::extract::$inner(value)| Self(value))
                    .map_err(|e| ApiError::Malformed(e.status(), e.body_text()))
            }
        }
    };
}

from_parts!(Path, Path);
from_parts!(Query, Query);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        axum::Json::from_request(request, state)
            .await
            .map(|axum::Json(value)| Self(value))
            .map_err(|e| ApiError::Malformed(e.status(), e.body_text()))
    }
}

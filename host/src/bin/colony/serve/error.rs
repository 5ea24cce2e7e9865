//! How a request of `colony serve` fails: a status and a one-line JSON error.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A request that could not be answered.
#[derive(Debug, thiserror::Error)]
pub(super) enum ApiError {
    #[error("no worker '{0}' in the journal")]
    NoWorker(String),
    #[error("{0}")]
    BadRequest(String),
    /// A path, query or body that could not be read (axum's status and words).
    #[error("{1}")]
    Malformed(StatusCode, String),
    #[error("worker '{worker}' is {state}: {why}")]
    Conflict {
        worker: String,
        state: String,
        why: &'static str,
    },
    #[error("refused: {0}")]
    Refused(String),
    #[error("no process answered within {0:?}")]
    NoAnswer(std::time::Duration),
    #[error("too many live streams are open ({0}); close a tab")]
    Busy(usize),
    /// The journal failed (its path and SQLite's words go to the server's log only).
    #[error("the journal could not be read or written")]
    Journal(#[from] colony::JournalError),
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::NoWorker(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Malformed(status, _) => *status,
            ApiError::Conflict { .. } | ApiError::Refused(_) => StatusCode::CONFLICT,
            ApiError::NoAnswer(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Busy(_) | ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Journal(e) => {
                tracing::error!("colony serve: {e}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

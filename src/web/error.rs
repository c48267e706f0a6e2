//! The one error type of the web layer: JSON `{"error": {"code", "message"}}`
//! for the API, an HTML page for the UI. 5xx are logged once here and never
//! show internals to the caller.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::service::ServiceError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds to send as `Retry-After` (a 429).
    pub retry_after: Option<u64>,
}

/// Error body of every API error.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_field`, `unauthenticated`, `forbidden`, `not_found`.
    #[schema(example = "invalid_field")]
    pub code: String,
    /// What was wrong, naming the field at fault.
    #[schema(example = "address: address 0 is out of range: a device address is 1-255")]
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Too many failed authentications from the caller's address (429,
    /// `Retry-After`), whatever the credential (`web::auth_limit`).
    pub fn too_many_failures(retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failed_authentications",
                format!("too many failed authentications from this address; try again in {retry_after} s"),
            )
        }
    }

    /// The `Retry-After` header, when there is one.
    fn retry_header(&self) -> Option<(axum::http::HeaderName, axum::http::HeaderValue)> {
        self.retry_after
            .map(|seconds| (axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds)))
    }

    /// A request field with a bad value (422).
    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("{field}: {reason}"),
        )
    }

    /// A bad query parameter (400, `invalid_parameter`), named.
    pub fn parameter(field: &str, reason: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("{field}: {reason}"),
        )
    }

    /// For endpoints whose inputs are query parameters: an invalid one is a
    /// 400 `invalid_parameter`; every other error maps as usual.
    pub fn from_query(error: ServiceError) -> ApiError {
        match error {
            ServiceError::Invalid { field, reason } => ApiError::parameter(&field, reason),
            other => other.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn unauthenticated() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "missing or unknown token: send Authorization: Bearer <token>",
        )
    }

    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }

    /// Renders the error as an HTML page, for the operator UI.
    pub fn into_page(self) -> Response {
        let retry = self.retry_header();
        let page = crate::web::ui::pages::ErrorPage {
            status: self.status.as_u16(),
            message: self.message,
        };
        let mut response = match askama::Template::render(&page) {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(_) => (self.status, "error").into_response(),
        };
        if let Some((name, value)) = retry {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        ServiceError::from(error).into()
    }
}

impl From<ServiceError> for ApiError {
    /// Not found 404, conflict 409, invalid input 422 (`invalid_field`),
    /// forbidden 403; a setting the server lacks 503 (`not_configured`), a
    /// database out of reach 503, any other failure 500.
    fn from(error: ServiceError) -> ApiError {
        match error {
            ServiceError::NotFound(what) => ApiError::not_found(what),
            ServiceError::Conflict { field, reason } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", format!("{field}: {reason}"))
            }
            ServiceError::Invalid { field, reason } => ApiError::invalid(&field, reason),
            error @ ServiceError::Forbidden { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", error.to_string())
            }
            ServiceError::NotConfigured(reason) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_configured", reason)
            }
            ServiceError::Storage(error) => {
                let unavailable = matches!(
                    error,
                    sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
                );
                if unavailable {
                    tracing::error!(%error, "database unavailable");
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "database_unavailable",
                        "the database is not reachable; try again shortly",
                    )
                } else {
                    ApiError::internal(error)
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.retry_header();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some((name, value)) = retry {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

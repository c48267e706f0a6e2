//! A JSON body extractor whose rejections speak our error shape and name
//! what was wrong in the request's terms (`web::request_terms`): a field of
//! the wrong type or range is 422 `invalid_field`, a body that is not JSON
//! 400 `malformed_body`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::request_terms::in_request_terms;

pub(crate) struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(error) => {
                    let text = error.body_text();
                    let message = text
                        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                        .unwrap_or(&text);
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_field",
                        in_request_terms(message, "the body"),
                    )
                }
                JsonRejection::JsonSyntaxError(error) => {
                    let text = error.body_text();
                    let message = text
                        .strip_prefix("Failed to parse the request body as JSON: ")
                        .unwrap_or(&text);
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "malformed_body",
                        format!("the body is not valid JSON: {message}"),
                    )
                }
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "malformed_body",
                    "send the body as JSON with Content-Type: application/json",
                ),
                // A body over the server's bound (`web::security`).
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!(
                        "the body is larger than the {} bytes this server takes",
                        crate::web::security::MAX_BODY_BYTES
                    ),
                ),
                other => ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", other.body_text()),
            }),
        }
    }
}

//! A JSON body extractor whose rejections speak our error shape and name
//! what was wrong (serde's message names the field and its position).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

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
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", error.body_text())
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

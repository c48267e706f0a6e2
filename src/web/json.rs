//! A JSON body extractor whose rejections speak our error shape and name
//! what was wrong in the request's terms (`web::request_terms`): a field of
//! the wrong type or range is 422 `invalid_field`, a body that is not JSON
//! 400 `malformed_body`. A string holding a NUL character (`\u0000`),
//! which PostgreSQL's text cannot hold, is refused as 422 `invalid_field`
//! naming the field, before any handler sees it.

use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

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
        let (parts, body) = request.into_parts();
        let bytes = match Bytes::from_request(Request::from_parts(parts.clone(), body), state).await {
            Ok(bytes) => bytes,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(rejection) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_body",
                    rejection.body_text(),
                ));
            }
        };
        if let Some(field) = field_with_nul(&bytes) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("{field}: holds a NUL character (\\u0000), which no text here may hold"),
            ));
        }
        let request = Request::from_parts(parts, Body::from(bytes));
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
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
                other => ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", other.body_text()),
            }),
        }
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!(
            "the body is larger than the {} bytes this server takes",
            crate::web::security::MAX_BODY_BYTES
        ),
    )
}

/// The first field of a JSON body whose name or text holds a NUL
/// character, as a path (`name`, `definition.bands[1]`; `the body` for a
/// top-level string). Only a body whose bytes spell the escape `\u0000` is
/// parsed to find it; one that is not JSON is left to the extractor.
fn field_with_nul(bytes: &[u8]) -> Option<String> {
    const ESCAPE: &[u8] = b"\\u0000";
    if !bytes.windows(ESCAPE.len()).any(|window| window == ESCAPE) {
        return None;
    }
    let value: Value = serde_json::from_slice(bytes).ok()?;
    find_nul(&value, String::new())
}

fn find_nul(value: &Value, path: String) -> Option<String> {
    let named = |path: String| if path.is_empty() { "the body".to_owned() } else { path };
    match value {
        Value::String(text) if text.contains('\0') => Some(named(path)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| find_nul(item, format!("{path}[{index}]"))),
        Value::Object(fields) => fields.iter().find_map(|(name, field)| {
            let inner = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            if name.contains('\0') {
                Some(named(path.clone()))
            } else {
                find_nul(field, inner)
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_is_found_by_its_field() {
        assert_eq!(field_with_nul(br#"{"name": "a\u0000b"}"#), Some("name".into()));
        assert_eq!(
            field_with_nul(br#"{"definition": {"bands": ["day", "\u0000"]}}"#),
            Some("definition.bands[1]".into())
        );
        assert_eq!(field_with_nul(br#"{"a\u0000": 1}"#), Some("the body".into()));
        assert_eq!(field_with_nul(br#""\u0000""#), Some("the body".into()));
        // A backslash followed by the text u0000 is no NUL.
        assert_eq!(field_with_nul(br#"{"name": "\\u0000"}"#), None);
        assert_eq!(field_with_nul(br#"{"name": "plain"}"#), None);
        assert_eq!(field_with_nul(b"not json \\u0000"), None);
    }
}

//! A path extractor whose rejections speak our error shape: a path segment
//! that does not parse (`/api/v1/devices/abc`) is a 400 `invalid_parameter`
//! naming it, never a plain-text answer.

use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, RawPathParams};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::request_terms::must_be;

pub(crate) struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(rejection_error(rejection, &keys(parts, state).await)),
        }
    }
}

/// The names of the route's parameters (`id` of `/devices/{id}`): a path
/// taken as one value or a tuple is refused without them.
async fn keys<S: Send + Sync>(parts: &mut Parts, state: &S) -> Vec<String> {
    match RawPathParams::from_request_parts(parts, state).await {
        Ok(params) => params.iter().map(|(key, _)| key.to_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

fn rejection_error(rejection: PathRejection, keys: &[String]) -> ApiError {
    let key = |index: usize| {
        keys.get(index)
            .cloned()
            .unwrap_or_else(|| format!("path segment {}", index + 1))
    };
    let message = match &rejection {
        PathRejection::FailedToDeserializePathParams(error) => match error.kind() {
            ErrorKind::ParseErrorAtKey {
                key,
                value,
                expected_type,
            } => format!("{key}: must be {}, not {value:?}", must_be(expected_type)),
            ErrorKind::ParseErrorAtIndex {
                index,
                value,
                expected_type,
            } => format!("{}: must be {}, not {value:?}", key(*index), must_be(expected_type)),
            ErrorKind::ParseError { value, expected_type } => {
                let name = if keys.len() == 1 { key(0) } else { "the path".to_owned() };
                format!("{name}: must be {}, not {value:?}", must_be(expected_type))
            }
            ErrorKind::InvalidUtf8InPathParam { key } => format!("{key}: is not valid UTF-8"),
            other => format!("the path: {other}"),
        },
        other => other.body_text(),
    };
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", message)
}

/// [`ApiPath`] for the operator pages: the same refusal, on an error page.
pub(crate) struct PagePath<T>(pub T);

impl<S, T> FromRequestParts<S> for PagePath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = axum::response::Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        ApiPath::<T>::from_request_parts(parts, state)
            .await
            .map(|ApiPath(value)| PagePath(value))
            .map_err(ApiError::into_page)
    }
}

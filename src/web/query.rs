//! A query-string extractor whose rejections speak our error shape: a
//! parameter that does not parse is a 400 `invalid_parameter` naming it
//! and what it must be (`limit: must be a number (whole), not "abc"`),
//! never a plain-text answer.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::request_terms::in_request_terms;

pub(crate) struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(rejection_error(&rejection, parts.uri.query().unwrap_or_default())),
        }
    }
}

fn rejection_error(rejection: &QueryRejection, query: &str) -> ApiError {
    let text = rejection.body_text();
    let serde = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    let mut message = in_request_terms(serde, "the query");
    // The standard library's parse errors do not say what was given.
    if let Some((name, reason)) = message.split_once(": ")
        && !reason.contains(", not ")
        && let Some(given) = given(query, name)
    {
        message = format!("{name}: {reason}, not {given:?}");
    }
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", message)
}

/// The value `name` has in `query`, decoded, when it is given once.
fn given(query: &str, name: &str) -> Option<String> {
    let mut values = form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned());
    let value = values.next()?;
    values.next().is_none().then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_found_decoded_only_when_given_once() {
        assert_eq!(given("a=1&limit=ab%20c&b=2", "limit").as_deref(), Some("ab c"));
        assert_eq!(given("limit=1&limit=2", "limit"), None);
        assert_eq!(
            given("from=2026-01-01T00:00:00%2B01:00", "from").as_deref(),
            Some("2026-01-01T00:00:00+01:00")
        );
        assert_eq!(given("x=%zz", "x").as_deref(), Some("%zz"));
    }
}

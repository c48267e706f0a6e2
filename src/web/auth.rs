//! Who is calling: a bearer token in `Authorization`, or, for the HTML pages,
//! the same token in the session cookie set by the login form.

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;

use super::error::ApiError;
use super::state::AppState;
pub(crate) use crate::service::Caller;
use crate::service::tokens::authenticate;

/// Name of the cookie holding the UI session's token.
pub(crate) const SESSION_COOKIE: &str = "ohmnibus_token";

fn token_from(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return value.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
    }
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = token_from(parts).ok_or_else(ApiError::unauthenticated)?;
        authenticate(&state.pool, &token)
            .await?
            .ok_or_else(ApiError::unauthenticated)
    }
}

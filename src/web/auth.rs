//! Who is calling: a bearer token in `Authorization`, or, for the HTML pages,
//! the session that signing in started (found by `web::session::resolve`;
//! the API takes bearer tokens only).
//!
//! Every presented token goes through [`authenticate_from`], which
//! refuses an address that failed too often (`web::auth_limit`) before it
//! asks the database; a session cookie is counted the same way.
//!
//! An invalid token costs no more than a valid one, and tells nothing by
//! its timing: both are hashed (SHA-256 of the whole text, whatever it
//! holds) and looked up by their digest in one statement on the unique
//! index, the same query for either; the database compares digests, not
//! the token, so how much of a guess is right does not change how long
//! the comparison takes. The statement's one extra step for a valid token,
//! writing `last_used_at`, happens at most once a minute and inside the
//! same round trip. Afterwards a failure only adds one to an in-memory
//! count, and a success builds the caller: neither touches the database
//! again.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::auth_limit::ClientAddress;
use super::error::ApiError;
use super::session::SignedIn;
use super::state::AppState;
pub(crate) use crate::service::Caller;
use crate::service::tokens::authenticate;

/// The caller `token` stands for, presented from `client`: 429 while the
/// address has used up its failures, 401 (counted) for a token that is
/// unknown, revoked or expired.
pub(crate) async fn authenticate_from(
    state: &AppState,
    client: ClientAddress,
    token: &str,
) -> Result<Caller, ApiError> {
    let limiter = &state.auth.failures;
    limiter
        .check(client, state.clock.now())
        .map_err(ApiError::too_many_failures)?;
    match authenticate(&state.pool, token).await? {
        Some(caller) => Ok(caller),
        None => {
            limiter.record_failure(client, state.clock.now());
            Err(ApiError::unauthenticated())
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(|token| token.trim().to_owned())
                .ok_or_else(ApiError::unauthenticated)?;
            let Ok(client) = ClientAddress::from_request_parts(parts, state).await;
            return authenticate_from(state, client, &token).await;
        }
        parts
            .extensions
            .get::<SignedIn>()
            .map(|signed_in| signed_in.caller.clone())
            .ok_or_else(ApiError::unauthenticated)
    }
}

//! Who is calling: a bearer token in `Authorization`, or, for the HTML pages,
//! the same token in the session cookie set by the login form.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;

use super::error::ApiError;
use super::state::AppState;
use crate::domain::role::{Right, Role};
use crate::store::tokens::fetch_token_owner;

/// Name of the cookie holding the UI session's token.
pub const SESSION_COOKIE: &str = "ohmnibus_token";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub role: Role,
}

impl Caller {
    /// Refuses (403, nothing changed) a request outside the caller's role.
    pub fn require(&self, right: Right) -> Result<(), ApiError> {
        if self.role.permits(right) {
            return Ok(());
        }
        let needed = match right {
            Right::Read => "any role",
            Right::Operate => "operator or engineer",
            Right::Configure => "engineer",
            Right::ManageSecurity => "secadm",
            Right::Audit => "secaud",
        };
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("role {} may not do this; it needs {needed}", self.role),
        ))
    }
}

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
        let owner = fetch_token_owner(&state.pool, &token)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        Ok(Caller {
            user: owner.user,
            role: owner.role,
        })
    }
}

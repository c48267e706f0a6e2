//! Sessions of the pages: signing in with a token starts one, each page
//! request finds its caller by it, signing out ends it. The browser holds
//! only the session's random id, never the token.

use std::time::Duration;

use rand::RngCore;
use sqlx::PgPool;

use super::{Caller, ServiceError};
use crate::store::sessions::{delete_session, fetch_session, insert_session};

/// How long a session lasts: `idle` after its last request, `max` after
/// it began, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// `OHMNIBUS_SESSION_IDLE_MINUTES` (default 30).
    pub idle: Duration,
    /// `OHMNIBUS_SESSION_MAX_HOURS` (default 12).
    pub max: Duration,
}

impl Default for SessionPolicy {
    fn default() -> SessionPolicy {
        SessionPolicy {
            idle: Duration::from_secs(30 * 60),
            max: Duration::from_secs(12 * 3600),
        }
    }
}

/// A session just begun: the id for the browser's cookie.
#[derive(Debug, Clone)]
pub(crate) struct NewSession {
    pub id: String,
}

/// A valid session: who it is and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub caller: Caller,
    pub csrf: String,
}

fn random_text() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Starts a session for `token`, which the caller has just authenticated;
/// `None` if the token stopped being valid meanwhile.
pub(crate) async fn sign_in(
    pool: &PgPool,
    policy: SessionPolicy,
    token: &str,
) -> Result<Option<NewSession>, ServiceError> {
    let id = random_text();
    let started = insert_session(pool, token, &id, &random_text(), policy.idle, policy.max).await?;
    Ok(started.then_some(NewSession { id }))
}

/// The session `id` names, while it is valid; `None` otherwise.
pub(crate) async fn find_session(
    pool: &PgPool,
    policy: SessionPolicy,
    id: &str,
) -> Result<Option<Session>, ServiceError> {
    let Some(row) = fetch_session(pool, id, policy.idle, policy.max).await? else {
        return Ok(None);
    };
    let role = row
        .role
        .parse()
        .map_err(|error| ServiceError::Storage(sqlx::Error::Decode(Box::new(error))))?;
    Ok(Some(Session {
        caller: Caller {
            user: row.user_name,
            role,
        },
        csrf: row.csrf_token,
    }))
}

/// Ends session `id`.
pub(crate) async fn sign_out(pool: &PgPool, id: &str) -> Result<(), ServiceError> {
    Ok(delete_session(pool, id).await?)
}

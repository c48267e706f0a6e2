//! Sessions of the pages. A session id is 32 random bytes held by the
//! browser alone; only its SHA-256 digest is stored. A session stands for
//! its token's user and role and is valid while the token is (neither
//! revoked nor expired), its last request is within the idle time and its
//! start within the absolute time.

use std::time::Duration;

use sqlx::{PgExecutor, PgPool};

use super::error::StoreError;
use super::tokens::digest;

/// A valid session: whose it is and the CSRF token of its forms.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub user_name: String,
    pub role: String,
    pub csrf_token: String,
}

/// Starts a session for `token` if the token is valid, with the session
/// id `session` and the CSRF token `csrf`; false when the token is not
/// (revoked or expired meanwhile). Sessions past `idle` or `max` are
/// deleted on the way.
pub(crate) async fn insert_session(
    pool: &PgPool,
    token: &str,
    session: &str,
    csrf: &str,
    idle: Duration,
    max: Duration,
) -> Result<bool, StoreError> {
    delete_ended_sessions(pool, idle, max).await?;
    let inserted = sqlx::query(
        "INSERT INTO ui_sessions (session_sha256, token_id, csrf_token) \
         SELECT $2, t.id, $3 FROM api_tokens t \
         WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())",
    )
    .bind(digest(token))
    .bind(digest(session))
    .bind(csrf)
    .execute(pool)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The session `session` stands for while it is valid, its last request
/// moved to now in the same statement.
pub(crate) async fn fetch_session(
    pool: &PgPool,
    session: &str,
    idle: Duration,
    max: Duration,
) -> Result<Option<SessionRow>, StoreError> {
    Ok(sqlx::query_as(
        "WITH found AS ( \
             SELECT s.id, u.name AS user_name, u.role, s.csrf_token \
             FROM ui_sessions s JOIN api_tokens t ON t.id = s.token_id JOIN users u ON u.id = t.user_id \
             WHERE s.session_sha256 = $1 AND t.revoked_at IS NULL \
             AND (t.expires_at IS NULL OR t.expires_at > now()) \
             AND s.last_seen_at > now() - make_interval(secs => $2) \
             AND s.created_at > now() - make_interval(secs => $3)), \
         touched AS (UPDATE ui_sessions SET last_seen_at = now() WHERE id IN (SELECT id FROM found)) \
         SELECT user_name, role, csrf_token FROM found",
    )
    .bind(digest(session))
    .bind(idle.as_secs_f64())
    .bind(max.as_secs_f64())
    .fetch_optional(pool)
    .await?)
}

/// Ends session `session` (signing out).
pub(crate) async fn delete_session(pool: &PgPool, session: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM ui_sessions WHERE session_sha256 = $1")
        .bind(digest(session))
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends every session of token `token_id` (its revocation).
pub(crate) async fn delete_token_sessions<'e>(executor: impl PgExecutor<'e>, token_id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM ui_sessions WHERE token_id = $1")
        .bind(token_id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Deletes the sessions that can no longer be used.
async fn delete_ended_sessions(pool: &PgPool, idle: Duration, max: Duration) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM ui_sessions s USING api_tokens t WHERE t.id = s.token_id AND ( \
             s.last_seen_at <= now() - make_interval(secs => $1) \
             OR s.created_at <= now() - make_interval(secs => $2) \
             OR t.revoked_at IS NOT NULL OR t.expires_at <= now())",
    )
    .bind(idle.as_secs_f64())
    .bind(max.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

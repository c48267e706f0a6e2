//! Users and API tokens. A token is 32 random bytes shown once; only its
//! SHA-256 digest is stored.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{Acquire, PgExecutor, PgPool, Postgres};

use super::error::StoreError;
use crate::domain::role::Role;

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub user: String,
    pub role: Role,
}

/// A token just issued: its id and its text, which is stored nowhere.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub id: i64,
    pub token: String,
}

/// A token as listed: never its text nor its digest.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct TokenRow {
    pub id: i64,
    pub user_name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub(crate) fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Creates user `name` with `role`, or reuses it when it already has that
/// role, and issues a new token for it, all or nothing (given a
/// transaction, as a savepoint of it). A name held by a user of another
/// role is refused: quietly changing the role would change what every
/// token of that user may do. Returns the token text, which is not stored
/// anywhere.
pub async fn insert_token<'c>(
    db: impl Acquire<'c, Database = Postgres>,
    name: &str,
    role: Role,
) -> Result<String, StoreError> {
    Ok(insert_token_until(db, name, role, None).await?.token)
}

/// [`insert_token`] with an end: after `expires_at` the token
/// authenticates nothing. Returns its id with its text.
pub async fn insert_token_until<'c>(
    db: impl Acquire<'c, Database = Postgres>,
    name: &str,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
) -> Result<IssuedToken, StoreError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("ohm_{}", hex::encode(bytes));
    let mut transaction = db.begin().await?;
    sqlx::query("INSERT INTO users (name, role) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(role.as_str())
        .execute(&mut *transaction)
        .await?;
    let (user_id, held): (i64, String) = sqlx::query_as("SELECT id, role FROM users WHERE name = $1 FOR UPDATE")
        .bind(name)
        .fetch_one(&mut *transaction)
        .await?;
    if held != role.as_str() {
        return Err(StoreError::Conflict {
            field: "name",
            reason: format!("user {name:?} already has role {held}; choose another name for a {role} token"),
        });
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, token_sha256, expires_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(user_id)
    .bind(digest(&token))
    .bind(expires_at)
    .fetch_one(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(IssuedToken { id, token })
}

/// The owner of a token that is neither revoked nor expired, looked up by
/// its digest on the unique index, as the database stands now: a
/// revocation or an expiry holds from the next request on. The token's
/// `last_used_at` is written in the same statement, at most once a minute
/// (a busy client does not turn every read into a write).
pub async fn fetch_token_owner(pool: &PgPool, token: &str) -> Result<Option<TokenOwner>, StoreError> {
    let row: Option<(String, String)> = sqlx::query_as(
        "WITH found AS ( \
             SELECT t.id, u.name, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL \
             AND (t.expires_at IS NULL OR t.expires_at > now())), \
         touched AS ( \
             UPDATE api_tokens SET last_used_at = now() \
             WHERE id IN (SELECT id FROM found) \
             AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')) \
         SELECT name, role FROM found",
    )
    .bind(digest(token))
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(user, role)| role.parse().ok().map(|role| TokenOwner { user, role })))
}

/// Every token, newest first, revoked and expired ones included.
pub(crate) async fn fetch_tokens(pool: &PgPool) -> Result<Vec<TokenRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.id, u.name AS user_name, u.role, t.created_at, t.expires_at, t.last_used_at, t.revoked_at \
         FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id DESC",
    )
    .fetch_all(pool)
    .await?)
}

/// Revokes token `id` now, unless it already is. Answers the token as it
/// stood before (`None`: no such token); its `revoked_at` says whether this
/// call revoked it.
pub(crate) async fn revoke_token<'e>(executor: impl PgExecutor<'e>, id: i64) -> Result<Option<TokenRow>, StoreError> {
    Ok(sqlx::query_as(
        "WITH before AS (SELECT t.id, u.name AS user_name, u.role, t.created_at, t.expires_at, t.last_used_at, \
                                t.revoked_at FROM api_tokens t JOIN users u ON u.id = t.user_id \
                         WHERE t.id = $1 FOR UPDATE OF t), \
         revoked AS (UPDATE api_tokens SET revoked_at = now() \
                     WHERE id IN (SELECT id FROM before WHERE revoked_at IS NULL)) \
         SELECT * FROM before",
    )
    .bind(id)
    .fetch_optional(executor)
    .await?)
}

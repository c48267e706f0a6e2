//! Users and API tokens. A token is 32 random bytes shown once; only its
//! SHA-256 digest is stored.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{Acquire, PgPool, Postgres};

use super::error::StoreError;
use crate::domain::role::Role;

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub user: String,
    pub role: Role,
}

fn digest(token: &str) -> Vec<u8> {
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
    sqlx::query("INSERT INTO api_tokens (user_id, token_sha256) VALUES ($1, $2)")
        .bind(user_id)
        .bind(digest(&token))
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(token)
}

/// The owner of a valid, unrevoked token.
pub async fn fetch_token_owner(pool: &PgPool, token: &str) -> Result<Option<TokenOwner>, StoreError> {
    let row: Option<(String, String)> = sqlx::query_as(
        "UPDATE api_tokens t SET last_used_at = now() FROM users u \
         WHERE t.user_id = u.id AND t.token_sha256 = $1 AND t.revoked_at IS NULL \
         RETURNING u.name, u.role",
    )
    .bind(digest(token))
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(user, role)| role.parse().ok().map(|role| TokenOwner { user, role })))
}

//! API tokens: issuing one (the CLI's `token create`, the demo, a security
//! administrator through the API), listing and revoking them, and finding
//! who a presented token belongs to (the API's bearer token, signing in to
//! the pages).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::{Caller, ServiceError};
use crate::domain::role::{Right, Role};
use crate::store::audit::insert_audit;
use crate::store::sessions::delete_token_sessions;
use crate::store::tokens::{IssuedToken, TokenRow, fetch_token_owner, fetch_tokens, insert_token_until};

/// The actor the CLI's changes are audited as.
const CLI_CREATE: &str = "ohmnibus token create";
const CLI_REVOKE: &str = "ohmnibus token revoke";

/// Issues a token for user `name` with `role` (the user is created, or
/// reused when it already has that role: a conflict on `name` otherwise).
/// The issue is audited with the token, in one transaction. Returns the
/// token text, which is stored nowhere.
pub async fn issue_token(pool: &PgPool, name: &str, role: Role) -> Result<String, ServiceError> {
    Ok(insert_audited(pool, CLI_CREATE, name, role, None).await?.token)
}

/// [`issue_token`] for the CLI with an optional end, `expires_at`, which
/// must lie after `now`.
pub async fn issue_token_until(
    pool: &PgPool,
    name: &str,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<IssuedToken, ServiceError> {
    check_expiry(expires_at, now)?;
    insert_audited(pool, CLI_CREATE, name, role, expires_at).await
}

/// A security administrator issues a token for user `name` with `role`
/// (text, parsed here so a bad one is named), valid until `expires_at`
/// if given, which must lie after `now`.
pub async fn create_token(
    pool: &PgPool,
    caller: &Caller,
    name: &str,
    role: &str,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(IssuedToken, Role), ServiceError> {
    caller.require(Right::ManageSecurity)?;
    let role: Role = role.parse().map_err(|error| ServiceError::invalid("role", error))?;
    check_expiry(expires_at, now)?;
    let issued = insert_audited(pool, &caller.user, name, role, expires_at).await?;
    Ok((issued, role))
}

fn check_expiry(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<(), ServiceError> {
    match expires_at {
        Some(at) if at <= now => Err(ServiceError::invalid(
            "expires_at",
            format!("{} is not in the future", at.to_rfc3339()),
        )),
        _ => Ok(()),
    }
}

async fn insert_audited(
    pool: &PgPool,
    actor: &str,
    name: &str,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
) -> Result<IssuedToken, ServiceError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid("name", "must not be empty"));
    }
    let mut transaction = pool.begin().await?;
    let issued = insert_token_until(&mut *transaction, name, role, expires_at).await?;
    insert_audit(
        &mut *transaction,
        actor,
        "create_token",
        &format!("user/{name}"),
        serde_json::json!({"role": role.as_str(), "token": issued.id, "expires_at": expires_at}),
    )
    .await?;
    transaction.commit().await?;
    Ok(issued)
}

/// Every token (secadm): who it is for, its role and its dates; never its text.
pub(crate) async fn list_tokens(pool: &PgPool, caller: &Caller) -> Result<Vec<TokenRow>, ServiceError> {
    caller.require(Right::ManageSecurity)?;
    Ok(fetch_tokens(pool).await?)
}

/// A security administrator revokes token `id`: from the next request on
/// it authenticates nothing, and its sessions of the pages are ended. Revoking a revoked token changes nothing.
pub(crate) async fn revoke_token(pool: &PgPool, caller: &Caller, id: i64) -> Result<(), ServiceError> {
    caller.require(Right::ManageSecurity)?;
    revoke_audited(pool, &caller.user, id).await.map(|_| ())
}

/// The CLI's `token revoke`: answers whether this call revoked it (false:
/// it already was).
pub async fn revoke_token_cli(pool: &PgPool, id: i64) -> Result<bool, ServiceError> {
    revoke_audited(pool, CLI_REVOKE, id).await
}

async fn revoke_audited(pool: &PgPool, actor: &str, id: i64) -> Result<bool, ServiceError> {
    let mut transaction = pool.begin().await?;
    let Some(before) = crate::store::tokens::revoke_token(&mut *transaction, id).await? else {
        return Err(ServiceError::not_found(format!("no token {id}")));
    };
    if before.revoked_at.is_some() {
        return Ok(false);
    }
    delete_token_sessions(&mut *transaction, id).await?;
    insert_audit(
        &mut *transaction,
        actor,
        "revoke_token",
        &format!("user/{}", before.user_name),
        serde_json::json!({"token": id, "role": before.role}),
    )
    .await?;
    transaction.commit().await?;
    Ok(true)
}

/// The caller a valid token stands for (neither revoked nor expired);
/// `None` for any other text.
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Option<Caller>, ServiceError> {
    Ok(fetch_token_owner(pool, token).await?.map(|owner| Caller {
        user: owner.user,
        role: owner.role,
    }))
}

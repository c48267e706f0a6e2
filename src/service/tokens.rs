//! API tokens: issuing one (the CLI's `token create`, the demo) and finding
//! who a presented token belongs to (the API's bearer token, the pages'
//! session cookie).

use sqlx::PgPool;

use super::{Caller, ServiceError};
use crate::domain::role::Role;
use crate::store::audit::insert_audit;
use crate::store::tokens::{fetch_token_owner, insert_token};

/// Issues a token for user `name` with `role` (the user is created, or
/// reused when it already has that role: a conflict on `name` otherwise).
/// The issue is audited with the token, in one transaction. Returns the
/// token text, which is stored nowhere.
pub async fn issue_token(pool: &PgPool, name: &str, role: Role) -> Result<String, ServiceError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid("name", "must not be empty"));
    }
    let mut transaction = pool.begin().await?;
    let token = insert_token(&mut *transaction, name, role).await?;
    insert_audit(
        &mut *transaction,
        "ohmnibus token create",
        "create_token",
        &format!("user/{name}"),
        serde_json::json!({"role": role.as_str()}),
    )
    .await?;
    transaction.commit().await?;
    Ok(token)
}

/// The caller a valid, unrevoked token stands for; `None` for any other text.
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Option<Caller>, ServiceError> {
    Ok(fetch_token_owner(pool, token).await?.map(|owner| Caller {
        user: owner.user,
        role: owner.role,
    }))
}

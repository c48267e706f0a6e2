//! The audit log: who changed what, append-only. A use case writes its row
//! on the transaction of its change, so neither is stored without the other.

use sqlx::PgExecutor;

use super::error::StoreError;

/// Appends an entry; `executor` a pool, or the transaction of the change
/// it records.
pub(crate) async fn insert_audit<'e>(
    executor: impl PgExecutor<'e>,
    actor: &str,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (actor, action, target, detail) VALUES ($1, $2, $3, $4)")
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .execute(executor)
        .await?;
    Ok(())
}

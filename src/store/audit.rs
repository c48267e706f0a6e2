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

/// An entry of the log as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: sqlx::types::Json<serde_json::Value>,
}

/// Which entries to list. `target_prefix` matches a target that starts
/// with it (`device/` every device, `device/3` device 3 and 30…).
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_prefix: Option<String>,
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

/// Entries matching `filter` (`from` inclusive, `to` exclusive), newest
/// first, from below the id `before` on, at most `limit`.
pub(crate) async fn fetch_audit(
    pool: &sqlx::PgPool,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, at, actor, action, target, detail FROM audit_log \
         WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2) \
         AND ($3::text IS NULL OR starts_with(target, $3)) \
         AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at < $5) \
         AND ($6::bigint IS NULL OR id < $6) ORDER BY id DESC LIMIT $7",
    )
    .bind(&filter.actor)
    .bind(&filter.action)
    .bind(&filter.target_prefix)
    .bind(filter.from)
    .bind(filter.to)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

//! `/api/v1/audit`: the audit log, read by the security auditor only.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::service::audit::{self, AuditSelection};
use crate::store::audit::AuditRow;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::query::ApiQuery;
use crate::web::state::AppState;

/// An entry of the log: who did what to what, and when.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 41, "at": "2026-12-05T13:00:00Z", "actor": "alice",
    "action": "update_site", "target": "site/2", "detail": {"name": "Hall B"}}))]
pub(crate) struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The user who made the change.
    pub actor: String,
    /// What was done, e.g. `create_bus`, `update_site`, `scan_bus`.
    pub action: String,
    /// What it was done to, `kind/id`, e.g. `device/3`.
    pub target: String,
    /// The change's particulars; their shape depends on the action.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<AuditRow> for AuditEntry {
    fn from(row: AuditRow) -> AuditEntry {
        AuditEntry {
            id: row.id,
            at: row.at,
            actor: row.actor,
            action: row.action,
            target: row.target,
            detail: row.detail.0,
        }
    }
}

/// One page of the log.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"entries": [{"id": 41, "at": "2026-12-05T13:00:00Z", "actor": "alice",
    "action": "update_site", "target": "site/2", "detail": {"name": "Hall B"}}], "next_cursor": null}))]
pub(crate) struct AuditList {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only this user's entries (exact).
    #[param(example = "alice")]
    pub actor: Option<String>,
    /// Only this action (exact), e.g. `update_site`.
    #[param(example = "update_site")]
    pub action: Option<String>,
    /// Only targets starting with this: `device/` every device, `site/2`
    /// site 2 (and 20, 21…).
    #[param(example = "device/")]
    pub target: Option<String>,
    /// Entries at or after this time, RFC 3339.
    #[param(example = "2026-12-01T00:00:00Z")]
    pub from: Option<String>,
    /// Entries before this time, RFC 3339.
    #[param(example = "2026-12-06T00:00:00Z")]
    pub to: Option<String>,
    /// Entries per page, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List the audit log, newest first, a page at a time (role `secaud` only).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses(
        (status = 200, body = AuditList),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Any role but secaud", body = ErrorBody),
        (status = 400, description = "A malformed parameter, named (`invalid_parameter`)", body = ErrorBody),
    ))]
pub(crate) async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditList>, ApiError> {
    let selection = AuditSelection {
        actor: query.actor.as_deref(),
        action: query.action.as_deref(),
        target: query.target.as_deref(),
        from: query.from.as_deref(),
        to: query.to.as_deref(),
        limit: query.limit,
        cursor: query.cursor.as_deref(),
    };
    let page = audit::list_audit(&state.pool, &caller, &selection)
        .await
        .map_err(ApiError::from_query)?;
    Ok(Json(AuditList {
        entries: page.entries.into_iter().map(AuditEntry::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

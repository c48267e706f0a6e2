//! The audit log page (security auditor only): who changed what and when,
//! newest first, with the filters and paging of `GET /api/v1/audit`.

use axum::extract::{Query, State};
use axum::response::Response;

use super::fleet::when;
use super::signed_in_page;
use crate::service::audit::{AuditSelection, list_audit};
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::state::AppState;

#[derive(askama::Template)]
#[template(path = "audit.html")]
pub(crate) struct AuditLogPage {
    pub user: String,
    /// The filters as asked, to show them again.
    pub actor: String,
    pub action: String,
    pub target: String,
    pub from: String,
    pub to: String,
    pub rows: Vec<AuditView>,
    /// The link to the next (older) page, if there is one.
    pub next: Option<String>,
}

pub(crate) struct AuditView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// The filters of the page, as the API's `GET /api/v1/audit` takes them.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    cursor: Option<String>,
}

pub(crate) async fn get_audit_page(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Query(query): Query<AuditQuery>,
) -> Response {
    signed_in_page(caller, "/audit", |caller| build(&state, caller, query)).await
}

async fn build(state: &AppState, caller: Caller, query: AuditQuery) -> Result<AuditLogPage, ApiError> {
    let selection = AuditSelection {
        actor: Some(&query.actor),
        action: Some(&query.action),
        target: Some(&query.target),
        from: Some(&query.from),
        to: Some(&query.to),
        limit: None,
        cursor: query.cursor.as_deref(),
    };
    let page = list_audit(&state.pool, &caller, &selection)
        .await
        .map_err(ApiError::from_query)?;
    let rows = page
        .entries
        .into_iter()
        .map(|entry| AuditView {
            at: when(Some(entry.at)),
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            detail: entry.detail.0.to_string(),
        })
        .collect();
    let next = page.next_cursor.map(|cursor| {
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("actor", &query.actor),
            ("action", &query.action),
            ("target", &query.target),
            ("from", &query.from),
            ("to", &query.to),
        ] {
            if !value.is_empty() {
                pairs.append_pair(name, value);
            }
        }
        pairs.append_pair("cursor", &cursor);
        format!("/audit?{}", pairs.finish())
    });
    Ok(AuditLogPage {
        user: caller.user,
        actor: query.actor,
        action: query.action,
        target: query.target,
        from: query.from,
        to: query.to,
        rows,
        next,
    })
}

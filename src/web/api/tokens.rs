//! `/api/v1/tokens`: the security administrator (`secadm`) lists, issues
//! and revokes API tokens. A token's text is answered once, when it is
//! issued; a list shows who each token is for and its dates, never the
//! token or its digest.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::role::Role;
use crate::service::tokens;
use crate::store::tokens::TokenRow;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::path::ApiPath;
use crate::web::state::AppState;

/// A token as listed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 7, "user": "commissioning", "role": "engineer",
    "created_at": "2026-12-05T08:00:00Z", "expires_at": "2027-03-05T08:00:00Z",
    "last_used_at": "2026-12-05T09:14:00Z", "revoked_at": null}))]
pub(crate) struct TokenInfo {
    pub id: i64,
    /// The user (a person or a system) the token is for.
    #[schema(example = "commissioning")]
    pub user: String,
    /// What the token may do.
    #[schema(value_type = Role)]
    pub role: String,
    pub created_at: DateTime<Utc>,
    /// After this the token authenticates nothing; null: until revoked.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it last authenticated a request, to the minute (written at most
    /// once a minute); null: never used.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; null: it was not.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenRow> for TokenInfo {
    fn from(row: TokenRow) -> TokenInfo {
        TokenInfo {
            id: row.id,
            user: row.user_name,
            role: row.role,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// A token to issue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "commissioning", "role": "engineer", "expires_at": "2027-03-05T08:00:00Z"}))]
pub(crate) struct NewToken {
    /// The user it is for: created with `role`, or reused when it already
    /// has that role (another role under the same name is a 409).
    #[schema(example = "commissioning", min_length = 1)]
    pub name: String,
    /// `viewer`, `operator`, `engineer`, `secadm` or `secaud` (IEC 62351-8).
    #[schema(value_type = Role)]
    pub role: String,
    /// When it stops working (RFC 3339, in the future); omitted: until revoked.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token just issued: the only answer that carries its text.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 7, "user": "commissioning", "role": "engineer",
    "expires_at": "2027-03-05T08:00:00Z",
    "token": "ohm_3f1c0b8e9d2a4c6b8e0f1a3c5e7b9d1f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b"}))]
pub(crate) struct CreatedToken {
    pub id: i64,
    #[schema(example = "commissioning")]
    pub user: String,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
    /// Send as `Authorization: Bearer <token>`. Shown this once: only its
    /// SHA-256 digest is stored, so a lost token is replaced, not recovered.
    pub token: String,
}

/// Every token (secadm), newest first, revoked and expired ones included;
/// never a token's text or digest.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses(
        (status = 200, body = Vec<TokenInfo>),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not secadm", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state), fields(user = %caller.user))]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    let rows = tokens::list_tokens(&state.pool, &caller).await?;
    Ok(Json(rows.into_iter().map(TokenInfo::from).collect()))
}

/// Issue a token (secadm), e.g. an `engineer` token for commissioning.
/// The answer carries the token's text, this once. Audited
/// (`create_token`).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses(
        (status = 201, description = "Issued; `token` is shown this once", body = CreatedToken),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not secadm; nothing is issued", body = ErrorBody),
        (status = 409, description = "`name` is a user with another role", body = ErrorBody),
        (status = 422, description = "A field is missing or bad (an unknown role, an empty name, an `expires_at` not in the future); the message names it", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<ApiJson<NewToken>, ApiError>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    caller.require(crate::domain::role::Right::ManageSecurity)?;
    let ApiJson(body) = body?;
    let (issued, role) = tokens::create_token(
        &state.pool,
        &caller,
        &body.name,
        &body.role,
        body.expires_at,
        state.clock.now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: issued.id,
            user: body.name.trim().to_owned(),
            role,
            expires_at: body.expires_at,
            token: issued.token,
        }),
    ))
}

/// Revoke a token (secadm): from the next request on it authenticates
/// nothing. Revoking a revoked token changes nothing. Audited
/// (`revoke_token`).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "Token id, as listed", example = 7)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not secadm; nothing is revoked", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state), fields(user = %caller.user))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    tokens::revoke_token(&state.pool, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

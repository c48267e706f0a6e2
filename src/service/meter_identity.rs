//! Which meter answers at a device's address: its identity as stored and
//! the readings held while another meter answers; an engineer confirms a
//! replacement (see `store::identity`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use super::devices::existing_device;
use super::{Caller, ServiceError};
use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use crate::store::identity::{self, ConfirmError, Confirmed, StoredIdentity};

/// A device's meter identity and what waits for a confirmation.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "expected": "THM 12345678", "expected_since": "2026-11-02T08:00:00Z",
    "seen": "THM 87654321", "seen_at": "2026-12-05T10:15:00Z",
    "quarantined_since": "2026-12-05T09:00:00Z", "series": 1, "series_started_at": null,
    "held_readings": 1840
}))]
pub struct IdentityView {
    #[serde(flatten)]
    pub identity: StoredIdentity,
    /// Readings taken while the device is quarantined, stored aside: not in
    /// its readings, latest values, intervals or bills until an engineer
    /// confirms the replacement.
    #[schema(example = 1840)]
    pub held_readings: i64,
}

/// The device's meter identity (any role).
pub async fn device_identity(pool: &PgPool, caller: &Caller, device: DeviceId) -> Result<IdentityView, ServiceError> {
    caller.require(Right::Read)?;
    existing_device(pool, device).await?;
    Ok(IdentityView {
        identity: identity::fetch_identity(pool, device).await?,
        held_readings: identity::count_held_readings(pool, device).await?,
    })
}

/// An engineer confirms that the meter showing `seen` replaces the
/// device's: 409 `conflict` when no other meter waits for confirmation or
/// the one at the address shows another identity (nothing changes).
pub async fn confirm_replacement(
    pool: &PgPool,
    caller: &Caller,
    device: DeviceId,
    seen: &str,
    now: DateTime<Utc>,
) -> Result<Confirmed, ServiceError> {
    caller.require(Right::Configure)?;
    existing_device(pool, device).await?;
    let seen = seen.trim();
    if seen.is_empty() {
        return Err(ServiceError::invalid(
            "identity",
            "must be the identity the meter now shows (its `seen`)",
        ));
    }
    identity::confirm_replacement(pool, device, seen, &caller.user, now)
        .await
        .map_err(|error| match error {
            ConfirmError::Store(error) => error.into(),
            refused => ServiceError::Conflict {
                field: "identity",
                reason: refused.to_string(),
            },
        })
}

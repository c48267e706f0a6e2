//! Per-device secrets, as ciphertext only (sealing and opening are
//! `domain::sealing`'s), and the lock a refused password puts on a
//! device's programming-mode work (`devices.password_refused_at`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};

use super::error::StoreError;
use super::events::insert_event_span;
use crate::domain::event::EventKind;
use crate::domain::ids::DeviceId;
use crate::domain::sealing::Sealed;
use crate::domain::secret::SecretName;

/// What is shown of a stored secret: its name and who set it when.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SecretInfo {
    pub name: SecretName,
    pub set_by: String,
    pub set_at: DateTime<Utc>,
}

/// A device's sealed secret, for the poller to open.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    pub device: DeviceId,
    pub sealed: Sealed,
    /// When it was set: tells one setting from the next.
    pub set_at: DateTime<Utc>,
}

/// Stores (or replaces) a sealed secret; returns when it was set.
pub(crate) async fn upsert_device_secret(
    db: &mut PgConnection,
    device: DeviceId,
    name: SecretName,
    sealed: &Sealed,
    set_by: &str,
) -> Result<DateTime<Utc>, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO device_secrets (device_id, name, ciphertext, nonce, set_by) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT ON CONSTRAINT device_secrets_pkey DO UPDATE \
         SET ciphertext = EXCLUDED.ciphertext, nonce = EXCLUDED.nonce, set_by = EXCLUDED.set_by, \
             set_at = clock_timestamp() \
         RETURNING set_at",
    )
    .bind(device)
    .bind(name)
    .bind(&sealed.ciphertext)
    .bind(&sealed.nonce)
    .bind(set_by)
    .fetch_one(db)
    .await?)
}

/// Removes a secret; false when the device had none of that name.
pub(crate) async fn delete_device_secret(
    db: &mut PgConnection,
    device: DeviceId,
    name: SecretName,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM device_secrets WHERE device_id = $1 AND name = $2")
        .bind(device)
        .bind(name)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The names of a device's secrets, with who set them when.
pub async fn fetch_secret_infos<'e>(db: impl PgExecutor<'e>, device: DeviceId) -> Result<Vec<SecretInfo>, StoreError> {
    Ok(
        sqlx::query_as("SELECT name, set_by, set_at FROM device_secrets WHERE device_id = $1 ORDER BY name")
            .bind(device)
            .fetch_all(db)
            .await?,
    )
}

/// Every device's sealed secret of `name`, for the poller.
pub async fn fetch_sealed_secrets(pool: &PgPool, name: SecretName) -> Result<Vec<StoredSecret>, StoreError> {
    let rows: Vec<SealedRow> = sqlx::query_as(
        "SELECT device_id, ciphertext, nonce, set_at FROM device_secrets WHERE name = $1 ORDER BY device_id",
    )
    .bind(name)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| StoredSecret {
            device: row.device_id,
            sealed: Sealed {
                ciphertext: row.ciphertext,
                nonce: row.nonce,
            },
            set_at: row.set_at,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct SealedRow {
    device_id: DeviceId,
    ciphertext: Vec<u8>,
    nonce: Vec<u8>,
    set_at: DateTime<Utc>,
}

/// Lifts the lock of a refused password and clears its open
/// `password_refused` event, on the transaction of the new password.
pub(crate) async fn clear_password_refused(
    db: &mut PgConnection,
    device: DeviceId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE devices SET password_refused_at = NULL WHERE id = $1")
        .bind(device)
        .execute(&mut *db)
        .await?;
    sqlx::query("UPDATE events SET cleared_at = $3 WHERE device_id = $1 AND code = $2 AND cleared_at IS NULL")
        .bind(device)
        .bind(EventKind::PasswordRefused)
        .bind(at)
        .execute(&mut *db)
        .await?;
    Ok(())
}

/// Locks the device's programming-mode work after the meter refused its
/// password, and opens the `password_refused` event, in one transaction.
/// `tried` is when the password tried was set (`None`: the profile's): a
/// refusal of a password replaced since changes nothing. Returns whether
/// the lock was set.
pub async fn update_password_refused(
    pool: &PgPool,
    device: DeviceId,
    tried: Option<DateTime<Utc>>,
    message: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut transaction = pool.begin().await?;
    let locked = sqlx::query(
        "UPDATE devices SET password_refused_at = $2 WHERE id = $1 AND password_refused_at IS NULL \
         AND (SELECT set_at FROM device_secrets WHERE device_id = $1 AND name = $3) IS NOT DISTINCT FROM $4",
    )
    .bind(device)
    .bind(at)
    .bind(SecretName::IecPassword)
    .bind(tried)
    .execute(&mut *transaction)
    .await?
    .rows_affected()
        > 0;
    if locked {
        insert_event_span(
            &mut *transaction,
            device,
            &EventKind::PasswordRefused,
            message,
            at,
            None,
        )
        .await?;
    }
    transaction.commit().await?;
    Ok(locked)
}

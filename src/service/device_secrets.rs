//! A device's secrets (engineer): set, remove, list by name. A value is
//! checked against what its name can carry, sealed under the server's key
//! (`domain::sealing`) and stored as ciphertext; it is never answered,
//! logged or audited (the audit row names the secret only).
//!
//! Setting the IEC 62056-21 password, even to the same value, lifts the
//! lock a refused password put on the device's programming-mode work and
//! clears its `password_refused` event; so does removing it (the profile's
//! password applies again).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::devices::existing_device;
use super::{Caller, ServiceError};
use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use crate::domain::sealing::{SECRET_KEY_VARIABLE, SecretKey, fresh_nonce, seal};
use crate::domain::secret::SecretName;
use crate::store::audit::insert_audit;
use crate::store::device_secrets::{
    SecretInfo, clear_password_refused, delete_device_secret as delete_row, fetch_secret_infos, upsert_device_secret,
};
use crate::store::devices::DeviceRow;

/// The secret a path names, or 404 naming the ones there are.
fn secret_name(text: &str) -> Result<SecretName, ServiceError> {
    text.parse()
        .map_err(|error| ServiceError::not_found(format!("{error}; a device's secrets are named iec_password")))
}

/// Refuses a secret the device's protocol has no use for.
fn check_applies(row: &DeviceRow, name: SecretName) -> Result<(), ServiceError> {
    match name {
        SecretName::IecPassword if row.iec_address.is_none() => Err(ServiceError::invalid(
            "name",
            format!(
                "iec_password is the IEC 62056-21 programming password; device {} is on a Modbus bus",
                row.id
            ),
        )),
        SecretName::IecPassword => Ok(()),
    }
}

/// Sets (or replaces) secret `name` of a device to `value`. Refused with
/// 503 `not_configured` when the server has no key. Audited by name.
pub async fn set_device_secret(
    pool: &PgPool,
    key: Option<&SecretKey>,
    caller: &Caller,
    device: DeviceId,
    name: &str,
    value: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    caller.require(Right::Configure)?;
    let row = existing_device(pool, device).await?;
    let name = secret_name(name)?;
    check_applies(&row, name)?;
    let secret = name
        .check(value)
        .map_err(|error| ServiceError::invalid("value", error))?;
    let Some(key) = key else {
        return Err(ServiceError::NotConfigured(format!(
            "secrets cannot be stored: the server has no key; set {SECRET_KEY_VARIABLE} (32 bytes, 64 hex digits or base64) and restart it"
        )));
    };
    let sealed = seal(key, device, name, &secret, fresh_nonce());
    let mut transaction = pool.begin().await?;
    upsert_device_secret(&mut transaction, device, name, &sealed, &caller.user).await?;
    if name == SecretName::IecPassword {
        clear_password_refused(&mut transaction, device, now).await?;
    }
    insert_audit(
        &mut *transaction,
        &caller.user,
        "set_device_secret",
        &format!("device/{device}"),
        serde_json::json!({ "name": name }),
    )
    .await?;
    transaction.commit().await?;
    Ok(())
}

/// Removes secret `name` of a device (the profile's password applies
/// again). 404 when the device has none. Audited by name.
pub async fn delete_device_secret(
    pool: &PgPool,
    caller: &Caller,
    device: DeviceId,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    caller.require(Right::Configure)?;
    existing_device(pool, device).await?;
    let name = secret_name(name)?;
    let mut transaction = pool.begin().await?;
    if !delete_row(&mut transaction, device, name).await? {
        return Err(ServiceError::not_found(format!("device {device} has no {name}")));
    }
    if name == SecretName::IecPassword {
        clear_password_refused(&mut transaction, device, now).await?;
    }
    insert_audit(
        &mut *transaction,
        &caller.user,
        "delete_device_secret",
        &format!("device/{device}"),
        serde_json::json!({ "name": name }),
    )
    .await?;
    transaction.commit().await?;
    Ok(())
}

/// The names of a device's secrets, who set each and when; never a value.
pub async fn list_device_secrets(
    pool: &PgPool,
    caller: &Caller,
    device: DeviceId,
) -> Result<Vec<SecretInfo>, ServiceError> {
    caller.require(Right::Read)?;
    existing_device(pool, device).await?;
    Ok(fetch_secret_infos(pool, device).await?)
}

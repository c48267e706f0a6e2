//! Devices: adding one to a bus (engineer), and looking them up. How a
//! device is addressed on its bus is checked in `device_address`.

use sqlx::PgPool;

use super::device_address::device_address;
use super::device_request::NewDevice;
use super::site_tree::{PlaceChange, new_device_place};
use super::{Caller, ServiceError};
use crate::device::registry::ProfileSet;
use crate::domain::ids::{BusId, DeviceId};
use crate::domain::role::Right;
use crate::store::audit::insert_audit;
use crate::store::buses::fetch_bus;
use crate::store::devices::{
    DeviceRow, NewDevice as StoreNewDevice, fetch_device, fetch_devices, fetch_devices_on_bus, insert_device_placed,
};

/// Longest poll period a device may have (one day).
pub const MAX_PERIOD_SECONDS: u32 = 86_400;

/// A poll period asked for (1 s to a day) under `field`, or `default`.
pub(crate) fn period(field: &str, value: Option<u32>, default: u32) -> Result<u32, ServiceError> {
    match value {
        None => Ok(default),
        Some(seconds @ 1..=MAX_PERIOD_SECONDS) => Ok(seconds),
        Some(_) => Err(ServiceError::invalid(
            field,
            format!("must be 1-{MAX_PERIOD_SECONDS} seconds"),
        )),
    }
}

/// Adds a device to a bus, for the API and the bus page alike: a name, a
/// known profile that speaks the bus's protocol, an existing bus, an
/// address fit for the bus that no other device on it has (a conflict on
/// `address` or `iec_address` otherwise), periods in bounds. Audited. On its
/// bus's site, with no parent.
pub async fn add_device(
    pool: &PgPool,
    profiles: &ProfileSet,
    caller: &Caller,
    new: &NewDevice,
) -> Result<DeviceRow, ServiceError> {
    add_device_placed(pool, profiles, caller, new, PlaceChange::default()).await
}

/// [`add_device`] on a site (default: its bus's) under a parent meter of
/// that site (`site_tree`).
pub async fn add_device_placed(
    pool: &PgPool,
    profiles: &ProfileSet,
    caller: &Caller,
    new: &NewDevice,
    place: PlaceChange,
) -> Result<DeviceRow, ServiceError> {
    caller.require(Right::Configure)?;
    let name = new.name.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid("name", "must not be empty"));
    }
    let profile = profiles.get(&new.profile).ok_or_else(|| {
        let known: Vec<&str> = profiles.names().collect();
        ServiceError::invalid(
            "profile",
            format!("unknown profile {:?}; known: {}", new.profile, known.join(", ")),
        )
    })?;
    let Some(bus) = fetch_bus(pool, new.bus_id).await? else {
        return Err(ServiceError::invalid("bus_id", format!("no bus {}", new.bus_id)));
    };
    let address = device_address(pool, new, &profile, &bus).await?;
    let schedule = &new.schedule;
    let store_new = StoreNewDevice {
        bus_id: new.bus_id,
        name,
        profile: &profile.name,
        address,
        realtime_seconds: period(
            "schedule.realtime_seconds",
            schedule.realtime_seconds,
            profile.schedule.realtime_seconds,
        )?,
        energy_seconds: period(
            "schedule.energy_seconds",
            schedule.energy_seconds,
            profile.schedule.energy_seconds,
        )?,
        history_seconds: period(
            "schedule.history_seconds",
            schedule.history_seconds,
            profile.schedule.history_seconds,
        )?,
    };
    let mut transaction = pool.begin().await?;
    let place = new_device_place(&mut transaction, bus.site_id, place).await?;
    let row = insert_device_placed(&mut transaction, &store_new, Some(place.site), place.parent).await?;
    insert_audit(
        &mut *transaction,
        &caller.user,
        "create_device",
        &format!("device/{}", row.id),
        serde_json::json!({"name": name, "bus_id": new.bus_id, "profile": profile.name,
            "address": new.address, "iec_address": new.iec_address,
            "site_id": place.site, "parent_device_id": place.parent}),
    )
    .await?;
    transaction.commit().await?;
    Ok(row)
}

pub async fn list_devices(pool: &PgPool, caller: &Caller) -> Result<Vec<DeviceRow>, ServiceError> {
    caller.require(Right::Read)?;
    Ok(fetch_devices(pool).await?)
}

/// The polled devices of a bus, by address.
pub async fn list_devices_on_bus(pool: &PgPool, caller: &Caller, bus: BusId) -> Result<Vec<DeviceRow>, ServiceError> {
    caller.require(Right::Read)?;
    Ok(fetch_devices_on_bus(pool, bus).await?)
}

pub async fn get_device(pool: &PgPool, caller: &Caller, id: DeviceId) -> Result<DeviceRow, ServiceError> {
    caller.require(Right::Read)?;
    existing_device(pool, id).await
}

/// The device, or not found.
pub(crate) async fn existing_device(pool: &PgPool, id: DeviceId) -> Result<DeviceRow, ServiceError> {
    fetch_device(pool, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no device {id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_one_second_to_a_day() {
        assert_eq!(period("p", None, 60).unwrap(), 60);
        assert_eq!(period("p", Some(1), 60).unwrap(), 1);
        assert_eq!(period("p", Some(86_400), 60).unwrap(), 86_400);
        let refused = period("schedule.energy_seconds", Some(0), 60).unwrap_err();
        assert_eq!(refused.to_string(), "schedule.energy_seconds: must be 1-86400 seconds");
        assert!(period("p", Some(86_401), 60).is_err());
    }
}

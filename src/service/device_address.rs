//! How a new device is selected on its bus: a Modbus unit address on a
//! Modbus bus, an IEC 62056-21 device address on an IEC line. That no two
//! devices of a bus share an address is the store's constraint, named as a
//! conflict on `address` or `iec_address`.

use sqlx::PgPool;

use super::ServiceError;
use super::device_request::NewDevice;
use crate::device::profile::Profile;
use crate::domain::address::UnitAddress;
use crate::domain::transport::{Protocol, Transport};
use crate::store::buses::BusRow;
use crate::store::devices::{DeviceAddress, fetch_devices_on_bus};

/// The address of `new` on `bus`, checked against the bus's protocol and
/// the device's profile.
pub(super) async fn device_address(
    pool: &PgPool,
    new: &NewDevice,
    profile: &Profile,
    bus: &BusRow,
) -> Result<DeviceAddress, ServiceError> {
    match bus.transport.0.protocol() {
        Protocol::Modbus => modbus_address(new, profile),
        Protocol::Iec62056 => {
            let address = iec_address(new, profile, &bus.transport.0)?;
            if bus.transport.0.single_device() && !fetch_devices_on_bus(pool, bus.id).await?.is_empty() {
                return Err(ServiceError::invalid(
                    "bus_id",
                    "an optical probe reads one meter, and this one already has its device",
                ));
            }
            Ok(address)
        }
    }
}

/// The Modbus unit of a device on a Modbus bus: 1–255 (0 is the
/// broadcast) and within what the profile's device accepts (`max_address`,
/// 247 unless its manual allows more).
fn modbus_address(new: &NewDevice, profile: &Profile) -> Result<DeviceAddress, ServiceError> {
    if !profile.speaks_modbus() {
        return Err(ServiceError::invalid(
            "profile",
            format!(
                "{} is read over IEC 62056-21, not Modbus: put it on an iec62056_serial, optical or iec62056_tcp bus",
                profile.name
            ),
        ));
    }
    if new.iec_address.is_some() {
        return Err(ServiceError::invalid(
            "iec_address",
            "a device on a Modbus bus has a unit address, not an IEC 62056-21 device address",
        ));
    }
    let Some(address) = new.address else {
        return Err(ServiceError::invalid(
            "address",
            "required on a Modbus bus: the unit address, 1-247 (up to 255 where the device's manual allows it)",
        ));
    };
    let address = UnitAddress::new(address).map_err(|error| ServiceError::invalid("address", error))?;
    if address.get() > profile.max_address {
        return Err(ServiceError::invalid(
            "address",
            format!("{} accepts addresses 1-{}", profile.name, profile.max_address),
        ));
    }
    Ok(DeviceAddress::Unit(address))
}

/// The device address of a device on an IEC 62056-21 bus. IEC 62056-21,
/// 6.3.1: up to 32 characters; ours are letters, digits and spaces, which
/// every meter we know uses (serial numbers). Empty only on an optical
/// probe, which reaches one meter.
fn iec_address(new: &NewDevice, profile: &Profile, transport: &Transport) -> Result<DeviceAddress, ServiceError> {
    if !profile.speaks_iec62056() {
        return Err(ServiceError::invalid(
            "profile",
            format!(
                "{} is read over Modbus, not IEC 62056-21: put it on a modbus_tcp, rtu_over_tcp or serial_rtu bus",
                profile.name
            ),
        ));
    }
    if new.address.is_some() {
        return Err(ServiceError::invalid(
            "address",
            "a device on an IEC 62056-21 bus has a device address (iec_address), not a Modbus unit",
        ));
    }
    let text = match (&new.iec_address, transport.single_device()) {
        (Some(text), _) => text.trim().to_owned(),
        (None, true) => String::new(),
        (None, false) => {
            return Err(ServiceError::invalid(
                "iec_address",
                "required on a shared IEC 62056-21 line: the meter's device address, e.g. its serial number",
            ));
        }
    };
    if text.len() > 32 || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') {
        return Err(ServiceError::invalid(
            "iec_address",
            "must be at most 32 letters, digits or spaces",
        ));
    }
    if text.is_empty() && !transport.single_device() {
        return Err(ServiceError::invalid(
            "iec_address",
            "must not be empty on a shared line: every meter would answer",
        ));
    }
    Ok(DeviceAddress::Iec(text))
}

//! Devices, their schedules and their polling status.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};

use super::error::{StoreError, on_constraint};
use crate::domain::address::UnitAddress;
use crate::domain::ids::{BusId, CalendarId, DeviceId, SiteId};
use crate::domain::state::DeviceState;
use crate::metering::validation::PhysicalLimits;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceRow {
    pub id: DeviceId,
    pub bus_id: BusId,
    pub bus_name: String,
    /// The site it belongs to (its bus's unless set otherwise).
    pub site_id: SiteId,
    /// The meter upstream of it on its site, if any.
    pub parent_device_id: Option<DeviceId>,
    pub name: String,
    pub profile: String,
    /// Modbus unit address; none for a device on an IEC 62056-21 bus.
    pub address: Option<i16>,
    /// IEC 62056-21 device address (sign-on `/?ADDRESS!`); none on Modbus.
    pub iec_address: Option<String>,
    pub realtime_seconds: i32,
    pub energy_seconds: i32,
    pub history_seconds: i32,
    /// Length of the intervals derived from its registers, 1–120 minutes.
    pub interval_minutes: i32,
    /// What bounds its consumption physically (spike detection): CT ratio,
    /// largest terminal current (none: the profile's), phase-to-neutral
    /// voltage, number of phases.
    pub ct_ratio: f64,
    pub max_current_a: Option<f64>,
    pub voltage_v: f64,
    pub phases: i16,
    /// What its meter counts energies in (`kWh`, `MWh`) and on how many
    /// decimals, for a profile with `[energy_display]`; none: the
    /// profile's default.
    pub energy_unit: Option<String>,
    pub energy_decimals: Option<i16>,
    pub enabled: bool,
    pub state: DeviceState,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the meter refused the programming-mode password; while set,
    /// its programming-mode work waits for the password to be set again.
    pub password_refused_at: Option<DateTime<Utc>>,
    /// The tariff calendar the server switches the meter's tariff by, for a
    /// meter whose tariff source is the bus; none otherwise.
    pub tariff_calendar_id: Option<CalendarId>,
}

impl DeviceRow {
    /// How the device is addressed on its bus, for pages and logs.
    pub fn address_text(&self) -> String {
        match (&self.address, &self.iec_address) {
            (Some(unit), _) => unit.to_string(),
            (None, Some(text)) if text.is_empty() => "(probe)".to_owned(),
            (None, Some(text)) => text.clone(),
            (None, None) => String::new(),
        }
    }
}

/// How a new device is selected on its bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceAddress {
    /// A Modbus unit address.
    Unit(UnitAddress),
    /// An IEC 62056-21 device address (may be empty on an optical probe).
    Iec(String),
}

/// A device to create.
#[derive(Debug, Clone)]
pub struct NewDevice<'a> {
    pub bus_id: BusId,
    pub name: &'a str,
    pub profile: &'a str,
    pub address: DeviceAddress,
    pub realtime_seconds: u32,
    pub energy_seconds: u32,
    pub history_seconds: u32,
}

/// What one poll cycle learned of a device's reachability.
#[derive(Debug, Clone)]
pub struct DeviceStatus {
    pub state: DeviceState,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_attempt_at: DateTime<Utc>,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
}

/// The common SELECT, completed with a literal tail (sqlx takes only static SQL).
macro_rules! select_devices {
    ($tail:literal) => {
        concat!(
            "SELECT d.id, d.bus_id, b.name AS bus_name, d.site_id, d.parent_device_id, d.name, d.profile, d.address, d.iec_address, \
                      d.realtime_seconds, d.energy_seconds, d.history_seconds, d.interval_minutes, \
                      d.ct_ratio, d.max_current_a, d.voltage_v, d.phases, d.energy_unit, d.energy_decimals, d.enabled, d.state, d.last_success_at, \
                      d.last_attempt_at, d.consecutive_failures, d.last_error, d.created_at, d.password_refused_at, d.tariff_calendar_id \
                      FROM devices d JOIN buses b ON b.id = d.bus_id",
            " ",
            $tail
        )
    };
}

/// Inserts a device on its bus's site, with no parent.
pub async fn insert_device(db: &mut PgConnection, device: &NewDevice<'_>) -> Result<DeviceRow, StoreError> {
    insert_device_placed(db, device, None, None).await
}

/// Inserts a device on `site` (`None`: its bus's) under `parent`, which the
/// caller has checked to be on that site.
pub async fn insert_device_placed(
    db: &mut PgConnection,
    device: &NewDevice<'_>,
    site: Option<SiteId>,
    parent: Option<DeviceId>,
) -> Result<DeviceRow, StoreError> {
    let id: DeviceId = sqlx::query_scalar(
        "INSERT INTO devices (bus_id, name, profile, address, iec_address, realtime_seconds, energy_seconds, \
         history_seconds, site_id, parent_device_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, COALESCE($9, (SELECT site_id FROM buses WHERE id = $1)), $10) \
         RETURNING id",
    )
    .bind(device.bus_id)
    .bind(device.name)
    .bind(device.profile)
    .bind(match &device.address {
        DeviceAddress::Unit(unit) => Some(i16::from(unit.get())),
        DeviceAddress::Iec(_) => None,
    })
    .bind(match &device.address {
        DeviceAddress::Unit(_) => None,
        DeviceAddress::Iec(text) => Some(text.as_str()),
    })
    .bind(i32::try_from(device.realtime_seconds).unwrap_or(i32::MAX))
    .bind(i32::try_from(device.energy_seconds).unwrap_or(i32::MAX))
    .bind(i32::try_from(device.history_seconds).unwrap_or(i32::MAX))
    .bind(site)
    .bind(parent)
    .fetch_one(&mut *db)
    .await
    .map_err(super::sites_tree::on_tree_constraint)?;
    Ok(fetch_device(&mut *db, id).await?.expect("device just inserted"))
}

pub async fn fetch_device<'e>(db: impl PgExecutor<'e>, id: DeviceId) -> Result<Option<DeviceRow>, StoreError> {
    Ok(sqlx::query_as(select_devices!("WHERE d.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?)
}

pub async fn fetch_devices(pool: &PgPool) -> Result<Vec<DeviceRow>, StoreError> {
    Ok(sqlx::query_as(select_devices!("ORDER BY d.id")).fetch_all(pool).await?)
}

pub async fn fetch_devices_on_bus(pool: &PgPool, bus_id: BusId) -> Result<Vec<DeviceRow>, StoreError> {
    Ok(sqlx::query_as(select_devices!(
        "WHERE d.bus_id = $1 AND d.enabled ORDER BY d.address, d.iec_address"
    ))
    .bind(bus_id)
    .fetch_all(pool)
    .await?)
}

/// How far the stored `last_success_at` and `last_attempt_at` may lag the
/// poller's before the row is rewritten for them alone.
pub const STATUS_REFRESH_SECONDS: f64 = 60.0;

/// Stores a device's status after a poll. The row is rewritten only when
/// something the fleet page and the API show changed (state, error, count of
/// failures, the first success) or its times are [`STATUS_REFRESH_SECONDS`]
/// old: a device polled every 10 s would otherwise rewrite its row (and
/// its indexes, and the WAL) six times a minute to say nothing new, so the
/// stored `last_success_at` is the last successful read to within a minute.
pub async fn update_device_status(pool: &PgPool, id: DeviceId, status: &DeviceStatus) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE devices SET state = $2, last_success_at = $3, last_attempt_at = $4, \
         consecutive_failures = $5, last_error = $6 \
         WHERE id = $1 AND enabled \
           AND (state <> $2 OR consecutive_failures <> $5 OR last_error IS DISTINCT FROM $6 \
                OR (last_success_at IS NULL) <> ($3::timestamptz IS NULL) \
                OR last_attempt_at IS NULL \
                OR $4 >= last_attempt_at + make_interval(secs => $7) \
                OR $3 >= last_success_at + make_interval(secs => $7))",
    )
    .bind(id)
    .bind(status.state)
    .bind(status.last_success_at)
    .bind(status.last_attempt_at)
    .bind(i32::try_from(status.consecutive_failures).unwrap_or(i32::MAX))
    .bind(status.last_error.as_deref())
    .bind(STATUS_REFRESH_SECONDS)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a device's new unit address (after it accepted an address change).
pub async fn update_device_address(pool: &PgPool, id: DeviceId, address: UnitAddress) -> Result<(), StoreError> {
    sqlx::query("UPDATE devices SET address = $2 WHERE id = $1")
        .bind(id)
        .bind(i16::from(address.get()))
        .execute(pool)
        .await
        .map_err(on_constraint)?;
    Ok(())
}

/// What an engineer may change of a device after it was created.
#[derive(Debug, Clone)]
pub struct DeviceSettings<'a> {
    pub name: &'a str,
    pub enabled: bool,
    pub realtime_seconds: u32,
    pub energy_seconds: u32,
    pub history_seconds: u32,
    pub interval_minutes: u32,
    pub ct_ratio: f64,
    pub max_current_a: Option<f64>,
    pub voltage_v: f64,
    pub phases: u8,
    pub energy_unit: Option<&'a str>,
    pub energy_decimals: Option<i16>,
}

/// Changes a device's name, whether it is polled, its poll periods, its
/// interval length and its physical limits.
/// The poller picks the change up at its next look at the configuration.
/// Sets or clears the calendar the server switches the device's tariff by.
pub async fn update_device_tariff_calendar(
    db: &mut PgConnection,
    id: DeviceId,
    calendar: Option<CalendarId>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE devices SET tariff_calendar_id = $2 WHERE id = $1")
        .bind(id)
        .bind(calendar)
        .execute(&mut *db)
        .await?;
    Ok(())
}

pub async fn update_device_settings(
    db: &mut PgConnection,
    id: DeviceId,
    settings: &DeviceSettings<'_>,
) -> Result<Option<DeviceRow>, StoreError> {
    let period = |seconds: u32| i32::try_from(seconds).unwrap_or(i32::MAX);
    let updated = sqlx::query(
        "UPDATE devices SET name = $2, enabled = $3, realtime_seconds = $4, energy_seconds = $5, \
         state = CASE WHEN NOT $3 THEN 'disabled' WHEN state = 'disabled' THEN 'unknown' ELSE state END, \
         history_seconds = $6, interval_minutes = $7, ct_ratio = $8, max_current_a = $9, voltage_v = $10, \
         phases = $11, energy_unit = $12, energy_decimals = $13 WHERE id = $1",
    )
    .bind(id)
    .bind(settings.name)
    .bind(settings.enabled)
    .bind(period(settings.realtime_seconds))
    .bind(period(settings.energy_seconds))
    .bind(period(settings.history_seconds))
    .bind(period(settings.interval_minutes))
    .bind(settings.ct_ratio)
    .bind(settings.max_current_a)
    .bind(settings.voltage_v)
    .bind(i16::from(settings.phases))
    .bind(settings.energy_unit)
    .bind(settings.energy_decimals)
    .execute(&mut *db)
    .await
    .map_err(on_constraint)?
    .rows_affected();
    if updated == 0 {
        return Ok(None);
    }
    fetch_device(&mut *db, id).await
}

/// What bounds a device's values, as configured: physically (CT ratio,
/// largest terminal current (none: the profile's), phase-to-neutral voltage
/// and phases) and by its energy registers' range (unit and decimals, none:
/// the profile's), with the profile's name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceLimits {
    pub profile: String,
    pub ct_ratio: f64,
    pub max_current_a: Option<f64>,
    pub voltage_v: f64,
    pub phases: i16,
    pub energy_unit: Option<String>,
    pub energy_decimals: Option<i16>,
}

impl DeviceLimits {
    /// The limits spike detection uses: the device's largest current, else
    /// `profile_max_current_a` (its profile's, for a direct meter); none
    /// when neither is known.
    pub fn physical(&self, profile_max_current_a: Option<f64>) -> Option<PhysicalLimits> {
        PhysicalLimits::new(
            self.ct_ratio,
            self.max_current_a.or(profile_max_current_a),
            self.voltage_v,
            u8::try_from(self.phases).unwrap_or(0),
        )
    }
}

pub async fn fetch_device_limits(pool: &PgPool, id: DeviceId) -> Result<Option<DeviceLimits>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT profile, ct_ratio, max_current_a, voltage_v, phases, energy_unit, energy_decimals \
             FROM devices WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

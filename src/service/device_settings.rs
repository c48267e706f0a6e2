//! Changing a device after it was created (engineer): its name, whether it
//! is polled, its poll periods, its interval length, its physical limits
//! and the calendar the server switches its tariff by.

use sqlx::PgPool;

use super::commands::check_on_device;
use super::device_request::Periods;
use super::devices::{existing_device, period};
use super::physical_limits::{DEFAULT_CT_RATIO, DEFAULT_PHASES, DEFAULT_VOLTAGE_V, phases, positive};
use super::site_tree::{PlaceChange, changed_place};
use super::tariff_calendars::load_calendar;
use super::{Caller, ServiceError};
use crate::device::registry::ProfileSet;
use crate::domain::command::{Command, CommandKind, CommandParameters};
use crate::domain::ids::{CalendarId, DeviceId};
use crate::domain::role::Right;
use crate::metering::tou::switches::MAX_TARIFFS;
use crate::store::audit::insert_audit;
use crate::store::buses::fetch_bus;
use crate::store::devices::{
    DeviceRow, DeviceSettings, fetch_device, update_device_settings, update_device_tariff_calendar,
};
use crate::store::events::update_communication_events_cleared;
use crate::store::sites_tree::update_device_place;

/// What to change; `None` keeps the current value. Of the physical limits,
/// `Some(None)` restores the default: CT ratio 1, no largest current of the
/// device's own (its profile's applies), 230 V, three phases.
#[derive(Debug, Clone, Default)]
pub struct DeviceChange {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub schedule: Periods,
    /// 1–120 minutes.
    pub interval_minutes: Option<u32>,
    pub ct_ratio: Option<Option<f64>>,
    pub max_current_a: Option<Option<f64>>,
    pub voltage_v: Option<Option<f64>>,
    pub phases: Option<Option<i64>>,
    /// What its meter counts energies in, `kWh` or `MWh`, and on how many
    /// decimals (profiles with `[energy_display]`); `Some(None)` restores
    /// the profile's default.
    pub energy_unit: Option<Option<String>>,
    pub energy_decimals: Option<Option<i64>>,
    /// Its site and the meter upstream of it (`site_tree`).
    pub place: PlaceChange,
    /// The tariff calendar the server switches its tariff by, for a meter
    /// whose tariff source is the bus; `Some(None)` ends it.
    pub tariff_control: Option<Option<CalendarId>>,
}

/// Applies `change` to a device, all of it or, when one field is refused,
/// none. The poller follows at its next look at the configuration. Audited.
pub async fn update_device(
    pool: &PgPool,
    profiles: &ProfileSet,
    caller: &Caller,
    id: DeviceId,
    change: &DeviceChange,
) -> Result<DeviceRow, ServiceError> {
    caller.require(Right::Configure)?;
    let row = existing_device(pool, id).await?;
    let settings = settings(&row, change)?;
    check_energy_display(profiles, &row, &settings)?;
    if let Some(Some(calendar)) = change.tariff_control {
        check_tariff_control(pool, profiles, &row, calendar).await?;
    }
    let mut transaction = pool.begin().await?;
    let missing = || ServiceError::not_found(format!("no device {id}"));
    update_device_settings(&mut transaction, id, &settings)
        .await?
        .ok_or_else(missing)?;
    let place = changed_place(&mut transaction, id, change.place)
        .await?
        .ok_or_else(missing)?;
    update_device_place(&mut transaction, id, place.site, place.parent).await?;
    if let Some(calendar) = change.tariff_control {
        update_device_tariff_calendar(&mut transaction, id, calendar).await?;
    }
    if row.enabled && !settings.enabled {
        update_communication_events_cleared(&mut *transaction, id, chrono::Utc::now()).await?;
    }
    let updated = fetch_device(&mut *transaction, id).await?.ok_or_else(missing)?;
    insert_audit(
        &mut *transaction,
        &caller.user,
        "update_device",
        &format!("device/{id}"),
        serde_json::json!({
            "name": settings.name,
            "enabled": settings.enabled,
            "schedule": {
                "realtime_seconds": settings.realtime_seconds,
                "energy_seconds": settings.energy_seconds,
                "history_seconds": settings.history_seconds,
            },
            "interval_minutes": settings.interval_minutes,
            "ct_ratio": settings.ct_ratio,
            "max_current_a": settings.max_current_a,
            "voltage_v": settings.voltage_v,
            "phases": settings.phases,
            "energy_unit": settings.energy_unit,
            "energy_decimals": settings.energy_decimals,
            "site_id": place.site,
            "parent_device_id": place.parent,
            "tariff_control": updated.tariff_calendar_id.map(|calendar| serde_json::json!({"calendar_id": calendar})),
        }),
    )
    .await?;
    transaction.commit().await?;
    Ok(updated)
}

/// A device's energy unit and decimals must be ones its meter type may be
/// set to; a profile without `[energy_display]` takes none.
fn check_energy_display(
    profiles: &ProfileSet,
    row: &DeviceRow,
    settings: &DeviceSettings<'_>,
) -> Result<(), ServiceError> {
    if settings.energy_unit.is_none() && settings.energy_decimals.is_none() {
        return Ok(());
    }
    let display = profiles
        .get(&row.profile)
        .and_then(|profile| profile.energy_display.clone());
    let Some(display) = display else {
        let field = if settings.energy_unit.is_some() {
            "energy_unit"
        } else {
            "energy_decimals"
        };
        return Err(ServiceError::invalid(
            field,
            format!(
                "profile {} gives no energy display to set (docs/PROFILES.md)",
                row.profile
            ),
        ));
    };
    display
        .check(settings.energy_unit, settings.energy_decimals.map(i64::from))
        .map_err(|(field, reason)| ServiceError::invalid(field, reason))
}

/// A meter may have its tariff switched by the server when its profile
/// takes `set_tariff` over its bus (E33, E43/E44: register 0x9E21, E43/E44
/// manual §8.3) and the calendar's bands fit its tariffs 1-4.
async fn check_tariff_control(
    pool: &PgPool,
    profiles: &ProfileSet,
    device: &DeviceRow,
    calendar: CalendarId,
) -> Result<(), ServiceError> {
    let field = "tariff_control.calendar_id";
    let loaded = load_calendar(pool, calendar).await.map_err(|error| match error {
        ServiceError::NotFound(_) => ServiceError::invalid(field, format!("no tariff calendar {calendar}")),
        ServiceError::Invalid { reason, .. } => ServiceError::invalid(field, reason),
        other => other,
    })?;
    for (from, version) in loaded.versions.versions() {
        if version.bands.len() > MAX_TARIFFS {
            return Err(ServiceError::invalid(
                field,
                format!(
                    "the version of {from} has {} bands; a meter switched over the bus keeps {MAX_TARIFFS} tariffs",
                    version.bands.len()
                ),
            ));
        }
    }
    let bus = fetch_bus(pool, device.bus_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no bus {}", device.bus_id)))?;
    let probe = Command {
        kind: CommandKind::SetTariff,
        parameters: CommandParameters {
            tariff: Some(1),
            ..CommandParameters::default()
        },
    };
    check_on_device(pool, profiles, device, &bus, &probe, chrono::Utc::now())
        .await
        .map_err(|error| {
            ServiceError::invalid(
                "tariff_control",
                format!("its tariff cannot be switched over the bus: {error}"),
            )
        })?;
    Ok(())
}

/// The device's settings once `change` is applied to `row`, naming the
/// first field at fault.
fn settings<'a>(row: &'a DeviceRow, change: &'a DeviceChange) -> Result<DeviceSettings<'a>, ServiceError> {
    let name = match change.name.as_deref().map(str::trim) {
        Some("") => return Err(ServiceError::invalid("name", "must not be empty")),
        Some(name) => name,
        None => row.name.as_str(),
    };
    let schedule = &change.schedule;
    let current = |seconds: i32| u32::try_from(seconds).unwrap_or(1);
    Ok(DeviceSettings {
        name,
        enabled: change.enabled.unwrap_or(row.enabled),
        realtime_seconds: period(
            "schedule.realtime_seconds",
            schedule.realtime_seconds,
            current(row.realtime_seconds),
        )?,
        energy_seconds: period(
            "schedule.energy_seconds",
            schedule.energy_seconds,
            current(row.energy_seconds),
        )?,
        history_seconds: period(
            "schedule.history_seconds",
            schedule.history_seconds,
            current(row.history_seconds),
        )?,
        interval_minutes: match change.interval_minutes {
            Some(minutes @ 1..=120) => minutes,
            Some(minutes) => {
                return Err(ServiceError::invalid(
                    "interval_minutes",
                    format!("{minutes} is outside 1–120 minutes"),
                ));
            }
            None => current(row.interval_minutes),
        },
        ct_ratio: match change.ct_ratio {
            Some(value) => positive("ct_ratio", value)?.unwrap_or(DEFAULT_CT_RATIO),
            None => row.ct_ratio,
        },
        max_current_a: match change.max_current_a {
            Some(value) => positive("max_current_a", value)?,
            None => row.max_current_a,
        },
        voltage_v: match change.voltage_v {
            Some(value) => positive("voltage_v", value)?.unwrap_or(DEFAULT_VOLTAGE_V),
            None => row.voltage_v,
        },
        phases: match change.phases {
            Some(value) => phases(value)?.unwrap_or(DEFAULT_PHASES),
            None => u8::try_from(row.phases).unwrap_or(DEFAULT_PHASES),
        },
        energy_unit: match &change.energy_unit {
            Some(unit) => unit.as_deref(),
            None => row.energy_unit.as_deref(),
        },
        energy_decimals: match change.energy_decimals {
            Some(Some(decimals)) => Some(i16::try_from(decimals).map_err(|_| {
                ServiceError::invalid("energy_decimals", format!("{decimals} is not a number of decimals"))
            })?),
            Some(None) => None,
            None => row.energy_decimals,
        },
    })
}

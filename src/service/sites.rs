//! Sites: creating one, its name and zone, its billing schedule (the local
//! day and hour at which the server closes billing periods for meters that
//! keep no history), its balance threshold (docs/SITES.md) and its daily
//! clock synchronisation (docs/OPERATIONS.md, "Automatic commands").

use std::collections::HashMap;

use chrono::NaiveTime;
use sqlx::PgPool;

use super::{Caller, ServiceError};
use crate::domain::ids::{CalendarId, SiteId};
use crate::domain::role::Right;
use crate::domain::zone::IanaZone;
use crate::store::audit::insert_audit;
use crate::store::billing_schedule::{SiteRow, fetch_sites, update_site_schedule, update_site_zone};
pub use crate::store::clock_sync::ClockSync;
use crate::store::clock_sync::{fetch_clock_sync, fetch_clock_syncs, update_clock_sync};
use crate::store::sites::{
    NewSite as StoreNewSite, fetch_site, insert_site, update_site_balance_threshold, update_site_name,
    update_site_tou_tolerance,
};

pub async fn list_sites(pool: &PgPool, caller: &Caller) -> Result<Vec<SiteRow>, ServiceError> {
    caller.require(Right::Read)?;
    Ok(fetch_sites(pool).await?)
}

/// One site, or not found.
pub async fn get_site(pool: &PgPool, caller: &Caller, id: SiteId) -> Result<SiteRow, ServiceError> {
    caller.require(Right::Read)?;
    fetch_site(pool, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no site {id}")))
}

/// A site to create.
#[derive(Debug, Clone, Default)]
pub struct NewSite<'a> {
    pub name: &'a str,
    /// An IANA zone name; required.
    pub time_zone: Option<&'a str>,
    pub billing_day: Option<i64>,
    pub billing_hour: Option<i64>,
    /// Percent; default 5.
    pub balance_threshold_percent: Option<f64>,
}

/// Creates a site (engineer): a name no other site has (a conflict on
/// `name` otherwise), an IANA zone, optionally a billing schedule and a
/// balance threshold. Audited.
pub async fn create_site(pool: &PgPool, caller: &Caller, new: &NewSite<'_>) -> Result<SiteRow, ServiceError> {
    caller.require(Right::Configure)?;
    let name = site_name(new.name)?;
    let zone = match new.time_zone {
        None => return Err(ServiceError::invalid("time_zone", "is required")),
        Some(text) => zone(text)?,
    };
    let schedule = schedule(new.billing_day, new.billing_hour)?;
    let threshold = new
        .balance_threshold_percent
        .map(|percent| percent_field("balance_threshold_percent", percent))
        .transpose()?;
    let mut transaction = pool.begin().await?;
    let row = insert_site(
        &mut *transaction,
        &StoreNewSite {
            name,
            time_zone: zone,
            schedule,
            balance_threshold_percent: threshold,
        },
    )
    .await?;
    insert_audit(
        &mut *transaction,
        &caller.user,
        "create_site",
        &format!("site/{}", row.id),
        serde_json::json!({"name": name, "time_zone": zone.name(), "billing_day": row.billing_day,
            "billing_hour": row.billing_hour, "balance_threshold_percent": row.balance_threshold_percent}),
    )
    .await?;
    transaction.commit().await?;
    Ok(row)
}

/// What a change of a site may say: its name, its billing schedule, its
/// zone and its balance threshold.
#[derive(Debug, Clone, Default)]
pub struct SiteChange<'a> {
    pub billing_day: Option<i64>,
    pub billing_hour: Option<i64>,
    /// An IANA zone name, parsed here: a bad name is refused, never read as UTC.
    pub time_zone: Option<&'a str>,
    pub name: Option<&'a str>,
    /// Percent of a parent's energy, above 0 and at most 100.
    pub balance_threshold_percent: Option<f64>,
    /// Percent of a billing period's energy the TOU audit tolerates between
    /// a tariff register and the server's split, above 0 and at most 100.
    pub tou_tolerance_percent: Option<f64>,
    /// The tariff calendar statements and balances use by default:
    /// `Some(None)` clears it.
    pub default_calendar_id: Option<Option<CalendarId>>,
    /// The daily clock synchronisation; fields left out keep their value.
    pub clock_sync: Option<ClockSyncChange<'a>>,
}

/// A change of a site's clock synchronisation.
#[derive(Debug, Clone, Default)]
pub struct ClockSyncChange<'a> {
    pub enabled: Option<bool>,
    /// Local `HH:MM`.
    pub at: Option<&'a str>,
    /// Seconds, 0-86400.
    pub min_drift_s: Option<i64>,
}

/// A site's clock synchronisation: the default (disabled, 03:00, 1 s) for
/// a site that never set one.
pub async fn site_clock_sync(pool: &PgPool, caller: &Caller, id: SiteId) -> Result<ClockSync, ServiceError> {
    caller.require(Right::Read)?;
    fetch_clock_sync(pool, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no site {id}")))
}

/// Every site's clock synchronisation, for listing sites.
pub async fn site_clock_syncs(pool: &PgPool, caller: &Caller) -> Result<HashMap<SiteId, ClockSync>, ServiceError> {
    caller.require(Right::Read)?;
    Ok(fetch_clock_syncs(pool)
        .await?
        .into_iter()
        .map(|site| (site.site_id, site.sync))
        .collect())
}

/// `current` with `change` applied, naming the field at fault.
fn clock_sync(current: ClockSync, change: &ClockSyncChange<'_>) -> Result<ClockSync, ServiceError> {
    let at = match change.at {
        None => current.at,
        Some(text) => NaiveTime::parse_from_str(text, "%H:%M")
            .ok()
            .filter(|_| text.len() == 5)
            .ok_or_else(|| ServiceError::invalid("clock_sync.at", format!("{text:?} is not a local time HH:MM")))?,
    };
    let min_drift_s = match change.min_drift_s {
        None => current.min_drift_s,
        Some(seconds) => i32::try_from(seconds)
            .ok()
            .filter(|seconds| (0..=86_400).contains(seconds))
            .ok_or_else(|| {
                ServiceError::invalid("clock_sync.min_drift_s", format!("{seconds} is not 0-86400 seconds"))
            })?,
    };
    Ok(ClockSync {
        enabled: change.enabled.unwrap_or(current.enabled),
        at,
        min_drift_s,
    })
}

/// Sets a site's billing schedule (day 1–28, hour 0–23, both given) or
/// removes it (neither given), and its name, time zone, balance threshold
/// and default tariff calendar when given. A change that names neither
/// schedule field but another field leaves the schedule alone; one that
/// names nothing removes it. Audited, in the change's transaction.
pub async fn update_site(
    pool: &PgPool,
    caller: &Caller,
    id: SiteId,
    change: SiteChange<'_>,
) -> Result<SiteRow, ServiceError> {
    caller.require(Right::Configure)?;
    let zone = change.time_zone.map(zone).transpose()?;
    let name = change.name.map(site_name).transpose()?;
    let threshold = change
        .balance_threshold_percent
        .map(|percent| percent_field("balance_threshold_percent", percent))
        .transpose()?;
    let tolerance = change
        .tou_tolerance_percent
        .map(|percent| percent_field("tou_tolerance_percent", percent))
        .transpose()?;
    let other = zone.is_some()
        || name.is_some()
        || threshold.is_some()
        || tolerance.is_some()
        || change.default_calendar_id.is_some()
        || change.clock_sync.is_some();
    let keep_schedule = other && change.billing_day.is_none() && change.billing_hour.is_none();
    let schedule = schedule(change.billing_day, change.billing_hour)?;
    let missing = || ServiceError::not_found(format!("no site {id}"));
    let sync = match &change.clock_sync {
        None => None,
        Some(sync_change) => {
            let current = fetch_clock_sync(pool, id).await?.ok_or_else(missing)?;
            Some(clock_sync(current, sync_change)?)
        }
    };
    let mut transaction = pool.begin().await?;
    let mut detail = serde_json::Map::new();
    let mut row = None;
    if let Some(name) = name {
        row = Some(
            update_site_name(&mut *transaction, id, name)
                .await?
                .ok_or_else(missing)?,
        );
        detail.insert("name".into(), name.into());
    }
    if let Some(percent) = threshold {
        row = Some(
            update_site_balance_threshold(&mut *transaction, id, percent)
                .await?
                .ok_or_else(missing)?,
        );
        detail.insert("balance_threshold_percent".into(), percent.into());
    }
    if let Some(percent) = tolerance {
        row = Some(
            update_site_tou_tolerance(&mut *transaction, id, percent)
                .await?
                .ok_or_else(missing)?,
        );
        detail.insert("tou_tolerance_percent".into(), percent.into());
    }
    if let Some(zone) = zone {
        row = Some(
            update_site_zone(&mut *transaction, id, zone)
                .await?
                .ok_or_else(missing)?,
        );
        detail.insert("time_zone".into(), zone.name().into());
    }
    if !keep_schedule {
        let changed = update_site_schedule(&mut *transaction, id, schedule)
            .await?
            .ok_or_else(missing)?;
        detail.insert("billing_day".into(), changed.billing_day.into());
        detail.insert("billing_hour".into(), changed.billing_hour.into());
        row = Some(changed);
    }
    if let Some(sync) = sync {
        if !update_clock_sync(&mut transaction, id, sync).await? {
            return Err(missing());
        }
        detail.insert(
            "clock_sync".into(),
            serde_json::json!({"enabled": sync.enabled, "at": sync.at.format("%H:%M").to_string(),
                "min_drift_s": sync.min_drift_s}),
        );
    }
    if let Some(calendar) = change.default_calendar_id {
        super::tariff_calendars::set_site_calendar(&mut transaction, id, calendar).await?;
        detail.insert("default_calendar_id".into(), calendar.map(|c| c.0).into());
    } else if row.is_none() && sync.is_none() {
        return Err(missing());
    }
    insert_audit(
        &mut *transaction,
        &caller.user,
        "update_site",
        &format!("site/{id}"),
        serde_json::Value::Object(detail),
    )
    .await?;
    transaction.commit().await?;
    match row {
        Some(row) => Ok(row),
        // Only the calendar or the clock synchronisation changed (the site
        // exists: it was updated).
        None => fetch_site(pool, id).await?.ok_or_else(missing),
    }
}

/// A site's name: not blank, trimmed.
fn site_name(text: &str) -> Result<&str, ServiceError> {
    match text.trim() {
        "" => Err(ServiceError::invalid("name", "must not be empty")),
        name => Ok(name),
    }
}

/// An IANA zone name, under the field `time_zone` (the API also takes it as
/// `timezone`).
fn zone(text: &str) -> Result<IanaZone, ServiceError> {
    text.parse::<IanaZone>()
        .map_err(|error| ServiceError::invalid("time_zone", error))
}

/// A share in percent (a balance threshold, a TOU tolerance) under the
/// field `field`: above 0, at most 100.
fn percent_field(field: &'static str, percent: f64) -> Result<f64, ServiceError> {
    if percent.is_finite() && percent > 0.0 && percent <= 100.0 {
        Ok(percent)
    } else {
        Err(ServiceError::invalid(
            field,
            format!("{percent} is not above 0 and at most 100"),
        ))
    }
}

/// Checks the schedule: both or neither, each in range. Day 28 at most:
/// every month has it.
fn schedule(day: Option<i64>, hour: Option<i64>) -> Result<Option<(i16, i16)>, ServiceError> {
    match (day, hour) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ServiceError::invalid("billing_hour", "is required with billing_day")),
        (None, Some(_)) => Err(ServiceError::invalid("billing_day", "is required with billing_hour")),
        (Some(day), Some(hour)) => {
            let day = i16::try_from(day)
                .ok()
                .filter(|d| (1..=28).contains(d))
                .ok_or_else(|| ServiceError::invalid("billing_day", "must be 1 to 28"))?;
            let hour = i16::try_from(hour)
                .ok()
                .filter(|h| (0..=23).contains(h))
                .ok_or_else(|| ServiceError::invalid("billing_hour", "must be 0 to 23"))?;
            Ok(Some((day, hour)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::schedule;

    #[test]
    fn a_schedule_is_both_fields_in_range_or_neither() {
        assert_eq!(schedule(None, None).unwrap(), None);
        assert_eq!(schedule(Some(28), Some(23)).unwrap(), Some((28, 23)));
        assert_eq!(schedule(Some(1), Some(0)).unwrap(), Some((1, 0)));
        assert_eq!(
            schedule(Some(1), None).unwrap_err().to_string(),
            "billing_hour: is required with billing_day"
        );
        assert_eq!(
            schedule(None, Some(0)).unwrap_err().to_string(),
            "billing_day: is required with billing_hour"
        );
        assert_eq!(
            schedule(Some(29), Some(0)).unwrap_err().to_string(),
            "billing_day: must be 1 to 28"
        );
        assert_eq!(
            schedule(Some(1), Some(24)).unwrap_err().to_string(),
            "billing_hour: must be 0 to 23"
        );
        assert!(schedule(Some(i64::MAX), Some(0)).is_err());
    }
}

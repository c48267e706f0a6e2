//! Sites and their billing schedule: the local day and hour at which the
//! server closes billing periods for meters that keep no history.

use sqlx::PgPool;

use super::{Caller, ServiceError};
use crate::domain::ids::{CalendarId, SiteId};
use crate::domain::role::Right;
use crate::domain::zone::IanaZone;
use crate::store::audit::insert_audit;
use crate::store::billing_schedule::{SiteRow, fetch_sites, update_site_schedule, update_site_zone};

pub async fn list_sites(pool: &PgPool, caller: &Caller) -> Result<Vec<SiteRow>, ServiceError> {
    caller.require(Right::Read)?;
    Ok(fetch_sites(pool).await?)
}

/// What a change of a site may say: its billing schedule and its zone.
#[derive(Debug, Clone, Default)]
pub struct SiteChange<'a> {
    pub billing_day: Option<i64>,
    pub billing_hour: Option<i64>,
    /// An IANA zone name, parsed here: a bad name is refused, never read as UTC.
    pub time_zone: Option<&'a str>,
    /// The tariff calendar statements use by default: `Some(None)` clears it.
    pub default_calendar_id: Option<Option<CalendarId>>,
}

/// Sets a site's billing schedule (day 1–28, hour 0–23, both given) or
/// removes it (neither given), and its time zone when one is given. A
/// change that names only a zone (or a default tariff calendar) leaves the
/// schedule alone. Audited, in the
/// change's transaction.
pub async fn update_site(
    pool: &PgPool,
    caller: &Caller,
    id: SiteId,
    change: SiteChange<'_>,
) -> Result<SiteRow, ServiceError> {
    caller.require(Right::Configure)?;
    let zone = change
        .time_zone
        .map(|text| text.parse::<IanaZone>())
        .transpose()
        .map_err(|error| ServiceError::invalid("time_zone", error))?;
    let keep_schedule = (zone.is_some() || change.default_calendar_id.is_some())
        && change.billing_day.is_none()
        && change.billing_hour.is_none();
    let schedule = schedule(change.billing_day, change.billing_hour)?;
    let missing = || ServiceError::not_found(format!("no site {id}"));
    let mut transaction = pool.begin().await?;
    let mut detail = serde_json::Map::new();
    let mut row = None;
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
    if let Some(calendar) = change.default_calendar_id {
        super::tariff_calendars::set_site_calendar(&mut transaction, id, calendar).await?;
        detail.insert("default_calendar_id".into(), calendar.map(|c| c.0).into());
    } else if row.is_none() {
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
        // Only the calendar changed (the site exists: it was updated).
        None => fetch_sites(pool)
            .await?
            .into_iter()
            .find(|site| site.id == id)
            .ok_or_else(missing),
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

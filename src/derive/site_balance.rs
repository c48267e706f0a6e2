//! The site balance pass: once per closed local day of each site (in the
//! site's zone), balances the site's tree over that day, in the bands of
//! its default tariff calendar (one band without one)
//! (`service::balance`) and keeps a `balance_mismatch` event open on each
//! parent device whose remainder is over the site's threshold, clearing it
//! once a later day balances. A day on which the parent or a child misses
//! intervals neither raises nor clears: a gap reads as a loss. Such a day
//! is balanced again each round until its data is complete or
//! [`LATE_DATA_DAYS`] have passed (a meter's history may arrive late).

use chrono::{DateTime, Days, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::DeriveServices;
use crate::domain::event::EventKind;
use crate::metering::balance::NodeBalance;
use crate::service::ServiceError;
use crate::service::balance::balance_in_site_bands;
use crate::store::billing_schedule::{SiteRow, fetch_sites};
use crate::store::events::{insert_event, update_event_cleared};
use crate::store::sites::{fetch_balance_checked_until, update_balance_checked_until};

/// How long after its end a day with missing intervals is balanced again.
const LATE_DATA_DAYS: i64 = 2;

/// The first instant of a local day; a midnight a DST change skips is the
/// first instant after the gap.
fn day_start(zone: Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    (0..=4)
        .find_map(|hour| {
            zone.from_local_datetime(&(midnight + TimeDelta::hours(hour)))
                .earliest()
        })
        .map_or_else(|| midnight.and_utc(), |at| at.with_timezone(&Utc))
}

/// The closed local day before `now`'s, as `[start, end)`.
pub(crate) fn last_closed_day(zone: Tz, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let today = now.with_timezone(&zone).date_naive();
    let yesterday = today.checked_sub_days(Days::new(1)).unwrap_or(today);
    (day_start(zone, yesterday), day_start(zone, today))
}

/// One round: every site whose last closed day is not checked yet. Returns
/// how many sites were balanced.
pub(crate) async fn balance_sites(services: &DeriveServices) -> Result<u64, ServiceError> {
    let now = services.clock.now();
    let mut balanced = 0;
    for site in fetch_sites(&services.pool).await? {
        let (from, to) = last_closed_day(site.time_zone.tz(), now);
        if fetch_balance_checked_until(&services.pool, site.id).await? >= Some(to) {
            continue;
        }
        let complete = balance_site(services, site.clone(), from, to).await?;
        if complete || now >= to + TimeDelta::days(LATE_DATA_DAYS) {
            update_balance_checked_until(&services.pool, site.id, to).await?;
        }
        balanced += 1;
    }
    Ok(balanced)
}

/// Balances one site's day and raises or clears its events; whether it has
/// meters and every one's data was complete.
async fn balance_site(
    services: &DeriveServices,
    site: SiteRow,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    let balance = balance_in_site_bands(&services.pool, site, from, to, None).await?;
    let code = EventKind::BalanceMismatch.code();
    for node in balance
        .nodes
        .iter()
        .filter(|node| !node.children.is_empty() && !node.is_virtual)
    {
        if node.mismatch() {
            let message = message(node, balance.site.balance_threshold_percent, from, to);
            insert_event(&services.pool, node.id, &EventKind::BalanceMismatch, &message, to).await?;
        } else if !node.incomplete {
            update_event_cleared(&services.pool, node.id, &code, to).await?;
        }
    }
    // A site with no meters yet is not done with: its meters' data for the
    // day may come with them.
    Ok(!balance.nodes.is_empty() && balance.nodes.iter().all(|node| !node.incomplete))
}

/// Milli-units (mWh) as kWh to the Wh: `-1500000` → `-1.500`.
fn kwh(milli: i128) -> String {
    let wh = (milli + milli.signum() * 500) / 1000;
    let sign = if wh < 0 { "-" } else { "" };
    format!("{sign}{}.{:03}", wh.unsigned_abs() / 1000, wh.unsigned_abs() % 1000)
}

/// What the event says: the day, and each band over the threshold.
fn message(node: &NodeBalance, threshold: f64, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let bands: Vec<String> = node
        .over_threshold()
        .iter()
        .map(|band| {
            format!(
                "{}: {} of {} kWh metered below, {} kWh ({}) unmetered",
                band.band.as_deref().unwrap_or("total"),
                kwh(band.children_sum.unwrap_or(0)),
                kwh(band.energy),
                kwh(band.remainder.unwrap_or(0)),
                band.remainder_percent
                    .map_or_else(|| "n/a".to_owned(), |share| format!("{share:.2} %")),
            )
        })
        .collect();
    format!(
        "{} and the meters below it differ by more than {threshold} % from {} to {}: {}",
        node.name,
        from.to_rfc3339(),
        to.to_rfc3339(),
        bands.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energies_read_in_kwh_to_the_wh() {
        assert_eq!(kwh(-1_500_000), "-1.500");
        assert_eq!(kwh(123_456_789), "123.457");
        assert_eq!(kwh(499), "0.000");
        assert_eq!(kwh(-500), "-0.001");
    }

    #[test]
    fn the_closed_day_is_local_and_a_dst_day_has_23_hours() {
        let rome = chrono_tz::Europe::Rome;
        // 2026-03-29 is the spring change in Rome: 23 hours.
        let now = Utc.with_ymd_and_hms(2026, 3, 30, 9, 0, 0).unwrap();
        let (from, to) = last_closed_day(rome, now);
        assert_eq!(from, Utc.with_ymd_and_hms(2026, 3, 28, 23, 0, 0).unwrap());
        assert_eq!(to, Utc.with_ymd_and_hms(2026, 3, 29, 22, 0, 0).unwrap());
        // Just after local midnight, the day before closed.
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 23, 30, 0).unwrap();
        let (from, to) = last_closed_day(rome, now);
        assert_eq!(
            (from, to),
            (
                Utc.with_ymd_and_hms(2026, 12, 3, 23, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2026, 12, 4, 23, 0, 0).unwrap()
            )
        );
    }
}

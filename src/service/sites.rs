//! Sites and their billing schedule: the local day and hour at which the
//! server closes billing periods for meters that keep no history.

use sqlx::PgPool;

use super::{Caller, ServiceError};
use crate::domain::ids::SiteId;
use crate::domain::role::Right;
use crate::store::audit::insert_audit;
use crate::store::billing_schedule::{SiteRow, fetch_sites, update_site_schedule};

pub async fn list_sites(pool: &PgPool, caller: &Caller) -> Result<Vec<SiteRow>, ServiceError> {
    caller.require(Right::Read)?;
    Ok(fetch_sites(pool).await?)
}

/// Sets a site's billing schedule (day 1–28, hour 0–23, both given) or
/// removes it (neither given). Audited.
pub async fn set_billing_schedule(
    pool: &PgPool,
    caller: &Caller,
    id: SiteId,
    billing_day: Option<i64>,
    billing_hour: Option<i64>,
) -> Result<SiteRow, ServiceError> {
    caller.require(Right::Configure)?;
    let schedule = schedule(billing_day, billing_hour)?;
    let mut transaction = pool.begin().await?;
    let row = update_site_schedule(&mut *transaction, id, schedule)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no site {id}")))?;
    insert_audit(
        &mut *transaction,
        &caller.user,
        "update_site",
        &format!("site/{id}"),
        serde_json::json!({"billing_day": row.billing_day, "billing_hour": row.billing_hour}),
    )
    .await?;
    transaction.commit().await?;
    Ok(row)
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

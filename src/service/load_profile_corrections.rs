//! An engineer's corrections of stored intervals. Each is a new version of
//! its interval (source `edited`, flag `edited`, who and why); what was
//! stored before stays on record.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use sqlx::PgPool;

use super::load_profile::configured_interval_minutes;
use super::{Caller, ServiceError};
use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::role::Right;
use crate::store::audit::insert_audit;
use crate::store::load_profile::ProfileInterval;
use crate::store::profile_corrections::{Correction, insert_interval_corrections};

/// The most intervals one request may correct: a month of 15-minute
/// intervals of one channel.
pub const MAX_CORRECTIONS: usize = 3000;

/// A new value for one stored interval, as sent.
#[derive(Debug, Clone)]
pub struct IntervalCorrection {
    /// RFC 3339.
    pub start: String,
    pub obis: String,
    pub value: f64,
}

/// Stores each correction as the next version of its interval, all or
/// none: one interval that is not stored refuses the whole request, named
/// `intervals[i]`. A reason is required. Audited on the same transaction.
pub async fn correct_load_profile(
    pool: &PgPool,
    caller: &Caller,
    device: DeviceId,
    intervals: &[IntervalCorrection],
    reason: Option<&str>,
) -> Result<Vec<ProfileInterval>, ServiceError> {
    caller.require(Right::Configure)?;
    configured_interval_minutes(pool, device).await?;
    let (corrections, reason) = corrections(intervals, reason)?;
    let mut transaction = pool.begin().await?;
    let stored = insert_interval_corrections(&mut *transaction, device, &corrections, &caller.user, reason)
        .await?
        .map_err(|i| {
            let missing = &corrections[i];
            ServiceError::invalid(
                format!("intervals[{i}]"),
                format!(
                    "no interval of {} starts at {}",
                    missing.obis,
                    missing.start.to_rfc3339_opts(SecondsFormat::AutoSi, true)
                ),
            )
        })?;
    insert_audit(
        &mut *transaction,
        &caller.user,
        "correct_load_profile",
        &format!("device/{device}"),
        json!({
            "reason": reason,
            "intervals": stored.iter().map(|row| json!({
                "start": row.interval_start,
                "obis": row.obis,
                "value": row.value,
                "version": row.version,
            })).collect::<Vec<_>>(),
        }),
    )
    .await?;
    transaction.commit().await?;
    Ok(stored)
}

/// Checks the request and turns it into corrections, naming the first
/// field at fault.
fn corrections<'a>(
    intervals: &[IntervalCorrection],
    reason: Option<&'a str>,
) -> Result<(Vec<Correction>, &'a str), ServiceError> {
    let reason = reason.map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(ServiceError::invalid("reason", "say why the intervals are corrected"));
    }
    if intervals.is_empty() {
        return Err(ServiceError::invalid("intervals", "must hold at least one interval"));
    }
    if intervals.len() > MAX_CORRECTIONS {
        return Err(ServiceError::invalid(
            "intervals",
            format!("at most {MAX_CORRECTIONS} intervals per request"),
        ));
    }
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(intervals.len());
    for (i, input) in intervals.iter().enumerate() {
        let start = DateTime::parse_from_rfc3339(&input.start)
            .map_err(|_| {
                ServiceError::invalid(
                    format!("intervals[{i}].start"),
                    format!("{:?} is not an RFC 3339 time such as 2026-11-22T08:15:00Z", input.start),
                )
            })?
            .with_timezone(&Utc);
        let obis = input
            .obis
            .parse::<ObisCode>()
            .map_err(|error| ServiceError::invalid(format!("intervals[{i}].obis"), error))?;
        if !input.value.is_finite() {
            return Err(ServiceError::invalid(
                format!("intervals[{i}].value"),
                "must be a finite number",
            ));
        }
        if let Some(first) = seen.insert((obis.clone(), start), i) {
            return Err(ServiceError::invalid(
                format!("intervals[{i}]"),
                format!("corrects the same interval as intervals[{first}]"),
            ));
        }
        out.push(Correction {
            obis,
            start,
            value: input.value,
        });
    }
    Ok((out, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(start: &str, obis: &str, value: f64) -> IntervalCorrection {
        IntervalCorrection {
            start: start.to_owned(),
            obis: obis.to_owned(),
            value,
        }
    }

    #[test]
    fn the_first_field_at_fault_is_named() {
        let good = interval("2026-11-22T08:15:00Z", "1-0:1.8.0", 1.4);
        let refused =
            |intervals: &[IntervalCorrection], reason| corrections(intervals, reason).unwrap_err().to_string();
        assert_eq!(
            refused(std::slice::from_ref(&good), Some("  ")),
            "reason: say why the intervals are corrected"
        );
        assert_eq!(refused(&[], Some("why")), "intervals: must hold at least one interval");
        assert!(
            refused(&[good.clone(), interval("08:30", "1-0:1.8.0", 1.0)], Some("why"))
                .starts_with("intervals[1].start: ")
        );
        assert!(
            refused(&[interval("2026-11-22T08:15:00Z", "1.8", 1.0)], Some("why")).starts_with("intervals[0].obis: ")
        );
        assert_eq!(
            refused(&[interval("2026-11-22T08:15:00Z", "1-0:1.8.0", f64::NAN)], Some("why")),
            "intervals[0].value: must be a finite number"
        );
        assert_eq!(
            refused(
                &[good.clone(), interval("2026-11-22T09:15:00+01:00", "1-0:1.8.0", 2.0)],
                Some("why")
            ),
            "intervals[1]: corrects the same interval as intervals[0]"
        );
        let (stored, reason) = corrections(&[good], Some(" site visit ")).unwrap();
        assert_eq!(reason, "site visit");
        assert_eq!(stored[0].obis.to_string(), "1-0:1.8.0");
        assert_eq!(stored[0].value, 1.4);
    }
}

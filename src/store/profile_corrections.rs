//! Operators' corrections of load-profile intervals: each a new version of
//! a stored interval, source `edited`, saying who made it and why.

use chrono::{DateTime, Utc};
use sqlx::{Acquire, PgPool, Postgres};

use super::error::StoreError;
use super::load_profile::ProfileInterval;
use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::source::IntervalSource;
use crate::domain::unit::Unit;

/// A new value for one stored interval.
#[derive(Debug, Clone)]
pub struct Correction {
    pub obis: ObisCode,
    pub start: DateTime<Utc>,
    pub value: f64,
}

/// Stores every correction as the next version of its interval (its
/// length, unit and meter status kept from the newest version, flagged
/// `edited`), all or none. `Ok(Err(i))`: correction `i` names no stored
/// interval, and nothing was stored. Given a transaction, the corrections
/// are a savepoint of it.
pub async fn insert_interval_corrections<'c>(
    db: impl Acquire<'c, Database = Postgres>,
    device: DeviceId,
    corrections: &[Correction],
    changed_by: &str,
    reason: &str,
) -> Result<Result<Vec<ProfileInterval>, usize>, StoreError> {
    let mut transaction = db.begin().await?;
    let mut stored = Vec::with_capacity(corrections.len());
    for (i, correction) in corrections.iter().enumerate() {
        let row: Option<ProfileInterval> = sqlx::query_as(
            "INSERT INTO load_profile_intervals \
                 (device_id, obis, interval_start, interval_minutes, value, unit, meter_status, quality, source, \
                  version, changed_by, reason) \
             SELECT device_id, obis, interval_start, interval_minutes, $4, unit, meter_status, $5, 'edited', \
                    version + 1, $6, $7 \
             FROM load_profile_intervals \
             WHERE device_id = $1 AND obis = $2 AND interval_start = $3 \
             ORDER BY version DESC LIMIT 1 \
             RETURNING obis, interval_start, interval_minutes, value, unit, quality, source, version, meter_status",
        )
        .bind(device)
        .bind(&correction.obis)
        .bind(correction.start)
        .bind(correction.value)
        .bind(Quality::EDITED)
        .bind(changed_by)
        .bind(reason)
        .fetch_optional(&mut *transaction)
        .await?;
        match row {
            Some(row) => stored.push(row),
            None => {
                transaction.rollback().await?;
                return Ok(Err(i));
            }
        }
    }
    transaction.commit().await?;
    Ok(Ok(stored))
}

/// One version of an interval, with who changed it and why (none for
/// version 1).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IntervalVersion {
    pub interval_start: DateTime<Utc>,
    pub version: i32,
    pub value: f64,
    pub unit: Unit,
    pub quality: Quality,
    pub source: IntervalSource,
    pub changed_by: Option<String>,
    pub reason: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// The versions of one interval, oldest first (empty when none is stored).
pub async fn fetch_interval_versions(
    pool: &PgPool,
    device: DeviceId,
    obis: &ObisCode,
    start: DateTime<Utc>,
) -> Result<Vec<IntervalVersion>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT interval_start, version, value, unit, quality, source, changed_by, reason, recorded_at \
         FROM load_profile_intervals WHERE device_id = $1 AND obis = $2 AND interval_start = $3 \
         ORDER BY version",
    )
    .bind(device)
    .bind(obis)
    .bind(start)
    .fetch_all(pool)
    .await?)
}

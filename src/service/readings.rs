//! A device's readings: the latest value of each OBIS code, and one code's
//! values over time, a page at a time.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::PgPool;

use super::devices::existing_device;
use super::{Caller, ServiceError};
use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::role::Right;
use crate::domain::unit::Unit;
use crate::store::readings::{StoredReading, fetch_latest, fetch_latest_of_codes, fetch_readings};

/// Page size when none is asked for.
pub(crate) const DEFAULT_LIMIT: i64 = 1_000;
/// Largest page.
pub(crate) const MAX_LIMIT: i64 = 10_000;

/// The latest value of each code the device reported, by code.
pub(crate) async fn latest_registers(
    pool: &PgPool,
    caller: &Caller,
    device: DeviceId,
) -> Result<Vec<StoredReading>, ServiceError> {
    caller.require(Right::Read)?;
    existing_device(pool, device).await?;
    Ok(fetch_latest(pool, device).await?)
}

/// The latest value of each of `codes` on every device that reported it:
/// (device, code, value, unit).
pub(crate) async fn latest_of_codes(
    pool: &PgPool,
    caller: &Caller,
    codes: &[ObisCode],
) -> Result<Vec<(DeviceId, ObisCode, f64, Unit)>, ServiceError> {
    caller.require(Right::Read)?;
    Ok(fetch_latest_of_codes(pool, codes).await?)
}

/// Which readings to page through: one code over `[from, to)`, after the
/// `cursor` of the previous page.
#[derive(Debug, Clone)]
pub(crate) struct ReadingsWindow {
    pub obis: ObisCode,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub after: Option<DateTime<Utc>>,
    /// 1–[`MAX_LIMIT`]; [`DEFAULT_LIMIT`] when none.
    pub limit: Option<i64>,
}

/// One page, oldest first, and the cursor of the next (none on the last page).
#[derive(Debug)]
pub(crate) struct ReadingsPage {
    pub readings: Vec<StoredReading>,
    pub next: Option<String>,
}

pub(crate) async fn readings_page(
    pool: &PgPool,
    caller: &Caller,
    device: DeviceId,
    window: &ReadingsWindow,
) -> Result<ReadingsPage, ServiceError> {
    caller.require(Right::Read)?;
    let limit = window.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ServiceError::invalid("limit", format!("must be 1-{MAX_LIMIT}")));
    }
    existing_device(pool, device).await?;
    let rows = fetch_readings(pool, device, &window.obis, window.from, window.to, window.after, limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| {
            rows.last()
                .map(|r| r.read_at.to_rfc3339_opts(SecondsFormat::Nanos, true))
        })
        .flatten();
    Ok(ReadingsPage { readings: rows, next })
}

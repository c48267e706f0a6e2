//! Billing periods: written once, never changed.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::types::Json;

use super::error::StoreError;
use crate::device::reading::Quality;
use crate::domain::ids::DeviceId;
use crate::metering::billing::{BillingPeriod, BillingRegister, BillingSource};

#[derive(sqlx::FromRow)]
struct BillingRow {
    reset_at: DateTime<Utc>,
    source: String,
    reset_count: Option<i32>,
    registers: Json<Vec<BillingRegister>>,
    quality: i32,
}

/// Stores the periods not stored yet (by device, source and reset time);
/// a period already stored is kept as it is. Returns the reset times that
/// were new, oldest first.
pub async fn insert_billing_periods(
    pool: &PgPool,
    device: DeviceId,
    periods: &[BillingPeriod],
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    if periods.is_empty() {
        return Ok(Vec::new());
    }
    let resets: Vec<DateTime<Utc>> = periods.iter().map(|p| p.reset_at).collect();
    let sources: Vec<&str> = periods.iter().map(|p| p.source.as_str()).collect();
    let counts: Vec<Option<i32>> = periods.iter().map(|p| p.reset_count).collect();
    let registers: Vec<Json<&Vec<BillingRegister>>> = periods.iter().map(|p| Json(&p.registers)).collect();
    let quality: Vec<i32> = periods.iter().map(|p| p.quality.0).collect();
    let mut inserted: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "INSERT INTO billing_periods (device_id, reset_at, source, reset_count, registers, quality) \
         SELECT $1, x.* FROM UNNEST($2::timestamptz[], $3::text[], $4::int[], $5::jsonb[], $6::int[]) AS x \
         ON CONFLICT (device_id, source, reset_at) DO NOTHING RETURNING reset_at",
    )
    .bind(device)
    .bind(&resets)
    .bind(&sources)
    .bind(&counts)
    .bind(&registers)
    .bind(&quality)
    .fetch_all(pool)
    .await?;
    inserted.sort();
    Ok(inserted)
}

/// A device's periods, newest first.
pub async fn fetch_billing_periods(pool: &PgPool, device: DeviceId) -> Result<Vec<BillingPeriod>, StoreError> {
    let rows: Vec<BillingRow> = sqlx::query_as(
        "SELECT reset_at, source, reset_count, registers, quality FROM billing_periods \
         WHERE device_id = $1 ORDER BY reset_at DESC, source",
    )
    .bind(device)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| BillingPeriod {
            reset_at: row.reset_at,
            source: BillingSource::parse(&row.source).unwrap_or(BillingSource::Server),
            reset_count: row.reset_count,
            registers: row.registers.0,
            quality: Quality(row.quality),
        })
        .collect())
}

/// The newest reset time stored for a device from `source`.
pub async fn fetch_last_reset(
    pool: &PgPool,
    device: DeviceId,
    source: BillingSource,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT max(reset_at) FROM billing_periods WHERE device_id = $1 AND source = $2")
            .bind(device)
            .bind(source.as_str())
            .fetch_one(pool)
            .await?,
    )
}

/// Devices whose latest readings hold a history set's reset time
/// (`0-0:0.1.2*N`): the meters that close their own billing periods.
pub async fn fetch_devices_with_reset_times(pool: &PgPool) -> Result<Vec<DeviceId>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT device_id FROM latest_readings WHERE obis LIKE '0-0:0.1.2*%' ORDER BY device_id",
    )
    .fetch_all(pool)
    .await?)
}

//! Intervals derived from cumulative registers: what the derivation pass
//! needs to find its work, and where it stores the result.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::types::Json;

use super::error::StoreError;
use super::events::insert_momentary_event;
use super::load_profile::{ComputedInterval, insert_computed_intervals_in};
use crate::domain::clock::future_limit;
use crate::domain::event::EventKind;
use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::source::IntervalSource;
use crate::domain::transport::Transport;
use crate::domain::unit::Unit;
use crate::domain::zone::IanaZone;
use crate::metering::register_deltas::DerivedInterval;

/// An enabled device with what derivation needs: its bus's transport (to
/// leave out meters with a load profile of their own), its site's zone, its
/// interval length and the codes it has reported, with their units.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DerivationDevice {
    pub id: DeviceId,
    pub transport: Json<Transport>,
    #[sqlx(flatten)]
    pub time_zone: IanaZone,
    pub interval_minutes: i32,
    pub codes: Vec<ObisCode>,
    pub units: Vec<Unit>,
}

/// Every enabled device on an enabled bus, with the codes it has reported.
pub async fn fetch_derivation_devices(pool: &PgPool) -> Result<Vec<DerivationDevice>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT d.id, b.transport, s.time_zone, s.id AS site_id, d.interval_minutes, \
                COALESCE(array_agg(l.obis ORDER BY l.obis) FILTER (WHERE l.obis IS NOT NULL), '{}') AS codes, \
                COALESCE(array_agg(l.unit ORDER BY l.obis) FILTER (WHERE l.obis IS NOT NULL), '{}') AS units \
         FROM devices d JOIN buses b ON b.id = d.bus_id JOIN sites s ON s.id = d.site_id \
         LEFT JOIN latest_readings l ON l.device_id = d.id \
         WHERE d.enabled AND b.enabled \
         GROUP BY d.id, b.transport, s.time_zone, s.id, d.interval_minutes \
         ORDER BY d.id",
    )
    .fetch_all(pool)
    .await?)
}

/// End of the newest interval derived for a device's code, where the next
/// derivation resumes. An interval ending in the future at server time
/// `now` (derived from reads stamped before the server's clock jumped
/// back) is passed over, so it never pins the derivation.
pub async fn fetch_last_derived_end(
    pool: &PgPool,
    device: DeviceId,
    obis: &ObisCode,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT max(interval_start + interval_minutes * interval '1 minute') FROM load_profile_intervals \
         WHERE device_id = $1 AND obis = $2 AND source = 'derived' \
           AND interval_start + interval_minutes * interval '1 minute' <= $3",
    )
    .bind(device)
    .bind(obis)
    .bind(future_limit(now))
    .fetch_one(pool)
    .await?)
}

/// A code's reads from the last one at or before `from` (so a span crossing
/// `from` is whole) up to now, oldest first, as (instant, value), within
/// one register series: from `series.0` (inclusive) to `series.1`
/// (exclusive), `None` for no bound. Reads stamped in the future at server
/// time `now` are left out: an interval is derived only up to the present.
pub async fn fetch_register_reads(
    pool: &PgPool,
    device: DeviceId,
    obis: &ObisCode,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    series: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
) -> Result<Vec<(DateTime<Utc>, f64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT read_at, value FROM readings \
         WHERE device_id = $1 AND obis = $2 AND read_at <= $4 \
           AND read_at >= COALESCE($5, '-infinity') AND read_at < COALESCE($6, 'infinity') \
           AND read_at >= COALESCE((SELECT max(read_at) FROM readings \
                                    WHERE device_id = $1 AND obis = $2 AND read_at <= $3 \
                                      AND read_at >= COALESCE($5, '-infinity') \
                                      AND read_at < COALESCE($6, 'infinity')), $3) \
         ORDER BY read_at",
    )
    .bind(device)
    .bind(obis)
    .bind(from)
    .bind(future_limit(now))
    .bind(series.0)
    .bind(series.1)
    .fetch_all(pool)
    .await?)
}

/// Stores derived intervals as version 1 with source `derived`; an interval
/// already stored is kept. Returns how many were new.
pub async fn insert_derived_intervals(
    pool: &PgPool,
    device: DeviceId,
    obis: &ObisCode,
    unit: Unit,
    intervals: &[DerivedInterval],
    events: &[CounterEvent],
) -> Result<u64, StoreError> {
    let computed = intervals.iter().map(|i| ComputedInterval {
        start: i.start,
        minutes: i.minutes,
        value: i.value,
        quality: i.quality,
    });
    // One transaction: whoever sees the intervals finds their events too,
    // and a pass that fails stores neither, so the next pass records each once.
    let mut transaction = pool.begin().await?;
    let inserted =
        insert_computed_intervals_in(&mut transaction, device, obis, unit, IntervalSource::Derived, computed).await?;
    for event in events {
        insert_momentary_event(&mut *transaction, device, &event.kind, &event.message, event.at).await?;
    }
    transaction.commit().await?;
    Ok(inserted)
}

/// A momentary event that a pass's derived intervals carry (a wrap, a
/// register that went back), stored with them.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterEvent {
    pub kind: EventKind,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// A device's derived intervals of one code, oldest first (for pages and tests).
pub async fn fetch_derived_intervals(
    pool: &PgPool,
    device: DeviceId,
    obis: &ObisCode,
) -> Result<Vec<(DateTime<Utc>, i32, f64, Quality)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT interval_start, interval_minutes, value, quality FROM load_profile_intervals \
         WHERE device_id = $1 AND obis = $2 AND source = 'derived' AND version = 1 \
         ORDER BY interval_start",
    )
    .bind(device)
    .bind(obis)
    .fetch_all(pool)
    .await?)
}

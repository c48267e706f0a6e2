//! Billing periods: written once, never changed.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::types::Json;

use super::error::StoreError;
use super::future_stamps::{FutureStamps, flag_if_future, insert_future_stamp_event};
use crate::domain::clock::{future_limit, is_future};
use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::source::BillingSource;
use crate::domain::transport::Transport;
use crate::domain::zone::IanaZone;
use crate::metering::billing::{BillingPeriod, BillingRegister};

#[derive(sqlx::FromRow)]
struct BillingRow {
    reset_at: DateTime<Utc>,
    source: BillingSource,
    reset_count: Option<i32>,
    registers: Json<Vec<BillingRegister>>,
    quality: Quality,
}

/// Stores the periods not stored yet (by device, source and reset time);
/// a period already stored is kept as it is. Returns the reset times that
/// were new, oldest first.
///
/// `now` is the server's time: a period reset in the future at `now` (a
/// meter clock far ahead) is stored flagged `future_timestamp`, a
/// `future_timestamp` event names the device when one is new, and it is
/// never the newest period ([`fetch_last_reset`]).
pub async fn insert_billing_periods(
    pool: &PgPool,
    device: DeviceId,
    periods: &[BillingPeriod],
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    if periods.is_empty() {
        return Ok(Vec::new());
    }
    let resets: Vec<DateTime<Utc>> = periods.iter().map(|p| p.reset_at).collect();
    let sources: Vec<BillingSource> = periods.iter().map(|p| p.source).collect();
    let counts: Vec<Option<i32>> = periods.iter().map(|p| p.reset_count).collect();
    let registers: Vec<Json<&Vec<BillingRegister>>> = periods.iter().map(|p| Json(&p.registers)).collect();
    let quality: Vec<Quality> = periods
        .iter()
        .map(|p| flag_if_future(p.quality, p.reset_at, now))
        .collect();
    let mut transaction = pool.begin().await?;
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
    .fetch_all(&mut *transaction)
    .await?;
    inserted.sort();
    let in_future: Vec<DateTime<Utc>> = inserted.iter().copied().filter(|at| is_future(*at, now)).collect();
    if let Some(first) = in_future.first() {
        let stamps = FutureStamps {
            device_id: device,
            count: i64::try_from(in_future.len()).unwrap_or(i64::MAX),
            first: *first,
        };
        insert_future_stamp_event(&mut transaction, stamps, "billing periods", now).await?;
    }
    transaction.commit().await?;
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
            source: row.source,
            reset_count: row.reset_count,
            registers: row.registers.0,
            quality: row.quality,
        })
        .collect())
}

/// The newest reset time stored for a device from `source`, leaving out
/// any in the future at server time `now` (a meter clock far ahead, a
/// server clock that jumped back since): one bad stamp never becomes the
/// newest period that later ones are found and announced after.
pub async fn fetch_last_reset(
    pool: &PgPool,
    device: DeviceId,
    source: BillingSource,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT max(reset_at) FROM billing_periods WHERE device_id = $1 AND source = $2 AND reset_at <= $3",
    )
    .bind(device)
    .bind(source)
    .bind(future_limit(now))
    .fetch_one(pool)
    .await?)
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

/// A device whose latest readings hold the energies of its last reset
/// (`…8.x*1`) but no reset time: a meter whose history shifts at each reset
/// (the TH40C), with its site's zone and billing schedule (if set).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ShiftingDevice {
    pub id: DeviceId,
    /// Its bus's transport: a Modbus read takes several requests, an IEC
    /// 62056-21 readout is one answer.
    pub transport: Json<Transport>,
    #[sqlx(flatten)]
    pub time_zone: IanaZone,
    pub billing_day: Option<i16>,
    pub billing_hour: Option<i16>,
}

/// Every device with history sets and no reset times.
pub async fn fetch_devices_with_history_sets(pool: &PgPool) -> Result<Vec<ShiftingDevice>, StoreError> {
    Ok(sqlx::query_as(
        r"SELECT d.id, b.transport, s.time_zone, s.id AS site_id, s.billing_day, s.billing_hour
          FROM devices d JOIN buses b ON b.id = d.bus_id JOIN sites s ON s.id = d.site_id
          WHERE EXISTS (SELECT 1 FROM latest_readings l
                        WHERE l.device_id = d.id AND l.obis ~ '^[0-9]+-[0-9]+:[0-9]+\.8\.[0-9]+\*1$')
            AND NOT EXISTS (SELECT 1 FROM latest_readings l
                            WHERE l.device_id = d.id AND l.obis LIKE '0-0:0.1.2*%')
          ORDER BY d.id",
    )
    .fetch_all(pool)
    .await?)
}

/// When the current values of `codes` were first read: for each code, the
/// first read after the last read with another value; the latest of those.
/// A history shift changes the values, so this is the first read that saw
/// the latest shift. Only reads from `since` on are looked at (the last
/// period stored: the shift was seen at or after it), so a meter whose
/// history has not moved for a long time does not cost a scan of it all.
pub async fn fetch_first_seen(
    pool: &PgPool,
    device: DeviceId,
    codes: &[(ObisCode, f64)],
    since: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let obis: Vec<&ObisCode> = codes.iter().map(|(code, _)| code).collect();
    let values: Vec<f64> = codes.iter().map(|(_, value)| *value).collect();
    Ok(sqlx::query_scalar(
        "SELECT max(first_seen) FROM ( \
           SELECT (SELECT min(r.read_at) FROM readings r \
                   WHERE r.device_id = $1 AND r.obis = c.obis AND r.read_at >= COALESCE($4::timestamptz, '-infinity') \
                     AND r.read_at > COALESCE((SELECT max(o.read_at) FROM readings o \
                                               WHERE o.device_id = $1 AND o.obis = c.obis AND o.value <> c.value \
                                                 AND o.read_at >= COALESCE($4::timestamptz, '-infinity')), \
                                              '-infinity')) AS first_seen \
           FROM UNNEST($2::text[], $3::float8[]) AS c(obis, value)) s",
    )
    .bind(device)
    .bind(&obis)
    .bind(&values)
    .bind(since)
    .fetch_one(pool)
    .await?)
}

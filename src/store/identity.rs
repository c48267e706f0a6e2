//! Which meter answers at each device's address (`device_identities`), the
//! readings held while another one does (`held_readings`), and an
//! engineer's confirmation of a replacement.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use utoipa::ToSchema;

use super::audit::insert_audit;
use super::error::StoreError;
use super::events::{insert_event_span, insert_momentary_event, update_event_cleared};
use super::reading_columns::ReadingColumns;
use crate::device::reading::Reading;
use crate::domain::event::EventKind;
use crate::domain::identity::same_meter;
use crate::domain::ids::DeviceId;

/// A device's identity as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow, ToSchema)]
pub struct StoredIdentity {
    /// The identity the device's meter must show: the one first seen, or
    /// the one an engineer set or confirmed. `null` until a read shows one.
    #[schema(example = "THM 12345678")]
    pub expected: Option<String>,
    pub expected_since: Option<DateTime<Utc>>,
    /// The identity the last check read.
    #[schema(example = "THM 87654321")]
    pub seen: Option<String>,
    /// When `seen` was last stored: at a change, else at most hourly.
    pub seen_at: Option<DateTime<Utc>>,
    /// When a different meter was first seen at the address; `null` when
    /// the device is not quarantined.
    pub quarantined_since: Option<DateTime<Utc>>,
    /// The register series: 1 for the first meter, one more for each
    /// confirmed replacement.
    #[schema(example = 1)]
    pub series: i32,
    /// When the current series started (the first read of the meter now
    /// installed); no consumption is derived across it.
    pub series_started_at: Option<DateTime<Utc>>,
}

/// Every device's stored identity (for the poller).
pub async fn fetch_identities(pool: &PgPool) -> Result<Vec<(DeviceId, Option<String>, Option<String>)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT device_id, expected, seen FROM device_identities ORDER BY device_id")
            .fetch_all(pool)
            .await?,
    )
}

/// A device's identity; the default (nothing seen) when none is stored.
pub async fn fetch_identity(pool: &PgPool, device: DeviceId) -> Result<StoredIdentity, StoreError> {
    let stored: Option<StoredIdentity> = sqlx::query_as(
        "SELECT expected, expected_since, seen, seen_at, quarantined_since, series, series_started_at \
         FROM device_identities WHERE device_id = $1",
    )
    .bind(device)
    .fetch_optional(pool)
    .await?;
    Ok(stored.unwrap_or(StoredIdentity {
        series: 1,
        ..StoredIdentity::default()
    }))
}

/// Sets the identity a device's meter must show (known before its first
/// read, e.g. from the installation record), unless one is stored already.
pub async fn insert_expected_identity(
    pool: &PgPool,
    device: DeviceId,
    identity: &str,
    since: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO device_identities (device_id, expected, expected_since) VALUES ($1, $2, $3) \
         ON CONFLICT (device_id) DO NOTHING",
    )
    .bind(device)
    .bind(identity)
    .bind(since)
    .execute(pool)
    .await?;
    Ok(())
}

/// When the device's current register series started (its last confirmed
/// replacement); `None` for a device still on its first meter.
pub async fn fetch_series_start(pool: &PgPool, device: DeviceId) -> Result<Option<DateTime<Utc>>, StoreError> {
    let start: Option<Option<DateTime<Utc>>> =
        sqlx::query_scalar("SELECT series_started_at FROM device_identities WHERE device_id = $1")
            .bind(device)
            .fetch_optional(pool)
            .await?;
    Ok(start.flatten())
}

/// How many readings wait for a confirmation.
pub async fn count_held_readings(pool: &PgPool, device: DeviceId) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM held_readings WHERE device_id = $1")
            .bind(device)
            .fetch_one(pool)
            .await?,
    )
}

async fn lock_identity(
    transaction: &mut Transaction<'_, Postgres>,
    device: DeviceId,
) -> Result<Option<StoredIdentity>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT expected, expected_since, seen, seen_at, quarantined_since, series, series_started_at \
         FROM device_identities WHERE device_id = $1 FOR UPDATE",
    )
    .bind(device)
    .fetch_optional(&mut **transaction)
    .await?)
}

/// Records the identity a read of `device` (named `name`) found at `at`.
/// The first one seen becomes the expected one. A different one starts a
/// quarantine and opens `meter_identity_changed`; the expected one seen
/// again ends it (what was held stays held, for an engineer to look at).
pub async fn record_identity_seen(
    pool: &PgPool,
    device: DeviceId,
    name: &str,
    identity: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut transaction = pool.begin().await?;
    let before = lock_identity(&mut transaction, device).await?.unwrap_or_default();
    // The expected meter seen in a longer or shorter form (its profile
    // gained or lost identity entries) takes that form.
    let expected = match before.expected.clone() {
        Some(expected) if !same_meter(&expected, identity) => expected,
        _ => identity.to_owned(),
    };
    let differs = expected != identity;
    let quarantined_since = if differs {
        Some(before.quarantined_since.unwrap_or(at))
    } else {
        None
    };
    sqlx::query(
        "INSERT INTO device_identities (device_id, expected, expected_since, seen, seen_at, quarantined_since) \
         VALUES ($1, $2, $3, $4, $3, $5) \
         ON CONFLICT (device_id) DO UPDATE SET expected = EXCLUDED.expected, \
             expected_since = COALESCE(device_identities.expected_since, EXCLUDED.expected_since), \
             seen = EXCLUDED.seen, seen_at = EXCLUDED.seen_at, quarantined_since = EXCLUDED.quarantined_since",
    )
    .bind(device)
    .bind(&expected)
    .bind(at)
    .bind(identity)
    .bind(quarantined_since)
    .execute(&mut *transaction)
    .await?;
    let kind = EventKind::MeterIdentityChanged;
    match (before.quarantined_since, differs) {
        (None, true) => {
            let message = format!(
                "{name}: another meter answers at its address ({identity}, expected {expected}); its readings are \
                 held until an engineer confirms the replacement"
            );
            insert_event_span(&mut *transaction, device, &kind, &message, at, None).await?;
        }
        (Some(_), false) => update_event_cleared(&mut *transaction, device, &kind.code(), at).await?,
        _ => {}
    }
    transaction.commit().await?;
    Ok(())
}

/// Stores readings of a quarantined device aside; a batch stored again
/// adds nothing.
pub async fn insert_held_readings(pool: &PgPool, batch: &[(DeviceId, Reading)]) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let columns = ReadingColumns::new(batch, |r| r.quality);
    let statement = sqlx::query(
        "INSERT INTO held_readings (device_id, obis, read_at, value, unit, captured_at, quality) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[], $4::float8[], $5::text[], \
                              $6::timestamptz[], $7::int[]) \
             AS x(device_id, obis, read_at, value, unit, captured_at, quality) \
         WHERE EXISTS (SELECT 1 FROM devices WHERE devices.id = x.device_id) \
         ON CONFLICT DO NOTHING",
    );
    columns.bind(statement).execute(pool).await?;
    Ok(())
}

/// Why a replacement cannot be confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("no other meter is waiting for confirmation at this device's address")]
    NotQuarantined,
    #[error("the meter at the address now shows {seen:?}, not {asked:?}")]
    SeenOther { seen: String, asked: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ConfirmError {
    fn from(error: sqlx::Error) -> Self {
        ConfirmError::Store(error.into())
    }
}

/// What a confirmed replacement did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Confirmed {
    #[serde(flatten)]
    pub identity: StoredIdentity,
    /// Held readings stored as the new meter's.
    #[schema(example = 42)]
    pub released_readings: u64,
}

/// An engineer (`actor`) confirms that the meter showing `identity` now
/// replaces the device's: it becomes the expected identity, a new register
/// series starts where the quarantine did, the held readings are stored as
/// the device's (series and latest values), `meter_identity_changed`
/// closes and `meter_replaced` is recorded, with an audit entry.
pub async fn confirm_replacement(
    pool: &PgPool,
    device: DeviceId,
    identity: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<Confirmed, ConfirmError> {
    let mut transaction = pool.begin().await?;
    let before = lock_identity(&mut transaction, device).await?.unwrap_or_default();
    let (Some(since), Some(seen)) = (before.quarantined_since, before.seen.clone()) else {
        return Err(ConfirmError::NotQuarantined);
    };
    if seen != identity {
        return Err(ConfirmError::SeenOther {
            seen,
            asked: identity.to_owned(),
        });
    }
    let identity: StoredIdentity = sqlx::query_as(
        "UPDATE device_identities SET expected = seen, expected_since = $2, quarantined_since = NULL, \
             series = series + 1, series_started_at = $3 \
         WHERE device_id = $1 \
         RETURNING expected, expected_since, seen, seen_at, quarantined_since, series, series_started_at",
    )
    .bind(device)
    .bind(at)
    .bind(since)
    .fetch_one(&mut *transaction)
    .await?;
    let released: i64 = sqlx::query_scalar("SELECT count(*) FROM held_readings WHERE device_id = $1")
        .bind(device)
        .fetch_one(&mut *transaction)
        .await?;
    sqlx::query(
        "WITH moved AS (DELETE FROM held_readings WHERE device_id = $1 RETURNING *), \
         series AS ( \
             INSERT INTO readings (device_id, obis, read_at, value, unit, captured_at, quality, data_class) \
             SELECT device_id, obis, read_at, value, unit, captured_at, quality, ohmnibus_reading_class(obis) \
             FROM moved ON CONFLICT DO NOTHING) \
         INSERT INTO latest_readings (device_id, obis, read_at, value, unit, captured_at, quality) \
         SELECT DISTINCT ON (obis) device_id, obis, read_at, value, unit, captured_at, quality FROM moved \
         ORDER BY obis, read_at DESC \
         ON CONFLICT (device_id, obis) DO UPDATE SET read_at = EXCLUDED.read_at, value = EXCLUDED.value, \
             unit = EXCLUDED.unit, captured_at = EXCLUDED.captured_at, quality = EXCLUDED.quality \
         WHERE latest_readings.read_at <= EXCLUDED.read_at",
    )
    .bind(device)
    .execute(&mut *transaction)
    .await?;
    let changed = EventKind::MeterIdentityChanged;
    update_event_cleared(&mut *transaction, device, &changed.code(), at).await?;
    let seen = identity.seen.clone().unwrap_or_default();
    let message = format!("{actor} confirmed the meter {seen} as the device's; a new register series starts");
    insert_momentary_event(&mut *transaction, device, &EventKind::MeterReplaced, &message, at).await?;
    let detail = serde_json::json!({
        "identity": seen,
        "previous": before.expected,
        "series": identity.series,
        "series_started_at": since,
    });
    insert_audit(
        &mut *transaction,
        actor,
        "confirm_meter_replacement",
        &format!("device/{device}"),
        detail,
    )
    .await?;
    transaction.commit().await?;
    Ok(Confirmed {
        identity,
        released_readings: released as u64,
    })
}

//! A meter's event logbook: each entry once (keyed by device, profile,
//! stamp and status) and, when new, its event at the meter's time; the
//! logbooks a meter refused whole, until it answers for one.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::error::StoreError;
use crate::device::iec_logbook::LogbookEvent;
use crate::domain::clock::future_limit;
use crate::domain::event::EventKind;
use crate::domain::ids::DeviceId;

/// Stores the entries not stored before and opens (already cleared) the
/// event of each, with its message naming device `name`. Returns how many
/// were new. Entries the same key twice in `entries` count once.
pub async fn insert_logbook_entries(
    pool: &PgPool,
    device: DeviceId,
    name: &str,
    entries: &[LogbookEvent],
) -> Result<usize, StoreError> {
    let mut profiles = Vec::with_capacity(entries.len());
    let mut stamps = Vec::with_capacity(entries.len());
    let mut statuses = Vec::with_capacity(entries.len());
    let mut values = Vec::with_capacity(entries.len());
    let mut codes = Vec::with_capacity(entries.len());
    let mut severities = Vec::with_capacity(entries.len());
    let mut messages = Vec::with_capacity(entries.len());
    for entry in entries {
        profiles.push(i16::from(entry.profile));
        stamps.push(entry.at);
        statuses.push(entry.status.clone());
        values.push(entry.values.clone());
        codes.push(entry.kind.code().as_str().to_owned());
        severities.push(entry.kind.severity().as_str());
        messages.push(entry.message(name));
    }
    let new: i64 = sqlx::query_scalar(
        "WITH given AS ( \
             SELECT DISTINCT ON (profile, stamped_at, status) * FROM UNNEST( \
                 $2::smallint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) \
                 AS g (profile, stamped_at, status, entry_values, code, severity, message) \
             ORDER BY profile, stamped_at, status \
         ), stored AS ( \
             INSERT INTO meter_logbook_entries (device_id, profile, stamped_at, status, entry_values) \
             SELECT $1, profile, stamped_at, status, entry_values FROM given \
             ON CONFLICT ON CONSTRAINT meter_logbook_entries_pkey DO NOTHING \
             RETURNING profile, stamped_at, status \
         ), raised AS ( \
             INSERT INTO events (device_id, code, severity, started_at, cleared_at, message) \
             SELECT $1, g.code, g.severity, g.stamped_at, g.stamped_at, g.message \
             FROM given g JOIN stored s USING (profile, stamped_at, status) \
             RETURNING 1 \
         ) SELECT count(*) FROM raised",
    )
    .bind(device)
    .bind(&profiles)
    .bind(&stamps)
    .bind(&statuses)
    .bind(&values)
    .bind(&codes)
    .bind(&severities)
    .bind(&messages)
    .fetch_one(pool)
    .await?;
    Ok(usize::try_from(new).unwrap_or_default())
}

/// The stamp of the device's newest stored entry of logbook `profile`,
/// leaving out any in the future of server time `now` (beyond the
/// tolerance), so a meter clock far ahead once pins nothing.
pub async fn fetch_last_logbook_entry(
    pool: &PgPool,
    device: DeviceId,
    profile: u8,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT max(stamped_at) FROM meter_logbook_entries \
         WHERE device_id = $1 AND profile = $2 AND stamped_at <= $3",
    )
    .bind(device)
    .bind(i16::from(profile))
    .bind(future_limit(now))
    .fetch_one(pool)
    .await?)
}

/// Per logbook (profile number) of the device: how many entries are
/// stored and the newest one's stamp.
pub async fn fetch_logbook_counts(
    pool: &PgPool,
    device: DeviceId,
) -> Result<Vec<(u8, i64, Option<DateTime<Utc>>)>, StoreError> {
    let rows: Vec<(i16, i64, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT profile, count(*), max(stamped_at) FROM meter_logbook_entries \
         WHERE device_id = $1 GROUP BY profile",
    )
    .bind(device)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(profile, count, newest)| Some((u8::try_from(profile).ok()?, count, newest)))
        .collect())
}

/// Records that the device's meter refused logbook `profile` whole at
/// `at`. The first refusal opens its `meter_logbook_unsupported` event; one
/// that repeats (the daily asking again, `poll::logbook`) only moves
/// `refused_at`, quietly, so a restarted poller asks a day after the last
/// refusal and the event history holds one event, not one a day.
pub async fn insert_logbook_refusal(
    pool: &PgPool,
    device: DeviceId,
    profile: u8,
    message: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let kind = EventKind::MeterLogbookUnsupported;
    sqlx::query(
        "WITH again AS ( \
             UPDATE meter_logbook_refusals SET refused_at = greatest(refused_at, $3) \
             WHERE device_id = $1 AND profile = $2 RETURNING 1 \
         ), refused AS ( \
             INSERT INTO meter_logbook_refusals (device_id, profile, refused_at) \
             SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM again) \
             ON CONFLICT ON CONSTRAINT meter_logbook_refusals_pkey DO NOTHING RETURNING 1 \
         ) INSERT INTO events (device_id, code, severity, started_at, cleared_at, message) \
         SELECT $1, $4, $5, $3, $3, $6 FROM refused",
    )
    .bind(device)
    .bind(i16::from(profile))
    .bind(at)
    .bind(&kind)
    .bind(kind.severity().as_str())
    .bind(message)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes the device's refusal of logbook `profile`: the meter answered
/// for it after all. Its `meter_logbook_unsupported` event stays, as what
/// happened then.
pub async fn delete_logbook_refusal(pool: &PgPool, device: DeviceId, profile: u8) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM meter_logbook_refusals WHERE device_id = $1 AND profile = $2")
        .bind(device)
        .bind(i16::from(profile))
        .execute(pool)
        .await?;
    Ok(())
}

/// The logbooks the device's meter refused whole, by profile number, with
/// when it last did.
pub async fn fetch_logbook_refusals(pool: &PgPool, device: DeviceId) -> Result<Vec<(u8, DateTime<Utc>)>, StoreError> {
    let refusals: Vec<(i16, DateTime<Utc>)> =
        sqlx::query_as("SELECT profile, refused_at FROM meter_logbook_refusals WHERE device_id = $1")
            .bind(device)
            .fetch_all(pool)
            .await?;
    Ok(refusals
        .into_iter()
        .filter_map(|(profile, at)| u8::try_from(profile).ok().map(|profile| (profile, at)))
        .collect())
}

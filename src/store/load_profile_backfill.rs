//! The progress of a meter's first load-profile backfill, read newest first
//! (`poll::history`): how far back it has asked and whether it is done.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::StoreError;
use crate::domain::ids::DeviceId;

/// A device's first backfill of its meter's load profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Backfill {
    pub started_at: DateTime<Utc>,
    /// The deepest it goes: its start minus the profile's backfill depth.
    pub depth_limit: DateTime<Utc>,
    /// Everything from here to the present has been asked of the meter.
    pub oldest_reached: DateTime<Utc>,
    /// When a request reached the depth limit, or the meter answered an
    /// older range with an error (it keeps nothing older); at once when
    /// the newest chunk had no record. An older chunk without a record
    /// does not end it (a hole in the profile, `poll::history`).
    pub completed_at: Option<DateTime<Utc>>,
}

impl Backfill {
    /// The span whose intervals are pending, not missing, while the
    /// backfill runs: what it has not asked of the meter yet, and what it
    /// asked and found without records below `oldest_stored` (the oldest
    /// interval stored from the meter), which is a hole in the meter's
    /// profile or time it never recorded: not known until the backfill
    /// finds older data (a gap) or ends (nothing older).
    pub fn pending(&self, oldest_stored: Option<DateTime<Utc>>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let end = oldest_stored.map_or(self.oldest_reached, |oldest| oldest.max(self.oldest_reached));
        (self.completed_at.is_none() && self.depth_limit < end).then_some((self.depth_limit, end))
    }
}

/// The device's backfill, if one was started.
pub async fn fetch_backfill(pool: &PgPool, device: DeviceId) -> Result<Option<Backfill>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT started_at, depth_limit, oldest_reached, completed_at \
         FROM load_profile_backfills WHERE device_id = $1",
    )
    .bind(device)
    .fetch_optional(pool)
    .await?)
}

/// Start of the oldest interval stored from the meter: after a complete
/// backfill, where the meter's own data begins.
pub async fn fetch_oldest_meter_interval(pool: &PgPool, device: DeviceId) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT min(interval_start) FROM load_profile_intervals WHERE device_id = $1 AND source = 'meter'",
    )
    .bind(device)
    .fetch_one(pool)
    .await?)
}

/// Records the backfill's progress. It only moves back and, once complete,
/// stays so: a record replayed late changes nothing.
pub async fn upsert_backfill(pool: &PgPool, device: DeviceId, backfill: &Backfill) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO load_profile_backfills (device_id, started_at, depth_limit, oldest_reached, completed_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT ON CONSTRAINT load_profile_backfills_pkey DO UPDATE \
         SET oldest_reached = least(load_profile_backfills.oldest_reached, excluded.oldest_reached), \
             completed_at = coalesce(load_profile_backfills.completed_at, excluded.completed_at)",
    )
    .bind(device)
    .bind(backfill.started_at)
    .bind(backfill.depth_limit)
    .bind(backfill.oldest_reached)
    .bind(backfill.completed_at)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn only_a_running_backfill_has_a_pending_span() {
        let day = |d| Utc.with_ymd_and_hms(2026, 12, d, 0, 0, 0).unwrap();
        let running = Backfill {
            started_at: day(6),
            depth_limit: day(1),
            oldest_reached: day(4),
            completed_at: None,
        };
        assert_eq!(running.pending(None), Some((day(1), day(4))));
        // Data stored from before the oldest instant asked: up to there.
        assert_eq!(running.pending(Some(day(3))), Some((day(1), day(4))));
        // Asked back to the 4th, nothing recorded before the 5th: not known
        // yet whether the meter has a hole there or nothing older.
        assert_eq!(running.pending(Some(day(5))), Some((day(1), day(5))));
        let done = Backfill {
            completed_at: Some(day(6)),
            ..running
        };
        assert_eq!(done.pending(Some(day(5))), None);
        let at_the_limit = Backfill {
            oldest_reached: day(1),
            ..running
        };
        assert_eq!(at_the_limit.pending(None), None);
    }
}

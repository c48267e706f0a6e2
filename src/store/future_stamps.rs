//! The `future_timestamp` event: values of a device were stored stamped in
//! the future (past `domain::clock::future_limit`), flagged, and pinned no
//! cursor. Recorded in the transaction that stored them, naming the device.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::PgConnection;

use super::error::StoreError;
use crate::domain::clock::{FUTURE_TOLERANCE, is_future};
use crate::domain::event::EventKind;
use crate::domain::ids::DeviceId;
use crate::domain::quality::Quality;

/// `quality` with `future_timestamp` added when `stamp` is in the future at
/// server time `now`.
pub(super) fn flag_if_future(quality: Quality, stamp: DateTime<Utc>, now: DateTime<Utc>) -> Quality {
    if is_future(stamp, now) {
        quality.with(Quality::FUTURE_TIMESTAMP)
    } else {
        quality
    }
}

/// Values of one device newly stored with a future stamp.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub(super) struct FutureStamps {
    pub(super) device_id: DeviceId,
    /// How many were stored.
    pub(super) count: i64,
    /// The earliest of their stamps.
    pub(super) first: DateTime<Utc>,
}

/// What follows the device's name in a `future_timestamp` event's message.
fn detail(count: i64, what: &str, first: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!(
        ": {count} {what} stamped from {} on, more than {} minutes ahead of the server clock ({}); \
         stored flagged future_timestamp, not taken as the latest nor as where reading resumes \
         (check the meter's clock and the server's)",
        first.to_rfc3339_opts(SecondsFormat::Secs, true),
        FUTURE_TOLERANCE.num_minutes(),
        now.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// The message of a `future_timestamp` event of the device named `device`
/// for `count` values of kind `what` stamped from `first` on, found at
/// server time `now`.
pub(crate) fn future_stamp_message(
    device: &str,
    count: i64,
    what: &str,
    first: DateTime<Utc>,
    now: DateTime<Utc>,
) -> String {
    format!("{device}{}", detail(count, what, first, now))
}

/// Records a momentary `future_timestamp` event at server time `now` for
/// `stamps`, whose values are `what` (`readings`, `load-profile
/// intervals`). Its message starts with the device's name.
pub(super) async fn insert_future_stamp_event(
    connection: &mut PgConnection,
    stamps: FutureStamps,
    what: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let kind = EventKind::FutureTimestamp;
    sqlx::query(
        "INSERT INTO events (device_id, code, severity, started_at, cleared_at, message) \
         SELECT id, $2, $3, $4, $4, name || $5 FROM devices WHERE id = $1",
    )
    .bind(stamps.device_id)
    .bind(&kind)
    .bind(kind.severity())
    .bind(now)
    .bind(detail(stamps.count, what, stamps.first, now))
    .execute(connection)
    .await?;
    Ok(())
}

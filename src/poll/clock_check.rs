//! The `clock_drift` event: a meter whose clock, as read, is further from
//! the server's than the threshold. Billing periods and load-profile
//! intervals are closed by the meter's clock, so a drifting one shifts them.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::PgPool;

use super::context::DeviceConfig;
use crate::metering::clock_drift::{CLOCK_DRIFT, clock_drift_seconds};
use crate::store::events::{insert_event, update_event_cleared};

/// Opens or clears the device's `clock_drift` event from the wall time
/// `meter` showed at `at`; nothing when the read did not include the clock,
/// or the wall time cannot be placed (the spring-forward gap).
pub async fn check_clock(
    pool: &PgPool,
    config: &DeviceConfig,
    meter: Option<NaiveDateTime>,
    at: DateTime<Utc>,
    threshold: Duration,
) {
    let Some(drift) = meter.and_then(|meter| clock_drift_seconds(meter, config.zone, at)) else {
        return;
    };
    let result = if drift.unsigned_abs() > threshold.as_secs() {
        let direction = if drift > 0 { "ahead of" } else { "behind" };
        let message = format!(
            "{}: meter clock {} s {direction} the server",
            config.name,
            drift.unsigned_abs()
        );
        insert_event(pool, config.id, CLOCK_DRIFT, "warning", &message, at).await
    } else {
        update_event_cleared(pool, config.id, CLOCK_DRIFT, at).await
    };
    if let Err(error) = result {
        tracing::warn!(device = %config.id, %error, "cannot record the meter's clock drift");
    }
}

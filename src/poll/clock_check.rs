//! The `clock_drift` event: a meter whose clock, as read, is further from
//! the server's than the threshold. Billing periods and load-profile
//! intervals are closed by the meter's clock, so a drifting one shifts them.

use std::time::Duration;

use super::context::DeviceConfig;
use super::outbox::{Outbox, Record};
use crate::domain::event::EventKind;
use crate::metering::clock_drift::clock_drift_seconds;
use chrono::{DateTime, NaiveDateTime, Utc};

/// Opens or clears the device's `clock_drift` event from the wall time
/// `meter` showed at `at`; nothing when the read did not include the clock,
/// or the wall time cannot be placed (the spring-forward gap). `spans`, the
/// device's drift events as the worker knows them, follows.
pub(crate) fn check_clock(
    outbox: &Outbox,
    config: &DeviceConfig,
    spans: &mut Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    meter: Option<NaiveDateTime>,
    at: DateTime<Utc>,
    threshold: Duration,
) {
    let Some(drift) = meter.and_then(|meter| clock_drift_seconds(meter, config.zone, at)) else {
        return;
    };
    let open = spans.iter_mut().find(|(_, cleared)| cleared.is_none());
    if drift.unsigned_abs() > threshold.as_secs() {
        let direction = if drift > 0 { "ahead of" } else { "behind" };
        let message = format!(
            "{}: meter clock {} s {direction} the server",
            config.name,
            drift.unsigned_abs()
        );
        if open.is_none() {
            spans.push((at, None));
        }
        outbox.send(Record::Event {
            device: config.id,
            kind: EventKind::ClockDrift,
            message,
            started_at: at,
            cleared_at: None,
        });
    } else {
        if let Some((_, cleared)) = open {
            *cleared = Some(at);
        }
        outbox.send(Record::EventCleared {
            device: config.id,
            code: EventKind::ClockDrift.code(),
            at,
        });
    }
}

//! A device's billing periods: those its meter closed and those the server
//! closed on its site's schedule.

use sqlx::PgPool;

use super::devices::existing_device;
use super::{Caller, ServiceError};
use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use chrono::{DateTime, Utc};

use crate::metering::billing::BillingPeriod;
use crate::store::billing::fetch_billing_periods;
use crate::store::identity::fetch_series_start;

/// A device's billing periods and its meter's replacement.
pub(crate) struct BillingHistory {
    /// Newest first.
    pub periods: Vec<BillingPeriod>,
    /// The device's newest confirmed meter replacement (its register
    /// series' start), if it had one.
    pub replaced_at: Option<DateTime<Utc>>,
}

/// The device's billing periods, newest first, and when its meter was
/// replaced.
pub(crate) async fn billing_periods(
    pool: &PgPool,
    caller: &Caller,
    device: DeviceId,
) -> Result<BillingHistory, ServiceError> {
    caller.require(Right::Read)?;
    existing_device(pool, device).await?;
    Ok(BillingHistory {
        periods: fetch_billing_periods(pool, device).await?,
        replaced_at: fetch_series_start(pool, device).await?,
    })
}

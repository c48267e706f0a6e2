//! A device's billing periods: those its meter closed and those the server
//! closed on its site's schedule.

use sqlx::PgPool;

use super::devices::existing_device;
use super::{Caller, ServiceError};
use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use crate::metering::billing::BillingPeriod;
use crate::store::billing::fetch_billing_periods;

/// The device's billing periods, newest first.
pub(crate) async fn billing_periods(
    pool: &PgPool,
    caller: &Caller,
    device: DeviceId,
) -> Result<Vec<BillingPeriod>, ServiceError> {
    caller.require(Right::Read)?;
    existing_device(pool, device).await?;
    Ok(fetch_billing_periods(pool, device).await?)
}

//! Derivation: runs the `metering` functions over what is stored, on a
//! schedule, and stores what they produce (billing periods the server
//! closes, intervals derived from registers, estimates for gaps, the TOU
//! audit of closed billing periods, the sites' daily balance). Each pass
//! reads its inputs and writes its results through `store`; a pass that
//! fails is logged and tried again next round, losing nothing.

pub(crate) mod billing_server;
pub mod estimate;
pub(crate) mod meter_periods;
pub(crate) mod profile_from_registers;
pub(crate) mod site_balance;
pub(crate) mod tou_audit;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::device::registry::ProfileSet;
use crate::domain::clock::Clock;
use crate::shutdown::Shutdown;

/// What every pass can reach.
#[derive(Clone)]
pub struct DeriveServices {
    pub pool: PgPool,
    pub profiles: Arc<ProfileSet>,
    pub clock: Clock,
}

/// Runs every pass each `every` until `shutdown` fires.
pub async fn run_derivation(services: DeriveServices, every: Duration, shutdown: Shutdown) {
    loop {
        // A shutdown does not wait for a round to finish: each pass stores
        // its results in single statements, so a round cut short loses
        // nothing that the next one will not redo.
        tokio::select! {
            _ = run_passes(&services) => {}
            () = shutdown.wait() => break,
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            () = shutdown.wait() => break,
        }
    }
}

/// One round of every pass, in order: each may use what the one before stored.
pub async fn run_passes(services: &DeriveServices) {
    if let Err(error) = meter_periods::store_meter_periods(services).await {
        tracing::warn!(%error, "cannot store billing periods from meter history");
    }
    if let Err(error) = profile_from_registers::derive_intervals(services).await {
        tracing::warn!(%error, "cannot derive intervals from registers");
    }
    if let Err(error) = billing_server::close_server_periods(services).await {
        tracing::warn!(%error, "cannot close server-side billing periods");
    }
    if let Err(error) = estimate::estimate_gaps(services).await {
        tracing::warn!(%error, "cannot estimate load-profile gaps");
    }
    if let Err(error) = tou_audit::audit_billing_periods(services).await {
        tracing::warn!(%error, "cannot audit tariff registers against the calendar");
    }
    if let Err(error) = site_balance::balance_sites(services).await {
        tracing::warn!(%error, "cannot balance the sites' meter trees");
    }
}

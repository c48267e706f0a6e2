//! Automatic commands: a pass run on a schedule, like the derivation, that
//! asks for commands as the system user through `service` (clock
//! synchronisation per site, tariff switching per calendar;
//! `service::automatic_commands`). It never writes to a bus: what it
//! queues, the bus's worker sends, as any operator's command.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::device::registry::ProfileSet;
use crate::domain::clock::Clock;
use crate::service::automatic_commands::{queue_clock_syncs, queue_tariff_switches, system_caller};
use crate::shutdown::Shutdown;

/// What the pass reaches.
#[derive(Clone)]
pub struct AutomationServices {
    pub pool: PgPool,
    pub profiles: Arc<ProfileSet>,
    pub clock: Clock,
}

/// Runs a round each `every` until `shutdown` fires.
pub async fn run_automation(services: AutomationServices, every: Duration, shutdown: Shutdown) {
    loop {
        // Each command is queued in a transaction of its own, under a key
        // naming its day or switch: a round cut short is finished by the next.
        tokio::select! {
            () = run_round(&services) => {}
            () = shutdown.wait() => break,
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            () = shutdown.wait() => break,
        }
    }
}

/// One round at the clock's now: the clock sets, then the tariff switches, due.
pub async fn run_round(services: &AutomationServices) {
    let (caller, now) = (system_caller(), services.clock.now());
    if let Err(error) = queue_clock_syncs(&services.pool, &services.profiles, &caller, now).await {
        tracing::warn!(%error, "cannot queue the clock synchronisations due");
    }
    if let Err(error) = queue_tariff_switches(&services.pool, &services.profiles, &caller, now).await {
        tracing::warn!(%error, "cannot queue the tariff switches due");
    }
}

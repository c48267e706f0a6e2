//! What every handler can reach.

use std::sync::Arc;

use sqlx::PgPool;

use crate::device::registry::ProfileSet;
use crate::domain::clock::Clock;
use crate::domain::sealing::SecretKey;
use crate::poll::stats::PollStats;
use crate::service::sessions::SessionPolicy;
use crate::web::auth_limit::FailedAuthLimiter;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub profiles: Arc<ProfileSet>,
    pub stats: Arc<PollStats>,
    /// What the server takes for now (the system clock outside tests).
    pub clock: Clock,
    /// The key device secrets are sealed with (`OHMNIBUS_SECRET_KEY`), if set.
    pub secret_key: Option<SecretKey>,
    /// What authentication keeps between requests.
    pub auth: AuthState,
}

/// What authentication keeps between requests: the failures counted per
/// client address, and how long a page session lasts.
#[derive(Clone, Default)]
pub struct AuthState {
    pub failures: FailedAuthLimiter,
    pub sessions: SessionPolicy,
}

//! Starting the application: the binary, the demo and the tests all go
//! through [`build`], so they run the same thing.

use crate::poll::context::FieldProgramming;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::automation::{AutomationServices, run_automation};
use crate::config::Config;
use crate::derive::{DeriveServices, run_derivation};
use crate::device::registry::ProfileSet;
use crate::maintenance::run_maintenance;
use crate::poll::outbox::OutboxSettings;
use crate::poll::stats::PollStats;
use crate::poll::supervisor::{PollSettings, run_poller};
use crate::shutdown::Shutdown;
use crate::store::database::{connect_with, migrate};
use crate::web::router;
use crate::web::state::{AppState, AuthState};

/// A running application.
pub struct Application {
    pub address: SocketAddr,
    pub state: AppState,
    server: JoinHandle<std::io::Result<()>>,
    poller: JoinHandle<()>,
    derivation: JoinHandle<()>,
    automation: Option<JoinHandle<()>>,
    maintenance: Option<JoinHandle<()>>,
}

/// Connects to the database, applies migrations, loads the profiles, starts
/// the poller and serves HTTP on `listener` until `shutdown` fires.
pub async fn build(config: &Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<Application> {
    let profiles = ProfileSet::load(config.profiles_dir.as_deref()).context("loading device profiles")?;
    let pool = connect_with(&config.database_url, config.statement_timeout)
        .await
        .with_context(|| format!("connecting to the database at {}", redact(&config.database_url)))?;
    migrate(&pool).await.context("applying database migrations")?;
    Ok(start(config, pool, Arc::new(profiles), listener, shutdown))
}

/// Starts poller and web server on an existing pool and profile set.
pub fn start(
    config: &Config,
    pool: PgPool,
    profiles: Arc<ProfileSet>,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Application {
    let stats = Arc::new(PollStats::default());
    let settings = PollSettings {
        request_timeout: config.request_timeout,
        iec_exchange_deadline: config.iec_exchange_deadline,
        refresh: config.poll_refresh,
        clock_drift_threshold: config.clock_drift_threshold,
        clock: config.clock.clone(),
        field_programming: FieldProgramming {
            window: config.field_programming_window,
            ..FieldProgramming::default()
        },
        secret_key: config.secret_key.clone(),
        outbox: OutboxSettings {
            spill_dir: Some(config.spill_dir.clone()),
            ..OutboxSettings::default()
        },
    };
    let poller = tokio::spawn(run_poller(
        pool.clone(),
        Arc::clone(&profiles),
        settings,
        Arc::clone(&stats),
        shutdown.clone(),
    ));
    let derivation = tokio::spawn(run_derivation(
        DeriveServices {
            pool: pool.clone(),
            profiles: Arc::clone(&profiles),
            clock: config.clock.clone(),
        },
        config.derive_every,
        shutdown.clone(),
    ));
    let automation = config.automation_every.map(|every| {
        tokio::spawn(run_automation(
            AutomationServices {
                pool: pool.clone(),
                profiles: Arc::clone(&profiles),
                clock: config.clock.clone(),
            },
            every,
            shutdown.clone(),
        ))
    });
    let maintenance = config.maintenance_every.map(|every| {
        tokio::spawn(run_maintenance(
            pool.clone(),
            config.clock.clone(),
            config.retention,
            every,
            shutdown.clone(),
        ))
    });
    let state = AppState {
        pool,
        profiles,
        stats,
        clock: config.clock.clone(),
        secret_key: config.secret_key.clone(),
        auth: AuthState {
            sessions: config.sessions,
            ..AuthState::default()
        },
    };
    let address = listener.local_addr().expect("a bound listener has an address");
    let app = router(state.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await
    });
    Application {
        address,
        state,
        server,
        poller,
        derivation,
        automation,
        maintenance,
    }
}

impl Application {
    /// Waits until the server, the poller and the derivation have stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.server.await.context("web server task")?.context("web server")?;
        self.poller.await.context("poller task")?;
        self.derivation.await.context("derivation task")?;
        if let Some(automation) = self.automation {
            automation.await.context("automatic commands task")?;
        }
        if let Some(maintenance) = self.maintenance {
            maintenance.await.context("maintenance task")?;
        }
        Ok(())
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

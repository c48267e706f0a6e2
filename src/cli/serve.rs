//! `ohmnibus serve` and `ohmnibus migrate`.

use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use super::shutdown_on_signal;
use crate::config::Config;
use crate::startup::{build, redact};
use crate::store::database::{connect, migrate as apply_migrations};

pub async fn run() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {} (OHMNIBUS_BIND)", config.bind))?;
    let shutdown = shutdown_on_signal();
    let app = build(&config, listener, shutdown.clone()).await?;
    tracing::info!(address = %app.address, "serving");
    // Once told to stop, the buses finish their exchanges and the ingest
    // writes or spills what it holds; whatever still runs after
    // STOP_DEADLINE (a query to a database gone silent) is abandoned.
    let deadline = async {
        shutdown.wait().await;
        tokio::time::sleep(STOP_DEADLINE).await;
    };
    tokio::select! {
        stopped = app.wait() => {
            stopped?;
            tracing::info!("stopped");
            Ok(())
        }
        () = deadline => anyhow::bail!("not stopped {} s after the signal; exiting with work unfinished", STOP_DEADLINE.as_secs()),
    }
}

/// How long a stop may take before the process exits anyway: the workers'
/// last exchange ([`crate::poll::worker::FINISH_EXCHANGE`]) and the
/// ingest's last writes ([`crate::poll::outbox::CLOSE_GRACE`]) fit in it,
/// and it stays within the 20 s a supervisor usually waits before SIGKILL.
const STOP_DEADLINE: Duration = Duration::from_secs(18);

pub async fn migrate() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let pool = connect(&config.database_url)
        .await
        .with_context(|| format!("connecting to {}", redact(&config.database_url)))?;
    apply_migrations(&pool).await.context("applying migrations")?;
    println!("migrations applied");
    Ok(())
}

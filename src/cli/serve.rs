//! `ohmnibus serve` and `ohmnibus migrate`.

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
    let app = build(&config, listener, shutdown_on_signal()).await?;
    tracing::info!(address = %app.address, "serving");
    app.wait().await
}

pub async fn migrate() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let pool = connect(&config.database_url)
        .await
        .with_context(|| format!("connecting to {}", redact(&config.database_url)))?;
    apply_migrations(&pool).await.context("applying migrations")?;
    println!("migrations applied");
    Ok(())
}

//! The subcommands of the binary, each a thin layer over the library.

pub mod demo;
mod demo_commands;
mod demo_iec;
pub mod demo_plant;
pub mod serve;
pub mod token;

use tracing_subscriber::EnvFilter;

use crate::device::registry::ProfileSet;

/// Logs to stderr; `RUST_LOG` selects what (default: info for Ohmnibus).
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("ohmnibus=info,tower_http=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Profiles as the server would see them (`OHMNIBUS_PROFILES_DIR` on top of the shipped ones).
pub fn load_profiles() -> anyhow::Result<ProfileSet> {
    let dir = std::env::var_os("OHMNIBUS_PROFILES_DIR").map(std::path::PathBuf::from);
    Ok(ProfileSet::load(dir.as_deref())?)
}

/// `ohmnibus simulate`.
pub async fn simulate(args: crate::sim::cli::SimulateArgs) -> anyhow::Result<()> {
    let profiles = load_profiles()?;
    crate::sim::cli::run(args, &profiles).await
}

/// A shutdown fired by Ctrl-C or SIGTERM.
pub fn shutdown_on_signal() -> crate::shutdown::Shutdown {
    let (trigger, shutdown) = crate::shutdown::channel();
    tokio::spawn(async move {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match terminate.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
        }
        tracing::info!("shutting down");
        trigger.fire();
    });
    shutdown
}

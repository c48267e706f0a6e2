//! Configuration, from the environment only (`docs/DEPLOYMENT.md`,
//! "Configuration").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::domain::clock::Clock;
use crate::domain::sealing::{SECRET_KEY_VARIABLE, SecretKey};
use crate::maintenance::Retention;
use crate::service::sessions::SessionPolicy;

/// Everything `serve` needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: the PostgreSQL database to use.
    pub database_url: String,
    /// `OHMNIBUS_BIND`: where the web server listens (default 127.0.0.1:8080).
    pub bind: SocketAddr,
    /// `OHMNIBUS_PROFILES_DIR`: extra device profiles, replacing shipped ones of the same name.
    pub profiles_dir: Option<PathBuf>,
    /// `OHMNIBUS_REQUEST_TIMEOUT_MS`: how long a device has to answer (default 1000).
    pub request_timeout: Duration,
    /// `OHMNIBUS_IEC_EXCHANGE_SECONDS`: the longest one IEC 62056-21
    /// exchange (a readout, a programming-mode command) may take, however
    /// the meter trickles its bytes (default 120).
    pub iec_exchange_deadline: Duration,
    /// How often the poller looks for configuration changes (2 s).
    pub poll_refresh: Duration,
    /// How often stored data is derived into billing periods and intervals (30 s).
    pub derive_every: Duration,
    /// How often the automatic commands due (clock synchronisations, tariff
    /// switches) are queued (30 s); `None` queues none on a timer (a test
    /// that drives the rounds itself).
    pub automation_every: Option<Duration>,
    /// `OHMNIBUS_CLOCK_DRIFT_SECONDS`: how far a meter's clock may be from the
    /// server's before a `clock_drift` event opens (default 30).
    pub clock_drift_threshold: Duration,
    /// `OHMNIBUS_FIELD_PROGRAMMING_MINUTES`: how long a command waits for a
    /// technician to open a meter's programming window (default 120).
    pub field_programming_window: Duration,
    /// What the server takes for now: the system clock, or a test's.
    pub clock: Clock,
    /// `OHMNIBUS_SECRET_KEY`: the key device secrets (meter passwords) are
    /// sealed with, 32 bytes as 64 hex digits or base64. Unset: the server
    /// runs, but refuses to store a secret and cannot open stored ones.
    pub secret_key: Option<SecretKey>,
    /// `OHMNIBUS_SESSION_IDLE_MINUTES` (default 30) and
    /// `OHMNIBUS_SESSION_MAX_HOURS` (default 12): how long a page session
    /// lasts after its last request and after signing in.
    pub sessions: SessionPolicy,
    /// `OHMNIBUS_SPILL_DIR` (default `spill`, under the working directory):
    /// where readings go while the database is away, and from where they
    /// are stored once it is back. Keep it on a volume that outlives the
    /// process (see docs/DEPLOYMENT.md).
    pub spill_dir: PathBuf,
    /// `OHMNIBUS_DB_STATEMENT_TIMEOUT_SECONDS` (default 30): the longest a
    /// statement may run before PostgreSQL cancels it.
    pub statement_timeout: Duration,
    /// `OHMNIBUS_RETAIN_INSTANT_DAYS` (default 90), `OHMNIBUS_RETAIN_REGISTER_DAYS`
    /// and `OHMNIBUS_RETAIN_INTERVAL_DAYS` (default `forever`): how long
    /// each class of data is kept.
    pub retention: Retention,
    /// How often the maintenance task runs (partitions ahead, retention);
    /// `None` runs none (a test that drives it itself).
    pub maintenance_every: Option<Duration>,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Where readings go while the database is away, unless `OHMNIBUS_SPILL_DIR` says.
pub const DEFAULT_SPILL_DIR: &str = "spill";
/// The longest a statement may run, unless `OHMNIBUS_DB_STATEMENT_TIMEOUT_SECONDS` says.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an IEC 62056-21 exchange may take unless configured: a 2 KB
/// readout in mode A takes about 70 s at 300 baud.
pub const DEFAULT_IEC_EXCHANGE_DEADLINE: Duration = Duration::from_secs(120);

/// How long a command waits for field programming unless configured.
pub const DEFAULT_FIELD_PROGRAMMING_WINDOW: Duration = Duration::from_secs(2 * 3600);

impl Config {
    pub fn from_env() -> anyhow::Result<Config> {
        let database_url = std::env::var("DATABASE_URL").context(
            "DATABASE_URL is not set: give the PostgreSQL database, e.g. postgres://user@host:5432/ohmnibus",
        )?;
        let bind = std::env::var("OHMNIBUS_BIND").unwrap_or_else(|_| DEFAULT_BIND.to_owned());
        let bind = bind
            .parse()
            .with_context(|| format!("OHMNIBUS_BIND={bind:?} is not an address:port such as 127.0.0.1:8080"))?;
        let profiles_dir = std::env::var_os("OHMNIBUS_PROFILES_DIR").map(PathBuf::from);
        let request_timeout = match std::env::var("OHMNIBUS_REQUEST_TIMEOUT_MS") {
            Ok(text) => Duration::from_millis(
                text.parse()
                    .with_context(|| format!("OHMNIBUS_REQUEST_TIMEOUT_MS={text:?} is not a number of milliseconds"))?,
            ),
            Err(_) => Duration::from_millis(1_000),
        };
        let iec_exchange_deadline = match std::env::var("OHMNIBUS_IEC_EXCHANGE_SECONDS") {
            Ok(text) => match text.trim().parse::<u64>() {
                Ok(seconds @ 1..=3600) => Duration::from_secs(seconds),
                _ => anyhow::bail!("OHMNIBUS_IEC_EXCHANGE_SECONDS={text:?} is not a number of seconds from 1 to 3600"),
            },
            Err(_) => DEFAULT_IEC_EXCHANGE_DEADLINE,
        };
        let clock_drift_threshold = match std::env::var("OHMNIBUS_CLOCK_DRIFT_SECONDS") {
            Ok(text) => Duration::from_secs(
                text.parse()
                    .with_context(|| format!("OHMNIBUS_CLOCK_DRIFT_SECONDS={text:?} is not a number of seconds"))?,
            ),
            Err(_) => Duration::from_secs(30),
        };
        let field_programming_window = match std::env::var("OHMNIBUS_FIELD_PROGRAMMING_MINUTES") {
            Ok(text) => Duration::from_secs(
                60 * text.parse::<u64>().with_context(|| {
                    format!("OHMNIBUS_FIELD_PROGRAMMING_MINUTES={text:?} is not a number of minutes")
                })?,
            ),
            Err(_) => DEFAULT_FIELD_PROGRAMMING_WINDOW,
        };
        let secret_key = match std::env::var(SECRET_KEY_VARIABLE) {
            // Empty counts as unset, as a compose file's `${VAR:-}` gives.
            Ok(text) if !text.trim().is_empty() => Some(text.parse::<SecretKey>()?),
            _ => None,
        };
        let sessions = SessionPolicy {
            idle: minutes_from_env("OHMNIBUS_SESSION_IDLE_MINUTES", 30, "minutes")?,
            max: minutes_from_env("OHMNIBUS_SESSION_MAX_HOURS", 12, "hours")?.saturating_mul(60),
        };
        let spill_dir = match std::env::var_os("OHMNIBUS_SPILL_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => PathBuf::from(DEFAULT_SPILL_DIR),
        };
        let statement_timeout = match std::env::var("OHMNIBUS_DB_STATEMENT_TIMEOUT_SECONDS") {
            Ok(text) => match text.trim().parse::<u64>() {
                Ok(seconds) if (1..=86_400).contains(&seconds) => Duration::from_secs(seconds),
                _ => anyhow::bail!(
                    "OHMNIBUS_DB_STATEMENT_TIMEOUT_SECONDS={text:?} is not a number of seconds from 1 to 86400"
                ),
            },
            Err(_) => DEFAULT_STATEMENT_TIMEOUT,
        };
        let defaults = Retention::default();
        let retention = Retention {
            instant_days: days_from_env("OHMNIBUS_RETAIN_INSTANT_DAYS", defaults.instant_days)?,
            register_days: days_from_env("OHMNIBUS_RETAIN_REGISTER_DAYS", defaults.register_days)?,
            interval_days: days_from_env("OHMNIBUS_RETAIN_INTERVAL_DAYS", defaults.interval_days)?,
        };
        Ok(Config {
            retention,
            maintenance_every: Some(crate::maintenance::MAINTENANCE_EVERY),
            spill_dir,
            statement_timeout,
            sessions,
            database_url,
            field_programming_window,
            bind,
            profiles_dir,
            request_timeout,
            iec_exchange_deadline,
            poll_refresh: Duration::from_secs(2),
            derive_every: Duration::from_secs(30),
            automation_every: Some(Duration::from_secs(30)),
            clock_drift_threshold,
            clock: Clock::System,
            secret_key,
        })
    }
}

/// A number of days from `variable` (1 to 100000), or `forever` (`None`);
/// `default` when unset.
fn days_from_env(variable: &str, default: Option<u32>) -> anyhow::Result<Option<u32>> {
    match std::env::var(variable) {
        Ok(text) if text.trim().eq_ignore_ascii_case("forever") => Ok(None),
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(days) if (1..=100_000).contains(&days) => Ok(Some(days)),
            _ => anyhow::bail!("{variable}={text:?} is neither a number of days from 1 to 100000 nor \"forever\""),
        },
        Err(_) => Ok(default),
    }
}

/// A positive whole number of minutes (or hours, `unit`) from `variable`,
/// `default` when unset, as minutes.
fn minutes_from_env(variable: &str, default: u64, unit: &str) -> anyhow::Result<Duration> {
    let count = match std::env::var(variable) {
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(count) if (1..=10_000).contains(&count) => count,
            _ => anyhow::bail!("{variable}={text:?} is not a number of {unit} from 1 to 10000"),
        },
        Err(_) => default,
    };
    Ok(Duration::from_secs(60 * count))
}

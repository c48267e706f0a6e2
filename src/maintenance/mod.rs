//! Upkeep of the time series, apart from ingest: month partitions made
//! ahead of time (and filled from the default partition), and retention
//! per data class by dropping whole partitions. Runs at start and then
//! every [`MAINTENANCE_EVERY`]; a run that cannot take a lock in time (a
//! `pg_dump` holding the tables) gives up and the next run does the work.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::clock::Clock;
use crate::shutdown::Shutdown;
use crate::store::StoreError;
use crate::store::partitions::{
    ReadingClass, Series, create_month_partition, drop_intervals_before, drop_readings_before, month_start,
    months_in_default,
};

/// How often the maintenance runs.
pub const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);
/// Months made ahead of the current one.
pub const MONTHS_AHEAD: i32 = 3;

/// How long each class of data is kept; `None` keeps it for ever.
/// Billing periods and events are always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Instantaneous values (`OHMNIBUS_RETAIN_INSTANT_DAYS`, default 90).
    pub instant_days: Option<u32>,
    /// Energy and demand registers and every other reading
    /// (`OHMNIBUS_RETAIN_REGISTER_DAYS`, default for ever).
    pub register_days: Option<u32>,
    /// Load-profile intervals (`OHMNIBUS_RETAIN_INTERVAL_DAYS`, default for ever).
    pub interval_days: Option<u32>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            instant_days: Some(90),
            register_days: None,
            interval_days: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Partitions created, with the rows moved into each from the default one.
    pub created: Vec<(String, u64)>,
    /// Partitions dropped by retention.
    pub dropped: Vec<String>,
    /// Rows deleted by retention one by one.
    pub deleted_rows: u64,
    /// What could not be done this time, said.
    pub failures: Vec<String>,
}

/// Runs the maintenance at start and every `every` until `shutdown`.
pub async fn run_maintenance(pool: PgPool, clock: Clock, retention: Retention, every: Duration, shutdown: Shutdown) {
    loop {
        tokio::select! {
            report = run_once(&pool, clock.now(), retention) => {
                for failure in &report.failures {
                    tracing::warn!(%failure, "maintenance: left for the next run");
                }
                if !report.created.is_empty() || !report.dropped.is_empty() || report.deleted_rows > 0 {
                    tracing::info!(created = ?report.created, dropped = ?report.dropped, deleted_rows = report.deleted_rows, "maintenance done");
                }
            }
            () = shutdown.wait() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.wait() => return,
        }
    }
}

/// One run at `now`: the partitions of the month before `now` to
/// [`MONTHS_AHEAD`] after it, and of every earlier month the default
/// partition holds rows of; then retention.
pub async fn run_once(pool: &PgPool, now: DateTime<Utc>, retention: Retention) -> MaintenanceReport {
    let mut report = MaintenanceReport::default();
    let horizon = month_start(now, MONTHS_AHEAD);
    for series in Series::ALL {
        let mut months: Vec<_> = (-1..=MONTHS_AHEAD).map(|offset| month_start(now, offset)).collect();
        match months_in_default(pool, series).await {
            // A month past the horizon (a meter clock years ahead) stays in
            // the default partition rather than get a partition of its own.
            Ok(found) => months.extend(found.into_iter().filter(|month| *month <= horizon)),
            Err(error) => report.failures.push(format!("{}: {error}", series.default_partition())),
        }
        months.sort();
        months.dedup();
        for month in months {
            match create_month_partition(pool, series, month).await {
                Ok(Some(moved)) => report.created.push((series.partition(month), moved)),
                Ok(None) => {}
                Err(error) => {
                    // Most likely a lock not granted in time (a dump in
                    // progress): the next months would wait the same.
                    report
                        .failures
                        .push(format!("creating {}: {error}", series.partition(month)));
                    break;
                }
            }
        }
    }
    let days_before = |days: u32| now - chrono::Duration::days(i64::from(days));
    let mut take = |what: &str, dropped: Result<crate::store::partitions::Dropped, StoreError>| match dropped {
        Ok(dropped) => {
            report.dropped.extend(dropped.partitions);
            report.deleted_rows += dropped.rows;
        }
        Err(error) => report.failures.push(format!("retention of {what}: {error}")),
    };
    if let Some(days) = retention.instant_days {
        take(
            "instantaneous values",
            drop_readings_before(pool, ReadingClass::Instant, days_before(days)).await,
        );
    }
    if let Some(days) = retention.register_days {
        take(
            "registers",
            drop_readings_before(pool, ReadingClass::Register, days_before(days)).await,
        );
    }
    if let Some(days) = retention.interval_days {
        take("intervals", drop_intervals_before(pool, days_before(days)).await);
    }
    report
}

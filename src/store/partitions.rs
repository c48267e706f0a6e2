//! Month partitions of the two time series, `readings` (by `read_at`) and
//! `load_profile_intervals` (by `interval_start`): made ahead of time,
//! filled from the default partition, and dropped whole by retention.
//!
//! Each month of `readings` is split again by data class
//! (`readings_y2026m12_instant`, `readings_y2026m12_register`; see the
//! migration `20261207000000_partition_maintenance.sql`), so the
//! instantaneous values of a month can be dropped while its registers stay.
//!
//! A partition is attached or dropped under locks that readers such as
//! `pg_dump` hold off, and a lock request that waits holds up every writer
//! queued behind it. So each change first takes every lock it needs without
//! waiting (`NOWAIT`), tries again a little later if one is taken, and gives
//! up after [`LOCK_TRIES`] tries: ingest never queues behind a maintenance
//! that waits for a dump, and the maintenance task tries again at its next
//! run. `lock_timeout` ([`LOCK_TIMEOUT`]) bounds whatever lock a statement
//! takes beyond those.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use sqlx::{PgConnection, PgPool};

use super::error::StoreError;
use crate::domain::obis::ObisCode;

/// How long a statement of a partition change may wait for a lock.
pub const LOCK_TIMEOUT: &str = "2s";
/// How often a partition change tries to take its locks, [`LOCK_PAUSE`] apart.
pub const LOCK_TRIES: u32 = 40;
const LOCK_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// Whether `error` is a lock not granted (`NOWAIT` or `lock_timeout`).
fn lock_not_granted(error: &StoreError) -> bool {
    match error {
        StoreError::Database(error) => error
            .as_database_error()
            .and_then(|db| db.code())
            .is_some_and(|code| code == "55P03"),
        StoreError::Conflict { .. } => false,
    }
}

/// Runs `change` until its locks are granted, [`LOCK_TRIES`] times at most.
async fn with_locks<T, F, Fut>(mut change: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut tries = 1;
    loop {
        match change().await {
            Err(error) if lock_not_granted(&error) && tries < LOCK_TRIES => {
                tries += 1;
                tokio::time::sleep(LOCK_PAUSE).await;
            }
            result => return result,
        }
    }
}

/// Takes `mode` on each of `tables` now, or fails with 55P03.
async fn lock_now(connection: &mut PgConnection, tables: &[&str], mode: &str) -> Result<(), StoreError> {
    execute(
        connection,
        format!("LOCK TABLE {} IN {mode} MODE NOWAIT", tables.join(", ")),
    )
    .await?;
    Ok(())
}

/// A time series partitioned by month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    Readings,
    Intervals,
}

impl Series {
    pub const ALL: [Series; 2] = [Series::Readings, Series::Intervals];

    pub fn table(self) -> &'static str {
        match self {
            Series::Readings => "readings",
            Series::Intervals => "load_profile_intervals",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Series::Readings => "read_at",
            Series::Intervals => "interval_start",
        }
    }

    /// The default partition, where rows of a month with no partition go.
    pub fn default_partition(self) -> String {
        format!("{}_default", self.table())
    }

    /// The partition of the month starting on `month`.
    pub fn partition(self, month: NaiveDate) -> String {
        format!("{}_y{:04}m{:02}", self.table(), month.year(), month.month())
    }

    /// The month a partition of this series is named for.
    fn month_of(self, partition: &str) -> Option<NaiveDate> {
        let rest = partition.strip_prefix(self.table())?.strip_prefix("_y")?;
        let (year, month) = rest.split_once('m')?;
        if year.len() != 4 || month.len() != 2 {
            return None;
        }
        NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
    }
}

/// A class of readings kept for its own time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingClass {
    /// Instantaneous values (OBIS value group D = 7): voltages, currents,
    /// powers, frequency, power factor.
    Instant,
    /// Everything else: energy and demand registers, counters, times, status.
    Register,
}

impl ReadingClass {
    /// The class of readings of `obis`: what the SQL function
    /// `ohmnibus_reading_class` says of its text (the two agree, tested).
    pub fn of(obis: &ObisCode) -> ReadingClass {
        if obis.kind() == Some(7) {
            ReadingClass::Instant
        } else {
            ReadingClass::Register
        }
    }

    /// The `data_class` column's value (see `ohmnibus_reading_class`).
    pub fn number(self) -> i16 {
        match self {
            ReadingClass::Instant => 0,
            ReadingClass::Register => 1,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            ReadingClass::Instant => "instant",
            ReadingClass::Register => "register",
        }
    }
}

/// The first day of the month `months` after the one `at` falls in (UTC).
pub fn month_start(at: DateTime<Utc>, months: i32) -> NaiveDate {
    let index = at.year() * 12 + at.month0() as i32 + months;
    NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1).expect("a valid month")
}

fn instant(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
}

/// The month after `month`.
fn next_month(month: NaiveDate) -> NaiveDate {
    month_start(instant(month), 1)
}

/// The partitions of table `parent`, by name.
async fn partitions_of<'e>(db: impl sqlx::PgExecutor<'e>, parent: &str) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = $1::regclass ORDER BY 1",
    )
    .bind(parent)
    .fetch_all(db)
    .await?)
}

/// The month partitions of `series` that exist, with their months.
pub async fn month_partitions(pool: &PgPool, series: Series) -> Result<Vec<(String, NaiveDate)>, StoreError> {
    let names = partitions_of(pool, series.table()).await?;
    Ok(names
        .into_iter()
        .filter_map(|name| series.month_of(&name).map(|month| (name, month)))
        .collect())
}

/// The months (first days) the default partition of `series` holds rows of.
pub async fn months_in_default(pool: &PgPool, series: Series) -> Result<Vec<NaiveDate>, StoreError> {
    let sql = format!(
        "SELECT DISTINCT date_trunc('month', {column} AT TIME ZONE 'UTC')::date FROM {default} ORDER BY 1",
        column = series.column(),
        default = series.default_partition()
    );
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?)
}

async fn lock_timeout(connection: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
    )))
    .execute(&mut *connection)
    .await?;
    Ok(())
}

async fn execute(connection: &mut PgConnection, sql: String) -> Result<u64, StoreError> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *connection)
        .await?
        .rows_affected())
}

/// Creates the partition of `series` for the month starting on `month`
/// unless it exists, moving into it what the default partition holds of
/// that month, in one transaction. Returns how many rows moved, or `None`
/// when the partition was there already.
pub async fn create_month_partition(
    pool: &PgPool,
    series: Series,
    month: NaiveDate,
) -> Result<Option<u64>, StoreError> {
    with_locks(|| create_once(pool, series, month)).await
}

async fn create_once(pool: &PgPool, series: Series, month: NaiveDate) -> Result<Option<u64>, StoreError> {
    let name = series.partition(month);
    let mut transaction = pool.begin().await?;
    lock_timeout(&mut transaction).await?;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(&name)
        .fetch_one(&mut *transaction)
        .await?;
    if exists {
        return Ok(None);
    }
    let (from, to) = (instant(month), instant(next_month(month)));
    let table = series.table();
    // Writers wait while the partition is attached (they hold ROW
    // EXCLUSIVE): one that had routed a row to the default partition under
    // the old layout would otherwise find it violate the new one. Readers
    // (ACCESS SHARE, as pg_dump takes) do not conflict with this lock; the
    // default partition's, which the attach needs, waits for them, so it is
    // taken without waiting too.
    let default = series.default_partition();
    lock_now(&mut transaction, &[table], "SHARE ROW EXCLUSIVE").await?;
    lock_now(&mut transaction, &[&default], "ACCESS EXCLUSIVE").await?;
    match series {
        Series::Readings => {
            execute(
                &mut transaction,
                format!("CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY LIST (data_class)"),
            )
            .await?;
            for class in [ReadingClass::Instant, ReadingClass::Register] {
                execute(
                    &mut transaction,
                    format!(
                        "CREATE TABLE {name}_{suffix} PARTITION OF {name} FOR VALUES IN ({number})",
                        suffix = class.suffix(),
                        number = class.number()
                    ),
                )
                .await?;
            }
        }
        Series::Intervals => {
            execute(
                &mut transaction,
                format!("CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"),
            )
            .await?;
        }
    }
    let (from, to) = (from.to_rfc3339(), to.to_rfc3339());
    let range = format!("{column} >= '{from}' AND {column} < '{to}'", column = series.column());
    let moved = execute(
        &mut transaction,
        format!(
            "WITH moved AS (DELETE FROM {default} WHERE {range} RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        ),
    )
    .await?;
    execute(
        &mut transaction,
        format!("ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ('{from}') TO ('{to}')"),
    )
    .await?;
    transaction.commit().await?;
    Ok(Some(moved))
}

/// What retention removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Partitions dropped whole, by name.
    pub partitions: Vec<String>,
    /// Rows deleted one by one: from the default partition, and from months
    /// made before readings were split by class.
    pub rows: u64,
}

/// Drops the readings of `class` from months that ended before `before`:
/// the month's partition of that class, whole; rows of the class in a
/// month partition not split by class (made before the split) and in the
/// default partition, one by one. A month left with no partition of
/// either class is dropped too.
pub async fn drop_readings_before(
    pool: &PgPool,
    class: ReadingClass,
    before: DateTime<Utc>,
) -> Result<Dropped, StoreError> {
    let mut dropped = Dropped::default();
    let series = Series::Readings;
    for (name, month) in month_partitions(pool, series).await? {
        if instant(next_month(month)) > before {
            continue;
        }
        let (partitions, rows) = with_locks(|| drop_class_once(pool, &name, class)).await?;
        dropped.partitions.extend(partitions);
        dropped.rows += rows;
    }
    let mut transaction = pool.begin().await?;
    lock_timeout(&mut transaction).await?;
    dropped.rows += sqlx::query("DELETE FROM readings_default WHERE data_class = $1 AND read_at < $2")
        .bind(class.number())
        .bind(before)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
    transaction.commit().await?;
    Ok(dropped)
}

/// Drops the partition of `class` of the month partition `name` (and the
/// month, once empty of partitions); deletes its rows of `class` where the
/// month is not split by class.
async fn drop_class_once(pool: &PgPool, name: &str, class: ReadingClass) -> Result<(Vec<String>, u64), StoreError> {
    let mut transaction = pool.begin().await?;
    lock_timeout(&mut transaction).await?;
    let leaves = partitions_of(&mut *transaction, name).await?;
    let split: bool = sqlx::query_scalar("SELECT relkind = 'p' FROM pg_class WHERE oid = $1::regclass")
        .bind(name)
        .fetch_one(&mut *transaction)
        .await?;
    let leaf = format!("{name}_{}", class.suffix());
    let mut dropped = Vec::new();
    let mut rows = 0;
    if !split {
        rows = execute(
            &mut transaction,
            format!("DELETE FROM {name} WHERE data_class = {}", class.number()),
        )
        .await?;
    } else if leaves.contains(&leaf) {
        if leaves.len() == 1 {
            lock_now(&mut transaction, &["readings", name, &leaf], "ACCESS EXCLUSIVE").await?;
            execute(&mut transaction, format!("DROP TABLE {name}")).await?;
            dropped.extend([leaf, name.to_owned()]);
        } else {
            lock_now(&mut transaction, &[name, &leaf], "ACCESS EXCLUSIVE").await?;
            execute(&mut transaction, format!("DROP TABLE {leaf}")).await?;
            dropped.push(leaf);
        }
    }
    transaction.commit().await?;
    Ok((dropped, rows))
}

/// Drops the load-profile intervals of months that ended before `before`:
/// their partitions whole, and the rows of the default partition.
pub async fn drop_intervals_before(pool: &PgPool, before: DateTime<Utc>) -> Result<Dropped, StoreError> {
    let mut dropped = Dropped::default();
    for (name, month) in month_partitions(pool, Series::Intervals).await? {
        if instant(next_month(month)) > before {
            continue;
        }
        with_locks(|| async {
            let mut transaction = pool.begin().await?;
            lock_timeout(&mut transaction).await?;
            lock_now(
                &mut transaction,
                &[Series::Intervals.table(), &name],
                "ACCESS EXCLUSIVE",
            )
            .await?;
            execute(&mut transaction, format!("DROP TABLE {name}")).await?;
            transaction.commit().await?;
            Ok(())
        })
        .await?;
        dropped.partitions.push(name);
    }
    let mut transaction = pool.begin().await?;
    lock_timeout(&mut transaction).await?;
    dropped.rows += sqlx::query("DELETE FROM load_profile_intervals_default WHERE interval_start < $1")
        .bind(before)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
    transaction.commit().await?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_counted_across_years() {
        let at = Utc.with_ymd_and_hms(2026, 12, 6, 3, 0, 0).unwrap();
        assert_eq!(month_start(at, 0), NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert_eq!(month_start(at, 1), NaiveDate::from_ymd_opt(2027, 1, 1).unwrap());
        assert_eq!(month_start(at, -12), NaiveDate::from_ymd_opt(2025, 12, 1).unwrap());
        assert_eq!(month_start(at, -13), NaiveDate::from_ymd_opt(2025, 11, 1).unwrap());
    }

    #[test]
    fn partition_names_give_their_months_back() {
        let month = NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
        for series in Series::ALL {
            let name = series.partition(month);
            assert_eq!(series.month_of(&name), Some(month), "{name}");
        }
        assert_eq!(Series::Readings.partition(month), "readings_y2027m03");
        assert_eq!(Series::Readings.month_of("readings_default"), None);
        assert_eq!(Series::Readings.month_of("readings_y2027m03_instant"), None);
        assert_eq!(Series::Readings.month_of("readings_y2027m13"), None);
    }
}

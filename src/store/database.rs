//! Connecting, creating databases and applying migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

/// The schema migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a caller waits for a free connection (or a new one) before the
/// database counts as away.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the readiness probe waits for the database's answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens a pool on `url` with [`connect_with`]'s limits and a statement
/// timeout of 30 s.
pub async fn connect(url: &str) -> Result<PgPool, sqlx::Error> {
    connect_with(url, crate::config::DEFAULT_STATEMENT_TIMEOUT).await
}

/// Opens a pool on `url` where nothing waits for minutes:
///
/// - a connection is waited for at most [`ACQUIRE_TIMEOUT`] (so a wrong
///   DATABASE_URL is reported at start rather than as a hang);
/// - PostgreSQL cancels a statement after `statement_timeout`, and ends a
///   session left idle inside a transaction after a minute;
/// - the server probes an idle connection after 30 s of silence (TCP
///   keepalive, 3 probes 10 s apart), so it drops a client that vanished.
///   The client's own sockets cannot be told to probe (the driver offers
///   no such setting): the client side is bounded by the timeouts above and
///   by the ingest's own write timeout and the readiness probe's
///   ([`READY_TIMEOUT`]);
/// - connections are recycled after 30 minutes, and closed after 5 idle.
pub async fn connect_with(url: &str, statement_timeout: Duration) -> Result<PgPool, sqlx::Error> {
    let statement_ms = statement_timeout.as_millis().to_string();
    let options = PgConnectOptions::from_str(url)?.options([
        ("statement_timeout", statement_ms.as_str()),
        ("idle_in_transaction_session_timeout", "60000"),
        ("tcp_keepalives_idle", "30"),
        ("tcp_keepalives_interval", "10"),
        ("tcp_keepalives_count", "3"),
    ]);
    PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .max_lifetime(Duration::from_secs(30 * 60))
        .idle_timeout(Duration::from_secs(5 * 60))
        .connect_with(options)
        .await
}

/// Applies pending migrations, on a connection without the statement
/// timeout (a migration of a large table may take longer).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut connection = pool.acquire().await?;
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut *connection)
        .await?;
    let result = MIGRATOR.run(&mut *connection).await;
    sqlx::query("RESET statement_timeout").execute(&mut *connection).await?;
    result
}

/// Creates database `name` on the server of `url` unless it exists, and
/// returns the URL of that database.
pub async fn create_database_if_missing(url: &str, name: &str) -> Result<String, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?;
    let mut connection = sqlx::PgConnection::connect_with(&options.clone().database("postgres")).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut connection)
        .await?;
    if !exists {
        let quoted = name.replace('"', "\"\"");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{quoted}\"")))
            .execute(&mut connection)
            .await?;
    }
    connection.close().await?;
    Ok(with_database(url, name))
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// Whether the database answers within [`READY_TIMEOUT`]: the readiness
/// probe. A database whose network went silent is "not ready" after that
/// long, not after a pool or TCP timeout.
pub async fn ping(pool: &PgPool) -> bool {
    let answer = sqlx::query("SELECT 1").execute(pool);
    matches!(tokio::time::timeout(READY_TIMEOUT, answer).await, Ok(Ok(_)))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(with_database("postgres://u@h:5432", "x"), "postgres://u@h:5432/x");
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}

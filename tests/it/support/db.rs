//! The test's own PostgreSQL database.

use sqlx::PgPool;

use ohmnibus::store::database::{connect, create_database_if_missing, migrate};

/// The server-level URL: DATABASE_URL, or the local PostgreSQL of our machines.
pub(crate) fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A new, migrated database with a unique name.
pub(crate) async fn fresh_database() -> (PgPool, String) {
    let name = format!("ohmnibus_test_{}_{}", std::process::id(), rand_suffix());
    let url = create_database_if_missing(&server_url(), &name)
        .await
        .expect("create test database");
    let pool = connect(&url).await.expect("connect to test database");
    migrate(&pool).await.expect("migrate test database");
    (pool, url)
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{nanos:x}{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

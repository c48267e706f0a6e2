//! The test's own PostgreSQL database, dropped when the test is done.

use std::time::Duration;

use ohmnibus::domain::address::UnitAddress;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::transport::Transport;
use ohmnibus::maintenance::{Retention, run_once};
use ohmnibus::store::buses::insert_bus;
use ohmnibus::store::database::{connect, create_database_if_missing, migrate};
use ohmnibus::store::devices::{DeviceAddress, NewDevice, insert_device};
use sqlx::{Connection, PgConnection, PgPool};

/// The server-level URL: DATABASE_URL, or the local PostgreSQL of our machines.
pub(crate) fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// How long dropping a database may take before it is left to
/// `scripts/test`, which drops the databases of finished processes.
const DROP_LIMIT: Duration = Duration::from_secs(30);

/// A new, migrated database with a unique name, `ohmnibus_test_<pid>_<suffix>`,
/// owned by one test. Dropping the guard drops the database (forcing its
/// connections closed) on a connection of its own. When the test panics the
/// database is kept for inspection and its name printed; `scripts/test`
/// drops it at its next run, as the process that made it is gone.
pub(crate) struct TestDb {
    /// A pool on the database.
    pub(crate) pool: PgPool,
    /// The database's URL, for a process of its own (the binary, a second
    /// application).
    pub(crate) url: String,
    name: String,
}

impl TestDb {
    pub(crate) async fn create() -> TestDb {
        let name = format!("ohmnibus_test_{}_{}", std::process::id(), rand_suffix());
        let url = create_database_if_missing(&server_url(), &name)
            .await
            .expect("create test database");
        // From here on the database is the guard's, even if what follows fails.
        let pool = match connect(&url).await {
            Ok(pool) => pool,
            Err(error) => {
                drop_in_background(name);
                panic!("connect to test database: {error}");
            }
        };
        let db = TestDb { pool, url, name };
        migrate(&db.pool).await.expect("migrate test database");
        // The partitions a running server's maintenance has made by now (the
        // month before to three ahead), so what a test stores lies where it
        // would in production; other months go to the default partitions.
        let keep = Retention {
            instant_days: None,
            register_days: None,
            interval_days: None,
        };
        let report = run_once(&db.pool, chrono::Utc::now(), keep).await;
        assert!(
            report.failures.is_empty(),
            "partitions of a test database: {:?}",
            report.failures
        );
        db
    }

    /// The database's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test database {} kept for inspection (scripts/test drops it at its next run)",
                self.name
            );
            return;
        }
        drop_in_background(std::mem::take(&mut self.name));
    }
}

/// Drops database `name` on a thread of its own with its own runtime (a
/// `Drop` cannot await), and waits for it. A failure is printed, never
/// raised: the database is then left to `scripts/test`.
fn drop_in_background(name: String) {
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| error.to_string())?;
        runtime
            .block_on(async { tokio::time::timeout(DROP_LIMIT, drop_database(&name)).await })
            .map_err(|_| format!("dropping {name} took over {DROP_LIMIT:?}"))?
            .map_err(|error| format!("dropping {name}: {error}"))
    })
    .join();
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => eprintln!("test database left behind: {error}"),
        Err(_) => eprintln!("test database left behind: the thread dropping it panicked"),
    }
}

async fn drop_database(name: &str) -> Result<(), sqlx::Error> {
    let mut connection = PgConnection::connect(&server_url()).await?;
    let quoted = name.replace('"', "\"\"");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{quoted}\" WITH (FORCE)"
    )))
    .execute(&mut connection)
    .await?;
    connection.close().await
}

#[tokio::test]
async fn a_test_database_is_dropped_with_its_guard() {
    let db = TestDb::create().await;
    let name = db.name().to_owned();
    let server = connect(&server_url()).await.unwrap();
    let exists = || async {
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&server)
            .await
            .unwrap()
    };
    assert!(exists().await, "{name} exists while its guard lives");
    // An open connection does not keep it.
    let pool = db.pool.clone();
    sqlx::query("SELECT 1").execute(&pool).await.unwrap();
    drop(db);
    assert!(!exists().await, "{name} is dropped with its guard");
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

/// A COUNTIS E43 at unit 1 on a new Modbus TCP line to `port`, read every
/// second, stored straight in the database (no application needed).
pub(crate) async fn insert_countis(pool: &PgPool, port: u16) -> DeviceId {
    let mut connection = pool.acquire().await.unwrap();
    countis_on(&mut connection, port).await
}

/// As [`insert_countis`], with the identity its installation record names
/// stored in the same transaction, so the poller's first read already
/// compares with it: any other meter answering is quarantined at once.
pub(crate) async fn insert_countis_expecting(pool: &PgPool, port: u16, expected: &str) -> DeviceId {
    let mut transaction = pool.begin().await.unwrap();
    let device = countis_on(&mut transaction, port).await;
    sqlx::query("INSERT INTO device_identities (device_id, expected, expected_since) VALUES ($1, $2, now())")
        .bind(device)
        .bind(expected)
        .execute(&mut *transaction)
        .await
        .unwrap();
    transaction.commit().await.unwrap();
    device
}

async fn countis_on(connection: &mut PgConnection, port: u16) -> DeviceId {
    let transport = Transport::ModbusTcp {
        host: "127.0.0.1".to_owned(),
        port,
    };
    let bus = insert_bus(connection, "line", None, &transport).await.unwrap();
    let device = NewDevice {
        bus_id: bus.id,
        name: "incomer",
        profile: "countis-e43",
        address: DeviceAddress::Unit(UnitAddress::new(1).unwrap()),
        realtime_seconds: 1,
        energy_seconds: 3600,
        history_seconds: 3600,
    };
    insert_device(connection, &device).await.unwrap().id
}

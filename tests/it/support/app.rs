//! The real application on port 0, as `startup::start` builds it for the
//! binary, and an in-process client of its router.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ohmnibus::config::Config;
use ohmnibus::derive::{DeriveServices, run_passes};
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::sealing::SecretKey;
use ohmnibus::shutdown::{self, Trigger};
use ohmnibus::startup::{Application, start};
use ohmnibus::store::tokens::insert_token;
use serde_json::Value;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::db::TestDb;
use super::pg_proxy::PgProxy;

pub(crate) struct TestApp {
    pub(crate) app: Application,
    pub(crate) pool: PgPool,
    pub(crate) shutdown: Trigger,
    pub(crate) router: axum::Router,
    /// Last, so the database outlives everything above that uses it.
    pub(crate) db: TestDb,
}

/// How long the application waits for a meter's answer unless a test says
/// otherwise. Far above how long a busy machine (a second copy of the suite,
/// `stress`) stalls a simulator, so a busy machine is never a dead meter: a
/// timeout costs a read one of its attempts, and a read that uses them all
/// waits a whole period (900 s for a history read) before it is tried
/// again. A meter that is silent on purpose costs a test this much per
/// attempt.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the application waits for an answer in a test with a meter
/// that is silent on purpose: each attempt at that meter holds its line
/// this long, and each of its reads makes three. Short so such a test stays
/// quick, yet well above how long a busy machine stalls a simulator that
/// answers; the tests' waits ([`super::WAIT`]) leave room for the retries
/// of a read that a stall made fail.
pub(crate) const SILENT_METER_TIMEOUT: Duration = Duration::from_millis(500);

/// The key the tests' application seals device secrets with.
pub(crate) const TEST_SECRET_KEY: [u8; 32] = [0x5a; 32];

/// Starts the application on a fresh database, waiting [`ANSWER_TIMEOUT`]
/// for each answer.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with_timeout(ANSWER_TIMEOUT).await
}

/// [`spawn_app`] waiting `request_timeout` for each answer (for tests that
/// hold an answer back on purpose, or whose silent meter must cost the line
/// less than [`ANSWER_TIMEOUT`]).
pub(crate) async fn spawn_app_with_timeout(request_timeout: Duration) -> TestApp {
    spawn_app_with(request_timeout, Clock::System).await
}

/// [`spawn_app`] on `clock`: a manual clock shared with the simulators makes
/// the server's read stamps and the meters' measurements agree.
pub(crate) async fn spawn_app_with_clock(clock: Clock) -> TestApp {
    spawn_app_with(ANSWER_TIMEOUT, clock).await
}

/// [`spawn_app_with_clock`] whose derivation passes run only when the test
/// calls [`TestApp::derive_now`]: for a test that moves the clock between
/// passes, where a timer's pass begun before the move would see the old
/// time and the new data.
pub(crate) async fn spawn_app_deriving_on_demand(clock: Clock) -> TestApp {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let deadline = ohmnibus::config::DEFAULT_IEC_EXCHANGE_DEADLINE;
    let options = Launch {
        derive_every: ON_DEMAND,
        ..Launch::new(ANSWER_TIMEOUT, deadline, clock, ProfileSet::builtin())
    };
    launch(db, pool, options).await
}

/// The derivation timer of [`spawn_app_deriving_on_demand`]: longer than
/// any test runs.
const ON_DEMAND: Duration = Duration::from_secs(24 * 3600);

/// [`spawn_app`] on `clock`, waiting `request_timeout` for each answer.
pub(crate) async fn spawn_app_with(request_timeout: Duration, clock: Clock) -> TestApp {
    spawn_app_with_profiles(request_timeout, clock, ProfileSet::builtin()).await
}

/// [`spawn_app_with`] on `profiles` (e.g. a shipped profile with other
/// load-profile settings).
pub(crate) async fn spawn_app_with_profiles(request_timeout: Duration, clock: Clock, profiles: ProfileSet) -> TestApp {
    let deadline = ohmnibus::config::DEFAULT_IEC_EXCHANGE_DEADLINE;
    spawn_app_with_deadline(request_timeout, deadline, clock, profiles).await
}

/// [`spawn_app_with_profiles`] where one IEC 62056-21 exchange may take
/// `iec_exchange_deadline` in all (tests of meters that never stop talking).
pub(crate) async fn spawn_app_with_deadline(
    request_timeout: Duration,
    iec_exchange_deadline: Duration,
    clock: Clock,
    profiles: ProfileSet,
) -> TestApp {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    launch(
        db,
        pool,
        Launch::new(request_timeout, iec_exchange_deadline, clock, profiles),
    )
    .await
}

/// [`spawn_app`] reaching its database through a proxy the test can cut
/// (the test's own pool, `TestApp::pool`, goes straight to it).
pub(crate) async fn spawn_app_behind_proxy() -> (TestApp, PgProxy) {
    let db = TestDb::create().await;
    let proxy = PgProxy::start(&db.url).await;
    let pool = ohmnibus::store::database::connect(&proxy.url(&db.url)).await.unwrap();
    let deadline = ohmnibus::config::DEFAULT_IEC_EXCHANGE_DEADLINE;
    let options = Launch::new(ANSWER_TIMEOUT, deadline, Clock::System, ProfileSet::builtin());
    let app = launch(db, pool, options).await;
    (app, proxy)
}

/// How [`launch`] sets the application up.
struct Launch {
    request_timeout: Duration,
    iec_exchange_deadline: Duration,
    clock: Clock,
    profiles: ProfileSet,
    derive_every: Duration,
}

impl Launch {
    fn new(request_timeout: Duration, iec_exchange_deadline: Duration, clock: Clock, profiles: ProfileSet) -> Launch {
        Launch {
            request_timeout,
            iec_exchange_deadline,
            clock,
            profiles,
            derive_every: Duration::from_millis(300),
        }
    }
}

/// Starts the application on `app_pool` (a pool on `db`).
async fn launch(db: TestDb, app_pool: PgPool, options: Launch) -> TestApp {
    let Launch {
        request_timeout,
        iec_exchange_deadline,
        clock,
        profiles,
        derive_every,
    } = options;
    let pool = db.pool.clone();
    let config = Config {
        database_url: db.url.clone(),
        bind: "127.0.0.1:0".parse().unwrap(),
        profiles_dir: None,
        request_timeout,
        iec_exchange_deadline,
        poll_refresh: Duration::from_millis(200),
        derive_every,
        // A test of automatic commands runs the rounds itself, at the
        // moments it chooses: a timer would queue commands mid-set-up.
        automation_every: None,
        clock_drift_threshold: Duration::from_secs(30),
        field_programming_window: ohmnibus::config::DEFAULT_FIELD_PROGRAMMING_WINDOW,
        clock,
        secret_key: Some(SecretKey::from_bytes(TEST_SECRET_KEY)),
        sessions: Default::default(),
        spill_dir: spill_dir(&db),
        statement_timeout: ohmnibus::config::DEFAULT_STATEMENT_TIMEOUT,
        // Kept for ever: tests store readings of any date and read them back.
        retention: ohmnibus::maintenance::Retention {
            instant_days: None,
            register_days: None,
            interval_days: None,
        },
        // The test database has its partitions (`TestDb::create`); a test of
        // the maintenance runs it itself.
        maintenance_every: None,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (shutdown, receiver) = shutdown::channel();
    let app = start(&config, app_pool, Arc::new(profiles), listener, receiver);
    let router = ohmnibus::web::router(app.state.clone());
    TestApp {
        app,
        pool,
        shutdown,
        router,
        db,
    }
}

/// The spill directory of the application on `db`: one per test database,
/// all under one directory that `scripts/test` empties before a run.
pub(crate) fn spill_dir(db: &TestDb) -> std::path::PathBuf {
    std::env::temp_dir().join("ohmnibus-test-spill").join(db.name())
}

impl TestApp {
    pub(crate) async fn token(&self, role: Role) -> String {
        insert_token(&self.pool, &format!("test-{role}"), role).await.unwrap()
    }

    /// Sends a request through the real router, in process.
    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    /// Sends a request with a raw body.
    pub(crate) async fn request_raw(&self, method: &str, path: &str, token: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Runs one round of the derivation passes now, as the application's
    /// timer does, so a test need not wait for the timer. Safe beside the
    /// timer's own round: each pass stores its results in single statements.
    pub(crate) async fn derive_now(&self) {
        let services = DeriveServices {
            pool: self.pool.clone(),
            profiles: Arc::clone(&self.app.state.profiles),
            clock: self.app.state.clock.clone(),
        };
        run_passes(&services).await;
    }

    pub(crate) async fn stop(self) {
        self.stop_keeping_database().await;
    }

    /// Stops the application (within 30 s) and hands back its database,
    /// for checks made once nothing writes to it any more.
    pub(crate) async fn stop_keeping_database(self) -> TestDb {
        let TestApp { app, shutdown, db, .. } = self;
        shutdown.fire();
        tokio::time::timeout(Duration::from_secs(30), app.wait())
            .await
            .expect("stops in time")
            .unwrap();
        db
    }
}

//! Test harness: a fresh PostgreSQL database per test and the real
//! application on port 0, as `startup::start` builds it for the binary.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ohmnibus::config::Config;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::sim::iec62056::{IecKind, IecLine, IecMeter, IecMeterConfig, SharedMeter, spawn_iec_tcp};
use ohmnibus::startup::{Application, start};
use ohmnibus::store::database::{connect, create_database_if_missing, migrate};
use ohmnibus::store::tokens::insert_token;
use serde_json::Value;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

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

pub(crate) struct TestApp {
    pub(crate) app: Application,
    pub(crate) pool: PgPool,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) router: axum::Router,
}

/// Starts the application on a fresh database, polling with short timeouts.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with_timeout(Duration::from_millis(300)).await
}

/// [`spawn_app`] waiting `request_timeout` for each answer (for tests that
/// hold an answer back on purpose).
pub(crate) async fn spawn_app_with_timeout(request_timeout: Duration) -> TestApp {
    spawn_app_with(request_timeout, Clock::System).await
}

/// [`spawn_app`] on `clock`: a manual clock shared with the simulators makes
/// the server's read stamps and the meters' measurements agree.
pub(crate) async fn spawn_app_with_clock(clock: Clock) -> TestApp {
    spawn_app_with(Duration::from_millis(300), clock).await
}

async fn spawn_app_with(request_timeout: Duration, clock: Clock) -> TestApp {
    let (pool, url) = fresh_database().await;
    let config = Config {
        database_url: url,
        bind: "127.0.0.1:0".parse().unwrap(),
        profiles_dir: None,
        request_timeout,
        poll_refresh: Duration::from_millis(200),
        derive_every: Duration::from_millis(300),
        clock_drift_threshold: Duration::from_secs(30),
        clock,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (shutdown, receiver) = watch::channel(false);
    let app = start(
        &config,
        pool.clone(),
        Arc::new(ProfileSet::builtin()),
        listener,
        receiver,
    );
    let router = ohmnibus::web::router(app.state.clone());
    TestApp {
        app,
        pool,
        shutdown,
        router,
    }
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

    pub(crate) async fn stop(self) {
        self.shutdown.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.app.wait())
            .await
            .expect("stops in time")
            .unwrap();
    }
}

/// Waits (up to `limit`) until `check` is true, polling every 100 ms.
pub(crate) async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Serves `device` alone on a simulated Modbus TCP line and adds it through
/// the API (bus "b", device "m" at unit 1 with `profile` and `schedule`).
/// Returns the device id and the line's stop switch: the line serves while
/// the switch is kept.
pub(crate) async fn serve_one_modbus_tcp_device(
    app: &TestApp,
    engineer: &str,
    device: ohmnibus::sim::device::SimDevice,
    profile: &str,
    schedule: Value,
) -> (i64, watch::Sender<bool>) {
    use ohmnibus::sim::bus::SimBus;
    use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
    let (stop, shutdown) = watch::channel(false);
    let (line, _) = spawn_tcp(
        SimBus::new(vec![device]),
        "127.0.0.1:0",
        TcpFraming::ModbusTcp,
        shutdown,
    )
    .await
    .unwrap();
    let transport = serde_json::json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": line.port()});
    let (_, bus) = app
        .request(
            "POST",
            "/api/v1/buses",
            Some(engineer),
            Some(serde_json::json!({"name": "b", "transport": transport})),
        )
        .await;
    let body = serde_json::json!({"name": "m", "bus_id": bus["id"], "profile": profile, "address": 1,
                                  "schedule": schedule});
    let (_, created) = app.request("POST", "/api/v1/devices", Some(engineer), Some(body)).await;
    (created["id"].as_i64().unwrap(), stop)
}

/// Adds a bus of transport `kind` ("modbus_tcp", "iec62056_tcp") named
/// `name` at `port` on 127.0.0.1 through the API; returns its id.
pub(crate) async fn add_bus(app: &TestApp, engineer: &str, name: &str, kind: &str, port: u16) -> Value {
    let transport = serde_json::json!({"kind": kind, "host": "127.0.0.1", "port": port});
    let (status, bus) = app
        .request(
            "POST",
            "/api/v1/buses",
            Some(engineer),
            Some(serde_json::json!({"name": name, "transport": transport})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bus}");
    bus["id"].clone()
}

/// Adds `device` (the request body without `bus_id`) on `bus_id` through
/// the API; returns its id.
pub(crate) async fn add_device(app: &TestApp, engineer: &str, bus_id: &Value, mut device: Value) -> i64 {
    device["bus_id"] = bus_id.clone();
    let (status, created) = app
        .request("POST", "/api/v1/devices", Some(engineer), Some(device))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_i64().unwrap()
}

/// Adds `device` on a bus of transport `kind` nobody answers on (port 1),
/// so what is stored for it is what the test puts there; returns its id.
pub(crate) async fn add_unpolled_device(app: &TestApp, engineer: &str, kind: &str, device: Value) -> i64 {
    let name = if kind == "modbus_tcp" { "line" } else { "iec" };
    let bus = add_bus(app, engineer, name, kind, 1).await;
    add_device(app, engineer, &bus, device).await
}

/// A simulated IEC 62056-21 line of `meters` on `clock` that answers after
/// 5 ms instead of the standard's 200 ms, so tests read quickly.
pub(crate) fn quick_iec_line(meters: Vec<SharedMeter>, clock: Clock) -> IecLine {
    let mut line = IecLine::new(meters, clock);
    line.reaction = Duration::from_millis(5);
    line
}

/// Serves `line` over TCP on 127.0.0.1; returns its port and its stop
/// switch: the line serves while the switch is kept.
pub(crate) async fn serve_iec_tcp(line: IecLine) -> (u16, watch::Sender<bool>) {
    let (stop, shutdown) = watch::channel(false);
    let (address, _) = spawn_iec_tcp(line, "127.0.0.1:0", shutdown).await.unwrap();
    (address.port(), stop)
}

/// Serves `meter` alone on a quick IEC line over TCP on `clock` and adds it
/// through the API: bus "iec", then `device` (the request body without
/// `bus_id`). Returns the device id and the line's stop switch.
pub(crate) async fn serve_one_iec_tcp_device(
    app: &TestApp,
    engineer: &str,
    meter: &SharedMeter,
    clock: &Clock,
    device: Value,
) -> (i64, watch::Sender<bool>) {
    let (port, stop) = serve_iec_tcp(quick_iec_line(vec![Arc::clone(meter)], clock.clone())).await;
    let bus = add_bus(app, engineer, "iec", "iec62056_tcp", port).await;
    (add_device(app, engineer, &bus, device).await, stop)
}

/// The device's intervals of `obis` in `[from, to)` as the load-profile API
/// serves them (JSON objects, by start).
pub(crate) async fn fetch_load_profile(
    app: &TestApp,
    token: &str,
    id: i64,
    obis: &str,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Vec<Value> {
    let stamp = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let path = format!(
        "/api/v1/devices/{id}/load-profile?obis={obis}&from={}&to={}",
        stamp(from),
        stamp(to)
    );
    let (status, body) = app.request("GET", &path, Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body["intervals"].as_array().unwrap().clone()
}

/// A simulated IEC meter of `kind` (history from `seed`) answering to
/// `address`, its clock set at `at`.
pub(crate) fn iec_meter(kind: IecKind, seed: u64, address: &str, at: chrono::DateTime<chrono::Utc>) -> SharedMeter {
    let mut config = IecMeterConfig::new(kind, seed);
    config.address = address.into();
    Arc::new(std::sync::Mutex::new(IecMeter::new(config, at)))
}

/// Reads the device on demand and waits (up to 20 s) until the read is done.
pub(crate) async fn read_now(app: &TestApp, token: &str, id: i64) {
    let (_, job) = app
        .request("POST", &format!("/api/v1/devices/{id}/read"), Some(token), None)
        .await;
    let job_path = format!("/api/v1/reads/{}", job["id"]);
    let done = eventually(Duration::from_secs(20), || async {
        app.request("GET", &job_path, Some(token), None).await.1["state"] == "done"
    })
    .await;
    assert!(done, "the read at {} did not finish", app.app.state.clock.now());
}

/// A TH40C ("Main", Modbus unit 1) on a bus nobody answers on; returns its id.
pub(crate) async fn add_unpolled_th40c(app: &TestApp, engineer: &str) -> i64 {
    add_unpolled_device(
        app,
        engineer,
        "modbus_tcp",
        serde_json::json!({"name": "Main", "profile": "th40c", "address": 1}),
    )
    .await
}

/// How many readings of `obis` are stored for device `id`.
pub(crate) async fn count_readings(app: &TestApp, id: i64, obis: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM readings WHERE device_id = $1 AND obis = $2")
        .bind(id)
        .bind(obis)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

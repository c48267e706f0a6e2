//! Durable jobs: queued in the database, claimed by the worker of their bus
//! whenever one runs, settled after a crash, listed and paged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{TestDb, eventually};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ohmnibus::config::Config;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::poll::stats::PollStats;
use ohmnibus::shutdown::{self, Trigger};
use ohmnibus::startup::{Application, start};
use ohmnibus::store::tokens::insert_token;
use ohmnibus::web::state::AppState;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// The API of a database, with no poller: jobs queued through it wait.
struct Console {
    pool: PgPool,
    router: axum::Router,
}

impl Console {
    fn new(pool: &PgPool) -> Console {
        let state = AppState {
            pool: pool.clone(),
            profiles: Arc::new(ProfileSet::builtin()),
            stats: Arc::new(PollStats::default()),
            clock: Clock::System,
            secret_key: None,
            auth: Default::default(),
        };
        Console {
            pool: pool.clone(),
            router: ohmnibus::web::router(state),
        }
    }

    async fn token(&self, role: Role) -> String {
        insert_token(&self.pool, &format!("test-{role}"), role).await.unwrap()
    }

    async fn request(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.request_with(method, path, token, body, None).await
    }

    async fn request_with(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        if let Some(key) = idempotency_key {
            builder = builder.header("idempotency-key", key);
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
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Adds a Modbus TCP bus at `port` and a device of `profile` at unit 1.
    async fn add_device(&self, engineer: &str, name: &str, port: u16, profile: &str) -> (i64, i64) {
        let transport = json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": port});
        let (status, bus) = self
            .request(
                "POST",
                "/api/v1/buses",
                engineer,
                Some(json!({"name": name, "transport": transport})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{bus}");
        let device = json!({"name": format!("{name} meter"), "bus_id": bus["id"], "profile": profile, "address": 1});
        let (status, device) = self.request("POST", "/api/v1/devices", engineer, Some(device)).await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        (bus["id"].as_i64().unwrap(), device["id"].as_i64().unwrap())
    }

    async fn job(&self, token: &str, id: &Value) -> Value {
        let (status, job) = self.request("GET", &format!("/api/v1/jobs/{id}"), token, None).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        job
    }
}

/// The whole server (poller included) on `url`, as the binary starts it.
fn start_server(pool: &PgPool, url: &str) -> (Application, Trigger) {
    let config = Config {
        database_url: url.to_owned(),
        bind: "127.0.0.1:0".parse().unwrap(),
        profiles_dir: None,
        request_timeout: Duration::from_millis(300),
        iec_exchange_deadline: ohmnibus::config::DEFAULT_IEC_EXCHANGE_DEADLINE,
        poll_refresh: Duration::from_millis(200),
        derive_every: Duration::from_secs(3600),
        automation_every: Some(Duration::from_secs(3600)),
        clock_drift_threshold: Duration::from_secs(30),
        field_programming_window: ohmnibus::config::DEFAULT_FIELD_PROGRAMMING_WINDOW,
        clock: Clock::System,
        secret_key: None,
        sessions: Default::default(),
        spill_dir: std::env::temp_dir()
            .join("ohmnibus-test-spill")
            .join(format!("jobs-{}", std::process::id())),
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
    let (stop, shutdown) = shutdown::channel();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = TcpListener::from_std(listener).unwrap();
    let app = start(
        &config,
        pool.clone(),
        Arc::new(ProfileSet::builtin()),
        listener,
        shutdown,
    );
    (app, stop)
}

/// A Modbus TCP device that answers every read with zeros and counts the
/// writes it is sent, answering none of them: a write it is sent stays
/// "being sent" for as long as the test likes.
struct SilentWriter {
    port: u16,
    reads: Arc<AtomicUsize>,
    writes: Arc<AtomicUsize>,
}

async fn spawn_silent_writer() -> SilentWriter {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let reads = Arc::new(AtomicUsize::new(0));
    let writes = Arc::new(AtomicUsize::new(0));
    let (r, w) = (Arc::clone(&reads), Arc::clone(&writes));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_silent_writer(stream, Arc::clone(&r), Arc::clone(&w)));
        }
    });
    SilentWriter { port, reads, writes }
}

async fn serve_silent_writer(mut stream: TcpStream, reads: Arc<AtomicUsize>, writes: Arc<AtomicUsize>) {
    let mut header = [0u8; 7];
    while stream.read_exact(&mut header).await.is_ok() {
        let length = usize::from(u16::from_be_bytes([header[4], header[5]]));
        let mut pdu = vec![0u8; length.saturating_sub(1)];
        if stream.read_exact(&mut pdu).await.is_err() {
            return;
        }
        match pdu.first() {
            Some(3) if pdu.len() >= 5 => {
                reads.fetch_add(1, Ordering::SeqCst);
                let count = usize::from(u16::from_be_bytes([pdu[3], pdu[4]]));
                let mut answer = header.to_vec();
                answer[4..6].copy_from_slice(&u16::try_from(3 + 2 * count).unwrap().to_be_bytes());
                answer.extend([3, u8::try_from(2 * count).unwrap()]);
                answer.extend(std::iter::repeat_n(0u8, 2 * count));
                if stream.write_all(&answer).await.is_err() {
                    return;
                }
            }
            Some(6 | 16) => {
                writes.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_read_queued_while_no_worker_runs_completes_once_one_starts() {
    let db = TestDb::create().await;
    let (pool, url) = (db.pool.clone(), db.url.clone());
    let console = Console::new(&pool);
    let operator = console.token(Role::Operator).await;
    let engineer = console.token(Role::Engineer).await;
    let device = spawn_silent_writer().await;
    let (_, id) = console.add_device(&engineer, "line", device.port, "countis-e43").await;

    // The server is stopped: the read is queued all the same.
    let (status, read) = console
        .request("POST", &format!("/api/v1/devices/{id}/read"), &operator, None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{read}");
    assert_eq!(read["state"], "queued");
    assert_eq!(device.reads.load(Ordering::SeqCst), 0);

    let (server, stop) = start_server(&pool, &url);
    let path = format!("/api/v1/reads/{}", read["id"]);
    let succeeded = eventually(Duration::from_secs(20), || async {
        console.request("GET", &path, &operator, None).await.1["state"] == "succeeded"
    })
    .await;
    let read = console.request("GET", &path, &operator, None).await.1;
    assert!(succeeded, "{read}");
    assert!(read["readings"].as_i64().unwrap() > 0, "{read}");
    assert!(device.reads.load(Ordering::SeqCst) > 0);
    stop.fire();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn a_command_running_when_the_server_is_killed_fails_as_interrupted_and_is_not_sent_again() {
    let db = TestDb::create().await;
    let (pool, url) = (db.pool.clone(), db.url.clone());
    let console = Console::new(&pool);
    let engineer = console.token(Role::Engineer).await;
    let device = spawn_silent_writer().await;
    let (_, id) = console.add_device(&engineer, "line", device.port, "countis-e43").await;
    let (status, command) = console
        .request(
            "POST",
            &format!("/api/v1/devices/{id}/commands"),
            &engineer,
            Some(json!({"kind": "set_tariff", "tariff": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{command}");

    // A server that waits long for the answer the device never sends.
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_ohmnibus"))
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("OHMNIBUS_BIND", "127.0.0.1:0")
        .env("OHMNIBUS_REQUEST_TIMEOUT_MS", "60000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let sent = eventually(Duration::from_secs(30), || async {
        device.writes.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(sent, "the command never reached the device");
    assert_eq!(console.job(&engineer, &command["id"]).await["state"], "running");
    server.kill().await.unwrap();

    let (restarted, stop) = start_server(&pool, &url);
    let settled = eventually(Duration::from_secs(20), || async {
        console.job(&engineer, &command["id"]).await["state"] == "failed"
    })
    .await;
    let job = console.job(&engineer, &command["id"]).await;
    assert!(settled, "{job}");
    assert_eq!(job["error"]["code"], "interrupted", "{job}");
    assert!(job["finished_at"].is_string(), "{job}");
    let (_, old_shape) = console
        .request("GET", &format!("/api/v1/commands/{}", command["id"]), &engineer, None)
        .await;
    assert_eq!(old_shape["state"], "failed", "{old_shape}");

    // A read queued now is claimed after the command would have been, and
    // a command goes before any read: once it is done, a second sending
    // would have happened.
    let operator = console.token(Role::Operator).await;
    let (_, read) = console
        .request("POST", &format!("/api/v1/devices/{id}/read"), &operator, None)
        .await;
    let read_done = eventually(Duration::from_secs(20), || async {
        console.job(&operator, &read["id"]).await["state"] == "succeeded"
    })
    .await;
    assert!(read_done, "{}", console.job(&operator, &read["id"]).await);
    assert_eq!(device.writes.load(Ordering::SeqCst), 1, "the command was sent again");
    stop.fire();
    restarted.wait().await.unwrap();
}

#[tokio::test]
async fn jobs_are_listed_newest_first_filtered_and_paged() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let console = Console::new(&pool);
    let engineer = console.token(Role::Engineer).await;
    let viewer = console.token(Role::Viewer).await;
    let (bus_a, a) = console.add_device(&engineer, "a", 1, "countis-e43").await;
    let (bus_b, b) = console.add_device(&engineer, "b", 1, "countis-e43").await;
    let mut ids = Vec::new();
    for device in [a, a, b] {
        let (status, read) = console
            .request("POST", &format!("/api/v1/devices/{device}/read"), &engineer, None)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{read}");
        ids.push(read["id"].as_i64().unwrap());
    }
    let (_, command) = console
        .request(
            "POST",
            &format!("/api/v1/devices/{a}/commands"),
            &engineer,
            Some(json!({"kind": "set_tariff", "tariff": 3})),
        )
        .await;
    ids.push(command["id"].as_i64().unwrap());
    let (_, scan) = console
        .request(
            "POST",
            &format!("/api/v1/buses/{bus_b}/scan"),
            &engineer,
            Some(json!({"first_address": 1, "last_address": 4})),
        )
        .await;
    ids.push(scan["id"].as_i64().unwrap());

    let list = |query: String| {
        let console = &console;
        let viewer = &viewer;
        async move {
            let (status, body) = console
                .request("GET", &format!("/api/v1/jobs{query}"), viewer, None)
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body
        }
    };
    let listed = |body: &Value| -> Vec<i64> {
        body["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|job| job["id"].as_i64().unwrap())
            .collect()
    };
    let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
    let all = list(String::new()).await;
    assert_eq!(listed(&all), newest_first);
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(all["jobs"][0]["kind"], "scan");
    assert_eq!(all["jobs"][0]["device_id"], Value::Null);
    assert_eq!(
        all["jobs"][0]["parameters"],
        json!({"first_address": 1, "last_address": 4})
    );
    assert_eq!(all["jobs"][1]["parameters"], json!({"kind": "set_tariff", "tariff": 3}));

    assert_eq!(listed(&list("?kind=read_now".into()).await), [ids[2], ids[1], ids[0]]);
    assert_eq!(
        listed(&list(format!("?kind=read_now&device_id={a}")).await),
        [ids[1], ids[0]]
    );
    assert_eq!(listed(&list(format!("?bus_id={bus_b}")).await), [ids[4], ids[2]]);
    assert_eq!(listed(&list(format!("?bus_id={bus_a}&kind=command")).await), [ids[3]]);
    assert_eq!(listed(&list("?state=queued".into()).await), newest_first);
    assert!(listed(&list("?state=succeeded".into()).await).is_empty());

    // Two at a time: three pages, every job once, in order.
    let mut paged = Vec::new();
    let mut query = "?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = list(query.clone()).await;
        pages += 1;
        paged.extend(listed(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!((pages, paged), (3, newest_first.clone()));
    // A page boundary that falls on the last job leaves no empty page.
    let page = list("?kind=read_now&limit=3".into()).await;
    assert_eq!(page["next_cursor"], Value::Null);

    for (query, field) in [
        ("?kind=reboot", "kind"),
        ("?state=done", "state"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?cursor=nonsense", "cursor"),
    ] {
        let (status, body) = console
            .request("GET", &format!("/api/v1/jobs{query}"), &viewer, None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{query}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{field}:")),
            "{query}: {body}"
        );
    }
    // A parameter that is not even of its type is named too, in the API's
    // error shape.
    for (query, field) in [("?device_id=abc", "device_id"), ("?bus_id=1.5", "bus_id")] {
        let (status, body) = console
            .request("GET", &format!("/api/v1/jobs{query}"), &viewer, None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{field}:")), "{query}: {body}");
    }
    let (status, _) = console.request("GET", "/api/v1/jobs/424242", &viewer, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A job of another kind is not a read.
    let (status, _) = console
        .request("GET", &format!("/api/v1/reads/{}", ids[3]), &viewer, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_request_repeated_with_its_idempotency_key_queues_one_job_with_one_audit_entry() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let console = Console::new(&pool);
    let engineer = console.token(Role::Engineer).await;
    let (_, id) = console.add_device(&engineer, "a", 1, "countis-e43").await;
    let path = format!("/api/v1/devices/{id}/commands");
    let body = json!({"kind": "set_tariff", "tariff": 2});
    let (first_status, first) = console
        .request_with("POST", &path, &engineer, Some(body.clone()), Some("tariff-2-monday"))
        .await;
    let (again_status, again) = console
        .request_with("POST", &path, &engineer, Some(body.clone()), Some("tariff-2-monday"))
        .await;
    assert_eq!(
        (first_status, again_status),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
    );
    assert_eq!(first["id"], again["id"]);
    let (_, other) = console
        .request_with("POST", &path, &engineer, Some(body.clone()), Some("tariff-2-tuesday"))
        .await;
    assert_ne!(first["id"], other["id"]);
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    assert_eq!(count("SELECT count(*) FROM jobs WHERE kind = 'command'").await, 2);
    assert_eq!(
        count("SELECT count(*) FROM audit_log WHERE action = 'command_device'").await,
        2
    );
    let (status, error) = console
        .request_with("POST", &path, &engineer, Some(body), Some(&"k".repeat(201)))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Idempotency-Key:")
    );
}

/// The audit rows of `action` naming job `id`.
async fn cancel_audits(pool: &PgPool, action: &str, id: &Value) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = $1 AND (detail->>'job')::bigint = $2")
        .bind(action)
        .bind(id.as_i64().unwrap())
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_command_cancelled_while_queued_is_never_sent() {
    let db = TestDb::create().await;
    let (pool, url) = (db.pool.clone(), db.url.clone());
    let console = Console::new(&pool);
    let engineer = console.token(Role::Engineer).await;
    let operator = console.token(Role::Operator).await;
    let device = spawn_silent_writer().await;
    let (_, id) = console.add_device(&engineer, "line", device.port, "countis-e43").await;
    let (status, command) = console
        .request(
            "POST",
            &format!("/api/v1/devices/{id}/commands"),
            &engineer,
            Some(json!({"kind": "set_tariff", "tariff": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{command}");
    assert_eq!(command["state"], "queued");

    // No worker runs: the command waits, and is cancelled.
    let cancel = format!("/api/v1/commands/{}/cancel", command["id"]);
    let (status, cancelled) = console.request("POST", &cancel, &engineer, None).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["id"], command["id"]);
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(cancelled["kind"], "set_tariff");
    assert!(cancelled["finished_at"].is_string(), "{cancelled}");
    assert!(cancelled["started_at"].is_null(), "{cancelled}");
    let (_, shown) = console
        .request("GET", &format!("/api/v1/commands/{}", command["id"]), &engineer, None)
        .await;
    assert_eq!(shown, cancelled, "the cancel answers the command as GET shows it");
    assert_eq!(cancel_audits(&pool, "command.cancel", &command["id"]).await, 1);

    // Twice: the second finds it cancelled already, and writes no audit.
    let (status, refused) = console.request("POST", &cancel, &engineer, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "conflict");
    assert_eq!(
        refused["error"]["message"],
        "state: the command is cancelled; it can no longer be cancelled"
    );
    assert_eq!(cancel_audits(&pool, "command.cancel", &command["id"]).await, 1);

    // A worker starts. A read queued now is claimed after the command
    // would have been, and a command goes before any read: once the read
    // is done, the command would have reached the device.
    let (server, stop) = start_server(&pool, &url);
    let (_, read) = console
        .request("POST", &format!("/api/v1/devices/{id}/read"), &operator, None)
        .await;
    let read_done = eventually(Duration::from_secs(20), || async {
        console.job(&operator, &read["id"]).await["state"] == "succeeded"
    })
    .await;
    assert!(read_done, "{}", console.job(&operator, &read["id"]).await);
    assert_eq!(
        device.writes.load(Ordering::SeqCst),
        0,
        "the cancelled command was sent"
    );
    assert_eq!(console.job(&engineer, &command["id"]).await["state"], "cancelled");

    // The read has ended: too late to cancel it.
    let (status, refused) = console
        .request("POST", &format!("/api/v1/jobs/{}/cancel", read["id"]), &operator, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "state: the read is succeeded; it can no longer be cancelled"
    );
    stop.fire();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn a_command_claimed_or_ended_can_no_longer_be_cancelled() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let console = Console::new(&pool);
    let engineer = console.token(Role::Engineer).await;
    let (_, id) = console.add_device(&engineer, "line", 1, "countis-e43").await;
    for state in ["running", "succeeded", "failed"] {
        let (_, command) = console
            .request(
                "POST",
                &format!("/api/v1/devices/{id}/commands"),
                &engineer,
                Some(json!({"kind": "set_tariff", "tariff": 1})),
            )
            .await;
        // What a worker's claim (and then its report) leaves in the row.
        sqlx::query("UPDATE jobs SET state = $2 WHERE id = $1")
            .bind(command["id"].as_i64().unwrap())
            .bind(state)
            .execute(&pool)
            .await
            .unwrap();
        let (status, refused) = console
            .request(
                "POST",
                &format!("/api/v1/commands/{}/cancel", command["id"]),
                &engineer,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(
            refused["error"]["message"],
            format!("state: the command is {state}; it can no longer be cancelled")
        );
        let (status, _) = console
            .request(
                "POST",
                &format!("/api/v1/jobs/{}/cancel", command["id"]),
                &engineer,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(console.job(&engineer, &command["id"]).await["state"], state);
        assert_eq!(cancel_audits(&pool, "command.cancel", &command["id"]).await, 0);
    }
}

#[tokio::test]
async fn cancelling_takes_the_role_that_starts_the_job_and_an_existing_id() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let console = Console::new(&pool);
    let engineer = console.token(Role::Engineer).await;
    let operator = console.token(Role::Operator).await;
    let viewer = console.token(Role::Viewer).await;
    let (bus, id) = console.add_device(&engineer, "line", 1, "countis-e43").await;
    let (_, command) = console
        .request(
            "POST",
            &format!("/api/v1/devices/{id}/commands"),
            &engineer,
            Some(json!({"kind": "set_tariff", "tariff": 2})),
        )
        .await;
    let (_, read) = console
        .request("POST", &format!("/api/v1/devices/{id}/read"), &operator, None)
        .await;
    let (status, scan) = console
        .request(
            "POST",
            &format!("/api/v1/buses/{bus}/scan"),
            &engineer,
            Some(json!({"first_address": 1, "last_address": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{scan}");

    // A command is the engineer's to cancel, by either path.
    for token in [&viewer, &operator] {
        for path in [
            format!("/api/v1/commands/{}/cancel", command["id"]),
            format!("/api/v1/jobs/{}/cancel", command["id"]),
        ] {
            let (status, refused) = console.request("POST", &path, token, None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {refused}");
        }
    }
    // A scan too; a read is the operator's, not the viewer's.
    let (status, _) = console
        .request("POST", &format!("/api/v1/jobs/{}/cancel", scan["id"]), &operator, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = console
        .request("POST", &format!("/api/v1/jobs/{}/cancel", read["id"]), &viewer, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for job in [&command, &read, &scan] {
        assert_eq!(console.job(&engineer, &job["id"]).await["state"], "queued", "{job}");
    }
    let audits: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action LIKE '%.cancel'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(audits, 0, "a refused cancel is not audited");

    // Neither a read nor an unknown id is a command.
    for missing in [read["id"].as_i64().unwrap(), 999_999] {
        let (status, body) = console
            .request("POST", &format!("/api/v1/commands/{missing}/cancel"), &engineer, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (status, _) = console
        .request("POST", "/api/v1/jobs/999999/cancel", &engineer, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // With their roles: the operator cancels the read, the engineer the
    // scan, each as a job.
    let (status, cancelled) = console
        .request("POST", &format!("/api/v1/jobs/{}/cancel", read["id"]), &operator, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(
        (cancelled["kind"].as_str(), cancelled["state"].as_str()),
        (Some("read_now"), Some("cancelled"))
    );
    assert!(cancelled["finished_at"].is_string());
    assert_eq!(cancel_audits(&pool, "read_device.cancel", &read["id"]).await, 1);
    let (status, cancelled) = console
        .request("POST", &format!("/api/v1/jobs/{}/cancel", scan["id"]), &engineer, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(
        (cancelled["kind"].as_str(), cancelled["state"].as_str()),
        (Some("scan"), Some("cancelled"))
    );
    assert_eq!(cancel_audits(&pool, "scan_bus.cancel", &scan["id"]).await, 1);
    // The engineer cancels the command as a job too; the command is audited as one.
    let (status, cancelled) = console
        .request(
            "POST",
            &format!("/api/v1/jobs/{}/cancel", command["id"]),
            &engineer,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(cancel_audits(&pool, "command.cancel", &command["id"]).await, 1);
}

//! Per-device secrets: an engineer sets, lists and removes a device's IEC
//! 62056-21 password; it is stored sealed, sent to the meter instead of
//! the profile's, and never shown. A refused password locks the device's
//! programming-mode work until the password is set again.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use crate::support::{
    TEST_SECRET_KEY, TestApp, TestDb, WAIT, add_unpolled_device, eventually, iec_meter, serve_one_iec_tcp_device,
    spawn_app, spawn_app_with_clock,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{TimeZone, Utc};
use http_body_util::BodyExt;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::sealing::{Sealed, SecretKey, open, seal};
use ohmnibus::domain::secret::SecretName;
use ohmnibus::poll::stats::PollStats;
use ohmnibus::sim::iec62056::{IecKind, SharedMeter};
use ohmnibus::store::tokens::insert_token;
use ohmnibus::web::state::AppState;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The meter's own password: not the `00000000` of the A1000 profile, and
/// unlike anything else a page or a log prints.
const PASSWORD: &str = "Pw7x3Qz9";

/// Everything the application logs, from every test of this process (a
/// global subscriber can be installed once).
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    Arc::clone(LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buffer);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || LogSink(Arc::clone(&sink)))
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other test installs a subscriber");
        buffer
    }))
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs_text(logs: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&logs.lock().unwrap()).into_owned()
}

fn attempts(meter: &SharedMeter) -> u32 {
    meter.lock().unwrap().password_attempts
}

fn secret_path(id: i64) -> String {
    format!("/api/v1/devices/{id}/secrets/iec_password")
}

/// GET of a page or an API path as text.
async fn get_text(app: &TestApp, path: &str, token: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The device's `password_refused` events: (open, severity, message).
async fn refusals(app: &TestApp, id: i64) -> Vec<(bool, String, String)> {
    sqlx::query_as(
        "SELECT cleared_at IS NULL, severity, message FROM events \
         WHERE device_id = $1 AND code = 'password_refused' ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn stored_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM device_secrets")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn intervals(app: &TestApp, id: i64) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM load_profile_intervals WHERE device_id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn refused_at(app: &TestApp, token: &str, id: i64) -> Value {
    let (status, device) = app
        .request("GET", &format!("/api/v1/devices/{id}"), Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{device}");
    device["password_refused_at"].clone()
}

#[tokio::test]
async fn engineers_set_list_and_remove_a_password_others_are_refused() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let id = add_unpolled_device(
        &app,
        &engineer,
        "iec62056_tcp",
        json!({"name": "A1000", "profile": "a1000", "iec_address": "1"}),
    )
    .await;
    let body = json!({"value": PASSWORD});
    for role in [Role::Viewer, Role::Operator] {
        let token = app.token(role).await;
        let (status, answer) = app
            .request("PUT", &secret_path(id), Some(&token), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}: {answer}");
        let (status, answer) = app.request("DELETE", &secret_path(id), Some(&token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}: {answer}");
    }
    let (status, _) = app.request("PUT", &secret_path(id), None, Some(body.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(stored_rows(&app).await, 0);

    let (status, answer) = app
        .request("PUT", &secret_path(id), Some(&engineer), Some(body.clone()))
        .await;
    assert_eq!(
        (status, answer.clone()),
        (StatusCode::NO_CONTENT, Value::String(String::new())),
        "{answer}"
    );
    let viewer = app.token(Role::Viewer).await;
    let (status, list) = app
        .request("GET", &format!("/api/v1/devices/{id}/secrets"), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "iec_password");
    assert_eq!(list[0]["set_by"], "test-engineer");
    assert!(
        list[0]["set_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .is_ok(),
        "{list:?}"
    );
    assert_eq!(
        list[0].as_object().unwrap().len(),
        3,
        "names, who and when only: {list:?}"
    );

    // The audit log names the secret, never its value.
    let audit: Vec<(String, String, Value)> =
        sqlx::query_as("SELECT action, target, detail FROM audit_log WHERE action LIKE '%device_secret' ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        audit,
        [(
            "set_device_secret".to_owned(),
            format!("device/{id}"),
            json!({"name": "iec_password"})
        )]
    );

    let (status, _) = app.request("DELETE", &secret_path(id), Some(&engineer), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(stored_rows(&app).await, 0);
    let (status, answer) = app.request("DELETE", &secret_path(id), Some(&engineer), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (_, list) = app
        .request("GET", &format!("/api/v1/devices/{id}/secrets"), Some(&viewer), None)
        .await;
    assert_eq!(list, json!([]));
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE '%device_secret' ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(actions, ["set_device_secret", "delete_device_secret"]);
    app.stop().await;
}

#[tokio::test]
async fn a_password_p1_cannot_carry_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let id = add_unpolled_device(
        &app,
        &engineer,
        "iec62056_tcp",
        json!({"name": "A1000", "profile": "a1000", "iec_address": "1"}),
    )
    .await;
    let too_long = "A".repeat(33);
    for value in [
        "",
        too_long.as_str(),
        "pass word",
        "(1234)",
        "12/34",
        "1234!",
        "12*34",
        "passé",
    ] {
        let (status, answer) = app
            .request("PUT", &secret_path(id), Some(&engineer), Some(json!({"value": value})))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{value:?}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("value: "), "{value:?}: {message}");
    }
    for body in [
        json!({}),
        json!({"value": 12345678}),
        json!({"value": "1234", "other": 1}),
    ] {
        let (status, answer) = app.request("PUT", &secret_path(id), Some(&engineer), Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(!answer.to_string().contains("12345678"), "{answer}");
    }
    let (status, _) = app
        .request(
            "PUT",
            &format!("/api/v1/devices/{id}/secrets/password"),
            Some(&engineer),
            Some(json!({"value": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .request(
            "PUT",
            &secret_path(999_999),
            Some(&engineer),
            Some(json!({"value": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A Modbus meter has no IEC password.
    let modbus = add_unpolled_device(
        &app,
        &engineer,
        "modbus_tcp",
        json!({"name": "TH40C", "profile": "th40c", "address": 1}),
    )
    .await;
    let (status, answer) = app
        .request(
            "PUT",
            &secret_path(modbus),
            Some(&engineer),
            Some(json!({"value": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().starts_with("name: "),
        "{answer}"
    );
    // 32 characters, the longest a data-set value may be.
    let longest = "A".repeat(32);
    let (status, _) = app
        .request(
            "PUT",
            &secret_path(id),
            Some(&engineer),
            Some(json!({"value": longest})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(stored_rows(&app).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_password_is_stored_sealed_never_in_the_clear() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let id = add_unpolled_device(
        &app,
        &engineer,
        "iec62056_tcp",
        json!({"name": "A1000", "profile": "a1000", "iec_address": "1"}),
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (status, _) = app
            .request(
                "PUT",
                &secret_path(id),
                Some(&engineer),
                Some(json!({"value": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (ciphertext, nonce): (Vec<u8>, Vec<u8>) = sqlx::query_as(
            "SELECT ciphertext, nonce FROM device_secrets WHERE device_id = $1 AND name = 'iec_password'",
        )
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert!(!ciphertext.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()));
        // 8 bytes of text and the 16-byte Poly1305 tag; a 24-byte XChaCha20 nonce.
        assert_eq!((ciphertext.len(), nonce.len()), (8 + 16, 24));
        let sealed = Sealed { ciphertext, nonce };
        let key = SecretKey::from_bytes(TEST_SECRET_KEY);
        let opened = open(&key, DeviceId(id), SecretName::IecPassword, &sealed).unwrap();
        assert_eq!(opened.expose(), PASSWORD);
        seen.push(sealed);
    }
    // The same value set twice: a fresh nonce, another ciphertext.
    assert_ne!(seen[0].nonce, seen[1].nonce);
    assert_ne!(seen[0].ciphertext, seen[1].ciphertext);
    app.stop().await;
}

#[tokio::test]
async fn without_a_key_a_secret_is_refused_naming_the_setting() {
    let db = TestDb::create().await;
    let state = AppState {
        pool: db.pool.clone(),
        profiles: Arc::new(ProfileSet::builtin()),
        stats: Arc::new(PollStats::default()),
        clock: Clock::System,
        secret_key: None,
        auth: Default::default(),
    };
    let router = ohmnibus::web::router(state);
    let token = insert_token(&db.pool, "engineer", Role::Engineer).await.unwrap();
    let send = |method: &str, path: String, body: Option<Value>| {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))
            .unwrap();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
        }
    };
    let (status, bus) = send(
        "POST",
        "/api/v1/buses".to_owned(),
        Some(json!({"name": "iec", "transport": {"kind": "iec62056_tcp", "host": "127.0.0.1", "port": 1}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{bus}");
    let (status, device) = send(
        "POST",
        "/api/v1/devices".to_owned(),
        Some(json!({"bus_id": bus["id"], "name": "A1000", "profile": "a1000", "iec_address": "1"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{device}");
    let id = device["id"].as_i64().unwrap();
    let (status, answer) = send("PUT", secret_path(id), Some(json!({"value": PASSWORD}))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "not_configured");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("OHMNIBUS_SECRET_KEY"), "{message}");
    assert!(!message.contains(PASSWORD), "{message}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM device_secrets")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    // The rest of the API works without a key.
    let (status, _) = send("GET", format!("/api/v1/devices/{id}/secrets"), None).await;
    assert_eq!(status, StatusCode::OK);
}

/// POSTs the device page's password form as `token`; the answer's status.
async fn post_password_form(app: &TestApp, token: &str, id: i64, value: &str) -> StatusCode {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("value", value)
        .finish();
    let post = Request::builder()
        .method("POST")
        .uri(format!("/devices/{id}/password"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    app.router.clone().oneshot(post).await.unwrap().status()
}

#[tokio::test]
async fn the_device_page_sets_the_password_and_never_shows_it() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let id = add_unpolled_device(
        &app,
        &engineer,
        "iec62056_tcp",
        json!({"name": "A1000", "profile": "a1000", "iec_address": "1"}),
    )
    .await;
    let form = format!("action=\"/devices/{id}/password\"");
    let (_, page) = get_text(&app, &format!("/devices/{id}"), &engineer).await;
    assert!(
        page.contains("from the profile (the factory password of the meter type)"),
        "{page}"
    );
    assert!(page.contains(&form), "{page}");
    for role in [Role::Viewer, Role::Operator] {
        let token = app.token(role).await;
        let (_, page) = get_text(&app, &format!("/devices/{id}"), &token).await;
        assert!(!page.contains(&form), "{role} sees the form");
        assert_eq!(
            post_password_form(&app, &token, id, PASSWORD).await,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(stored_rows(&app).await, 0);
    assert_eq!(
        post_password_form(&app, &engineer, id, "pass word").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(stored_rows(&app).await, 0);
    assert_eq!(
        post_password_form(&app, &engineer, id, PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(stored_rows(&app).await, 1);
    let (_, page) = get_text(&app, &format!("/devices/{id}"), &engineer).await;
    assert!(page.contains("its own, set by test-engineer at"), "{page}");
    assert!(!page.contains(PASSWORD), "the page shows the password");
    app.stop().await;
}

/// End to end against the simulated A1000, whose password is not its
/// profile's: the profile's is refused once and not tried again; the
/// device's own, once set, is accepted and its load profile read; setting
/// it again, even unchanged, lifts a later lock. The password shows in no
/// answer, page or log line.
#[tokio::test]
async fn a_refused_password_is_not_retried_until_it_is_set_again() {
    let logs = captured_logs();
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
    let clock = Clock::manual(now);
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let meter = iec_meter(IecKind::A1000, 7, "12345678", now);
    meter.lock().unwrap().config.password = PASSWORD.to_owned();
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &engineer,
        &meter,
        &clock,
        json!({"name": "Locked A1000", "profile": "a1000", "iec_address": "12345678",
               "schedule": {"energy_seconds": 1}}),
    )
    .await;

    // The profile's password (00000000) is refused: one attempt, one event.
    let locked = eventually(WAIT, || async { refused_at(&app, &engineer, id).await.is_string() }).await;
    assert!(locked, "the refusal was not stored");
    assert_eq!(attempts(&meter), 1);
    let events = refusals(&app, id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (open_now, severity, message) = &events[0];
    assert!(*open_now);
    assert_eq!(severity, "critical");
    assert!(message.contains("profile a1000"), "{message}");
    // Two more load-profile turns (an on-demand read ends with one): no
    // password is sent, nothing is read.
    app.read_now(&engineer, DeviceId(id)).await;
    app.read_now(&engineer, DeviceId(id)).await;
    assert_eq!(attempts(&meter), 1);
    assert_eq!(refusals(&app, id).await.len(), 1);
    assert_eq!(intervals(&app, id).await, 0);
    let (_, page) = get_text(&app, &format!("/devices/{id}"), &engineer).await;
    assert!(page.contains("Password refused"), "{page}");

    // The device's own password: the lock lifts and the meter accepts it.
    let (status, _) = app
        .request(
            "PUT",
            &secret_path(id),
            Some(&engineer),
            Some(json!({"value": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(refused_at(&app, &engineer, id).await.is_null());
    let read = eventually(WAIT, || async { intervals(&app, id).await > 0 }).await;
    assert!(read, "the load profile was not read with the device's password");
    assert!(attempts(&meter) >= 2);
    assert!(!refusals(&app, id).await[0].0, "the event is cleared");

    // The meter's password changes behind our back: refused once, locked.
    meter.lock().unwrap().config.password = "Changed1".to_owned();
    let before = attempts(&meter);
    app.read_now(&engineer, DeviceId(id)).await;
    let locked = eventually(WAIT, || async { refused_at(&app, &engineer, id).await.is_string() }).await;
    assert!(locked);
    let after_refusal = attempts(&meter);
    assert!(after_refusal > before);
    app.read_now(&engineer, DeviceId(id)).await;
    assert_eq!(attempts(&meter), after_refusal);
    let events = refusals(&app, id).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[1].2.contains("own password"), "{events:?}");
    // Set again unchanged (the meter was put back): the lock lifts.
    meter.lock().unwrap().config.password = PASSWORD.to_owned();
    let (status, _) = app
        .request(
            "PUT",
            &secret_path(id),
            Some(&engineer),
            Some(json!({"value": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let tried = eventually(WAIT, || async { attempts(&meter) > after_refusal }).await;
    assert!(tried, "the password set again was not tried");
    app.read_now(&engineer, DeviceId(id)).await;
    assert!(refused_at(&app, &engineer, id).await.is_null());
    assert!(refusals(&app, id).await.iter().all(|(open, _, _)| !open));

    // The password shows nowhere.
    let secaud = app.token(Role::Secaud).await;
    let paths = [
        (format!("/api/v1/devices/{id}"), &engineer),
        (format!("/api/v1/devices/{id}/secrets"), &engineer),
        ("/api/v1/devices".to_owned(), &engineer),
        ("/api/v1/events".to_owned(), &engineer),
        ("/api/v1/jobs".to_owned(), &engineer),
        ("/api/v1/audit".to_owned(), &secaud),
        (format!("/devices/{id}"), &engineer),
        ("/events".to_owned(), &engineer),
        ("/audit".to_owned(), &secaud),
    ];
    for (path, token) in paths {
        let (status, text) = get_text(&app, &path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        assert!(!text.contains(PASSWORD), "{path} shows the password: {text}");
    }
    let logged = logs_text(&logs);
    assert!(
        logged.contains("Locked A1000 refused the password of profile a1000"),
        "{logged}"
    );
    assert!(!logged.contains(PASSWORD), "a log line holds the password");
    app.stop().await;
}

/// A stored password that does not open (sealed under another key: the
/// key changed) is named in the log with its device; nothing is sent to the
/// meter in its place, and polling goes on.
#[tokio::test]
async fn a_password_that_does_not_open_is_named_and_nothing_is_sent() {
    let logs = captured_logs();
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
    let clock = Clock::manual(now);
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    // The meter takes its profile's password, so reads go well until the
    // device's own is stored.
    let meter = iec_meter(IecKind::A1000, 7, "87654321", now);
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &engineer,
        &meter,
        &clock,
        json!({"name": "Rekeyed A1000", "profile": "a1000", "iec_address": "87654321",
               "schedule": {"energy_seconds": 1}}),
    )
    .await;
    let other_key = SecretKey::from_bytes([0x11; 32]);
    let secret = SecretName::IecPassword.check(PASSWORD).unwrap();
    let sealed = seal(&other_key, DeviceId(id), SecretName::IecPassword, &secret, [7; 24]);
    sqlx::query(
        "INSERT INTO device_secrets (device_id, name, ciphertext, nonce, set_by) VALUES ($1, 'iec_password', $2, $3, 'old')",
    )
    .bind(id)
    .bind(&sealed.ciphertext)
    .bind(&sealed.nonce)
    .execute(&app.pool)
    .await
    .unwrap();
    let expected = "the stored iec_password does not open with the configured OHMNIBUS_SECRET_KEY";
    let named = eventually(WAIT, || async {
        logs_text(&logs)
            .lines()
            .any(|line| line.contains("Rekeyed A1000") && line.contains(expected))
    })
    .await;
    assert!(named, "no log line names the device and the key: {}", logs_text(&logs));
    let before = attempts(&meter);
    app.read_now(&engineer, DeviceId(id)).await;
    assert_eq!(attempts(&meter), before, "a password was sent in place of the device's");
    // Not a refusal by the meter: no lock, no event; the readout goes on.
    assert!(refused_at(&app, &engineer, id).await.is_null());
    assert!(refusals(&app, id).await.is_empty());
    let (_, device) = app
        .request("GET", &format!("/api/v1/devices/{id}"), Some(&engineer), None)
        .await;
    assert_eq!(device["status"]["state"], "online", "{device}");
    app.stop().await;
}

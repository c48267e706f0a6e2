//! Every mutating endpoint against every role of IEC 62351-8: a role
//! outside the endpoint's rights gets 403 `forbidden` and nothing changes.
//! The endpoints and who may call them come from the OpenAPI document
//! (each documents its 403 as "Role is not …"), so a new endpoint is
//! checked without being listed here; the roles' rights are written out
//! here by hand, from `docs/API.md`, not taken from the code.

use axum::http::StatusCode;
use ohmnibus::domain::role::Role;
use serde_json::{Value, json};

use crate::support::spawn_app;

/// The roles that may call an endpoint whose 403 says `forbidden`.
fn allowed(method: &str, path: &str, forbidden: &str) -> Vec<Role> {
    if forbidden.starts_with("Role is not operator or engineer") {
        vec![Role::Operator, Role::Engineer]
    } else if forbidden.starts_with("Role is not engineer") {
        vec![Role::Engineer]
    } else if forbidden.starts_with("Role is not secadm") {
        vec![Role::Secadm]
    } else if forbidden.starts_with("Role may not start a job of this kind") {
        // Reads are the operator's, scans and commands the engineer's.
        vec![Role::Operator, Role::Engineer]
    } else {
        panic!("{method} {path}: its 403 does not say who may call it: {forbidden:?}")
    }
}

/// Rows of every table a mutating endpoint writes, and the audit log.
/// Events are counted by acknowledgement only: the poller may open a
/// `comm_lost` for the unreachable meter while the test runs.
async fn footprint(pool: &sqlx::PgPool) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "buses",
        "devices",
        "sites",
        "jobs",
        "command_batches",
        "api_tokens",
        "audit_log",
        "tariff_calendars",
        "tariff_calendar_versions",
        "load_profile_intervals",
        "virtual_meters",
        "device_secrets",
        "device_identities",
        "held_readings",
    ] {
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(pool)
            .await
            .unwrap_or_else(|error| panic!("{table}: {error}"));
        counts.push(count);
    }
    let acknowledged: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE acknowledged_by IS NOT NULL")
        .fetch_one(pool)
        .await
        .unwrap();
    let revoked: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL")
        .fetch_one(pool)
        .await
        .unwrap();
    counts.extend([acknowledged, revoked]);
    counts
}

#[tokio::test]
async fn every_mutating_endpoint_refuses_every_role_outside_its_rights() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    // Something of each kind at id 1 where it can be, so a refusal is not a 404.
    let transport = json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": 1});
    let bus = app.create_bus(&engineer, "line", transport).await;
    app.create_device(&engineer, bus, json!({"name": "m", "profile": "th40c", "address": 1}))
        .await;
    let mut tokens = Vec::new();
    for role in Role::ALL {
        tokens.push((role, app.token(role).await));
    }
    let document: Value = serde_json::from_str(&ohmnibus::web::api::openapi_json()).unwrap();
    let before = footprint(&app.pool).await;
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            if !matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
                continue;
            }
            let forbidden = operation["responses"]["403"]["description"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} documents no 403"));
            let may = allowed(&method, path, forbidden);
            let uri = path.replace("{id}", "1").replace("{name}", "iec_password");
            for (role, token) in tokens.iter().filter(|(role, _)| !may.contains(role)) {
                let (status, body) = app.request(&method, &uri, Some(token), Some(json!({}))).await;
                if status != StatusCode::FORBIDDEN || body["error"]["code"] != "forbidden" {
                    wrong.push(format!("{method} {uri} as {role}: {status} {body}"));
                }
                checked += 1;
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "not refused with 403 forbidden:\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        footprint(&app.pool).await,
        before,
        "a refused request changed something"
    );
    assert!(checked >= 60, "only {checked} refusals checked");
    app.stop().await;
}

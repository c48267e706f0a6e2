//! Tokens managed by the security administrator: issued, listed and revoked
//! through the API and the CLI; a revoked or expired token refused at the
//! next request; a token's last use written at most once a minute.

use axum::http::StatusCode;
use ohmnibus::domain::role::Role;
use serde_json::json;
use tokio::process::Command;

use crate::support::{TestDb, spawn_app};

const BINARY: &str = env!("CARGO_BIN_EXE_ohmnibus");

#[tokio::test]
async fn a_secadm_issues_lists_and_revokes_tokens() {
    let app = spawn_app().await;
    let secadm = app.token(Role::Secadm).await;

    let (status, created) = app
        .request(
            "POST",
            "/api/v1/tokens",
            Some(&secadm),
            Some(json!({"name": "commissioning", "role": "engineer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["user"], "commissioning");
    assert_eq!(created["role"], "engineer");
    assert!(created["expires_at"].is_null());
    let engineer = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();

    // The secadm's token made an engineer who can commission.
    let (status, body) = app
        .request(
            "POST",
            "/api/v1/sites",
            Some(&engineer),
            Some(json!({"name": "Plant", "time_zone": "Europe/Zurich"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, list) = app.request("GET", "/api/v1/tokens", Some(&secadm), None).await;
    assert_eq!(status, StatusCode::OK);
    let text = list.to_string();
    assert!(!text.contains(&engineer) && !text.contains(&secadm), "{text}");
    assert!(!text.contains("sha256") && !text.contains("\"token\""), "{text}");
    let listed = list.as_array().unwrap().iter().find(|t| t["id"] == id).unwrap();
    assert_eq!(listed["user"], "commissioning");
    assert_eq!(listed["role"], "engineer");
    assert!(listed["revoked_at"].is_null());
    assert!(!listed["last_used_at"].is_null(), "{listed}");

    let (status, _) = app
        .request("DELETE", &format!("/api/v1/tokens/{id}"), Some(&secadm), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The very next request is refused.
    let (status, body) = app.request("GET", "/api/v1/devices", Some(&engineer), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Again: no change, no second audit row.
    let (status, _) = app
        .request("DELETE", &format!("/api/v1/tokens/{id}"), Some(&secadm), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .request("DELETE", "/api/v1/tokens/999999", Some(&secadm), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");

    let (_, list) = app.request("GET", "/api/v1/tokens", Some(&secadm), None).await;
    let listed = list.as_array().unwrap().iter().find(|t| t["id"] == id).unwrap();
    assert!(!listed["revoked_at"].is_null());

    let audit: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT actor, action, target FROM audit_log WHERE action IN ('create_token', 'revoke_token') ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        audit,
        vec![
            ("test-secadm".into(), "create_token".into(), "user/commissioning".into()),
            ("test-secadm".into(), "revoke_token".into(), "user/commissioning".into()),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_name_the_field_and_other_roles_change_nothing() {
    let app = spawn_app().await;
    let secadm = app.token(Role::Secadm).await;
    for (body, field) in [
        (json!({"name": "x", "role": "admin"}), "role"),
        (json!({"name": "  ", "role": "viewer"}), "name"),
        (
            json!({"name": "x", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"name": "x", "role": "viewer", "expires_at": "tomorrow"}),
            "expires_at",
        ),
        (json!({"role": "viewer"}), "name"),
    ] {
        let (status, answer) = app
            .request("POST", "/api/v1/tokens", Some(&secadm), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_field");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }

    let issued = app.token(Role::Viewer).await;
    let id: i64 = sqlx::query_scalar("SELECT max(id) FROM api_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for role in [Role::Viewer, Role::Operator, Role::Engineer, Role::Secaud] {
        let token = app.token(role).await;
        let (status, _) = app.request("GET", "/api/v1/tokens", Some(&token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        let (status, body) = app
            .request(
                "POST",
                "/api/v1/tokens",
                Some(&token),
                Some(json!({"name": "sneaky", "role": "secadm"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        assert_eq!(body["error"]["code"], "forbidden");
        let (status, _) = app
            .request("DELETE", &format!("/api/v1/tokens/{id}"), Some(&token), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    let after: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_tokens WHERE user_id IN (SELECT id FROM users WHERE name = 'sneaky')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(after, 0);
    let revoked: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(revoked, 0);
    assert!(before > 0);
    let (status, _) = app.request("GET", "/api/v1/devices", Some(&issued), None).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refused_at_the_next_request() {
    let app = spawn_app().await;
    let secadm = app.token(Role::Secadm).await;
    let (status, created) = app
        .request(
            "POST",
            "/api/v1/tokens",
            Some(&secadm),
            Some(json!({"name": "contractor", "role": "viewer", "expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["expires_at"], "2099-01-01T00:00:00Z");
    let token = created["token"].as_str().unwrap();
    let (status, _) = app.request("GET", "/api/v1/devices", Some(token), None).await;
    assert_eq!(status, StatusCode::OK);
    // Its end comes (moved in the database rather than waited for).
    sqlx::query("UPDATE api_tokens SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(created["id"].as_i64().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, body) = app.request("GET", "/api/v1/devices", Some(token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthenticated");
    app.stop().await;
}

#[tokio::test]
async fn last_use_is_written_at_most_once_a_minute() {
    let app = spawn_app().await;
    let viewer = app.token(Role::Viewer).await;
    let last_used = || async {
        sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "SELECT last_used_at FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.name = 'test-viewer'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    assert_eq!(last_used().await, None);
    app.request("GET", "/api/v1/devices", Some(&viewer), None).await;
    let first = last_used().await.expect("written on first use");
    // Within the minute: not rewritten.
    sqlx::query("UPDATE api_tokens SET last_used_at = now() - interval '50 seconds'")
        .execute(&app.pool)
        .await
        .unwrap();
    let earlier = last_used().await.unwrap();
    assert!(earlier < first);
    app.request("GET", "/api/v1/devices", Some(&viewer), None).await;
    assert_eq!(last_used().await, Some(earlier));
    // Over a minute old: written again.
    sqlx::query("UPDATE api_tokens SET last_used_at = now() - interval '61 seconds'")
        .execute(&app.pool)
        .await
        .unwrap();
    let stale = last_used().await.unwrap();
    app.request("GET", "/api/v1/devices", Some(&viewer), None).await;
    assert!(last_used().await.unwrap() > stale);
    app.stop().await;
}

#[tokio::test]
async fn the_cli_revokes_a_token_and_issues_one_with_an_end() {
    let db = TestDb::create().await;
    let output = Command::new(BINARY)
        .args([
            "token",
            "create",
            "--role",
            "viewer",
            "--name",
            "export",
            "--expires",
            "30d",
        ])
        .env("DATABASE_URL", &db.url)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let (id, days): (i64, f64) =
        sqlx::query_as("SELECT id, extract(epoch FROM expires_at - now())::float8 / 86400 FROM api_tokens")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!((29.9..=30.0).contains(&days), "{days}");
    assert!(
        ohmnibus::store::tokens::fetch_token_owner(&db.pool, &token)
            .await
            .unwrap()
            .is_some()
    );

    let output = Command::new(BINARY)
        .args(["token", "revoke", &id.to_string()])
        .env("DATABASE_URL", &db.url)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains(&format!("token {id} revoked")));
    assert!(
        ohmnibus::store::tokens::fetch_token_owner(&db.pool, &token)
            .await
            .unwrap()
            .is_none()
    );
    let actor: String = sqlx::query_scalar("SELECT actor FROM audit_log WHERE action = 'revoke_token'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(actor, "ohmnibus token revoke");

    let unknown = Command::new(BINARY)
        .args(["token", "revoke", "424242"])
        .env("DATABASE_URL", &db.url)
        .output()
        .await
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no token 424242"));
}

//! The audit log as the security auditor reads it: every change made
//! through the API, newest first, filtered and paged; no other role sees it;
//! its rows can be neither changed nor removed.

use axum::http::StatusCode;
use ohmnibus::domain::role::Role;
use serde_json::{Value, json};

use crate::support::{TestApp, spawn_app};

/// `(actor, action, target)` of each entry, in the order listed.
fn triples(page: &Value) -> Vec<(String, String, String)> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let text = |key: &str| entry[key].as_str().unwrap().to_owned();
            (text("actor"), text("action"), text("target"))
        })
        .collect()
}

fn triple(actor: &str, action: &str, target: String) -> (String, String, String) {
    (actor.to_owned(), action.to_owned(), target)
}

async fn get(app: &TestApp, token: &str, query: &str) -> (StatusCode, Value) {
    app.request("GET", &format!("/api/v1/audit{query}"), Some(token), None)
        .await
}

#[tokio::test]
async fn the_auditor_reads_every_change_newest_first_and_nobody_else_does() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let secaud = app.token(Role::Secaud).await;

    let before_all = chrono::Utc::now();
    let (status, site) = app
        .request(
            "POST",
            "/api/v1/sites",
            Some(&engineer),
            Some(json!({"name": "Plant A", "time_zone": "UTC"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{site}");
    let site = site["id"].as_i64().unwrap();
    let bus = app
        .create_bus(
            &engineer,
            "line",
            json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": 1}),
        )
        .await;
    let between = chrono::Utc::now();
    let (status, body) = app
        .request(
            "PATCH",
            &format!("/api/v1/sites/{site}"),
            Some(&engineer),
            Some(json!({"name": "Plant B"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let actor = "test-engineer";
    let (status, page) = get(
        &app,
        &secaud,
        &format!(
            "?from={}",
            before_all.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        triples(&page),
        vec![
            triple(actor, "update_site", format!("site/{site}")),
            triple(actor, "create_bus", format!("bus/{bus}")),
            triple(actor, "create_site", format!("site/{site}")),
        ]
    );
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(page["entries"][0]["detail"]["name"], "Plant B");

    // By action, by target prefix, by time.
    let (_, page) = get(&app, &secaud, "?action=create_bus").await;
    assert_eq!(triples(&page), vec![triple(actor, "create_bus", format!("bus/{bus}"))]);
    let (_, page) = get(&app, &secaud, &format!("?target=site/{site}")).await;
    assert_eq!(triples(&page).len(), 2);
    let from = between.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (_, page) = get(&app, &secaud, &format!("?from={from}")).await;
    assert_eq!(
        triples(&page),
        vec![triple(actor, "update_site", format!("site/{site}"))]
    );
    let (_, page) = get(
        &app,
        &secaud,
        &format!(
            "?to={from}&from={}",
            before_all.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
    )
    .await;
    assert_eq!(triples(&page).len(), 2);

    // A page at a time through the cursor.
    let mut seen = Vec::new();
    let mut query = format!(
        "?limit=1&from={}",
        before_all.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    );
    loop {
        let (status, page) = get(&app, &secaud, &query).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let entries = triples(&page);
        assert_eq!(entries.len(), 1);
        seen.extend(entries);
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                query = format!(
                    "?limit=1&cursor={cursor}&from={}",
                    before_all.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                )
            }
            None => break,
        }
    }
    assert_eq!(
        seen.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
        ["update_site", "create_bus", "create_site"]
    );

    // Bad input is named.
    for (query, field) in [
        ("?limit=0", "limit"),
        ("?from=yesterday", "from"),
        ("?to=2026-13-01", "to"),
        ("?cursor=zz", "cursor"),
    ] {
        let (status, answer) = get(&app, &secaud, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_parameter", "{query}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(&format!("{field}: ")), "{message}");
    }

    // Every other role: 403, and no entries.
    for role in [Role::Viewer, Role::Operator, Role::Engineer, Role::Secadm] {
        let token = app.token(role).await;
        let (status, answer) = get(&app, &token, "").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        assert!(answer.get("entries").is_none(), "{answer}");
    }
    app.stop().await;
}

#[tokio::test]
async fn audit_rows_are_neither_changed_nor_removed() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    app.create_bus(
        &engineer,
        "line",
        json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": 1}),
    )
    .await;
    let update = sqlx::query("UPDATE audit_log SET actor = 'someone else'")
        .execute(&app.pool)
        .await;
    assert!(update.is_err(), "an update goes through");
    let delete = sqlx::query("DELETE FROM audit_log").execute(&app.pool).await;
    assert!(delete.is_err(), "a delete goes through");
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_log WHERE actor = 'test-engineer'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(count >= 1);
    app.stop().await;
}

#[tokio::test]
async fn the_audit_page_lists_changes_newest_first_for_the_auditor_only() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let secaud = app.token(Role::Secaud).await;
    for name in ["North yard", "South yard"] {
        let (status, site) = app
            .request(
                "POST",
                "/api/v1/sites",
                Some(&engineer),
                Some(json!({"name": name, "time_zone": "UTC"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{site}");
    }
    let page = |token: String, path: &'static str| {
        let app = &app;
        async move {
            let (status, body) = app.request("GET", path, Some(&token), None).await;
            (status, body.as_str().unwrap_or_default().to_owned())
        }
    };
    let (status, html) = page(secaud.clone(), "/audit?action=create_site").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let north = html.find("North yard").expect("the first site's entry");
    let south = html.find("South yard").expect("the second site's entry");
    assert!(south < north, "newest first");
    assert_eq!(html.matches("<code>create_site</code>").count(), 2, "{html}");
    assert!(!html.contains("Older entries"));

    // Every other role gets the refusal page and none of the entries.
    for role in [Role::Viewer, Role::Operator, Role::Engineer, Role::Secadm] {
        let token = app.token(role).await;
        let (status, html) = page(token, "/audit").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        assert!(!html.contains("North yard"), "{role}: {html}");
    }
    // A malformed filter is named.
    let (status, html) = page(secaud, "/audit?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("from"), "{html}");
}

//! Signing in to the pages: a server-side session whose random id is the
//! only thing the browser keeps, with idle and absolute expiry, ended by
//! signing out or by its token's revocation; and every form that changes
//! something carrying the session's CSRF token.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use ohmnibus::domain::role::Role;

use crate::support::{TestApp, add_unpolled_th40c, spawn_app};

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    fn location(&self) -> &str {
        self.headers.get("location").map_or("", |v| v.to_str().unwrap())
    }

    /// The CSRF token the page's forms carry.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a csrf field") + marker.len();
        self.body[start..start + 64].to_owned()
    }
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
    extra: &[(&str, &str)],
) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(id) = cookie {
        request = request.header("cookie", format!("ohmnibus_session={id}"));
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let request = match form {
        Some(form) => request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Signs in with `token`; the session id from the cookie set.
async fn sign_in(app: &TestApp, token: &str, extra: &[(&str, &str)]) -> (String, Answer) {
    let answer = send(
        app,
        "POST",
        "/login",
        None,
        Some(&format!("token={token}&next=%2Fjobs")),
        extra,
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let session = answer
        .cookies()
        .iter()
        .find_map(|c| {
            c.strip_prefix("ohmnibus_session=")
                .map(|rest| rest.split(';').next().unwrap().to_owned())
        })
        .expect("a session cookie");
    (session, answer)
}

fn is_sign_in(answer: &Answer) -> bool {
    answer.status.is_redirection() && answer.location().starts_with("/login")
}

#[tokio::test]
async fn signing_in_sets_a_session_cookie_that_is_not_the_token() {
    let app = spawn_app().await;
    let viewer = app.token(Role::Viewer).await;
    let (session, answer) = sign_in(&app, &viewer, &[]).await;
    assert_eq!(answer.location(), "/jobs");
    assert_ne!(session, viewer);
    assert!(!answer.cookies().iter().any(|c| c.contains(&viewer)));
    let cookie = answer
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("ohmnibus_session="))
        .unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.split("; ").any(|part| part == flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    // Earlier versions' cookie with the token in it is cleared.
    assert!(
        answer
            .cookies()
            .iter()
            .any(|c| c.starts_with("ohmnibus_token=;") && c.contains("Max-Age=0"))
    );
    // Only the id's digest is stored.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT session_sha256 FROM ui_sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 32);
    assert_ne!(stored, session.as_bytes());

    let page = send(&app, "GET", "/jobs", Some(&session), None, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("test-viewer"));
    // The session is no bearer token, and the token is no session.
    let api = send(&app, "GET", "/api/v1/devices", Some(&session), None, &[]).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    assert!(is_sign_in(&send(&app, "GET", "/jobs", Some(&viewer), None, &[]).await));

    // Behind a proxy that says the request came over HTTPS: Secure.
    let (_, answer) = sign_in(&app, &viewer, &[("x-forwarded-proto", "https")]).await;
    let cookie = answer
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("ohmnibus_session="))
        .unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    app.stop().await;
}

#[tokio::test]
async fn a_session_ends_when_idle_too_long_or_too_old() {
    let app = spawn_app().await;
    let viewer = app.token(Role::Viewer).await;
    let (session, _) = sign_in(&app, &viewer, &[]).await;
    // 29 idle minutes: still on, and the idle time starts again.
    sqlx::query("UPDATE ui_sessions SET last_seen_at = now() - interval '29 minutes'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        send(&app, "GET", "/jobs", Some(&session), None, &[]).await.status,
        StatusCode::OK
    );
    let idle: f64 = sqlx::query_scalar("SELECT extract(epoch FROM now() - last_seen_at)::float8 FROM ui_sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(idle < 60.0, "{idle}");
    // 31: over, and the stale cookie is cleared.
    sqlx::query("UPDATE ui_sessions SET last_seen_at = now() - interval '31 minutes'")
        .execute(&app.pool)
        .await
        .unwrap();
    let answer = send(&app, "GET", "/jobs", Some(&session), None, &[]).await;
    assert!(is_sign_in(&answer), "{}", answer.status);
    assert!(
        answer
            .cookies()
            .iter()
            .any(|c| c.starts_with("ohmnibus_session=;") && c.contains("Max-Age=0"))
    );

    // Used all along, but signed in 12 hours ago: over too.
    let (session, _) = sign_in(&app, &viewer, &[]).await;
    assert_eq!(
        send(&app, "GET", "/jobs", Some(&session), None, &[]).await.status,
        StatusCode::OK
    );
    sqlx::query("UPDATE ui_sessions SET created_at = now() - interval '12 hours 1 minute', last_seen_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    assert!(is_sign_in(&send(&app, "GET", "/jobs", Some(&session), None, &[]).await));
    app.stop().await;
}

#[tokio::test]
async fn signing_out_or_revoking_the_token_ends_the_session() {
    let app = spawn_app().await;
    let viewer = app.token(Role::Viewer).await;
    let (session, _) = sign_in(&app, &viewer, &[]).await;
    let page = send(&app, "GET", "/jobs", Some(&session), None, &[]).await;
    let csrf = page.csrf();
    // Signing out is a change too: without the form's token, refused.
    let refused = send(&app, "POST", "/logout", Some(&session), Some(""), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        send(&app, "GET", "/jobs", Some(&session), None, &[]).await.status,
        StatusCode::OK
    );
    let out = send(
        &app,
        "POST",
        "/logout",
        Some(&session),
        Some(&format!("csrf={csrf}")),
        &[],
    )
    .await;
    assert!(is_sign_in(&out));
    assert!(
        out.cookies()
            .iter()
            .any(|c| c.starts_with("ohmnibus_session=;") && c.contains("Max-Age=0"))
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM ui_sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert!(is_sign_in(&send(&app, "GET", "/jobs", Some(&session), None, &[]).await));

    // A revoked token's sessions end with it.
    let secadm = app.token(Role::Secadm).await;
    let (session, _) = sign_in(&app, &viewer, &[]).await;
    assert_eq!(
        send(&app, "GET", "/jobs", Some(&session), None, &[]).await.status,
        StatusCode::OK
    );
    let id: i64 = sqlx::query_scalar("SELECT token_id FROM ui_sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, _) = app
        .request("DELETE", &format!("/api/v1/tokens/{id}"), Some(&secadm), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(is_sign_in(&send(&app, "GET", "/jobs", Some(&session), None, &[]).await));
    // And it cannot start a new one.
    let answer = send(&app, "POST", "/login", None, Some(&format!("token={viewer}")), &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.contains("unknown, expired or revoked"));
    assert!(answer.cookies().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_changes_nothing() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let device = add_unpolled_th40c(&app, &engineer).await;
    let (session, _) = sign_in(&app, &engineer, &[]).await;
    let page = send(&app, "GET", &format!("/devices/{device}"), Some(&session), None, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();
    // Every form that posts carries it.
    let posts = page.body.matches("method=\"post\"").count();
    let fields = page.body.matches(&format!("name=\"csrf\" value=\"{csrf}\"")).count();
    assert!(posts >= 2 && fields == posts, "{posts} forms, {fields} tokens");

    let reads = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM jobs WHERE kind = 'read_now'")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let path = format!("/devices/{device}/read");
    for form in ["", "csrf=", "csrf=00", &format!("csrf={}", "0".repeat(64))] {
        let answer = send(&app, "POST", &path, Some(&session), Some(form), &[]).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{form:?}");
        assert!(answer.body.contains("did not carry this session"), "{}", answer.body);
        assert!(answer.body.contains("Nothing was changed"));
    }
    assert_eq!(reads().await, 0);
    // Another session's token is as wrong.
    let (other, _) = sign_in(&app, &engineer, &[]).await;
    let other_csrf = send(&app, "GET", "/jobs", Some(&other), None, &[]).await.csrf();
    assert_ne!(other_csrf, csrf);
    let answer = send(
        &app,
        "POST",
        &path,
        Some(&session),
        Some(&format!("csrf={other_csrf}")),
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(reads().await, 0);

    let answer = send(&app, "POST", &path, Some(&session), Some(&format!("csrf={csrf}")), &[]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(reads().await, 1);

    // A command form: the token is no parameter of the command.
    let answer = send(
        &app,
        "POST",
        &format!("/devices/{device}/commands"),
        Some(&session),
        Some(&format!("kind=set_clock&csrf={csrf}")),
        &[],
    )
    .await;
    assert!(!answer.body.contains("csrf="), "{}", answer.body);
    assert_eq!(
        answer.body.matches("name=\"csrf\"").count(),
        answer.body.matches("method=\"post\"").count(),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains(&format!("name=\"csrf\" value=\"{csrf}\"")),
        "{}",
        answer.body
    );
    app.stop().await;
}

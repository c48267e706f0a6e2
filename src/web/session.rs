//! The pages' sessions and their forms' CSRF tokens.
//!
//! Signing in (`web/ui/login.rs`) starts a server-side session
//! (`service::sessions`) and gives the browser only its random id, in the
//! cookie [`SESSION_COOKIE`]: `HttpOnly` (no script reads it),
//! `SameSite=Strict` (no other site's page sends it), `Path=/`, and
//! `Secure` when the request came over HTTPS: its URI says `https`, or a
//! proxy in front says so with `X-Forwarded-Proto: https` or
//! `Forwarded: proto=https`. Trusting those headers costs nothing: all
//! they can do is make the browser send the cookie over HTTPS only.
//!
//! [`resolve`] runs before every page: it finds the session a cookie
//! names (counted as a failed authentication when there is none, and the
//! stale cookie cleared), and refuses a request that changes something
//! (any method but GET and HEAD; signing in excepted) unless its form
//! carries the session's CSRF token in the field `csrf`: 403, and the
//! handler never runs. A request with `Authorization: Bearer` is no
//! browser's ambient credential and needs neither. A form's template
//! renders the token with [`csrf_token`], read from the request's session
//! while its page renders, so no page struct carries it; a form that
//! lacks it fails closed, refused like a forged one.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth_limit::ClientAddress;
use super::error::ApiError;
use super::security::MAX_BODY_BYTES;
use super::state::AppState;
use crate::service::Caller;
use crate::service::sessions::find_session;

/// The cookie that holds a page session's id.
pub(crate) const SESSION_COOKIE: &str = "ohmnibus_session";
/// The cookie in which earlier versions kept the token itself; cleared
/// whenever someone signs in or out.
const OLD_TOKEN_COOKIE: &str = "ohmnibus_token";
/// The form field that carries the CSRF token.
pub(crate) const CSRF_FIELD: &str = "csrf";

tokio::task_local! {
    static CSRF: String;
}

/// The signed-in session of a page request, put there by [`resolve`].
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    pub caller: Caller,
    /// The id the cookie carries, to end the session by.
    pub id: String,
}

/// The CSRF token of the session whose page is rendering: the value of
/// every form's hidden `csrf` field. Empty outside a session (a page asked
/// for with a bearer token posts without one).
pub(crate) fn csrf_token() -> String {
    CSRF.try_with(Clone::clone).unwrap_or_default()
}

/// The value of cookie `name`.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, value)| *found == name && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

/// Whether the request came over HTTPS, as far as this server can tell.
pub(crate) fn over_https(uri_scheme: Option<&str>, headers: &HeaderMap) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    uri_scheme == Some("https")
        || header("x-forwarded-proto").is_some_and(|v| v.split(',').next().map(str::trim) == Some("https"))
        || header("forwarded").is_some_and(|v| {
            v.split(',')
                .next()
                .into_iter()
                .flat_map(|first| first.split(';'))
                .any(|pair| pair.trim() == "proto=https")
        })
}

/// `Set-Cookie` values: the session cookie with `value` (`None`: cleared)
/// for `max_age` seconds, and the earlier versions' token cookie cleared.
pub(crate) fn session_cookies(value: Option<&str>, max_age: u64, secure: bool) -> [HeaderValue; 2] {
    let secure = if secure { "; Secure" } else { "" };
    let session = match value {
        Some(id) => format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    let old = format!("{OLD_TOKEN_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}");
    [session, old].map(|text| HeaderValue::from_str(&text).expect("cookie text is a header value"))
}

/// Equal, in a time that depends on the lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `csrf` field of a URL-encoded form body (the token is hex, so it
/// is never percent-encoded).
fn csrf_field(body: &[u8]) -> Option<&[u8]> {
    body.split(|byte| *byte == b'&')
        .find_map(|pair| pair.strip_prefix(CSRF_FIELD.as_bytes())?.strip_prefix(b"="))
}

fn forged() -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "This form was refused: it did not carry this session's form token (it is from an old page, \
         or it was not sent by this server's own page). Nothing was changed; reload the page and try again.",
    )
    .into_page()
}

/// Finds the page request's session and checks its form's CSRF token;
/// see the module's comment.
pub(crate) async fn resolve(
    State(state): State<AppState>,
    client: ClientAddress,
    request: Request,
    next: Next,
) -> Response {
    if request.headers().contains_key(AUTHORIZATION) {
        return next.run(request).await;
    }
    let Some(id) = cookie(request.headers(), SESSION_COOKIE) else {
        return next.run(request).await;
    };
    let limiter = &state.auth.failures;
    if let Err(seconds) = limiter.check(client, state.clock.now()) {
        return ApiError::too_many_failures(seconds).into_page();
    }
    let session = match find_session(&state.pool, state.auth.sessions, &id).await {
        Ok(session) => session,
        Err(error) => return ApiError::from(error).into_page(),
    };
    let Some(session) = session else {
        // Unknown or ended: counted, and the cookie cleared so a page left
        // open does not count again; the page then asks to sign in.
        limiter.record_failure(client, state.clock.now());
        let secure = over_https(request.uri().scheme_str(), request.headers());
        let mut response = next.run(request).await;
        let sets_session = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .any(|v| v.as_bytes().starts_with(SESSION_COOKIE.as_bytes()));
        if !sets_session {
            for value in session_cookies(None, 0, secure) {
                response.headers_mut().append(SET_COOKIE, value);
            }
        }
        return response;
    };
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    let mut request = request;
    if changes && request.uri().path() != "/login" {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the form is too large").into_page();
        };
        if !csrf_field(&bytes).is_some_and(|sent| same(sent, session.csrf.as_bytes())) {
            return forged();
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    request.extensions_mut().insert(SignedIn {
        caller: session.caller,
        id,
    });
    CSRF.scope(session.csrf, next.run(request)).await.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_field_is_found_among_the_others() {
        assert_eq!(csrf_field(b"kind=set_clock&csrf=ab12&x=1"), Some(&b"ab12"[..]));
        assert_eq!(csrf_field(b"csrf=ab12"), Some(&b"ab12"[..]));
        assert_eq!(csrf_field(b"csrfx=ab12&notcsrf=1"), None);
        assert!(same(b"ab12", b"ab12") && !same(b"ab12", b"ab13") && !same(b"ab1", b"ab12"));
    }

    #[test]
    fn https_is_the_uri_or_a_proxy_saying_so() {
        let mut headers = HeaderMap::new();
        assert!(!over_https(None, &headers));
        assert!(over_https(Some("https"), &headers));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(over_https(None, &headers));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        assert!(!over_https(None, &headers));
        headers.insert("forwarded", HeaderValue::from_static("for=192.0.2.1;proto=https"));
        assert!(over_https(None, &headers));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let [session, old] = session_cookies(Some("abc"), 43_200, true);
        assert_eq!(
            session,
            "ohmnibus_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200; Secure"
        );
        assert!(old.to_str().unwrap().starts_with("ohmnibus_token=; "));
        let [session, _] = session_cookies(None, 0, false);
        assert_eq!(
            session,
            "ohmnibus_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        );
    }
}

//! One error shape for bad input, whatever the endpoint: a path or query
//! parameter that does not parse is `400 invalid_parameter` naming it, a
//! body field of the wrong type `422 invalid_field` naming its path, both
//! in the request's terms. The endpoints are taken from the OpenAPI
//! document, so a new one is checked without being listed here.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ohmnibus::domain::role::Role;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{TestApp, spawn_app};

/// A parameter: name, location (`path`, `query`), JSON schema type.
type Parameter = (String, String, String);

/// Every operation of the OpenAPI document: method, path template, and
/// its parameters.
fn operations() -> Vec<(String, String, Vec<Parameter>)> {
    let document: Value = serde_json::from_str(&ohmnibus::web::api::openapi_json()).unwrap();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let parameters = operation["parameters"]
                .as_array()
                .map(|parameters| {
                    parameters
                        .iter()
                        .map(|p| {
                            (
                                p["name"].as_str().unwrap().to_owned(),
                                p["in"].as_str().unwrap().to_owned(),
                                p["schema"]["type"]
                                    .as_str()
                                    .or_else(|| p["schema"]["type"][0].as_str())
                                    .unwrap_or_default()
                                    .to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            operations.push((method.to_uppercase(), path.clone(), parameters));
        }
    }
    operations
}

/// `template` with each path parameter replaced: `bad` for `name`, a
/// plausible value for the others.
fn fill(template: &str, parameters: &[Parameter], bad: Option<&str>) -> String {
    let mut path = template.to_owned();
    for (name, _, kind) in parameters.iter().filter(|(_, location, _)| location == "path") {
        let value = if Some(name.as_str()) == bad {
            "abc"
        } else if kind == "integer" {
            "1"
        } else {
            "x"
        };
        path = path.replace(&format!("{{{name}}}"), value);
    }
    path
}

async fn send(app: &TestApp, method: &str, uri: &str, token: &str) -> (StatusCode, String, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    let body = if matches!(method, "POST" | "PUT" | "PATCH") {
        request = request.header("content-type", "application/json");
        Body::from("{}")
    } else {
        Body::empty()
    };
    let response = app.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, content_type, value)
}

#[tokio::test]
async fn a_path_parameter_that_is_not_a_number_is_invalid_parameter_on_every_endpoint() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let mut checked = 0;
    for (method, template, parameters) in operations() {
        for (name, _, _) in parameters
            .iter()
            .filter(|(_, location, kind)| location == "path" && kind == "integer")
        {
            let uri = fill(&template, &parameters, Some(name));
            let (status, content_type, body) = send(&app, &method, &uri, &engineer).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}: {body}");
            assert_eq!(content_type, "application/json", "{method} {uri}: {body}");
            assert_eq!(body["error"]["code"], "invalid_parameter", "{method} {uri}: {body}");
            assert_eq!(
                body["error"]["message"],
                format!("{name}: must be a number (whole), not \"abc\""),
                "{method} {uri}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 30,
        "only {checked} path parameters found in the OpenAPI document"
    );
}

#[tokio::test]
async fn a_query_number_that_is_not_one_is_invalid_parameter_on_every_endpoint() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let mut checked = Vec::new();
    for (method, template, parameters) in operations() {
        for (name, _, _) in parameters
            .iter()
            .filter(|(_, location, kind)| location == "query" && kind == "integer")
        {
            let uri = format!("{}?{name}=abc", fill(&template, &parameters, None));
            let (status, content_type, body) = send(&app, &method, &uri, &engineer).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}: {body}");
            assert_eq!(content_type, "application/json", "{method} {uri}: {body}");
            assert_eq!(body["error"]["code"], "invalid_parameter", "{method} {uri}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.starts_with(&format!("{name}: must be a number")) && message.ends_with("not \"abc\""),
                "{method} {uri}: {message}"
            );
            checked.push(uri);
        }
    }
    for wanted in ["limit", "device_id"] {
        assert!(
            checked.iter().any(|uri| uri.contains(&format!("?{wanted}=abc"))),
            "no endpoint with an integer {wanted} was checked: {checked:?}"
        );
    }
}

#[tokio::test]
async fn the_same_mistake_in_a_query_gets_the_same_code_everywhere() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    // Values that parse as their type but that the endpoint refuses.
    for (uri, name) in [
        ("/api/v1/devices/1/readings?obis=1-1:1.8.0&limit=0", "limit"),
        ("/api/v1/devices/1/readings?obis=1-1:1.8.0&from=yesterday", "from"),
        ("/api/v1/devices/1/readings?obis=nonsense", "obis"),
        ("/api/v1/devices/1/load-profile?obis=1-0:1.8.0&from=yesterday", "from"),
        ("/api/v1/jobs?state=done", "state"),
        ("/api/v1/jobs?limit=0", "limit"),
        ("/api/v1/events?since=yesterday", "since"),
        ("/api/v1/events?active=maybe", "active"),
    ] {
        let (status, _, body) = send(&app, "GET", uri, &engineer).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{uri}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{name}: ")), "{uri}: {message}");
    }
}

#[tokio::test]
async fn a_body_field_of_the_wrong_type_is_named_in_the_requests_terms() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    for (body, expected) in [
        (
            json!({"name": "b", "transport": {"kind": "modbus_tcp", "host": "h", "port": "x"}}),
            "transport.port: must be a number (whole, 0-65535), not \"x\"",
        ),
        (
            json!({"name": "b", "transport": {"kind": "modbus_tcp", "host": "h", "port": 70000}}),
            "transport.port: must be a number (whole, 0-65535), not 70000",
        ),
        (
            json!({"name": "b", "transport": {"kind": "modbus_tcp", "host": "h"}}),
            "transport.port: is required",
        ),
        (
            json!({"name": 7, "transport": {"kind": "modbus_tcp", "host": "h", "port": 502}}),
            "name: must be text, not 7",
        ),
        (json!("text"), "the body: must be an object, not \"text\""),
    ] {
        let (status, answer) = app
            .request("POST", "/api/v1/buses", Some(&engineer), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_field", "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert_eq!(message, expected, "{body}");
        for rust in ["u16", "struct ", "expected", "elements"] {
            assert!(!message.contains(rust), "{body}: {message} speaks Rust ({rust})");
        }
    }
    let buses: i64 = sqlx::query_scalar("SELECT count(*) FROM buses")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(buses, 0, "nothing refused was stored");
    // Not JSON at all: 400, saying where.
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/buses")
        .header("authorization", format!("Bearer {engineer}"))
        .header("content-type", "application/json")
        .body(Body::from("{\"name\": "))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["error"]["code"], "malformed_body");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("the body is not valid JSON: "), "{message}");
    assert!(message.contains("line 1 column"), "{message}");
}

#[tokio::test]
async fn a_page_with_a_bad_path_is_an_error_page() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let (status, content_type, body) = send(&app, "GET", "/devices/abc", &engineer).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        body.as_str()
            .unwrap()
            .contains("id: must be a number (whole), not &quot;abc&quot;")
            || body
                .as_str()
                .unwrap()
                .contains("id: must be a number (whole), not &#34;abc&#34;"),
        "{body}"
    );
}

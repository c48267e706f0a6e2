//! What `scripts/schemathesis` found answering 5xx (or dropping the
//! connection), each kept as the request it sent, which must now be
//! refused with a 4xx naming the field (docs/RELIABILITY.md,
//! "Schemathesis").

use axum::http::StatusCode;
use ohmnibus::domain::role::Role;
use serde_json::{Value, json};

use crate::support::spawn_app;

/// A valid calendar whose one special day is `easter_offset` days from
/// Easter.
fn calendar_with_easter_offset(offset: i64) -> Value {
    json!({
        "time_zone": "Europe/Rome",
        "bands": ["day", "night"],
        "day_profiles": [{"name": "d", "switches": [
            {"at": "00:00", "band": "night"}, {"at": "08:00", "band": "day"}, {"at": "20:00", "band": "night"}
        ]}],
        "week_profiles": [{"name": "w", "monday": "d", "tuesday": "d", "wednesday": "d",
            "thursday": "d", "friday": "d", "saturday": "d", "sunday": "d"}],
        "seasons": [
            {"name": "winter", "from": "10-01", "to": "03-31", "week_profile": "w"},
            {"name": "summer", "from": "04-01", "to": "09-30", "week_profile": "w"}
        ],
        "special_days": [{"name": "Good Friday", "on": {"easter_offset": offset}, "day_profile": "d"}]
    })
}

#[tokio::test]
async fn an_easter_offset_of_the_smallest_i32_is_refused_not_a_panic() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    // -2147483648 has no absolute value in an i32: the check panicked and
    // the connection dropped (POST /api/v1/tariff-calendars/{id}/versions).
    let (status, error) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars",
            Some(&engineer),
            Some(json!({"name": "x", "definition": calendar_with_easter_offset(-2_147_483_648)})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(
        error["error"]["message"],
        "definition.special_days[0].on.easter_offset: -2147483648 days from Easter; at most 200 either way"
    );
    // The bounds themselves: ±200 is taken, 201 is not.
    for (offset, taken) in [(-200, true), (200, true), (201, false), (-201, false)] {
        let (status, body) = app
            .request(
                "POST",
                "/api/v1/tariff-calendars",
                Some(&engineer),
                Some(json!({"name": format!("offset {offset}"), "definition": calendar_with_easter_offset(offset)})),
            )
            .await;
        let expected = if taken {
            StatusCode::CREATED
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!(status, expected, "{offset}: {body}");
    }
}

#[test]
fn a_command_body_with_its_kind_is_valid_under_the_openapi_document() {
    // `CommandParameters` said `additionalProperties: false` while the
    // command bodies join it with `kind` under `allOf`: no body was valid,
    // so schemathesis could not make one (a schema error on
    // POST /api/v1/devices/{id}/commands and POST /api/v1/commands/bulk).
    let document: Value = serde_json::from_str(include_str!("../../openapi/openapi.json")).unwrap();
    let schemas = &document["components"]["schemas"];
    for body in ["NewCommand", "NewBulkCommand"] {
        let parts = schemas[body]["allOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}: {}", schemas[body]));
        assert!(
            parts
                .iter()
                .any(|part| part["$ref"] == "#/components/schemas/CommandParameters"),
            "{body}"
        );
        assert!(
            parts.iter().any(|part| part["properties"]["kind"].is_object()),
            "{body}"
        );
    }
    assert_eq!(schemas["CommandParameters"]["additionalProperties"], Value::Null);
}

#[tokio::test]
async fn a_nul_character_in_a_body_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let secadm = app.token(Role::Secadm).await;
    let engineer = app.token(Role::Engineer).await;
    // POST /api/v1/tokens with a name holding U+0000: PostgreSQL's text
    // cannot hold it, the insert failed and the answer was 500.
    let (status, error) = app
        .request(
            "POST",
            "/api/v1/tokens",
            Some(&secadm),
            Some(json!({"name": "meter\u{0}reader", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["code"], "invalid_field");
    assert_eq!(
        error["error"]["message"],
        "name: holds a NUL character (\\u0000), which no text here may hold"
    );
    // Any body: a nested field is named by its path.
    let bus = json!({"name": "line", "transport": {"kind": "modbus_tcp", "host": "gate\u{0}way", "port": 502}});
    let (status, error) = app.request("POST", "/api/v1/buses", Some(&engineer), Some(bus)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("transport.host: holds a NUL"),
        "{error}"
    );
    // Nothing was stored; the same names without the NUL are taken.
    let (status, created) = app
        .request(
            "POST",
            "/api/v1/tokens",
            Some(&secadm),
            Some(json!({"name": "meter reader", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, tokens) = app.request("GET", "/api/v1/tokens", Some(&secadm), None).await;
    assert!(!tokens.to_string().contains("\\u0000"), "{tokens}");
}

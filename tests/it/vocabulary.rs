//! The vocabulary types are stored and loaded as themselves: each goes to
//! PostgreSQL in the column type it has always had and comes back equal; a
//! stored value that does not parse is an error, never a default; and a
//! time zone is refused where the API takes one.

use crate::support::{TestDb, add_bus, add_device, spawn_app};
use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use ohmnibus::device::reading::Reading;
use ohmnibus::domain::event::{EventCode, EventKind};
use ohmnibus::domain::ids::{DeviceId, SiteId};
use ohmnibus::domain::obis::ObisCode;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::secret::SecretName;
use ohmnibus::domain::severity::Severity;
use ohmnibus::domain::source::{BillingSource, IntervalSource};
use ohmnibus::domain::state::DeviceState;
use ohmnibus::domain::unit::Unit;
use ohmnibus::domain::zone::IanaZone;
use ohmnibus::store::billing_schedule::fetch_sites;
use ohmnibus::store::buses::fetch_buses;
use ohmnibus::store::devices::fetch_device;
use ohmnibus::store::events::{fetch_device_events, insert_event};
use ohmnibus::store::readings::{fetch_latest, insert_readings};
use serde_json::json;
use sqlx::{PgPool, Row};

/// Sends `value` as a parameter and reads it back as `T` from a column of
/// `sql_type`: the encoding is the column's own.
async fn round_trip<T>(pool: &PgPool, value: T, sql_type: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Encode<'static, sqlx::Postgres>,
    T: sqlx::Type<sqlx::Postgres> + Send + Unpin + 'static,
{
    let sql = format!("SELECT $1::{sql_type}");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_type_comes_back_from_postgresql_as_it_went() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let code: ObisCode = "1-1:1.8.2*101".parse().unwrap();
    assert_eq!(round_trip(&pool, code.clone(), "text").await, code);
    let letters: ObisCode = "0-0:C.50.41*21".parse().unwrap();
    assert_eq!(round_trip(&pool, letters.clone(), "text").await, letters);
    for unit in Unit::ALL {
        assert_eq!(round_trip(&pool, *unit, "text").await, *unit);
    }
    let quality = Quality::ESTIMATED.with(Quality::CLOCK_UNCERTAIN);
    assert_eq!(round_trip(&pool, quality, "integer").await, quality);
    for state in DeviceState::ALL {
        assert_eq!(round_trip(&pool, state, "text").await, state);
    }
    for severity in Severity::ALL {
        assert_eq!(round_trip(&pool, severity, "text").await, severity);
    }
    for name in SecretName::ALL {
        assert_eq!(round_trip(&pool, name, "text").await, name);
    }
    for source in IntervalSource::ALL {
        assert_eq!(round_trip(&pool, *source, "text").await, *source);
    }
    for source in BillingSource::ALL {
        assert_eq!(round_trip(&pool, *source, "text").await, *source);
    }
    let event: EventCode = "terminal_cover_open".parse().unwrap();
    assert_eq!(round_trip(&pool, event.clone(), "text").await, event);
    let zone: IanaZone = "America/New_York".parse().unwrap();
    assert_eq!(round_trip(&pool, zone, "text").await, zone);
    // Arrays, as the batch inserts bind them.
    let codes = vec![code.clone(), letters.clone()];
    assert_eq!(round_trip(&pool, codes.clone(), "text[]").await, codes);
    let qualities = vec![Quality::GOOD, Quality::SPIKE];
    assert_eq!(round_trip(&pool, qualities.clone(), "integer[]").await, qualities);
    // Stored text as the columns hold it reads back as the type.
    let stored: (ObisCode, Unit, Quality, Severity) =
        sqlx::query_as("SELECT '1-1:1.8.0'::text, 'kvarh'::text, 33::integer, 'critical'::text")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        (
            "1-1:1.8.0".parse().unwrap(),
            Unit::KVarh,
            Quality(33),
            Severity::Critical
        )
    );
}

/// The error of reading `column` of `sql` as `T`, as a row struct reads it.
async fn decode_error<T>(pool: &PgPool, sql: &'static str, column: &str) -> String
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + std::fmt::Debug,
{
    let row = sqlx::query(sql).fetch_one(pool).await.unwrap();
    match row.try_get::<T, _>(column) {
        Ok(value) => panic!("{sql} decoded as {value:?}"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn a_stored_value_that_does_not_parse_is_an_error_naming_its_column() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let errors = [
        (
            decode_error::<Unit>(&pool, "SELECT 'kwh'::text AS unit", "unit").await,
            "unit",
            "kwh",
        ),
        (
            decode_error::<ObisCode>(&pool, "SELECT '1.8.0'::text AS obis", "obis").await,
            "obis",
            "1.8.0",
        ),
        (
            decode_error::<Quality>(&pool, "SELECT 'x'::text AS quality", "quality").await,
            "quality",
            "TEXT",
        ),
        (
            decode_error::<DeviceState>(&pool, "SELECT 'asleep'::text AS state", "state").await,
            "state",
            "asleep",
        ),
        (
            decode_error::<Severity>(&pool, "SELECT 'error'::text AS severity", "severity").await,
            "severity",
            "error",
        ),
        (
            decode_error::<EventCode>(&pool, "SELECT 'Cover Open'::text AS code", "code").await,
            "code",
            "Cover Open",
        ),
        (
            decode_error::<IanaZone>(&pool, "SELECT 'Mars/Base'::text AS time_zone", "time_zone").await,
            "time_zone",
            "Mars/Base",
        ),
    ];
    for (error, column, value) in errors {
        assert!(
            error.contains(&format!("\"{column}\"")) && error.contains(value),
            "{column}: {error}"
        );
    }
}

#[tokio::test]
async fn rows_store_and_load_their_vocabulary() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let bus = add_bus(&app, &engineer, "line", "modbus_tcp", 1).await;
    let id = DeviceId(
        add_device(
            &app,
            &engineer,
            &bus,
            json!({"name": "Main", "profile": "th40c", "address": 1}),
        )
        .await,
    );
    let device = fetch_device(&app.pool, id).await.unwrap().unwrap();
    assert_eq!(device.state, DeviceState::Unknown);

    let at = Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap();
    let reading = Reading {
        obis: "1-1:1.8.0*1".parse().unwrap(),
        value: 1234.5,
        unit: Unit::KWh,
        read_at: at,
        captured_at: None,
        quality: Quality::ROLLOVER,
    };
    insert_readings(&app.pool, &[(id, reading.clone())], chrono::Utc::now())
        .await
        .unwrap();
    let latest = fetch_latest(&app.pool, id).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(
        (&latest[0].obis, latest[0].unit, latest[0].quality),
        (&reading.obis, Unit::KWh, Quality::ROLLOVER)
    );

    let cover = EventKind::Meter {
        code: "terminal_cover_open".parse().unwrap(),
        severity: Severity::Critical,
    };
    insert_event(&app.pool, id, &cover, "cover opened", at).await.unwrap();
    insert_event(&app.pool, id, &EventKind::CommLost, "silent", at)
        .await
        .unwrap();
    let events = fetch_device_events(&app.pool, id, 10).await.unwrap();
    let mut stored: Vec<_> = events.iter().map(|e| (e.code.to_string(), e.severity)).collect();
    stored.sort();
    assert_eq!(
        stored,
        [
            ("comm_lost".to_owned(), Severity::Warning),
            ("terminal_cover_open".to_owned(), Severity::Critical)
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_stored_zone_outside_the_iana_database_is_an_error_naming_its_site() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let sites = fetch_sites(&pool).await.unwrap();
    assert_eq!(sites[0].time_zone, IanaZone::UTC);
    let site: SiteId = sites[0].id;
    sqlx::query("UPDATE sites SET time_zone = 'Europe/Atlantis' WHERE id = $1")
        .bind(site)
        .execute(&pool)
        .await
        .unwrap();
    let error = fetch_sites(&pool).await.unwrap_err().to_string();
    assert!(
        error.contains(&format!("time_zone of site {site}")) && error.contains("Europe/Atlantis"),
        "{error}"
    );
    sqlx::query("INSERT INTO buses (name, site_id, transport) VALUES ('line', $1, '{\"kind\": \"modbus_tcp\", \"host\": \"127.0.0.1\", \"port\": 502}')")
        .bind(site)
        .execute(&pool)
        .await
        .unwrap();
    let error = fetch_buses(&pool).await.unwrap_err().to_string();
    assert!(error.contains(&format!("time_zone of site {site}")), "{error}");
}

#[tokio::test]
async fn a_site_zone_is_set_by_name_and_a_bad_one_refused_naming_the_field() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let path = "/api/v1/sites/1";
    let (status, site) = app
        .request(
            "PATCH",
            path,
            Some(&engineer),
            Some(json!({"billing_day": 8, "billing_hour": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{site}");

    for zone in ["Europe/Atlantis", "europe/paris", "", "+01:00"] {
        let body = json!({"time_zone": zone});
        let (status, answer) = app.request("PATCH", path, Some(&engineer), Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], "invalid_field", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("time_zone: "), "{message}");
    }
    // A refused zone changed nothing, not even with a valid schedule beside it.
    let body = json!({"billing_day": 1, "billing_hour": 0, "time_zone": "Mars/Base"});
    let (status, _) = app.request("PATCH", path, Some(&engineer), Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, list) = app.request("GET", "/api/v1/sites", Some(&engineer), None).await;
    assert_eq!(
        (&list["sites"][0]["time_zone"], &list["sites"][0]["billing_day"]),
        (&json!("UTC"), &json!(8))
    );

    // The zone alone leaves the schedule as it is.
    let (status, site) = app
        .request(
            "PATCH",
            path,
            Some(&engineer),
            Some(json!({"time_zone": "Europe/Rome"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{site}");
    assert_eq!(
        site,
        json!({"id": 1, "name": "Default", "time_zone": "Europe/Rome", "billing_day": 8, "billing_hour": 2,
            "balance_threshold_percent": 5.0, "tou_tolerance_percent": 1.0, "default_calendar_id": null,
               "clock_sync": {"enabled": false, "at": "03:00", "min_drift_s": 1}})
    );
    let audit: serde_json::Value =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'update_site' ORDER BY id DESC LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(audit, json!({"time_zone": "Europe/Rome"}));
    let sites = fetch_sites(&app.pool).await.unwrap();
    assert_eq!(sites[0].time_zone.tz(), chrono_tz::Europe::Rome);

    let (status, _) = app
        .request(
            "PATCH",
            "/api/v1/sites/999",
            Some(&engineer),
            Some(json!({"time_zone": "UTC"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

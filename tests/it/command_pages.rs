//! The command pages: a device's command forms, the confirmation that
//! shows exactly what would be written before anything is queued, the jobs
//! page with its filters, paging and cancel button, and a command's own
//! page that tells the technician on site what to do.

use crate::support::{TestApp, spawn_app};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ohmnibus::domain::ids::BusId;
use ohmnibus::domain::role::Role;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A bus where nothing listens (port 1): every command sent on it fails,
/// but nothing in these tests needs it sent.
async fn silent_bus(app: &TestApp, engineer: &str) -> BusId {
    let transport = json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": 1});
    app.create_bus(engineer, "line", transport).await
}

async fn add_device(app: &TestApp, engineer: &str, bus: BusId, name: &str, profile: &str, address: u8) -> i64 {
    let body = json!({"name": name, "profile": profile, "address": address,
                      "schedule": {"realtime_seconds": 3600, "energy_seconds": 3600}});
    app.create_device(engineer, bus, body).await.0
}

/// A page's HTML.
async fn page(app: &TestApp, token: &str, path: &str) -> (StatusCode, String) {
    let (status, body) = app.request("GET", path, Some(token), None).await;
    (
        status,
        body.as_str().map(str::to_owned).unwrap_or_else(|| body.to_string()),
    )
}

/// Posts a form as a browser does; answers the status, the page and where it redirects.
async fn post_form(app: &TestApp, token: &str, path: &str, form: &str) -> (StatusCode, String, String) {
    let request = Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned(), location)
}

async fn commands(app: &TestApp) -> Vec<Value> {
    sqlx::query_scalar("SELECT parameters FROM jobs WHERE kind = 'command' ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// A command job put straight in the table, in the state a test needs.
async fn insert_command(app: &TestApp, bus: BusId, device: i64, state: &str, progress: Value) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO jobs (kind, bus_id, device_id, state, parameters, progress, requested_by, started_at) \
         VALUES ('command', $1, $2, $3, $4, $5, 'test-engineer', now()) RETURNING id",
    )
    .bind(bus.0)
    .bind(device)
    .bind(state)
    .bind(json!({"kind": "set_tariff", "tariff": 3}))
    .bind(progress)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_command_is_confirmed_from_its_exact_frame_and_only_then_queued() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let bus = silent_bus(&app, &engineer).await;
    let id = add_device(&app, &engineer, bus, "Main board", "countis-e43", 5).await;
    let action = format!("action=\"/devices/{id}/commands\"");

    // One form per kind, each input bounded as the E43/E44 profile says:
    // tariff 1-4, CT secondary 1 or 5 A.
    let (_, device) = page(&app, &engineer, &format!("/devices/{id}")).await;
    assert!(device.contains(&action), "{device}");
    assert!(
        device.contains("name=\"tariff\" value=\"\" min=\"1\" max=\"4\""),
        "{device}"
    );
    assert!(
        device.contains(
            "<select name=\"secondary_a\"><option value=\"1\">1</option><option value=\"5\">5</option></select>"
        ),
        "{device}"
    );
    assert!(
        device.contains("to every device on the bus (broadcast)"),
        "the tariff may be broadcast"
    );

    // Unit 5, FC6, register 0x9E21, value 2: 05 06 9E 21 00 02; the Modbus
    // CRC-16 (polynomial 0xA001, initial 0xFFFF) of those six bytes,
    // worked bit by bit, is 0x6D76, sent low byte first: 76 6D.
    let path = format!("/devices/{id}/commands");
    let (status, confirm, _) = post_form(&app, &engineer, &path, "kind=set_tariff&tariff=2").await;
    assert_eq!(status, StatusCode::OK, "{confirm}");
    assert!(confirm.contains("<code>05069E210002766D</code>"), "{confirm}");
    assert!(confirm.contains("Switch the tariff in force to tariff 2"), "{confirm}");
    assert!(confirm.contains("0x9E21 (40481)"), "{confirm}");
    assert!(confirm.contains("2 (0x0002)"), "{confirm}");
    assert!(confirm.contains("this device only (unit 5)"), "{confirm}");
    assert!(
        confirm.contains("<input type=\"hidden\" name=\"tariff\" value=\"2\">"),
        "{confirm}"
    );
    assert!(
        confirm.contains("<input type=\"hidden\" name=\"confirm\" value=\"1\">"),
        "{confirm}"
    );
    assert!(
        commands(&app).await.is_empty(),
        "nothing is queued before the confirmation"
    );

    // Broadcast: unit 0, 00 06 9E 21 00 02 and its own CRC, 0x3876
    // (worked the same way), low byte first.
    let (_, broadcast, _) = post_form(&app, &engineer, &path, "kind=set_tariff&tariff=2&broadcast=1").await;
    assert!(broadcast.contains("<code>00069E2100027638</code>"), "{broadcast}");
    assert!(broadcast.contains("every device on the bus"), "{broadcast}");

    // Out of the manual's range: refused, the field named, its form again.
    let (status, refused, _) = post_form(&app, &engineer, &path, "kind=set_tariff&tariff=5").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused.contains("tariff: countis-e43 takes 1-4, not 5"), "{refused}");
    assert!(
        refused.contains("name=\"tariff\" value=\"5\""),
        "what was typed is kept: {refused}"
    );
    assert!(commands(&app).await.is_empty());

    // Confirmed: exactly one command, as asked, and its page next.
    let (status, _, location) = post_form(&app, &engineer, &path, "kind=set_tariff&tariff=2&confirm=1").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(commands(&app).await, vec![json!({"kind": "set_tariff", "tariff": 2})]);
    let job: i64 = sqlx::query_scalar("SELECT id FROM jobs WHERE kind = 'command'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(location, format!("/commands/{job}"));
    let (_, device) = page(&app, &engineer, &format!("/devices/{id}")).await;
    assert!(
        device.contains(&format!("<a href=\"/commands/{job}\">Its page</a>")),
        "{device}"
    );

    // A viewer and an operator see no form, and posting one is forbidden.
    for role in [Role::Viewer, Role::Operator] {
        let token = app.token(role).await;
        let (_, device) = page(&app, &token, &format!("/devices/{id}")).await;
        assert!(!device.contains(&action), "{role}");
        assert!(device.contains("http-equiv=\"refresh\""), "{role}");
        for form in [
            "kind=set_tariff&tariff=2",
            "kind=set_tariff&tariff=2&confirm=1",
            "tariff=two",
        ] {
            let (status, _, _) = post_form(&app, &token, &path, form).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role}: {form}");
        }
    }
    assert_eq!(commands(&app).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_jobs_page_lists_filters_pages_and_cancels() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    let bus = silent_bus(&app, &engineer).await;
    let meter = add_device(&app, &engineer, bus, "Main board", "countis-e43", 5).await;
    let pump = add_device(&app, &engineer, bus, "Pump", "countis-e43", 6).await;
    // 51 finished reads of the pump, then a command awaiting the meter's window.
    sqlx::query(
        "INSERT INTO jobs (kind, bus_id, device_id, state, result, requested_by, finished_at) \
         SELECT 'read_now', $1, $2, 'succeeded', jsonb_build_object('readings', n), 'test-operator', now() \
         FROM generate_series(1, 51) AS n",
    )
    .bind(bus.0)
    .bind(pump)
    .execute(&app.pool)
    .await
    .unwrap();
    let awaiting = insert_command(&app, bus, meter, "awaiting_field_programming", json!({})).await;
    let cancel = format!("action=\"/jobs/{awaiting}/cancel\"");

    let (status, all) = page(&app, &viewer, "/jobs").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert!(
        all.contains(&format!("<a href=\"/commands/{awaiting}\">{awaiting}</a>")),
        "{all}"
    );
    assert!(all.contains("set_tariff tariff=3"), "{all}");
    assert!(all.contains("job-awaiting_field_programming"), "{all}");
    assert!(all.contains("51 values"), "the newest read is on the first page: {all}");
    assert!(
        all.contains("http-equiv=\"refresh\""),
        "a pending job refreshes the page"
    );
    assert!(!all.contains(&cancel), "a viewer has no cancel button");
    // 52 jobs, 50 a page: the oldest two reads are on the next page.
    assert!(!all.contains(">1 values<") && !all.contains(">2 values<"), "{all}");
    let next = all
        .split("<a href=\"")
        .find_map(|link| {
            link.split_once("\">Older jobs</a>")
                .map(|(href, _)| href.replace("&amp;", "&"))
        })
        .expect("a link to the older jobs");
    let (_, older) = page(&app, &viewer, &next).await;
    assert!(older.contains(">1 values<") && older.contains(">2 values<"), "{older}");
    assert!(!older.contains("Older jobs"), "the last page");

    let (_, reads) = page(&app, &viewer, &format!("/jobs?kind=read_now&device_id={pump}")).await;
    assert!(!reads.contains("set_tariff"), "{reads}");
    assert!(reads.contains("51 values"), "{reads}");
    let (_, meter_jobs) = page(&app, &viewer, &format!("/jobs?device_id={meter}&bus_id={}", bus.0)).await;
    assert!(
        meter_jobs.contains("set_tariff") && !meter_jobs.contains("values<"),
        "{meter_jobs}"
    );
    let (_, waiting) = page(&app, &viewer, "/jobs?state=awaiting_field_programming").await;
    assert!(
        waiting.contains("set_tariff") && !waiting.contains("51 values"),
        "{waiting}"
    );
    let (status, bad) = page(&app, &viewer, "/jobs?state=sleeping").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(bad.contains("state: &#34;sleeping&#34; is not one of"), "{bad}");

    // The engineer cancels it; a viewer may not.
    let (_, as_engineer) = page(&app, &engineer, "/jobs").await;
    assert!(as_engineer.contains(&cancel), "{as_engineer}");
    let path = format!("/jobs/{awaiting}/cancel");
    assert_eq!(post_form(&app, &viewer, &path, "").await.0, StatusCode::FORBIDDEN);
    // Back to the jobs page, never to another host.
    let (status, _, location) = post_form(&app, &engineer, &path, "back=%2F%2Fevil.example").await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/jobs"));
    let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
        .bind(awaiting)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "cancelled");
    let (_, after) = page(&app, &engineer, "/jobs").await;
    assert!(
        !after.contains(&cancel) && !after.contains("http-equiv=\"refresh\""),
        "{after}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_command_awaiting_field_programming_tells_the_technician_what_to_do() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    let bus = silent_bus(&app, &engineer).await;
    let meter = add_device(&app, &engineer, bus, "Main board", "countis-e43", 5).await;
    let th40c = add_device(&app, &engineer, bus, "Feeder 2", "th40c", 7).await;
    let site: String =
        sqlx::query_scalar("SELECT s.name FROM sites s JOIN devices d ON d.site_id = s.id WHERE d.id = $1")
            .bind(meter)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let instructions = "Open the terminal cover and hold the reset button until PRG shows.";
    let progress = json!({"instructions": instructions, "deadline": "2030-01-02T03:04:05Z"});
    let job = insert_command(&app, bus, meter, "awaiting_field_programming", progress).await;

    let (status, shown) = page(&app, &viewer, &format!("/commands/{job}")).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert!(shown.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
    assert!(
        shown.contains("<meta http-equiv=\"refresh\""),
        "it refreshes while awaited"
    );
    assert!(
        shown.contains(&format!("<p class=\"instructions\">{instructions}</p>")),
        "{shown}"
    );
    assert!(shown.contains("Switch the tariff in force to tariff 3"), "{shown}");
    for fact in [
        "Main board",
        site.as_str(),
        "line",
        "<dd>5</dd>",
        "2030-01-02 03:04:05 UTC",
    ] {
        assert!(shown.contains(fact), "{fact}: {shown}");
    }
    assert!(!shown.contains("Cancel this command"), "a viewer cannot cancel");
    let (_, as_engineer) = page(&app, &engineer, &format!("/commands/{job}")).await;
    assert!(as_engineer.contains("Cancel this command"));
    let back = format!("back=%2Fcommands%2F{job}");
    let (status, _, location) = post_form(&app, &engineer, &format!("/jobs/{job}/cancel"), &back).await;
    assert_eq!((status, location), (StatusCode::SEE_OTHER, format!("/commands/{job}")));
    let (_, cancelled) = page(&app, &viewer, &format!("/commands/{job}")).await;
    assert!(
        cancelled.contains("job-cancelled") && !cancelled.contains("http-equiv=\"refresh\""),
        "{cancelled}"
    );

    // Without instructions of its own: the TH40C manual's steps (§3.1:
    // billing reset button held 8-9 s, PRG, 10 minutes).
    let bare = insert_command(&app, bus, th40c, "awaiting_field_programming", json!({})).await;
    let (_, steps) = page(&app, &viewer, &format!("/commands/{bare}")).await;
    assert!(steps.contains("until the display shows only PRG"), "{steps}");
    assert!(steps.contains("after 10 minutes"), "{steps}");
    assert!(steps.contains("TH40C manual"), "{steps}");

    // Once it ends, the outcome, and no more refreshing.
    sqlx::query(
        "UPDATE jobs SET state = 'failed', error_code = 'field_programming_expired', \
         error_message = 'the programming window did not open in time', finished_at = now() WHERE id = $1",
    )
    .bind(bare)
    .execute(&app.pool)
    .await
    .unwrap();
    let (_, ended) = page(&app, &viewer, &format!("/commands/{bare}")).await;
    assert!(
        ended.contains("field_programming_expired: the programming window did not open in time"),
        "{ended}"
    );
    assert!(!ended.contains("http-equiv=\"refresh\""), "{ended}");
    assert_eq!(page(&app, &viewer, "/commands/99999").await.0, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn a_pulse_input_is_set_from_its_own_inputs_and_shown_frame_by_frame() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let bus = silent_bus(&app, &engineer).await;
    let id = add_device(&app, &engineer, bus, "Pulses", "pulse-concentrator", 9).await;
    let (_, device) = page(&app, &engineer, &format!("/devices/{id}")).await;
    // A checkbox per input (range = [1, 12]), selects for the unit and the
    // pulse weight, numbers bounded by the concentrator's ranges.
    for input in [
        "<input type=\"checkbox\" name=\"channels\" value=\"12\">",
        "<option value=\"Nm3\">Nm3</option>",
        "<option value=\"0.001\">0.001</option>",
        "name=\"ct_ratio\" value=\"\" min=\"1\" max=\"9999\"",
        "name=\"vt_ratio\" value=\"\" min=\"1\" max=\"3000\" step=\"0.1\"",
        "name=\"off_time_ms\" value=\"\" min=\"5\" max=\"300\"",
    ] {
        assert!(device.contains(input), "{input}: {device}");
    }
    assert!(!device.contains("<input type=\"checkbox\" name=\"channels\" value=\"13\">"));

    // Input 2's settings are at 0x0102 + 7 = 0x0109: unit kWh (code 1),
    // 0.1 per pulse (code 2), CT 100, VT 1.5 (15 in tenths), OFF 50 ms.
    // FC16 to unit 9: 09 10 0109 0005 0A, the five words, and the CRC of
    // those 17 bytes worked bit by bit (polynomial 0xA001): 0x7DA0, low byte first.
    let form = "kind=configure_channel&channel=2&unit=kWh&pulse_weight=0.1&ct_ratio=100&vt_ratio=1.5&off_time_ms=50";
    let (status, confirm, _) = post_form(&app, &engineer, &format!("/devices/{id}/commands"), form).await;
    assert_eq!(status, StatusCode::OK, "{confirm}");
    assert!(
        confirm.contains("<code>0910010900050A000100020064000F0032A07D</code>"),
        "{confirm}"
    );
    assert!(confirm.contains("<code>0x0109 (265)</code>"), "{confirm}");
    assert!(
        confirm.contains("Set pulse input 2: counts kWh, 0.1 per pulse, CT ratio 100, VT ratio 1.5, OFF time 50 ms"),
        "{confirm}"
    );
    assert!(commands(&app).await.is_empty());
    app.stop().await;
}

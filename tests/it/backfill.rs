//! The first backfill of an IEC 62056-21 meter's load profile, over TCP
//! against the simulated A1000: newest chunk first, the span it has not
//! reached shown as pending (not missing), resumed after the meter fell
//! silent, past a hole in the meter's profile (answers without records
//! reach back twice as far each time), and complete at the depth limit or
//! at an `(ERROR)` for an older range, after which nothing is pending and
//! the profile is read forward as before.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::protocol::iec62056::ProfileRequest;
use ohmnibus::sim::iec62056::fault::IecFault;
use ohmnibus::sim::iec62056::history::Quantity;
use ohmnibus::sim::iec62056::{IecKind, Received, SharedMeter};
use serde_json::{Value, json};

use crate::support::{
    SILENT_METER_TIMEOUT, TestApp, WAIT, add_bus, add_device, eventually, eventually_some, iec_meter, quick_iec_line,
    read_now, serve_iec_tcp, serve_one_iec_tcp_device, spawn_app_deriving_on_demand, spawn_app_with,
};

const QUARTER: TimeDelta = TimeDelta::minutes(15);

/// The stored `1-1:1.29.0` (+A per interval, kWh) of the device, by start.
async fn stored_import(app: &TestApp, id: i64) -> BTreeMap<DateTime<Utc>, f64> {
    let rows: Vec<(DateTime<Utc>, f64)> = sqlx::query_as(
        "SELECT interval_start, value FROM load_profile_intervals \
         WHERE device_id = $1 AND obis = '1-1:1.29.0' ORDER BY interval_start",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter().collect()
}

/// What the meter recorded for the intervals starting in `[from, to)`:
/// every quarter hour, its +A in kWh, from the simulator's history.
fn recorded_import(
    meter: &SharedMeter,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> BTreeMap<DateTime<Utc>, f64> {
    let mut meter = meter.lock().unwrap();
    let history = meter.history();
    let mut expected = BTreeMap::new();
    let mut start = from;
    while start < to {
        let interval = history
            .intervals(start + QUARTER, start + QUARTER, now)
            .into_iter()
            .find(|interval| interval.start == start)
            .unwrap_or_else(|| panic!("the simulator has the interval at {start}"));
        expected.insert(start, interval.get(Quantity::ImportActive) as f64 / 1000.0);
        start += QUARTER;
    }
    expected
}

fn assert_same(got: &BTreeMap<DateTime<Utc>, f64>, want: &BTreeMap<DateTime<Utc>, f64>) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "stored interval starts"
    );
    for (start, value) in got {
        assert!(
            (value - want[start]).abs() < 1e-9,
            "{start}: {value} stored, {} recorded",
            want[start]
        );
    }
}

/// The device's data quality: its backfill and its months' counts summed.
async fn quality(app: &TestApp, token: &str, id: i64) -> (Value, [u64; 3]) {
    let (status, body) = app
        .request("GET", &format!("/api/v1/devices/{id}/data-quality"), Some(token), None)
        .await;
    assert_eq!(status.as_u16(), 200, "{body}");
    let sum = |field: &str| {
        body["months"]
            .as_array()
            .unwrap()
            .iter()
            .map(|month| month[field].as_u64().unwrap())
            .sum::<u64>()
    };
    let sums = [sum("expected"), sum("missing"), sum("pending")];
    (body["backfill"].clone(), sums)
}

/// The data behind the device's statement over `[from, to)`: actual,
/// missing and pending intervals.
async fn statement_quality(
    app: &TestApp,
    token: &str,
    id: i64,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    calendar: i64,
) -> [u64; 3] {
    let path = format!(
        "/api/v1/devices/{id}/statement?from={}&to={}&calendar_id={calendar}",
        stamp(from),
        stamp(to)
    );
    let (status, body) = app.request("GET", &path, Some(token), None).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    let count = |field: &str| body["quality"][field].as_u64().unwrap();
    [count("actual"), count("missing"), count("pending")]
}

/// A test's start: now, to the quarter hour, on a manual clock; the app
/// on that clock (a silent meter's timeout short); an engineer's token.
async fn start() -> (DateTime<Utc>, Clock, TestApp, String) {
    let at = Utc::now().duration_trunc(QUARTER).unwrap();
    let clock = Clock::manual(at);
    let app = spawn_app_with(SILENT_METER_TIMEOUT, clock.clone()).await;
    let token = app.token(Role::Engineer).await;
    (at, clock, app, token)
}

/// The requests began with `expected` (days back, as [`requested_days`]
/// gives them), and whatever followed was read forward, to the present.
fn assert_older_then_forward(requests: &[(Option<i64>, Option<i64>)], expected: &[(Option<i64>, Option<i64>)]) {
    assert_eq!(requests[..expected.len()], *expected, "{requests:?}");
    assert!(
        requests[expected.len()..].iter().all(|(_, to)| to.is_none()),
        "{requests:?}"
    );
}

/// A tariff calendar from the A1000's four-rate preset, for statements.
async fn a1000_calendar(app: &TestApp, token: &str) -> i64 {
    let (status, calendar) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars",
            Some(token),
            Some(json!({"preset": "a1000-4-rate"})),
        )
        .await;
    assert_eq!(status.as_u16(), 201, "{calendar}");
    calendar["id"].as_i64().unwrap()
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn a_first_backfill_goes_newest_first_is_pending_until_the_meters_oldest_data_and_resumes() {
    // One clock for the server and the meter, at a quarter hour: it stays
    // there (but for the last step), so every bound below is exact.
    let (at, clock, app, token) = start().await;
    let calendar = a1000_calendar(&app, &token).await;
    let ten_days = (at - TimeDelta::days(10), at);
    // An A1000 whose ring holds 5 days of load profile; it answers one
    // load-profile request, then falls silent, as a meter lost mid-backfill.
    let meter = iec_meter(IecKind::A1000, 23, "12345678", at);
    {
        let mut meter = meter.lock().unwrap();
        meter.config.profile_days = Some(5);
        meter.profile_answers_left = Some(1);
    }
    // The shipped A1000 profile: 15-minute intervals, two days a request,
    // 40 days deep.
    let (chunk, depth) = (TimeDelta::days(2), TimeDelta::days(40));
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &token,
        &meter,
        &clock,
        json!({"name": "A1000", "profile": "a1000", "iec_address": "12345678", "schedule": {"energy_seconds": 1}}),
    )
    .await;

    // The first request is for the newest chunk, up to the present: the
    // meter sends the intervals ending in [at - 2 days, at].
    let backfill = eventually_some(WAIT, || async {
        let (backfill, _) = quality(&app, &token, id).await;
        (!backfill.is_null()).then_some(backfill)
    })
    .await
    .expect("the backfill started");
    assert_eq!(backfill["state"], "running", "{backfill}");
    assert_eq!(backfill["started_at"], stamp(at));
    assert_eq!(backfill["depth_limit"], stamp(at - depth));
    assert_eq!(backfill["oldest_reached"], stamp(at - chunk));
    assert_eq!(backfill["completed_at"], Value::Null);
    let newest_chunk = recorded_import(&meter, at - chunk - QUARTER, at, at);
    assert_eq!(newest_chunk.len(), 2 * 96 + 1);
    // The meter is silent now: the next chunk fails, and is retried.
    let failing = eventually(WAIT, || async {
        let (_, device) = app
            .request("GET", &format!("/api/v1/devices/{id}"), Some(&token), None)
            .await;
        device["status"]["consecutive_failures"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    assert!(failing, "the silent meter was not noticed");
    // Only the newest chunk is stored, as the meter recorded it.
    assert_same(&stored_import(&app, id).await, &newest_chunk);
    // What the backfill has not reached, from the depth limit up to the
    // first stored interval, is pending; nothing is missing.
    let (backfill, [expected, missing, pending]) = quality(&app, &token, id).await;
    assert_eq!(backfill["state"], "running");
    assert_eq!(
        backfill["oldest_reached"],
        stamp(at - chunk),
        "progress kept while the meter is silent"
    );
    assert_eq!(expected, 2 * 96 + 1);
    assert_eq!(missing, 0);
    assert_eq!(pending, (depth - chunk - QUARTER).num_minutes() as u64 / 15);
    let (_, page) = app.request("GET", &format!("/devices/{id}"), Some(&token), None).await;
    assert!(page.as_str().unwrap_or_default().contains("Backfill running"), "{page}");

    // The meter answers again: the backfill resumes at the chunk before the
    // oldest it reached, and goes on past the ring's 5 days (from
    // [at - 8 days, at - 6 days] on nothing is recorded) to the depth limit.
    {
        let mut meter = meter.lock().unwrap();
        meter.profile_answers_left = None;
        meter.fault = None;
    }
    let backfill = eventually_some(WAIT, || async {
        let (backfill, _) = quality(&app, &token, id).await;
        (backfill["state"] == "complete").then_some(backfill)
    })
    .await
    .expect("the backfill completed");
    assert_eq!(backfill["oldest_reached"], stamp(at - depth));
    assert_eq!(backfill["completed_at"], stamp(at));
    // Every interval the meter keeps, oldest starting 5 days back.
    let kept = recorded_import(&meter, at - TimeDelta::days(5), at, at);
    assert_eq!(kept.len(), 5 * 96);
    assert_same(&stored_import(&app, id).await, &kept);
    // Nothing is pending, nor missing: before the meter's oldest interval
    // nothing is expected.
    let (_, [expected, missing, pending]) = quality(&app, &token, id).await;
    assert_eq!((expected, missing, pending), (5 * 96, 0, 0));
    assert_eq!(
        statement_quality(&app, &token, id, ten_days, calendar).await,
        [5 * 96, 0, 0]
    );

    // An hour later the profile is read forward from the newest interval.
    clock.advance(TimeDelta::hours(1));
    read_now(&app, &token, id).await;
    let stored = stored_import(&app, id).await;
    let last_hour = recorded_import(&meter, at, at + TimeDelta::hours(1), at + TimeDelta::hours(1));
    assert_eq!(stored.len(), 5 * 96 + 4);
    for (start, value) in &last_hour {
        assert!((stored[start] - value).abs() < 1e-9, "{start}");
    }
    let (backfill, [expected, missing, pending]) = quality(&app, &token, id).await;
    assert_eq!(backfill["state"], "complete");
    assert_eq!((expected, missing, pending), (5 * 96 + 4, 0, 0));
    app.stop().await;
}

/// The load-profile requests a line received, in order: each one's
/// `P.01(from;to)` as the meter parsed it.
fn profile_requests(received: &Received) -> Vec<ProfileRequest> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter_map(|bytes| {
            let text = String::from_utf8_lossy(bytes);
            let start = text.find("P.01(")?;
            let end = start + text[start..].find(')')? + 1;
            ProfileRequest::parse(&text[start..end]).ok()
        })
        .collect()
}

/// A backfill stored as running (a server stopped in the middle of it)
/// resumes at the chunk before the oldest it reached: the newest chunk is
/// not asked for first again.
#[tokio::test]
async fn a_stored_backfill_resumes_at_the_oldest_chunk_it_reached() {
    let (at, clock, app, token) = start().await;
    let meter = iec_meter(IecKind::A1000, 29, "12345678", at);
    {
        let mut meter = meter.lock().unwrap();
        meter.config.profile_days = Some(5);
        // Silent until the stored progress is in place.
        meter.fault = Some(IecFault::Silent);
    }
    let mut line = quick_iec_line(vec![Arc::clone(&meter)], clock.clone());
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    line.received = Some(received.clone());
    let (port, _stop) = serve_iec_tcp(line).await;
    let bus = add_bus(&app, &token, "iec", "iec62056_tcp", port).await;
    let id = add_device(
        &app,
        &token,
        &bus,
        json!({"name": "A1000", "profile": "a1000", "iec_address": "12345678", "schedule": {"energy_seconds": 1}}),
    )
    .await;
    let path = format!("/api/v1/devices/{id}");
    let (status, body) = app
        .request("PATCH", &path, Some(&token), Some(json!({"enabled": false})))
        .await;
    assert_eq!(status.as_u16(), 200, "{body}");
    // What an earlier run stored: the newest two days were asked for.
    let chunk = TimeDelta::days(2);
    sqlx::query(
        "INSERT INTO load_profile_backfills (device_id, started_at, depth_limit, oldest_reached)          VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(at)
    .bind(at - TimeDelta::days(40))
    .bind(at - chunk)
    .execute(&app.pool)
    .await
    .unwrap();
    meter.lock().unwrap().fault = None;
    received.lock().unwrap().clear();
    let (status, body) = app
        .request("PATCH", &path, Some(&token), Some(json!({"enabled": true})))
        .await;
    assert_eq!(status.as_u16(), 200, "{body}");

    let backfill = eventually_some(WAIT, || async {
        let (backfill, _) = quality(&app, &token, id).await;
        (backfill["state"] == "complete").then_some(backfill)
    })
    .await
    .expect("the backfill completed");
    assert_eq!(backfill["oldest_reached"], stamp(at - TimeDelta::days(40)));
    // The first request was for the chunk before the stored progress (the
    // site's zone is UTC: the bounds are its wall clock).
    let requests = profile_requests(&received);
    let first = requests.first().expect("a load-profile request");
    let bound = |at: DateTime<Utc>| Some(at.naive_utc());
    assert_eq!(
        (first.from.map(|t| t.time), first.to.map(|t| t.time)),
        (bound(at - chunk * 2), bound(at - chunk))
    );
    // Then older chunks and the present in turn, until everything the
    // meter keeps is stored.
    let kept = recorded_import(&meter, at - TimeDelta::days(5), at, at);
    let complete = eventually(WAIT, || async { stored_import(&app, id).await.len() == kept.len() }).await;
    assert!(complete, "{} intervals stored", stored_import(&app, id).await.len());
    assert_same(&stored_import(&app, id).await, &kept);
    app.stop().await;
}

/// A meter that answers `(ERROR)` to a range older than it keeps, rather
/// than an answer without records: its backfill ends there as well, with
/// everything it keeps stored and no failure counted against it.
#[tokio::test]
async fn a_meter_refusing_a_range_older_than_it_keeps_ends_its_backfill_there() {
    let (at, clock, app, token) = start().await;
    let meter = iec_meter(IecKind::A1000, 31, "12345678", at);
    {
        let mut meter = meter.lock().unwrap();
        meter.config.profile_days = Some(5);
        meter.refuse_old_ranges = true;
    }
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &token,
        &meter,
        &clock,
        json!({"name": "A1000", "profile": "a1000", "iec_address": "12345678", "schedule": {"energy_seconds": 1}}),
    )
    .await;
    let backfill = eventually_some(WAIT, || async {
        let (backfill, _) = quality(&app, &token, id).await;
        (backfill["state"] == "complete").then_some(backfill)
    })
    .await
    .expect("the backfill completed");
    // Chunks of two days: [at-2d, at], [at-4d, at-2d], [at-6d, at-4d] hold
    // the five days kept; [at-8d, at-6d] ends before them and is refused.
    assert_eq!(backfill["oldest_reached"], stamp(at - TimeDelta::days(8)));
    assert_eq!(meter.lock().unwrap().old_ranges_refused, 1);
    let oldest = meter.lock().unwrap().profile_oldest(5, at);
    let kept = recorded_import(&meter, oldest, at, at);
    assert_same(&stored_import(&app, id).await, &kept);
    let (_, device) = app
        .request("GET", &format!("/api/v1/devices/{id}"), Some(&token), None)
        .await;
    assert_eq!(device["status"]["state"], "online", "{device}");
    assert_eq!(device["status"]["consecutive_failures"], 0, "{device}");
    app.stop().await;
}

/// The ranges of the load-profile requests a line received, in order, as
/// days before `at` (`None`: an empty bound, the newest entry).
fn requested_days(received: &Received, at: DateTime<Utc>) -> Vec<(Option<i64>, Option<i64>)> {
    let days = |bound: Option<ohmnibus::protocol::iec62056::ProfileTime>| {
        bound.map(|bound| {
            let back = at.naive_utc() - bound.time;
            assert_eq!(
                back.num_seconds() % 86_400,
                0,
                "a bound on a whole day before now: {back}"
            );
            back.num_days()
        })
    };
    profile_requests(received)
        .into_iter()
        .map(|request| (days(request.from), days(request.to)))
        .collect()
}

/// Serves `meter` alone on a TCP line, as the shipped A1000 profile's
/// device (15-minute intervals, two days a request, 40 days deep): its id,
/// what the line received, and the line's stop switch.
async fn serve_a1000(
    app: &TestApp,
    token: &str,
    meter: &SharedMeter,
    clock: &Clock,
) -> (i64, Received, ohmnibus::shutdown::Trigger) {
    let mut line = quick_iec_line(vec![Arc::clone(meter)], clock.clone());
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    line.received = Some(received.clone());
    let (port, stop) = serve_iec_tcp(line).await;
    let bus = add_bus(app, token, "iec", "iec62056_tcp", port).await;
    let id = add_device(
        app,
        token,
        &bus,
        json!({"name": "A1000", "profile": "a1000", "iec_address": "12345678", "schedule": {"energy_seconds": 1}}),
    )
    .await;
    (id, received, stop)
}

/// The device's backfill once complete.
async fn completed_backfill(app: &TestApp, token: &str, id: i64) -> Value {
    eventually_some(WAIT, || async {
        let (backfill, _) = quality(app, token, id).await;
        (backfill["state"] == "complete").then_some(backfill)
    })
    .await
    .expect("the backfill completed")
}

/// A meter that was without power for five days, from 15 to 10 days back:
/// its profile has a hole longer than a chunk. The backfill goes on past
/// it, each request after an answer without records reaching back as far
/// again as the stretch found empty, stores everything older down to the
/// depth limit, and the hole is then missing, not pending.
#[tokio::test]
async fn a_backfill_goes_on_past_a_hole_longer_than_a_chunk_and_the_hole_is_missing() {
    let at = Utc::now().duration_trunc(QUARTER).unwrap();
    let clock = Clock::manual(at);
    // Derivation only when asked: the hole stays as the meter left it
    // (a due pass would estimate it).
    let app = spawn_app_deriving_on_demand(clock.clone()).await;
    let token = app.token(Role::Engineer).await;
    let calendar = a1000_calendar(&app, &token).await;
    let day = TimeDelta::days(1);
    let hole = (at - day * 15, at - day * 10);
    let meter = iec_meter(IecKind::A1000, 37, "12345678", at);
    meter.lock().unwrap().config.profile_outages = vec![hole];
    let (id, received, _stop) = serve_a1000(&app, &token, &meter, &clock).await;

    let backfill = completed_backfill(&app, &token, id).await;
    assert_eq!(backfill["oldest_reached"], stamp(at - day * 40));
    assert_eq!(backfill["completed_at"], stamp(at));
    // Two days at a time down to the hole; [12, 10] days back has no
    // record, so the next request reaches back as far again ([14, 12]),
    // and, empty again, twice that ([18, 14]), which finds the data before
    // the hole; then two days at a time to the depth limit.
    let mut expected = vec![(Some(2), None), (Some(4), Some(2)), (Some(6), Some(4))];
    expected.extend([(8, 6), (10, 8), (12, 10), (14, 12), (18, 14)].map(|(from, to)| (Some(from), Some(to))));
    expected.extend((0..11).map(|k| (Some(20 + 2 * k), Some(18 + 2 * k))));
    let requests = requested_days(&received, at);
    assert_older_then_forward(&requests, &expected);

    // Every interval the meter recorded, from the one ending at the depth
    // limit, but those starting in the hole: 40 days of quarter hours and
    // one, less five days.
    let mut recorded = recorded_import(&meter, at - day * 40 - QUARTER, at, at);
    recorded.retain(|start, _| !(hole.0..hole.1).contains(start));
    assert_eq!(recorded.len(), (40 - 5) * 96 + 1);
    assert_same(&stored_import(&app, id).await, &recorded);
    // The hole is missing (the meter never recorded it, between intervals
    // it did); nothing is pending.
    let (_, [expected, missing, pending]) = quality(&app, &token, id).await;
    assert_eq!((expected, missing, pending), (40 * 96 + 1, 5 * 96, 0));
    assert_eq!(
        statement_quality(&app, &token, id, (at - day * 20, at), calendar).await,
        [15 * 96, 5 * 96, 0]
    );
    app.stop().await;
}

/// A meter keeping five days of profile: after its first chunk without a
/// record the requests reach back twice as far each time (at most four
/// chunks), and the one reaching the depth limit, without a record too,
/// ends the backfill: five short answers more than a backfill stopping at
/// the first empty chunk.
#[tokio::test]
async fn a_meter_with_nothing_older_ends_its_backfill_at_the_depth_limit_after_a_few_doubling_requests() {
    let (at, clock, app, token) = start().await;
    let meter = iec_meter(IecKind::A1000, 41, "12345678", at);
    meter.lock().unwrap().config.profile_days = Some(5);
    let (id, received, _stop) = serve_a1000(&app, &token, &meter, &clock).await;

    let backfill = completed_backfill(&app, &token, id).await;
    assert_eq!(backfill["depth_limit"], stamp(at - TimeDelta::days(40)));
    assert_eq!(backfill["oldest_reached"], stamp(at - TimeDelta::days(40)));
    assert_eq!(backfill["completed_at"], stamp(at));
    // [8, 6] days back is the first without a record (the ring holds 5
    // days): 3 days are found empty (from the oldest interval, 5 days
    // back), then 6 and 12, each request reaching back as far again, but
    // never more than four chunks (8 days); the last cut at the depth
    // limit.
    let requests = requested_days(&received, at);
    let expected: Vec<_> = [(2, None), (4, Some(2)), (6, Some(4)), (8, Some(6))]
        .into_iter()
        .chain([
            (11, Some(8)),
            (17, Some(11)),
            (25, Some(17)),
            (33, Some(25)),
            (40, Some(33)),
        ])
        .map(|(from, to)| (Some(from), to))
        .collect();
    assert_older_then_forward(&requests, &expected);
    // Everything the meter keeps is stored; before its oldest interval
    // nothing is expected, so nothing is missing or pending.
    let kept = recorded_import(&meter, at - TimeDelta::days(5), at, at);
    assert_same(&stored_import(&app, id).await, &kept);
    let (_, [expected, missing, pending]) = quality(&app, &token, id).await;
    assert_eq!((expected, missing, pending), (5 * 96, 0, 0));
    app.stop().await;
}

/// A backfill interrupted in the middle of a hole (the meter falls silent,
/// the device is stopped and started again, so its worker loads what is
/// stored) resumes with the request the stored progress calls for: the
/// stretch found empty so far is reached back over again, not a chunk.
/// Until then the span it has not reached is pending, nothing missing;
/// once what is older is stored, the hole is a gap, estimated as any.
#[tokio::test]
async fn a_backfill_stopped_in_a_hole_resumes_reaching_back_as_far_again() {
    let (at, clock, app, token) = start().await;
    let calendar = a1000_calendar(&app, &token).await;
    let day = TimeDelta::days(1);
    let meter = iec_meter(IecKind::A1000, 43, "12345678", at);
    {
        let mut meter = meter.lock().unwrap();
        meter.config.profile_outages = vec![(at - day * 15, at - day * 10)];
        // The newest chunk, four older ones with records, and [12, 10]
        // days back without: then silent.
        meter.profile_answers_left = Some(6);
    }
    let (id, received, _stop) = serve_a1000(&app, &token, &meter, &clock).await;
    let reached = eventually_some(WAIT, || async {
        let (backfill, sums) = quality(&app, &token, id).await;
        (backfill["oldest_reached"] == stamp(at - day * 12)).then_some((backfill, sums))
    })
    .await;
    let (backfill, [expected, missing, pending]) = reached.expect("the backfill reached the hole");
    assert_eq!(backfill["state"], "running");
    // Stored from the meter: 10 days and the interval ending 10 days back
    // (it starts in the hole, so it is not recorded): 10 × 96. From the
    // depth limit to the oldest stored interval is pending: 28 days not
    // asked yet, and 2 asked without records (a hole or nothing older: not
    // known yet); nothing is missing, in the statement either.
    assert_eq!(stored_import(&app, id).await.len(), 10 * 96);
    assert_eq!((expected, missing, pending), (10 * 96, 0, 30 * 96));
    assert_eq!(
        statement_quality(&app, &token, id, (at - day * 20, at), calendar).await,
        [10 * 96, 0, 10 * 96]
    );

    let path = format!("/api/v1/devices/{id}");
    let (status, body) = app
        .request("PATCH", &path, Some(&token), Some(json!({"enabled": false})))
        .await;
    assert_eq!(status.as_u16(), 200, "{body}");
    {
        let mut meter = meter.lock().unwrap();
        meter.profile_answers_left = None;
        meter.fault = None;
    }
    received.lock().unwrap().clear();
    let (status, body) = app
        .request("PATCH", &path, Some(&token), Some(json!({"enabled": true})))
        .await;
    assert_eq!(status.as_u16(), 200, "{body}");

    let backfill = completed_backfill(&app, &token, id).await;
    assert_eq!(backfill["oldest_reached"], stamp(at - day * 40));
    // 2 days found empty below the oldest interval (10 days back): the
    // first request reaches back 2 days more, the next, empty again, 4;
    // the data before the hole brings the chunk back.
    let requests = requested_days(&received, at);
    let older: Vec<_> = requests.iter().filter(|(_, to)| to.is_some()).take(4).collect();
    assert_eq!(
        older,
        [(14, 12), (18, 14), (20, 18), (22, 20)]
            .map(|(from, to)| (Some(from), Some(to)))
            .iter()
            .collect::<Vec<_>>(),
        "{requests:?}"
    );
    // The hole is now a gap between stored intervals, and this server's
    // derivation passes estimate it as any gap: the 5 days are expected,
    // and estimated rather than missing.
    let hole = (at - day * 15, at - day * 10);
    let estimated = eventually(WAIT, || async {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM load_profile_intervals WHERE device_id = $1 AND obis = '1-1:1.29.0' \
             AND source = 'estimated' AND interval_start >= $2 AND interval_start < $3",
        )
        .bind(id)
        .bind(hole.0)
        .bind(hole.1)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        count == 5 * 96
    })
    .await;
    assert!(estimated, "the hole was not estimated");
    let (_, [expected, missing, pending]) = quality(&app, &token, id).await;
    assert_eq!((expected, missing, pending), (40 * 96 + 1, 0, 0));
    app.stop().await;
}

//! The `clock_drift` event: a TH40C over Modbus TCP whose clock is set
//! ahead of the server's by hand, read on demand on the test's clock.

use std::sync::{Arc, Mutex};

use crate::support::{
    TestApp, WAIT, count_readings, eventually, fetch_load_profile, iec_meter, read_now, serve_one_iec_tcp_device,
    serve_one_modbus_tcp_device, spawn_app_with_clock,
};
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use ohmnibus::device::profile_interval::Interval;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::obis::ObisCode;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::severity::Severity;
use ohmnibus::domain::unit::Unit;
use ohmnibus::protocol::modbus::frame::Exception;
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::iec62056::IecKind;
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::model::MeterModel;
use ohmnibus::store::events::fetch_device_events;
use ohmnibus::store::load_profile::insert_meter_intervals;
use serde_json::json;

/// A TH40C whose clock offset the test changes while it runs.
struct SetOffset {
    inner: Th40cModel,
    offset: Arc<Mutex<chrono::Duration>>,
}

impl MeterModel for SetOffset {
    fn advance(&mut self, now: DateTime<Utc>) {
        self.inner.clock_offset = *self.offset.lock().unwrap();
        self.inner.advance(now);
    }

    fn value(&self, code: &ObisCode, now: DateTime<Utc>) -> Option<(f64, Option<DateTime<Utc>>)> {
        self.inner.value(code, now)
    }

    fn command(&mut self, name: &str, values: &[u16], now: DateTime<Utc>) -> Result<(), Exception> {
        self.inner.command(name, values, now)
    }
}

#[tokio::test]
async fn a_meter_clock_ahead_opens_the_event_and_a_set_clock_clears_it() {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
    let clock = Clock::manual(t0);
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let operator = app.token(Role::Operator).await;
    // The meter shows Paris wall time (UTC+1 in November), as its site says.
    sqlx::query("UPDATE sites SET time_zone = 'Europe/Paris'")
        .execute(&app.pool)
        .await
        .unwrap();

    let offset = Arc::new(Mutex::new(chrono::Duration::zero()));
    let model = SetOffset {
        inner: Th40cModel::new(1, Paris, t0),
        offset: offset.clone(),
    };
    let device = SimDevice::new(ProfileSet::builtin().get("th40c").unwrap(), 1, model, clock.clone());
    let schedule = json!({"realtime_seconds": 3600, "energy_seconds": 3600});
    let (id, _line) = serve_one_modbus_tcp_device(&app, &engineer, device, "th40c", schedule).await;
    let events = || {
        let pool = app.pool.clone();
        async move {
            fetch_device_events(&pool, DeviceId(id), 50)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.code.as_str() == "clock_drift")
                .collect::<Vec<_>>()
        }
    };

    // The first scheduled read, with a correct clock: no event.
    let read = eventually(WAIT, || async { count_readings(&app, id, "1-0:0.9.1").await > 0 }).await;
    assert!(read, "the clock was read");
    assert!(events().await.is_empty());

    // 120 s ahead, beyond the default 30 s.
    *offset.lock().unwrap() = chrono::Duration::seconds(120);
    clock.advance(chrono::Duration::minutes(10));
    read_now(&app, &operator, id).await;
    let open = events().await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert!(open[0].cleared_at.is_none());
    assert_eq!(open[0].severity, Severity::Warning);
    assert!(open[0].message.contains("120 s ahead"), "{}", open[0].message);

    // Set right again: the next read clears it.
    *offset.lock().unwrap() = chrono::Duration::zero();
    clock.advance(chrono::Duration::minutes(10));
    read_now(&app, &operator, id).await;
    let cleared = events().await;
    assert_eq!(cleared.len(), 1, "{cleared:?}");
    assert_eq!(cleared[0].cleared_at, Some(clock.now()));
}

/// The flags of the device's intervals of `code` in `[from, to)`, from the
/// load-profile API, by start.
async fn interval_flags(
    app: &TestApp,
    token: &str,
    id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(String, Vec<String>)> {
    fetch_load_profile(app, token, id, "1-1:1.29.0", from, to)
        .await
        .iter()
        .map(|i| {
            let flags = i["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_owned())
                .collect();
            (i["start"].as_str().unwrap().to_owned(), flags)
        })
        .collect()
}

/// Intervals an A1000 records while its clock is known to be off are
/// flagged `clock_uncertain`; those before the drift was found and after
/// the clock is right again are not. So is a billing period it closes then.
#[tokio::test]
async fn intervals_and_resets_recorded_while_the_clock_is_off_are_uncertain() {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
    let clock = Clock::manual(t0);
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let operator = app.token(Role::Operator).await;
    let meter = iec_meter(IecKind::A1000, 5, "55555555", t0);
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &engineer,
        &meter,
        &clock,
        json!({"name": "A1000", "profile": "a1000", "iec_address": "55555555",
                        "schedule": {"energy_seconds": 86400}}),
    )
    .await;
    // The profile is stored up to t0 already, so each read brings the hour since.
    let before = Interval {
        obis: "1-1:1.29.0".parse().unwrap(),
        start: t0 - chrono::Duration::minutes(15),
        minutes: 15,
        value: 1.0,
        unit: Unit::KWh,
        meter_status: String::new(),
        quality: Quality::GOOD,
    };
    insert_meter_intervals(&app.pool, DeviceId(id), &[before], chrono::Utc::now())
        .await
        .unwrap();
    let online = eventually(WAIT, || async {
        app.request("GET", &format!("/api/v1/devices/{id}"), Some(&engineer), None)
            .await
            .1["status"]["state"]
            == "online"
    })
    .await;
    assert!(online, "the meter was never read");
    let hour = chrono::Duration::hours(1);
    let quarters = |from: DateTime<Utc>| {
        (0..4)
            .map(|k| (from + chrono::Duration::minutes(15 * k)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .collect::<Vec<_>>()
    };

    // 10:00-11:00, clock right: read at 11:00, no flag.
    clock.advance(hour);
    read_now(&app, &operator, id).await;
    // The clock runs 5 min ahead from now on: the read at 12:00 finds it
    // (the hour it brings was recorded before the drift was known).
    meter.lock().unwrap().clock_offset = chrono::Duration::minutes(5);
    clock.advance(hour);
    read_now(&app, &operator, id).await;
    // 12:00-13:00 lies in the open drift.
    clock.advance(hour);
    read_now(&app, &operator, id).await;
    // Set right: the read at 14:00 clears the drift; its hour overlapped it.
    meter.lock().unwrap().clock_offset = chrono::Duration::zero();
    clock.advance(hour);
    read_now(&app, &operator, id).await;
    // 14:00-15:00: right again.
    clock.advance(hour);
    read_now(&app, &operator, id).await;

    let got = interval_flags(&app, &operator, id, t0, t0 + hour * 5).await;
    let uncertain = |flags: &Vec<String>| flags.iter().any(|f| f == "clock_uncertain");
    let mut expected = Vec::new();
    for (h, flagged) in [(0, false), (1, false), (2, true), (3, true), (4, false)] {
        for start in quarters(t0 + hour * h) {
            expected.push((start, flagged));
        }
    }
    let got: Vec<(String, bool)> = got
        .iter()
        .map(|(start, flags)| (start.clone(), uncertain(flags)))
        .collect();
    assert_eq!(got, expected);

    // A billing reset the meter makes while its clock is known to be off:
    // the drift is found at 23:00 on 30 November, the meter closes the
    // period at midnight; that period is clock_uncertain, the ones it had
    // closed before are not.
    meter.lock().unwrap().clock_offset = chrono::Duration::minutes(5);
    let evening = Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap();
    clock.advance(evening - clock.now());
    read_now(&app, &operator, id).await;
    let reset = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    clock.advance(reset + chrono::Duration::minutes(30) - clock.now());
    read_now(&app, &operator, id).await;
    let path = format!("/api/v1/devices/{id}/billing-periods");
    let closed = eventually(WAIT, || async {
        app.request("GET", &path, Some(&operator), None).await.1["periods"][0]["reset_at"]
            .as_str()
            .is_some_and(|at| at.parse::<DateTime<Utc>>().is_ok_and(|at| at > evening))
    })
    .await;
    let (_, body) = app.request("GET", &path, Some(&operator), None).await;
    assert!(closed, "no period after the drift was found: {body}");
    let periods = body["periods"].as_array().unwrap();
    assert!(periods.len() >= 2, "{body}");
    assert_eq!(periods[0]["flags"], json!(["clock_uncertain"]), "{}", periods[0]);
    assert!(
        periods[1..].iter().all(|p| p["flags"] == json!([])),
        "periods closed before the drift: {body}"
    );
}

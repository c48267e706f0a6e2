//! Gaps in load profiles: estimated and flagged with a `profile_gap` event
//! where no meter history can fill them, and replaced by the meter's value
//! as a new version when it arrives later.

use std::sync::Arc;

use crate::support::{
    SILENT_METER_TIMEOUT, TestApp, WAIT, add_unpolled_device, add_unpolled_th40c, count_readings, eventually,
    fetch_load_profile, iec_meter, read_now, serve_one_iec_tcp_device, serve_one_modbus_tcp_device, spawn_app_with,
    spawn_app_with_clock,
};
use chrono::{DateTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use ohmnibus::derive::DeriveServices;
use ohmnibus::derive::estimate::estimate_gaps;
use ohmnibus::device::profile_interval::Interval;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::obis::ObisCode;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::unit::Unit;
use ohmnibus::metering::estimate::Estimate;
use ohmnibus::metering::register_deltas::DerivedInterval;
use ohmnibus::protocol::modbus::frame::Exception;
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::iec62056::IecKind;
use ohmnibus::sim::iec62056::history::Quantity;
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::model::MeterModel;
use ohmnibus::store::load_profile::{fetch_last_meter_interval, insert_meter_intervals, update_profile_read_at};
use ohmnibus::store::profile_corrections::fetch_interval_versions;
use ohmnibus::store::profile_derivation::insert_derived_intervals;
use ohmnibus::store::profile_estimation::insert_estimated_intervals;
use serde_json::{Value, json};

fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0).unwrap()
}

/// A 15-minute interval of 1-1:1.29.0 as a meter's load profile holds it.
fn quarter(start: DateTime<Utc>, value: f64) -> Interval {
    Interval {
        obis: "1-1:1.29.0".parse().unwrap(),
        start,
        minutes: 15,
        value,
        unit: Unit::KWh,
        meter_status: "00".into(),
        quality: Quality::GOOD,
    }
}

/// An A1000 on an IEC bus nothing answers on whose stored load profile
/// holds `quarters` (hour, minute, kWh) of 22 November.
async fn a1000_with_quarters(app: &TestApp, engineer: &str, quarters: &[(u32, u32, f64)]) -> i64 {
    let id = add_unpolled_device(
        app,
        engineer,
        "iec62056_tcp",
        json!({"name": "A1000", "profile": "a1000", "iec_address": "12345678"}),
    )
    .await;
    let stored: Vec<Interval> = quarters
        .iter()
        .map(|&(hour, minute, value)| quarter(at(22, hour, minute), value))
        .collect();
    insert_meter_intervals(&app.pool, DeviceId(id), &stored, chrono::Utc::now())
        .await
        .unwrap();
    id
}

/// The derivation passes' services on `clock`, to run one pass by hand.
fn derive_services(app: &TestApp, clock: &Clock) -> DeriveServices {
    DeriveServices {
        pool: app.pool.clone(),
        profiles: Arc::new(ProfileSet::builtin()),
        clock: clock.clone(),
    }
}

/// A TH40C whose total import (1-1:1.8.0) rises at 4 kW until 10:30 UTC on
/// 18 November and at 8 kW after: 1000 kWh at 10:00, 1002 kWh at 10:30.
struct TwoRates {
    inner: Th40cModel,
}

impl TwoRates {
    fn energy(now: DateTime<Utc>) -> f64 {
        let hours = |from: DateTime<Utc>| (now - from).num_milliseconds() as f64 / 3_600_000.0;
        if now <= at(18, 10, 30) {
            1000.0 + 4.0 * hours(at(18, 10, 0))
        } else {
            1002.0 + 8.0 * hours(at(18, 10, 30))
        }
    }
}

impl MeterModel for TwoRates {
    fn advance(&mut self, now: DateTime<Utc>) {
        self.inner.advance(now);
    }

    fn value(&self, code: &ObisCode, now: DateTime<Utc>) -> Option<(f64, Option<DateTime<Utc>>)> {
        if code.to_string() == "1-1:1.8.0" {
            return Some((TwoRates::energy(now), None));
        }
        self.inner.value(code, now)
    }

    fn command(&mut self, name: &str, values: &[u16], now: DateTime<Utc>) -> Result<(), Exception> {
        self.inner.command(name, values, now)
    }
}

async fn profile(app: &TestApp, token: &str, id: i64, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Value> {
    fetch_load_profile(app, token, id, "1-1:1.8.0", from, to).await
}

async fn gap_events(app: &TestApp, token: &str, id: i64) -> Vec<Value> {
    let (_, body) = app
        .request("GET", &format!("/api/v1/events?device_id={id}"), Some(token), None)
        .await;
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["code"] == "profile_gap")
        .cloned()
        .collect()
}

/// A Modbus meter read at 10:00, 10:15 and 10:30, silent until 11:45, then
/// read at 11:45, 12:00 and 12:15. Derived: 10:00 and 10:15 (1 kWh each,
/// 4 kW), 11:45 and 12:00 (2 kWh each, 8 kW). The 75 minutes from 10:30 to
/// 11:45 are a short gap over which the register rose 1012 − 1002 = 10
/// kWh: five quarters of 2 kWh, flagged estimated, with one event.
#[tokio::test]
async fn a_silent_modbus_meter_leaves_a_gap_that_is_estimated_and_flagged() {
    let t0 = at(18, 10, 0);
    let clock = Clock::manual(t0);
    let app = spawn_app_with(SILENT_METER_TIMEOUT, clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let model = TwoRates {
        inner: Th40cModel::new(1, Tz::UTC, t0),
    };
    let device = SimDevice::new(ProfileSet::builtin().get("th40c").unwrap(), 1, model, clock.clone());
    let schedule = json!({"realtime_seconds": 86400, "energy_seconds": 86400, "history_seconds": 86400});
    let (id, _line) = serve_one_modbus_tcp_device(&app, &engineer, device, "th40c", schedule).await;
    let first = eventually(WAIT, || async { count_readings(&app, id, "1-1:1.8.0").await > 0 }).await;
    assert!(first, "the first read was not stored");
    // 10:15, 10:30; 75 minutes of silence; 11:45, 12:00, 12:15.
    for minutes in [15, 15, 75, 15, 15] {
        clock.advance(chrono::Duration::minutes(minutes));
        read_now(&app, &engineer, id).await;
    }

    let estimated = eventually(WAIT, || async {
        app.derive_now().await;
        profile(&app, &engineer, id, t0, at(18, 12, 15)).await.len() == 9
    })
    .await;
    let got = profile(&app, &engineer, id, t0, at(18, 12, 15)).await;
    assert!(estimated, "{got:#?}");
    let expected = [
        (at(18, 10, 0), 1.0, "derived"),
        (at(18, 10, 15), 1.0, "derived"),
        (at(18, 10, 30), 2.0, "estimated"),
        (at(18, 10, 45), 2.0, "estimated"),
        (at(18, 11, 0), 2.0, "estimated"),
        (at(18, 11, 15), 2.0, "estimated"),
        (at(18, 11, 30), 2.0, "estimated"),
        (at(18, 11, 45), 2.0, "derived"),
        (at(18, 12, 0), 2.0, "derived"),
    ];
    for (interval, (start, value, source)) in got.iter().zip(expected) {
        assert_eq!(interval["start"], json!(start), "{interval}");
        assert!((interval["value"].as_f64().unwrap() - value).abs() < 1e-6, "{interval}");
        assert_eq!(interval["source"], source, "{interval}");
        let flags = if source == "estimated" {
            json!(["estimated"])
        } else {
            json!([])
        };
        assert_eq!(interval["flags"], flags, "{interval}");
        assert_eq!(interval["version"], 1, "{interval}");
    }

    // One event per channel with the gap (every energy register the TH40C
    // profile reads is derived), each naming the span.
    let events = gap_events(&app, &engineer, id).await;
    assert!(
        events.iter().all(|event| event["message"]
            .as_str()
            .unwrap()
            .contains("from 2026-11-18T10:30:00Z to 2026-11-18T11:45:00Z (75 min); 5 estimated")),
        "{events:#?}"
    );
    let import: Vec<_> = events
        .iter()
        .filter(|event| event["message"].as_str().unwrap().contains("1-1:1.8.0:"))
        .collect();
    assert_eq!(import.len(), 1, "{events:#?}");
    assert_eq!(import[0]["severity"], "warning");
    app.stop().await;
}

/// Hourly derived intervals from Wednesday 4 November to the end of
/// Wednesday 18 November, 08:00–12:00 on the 18th missing. Each holds
/// hour / 10 kWh, plus 1 in the week from the 4th and 2 after. No register
/// reads, so the four hours take the mean of the Wednesdays before at the
/// same hour: (h/10 + 2 + h/10 + 1) / 2 = h/10 + 1.5, i.e. 2.3, 2.4, 2.5, 2.6.
#[tokio::test]
async fn a_long_gap_takes_the_shape_of_the_same_weekday() {
    let clock = Clock::manual(at(19, 0, 0));
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let id = add_unpolled_th40c(&app, &engineer).await;
    let mut intervals = Vec::new();
    let mut start = at(4, 0, 0);
    while start < at(19, 0, 0) {
        let hour = f64::from(start.hour());
        let week = if start < at(11, 0, 0) { 1.0 } else { 2.0 };
        if !(at(18, 8, 0)..at(18, 12, 0)).contains(&start) {
            intervals.push(DerivedInterval {
                start,
                minutes: 60,
                value: hour / 10.0 + week,
                quality: Quality::GOOD,
            });
        }
        start += TimeDelta::hours(1);
    }
    insert_derived_intervals(
        &app.pool,
        DeviceId(id),
        &"1-1:1.8.0".parse().unwrap(),
        "kWh".parse().unwrap(),
        &intervals,
        &[],
    )
    .await
    .unwrap();
    let filled = eventually(WAIT, || async {
        app.derive_now().await;
        profile(&app, &engineer, id, at(18, 8, 0), at(18, 12, 0)).await.len() == 4
    })
    .await;
    let got = profile(&app, &engineer, id, at(18, 8, 0), at(18, 12, 0)).await;
    assert!(filled, "{got:#?}");
    for (interval, value) in got.iter().zip([2.3, 2.4, 2.5, 2.6]) {
        assert!((interval["value"].as_f64().unwrap() - value).abs() < 1e-9, "{interval}");
        assert_eq!(
            (&interval["source"], &interval["flags"]),
            (&json!("estimated"), &json!(["estimated"]))
        );
    }
    let events = gap_events(&app, &engineer, id).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let message = events[0]["message"].as_str().unwrap();
    assert!(message.contains("same weekday's profile"), "{message}");
    app.stop().await;
}

/// An estimate stored for an interval the meter later sends: the meter's
/// value is version 2 (changed by `meter`), shown by the API; the estimate
/// stays as version 1; a re-read adds nothing.
#[tokio::test]
async fn a_meter_value_replaces_an_estimate_as_a_new_version() {
    let clock = Clock::manual(at(19, 0, 0));
    let app = spawn_app_with_clock(clock).await;
    let engineer = app.token(Role::Engineer).await;
    let id = add_unpolled_th40c(&app, &engineer).await;
    let device = DeviceId(id);
    let estimate = Estimate {
        start: at(18, 10, 0),
        minutes: 15,
        value: 0.8,
    };
    assert_eq!(
        insert_estimated_intervals(
            &app.pool,
            device,
            &"1-1:1.29.0".parse().unwrap(),
            "kWh".parse().unwrap(),
            &[estimate]
        )
        .await
        .unwrap(),
        1
    );
    let sent = [quarter(at(18, 10, 0), 1.1), quarter(at(18, 10, 15), 1.2)];
    // One replaces the estimate, one is new.
    assert_eq!(
        insert_meter_intervals(&app.pool, device, &sent, chrono::Utc::now())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        insert_meter_intervals(&app.pool, device, &sent, chrono::Utc::now())
            .await
            .unwrap(),
        0
    );
    let got: Vec<_> = fetch_load_profile(&app, &engineer, id, "1-1:1.29.0", at(18, 10, 0), at(18, 10, 30))
        .await
        .iter()
        .map(|i| {
            (
                i["value"].as_f64().unwrap(),
                i["source"].clone(),
                i["version"].clone(),
                i["flags"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1.1, json!("meter"), json!(2), json!([])),
            (1.2, json!("meter"), json!(1), json!([]))
        ]
    );
    let versions = fetch_interval_versions(&app.pool, device, &"1-1:1.29.0".parse().unwrap(), at(18, 10, 0))
        .await
        .unwrap();
    let versions: Vec<_> = versions
        .iter()
        .map(|v| {
            (
                v.version,
                v.value,
                v.source.as_str(),
                v.changed_by.as_deref(),
                v.reason.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        vec![
            (1, 0.8, "estimated", None, None),
            (2, 1.1, "meter", Some("meter"), Some("meter value replaces estimate")),
        ]
    );
    app.stop().await;
}

async fn failures(app: &TestApp, token: &str, id: i64) -> i64 {
    let device = app.device(token, DeviceId(id)).await;
    device["status"]["consecutive_failures"].as_i64().unwrap_or(0)
}

/// An A1000 on an IEC line whose load profile was read up to 12:00 stays
/// silent while three hours pass. The intervals of the outage are not
/// estimated: once the meter answers again its load profile fills them, as
/// the meter recorded them (version 1, source meter), and no gap is reported.
#[tokio::test]
async fn an_iec_meters_outage_is_filled_from_its_own_load_profile_not_estimated() {
    let now = at(22, 12, 0);
    let clock = Clock::manual(now);
    let app = spawn_app_with(SILENT_METER_TIMEOUT, clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    // Silent from the start: the meter answers to another address.
    let meter = iec_meter(IecKind::A1000, 7, "99999999", now);
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &engineer,
        &meter,
        &clock,
        json!({"name": "A1000", "profile": "a1000", "iec_address": "12345678",
                        "schedule": {"energy_seconds": 1}}),
    )
    .await;
    // What an earlier profile read stored: the meter's import intervals
    // from 10:00 to 12:00 (stamped with their end, Wh → kWh).
    let recorded = |from: DateTime<Utc>, to: DateTime<Utc>| -> Vec<(DateTime<Utc>, f64)> {
        meter
            .lock()
            .unwrap()
            .history()
            .intervals(from + TimeDelta::minutes(15), to, to)
            .iter()
            .map(|i| (i.start, i.get(Quantity::ImportActive) as f64 / 1000.0))
            .collect()
    };
    let earlier: Vec<Interval> = recorded(at(22, 10, 0), at(22, 12, 0))
        .into_iter()
        .map(|(start, value)| quarter(start, value))
        .collect();
    assert_eq!(earlier.len(), 8);
    insert_meter_intervals(&app.pool, DeviceId(id), &earlier, chrono::Utc::now())
        .await
        .unwrap();
    let last = || async {
        fetch_last_meter_interval(&app.pool, DeviceId(id), clock.now())
            .await
            .unwrap()
    };

    // Three hours of silence, with failed reads at the end of them.
    assert!(eventually(WAIT, || async { failures(&app, &engineer, id).await >= 1 }).await);
    clock.advance(chrono::Duration::hours(3));
    let seen = failures(&app, &engineer, id).await;
    assert!(eventually(WAIT, || async { failures(&app, &engineer, id).await > seen + 1 }).await);
    assert_eq!(last().await, Some(at(22, 11, 45)));

    // Back, and read at once: the readout, then the profile from 12:00.
    meter.lock().unwrap().config.address = "12345678".into();
    read_now(&app, &engineer, id).await;
    assert_eq!(last().await, Some(at(22, 14, 45)));
    let read_through: Option<DateTime<Utc>> = sqlx::query_scalar("SELECT profile_read_at FROM devices WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(read_through, Some(at(22, 15, 0)));

    let got = fetch_load_profile(&app, &engineer, id, "1-1:1.29.0", at(22, 12, 0), at(22, 15, 0)).await;
    let outage = recorded(at(22, 12, 0), at(22, 15, 0));
    assert_eq!(outage.len(), 12);
    assert_eq!(got.len(), 12, "{got:#?}");
    for (interval, (start, value)) in got.iter().zip(&outage) {
        assert_eq!(interval["start"], json!(start), "{interval}");
        assert!((interval["value"].as_f64().unwrap() - value).abs() < 1e-9, "{interval}");
        assert_eq!(
            (&interval["source"], &interval["version"], &interval["flags"]),
            (&json!("meter"), &json!(1), &json!([])),
            "{interval}"
        );
    }
    // Derivation rounds ran all along; none estimated anything.
    let estimated: i64 =
        sqlx::query_scalar("SELECT count(*) FROM load_profile_intervals WHERE device_id = $1 AND source = 'estimated'")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(estimated, 0);
    assert!(gap_events(&app, &engineer, id).await.is_empty());
    app.stop().await;
}

/// A gap inside an IEC meter's stored load profile (the meter lost those
/// intervals) is left for the meter's history for six hours after its end,
/// then estimated: no register to go by, so linearly between the intervals
/// around it. 10:15–10:30 held 1.0 kWh and 11:30–11:45 2.0 kWh; midpoints
/// 75 minutes apart, the missing quarters' midpoints at 1/5 … 4/5 of the
/// way: 1.2, 1.4, 1.6, 1.8 kWh.
#[tokio::test]
async fn a_gap_in_a_meters_own_profile_waits_for_its_history_then_is_estimated() {
    let clock = Clock::manual(at(22, 15, 0));
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let id = a1000_with_quarters(
        &app,
        &engineer,
        &[(10, 0, 1.0), (10, 15, 1.0), (11, 30, 2.0), (11, 45, 2.0)],
    )
    .await;
    let services = derive_services(&app, &clock);
    // 15:00: the gap ended at 11:30, three and a half hours ago.
    assert_eq!(estimate_gaps(&services).await.unwrap(), 0);
    // 17:30: six hours after its end.
    clock.advance(chrono::Duration::minutes(150));
    let (from, to) = (at(22, 10, 30), at(22, 11, 30));
    let gap = || fetch_load_profile(&app, &engineer, id, "1-1:1.29.0", from, to);
    let estimated = eventually(WAIT, || async {
        app.derive_now().await;
        gap().await.len() == 4
    })
    .await;
    assert!(estimated);
    for (interval, value) in gap().await.iter().zip([1.2, 1.4, 1.6, 1.8]) {
        assert!((interval["value"].as_f64().unwrap() - value).abs() < 1e-9, "{interval}");
        assert_eq!(
            (&interval["source"], &interval["flags"]),
            (&json!("estimated"), &json!(["estimated"]))
        );
    }
    let events = gap_events(&app, &engineer, id).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .contains("1-1:1.29.0: no intervals from 2026-11-22T10:30:00Z to 2026-11-22T11:30:00Z (60 min); 4 estimated linearly between its neighbours"),
        "{events:#?}"
    );
    app.stop().await;
}

/// A meter whose load profile, read through to 18:55, stops at 12:00 (the
/// meter lost the intervals): the intervals more than six hours old are
/// estimated, holding the last interval's rate (2.0 kWh per quarter); the
/// newer ones keep waiting for the meter.
#[tokio::test]
async fn a_meters_profile_that_stops_while_it_is_read_is_estimated_past_the_grace_period() {
    let clock = Clock::manual(at(22, 19, 0));
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let id = a1000_with_quarters(&app, &engineer, &[(11, 30, 2.0), (11, 45, 2.0)]).await;
    // 19:00 − 6 h = 13:00: the quarters from 12:00 to 13:00 are due.
    let due = || fetch_load_profile(&app, &engineer, id, "1-1:1.29.0", at(22, 12, 0), at(22, 19, 0));
    let services = derive_services(&app, &clock);
    // The profile was never read through to the present (a backfill still
    // catching up would look the same): nothing to estimate yet.
    assert_eq!(estimate_gaps(&services).await.unwrap(), 0);
    // Read through at 18:55, nothing after 12:00.
    update_profile_read_at(&app.pool, DeviceId(id), at(22, 18, 55))
        .await
        .unwrap();
    let estimated = eventually(WAIT, || async {
        app.derive_now().await;
        due().await.len() == 4
    })
    .await;
    let intervals = due().await;
    assert!(estimated, "{intervals:#?}");
    let got: Vec<_> = intervals
        .iter()
        .map(|i| (i["start"].clone(), i["value"].as_f64().unwrap(), i["source"].clone()))
        .collect();
    let want: Vec<_> = [(12, 0), (12, 15), (12, 30), (12, 45)]
        .into_iter()
        .map(|(hour, minute)| (json!(at(22, hour, minute)), 2.0, json!("estimated")))
        .collect();
    assert_eq!(got, want);
    let events = gap_events(&app, &engineer, id).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(
        events[0]["message"].as_str().unwrap().contains(
            "from 2026-11-22T12:00:00Z to 2026-11-22T13:00:00Z (60 min); 4 estimated holding the last interval's rate"
        ),
        "{events:#?}"
    );
    app.stop().await;
}

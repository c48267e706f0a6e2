//! Intervals derived from a Modbus meter's energy register: a TH40C over
//! Modbus TCP whose total import is set by hand at each step, read on demand
//! as the test's clock moves, on a site in a zone whose midnight is not on a
//! UTC hour.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::support::{WAIT, eventually, serve_one_modbus_tcp_device, spawn_app_with_clock};
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::obis::ObisCode;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::protocol::modbus::frame::Exception;
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::model::MeterModel;
use ohmnibus::store::profile_derivation::fetch_derived_intervals;
use serde_json::json;

/// A TH40C whose total import energy (1-1:1.8.0) is what the test set for
/// the latest instant at or before the meter's `now`: a value tied to the
/// clock, so a read at any instant sees the energy set for it.
struct SetEnergy {
    inner: Th40cModel,
    energy: Arc<Mutex<BTreeMap<DateTime<Utc>, f64>>>,
}

impl MeterModel for SetEnergy {
    fn advance(&mut self, now: DateTime<Utc>) {
        self.inner.advance(now);
    }

    fn value(&self, code: &ObisCode, now: DateTime<Utc>) -> Option<(f64, Option<DateTime<Utc>>)> {
        if code.to_string() == "1-1:1.8.0" {
            let energy = self.energy.lock().unwrap();
            return energy.range(..=now).next_back().map(|(_, value)| (*value, None));
        }
        self.inner.value(code, now)
    }

    fn command(&mut self, name: &str, values: &[u16], now: DateTime<Utc>) -> Result<(), Exception> {
        self.inner.command(name, values, now)
    }
}

#[tokio::test]
async fn intervals_follow_the_register_on_the_sites_grid() {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 10, 25, 0).unwrap();
    let clock = Clock::manual(t0);
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let operator = app.token(Role::Operator).await;
    // Asia/Kolkata is UTC+5:30: its local midnight is 18:30 UTC, so hourly
    // intervals run from hh:30 to hh+1:30 UTC.
    sqlx::query("UPDATE sites SET time_zone = 'Asia/Kolkata'")
        .execute(&app.pool)
        .await
        .unwrap();

    // Reads every 10 minutes from 10:25 UTC, the register as set by hand (kWh).
    let steps = [1000.0, 1002.0, 1003.0, 1006.0, 1007.0, 1010.0, 1011.0, 1014.0, 1015.0];
    let energy = Arc::new(Mutex::new(BTreeMap::from([(t0, steps[0])])));
    let model = SetEnergy {
        inner: Th40cModel::new(1, Tz::UTC, t0),
        energy: energy.clone(),
    };
    let device = SimDevice::new(ProfileSet::builtin().get("th40c").unwrap(), 1, model, clock.clone());
    // Scheduled once an hour: after the first read, reads happen when the test asks.
    let schedule = json!({"realtime_seconds": 3600, "energy_seconds": 3600});
    let (id, _line) = serve_one_modbus_tcp_device(&app, &engineer, device, "th40c", schedule).await;
    sqlx::query("UPDATE devices SET interval_minutes = 60 WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    let reads = || {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM readings WHERE device_id = $1 AND obis = '1-1:1.8.0'")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert!(eventually(WAIT, || async { reads().await == 1 }).await);

    let path = format!("/api/v1/devices/{id}/read");
    for (n, value) in steps.iter().enumerate().skip(1) {
        clock.advance(chrono::Duration::minutes(10));
        energy.lock().unwrap().insert(clock.now(), *value);
        let (_, job) = app.request("POST", &path, Some(&operator), None).await;
        let job_path = format!("/api/v1/reads/{}", job["id"]);
        let done = eventually(WAIT, || async {
            app.request("GET", &job_path, Some(&operator), None).await.1["state"] == "succeeded"
        })
        .await;
        assert!(done, "read {n}");
        let expected = i64::try_from(n + 1).unwrap();
        assert!(
            eventually(WAIT, || async { reads().await == expected }).await,
            "stored {n}"
        );
    }

    // By hand: reads at 10:25, 10:35, …, 11:45 UTC. Only 10:30–11:30 UTC
    // (16:00–17:00 in Kolkata) has a read at or before its start and one at
    // or after its end. 10:25→10:35 rose 2, half of it after 10:30: 1;
    // 10:35→11:25 rose 1011 − 1002 = 9; 11:25→11:35 rose 3, half before
    // 11:30: 1.5. Total 11.5 kWh.
    let start = Utc.with_ymd_and_hms(2026, 11, 20, 10, 30, 0).unwrap();
    let expected = vec![(start, 60, 11.5, Quality::GOOD)];
    let derived = eventually(WAIT, || async {
        app.derive_now().await;
        fetch_derived_intervals(&app.pool, DeviceId(id), &"1-1:1.8.0".parse().unwrap())
            .await
            .unwrap()
            == expected
    })
    .await;
    let stored = fetch_derived_intervals(&app.pool, DeviceId(id), &"1-1:1.8.0".parse().unwrap())
        .await
        .unwrap();
    assert!(derived, "{stored:?}");
    app.stop().await;
}

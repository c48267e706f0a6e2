//! Commands to IEC 62056-21 meters in programming mode: the driver against
//! the simulated A1000 and TH40C over a real socket, field programming
//! ("PRG") opened and lapsing on the simulator's clock, and the dry run
//! compared with what the simulator received.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Duration as TimeDelta, Utc};
use chrono_tz::Tz;
use ohmnibus::device::driver::{Driver, ProgramError, Target, program_frames};
use ohmnibus::device::profile::Profile;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::transport::Transport;
use ohmnibus::shutdown::Trigger;
use ohmnibus::sim::iec62056::{IecKind, Received, Reset, ResetWrite, SharedMeter};

use crate::support::{WAIT, eventually, iec_meter, quick_iec_line, serve_iec_tcp};

const NOW: &str = "2026-03-14T10:20:30Z";
const ADDRESS: &str = "12345678";
const PASSWORD: &str = "00000000";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

struct Line {
    meter: SharedMeter,
    clock: Clock,
    received: Received,
    transport: Transport,
    _stop: Trigger,
}

async fn serve(meter: SharedMeter) -> Line {
    let clock = Clock::manual(now());
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let mut line = quick_iec_line(vec![meter.clone()], clock.clone());
    line.received = Some(received.clone());
    let (port, stop) = serve_iec_tcp(line).await;
    Line {
        meter,
        clock,
        received,
        transport: Transport::Iec62056Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        _stop: stop,
    }
}

fn target<'a>(profile: &'a Profile, zone: Tz) -> Target<'a> {
    Target {
        name: "meter",
        address: 0,
        iec_address: ADDRESS,
        profile,
        zone,
        password: None,
    }
}

fn shipped(name: &str) -> Profile {
    ProfileSet::builtin().get(name).unwrap().as_ref().clone()
}

fn driver(line: &Line) -> Driver {
    Driver::new(&line.transport, Duration::from_secs(2))
}

#[tokio::test]
async fn set_clock_on_a_th40c_in_prg_writes_the_local_time_and_reads_it_back() {
    let zone: Tz = "Europe/Rome".parse().unwrap();
    let meter = iec_meter(IecKind::Th40c, 3, ADDRESS, now());
    {
        let mut meter = meter.lock().unwrap();
        meter.config.zone = zone;
        // The meter runs 2 h 5 min behind.
        meter.clock_offset = -TimeDelta::minutes(125);
        meter.open_field_programming(now());
    }
    let line = serve(meter).await;
    let profile = shipped("th40c");
    let (result, exchange) = driver(&line)
        .program(target(&profile, zone), "set_clock", PASSWORD, now())
        .await;
    let done = result.unwrap();
    assert!(done.verified);
    assert!(exchange.is_some());
    // 10:20:30 UTC is 11:20:30 in Rome (CET, UTC+1); the meter showed 09:15:30.
    let seen: Vec<_> = done
        .writes
        .iter()
        .map(|w| {
            (
                w.address.as_str(),
                w.before.as_deref(),
                w.written.as_str(),
                w.after.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("1-0:0.9.2", Some("260314"), "260314", Some("260314")),
            ("1-0:0.9.1", Some("091530"), "112030", Some("112030")),
        ]
    );
    assert_eq!(line.meter.lock().unwrap().clock_offset, TimeDelta::zero());
    // The time write as it reached the meter: SOH W1 STX 1-0:0.9.1(112030)
    // ETX BCC. 'W'^'1'^STX = 0x64; "1-0:" is 0x31^0x2D^0x30^0x3A = 0x16 ->
    // 0x72; "0.9.1" 0x38 -> 0x4A; '(' -> 0x62; "112030" XORs to 0x01 ->
    // 0x63; ')' -> 0x4A; ^ETX = 0x49.
    let time_write = [&[0x01, b'W', b'1', 0x02][..], b"1-0:0.9.1(112030)", &[0x03, 0x49]].concat();
    assert!(line.received.lock().unwrap().contains(&time_write));
}

#[tokio::test]
async fn outside_prg_the_write_is_refused_until_the_window_opens_and_after_it_lapses() {
    let meter = iec_meter(IecKind::A1000, 5, ADDRESS, now());
    meter.lock().unwrap().clock_offset = TimeDelta::minutes(7);
    let line = serve(meter).await;
    let profile = shipped("a1000");
    let mut driver = driver(&line);
    let zone = Tz::UTC;

    let (result, _) = driver
        .program(target(&profile, zone), "set_clock", PASSWORD, now())
        .await;
    let error = result.unwrap_err();
    assert!(
        matches!(&error, ProgramError::NotInFieldProgramming { address, answer } if address == "0.9.2" && answer == "ERROR"),
        "{error}"
    );
    assert_eq!(
        line.meter.lock().unwrap().clock_offset,
        TimeDelta::minutes(7),
        "nothing changed"
    );

    // Someone will hold the button in two minutes: still refused now.
    line.meter
        .lock()
        .unwrap()
        .open_field_programming(now() + TimeDelta::minutes(2));
    line.clock.advance(TimeDelta::minutes(1));
    let at = line.clock.now();
    let (result, _) = driver.program(target(&profile, zone), "set_clock", PASSWORD, at).await;
    assert!(matches!(result, Err(ProgramError::NotInFieldProgramming { .. })));

    // PRG shows: the retry succeeds.
    line.clock.advance(TimeDelta::minutes(2));
    let at = line.clock.now();
    let (result, _) = driver.program(target(&profile, zone), "set_clock", PASSWORD, at).await;
    assert!(result.unwrap().verified);
    assert_eq!(line.meter.lock().unwrap().clock_offset, TimeDelta::zero());

    // The A1000 leaves PRG 4 minutes after the button (manual 2.1.1).
    line.clock.advance(TimeDelta::minutes(4));
    line.meter.lock().unwrap().clock_offset = TimeDelta::minutes(7);
    let at = line.clock.now();
    let (result, _) = driver.program(target(&profile, zone), "set_clock", PASSWORD, at).await;
    assert!(matches!(result, Err(ProgramError::NotInFieldProgramming { .. })));
    assert_eq!(line.meter.lock().unwrap().clock_offset, TimeDelta::minutes(7));
}

#[tokio::test]
async fn a_refused_password_is_told_apart_and_the_readout_still_works() {
    let meter = iec_meter(IecKind::A1000, 5, ADDRESS, now());
    {
        let mut meter = meter.lock().unwrap();
        meter.open_field_programming(now());
        meter.refuse_password = true;
    }
    let line = serve(meter).await;
    let profile = shipped("a1000");
    let mut driver = driver(&line);
    let (result, _) = driver
        .program(target(&profile, Tz::UTC), "set_clock", PASSWORD, now())
        .await;
    assert!(matches!(result, Err(ProgramError::PasswordRefused)), "{result:?}");
    // No write reached the meter.
    let received = line.received.lock().unwrap().clone();
    assert!(!received.iter().any(|frame| frame.starts_with(&[0x01, b'W'])));
    // A readout needs no password and no PRG.
    line.meter.lock().unwrap().close_field_programming();
    let (step, _) = driver
        .read(
            target(&profile, Tz::UTC),
            &mut Default::default(),
            ohmnibus::device::profile::RegisterGroup::Energy,
            true,
            &line.clock,
        )
        .await;
    assert!(matches!(step, ohmnibus::device::driver::Step::Done(_)), "{step:?}");
}

#[tokio::test]
async fn the_dry_run_lists_exactly_the_frames_the_meter_receives() {
    let meter = iec_meter(IecKind::A1000, 5, ADDRESS, now());
    meter.lock().unwrap().open_field_programming(now());
    let line = serve(meter).await;
    let profile = shipped("a1000");
    let planned = program_frames(target(&profile, Tz::UTC), &line.transport, "set_clock", now()).unwrap();
    let (result, _) = driver(&line)
        .program(target(&profile, Tz::UTC), "set_clock", PASSWORD, now())
        .await;
    result.unwrap();
    let planned: Vec<Vec<u8>> = planned.into_iter().map(|frame| frame.bytes).collect();
    // The break has no answer: wait until the simulator has taken it.
    let all_in = eventually(WAIT, || async { line.received.lock().unwrap().len() >= planned.len() }).await;
    assert!(all_in, "{:?}", line.received.lock().unwrap());
    let received = line.received.lock().unwrap().clone();
    assert_eq!(received.len(), planned.len());
    for (index, (got, meant)) in received.iter().zip(&planned).enumerate() {
        if index == 2 {
            // The password, masked in the dry run: SOH P1 STX (…) ETX BCC.
            assert_eq!(
                meant,
                &[&[0x01, b'P', b'1', 0x02][..], b"(********)", &[0x03, 0x61]].concat()
            );
            assert_eq!(
                got,
                &[&[0x01, b'P', b'1', 0x02][..], b"(00000000)", &[0x03, 0x61]].concat()
            );
        } else {
            assert_eq!(got, meant, "frame {index}");
        }
    }
}

/// The shipped A1000 profile with resets at addresses a test makes up:
/// no public source gives the real ones.
fn a1000_with_resets() -> Profile {
    let text = format!(
        "{}\n{}",
        include_str!("../../profiles/a1000.toml"),
        r#"
[iec62056.commands.billing_reset]
description = "test"
field_programming = true
writes = [{ address = "9.9.1", value = "1", read = "0.1.0", check = "changed" }]

[iec62056.commands.demand_reset]
description = "test"
field_programming = true
writes = [{ address = "9.9.2", value = "1", read = "1.6.0", check = "changed" }]
"#
    );
    Profile::parse("a1000-test.toml", &text).unwrap()
}

#[tokio::test]
async fn resets_close_the_billing_period_and_clear_the_maximum_demand() {
    let meter = iec_meter(IecKind::A1000, 5, ADDRESS, now());
    {
        let mut meter = meter.lock().unwrap();
        meter.config.reset_writes = vec![
            ResetWrite {
                address: "9.9.1".into(),
                reset: Reset::Billing,
            },
            ResetWrite {
                address: "9.9.2".into(),
                reset: Reset::Demand,
            },
        ];
        meter.open_field_programming(now());
    }
    let line = serve(meter).await;
    let profile = a1000_with_resets();
    let mut driver = driver(&line);

    let demand_before = line.meter.lock().unwrap().register_at("1-1:1.6.0", now()).unwrap();
    assert!(demand_before > 0.0);
    let (result, _) = driver
        .program(target(&profile, Tz::UTC), "demand_reset", PASSWORD, now())
        .await;
    let done = result.unwrap();
    assert_eq!(done.writes[0].after.as_deref(), Some("00.0000"));
    assert_eq!(line.meter.lock().unwrap().register_at("1-1:1.6.0", now()), Some(0.0));

    let energy = line.meter.lock().unwrap().register_at("1-1:1.8.0", now()).unwrap();
    let (result, _) = driver
        .program(target(&profile, Tz::UTC), "billing_reset", PASSWORD, now())
        .await;
    let done = result.unwrap();
    let (before, after) = (
        done.writes[0].before.clone().unwrap(),
        done.writes[0].after.clone().unwrap(),
    );
    assert_eq!(after.parse::<u32>().unwrap(), before.parse::<u32>().unwrap() + 1);
    let mut meter = line.meter.lock().unwrap();
    assert_eq!(meter.manual_resets(), [now()]);
    // The closed period's set holds the registers at the reset.
    assert_eq!(meter.register_at("1-1:1.8.0*101", now()), Some(energy));
}

//! The device page: latest values grouped as an operator reads a meter —
//! energy by tariff, history, demand, real-time per phase.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::command::command_sentence;
use super::device_iec::{iec_name, iec_sections, load_profile_summary};
use super::fleet::{cell, when};
use super::pages::{BillingLine, Cell, CommandOption, DevicePage, EventLine, QualityLine, Table};
use super::{signed_in, signed_in_page};
use crate::domain::ids::DeviceId;
use crate::domain::job::JobState;
use crate::domain::role::Right;
use crate::service::jobs::Requester;
use crate::store::billing::fetch_billing_periods;
use crate::store::buses::fetch_bus;
use crate::store::command_jobs::fetch_latest_command_job;
use crate::store::devices::fetch_device;
use crate::store::events::fetch_device_events;
use crate::store::intervals::{fetch_device_interval_minutes, fetch_interval_summary};
use crate::store::read_jobs::fetch_latest_read_job;
use crate::store::readings::{StoredReading, fetch_latest};
use crate::web::api::data_quality::{DataQuality, device_data_quality};
use crate::web::api::reads::start_read;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::state::AppState;

/// Billing periods shown on the device page; the API lists them all.
const BILLING_LINES: usize = 6;
/// Months of data quality shown on the device page (this one and the two
/// before); the API gives up to a year and a day.
const QUALITY_MONTHS: u32 = 3;

/// Energy quantities by OBIS value group C (register kind D = 8).
const ENERGIES: [(u8, &str); 6] = [
    (1, "Active import"),
    (2, "Active export"),
    (3, "Reactive import"),
    (4, "Reactive export"),
    (9, "Apparent import"),
    (10, "Apparent export"),
];
/// Maximum demand quantities by OBIS value group C (kind D = 6).
const DEMANDS: [(u8, &str); 4] = [
    (1, "Active import"),
    (2, "Active export"),
    (3, "Reactive import"),
    (4, "Reactive export"),
];
/// Real-time quantities: label, then the C group for L1, L2, L3 and total.
const PHASES: [(&str, [u8; 4]); 8] = [
    ("Voltage", [32, 52, 72, 0]),
    ("Current", [31, 51, 71, 0]),
    ("Active power import", [21, 41, 61, 1]),
    ("Active power export", [22, 42, 62, 2]),
    ("Reactive power import", [23, 43, 63, 3]),
    ("Reactive power export", [24, 44, 64, 4]),
    ("Apparent power", [29, 49, 69, 9]),
    ("Power factor", [33, 53, 73, 13]),
];

/// The latest reading of each code.
pub(super) struct Latest<'a>(pub(super) HashMap<&'a str, &'a StoredReading>);

impl Latest<'_> {
    /// A value cell; a value the device stamped (a maximum demand) shows when.
    /// An instant (unit `timestamp`, Unix seconds: an event's start or stop)
    /// shows as a date.
    pub(super) fn cell(&self, code: &str, decimals: usize) -> Cell {
        let reading = self.0.get(code);
        if let Some(r) = reading.filter(|r| r.unit == "timestamp") {
            return Cell {
                text: chrono::DateTime::from_timestamp(r.value as i64, 0)
                    .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|| format!("{}", r.value)),
                title: format!("{}", r.value),
                note: String::new(),
            };
        }
        let mut cell = cell(reading.map(|r| (r.value, r.unit.as_str())), decimals);
        if let Some(at) = reading.and_then(|r| r.captured_at) {
            cell.note = at.format("%Y-%m-%d %H:%M").to_string();
        }
        cell
    }

    fn has_any(&self, rows: &[(String, Vec<Cell>)]) -> bool {
        rows.iter()
            .flat_map(|(_, cells)| cells)
            .any(|cell| !cell.title.is_empty())
    }
}

fn tariff_table(latest: &Latest<'_>, caption: &str, kind: u8, suffix: &str, quantities: &[(u8, &str)]) -> Table {
    // Meters report on channel 1; a pulse concentrator's GME tariff registers on channel 0.
    let gme = latest
        .0
        .keys()
        .any(|code| code.starts_with("1-0:") && code.contains(".8."));
    let channel = if gme { 0 } else { 1 };
    let rows = quantities
        .iter()
        .map(|(c, label)| {
            let cells = (0..=4)
                .map(|e| latest.cell(&format!("1-{channel}:{c}.{kind}.{e}{suffix}"), 3))
                .collect();
            ((*label).to_owned(), cells)
        })
        .collect();
    Table {
        caption: caption.to_owned(),
        columns: ["Total", "T1", "T2", "T3", "T4"].map(String::from).to_vec(),
        rows,
    }
}

/// A pulse device's inputs: the engineering value of each, and its raw count.
fn pulse_table(latest: &Latest<'_>, inputs: u8) -> Table {
    let rows = (1..=inputs)
        .map(|n| {
            let derived = [
                format!("1-{n}:1.8.0"),
                format!("1-{n}:3.8.0"),
                format!("1-{n}:9.8.0"),
                format!("7-{n}:3.0.0"),
                format!("7-{n}:13.0.0"),
                format!("0-{n}:96.128.0"),
            ]
            .into_iter()
            .find(|code| latest.0.contains_key(code.as_str()));
            let value = derived.map(|code| latest.cell(&code, 3)).unwrap_or_else(Cell::empty);
            (
                format!("Input {n}"),
                vec![value, latest.cell(&format!("0-{n}:96.129.0"), 0)],
            )
        })
        .collect();
    Table {
        caption: "Pulse inputs".to_owned(),
        columns: vec!["Value".to_owned(), "Pulses counted".to_owned()],
        rows,
    }
}

fn phase_table(latest: &Latest<'_>) -> Table {
    let rows = PHASES
        .iter()
        .map(|(label, groups)| {
            let cells = groups
                .iter()
                .map(|&c| {
                    if c == 0 {
                        Cell::empty()
                    } else {
                        latest.cell(&format!("1-1:{c}.7.0"), 3)
                    }
                })
                .collect();
            ((*label).to_owned(), cells)
        })
        .collect();
    Table {
        caption: "Real-time values".to_owned(),
        columns: ["L1", "L2", "L3", "Total"].map(String::from).to_vec(),
        rows,
    }
}

pub async fn get_device_page(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<i64>,
) -> Response {
    signed_in_page(caller, &format!("/devices/{id}"), |caller| {
        build(&state, caller, DeviceId(id))
    })
    .await
}

async fn build(state: &AppState, caller: Caller, id: DeviceId) -> Result<DevicePage, ApiError> {
    let device = fetch_device(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no device {id}")))?;
    let readings = fetch_latest(&state.pool, id).await?;
    let latest = Latest(readings.iter().map(|r| (r.obis.as_str(), r)).collect());
    let profile = state.profiles.get(&device.profile);
    // A device with an IEC address is read over IEC 62056-21: its profile's
    // [iec62056] section names and groups its values.
    let iec = profile
        .as_ref()
        .and_then(|p| p.iec62056.as_ref())
        .filter(|_| device.iec_address.is_some());
    let mut sections = match iec {
        Some(iec) => {
            let mut sections = iec_sections(iec, &latest);
            sections.insert(1, phase_table(&latest));
            sections
        }
        None => vec![
            phase_table(&latest),
            tariff_table(&latest, "Energy by tariff", 8, "", &ENERGIES),
            tariff_table(&latest, "Maximum demand", 6, "", &DEMANDS),
            tariff_table(&latest, "Last billing period", 8, "*1", &ENERGIES),
            tariff_table(&latest, "Two billing periods ago", 8, "*2", &ENERGIES),
            tariff_table(&latest, "Maximum demand, last billing period", 6, "*1", &DEMANDS),
        ],
    };
    if let Some(inputs) = profile.as_ref().and_then(|p| p.pulse_inputs) {
        sections.insert(0, pulse_table(&latest, inputs));
    }
    sections.retain(|table| latest.has_any(&table.rows));
    let name_of = |code: &str| {
        if let Some(iec) = iec {
            return iec_name(iec, code).unwrap_or_default();
        }
        profile
            .as_ref()
            .and_then(|p| {
                p.registers.iter().find(|r| {
                    r.obis.to_string() == code || r.obis_negative.as_ref().is_some_and(|n| n.to_string() == code)
                })
            })
            .map(|r| r.name.clone())
            .unwrap_or_default()
    };
    // Intervals read from the meter's own profile, or derived from its
    // registers at the device's interval length.
    let (newest, last_day) =
        fetch_interval_summary(&state.pool, id, state.clock.now() - chrono::TimeDelta::hours(24)).await?;
    let (load_profile, load_profile_csv) = match iec.and_then(|iec| iec.load_profile.as_ref()) {
        Some(settings) => (
            load_profile_summary(newest, last_day, settings.interval_minutes),
            last_day > 0,
        ),
        None if newest.is_some() => {
            let minutes = fetch_device_interval_minutes(&state.pool, id).await?.unwrap_or(15);
            (
                load_profile_summary(newest, last_day, u32::try_from(minutes).unwrap_or(15)),
                last_day > 0,
            )
        }
        None => (String::new(), false),
    };
    let billing = fetch_billing_periods(&state.pool, id)
        .await?
        .into_iter()
        .take(BILLING_LINES)
        .map(|period| {
            let total = |code: &str| {
                period
                    .registers
                    .iter()
                    .find(|r| r.obis == code)
                    .map(|r| format!("{:.3} {}", r.value, r.unit))
                    .unwrap_or_default()
            };
            BillingLine {
                reset_at: when(Some(period.reset_at)),
                source: period.source.as_str(),
                flags: period.quality.names().join(", "),
                import: total("1-1:1.8.0"),
                export: total("1-1:2.8.0"),
            }
        })
        .collect();
    let now = state.clock.now();
    let data_quality = device_data_quality(&state.pool, &state.profiles, id, (None, now), QUALITY_MONTHS, now)
        .await?
        .map(quality_lines)
        .unwrap_or_default();
    let bus_kind = fetch_bus(&state.pool, device.bus_id)
        .await?
        .map(|bus| bus.transport.0.kind())
        .unwrap_or_default();
    let all_values = readings
        .iter()
        .map(|r| {
            let label = match name_of(&r.obis) {
                name if name.is_empty() => r.obis.clone(),
                name => format!("{} · {name}", r.obis),
            };
            (
                label,
                vec![
                    latest.cell(&r.obis, 3),
                    Cell {
                        text: when(Some(r.read_at)),
                        title: String::new(),
                        note: String::new(),
                    },
                ],
            )
        })
        .collect();
    let meter_clock = match (latest.0.get("1-0:0.9.2"), latest.0.get("1-0:0.9.1")) {
        (Some(date), Some(time)) => {
            let (d, t) = (date.value as u32, time.value as u32);
            format!(
                "20{:02}-{:02}-{:02} {:02}:{:02}:{:02} (read {})",
                d / 10_000,
                d / 100 % 100,
                d % 100,
                t / 10_000,
                t / 100 % 100,
                t % 100,
                when(Some(time.read_at))
            )
        }
        _ => "not read".to_owned(),
    };
    let read_job = fetch_latest_read_job(&state.pool, id).await?;
    let command_job = fetch_latest_command_job(&state.pool, id).await?;
    // Commands are Modbus writes: a device read over IEC 62056-21 takes none.
    let commands = profile
        .as_ref()
        .filter(|_| device.address.is_some())
        .map(|p| {
            p.modbus
                .commands
                .iter()
                .map(|(name, command)| CommandOption {
                    name: name.clone(),
                    description: command.description.clone(),
                    count: command.count,
                    broadcast: command.broadcast,
                    clock: command.clock.is_some(),
                })
                .collect()
        })
        .unwrap_or_default();
    let events = fetch_device_events(&state.pool, id, 20)
        .await?
        .into_iter()
        .map(|e| EventLine {
            code: e.code,
            severity: e.severity,
            started_at: when(Some(e.started_at)),
            cleared_at: e
                .cleared_at
                .map(|at| when(Some(at)))
                .unwrap_or_else(|| "active".to_owned()),
            message: e.message,
        })
        .collect();
    Ok(DevicePage {
        user: caller.user,
        id: device.id.0,
        name: device.name.clone(),
        bus: device.bus_name.clone(),
        bus_id: device.bus_id.0,
        profile: device.profile.clone(),
        address: device.address_text(),
        address_label: if device.iec_address.is_some() {
            "IEC device address"
        } else {
            "Address"
        },
        bus_kind,
        load_profile,
        load_profile_csv,
        billing,
        data_quality,
        state: device.state().as_str(),
        last_success: when(device.last_success_at),
        failures: device.consecutive_failures,
        last_error: device.last_error.clone().unwrap_or_default(),
        meter_clock,
        read_now_pending: read_job.as_ref().is_some_and(|j| j.state.is_pending())
            || command_job.as_ref().is_some_and(|j| j.state.is_pending()),
        can_command: caller.role.permits(Right::Configure),
        commands,
        last_command: command_job.map(command_sentence).unwrap_or_default(),
        last_read_now: read_job
            .map(|job| match job.state {
                JobState::Succeeded => format!(
                    "Read now by {}: succeeded, {} values, at {}.",
                    job.requested_by,
                    job.readings.unwrap_or(0),
                    when(job.finished_at)
                ),
                JobState::Failed => format!(
                    "Read now by {}: failed: {}.",
                    job.requested_by,
                    job.error.unwrap_or_default()
                ),
                other => format!("Read now by {}: {}…", job.requested_by, other.as_str()),
            })
            .unwrap_or_default(),
        legal_notice: state
            .profiles
            .get(&device.profile)
            .and_then(|p| p.legal_metrology.clone())
            .unwrap_or_default(),
        sections,
        all_values: Table {
            caption: "Every value".to_owned(),
            columns: vec!["Value".to_owned(), "Read".to_owned()],
            rows: all_values,
        },
        events,
    })
}

/// The "Read now" button.
pub async fn post_read_now(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<i64>,
) -> Response {
    let here = format!("/devices/{id}");
    let caller = match signed_in(caller, &here) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    let requester = Requester {
        user: &caller.user,
        idempotency_key: None,
    };
    match start_read(&state, &caller, requester, DeviceId(id)).await {
        Ok(_) => axum::response::Redirect::to(&here).into_response(),
        Err(error) => error.into_page(),
    }
}

/// The months that expect or hold intervals, each count with its share.
fn quality_lines(quality: DataQuality) -> Vec<QualityLine> {
    let with_share = |count: u64, share: f64| format!("{count} ({:.1} %)", share * 100.0);
    quality
        .months
        .into_iter()
        .filter(|m| m.expected + m.actual + m.estimated > 0)
        .map(|m| QualityLine {
            actual: with_share(m.actual, m.actual_share),
            estimated: with_share(m.estimated, m.estimated_share),
            missing: with_share(m.missing, m.missing_share),
            expected: m.expected,
            month: m.month,
        })
        .collect()
}

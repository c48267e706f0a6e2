//! The device page: latest values grouped as an operator reads a meter —
//! energy by tariff, history, demand, real-time per phase — then its load
//! profile, billing periods, data quality, jobs and events. [`build`] puts
//! the page together from one builder per section.

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::command::command_sentence;
use super::command_form::{command_forms, needs_calendars};
use super::device_iec::{iec_name, iec_sections, load_profile_summary};
use super::device_registers::{phase_table, pulse_table, register_sections};
use super::device_secret::password_line;
use super::fleet::when;
use super::latest::Latest;
use super::pages::{BillingLine, Cell, DevicePage, EventLine, QualityLine, Table};
use super::{signed_in, signed_in_page};
use crate::device::energy_display::{EnergyDisplay, KWH, MWH};
use crate::device::iec::IecSettings;
use crate::device::profile::Profile;
use crate::domain::ids::DeviceId;
use crate::domain::job::JobState;
use crate::domain::role::Right;
use crate::metering::billing::BillingPeriod;
use crate::service::data_quality::DataQuality;
use crate::service::device_overview::{DeviceOverview, IntervalSummary, LogbookState, device_overview};
use crate::service::jobs::start_read;
use crate::service::meter_identity::confirm_replacement;
use crate::service::tariff_calendars::list_calendars;
use crate::store::devices::DeviceRow;
use crate::store::events::EventRow;
use crate::store::identity::StoredIdentity;
use crate::store::load_profile_backfill::Backfill;
use crate::store::read_jobs::ReadJobRow;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::path::PagePath;
use crate::web::state::AppState;

pub(crate) async fn get_device_page(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<i64>,
) -> Response {
    signed_in_page(caller, &format!("/devices/{id}"), |caller| {
        build(&state, caller, DeviceId(id))
    })
    .await
}

async fn build(state: &AppState, caller: Caller, id: DeviceId) -> Result<DevicePage, ApiError> {
    let DeviceOverview {
        device,
        bus,
        readings,
        intervals,
        billing,
        data_quality,
        read_job,
        command_job,
        events,
        secrets,
        identity,
        held_readings,
        logbooks,
    } = device_overview(&state.pool, &state.profiles, &caller, id, state.clock.now()).await?;
    let latest = Latest::new(&readings);
    let profile = state.profiles.get(&device.profile);
    let calendars = match needs_calendars(profile.as_deref()) {
        true => list_calendars(&state.pool, &caller).await?,
        false => Vec::new(),
    };
    // A device with an IEC address is read over IEC 62056-21: its profile's
    // [iec62056] section names and groups its values.
    let iec = profile
        .as_ref()
        .and_then(|p| p.iec62056.as_ref())
        .filter(|_| device.iec_address.is_some());
    let (load_profile, load_profile_csv) = load_profile_section(intervals, iec, device.interval_minutes);
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
        bus_kind: bus.map(|bus| bus.transport.0.kind()).unwrap_or_default(),
        load_profile,
        load_profile_csv,
        billing: billing.into_iter().map(billing_line).collect(),
        backfill: data_quality
            .as_ref()
            .and_then(|quality| quality.backfill)
            .map(backfill_line)
            .unwrap_or_default(),
        data_quality: data_quality.map(quality_lines).unwrap_or_default(),
        state: device.state.as_str(),
        last_success: when(device.last_success_at),
        failures: device.consecutive_failures,
        last_error: device.last_error.clone().unwrap_or_default(),
        meter_clock: meter_clock(&latest),
        read_now_pending: is_pending(read_job.as_ref().map(|j| j.state))
            || is_pending(command_job.as_ref().map(|j| j.state)),
        can_command: caller.role.permits(Right::Configure),
        commands: command_forms(profile.as_deref(), device.address.is_some(), &calendars),
        last_command_id: command_job.as_ref().map_or(0, |job| job.id),
        last_command: command_job.map(command_sentence).unwrap_or_default(),
        last_read_now: read_job.map(read_now_sentence).unwrap_or_default(),
        password_refused: device.password_refused_at.map(|at| when(Some(at))).unwrap_or_default(),
        password: iec.map(|iec| password_line(iec, &secrets)).unwrap_or_default(),
        meter: meter_line(&identity),
        energy_display: profile
            .as_ref()
            .and_then(|p| p.energy_display.as_ref())
            .map(|display| energy_display_line(display, &device))
            .unwrap_or_default(),
        quarantined_since: identity.quarantined_since.map(|at| when(Some(at))).unwrap_or_default(),
        seen_identity: identity.seen.clone().unwrap_or_default(),
        expected_identity: identity.expected.clone().unwrap_or_default(),
        held_readings,
        legal_notice: profile
            .as_ref()
            .and_then(|p| p.legal_metrology.clone())
            .unwrap_or_default(),
        sections: value_sections(profile.as_deref(), iec, &latest),
        all_values: all_values_table(&latest, profile.as_deref(), iec),
        logbooks: logbooks.iter().map(logbook_line).collect(),
        events: events.into_iter().map(event_line).collect(),
    })
}

/// A logbook's name and what is stored of it, in a line.
fn logbook_line(state: &LogbookState) -> (String, String) {
    let name = match state.section {
        "programming_log" => format!("Programming log (P.{:02})", state.profile),
        _ => format!("Event logbook (P.{:02})", state.profile),
    };
    let stored = match (state.entries, state.newest) {
        (0, _) | (_, None) => "nothing stored".to_owned(),
        (1, Some(newest)) => format!("1 entry stored, of {}", when(Some(newest))),
        (n, Some(newest)) => format!("{n} entries stored, the newest of {}", when(Some(newest))),
    };
    let line = match state.refused {
        Some((refused_at, again)) => format!(
            "{stored}; the meter refused it on {} (it keeps none, or has logged nothing yet): asked again from {}, once a day until it answers.",
            when(Some(refused_at)),
            when(Some(again)),
        ),
        None => format!("{stored}; read after each load profile."),
    };
    (name, line)
}

/// What the meter counts its energies in, in a line: unit, decimals,
/// whether set for the device or the profile's default, and where its
/// registers roll over.
fn energy_display_line(display: &EnergyDisplay, device: &DeviceRow) -> String {
    let setting = display.setting(device.energy_unit.as_deref(), device.energy_decimals);
    let unit = if setting.mega { MWH } else { KWH };
    let whose = if device.energy_unit.is_some() || device.energy_decimals.is_some() {
        "as set for this device"
    } else {
        "the profile's default"
    };
    let top = display.wrap_point(setting) / if setting.mega { 1000.0 } else { 1.0 };
    let step = 10f64.powi(-i32::from(setting.decimals));
    format!(
        "{unit}, {} decimals ({whose}); registers roll over past {:.*} {unit}",
        setting.decimals,
        usize::from(setting.decimals),
        top - step
    )
}

/// The meter expected at the address, in a line: its identity, since
/// when, and its register series after a replacement.
fn meter_line(identity: &StoredIdentity) -> String {
    let Some(expected) = &identity.expected else {
        return String::new();
    };
    let mut line = format!("{expected}, since {}", when(identity.expected_since));
    if identity.series > 1 {
        line.push_str(&format!(
            "; register series {} from {}",
            identity.series,
            when(identity.series_started_at)
        ));
    }
    line
}

/// The value tables, in reading order; a table with no value is left out.
fn value_sections(profile: Option<&Profile>, iec: Option<&IecSettings>, latest: &Latest<'_>) -> Vec<Table> {
    let mut sections = match iec {
        Some(iec) => {
            let mut sections = iec_sections(iec, latest);
            sections.insert(1, phase_table(latest));
            sections
        }
        None => register_sections(latest),
    };
    if let Some(inputs) = profile.and_then(|p| p.pulse_inputs) {
        sections.insert(0, pulse_table(latest, inputs));
    }
    sections.retain(|table| latest.has_any(&table.rows));
    sections
}

/// Every latest value by OBIS code, named from the profile where it names it.
fn all_values_table(latest: &Latest<'_>, profile: Option<&Profile>, iec: Option<&IecSettings>) -> Table {
    let name_of = |code: &str| {
        if let Some(iec) = iec {
            return iec_name(iec, code).unwrap_or_default();
        }
        profile
            .and_then(|p| {
                p.registers.iter().find(|r| {
                    r.obis.to_string() == code || r.obis_negative.as_ref().is_some_and(|n| n.to_string() == code)
                })
            })
            .map(|r| r.name.clone())
            .unwrap_or_default()
    };
    let rows = latest
        .in_order()
        .map(|r| {
            let label = match name_of(&r.obis.to_string()) {
                name if name.is_empty() => r.obis.to_string(),
                name => format!("{} · {name}", r.obis),
            };
            (
                label,
                vec![
                    latest.cell(&r.obis.to_string(), 3),
                    Cell {
                        text: when(Some(r.read_at)),
                        title: String::new(),
                        note: String::new(),
                    },
                ],
            )
        })
        .collect();
    Table {
        caption: "Every value".to_owned(),
        columns: vec!["Value".to_owned(), "Read".to_owned()],
        rows,
    }
}

/// The load profile in a line, and whether the last day holds intervals
/// (for the CSV link): intervals read from the meter's own profile, or
/// derived from its registers at the device's interval length.
fn load_profile_section(
    intervals: IntervalSummary,
    iec: Option<&IecSettings>,
    device_interval_minutes: i32,
) -> (String, bool) {
    let IntervalSummary { newest, last_day } = intervals;
    match iec.and_then(|iec| iec.load_profile.as_ref()) {
        Some(settings) => (
            load_profile_summary(newest, last_day, settings.interval_minutes),
            last_day > 0,
        ),
        None if newest.is_some() => (
            load_profile_summary(newest, last_day, u32::try_from(device_interval_minutes).unwrap_or(15)),
            last_day > 0,
        ),
        None => (String::new(), false),
    }
}

/// A billing period with its import and export totals.
fn billing_line(period: BillingPeriod) -> BillingLine {
    let total = |code: &str| {
        period
            .registers
            .iter()
            .find(|r| r.obis.to_string() == code)
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
}

/// The first backfill of the meter's load profile, in a sentence.
fn backfill_line(backfill: Backfill) -> String {
    match backfill.completed_at {
        None => format!(
            "Backfill running, newest first: read back to {}; older intervals (to {}) are pending, not missing.",
            when(Some(backfill.oldest_reached)),
            when(Some(backfill.depth_limit)),
        ),
        Some(done) => format!(
            "Backfill complete ({}): read back to {}, the profile's depth or where the meter refused older ranges; nothing older is expected.",
            when(Some(done)),
            when(Some(backfill.oldest_reached)),
        ),
    }
}

/// The months that expect or hold intervals, each count with its share.
fn quality_lines(quality: DataQuality) -> Vec<QualityLine> {
    let with_share = |count: u64, share: f64| format!("{count} ({:.1} %)", share * 100.0);
    quality
        .months
        .into_iter()
        .filter(|m| m.expected + m.actual + m.estimated + m.pending > 0)
        .map(|m| QualityLine {
            pending: m.pending,
            actual: with_share(m.actual, m.actual_share),
            estimated: with_share(m.estimated, m.estimated_share),
            missing: with_share(m.missing, m.missing_share),
            expected: m.expected,
            month: m.month,
        })
        .collect()
}

/// The meter's clock as last read (date and time registers), or "not read".
fn meter_clock(latest: &Latest<'_>) -> String {
    match (latest.0.get("1-0:0.9.2"), latest.0.get("1-0:0.9.1")) {
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
    }
}

/// Whether a job in this state is still to finish (the page then refreshes fast).
fn is_pending(state: Option<JobState>) -> bool {
    state.is_some_and(JobState::is_pending)
}

/// The latest on-demand read, as a sentence.
fn read_now_sentence(job: ReadJobRow) -> String {
    match job.state {
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
    }
}

/// An event, an open one marked active.
fn event_line(e: EventRow) -> EventLine {
    EventLine {
        code: e.code.to_string(),
        severity: e.severity.to_string(),
        started_at: when(Some(e.started_at)),
        cleared_at: e
            .cleared_at
            .map(|at| when(Some(at)))
            .unwrap_or_else(|| "active".to_owned()),
        message: e.message,
    }
}

/// The meter-replacement form: the identity the engineer confirms.
#[derive(serde::Deserialize)]
pub(crate) struct ConfirmForm {
    identity: String,
}

/// The "Confirm replacement" button (engineer).
pub(crate) async fn post_confirm_replacement(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<i64>,
    axum::Form(form): axum::Form<ConfirmForm>,
) -> Response {
    let here = format!("/devices/{id}");
    let caller = match signed_in(caller, &here) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    let now = state.clock.now();
    match confirm_replacement(&state.pool, &caller, DeviceId(id), &form.identity, now).await {
        Ok(_) => axum::response::Redirect::to(&here).into_response(),
        Err(error) => ApiError::from(error).into_page(),
    }
}

/// The "Read now" button.
pub(crate) async fn post_read_now(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<i64>,
) -> Response {
    let here = format!("/devices/{id}");
    let caller = match signed_in(caller, &here) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    match start_read(&state.pool, &caller, None, DeviceId(id)).await {
        Ok(_) => axum::response::Redirect::to(&here).into_response(),
        Err(error) => ApiError::from(error).into_page(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn a_logbook_line_says_what_is_stored_and_when_a_refused_one_is_asked_again() {
        let at = |day: u32, hour: u32| Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0).unwrap();
        let read = LogbookState {
            section: "logbook",
            profile: 98,
            entries: 255,
            newest: Some(at(5, 10)),
            refused: None,
        };
        assert_eq!(
            logbook_line(&read),
            (
                "Event logbook (P.98)".to_owned(),
                "255 entries stored, the newest of 2026-12-05 10:00:00 UTC; read after each load profile.".to_owned()
            )
        );
        let refused = LogbookState {
            section: "programming_log",
            profile: 99,
            entries: 0,
            newest: None,
            refused: Some((at(5, 10), at(6, 10))),
        };
        assert_eq!(
            logbook_line(&refused),
            (
                "Programming log (P.99)".to_owned(),
                "nothing stored; the meter refused it on 2026-12-05 10:00:00 UTC (it keeps none, or has logged \
                 nothing yet): asked again from 2026-12-06 10:00:00 UTC, once a day until it answers."
                    .to_owned()
            )
        );
    }
}

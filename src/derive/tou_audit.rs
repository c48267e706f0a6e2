//! The TOU audit pass: for each closed billing period of a meter that keeps
//! its own tariff registers, compares their increase over the period with
//! the server's split of the period's intervals under the device's
//! calendar (`metering::statement::tou_audit`), once per period. A
//! difference beyond the site's tolerance (`sites.tou_tolerance_percent`,
//! default 1 % of the period's energy) raises a momentary `tou_mismatch`
//! event at the period's end naming the bands.
//!
//! A period whose intervals are incomplete (an interval missing, or none at
//! all) is recorded as `incomplete` and not compared: a gap would show as a
//! difference in every band, which is no evidence about the calendar. Such
//! a period is audited again on the next pass after intervals of it are
//! stored, until [`INCOMPLETE_RETRY_DAYS`] after its end, so intervals that
//! arrive late (a profile read after an outage, an estimate for a gap)
//! still give it a comparison; after that its `incomplete` record stands.

use std::collections::BTreeMap;

use chrono::TimeDelta;

use serde_json::json;

use super::DeriveServices;
use crate::domain::ids::CalendarId;
use crate::domain::obis::ObisCode;
use crate::metering::billing::BillingRegister;
use crate::metering::statement::quality::data_quality;
use crate::metering::statement::tou_audit::{QuantityAudit, RegisterValue, audit};
use crate::metering::statement::{energy_by_band, quantity::Family};
use crate::metering::tou::{BandSplit, Calendar, CalendarDefinition, CalendarVersions};
use crate::store::StoreError;
use crate::store::devices::fetch_device;
use crate::store::statements::fetch_period_intervals;
use crate::store::tariff_calendars::{fetch_site_calendar, fetch_versions};
use crate::store::tou_audits::{AuditCandidate, AuditOutcome, fetch_audit_candidates, insert_tou_audit};

/// How long after a billing period's end an `incomplete` audit of it is
/// retried: the estimation pass looks 40 days back (`estimate::WINDOW_DAYS`),
/// so a gap it fills is filled within this bound, and a late profile read
/// arrives well within it.
pub(crate) const INCOMPLETE_RETRY_DAYS: i64 = 45;

/// One round: every period not audited yet (or audited `incomplete` and
/// within [`INCOMPLETE_RETRY_DAYS`] of its end) whose device's site has a
/// calendar. Returns how many periods were audited.
pub(crate) async fn audit_billing_periods(services: &DeriveServices) -> Result<u64, StoreError> {
    let mut audited = 0;
    let retry_after = services.clock.now() - TimeDelta::days(INCOMPLETE_RETRY_DAYS);
    for candidate in fetch_audit_candidates(&services.pool, retry_after).await? {
        let Some((calendar, split)) = site_calendar(services, &candidate).await? else {
            continue;
        };
        audit_period(services, &candidate, calendar, &split).await?;
        audited += 1;
    }
    Ok(audited)
}

/// The calendar the device's site bills by, with all its versions, if it
/// has one. A stored definition that no longer parses is logged and the
/// site's periods wait (they are not recorded as audited).
async fn site_calendar(
    services: &DeriveServices,
    candidate: &AuditCandidate,
) -> Result<Option<(CalendarId, CalendarVersions)>, StoreError> {
    let Some(Some(id)) = fetch_site_calendar(&services.pool, candidate.site_id).await? else {
        return Ok(None);
    };
    let mut parsed = Vec::new();
    for row in fetch_versions(&services.pool, id).await? {
        let calendar = serde_json::from_value::<CalendarDefinition>(row.definition)
            .map_err(|error| error.to_string())
            .and_then(|definition| {
                Calendar::parse(&definition)
                    .map_err(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
            });
        match calendar {
            Ok(calendar) => parsed.push((row.effective_from, calendar)),
            Err(reason) => {
                tracing::warn!(calendar = %id, version = row.version, %reason, "tariff calendar version unreadable");
                return Ok(None);
            }
        }
    }
    match CalendarVersions::new(parsed) {
        Ok(versions) => Ok(Some((id, versions))),
        Err(error) => {
            tracing::warn!(calendar = %id, %error, "tariff calendar unusable");
            Ok(None)
        }
    }
}

fn registers(stored: &[BillingRegister]) -> BTreeMap<ObisCode, RegisterValue> {
    stored
        .iter()
        .map(|register| {
            (
                register.obis.clone(),
                RegisterValue {
                    value: register.value,
                    unit: register.unit,
                },
            )
        })
        .collect()
}

/// Audits one period under `split` and records the outcome.
pub(crate) async fn audit_period(
    services: &DeriveServices,
    candidate: &AuditCandidate,
    calendar: CalendarId,
    split: &(dyn BandSplit + Sync),
) -> Result<AuditOutcome, StoreError> {
    let pool = &services.pool;
    let intervals = fetch_period_intervals(pool, candidate.device_id, candidate.from, candidate.to).await?;
    let device = fetch_device(pool, candidate.device_id).await?;
    let nominal = device
        .as_ref()
        .map_or(15, |device| u32::try_from(device.interval_minutes).unwrap_or(15));
    // Where the meter's energy registers roll over, as it is set.
    let wrap = device.as_ref().and_then(|device| {
        services
            .profiles
            .get(&device.profile)?
            .energy_wrap(device.energy_unit.as_deref(), device.energy_decimals)
    });
    let quality = data_quality(&intervals, candidate.from, candidate.to, nominal);
    if quality.missing > 0 || quality.actual + quality.estimated == 0 {
        let detail = json!({"missing": quality.missing});
        insert_tou_audit(pool, candidate, calendar, AuditOutcome::Incomplete, &detail, None).await?;
        return Ok(AuditOutcome::Incomplete);
    }
    let energy = energy_by_band(&intervals, split, candidate.from, candidate.to);
    let tolerance = candidate.tolerance_percent / 100.0;
    let audits = audit(
        &registers(&candidate.start_registers.0),
        &registers(&candidate.end_registers.0),
        &energy,
        tolerance,
        wrap,
    );
    let detail = serde_json::Value::Array(audits.iter().map(detail).collect());
    let message = mismatch_message(&audits, candidate, calendar);
    let outcome = if message.is_some() {
        AuditOutcome::Mismatch
    } else {
        AuditOutcome::Matched
    };
    insert_tou_audit(pool, candidate, calendar, outcome, &detail, message.as_deref()).await?;
    Ok(outcome)
}

fn detail(audit: &QuantityAudit) -> serde_json::Value {
    json!({
        "quantity": audit.quantity.to_string(),
        "total_milli": audit.total.to_string(),
        "compared": audit.compared,
        "mismatches": audit.mismatches.iter().map(|m| json!({
            "band": m.band, "register": m.register.to_string(),
            "meter_milli": m.meter.to_string(), "server_milli": m.server.to_string(),
        })).collect::<Vec<_>>(),
    })
}

/// Milli-units as a number with three decimals of its unit.
fn amount(milli: i128, family: Family) -> String {
    // Energies of a billing period are far below 2^53 milli-units.
    #[allow(clippy::cast_precision_loss)]
    let value = milli as f64 / 1e6;
    format!("{value:.3} {}", family.energy_unit())
}

/// The event's message naming each band out of tolerance, or `None` when
/// every band agrees.
fn mismatch_message(audits: &[QuantityAudit], candidate: &AuditCandidate, calendar: CalendarId) -> Option<String> {
    let parts: Vec<String> = audits
        .iter()
        .flat_map(|audit| {
            let family = audit.quantity.family();
            audit.mismatches.iter().map(move |m| {
                format!(
                    "{} {} ({}): meter {}, server {}",
                    audit.quantity,
                    m.band,
                    m.register,
                    amount(m.meter, family),
                    amount(m.server, family)
                )
            })
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let bands: Vec<&str> = audits
        .iter()
        .flat_map(|audit| audit.mismatches.iter().map(|m| m.band.as_str()))
        .fold(Vec::new(), |mut bands, band| {
            if !bands.contains(&band) {
                bands.push(band);
            }
            bands
        });
    Some(format!(
        "tariff registers differ from calendar {} in bands {} over {} – {} (tolerance {} % of the period's energy): {}; \
         check the meter's calendar and clock",
        calendar.0,
        bands.join(", "),
        candidate.from.to_rfc3339(),
        candidate.to.to_rfc3339(),
        candidate.tolerance_percent,
        parts.join("; ")
    ))
}

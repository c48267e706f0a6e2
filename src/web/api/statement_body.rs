//! The JSON shape of a statement (`GET /api/v1/devices/{id}/statement`)
//! and its making from the service's answer: exact milli-unit sums shown
//! as decimals of kWh, kvarh, kVAh.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::metering::statement::demand::Peak;
use crate::metering::statement::quantity::Quantity;
use crate::service::statements::DeviceStatement;

/// An energy of one quantity.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"obis": "1-1:1.8.0", "value": 123.456, "unit": "kWh"}))]
pub(crate) struct Energy {
    /// The quantity by its register code: `1.8.0` import, `2.8.0` export,
    /// `3.8.0`/`4.8.0` reactive import/export, `5.8.0`–`8.8.0` reactive
    /// Q1–Q4, `9.8.0` apparent (`10.8.0` apparent export).
    pub obis: String,
    pub value: f64,
    /// `kWh`, `kvarh` or `kVAh`.
    pub unit: String,
}

/// A maximum demand: the largest average power over a window, and the
/// window's end.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"obis": "1-1:1.6.0", "value": 42.5, "unit": "kW", "at": "2026-03-10T08:15:00Z"}))]
pub(crate) struct MaxDemand {
    /// The demand register code of the quantity (`1-1:1.6.0`: active import).
    pub obis: String,
    pub value: f64,
    pub unit: String,
    /// End of the window.
    pub at: DateTime<Utc>,
}

/// One tariff band of the calendar.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct BandRow {
    /// The band's name in the calendar (`F1`, `T2`…).
    #[schema(example = "F1")]
    pub tariff: String,
    /// Every quantity the device records, 0 where the band had none.
    pub energy: Vec<Energy>,
    /// Active import maximum demand over windows wholly inside the band;
    /// null when none was.
    pub max_demand: Option<MaxDemand>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Total {
    pub energy: Vec<Energy>,
    /// Over every window, whatever its band.
    pub max_demand: Option<MaxDemand>,
}

/// How demand was computed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"method": "block", "cycle_minutes": 15, "step_minutes": 15}))]
pub(crate) struct DemandSetting {
    /// `block` or `rolling`.
    pub method: &'static str,
    pub cycle_minutes: u32,
    /// How far apart windows end (a block: its cycle).
    pub step_minutes: u32,
}

/// The COUNTIS E43/E44 energy balance (its manual §4.6.2): import minus
/// export over T1 and T2, here the calendar's first two bands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Balance {
    /// The bands taken as T1 and T2.
    pub bands: Vec<String>,
    /// kWh; null when the device records no active energy.
    pub active: Option<Amount>,
    /// kvarh; null when it records no reactive energy.
    pub reactive: Option<Amount>,
}

/// An amount with its unit.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"value": 183.456, "unit": "kWh"}))]
pub(crate) struct Amount {
    pub value: f64,
    pub unit: &'static str,
}

/// An interval a reader must see.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct FlaggedInterval {
    pub start: DateTime<Utc>,
    pub minutes: u32,
    /// Quality flags (`estimated`, `clock_uncertain`, `edited`…).
    pub flags: Vec<&'static str>,
    /// Sources of its channels: `meter`, `derived`, `estimated`, `edited`.
    pub sources: Vec<&'static str>,
}

/// The data behind the statement, counted in intervals (all channels of
/// one start count once).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct QualityShare {
    /// Measured, derived from registers, or corrected.
    pub actual: u32,
    /// Estimated by the server for a gap.
    pub estimated: u32,
    /// Intervals of the device's length that no stored interval covers;
    /// for a virtual meter, also those some member lacks (a partial sum is
    /// never counted).
    pub missing: u32,
    /// Intervals of the device's length, before the oldest a running first
    /// backfill of the meter's load profile has reached, that no stored
    /// interval covers yet: not in `missing`. Once the backfill is
    /// complete, time before the meter's oldest data is in neither.
    #[schema(example = 0)]
    pub pending: u32,
    /// For a virtual meter: interval starts where some member lacked an
    /// energy interval the others had (0 for a device).
    pub incomplete: u32,
    /// Flagged `clock_uncertain` (also in `flagged`).
    pub clock_uncertain: u32,
    /// Every interval with a flag, estimated or edited, by start.
    pub flagged: Vec<FlaggedInterval>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "device_id": 7, "from": "2026-03-01T00:00:00+01:00", "to": "2026-04-01T00:00:00+02:00",
    "calendar_id": 1, "time_zone": "Europe/Rome",
    "demand": {"method": "block", "cycle_minutes": 15, "step_minutes": 15},
    "bands": [
        {"tariff": "F1", "energy": [{"obis": "1-1:1.8.0", "value": 123.456, "unit": "kWh"}],
         "max_demand": {"obis": "1-1:1.6.0", "value": 42.5, "unit": "kW", "at": "2026-03-10T08:15:00Z"}},
        {"tariff": "F2", "energy": [{"obis": "1-1:1.8.0", "value": 60.0, "unit": "kWh"}], "max_demand": null},
        {"tariff": "F3", "energy": [{"obis": "1-1:1.8.0", "value": 80.5, "unit": "kWh"}], "max_demand": null}],
    "total": {"energy": [{"obis": "1-1:1.8.0", "value": 263.956, "unit": "kWh"}],
              "max_demand": {"obis": "1-1:1.6.0", "value": 42.5, "unit": "kW", "at": "2026-03-10T08:15:00Z"}},
    "balance": {"bands": ["F1", "F2"], "active": {"value": 183.456, "unit": "kWh"}, "reactive": null},
    "quality": {"actual": 2970, "estimated": 2, "missing": 0, "pending": 0, "incomplete": 0, "clock_uncertain": 0,
                "flagged": [{"start": "2026-03-12T10:00:00Z", "minutes": 15, "flags": ["estimated"], "sources": ["estimated"]}]},
    "refused_channels": []}))]
pub(crate) struct StatementBody {
    pub device_id: i64,
    /// Start of the period (inclusive), as asked.
    pub from: DateTime<Utc>,
    /// End of the period (exclusive), as asked.
    pub to: DateTime<Utc>,
    pub calendar_id: i64,
    /// The calendar's IANA zone, in which its bands are defined.
    pub time_zone: String,
    pub demand: DemandSetting,
    /// Every band of the calendar, in its order.
    pub bands: Vec<BandRow>,
    pub total: Total,
    pub balance: Balance,
    pub quality: QualityShare,
    /// Channels left out: a unit that does not fit the quantity, or a value
    /// that is not a number.
    pub refused_channels: Vec<String>,
}

/// Milli-units as an exact decimal text (`123456` → `0.123456`,
/// `-1500000` → `-1.5`).
pub(crate) fn decimal(milli: i128) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let whole = milli.unsigned_abs() / 1_000_000;
    let fraction = milli.unsigned_abs() % 1_000_000;
    if fraction == 0 {
        format!("{sign}{whole}")
    } else {
        let digits = format!("{fraction:06}");
        format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

fn value(milli: i128) -> f64 {
    decimal(milli).parse().unwrap_or(f64::NAN)
}

fn energy(quantity: &Quantity, milli: i128) -> Energy {
    Energy {
        obis: quantity.to_string(),
        value: value(milli),
        unit: quantity.family().energy_unit().to_string(),
    }
}

pub(crate) fn max_demand(quantity: &Quantity, peak: Peak) -> MaxDemand {
    MaxDemand {
        obis: quantity.demand_register(),
        value: peak.power(),
        unit: quantity.family().power_unit().to_string(),
        at: peak.at,
    }
}

/// The answer's body.
pub(crate) fn body(answer: &DeviceStatement) -> StatementBody {
    let statement = &answer.statement;
    let energy_of = |energies: &BTreeMap<Quantity, i128>| -> Vec<Energy> {
        energies
            .iter()
            .map(|(quantity, milli)| energy(quantity, *milli))
            .collect()
    };
    let demand_of = |peak: Option<Peak>| {
        statement
            .demand_quantity
            .as_ref()
            .zip(peak)
            .map(|(quantity, peak)| max_demand(quantity, peak))
    };
    let bands = statement
        .energy
        .bands
        .iter()
        .map(|band| BandRow {
            tariff: band.clone(),
            energy: statement.energy.by_band.get(band).map(energy_of).unwrap_or_default(),
            max_demand: demand_of(statement.demand.by_band.get(band).copied()),
        })
        .collect();
    let balance = &statement.balance;
    StatementBody {
        device_id: answer.device.0,
        from: answer.from,
        to: answer.to,
        calendar_id: answer.calendar.id.0,
        time_zone: answer.calendar.time_zone.clone(),
        demand: DemandSetting {
            method: answer.demand.name(),
            cycle_minutes: answer.demand.cycle_minutes(),
            step_minutes: answer.demand.step_minutes(),
        },
        bands,
        total: Total {
            energy: energy_of(&statement.energy.total),
            max_demand: demand_of(statement.demand.total),
        },
        balance: Balance {
            bands: balance.bands.clone(),
            active: balance.active.map(|milli| Amount {
                value: value(milli),
                unit: "kWh",
            }),
            reactive: balance.reactive.map(|milli| Amount {
                value: value(milli),
                unit: "kvarh",
            }),
        },
        quality: QualityShare {
            actual: statement.quality.actual,
            estimated: statement.quality.estimated,
            missing: statement.quality.missing,
            pending: statement.quality.pending,
            incomplete: statement.quality.incomplete,
            clock_uncertain: statement.quality.clock_uncertain,
            flagged: statement
                .quality
                .flagged
                .iter()
                .map(|flagged| FlaggedInterval {
                    start: flagged.start,
                    minutes: flagged.minutes,
                    flags: flagged.flags.clone(),
                    sources: flagged.sources.iter().map(|s| s.as_str()).collect(),
                })
                .collect(),
        },
        refused_channels: statement.refused_channels.iter().map(ToString::to_string).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milli_units_print_as_exact_decimals() {
        assert_eq!(decimal(0), "0");
        assert_eq!(decimal(123_456_000), "123.456");
        assert_eq!(decimal(1), "0.000001");
        assert_eq!(decimal(-1_500_000), "-1.5");
        assert_eq!(decimal(7_000_000), "7");
    }
}

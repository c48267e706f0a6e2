//! Billing statements: a device's energy per tariff band and quantity over
//! a period, its maximum demand per band, the COUNTIS E43/E44 energy
//! balance and the share of measured, estimated and missing data; and the
//! TOU audit, which checks a meter's own tariff registers against the
//! server's split. Pure: the intervals (the newest version of each) and the
//! band split come in as values. docs/STATEMENTS.md describes the rules.

pub(crate) mod balance;
pub(crate) mod demand;
pub(crate) mod energy;
pub(crate) mod quality;
pub(crate) mod quantity;
pub(crate) mod tou_audit;

use chrono::{DateTime, Utc};

pub(crate) use demand::DemandMethod;
pub(crate) use energy::{BandEnergy, energy_by_band};
pub(crate) use quantity::ChannelInterval;

use self::balance::{EnergyBalance, energy_balance};
use self::demand::{Demand, maximum_demand};
use self::energy::energy_of_slices;
pub(crate) use self::quality::DataStart;
use self::quality::{DataQuality, data_quality_from};
use self::quantity::{Quantity, slices};
use crate::domain::obis::ObisCode;
use crate::metering::tou::BandSplit;

/// What a statement is asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatementRequest {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub demand: DemandMethod,
    /// The device's interval length, for counting missing intervals.
    pub nominal_minutes: u32,
    /// Where its own data starts, as a backfill of its meter's load
    /// profile tells: uncovered time before it is pending or not counted.
    pub data_start: DataStart,
}

/// A device's statement for a period, in exact milli-units.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub energy: BandEnergy,
    /// The quantity whose maximum demand is given: active import, where the
    /// device records it (the maximum demand the meters register and bill,
    /// A1000 `1-1:1.6.x`, TH40C "potenza massima attiva entrante").
    pub demand_quantity: Option<Quantity>,
    pub demand: Demand,
    pub balance: EnergyBalance,
    pub quality: DataQuality,
    /// Channels left out: a unit that does not fit the quantity, or a value
    /// that is not a number.
    pub refused_channels: Vec<ObisCode>,
}

/// The statement of `intervals` (one device's, the newest version of each,
/// any that overlap the period) under `split`.
pub(crate) fn compute_statement(
    intervals: &[ChannelInterval],
    split: &dyn BandSplit,
    request: &StatementRequest,
) -> Statement {
    let (slices, refused_channels) = slices(intervals);
    let energy = energy_of_slices(&slices, split, request.from, request.to);
    let demand_quantity = energy.quantity(1).cloned();
    let demand = demand_quantity.as_ref().map_or_else(Demand::default, |quantity| {
        maximum_demand(&slices, quantity, split, request.demand, request.from, request.to)
    });
    Statement {
        balance: energy_balance(&energy),
        quality: data_quality_from(
            intervals,
            (request.from, request.to),
            request.nominal_minutes,
            request.data_start,
        ),
        energy,
        demand_quantity,
        demand,
        refused_channels,
    }
}

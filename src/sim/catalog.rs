//! Which shipped profiles have a simulator, and the model each one runs.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::concentrator::{ConcentratorModel, MODE_GME_S0};
use super::countis::{CountisModel, Firmware, TariffSource, Variant};
use super::meter::Th40cModel;
use super::model::MeterModel;

/// A model for a shipped profile, by profile name: `None` for a profile with
/// no simulator. `seed` picks the site (the same seed gives the same meter).
///
/// The COUNTIS E33 runs a V200.53 firmware (no "V201 only" registers, so a
/// head-end meets exception 02 on its optional blocks); the E43 and E44 run
/// V201 and answer every register of their profiles.
pub fn model_for(profile: &str, seed: u64, zone: Tz, start: DateTime<Utc>) -> Option<Box<dyn MeterModel>> {
    model_with(profile, seed, zone, start, Switches::default())
}

/// How the simulated meters are set up where the manual lets a meter differ.
#[derive(Debug, Clone, Copy, Default)]
pub struct Switches {
    /// A TH40C refuses every write with exception 01, "TWO PROTECT" (TH40C manual, App. E).
    pub write_protected: bool,
    /// A COUNTIS takes its tariff from its T1/T2 inputs, not the bus (E43/E44 manual, 9.1.1).
    pub tariff_inputs: bool,
}

/// [`model_for`], set up as `switches` say.
pub fn model_with(
    profile: &str,
    seed: u64,
    zone: Tz,
    start: DateTime<Utc>,
    switches: Switches,
) -> Option<Box<dyn MeterModel>> {
    let countis = |variant, firmware| {
        let mut model = CountisModel::new(variant, firmware, seed, zone, start);
        if switches.tariff_inputs {
            model.tariff_source = TariffSource::Inputs;
        }
        Box::new(model)
    };
    Some(match profile {
        "th40c" => {
            let mut model = Th40cModel::new(seed, zone, start);
            model.write_protected = switches.write_protected;
            Box::new(model)
        }
        "countis-e33" => countis(Variant::E33, Firmware::V200),
        "countis-e43" => countis(Variant::E43, Firmware::V201),
        "countis-e44" => countis(Variant::E44, Firmware::V201),
        // GME SØ mode: six independent inputs and the 16 tariff registers.
        "pulse-concentrator" => Box::new(ConcentratorModel::new(seed, zone, start, MODE_GME_S0)),
        _ => return None,
    })
}

/// The profiles [`model_for`] simulates.
pub const SIMULATED: &[&str] = &[
    "th40c",
    "countis-e33",
    "countis-e43",
    "countis-e44",
    "pulse-concentrator",
];

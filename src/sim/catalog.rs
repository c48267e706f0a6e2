//! Which shipped profiles have a simulator, and the model each one runs.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::concentrator::{ConcentratorModel, MODE_GME_S0};
use super::countis::{CountisModel, Firmware, Variant};
use super::meter::Th40cModel;
use super::model::MeterModel;

/// A model for a shipped profile, by profile name: `None` for a profile with
/// no simulator. `seed` picks the site (the same seed gives the same meter).
///
/// The COUNTIS E33 runs a V200.53 firmware (no "V201 only" registers, so a
/// head-end meets exception 02 on its optional blocks); the E43 and E44 run
/// V201 and answer every register of their profiles.
pub fn model_for(profile: &str, seed: u64, zone: Tz, start: DateTime<Utc>) -> Option<Box<dyn MeterModel>> {
    let countis = |variant, firmware| Box::new(CountisModel::new(variant, firmware, seed, zone, start));
    Some(match profile {
        "th40c" => Box::new(Th40cModel::new(seed, zone, start)),
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

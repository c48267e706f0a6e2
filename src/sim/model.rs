//! What a simulated meter is behind its register map: values by OBIS code,
//! and the commands its profile lets a head-end write. A [`super::device::SimDevice`]
//! turns these into registers through the profile, so a new meter type needs a
//! model, not a new server.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::concentrator::{ConcentratorModel, MODE_GME_S0};
use super::countis::{CountisModel, Firmware, Variant};
use super::meter::Th40cModel;
use crate::domain::obis::ObisCode;
use crate::protocol::modbus::frame::Exception;

pub trait MeterModel: Send {
    /// Integrates the meter's counters up to `now` (never backwards).
    fn advance(&mut self, now: DateTime<Utc>);

    /// The engineering value of `code` as the meter shows it at `now` (after
    /// [`MeterModel::advance`]), and its capture time if it has one. Signed
    /// powers are given under their import code (negative = export). `None`:
    /// the meter has no value (served as the profile's "not available"
    /// pattern where it has one, else 0).
    fn value(&self, code: &ObisCode, now: DateTime<Utc>) -> Option<(f64, Option<DateTime<Utc>>)>;

    /// A write to the profile command `name` (its `[modbus.commands]` key)
    /// with the values written (already checked against the command's
    /// register count). The error is the exception the meter answers.
    fn command(&mut self, name: &str, values: &[u16], now: DateTime<Utc>) -> Result<(), Exception>;

    /// Zone of the meter's clock: time stamps it keeps in local time (a
    /// demand's MMDD/HHMM) are served in it.
    fn zone(&self) -> Tz {
        Tz::UTC
    }

    /// Whether the meter's firmware has the profile's `optional` registers;
    /// an older firmware answers exception 02 to them.
    fn has_optional_registers(&self) -> bool {
        true
    }
}

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

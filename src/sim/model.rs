//! What a simulated meter is behind its register map: values by OBIS code,
//! and the commands its profile lets a head-end write. A [`super::device::SimDevice`]
//! turns these into registers through the profile, so a new meter type needs a
//! model, not a new server; [`super::catalog`] names the model of each shipped
//! profile.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

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

    /// A write of pulse input `input`'s settings (a profile write with
    /// `encode = "channel_config"`): unit code, pulse weight code, CT ratio,
    /// VT ratio x10, OFF time in ms. Only a device with pulse inputs has any.
    fn configure_input(&mut self, _input: u16, _values: &[u16]) -> Result<(), Exception> {
        Err(Exception::IllegalDataAddress)
    }

    /// Zone of the meter's clock: time stamps it keeps in local time (a
    /// demand's MMDD/HHMM) are served in it.
    fn zone(&self) -> Tz {
        Tz::UTC
    }

    /// Registers the model serves itself, outside its profile's map (a
    /// COUNTIS's load curve and name strings); `None`: the profile's.
    fn read_own(&mut self, _start: u16, _count: u16, _now: DateTime<Utc>) -> Option<Result<Vec<u16>, Exception>> {
        None
    }

    /// A write the model takes itself (a COUNTIS's load-curve pointer);
    /// `None`: a profile command's.
    fn write_own(&mut self, _start: u16, _values: &[u16]) -> Option<Result<(), Exception>> {
        None
    }

    /// Whether the meter's firmware has the profile's `optional` registers;
    /// an older firmware answers exception 02 to them.
    fn has_optional_registers(&self) -> bool {
        true
    }
}

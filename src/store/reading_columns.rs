//! A batch of readings as the statements take it: one array per column
//! (UNNEST), for the series, the latest values and the held readings.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::query::{Query, QueryAs};
use sqlx::{Encode, Postgres, Type};

use crate::device::reading::Reading;
use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::unit::Unit;

/// A batch of readings as the statements take it: one array per column,
/// bound as `$1`…`$7` (device, code, read at, value, unit, captured at,
/// quality).
pub(super) struct ReadingColumns<'a> {
    devices: Vec<i64>,
    codes: Vec<&'a ObisCode>,
    times: Vec<DateTime<Utc>>,
    values: Vec<f64>,
    units: Vec<Unit>,
    captured: Vec<Option<DateTime<Utc>>>,
    quality: Vec<Quality>,
}

impl<'a> ReadingColumns<'a> {
    /// The columns of `batch`, each reading's quality as `quality` gives it.
    pub(super) fn new(batch: &'a [(DeviceId, Reading)], quality: impl Fn(&Reading) -> Quality) -> Self {
        ReadingColumns {
            devices: batch.iter().map(|(d, _)| d.0).collect(),
            codes: batch.iter().map(|(_, r)| &r.obis).collect(),
            times: batch.iter().map(|(_, r)| r.read_at).collect(),
            values: batch.iter().map(|(_, r)| r.value).collect(),
            units: batch.iter().map(|(_, r)| r.unit).collect(),
            captured: batch.iter().map(|(_, r)| r.captured_at).collect(),
            quality: batch.iter().map(|(_, r)| quality(r)).collect(),
        }
    }

    /// Binds the seven columns, in order, to a statement.
    pub(super) fn bind<'q, Q: Binds<'q>>(&'q self, query: Q) -> Q {
        query
            .bind_value(&self.devices)
            .bind_value(&self.codes)
            .bind_value(&self.times)
            .bind_value(&self.values)
            .bind_value(&self.units)
            .bind_value(&self.captured)
            .bind_value(&self.quality)
    }
}

/// A statement values are bound to, answering rows or not.
pub(super) trait Binds<'q>: Sized {
    fn bind_value<T: 'q + Encode<'q, Postgres> + Type<Postgres>>(self, value: T) -> Self;
}

impl<'q> Binds<'q> for Query<'q, Postgres, PgArguments> {
    fn bind_value<T: 'q + Encode<'q, Postgres> + Type<Postgres>>(self, value: T) -> Self {
        self.bind(value)
    }
}

impl<'q, O> Binds<'q> for QueryAs<'q, Postgres, O, PgArguments> {
    fn bind_value<T: 'q + Encode<'q, Postgres> + Type<Postgres>>(self, value: T) -> Self {
        self.bind(value)
    }
}

//! A site's zone as part of a row: the `time_zone` column, read with the
//! `site_id` beside it so that a stored name which is no IANA zone is an
//! error naming its site instead of a silent UTC. A row struct takes it as
//! `#[sqlx(flatten)] time_zone: IanaZone`; its query selects `s.time_zone`
//! and the site's id as `site_id`.

use sqlx::postgres::PgRow;
use sqlx::{FromRow, Row};

use crate::domain::zone::IanaZone;

impl<'r> FromRow<'r, PgRow> for IanaZone {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let text: &str = row.try_get("time_zone")?;
        text.parse().map_err(|error| {
            let site: i64 = row.try_get("site_id").unwrap_or_default();
            sqlx::Error::ColumnDecode {
                index: format!("time_zone of site {site}"),
                source: Box::new(error),
            }
        })
    }
}

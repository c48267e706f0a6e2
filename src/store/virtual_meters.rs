//! Virtual meters: a named signed sum of devices of one site. Their ids come
//! from the devices' identity sequence (migration `site_tree`), so an id
//! names a device or a virtual meter, never both.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use super::error::{StoreError, on_constraint};
use crate::domain::ids::{DeviceId, SiteId, VirtualMeterId};

/// A virtual meter with its terms in their order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct VirtualMeterRow {
    pub id: VirtualMeterId,
    pub site_id: SiteId,
    pub name: String,
    pub parent_device_id: Option<DeviceId>,
    pub created_at: DateTime<Utc>,
    pub term_devices: Vec<DeviceId>,
    /// +1 or −1, one per device.
    pub term_signs: Vec<i16>,
}

fn on_meter_constraint(error: sqlx::Error) -> StoreError {
    let name = error.as_database_error().and_then(|db| db.constraint());
    let (field, reason) = match name {
        Some("virtual_meters_site_name_key") => ("name", "a virtual meter of this site already has this name"),
        Some("virtual_meters_site_id_fkey") => ("site_id", "no such site"),
        Some("virtual_meters_parent_same_site_fkey") => ("parent_device_id", "no such device on the site"),
        Some("virtual_meter_terms_device_same_site_fkey") => ("terms", "a term's device is not on the site"),
        _ => return on_constraint(error),
    };
    StoreError::Conflict {
        field,
        reason: reason.to_owned(),
    }
}

/// Inserts a virtual meter and its terms (device, sign) in order.
pub(crate) async fn insert_virtual_meter(
    db: &mut PgConnection,
    site: SiteId,
    name: &str,
    parent: Option<DeviceId>,
    terms: &[(DeviceId, i16)],
) -> Result<VirtualMeterId, StoreError> {
    let id: VirtualMeterId = sqlx::query_scalar(
        "INSERT INTO virtual_meters (site_id, name, parent_device_id) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(site)
    .bind(name)
    .bind(parent)
    .fetch_one(&mut *db)
    .await
    .map_err(on_meter_constraint)?;
    let devices: Vec<DeviceId> = terms.iter().map(|term| term.0).collect();
    let signs: Vec<i16> = terms.iter().map(|term| term.1).collect();
    sqlx::query(
        "INSERT INTO virtual_meter_terms (virtual_meter_id, site_id, position, device_id, sign) \
         SELECT $1, $2, t.n, t.device, t.sign FROM UNNEST($3::bigint[], $4::smallint[]) WITH ORDINALITY \
                AS t(device, sign, n)",
    )
    .bind(id)
    .bind(site)
    .bind(&devices)
    .bind(&signs)
    .execute(&mut *db)
    .await
    .map_err(on_meter_constraint)?;
    Ok(id)
}

/// The common SELECT, completed with a literal tail (sqlx takes only static SQL).
macro_rules! select_meters {
    ($tail:literal) => {
        concat!(
            "SELECT v.id, v.site_id, v.name, v.parent_device_id, v.created_at, \
                    COALESCE(array_agg(t.device_id ORDER BY t.position) FILTER (WHERE t.device_id IS NOT NULL), '{}') \
                        AS term_devices, \
                    COALESCE(array_agg(t.sign ORDER BY t.position) FILTER (WHERE t.device_id IS NOT NULL), '{}') \
                        AS term_signs \
             FROM virtual_meters v LEFT JOIN virtual_meter_terms t ON t.virtual_meter_id = v.id ",
            $tail
        )
    };
}

pub(crate) async fn fetch_virtual_meter<'e>(
    db: impl PgExecutor<'e>,
    id: VirtualMeterId,
) -> Result<Option<VirtualMeterRow>, StoreError> {
    Ok(sqlx::query_as(select_meters!("WHERE v.id = $1 GROUP BY v.id"))
        .bind(id)
        .fetch_optional(db)
        .await?)
}

/// Every virtual meter, or those of one site, by id.
pub(crate) async fn fetch_virtual_meters<'e>(
    db: impl PgExecutor<'e>,
    site: Option<SiteId>,
) -> Result<Vec<VirtualMeterRow>, StoreError> {
    Ok(sqlx::query_as(select_meters!(
        "WHERE ($1::bigint IS NULL OR v.site_id = $1) GROUP BY v.id ORDER BY v.id"
    ))
    .bind(site)
    .fetch_all(db)
    .await?)
}

//! Buses and their sites.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, PgPool};

use super::error::{StoreError, on_constraint};
use crate::domain::ids::{BusId, SiteId};
use crate::domain::transport::Transport;
use crate::domain::zone::IanaZone;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BusRow {
    pub id: BusId,
    pub site_id: SiteId,
    pub name: String,
    pub transport: Json<Transport>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    /// IANA zone of the bus's site.
    #[sqlx(flatten)]
    pub time_zone: IanaZone,
}

/// The common SELECT, completed with a literal tail (sqlx takes only static SQL).
macro_rules! select_buses {
    ($tail:literal) => {
        concat!(
            "SELECT b.id, b.site_id, b.name, b.transport, b.enabled, b.created_at, s.time_zone \
                      FROM buses b JOIN sites s ON s.id = b.site_id",
            " ",
            $tail
        )
    };
}

pub async fn insert_bus(
    db: &mut PgConnection,
    name: &str,
    site_id: Option<SiteId>,
    transport: &Transport,
) -> Result<BusRow, StoreError> {
    let id: BusId = sqlx::query_scalar(
        "INSERT INTO buses (name, site_id, transport) \
         VALUES ($1, COALESCE($2, (SELECT min(id) FROM sites)), $3) RETURNING id",
    )
    .bind(name)
    .bind(site_id)
    .bind(Json(transport))
    .fetch_one(&mut *db)
    .await
    .map_err(on_constraint)?;
    Ok(fetch_bus(&mut *db, id).await?.expect("bus just inserted"))
}

pub async fn fetch_bus<'e>(db: impl PgExecutor<'e>, id: BusId) -> Result<Option<BusRow>, StoreError> {
    Ok(sqlx::query_as(select_buses!("WHERE b.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?)
}

pub async fn fetch_buses(pool: &PgPool) -> Result<Vec<BusRow>, StoreError> {
    Ok(sqlx::query_as(select_buses!("ORDER BY b.id")).fetch_all(pool).await?)
}

/// Creates the bus, or points an existing bus of that name at `transport`
/// (the demo's simulators get new ports on every run).
pub async fn upsert_bus(pool: &PgPool, name: &str, transport: &Transport) -> Result<BusRow, StoreError> {
    let id: BusId = sqlx::query_scalar(
        "INSERT INTO buses (name, site_id, transport) VALUES ($1, (SELECT min(id) FROM sites), $2) \
         ON CONFLICT (name) DO UPDATE SET transport = EXCLUDED.transport RETURNING id",
    )
    .bind(name)
    .bind(Json(transport))
    .fetch_one(pool)
    .await
    .map_err(on_constraint)?;
    Ok(fetch_bus(pool, id).await?.expect("bus just written"))
}

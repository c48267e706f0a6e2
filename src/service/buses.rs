//! Buses: creating one (engineer), and looking them up.

use sqlx::PgPool;

use super::{Caller, ServiceError};
use crate::domain::ids::{BusId, SiteId};
use crate::domain::role::Right;
use crate::domain::transport::Transport;
use crate::store::audit::insert_audit;
use crate::store::buses::{BusRow, fetch_bus, fetch_buses, insert_bus};

/// A bus to create.
#[derive(Debug, Clone)]
pub struct NewBus {
    pub name: String,
    pub transport: Transport,
    /// The default site when none.
    pub site_id: Option<SiteId>,
}

/// Creates a bus: a name that is not blank (nor taken: a conflict on
/// `name`), a transport whose settings hold. Audited.
pub async fn create_bus(pool: &PgPool, caller: &Caller, new: &NewBus) -> Result<BusRow, ServiceError> {
    caller.require(Right::Configure)?;
    let name = new.name.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid("name", "must not be empty"));
    }
    new.transport
        .check()
        .map_err(|error| ServiceError::invalid(error.field, error.reason))?;
    let mut transaction = pool.begin().await?;
    let row = insert_bus(&mut transaction, name, new.site_id, &new.transport).await?;
    insert_audit(
        &mut *transaction,
        &caller.user,
        "create_bus",
        &format!("bus/{}", row.id),
        serde_json::json!({"name": name, "transport": new.transport}),
    )
    .await?;
    transaction.commit().await?;
    Ok(row)
}

pub async fn list_buses(pool: &PgPool, caller: &Caller) -> Result<Vec<BusRow>, ServiceError> {
    caller.require(Right::Read)?;
    Ok(fetch_buses(pool).await?)
}

pub async fn get_bus(pool: &PgPool, caller: &Caller, id: BusId) -> Result<BusRow, ServiceError> {
    caller.require(Right::Read)?;
    fetch_bus(pool, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no bus {id}")))
}

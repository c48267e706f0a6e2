//! A site's tree of meters: which site a device belongs to and the meter
//! upstream of it (`devices.site_id`, `devices.parent_device_id`).

use sqlx::{PgConnection, PgExecutor};

use super::error::{StoreError, on_constraint};
use crate::domain::ids::{DeviceId, SiteId};

/// The constraints of the tree by the field they concern, then the shared ones.
pub(super) fn on_tree_constraint(error: sqlx::Error) -> StoreError {
    let name = error.as_database_error().and_then(|db| db.constraint());
    let (field, reason) = match name {
        Some("devices_site_id_fkey") => ("site_id", "no such site"),
        Some("devices_parent_same_site_fkey") => ("parent_device_id", "no such device on the device's site"),
        Some("devices_parent_not_self_check") => ("parent_device_id", "a device cannot be its own parent"),
        Some("virtual_meter_terms_device_same_site_fkey") => (
            "site_id",
            "a virtual meter counts this device; its terms stay on their site",
        ),
        Some("virtual_meters_parent_same_site_fkey") => (
            "site_id",
            "a virtual meter names this device as its parent; it stays on its site",
        ),
        _ => return on_constraint(error),
    };
    StoreError::Conflict {
        field,
        reason: reason.to_owned(),
    }
}

/// Serialises changes to one site's tree until the transaction ends, so
/// that two changes cannot close a cycle between them.
pub(crate) async fn lock_site_tree(db: &mut PgConnection, site: SiteId) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('ohmnibus_site_tree'), hashtext($1::text))")
        .bind(site.0.to_string())
        .execute(db)
        .await?;
    Ok(())
}

/// A device's site and parent, or `None` when there is no such device.
pub(crate) async fn fetch_device_place<'e>(
    db: impl PgExecutor<'e>,
    id: DeviceId,
) -> Result<Option<(SiteId, Option<DeviceId>)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT site_id, parent_device_id FROM devices WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

/// The chain from `device` up to its site's root: the device, its parent,
/// the parent's parent… Stops at a device seen before, so a stored cycle
/// (which the service never writes) cannot loop.
pub(crate) async fn fetch_upstream_chain<'e>(
    db: impl PgExecutor<'e>,
    device: DeviceId,
) -> Result<Vec<DeviceId>, StoreError> {
    Ok(sqlx::query_scalar(
        "WITH RECURSIVE up (id, parent, depth) AS ( \
             SELECT id, parent_device_id, 0 FROM devices WHERE id = $1 \
             UNION ALL \
             SELECT d.id, d.parent_device_id, up.depth + 1 FROM devices d JOIN up ON d.id = up.parent \
             WHERE up.depth < 10000 \
         ) CYCLE id SET looped USING path \
         SELECT id FROM up WHERE NOT looped ORDER BY depth",
    )
    .bind(device)
    .fetch_all(db)
    .await?)
}

/// The devices that name `device` as their parent, by id.
pub(crate) async fn fetch_children<'e>(db: impl PgExecutor<'e>, device: DeviceId) -> Result<Vec<DeviceId>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM devices WHERE parent_device_id = $1 ORDER BY id")
            .bind(device)
            .fetch_all(db)
            .await?,
    )
}

/// The virtual meters that count a device as a term or name it as their
/// parent, by id: they tie it to its site.
pub(crate) async fn fetch_virtual_meters_using<'e>(
    db: impl PgExecutor<'e>,
    device: DeviceId,
) -> Result<Vec<DeviceId>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM virtual_meters WHERE parent_device_id = $1 \
         UNION SELECT virtual_meter_id FROM virtual_meter_terms WHERE device_id = $1 ORDER BY 1",
    )
    .bind(device)
    .fetch_all(db)
    .await?)
}

/// Moves a device to `site` under `parent` (or none).
pub(crate) async fn update_device_place(
    db: &mut PgConnection,
    id: DeviceId,
    site: SiteId,
    parent: Option<DeviceId>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE devices SET site_id = $2, parent_device_id = $3 WHERE id = $1")
        .bind(id)
        .bind(site)
        .bind(parent)
        .execute(db)
        .await
        .map_err(on_tree_constraint)?;
    Ok(())
}

/// Whether a site of this id exists.
pub(crate) async fn site_exists<'e>(db: impl PgExecutor<'e>, site: SiteId) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sites WHERE id = $1)")
        .bind(site)
        .fetch_one(db)
        .await?)
}

/// A node of a site's tree: a device or a virtual meter with what is
/// upstream of it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct TreeNodeRow {
    pub id: DeviceId,
    pub name: String,
    pub parent_device_id: Option<DeviceId>,
    /// True for a virtual meter.
    pub is_virtual: bool,
}

/// Every device and virtual meter of a site, by id.
pub(crate) async fn fetch_site_tree<'e>(db: impl PgExecutor<'e>, site: SiteId) -> Result<Vec<TreeNodeRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, name, parent_device_id, false AS is_virtual FROM devices WHERE site_id = $1 \
         UNION ALL \
         SELECT id, name, parent_device_id, true FROM virtual_meters WHERE site_id = $1 \
         ORDER BY id",
    )
    .bind(site)
    .fetch_all(db)
    .await?)
}

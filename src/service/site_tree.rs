//! Where a device sits in its site's tree: its site and the meter upstream
//! of it. The rules (docs/SITES.md): the parent is on the same site, is
//! not the device itself, and is not downstream of it (no cycles). Each
//! refusal names the field at fault. Checked inside the change's
//! transaction, with the site's tree locked, so two changes cannot close a
//! cycle between them.

use sqlx::PgConnection;

use super::ServiceError;
use crate::domain::ids::{DeviceId, SiteId};
use crate::store::sites_tree::{
    fetch_children, fetch_device_place, fetch_upstream_chain, fetch_virtual_meters_using, lock_site_tree, site_exists,
};

/// A place asked for: `None` keeps the current value (for a new device:
/// its bus's site, no parent); `parent: Some(None)` detaches it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlaceChange {
    pub site_id: Option<SiteId>,
    pub parent_device_id: Option<Option<DeviceId>>,
}

/// A checked place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    pub site: SiteId,
    pub parent: Option<DeviceId>,
}

/// Checks the place of a device about to be created on a bus of `bus_site`.
pub(crate) async fn new_device_place(
    db: &mut PgConnection,
    bus_site: SiteId,
    change: PlaceChange,
) -> Result<Place, ServiceError> {
    let site = change.site_id.unwrap_or(bus_site);
    check_site(db, site).await?;
    lock_site_tree(db, site).await?;
    let parent = change.parent_device_id.flatten();
    if let Some(parent) = parent {
        check_parent_site(db, parent, site).await?;
    }
    Ok(Place { site, parent })
}

/// Checks the place `change` gives an existing device; `None` when there is
/// no such device.
pub(crate) async fn changed_place(
    db: &mut PgConnection,
    device: DeviceId,
    change: PlaceChange,
) -> Result<Option<Place>, ServiceError> {
    let Some((current_site, current_parent)) = fetch_device_place(&mut *db, device).await? else {
        return Ok(None);
    };
    let site = change.site_id.unwrap_or(current_site);
    if site != current_site {
        check_site(db, site).await?;
        lock_site_tree(db, current_site).await?;
    }
    lock_site_tree(db, site).await?;
    let parent = change.parent_device_id.unwrap_or(current_parent);
    if site != current_site {
        let children = fetch_children(&mut *db, device).await?;
        if !children.is_empty() {
            return Err(ServiceError::invalid(
                "site_id",
                format!(
                    "devices {} name device {device} as their parent on site {current_site}; \
                     move or detach them first",
                    list(&children)
                ),
            ));
        }
        let meters = fetch_virtual_meters_using(&mut *db, device).await?;
        if !meters.is_empty() {
            return Err(ServiceError::invalid(
                "site_id",
                format!(
                    "virtual meters {} of site {current_site} count device {device} or sit below it",
                    list(&meters)
                ),
            ));
        }
    }
    if let Some(parent) = parent {
        if parent == device {
            return Err(ServiceError::invalid(
                "parent_device_id",
                format!("device {device} cannot be its own parent"),
            ));
        }
        check_parent_site(db, parent, site).await?;
        let chain = fetch_upstream_chain(&mut *db, parent).await?;
        if let Some(at) = chain.iter().position(|id| *id == device) {
            let path: Vec<DeviceId> = chain[..=at].iter().rev().copied().collect();
            return Err(ServiceError::invalid(
                "parent_device_id",
                format!(
                    "device {parent} is downstream of device {device} ({}); a meter cannot be upstream of itself",
                    path.iter().map(ToString::to_string).collect::<Vec<_>>().join(" → ")
                ),
            ));
        }
    }
    Ok(Some(Place { site, parent }))
}

async fn check_site(db: &mut PgConnection, site: SiteId) -> Result<(), ServiceError> {
    if site_exists(&mut *db, site).await? {
        Ok(())
    } else {
        Err(ServiceError::invalid("site_id", format!("no site {site}")))
    }
}

async fn check_parent_site(db: &mut PgConnection, parent: DeviceId, site: SiteId) -> Result<(), ServiceError> {
    match fetch_device_place(&mut *db, parent).await? {
        None => Err(ServiceError::invalid("parent_device_id", format!("no device {parent}"))),
        Some((parent_site, _)) if parent_site != site => Err(ServiceError::invalid(
            "parent_device_id",
            format!("device {parent} is on site {parent_site}, not on site {site}"),
        )),
        Some(_) => Ok(()),
    }
}

fn list(ids: &[DeviceId]) -> String {
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

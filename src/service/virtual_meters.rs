//! Virtual meters: a named sum or difference of devices of one site
//! (docs/SITES.md), e.g. "main − feeders" or "line 1 + line 2". Terms
//! are devices only, not other virtual meters, so a sum never refers to
//! itself. Creating one takes the engineer's right; reading, the viewer's.

use sqlx::PgPool;

use super::{Caller, ServiceError};
use crate::domain::ids::{DeviceId, SiteId, VirtualMeterId};
use crate::domain::role::Right;
use crate::store::audit::insert_audit;
use crate::store::sites_tree::{fetch_device_place, site_exists};
use crate::store::virtual_meters::{VirtualMeterRow, fetch_virtual_meter, fetch_virtual_meters, insert_virtual_meter};

/// A term as asked: a device and +1 or −1.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Term {
    pub device_id: i64,
    pub sign: i64,
}

/// A virtual meter to create.
#[derive(Debug, Clone)]
pub(crate) struct NewVirtualMeter<'a> {
    pub name: &'a str,
    pub site_id: SiteId,
    /// Where it sits in the site's tree (a device of the site), if anywhere.
    pub parent_device_id: Option<DeviceId>,
    pub terms: &'a [Term],
}

/// Creates a virtual meter: a name not blank and not taken on its site, an
/// existing site, at least one term, each a device of that site once with
/// sign 1 or −1. Each refusal names the field (`terms[1].device_id`).
/// Audited.
pub(crate) async fn create_virtual_meter(
    pool: &PgPool,
    caller: &Caller,
    new: &NewVirtualMeter<'_>,
) -> Result<VirtualMeterRow, ServiceError> {
    caller.require(Right::Configure)?;
    let name = match new.name.trim() {
        "" => return Err(ServiceError::invalid("name", "must not be empty")),
        name => name,
    };
    let mut transaction = pool.begin().await?;
    if !site_exists(&mut *transaction, new.site_id).await? {
        return Err(ServiceError::invalid("site_id", format!("no site {}", new.site_id)));
    }
    if new.terms.is_empty() {
        return Err(ServiceError::invalid("terms", "must name at least one device"));
    }
    let mut terms: Vec<(DeviceId, i16)> = Vec::with_capacity(new.terms.len());
    for (index, term) in new.terms.iter().enumerate() {
        let field = |name: &str| format!("terms[{index}].{name}");
        let sign = match term.sign {
            1 => 1,
            -1 => -1,
            other => return Err(ServiceError::invalid(field("sign"), format!("{other} is not 1 or -1"))),
        };
        let device = DeviceId(term.device_id);
        if terms.iter().any(|(seen, _)| *seen == device) {
            return Err(ServiceError::invalid(
                field("device_id"),
                format!("device {device} is already a term"),
            ));
        }
        match fetch_device_place(&mut *transaction, device).await? {
            None if fetch_virtual_meter(&mut *transaction, VirtualMeterId(device.0))
                .await?
                .is_some() =>
            {
                return Err(ServiceError::invalid(
                    field("device_id"),
                    format!("{device} is a virtual meter; terms are devices"),
                ));
            }
            None => return Err(ServiceError::invalid(field("device_id"), format!("no device {device}"))),
            Some((site, _)) if site != new.site_id => {
                return Err(ServiceError::invalid(
                    field("device_id"),
                    format!("device {device} is on site {site}, not on site {}", new.site_id),
                ));
            }
            Some(_) => terms.push((device, sign)),
        }
    }
    if let Some(parent) = new.parent_device_id {
        match fetch_device_place(&mut *transaction, parent).await? {
            Some((site, _)) if site == new.site_id => {}
            Some((site, _)) => {
                return Err(ServiceError::invalid(
                    "parent_device_id",
                    format!("device {parent} is on site {site}, not on site {}", new.site_id),
                ));
            }
            None => return Err(ServiceError::invalid("parent_device_id", format!("no device {parent}"))),
        }
    }
    let id = insert_virtual_meter(&mut transaction, new.site_id, name, new.parent_device_id, &terms).await?;
    insert_audit(
        &mut *transaction,
        &caller.user,
        "create_virtual_meter",
        &format!("virtual_meter/{id}"),
        serde_json::json!({"name": name, "site_id": new.site_id, "parent_device_id": new.parent_device_id,
            "terms": terms.iter().map(|(device, sign)| serde_json::json!({"device_id": device, "sign": sign}))
                .collect::<Vec<_>>()}),
    )
    .await?;
    let row = fetch_virtual_meter(&mut *transaction, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no virtual meter {id}")))?;
    transaction.commit().await?;
    Ok(row)
}

/// Every virtual meter, or those of one site.
pub(crate) async fn list_virtual_meters(
    pool: &PgPool,
    caller: &Caller,
    site: Option<SiteId>,
) -> Result<Vec<VirtualMeterRow>, ServiceError> {
    caller.require(Right::Read)?;
    Ok(fetch_virtual_meters(pool, site).await?)
}

pub(crate) async fn get_virtual_meter(
    pool: &PgPool,
    caller: &Caller,
    id: VirtualMeterId,
) -> Result<VirtualMeterRow, ServiceError> {
    caller.require(Right::Read)?;
    fetch_virtual_meter(pool, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no virtual meter {id}")))
}

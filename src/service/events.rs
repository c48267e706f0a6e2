//! The event log: listing it with filters, and an operator's acknowledgement.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::{Caller, ServiceError};
use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use crate::store::audit::insert_audit;
use crate::store::events::{EventFilter, EventRow, fetch_events, update_event_acknowledged};

/// Most events one listing holds.
pub const MAX_EVENTS: i64 = 1_000;

/// The filters as a caller sends them (query parameters, form fields);
/// empty text is no filter.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventSelection<'a> {
    pub device_id: Option<i64>,
    /// `true`: only events still open; `false`: only cleared ones.
    pub active: Option<&'a str>,
    /// Only events started at or after this instant (RFC 3339).
    pub since: Option<&'a str>,
}

impl EventSelection<'_> {
    /// The filter asked for; a malformed one is named.
    pub fn filter(&self) -> Result<EventFilter, ServiceError> {
        let active = match self.active {
            None | Some("") => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(ServiceError::invalid(
                    "active",
                    format!("must be true or false, not {other:?}"),
                ));
            }
        };
        let since = match self.since {
            None | Some("") => None,
            Some(text) => Some(
                DateTime::parse_from_rfc3339(text)
                    .map_err(|error| {
                        ServiceError::invalid("since", format!("{text:?} is not an RFC 3339 time: {error}"))
                    })?
                    .with_timezone(&Utc),
            ),
        };
        Ok(EventFilter {
            device: self.device_id.map(DeviceId),
            active,
            since,
            limit: MAX_EVENTS,
        })
    }
}

/// Events matching the selection, newest first, at most [`MAX_EVENTS`].
pub async fn list_events(
    pool: &PgPool,
    caller: &Caller,
    selection: &EventSelection<'_>,
) -> Result<Vec<EventRow>, ServiceError> {
    caller.require(Right::Read)?;
    let filter = selection.filter()?;
    Ok(fetch_events(pool, &filter).await?)
}

/// Acknowledges an event (operator); the first acknowledgement stands.
/// Audited.
pub async fn acknowledge_event(pool: &PgPool, caller: &Caller, id: i64) -> Result<EventRow, ServiceError> {
    caller.require(Right::Operate)?;
    let mut transaction = pool.begin().await?;
    let row = update_event_acknowledged(&mut *transaction, id, &caller.user)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no event {id}")))?;
    insert_audit(
        &mut *transaction,
        &caller.user,
        "ack_event",
        &format!("event/{id}"),
        serde_json::json!({"code": row.code, "acknowledged_by": row.acknowledged_by}),
    )
    .await?;
    transaction.commit().await?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_filter_is_named() {
        let selection = EventSelection {
            active: Some("yes"),
            ..EventSelection::default()
        };
        assert_eq!(
            selection.filter().unwrap_err().to_string(),
            "active: must be true or false, not \"yes\""
        );
        let selection = EventSelection {
            since: Some("yesterday"),
            ..EventSelection::default()
        };
        assert!(
            selection
                .filter()
                .unwrap_err()
                .to_string()
                .starts_with("since: \"yesterday\"")
        );
        let selection = EventSelection {
            device_id: Some(3),
            active: Some("false"),
            since: Some(""),
        };
        let filter = selection.filter().unwrap();
        assert_eq!(filter.device, Some(DeviceId(3)));
        assert_eq!(filter.active, Some(false));
        assert_eq!(filter.since, None);
    }
}

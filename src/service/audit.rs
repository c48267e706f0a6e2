//! Reading the audit log (security auditor only). Entries are written by
//! each use case on its change's transaction and never changed (a trigger
//! refuses UPDATE and DELETE on `audit_log`).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::jobs::{decode_cursor, encode_cursor};
use super::{Caller, ServiceError};
use crate::domain::role::Right;
use crate::store::audit::{AuditFilter, AuditRow, fetch_audit};

/// Entries one page lists by default, and at most.
pub(crate) const DEFAULT_AUDIT_LIMIT: i64 = 50;
pub(crate) const MAX_AUDIT_LIMIT: i64 = 500;

/// What to list, as asked: empty texts count as absent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AuditSelection<'a> {
    pub actor: Option<&'a str>,
    pub action: Option<&'a str>,
    /// A prefix of the target (`device/` or `device/3`).
    pub target: Option<&'a str>,
    /// RFC 3339, inclusive.
    pub from: Option<&'a str>,
    /// RFC 3339, exclusive.
    pub to: Option<&'a str>,
    pub limit: Option<i64>,
    pub cursor: Option<&'a str>,
}

/// One page of entries, newest first.
#[derive(Debug)]
pub(crate) struct AuditPage {
    pub entries: Vec<AuditRow>,
    /// What to pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

fn text(value: Option<&str>) -> Option<String> {
    value.filter(|value| !value.is_empty()).map(str::to_owned)
}

fn instant(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ServiceError> {
    match value {
        None | Some("") => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|at| Some(at.with_timezone(&Utc)))
            .map_err(|_| ServiceError::invalid(field, format!("{text:?} is not an RFC 3339 time"))),
    }
}

/// The log's entries matching the selection, newest first, a page at a
/// time (security auditor); a malformed time, limit or cursor is named.
pub(crate) async fn list_audit(
    pool: &PgPool,
    caller: &Caller,
    selection: &AuditSelection<'_>,
) -> Result<AuditPage, ServiceError> {
    caller.require(Right::Audit)?;
    let filter = AuditFilter {
        actor: text(selection.actor),
        action: text(selection.action),
        target_prefix: text(selection.target),
        from: instant("from", selection.from)?,
        to: instant("to", selection.to)?,
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && to < from
    {
        return Err(ServiceError::invalid("to", "must not be before from"));
    }
    let limit = selection.limit.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if !(1..=MAX_AUDIT_LIMIT).contains(&limit) {
        return Err(ServiceError::invalid("limit", format!("must be 1-{MAX_AUDIT_LIMIT}")));
    }
    let before = selection.cursor.map(decode_cursor).transpose()?;
    // One more than asked tells whether a next page exists.
    let mut entries = fetch_audit(pool, &filter, before, limit + 1).await?;
    let next_cursor = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|entry| encode_cursor(entry.id))
    } else {
        None
    };
    Ok(AuditPage { entries, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_is_rfc_3339_or_named() {
        let at = instant("from", Some("2026-12-05T14:00:00+01:00")).unwrap().unwrap();
        assert_eq!(at, "2026-12-05T13:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(instant("to", Some("")).unwrap(), None);
        assert_eq!(
            instant("to", Some("2026-12-05")).unwrap_err().to_string(),
            "to: \"2026-12-05\" is not an RFC 3339 time"
        );
    }
}

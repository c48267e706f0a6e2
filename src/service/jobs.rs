//! Jobs: starting an on-demand read or a bus scan, looking jobs up, and
//! cancelling them (commands are started in `commands`). Each start checks
//! the caller's role first, then the request, then queues the job with its
//! audit entry in one transaction; the worker of the bus claims it (see
//! `poll::jobs`).

use serde_json::json;
use sqlx::PgPool;

use super::devices::existing_device;
use super::{Caller, ServiceError};
use crate::domain::address::UnitAddress;
use crate::domain::ids::{BusId, DeviceId};
use crate::domain::job::{JobKind, JobState};
use crate::domain::role::Right;
use crate::store::buses::fetch_bus;
use crate::store::command_jobs::CommandJobRow;
use crate::store::jobs::{Cancel, JobAudit, JobFilter, JobRow, NewJob, cancel_job, fetch_job, fetch_jobs, insert_job};
use crate::store::read_jobs::{ReadJobRow, fetch_latest_read_job, fetch_read_job};
use crate::store::scans::{ScanParameters, ScanRow, fetch_latest_scan, fetch_scan};

/// Jobs one page lists by default, and at most.
pub(crate) const DEFAULT_JOB_LIMIT: i64 = 50;
pub(crate) const MAX_JOB_LIMIT: i64 = 500;

/// A scan as asked: the unit addresses to probe, 1–247 each.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ScanRequest {
    /// First unit address (default 1).
    pub first_address: Option<i64>,
    /// Last unit address (default 247).
    pub last_address: Option<i64>,
}

fn view<T>(job: JobRow, into: impl FnOnce(JobRow) -> Option<T>) -> Result<T, ServiceError> {
    // A key reused for another request of the same kind returns that job,
    // which has the same kind, so this holds.
    let id = job.id;
    into(job).ok_or_else(|| ServiceError::not_found(format!("job {id} is of another kind")))
}

/// Queues an on-demand read of every register group of the device, ahead
/// of its schedule (operator). A key the caller already used for a read
/// returns that read and queues nothing.
pub(crate) async fn start_read(
    pool: &PgPool,
    caller: &Caller,
    idempotency_key: Option<&str>,
    id: DeviceId,
) -> Result<ReadJobRow, ServiceError> {
    caller.require(Right::Operate)?;
    let row = existing_device(pool, id).await?;
    let job = NewJob {
        kind: JobKind::ReadNow,
        bus: row.bus_id,
        device: Some(id),
        parameters: json!({}),
        requested_by: &caller.user,
        idempotency_key,
    };
    let audit = JobAudit {
        action: "read_device",
        target: format!("device/{id}"),
        detail: json!({}),
    };
    let (job, _) = insert_job(pool, &job, audit).await?;
    view(job, ReadJobRow::from_job)
}

fn scan_address(field: &str, value: Option<i64>, default: u8) -> Result<u8, ServiceError> {
    match value {
        None => Ok(default),
        Some(value) => UnitAddress::new(value)
            .map(UnitAddress::get)
            .map_err(|error| ServiceError::invalid(field, error)),
    }
}

/// Queues a scan of the bus's unit addresses `first..=last` (engineer).
pub(crate) async fn start_scan(
    pool: &PgPool,
    caller: &Caller,
    idempotency_key: Option<&str>,
    bus: BusId,
    request: ScanRequest,
) -> Result<ScanRow, ServiceError> {
    caller.require(Right::Configure)?;
    let first = scan_address("first_address", request.first_address, 1)?;
    let last = scan_address("last_address", request.last_address, 247)?;
    if last < first {
        return Err(ServiceError::invalid("last_address", "must not be below first_address"));
    }
    fetch_bus(pool, bus)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no bus {bus}")))?;
    let parameters = ScanParameters {
        first_address: first,
        last_address: last,
    };
    let job = NewJob {
        kind: JobKind::Scan,
        bus,
        device: None,
        parameters: json!(parameters),
        requested_by: &caller.user,
        idempotency_key,
    };
    let audit = JobAudit {
        action: "scan_bus",
        target: format!("bus/{bus}"),
        detail: json!({"first": first, "last": last}),
    };
    let (job, _) = insert_job(pool, &job, audit).await?;
    view(job, ScanRow::from_job)
}

/// An on-demand read by id.
pub(crate) async fn get_read(pool: &PgPool, caller: &Caller, id: i64) -> Result<ReadJobRow, ServiceError> {
    caller.require(Right::Read)?;
    fetch_read_job(pool, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no read {id}")))
}

/// A scan by id.
pub(crate) async fn get_scan(pool: &PgPool, caller: &Caller, id: i64) -> Result<ScanRow, ServiceError> {
    caller.require(Right::Read)?;
    fetch_scan(pool, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no scan {id}")))
}

/// A job of any kind by id.
pub(crate) async fn get_job(pool: &PgPool, caller: &Caller, id: i64) -> Result<JobRow, ServiceError> {
    caller.require(Right::Read)?;
    fetch_job(pool, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no job {id}")))
}

/// The device's latest on-demand read, if any.
pub(crate) async fn latest_read(
    pool: &PgPool,
    caller: &Caller,
    device: DeviceId,
) -> Result<Option<ReadJobRow>, ServiceError> {
    caller.require(Right::Read)?;
    Ok(fetch_latest_read_job(pool, device).await?)
}

/// The bus's latest scan, if any.
pub(crate) async fn latest_scan(pool: &PgPool, caller: &Caller, bus: BusId) -> Result<Option<ScanRow>, ServiceError> {
    caller.require(Right::Read)?;
    Ok(fetch_latest_scan(pool, bus).await?)
}

/// The right that starts (and so cancels) a job of `kind`: a read is the
/// operator's, a scan and a command the engineer's.
fn right_to_start(kind: JobKind) -> Right {
    match kind {
        JobKind::ReadNow => Right::Operate,
        JobKind::Scan | JobKind::Command => Right::Configure,
    }
}

fn noun(kind: JobKind) -> &'static str {
    match kind {
        JobKind::ReadNow => "read",
        JobKind::Scan => "scan",
        JobKind::Command => "command",
    }
}

fn too_late(kind: JobKind, state: JobState) -> ServiceError {
    ServiceError::Conflict {
        field: "state",
        reason: format!(
            "the {} is {}; it can no longer be cancelled",
            noun(kind),
            state.as_str()
        ),
    }
}

async fn cancel(pool: &PgPool, caller: &Caller, id: i64, kind: JobKind) -> Result<JobRow, ServiceError> {
    let action = match kind {
        JobKind::ReadNow => "read_device.cancel",
        JobKind::Scan => "scan_bus.cancel",
        JobKind::Command => "command.cancel",
    };
    match cancel_job(pool, id, kind, &caller.user, action).await? {
        Cancel::Cancelled(row) => Ok(*row),
        Cancel::TooLate(state) => Err(too_late(kind, state)),
        Cancel::Missing => Err(ServiceError::not_found(format!("no {} {id}", noun(kind)))),
    }
}

/// Cancels a command still `queued` (engineer, who may start one): it
/// turns `cancelled` and is never sent. Once the bus's worker has claimed
/// it (`running`), or it has ended, it can no longer be cancelled.
pub(crate) async fn cancel_command(pool: &PgPool, caller: &Caller, id: i64) -> Result<CommandJobRow, ServiceError> {
    caller.require(right_to_start(JobKind::Command))?;
    let row = cancel(pool, caller, id, JobKind::Command).await?;
    view(row, CommandJobRow::from_job)
}

/// Cancels a job of any kind still `queued`, with the role that starts a
/// job of its kind: an on-demand read the operator's, a scan or a command
/// the engineer's. A viewer is refused before anything is looked up.
pub(crate) async fn cancel_any_job(pool: &PgPool, caller: &Caller, id: i64) -> Result<JobRow, ServiceError> {
    caller.require(Right::Operate)?;
    let job = fetch_job(pool, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no job {id}")))?;
    caller.require(right_to_start(job.kind))?;
    cancel(pool, caller, id, job.kind).await
}

/// The jobs to list as a caller asks (query parameters); empty text is no
/// filter.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JobSelection<'a> {
    /// `read_now`, `scan` or `command`.
    pub kind: Option<&'a str>,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: Option<&'a str>,
    pub device_id: Option<i64>,
    pub bus_id: Option<i64>,
    /// Jobs per page, 1–[`MAX_JOB_LIMIT`] (default [`DEFAULT_JOB_LIMIT`]).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<&'a str>,
}

/// One page of jobs, newest first.
#[derive(Debug)]
pub(crate) struct JobPage {
    pub jobs: Vec<JobRow>,
    /// What to pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

fn parse<T: serde::de::DeserializeOwned>(
    field: &str,
    value: Option<&str>,
    known: &str,
) -> Result<Option<T>, ServiceError> {
    match value {
        None | Some("") => Ok(None),
        Some(text) => serde_json::from_value(serde_json::Value::from(text))
            .map(Some)
            .map_err(|_| ServiceError::invalid(field, format!("{text:?} is not one of {known}"))),
    }
}

/// A cursor names the last job of a page; it is opaque to clients.
pub(crate) fn encode_cursor(last: i64) -> String {
    hex::encode(format!("before:{last}"))
}

pub(crate) fn decode_cursor(cursor: &str) -> Result<i64, ServiceError> {
    hex::decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("before:")?.parse().ok())
        .ok_or_else(|| ServiceError::invalid("cursor", "not a cursor this server gave"))
}

/// Jobs matching the selection, newest first, a page at a time; a
/// malformed filter, limit or cursor is named.
pub(crate) async fn list_jobs(
    pool: &PgPool,
    caller: &Caller,
    selection: &JobSelection<'_>,
) -> Result<JobPage, ServiceError> {
    caller.require(Right::Read)?;
    let filter = JobFilter {
        kind: parse("kind", selection.kind, "read_now, scan, command")?,
        state: parse(
            "state",
            selection.state,
            "queued, running, awaiting_field_programming, succeeded, failed, cancelled",
        )?,
        device: selection.device_id.map(DeviceId),
        bus: selection.bus_id.map(BusId),
    };
    let limit = selection.limit.unwrap_or(DEFAULT_JOB_LIMIT);
    if !(1..=MAX_JOB_LIMIT).contains(&limit) {
        return Err(ServiceError::invalid("limit", format!("must be 1-{MAX_JOB_LIMIT}")));
    }
    let before = selection.cursor.map(decode_cursor).transpose()?;
    // One more than asked tells whether a next page exists.
    let mut jobs = fetch_jobs(pool, &filter, before, limit + 1).await?;
    let next_cursor = if jobs.len() > limit as usize {
        jobs.truncate(limit as usize);
        jobs.last().map(|job| encode_cursor(job.id))
    } else {
        None
    };
    Ok(JobPage { jobs, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::role::Role;

    #[test]
    fn a_cursor_reads_back_and_a_foreign_one_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(4242)).unwrap(), 4242);
        assert_eq!(
            decode_cursor("zz").unwrap_err().to_string(),
            "cursor: not a cursor this server gave"
        );
        assert!(decode_cursor(&hex::encode("after:3")).is_err());
    }

    #[test]
    fn a_filter_outside_the_vocabulary_is_named() {
        let kind = parse::<JobKind>("kind", Some("reboot"), "read_now, scan, command").unwrap_err();
        assert_eq!(
            kind.to_string(),
            "kind: \"reboot\" is not one of read_now, scan, command"
        );
        assert_eq!(parse::<JobKind>("kind", Some(""), "").unwrap(), None);
        assert_eq!(
            parse::<JobKind>("kind", Some("read_now"), "").unwrap(),
            Some(JobKind::ReadNow)
        );
    }

    #[test]
    fn a_scan_address_is_a_unit_address() {
        assert_eq!(scan_address("first_address", None, 1).unwrap(), 1);
        assert_eq!(scan_address("first_address", Some(247), 1).unwrap(), 247);
        let refused = scan_address("last_address", Some(256), 247).unwrap_err();
        assert!(refused.to_string().starts_with("last_address: "), "{refused}");
        assert!(scan_address("first_address", Some(0), 1).is_err());
    }

    #[tokio::test]
    async fn a_viewer_may_look_but_not_start_a_job() {
        // The role is checked before the database is touched: a pool that
        // never connects shows it.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap();
        let viewer = Caller {
            user: "v".to_owned(),
            role: Role::Viewer,
        };
        let operator = Caller {
            user: "o".to_owned(),
            role: Role::Operator,
        };
        let refused = start_read(&pool, &viewer, None, DeviceId(1)).await.unwrap_err();
        assert!(matches!(refused, ServiceError::Forbidden { .. }), "{refused}");
        let refused = start_scan(&pool, &operator, None, BusId(1), ScanRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(refused, ServiceError::Forbidden { .. }), "{refused}");
        let refused = cancel_command(&pool, &operator, 1).await.unwrap_err();
        assert!(matches!(refused, ServiceError::Forbidden { .. }), "{refused}");
        let refused = cancel_any_job(&pool, &viewer, 1).await.unwrap_err();
        assert!(matches!(refused, ServiceError::Forbidden { .. }), "{refused}");
    }

    #[test]
    fn too_late_names_the_kind_and_the_state() {
        assert_eq!(
            too_late(JobKind::Command, JobState::Running).to_string(),
            "state: the command is running; it can no longer be cancelled"
        );
        assert_eq!(right_to_start(JobKind::ReadNow), Right::Operate);
        assert_eq!(right_to_start(JobKind::Scan), Right::Configure);
    }
}

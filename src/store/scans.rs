//! Bus scans, as the `scan` jobs of the jobs table.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::types::Json;

use super::error::StoreError;
use super::jobs::{JobRow, fetch_job, fetch_latest_bus_job};
use crate::domain::ids::BusId;
use crate::domain::job::{JobKind, JobState};

/// One address that answered, and the profiles whose identification it fits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct Found {
    pub address: u8,
    /// Fitting profiles, most specific first; empty when the device answered
    /// but fits no known profile.
    pub profiles: Vec<String>,
}

/// What a scan job asks: its `parameters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScanParameters {
    pub first_address: u8,
    pub last_address: u8,
}

/// How far a scan got: its `progress`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScanFindings {
    /// Addresses probed so far.
    pub probed: u32,
    pub found: Vec<Found>,
}

#[derive(Debug, Clone)]
pub(crate) struct ScanRow {
    pub id: i64,
    pub bus_id: BusId,
    pub first_address: i16,
    pub last_address: i16,
    pub state: JobState,
    pub probed: i32,
    pub found: Json<Vec<Found>>,
    pub error: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl ScanRow {
    /// The scan a job is, if it is one.
    pub(crate) fn from_job(job: JobRow) -> Option<ScanRow> {
        if job.kind != JobKind::Scan {
            return None;
        }
        let parameters: ScanParameters = serde_json::from_value(job.parameters.0).ok()?;
        let findings: ScanFindings = serde_json::from_value(job.progress.0).unwrap_or_default();
        Some(ScanRow {
            id: job.id,
            bus_id: job.bus_id,
            first_address: i16::from(parameters.first_address),
            last_address: i16::from(parameters.last_address),
            state: job.state,
            probed: i32::try_from(findings.probed).unwrap_or(i32::MAX),
            found: Json(findings.found),
            error: job.error_message,
            requested_by: job.requested_by,
            created_at: job.created_at,
            finished_at: job.finished_at,
        })
    }
}

pub(crate) async fn fetch_scan(pool: &PgPool, id: i64) -> Result<Option<ScanRow>, StoreError> {
    Ok(fetch_job(pool, id).await?.and_then(ScanRow::from_job))
}

/// The latest scan of a bus.
pub(crate) async fn fetch_latest_scan(pool: &PgPool, bus: BusId) -> Result<Option<ScanRow>, StoreError> {
    Ok(fetch_latest_bus_job(pool, JobKind::Scan, bus)
        .await?
        .and_then(ScanRow::from_job))
}

//! The TOU audit's inputs and records: consecutive billing periods of a
//! device not audited yet, and one row per audited period (with its
//! `tou_mismatch` event on the same transaction).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::types::Json;

use super::error::StoreError;
use crate::domain::event::EventKind;
use crate::domain::ids::{CalendarId, DeviceId, SiteId};
use crate::metering::billing::BillingRegister;

/// A billing period with the one before it (same device and source): the
/// registers at its start and end.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditCandidate {
    pub period_id: i64,
    pub device_id: DeviceId,
    pub site_id: SiteId,
    pub tolerance_percent: f64,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub start_registers: Json<Vec<BillingRegister>>,
    pub end_registers: Json<Vec<BillingRegister>>,
}

/// Every period not audited yet, or recorded `incomplete`, ending after
/// `retry_after` and with intervals stored since (an interval starting up
/// to 2 hours, the longest length, before the period can reach into it),
/// of a device whose site
/// has a default calendar, that has a period before it and a tariff
/// register (value group D = 8, E = 1–4) at its end, oldest first.
pub async fn fetch_audit_candidates(
    pool: &PgPool,
    retry_after: DateTime<Utc>,
) -> Result<Vec<AuditCandidate>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT p.id AS period_id, p.device_id, d.site_id, s.tou_tolerance_percent AS tolerance_percent, \
                prev.reset_at AS \"from\", p.reset_at AS \"to\", \
                prev.registers AS start_registers, p.registers AS end_registers \
         FROM billing_periods p \
         JOIN devices d ON d.id = p.device_id \
         JOIN sites s ON s.id = d.site_id \
         JOIN LATERAL (SELECT q.reset_at, q.registers FROM billing_periods q \
                       WHERE q.device_id = p.device_id AND q.source = p.source AND q.reset_at < p.reset_at \
                       ORDER BY q.reset_at DESC LIMIT 1) AS prev ON true \
         WHERE s.default_calendar_id IS NOT NULL \
           AND NOT EXISTS (SELECT 1 FROM tou_audits a WHERE a.billing_period_id = p.id \
                           AND (a.outcome <> 'incomplete' OR p.reset_at <= $1 \
                                OR NOT EXISTS (SELECT 1 FROM load_profile_intervals i \
                                               WHERE i.device_id = p.device_id \
                                                 AND i.interval_start >= prev.reset_at - interval '2 hours' \
                                                 AND i.interval_start < p.reset_at \
                                                 AND i.recorded_at > a.audited_at))) \
           AND EXISTS (SELECT 1 FROM jsonb_array_elements(p.registers) AS r \
                       WHERE r->>'obis' ~ '^[0-9]+-[0-9]+:[0-9]+\\.8\\.[1-4]$') \
         ORDER BY p.device_id, p.reset_at",
    )
    .bind(retry_after)
    .fetch_all(pool)
    .await?)
}

/// How an audit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    Matched,
    Mismatch,
    /// The period's intervals were incomplete: nothing compared.
    Incomplete,
}

impl AuditOutcome {
    fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Matched => "matched",
            AuditOutcome::Mismatch => "mismatch",
            AuditOutcome::Incomplete => "incomplete",
        }
    }
}

/// Records an audited period and, for a mismatch, its momentary
/// `tou_mismatch` event at the period's end, in one transaction. A period
/// recorded `incomplete` before is recorded again (a retry); one with any
/// other outcome is kept, and no second event is raised.
pub async fn insert_tou_audit(
    pool: &PgPool,
    candidate: &AuditCandidate,
    calendar: CalendarId,
    outcome: AuditOutcome,
    detail: &serde_json::Value,
    event: Option<&str>,
) -> Result<(), StoreError> {
    let mut transaction = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO tou_audits (billing_period_id, calendar_id, outcome, detail) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (billing_period_id) DO UPDATE \
         SET calendar_id = EXCLUDED.calendar_id, outcome = EXCLUDED.outcome, detail = EXCLUDED.detail, \
             audited_at = now() \
         WHERE tou_audits.outcome = 'incomplete'",
    )
    .bind(candidate.period_id)
    .bind(calendar.0)
    .bind(outcome.as_str())
    .bind(Json(detail))
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    if let (1, Some(message)) = (inserted, event) {
        super::events::insert_momentary_event(
            &mut *transaction,
            candidate.device_id,
            &EventKind::TouMismatch,
            message,
            candidate.to,
        )
        .await?;
    }
    transaction.commit().await?;
    Ok(())
}

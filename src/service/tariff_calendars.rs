//! Tariff calendars: creating one from a preset or a definition and adding
//! versions (engineer), reading them and classifying time (any role), and
//! loading a calendar with all its versions for statements and balances.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

use super::{Caller, ServiceError};
use crate::domain::ids::{CalendarId, SiteId};
use crate::domain::role::Right;
use crate::domain::zone::IanaZone;
use crate::metering::tou::presets::{PRESETS, preset};
use crate::metering::tou::{BandSplit, Calendar, CalendarDefinition, CalendarVersions, Piece, Problem};
use crate::store::audit::insert_audit;
use crate::store::tariff_calendars::{
    CalendarRow, VersionRow, fetch_calendar, fetch_calendars, fetch_site_calendar, fetch_site_calendars,
    fetch_versions, insert_calendar, insert_version, lock_calendar, update_site_calendar,
};

/// The most steps one classification may give: a leap year of minutes.
pub(crate) const MAX_CLASSIFY_STEPS: i64 = 366 * 24 * 60;

/// A calendar to create: from a preset or a definition (exactly one).
#[derive(Debug, Clone, Default)]
pub(crate) struct NewCalendar {
    /// Required with a definition; a preset's name when absent.
    pub name: Option<String>,
    pub preset: Option<String>,
    pub definition: Option<CalendarDefinition>,
    /// When the first version takes effect; `now` when absent. It also
    /// applies before (see `CalendarVersions`).
    pub effective_from: Option<DateTime<Utc>>,
}

/// A calendar and its versions as stored.
#[derive(Debug, Clone)]
pub(crate) struct StoredCalendar {
    pub calendar: CalendarRow,
    pub versions: Vec<VersionRow>,
}

/// A calendar with all its versions, ready to split time into bands.
#[derive(Debug, Clone)]
pub(crate) struct LoadedCalendar {
    pub id: CalendarId,
    /// The newest version's zone.
    pub time_zone: IanaZone,
    pub versions: CalendarVersions,
}

impl BandSplit for LoadedCalendar {
    fn pieces(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Piece> {
        self.versions.pieces(from, to)
    }

    fn bands(&self) -> Vec<String> {
        self.versions.bands()
    }
}

/// Every problem of a definition as one error: the first names the field,
/// the reason lists the rest after it (`field: reason; field: reason`).
/// Fields are prefixed with `prefix` (the body's field holding the
/// definition).
fn invalid(prefix: &str, problems: Vec<Problem>) -> ServiceError {
    let mut all = problems.into_iter();
    let Some(first) = all.next() else {
        return ServiceError::invalid(prefix, "is invalid");
    };
    let mut reason = first.reason;
    for problem in all {
        reason.push_str(&format!("; {prefix}.{}: {}", problem.field, problem.reason));
    }
    ServiceError::invalid(format!("{prefix}.{}", first.field), reason)
}

fn check(definition: &CalendarDefinition) -> Result<Calendar, ServiceError> {
    Calendar::parse(definition).map_err(|problems| invalid("definition", problems))
}

/// Creates a calendar with its first version. Audited.
pub(crate) async fn create_calendar(
    pool: &PgPool,
    caller: &Caller,
    new: NewCalendar,
    now: DateTime<Utc>,
) -> Result<CalendarId, ServiceError> {
    caller.require(Right::Configure)?;
    let (definition, default_name) = match (new.preset, new.definition) {
        (Some(_), Some(_)) => {
            return Err(ServiceError::invalid(
                "preset",
                "give a preset or a definition, not both",
            ));
        }
        (None, None) => {
            return Err(ServiceError::invalid(
                "definition",
                "is required unless a preset is given",
            ));
        }
        (Some(name), None) => {
            let definition = preset(&name).ok_or_else(|| {
                ServiceError::invalid(
                    "preset",
                    format!("unknown preset {name:?}; known: {}", PRESETS.join(", ")),
                )
            })?;
            (definition, Some(name))
        }
        (None, Some(definition)) => (definition, None),
    };
    check(&definition)?;
    let name = new
        .name
        .or(default_name)
        .ok_or_else(|| ServiceError::invalid("name", "is required with a definition"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid("name", "must not be empty"));
    }
    let effective_from = new.effective_from.unwrap_or(now);
    let json = serde_json::to_value(&definition).expect("a definition serialises");
    let mut transaction = pool.begin().await?;
    let id = insert_calendar(&mut transaction, name, effective_from, &json, &caller.user).await?;
    insert_audit(
        &mut *transaction,
        &caller.user,
        "create_tariff_calendar",
        &format!("tariff_calendar/{id}"),
        serde_json::json!({"name": name, "effective_from": effective_from, "definition": json}),
    )
    .await?;
    transaction.commit().await?;
    Ok(id)
}

/// Adds a version taking effect after the newest one's. Audited.
pub(crate) async fn create_version(
    pool: &PgPool,
    caller: &Caller,
    id: CalendarId,
    definition: &CalendarDefinition,
    effective_from: DateTime<Utc>,
) -> Result<i32, ServiceError> {
    caller.require(Right::Configure)?;
    check(definition)?;
    let json = serde_json::to_value(definition).expect("a definition serialises");
    let mut transaction = pool.begin().await?;
    lock_calendar(&mut transaction, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no tariff calendar {id}")))?;
    let versions = fetch_versions(&mut *transaction, id).await?;
    let newest = versions.last().expect("a calendar has a version");
    if effective_from <= newest.effective_from {
        return Err(ServiceError::invalid(
            "effective_from",
            format!(
                "must be after version {}'s ({})",
                newest.version,
                newest.effective_from.to_rfc3339()
            ),
        ));
    }
    let version = newest.version + 1;
    insert_version(&mut *transaction, id, version, effective_from, &json, &caller.user).await?;
    insert_audit(
        &mut *transaction,
        &caller.user,
        "create_tariff_calendar_version",
        &format!("tariff_calendar/{id}"),
        serde_json::json!({"version": version, "effective_from": effective_from, "definition": json}),
    )
    .await?;
    transaction.commit().await?;
    Ok(version)
}

pub(crate) async fn list_calendars(pool: &PgPool, caller: &Caller) -> Result<Vec<CalendarRow>, ServiceError> {
    caller.require(Right::Read)?;
    Ok(fetch_calendars(pool).await?)
}

pub(crate) async fn get_calendar(
    pool: &PgPool,
    caller: &Caller,
    id: CalendarId,
) -> Result<StoredCalendar, ServiceError> {
    caller.require(Right::Read)?;
    stored(pool, id).await
}

async fn stored(pool: &PgPool, id: CalendarId) -> Result<StoredCalendar, ServiceError> {
    let calendar = fetch_calendar(pool, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no tariff calendar {id}")))?;
    let versions = fetch_versions(pool, id).await?;
    Ok(StoredCalendar { calendar, versions })
}

/// A calendar with all its versions, for whatever splits time into bands.
pub(crate) async fn load_calendar(pool: &PgPool, id: CalendarId) -> Result<LoadedCalendar, ServiceError> {
    let StoredCalendar { versions, .. } = stored(pool, id).await?;
    let mut parsed = Vec::with_capacity(versions.len());
    for row in versions {
        // Stored definitions were checked on save; one that no longer
        // parses is reported, never read as something else.
        let broken = |reason: String| {
            ServiceError::invalid(
                "calendar_id",
                format!(
                    "version {} of tariff calendar {id} is unreadable: {reason}",
                    row.version
                ),
            )
        };
        let definition: CalendarDefinition =
            serde_json::from_value(row.definition.clone()).map_err(|error| broken(error.to_string()))?;
        let calendar = Calendar::parse(&definition).map_err(|problems| {
            let reasons: Vec<String> = problems.iter().map(Problem::to_string).collect();
            broken(reasons.join("; "))
        })?;
        parsed.push((row.effective_from, calendar));
    }
    let versions = CalendarVersions::new(parsed).map_err(|error| ServiceError::invalid("calendar_id", error))?;
    let time_zone = versions.versions().last().expect("a version").1.zone;
    Ok(LoadedCalendar {
        id,
        time_zone,
        versions,
    })
}

/// A site's default calendar, if it has one.
pub(crate) async fn site_calendar(pool: &PgPool, site: SiteId) -> Result<Option<CalendarId>, ServiceError> {
    fetch_site_calendar(pool, site)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no site {site}")))
}

/// Every site's default calendar, for listing sites.
pub(crate) async fn site_calendars(pool: &PgPool) -> Result<HashMap<SiteId, CalendarId>, ServiceError> {
    Ok(fetch_site_calendars(pool).await?.into_iter().collect())
}

/// Sets or clears a site's default calendar (part of a site's change, on
/// its transaction); an unknown calendar is refused on
/// `default_calendar_id`, an unknown site is not found.
pub(crate) async fn set_site_calendar(
    transaction: &mut sqlx::PgConnection,
    site: SiteId,
    calendar: Option<CalendarId>,
) -> Result<(), ServiceError> {
    if let Some(calendar) = calendar
        && fetch_calendar(&mut *transaction, calendar).await?.is_none()
    {
        return Err(ServiceError::invalid(
            "default_calendar_id",
            format!("no tariff calendar {calendar}"),
        ));
    }
    if !update_site_calendar(&mut *transaction, site, calendar).await? {
        return Err(ServiceError::not_found(format!("no site {site}")));
    }
    Ok(())
}

/// One entry per `step_minutes` of real time over `[from, to)`, with the
/// band at each step's start, under all the calendar's versions.
pub(crate) async fn classify(
    pool: &PgPool,
    caller: &Caller,
    id: CalendarId,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    step_minutes: i64,
) -> Result<Vec<(DateTime<Utc>, String)>, ServiceError> {
    caller.require(Right::Read)?;
    let step = check_classify(from, to, step_minutes)?;
    let calendar = load_calendar(pool, id).await?;
    Ok(calendar.versions.classify(from, to, step))
}

/// Checks a classification's bounds before any work: `from` before `to`,
/// a step of 1 to 1440 minutes, at most [`MAX_CLASSIFY_STEPS`] steps.
pub(crate) fn check_classify(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step_minutes: i64,
) -> Result<Duration, ServiceError> {
    if from >= to {
        return Err(ServiceError::invalid("to", "must be after from"));
    }
    if !(1..=1440).contains(&step_minutes) {
        return Err(ServiceError::invalid("step_minutes", "must be 1 to 1440"));
    }
    let step_seconds = step_minutes * 60;
    let steps = ((to - from).num_seconds() + step_seconds - 1) / step_seconds;
    if steps > MAX_CLASSIFY_STEPS {
        return Err(ServiceError::invalid(
            "step_minutes",
            format!(
                "{steps} steps from {} to {}; at most {MAX_CLASSIFY_STEPS} (a year of minutes): \
                 ask for a shorter period or a longer step",
                from.to_rfc3339(),
                to.to_rfc3339()
            ),
        ));
    }
    Ok(Duration::minutes(step_minutes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn classification_is_bounded() {
        let from = at("2026-01-01T00:00:00Z");
        assert!(check_classify(from, at("2027-01-01T00:00:00Z"), 1).is_ok());
        assert!(check_classify(from, at("2027-01-02T00:00:00Z"), 1).is_ok());
        let refused = check_classify(from, at("2027-01-02T00:01:00Z"), 1).unwrap_err();
        assert!(
            refused.to_string().starts_with("step_minutes: 527041 steps"),
            "{refused}"
        );
        assert!(check_classify(from, at("2036-01-01T00:00:00Z"), 15).is_ok());
        assert_eq!(
            check_classify(from, from, 15).unwrap_err().to_string(),
            "to: must be after from"
        );
        assert_eq!(
            check_classify(from, at("2026-01-02T00:00:00Z"), 0)
                .unwrap_err()
                .to_string(),
            "step_minutes: must be 1 to 1440"
        );
    }

    #[test]
    fn every_problem_is_reported_with_the_first_as_the_field() {
        let problems = vec![
            Problem {
                field: "seasons[1].from".into(),
                reason: "overlaps seasons[0]".into(),
            },
            Problem {
                field: "bands[2]".into(),
                reason: "\"F1\" repeats bands[0]".into(),
            },
        ];
        assert_eq!(
            invalid("definition", problems).to_string(),
            "definition.seasons[1].from: overlaps seasons[0]; definition.bands[2]: \"F1\" repeats bands[0]"
        );
    }
}

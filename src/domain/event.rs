//! Event codes: the one list of the events the head-end raises itself, with
//! their severity, and the codes a meter's profile names for the conditions
//! of its status words and the occurrences it logs (docs/PROFILES.md).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use super::severity::Severity;

/// The code of an event as `events.code` stores it: snake_case, a
/// lowercase ASCII letter then lowercase letters, digits and underscores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, ToSchema)]
#[schema(value_type = String, example = "comm_lost")]
pub struct EventCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event code {0:?}: must be snake_case (a lowercase letter, then a-z, 0-9 and _)")]
pub struct EventCodeError(String);

impl EventCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code of a status word's set bit its profile does not name, so
    /// nothing the meter reports is hidden.
    pub fn unnamed_bit(bit: u8) -> EventCode {
        EventCode(format!("unnamed_bit_{bit}"))
    }

    /// The head-end's own event of this code, if it is one.
    pub fn head_end_kind(&self) -> Option<EventKind> {
        EventKind::HEAD_END.into_iter().find(|kind| kind.code_str() == self.0)
    }
}

fn is_snake_case(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl FromStr for EventCode {
    type Err = EventCodeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if is_snake_case(text) {
            Ok(EventCode(text.to_owned()))
        } else {
            Err(EventCodeError(text.to_owned()))
        }
    }
}

impl fmt::Display for EventCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EventCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EventCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

super::column::text_column!(EventCode);

/// What an event is, which fixes its code and its severity. Stored as
/// `events.code` and `events.severity` (an [`EventCode`] and a
/// [`Severity`]); a meter's event takes the severity its profile gives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `comm_lost` (warning): a device stopped answering, past its retries.
    CommLost,
    /// `comm_restored` (info): it answers again; momentary.
    CommRestored,
    /// `clock_drift` (warning): its clock is off by more than the threshold.
    ClockDrift,
    /// `billing_reset` (info): a billing period closed; momentary.
    BillingReset,
    /// `profile_gap` (warning): intervals the meter will not fill were
    /// estimated; momentary.
    ProfileGap,
    /// `register_rollover` (info): an energy register wrapped past its
    /// largest value; momentary.
    RegisterRollover,
    /// `register_decreased` (warning): an energy register went down (a
    /// reset or a meter exchange); momentary.
    RegisterDecreased,
    /// `tou_mismatch` (warning): over a closed billing period, the meter's
    /// own tariff registers differ from the server's split of its intervals
    /// under the device's calendar beyond the tolerance (a wrong calendar
    /// or a drifting meter clock); momentary, at the period's end.
    TouMismatch,
    /// `balance_mismatch` (warning): over a closed day, a meter of a site's
    /// tree and the sum of the meters downstream of it differ by more than
    /// the site's threshold (losses, an unmetered load, a wrong meter);
    /// open on the parent device while the latest closed day is over it.
    BalanceMismatch,
    /// `field_programming_needed` (warning): a command waits for a
    /// technician to open the meter's programming window on site; the
    /// message says what to do. Open while the command waits.
    FieldProgrammingNeeded,
    /// `field_programming_expired` (warning): the window was not opened
    /// in time and the command failed; momentary.
    FieldProgrammingExpired,
    /// `password_refused` (critical): the meter refused the programming-mode
    /// password (IEC 62056-21 `P1`); programming-mode work for the device
    /// (its load profile) stops, so as not to lock the meter, and the event
    /// stays open until the password is set again.
    PasswordRefused,
    /// `clock_needs_site_programming` (warning): a clock set was refused
    /// before anything was written, because the meter would not take it over
    /// the bus (too far off, or already set today): a technician sets the
    /// clock on site. Cleared by the next clock set that succeeds.
    ClockNeedsSiteProgramming,
    /// `command_verification_failed` (warning): what a device showed after a
    /// command's write is not what the write should have made it show;
    /// momentary, on the failed job.
    CommandVerificationFailed,
    /// `future_timestamp` (warning): values of the device came stamped more
    /// than [`FUTURE_TOLERANCE`](super::clock::FUTURE_TOLERANCE) ahead of
    /// the server's clock (a meter clock far ahead, a server clock that
    /// jumped); they were stored flagged `future_timestamp` and pin no
    /// cursor. Momentary, at the server time they were stored.
    FutureTimestamp,
    /// `meter_identity_changed` (critical): another meter answers at the
    /// device's address (its serial or identification differs from the
    /// one first seen or configured); its readings are held, not stored as
    /// the device's, until an engineer confirms the replacement. Open
    /// until then, or until the expected meter answers again.
    MeterIdentityChanged,
    /// `meter_replaced` (info): an engineer confirmed the meter now at the
    /// address as the device's; a new register series starts. Momentary.
    MeterReplaced,
    /// `pulse_channel_misconfigured` (warning): a pulse concentrator's
    /// settings, as read, are outside the ranges of its manual (input mode,
    /// or an input's unit, pulse weight, CT or VT ratio, OFF time); the
    /// message names the inputs and what is wrong, and the inputs concerned
    /// have no engineering value. Open until the settings are back in range.
    PulseChannelMisconfigured,
    /// `status_word_unreadable` (warning): a status word of the meter's
    /// readout is written in neither the form its profile gives (binary
    /// digits or hex) nor any other it could be taken in without guessing;
    /// its conditions are not known and stay as last read. The message
    /// names the word and what the meter wrote. Open until it reads again.
    StatusWordUnreadable,
    /// `load_curve_unsupported` (info): the meter answered "illegal data
    /// address" to its load curve's pointer or block: its firmware keeps
    /// none, and it is not asked again while the poller keeps the device.
    /// Not a fault; momentary.
    LoadCurveUnsupported,
    /// `load_curve_garbled` (warning): a block of the meter's load curve
    /// came with a header that makes no sense (record size, count,
    /// denominator, period); the message names the device and what was
    /// wrong. Nothing of that block is stored, what came before it is.
    /// Momentary.
    LoadCurveGarbled,
    /// `meter_logbook` (info): an entry of the meter's event logbook
    /// (`P.98`, read in programming mode) or programming log whose code
    /// the profile's `codes` do not name; stamped at the meter's time,
    /// momentary. The message carries the meter's status and values as
    /// written.
    MeterLogbook,
    /// `meter_logbook_unsupported` (info): the meter refused the read of
    /// a whole logbook (`(ERROR)`): it keeps none, or has logged nothing
    /// yet. Asked again once a day until it answers
    /// (`meter_logbook_refusals`); raised when the refusal is first
    /// recorded, not at each repeat. Not a fault; momentary.
    MeterLogbookUnsupported,
    /// A condition a status word shows, or an occurrence the meter logged,
    /// under the code and severity its profile names.
    Meter { code: EventCode, severity: Severity },
}

impl EventKind {
    /// The events the head-end raises itself. A profile may not name a
    /// meter event after one of them.
    pub const HEAD_END: [EventKind; 23] = [
        EventKind::CommLost,
        EventKind::CommRestored,
        EventKind::ClockDrift,
        EventKind::BillingReset,
        EventKind::ProfileGap,
        EventKind::RegisterRollover,
        EventKind::RegisterDecreased,
        EventKind::TouMismatch,
        EventKind::BalanceMismatch,
        EventKind::FieldProgrammingNeeded,
        EventKind::FieldProgrammingExpired,
        EventKind::PasswordRefused,
        EventKind::ClockNeedsSiteProgramming,
        EventKind::CommandVerificationFailed,
        EventKind::FutureTimestamp,
        EventKind::MeterIdentityChanged,
        EventKind::MeterReplaced,
        EventKind::PulseChannelMisconfigured,
        EventKind::StatusWordUnreadable,
        EventKind::LoadCurveUnsupported,
        EventKind::LoadCurveGarbled,
        EventKind::MeterLogbook,
        EventKind::MeterLogbookUnsupported,
    ];

    fn code_str(&self) -> &str {
        match self {
            EventKind::CommLost => "comm_lost",
            EventKind::CommRestored => "comm_restored",
            EventKind::ClockDrift => "clock_drift",
            EventKind::BillingReset => "billing_reset",
            EventKind::ProfileGap => "profile_gap",
            EventKind::RegisterRollover => "register_rollover",
            EventKind::RegisterDecreased => "register_decreased",
            EventKind::TouMismatch => "tou_mismatch",
            EventKind::BalanceMismatch => "balance_mismatch",
            EventKind::FieldProgrammingNeeded => "field_programming_needed",
            EventKind::FieldProgrammingExpired => "field_programming_expired",
            EventKind::PasswordRefused => "password_refused",
            EventKind::ClockNeedsSiteProgramming => "clock_needs_site_programming",
            EventKind::CommandVerificationFailed => "command_verification_failed",
            EventKind::FutureTimestamp => "future_timestamp",
            EventKind::MeterIdentityChanged => "meter_identity_changed",
            EventKind::MeterReplaced => "meter_replaced",
            EventKind::PulseChannelMisconfigured => "pulse_channel_misconfigured",
            EventKind::StatusWordUnreadable => "status_word_unreadable",
            EventKind::LoadCurveUnsupported => "load_curve_unsupported",
            EventKind::LoadCurveGarbled => "load_curve_garbled",
            EventKind::MeterLogbook => "meter_logbook",
            EventKind::MeterLogbookUnsupported => "meter_logbook_unsupported",
            EventKind::Meter { code, .. } => code.as_str(),
        }
    }

    /// The code it is stored under.
    pub fn code(&self) -> EventCode {
        EventCode(self.code_str().to_owned())
    }

    pub fn severity(&self) -> Severity {
        match self {
            EventKind::CommRestored
            | EventKind::BillingReset
            | EventKind::RegisterRollover
            | EventKind::MeterReplaced
            | EventKind::LoadCurveUnsupported
            | EventKind::MeterLogbook
            | EventKind::MeterLogbookUnsupported => Severity::Info,
            EventKind::CommLost
            | EventKind::ClockDrift
            | EventKind::ProfileGap
            | EventKind::RegisterDecreased
            | EventKind::TouMismatch
            | EventKind::BalanceMismatch
            | EventKind::FieldProgrammingNeeded
            | EventKind::FieldProgrammingExpired
            | EventKind::ClockNeedsSiteProgramming
            | EventKind::CommandVerificationFailed
            | EventKind::FutureTimestamp
            | EventKind::PulseChannelMisconfigured
            | EventKind::StatusWordUnreadable
            | EventKind::LoadCurveGarbled => Severity::Warning,
            EventKind::PasswordRefused | EventKind::MeterIdentityChanged => Severity::Critical,
            EventKind::Meter { severity, .. } => *severity,
        }
    }
}

/// Its code, as stored.
impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code_str())
    }
}

/// Binds the code, for the queries that find events by it.
impl sqlx::Type<sqlx::Postgres> for EventKind {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <EventCode as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for EventKind {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as sqlx::Encode<'_, sqlx::Postgres>>::encode(self.code_str(), buf)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn head_end_codes_are_distinct_and_parse_back() {
        let codes: std::collections::HashSet<_> = EventKind::HEAD_END.iter().map(EventKind::code).collect();
        assert_eq!(codes.len(), EventKind::HEAD_END.len());
        for kind in EventKind::HEAD_END {
            let code: EventCode = kind.to_string().parse().unwrap();
            assert_eq!(code.head_end_kind(), Some(kind));
        }
        assert_eq!("over_voltage".parse::<EventCode>().unwrap().head_end_kind(), None);
    }

    #[test]
    fn severities_follow_the_list() {
        assert_eq!(EventKind::CommLost.severity(), Severity::Warning);
        assert_eq!(EventKind::CommRestored.severity(), Severity::Info);
        assert_eq!(EventKind::RegisterDecreased.severity(), Severity::Warning);
        assert_eq!(EventKind::PasswordRefused.severity(), Severity::Critical);
        let cover = EventKind::Meter {
            code: "terminal_cover_open".parse().unwrap(),
            severity: Severity::Critical,
        };
        assert_eq!(
            (cover.to_string().as_str(), cover.severity()),
            ("terminal_cover_open", Severity::Critical)
        );
    }

    #[test]
    fn refuses_codes_that_are_not_snake_case() {
        for text in ["", "Clock Error", "over-voltage", "_x", "1st_phase", "Low_battery", "é"] {
            assert!(text.parse::<EventCode>().is_err(), "{text:?}");
        }
        assert_eq!(EventCode::unnamed_bit(7).as_str(), "unnamed_bit_7");
        assert_eq!(
            serde_json::to_value("low_battery".parse::<EventCode>().unwrap()).unwrap(),
            "low_battery"
        );
    }

    proptest! {
        #[test]
        fn a_parsed_code_displays_as_given(text in "[a-z][a-z0-9_]{0,30}") {
            let code: EventCode = text.parse().unwrap();
            prop_assert_eq!(code.to_string(), text);
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,70}") {
            let _ = text.parse::<EventCode>();
        }
    }
}

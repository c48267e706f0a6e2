//! The IEC 62056-21 driver: holds the line for one whole meter session at
//! a time (sign-on to end of readout, or programming mode to its break).
//! A readout is decoded by the device's profile; the load profile is read
//! in programming mode, a stretch at a time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::clock::readout_clock;
use super::error::DriverError;
use super::exchange::{Exchange, Outcome};
use super::iec_line::IecLine;
use super::iec_program_plan::{frames, line_baud_char, plan};
use super::iec_session_config::session_config;
use super::program::{ProgramDone, ProgramError};
use super::target::{MeterStatus, ReadOutput, Step, Target};
use crate::device::iec::LoadProfileSettings;
use crate::device::iec_decode::decode_readout;
use crate::device::iec_load_profile::{intervals_from_blocks, profile_request};
use crate::device::iec_logbook::{LogbookEvent, LogbookSettings, events_from_logbook, logbook_request};
use crate::device::meter_identity::from_readout;
use crate::device::profile_interval::Interval;
use crate::domain::clock::Clock;
use crate::domain::transport::Transport;
use crate::protocol::iec62056::session::{SessionConfig, SessionError};

pub struct IecDriver {
    transport: Transport,
    session: SessionConfig,
    /// The open line, if any: dropped after a link failure so the next
    /// exchange starts from a clean sign-on.
    line: Option<IecLine>,
}

/// How an exchange ended, for the bus statistics.
fn outcome<T>(result: &Result<T, SessionError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Answered,
        Err(SessionError::Timeout { .. } | SessionError::DeadlineExceeded { .. }) => Outcome::Timeout,
        Err(SessionError::BadBcc { .. }) => Outcome::CrcError,
        Err(SessionError::MeterError(_) | SessionError::PasswordRefused | SessionError::Nak { .. }) => {
            Outcome::Exception
        }
        Err(_) => Outcome::TransportError,
    }
}

impl IecDriver {
    pub(super) fn new(transport: Transport, timeout: Duration) -> IecDriver {
        IecDriver {
            session: session_config(&transport, timeout),
            transport,
            line: None,
        }
    }

    /// The deadline of each exchange of the lines opened from now on.
    pub(super) fn set_exchange_deadline(&mut self, deadline: Duration) {
        self.session.exchange_deadline = deadline;
        self.line = None;
    }

    fn settle<T>(&mut self, result: &Result<T, SessionError>) {
        if result.as_ref().is_err_and(SessionError::is_link_failure) {
            self.line = None;
        }
    }

    /// A data readout of the device, decoded by its profile.
    pub(super) async fn readout(&mut self, target: Target<'_>, clock: &Clock) -> (Step, Option<Exchange>) {
        let started = Instant::now();
        let readout = match &mut self.line {
            Some(open) => open.readout(target.iec_address).await,
            None => match IecLine::open(&self.transport, self.session.clone()).await {
                Ok(open) => self.line.insert(open).readout(target.iec_address).await,
                Err(error) => Err(error),
            },
        };
        let sent = Exchange {
            outcome: outcome(&readout),
            took: started.elapsed(),
        };
        self.settle(&readout);
        let readout = match readout {
            Ok(readout) => readout,
            Err(error) => return (Step::Failed(error.into()), Some(sent)),
        };
        let Some(iec) = target.profile.iec62056.as_ref() else {
            let error = format!("profile {} has no [iec62056] section", target.profile.name);
            return (Step::Failed(DriverError::Profile(error)), Some(sent));
        };
        let decoded = decode_readout(iec, &readout.data_sets, clock.now(), target.zone);
        if !decoded.left_out.is_empty() || !decoded.invalid.is_empty() {
            tracing::debug!(device = %target.name, left_out = ?decoded.left_out, invalid = ?decoded.invalid, "readout values not stored");
        }
        let output = ReadOutput {
            readings: decoded.readings,
            // Read from the data sets rather than the decoded readings, as
            // profiles need not list the clock to store it.
            meter_clock: readout_clock(&readout.data_sets),
            status: Some(MeterStatus {
                conditions: decoded.conditions,
                words_read: decoded.words_read,
                unreadable: decoded.unreadable_words,
            }),
            identity: Some(from_readout(&readout.identification, &readout.data_sets)),
        };
        (Step::Done(output), Some(sent))
    }

    /// Reads load-profile blocks from `from` to `to` (or the present) in
    /// programming mode, on the line the readout opened.
    pub(super) async fn load_profile(
        &mut self,
        target: Target<'_>,
        settings: &LoadProfileSettings,
        from: DateTime<Utc>,
        to: Option<DateTime<Utc>>,
    ) -> (Result<(Vec<Interval>, Vec<String>), DriverError>, Option<Exchange>) {
        let request = profile_request(settings, from, to, target.zone);
        let password = programming_password(&target);
        let (blocks, sent) = self
            .on_open_line(async |open| open.load_profile(target.iec_address, password, &request).await)
            .await;
        let result = blocks
            .map(|blocks| intervals_from_blocks(settings, &blocks, target.zone))
            .map_err(DriverError::from);
        (result, sent)
    }

    /// Reads the logbook entries from `after` on (the whole logbook when
    /// `None`) in programming mode, on the line the readout opened.
    pub(super) async fn logbook(
        &mut self,
        target: Target<'_>,
        log: &'static str,
        settings: &LogbookSettings,
        after: Option<DateTime<Utc>>,
    ) -> (Result<(Vec<LogbookEvent>, Vec<String>), DriverError>, Option<Exchange>) {
        let request = logbook_request(settings, after, target.zone);
        let password = programming_password(&target);
        let (entries, sent) = self
            .on_open_line(async |open| open.logbook(target.iec_address, password, &request).await)
            .await;
        let result = entries
            .map(|entries| events_from_logbook(log, settings, &entries, target.zone))
            .map_err(DriverError::from);
        (result, sent)
    }

    /// Runs `ask` in programming mode on the line the readout opened, as
    /// one exchange; a link failure closes the line. Nothing is sent when
    /// the line closed after the readout.
    async fn on_open_line<T>(
        &mut self,
        ask: impl AsyncFnOnce(&mut IecLine) -> Result<T, SessionError>,
    ) -> (Result<T, SessionError>, Option<Exchange>) {
        let Some(open) = self.line.as_mut() else {
            let error = SessionError::Io(std::io::Error::other("the line closed after the readout"));
            return (Err(error), None);
        };
        let started = Instant::now();
        let result = ask(open).await;
        let sent = Exchange {
            outcome: outcome(&result),
            took: started.elapsed(),
        };
        self.settle(&result);
        (result, Some(sent))
    }

    /// Runs command `kind` of the device's profile in programming mode with
    /// `password`; clock values are `now` in the device's zone. Nothing is
    /// sent when the profile has no such command or a frame cannot be encoded.
    pub(super) async fn program(
        &mut self,
        target: Target<'_>,
        kind: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> (Result<ProgramDone, ProgramError>, Option<Exchange>) {
        let local = now.with_timezone(&target.zone).naive_local();
        let plan = match plan(target.profile, kind, local) {
            Ok(plan) => plan,
            Err(error) => return (Err(error), None),
        };
        let baud_char = line_baud_char(target.profile, &self.transport);
        if let Err(error) = frames(&plan, target.iec_address, password, baud_char) {
            return (Err(error), None);
        }
        let started = Instant::now();
        let result = match &mut self.line {
            Some(open) => open.program(target.iec_address, password, &plan, local).await,
            None => match IecLine::open(&self.transport, self.session.clone()).await {
                Ok(open) => {
                    self.line
                        .insert(open)
                        .program(target.iec_address, password, &plan, local)
                        .await
                }
                Err(error) => Err(ProgramError::Link {
                    error,
                    done: Vec::new(),
                }),
            },
        };
        if result.as_ref().is_err_and(ProgramError::is_link_failure) {
            self.line = None;
        }
        let outcome = match &result {
            Ok(_) => Some(Outcome::Answered),
            Err(error) => error.outcome(),
        };
        let sent = outcome.map(|outcome| Exchange {
            outcome,
            took: started.elapsed(),
        });
        (result, sent)
    }
}

/// The device's own password, else the one its meter type leaves the
/// factory with.
fn programming_password<'a>(target: &Target<'a>) -> &'a str {
    match target.password {
        Some(own) => own.expose(),
        None => target
            .profile
            .iec62056
            .as_ref()
            .and_then(|iec| iec.password.as_deref())
            .unwrap_or_default(),
    }
}

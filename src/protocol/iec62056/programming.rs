//! Programming mode (option `1` of mode C): the password exchange, reads
//! and writes by address, EMH-style load profiles, and the break `B0` that
//! must end it. IEC 62056-21:2002, 6.3.14; facts in `docs/PROTOCOLS.md`,
//! "Programming mode" and "Load profile, EMH style".
//!
//! A meter answers a command with ACK, NAK (repeat, please) or a data
//! message; a refusal is a data message holding `(ERROR)` or `#nnnn`
//! (vendor specific). A refusal leaves the session in programming mode; a
//! link failure ends it with a break.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::dataset::{DataSet, DataValue, format_data_set, parse_data_sets};
use super::frame::{Command, CommandKind};
use super::ident::{Mode, OptionMode};
use super::line::LineSpeed;
use super::logbook::{LogbookEntry, parse_logbook};
use super::message::MeterMessage;
use super::profile_block::{LoadProfileBlock, ProfileRequest, parse_load_profile};
use super::session::Session;
use super::session_error::{SessionError, unexpected};

/// What a meter answered to a command.
enum Answer {
    Ack,
    /// A data answer, partial blocks joined.
    Text(String),
}

impl<S: AsyncRead + AsyncWrite + LineSpeed + Unpin + Send> Session<S> {
    /// Opens programming mode, runs `work`, then always sends the break,
    /// whatever `work` returned, so the meter never waits out its
    /// inactivity timeout in programming mode. Returns `work`'s result; a
    /// failure to send the break after it is only logged (the meter leaves
    /// programming mode by itself).
    ///
    /// ```ignore
    /// let energy = session
    ///     .with_programming("12345678", "00000000", async |meter| meter.read("1.8.0()").await)
    ///     .await?;
    /// ```
    pub async fn with_programming<T>(
        &mut self,
        address: &str,
        password: &str,
        work: impl AsyncFnOnce(&mut Self) -> Result<T, SessionError>,
    ) -> Result<T, SessionError> {
        self.open_programming(address, password).await?;
        let result = work(self).await;
        if let Err(error) = self.close().await {
            tracing::warn!(%error, "the break after programming mode failed");
        }
        result
    }

    /// Signs on, selects programming mode (`ACK 0 Z 1`), answers the
    /// meter's password request `P0` with `P1 (password)` and expects ACK.
    /// Any failure after the option select sends the break before
    /// returning. Prefer [`Session::with_programming`]; after this, the
    /// caller must [`Session::close`].
    pub async fn open_programming(&mut self, address: &str, password: &str) -> Result<(), SessionError> {
        self.close().await?;
        self.begin_exchange();
        let login = Command::new(CommandKind::P1, format!("({password})")).encode()?;
        let identification = self.sign_on(address).await?;
        if identification.mode() != Mode::C {
            return Err(SessionError::UnexpectedMessage {
                expected: "a mode C identification (programming needs mode C)",
                got: format!("mode {:?}", identification.mode()),
            });
        }
        self.programming = true;
        match self.log_in(&identification, &login).await {
            Ok(()) => Ok(()),
            Err(error) => Err(self.abort(error).await),
        }
    }

    async fn log_in(
        &mut self,
        identification: &super::ident::Identification,
        login: &[u8],
    ) -> Result<(), SessionError> {
        self.select_option(identification, OptionMode::Programming).await?;
        match self.receive_checked("the password request P0").await? {
            MeterMessage::Command(Command {
                kind: CommandKind::P0, ..
            }) => {}
            other => return Err(unexpected("the password request P0", &other)),
        }
        self.send(login).await?;
        match self.receive_checked("the answer to the password").await? {
            MeterMessage::Ack => Ok(()),
            MeterMessage::Nak => Err(SessionError::PasswordRefused),
            MeterMessage::Data(block) if refusal(&block.text).is_some() => Err(SessionError::PasswordRefused),
            other => Err(unexpected("ACK or NAK to the password", &other)),
        }
    }

    /// Reads with `R1`; `request` is the address with its parameters, e.g.
    /// `1.8.0()`.
    pub async fn read(&mut self, request: &str) -> Result<Vec<DataSet>, SessionError> {
        self.read_with(CommandKind::R1, request).await
    }

    /// Reads with the manufacturer specific `R5` (EMH-style: by OBIS code,
    /// e.g. `1-1:1.8.0()`; verify per meter).
    pub async fn read_vendor(&mut self, request: &str) -> Result<Vec<DataSet>, SessionError> {
        self.read_with(CommandKind::R5, request).await
    }

    async fn read_with(&mut self, kind: CommandKind, request: &str) -> Result<Vec<DataSet>, SessionError> {
        let text = match self
            .command(Command::new(kind, request), "the answer to a read")
            .await?
        {
            Answer::Text(text) => text,
            Answer::Ack => {
                return Err(SessionError::UnexpectedMessage {
                    expected: "a data answer to a read",
                    got: "ACK".into(),
                });
            }
        };
        if let Some(answer) = refusal(&text) {
            return Err(SessionError::MeterError(answer));
        }
        let sets = parse_data_sets(&text)?;
        match sets.iter().flat_map(|set| &set.values).find(|value| value.is_error()) {
            Some(error) => Err(SessionError::MeterError(error.value.clone())),
            None => Ok(sets),
        }
    }

    /// Writes `address(value)` with `W1`; the meter acknowledges with ACK.
    pub async fn write(&mut self, address: &str, value: &str) -> Result<(), SessionError> {
        self.write_with(CommandKind::W1, address, value).await
    }

    /// Writes with the manufacturer specific `W5` (EMH-style; verify per
    /// meter).
    pub async fn write_vendor(&mut self, address: &str, value: &str) -> Result<(), SessionError> {
        self.write_with(CommandKind::W5, address, value).await
    }

    async fn write_with(&mut self, kind: CommandKind, address: &str, value: &str) -> Result<(), SessionError> {
        let data = format_data_set(&DataSet {
            address: address.into(),
            values: vec![DataValue::new(value)],
        })?;
        match self.command(Command::new(kind, data), "the answer to a write").await? {
            Answer::Ack => Ok(()),
            Answer::Text(text) => Err(SessionError::MeterError(refusal(&text).unwrap_or(text))),
        }
    }

    /// Reads a load profile with `R5 P.nn(from;to)` (EMH-style, common;
    /// verify per meter).
    pub async fn load_profile(&mut self, request: &ProfileRequest) -> Result<Vec<LoadProfileBlock>, SessionError> {
        let data = request.encode()?;
        match self
            .command(Command::new(CommandKind::R5, data), "the load profile")
            .await?
        {
            Answer::Text(text) => match refusal(&text) {
                Some(answer) => Err(SessionError::MeterError(answer)),
                None => Ok(parse_load_profile(&text)?),
            },
            Answer::Ack => Ok(Vec::new()),
        }
    }

    /// Reads an event logbook with `R5 P.nn(from;to)` (`P.98`, EMH-style;
    /// verify per meter), in the layouts [`parse_logbook`] accepts.
    pub async fn logbook(&mut self, request: &ProfileRequest) -> Result<Vec<LogbookEntry>, SessionError> {
        let data = request.encode()?;
        match self.command(Command::new(CommandKind::R5, data), "the logbook").await? {
            Answer::Text(text) => match refusal(&text) {
                Some(answer) => Err(SessionError::MeterError(answer)),
                None => Ok(parse_logbook(&text)?),
            },
            Answer::Ack => Ok(Vec::new()),
        }
    }

    /// Ends programming mode with the break `SOH B0 ETX BCC` (no answer
    /// comes) and returns to the initial rate, as the meter does. Does
    /// nothing outside programming mode.
    pub async fn close(&mut self) -> Result<(), SessionError> {
        if !self.programming {
            return Ok(());
        }
        self.programming = false;
        let sent = self.send(&Command::break_session().encode()?).await;
        let switched = self.switch_baud(self.config.initial_baud, true).await;
        sent.and(switched)
    }

    /// Sends a command and reads the answer. A NAK makes us send the
    /// command again, at most [`super::SessionConfig::max_retries`] times.
    /// A link failure ends programming mode with a break.
    async fn command(&mut self, command: Command, waiting_for: &'static str) -> Result<Answer, SessionError> {
        if !self.programming {
            return Err(SessionError::NotProgramming);
        }
        let idle = self
            .quiet_since
            .map_or(Duration::ZERO, |quiet| Instant::now().saturating_duration_since(quiet));
        if idle >= self.config.programming_inactivity {
            return Err(self.abort(SessionError::ProgrammingExpired { idle }).await);
        }
        let frame = command.encode()?;
        self.begin_exchange();
        match self.exchange(&frame, command.kind, waiting_for).await {
            Err(error) if error.is_link_failure() => Err(self.abort(error).await),
            answer => answer,
        }
    }

    async fn exchange(
        &mut self,
        frame: &[u8],
        kind: CommandKind,
        waiting_for: &'static str,
    ) -> Result<Answer, SessionError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.send(frame).await?;
            match self.receive_checked(waiting_for).await? {
                MeterMessage::Ack => return Ok(Answer::Ack),
                MeterMessage::Nak if attempts <= self.config.max_retries => {
                    tracing::debug!(attempts, ?kind, "NAK, sending the command again");
                }
                MeterMessage::Nak => {
                    return Err(SessionError::Nak {
                        command: kind,
                        attempts,
                    });
                }
                MeterMessage::Data(block) => {
                    return Ok(Answer::Text(self.receive_text(waiting_for, Some(block)).await?));
                }
                other => return Err(unexpected("ACK, NAK or a data answer", &other)),
            }
        }
    }

    /// Ends programming mode after a failure: the break (best effort, the
    /// line may be dead), then the initial rate. Returns `error`.
    async fn abort(&mut self, error: SessionError) -> SessionError {
        if let Err(close) = self.close().await {
            tracing::debug!(%close, "break after a failure not sent");
        }
        error
    }
}

/// The meter's refusal when it is the whole answer: `(ERROR)`, `ERROR`,
/// `#nnnn` or `(#nnnn)`, with or without a line end.
fn refusal(text: &str) -> Option<String> {
    let bare = text.trim_end_matches(['\r', '\n', '!']).trim();
    let inner = bare
        .strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or(bare);
    (inner == "ERROR" || inner.starts_with('#')).then(|| inner.to_string())
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use chrono::NaiveDate;

    use super::*;
    use crate::protocol::iec62056::frame::{ACK, CR, ETX, LF, NAK, SOH, STX};
    use crate::protocol::iec62056::profile_block::ProfileTime;
    use crate::protocol::iec62056::session_config::SessionConfig;
    use crate::protocol::iec62056::test_meter::{DuplexMeter, LineEvent, block, command, line};

    const SIGN_ON: &[u8] = b"/?12345678!\r\n";
    const IDENTIFICATION: &[u8] = b"/EMH5\\2LZQJL0011F\r\n";
    const PROGRAMMING_AT_9600: [u8; 6] = [ACK, b'0', b'5', b'1', CR, LF];
    /// The break, byte for byte (`docs/PROTOCOLS.md`, "Messages and the
    /// block check"): `SOH B0 ETX` → 0x71.
    const BREAK: [u8; 5] = [SOH, b'B', b'0', ETX, 0x71];

    /// The exchange up to the meter's ACK of the password `00000000`.
    async fn log_in(meter: &mut DuplexMeter, password_answer: &[u8]) {
        meter.expect(SIGN_ON).await;
        meter.send(IDENTIFICATION).await;
        meter.expect(&PROGRAMMING_AT_9600).await;
        // SOH P0 STX (1234567) ETX 0x50, worked out in frame.rs.
        meter
            .send(&[&[SOH, b'P', b'0', STX][..], b"(1234567)", &[ETX, 0x50]].concat())
            .await;
        // SOH P1 STX (00000000) ETX 0x61, worked out in frame.rs.
        meter
            .expect(&[&[SOH, b'P', b'1', STX][..], b"(00000000)", &[ETX, 0x61]].concat())
            .await;
        meter.send(password_answer).await;
    }

    fn assert_send<F: Future + Send>(future: F) -> F {
        future
    }

    fn sent(bytes: &[u8]) -> LineEvent {
        LineEvent::Sent {
            baud: 9600,
            bytes: bytes.to_vec(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reads_writes_and_a_load_profile_then_the_break() {
        let (client, mut meter, log) = line(300);
        let script = tokio::spawn(async move {
            log_in(&mut meter, &[ACK]).await;
            // SOH R1 STX 1.8.0() ETX BCC: 'R'^'1' = 0x63, ^STX = 0x61;
            // "1.8.0" XORs to 0x39 -> 0x58; '('^')' = 0x01 -> 0x59; ^ETX -> 0x5A.
            meter
                .expect(&[&[SOH, b'R', b'1', STX][..], b"1.8.0()", &[ETX, 0x5A]].concat())
                .await;
            // "1.8.0(012345.67*kWh)" ETX: 0x4A with "\r\n!\r\n" (message.rs);
            // without it, CR LF pairs cancel and '!' 0x21 goes: 0x6B.
            meter
                .send(&[&[STX][..], b"1.8.0(012345.67*kWh)", &[ETX, 0x6B]].concat())
                .await;
            meter.expect(&command(CommandKind::R1, "9.9.9()")).await;
            // STX (ERROR) ETX: '('^')' = 0x01; 'E'^'R'^'R'^'O'^'R' = 0x58
            // -> 0x59; ^ETX -> 0x5A.
            meter.send(&[&[STX][..], b"(ERROR)", &[ETX, 0x5A]].concat()).await;
            meter.expect(&command(CommandKind::W1, "0.9.1(123000)")).await;
            meter.send(&[ACK]).await;
            meter
                .expect(&command(CommandKind::R5, "P.01(02211221500;02211221530)"))
                .await;
            meter
                .send(&block(
                    "P.01(0221122150000)(00)(15)(2)(1.5.0)(kW)(2.5.0)(kW)\r\n",
                    false,
                ))
                .await;
            meter.expect(&[ACK]).await;
            meter.send(&block("(0.120)(0.000)\r\n(0.250)()\r\n", true)).await;
            meter.expect(&BREAK).await;
            meter.rest().await
        });
        let at = |h, m| ProfileTime {
            season: 0,
            time: NaiveDate::from_ymd_opt(2022, 11, 22)
                .unwrap()
                .and_hms_opt(h, m, 0)
                .unwrap(),
        };
        let request = ProfileRequest {
            profile: 1,
            from: Some(at(15, 0)),
            to: Some(at(15, 30)),
        };
        let mut session = Session::new(client, SessionConfig::default());
        let (energy, refused, profile) = assert_send(session.with_programming("12345678", "00000000", async |meter| {
            let energy = meter.read("1.8.0()").await?;
            let refused = meter.read("9.9.9()").await.unwrap_err();
            meter.write("0.9.1", "123000").await?;
            let profile = meter.load_profile(&request).await?;
            Ok((energy, refused, profile))
        }))
        .await
        .unwrap();
        assert_eq!(energy[0].address, "1.8.0");
        assert_eq!(energy[0].values[0].value, "012345.67");
        // A refusal is the meter's answer, not a link failure: the
        // session went on.
        assert!(matches!(&refused, SessionError::MeterError(answer) if answer == "ERROR"));
        assert!(!refused.is_link_failure());
        assert_eq!(profile.len(), 1);
        assert_eq!(profile[0].channels.len(), 2);
        assert_eq!(profile[0].rows, [vec![Some(0.12), Some(0.0)], vec![Some(0.25), None]]);
        assert!(!session.in_programming());
        assert_eq!(session.baud(), 300);
        drop(session);
        assert_eq!(script.await.unwrap(), b"");

        let events = log.events();
        assert_eq!(
            events[..3],
            [
                LineEvent::Sent {
                    baud: 300,
                    bytes: SIGN_ON.to_vec()
                },
                LineEvent::Sent {
                    baud: 300,
                    bytes: PROGRAMMING_AT_9600.to_vec()
                },
                LineEvent::Switched { baud: 9600 },
            ]
        );
        assert_eq!(
            events[events.len() - 2..],
            [sent(&BREAK), LineEvent::Switched { baud: 300 }]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_password_still_ends_with_the_break() {
        let (client, mut meter, log) = line(300);
        let script = tokio::spawn(async move {
            log_in(&mut meter, &[NAK]).await;
            meter.expect(&BREAK).await;
            meter.rest().await
        });
        let mut session = Session::new(client, SessionConfig::default());
        let mut ran = false;
        let error = session
            .with_programming("12345678", "00000000", async |_| {
                ran = true;
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(matches!(error, SessionError::PasswordRefused), "{error}");
        assert!(!ran);
        assert!(!session.in_programming());
        drop(session);
        assert_eq!(script.await.unwrap(), b"");
        assert_eq!(log.events().last(), Some(&LineEvent::Switched { baud: 300 }));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_meter_ends_programming_with_the_break() {
        let (client, mut meter, _log) = line(300);
        let script = tokio::spawn(async move {
            log_in(&mut meter, &[ACK]).await;
            meter.expect(&command(CommandKind::R1, "1.8.0()")).await;
            meter.expect(&BREAK).await;
            meter.rest().await
        });
        let mut session = Session::new(client, SessionConfig::default());
        session.open_programming("12345678", "00000000").await.unwrap();
        let error = session.read("1.8.0()").await.unwrap_err();
        assert!(
            matches!(
                error,
                SessionError::Timeout {
                    waiting_for: "the answer to a read"
                }
            ),
            "{error}"
        );
        assert!(error.is_link_failure());
        assert!(!session.in_programming());
        assert!(matches!(
            session.read("1.8.0()").await,
            Err(SessionError::NotProgramming)
        ));
        session.close().await.unwrap();
        drop(session);
        // One break only.
        assert_eq!(script.await.unwrap(), b"");
    }

    #[tokio::test(start_paused = true)]
    async fn commands_are_repeated_after_a_nak_within_the_bound() {
        let (client, mut meter, _log) = line(300);
        let script = tokio::spawn(async move {
            log_in(&mut meter, &[ACK]).await;
            meter.expect(&command(CommandKind::R1, "1.8.0()")).await;
            meter.send(&[NAK]).await;
            meter.expect(&command(CommandKind::R1, "1.8.0()")).await;
            meter.send(&block("1.8.0(1.5*kWh)", true)).await;
            for _ in 0..4 {
                meter.expect(&command(CommandKind::W1, "0.9.2(221122)")).await;
                meter.send(&[NAK]).await;
            }
            meter.expect(&BREAK).await;
            meter.rest().await
        });
        let mut session = Session::new(client, SessionConfig::default());
        session.open_programming("12345678", "00000000").await.unwrap();
        assert_eq!(session.read("1.8.0()").await.unwrap()[0].values[0].value, "1.5");
        let error = session.write("0.9.2", "221122").await.unwrap_err();
        assert!(
            matches!(
                error,
                SessionError::Nak {
                    command: CommandKind::W1,
                    attempts: 4
                }
            ),
            "{error}"
        );
        assert!(session.in_programming());
        session.close().await.unwrap();
        drop(session);
        assert_eq!(script.await.unwrap(), b"");
    }

    #[tokio::test(start_paused = true)]
    async fn programming_lapses_after_the_inactivity_limit() {
        let (client, mut meter, _log) = line(300);
        let script = tokio::spawn(async move {
            log_in(&mut meter, &[ACK]).await;
            meter.expect(&BREAK).await;
            meter.rest().await
        });
        let mut session = Session::new(client, SessionConfig::default());
        session.open_programming("12345678", "00000000").await.unwrap();
        tokio::time::advance(Duration::from_secs(61)).await;
        let error = session.read("1.8.0()").await.unwrap_err();
        assert!(matches!(error, SessionError::ProgrammingExpired { .. }), "{error}");
        assert!(!session.in_programming());
        drop(session);
        assert_eq!(script.await.unwrap(), b"");
    }

    #[test]
    fn refusals_are_recognised_in_their_usual_forms() {
        for text in ["(ERROR)", "(ERROR)\r\n", "ERROR", "#0001", "(#0002)\r\n!\r\n"] {
            assert!(refusal(text).is_some(), "{text:?}");
        }
        for text in ["1.8.0(1.5)", "(1.5)", ""] {
            assert_eq!(refusal(text), None, "{text:?}");
        }
    }
}

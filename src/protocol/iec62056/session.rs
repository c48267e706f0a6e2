//! The client side of an IEC 62056-21 conversation (modes A, B and C) over
//! any byte stream: a serial port or optical probe, a TCP connection to a
//! gateway, or `tokio::io::duplex` in tests. The codec modules frame the
//! bytes; this module owns what they leave out: timing, baud switches,
//! acknowledgements of partial blocks and bounded repeats.
//!
//! Data readout lives here; programming mode (password, R1/R5, W1/W5,
//! load profiles, break) is in [`super::programming`]. Facts in
//! `docs/PROTOCOLS.md`.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, sleep_until, timeout_at};

use super::dataset::{DataSet, parse_data_sets};
use super::frame::{ACK, DataBlock, Decoded, FrameError, NAK};
use super::ident::{Identification, Mode, OptionMode, OptionSelect, SignOn};
use super::line::LineSpeed;
use super::message::{MeterMessage, decode_from_meter};
pub(crate) use super::session_config::SessionConfig;
pub(crate) use super::session_error::SessionError;
use super::session_error::unexpected;

/// A data readout (option `0` in mode C, or modes A and B).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readout {
    pub identification: Identification,
    pub data_sets: Vec<DataSet>,
    /// The readout text as received, partial blocks joined.
    pub raw_text: String,
    /// The rate the data came at.
    pub baud: u32,
}

/// One meter conversation at a time on one line. Create it with the line
/// at [`SessionConfig::initial_baud`]; every operation leaves it there.
///
/// Programming mode must end with a break (`B0`): use
/// [`Session::with_programming`], which always sends it; the lower-level
/// [`Session::open_programming`] … [`Session::close`] send it on every
/// link failure but rely on the caller to close after success.
pub struct Session<S> {
    pub(super) stream: S,
    pub(super) config: SessionConfig,
    buffer: Vec<u8>,
    /// The rate both sides use now.
    baud: u32,
    pub(super) programming: bool,
    /// When the line last fell quiet: the end on the wire of our last
    /// message, or the arrival of the meter's last one. `None` before the
    /// first exchange.
    pub(super) quiet_since: Option<Instant>,
    /// When the exchange under way must be over
    /// ([`SessionConfig::exchange_deadline`] after it began).
    deadline: Option<Instant>,
}

impl<S> Session<S> {
    pub fn new(stream: S, config: SessionConfig) -> Self {
        Self {
            stream,
            baud: config.initial_baud,
            config,
            buffer: Vec::new(),
            programming: false,
            quiet_since: None,
            deadline: None,
        }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The rate in use now (the negotiated one on TCP, where nothing
    /// switches locally).
    pub fn baud(&self) -> u32 {
        self.baud
    }

    pub fn in_programming(&self) -> bool {
        self.programming
    }

    /// The line back, e.g. to reuse it with another configuration.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S: AsyncRead + AsyncWrite + LineSpeed + Unpin + Send> Session<S> {
    /// Reads the meter's data readout: sign-on, identification, then in
    /// mode C the acknowledgement `ACK 0 Z 0` with Z capped at
    /// [`SessionConfig::max_baud`] and a switch to that rate; in mode B a
    /// switch to the offered rate without acknowledgement; in mode A the
    /// initial rate throughout. A programming session still open is
    /// closed first.
    pub async fn readout(&mut self, address: &str) -> Result<Readout, SessionError> {
        self.close().await?;
        self.begin_exchange();
        let result = self.read_out(address).await;
        if result.is_err() {
            // The meter falls back to its initial rate by itself.
            let _ = self.switch_baud(self.config.initial_baud, false).await;
        }
        result
    }

    async fn read_out(&mut self, address: &str) -> Result<Readout, SessionError> {
        let identification = self.sign_on(address).await?;
        match identification.mode() {
            Mode::A => {}
            Mode::B => {
                let offered = identification.baud_rate();
                if offered > self.config.max_baud {
                    return Err(SessionError::BaudNotSupported {
                        offered,
                        max: self.config.max_baud,
                    });
                }
                self.switch_baud(offered, false).await?;
            }
            Mode::C => self.select_option(&identification, OptionMode::Readout).await?,
        }
        let raw_text = self.receive_text("the data readout", None).await?;
        let data_sets = parse_data_sets(&raw_text)?;
        let baud = self.baud;
        // After the readout the meter is back at its initial rate.
        self.switch_baud(self.config.initial_baud, false).await?;
        Ok(Readout {
            identification,
            data_sets,
            raw_text,
            baud,
        })
    }

    /// Starts the clock of an exchange: every wait for the meter ends by
    /// [`SessionConfig::exchange_deadline`] from now.
    pub(super) fn begin_exchange(&mut self) {
        self.deadline = Some(Instant::now() + self.config.exchange_deadline);
    }

    /// Sends `/?address!` CR LF at the initial rate and returns the
    /// identification.
    pub(super) async fn sign_on(&mut self, address: &str) -> Result<Identification, SessionError> {
        let request = SignOn {
            address: address.into(),
        }
        .encode()?;
        self.buffer.clear();
        self.send(&request).await?;
        match self.receive("the identification").await? {
            MeterMessage::Identification(identification) => Ok(identification),
            other => Err(unexpected("an identification", &other)),
        }
    }

    /// Mode C: acknowledges with option `mode` at the offered rate capped
    /// at ours, then switches to it.
    pub(super) async fn select_option(
        &mut self,
        identification: &Identification,
        mode: OptionMode,
    ) -> Result<(), SessionError> {
        let cap = (b'0'..=b'6')
            .rev()
            .find(|&z| mode_c_baud(z) <= self.config.max_baud)
            .unwrap_or(b'0');
        let z = identification.baud_char.min(cap);
        self.send(&OptionSelect::new(z, mode).encode()?).await?;
        self.switch_baud(mode_c_baud(z), true).await
    }

    /// Receives data blocks until one closed by ETX, starting with `first`
    /// if one was already received: ACK asks for each next partial block.
    /// Returns the joined text.
    pub(super) async fn receive_text(
        &mut self,
        waiting_for: &'static str,
        mut first: Option<DataBlock>,
    ) -> Result<String, SessionError> {
        let mut text = String::new();
        loop {
            let block = match first.take() {
                Some(block) => block,
                None => match self.receive_checked(waiting_for).await? {
                    MeterMessage::Data(block) => block,
                    other => return Err(unexpected("a data block", &other)),
                },
            };
            text.push_str(&block.text);
            if text.len() > self.config.max_answer_len {
                return Err(SessionError::AnswerTooLong {
                    limit: self.config.max_answer_len,
                });
            }
            if block.last {
                return Ok(text);
            }
            self.send(&[ACK]).await?;
        }
    }

    /// The next message; a block with a bad BCC is answered with NAK for a
    /// repeat, at most [`SessionConfig::max_retries`] times in a row.
    pub(super) async fn receive_checked(&mut self, waiting_for: &'static str) -> Result<MeterMessage, SessionError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.receive(waiting_for).await {
                Err(SessionError::Frame(FrameError::BadBcc { .. })) if attempts <= self.config.max_retries => {
                    tracing::debug!(attempts, waiting_for, "bad BCC, asking for a repeat");
                    self.send(&[NAK]).await?;
                }
                Err(SessionError::Frame(FrameError::BadBcc { .. })) => return Err(SessionError::BadBcc { attempts }),
                other => return other,
            }
        }
    }

    /// Writes one message after the turnaround pause.
    pub(super) async fn send(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        if let Some(quiet) = self.quiet_since {
            sleep_until(quiet + self.config.turnaround).await;
        }
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        self.quiet_since = Some(Instant::now() + wire_time(bytes.len(), self.baud));
        Ok(())
    }

    /// Reads the next message: the first byte within the reaction timeout
    /// (counted from when the line fell quiet), each further byte within
    /// the inter-character timeout, the whole by the exchange's deadline.
    /// After a bad frame the buffer is dropped: on a half-duplex line
    /// nothing valid follows until we answer.
    pub(super) async fn receive(&mut self, waiting_for: &'static str) -> Result<MeterMessage, SessionError> {
        let mut deadline = self.quiet_since.unwrap_or_else(Instant::now) + self.config.reaction_timeout;
        let overall = self
            .deadline
            .unwrap_or_else(|| Instant::now() + self.config.exchange_deadline);
        loop {
            match decode_from_meter(&self.buffer) {
                Ok(Decoded::Complete(message, used)) => {
                    self.buffer.drain(..used);
                    self.quiet_since = Some(Instant::now());
                    return Ok(message);
                }
                Ok(Decoded::Incomplete) => {}
                Err(error) => {
                    self.buffer.clear();
                    self.quiet_since = Some(Instant::now());
                    return Err(error.into());
                }
            }
            let read = match timeout_at(deadline.min(overall), self.stream.read_buf(&mut self.buffer)).await {
                Ok(read) => read?,
                Err(_) if deadline < overall => return Err(SessionError::Timeout { waiting_for }),
                Err(_) => {
                    self.buffer.clear();
                    return Err(SessionError::DeadlineExceeded {
                        waiting_for,
                        deadline: self.config.exchange_deadline,
                    });
                }
            };
            if read == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the line closed while waiting for {waiting_for}"),
                )
                .into());
            }
            deadline = Instant::now() + self.config.inter_character_timeout;
        }
    }

    /// Switches the local rate. After a message of ours (`after_sending`)
    /// first waits the settle delay, and at least until that message has
    /// left at the old rate. Lines without a local rate (TCP) never wait.
    pub(super) async fn switch_baud(&mut self, baud: u32, after_sending: bool) -> Result<(), SessionError> {
        if baud == self.baud {
            return Ok(());
        }
        if self.stream.has_baud_rate() && after_sending {
            let settled = Instant::now() + self.config.settle_delay;
            sleep_until(self.quiet_since.map_or(settled, |quiet| quiet.max(settled))).await;
        }
        self.stream.set_baud(baud)?;
        self.baud = baud;
        Ok(())
    }
}

/// Mode C rate of baud character `z` (`0`–`6`: 300…19200).
fn mode_c_baud(z: u8) -> u32 {
    300 << (z - b'0')
}

/// Time `bytes` characters take on a 7E1 line (10 bits each).
fn wire_time(bytes: usize, baud: u32) -> Duration {
    Duration::from_nanos(bytes as u64 * 10 * 1_000_000_000 / u64::from(baud.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::iec62056::frame::{EOT, ETX, STX};
    use crate::protocol::iec62056::test_meter::{LineEvent, block, corrupted, line};

    /// The TH40C manual gives no identification string (`docs/PROTOCOLS.md`,
    /// TH40C §1); `XXX` stands in for its manufacturer id.
    const SIGN_ON: &[u8] = b"/?!\r\n";

    fn sent(baud: u32, bytes: &[u8]) -> LineEvent {
        LineEvent::Sent {
            baud,
            bytes: bytes.to_vec(),
        }
    }

    fn switched(baud: u32) -> LineEvent {
        LineEvent::Switched { baud }
    }

    #[tokio::test(start_paused = true)]
    async fn mode_c_acknowledges_at_300_then_switches_to_the_capped_rate() {
        let (client, mut meter, log) = line(300);
        let script = tokio::spawn(async move {
            meter.expect(SIGN_ON).await;
            // Z = 6: the meter offers 19200; this line accepts 9600 (Z = 5).
            meter.send(b"/XXX6TH40C\r\n").await;
            meter.expect(&[ACK, b'0', b'5', b'0', b'\r', b'\n']).await;
            // A TH40C register (`docs/PROTOCOLS.md`, TH40C §2.2, B = 1)
            // in the standard's value format. BCC by hand: "1.8.0(012345.67*kWh)\r\n!\r\n" ETX
            // XORs to 0x4A (worked out in message.rs); the prefix
            // '1'^'-'^'1'^':' = 0x2D^0x3A = 0x17; 0x4A^0x17 = 0x5D.
            let mut readout = vec![STX];
            readout.extend_from_slice(b"1-1:1.8.0(012345.67*kWh)\r\n!\r\n");
            readout.extend_from_slice(&[ETX, 0x5D]);
            meter.send(&readout).await;
            meter.rest().await
        });
        let config = SessionConfig {
            max_baud: 9600,
            ..SessionConfig::default()
        };
        let mut session = Session::new(client, config);
        let readout = session.readout("").await.unwrap();
        assert_eq!(readout.identification.identification, "TH40C");
        assert_eq!(readout.baud, 9600);
        assert_eq!(readout.raw_text, "1-1:1.8.0(012345.67*kWh)\r\n!\r\n");
        assert_eq!(readout.data_sets.len(), 1);
        assert_eq!(readout.data_sets[0].address, "1-1:1.8.0");
        assert_eq!(readout.data_sets[0].values[0].value, "012345.67");
        assert_eq!(readout.data_sets[0].values[0].unit.as_deref(), Some("kWh"));
        assert_eq!(session.baud(), 300);
        drop(session);
        assert_eq!(script.await.unwrap(), b"");

        assert_eq!(
            log.events(),
            [
                sent(300, SIGN_ON),
                sent(300, &[ACK, b'0', b'5', b'0', b'\r', b'\n']),
                switched(9600),
                // The meter is back at 300 after its readout.
                switched(300),
            ]
        );
        // The switch waits the settle delay after the acknowledgement.
        let timed = log.timed();
        assert!(timed[2].0 - timed[1].0 >= Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn mode_a_stays_at_300() {
        let (client, mut meter, log) = line(300);
        let script = tokio::spawn(async move {
            meter.expect(b"/?12345678!\r\n").await;
            // Z = 'G' is no mode B or C character: mode A.
            meter.send(b"/XXXGTH40C\r\n").await;
            meter.send(&block("0-0:F.F.0(00000000)\r\n!\r\n", true)).await;
            meter.rest().await
        });
        let mut session = Session::new(client, SessionConfig::default());
        let readout = session.readout("12345678").await.unwrap();
        assert_eq!(readout.baud, 300);
        assert_eq!(readout.data_sets[0].address, "0-0:F.F.0");
        drop(session);
        assert_eq!(script.await.unwrap(), b"");
        assert_eq!(log.events(), [sent(300, b"/?12345678!\r\n")]);
    }

    #[tokio::test(start_paused = true)]
    async fn mode_b_switches_without_acknowledgement() {
        let (client, mut meter, log) = line(300);
        let script = tokio::spawn(async move {
            meter.expect(SIGN_ON).await;
            // Z = 'E': mode B at 9600.
            meter.send(b"/XXXETH40C\r\n").await;
            meter.send(&block("1-1:1.8.0(1.5*kWh)\r\n!\r\n", true)).await;
            meter.rest().await
        });
        let mut session = Session::new(client, SessionConfig::default());
        assert_eq!(session.readout("").await.unwrap().baud, 9600);
        drop(session);
        assert_eq!(script.await.unwrap(), b"");
        assert_eq!(log.events(), [sent(300, SIGN_ON), switched(9600), switched(300)]);
    }

    #[tokio::test(start_paused = true)]
    async fn mode_b_above_the_cap_is_refused() {
        let (client, mut meter, _log) = line(300);
        let script = tokio::spawn(async move {
            meter.expect(SIGN_ON).await;
            meter.send(b"/XXXFTH40C\r\n").await;
            meter.rest().await
        });
        let config = SessionConfig {
            max_baud: 9600,
            ..SessionConfig::default()
        };
        let mut session = Session::new(client, config);
        let error = session.readout("").await.unwrap_err();
        assert!(matches!(
            error,
            SessionError::BaudNotSupported {
                offered: 19200,
                max: 9600
            }
        ));
        drop(session);
        script.await.unwrap();
    }

    /// Real TCP, real clock: a settle delay of an hour would hang the test
    /// if the session waited it on a line without a local rate.
    #[tokio::test]
    async fn tcp_negotiates_mode_c_without_switching_or_settling() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let script = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut meter = crate::protocol::iec62056::test_meter::Meter(socket);
            meter.expect(SIGN_ON).await;
            meter.send(b"/XXX5TH40C\r\n").await;
            meter.expect(&[ACK, b'0', b'5', b'0', b'\r', b'\n']).await;
            meter.send(&block("1-1:1.8.0(1.5*kWh)\r\n!\r\n", true)).await;
            meter.rest().await
        });
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let config = SessionConfig {
            settle_delay: Duration::from_secs(3600),
            turnaround: Duration::ZERO,
            ..SessionConfig::default()
        };
        let mut session = Session::new(stream, config);
        let readout = tokio::time::timeout(Duration::from_secs(10), session.readout(""))
            .await
            .expect("the session waited a settle delay on TCP")
            .unwrap();
        assert_eq!(readout.baud, 9600);
        drop(session);
        assert_eq!(script.await.unwrap(), b"");
    }

    #[tokio::test(start_paused = true)]
    async fn partial_blocks_are_acknowledged_and_joined() {
        let (client, mut meter, log) = line(300);
        let script = tokio::spawn(async move {
            meter.expect(SIGN_ON).await;
            meter.send(b"/XXX5TH40C\r\n").await;
            meter.expect(&[ACK, b'0', b'5', b'0', b'\r', b'\n']).await;
            meter.send(&block("1-1:1.8.0(012345.67*kWh)\r\n", false)).await;
            meter.expect(&[ACK]).await;
            meter.send(&block("1-1:2.8.0(000001.00*kWh)\r\n", false)).await;
            meter.expect(&[ACK]).await;
            meter.send(&block("0-0:F.F.0(00000000)\r\n!\r\n", true)).await;
            meter.rest().await
        });
        let mut session = Session::new(client, SessionConfig::default());
        let readout = session.readout("").await.unwrap();
        assert_eq!(
            readout.raw_text,
            "1-1:1.8.0(012345.67*kWh)\r\n1-1:2.8.0(000001.00*kWh)\r\n0-0:F.F.0(00000000)\r\n!\r\n"
        );
        let addresses: Vec<_> = readout.data_sets.iter().map(|set| set.address.as_str()).collect();
        assert_eq!(addresses, ["1-1:1.8.0", "1-1:2.8.0", "0-0:F.F.0"]);
        drop(session);
        assert_eq!(script.await.unwrap(), b"");
        assert_eq!(
            log.events()[3..],
            [sent(9600, &[ACK]), sent(9600, &[ACK]), switched(300)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_bad_bcc_is_answered_with_nak_and_the_repeat_accepted() {
        let (client, mut meter, _log) = line(300);
        let script = tokio::spawn(async move {
            meter.expect(SIGN_ON).await;
            meter.send(b"/XXX5TH40C\r\n").await;
            meter.expect(&[ACK, b'0', b'5', b'0', b'\r', b'\n']).await;
            // STX "(1)" EOT, BCC '('^'1'^')'^EOT = 0x34, spoiled to 0x35.
            meter.send(&[STX, b'(', b'1', b')', EOT, 0x35]).await;
            meter.expect(&[NAK]).await;
            meter.send(&[STX, b'(', b'1', b')', EOT, 0x34]).await;
            meter.expect(&[ACK]).await;
            meter.send(&block("1-1:1.8.0(1.5*kWh)\r\n!\r\n", true)).await;
            meter.rest().await
        });
        let mut session = Session::new(client, SessionConfig::default());
        let readout = session.readout("").await.unwrap();
        assert_eq!(readout.raw_text, "(1)1-1:1.8.0(1.5*kWh)\r\n!\r\n");
        drop(session);
        assert_eq!(script.await.unwrap(), b"");
    }

    #[tokio::test(start_paused = true)]
    async fn a_bcc_bad_every_time_fails_after_the_retries() {
        let (client, mut meter, log) = line(300);
        let text = "1-1:1.8.0(1.5*kWh)\r\n!\r\n";
        let script = tokio::spawn(async move {
            meter.expect(SIGN_ON).await;
            meter.send(b"/XXX5TH40C\r\n").await;
            meter.expect(&[ACK, b'0', b'5', b'0', b'\r', b'\n']).await;
            for _ in 0..3 {
                meter.send(&corrupted(text, true)).await;
                meter.expect(&[NAK]).await;
            }
            meter.send(&corrupted(text, true)).await;
            meter.rest().await
        });
        let mut session = Session::new(client, SessionConfig::default());
        let error = session.readout("").await.unwrap_err();
        assert!(matches!(error, SessionError::BadBcc { attempts: 4 }), "{error}");
        assert!(error.is_link_failure());
        assert_eq!(session.baud(), 300);
        drop(session);
        // No fourth NAK.
        assert_eq!(script.await.unwrap(), b"");
        assert_eq!(log.events().last(), Some(&switched(300)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_meter_times_out_naming_the_identification() {
        let (client, mut meter, _log) = line(300);
        let script = tokio::spawn(async move {
            meter.expect(SIGN_ON).await;
            meter.rest().await
        });
        let mut session = Session::new(client, SessionConfig::default());
        let start = Instant::now();
        let error = session.readout("").await.unwrap_err();
        assert!(
            matches!(
                error,
                SessionError::Timeout {
                    waiting_for: "the identification"
                }
            ),
            "{error}"
        );
        // The sign-on's 5 characters take 5 × 10 bits / 300 baud = 166.7 ms
        // on the wire; the reaction timeout counts from their end.
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_micros(1_666_666) && waited < Duration::from_millis(1700),
            "{waited:?}"
        );
        drop(session);
        assert_eq!(script.await.unwrap(), b"");
    }

    #[tokio::test(start_paused = true)]
    async fn a_meter_that_stops_mid_block_times_out() {
        let (client, mut meter, _log) = line(300);
        let script = tokio::spawn(async move {
            meter.expect(SIGN_ON).await;
            meter.send(b"/XXXGTH40C\r\n").await;
            meter.send(b"\x021-1:1.8.0(0123").await;
            meter.rest().await
        });
        let mut session = Session::new(client, SessionConfig::default());
        let error = session.readout("").await.unwrap_err();
        assert!(
            matches!(
                error,
                SessionError::Timeout {
                    waiting_for: "the data readout"
                }
            ),
            "{error}"
        );
        drop(session);
        assert_eq!(script.await.unwrap(), b"");
    }

    #[tokio::test(start_paused = true)]
    async fn a_meter_that_never_stops_talking_is_cut_off_at_the_exchange_deadline() {
        let (client, mut meter, _log) = line(300);
        let script = tokio::spawn(async move {
            meter.expect(SIGN_ON).await;
            meter.send(b"/XXXGTH40C\r\n").await;
            meter.send(&[STX]).await;
            // A data line every 100 ms, well inside the inter-character
            // timeout, and never an ETX: 30 s of talk.
            for _ in 0..300 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if meter.0.write_all(b"1-1:1.8.0(012345.67*kWh)\r\n").await.is_err() {
                    return;
                }
            }
        });
        let config = SessionConfig {
            exchange_deadline: Duration::from_secs(5),
            ..SessionConfig::default()
        };
        let mut session = Session::new(client, config);
        let start = Instant::now();
        let error = session.readout("").await.unwrap_err();
        let took = start.elapsed();
        assert!(
            matches!(
                error,
                SessionError::DeadlineExceeded {
                    waiting_for: "the data readout",
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.is_link_failure(), "the line is dropped and signed on afresh");
        // From the start of the readout: 5 s, not the 30 s the meter talks.
        assert_eq!(took, Duration::from_secs(5));
        drop(session);
        script.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn endless_partial_blocks_end_at_the_answer_limit() {
        let (client, mut meter, log) = line(300);
        let line_text = "1-1:1.8.0(012345.67*kWh)\r\n";
        let script = tokio::spawn(async move {
            meter.expect(SIGN_ON).await;
            meter.send(b"/XXXGTH40C\r\n").await;
            // A partial block (EOT), the same again after each ACK, for ever.
            loop {
                meter.send(&block(line_text, false)).await;
                let mut ack = [0u8; 1];
                if meter.0.read_exact(&mut ack).await.is_err() || ack[0] != ACK {
                    return;
                }
            }
        });
        // 26 characters a block: the 4th block takes the answer to 104,
        // past a limit of 100, after 3 ACKs.
        assert_eq!(line_text.len(), 26);
        let config = SessionConfig {
            max_answer_len: 100,
            ..SessionConfig::default()
        };
        let mut session = Session::new(client, config);
        let error = session.readout("").await.unwrap_err();
        assert!(matches!(error, SessionError::AnswerTooLong { limit: 100 }), "{error}");
        assert!(error.is_link_failure());
        let acks = log
            .events()
            .into_iter()
            .filter(|event| matches!(event, LineEvent::Sent { bytes, .. } if bytes == &[ACK]))
            .count();
        assert_eq!(acks, 3);
        drop(session);
        script.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_out_of_turn_is_unexpected() {
        let (client, mut meter, _log) = line(300);
        let script = tokio::spawn(async move {
            meter.expect(SIGN_ON).await;
            meter.send(&[NAK]).await;
            meter.rest().await
        });
        let mut session = Session::new(client, SessionConfig::default());
        let error = session.readout("").await.unwrap_err();
        assert!(
            matches!(&error, SessionError::UnexpectedMessage { expected: "an identification", got } if got == "NAK"),
            "{error}"
        );
        drop(session);
        script.await.unwrap();
    }
}

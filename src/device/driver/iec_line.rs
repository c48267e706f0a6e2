//! The line of an IEC 62056-21 bus: a session over a serial port (RS485
//! multi-drop or an optical probe, 7E1, baud switched per mode C) or over
//! TCP (no switch), opened lazily and dropped after a link failure so the
//! next exchange starts from a clean sign-on.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_serial::SerialStream;

use super::iec_program::run_program;
use super::iec_program_plan::Plan;
use super::program::{ProgramDone, ProgramError};
use crate::domain::transport::Transport;
use crate::protocol::iec62056::line::open_serial;
use crate::protocol::iec62056::session::{Readout, Session, SessionConfig, SessionError};
use crate::protocol::iec62056::{LoadProfileBlock, ProfileRequest};

/// One open line.
pub(crate) enum IecLine {
    Serial(Session<SerialStream>),
    Tcp(Session<TcpStream>),
}

/// The session settings a bus's transport calls for: its rates, and for an
/// optical probe its settle delay. A meter may take the standard's 1.5 s
/// to react; `reaction` (the server's answer timeout) lengthens that wait,
/// never shortens it.
pub(crate) fn session_config(transport: &Transport, reaction: Duration) -> SessionConfig {
    let standard = SessionConfig::default();
    let mut config = SessionConfig {
        reaction_timeout: reaction.max(standard.reaction_timeout),
        ..standard
    };
    match transport {
        Transport::Iec62056Serial {
            initial_baud, max_baud, ..
        } => {
            config.initial_baud = *initial_baud;
            config.max_baud = *max_baud;
        }
        Transport::Optical {
            max_baud, settle_ms, ..
        } => {
            config.max_baud = *max_baud;
            config.settle_delay = Duration::from_millis(u64::from(*settle_ms)).max(Duration::from_millis(200));
        }
        _ => {}
    }
    config
}

impl IecLine {
    pub(crate) async fn open(transport: &Transport, config: SessionConfig) -> Result<IecLine, SessionError> {
        match transport {
            Transport::Iec62056Tcp { host, port } => {
                let target = format!("{host}:{port}");
                let stream = tokio::time::timeout(config.reaction_timeout, TcpStream::connect(&target))
                    .await
                    .map_err(|_| SessionError::Timeout {
                        waiting_for: "the TCP connection",
                    })??;
                stream.set_nodelay(true).ok();
                Ok(IecLine::Tcp(Session::new(stream, config)))
            }
            Transport::Iec62056Serial { path, .. } | Transport::Optical { path, .. } => {
                let port = open_serial(path, config.initial_baud)?;
                Ok(IecLine::Serial(Session::new(port, config)))
            }
            other => Err(SessionError::Io(std::io::Error::other(format!(
                "{} is not an IEC 62056-21 transport",
                other.kind()
            )))),
        }
    }

    pub(crate) async fn readout(&mut self, address: &str) -> Result<Readout, SessionError> {
        match self {
            IecLine::Serial(session) => session.readout(address).await,
            IecLine::Tcp(session) => session.readout(address).await,
        }
    }

    /// Reads load profile blocks in programming mode, always ending with the break.
    pub(crate) async fn load_profile(
        &mut self,
        address: &str,
        password: &str,
        request: &ProfileRequest,
    ) -> Result<Vec<LoadProfileBlock>, SessionError> {
        match self {
            IecLine::Serial(session) => {
                session
                    .with_programming(address, password, async |meter| meter.load_profile(request).await)
                    .await
            }
            IecLine::Tcp(session) => {
                session
                    .with_programming(address, password, async |meter| meter.load_profile(request).await)
                    .await
            }
        }
    }

    /// Runs a command in programming mode, always ending with the break.
    pub(crate) async fn program(
        &mut self,
        address: &str,
        password: &str,
        plan: &Plan<'_>,
        local: chrono::NaiveDateTime,
    ) -> Result<ProgramDone, ProgramError> {
        match self {
            IecLine::Serial(session) => run_program(session, address, password, plan, local).await,
            IecLine::Tcp(session) => run_program(session, address, password, plan, local).await,
        }
    }
}

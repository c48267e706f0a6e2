//! The line of an IEC 62056-21 bus: a session over a serial port (RS485
//! multi-drop or an optical probe, 7E1, baud switched per mode C) or over
//! TCP (no switch), opened lazily and dropped after a link failure so the
//! next exchange starts from a clean sign-on.

use tokio::net::TcpStream;
use tokio_serial::SerialStream;

use super::iec_program::run_program;
use super::iec_program_plan::Plan;
use super::program::{ProgramDone, ProgramError};
use crate::domain::transport::Transport;
use crate::protocol::iec62056::line::open_serial;
use crate::protocol::iec62056::session::{Readout, Session, SessionConfig, SessionError};
use crate::protocol::iec62056::{LoadProfileBlock, LogbookEntry, ProfileRequest};

/// One open line.
pub(crate) enum IecLine {
    Serial(Session<SerialStream>),
    Tcp(Session<TcpStream>),
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

    /// Reads logbook entries in programming mode, always ending with the break.
    pub(crate) async fn logbook(
        &mut self,
        address: &str,
        password: &str,
        request: &ProfileRequest,
    ) -> Result<Vec<LogbookEntry>, SessionError> {
        match self {
            IecLine::Serial(session) => {
                session
                    .with_programming(address, password, async |meter| meter.logbook(request).await)
                    .await
            }
            IecLine::Tcp(session) => {
                session
                    .with_programming(address, password, async |meter| meter.logbook(request).await)
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

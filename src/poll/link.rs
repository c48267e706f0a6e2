//! A bus's link to its devices: Modbus TCP, RTU over TCP, or RTU on a serial
//! line, opened lazily and dropped after any transport failure so the next
//! request starts from a clean connection (a late answer to a timed-out
//! request must never be taken for the answer to the next one).

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_modbus::client::{Context, Reader, rtu, tcp};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ExceptionCode, Slave};
use tokio_serial::SerialPortBuilderExt;

use super::link_stats::Outcome;
use crate::domain::transport::{Parity, Transport};

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot open {target}: {source}")]
    Connect { target: String, source: io::Error },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("transport error: {0}")]
    Transport(String),
    #[error("device answered exception {code:?} for 0x{start:04X}+{count}")]
    Exception {
        code: ExceptionCode,
        start: u16,
        count: u16,
    },
}

impl LinkError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, LinkError::Timeout(_))
    }

    /// How the request ended, for the statistics.
    pub fn outcome(&self) -> Outcome {
        match self {
            LinkError::Timeout(_) => Outcome::Timeout,
            LinkError::Exception { .. } => Outcome::Exception,
            LinkError::Transport(message) if message.contains("CRC") => Outcome::CrcError,
            LinkError::Transport(_) | LinkError::Connect { .. } => Outcome::TransportError,
        }
    }
}

pub struct Link {
    transport: Transport,
    context: Option<Context>,
    timeout: Duration,
    /// Earliest moment the next request may go out (RS485 silence + turnaround).
    quiet_until: Instant,
}

impl Link {
    pub fn new(transport: Transport, timeout: Duration) -> Link {
        Link {
            transport,
            context: None,
            timeout,
            quiet_until: Instant::now(),
        }
    }

    /// The silent interval Modbus RTU demands between frames: 3.5 character
    /// times of 11 bits, fixed at 1.75 ms above 19200 baud (Modbus over serial
    /// line specification, 2.5.1.1). Zero on TCP links.
    pub fn inter_frame_silence(&self) -> Duration {
        match &self.transport {
            Transport::SerialRtu { baud, .. } if *baud > 19_200 => Duration::from_micros(1_750),
            Transport::SerialRtu { baud, .. } => Duration::from_micros(3_500 * 11 * 1_000 / u64::from(*baud)),
            _ => Duration::ZERO,
        }
    }
}

/// Opens the link. A free function: `Context` is not `Sync`, so no borrow of
/// a `Link` may live across an await.
async fn open(transport: &Transport, limit: Duration, unit: u8) -> Result<Context, LinkError> {
    let slave = Slave(unit);
    match transport {
        Transport::ModbusTcp { host, port } | Transport::RtuOverTcp { host, port } => {
            let target = format!("{host}:{port}");
            let stream = timeout(limit, TcpStream::connect(&target))
                .await
                .map_err(|_| LinkError::Connect {
                    target: target.clone(),
                    source: io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
                })?
                .map_err(|source| LinkError::Connect { target, source })?;
            stream.set_nodelay(true).ok();
            Ok(match transport {
                Transport::ModbusTcp { .. } => tcp::attach_slave(stream, slave),
                _ => rtu::attach_slave(stream, slave),
            })
        }
        Transport::SerialRtu {
            path,
            baud,
            parity,
            stop_bits,
        } => {
            let port = tokio_serial::new(path, *baud)
                .data_bits(tokio_serial::DataBits::Eight)
                .parity(match parity {
                    Parity::None => tokio_serial::Parity::None,
                    Parity::Even => tokio_serial::Parity::Even,
                    Parity::Odd => tokio_serial::Parity::Odd,
                })
                .stop_bits(if *stop_bits == 2 {
                    tokio_serial::StopBits::Two
                } else {
                    tokio_serial::StopBits::One
                })
                .open_native_async()
                .map_err(|error| LinkError::Connect {
                    target: path.clone(),
                    source: io::Error::other(error.to_string()),
                })?;
            Ok(rtu::attach_slave(port, slave))
        }
    }
}

impl Link {
    /// Reads `count` holding registers (function 03) from `unit`, after the
    /// line's quiet time. `turnaround` is the device's own recovery time after
    /// it answers. Returns the result and how long the exchange took.
    pub async fn read_holding(
        &mut self,
        unit: u8,
        start: u16,
        count: u16,
        turnaround: Duration,
    ) -> (Result<Vec<u16>, LinkError>, Duration) {
        sleep_until(self.quiet_until).await;
        let started = Instant::now();
        let result = self.exchange(unit, start, count).await;
        let took = started.elapsed();
        self.quiet_until = Instant::now() + self.inter_frame_silence() + turnaround;
        if matches!(result, Err(LinkError::Timeout(_) | LinkError::Transport(_))) {
            self.context = None;
        }
        (result, took)
    }

    async fn exchange(&mut self, unit: u8, start: u16, count: u16) -> Result<Vec<u16>, LinkError> {
        let context = match &mut self.context {
            Some(context) => context,
            None => {
                let context = open(&self.transport, self.timeout, unit).await?;
                self.context.insert(context)
            }
        };
        context.set_slave(Slave(unit));
        match timeout(self.timeout, context.read_holding_registers(start, count)).await {
            Err(_) => Err(LinkError::Timeout(self.timeout)),
            Ok(Err(error)) => Err(LinkError::Transport(error.to_string())),
            Ok(Ok(Err(code))) => Err(LinkError::Exception { code, start, count }),
            Ok(Ok(Ok(words))) if words.len() == usize::from(count) => Ok(words),
            Ok(Ok(Ok(words))) => Err(LinkError::Transport(format!(
                "asked for {count} registers, got {}",
                words.len()
            ))),
        }
    }
}

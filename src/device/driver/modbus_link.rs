//! A bus's link to its devices: Modbus TCP (tokio-modbus), or Modbus RTU on
//! a serial line or through a transparent TCP gateway (our RTU master, which
//! reports CRC errors and sends broadcasts without waiting). The link is
//! opened lazily and dropped after any transport failure, so the next request
//! starts clean: a late answer to a timed-out request is never taken for the
//! answer to the next one.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_modbus::client::{Context, Reader, Writer, tcp};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ExceptionCode, Slave};
use tokio_serial::SerialPortBuilderExt;

use super::exchange::Outcome;
use crate::domain::transport::{Parity, Transport};
use crate::protocol::modbus::rtu_client::{
    Answer, BROADCAST, RtuClient, RtuError, read_holding_request, read_holding_words, write_multiple_request,
    write_single_request,
};

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot open {target}: {source}")]
    Connect { target: String, source: io::Error },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The line carried something, but no answer to the request: noise,
    /// an answer cut short, another unit's answer (`RtuClient`'s `Heard`).
    #[error("no valid answer within {limit:?}: {heard}")]
    Garbled { limit: Duration, heard: String },
    #[error("answer with a bad CRC")]
    Crc,
    #[error("transport error: {0}")]
    Transport(String),
    #[error("device answered Modbus exception {:02X} ({code}) for 0x{start:04X}+{count}", u8::from(*.code))]
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
            LinkError::Crc => Outcome::CrcError,
            LinkError::Transport(_) | LinkError::Connect { .. } | LinkError::Garbled { .. } => Outcome::TransportError,
        }
    }
}

/// A byte stream an RTU master can run on.
trait Line: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Line for T {}

enum Connection {
    Tcp(Context),
    Rtu(RtuClient<Box<dyn Line>>),
}

pub struct Link {
    transport: Transport,
    connection: Option<Connection>,
    timeout: Duration,
    /// Earliest moment the next request may go out (RS485 silence + turnaround).
    quiet_until: Instant,
}

/// Opens the link. A free function: tokio-modbus's `Context` is not `Sync`,
/// so no borrow of a `Link` may live across an await.
async fn open(transport: &Transport, limit: Duration, unit: u8) -> Result<Connection, LinkError> {
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
                Transport::ModbusTcp { .. } => Connection::Tcp(tcp::attach_slave(stream, Slave(unit))),
                _ => Connection::Rtu(RtuClient::new(Box::new(stream))),
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
            Ok(Connection::Rtu(RtuClient::new(Box::new(port))))
        }
        // An IEC 62056-21 bus has its own driver.
        other => Err(LinkError::Transport(format!(
            "{} is not a Modbus transport",
            other.kind()
        ))),
    }
}

/// A request the link can send.
#[derive(Debug, Clone, Copy)]
enum Request<'a> {
    Read {
        start: u16,
        count: u16,
    },
    Write {
        function: u8,
        start: u16,
        values: &'a [u16],
        /// Another unit the answer may come from (an address change).
        answer_from: u8,
    },
}

impl Link {
    pub fn new(transport: Transport, timeout: Duration) -> Link {
        Link {
            transport,
            connection: None,
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
            // 3.5 characters × 11 bits × 10⁹ ns / baud, to the nanosecond.
            Transport::SerialRtu { baud, .. } => Duration::from_nanos(3_500 * 11 * 1_000_000 / u64::from(*baud)),
            _ => Duration::ZERO,
        }
    }

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
        let (result, took) = self.send(unit, Request::Read { start, count }, turnaround).await;
        (result.map(|words| words.unwrap_or_default()), took)
    }

    /// Writes registers with `function` 6 (one value) or 16. To unit 0 it is
    /// a broadcast: sent, no answer awaited, and the line is left quiet for
    /// `turnaround` so every device can act before the next request.
    pub async fn write(
        &mut self,
        unit: u8,
        function: u8,
        start: u16,
        values: &[u16],
        turnaround: Duration,
    ) -> (Result<(), LinkError>, Duration) {
        self.write_answered_by(unit, unit, function, start, values, turnaround)
            .await
    }

    /// [`Link::write`] whose answer may come from unit `answer_from`
    /// instead: an address change, answered from the new address (TH40C
    /// manual, App. E). Honoured on RTU links; tokio-modbus insists on the
    /// unit asked.
    pub async fn write_answered_by(
        &mut self,
        unit: u8,
        answer_from: u8,
        function: u8,
        start: u16,
        values: &[u16],
        turnaround: Duration,
    ) -> (Result<(), LinkError>, Duration) {
        let (result, took) = self
            .send(
                unit,
                Request::Write {
                    function,
                    start,
                    values,
                    answer_from,
                },
                turnaround,
            )
            .await;
        (result.map(|_| ()), took)
    }

    async fn send(
        &mut self,
        unit: u8,
        request: Request<'_>,
        turnaround: Duration,
    ) -> (Result<Option<Vec<u16>>, LinkError>, Duration) {
        sleep_until(self.quiet_until).await;
        let started = Instant::now();
        let result = self.exchange(unit, request).await;
        let took = started.elapsed();
        self.quiet_until = Instant::now() + self.inter_frame_silence() + turnaround;
        // tokio-modbus waited for an answer to a broadcast that never comes:
        // its connection is in an unknown state.
        let tcp_broadcast = unit == BROADCAST && matches!(self.transport, Transport::ModbusTcp { .. });
        if tcp_broadcast
            || matches!(
                result,
                Err(LinkError::Timeout(_) | LinkError::Garbled { .. } | LinkError::Transport(_) | LinkError::Crc)
            )
        {
            self.connection = None;
        }
        (result, took)
    }

    async fn exchange(&mut self, unit: u8, request: Request<'_>) -> Result<Option<Vec<u16>>, LinkError> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => {
                let connection = open(&self.transport, self.timeout, unit).await?;
                self.connection.insert(connection)
            }
        };
        // A broadcast is only given the time to go out.
        let limit = if unit == BROADCAST {
            self.timeout.min(Duration::from_millis(200))
        } else {
            self.timeout
        };
        match connection {
            Connection::Rtu(client) => {
                let pdu = match request {
                    Request::Read { start, count } => read_holding_request(start, count),
                    Request::Write {
                        function: 6,
                        start,
                        values: [value],
                        ..
                    } => write_single_request(start, *value),
                    Request::Write { start, values, .. } => write_multiple_request(start, values),
                };
                let answer_from = match request {
                    Request::Write { answer_from, .. } => answer_from,
                    Request::Read { .. } => unit,
                };
                let answer = match timeout(limit, client.call_answered_by(unit, answer_from, &pdu)).await {
                    Err(_) => {
                        return Err(match client.heard().describe(unit) {
                            Some(heard) => LinkError::Garbled { limit, heard },
                            None => LinkError::Timeout(limit),
                        });
                    }
                    Ok(Err(RtuError::Crc)) => return Err(LinkError::Crc),
                    Ok(Err(error)) => return Err(LinkError::Transport(error.to_string())),
                    Ok(Ok(None)) => return Ok(None),
                    Ok(Ok(Some(answer))) => answer,
                };
                match (answer, request) {
                    (Answer::Exception(code), Request::Read { start, count }) => Err(LinkError::Exception {
                        code: ExceptionCode::new(code),
                        start,
                        count,
                    }),
                    (Answer::Exception(code), Request::Write { start, values, .. }) => Err(LinkError::Exception {
                        code: ExceptionCode::new(code),
                        start,
                        count: values.len() as u16,
                    }),
                    (Answer::Pdu(pdu), Request::Read { count, .. }) => read_holding_words(&pdu, count)
                        .map(Some)
                        .map_err(|error| LinkError::Transport(error.to_string())),
                    (Answer::Pdu(_), Request::Write { .. }) => Ok(None),
                }
            }
            Connection::Tcp(context) => {
                context.set_slave(Slave(unit));
                match request {
                    Request::Read { start, count } => {
                        match timeout(limit, context.read_holding_registers(start, count)).await {
                            Err(_) => Err(LinkError::Timeout(limit)),
                            Ok(Err(error)) => Err(LinkError::Transport(error.to_string())),
                            Ok(Ok(Err(code))) => Err(LinkError::Exception { code, start, count }),
                            Ok(Ok(Ok(words))) if words.len() == usize::from(count) => Ok(Some(words)),
                            Ok(Ok(Ok(words))) => Err(LinkError::Transport(format!(
                                "asked for {count} registers, got {}",
                                words.len()
                            ))),
                        }
                    }
                    Request::Write {
                        function,
                        start,
                        values,
                        ..
                    } => {
                        let call = async {
                            if function == 6 && values.len() == 1 {
                                context.write_single_register(start, values[0]).await
                            } else {
                                context.write_multiple_registers(start, values).await
                            }
                        };
                        match timeout(limit, call).await {
                            // A Modbus TCP broadcast gets no answer either: it went out.
                            Err(_) if unit == BROADCAST => Ok(None),
                            Err(_) => Err(LinkError::Timeout(limit)),
                            Ok(Err(error)) => Err(LinkError::Transport(error.to_string())),
                            Ok(Ok(Err(code))) => Err(LinkError::Exception {
                                code,
                                start,
                                count: values.len() as u16,
                            }),
                            Ok(Ok(Ok(()))) => Ok(None),
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::transport::Parity;

    fn serial(baud: u32) -> Link {
        let transport = Transport::SerialRtu {
            path: "/dev/ttyUSB0".to_owned(),
            baud,
            parity: Parity::Even,
            stop_bits: 1,
        };
        Link::new(transport, Duration::from_secs(1))
    }

    #[test]
    fn inter_frame_silence_is_three_and_a_half_characters_up_to_19200_baud() {
        // A character is 11 bits (start, 8 data, parity, stop), so 3.5
        // characters are 38.5 bits. At 9600 baud: 38.5 / 9600 s
        // = 0.004010416… s = 4.0104 ms (4 010 416 ns, the rest truncated).
        assert_eq!(serial(9_600).inter_frame_silence(), Duration::from_nanos(4_010_416));
        // At 1200 baud: 38.5 / 1200 s = 0.0320833… s = 32.083 ms.
        assert_eq!(serial(1_200).inter_frame_silence(), Duration::from_nanos(32_083_333));
        // 19200 baud is the last rate computed: 38.5 / 19200 s = 2.0052 ms.
        assert_eq!(serial(19_200).inter_frame_silence(), Duration::from_nanos(2_005_208));
    }

    #[test]
    fn inter_frame_silence_is_fixed_above_19200_baud_and_zero_on_tcp() {
        // Modbus over serial line specification 2.5.1.1: above 19200 baud,
        // a fixed 1.750 ms instead of 3.5 character times.
        for baud in [38_400, 57_600, 115_200] {
            assert_eq!(
                serial(baud).inter_frame_silence(),
                Duration::from_micros(1_750),
                "{baud}"
            );
        }
        for transport in [
            Transport::ModbusTcp {
                host: "127.0.0.1".to_owned(),
                port: 502,
            },
            Transport::RtuOverTcp {
                host: "127.0.0.1".to_owned(),
                port: 4001,
            },
        ] {
            let link = Link::new(transport, Duration::from_secs(1));
            assert_eq!(link.inter_frame_silence(), Duration::ZERO);
        }
    }
}

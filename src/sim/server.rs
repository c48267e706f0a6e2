//! Serving a simulated bus: Modbus TCP, RTU frames over TCP (a transparent
//! gateway), and RTU on a pseudo-terminal. Each answer goes out as its
//! device's fault, if it has one, shapes it ([`super::fault`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::bus::SimBus;
use super::fault::{shape_mbap, shape_rtu};
use crate::protocol::modbus::frame::{ModbusFrameError, parse_mbap, parse_rtu};
use crate::shutdown::Shutdown;

/// How a line is paced: answers wait as long as their bytes would take at
/// this baud rate (a pty ignores baud rates), plus the device turnaround.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    pub baud: Option<u32>,
    pub turnaround: Duration,
}

/// Shortest silence that ends a frame on an RTU link. The serial line
/// specification's t3.5 is 4 ms at 9600 baud, but a pty or a TCP gateway
/// delivers bytes with scheduler jitter, so the simulator waits longer
/// before it gives up on a partial frame.
const SILENCE_FLOOR: Duration = Duration::from_millis(50);

impl Pacing {
    /// The silence after which a partial frame is discarded (Modbus over
    /// serial line v1.02, 2.5.1.1: a frame ends after 3.5 character times).
    fn frame_gap(&self) -> Duration {
        let t35 = self
            .baud
            .map(|baud| Duration::from_micros(35 * 1_000_000 / u64::from(baud)))
            .unwrap_or_default();
        t35.max(SILENCE_FLOOR)
    }

    fn delay(&self, bytes: usize) -> Duration {
        let wire = self
            .baud
            .map(|baud| Duration::from_micros(bytes as u64 * 11 * 1_000_000 / u64::from(baud)))
            .unwrap_or_default();
        wire + self.turnaround
    }
}

/// Which framing a TCP listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpFraming {
    ModbusTcp,
    RtuOverTcp,
}

/// Serves `bus` on `address` until `shutdown` fires. Returns the bound
/// address (bind `127.0.0.1:0` for a free port).
pub async fn spawn_tcp(
    bus: SimBus,
    address: &str,
    framing: TcpFraming,
    shutdown: Shutdown,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let bus = bus.clone();
                    let pacing = Pacing { baud: None, turnaround: Duration::from_millis(bus.turnaround_ms()) };
                    let stop = shutdown.clone();
                    tokio::spawn(async move {
                        match framing {
                            TcpFraming::ModbusTcp => serve_mbap(stream, bus, stop).await,
                            TcpFraming::RtuOverTcp => serve_rtu(stream, bus, pacing, stop).await,
                        }
                    });
                }
                () = shutdown.wait() => return,
            }
        }
    });
    Ok((local, task))
}

/// Creates a pseudo-terminal pair and serves RTU on it. Returns the path a
/// master opens (the pty's slave side, e.g. /dev/pts/7).
pub fn spawn_pty(bus: SimBus, baud: u32, shutdown: Shutdown) -> std::io::Result<(PathBuf, JoinHandle<()>)> {
    let (master, slave) = tokio_serial::SerialStream::pair().map_err(|e| std::io::Error::other(e.to_string()))?;
    let path = serialport::SerialPort::name(&slave)
        .map(PathBuf::from)
        .ok_or_else(|| std::io::Error::other("pty has no name"))?;
    let pacing = Pacing {
        baud: Some(baud),
        turnaround: Duration::from_millis(bus.turnaround_ms()),
    };
    let task = tokio::spawn(async move {
        // Keep the slave side open for the pty's lifetime.
        let _slave = slave;
        serve_rtu(master, bus, pacing, shutdown).await;
    });
    Ok((path, task))
}

async fn serve_mbap<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, bus: SimBus, stop: Shutdown) {
    let mut buffer = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        match parse_mbap(&buffer) {
            Ok((transaction, unit, pdu, len)) => {
                buffer.drain(..len);
                let fault = bus.fault(unit);
                if let Some((answer_unit, response)) = bus.handle(unit, &pdu) {
                    let shaped = shape_mbap(fault, transaction, answer_unit, &response);
                    tokio::time::sleep(shaped.delay).await;
                    if stream.write_all(&shaped.bytes).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            Err(ModbusFrameError::Incomplete) => {}
            Err(_) => return, // not Modbus TCP: drop the connection
        }
        tokio::select! {
            read = stream.read(&mut chunk) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            },
            () = stop.wait() => return,
        }
    }
}

/// RTU on a byte stream: frames are found by their length and CRC; garbage
/// is skipped a byte at a time, silently, as a device on a noisy line does.
/// While resynchronising, a head that looks like the start of a long frame
/// does not hide a complete, valid frame behind it; and a partial frame
/// followed by silence is discarded, so a stray byte cannot hold the line. The answer waits for the profile's turnaround
/// (`modbus.turnaround_ms`) and, if paced, for its bytes' time on the wire.
async fn serve_rtu<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, bus: SimBus, pacing: Pacing, stop: Shutdown) {
    let mut buffer = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let mut resyncing = false;
    loop {
        match parse_rtu(&buffer) {
            Ok((unit, pdu, len)) => {
                buffer.drain(..len);
                resyncing = false;
                let fault = bus.fault(unit);
                if let Some((answer_unit, response)) = bus.handle(unit, &pdu) {
                    let shaped = shape_rtu(fault, answer_unit, &response);
                    tokio::time::sleep(pacing.delay(shaped.bytes.len()) + shaped.delay).await;
                    if stream.write_all(&shaped.bytes).await.is_err() || stream.flush().await.is_err() {
                        return;
                    }
                }
                continue;
            }
            Err(ModbusFrameError::Incomplete) => {
                if resyncing {
                    if let Some(skip) = (1..buffer.len()).find(|&at| parse_rtu(&buffer[at..]).is_ok()) {
                        buffer.drain(..skip);
                        continue;
                    }
                }
            }
            Err(_) => {
                buffer.remove(0);
                resyncing = true;
                continue;
            }
        }
        let partial = !buffer.is_empty();
        let silence = async move {
            if partial {
                tokio::time::sleep(pacing.frame_gap()).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            read = stream.read(&mut chunk) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            },
            () = silence => {
                buffer.clear();
                resyncing = false;
            }
            () = stop.wait() => return,
        }
    }
}

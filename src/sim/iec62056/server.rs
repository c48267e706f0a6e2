//! Serving IEC 62056-21 lines: on TCP (each connection its own line, the
//! meters shared) and on a pseudo-terminal. Answers wait a reaction time
//! (IEC 62056-21:2002, 5.5: at least 200 ms for an uppercase manufacturer
//! id; configurable so tests can run faster).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::fault::{BABBLE_GAP, BABBLE_LINE, Tail};
use super::session::{Faults, LineSession, SharedMeter};
use crate::domain::clock::Clock;
use crate::protocol::iec62056::{Decoded, FrameError, decode_from_client, frame::NAK};
use crate::shutdown::Shutdown;

/// The standard's shortest reaction time for an uppercase manufacturer id.
pub(crate) const REACTION_TIME: Duration = Duration::from_millis(200);

/// Every client message a line received, bytes as they came, in order.
pub type Received = Arc<Mutex<Vec<Vec<u8>>>>;

/// What a served line is made of.
#[derive(Clone)]
pub struct ServedLine {
    pub meters: Vec<SharedMeter>,
    pub clock: Clock,
    pub faults: Faults,
    pub reaction: Duration,
    /// Where to record what the line receives (tests compare it with
    /// what a client meant to send).
    pub received: Option<Received>,
}

impl ServedLine {
    pub fn new(meters: Vec<SharedMeter>, clock: Clock) -> ServedLine {
        ServedLine {
            meters,
            clock,
            faults: Faults::default(),
            reaction: REACTION_TIME,
            received: None,
        }
    }
}

/// Serves `line` on `address` until `shutdown` fires. Returns the bound
/// address (bind `127.0.0.1:0` for a free port).
pub async fn spawn_iec_tcp(
    line: ServedLine,
    address: &str,
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
                    tokio::spawn(serve(stream, line.clone(), shutdown.clone()));
                }
                () = shutdown.wait() => return,
            }
        }
    });
    Ok((local, task))
}

/// Creates a pseudo-terminal pair and serves `line` on it. Returns the
/// path a client opens.
pub fn spawn_iec_pty(line: ServedLine, shutdown: Shutdown) -> std::io::Result<(PathBuf, JoinHandle<()>)> {
    let (master, slave) = tokio_serial::SerialStream::pair().map_err(|e| std::io::Error::other(e.to_string()))?;
    let path = serialport::SerialPort::name(&slave)
        .map(PathBuf::from)
        .ok_or_else(|| std::io::Error::other("pty has no name"))?;
    let task = tokio::spawn(async move {
        // Keep the slave side open for the pty's lifetime.
        let _slave = slave;
        serve(master, line, shutdown).await;
    });
    Ok((path, task))
}

/// One line on a byte stream: messages are decoded from the front of the
/// buffer (noise before them skipped); a command with a bad BCC gets NAK,
/// anything else malformed is dropped.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, config: ServedLine, stop: Shutdown) {
    let mut line = LineSession::new(config.meters.clone(), config.clock.clone(), config.faults.clone());
    let mut buffer = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        let answer = match decode_from_client(&buffer, line.expects_option_select()) {
            Ok(Decoded::Complete(message, used)) => {
                if let Some(received) = &config.received {
                    received.lock().expect("record lock").push(buffer[..used].to_vec());
                }
                buffer.drain(..used);
                Some(line.handle(message))
            }
            Ok(Decoded::Incomplete) => None,
            Err(FrameError::BadBcc { .. }) => {
                buffer.clear();
                Some(if line.faults.silent { Vec::new() } else { vec![NAK] })
            }
            Err(_) => {
                buffer.clear();
                None
            }
        };
        if let Some(answer) = answer {
            let (delay, tail) = line.shaped();
            if !answer.is_empty() {
                tokio::time::sleep(config.reaction + delay).await;
                if stream.write_all(&answer).await.is_err() || stream.flush().await.is_err() {
                    return;
                }
            }
            if tail == Tail::Babble && !babble(&mut stream, &mut buffer, &stop).await {
                return;
            }
            continue;
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

/// A meter that never stops talking: [`BABBLE_LINE`] every [`BABBLE_GAP`]
/// until the client sends something (kept in `buffer`, to be answered).
/// False once the line is closed or the server stops.
async fn babble<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, buffer: &mut Vec<u8>, stop: &Shutdown) -> bool {
    let mut chunk = [0u8; 512];
    loop {
        tokio::select! {
            read = stream.read(&mut chunk) => return match read {
                Ok(0) | Err(_) => false,
                Ok(n) => {
                    buffer.extend_from_slice(&chunk[..n]);
                    true
                }
            },
            () = tokio::time::sleep(BABBLE_GAP) => {
                if stream.write_all(BABBLE_LINE).await.is_err() || stream.flush().await.is_err() {
                    return false;
                }
            }
            () = stop.wait() => return false,
        }
    }
}

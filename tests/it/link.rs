//! The bus link against simulated lines: broadcasts go out without an
//! answer, a garbled answer is a CRC error, not a silent resync.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::driver::Outcome;
use ohmnibus::device::driver::modbus_link::{Link, LinkError};
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::transport::Transport;
use ohmnibus::shutdown::{self, Trigger};
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_millis(500);

async fn line(units: &[u8]) -> (std::net::SocketAddr, Trigger) {
    let at = Utc.with_ymd_and_hms(2026, 3, 14, 10, 20, 30).unwrap();
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    let devices = units
        .iter()
        .map(|&unit| {
            SimDevice::new(
                profile.clone(),
                unit,
                Th40cModel::new(u64::from(unit), Tz::UTC, at),
                Clock::manual(at),
            )
        })
        .collect();
    let (stop, shutdown) = shutdown::channel();
    let (address, _) = spawn_tcp(SimBus::new(devices), "127.0.0.1:0", TcpFraming::RtuOverTcp, shutdown)
        .await
        .unwrap();
    (address, stop)
}

fn rtu_over_tcp(address: std::net::SocketAddr) -> Transport {
    Transport::RtuOverTcp {
        host: address.ip().to_string(),
        port: address.port(),
    }
}

#[tokio::test]
async fn a_broadcast_clock_set_returns_at_once_and_reaches_every_device() {
    let (address, _stop) = line(&[1, 2]).await;
    let mut link = Link::new(rtu_over_tcp(address), TIMEOUT);
    // App. E: YY MM DD hh mm ss, here 26-03-14 10:22:00.
    let (result, took) = link
        .write(0, 16, 0x7000, &[0x1A03, 0x0E0A, 0x1600], Duration::from_millis(50))
        .await;
    result.unwrap();
    assert!(took < TIMEOUT / 2, "no answer awaited: {took:?}");
    for unit in [1, 2] {
        let (time, _) = link.read_holding(unit, 0x1043, 3, Duration::ZERO).await;
        assert_eq!(time.unwrap(), vec![10, 22, 0], "unit {unit}");
    }
    // A unicast write is answered: a second clock set the same day is refused (App. E).
    let (refused, _) = link
        .write(1, 16, 0x7000, &[0x1A03, 0x0E0A, 0x1700], Duration::ZERO)
        .await;
    assert!(matches!(refused, Err(LinkError::Exception { .. })), "{refused:?}");
}

/// A gateway that flips a bit in every answer: what a noisy RS485 line does.
async fn noisy_gateway(upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let mut server = TcpStream::connect(upstream).await.unwrap();
            tokio::spawn(async move {
                let mut buffer = [0u8; 512];
                loop {
                    let Ok(n @ 1..) = client.read(&mut buffer).await else {
                        return;
                    };
                    if server.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                    let Ok(n @ 1..) = server.read(&mut buffer).await else {
                        return;
                    };
                    buffer[n / 2] ^= 0x10;
                    if client.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

#[tokio::test]
async fn a_garbled_answer_is_a_crc_error() {
    let (address, _stop) = line(&[1]).await;
    let gateway = noisy_gateway(address).await;
    let mut link = Link::new(rtu_over_tcp(gateway), TIMEOUT);
    let (result, took) = link.read_holding(1, 0x8010, 10, Duration::ZERO).await;
    let error = result.unwrap_err();
    assert!(matches!(error, LinkError::Crc), "{error:?}");
    assert_eq!(error.outcome(), Outcome::CrcError);
    assert!(took < TIMEOUT, "reported at once, not after a timeout: {took:?}");
    // The clean line answers the same request.
    let mut clean = Link::new(rtu_over_tcp(address), TIMEOUT);
    assert_eq!(
        clean.read_holding(1, 0x8010, 10, Duration::ZERO).await.0.unwrap().len(),
        10
    );
}

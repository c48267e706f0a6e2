//! The binary's commands, run as an operator runs them.

use std::process::Stdio;

use crate::support::{TestDb, WAIT, eventually, spawn_app};
use ohmnibus::domain::role::Role;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio_modbus::client::{Reader, rtu, tcp};
use tokio_modbus::{ExceptionCode, Slave};
use tokio_serial::SerialPortBuilderExt;

const BINARY: &str = env!("CARGO_BIN_EXE_ohmnibus");

#[tokio::test]
async fn token_create_prints_the_token_alone_on_its_last_line() {
    let db = TestDb::create().await;
    let (pool, url) = (db.pool.clone(), db.url.clone());
    let output = Command::new(BINARY)
        .args(["token", "create", "--role", "operator", "--name", "billing-export"])
        .env("DATABASE_URL", &url)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.lines().last().unwrap();
    assert_eq!(token.trim(), token);
    assert!(token.starts_with("ohm_") && token.len() == 68, "{token:?}");
    let owner = ohmnibus::store::tokens::fetch_token_owner(&pool, token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((owner.user.as_str(), owner.role), ("billing-export", Role::Operator));

    let refused = Command::new(BINARY)
        .args(["token", "create", "--role", "admin", "--name", "x"])
        .env("DATABASE_URL", &url)
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown role \"admin\""));

    // A name keeps its role: asking for another role under it is refused, and
    // the tokens it already has keep what they may do.
    let refused = Command::new(BINARY)
        .args(["token", "create", "--role", "secadm", "--name", "billing-export"])
        .env("DATABASE_URL", &url)
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("already has role operator"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let owner = ohmnibus::store::tokens::fetch_token_owner(&pool, token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner.role, Role::Operator);
    let issued: Vec<String> =
        sqlx::query_scalar("SELECT target FROM audit_log WHERE action = 'create_token' ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(issued, vec!["user/billing-export".to_owned()]);
}

#[tokio::test]
async fn migrate_reports_an_unreachable_database_clearly() {
    let output = Command::new(BINARY)
        .arg("migrate")
        .env("DATABASE_URL", "postgres://postgres:secret@127.0.0.1:1/none")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("connecting to postgres://postgres:***@127.0.0.1:1/none"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"));
}

/// Spawns `ohmnibus simulate ARGS` and returns its first line of output.
async fn simulate(args: &[&str]) -> (tokio::process::Child, String) {
    let mut child = Command::new(BINARY)
        .arg("simulate")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(crate::support::WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    (child, line)
}

#[tokio::test]
async fn simulate_serves_modbus_tcp_on_the_given_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let (_child, line) = simulate(&["--profile", "th40c", "--modbus-tcp", &address, "--unit", "3"]).await;
    assert!(line.ends_with(&address), "{line}");
    let mut client = tcp::connect_slave(address.parse().unwrap(), Slave(3)).await.unwrap();
    let words = client.read_holding_registers(0x1040, 6).await.unwrap().unwrap();
    assert!((1..=12).contains(&words[1]) && words[3] < 24, "{words:?}");
    assert_eq!(
        client.read_holding_registers(0x2000, 1).await.unwrap(),
        Err(ExceptionCode::IllegalDataAddress)
    );
}

#[tokio::test]
async fn simulate_prints_the_pseudo_terminal_and_a_poller_reads_it() {
    let (_child, path) = simulate(&[
        "--serial-pty",
        "--device",
        "th40c:4",
        "--device",
        "th40c:6",
        "--baud",
        "115200",
    ])
    .await;
    assert!(path.starts_with("/dev/pts/"), "{path}");
    let port = tokio_serial::new(&path, 115_200).open_native_async().unwrap();
    let mut client = rtu::attach_slave(port, Slave(6));
    assert!(client.read_holding_registers(0x8010, 10).await.unwrap().is_ok());

    // The head-end polls the same pseudo-terminal as a serial bus.
    drop(client);
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let transport =
        serde_json::json!({"kind": "serial_rtu", "path": path, "baud": 115200, "parity": "none", "stop_bits": 1});
    let bus = app.create_bus(&token, "pty", transport).await;
    let device = serde_json::json!({"name": "m", "profile": "th40c", "address": 4});
    let device = app.create_device(&token, bus, device).await;
    let online = eventually(WAIT, || async { app.device_state(&token, device).await == "online" }).await;
    assert!(online);
    app.stop().await;
}

#[tokio::test]
async fn simulate_serves_iec62056_meters_on_one_line() {
    let (_child, line) = simulate(&[
        "--device",
        "a1000:123",
        "--device",
        "th40c:456",
        "--iec62056",
        "127.0.0.1:0",
        "--baud",
        "4800",
    ])
    .await;
    assert!(
        line.starts_with("serving a1000 address 123, th40c address 456 on IEC 62056-21 "),
        "{line}"
    );
    let address = line.rsplit(' ').next().unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(b"/?456!\r\n").await.unwrap();
    let mut answer = vec![0u8; 12];
    tokio::time::timeout(crate::support::WAIT, stream.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer, b"/THM4TH40C\r\n");
}

#[tokio::test]
async fn simulate_refuses_bad_arguments_by_name() {
    for (args, expected) in [
        (
            vec!["--profile", "nope", "--modbus-tcp", "127.0.0.1:0"],
            "unknown profile \"nope\"",
        ),
        (
            vec!["--device", "th40c", "--serial-pty"],
            "--device \"th40c\": expected PROFILE:UNIT",
        ),
        (
            vec!["--unit", "0", "--modbus-tcp", "127.0.0.1:0"],
            "--unit 0 is the broadcast address: a device address is 1-255",
        ),
        (
            vec!["--unit", "256", "--modbus-tcp", "127.0.0.1:0"],
            "invalid value '256' for '--unit",
        ),
        (
            vec!["--device", "th40c:0", "--modbus-tcp", "127.0.0.1:0"],
            "--device \"th40c:0\": unit must be 1-255",
        ),
        (vec!["--profile", "th40c"], "choose a transport"),
        (
            vec!["--profile", "a1000", "--protocol", "modbus", "--serial-pty"],
            "--protocol modbus: the a1000 speaks only IEC 62056-21",
        ),
        (
            vec!["--profile", "countis-e33", "--iec62056", "127.0.0.1:0"],
            "profile \"countis-e33\" has no IEC 62056-21 simulator",
        ),
        (
            vec!["--profile", "a1000", "--modbus-tcp", "127.0.0.1:0"],
            "--modbus-tcp and --rtu-tcp serve Modbus",
        ),
        (
            vec![
                "--device",
                "a1000:7",
                "--device",
                "th40c:7",
                "--iec62056",
                "127.0.0.1:0",
            ],
            "address 7 is given twice",
        ),
        (
            vec!["--profile", "a1000", "--iec62056", "127.0.0.1:0", "--baud", "115200"],
            "--baud 115200 is not a mode C rate",
        ),
        (
            vec!["--unit", "2", "--modbus-tcp", "127.0.0.1:0", "--fault", "9:no-answer"],
            "--fault 9:no-answer: no simulated device at unit 9",
        ),
        (
            vec![
                "--unit",
                "2",
                "--modbus-tcp",
                "127.0.0.1:0",
                "--fault",
                "2:exception:07",
            ],
            "fault \"exception:07\" is not one of",
        ),
        (
            vec![
                "--device",
                "a1000:7",
                "--iec62056",
                "127.0.0.1:0",
                "--fault",
                "7:bad-crc",
            ],
            "fault \"bad-crc\" is not one of no-answer, slow:MS, stops-mid-block",
        ),
    ] {
        let output = Command::new(BINARY).arg("simulate").args(&args).output().await.unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn simulate_injects_the_fault_named_on_the_command_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let (_child, _line) = simulate(&[
        "--device",
        "th40c:1",
        "--device",
        "th40c:2",
        "--modbus-tcp",
        &address,
        "--fault",
        "2:exception:06",
    ])
    .await;
    let mut client = tcp::connect_slave(address.parse().unwrap(), Slave(1)).await.unwrap();
    assert_eq!(
        client.read_holding_registers(0x1040, 6).await.unwrap().unwrap().len(),
        6
    );
    let mut busy = tcp::connect_slave(address.parse().unwrap(), Slave(2)).await.unwrap();
    assert_eq!(
        busy.read_holding_registers(0x1040, 6).await.unwrap(),
        Err(ExceptionCode::ServerDeviceBusy)
    );
}

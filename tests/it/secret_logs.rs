//! Secrets never reach the logs: the database password, the key device
//! secrets are sealed under, API tokens (valid or not) and a meter's
//! password. The binary runs as in production, logging everything it
//! can (`RUST_LOG=trace`), through a session that uses each secret; then
//! its whole log, and every answer it gave, is searched for them.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::support::TestDb;

const BINARY: &str = env!("CARGO_BIN_EXE_ohmnibus");
const DB_PASSWORD: &str = "DbPw-8c1f27e4";
const SECRET_KEY: &str = "3c0a8e51f2b7d94610c5a7e3b28f4d6a9e1c7b50d3f2a8e64b9c1d7f0a5e3b28";
const METER_PASSWORD: &str = "31415926";
const WRONG_TOKEN: &str = "ohm_00deadbeef00deadbeef00deadbeef00deadbeef00deadbeef00deadbeef00dead";

/// One HTTP/1.1 exchange with the server, `Connection: close`: status line
/// and body.
async fn http(port: u16, method: &str, path: &str, token: &str, body: Option<&str>) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let body = body.unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

async fn create_token(url: &str, role: &str) -> (String, String) {
    let output = Command::new(BINARY)
        .args(["token", "create", "--role", role, "--name", &format!("logs-{role}")])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "trace")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    (token, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn a_full_session_logs_no_secret() {
    let db = TestDb::create().await;
    // The server trusts local connections: the password is sent and ignored,
    // which is all this test needs of it.
    let url = db.url.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{DB_PASSWORD}@"),
        1,
    );
    assert!(
        url.contains(DB_PASSWORD),
        "the test database URL has an unexpected form: {}",
        db.url
    );
    let mut log = String::new();
    let (engineer, said) = create_token(&url, "engineer").await;
    log.push_str(&said);
    let (secadm, said) = create_token(&url, "secadm").await;
    log.push_str(&said);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(BINARY)
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("OHMNIBUS_BIND", format!("127.0.0.1:{port}"))
        .env("OHMNIBUS_SECRET_KEY", SECRET_KEY)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server did not listen on {port}");

    let mut answers = String::new();
    let bus = r#"{"name": "optical", "transport": {"kind": "iec62056_tcp", "host": "127.0.0.1", "port": 1}}"#;
    answers.push_str(&http(port, "POST", "/api/v1/buses", &engineer, Some(bus)).await);
    let device = r#"{"name": "a1000", "bus_id": 1, "profile": "a1000", "iec_address": "12345678"}"#;
    answers.push_str(&http(port, "POST", "/api/v1/devices", &engineer, Some(device)).await);
    let secret = format!(r#"{{"value": "{METER_PASSWORD}"}}"#);
    let set = http(
        port,
        "PUT",
        "/api/v1/devices/1/secrets/iec_password",
        &engineer,
        Some(&secret),
    )
    .await;
    assert!(set.starts_with("HTTP/1.1 204"), "{set}");
    answers.push_str(&set);
    answers.push_str(&http(port, "GET", "/api/v1/devices/1/secrets", &engineer, None).await);
    answers.push_str(&http(port, "GET", "/api/v1/devices/1", &engineer, None).await);
    answers.push_str(&http(port, "GET", "/api/v1/tokens", &secadm, None).await);
    answers.push_str(&http(port, "GET", "/api/v1/audit", &secadm, None).await);
    let refused = http(port, "GET", "/api/v1/devices", WRONG_TOKEN, None).await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    answers.push_str(&refused);
    // A refused secret value is refused without being repeated.
    let bad = r#"{"value": "MeterPw with spaces and far too long for any meter at all 0123456789"}"#;
    answers.push_str(
        &http(
            port,
            "PUT",
            "/api/v1/devices/1/secrets/iec_password",
            &engineer,
            Some(bad),
        )
        .await,
    );

    // Stop it as systemd does, and read everything it said.
    let pid = server.id().unwrap();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(20), server.wait()).await;
    assert!(stopped.is_ok(), "the server did not stop within 20 s of SIGTERM");
    let mut said = String::new();
    server.stderr.take().unwrap().read_to_string(&mut said).await.unwrap();
    server.stdout.take().unwrap().read_to_string(&mut said).await.unwrap();
    assert!(
        said.contains("TRACE") || said.contains("DEBUG"),
        "nothing was logged at trace: {said}"
    );
    log.push_str(&said);

    for (what, secret) in [
        ("the database password", DB_PASSWORD),
        ("the secret key", SECRET_KEY),
        ("the meter password", METER_PASSWORD),
        ("an engineer token", engineer.as_str()),
        ("a secadm token", secadm.as_str()),
        ("a wrong token", WRONG_TOKEN),
        ("a refused secret", "MeterPw with spaces"),
    ] {
        assert!(!log.contains(secret), "{what} is in the log");
        assert!(!answers.contains(secret), "{what} is in an answer");
        // Nor its most of it: a token cut short to fit a line is still a leak.
        let half = &secret[..secret.len() / 2 + 4];
        assert!(!log.contains(half), "half of {what} is in the log");
    }
}

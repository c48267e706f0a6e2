//! Commands in programming mode against a scripted meter: every frame the
//! head-end sends is laid out by hand here, its block check worked out in
//! the comment (`docs/PROTOCOLS.md`, "Messages and the block check").

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;

use super::iec_program::run_program;
use super::iec_program_plan::{plan, program_frames};
use super::program::ProgramError;
use super::target::Target;
use crate::device::profile::Profile;
use crate::device::registry::ProfileSet;
use crate::domain::transport::Transport;
use crate::protocol::iec62056::frame::{ACK, CR, ETX, LF, NAK, SOH, STX};
use crate::protocol::iec62056::session::Session;
use crate::protocol::iec62056::session_config::SessionConfig;
use crate::protocol::iec62056::test_meter::{DuplexMeter, block, line};

const SIGN_ON: &[u8] = b"/?12345678!\r\n";
/// The simulator's A1000 identification: mode C, 9600 baud (`5`).
const IDENTIFICATION: &[u8] = b"/BSE5A1000\r\n";
const PROGRAMMING_AT_9600: [u8; 6] = [ACK, b'0', b'5', b'1', CR, LF];
/// `SOH B0 ETX` → 0x71.
const BREAK: [u8; 5] = [SOH, b'B', b'0', ETX, 0x71];

fn frame(head: &[u8], data: &[u8], bcc: u8) -> Vec<u8> {
    [head, data, &[ETX, bcc]].concat()
}

/// `SOH P1 STX (00000000) ETX`: 'P'^'1' = 0x61, ^STX = 0x63, '(' -> 0x4B,
/// eight '0' cancel, ')' -> 0x62, ^ETX = 0x61.
fn p1() -> Vec<u8> {
    frame(&[SOH, b'P', b'1', STX], b"(00000000)", 0x61)
}

/// `SOH R1 STX 0.9.2() ETX`: 'R'^'1' = 0x63, ^STX = 0x61; "0.9.2" is
/// 0x30^0x2E^0x39^0x2E^0x32 = 0x3B -> 0x5A; '('^')' = 0x01 -> 0x5B; ^ETX = 0x58.
fn read_date() -> Vec<u8> {
    frame(&[SOH, b'R', b'1', STX], b"0.9.2()", 0x58)
}

/// As [`read_date`] with '1' (0x31) for '2' (0x32): 0x58 ^ 0x03 = 0x5B.
fn read_time() -> Vec<u8> {
    frame(&[SOH, b'R', b'1', STX], b"0.9.1()", 0x5B)
}

/// `SOH W1 STX 0.9.2(260314) ETX`: 'W'^'1' = 0x66, ^STX = 0x64; "0.9.2"
/// 0x3B -> 0x5F; '(' -> 0x77; "260314" is 0x32^0x36^0x30^0x33^0x31^0x34 =
/// 0x02 -> 0x75; ')' -> 0x5C; ^ETX = 0x5F.
fn write_date() -> Vec<u8> {
    frame(&[SOH, b'W', b'1', STX], b"0.9.2(260314)", 0x5F)
}

/// `SOH W1 STX 0.9.1(102030) ETX`: 0x64; "0.9.1" 0x38 -> 0x5C; '(' ->
/// 0x74; "102030" XORs to 0x00; ')' -> 0x5D; ^ETX = 0x5E.
fn write_time() -> Vec<u8> {
    frame(&[SOH, b'W', b'1', STX], b"0.9.1(102030)", 0x5E)
}

fn now() -> DateTime<Utc> {
    "2026-03-14T10:20:30Z".parse().unwrap()
}

fn local() -> NaiveDateTime {
    now().naive_utc()
}

fn a1000() -> Profile {
    ProfileSet::builtin().get("a1000").unwrap().as_ref().clone()
}

async fn log_in(meter: &mut DuplexMeter, password_answer: &[u8]) {
    meter.expect(SIGN_ON).await;
    meter.send(IDENTIFICATION).await;
    meter.expect(&PROGRAMMING_AT_9600).await;
    meter
        .send(&frame(&[SOH, b'P', b'0', STX], b"(12345678)", p0_bcc()))
        .await;
    meter.expect(&p1()).await;
    meter.send(password_answer).await;
}

/// `SOH P0 STX (12345678) ETX`: 'P'^'0' = 0x60, ^STX = 0x62, '('^')' =
/// 0x01 -> 0x63; "12345678" is 0x31^…^0x38 = 0x08 -> 0x6B; ^ETX = 0x68.
fn p0_bcc() -> u8 {
    0x68
}

/// The meter's reads before: date 2026-01-01, time 08:00:00.
async fn reads_before(meter: &mut DuplexMeter) {
    meter.expect(&read_date()).await;
    meter.send(&block("0.9.2(260101)", true)).await;
    meter.expect(&read_time()).await;
    meter.send(&block("0.9.1(080000)", true)).await;
}

async fn run<F>(script: impl FnOnce(DuplexMeter) -> F) -> Result<super::ProgramDone, ProgramError>
where
    F: std::future::Future<Output = Vec<u8>> + Send + 'static,
{
    let (client, meter, _log) = line(300);
    let script = tokio::spawn(script(meter));
    let profile = a1000();
    let plan = plan(&profile, "set_clock", local()).unwrap();
    let mut session = Session::new(client, SessionConfig::default());
    let result = run_program(&mut session, "12345678", "00000000", &plan, local()).await;
    assert!(!session.in_programming());
    drop(session);
    assert_eq!(script.await.unwrap(), b"", "nothing after the break");
    result
}

#[tokio::test(start_paused = true)]
async fn set_clock_writes_date_and_time_and_reads_them_back() {
    let done = run(|mut meter| async move {
        log_in(&mut meter, &[ACK]).await;
        reads_before(&mut meter).await;
        meter.expect(&write_date()).await;
        meter.send(&[ACK]).await;
        meter.expect(&write_time()).await;
        meter.send(&[ACK]).await;
        meter.expect(&read_date()).await;
        meter.send(&block("0.9.2(260314)", true)).await;
        meter.expect(&read_time()).await;
        // A second later: within the tolerance.
        meter.send(&block("0.9.1(102031)", true)).await;
        meter.expect(&BREAK).await;
        meter.rest().await
    })
    .await
    .unwrap();
    assert!(done.verified);
    assert_eq!(done.kind, "set_clock");
    let seen: Vec<_> = done
        .writes
        .iter()
        .map(|w| {
            (
                w.address.as_str(),
                w.before.as_deref(),
                w.written.as_str(),
                w.after.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("0.9.2", Some("260101"), "260314", Some("260314")),
            ("0.9.1", Some("080000"), "102030", Some("102031")),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_first_write_refused_outside_prg_is_not_in_field_programming() {
    let error = run(|mut meter| async move {
        log_in(&mut meter, &[ACK]).await;
        reads_before(&mut meter).await;
        meter.expect(&write_date()).await;
        meter.send(&block("(ERROR)", true)).await;
        meter.expect(&BREAK).await;
        meter.rest().await
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&error, ProgramError::NotInFieldProgramming { address, answer } if address == "0.9.2" && answer == "ERROR"),
        "{error}"
    );
    assert!(!error.is_link_failure());
    assert_eq!(error.code(), "not_in_field_programming");
}

#[tokio::test(start_paused = true)]
async fn a_later_refusal_names_the_address_and_keeps_what_was_written() {
    let error = run(|mut meter| async move {
        log_in(&mut meter, &[ACK]).await;
        reads_before(&mut meter).await;
        meter.expect(&write_date()).await;
        meter.send(&[ACK]).await;
        meter.expect(&write_time()).await;
        meter.send(&block("(#0003)", true)).await;
        meter.expect(&BREAK).await;
        meter.rest().await
    })
    .await
    .unwrap_err();
    let ProgramError::WriteRefused { address, answer, done } = &error else {
        panic!("{error}")
    };
    assert_eq!((address.as_str(), answer.as_str()), ("0.9.1", "#0003"));
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].written, "260314");
}

#[tokio::test(start_paused = true)]
async fn a_refused_password_sends_nothing_more_than_the_break() {
    let error = run(|mut meter| async move {
        log_in(&mut meter, &[NAK]).await;
        meter.expect(&BREAK).await;
        meter.rest().await
    })
    .await
    .unwrap_err();
    assert!(matches!(error, ProgramError::PasswordRefused), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_read_back_that_does_not_show_the_write_is_a_mismatch() {
    let error = run(|mut meter| async move {
        log_in(&mut meter, &[ACK]).await;
        reads_before(&mut meter).await;
        meter.expect(&write_date()).await;
        meter.send(&[ACK]).await;
        meter.expect(&write_time()).await;
        meter.send(&[ACK]).await;
        meter.expect(&read_date()).await;
        meter.send(&block("0.9.2(260314)", true)).await;
        meter.expect(&read_time()).await;
        // The clock did not move: still the old time.
        meter.send(&block("0.9.1(080002)", true)).await;
        meter.expect(&BREAK).await;
        meter.rest().await
    })
    .await
    .unwrap_err();
    let ProgramError::NotVerified(done) = &error else {
        panic!("{error}")
    };
    assert!(!done.verified);
    assert_eq!(done.writes[1].before.as_deref(), Some("080000"));
    assert_eq!(done.writes[1].after.as_deref(), Some("080002"));
}

#[tokio::test(start_paused = true)]
async fn a_silent_meter_is_a_link_failure() {
    let error = run(|mut meter| async move {
        log_in(&mut meter, &[ACK]).await;
        meter.expect(&read_date()).await;
        meter.expect(&BREAK).await;
        meter.rest().await
    })
    .await
    .unwrap_err();
    assert!(error.is_link_failure(), "{error}");
    assert!(matches!(&error, ProgramError::Link { done, .. } if done.is_empty()));
}

#[test]
fn the_dry_run_lists_the_frames_with_the_password_masked() {
    let profile = a1000();
    let zone: Tz = "UTC".parse().unwrap();
    let target = Target {
        name: "A1000",
        address: 0,
        iec_address: "12345678",
        profile: &profile,
        zone,
        password: None,
    };
    let transport = Transport::Iec62056Tcp {
        host: "127.0.0.1".into(),
        port: 4059,
    };
    let frames = program_frames(target, &transport, "set_clock", now()).unwrap();
    // `(********)`: eight '*' cancel as the zeros do: BCC 0x61 again.
    let masked = frame(&[SOH, b'P', b'1', STX], b"(********)", 0x61);
    let bytes: Vec<Vec<u8>> = frames.iter().map(|f| f.bytes.clone()).collect();
    assert_eq!(
        bytes,
        [
            SIGN_ON.to_vec(),
            PROGRAMMING_AT_9600.to_vec(),
            masked,
            read_date(),
            read_time(),
            write_date(),
            write_time(),
            read_date(),
            read_time(),
            BREAK.to_vec(),
        ]
    );
    assert_eq!(frames[2].text(), "<SOH>P1<STX>(********)<ETX><BCC 0x61>");
    assert_eq!(frames[5].step, "write 0.9.2");
    assert_eq!(frames[0].text(), "/?12345678!<CR><LF>");
    // In Rome the meter's clock is an hour ahead of UTC in March.
    let rome = Target {
        zone: "Europe/Rome".parse().unwrap(),
        ..target
    };
    let frames = program_frames(rome, &transport, "set_clock", now()).unwrap();
    assert_eq!(frames[6].text(), "<SOH>W1<STX>0.9.1(112030)<ETX><BCC 0x5F>");
    let error = program_frames(target, &transport, "billing_reset", now()).unwrap_err();
    assert!(matches!(error, ProgramError::Unsupported(_)), "{error}");
}

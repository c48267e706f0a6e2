//! The IEC 62056-21 simulators against a client we did not write: the PyPI
//! package `iec62056-21` 0.0.2 (`Iec6205621Client.with_tcp_transport(...)`
//! then `standard_readout()`), run as a process through
//! `tests/python/iec_readout.py`, which prints what the package parsed.
//!
//! Each data set the package parsed must equal, address, value and unit,
//! what our own codec parses from a readout of the same simulator by our
//! `Session::readout`; and key values must equal the simulated meter's
//! `register_at`. The clocks are manual, so both readouts see one instant.
//!
//! Where the package and the standard part (facts:
//! `docs/PROTOCOLS.md`), the test compares what both support:
//! - A data set with several value groups (`1-1:1.6.0(v*kW)(time)`, value
//!   and time stamp) comes back from the package as one set per group, the
//!   later groups with no address; our sets are flattened the same way.
//! - The package takes the identification as everything after the sixth
//!   character, as if the optional `\W` field were always present; its
//!   text is compared with what that rule gives from our line.
//!
//! The interpreter comes from `OHMNIBUS_IEC_PYTHON` (set by `scripts/test`)
//! or from `scripts/lib/iec62056_python.sh`, which installs the package.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ohmnibus::domain::clock::Clock;
use ohmnibus::protocol::iec62056::{Readout, Session, SessionConfig};
use ohmnibus::shutdown;
use ohmnibus::sim::iec62056::{IecKind, IecMeter, IecMeterConfig, ServedLine, SharedMeter, spawn_iec_tcp};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::process::Command;

/// Wall-clock bound on one run of the driver; only a hung run waits it out.
/// The package sleeps 250 ms after each of its two messages.
const RUN_LIMIT: Duration = Duration::from_secs(60);

const AT: &str = "2026-03-14T10:20:30Z";

fn at() -> DateTime<Utc> {
    AT.parse().unwrap()
}

/// The interpreter of the virtualenv holding `iec62056-21`.
fn python() -> String {
    if let Ok(path) = std::env::var("OHMNIBUS_IEC_PYTHON") {
        return path;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/iec62056_python.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "cannot install the iec62056-21 package with {}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A data set as the package reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Flat {
    address: Option<String>,
    value: String,
    unit: Option<String>,
}

/// The package's readout: identification and data sets.
async fn package_readout(port: u16, address: &str) -> (Value, Vec<Flat>) {
    let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/iec_readout.py");
    let python = python();
    let run = Command::new(&python)
        .arg(&driver)
        .args(["127.0.0.1", &port.to_string(), address])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(RUN_LIMIT, run)
        .await
        .expect("the driver finishes")
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{} failed: {stderr}", driver.display());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("driver output: {e}; {stderr}"));
    let sets = json["data_sets"]
        .as_array()
        .expect("data_sets")
        .iter()
        .map(|s| Flat {
            address: s["address"].as_str().map(str::to_owned),
            value: s["value"].as_str().expect("a value").to_owned(),
            unit: s["unit"].as_str().map(str::to_owned),
        })
        .collect();
    (json, sets)
}

/// Our readout of the same meter, through our session and codec.
async fn our_readout(address: std::net::SocketAddr, meter: &str) -> Readout {
    let stream = TcpStream::connect(address).await.unwrap();
    let mut session = Session::new(stream, SessionConfig::default());
    session.readout(meter).await.expect("our readout")
}

/// Our data sets flattened the package's way: one entry per value group,
/// the groups after the first without an address.
fn flatten(readout: &Readout) -> Vec<Flat> {
    let mut flat = Vec::new();
    for set in &readout.data_sets {
        for (i, value) in set.values.iter().enumerate() {
            let address = (i == 0 && !set.address.is_empty()).then(|| set.address.clone());
            flat.push(Flat {
                address,
                value: value.value.clone(),
                unit: value.unit.clone(),
            });
        }
    }
    flat
}

async fn check(kind: IecKind, seed: u64, address: &str, keys: &[&str]) {
    let mut config = IecMeterConfig::new(kind, seed);
    config.address = address.into();
    let meter: SharedMeter = Arc::new(Mutex::new(IecMeter::new(config, at())));
    // The standard's 200 ms reaction time: the package waits 250 ms (its
    // 200 ms times 1.25) after each message it sends and reads with 30 s
    // socket timeouts, so the default line suits it.
    let line = ServedLine::new(vec![Arc::clone(&meter)], Clock::manual(at()));
    let (_stop, shutdown) = shutdown::channel();
    let (socket, _) = spawn_iec_tcp(line, "127.0.0.1:0", shutdown).await.unwrap();

    let (json, theirs) = package_readout(socket.port(), address).await;
    let ours = our_readout(socket, address).await;
    assert!(
        theirs.len() > 20,
        "the package parsed only {} data sets from {kind:?}: {json}",
        theirs.len()
    );

    // Identification: the package takes the manufacturer and Z from the
    // line `/XXXZ[\W]identification` CR LF, and as identification the text
    // from its seventh character to CR LF. `\W` is optional
    // (`docs/PROTOCOLS.md`, "Sign-on and identification") and our meters send none, so the
    // package loses the identification's first character (`A1000` comes
    // back as `1000`); what it gets is computed from our line by its rule.
    let ident = &ours.identification;
    let line = ident.encode().unwrap();
    let by_package_rule = String::from_utf8(line[6..line.len() - 2].to_vec()).unwrap();
    assert_eq!(json["manufacturer"], ident.manufacturer.as_str(), "{json}");
    assert_eq!(json["baud_char"], (ident.baud_char as char).to_string(), "{json}");
    assert_eq!(json["identification"], by_package_rule.as_str(), "ours: {ident:?}");

    // Every data set, in order.
    let flat = flatten(&ours);
    for (i, (t, o)) in theirs.iter().zip(&flat).enumerate() {
        assert_eq!(t, o, "data set {i} of {kind:?}");
    }
    assert_eq!(theirs.len(), flat.len(), "data set count of {kind:?}");

    // Key values against the model.
    let mut meter = meter.lock().unwrap();
    for key in keys {
        let set = theirs
            .iter()
            .find(|s| s.address.as_deref() == Some(*key))
            .unwrap_or_else(|| panic!("the package did not find {key} in the {kind:?} readout"));
        let expected = meter
            .register_at(key, at())
            .unwrap_or_else(|| panic!("the model has {key}"));
        let got: f64 = set
            .value
            .parse()
            .unwrap_or_else(|e| panic!("{key} = {:?}: {e}", set.value));
        assert!((got - expected).abs() < 1e-9, "{key}: package {got}, model {expected}");
        if key.contains(":1.6.") {
            assert_eq!(set.unit.as_deref(), Some("kW"), "{key}");
        }
    }
}

#[tokio::test]
async fn the_package_reads_an_a1000_as_our_codec_does() {
    check(
        IecKind::A1000,
        7,
        "12345678",
        &["1-1:1.8.0", "1-1:1.8.1", "1-1:1.8.0*101", "1-1:1.6.0"],
    )
    .await;
}

#[tokio::test]
async fn the_package_reads_a_th40c_as_our_codec_does() {
    check(
        IecKind::Th40c,
        11,
        "00000042",
        &["1-1:1.8.0", "1-1:1.8.1", "1-1:1.8.0*1", "1-1:1.6.0"],
    )
    .await;
}

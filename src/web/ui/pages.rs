//! The askama page structs; each handler fills one.

use askama::Template;

/// A value cell: formatted number and unit, or a dash when not read.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub text: String,
    pub title: String,
    /// A second, smaller line (a maximum demand's time).
    pub note: String,
}

impl Cell {
    pub(crate) fn empty() -> Cell {
        Cell {
            text: "–".to_owned(),
            title: String::new(),
            note: String::new(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct FleetRow {
    pub id: i64,
    pub name: String,
    pub bus: String,
    pub bus_id: i64,
    pub profile: String,
    pub address: String,
    pub state: &'static str,
    pub last_read: String,
    pub energy: Cell,
    pub power: Cell,
    pub voltage: Cell,
}

#[derive(Template)]
#[template(path = "fleet.html")]
pub(crate) struct FleetPage {
    pub user: String,
    pub rows: Vec<FleetRow>,
    pub online: usize,
    pub unreachable: usize,
    pub disabled: usize,
    pub unknown: usize,
}

/// A table: a caption, column heads, and rows of a label and cells.
#[derive(Debug)]
pub(crate) struct Table {
    pub caption: String,
    pub columns: Vec<String>,
    pub rows: Vec<(String, Vec<Cell>)>,
}

#[derive(Debug)]
pub(crate) struct EventLine {
    pub code: String,
    pub severity: String,
    pub started_at: String,
    pub cleared_at: String,
    pub message: String,
}

/// One month of a device's data-quality summary, as the page shows it:
/// counts with their share of the expected intervals.
#[derive(Debug)]
pub(crate) struct QualityLine {
    pub month: String,
    pub expected: u64,
    pub actual: String,
    pub estimated: String,
    pub missing: String,
    /// Not reached yet by the running backfill of the meter's load profile.
    pub pending: u64,
}

#[derive(Template)]
#[template(path = "device.html")]
pub(crate) struct DevicePage {
    pub user: String,
    pub id: i64,
    pub name: String,
    pub bus: String,
    pub bus_id: i64,
    pub profile: String,
    pub address: String,
    /// "Address" (Modbus unit) or "IEC device address".
    pub address_label: &'static str,
    /// The bus's transport kind (`serial_rtu`, `iec62056_serial`, `optical`…).
    pub bus_kind: &'static str,
    /// The load profile in a line (read from the meter or derived from its
    /// registers), empty when the device has none.
    pub load_profile: String,
    /// Whether the last 24 hours hold intervals, for a link to their CSV.
    pub load_profile_csv: bool,
    pub state: &'static str,
    pub last_success: String,
    pub failures: i32,
    pub last_error: String,
    pub meter_clock: String,
    /// The profile's legal-metrology notice (MID meters), empty otherwise.
    pub legal_notice: String,
    /// When the meter refused the programming-mode password, empty when it
    /// did not (or the password was set again since).
    pub password_refused: String,
    /// Whose programming password the device is read with, for an IEC
    /// device (never the password); empty otherwise.
    pub password: String,
    /// What the meter counts its energies in and where they roll over, for
    /// a profile with an energy display; empty otherwise.
    pub energy_display: String,
    /// The meter at the address: its identity and register series, in a
    /// line; empty until a read shows one.
    pub meter: String,
    /// For a device in quarantine: since when another meter answers, the
    /// identity it shows, and how many readings are held; empty otherwise.
    pub quarantined_since: String,
    pub seen_identity: String,
    pub expected_identity: String,
    pub held_readings: i64,
    /// The latest on-demand read, as a sentence; empty when there was none.
    pub last_read_now: String,
    /// Whether that read or the latest command is still queued or running
    /// (the page then refreshes fast).
    pub read_now_pending: bool,
    /// Whether the caller may send commands (engineer).
    pub can_command: bool,
    /// The forms of the commands the device's profile can take.
    pub commands: Vec<super::command_form::CommandFormView>,
    /// The latest command's id, for its page (0 when there was none).
    pub last_command_id: i64,
    /// The latest command, as a sentence; empty when there was none.
    pub last_command: String,
    pub sections: Vec<Table>,
    /// Every latest value by OBIS code, whatever the device type.
    pub all_values: Table,
    /// The newest billing periods, newest first.
    pub billing: Vec<BillingLine>,
    /// Data quality of the last few months, oldest first; empty before the
    /// first interval.
    pub data_quality: Vec<QualityLine>,
    /// Where the first backfill of the meter's load profile stands; empty
    /// when it never had one.
    pub backfill: String,
    /// Each logbook the meter is read for, in a line (`logbook_line`).
    pub logbooks: Vec<(String, String)>,
    pub events: Vec<EventLine>,
}

/// A billing period on the device page: its totals of active energy.
pub(crate) struct BillingLine {
    pub reset_at: String,
    pub source: &'static str,
    pub flags: String,
    pub import: String,
    pub export: String,
}

#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    pub error: String,
    /// Page to return to after signing in.
    pub next: String,
}

#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub status: u16,
    pub message: String,
}

/// Traffic of the bus or of one device on it.
#[derive(Debug)]
pub(crate) struct TrafficRow {
    pub label: String,
    /// Device id to link to, for device rows.
    pub link: Option<i64>,
    pub requests: u64,
    pub timeouts: u64,
    pub crc_errors: u64,
    pub exceptions: u64,
    pub transport_errors: u64,
    pub mean: String,
    pub p95: String,
}

#[derive(Template)]
#[template(path = "bus.html")]
pub(crate) struct BusPage {
    pub user: String,
    pub id: i64,
    pub name: String,
    pub transport: String,
    pub time_zone: String,
    pub created: String,
    pub utilisation: String,
    pub rows: Vec<TrafficRow>,
    pub scan: Option<ScanView>,
}

/// The latest scan of a bus, as the bus page shows it.
#[derive(Debug)]
pub(crate) struct ScanView {
    pub state: String,
    pub probed: i32,
    pub total: i32,
    pub first: i16,
    pub last: i16,
    pub error: String,
    pub found: Vec<FoundView>,
}

#[derive(Debug)]
pub(crate) struct FoundView {
    pub address: u8,
    /// Profiles that fit; the first is offered.
    pub profiles: Vec<String>,
    /// Name of the device already configured at this address, if any.
    pub configured: String,
}

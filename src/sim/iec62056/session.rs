//! One line's IEC 62056-21 session (mode C), pure: a decoded client
//! message in, the bytes the line answers out. Several meters may share
//! the line; only the one a sign-on names answers, and `/?!` (no address)
//! is answered only when the line has a single meter.
//!
//! Sequence (IEC 62056-21:2002, 6.3; facts in `docs/PROTOCOLS.md`):
//! sign-on → identification; option select Y = 0 → the readout; Y = 1 →
//! `P0` password request, `P1` → ACK/NAK, then `R1`/`R5` reads (single
//! addresses, `P.01(from;to)` load profiles or the `P.98` logbook), `W1`/`W5` writes (the
//! clock, configured resets; only in field programming, else `(ERROR)`:
//! [`super::programming`]), `B0` ends the session. NAK repeats the last
//! data message.

use std::sync::{Arc, Mutex};

use super::fault::{Tail, shape};
use super::kind::{BILLING_SETS, IecKind};
use super::model::IecMeter;
use super::programming::WriteAnswer;
use crate::domain::clock::Clock;
use crate::protocol::iec62056::{
    ClientMessage, Command, CommandKind, DataBlock, DataSet, Identification, MeterMessage, OptionMode, ProfileRequest,
    format_data_set, format_data_sets, format_load_profile, format_logbook, frame::ACK, frame::NAK,
};

/// The profile number of the event logbook (`P.98`, EMH style; `docs/PROTOCOLS.md`).
const LOGBOOK_PROFILE: u8 = 98;

/// Faults a test can inject into a line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// The line never answers.
    pub silent: bool,
    /// Each data message goes out first with a wrong BCC; its repetition
    /// after NAK is right.
    pub bad_bcc_once: bool,
    /// The readout goes out in partial blocks of this many lines (EOT),
    /// the next after ACK, the same again after NAK.
    pub partial_lines: Option<usize>,
    /// Bytes sent before every answer (line noise).
    pub garbage: Vec<u8>,
}

/// A meter on a line, shared with tests that read its model.
pub type SharedMeter = Arc<Mutex<IecMeter>>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Idle,
    /// Identification sent by meter `usize`; waiting for the option select.
    Identified(usize),
    /// Readout blocks still to send after the one last sent.
    Readout(Vec<DataBlock>),
    Programming {
        meter: usize,
        authorised: bool,
    },
}

pub struct LineSession {
    meters: Vec<SharedMeter>,
    clock: Clock,
    pub faults: Faults,
    state: State,
    /// The last data message as it should have been (what NAK repeats).
    last: Option<Vec<u8>>,
    /// The meter last signed on to: its fault shapes the answers.
    current: Option<usize>,
    /// The delay and the tail of the last answer ([`LineSession::handle`]).
    shaped: (std::time::Duration, Tail),
}

impl LineSession {
    pub fn new(meters: Vec<SharedMeter>, clock: Clock, faults: Faults) -> LineSession {
        LineSession {
            meters,
            clock,
            faults,
            state: State::Idle,
            last: None,
            current: None,
            shaped: (std::time::Duration::ZERO, Tail::Done),
        }
    }

    /// The extra delay before the last answer, and what the transport
    /// sends after it.
    pub fn shaped(&self) -> (std::time::Duration, Tail) {
        self.shaped
    }

    /// Whether the next client message may be an option select (the
    /// decoder needs to know: it begins with ACK).
    pub fn expects_option_select(&self) -> bool {
        matches!(self.state, State::Identified(_))
    }

    /// The answer to one client message: bytes to send, empty for silence,
    /// as the fault of the meter signed on to shapes them (its extra delay
    /// and what follows it: [`LineSession::shaped`]).
    pub fn handle(&mut self, message: ClientMessage) -> Vec<u8> {
        self.shaped = (std::time::Duration::ZERO, Tail::Done);
        if self.faults.silent {
            return Vec::new();
        }
        if matches!(message, ClientMessage::SignOn(_)) {
            self.current = None;
        }
        let answer = self.answer(message);
        let fault = self
            .current
            .and_then(|meter| self.meters[meter].lock().expect("meter lock").fault);
        let (answer, delay, tail) = shape(fault, answer);
        self.shaped = (delay, tail);
        if answer.is_empty() {
            return answer;
        }
        let mut bytes = self.faults.garbage.clone();
        bytes.extend(answer);
        bytes
    }

    fn answer(&mut self, message: ClientMessage) -> Vec<u8> {
        match (message, std::mem::replace(&mut self.state, State::Idle)) {
            (ClientMessage::SignOn(sign_on), _) => self.sign_on(&sign_on.address),
            (ClientMessage::Nak, state) => {
                self.state = state;
                self.last.clone().unwrap_or_default()
            }
            (ClientMessage::OptionSelect(select), State::Identified(meter)) => match select.mode {
                OptionMode::Readout => self.readout(meter),
                OptionMode::Programming => {
                    self.state = State::Programming {
                        meter,
                        authorised: false,
                    };
                    let address = self.meters[meter].lock().expect("meter lock").config.address.clone();
                    encode(MeterMessage::Command(Command::new(
                        CommandKind::P0,
                        format!("({address})"),
                    )))
                }
                _ => Vec::new(),
            },
            (ClientMessage::Ack, State::Readout(mut blocks)) if !blocks.is_empty() => {
                let block = blocks.remove(0);
                if !block.last {
                    self.state = State::Readout(blocks);
                }
                self.data(block)
            }
            (ClientMessage::Command(command), State::Programming { meter, authorised }) => {
                self.state = State::Programming { meter, authorised };
                self.command(meter, authorised, command)
            }
            _ => Vec::new(),
        }
    }

    fn sign_on(&mut self, address: &str) -> Vec<u8> {
        let found = self.meters.iter().position(|meter| {
            let meter = meter.lock().expect("meter lock");
            if address.is_empty() {
                self.meters.len() == 1
            } else {
                meter.config.address == address
            }
        });
        let Some(index) = found else { return Vec::new() };
        self.state = State::Identified(index);
        self.current = Some(index);
        let meter = self.meters[index].lock().expect("meter lock");
        let (manufacturer, identification) = meter.kind().identification();
        encode(MeterMessage::Identification(Identification {
            manufacturer: manufacturer.into(),
            baud_char: meter.config.baud_char,
            capability: None,
            identification: identification.into(),
        }))
    }

    fn readout(&mut self, meter: usize) -> Vec<u8> {
        let now = self.clock.now();
        let sets = {
            let mut meter = self.meters[meter].lock().expect("meter lock");
            readout_sets(&mut meter, now)
        };
        let text = format_data_sets(&sets).expect("simulated values are valid data sets");
        let Some(lines) = self.faults.partial_lines.filter(|lines| *lines > 0) else {
            return self.data(DataBlock { text, last: true });
        };
        let all: Vec<&str> = text.split_inclusive("\r\n").collect();
        let mut blocks: Vec<DataBlock> = all
            .chunks(lines)
            .map(|chunk| DataBlock {
                text: chunk.concat(),
                last: false,
            })
            .collect();
        if let Some(block) = blocks.last_mut() {
            block.last = true;
        }
        let first = blocks.remove(0);
        if !first.last {
            self.state = State::Readout(blocks);
        }
        self.data(first)
    }

    /// Sends a data message: remembered for NAK, and corrupted the first
    /// time when the fault asks for it.
    fn data(&mut self, block: DataBlock) -> Vec<u8> {
        let right = encode(MeterMessage::Data(block));
        self.last = Some(right.clone());
        let mut sent = right;
        if self.faults.bad_bcc_once {
            if let Some(bcc) = sent.last_mut() {
                *bcc ^= 0x01;
            }
        }
        sent
    }

    fn command(&mut self, index: usize, authorised: bool, command: Command) -> Vec<u8> {
        let data = command.data.clone().unwrap_or_default();
        match command.kind {
            CommandKind::B0 => {
                self.state = State::Idle;
                Vec::new()
            }
            CommandKind::P1 => {
                let (password, refuse) = {
                    let mut meter = self.meters[index].lock().expect("meter lock");
                    meter.password_attempts += 1;
                    (meter.config.password.clone(), meter.refuse_password)
                };
                let right =
                    !refuse && data.strip_prefix('(').and_then(|d| d.strip_suffix(')')) == Some(password.as_str());
                self.state = State::Programming {
                    meter: index,
                    authorised: right,
                };
                vec![if right { ACK } else { NAK }]
            }
            _ if !authorised => self.error(),
            CommandKind::R1 | CommandKind::R5 => {
                let now = self.clock.now();
                let mut meter = self.meters[index].lock().expect("meter lock");
                if data.starts_with("P.") {
                    let Ok(request) = ProfileRequest::parse(&data) else {
                        drop(meter);
                        return self.error();
                    };
                    if request.profile == LOGBOOK_PROFILE {
                        let entries = meter.logbook(&request, now);
                        drop(meter);
                        let Some(entries) = entries else {
                            return self.error();
                        };
                        let text = format_logbook(&entries).expect("simulated logbooks are valid");
                        return self.data(DataBlock { text, last: true });
                    }
                    // Load profile requests only: a logbook read does not count.
                    match meter.profile_answers_left {
                        Some(0) => meter.fault = Some(super::fault::IecFault::Silent),
                        Some(left) => meter.profile_answers_left = Some(left - 1),
                        None => {}
                    }
                    if meter.refuses_range(&request, now) {
                        drop(meter);
                        return self.error();
                    }
                    let blocks = meter.load_profile(&request, now);
                    drop(meter);
                    let text = format_load_profile(&blocks).expect("simulated profiles are valid");
                    return self.data(DataBlock { text, last: true });
                }
                let address = data.split('(').next().unwrap_or_default().to_owned();
                let values = meter.value(&address, now);
                drop(meter);
                match values {
                    Some(values) => {
                        let text = format_data_set(&DataSet { address, values }).expect("valid data set");
                        self.data(DataBlock { text, last: true })
                    }
                    None => self.error(),
                }
            }
            CommandKind::W1 | CommandKind::W5 => {
                let answer = self.meters[index]
                    .lock()
                    .expect("meter lock")
                    .write(&data, self.clock.now());
                match answer {
                    WriteAnswer::Done => vec![ACK],
                    WriteAnswer::Refused => self.error(),
                }
            }
            _ => self.error(),
        }
    }

    fn error(&mut self) -> Vec<u8> {
        self.data(DataBlock {
            text: "(ERROR)".into(),
            last: true,
        })
    }
}

fn encode(message: MeterMessage) -> Vec<u8> {
    message.encode().expect("simulator messages are valid")
}

/// The addresses of [`super::IecMeterConfig::display_extras`].
fn a1000_display_extras(sets: u32) -> Vec<String> {
    let mut list: Vec<String> = (0..=4).map(|e| format!("1-1:9.8.{e}")).collect();
    list.extend(["1-1:3.8.0", "1-1:4.8.0"].map(String::from));
    for k in 1..=sets.min(BILLING_SETS) {
        list.extend([9, 3, 4].map(|c| format!("1-1:{c}.8.0*{}", 100 + k)));
    }
    list.extend([3, 4, 9, 5, 6, 7, 8].map(|c| format!("1-1:{c}.6.0")));
    list
}

/// The data sets of the full readout at `now`.
pub fn readout_sets(meter: &mut IecMeter, now: chrono::DateTime<chrono::Utc>) -> Vec<DataSet> {
    let sets = meter.config.readout_sets;
    let mut addresses = meter.kind().readout_addresses(sets);
    if meter.config.phase_values && meter.kind() == IecKind::A1000 {
        addresses.extend([32, 52, 72, 31, 51, 71].map(|c| format!("1-1:{c}.7.0")));
    }
    if meter.config.display_extras && meter.kind() == IecKind::A1000 {
        addresses.extend(a1000_display_extras(sets));
    }
    addresses
        .into_iter()
        .filter_map(|address| {
            let values = meter.value(&address, now)?;
            let address = match address.split_once(':') {
                Some((_, reduced)) if meter.config.reduced_addresses => reduced.to_owned(),
                _ => address,
            };
            Some(DataSet { address, values })
        })
        .collect()
}

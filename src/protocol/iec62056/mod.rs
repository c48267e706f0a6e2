//! IEC 62056-21 (formerly IEC 1107), protocol modes A, B and C: a pure
//! codec (functions over bytes and text, no I/O, no timing) and a client
//! session over any byte stream, which owns baud switches, reaction times
//! and retries.
//!
//! - [`frame`]: control characters, BCC, command and data messages;
//! - [`ident`]: sign-on, identification, option select;
//! - [`message`]: whole messages per direction, decoded incrementally;
//! - [`dataset`]: `address(value*unit)` data sets inside a block;
//! - [`profile_block`]: EMH-style load profile requests and answers;
//! - [`logbook`]: the event logbook (`P.98`) read the same way, as entries;
//! - [`line`]: baud switching on serial ports (7E1) and none on TCP;
//! - [`session`]: sign-on and data readout, and (in `programming.rs`)
//!   programming mode: password, reads, writes, load profiles and the
//!   closing break; its timing in [`session_config`], its errors in
//!   [`session_error`].
//!
//! Encoders enforce the standard; decoders tolerate what real meters send
//! as long as the framing stays unambiguous. Addresses stay strings: the
//! device layer maps them to OBIS codes.

pub(crate) mod dataset;
pub(crate) mod frame;
#[cfg(test)]
mod fuzz_tests;
pub(crate) mod ident;
pub(crate) mod line;
pub(crate) mod logbook;
pub(crate) mod message;
pub(crate) mod profile_block;
mod programming;
pub(crate) mod session;
pub(crate) mod session_config;
pub(crate) mod session_error;
#[cfg(test)]
pub(crate) mod test_meter;

pub use dataset::{DataSet, DataSetError, DataValue, format_data_set, format_data_sets, parse_data_sets};
pub use frame::{Command, CommandKind, DataBlock, Decoded, EncodeError, FrameError, bcc};
pub use ident::{Identification, Mode, OptionMode, OptionSelect, SignOn};
pub use line::{LineSpeed, open_serial};
pub use logbook::{LogbookEntry, format_logbook, parse_logbook};
pub use message::{ClientMessage, MeterMessage, decode_from_client, decode_from_meter};
pub use profile_block::{
    LoadProfileBlock, ProfileError, ProfileRequest, ProfileTime, format_load_profile, parse_load_profile,
};
pub use session::{Readout, Session};
pub use session_config::SessionConfig;
pub use session_error::SessionError;

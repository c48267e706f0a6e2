//! IEC 62056-21 (formerly IEC 1107), protocol modes A, B and C: the codec
//! only, pure functions over bytes and text, no I/O and no timing (the
//! session owns baud switches, reaction times and retries).
//!
//! - [`frame`]: control characters, BCC, command and data messages;
//! - [`ident`]: sign-on, identification, option select;
//! - [`message`]: whole messages per direction, decoded incrementally;
//! - [`dataset`]: `address(value*unit)` data sets inside a block;
//! - [`profile_block`]: EMH-style load profile requests and answers.
//!
//! Encoders enforce the standard; decoders tolerate what real meters send
//! as long as the framing stays unambiguous. Addresses stay strings: the
//! device layer maps them to OBIS codes.

pub mod dataset;
pub mod frame;
pub mod ident;
pub mod message;
pub mod profile_block;

pub use dataset::{DataSet, DataSetError, DataValue, format_data_set, format_data_sets, parse_data_sets};
pub use frame::{Command, CommandKind, DataBlock, Decoded, EncodeError, FrameError, bcc};
pub use ident::{Identification, Mode, OptionMode, OptionSelect, SignOn};
pub use message::{ClientMessage, MeterMessage, decode_from_client, decode_from_meter};
pub use profile_block::{
    LoadProfileBlock, ProfileError, ProfileRequest, ProfileTime, format_load_profile, parse_load_profile,
};

//! Rows in PostgreSQL's binary `COPY` format, for bulk writes through
//! `COPY … FROM STDIN (FORMAT binary)`.
//!
//! The format (PostgreSQL 15 documentation, `COPY`, "Binary Format"): an
//! 11-byte signature `PGCOPY\n\xff\r\n\0`, a 32-bit flags field and a 32-bit
//! header-extension length (both 0 here); then per row a 16-bit field count
//! and per field a 32-bit byte length (-1 for NULL) followed by the value in
//! the type's binary send format; a 16-bit -1 ends the data. All integers
//! are big-endian (network order).

use std::fmt::{self, Write as _};

use chrono::{DateTime, Utc};

/// The signature, flags and header-extension length every binary COPY starts with.
const HEADER: &[u8; 19] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// PostgreSQL counts `timestamptz` in microseconds from 2000-01-01 00:00:00 UTC
/// (`POSTGRES_EPOCH_JDATE`); this is that instant in microseconds of the Unix epoch.
const POSTGRES_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// A buffer of rows being encoded; [`CopyBinary::finish`] gives the bytes
/// to send.
#[derive(Debug, Clone)]
pub struct CopyBinary {
    bytes: Vec<u8>,
}

impl CopyBinary {
    /// An empty COPY with room for about `rows` rows of `row_bytes` each.
    pub fn with_capacity(rows: usize, row_bytes: usize) -> CopyBinary {
        let mut bytes = Vec::with_capacity(HEADER.len() + rows * row_bytes + 2);
        bytes.extend_from_slice(HEADER);
        CopyBinary { bytes }
    }

    /// Starts a row of `fields` fields; exactly that many field calls follow.
    pub fn row(&mut self, fields: i16) -> &mut Self {
        self.bytes.extend_from_slice(&fields.to_be_bytes());
        self
    }

    /// A `bigint` field.
    pub fn int8(&mut self, value: i64) -> &mut Self {
        self.bytes.extend_from_slice(&8i32.to_be_bytes());
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// A `smallint` field.
    pub fn int2(&mut self, value: i16) -> &mut Self {
        self.bytes.extend_from_slice(&2i32.to_be_bytes());
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// An `integer` field.
    pub fn int4(&mut self, value: i32) -> &mut Self {
        self.bytes.extend_from_slice(&4i32.to_be_bytes());
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// A `double precision` field.
    pub fn float8(&mut self, value: f64) -> &mut Self {
        self.bytes.extend_from_slice(&8i32.to_be_bytes());
        self.bytes.extend_from_slice(&value.to_bits().to_be_bytes());
        self
    }

    /// A `timestamptz` field.
    pub fn timestamptz(&mut self, at: DateTime<Utc>) -> &mut Self {
        self.int8(at.timestamp_micros() - POSTGRES_EPOCH_UNIX_MICROS)
    }

    /// A `timestamptz` field that may be NULL.
    pub fn timestamptz_or_null(&mut self, at: Option<DateTime<Utc>>) -> &mut Self {
        match at {
            Some(at) => self.timestamptz(at),
            None => self.null(),
        }
    }

    /// A `text` field: the value's `Display` form, written in place (the
    /// length is filled in once the text is written).
    pub fn text(&mut self, value: &impl fmt::Display) -> &mut Self {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        write!(TextSink(&mut self.bytes), "{value}").expect("writing to a Vec cannot fail");
        let length = i32::try_from(self.bytes.len() - start - 4).expect("a text field under 2 GiB");
        self.bytes[start..start + 4].copy_from_slice(&length.to_be_bytes());
        self
    }

    /// A NULL field.
    pub fn null(&mut self) -> &mut Self {
        self.bytes.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    /// The encoded COPY data, trailer included.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&(-1i16).to_be_bytes());
        self.bytes
    }
}

/// Lets `write!` append UTF-8 text to the byte buffer.
struct TextSink<'a>(&'a mut Vec<u8>);

impl fmt::Write for TextSink<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn an_empty_copy_is_the_header_and_the_trailer() {
        let bytes = CopyBinary::with_capacity(0, 0).finish();
        let mut expected = b"PGCOPY\n".to_vec();
        expected.extend_from_slice(&[0xff, b'\r', b'\n', 0]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn fields_are_length_prefixed_big_endian() {
        let mut copy = CopyBinary::with_capacity(1, 64);
        copy.row(6)
            .int8(258)
            .text(&"kWh")
            .float8(1.5)
            .int4(-2)
            .null()
            // One second after PostgreSQL's epoch: 1,000,000 µs = 0x0F4240.
            .timestamptz(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 1).unwrap());
        let bytes = copy.finish();
        let row = &bytes[19..bytes.len() - 2];
        let expected: Vec<u8> = [
            &[0, 6][..],
            &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 2],
            &[0, 0, 0, 3, b'k', b'W', b'h'],
            // 1.5 = 0x3FF8000000000000 (IEEE 754 binary64).
            &[0, 0, 0, 8, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
            &[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xfe],
            &[0xff, 0xff, 0xff, 0xff],
            &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40],
        ]
        .concat();
        assert_eq!(row, expected);
    }

    #[test]
    fn times_before_the_postgres_epoch_are_negative() {
        let mut copy = CopyBinary::with_capacity(1, 16);
        copy.row(1)
            .timestamptz(Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap());
        let bytes = copy.finish();
        assert_eq!(
            &bytes[21..33],
            &[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 0xbd, 0xc0]
        );
    }
}

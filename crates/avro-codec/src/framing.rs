//! The Confluent wire framing: magic byte `0`, the schema id as a big-endian `u32`, then the Avro
//! binary body.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::CodecError;

/// First byte of every Confluent-framed value.
pub const MAGIC_BYTE: u8 = 0;

/// Length of the Confluent header: magic byte plus 4-byte schema id.
pub const HEADER_LEN: usize = 5;

/// A schema id as assigned by a Confluent-compatible schema registry and written in the frame
/// header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SchemaId(pub u32);

impl SchemaId {
    /// The id as the registry and the frame header spell it.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for SchemaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u32> for SchemaId {
    fn from(id: u32) -> Self {
        Self(id)
    }
}

/// Splits a framed value into its schema id and its Avro body.
///
/// # Errors
/// [`CodecError::Empty`], [`CodecError::TooShort`] or [`CodecError::BadMagicByte`]; all of them
/// are properties of the bytes (poison).
pub fn split_frame(framed: &[u8]) -> Result<(SchemaId, &[u8]), CodecError> {
    match framed {
        [] => Err(CodecError::Empty),
        [magic, ..] if *magic != MAGIC_BYTE => Err(CodecError::BadMagicByte { found: *magic }),
        [_, a, b, c, d, body @ ..] => Ok((SchemaId(u32::from_be_bytes([*a, *b, *c, *d])), body)),
        short => Err(CodecError::TooShort { len: short.len() }),
    }
}

/// Appends the 5-byte header for `schema_id` to `out`.
pub fn write_header(schema_id: SchemaId, out: &mut Vec<u8>) {
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.0.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_big_endian() {
        let mut out = Vec::new();
        write_header(SchemaId(0x0102_0304), &mut out);
        out.push(0xaa);
        assert_eq!(out, [0, 1, 2, 3, 4, 0xaa]);
        let (id, body) = split_frame(&out).expect("valid frame");
        assert_eq!(id, SchemaId(0x0102_0304));
        assert_eq!(body, [0xaa]);
    }

    #[test]
    fn rejects_empty_short_and_wrong_magic() {
        assert!(matches!(split_frame(&[]), Err(CodecError::Empty)));
        assert!(matches!(
            split_frame(&[0, 0, 0, 1]),
            Err(CodecError::TooShort { len: 4 })
        ));
        assert!(matches!(
            split_frame(&[0x7b, 0, 0, 0, 1]),
            Err(CodecError::BadMagicByte { found: 0x7b })
        ));
        // A wrong magic byte is reported even when the value is also short: it is the more
        // telling fact (e.g. a JSON or plain-text producer).
        assert!(matches!(
            split_frame(b"{"),
            Err(CodecError::BadMagicByte { found: b'{' })
        ));
    }

    #[test]
    fn header_only_frame_has_empty_body() {
        let (id, body) = split_frame(&[0, 0, 0, 0, 7]).expect("valid header");
        assert_eq!(id, SchemaId(7));
        assert!(body.is_empty());
    }
}

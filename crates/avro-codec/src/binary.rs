//! Avro binary primitives for the hand-written fast path: zigzag varint longs and
//! length-prefixed UTF-8 strings, read straight from a byte slice.
//!
//! Every length is checked against the bytes that remain before anything is allocated, so an
//! attacker-chosen length prefix costs nothing but an error.

/// Why a body failed to decode, and at which byte of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyError {
    pub(crate) offset: usize,
    pub(crate) reason: &'static str,
}

pub(crate) const TRUNCATED: &str = "input ends in the middle of a value";
pub(crate) const VARINT_TOO_LONG: &str = "variable-length integer is longer than 10 bytes";
pub(crate) const NEGATIVE_LENGTH: &str = "negative length prefix";
pub(crate) const LENGTH_PAST_END: &str = "length prefix exceeds the remaining input";
pub(crate) const INVALID_UTF8: &str = "string is not valid UTF-8";
pub(crate) const TRAILING_BYTES: &str = "bytes left over after the record";

/// A cursor over an Avro body.
#[derive(Debug)]
pub(crate) struct BodyReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BodyReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn error(&self, offset: usize, reason: &'static str) -> BodyError {
        BodyError { offset, reason }
    }

    /// Reads a zigzag varint `long`.
    ///
    /// Like the Java and apache-avro readers, this accepts non-minimal encodings and drops bits
    /// beyond 64 in the tenth byte, so both decoding paths agree on every input.
    #[inline]
    pub(crate) fn read_long(&mut self) -> Result<i64, BodyError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(start + i) else {
                return Err(self.error(start, TRUNCATED));
            };
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.pos = start + i + 1;
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err(self.error(start, VARINT_TOO_LONG))
    }

    /// Reads `len` raw bytes.
    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], BodyError> {
        if len > self.remaining() {
            return Err(self.error(self.pos, TRUNCATED));
        }
        let bytes = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    /// Reads a length prefix and the bytes it announces, without allocating.
    #[inline]
    pub(crate) fn read_len_prefixed(&mut self) -> Result<&'a [u8], BodyError> {
        let start = self.pos;
        let len = self.read_long()?;
        let len = usize::try_from(len).map_err(|_| self.error(start, NEGATIVE_LENGTH))?;
        if len > self.remaining() {
            return Err(self.error(start, LENGTH_PAST_END));
        }
        self.take(len)
    }

    /// Reads a length-prefixed UTF-8 string; the only allocation is the returned `String`.
    #[inline]
    pub(crate) fn read_string(&mut self) -> Result<String, BodyError> {
        self.read_str().map(str::to_owned)
    }

    /// Reads a string borrowed from the input, checked to be UTF-8.
    #[inline]
    pub(crate) fn read_str(&mut self) -> Result<&'a str, BodyError> {
        let start = self.pos;
        let bytes = self.read_len_prefixed()?;
        std::str::from_utf8(bytes).map_err(|_| self.error(start, INVALID_UTF8))
    }

    /// Checks that the whole body was consumed.
    pub(crate) fn finish(self) -> Result<(), BodyError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.error(self.pos, TRAILING_BYTES))
        }
    }
}

/// Appends a zigzag varint `long`.
#[inline]
pub(crate) fn write_long(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

/// Appends a length-prefixed UTF-8 string.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    // A `str` is at most `isize::MAX` bytes, so its length always fits an Avro long.
    write_long(out, text.len() as i64);
    out.extend_from_slice(text.as_bytes());
}

/// Upper bound of the encoded size of a string, for reserving buffer space once.
pub(crate) fn str_size_hint(text: &str) -> usize {
    10 + text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_bytes(value: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_long(&mut out, value);
        out
    }

    #[test]
    fn zigzag_matches_the_avro_specification_examples() {
        assert_eq!(long_bytes(0), [0x00]);
        assert_eq!(long_bytes(-1), [0x01]);
        assert_eq!(long_bytes(1), [0x02]);
        assert_eq!(long_bytes(-2), [0x03]);
        assert_eq!(long_bytes(2), [0x04]);
        assert_eq!(long_bytes(-64), [0x7f]);
        assert_eq!(long_bytes(64), [0x80, 0x01]);
        assert_eq!(
            long_bytes(1_650_000_000_000),
            [0x80, 0xd0, 0xcf, 0xba, 0x85, 0x60]
        );
    }

    #[test]
    fn longs_round_trip_at_the_extremes() {
        for value in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX] {
            let bytes = long_bytes(value);
            assert!(bytes.len() <= 10);
            let mut reader = BodyReader::new(&bytes);
            assert_eq!(reader.read_long(), Ok(value));
            assert_eq!(reader.finish(), Ok(()));
        }
    }

    #[test]
    fn accepts_non_minimal_varints_like_other_avro_readers() {
        let mut reader = BodyReader::new(&[0x82, 0x80, 0x00]);
        assert_eq!(reader.read_long(), Ok(1));
    }

    #[test]
    fn rejects_varint_longer_than_ten_bytes() {
        let bytes = [0xff; 11];
        let err = BodyReader::new(&bytes).read_long().expect_err("overlong");
        assert_eq!(err.reason, VARINT_TOO_LONG);
    }

    #[test]
    fn rejects_truncated_varint() {
        let err = BodyReader::new(&[0x80, 0x80])
            .read_long()
            .expect_err("truncated");
        assert_eq!(
            err,
            BodyError {
                offset: 0,
                reason: TRUNCATED
            }
        );
    }

    #[test]
    fn huge_length_prefix_is_an_error_not_an_allocation() {
        let mut bytes = long_bytes(i64::MAX);
        bytes.extend_from_slice(b"abc");
        let err = BodyReader::new(&bytes).read_string().expect_err("too long");
        assert_eq!(err.reason, LENGTH_PAST_END);
        let err = BodyReader::new(&long_bytes(-3))
            .read_string()
            .expect_err("negative");
        assert_eq!(err.reason, NEGATIVE_LENGTH);
    }

    #[test]
    fn rejects_invalid_utf8_with_the_offset_of_the_string() {
        let bytes = [0x00, 0x04, 0xff, 0xfe];
        let mut reader = BodyReader::new(&bytes);
        assert_eq!(reader.read_string(), Ok(String::new()));
        assert_eq!(
            reader.read_string(),
            Err(BodyError {
                offset: 1,
                reason: INVALID_UTF8
            })
        );
    }

    #[test]
    fn finish_reports_trailing_bytes() {
        let mut reader = BodyReader::new(&[0x02, 0x00]);
        assert_eq!(reader.read_long(), Ok(1));
        assert_eq!(
            reader.finish(),
            Err(BodyError {
                offset: 1,
                reason: TRAILING_BYTES
            })
        );
    }
}

//! Writer schemas as a registry could serve them, on arbitrary text: preparing a reader for one
//! never panics, and decoding a body under a schema that was accepted never panics either.
//!
//! Input: the writer schema (JSON), a NUL byte, then the Avro body to decode under it.

#![no_main]

use avro_codec::{InputDecoder, OutputDecoder, SchemaId};
use libfuzzer_sys::fuzz_target;

const WRITER_ID: u32 = 7;

fuzz_target!(|data: &[u8]| {
    let (schema, body) = match data.iter().position(|byte| *byte == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let schema = String::from_utf8_lossy(schema);
    let mut framed = vec![0];
    framed.extend_from_slice(&WRITER_ID.to_be_bytes());
    framed.extend_from_slice(body);

    let input = InputDecoder::new();
    if input
        .add_writer_schema(SchemaId(WRITER_ID), &schema)
        .is_ok()
    {
        let owned = input.decode(&framed);
        let borrowed = input.decode_borrowed(&framed);
        assert_eq!(
            owned.as_ref().ok(),
            borrowed
                .as_ref()
                .ok()
                .map(|decoded| decoded.view().to_owned_record())
                .as_ref(),
            "borrowed and owned decodes differ: {owned:?} vs {borrowed:?}"
        );
    } else {
        // A rejected id stays rejected, and decoding it says so instead of panicking.
        assert!(input.decode(&framed).is_err());
    }
    let output = OutputDecoder::new();
    if output
        .add_writer_schema(SchemaId(WRITER_ID), &schema)
        .is_ok()
    {
        let _ = output.decode(&framed);
    }
});

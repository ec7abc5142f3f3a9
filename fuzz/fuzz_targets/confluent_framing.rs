//! The Confluent framing on arbitrary bytes: never a panic, and header + body always
//! reassemble to the input.

#![no_main]

use avro_codec::{HEADER_LEN, InputDecoder, MAGIC_BYTE, OutputDecoder, split_frame, write_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = split_frame(data);
    assert_eq!(
        InputDecoder::schema_id_of(data).ok(),
        split.as_ref().ok().map(|(id, _)| *id),
        "schema_id_of and split_frame disagree"
    );
    assert_eq!(
        OutputDecoder::schema_id_of(data).ok(),
        split.as_ref().ok().map(|(id, _)| *id)
    );
    match split {
        Ok((schema_id, body)) => {
            assert_eq!(data[0], MAGIC_BYTE);
            assert_eq!(body.len(), data.len() - HEADER_LEN);
            let mut rebuilt = Vec::with_capacity(data.len());
            write_header(schema_id, &mut rebuilt);
            rebuilt.extend_from_slice(body);
            assert_eq!(rebuilt, data, "header + body do not reassemble the frame");
        }
        Err(error) => {
            // Framing errors are properties of the bytes: never worth a retry.
            assert!(error.is_poison(), "framing error is not poison: {error:?}");
            assert!(
                data.len() < HEADER_LEN || data[0] != MAGIC_BYTE,
                "valid frame refused"
            );
        }
    }
});

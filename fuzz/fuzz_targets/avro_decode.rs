//! The Avro body decoders on arbitrary bytes: never a panic, the fast and the resolving path
//! agree, the borrowed and the owned decode agree, and what decodes re-encodes to itself.

#![no_main]

use avro_codec::{
    DecodedInput, InputDecoder, InputEncoder, OutputDecoder, OutputEncoder,
    PROCESSOR_TO_CONSUMER_SCHEMA, PRODUCER_TO_PROCESSOR_SCHEMA, ReadPath, SchemaId,
};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// Writer schema id read by the hand-written decoder (the reader schema itself).
const FAST: u32 = 1;
/// The reader schema under another namespace: the same bytes, read by apache-avro resolution.
const RESOLVING: u32 = 2;
/// An evolved writer (extra optional field first, fields reordered, a nested map of arrays):
/// other bytes, read by apache-avro resolution.
const EVOLVED: u32 = 3;

const EVOLVED_WRITER: &str = r#"{"type":"record","name":"ProducerToProcessor","fields":[
  {"name":"trace","type":["null","string"],"default":null},
  {"name":"payload","type":"string"},{"name":"event_timestamp","type":"long"},
  {"name":"destination_service_type","type":"string"},{"name":"origin_service_type","type":"string"},
  {"name":"origin_service_id","type":"string"},
  {"name":"tags","type":{"type":"map","values":{"type":"array","items":"int"}},"default":{}}]}"#;

fn other_namespace(schema: &str) -> String {
    schema.replace(r#""service_messages""#, r#""elsewhere""#)
}

static INPUT: LazyLock<InputDecoder> = LazyLock::new(|| {
    let decoder = InputDecoder::new();
    for (id, writer) in [
        (FAST, PRODUCER_TO_PROCESSOR_SCHEMA.to_owned()),
        (RESOLVING, other_namespace(PRODUCER_TO_PROCESSOR_SCHEMA)),
        (EVOLVED, EVOLVED_WRITER.to_owned()),
    ] {
        decoder
            .add_writer_schema(SchemaId(id), &writer)
            .expect("fuzz writer schemas resolve");
    }
    assert_eq!(decoder.read_path(SchemaId(FAST)), Some(ReadPath::Fast));
    assert_eq!(
        decoder.read_path(SchemaId(RESOLVING)),
        Some(ReadPath::Resolving)
    );
    assert_eq!(
        decoder.read_path(SchemaId(EVOLVED)),
        Some(ReadPath::Resolving)
    );
    decoder
});

static OUTPUT: LazyLock<OutputDecoder> = LazyLock::new(|| {
    let decoder = OutputDecoder::new();
    for (id, writer) in [
        (FAST, PROCESSOR_TO_CONSUMER_SCHEMA.to_owned()),
        (RESOLVING, other_namespace(PROCESSOR_TO_CONSUMER_SCHEMA)),
    ] {
        decoder
            .add_writer_schema(SchemaId(id), &writer)
            .expect("fuzz writer schemas resolve");
    }
    assert_eq!(
        decoder.read_path(SchemaId(RESOLVING)),
        Some(ReadPath::Resolving)
    );
    decoder
});

fn frame(id: u32, body: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(5 + body.len());
    framed.push(0);
    framed.extend_from_slice(&id.to_be_bytes());
    framed.extend_from_slice(body);
    framed
}

/// Every check on one framed value, whatever id its header names.
fn check_framed(framed: &[u8]) {
    let owned = INPUT.decode(framed);
    let borrowed = INPUT.decode_borrowed(framed);
    match (&owned, &borrowed) {
        (Ok(record), Ok(DecodedInput::Borrowed(view))) => {
            assert_eq!(
                view.to_owned_record(),
                *record,
                "borrowed and owned decodes differ"
            );
        }
        (Ok(record), Ok(DecodedInput::Owned(other))) => {
            assert_eq!(other, record, "borrowed and owned decodes differ");
        }
        (Err(owned), Err(borrowed)) => {
            assert_eq!(
                owned.to_string(),
                borrowed.to_string(),
                "decodes fail differently"
            );
        }
        _ => panic!("one decode failed, the other not: {owned:?} vs {borrowed:?}"),
    }
    if let Ok(record) = owned {
        let encoded = InputEncoder::new(SchemaId(FAST)).encode_to_vec(&record);
        let again = INPUT.decode(&encoded);
        assert!(
            again.as_ref().is_ok_and(|again| *again == record),
            "input record does not re-encode: {record:?} became {again:?}"
        );
    }
    if let Ok(record) = OUTPUT.decode(framed) {
        let encoded = OutputEncoder::new(SchemaId(FAST)).encode_to_vec(&record);
        let again = OUTPUT.decode(&encoded);
        assert!(
            again.as_ref().is_ok_and(|again| *again == record),
            "output record does not re-encode: {record:?} became {again:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // As a whole framed value (header included: unknown ids, bad magic bytes, short frames)...
    check_framed(data);
    // ...and as the body under each loaded writer schema.
    for id in [FAST, RESOLVING, EVOLVED] {
        check_framed(&frame(id, data));
    }
    // The same bytes under the reader schema and under its renamed copy are the same record:
    // the hand-written decoder agrees with apache-avro on every body.
    let fast = INPUT.decode(&frame(FAST, data));
    let resolved = INPUT.decode(&frame(RESOLVING, data));
    assert_eq!(
        fast.is_ok(),
        resolved.is_ok(),
        "input paths disagree: {fast:?} vs {resolved:?}"
    );
    if let (Ok(fast), Ok(resolved)) = (fast, resolved) {
        assert_eq!(fast, resolved, "input paths decode different records");
    }
    let fast = OUTPUT.decode(&frame(FAST, data));
    let resolved = OUTPUT.decode(&frame(RESOLVING, data));
    assert_eq!(
        fast.is_ok(),
        resolved.is_ok(),
        "output paths disagree: {fast:?} vs {resolved:?}"
    );
    if let (Ok(fast), Ok(resolved)) = (fast, resolved) {
        assert_eq!(fast, resolved, "output paths decode different records");
    }
});

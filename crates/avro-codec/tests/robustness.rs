//! Bad input never panics, and the hand-written fast path agrees with apache-avro on every input.

mod support;

use apache_avro::types::Value;
use avro_codec::{
    CodecError, DecodedInput, InputDecoder, InputEncoder, OutputDecoder, OutputEncoder,
    PROCESSOR_TO_CONSUMER_SCHEMA, PRODUCER_TO_PROCESSOR_SCHEMA, ProcessorToConsumer,
    ProducerToProcessor, ReadPath, SchemaId,
};
use proptest::prelude::*;
use support::*;

/// Schema id read by the hand-written decoder.
const FAST: u32 = 1;
/// Schema id of the same record under another namespace: same bytes, read by apache-avro
/// schema resolution.
const RESOLVING: u32 = 2;
/// Schema id of an evolved writer (extra optional field first, fields reordered).
const EVOLVED: u32 = 3;

const EVOLVED_WRITER: &str = r#"{"type":"record","name":"ProducerToProcessor","fields":[
  {"name":"trace","type":["null","string"],"default":null},
  {"name":"payload","type":"string"},{"name":"event_timestamp","type":"long"},
  {"name":"destination_service_type","type":"string"},{"name":"origin_service_type","type":"string"},
  {"name":"origin_service_id","type":"string"},
  {"name":"tags","type":{"type":"map","values":{"type":"array","items":"int"}},"default":{}}]}"#;

fn other_namespace(schema: &str) -> String {
    let renamed = schema.replace(r#""service_messages""#, r#""elsewhere""#);
    assert_ne!(renamed, schema, "the schema has the expected namespace");
    renamed
}

fn input_decoder() -> InputDecoder {
    let decoder = InputDecoder::new();
    let writers = [
        (FAST, PRODUCER_TO_PROCESSOR_SCHEMA.to_owned()),
        (RESOLVING, other_namespace(PRODUCER_TO_PROCESSOR_SCHEMA)),
        (EVOLVED, EVOLVED_WRITER.to_owned()),
    ];
    for (id, writer) in writers {
        decoder
            .add_writer_schema(SchemaId(id), &writer)
            .expect("test writer resolves");
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
}

fn output_decoder() -> OutputDecoder {
    let decoder = OutputDecoder::new();
    decoder
        .add_writer_schema(SchemaId(FAST), PROCESSOR_TO_CONSUMER_SCHEMA)
        .expect("reader schema");
    decoder
        .add_writer_schema(
            SchemaId(RESOLVING),
            &other_namespace(PROCESSOR_TO_CONSUMER_SCHEMA),
        )
        .expect("namespace change resolves");
    assert_eq!(
        decoder.read_path(SchemaId(RESOLVING)),
        Some(ReadPath::Resolving)
    );
    decoder
}

/// Decodes `body` through the fast and the resolving path and checks they agree: the same
/// record, or both an error.
fn assert_paths_agree<T: PartialEq + std::fmt::Debug>(
    decode: impl Fn(&[u8]) -> Result<T, CodecError>,
    body: &[u8],
) -> Result<(), TestCaseError> {
    let fast = decode(&frame(FAST, body));
    let resolving = decode(&frame(RESOLVING, body));
    match (&fast, &resolving) {
        (Ok(fast), Ok(resolving)) => prop_assert_eq!(fast, resolving),
        (Err(fast), Err(resolving)) => {
            prop_assert!(fast.is_poison(), "{fast:?}");
            prop_assert!(resolving.is_poison(), "{resolving:?}");
        }
        _ => prop_assert!(
            false,
            "paths disagree on {body:02x?}: {fast:?} vs {resolving:?}"
        ),
    }
    Ok(())
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,40}", "\\PC{0,200}", Just(String::new())]
}

prop_compose! {
    fn any_input()(
        origin_service_id in any_text(),
        origin_service_type in any_text(),
        destination_service_type in any_text(),
        event_timestamp in any::<i64>(),
        payload in any_text(),
    ) -> ProducerToProcessor {
        ProducerToProcessor {
            origin_service_id,
            origin_service_type,
            destination_service_type,
            event_timestamp,
            payload,
        }
    }
}

prop_compose! {
    fn any_output()(
        producer_service_id in any_text(),
        processor_service_id in any_text(),
        destination_type in any_text(),
        producer_event_timestamp in any::<i64>(),
        processor_event_timestamp in any::<i64>(),
        payload in any_text(),
    ) -> ProcessorToConsumer {
        ProcessorToConsumer {
            producer_service_id,
            processor_service_id,
            destination_type,
            producer_event_timestamp,
            processor_event_timestamp,
            payload,
        }
    }
}

#[test]
fn truncated_input_never_panics() {
    let input = input_decoder();
    let output = output_decoder();
    let evolved_body = apache_body(
        EVOLVED_WRITER,
        record(&[
            ("trace", Value::Union(1, Box::new(string("t")))),
            ("payload", string("p")),
            ("event_timestamp", Value::Long(-1)),
            ("destination_service_type", string("D")),
            ("origin_service_type", string("O")),
            ("origin_service_id", string("I")),
            (
                "tags",
                Value::Map([("k".to_owned(), Value::Array(vec![Value::Int(3)]))].into()),
            ),
        ]),
    );
    let evolved = frame(EVOLVED, &evolved_body);
    input
        .decode(&evolved)
        .expect("the whole evolved value decodes");
    for full in [
        golden_input(),
        frame(RESOLVING, &golden_input()[5..]),
        evolved,
    ] {
        for len in 0..full.len() {
            let err = input
                .decode(&full[..len])
                .expect_err("a strict prefix never decodes");
            assert!(err.is_poison(), "prefix {len}: {err:?}");
        }
    }
    for full in [golden_output(), frame(RESOLVING, &golden_output()[5..])] {
        for len in 0..full.len() {
            assert!(output.decode(&full[..len]).is_err(), "prefix {len}");
        }
    }
}

#[test]
fn huge_length_prefixes_are_rejected_on_both_paths() {
    let input = input_decoder();
    let golden = golden_input();
    // Replace the first string's length prefix (one byte at offset 5) with huge varints.
    for huge in [i64::MAX, 1 << 40, 1 << 31, 4096] {
        let mut body = Vec::new();
        let mut zigzag = ((huge << 1) ^ (huge >> 63)) as u64;
        while zigzag >= 0x80 {
            body.push((zigzag as u8) | 0x80);
            zigzag >>= 7;
        }
        body.push(zigzag as u8);
        body.extend_from_slice(&golden[6..]);
        // The evolved writer starts with a union: branch 0 (null), then the payload string.
        let evolved_body = [&[0x00], body.as_slice()].concat();
        for (id, body) in [(FAST, &body), (RESOLVING, &body), (EVOLVED, &evolved_body)] {
            let err = input
                .decode(&frame(id, body))
                .expect_err("length past the end");
            assert!(
                matches!(err, CodecError::Malformed { reason, .. } if reason.contains("length")),
                "id {id}, length {huge}: {err:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let input = input_decoder();
        let output = output_decoder();
        let _ = input.decode(&bytes);
        let _ = output.decode(&bytes);
        for id in [FAST, RESOLVING, EVOLVED, 99] {
            let _ = input.decode(&frame(id, &bytes));
            let _ = output.decode(&frame(id, &bytes));
        }
    }

    #[test]
    fn fast_and_resolving_paths_agree_on_random_bodies(
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let input = input_decoder();
        let output = output_decoder();
        assert_paths_agree(|framed| input.decode(framed), &body)?;
        assert_paths_agree(|framed| output.decode(framed), &body)?;
    }

    #[test]
    fn mutated_golden_vectors_never_panic_and_paths_agree(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let input = input_decoder();
        let output = output_decoder();
        for (golden, is_input) in [(golden_input(), true), (golden_output(), false)] {
            let mut body = golden[5..].to_vec();
            for (index, byte) in &flips {
                let at = index.index(body.len());
                body[at] = *byte;
            }
            if truncate {
                body.truncate(cut.index(body.len()));
            }
            if is_input {
                assert_paths_agree(|framed| input.decode(framed), &body)?;
                let _ = input.decode(&frame(EVOLVED, &body));
            } else {
                assert_paths_agree(|framed| output.decode(framed), &body)?;
            }
        }
    }

    #[test]
    fn arbitrary_input_records_round_trip_and_match_apache_avro(record in any_input()) {
        let framed = InputEncoder::new(SchemaId(FAST)).encode_to_vec(&record);
        let reference = apache_body(
            PRODUCER_TO_PROCESSOR_SCHEMA,
            apache_avro::to_value(&record).expect("serializable"),
        );
        prop_assert_eq!(&framed, &frame(FAST, &reference));
        let input = input_decoder();
        prop_assert_eq!(&input.decode(&framed).expect("fast path decodes"), &record);
        let resolved = input.decode(&frame(RESOLVING, &framed[5..])).expect("resolving path decodes");
        prop_assert_eq!(&resolved, &record);
    }

    #[test]
    fn arbitrary_output_records_round_trip_and_match_apache_avro(record in any_output()) {
        let framed = OutputEncoder::new(SchemaId(FAST)).encode_to_vec(&record);
        let reference = apache_body(
            PROCESSOR_TO_CONSUMER_SCHEMA,
            apache_avro::to_value(&record).expect("serializable"),
        );
        prop_assert_eq!(&framed, &frame(FAST, &reference));
        let output = output_decoder();
        prop_assert_eq!(&output.decode(&framed).expect("fast path decodes"), &record);
        let resolved = output.decode(&frame(RESOLVING, &framed[5..])).expect("resolving path decodes");
        prop_assert_eq!(&resolved, &record);
    }

    #[test]
    fn mangled_writer_schemas_never_panic(
        cuts in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..8), 1..4),
        insert in "[\\[\\]{}\":,a-z0-9 ]{0,6}",
    ) {
        let mut schema = PRODUCER_TO_PROCESSOR_SCHEMA.to_owned();
        for (index, len) in &cuts {
            let mut at = index.index(schema.len());
            while !schema.is_char_boundary(at) {
                at -= 1;
            }
            let mut end = (at + len).min(schema.len());
            while !schema.is_char_boundary(end) {
                end -= 1;
            }
            schema.replace_range(at..end, &insert);
        }
        let decoder = InputDecoder::new();
        if decoder.add_writer_schema(SchemaId(5), &schema).is_ok() {
            let _ = decoder.decode(&golden_input());
            let _ = decoder.decode(&frame(5, &golden_input()[5..]));
        }
    }
}

/// Decodes `framed` both ways and checks the borrowed decode agrees with the owned one: the
/// same record, or the same error.
fn assert_borrowed_agrees(input: &InputDecoder, framed: &[u8]) -> Result<(), TestCaseError> {
    let owned = input.decode(framed);
    let borrowed = input.decode_borrowed(framed);
    match (&owned, &borrowed) {
        (Ok(owned), Ok(borrowed)) => prop_assert_eq!(&borrowed.view().to_owned_record(), owned),
        (Err(owned), Err(borrowed)) => prop_assert_eq!(owned.to_string(), borrowed.to_string()),
        _ => prop_assert!(
            false,
            "decodes disagree on {framed:02x?}: {owned:?} vs {borrowed:?}"
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn borrowed_and_owned_decodes_agree_on_random_and_mutated_bodies(
        body in proptest::collection::vec(any::<u8>(), 0..128),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let input = input_decoder();
        let mut golden = golden_input()[5..].to_vec();
        for (index, byte) in &flips {
            let at = index.index(golden.len());
            golden[at] = *byte;
        }
        let cut_golden = &golden[..cut.index(golden.len())];
        for candidate in [&body[..], &golden[..], cut_golden] {
            for id in [FAST, RESOLVING, EVOLVED, 99] {
                assert_borrowed_agrees(&input, &frame(id, candidate))?;
            }
            assert_borrowed_agrees(&input, candidate)?;
        }
    }

    #[test]
    fn borrowed_decode_and_encode_match_the_owned_codec(record in any_input(), output in any_output()) {
        let input = input_decoder();
        let framed = InputEncoder::new(SchemaId(FAST)).encode_to_vec(&record);
        let decoded = input.decode_borrowed(&framed).expect("fast path decodes");
        prop_assert!(matches!(decoded, DecodedInput::Borrowed(_)));
        prop_assert_eq!(decoded.view(), record.borrowed());
        let reframed = frame(RESOLVING, &framed[5..]);
        let resolved = input.decode_borrowed(&reframed).expect("resolving path decodes");
        prop_assert!(matches!(resolved, DecodedInput::Owned(_)));
        prop_assert_eq!(resolved.view(), record.borrowed());

        let encoder = OutputEncoder::new(SchemaId(FAST));
        let mut borrowed = b"kept".to_vec();
        encoder.encode_borrowed(&output.borrowed(), &mut borrowed);
        let mut owned = b"kept".to_vec();
        encoder.encode(&output, &mut owned);
        prop_assert_eq!(borrowed, owned);
    }
}

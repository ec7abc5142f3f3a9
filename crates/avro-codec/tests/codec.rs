//! Golden vectors, schema evolution, the decoder's schema cache and its error classes.

mod support;

use std::time::Duration;

use apache_avro::{Schema, types::Value};
use avro_codec::{
    CodecError, ErrorClass, InputDecoder, InputEncoder, OutputDecoder, OutputEncoder,
    PROCESSOR_TO_CONSUMER_SCHEMA, PRODUCER_TO_PROCESSOR_SCHEMA, ProducerToProcessor, ReadPath,
    SchemaId, SchemaRegistry,
};
use schema_registry::MemoryRegistry;
use support::*;

fn input_decoder_with_reader_schema(id: u32) -> InputDecoder {
    let decoder = InputDecoder::new();
    decoder
        .add_writer_schema(SchemaId(id), PRODUCER_TO_PROCESSOR_SCHEMA)
        .expect("reader schema is its own writer");
    decoder
}

#[test]
fn golden_input_vector_round_trips_byte_exact() {
    let decoder = input_decoder_with_reader_schema(1);
    assert_eq!(decoder.read_path(SchemaId(1)), Some(ReadPath::Fast));
    let record = decoder
        .decode(&golden_input())
        .expect("golden vector decodes");
    assert_eq!(record, golden_input_record());
    assert_eq!(
        InputEncoder::new(SchemaId(1)).encode_to_vec(&record),
        golden_input()
    );
}

#[test]
fn golden_output_vector_round_trips_byte_exact() {
    let decoder = OutputDecoder::new();
    decoder
        .add_writer_schema(SchemaId(2), PROCESSOR_TO_CONSUMER_SCHEMA)
        .expect("reader schema is its own writer");
    let record = decoder
        .decode(&golden_output())
        .expect("golden vector decodes");
    assert_eq!(record, golden_output_record());
    assert_eq!(
        OutputEncoder::new(SchemaId(2)).encode_to_vec(&record),
        golden_output()
    );
}

#[test]
fn fast_encoder_matches_apache_avro_on_the_golden_records() {
    let input = apache_body(
        PRODUCER_TO_PROCESSOR_SCHEMA,
        apache_avro::to_value(golden_input_record()).expect("serializable"),
    );
    assert_eq!(frame(1, &input), golden_input());
    let output = apache_body(
        PROCESSOR_TO_CONSUMER_SCHEMA,
        apache_avro::to_value(golden_output_record()).expect("serializable"),
    );
    assert_eq!(frame(2, &output), golden_output());
}

#[test]
fn encode_appends_to_the_buffer_without_clearing_it() {
    let encoder = OutputEncoder::new(SchemaId(2));
    let mut buffer = b"prefix".to_vec();
    encoder.encode(&golden_output_record(), &mut buffer);
    assert_eq!(&buffer[..6], b"prefix");
    assert_eq!(&buffer[6..], golden_output().as_slice());
}

#[test]
fn embedded_reader_schemas_parse_and_name_the_records() {
    for (schema, name) in [
        (
            PRODUCER_TO_PROCESSOR_SCHEMA,
            "service_messages.ProducerToProcessor",
        ),
        (
            PROCESSOR_TO_CONSUMER_SCHEMA,
            "service_messages.ProcessorToConsumer",
        ),
    ] {
        let parsed = Schema::parse_str(schema).expect("embedded schema parses");
        let full_name = parsed.name().expect("a named record").fullname(None);
        assert_eq!(full_name, name);
    }
}

/// The input schema with a new optional field first and the other fields in another order.
const EVOLVED_WRITER: &str = r#"{
  "type": "record", "name": "ProducerToProcessor", "namespace": "service_messages",
  "fields": [
    {"name": "trace_id", "type": ["null", "string"], "default": null},
    {"name": "payload", "type": "string"},
    {"name": "event_timestamp", "type": "long"},
    {"name": "destination_service_type", "type": "string"},
    {"name": "origin_service_type", "type": "string"},
    {"name": "origin_service_id", "type": "string"},
    {"name": "priority", "type": "int", "default": 0}
  ]
}"#;

fn evolved_body(trace_id: Value) -> Vec<u8> {
    let golden = golden_input_record();
    apache_body(
        EVOLVED_WRITER,
        record(&[
            ("trace_id", trace_id),
            ("payload", string(&golden.payload)),
            ("event_timestamp", Value::Long(golden.event_timestamp)),
            (
                "destination_service_type",
                string(&golden.destination_service_type),
            ),
            ("origin_service_type", string(&golden.origin_service_type)),
            ("origin_service_id", string(&golden.origin_service_id)),
            ("priority", Value::Int(7)),
        ]),
    )
}

#[test]
fn decodes_writer_with_added_field_into_reader_record() {
    let decoder = InputDecoder::new();
    decoder
        .add_writer_schema(SchemaId(7), EVOLVED_WRITER)
        .expect("evolved writer resolves to the reader");
    assert_eq!(decoder.read_path(SchemaId(7)), Some(ReadPath::Resolving));
    let with_trace = evolved_body(Value::Union(1, Box::new(string("abc"))));
    let without_trace = evolved_body(Value::Union(0, Box::new(Value::Null)));
    for body in [with_trace, without_trace] {
        let record = decoder
            .decode(&frame(7, &body))
            .expect("evolved record decodes");
        assert_eq!(record, golden_input_record());
    }
}

#[test]
fn decodes_writer_with_reordered_fields_only() {
    let writer = r#"{"type":"record","name":"ProducerToProcessor","namespace":"service_messages",
      "fields":[{"name":"event_timestamp","type":"long"},{"name":"payload","type":"string"},
      {"name":"origin_service_id","type":"string"},{"name":"origin_service_type","type":"string"},
      {"name":"destination_service_type","type":"string"}]}"#;
    let golden = golden_input_record();
    let body = apache_body(
        writer,
        record(&[
            ("event_timestamp", Value::Long(golden.event_timestamp)),
            ("payload", string(&golden.payload)),
            ("origin_service_id", string(&golden.origin_service_id)),
            ("origin_service_type", string(&golden.origin_service_type)),
            (
                "destination_service_type",
                string(&golden.destination_service_type),
            ),
        ]),
    );
    let decoder = InputDecoder::new();
    decoder
        .add_writer_schema(SchemaId(8), writer)
        .expect("reordered writer resolves");
    assert_eq!(decoder.decode(&frame(8, &body)).expect("decodes"), golden);
}

#[test]
fn promotes_an_int_timestamp_of_the_writer_to_the_reader_long() {
    let writer = PRODUCER_TO_PROCESSOR_SCHEMA.replace(r#""type": "long""#, r#""type": "int""#);
    assert_ne!(
        writer, PRODUCER_TO_PROCESSOR_SCHEMA,
        "the test edits the timestamp type"
    );
    let body = apache_body(
        &writer,
        record(&[
            ("origin_service_id", string("p")),
            ("origin_service_type", string("A")),
            ("destination_service_type", string("B")),
            ("event_timestamp", Value::Int(-5)),
            ("payload", string("")),
        ]),
    );
    let decoder = InputDecoder::new();
    decoder
        .add_writer_schema(SchemaId(3), &writer)
        .expect("int promotes to long");
    let record = decoder.decode(&frame(3, &body)).expect("decodes");
    assert_eq!(record.event_timestamp, -5);
}

#[test]
fn writer_with_docs_logical_type_or_other_namespace_decodes_the_same() {
    // Documentation, logical types and namespaces do not change the binary encoding; the
    // first two take the fast path (same canonical form), the namespace change the resolving
    // path.
    let variants = [
        PRODUCER_TO_PROCESSOR_SCHEMA.replace("Opaque payload", "Some other doc"),
        PRODUCER_TO_PROCESSOR_SCHEMA.replace(
            r#""type": "long""#,
            r#""type": {"type": "long", "logicalType": "timestamp-millis"}"#,
        ),
        PRODUCER_TO_PROCESSOR_SCHEMA.replace(r#""service_messages""#, r#""other.namespace""#),
        PRODUCER_TO_PROCESSOR_SCHEMA
            .replace(r#""service_messages""#, r#""other.namespace""#)
            .replace(
                r#""type": "long""#,
                r#""type": {"type": "long", "logicalType": "timestamp-millis"}"#,
            ),
    ];
    let paths = [
        ReadPath::Fast,
        ReadPath::Fast,
        ReadPath::Resolving,
        ReadPath::Resolving,
    ];
    let decoder = InputDecoder::new();
    for (index, writer) in variants.iter().enumerate() {
        assert_ne!(
            writer, PRODUCER_TO_PROCESSOR_SCHEMA,
            "variant {index} edits the schema"
        );
        let id = 10 + u32::try_from(index).expect("small");
        decoder
            .add_writer_schema(SchemaId(id), writer)
            .expect("variant resolves");
        assert_eq!(
            decoder.read_path(SchemaId(id)),
            Some(paths[index]),
            "{index}"
        );
        let framed = frame(id, &golden_input()[5..]);
        assert_eq!(
            decoder.decode(&framed).expect("decodes"),
            golden_input_record(),
            "{index}"
        );
    }
}

#[test]
fn incompatible_writer_schema_is_a_typed_error() {
    let writer = PRODUCER_TO_PROCESSOR_SCHEMA.replace(
        r#"{"name": "payload", "type": "string""#,
        r#"{"name": "payload", "type": "int""#,
    );
    assert_ne!(
        writer, PRODUCER_TO_PROCESSOR_SCHEMA,
        "the test edits the payload type"
    );
    let decoder = InputDecoder::new();
    let err = decoder
        .add_writer_schema(SchemaId(9), &writer)
        .expect_err("int payload cannot be read as string");
    match &err {
        CodecError::IncompatibleSchema {
            schema_id,
            subject,
            reader,
            reason,
        } => {
            assert_eq!(*schema_id, SchemaId(9));
            assert_eq!(*subject, None);
            assert_eq!(*reader, "service_messages.ProducerToProcessor");
            assert!(
                reason.contains("payload"),
                "reason names the field: {reason}"
            );
        }
        other => panic!("expected IncompatibleSchema, got {other:?}"),
    }
    assert_eq!(err.class(), ErrorClass::Poison);
    assert!(err.to_string().contains("schema id 9"), "{err}");
    // Remembered: decoding a record of that id fails the same way, without a registry.
    let later = decoder
        .decode(&frame(9, &[0x00]))
        .expect_err("still incompatible");
    assert!(matches!(
        later,
        CodecError::IncompatibleSchema {
            schema_id: SchemaId(9),
            ..
        }
    ));
}

#[test]
fn writers_missing_a_field_or_with_another_record_name_are_incompatible() {
    let missing_payload = r#"{"type":"record","name":"ProducerToProcessor","namespace":"service_messages",
      "fields":[{"name":"origin_service_id","type":"string"},{"name":"origin_service_type","type":"string"},
      {"name":"destination_service_type","type":"string"},{"name":"event_timestamp","type":"long"}]}"#;
    let renamed = PRODUCER_TO_PROCESSOR_SCHEMA.replace(r#""ProducerToProcessor""#, r#""Other""#);
    let decoder = InputDecoder::new();
    for (id, writer) in [
        (20, missing_payload),
        (21, renamed.as_str()),
        (22, r#""string""#),
    ] {
        let err = decoder
            .add_writer_schema(SchemaId(id), writer)
            .expect_err("incompatible");
        assert!(
            matches!(err, CodecError::IncompatibleSchema { schema_id, .. } if schema_id == SchemaId(id)),
            "{id}: {err:?}"
        );
    }
}

#[test]
fn invalid_writer_schema_json_is_a_typed_poison_error() {
    let decoder = InputDecoder::new();
    for (id, writer) in [
        (30, "{not json"),
        (31, r#"{"type":"record","name":"R"}"#),
        (32, ""),
    ] {
        let err = decoder
            .add_writer_schema(SchemaId(id), writer)
            .expect_err("invalid");
        assert!(
            matches!(err, CodecError::InvalidWriterSchema { .. }),
            "{id}: {err:?}"
        );
        assert!(err.is_poison());
    }
}

#[test]
fn writer_union_null_cannot_be_read_as_a_reader_string() {
    let writer = PRODUCER_TO_PROCESSOR_SCHEMA.replace(
        r#"{"name": "payload", "type": "string""#,
        r#"{"name": "payload", "type": ["null", "string"]"#,
    );
    assert_ne!(
        writer, PRODUCER_TO_PROCESSOR_SCHEMA,
        "the test edits the payload type"
    );
    let decoder = InputDecoder::new();
    decoder
        .add_writer_schema(SchemaId(40), &writer)
        .expect("a union that may hold a string is partially compatible");
    let body = |payload: Value| {
        apache_body(
            &writer,
            record(&[
                ("origin_service_id", string("p")),
                ("origin_service_type", string("A")),
                ("destination_service_type", string("B")),
                ("event_timestamp", Value::Long(1)),
                ("payload", payload),
            ]),
        )
    };
    let ok = decoder
        .decode(&frame(40, &body(Value::Union(1, Box::new(string("x"))))))
        .expect("string branch decodes");
    assert_eq!(ok.payload, "x");
    let err = decoder
        .decode(&frame(40, &body(Value::Union(0, Box::new(Value::Null)))))
        .expect_err("null branch cannot be a string");
    assert!(
        matches!(
            err,
            CodecError::Unreadable {
                schema_id: SchemaId(40),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_poison());
}

#[test]
fn framing_errors_are_poison_and_name_the_problem() {
    let decoder = input_decoder_with_reader_schema(1);
    type Expected = fn(&CodecError) -> bool;
    let cases: [(&[u8], Expected); 3] = [
        (&[], |e| matches!(e, CodecError::Empty)),
        (&[0, 0, 0], |e| matches!(e, CodecError::TooShort { len: 3 })),
        (b"{\"json\":1}", |e| {
            matches!(e, CodecError::BadMagicByte { found: b'{' })
        }),
    ];
    for (input, expected) in cases {
        let err = decoder.decode(input).expect_err("bad framing");
        assert!(expected(&err), "{input:?}: {err:?}");
        assert!(err.is_poison() && !err.is_transient());
        assert_eq!(err.schema_id(), None);
    }
}

#[test]
fn truncated_golden_vector_reports_the_offset_of_the_cut_value() {
    let decoder = input_decoder_with_reader_schema(1);
    let golden = golden_input();
    // Cut inside the payload string: its length prefix is at byte 40 of the framed value
    // (5 header bytes, three strings of 11, 8 and 10 bytes, a 6-byte timestamp).
    let err = decoder
        .decode(&golden[..golden.len() - 1])
        .expect_err("truncated");
    match err {
        CodecError::Malformed {
            schema_id,
            offset,
            reason,
        } => {
            assert_eq!(schema_id, SchemaId(1));
            assert_eq!(offset, 40);
            assert!(reason.contains("length"), "{reason}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    let mut trailing = golden.clone();
    trailing.push(0);
    let err = decoder.decode(&trailing).expect_err("trailing byte");
    assert!(
        matches!(err, CodecError::Malformed { offset, .. } if offset == golden.len()),
        "{err:?}"
    );
}

#[test]
fn schema_id_of_reads_the_header_only() {
    assert_eq!(
        InputDecoder::schema_id_of(&golden_input()).expect("framed"),
        SchemaId(1)
    );
    assert_eq!(
        InputDecoder::schema_id_of(&[0, 0, 1, 0, 0]).expect("framed"),
        SchemaId(65536)
    );
    assert!(InputDecoder::schema_id_of(&[1, 0, 0, 0, 0]).is_err());
}

#[tokio::test]
async fn unknown_schema_id_is_transient_until_loaded_then_decodes() {
    let registry = ScriptedRegistry::new()
        .answer(1, [Answer::Schema(PRODUCER_TO_PROCESSOR_SCHEMA.to_owned())]);
    let decoder = InputDecoder::new();
    let err = decoder.decode(&golden_input()).expect_err("not loaded");
    assert!(matches!(
        err,
        CodecError::UnknownSchemaId {
            schema_id: SchemaId(1)
        }
    ));
    assert!(err.is_transient());
    assert!(!decoder.is_loaded(SchemaId(1)));

    decoder.load(SchemaId(1), &registry).await.expect("loads");
    assert!(decoder.is_loaded(SchemaId(1)));
    assert_eq!(
        decoder.decode(&golden_input()).expect("decodes"),
        golden_input_record()
    );
    decoder
        .load(SchemaId(1), &registry)
        .await
        .expect("already loaded");
    assert_eq!(registry.calls(), 1, "a loaded id is never fetched again");
}

#[tokio::test]
async fn unknown_id_in_the_registry_is_remembered_as_poison() {
    let registry = ScriptedRegistry::new().answer(42, [Answer::NotFound]);
    let decoder = load_unknown_id_42_three_times(&registry).await;
    let err = decoder.decode(&frame(42, b"")).expect_err("no such id");
    assert!(matches!(err, CodecError::SchemaNotFound { .. }));
    assert_eq!(
        registry.calls(),
        1,
        "a poison id does not hammer the registry"
    );
}

#[tokio::test]
async fn registry_outage_is_transient_and_not_remembered() {
    let registry = ScriptedRegistry::new().answer(
        1,
        [
            Answer::Down,
            Answer::Schema(PRODUCER_TO_PROCESSOR_SCHEMA.to_owned()),
        ],
    );
    let decoder = InputDecoder::new();
    let err = decoder
        .load(SchemaId(1), &registry)
        .await
        .expect_err("registry down");
    assert!(
        matches!(
            err,
            CodecError::Registry {
                schema_id: Some(SchemaId(1)),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(matches!(
        decoder.decode(&golden_input()),
        Err(CodecError::UnknownSchemaId { .. })
    ));

    decoder
        .load(SchemaId(1), &registry)
        .await
        .expect("registry back");
    assert_eq!(
        decoder.decode(&golden_input()).expect("decodes"),
        golden_input_record()
    );
    assert_eq!(registry.calls(), 2);
}

#[tokio::test]
async fn incompatible_schema_from_the_registry_names_its_subject() {
    let writer = PRODUCER_TO_PROCESSOR_SCHEMA.replace(r#""type": "long""#, r#""type": "string""#);
    let registry = ScriptedRegistry::new()
        .answer(5, [Answer::Schema(writer)])
        .subject(5, "producer.to.processor-value");
    let decoder = InputDecoder::new();
    let err = decoder
        .load(SchemaId(5), &registry)
        .await
        .expect_err("incompatible");
    match &err {
        CodecError::IncompatibleSchema { subject, .. } => {
            assert_eq!(subject.as_deref(), Some("producer.to.processor-value"));
        }
        other => panic!("expected IncompatibleSchema, got {other:?}"),
    }
    assert!(
        err.to_string().contains("producer.to.processor-value"),
        "{err}"
    );
    assert!(decoder.load(SchemaId(5), &registry).await.is_err());
    assert_eq!(registry.calls(), 1);
}

#[tokio::test]
async fn concurrent_loads_of_one_id_share_the_outcome() {
    let registry = std::sync::Arc::new(
        ScriptedRegistry::new()
            .answer(1, [Answer::Schema(PRODUCER_TO_PROCESSOR_SCHEMA.to_owned())])
            .delay(Duration::from_millis(20)),
    );
    let decoder = std::sync::Arc::new(InputDecoder::new());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (decoder, registry) = (decoder.clone(), registry.clone());
            tokio::spawn(async move { decoder.load(SchemaId(1), &registry).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("loads");
    }
    assert_eq!(
        decoder.decode(&golden_input()).expect("decodes"),
        golden_input_record()
    );
}

#[tokio::test]
async fn output_encoder_registers_its_schema_and_consumers_decode_it() {
    let registry = MemoryRegistry::new();
    registry
        .register("producer.to.processor-value", PRODUCER_TO_PROCESSOR_SCHEMA)
        .await
        .expect("registers");
    let encoder = OutputEncoder::register(&registry, "processor.to.consumer-value")
        .await
        .expect("registers");
    assert_eq!(encoder.schema_id(), SchemaId(2));
    let again = OutputEncoder::register(&registry, "processor.to.finance-value")
        .await
        .expect("same schema, other subject");
    assert_eq!(again.schema_id(), SchemaId(2), "the registry deduplicates");

    let framed = encoder.encode_to_vec(&golden_output_record());
    assert_eq!(framed, golden_output());
    let decoder = OutputDecoder::new();
    decoder
        .load(encoder.schema_id(), &registry)
        .await
        .expect("loads");
    assert_eq!(
        decoder.decode(&framed).expect("decodes"),
        golden_output_record()
    );
}

#[test]
fn input_encoder_output_decodes_with_the_input_decoder() {
    let record = ProducerToProcessor {
        origin_service_id: "ß-✓".into(),
        origin_service_type: String::new(),
        destination_service_type: "X".repeat(300),
        event_timestamp: i64::MIN,
        payload: "\0".into(),
    };
    let framed = InputEncoder::new(SchemaId(77)).encode_to_vec(&record);
    let decoder = input_decoder_with_reader_schema(77);
    assert_eq!(decoder.decode(&framed).expect("decodes"), record);
}

/// The golden input framed with `id`, which the registry below does not know at first.
fn golden_input_as(id: u32) -> Vec<u8> {
    frame(id, &golden_input()[5..])
}

#[tokio::test]
async fn not_found_with_a_time_to_live_is_remembered_until_rechecked() {
    let registry = ScriptedRegistry::new().answer(
        42,
        [
            Answer::NotFound,
            Answer::Schema(PRODUCER_TO_PROCESSOR_SCHEMA.to_owned()),
        ],
    );
    let decoder =
        InputDecoder::new().with_not_found_ttl(Duration::from_secs(3600), monotonic_clock());
    let err = decoder
        .load(SchemaId(42), &registry)
        .await
        .expect_err("not there yet");
    assert!(matches!(err, CodecError::SchemaNotFound { .. }), "{err:?}");
    let err = decoder
        .load(SchemaId(42), &registry)
        .await
        .expect_err("remembered");
    assert!(matches!(err, CodecError::SchemaNotFound { .. }), "{err:?}");
    let err = decoder
        .decode(&golden_input_as(42))
        .expect_err("remembered");
    assert!(matches!(err, CodecError::SchemaNotFound { .. }), "{err:?}");
    assert_eq!(registry.calls(), 1, "within its time to live, no request");

    decoder
        .recheck(SchemaId(42), &registry)
        .await
        .expect("the registry knows it now");
    assert_eq!(registry.calls(), 2);
    assert_eq!(
        decoder.decode(&golden_input_as(42)).expect("decodes"),
        golden_input_record()
    );
    assert_eq!(decoder.read_path(SchemaId(42)), Some(ReadPath::Fast));
}

#[tokio::test]
async fn not_found_past_its_time_to_live_is_unknown_again_and_loads_once_registered() {
    let registry = ScriptedRegistry::new().answer(
        42,
        [
            Answer::NotFound,
            Answer::Schema(PRODUCER_TO_PROCESSOR_SCHEMA.to_owned()),
        ],
    );
    // A zero time to live: stale as soon as remembered, no waiting in the test.
    let decoder = InputDecoder::new().with_not_found_ttl(Duration::ZERO, monotonic_clock());
    let err = decoder
        .load(SchemaId(42), &registry)
        .await
        .expect_err("not there yet");
    assert!(err.is_poison(), "{err:?}");
    assert!(!decoder.is_loaded(SchemaId(42)));
    let err = decoder.decode(&golden_input_as(42)).expect_err("stale");
    assert!(
        matches!(
            err,
            CodecError::UnknownSchemaId {
                schema_id: SchemaId(42)
            }
        ),
        "a stale not-found asks to be loaded again: {err:?}"
    );
    let record = decoder
        .decode_or_load(&golden_input_as(42), &registry)
        .await
        .expect("registered meanwhile");
    assert_eq!(record, golden_input_record());
    assert_eq!(registry.calls(), 2);
}

#[tokio::test]
async fn recheck_of_a_loaded_id_asks_nothing_and_a_bad_schema_stays_bad() {
    let registry = ScriptedRegistry::new()
        .answer(1, [Answer::Schema(PRODUCER_TO_PROCESSOR_SCHEMA.to_owned())])
        .answer(5, [Answer::Schema("not json".to_owned())]);
    let decoder = InputDecoder::new().with_not_found_ttl(Duration::ZERO, monotonic_clock());
    decoder.load(SchemaId(1), &registry).await.expect("loads");
    decoder
        .recheck(SchemaId(1), &registry)
        .await
        .expect("loaded");
    let err = decoder.load(SchemaId(5), &registry).await.expect_err("bad");
    assert!(
        matches!(err, CodecError::InvalidWriterSchema { .. }),
        "{err:?}"
    );
    let err = decoder
        .recheck(SchemaId(5), &registry)
        .await
        .expect_err("bad");
    assert!(
        matches!(err, CodecError::InvalidWriterSchema { .. }),
        "{err:?}"
    );
    assert_eq!(registry.calls(), 2, "only a not-found is asked for again");
}

#[tokio::test]
async fn decode_or_load_fetches_an_unknown_id_once() {
    let registry = ScriptedRegistry::new()
        .answer(1, [Answer::Schema(PRODUCER_TO_PROCESSOR_SCHEMA.to_owned())])
        .answer(42, [Answer::NotFound]);
    let decoder = InputDecoder::new();
    for _ in 0..3 {
        let record = decoder
            .decode_or_load(&golden_input(), &registry)
            .await
            .expect("decodes");
        assert_eq!(record, golden_input_record());
    }
    let err = decoder
        .decode_or_load(&frame(42, b""), &registry)
        .await
        .expect_err("unknown id");
    assert!(
        matches!(
            err,
            CodecError::SchemaNotFound {
                schema_id: SchemaId(42)
            }
        ),
        "{err:?}"
    );
    let err = decoder
        .decode_or_load(b"", &registry)
        .await
        .expect_err("empty");
    assert!(matches!(err, CodecError::Empty));
    assert_eq!(registry.calls(), 2);
}

#[test]
fn remembers_a_bounded_number_of_bad_schema_ids() {
    let decoder = InputDecoder::new();
    let limit = u32::try_from(avro_codec::MAX_REJECTED_SCHEMA_IDS).expect("small limit");
    for id in 0..limit {
        assert!(decoder.add_writer_schema(SchemaId(id), "{").is_err());
        assert_eq!(decoder.read_path(SchemaId(id)), Some(ReadPath::Rejected));
    }
    let err = decoder
        .add_writer_schema(SchemaId(limit), "{")
        .expect_err("still invalid");
    assert!(
        matches!(err, CodecError::InvalidWriterSchema { .. }),
        "{err:?}"
    );
    assert!(
        !decoder.is_loaded(SchemaId(limit)),
        "past the limit, bad ids are not remembered"
    );
    // Good ids are always remembered.
    decoder
        .add_writer_schema(SchemaId(limit + 1), PRODUCER_TO_PROCESSOR_SCHEMA)
        .expect("valid writer");
    assert_eq!(decoder.read_path(SchemaId(limit + 1)), Some(ReadPath::Fast));
}

/// The decoder's clock in these tests: time since the clock was made.
fn monotonic_clock() -> impl Fn() -> Duration + Send + Sync + 'static {
    let origin = std::time::Instant::now();
    move || origin.elapsed()
}

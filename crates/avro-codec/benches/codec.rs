//! Hot path of the router: frame check + decode of the input golden vector, and encode of the
//! output record into a reused buffer. Run with `cargo bench -p avro-codec --bench codec`.

use std::hint::black_box;

use avro_codec::{
    InputDecoder, OutputEncoder, PRODUCER_TO_PROCESSOR_SCHEMA, ProcessorToConsumer,
    ProducerToProcessor, SchemaId,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The `ProducerToProcessor` golden vector of wire-format.md (schema id 1, 121 bytes).
const GOLDEN_INPUT_HEX: &str = "00000000011470726f64756365722d310e46494e414e4345124d41524b4554494e4780d0cfba85606464756d6d792d7061796c6f61642030303030303030302d303030302d303030302d303030302d303030303030303030303030";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn route(input: ProducerToProcessor) -> ProcessorToConsumer {
    ProcessorToConsumer {
        producer_service_id: input.origin_service_id,
        processor_service_id: "event-processor-1".to_owned(),
        destination_type: input.destination_service_type,
        producer_event_timestamp: input.event_timestamp,
        processor_event_timestamp: 1_650_000_000_123,
        payload: input.payload,
    }
}

fn codec(c: &mut Criterion) {
    let framed = hex(GOLDEN_INPUT_HEX);
    let decoder = InputDecoder::new();
    decoder
        .add_writer_schema(SchemaId(1), PRODUCER_TO_PROCESSOR_SCHEMA)
        .expect("reader schema");
    let resolving = InputDecoder::new();
    resolving
        .add_writer_schema(
            SchemaId(1),
            &PRODUCER_TO_PROCESSOR_SCHEMA.replace("service_messages", "elsewhere"),
        )
        .expect("namespace change resolves");
    let encoder = OutputEncoder::new(SchemaId(2));
    let mut out = Vec::with_capacity(256);

    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_input", |b| {
        b.iter(|| decoder.decode(black_box(&framed)).expect("decodes"));
    });
    group.bench_function("decode_route_encode", |b| {
        b.iter(|| {
            let input = decoder.decode(black_box(&framed)).expect("decodes");
            out.clear();
            encoder.encode(&route(input), &mut out);
            black_box(out.len())
        });
    });
    group.bench_function("decode_input_borrowed", |b| {
        b.iter(|| {
            let decoded = decoder
                .decode_borrowed(black_box(&framed))
                .expect("decodes");
            black_box(decoded.view().payload.len())
        });
    });
    group.bench_function("decode_route_encode_borrowed", |b| {
        b.iter(|| {
            let decoded = decoder
                .decode_borrowed(black_box(&framed))
                .expect("decodes");
            let view = decoded.view();
            let output = router_core::map_borrowed(&view, "event-processor-1", 1_650_000_000_123);
            out.clear();
            encoder.encode_borrowed(&output, &mut out);
            black_box(out.len())
        });
    });
    let output = route(decoder.decode(&framed).expect("decodes"));
    group.bench_function("encode_output", |b| {
        b.iter(|| {
            out.clear();
            encoder.encode(black_box(&output), &mut out);
            black_box(out.len())
        });
    });
    group.bench_function("decode_input_resolving_path", |b| {
        b.iter(|| resolving.decode(black_box(&framed)).expect("decodes"));
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);

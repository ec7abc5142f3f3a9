//! `codec`: the processor's per-record CPU work with no I/O, on one thread, the way the
//! processor does it: decode the framed input borrowing its strings, `Router::decide_for` on
//! them, map to a borrowed output record (reading the clock), encode it into a fresh buffer. Records/s on one core is the ceiling the CPU puts on
//! the processor before Kafka costs anything.

use crate::events::{self, key_of, now_us};
use anyhow::{Context, Result, bail};
use avro_codec::{InputDecoder, InputEncoder, OutputEncoder, SchemaRegistry};
use router_core::{Decision, ProcessorToConsumerRef, Router, map_borrowed};
use schema_registry::MemoryRegistry;
use serde_json::json;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long `codec` runs, or how many records (fixed work, for instruction counts).
#[derive(Debug, Clone, Copy)]
pub(crate) enum CodecWork {
    Seconds(f64),
    Records(u64),
}

/// Distinct input values cycled through: all tenant × destination pairs, several ids.
const DISTINCT_INPUTS: u64 = 900;
pub(crate) const ROUTING: &str = r#"
version = 1
[destinations.FINANCE]
outputs = [{ topic = "processor.to.finance" }]
[destinations.MARKETING]
outputs = [{ topic = "processor.to.marketing" }]
[destinations.LOGISTICS]
outputs = [{ topic = "processor.to.logistics" }]
[policy]
mode = "deny-by-default"
[[policy.allow]]
origin_service_type = "FINANCE"
destinations = ["*"]
[[policy.allow]]
origin_service_type = "MARKETING"
destinations = ["*"]
[[policy.allow]]
origin_service_type = "LOGISTICS"
destinations = ["*"]
"#;

pub(crate) async fn run(work: CodecWork) -> Result<serde_json::Value> {
    let registry = MemoryRegistry::new();
    let input_encoder = InputEncoder::register(&registry, "bench.in-value").await?;
    let output_id = registry
        .register(
            "processor.to.consumer-value",
            avro_codec::PROCESSOR_TO_CONSUMER_SCHEMA,
        )
        .await?;
    let output_encoder = OutputEncoder::new(output_id);
    let decoder = InputDecoder::new();
    decoder
        .load(input_encoder.schema_id(), &registry)
        .await
        .context("cannot load the input schema")?;
    let router = Router::from_toml_str(ROUTING).context("bench routing table")?;
    let inputs: Vec<(Vec<u8>, Vec<u8>)> = (0..DISTINCT_INPUTS)
        .map(|id| {
            let event = events::event(id, now_us());
            (key_of(&event), input_encoder.encode_to_vec(&event))
        })
        .collect();

    let mut records = 0u64;
    let mut output_bytes = 0u64;
    let started = Instant::now();
    let deadline = match work {
        CodecWork::Seconds(seconds) => Some(started + Duration::from_secs_f64(seconds)),
        CodecWork::Records(_) => None,
    };
    let limit = match work {
        CodecWork::Seconds(_) => u64::MAX,
        CodecWork::Records(count) => count,
    };
    'run: loop {
        for (key, value) in &inputs {
            if records >= limit {
                break 'run;
            }
            let outputs = route_one(&decoder, &router, &output_encoder, key, value)?;
            output_bytes += outputs;
            records += 1;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({
        "records": records,
        "seconds": seconds,
        "records_per_sec": records as f64 / seconds.max(1e-9),
        "ns_per_record": seconds * 1e9 / records.max(1) as f64,
        "input_bytes_mean": inputs.iter().map(|(_, value)| value.len()).sum::<usize>() as f64 / inputs.len() as f64,
        "output_bytes_mean": output_bytes as f64 / records.max(1) as f64,
    }))
}

/// The processor's work for one record; returns the bytes written.
fn route_one(
    decoder: &InputDecoder,
    router: &Router,
    encoder: &OutputEncoder,
    key: &[u8],
    value: &[u8],
) -> Result<u64> {
    let decoded = decoder.decode_borrowed(black_box(value))?;
    let event = decoded.view();
    let decision = router.decide_for(
        event.origin_service_type,
        event.origin_service_id,
        event.destination_service_type,
    );
    let targets = match decision {
        Decision::Route(targets) => targets,
        Decision::DeadLetter(reason) => bail!("bench event dead-lettered: {reason}"),
    };
    let output = map_borrowed(&event, "event-processor-1", pipeline_clock_ms());
    let mut written = 0;
    for _target in targets {
        written += encode(encoder, &output, key);
    }
    Ok(written)
}

fn encode(encoder: &OutputEncoder, output: &ProcessorToConsumerRef<'_>, key: &[u8]) -> u64 {
    // As the processor: a fresh value buffer and the key per output record.
    let mut payload = Vec::new();
    encoder.encode_borrowed(output, &mut payload);
    let key = black_box(key.to_vec());
    black_box(&payload);
    (payload.len() + key.len()) as u64
}

fn pipeline_clock_ms() -> i64 {
    now_us() / 1000
}

//! Hostile input values for the garbage scenario, in Confluent framing (magic byte 0, 4-byte
//! schema id, Avro body) or deliberately not. Written hex-encoded, one per line, for
//! `event-producer --poison-values`.

use super::cluster::Cluster;
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// What the values are, in the order they are generated.
pub(crate) const KINDS: [&str; 7] = [
    "truncated frames",
    "wrong magic byte",
    "unknown schema ids",
    "huge declared lengths",
    "nested-depth bomb",
    "empty value",
    "random bytes",
];

/// Nesting levels of the depth bomb: deep enough to overflow any stack a recursive decoder
/// runs on (one byte per level).
const BOMB_DEPTH: usize = 10_000;
const RANDOM_VALUES: usize = 8;

/// The input contract plus one field the reader does not know whose type is recursive: the
/// writer schema resolves against the reader's, so a decoder must walk (skip) the whole
/// nesting.
const DEPTH_BOMB_SCHEMA: &str = r#"{"type":"record","name":"ProducerToProcessor","namespace":"service_messages","fields":[
 {"name":"origin_service_id","type":"string"},{"name":"origin_service_type","type":"string"},
 {"name":"destination_service_type","type":"string"},{"name":"event_timestamp","type":"long"},
 {"name":"payload","type":"string"},
 {"name":"nest","type":{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}}]}"#;

/// The values, each kind in a few variants. Registers the input schema under the run's
/// subject (as the producer does, same id) and the depth bomb's writer schema.
pub(crate) fn values(cluster: &Cluster, input_topic: &str) -> Result<Vec<Vec<u8>>> {
    let url = cluster.registry_url();
    let input_schema = std::fs::read_to_string(
        crate::workspace_root()
            .join("schemas")
            .join("producer.to.processor.avsc"),
    )?;
    let input_id = register(&url, &format!("{input_topic}-value"), &input_schema)?;
    let bomb_id = register(&url, "chaos-depth-bomb-value", DEPTH_BOMB_SCHEMA)?;
    let body = event_body();
    let framed = |id: u32, body: &[u8]| {
        let mut value = vec![0u8];
        value.extend(id.to_be_bytes());
        value.extend(body);
        value
    };
    let mut values = vec![
        // Truncated frames: the magic byte alone, half a schema id, a frame without a body,
        // half a body.
        vec![0],
        vec![0, 0, 0],
        framed(input_id, &[]),
        framed(input_id, &body[..body.len() / 2]),
        // Wrong magic byte before an otherwise good value.
        {
            let mut value = framed(input_id, &body);
            value[0] = 1;
            value
        },
        // Schema ids the registry never gave out.
        framed(0x7fff_fff0, &body),
        framed(u32::MAX, &body),
        // A first string declaring 2^40 bytes, and one declaring a negative length.
        framed(input_id, &zigzag(1 << 40)),
        framed(input_id, &[zigzag(-5), body.clone()].concat()),
        // Nested-depth bomb: the good fields, then BOMB_DEPTH times "the non-null branch".
        framed(
            bomb_id,
            &[body.clone(), vec![2; BOMB_DEPTH], vec![0]].concat(),
        ),
        // No value at all (the producer sends an empty value, not a Kafka null).
        Vec::new(),
    ];
    let mut state: u64 = 0x5eed_cafe_f00d_d00d;
    for _ in 0..RANDOM_VALUES {
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let length = 1 + usize::try_from(next() % 256).unwrap_or(0);
        values.push((0..length).map(|_| next().to_le_bytes()[0]).collect());
    }
    Ok(values)
}

pub(crate) fn write_hex(file: &Path, values: &[Vec<u8>]) -> Result<()> {
    let mut text = String::new();
    for value in values {
        for byte in value {
            let _ = write!(text, "{byte:02x}");
        }
        text.push('\n');
    }
    std::fs::write(file, text).with_context(|| format!("cannot write {}", file.display()))
}

/// A good `ProducerToProcessor` body (Avro binary, no framing).
fn event_body() -> Vec<u8> {
    let mut body = Vec::new();
    for text in ["hostile-1", "FINANCE", "FINANCE"] {
        body.extend(avro_string(text));
    }
    body.extend(zigzag(1_700_000_000_000));
    body.extend(avro_string("hostile payload"));
    body
}

fn avro_string(text: &str) -> Vec<u8> {
    let mut bytes = zigzag(i64::try_from(text.len()).unwrap_or(0));
    bytes.extend(text.as_bytes());
    bytes
}

/// Avro's variable-length zig-zag encoding of a long.
fn zigzag(number: i64) -> Vec<u8> {
    let mut rest = ((number << 1) ^ (number >> 63)) as u64;
    let mut bytes = Vec::new();
    loop {
        let low = (rest & 0x7f) as u8;
        rest >>= 7;
        if rest == 0 {
            bytes.push(low);
            return bytes;
        }
        bytes.push(low | 0x80);
    }
}

fn register(registry_url: &str, subject: &str, schema: &str) -> Result<u32> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{registry_url}/subjects/{subject}/versions");
    let body = serde_json::json!({ "schema": schema, "schemaType": "AVRO" }).to_string();
    let mut response = agent
        .post(&url)
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .send(&body)
        .with_context(|| format!("cannot reach the registry at {url}"))?;
    let status = response.status();
    let text = response.body_mut().read_to_string()?;
    if !status.is_success() {
        bail!("registering {subject} failed with {status}: {text}");
    }
    let answer: serde_json::Value = serde_json::from_str(&text)?;
    answer["id"]
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .with_context(|| format!("the registry's answer for {subject} has no id: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_matches_the_avro_specification() {
        assert_eq!(zigzag(0), [0]);
        assert_eq!(zigzag(-1), [1]);
        assert_eq!(zigzag(1), [2]);
        assert_eq!(zigzag(-64), [0x7f]);
        assert_eq!(zigzag(64), [0x80, 0x01]);
    }
}

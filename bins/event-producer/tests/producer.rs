//! The `event-producer` binary against the local stack (each test on its own topic), and its
//! failures when the broker, topic or registry is unusable; signed and spoofed events checked
//! with `tenant-auth`, as the processor will.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use avro_codec::{CodecError, InputDecoder, ProducerToProcessor};
use kafka_adapters::{KafkaConfig, ReadUntil, TopicRecord, read_topic};
use schema_registry::{HttpSchemaRegistry, RegistryClientConfig};
use tenant_auth::{AuthFailure, Claim, Freshness, HEADERS, KeyRing, Verifier};
use test_support::{
    Finished, Stack, create_topics, require_stack, run_to_completion, scratch_dir, unique_name,
};

const PATIENCE: Duration = Duration::from_secs(60);

/// Runs the producer binary to completion (killed after [`PATIENCE`]).
fn run_producer(args: &[&str]) -> Finished {
    run_to_completion(env!("CARGO_BIN_EXE_event-producer"), args, PATIENCE)
}

/// Runs the producer against `stack`, writing to `topic`, with `more` flags.
fn run_producer_on(stack: &Stack, topic: &str, more: &[&str]) -> Finished {
    let mut args = vec![
        "--bootstrap-servers",
        &stack.kafka_bootstrap,
        "--schema-registry-url",
        &stack.registry_url,
        "--topic",
        topic,
    ];
    args.extend_from_slice(more);
    run_producer(&args)
}

async fn create_topic(stack: &Stack) -> String {
    let topic = unique_name("ep-in");
    let kafka = KafkaConfig::new(stack.kafka_bootstrap.clone());
    create_topics(&kafka, [topic.as_str()], 3).await;
    topic
}

/// A record of the topic: key, and the decoded value or why it is undecodable.
struct Stored {
    partition: i32,
    offset: i64,
    key: String,
    value: Result<ProducerToProcessor, CodecError>,
}

async fn read_all(stack: &Stack, topic: &str, count: usize) -> Vec<Stored> {
    let config = KafkaConfig::new(stack.kafka_bootstrap.clone());
    let records = read_topic(&config, topic, ReadUntil::Count(count), PATIENCE)
        .await
        .expect("records readable");
    let registry = HttpSchemaRegistry::new(RegistryClientConfig::new(stack.registry_url.clone()))
        .expect("registry client");
    let decoder = InputDecoder::new();
    let mut stored = Vec::new();
    for record in records {
        let value = record.payload.unwrap_or_default();
        if let Ok(schema_id) = InputDecoder::schema_id_of(&value) {
            decoder
                .load(schema_id, &registry)
                .await
                .expect("writer schema loads");
        }
        stored.push(Stored {
            partition: record.partition,
            offset: record.offset,
            key: String::from_utf8(record.key.unwrap_or_default()).expect("UTF-8 key"),
            value: decoder.decode(&value),
        });
    }
    stored
}

fn manifest_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("manifest written")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

fn field<'a>(line: &'a serde_json::Value, name: &str) -> &'a str {
    line[name]
        .as_str()
        .unwrap_or_else(|| panic!("manifest field {name} in {line}"))
}

#[tokio::test]
async fn two_tenants_events_are_acknowledged_round_robin_and_listed_in_the_manifest() {
    let stack = require_stack!();
    let topic = create_topic(&stack).await;
    let manifest = scratch_dir("event-producer-test").join("manifest.jsonl");
    let finished = run_producer_on(
        &stack,
        &topic,
        &[
            "--tenant",
            "FINANCE:f-1",
            "--tenant",
            "MARKETING:m-1",
            "--destinations",
            "finance,marketing,logistics",
            "--count",
            "6",
            "--manifest",
            manifest.to_str().expect("UTF-8 path"),
        ],
    );
    finished.assert_code(0);
    assert!(
        finished.stdout.contains("sent=12 acknowledged=12 failed=0"),
        "{}",
        finished.stdout
    );

    let lines = manifest_lines(&manifest);
    assert_eq!(lines.len(), 12);
    let mut per_tenant_and_destination: BTreeMap<(String, String), usize> = BTreeMap::new();
    for line in &lines {
        *per_tenant_and_destination
            .entry((
                field(line, "tenant_id").to_owned(),
                field(line, "destination").to_owned(),
            ))
            .or_default() += 1;
    }
    let expected: BTreeMap<(String, String), usize> = ["f-1", "m-1"]
        .into_iter()
        .flat_map(|tenant| {
            ["FINANCE", "MARKETING", "LOGISTICS"]
                .map(|destination| ((tenant.to_owned(), destination.to_owned()), 2))
        })
        .collect();
    assert_eq!(per_tenant_and_destination, expected);

    let stored: HashMap<String, Stored> = read_all(&stack, &topic, 12)
        .await
        .into_iter()
        .map(|record| {
            let event = record.value.as_ref().expect("every value decodes");
            let id = event
                .payload
                .strip_prefix("dummy-payload ")
                .expect("payload format")
                .to_owned();
            (id, record)
        })
        .collect();
    assert_eq!(stored.len(), 12, "12 distinct ids on the topic");
    for line in &lines {
        let record = &stored[field(line, "id")];
        let event = record.value.as_ref().expect("decoded");
        assert_eq!(record.key, field(line, "key"));
        assert_eq!(
            record.key,
            format!(
                "{}:{}",
                field(line, "tenant_id"),
                field(line, "destination")
            )
        );
        assert_eq!(event.origin_service_id, field(line, "tenant_id"));
        assert_eq!(event.origin_service_type, field(line, "tenant_type"));
        assert_eq!(event.destination_service_type, field(line, "destination"));
        assert_eq!(
            i64::from(record.partition),
            line["partition"].as_i64().expect("partition")
        );
        assert_eq!(record.offset, line["offset"].as_i64().expect("offset"));
    }
}

#[tokio::test]
async fn prototype_command_line_sends_to_its_destinations_in_turn() {
    let stack = require_stack!();
    let topic = create_topic(&stack).await;
    let finished = run_producer(&[
        "-bootstrap_server",
        &stack.kafka_bootstrap,
        "-schema_registry_url",
        &stack.registry_url,
        "-target_topic",
        &topic,
        "-origin_service_type",
        "financial",
        "-origin_service_id",
        "123456",
        "-list_of_destinations",
        "FINANCE",
        "marketing",
        "-amount_of_messages",
        "4",
        "-sleep_between_messages_in_seconds",
        "0",
        "-log_level",
        "INFO",
    ]);
    finished.assert_code(0);
    let mut keys: Vec<String> = read_all(&stack, &topic, 4)
        .await
        .into_iter()
        .map(|record| {
            let event = record.value.expect("decodes");
            assert_eq!(event.origin_service_type, "financial");
            assert_eq!(
                record.key,
                format!("123456:{}", event.destination_service_type)
            );
            record.key
        })
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "123456:FINANCE",
            "123456:FINANCE",
            "123456:MARKETING",
            "123456:MARKETING"
        ]
    );
}

#[tokio::test]
async fn poison_values_reach_the_topic_without_the_magic_byte_and_stay_out_of_the_manifest() {
    let stack = require_stack!();
    let topic = create_topic(&stack).await;
    let manifest = scratch_dir("event-producer-test").join("manifest.jsonl");
    let finished = run_producer_on(
        &stack,
        &topic,
        &[
            "--count",
            "3",
            "--poison",
            "2",
            "--manifest",
            manifest.to_str().expect("UTF-8 path"),
        ],
    );
    finished.assert_code(0);
    assert!(
        finished.stdout.contains("events=3 poison=2"),
        "{}",
        finished.stdout
    );
    let stored = read_all(&stack, &topic, 5).await;
    let poison: Vec<&Stored> = stored
        .iter()
        .filter(|record| matches!(record.value, Err(CodecError::BadMagicByte { .. })))
        .collect();
    assert_eq!(poison.len(), 2);
    assert!(
        poison
            .iter()
            .all(|record| record.key.starts_with("poison:"))
    );
    assert_eq!(
        stored.iter().filter(|record| record.value.is_ok()).count(),
        3
    );
    assert_eq!(manifest_lines(&manifest).len(), 3);
}

#[tokio::test]
async fn rate_spaces_the_sends() {
    let stack = require_stack!();
    let topic = create_topic(&stack).await;
    let finished = run_producer_on(&stack, &topic, &["--count", "20", "--rate", "40"]);
    finished.assert_code(0);
    let elapsed: f64 = finished
        .stdout
        .split_whitespace()
        .find_map(|field| field.strip_prefix("elapsed_s="))
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("elapsed_s in {}", finished.stdout));
    // 20 sends at 40/s: 19 intervals of 25 ms.
    assert!(elapsed >= 0.47, "took {elapsed} s");
}

#[tokio::test]
async fn missing_topic_is_a_one_line_error() {
    let stack = require_stack!();
    let topic = unique_name("ep-never-created");
    let finished = run_producer_on(&stack, &topic, &[]);
    finished.assert_code(3);
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains(&format!("topic `{topic}` does not exist")),
        "{}",
        finished.stderr
    );
}

#[tokio::test]
async fn unreachable_registry_is_a_one_line_error() {
    let stack = require_stack!();
    let topic = create_topic(&stack).await;
    let finished = run_producer(&[
        "--bootstrap-servers",
        &stack.kafka_bootstrap,
        "--schema-registry-url",
        "http://127.0.0.1:1",
        "--connect-timeout-ms",
        "1000",
        "--topic",
        &topic,
    ]);
    finished.assert_code(3);
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .starts_with("error: cannot reach the schema registry at http://127.0.0.1:1"),
        "{}",
        finished.stderr
    );
}

#[test]
fn unreachable_broker_is_a_one_line_error_within_the_connect_timeout() {
    let started = Instant::now();
    let finished = run_producer(&[
        "--bootstrap-servers",
        "127.0.0.1:1",
        "--connect-timeout-ms",
        "1500",
    ]);
    finished.assert_code(3);
    assert!(
        finished
            .stderr
            .lines()
            .any(|line| line.starts_with("error: cannot reach the Kafka broker at 127.0.0.1:1")),
        "{}",
        finished.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

const FINANCE_SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const MARKETING_SECRET: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

/// The processor's key file for FINANCE:f-1 and MARKETING:m-1, in a scratch directory.
fn write_key_file() -> std::path::PathBuf {
    let path = scratch_dir("event-producer-test").join("tenant-keys.toml");
    let text = format!(
        "[[key]]\nid = \"finance-1\"\nservice_type = \"FINANCE\"\nsecret = \"{FINANCE_SECRET}\"\n\n\
         [[key]]\nid = \"marketing-m1\"\nservice_type = \"MARKETING\"\nservice_id = \"m-1\"\n\
         secret = \"{MARKETING_SECRET}\"\n"
    );
    std::fs::write(&path, text).expect("key file written");
    path
}

fn wall_clock_ms() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch");
    i64::try_from(elapsed.as_millis()).expect("fits")
}

/// Reads `count` records of `topic` and verifies each as the processor would: the claim is the
/// decoded event's origin, checked against the key file. Returns (payload id, result) pairs.
async fn verify_all(
    stack: &Stack,
    topic: &str,
    count: usize,
    key_file: &Path,
) -> Vec<(String, Result<String, AuthFailure>)> {
    let config = KafkaConfig::new(stack.kafka_bootstrap.clone());
    let records: Vec<TopicRecord> = read_topic(&config, topic, ReadUntil::Count(count), PATIENCE)
        .await
        .expect("records readable");
    let ring = KeyRing::from_toml_str(&std::fs::read_to_string(key_file).expect("key file"))
        .expect("valid key file");
    let verifier = Verifier::new(ring, Freshness::default());
    let registry = HttpSchemaRegistry::new(RegistryClientConfig::new(stack.registry_url.clone()))
        .expect("registry client");
    let decoder = InputDecoder::new();
    let mut results = Vec::new();
    for record in records {
        let value = record.payload.clone().unwrap_or_default();
        let schema_id = InputDecoder::schema_id_of(&value).expect("framed value");
        decoder
            .load(schema_id, &registry)
            .await
            .expect("writer schema loads");
        let event = decoder.decode(&value).expect("decodes");
        for name in HEADERS {
            let present = record
                .headers
                .iter()
                .filter(|(header, _)| header == name)
                .count();
            assert_eq!(present, 1, "header {name} once on every event");
        }
        let claim = Claim {
            service_type: &event.origin_service_type,
            service_id: &event.origin_service_id,
        };
        let headers = record
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice()));
        let verified = verifier
            .verify(
                claim,
                record.key.as_deref(),
                &value,
                headers,
                wall_clock_ms(),
            )
            .map(|tenant| tenant.key_id.to_string());
        let id = event
            .payload
            .strip_prefix("dummy-payload ")
            .expect("payload format")
            .to_owned();
        results.push((id, verified));
    }
    results
}

#[tokio::test]
async fn signed_events_carry_the_headers_and_verify_against_the_key_file() {
    let stack = require_stack!();
    let topic = create_topic(&stack).await;
    let key_file = write_key_file();
    let finished = run_producer_on(
        &stack,
        &topic,
        &[
            "--tenant",
            "FINANCE:f-1",
            "--tenant",
            "MARKETING:m-1",
            "--count",
            "3",
            "--auth-key-file",
            key_file.to_str().expect("UTF-8 path"),
        ],
    );
    finished.assert_code(0);
    let results = verify_all(&stack, &topic, 6, &key_file).await;
    let mut key_ids: Vec<String> = results
        .into_iter()
        .map(|(id, verified)| verified.unwrap_or_else(|failure| panic!("{id}: {failure}")))
        .collect();
    key_ids.sort();
    assert_eq!(
        key_ids,
        [
            "finance-1",
            "finance-1",
            "finance-1",
            "marketing-m1",
            "marketing-m1",
            "marketing-m1"
        ]
    );
}

#[tokio::test]
async fn spoofed_events_fail_verification_and_are_expected_dead_letters_in_the_manifest() {
    let stack = require_stack!();
    let topic = create_topic(&stack).await;
    let key_file = write_key_file();
    let dir = scratch_dir("event-producer-test");
    let secret_file = dir.join("finance.hex");
    std::fs::write(&secret_file, FINANCE_SECRET).expect("secret written");
    let manifest = dir.join("manifest.jsonl");
    let finished = run_producer_on(
        &stack,
        &topic,
        &[
            "--tenant",
            "FINANCE:f-1",
            "--count",
            "10",
            "--spoof-percent",
            "30",
            "--auth-key-id",
            "finance-1",
            "--auth-key-secret-file",
            secret_file.to_str().expect("UTF-8 path"),
            "--manifest",
            manifest.to_str().expect("UTF-8 path"),
        ],
    );
    finished.assert_code(0);
    assert!(
        finished.stdout.contains("events=10 poison=0") && finished.stdout.contains("spoofed=3"),
        "{}",
        finished.stdout
    );
    assert!(!finished.stderr.contains(FINANCE_SECRET) && !finished.stdout.contains(FINANCE_SECRET));

    let lines = manifest_lines(&manifest);
    assert_eq!(lines.len(), 10);
    let expected_dead: HashMap<&str, &str> = lines
        .iter()
        .filter(|line| !line["expected_dead_letter"].is_null())
        .map(|line| (field(line, "id"), field(line, "expected_dead_letter")))
        .collect();
    assert_eq!(expected_dead.len(), 3);
    assert!(
        expected_dead
            .values()
            .all(|reason| *reason == "unauthenticated")
    );
    for line in &lines {
        let spoofed = expected_dead.contains_key(field(line, "id"));
        let claimed_id = if spoofed { "f-1-spoofed" } else { "f-1" };
        assert_eq!(field(line, "tenant_id"), claimed_id, "{line}");
    }

    let results = verify_all(&stack, &topic, 10, &key_file).await;
    assert_eq!(results.len(), 10);
    for (id, verified) in results {
        if expected_dead.contains_key(id.as_str()) {
            assert_eq!(
                verified,
                Err(AuthFailure::IdentityMismatch {
                    signed: "FINANCE:f-1".to_owned(),
                    claimed: "FINANCE:f-1-spoofed".to_owned(),
                }),
                "{id}"
            );
        } else {
            assert_eq!(verified.as_deref(), Ok("finance-1"), "{id}");
        }
    }
}

#[test]
fn a_key_file_without_a_key_for_the_tenant_exits_with_usage_status() {
    let key_file = write_key_file();
    let finished = run_producer(&[
        "--tenant",
        "LOGISTICS:l-1",
        "--auth-key-file",
        key_file.to_str().expect("UTF-8 path"),
    ]);
    finished.assert_code(2);
    assert!(
        finished.stderr.contains("no key for tenant LOGISTICS:l-1"),
        "{}",
        finished.stderr
    );
}

#[test]
fn malformed_tenant_exits_with_usage_status() {
    let finished = run_producer(&["--tenant", "FINANCE"]);
    finished.assert_code(2);
    assert!(
        finished.stderr.contains("is not TYPE:ID"),
        "{}",
        finished.stderr
    );
}

//! The `event-consumer` binary against the local stack: records are produced straight into
//! fresh output and dead-letter topics with the kafka-adapters producer, then the binary reads,
//! prints and verifies them.

use std::ffi::OsStr;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use avro_codec::{InputEncoder, OutputEncoder, ProcessorToConsumer, ProducerToProcessor};
use kafka_adapters::{KafkaConfig, OutboundRecord, TopicAdmin, kafka_admin};
use schema_registry::{HttpSchemaRegistry, RegistryClientConfig};
use test_support::{
    FAST_GROUP_PROPERTIES, Finished, Stack, create_topics, produce_and_wait, require_stack,
    run_to_completion, scratch_dir, unique_name,
};

const PATIENCE: Duration = Duration::from_secs(90);

/// Fresh topics holding: `fin` ids a1, a2 (FINANCE), `mkt` id b1 (MARKETING), and on `dlq`
/// a poison value (`undecodable`) and the input event c1 refused by policy (`unauthorized`).
struct Fixture {
    stack: Stack,
    fin: String,
    mkt: String,
    dlq: String,
    dir: PathBuf,
}

impl Fixture {
    async fn new(stack: Stack) -> Self {
        let fixture = Self {
            fin: unique_name("ec-fin"),
            mkt: unique_name("ec-mkt"),
            dlq: unique_name("ec-dlq"),
            dir: scratch_dir("event-consumer-test"),
            stack,
        };
        let topics = [&fixture.fin, &fixture.mkt, &fixture.dlq].map(String::as_str);
        create_topics(&fixture.kafka(), topics, 3).await;
        fixture.produce().await;
        fixture
    }

    fn kafka(&self) -> KafkaConfig {
        KafkaConfig::new(self.stack.kafka_bootstrap.clone())
    }

    async fn produce(&self) {
        let registry =
            HttpSchemaRegistry::new(RegistryClientConfig::new(self.stack.registry_url.clone()))
                .expect("registry client");
        let output = OutputEncoder::register(&registry, "processor.to.consumer-value")
            .await
            .expect("output schema registered");
        let input = InputEncoder::register(&registry, "producer.to.processor-value")
            .await
            .expect("input schema registered");
        let outputs = [
            (&self.fin, "a1", "FINANCE"),
            (&self.fin, "a2", "FINANCE"),
            (&self.mkt, "b1", "MARKETING"),
        ];
        let mut records: Vec<OutboundRecord> = outputs
            .into_iter()
            .map(|(topic, id, destination)| OutboundRecord {
                topic: Arc::from(topic.as_str()),
                key: Some(format!("f-1:{destination}").into_bytes()),
                payload: output.encode_to_vec(&ProcessorToConsumer {
                    producer_service_id: "f-1".to_owned(),
                    processor_service_id: "event-processor-test".to_owned(),
                    destination_type: destination.to_owned(),
                    producer_event_timestamp: 1_650_000_000_000,
                    processor_event_timestamp: 1_650_000_000_050,
                    payload: format!("dummy-payload {id}"),
                }),
                headers: Vec::new(),
            })
            .collect();
        records.push(dead_letter(&self.dlq, b"poison 0".to_vec(), "undecodable"));
        records.push(dead_letter(
            &self.dlq,
            input.encode_to_vec(&ProducerToProcessor {
                origin_service_id: "m-1".to_owned(),
                origin_service_type: "MARKETING".to_owned(),
                destination_service_type: "LOGISTICS".to_owned(),
                event_timestamp: 1_650_000_000_000,
                payload: "dummy-payload c1".to_owned(),
            }),
            "unauthorized",
        ));
        produce_and_wait(&self.kafka(), records, PATIENCE).await;
    }

    fn manifest(&self, entries: &[(&str, &str)]) -> PathBuf {
        let path = self.dir.join(unique_name("manifest"));
        let lines: String = entries
            .iter()
            .map(|(id, destination)| {
                format!(
                    "{}\n",
                    serde_json::json!({
                        "id": id,
                        "tenant_type": "FINANCE",
                        "tenant_id": "f-1",
                        "destination": destination,
                        "key": format!("f-1:{destination}"),
                    })
                )
            })
            .collect();
        std::fs::write(&path, lines).expect("manifest written");
        path
    }

    /// Verification flags for the fixture's topics.
    fn verify_args(&self, manifest: &Path, summary: &Path) -> Vec<String> {
        stack_args(
            &self.stack,
            &[
                "--verify",
                manifest.to_str().expect("UTF-8 path"),
                "--topics",
                &format!("{},{}", self.fin, self.mkt),
                "--destination-topic",
                &format!("FINANCE={}", self.fin),
                "--destination-topic",
                &format!("MARKETING={}", self.mkt),
                "--destination-topic",
                &format!("LOGISTICS={}", self.fin),
                "--dead-letter-topic",
                &self.dlq,
                "--idle-timeout-ms",
                "2000",
                "--summary-json",
                summary.to_str().expect("UTF-8 path"),
                "--quiet",
            ],
        )
    }
}

fn dead_letter(topic: &str, value: Vec<u8>, reason: &str) -> OutboundRecord {
    OutboundRecord {
        topic: Arc::from(topic),
        key: Some(b"dead".to_vec()),
        payload: value,
        headers: vec![
            ("dlq.reason".to_owned(), reason.as_bytes().to_vec()),
            (
                "dlq.error".to_owned(),
                format!("test: {reason}").into_bytes(),
            ),
        ],
    }
}

/// `--bootstrap-servers` and `--schema-registry-url` of `stack`, then `more`.
fn stack_args(stack: &Stack, more: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--bootstrap-servers".to_owned(),
        stack.kafka_bootstrap.clone(),
        "--schema-registry-url".to_owned(),
        stack.registry_url.clone(),
    ];
    args.extend(more.iter().map(|arg| (*arg).to_owned()));
    args
}

/// Runs the consumer binary to completion (killed after [`PATIENCE`]).
fn run_consumer<S: AsRef<OsStr> + Debug>(args: &[S]) -> Finished {
    run_to_completion(env!("CARGO_BIN_EXE_event-consumer"), args, PATIENCE)
}

fn summary(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("summary written"))
        .expect("summary is JSON")
}

#[tokio::test]
async fn verify_passes_when_every_manifest_id_is_on_its_destination_topic() {
    let fixture = Fixture::new(require_stack!()).await;
    let manifest = fixture.manifest(&[("a1", "FINANCE"), ("a2", "FINANCE"), ("b1", "MARKETING")]);
    let summary_path = fixture.dir.join("summary.json");
    let finished = run_consumer(&fixture.verify_args(&manifest, &summary_path));
    finished.assert_code(0);
    assert!(
        finished.stdout.contains("verification: OK"),
        "{}",
        finished.stdout
    );
    let summary = summary(&summary_path);
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["stopped_by"], "all_seen");
    let verification = &summary["verification"];
    assert_eq!(verification["received"], 3);
    assert_eq!(verification["per_destination"]["FINANCE"]["received"], 2);
    assert_eq!(
        verification["per_destination"]["MARKETING"]["topic"],
        fixture.mkt.as_str()
    );
    assert_eq!(summary["dead_letters"]["by_reason"]["undecodable"], 1);
    assert_eq!(summary["dead_letters"]["by_reason"]["unauthorized"], 1);
}

#[tokio::test]
async fn verify_reports_a_missing_id_and_exits_non_zero() {
    let fixture = Fixture::new(require_stack!()).await;
    let manifest = fixture.manifest(&[
        ("a1", "FINANCE"),
        ("a2", "FINANCE"),
        ("b1", "MARKETING"),
        ("never-sent", "FINANCE"),
    ]);
    let summary_path = fixture.dir.join("summary.json");
    let finished = run_consumer(&fixture.verify_args(&manifest, &summary_path));
    finished.assert_code(1);
    assert!(
        finished.stdout.contains("verification: FAILED"),
        "{}",
        finished.stdout
    );
    assert!(
        finished.stdout.contains("never-sent"),
        "{}",
        finished.stdout
    );
    let summary = summary(&summary_path);
    assert_eq!(summary["ok"], false);
    assert_eq!(summary["stopped_by"], "idle_timeout");
    let verification = &summary["verification"];
    assert_eq!(verification["missing"]["count"], 1);
    assert_eq!(verification["missing"]["first"][0], "never-sent");
    assert_eq!(verification["misrouted"]["count"], 0);
    assert_eq!(verification["per_destination"]["FINANCE"]["missing"], 1);
}

#[tokio::test]
async fn verify_reports_an_id_on_another_destinations_topic_as_misrouted() {
    let fixture = Fixture::new(require_stack!()).await;
    // b1 is on the MARKETING topic; this manifest says it was sent to FINANCE.
    let manifest = fixture.manifest(&[("a1", "FINANCE"), ("b1", "FINANCE")]);
    let summary_path = fixture.dir.join("summary.json");
    let finished = run_consumer(&fixture.verify_args(&manifest, &summary_path));
    finished.assert_code(1);
    let misrouted = &summary(&summary_path)["verification"]["misrouted"];
    assert_eq!(misrouted["count"], 1);
    assert_eq!(misrouted["first"][0]["id"], "b1");
    assert_eq!(misrouted["first"][0]["topic"], fixture.mkt.as_str());
    assert_eq!(
        misrouted["first"][0]["expected_topic"],
        fixture.fin.as_str()
    );
}

#[tokio::test]
async fn dead_lettered_ids_are_missing_unless_accepted() {
    let fixture = Fixture::new(require_stack!()).await;
    let manifest = fixture.manifest(&[("a1", "FINANCE"), ("c1", "LOGISTICS")]);
    let strict_summary = fixture.dir.join("strict.json");
    let strict = run_consumer(&fixture.verify_args(&manifest, &strict_summary));
    strict.assert_code(1);
    let verification = &summary(&strict_summary)["verification"];
    assert_eq!(verification["missing"]["first"][0], "c1");
    assert_eq!(verification["missing_dead_lettered"], 1);

    let lenient_summary = fixture.dir.join("lenient.json");
    let mut args = fixture.verify_args(&manifest, &lenient_summary);
    args.push("--accept-dead-lettered".to_owned());
    let lenient = run_consumer(&args);
    lenient.assert_code(0);
    let summary = summary(&lenient_summary);
    assert_eq!(summary["stopped_by"], "all_seen");
    assert_eq!(summary["verification"]["dead_lettered"], 1);
}

#[tokio::test]
async fn prints_records_as_json_lines_and_stops_at_max() {
    let fixture = Fixture::new(require_stack!()).await;
    let finished = run_consumer(&stack_args(
        &fixture.stack,
        &[
            "--topics",
            &format!("{},{}", fixture.fin, fixture.mkt),
            "--format",
            "json",
            "--max",
            "2",
        ],
    ));
    finished.assert_code(0);
    let lines: Vec<serde_json::Value> = finished
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("every stdout line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", finished.stdout);
    for line in &lines {
        assert_eq!(line["processor_service_id"], "event-processor-test");
        assert!(line["key"].as_str().expect("key").starts_with("f-1:"));
        assert!(
            line["payload"]
                .as_str()
                .expect("payload")
                .starts_with("dummy-payload ")
        );
    }
    assert!(
        finished.stderr.contains("stopped_by=max"),
        "{}",
        finished.stderr
    );
}

#[tokio::test]
async fn human_lines_show_dead_letters_with_their_reason() {
    let fixture = Fixture::new(require_stack!()).await;
    let finished = run_consumer(&stack_args(
        &fixture.stack,
        &[
            "--topics",
            &fixture.dlq,
            "--dead-letter-topic",
            &fixture.dlq,
            "--idle-timeout-ms",
            "500",
        ],
    ));
    finished.assert_code(0);
    assert!(
        finished
            .stdout
            .lines()
            .any(|line| line.contains("dead-letter reason=unauthorized id=c1")),
        "{}",
        finished.stdout
    );
    assert!(
        finished
            .stdout
            .lines()
            .any(|line| line.contains("dead-letter reason=undecodable id=<unknown>")),
        "{}",
        finished.stdout
    );
}

#[tokio::test]
async fn group_mode_reads_the_topic_and_commits_past_what_it_printed() {
    let fixture = Fixture::new(require_stack!()).await;
    let group = unique_name("ec-group");
    let mut args = stack_args(
        &fixture.stack,
        &[
            "--topics",
            &fixture.fin,
            "--group",
            &group,
            "--idle-timeout-ms",
            "2000",
            "--quiet",
        ],
    );
    for (key, value) in FAST_GROUP_PROPERTIES {
        args.push("--kafka-property".to_owned());
        args.push(format!("{key}={value}"));
    }
    let finished = run_consumer(&args);
    finished.assert_code(0);
    assert!(
        finished.stdout.contains("records=2 "),
        "{}",
        finished.stdout
    );
    let committed = kafka_admin(&fixture.kafka())
        .expect("admin")
        .committed_positions(&group, &fixture.fin)
        .await
        .expect("committed positions");
    let total: i64 = committed
        .iter()
        .map(|(_, position)| position.unwrap_or(0))
        .sum();
    assert_eq!(total, 2, "committed positions {committed:?}");
}

#[tokio::test]
async fn missing_topic_is_a_one_line_error() {
    let stack = require_stack!();
    let topic = unique_name("ec-never-created");
    let finished = run_consumer(&stack_args(&stack, &["--topics", &topic]));
    finished.assert_code(3);
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    assert!(
        finished.stderr.contains(&format!(
            "topics missing on the broker at {}: {topic}",
            stack.kafka_bootstrap
        )),
        "{}",
        finished.stderr
    );
}

#[test]
fn unreadable_manifest_is_a_one_line_error() {
    let finished = run_consumer(&["--verify", "/nonexistent/manifest.jsonl"]);
    finished.assert_code(3);
    assert!(
        finished
            .stderr
            .starts_with("error: cannot read manifest /nonexistent/manifest.jsonl"),
        "{}",
        finished.stderr
    );
}

#[test]
fn unreachable_broker_is_a_one_line_error_within_the_connect_timeout() {
    let started = Instant::now();
    let finished = run_consumer(&[
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

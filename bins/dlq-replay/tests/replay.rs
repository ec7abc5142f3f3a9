//! The `dlq-replay` binary against the real broker.

use kafka_adapters::{KafkaConfig, OutboundRecord, ReadUntil, TopicRecord, read_topic};
use pipeline::dead_letter_headers as headers;
use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;
use test_support::{create_topics, header, produce_and_wait, require_stack, unique_name};

struct Topics {
    kafka: KafkaConfig,
    dead_letter: String,
    input: String,
}

impl Topics {
    async fn new(stack: &test_support::Stack, name: &str) -> Topics {
        let prefix = unique_name(name);
        let topics = Topics {
            kafka: KafkaConfig::new(stack.kafka_bootstrap.clone()),
            dead_letter: format!("{prefix}.dlq"),
            input: format!("{prefix}.in"),
        };
        create_topics(&topics.kafka, [topics.dead_letter.as_str()], 2).await;
        create_topics(&topics.kafka, [topics.input.as_str()], 3).await;
        topics
    }

    /// Writes dead letters as the processor does: original key and value, `dlq.*` headers.
    async fn write_dead_letters(&self, reasons: &[&str]) {
        let topic: Arc<str> = Arc::from(self.dead_letter.as_str());
        let records = reasons
            .iter()
            .enumerate()
            .map(|(index, reason)| OutboundRecord {
                topic: Arc::clone(&topic),
                key: Some(format!("tenant-{index}:LOGISTICS").into_bytes()),
                payload: format!("original value {index}").into_bytes(),
                headers: vec![
                    (headers::REASON.to_owned(), reason.as_bytes().to_vec()),
                    (headers::ERROR.to_owned(), b"why it failed".to_vec()),
                    (
                        headers::SOURCE_TOPIC.to_owned(),
                        self.input.clone().into_bytes(),
                    ),
                    (headers::SOURCE_PARTITION.to_owned(), b"0".to_vec()),
                    (
                        headers::SOURCE_OFFSET.to_owned(),
                        index.to_string().into_bytes(),
                    ),
                ],
            });
        produce_and_wait(&self.kafka, records.collect(), Duration::from_secs(30)).await;
    }

    async fn read(&self, topic: &str) -> Vec<TopicRecord> {
        read_topic(&self.kafka, topic, ReadUntil::End, Duration::from_secs(60))
            .await
            .expect("topic read")
    }

    fn replay(&self, extra: &[&str]) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_dlq-replay"))
            .args(["--bootstrap-servers", &self.kafka.bootstrap_servers])
            .args(["--dlq-topic", &self.dead_letter])
            .args(["--to", &self.input])
            .args(extra)
            .output()
            .expect("dlq-replay runs");
        assert!(
            output.status.success(),
            "dlq-replay failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_replay_republishes_original_keys_and_values() {
    let stack = require_stack!();
    let topics = Topics::new(&stack, "dlq-replay").await;
    let reasons = [
        "unauthorized",
        "undecodable",
        "unauthorized",
        "unauthorized",
        "schema-mismatch",
        "unauthorized",
    ];
    topics.write_dead_letters(&reasons).await;
    let dead_letters = topics.read(&topics.dead_letter).await;
    assert_eq!(dead_letters.len(), reasons.len());

    let output = topics.replay(&["--reason", "unauthorized"]);
    let printed = stdout(&output);
    assert!(printed.contains("selected 4 (unauthorized=4)"), "{printed}");
    assert!(printed.contains("replayed 4 records"), "{printed}");

    let replayed = topics.read(&topics.input).await;
    assert_eq!(replayed.len(), 4, "exactly the unauthorized ones");
    let originals: BTreeMap<Vec<u8>, &TopicRecord> = dead_letters
        .iter()
        .map(|record| (record.key.clone().expect("keyed"), record))
        .collect();
    for record in &replayed {
        let original = originals[record.key.as_ref().expect("key kept")];
        assert_eq!(header(original, headers::REASON), Some("unauthorized"));
        assert_eq!(record.payload, original.payload, "value byte for byte");
        assert_eq!(
            header(record, dead_letter_replay::REPLAYED_FROM_HEADER),
            Some(
                format!(
                    "{}/{}/{}",
                    topics.dead_letter, original.partition, original.offset
                )
                .as_str()
            )
        );
        assert!(
            record
                .headers
                .iter()
                .all(|(key, _)| key == dead_letter_replay::REPLAYED_FROM_HEADER),
            "no dlq.* header replayed: {:?}",
            record.headers
        );
    }

    // The printed start offsets continue after this replay: nothing is sent twice.
    let next: Vec<&str> = printed
        .lines()
        .find_map(|line| line.strip_prefix("to replay only records dead-lettered after these: "))
        .expect("next offsets printed")
        .split_whitespace()
        .collect();
    let again = topics.replay(&next);
    assert!(
        stdout(&again).contains("selected 0 (none)"),
        "{}",
        stdout(&again)
    );
    assert_eq!(topics.read(&topics.input).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_lists_the_selection_and_produces_nothing() {
    let stack = require_stack!();
    let topics = Topics::new(&stack, "dlq-dry-run").await;
    topics
        .write_dead_letters(&["unauthorized", "too-large", "unauthorized"])
        .await;
    let output = topics.replay(&[
        "--dry-run",
        "--reason",
        "too-large",
        "--reason",
        "unauthorized",
    ]);
    let printed = stdout(&output);
    assert!(
        printed.contains("selected 3 (too-large=1, unauthorized=2)"),
        "{printed}"
    );
    assert_eq!(printed.matches("would replay ").count(), 3, "{printed}");
    assert!(printed.contains("dry run: nothing produced"), "{printed}");
    assert!(topics.read(&topics.input).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_replay_a_topic_into_itself() {
    let output = Command::new(env!("CARGO_BIN_EXE_dlq-replay"))
        .args(["--dlq-topic", "same", "--to", "same"])
        .output()
        .expect("dlq-replay runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("would loop"));
}

//! Start-up of the processor binary: configurations it refuses (exit code 2, one `error:` line
//! that says what to change), and the topics `--create-missing-topics` makes on the real broker.

use kafka_adapters::{KafkaConfig, TopicAdmin};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use test_support::{Finished, require_stack, run_to_completion, scratch_dir, unique_name};

const PROCESSOR: &str = env!("CARGO_BIN_EXE_event-processor");
const PATIENCE: Duration = Duration::from_secs(60);

/// The processor with a routing table of one destination, on a free metrics port, and `args`.
fn run_processor(args: &[&str]) -> Finished {
    let mut all = vec![
        "--destination-configurations",
        r#"{"FINANCE": {"output_topic": "processor.to.finance"}}"#,
        "--http-listen",
        "127.0.0.1:0",
    ];
    all.extend_from_slice(args);
    run_to_completion(PROCESSOR, &all, PATIENCE)
}

fn config_file(dir: &Path, toml: &str) -> PathBuf {
    let file = dir.join("processor.toml");
    std::fs::write(&file, toml).expect("config file written");
    file
}

#[test]
fn rebalance_wait_not_below_max_poll_interval_exits_2_with_the_reason() {
    let finished = run_processor(&["--consumer-property", "max.poll.interval.ms=10000"]);
    finished.assert_code(2);
    assert!(
        finished.stderr.contains(
            "error: the rebalance wait, pipeline.drain_timeout_ms (20000) + 5000 ms = 25000 ms, \
             must be below the consumer's max.poll.interval.ms (10000, set in \
             kafka.consumer_properties or --consumer-property)"
        ),
        "{}",
        finished.stderr
    );
    assert!(
        finished
            .stderr
            .contains("lower pipeline.drain_timeout_ms or raise max.poll.interval.ms"),
        "{}",
        finished.stderr
    );
}

#[test]
fn record_limit_beyond_the_producers_message_max_bytes_exits_2_with_the_reason() {
    let dir = scratch_dir("ep-startup-size");
    let file = config_file(&dir, "[pipeline]\nmax_record_bytes = 1048576\n");
    let finished = run_processor(&["--config", file.to_str().expect("utf-8 path")]);
    finished.assert_code(2);
    assert!(
        finished.stderr.contains(
            "error: pipeline.max_record_bytes (1048576) plus 16384 bytes for the key, the \
             dead-letter headers and record framing must fit in the producer's message.max.bytes \
             (1000000, librdkafka's default)"
        ),
        "{}",
        finished.stderr
    );
    assert!(
        finished.stderr.contains("at most 983616"),
        "{}",
        finished.stderr
    );
}

#[test]
fn unparseable_message_max_bytes_exits_2_with_the_reason() {
    let finished = run_processor(&["--producer-property", "message.max.bytes=lots"]);
    finished.assert_code(2);
    assert!(
        finished.stderr.contains(
            "error: librdkafka property message.max.bytes = `lots` (set in \
             kafka.producer_properties or --producer-property) is not a non-negative whole number"
        ),
        "{}",
        finished.stderr
    );
}

/// A processor left running; killed when dropped, so a failing test leaves nothing behind.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_topics_are_created_with_the_brokers_default_replication() {
    let stack = require_stack!();
    let prefix = unique_name("ep-startup-create");
    let input = format!("{prefix}.in");
    let output = format!("{prefix}.to.finance");
    let dead_letter = format!("{prefix}.dlq");
    let routing = format!(
        r#"{{"FINANCE": {{"output_topic": "{output}", "output_subject": "{output}-value"}}}}"#
    );
    let dir = scratch_dir("ep-startup-create");
    let log = dir.join("processor.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    // No kafka.topic_replication: the topics get the broker's default.replication.factor.
    let child = Command::new(PROCESSOR)
        .args(["--bootstrap-servers", &stack.kafka_bootstrap])
        .args(["--schema-registry-url", &stack.registry_url])
        .args(["--input-topic", &input])
        .args(["--dead-letter-topic", &dead_letter])
        .args(["--group-id", &format!("{prefix}.group")])
        .args(["--destination-configurations", &routing])
        .args(["--http-listen", "127.0.0.1:0"])
        .arg("--create-missing-topics")
        .env_remove("EVENT_PROCESSOR_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file)
        .spawn()
        .expect("processor starts");
    let mut running = Running { child, log };

    let admin = kafka_adapters::kafka_admin(&KafkaConfig::new(stack.kafka_bootstrap.clone()))
        .expect("admin client");
    let deadline = Instant::now() + PATIENCE;
    for topic in [&input, &output, &dead_letter] {
        loop {
            if let Some(partitions) = admin.partitions_of(topic).await.expect("metadata") {
                assert_eq!(partitions, 3, "{topic}: kafka.topic_partitions");
                break;
            }
            if let Some(status) = running.child.try_wait().expect("wait") {
                panic!(
                    "the processor exited ({status}) before creating {topic}; log:\n{}",
                    running.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{topic} was not created within {PATIENCE:?}; log:\n{}",
                running.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(
        running.log().contains("Creating missing topics."),
        "{}",
        running.log()
    );
}

#[test]
fn configured_replication_reaches_the_broker() {
    let stack = require_stack!();
    let prefix = unique_name("ep-startup-replication");
    let dir = scratch_dir("ep-startup-replication");
    // The local stack has one broker: a replication factor of 2 cannot be met, and the broker's
    // refusal shows that the configured factor, not a built-in one, was asked for.
    let file = config_file(&dir, "[kafka]\ntopic_replication = 2\n");
    let output = format!("{prefix}.to.finance");
    let routing = format!(r#"{{"FINANCE": {{"output_topic": "{output}"}}}}"#);
    let finished = run_to_completion(
        PROCESSOR,
        &[
            "--config",
            file.to_str().expect("utf-8 path"),
            "--bootstrap-servers",
            &stack.kafka_bootstrap,
            "--schema-registry-url",
            &stack.registry_url,
            "--input-topic",
            &format!("{prefix}.in"),
            "--dead-letter-topic",
            &format!("{prefix}.dlq"),
            "--destination-configurations",
            &routing,
            "--http-listen",
            "127.0.0.1:0",
            "--create-missing-topics",
        ],
        PATIENCE,
    );
    finished.assert_code(1);
    assert!(
        finished.stderr.contains("cannot create the missing topics")
            && finished.stderr.contains("replication factor 2"),
        "{}",
        finished.stderr
    );
}

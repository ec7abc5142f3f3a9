//! The pipeline against in-memory fakes: every delivery, failure and rebalance is under the test's
//! control, so each at-least-once rule is checked exactly.

use avro_codec::{
    InputEncoder, OutputDecoder, RegisteredSchema, RegistryError, SchemaId, SchemaRegistry,
};
use pipeline::{
    Clock, PipelineConfig, PipelineParts, PipelineStats, RoutingSnapshot, RunSummary,
    dead_letter_headers,
};
use ports::testing::{Completion, FakeCommitter, FakeSink, FakeSource, SentRecord};
use ports::{InboundRecord, KafkaErrorCode, TopicPartition};
use router_core::{DeadLetterCode, ProducerToProcessor, Router};
use schema_registry::MemoryRegistry;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

const INPUT: &str = "producer.to.processor";
const DLQ: &str = "producer.to.processor.dlq";
const WAIT: Duration = Duration::from_secs(5);

const ROUTING: &str = r#"
version = 1
[destinations.FINANCE]
outputs = [{ topic = "processor.to.finance" }]
[destinations.MARKETING]
outputs = [{ topic = "processor.to.marketing" }]
[destinations.AUDIT]
outputs = [{ topic = "processor.to.audit-a" }, { topic = "processor.to.audit-b" }]
[policy]
mode = "deny-by-default"
[[policy.allow]]
origin_service_type = "FINANCE"
destinations = ["*"]
[[policy.allow]]
origin_service_type = "MARKETING"
destinations = ["MARKETING"]
"#;

#[derive(Debug)]
struct FixedClock;
impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        1_700_000_000_000
    }
}

/// A registry that fails `failures` times before answering, to simulate an outage, and answers
/// "not found" to the next `not_found` schema-id lookups, like a lagging replica.
#[derive(Debug, Default)]
struct FlakyRegistry {
    inner: MemoryRegistry,
    failures: AtomicU32,
    not_found: AtomicU32,
    by_id_calls: AtomicU32,
}

impl FlakyRegistry {
    fn outage(&self) -> Result<(), RegistryError> {
        let left = self.failures.load(Relaxed);
        if left > 0 {
            self.failures.store(left - 1, Relaxed);
            return Err(RegistryError::Timeout {
                request: "GET /schemas/ids/1".to_owned(),
                timeout: Duration::from_millis(1),
                attempts: 1,
            });
        }
        Ok(())
    }
}

impl SchemaRegistry for FlakyRegistry {
    async fn register(&self, subject: &str, schema: &str) -> Result<SchemaId, RegistryError> {
        self.inner.register(subject, schema).await
    }
    async fn lookup(&self, subject: &str, schema: &str) -> Result<RegisteredSchema, RegistryError> {
        self.inner.lookup(subject, schema).await
    }
    async fn schema_by_id(&self, id: SchemaId) -> Result<Arc<str>, RegistryError> {
        self.by_id_calls.fetch_add(1, Relaxed);
        self.outage()?;
        let lagging = self.not_found.load(Relaxed);
        if lagging > 0 {
            self.not_found.store(lagging - 1, Relaxed);
            return Err(RegistryError::SchemaNotFound {
                request: format!("GET /schemas/ids/{id}"),
                message: "Schema not found".to_owned(),
            });
        }
        self.inner.schema_by_id(id).await
    }
    async fn latest(&self, subject: &str) -> Result<RegisteredSchema, RegistryError> {
        self.inner.latest(subject).await
    }
}

struct Harness {
    source: FakeSource,
    sink: FakeSink,
    committer: FakeCommitter,
    stats: Arc<PipelineStats>,
    encoder: InputEncoder,
    routing: watch::Sender<Arc<RoutingSnapshot>>,
    registry: Arc<FlakyRegistry>,
    stop: watch::Sender<bool>,
    run: JoinHandle<Result<RunSummary, pipeline::PipelineError>>,
}

fn partition(index: i32) -> TopicPartition {
    TopicPartition {
        topic: Arc::from(INPUT),
        partition: index,
    }
}

async fn start(completion: Completion, configure: impl FnOnce(&mut PipelineConfig)) -> Harness {
    start_with(completion, false, configure).await
}

/// `exactly_once`: the committer drives the sink's transactions.
async fn start_with(
    completion: Completion,
    exactly_once: bool,
    configure: impl FnOnce(&mut PipelineConfig),
) -> Harness {
    let registry = Arc::new(FlakyRegistry::default());
    let encoder = InputEncoder::register(&*registry, "producer.to.processor-value")
        .await
        .expect("input schema registers");
    let snapshot = RoutingSnapshot::resolve(
        Router::from_toml_str(ROUTING).expect("valid routing"),
        &*registry,
        true,
    )
    .await
    .expect("output schema registers");
    let (routing, routing_updates) = watch::channel(Arc::new(snapshot));
    let (report_sender, reports) = mpsc::unbounded_channel();
    let sink = FakeSink::new(report_sender);
    sink.set_completion(completion);
    let source = FakeSource::new();
    let committer = match exactly_once {
        true => FakeCommitter::transactional(&sink),
        false => FakeCommitter::new(),
    };
    let stats = Arc::new(PipelineStats::default());
    let mut config = PipelineConfig::new("processor-under-test", DLQ);
    config.commit_policy.max_interval = Duration::from_millis(10);
    config.retry.initial_backoff = Duration::from_millis(5);
    config.retry.max_backoff = Duration::from_millis(20);
    config.drain_timeout = Duration::from_secs(2);
    configure(&mut config);
    let (stop, shutdown) = watch::channel(false);
    let parts = PipelineParts {
        source: source.clone(),
        sink: sink.clone(),
        reports,
        committer: committer.clone(),
        registry: Arc::clone(&registry),
        routing: routing_updates,
        clock: Arc::new(FixedClock),
        stats: Arc::clone(&stats),
    };
    let run = tokio::spawn(pipeline::run(config, parts, shutdown));
    source.push_assigned(vec![partition(0), partition(1)]);
    Harness {
        source,
        sink,
        committer,
        stats,
        encoder,
        routing,
        registry,
        stop,
        run,
    }
}

impl Harness {
    fn event(&self, tenant: &str, destination: &str, payload: &str) -> Vec<u8> {
        self.encoder.encode_to_vec(&ProducerToProcessor {
            origin_service_id: format!("{tenant}-1"),
            origin_service_type: tenant.to_owned(),
            destination_service_type: destination.to_owned(),
            event_timestamp: 1_650_000_000_000,
            payload: payload.to_owned(),
        })
    }

    fn record(&self, partition: i32, offset: i64, value: Option<Vec<u8>>) -> InboundRecord {
        InboundRecord {
            topic: Arc::from(INPUT),
            partition,
            offset,
            key: Some(format!("key-{offset}").into_bytes()),
            payload: value,
            timestamp_ms: None,
            headers: Vec::new(),
        }
    }

    /// Swaps in a table that sends FINANCE to `processor.to.finance-v2`; returns its TOML.
    async fn reroute_finance(&self) -> String {
        let rerouted = ROUTING.replace(
            r#"outputs = [{ topic = "processor.to.finance" }]"#,
            r#"outputs = [{ topic = "processor.to.finance-v2" }]"#,
        );
        let snapshot = RoutingSnapshot::resolve(
            Router::from_toml_str(&rerouted).expect("valid"),
            &*self.registry,
            true,
        )
        .await
        .expect("resolves");
        self.routing
            .send(Arc::new(snapshot))
            .expect("pipeline listens");
        rerouted
    }

    async fn wait_sent(&self, count: usize) {
        let waited = tokio::time::timeout(WAIT, async {
            while self.sink.sent().len() < count {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "expected {count} sent records, got {}",
            self.sink.sent().len()
        );
    }

    async fn stop(self) -> RunSummary {
        self.stop.send(true).expect("pipeline listens");
        tokio::time::timeout(WAIT, self.run)
            .await
            .expect("pipeline stops in time")
            .expect("pipeline task does not panic")
            .expect("pipeline run succeeds")
    }
}

fn header<'a>(record: &'a ports::OutboundRecord, name: &str) -> Option<&'a str> {
    record
        .headers
        .iter()
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| std::str::from_utf8(value).ok())
}

#[tokio::test]
async fn routes_every_event_to_its_destination_topic_with_the_input_key() {
    let harness = start(Completion::AckImmediately, |_| {}).await;
    harness.source.push_records(vec![
        harness.record(0, 0, Some(harness.event("FINANCE", "MARKETING", "a"))),
        harness.record(0, 1, Some(harness.event("FINANCE", "finance", "b"))),
        harness.record(1, 0, Some(harness.event("MARKETING", "Marketing", "c"))),
    ]);
    harness.wait_sent(3).await;
    let sent = harness.sink.sent();
    let decoder = OutputDecoder::new();
    let output_id =
        avro_codec::InputDecoder::schema_id_of(&sent[0].record.payload).expect("framed");
    decoder
        .add_writer_schema(output_id, avro_codec::PROCESSOR_TO_CONSUMER_SCHEMA)
        .expect("output schema");
    let routed: Vec<(String, String, String)> = sent
        .iter()
        .map(|sent| {
            let output = decoder.decode(&sent.record.payload).expect("decodes");
            assert_eq!(output.processor_service_id, "processor-under-test");
            assert_eq!(output.processor_event_timestamp, 1_700_000_000_000);
            assert_eq!(output.producer_event_timestamp, 1_650_000_000_000);
            (
                sent.record.topic.to_string(),
                String::from_utf8(sent.record.key.clone().expect("keyed")).expect("utf-8"),
                output.payload,
            )
        })
        .collect();
    assert_eq!(
        routed,
        vec![
            ("processor.to.marketing".into(), "key-0".into(), "a".into()),
            ("processor.to.finance".into(), "key-1".into(), "b".into()),
            ("processor.to.marketing".into(), "key-0".into(), "c".into()),
        ]
    );
    assert!(harness.committer.wait_for(&partition(0), 2, WAIT).await);
    assert!(harness.committer.wait_for(&partition(1), 1, WAIT).await);
    harness.stop().await;
}

/// Headers a tenant might send: a binary (not UTF-8) value, a repeated name, an empty value.
fn tenant_headers() -> Vec<(String, Vec<u8>)> {
    vec![
        ("traceparent".to_owned(), b"00-4bf92f-01".to_vec()),
        ("bin".to_owned(), vec![0xff, 0x00, 0xc3, 0x28, 0x80]),
        ("traceparent".to_owned(), b"second".to_vec()),
        ("empty".to_owned(), Vec::new()),
    ]
}

#[tokio::test]
async fn input_headers_reach_every_routed_copy_and_dead_letter_in_order() {
    let harness = start(Completion::AckImmediately, |config| {
        config.max_record_bytes = 200;
        config.not_found_retry = Duration::ZERO;
    })
    .await;
    let with_headers = |mut record: InboundRecord| {
        record.headers = tenant_headers();
        record
    };
    // An id no registry knows: loaded at first sight, then dead-lettered as undecodable.
    let mut unknown_id = harness.event("FINANCE", "FINANCE", "u");
    unknown_id[1..5].copy_from_slice(&9_999u32.to_be_bytes());
    harness.source.push_records(vec![
        with_headers(harness.record(0, 0, Some(harness.event("FINANCE", "FINANCE", "a")))),
        with_headers(harness.record(0, 1, Some(harness.event("FINANCE", "AUDIT", "b")))),
        with_headers(harness.record(0, 2, Some(harness.event("MARKETING", "FINANCE", "c")))),
        with_headers(harness.record(0, 3, Some(b"\x07junk".to_vec()))),
        with_headers(harness.record(0, 4, None)),
        with_headers(harness.record(
            0,
            5,
            Some(harness.event("FINANCE", "FINANCE", &"x".repeat(300))),
        )),
        with_headers(harness.record(0, 6, Some(unknown_id))),
        harness.record(0, 7, Some(harness.event("FINANCE", "FINANCE", "plain"))),
    ]);
    harness.wait_sent(9).await;
    let sent = harness.sink.sent();
    let topics: Vec<&str> = sent.iter().map(|sent| &*sent.record.topic).collect();
    assert_eq!(
        topics,
        [
            "processor.to.finance",
            "processor.to.audit-a",
            "processor.to.audit-b",
            DLQ,
            DLQ,
            DLQ,
            DLQ,
            DLQ,
            "processor.to.finance",
        ]
    );
    for routed in &sent[..3] {
        assert_eq!(
            routed.record.headers,
            tenant_headers(),
            "{}",
            routed.record.topic
        );
    }
    for dead_letter in &sent[3..8] {
        let headers = &dead_letter.record.headers;
        assert_eq!(headers[..4], tenant_headers()[..], "original headers first");
        assert!(
            headers[4..]
                .iter()
                .all(|(name, _)| name.starts_with("dlq.")),
            "then only dead-letter headers: {headers:?}"
        );
        assert!(
            headers[4..]
                .iter()
                .any(|(name, _)| name == dead_letter_headers::REASON)
        );
    }
    assert!(sent[8].record.headers.is_empty(), "no headers in, none out");
    assert!(harness.committer.wait_for(&partition(0), 8, WAIT).await);
    harness.stop().await;
}

#[tokio::test]
async fn does_not_commit_past_an_unacknowledged_output() {
    let harness = start(Completion::Hold, |_| {}).await;
    let records = (0..3)
        .map(|offset| harness.record(0, offset, Some(harness.event("FINANCE", "FINANCE", "x"))))
        .collect();
    harness.source.push_records(records);
    harness.wait_sent(3).await;
    let tags = harness.sink.held_tags();
    // Deliveries complete out of order: offsets 1 and 2 before 0.
    assert!(harness.sink.ack(tags[2]));
    assert!(harness.sink.ack(tags[1]));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        harness.committer.committed(&partition(0)),
        None,
        "offset 0 is still in flight, nothing may be committed"
    );
    assert!(harness.sink.ack(tags[0]));
    assert!(harness.committer.wait_for(&partition(0), 3, WAIT).await);
    harness.stop().await;
}

#[tokio::test]
async fn an_offset_delivered_again_out_of_order_stops_the_run_with_an_error_after_committing_what_is_complete()
 {
    let harness = start(Completion::AckImmediately, |_| {}).await;
    let event = || Some(harness.event("FINANCE", "FINANCE", "x"));
    harness.source.push_records(vec![
        harness.record(0, 0, event()),
        harness.record(0, 1, event()),
    ]);
    assert!(harness.committer.wait_for(&partition(0), 2, WAIT).await);
    // The same offsets again without a rewind or a reassignment: the tracker refuses them.
    harness
        .source
        .push_records(vec![harness.record(0, 1, event())]);
    let outcome = tokio::time::timeout(WAIT, harness.run)
        .await
        .expect("the pipeline stops by itself")
        .expect("no panic");
    assert!(
        matches!(outcome, Err(pipeline::PipelineError::Tracking(_))),
        "a run that cannot track a record must not end as a success: {outcome:?}"
    );
    assert_eq!(harness.committer.committed(&partition(0)), Some(2));
}

#[tokio::test]
async fn fan_out_commits_only_when_every_copy_is_acknowledged() {
    let harness = start(Completion::Hold, |_| {}).await;
    harness.source.push_records(vec![harness.record(
        0,
        0,
        Some(harness.event("FINANCE", "AUDIT", "x")),
    )]);
    harness.wait_sent(2).await;
    let sent = harness.sink.sent();
    let topics: Vec<&str> = sent.iter().map(|sent| &*sent.record.topic).collect();
    assert_eq!(topics, ["processor.to.audit-a", "processor.to.audit-b"]);
    assert!(harness.sink.ack(sent[0].tag));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(harness.committer.committed(&partition(0)), None);
    assert!(harness.sink.ack(sent[1].tag));
    assert!(harness.committer.wait_for(&partition(0), 1, WAIT).await);
    harness.stop().await;
}

#[tokio::test]
async fn advances_offset_past_poison_messages_only_after_the_dead_letter_is_acknowledged() {
    let harness = start(Completion::Hold, |_| {}).await;
    let garbage = b"\x07not avro at all".to_vec();
    harness.source.push_records(vec![
        harness.record(0, 0, Some(garbage.clone())),
        harness.record(0, 1, Some(harness.event("FINANCE", "FINANCE", "good"))),
    ]);
    harness.wait_sent(2).await;
    let sent = harness.sink.sent();
    let dead_letter = &sent[0].record;
    assert_eq!(&*dead_letter.topic, DLQ);
    assert_eq!(dead_letter.payload, garbage, "original bytes are kept");
    assert_eq!(dead_letter.key.as_deref(), Some(&b"key-0"[..]));
    assert_eq!(
        header(dead_letter, dead_letter_headers::REASON),
        Some("undecodable")
    );
    assert_eq!(
        header(dead_letter, dead_letter_headers::SOURCE_TOPIC),
        Some(INPUT)
    );
    assert_eq!(
        header(dead_letter, dead_letter_headers::SOURCE_PARTITION),
        Some("0")
    );
    assert_eq!(
        header(dead_letter, dead_letter_headers::SOURCE_OFFSET),
        Some("0")
    );
    assert_eq!(
        header(dead_letter, dead_letter_headers::PROCESSOR_ID),
        Some("processor-under-test")
    );
    assert!(
        header(dead_letter, dead_letter_headers::ERROR)
            .is_some_and(|text| text.contains("magic byte"))
    );
    assert_eq!(
        &*sent[1].record.topic, "processor.to.finance",
        "the stream continues"
    );

    assert!(harness.sink.ack(sent[1].tag));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        harness.committer.committed(&partition(0)),
        None,
        "DLQ write not acknowledged yet"
    );
    assert!(harness.sink.ack(sent[0].tag));
    assert!(harness.committer.wait_for(&partition(0), 2, WAIT).await);
    assert_eq!(
        harness.stats.dead_lettered_for(DeadLetterCode::Undecodable),
        1
    );
    harness.stop().await;
}

#[tokio::test]
async fn dead_letters_unauthorized_unknown_missing_and_oversized_events() {
    let harness = start(Completion::AckImmediately, |config| {
        config.max_record_bytes = 200
    })
    .await;
    let schema_id = avro_codec::InputDecoder::schema_id_of(&harness.event("A", "B", "c"))
        .expect("framed")
        .0
        .to_string();
    harness.source.push_records(vec![
        harness.record(0, 0, Some(harness.event("MARKETING", "FINANCE", "denied"))),
        harness.record(0, 1, Some(harness.event("FINANCE", "SALES", "unknown"))),
        harness.record(0, 2, None),
        harness.record(
            0,
            3,
            Some(harness.event("FINANCE", "FINANCE", &"x".repeat(300))),
        ),
        harness.record(0, 4, Some(harness.event("FINANCE", "FINANCE", "fine"))),
    ]);
    harness.wait_sent(5).await;
    let sent = harness.sink.sent();
    let reasons: Vec<Option<&str>> = sent
        .iter()
        .map(|sent| header(&sent.record, dead_letter_headers::REASON))
        .collect();
    assert_eq!(
        reasons,
        [
            Some("unauthorized"),
            Some("unknown-destination"),
            Some("missing-value"),
            Some("too-large"),
            None
        ]
    );
    assert_eq!(
        header(&sent[0].record, dead_letter_headers::SCHEMA_ID),
        Some(schema_id.as_str())
    );
    assert!(sent[..4].iter().all(|sent| &*sent.record.topic == DLQ));
    assert!(harness.committer.wait_for(&partition(0), 5, WAIT).await);
    assert_eq!(harness.stats.dead_lettered_total(), 4);
    assert_eq!(harness.stats.routed.load(Relaxed), 1);
    harness.stop().await;
}

#[tokio::test]
async fn size_limit_counts_key_and_headers_with_the_value() {
    let limit = 400;
    let harness = start(Completion::AckImmediately, |config| {
        config.max_record_bytes = limit
    })
    .await;
    let value = harness.event("FINANCE", "FINANCE", "small");
    let mut exact = harness.record(0, 0, Some(value.clone()));
    exact.key = Some(b"k".to_vec());
    // One header filling the record up to the limit exactly: name (1 + 1) and value (2 + n).
    let fill = limit - value.len() - 1 - 4;
    exact.headers = vec![("h".to_owned(), vec![b'x'; fill])];
    assert_eq!(
        pipeline::record_bytes(exact.key.as_deref(), &exact.headers, value.len()),
        limit
    );
    let mut over = exact.clone();
    over.offset = 1;
    over.headers[0].1.push(b'x');
    let mut big_key = harness.record(0, 2, Some(value.clone()));
    big_key.key = Some(vec![b'k'; limit]);
    harness.source.push_records(vec![exact, over, big_key]);
    assert!(harness.committer.wait_for(&partition(0), 3, WAIT).await);
    let sent = harness.sink.sent();
    let topics: Vec<&str> = sent.iter().map(|sent| &*sent.record.topic).collect();
    assert_eq!(topics, ["processor.to.finance", DLQ, DLQ]);
    assert_eq!(
        header(&sent[1].record, dead_letter_headers::REASON),
        Some("too-large")
    );
    assert!(
        header(&sent[1].record, dead_letter_headers::ERROR)
            .is_some_and(|error| error.contains(&format!("{} bytes", limit + 1))),
        "{:?}",
        header(&sent[1].record, dead_letter_headers::ERROR)
    );
    assert_eq!(harness.stats.dead_lettered_for(DeadLetterCode::TooLarge), 2);
    harness.stop().await;
}

/// Records `topic` fails for good with `code`, as the real producer reports it.
fn refuse(harness: &Harness, topic: &'static str, code: KafkaErrorCode) {
    harness
        .sink
        .fail_records_with_code(move |record| &*record.topic == topic, code);
}

fn sent_to<'a>(sent: &'a [SentRecord], topic: &str) -> Vec<&'a ports::OutboundRecord> {
    sent.iter()
        .map(|sent| &sent.record)
        .filter(|record| &*record.topic == topic)
        .collect()
}

#[tokio::test]
async fn refused_output_is_dead_lettered_with_the_input_and_its_partition_moves_on() {
    let harness = start(Completion::Hold, |_| {}).await;
    refuse(
        &harness,
        "processor.to.marketing",
        KafkaErrorCode::TOPIC_AUTHORIZATION_FAILED,
    );
    let refused_value = harness.event("FINANCE", "MARKETING", "refused");
    let mut refused_input = harness.record(0, 1, Some(refused_value.clone()));
    refused_input.headers = tenant_headers();
    harness.source.push_records(vec![
        harness.record(0, 0, Some(harness.event("FINANCE", "FINANCE", "before"))),
        refused_input,
        harness.record(0, 2, Some(harness.event("FINANCE", "FINANCE", "after"))),
    ]);
    // Three routed attempts, the refused one replaced by its dead letter.
    harness.wait_sent(4).await;
    let sent = harness.sink.sent();
    let dead_letters = sent_to(&sent, DLQ);
    assert_eq!(dead_letters.len(), 1, "one dead letter, sent once");
    let dead_letter = dead_letters[0];
    assert_eq!(dead_letter.payload, refused_value, "the input's own bytes");
    assert_eq!(dead_letter.key.as_deref(), Some(&b"key-1"[..]));
    assert_eq!(dead_letter.headers[..4], tenant_headers()[..]);
    assert_eq!(
        header(dead_letter, dead_letter_headers::REASON),
        Some("refused")
    );
    assert_eq!(
        header(dead_letter, dead_letter_headers::OUTPUT_TOPIC),
        Some("processor.to.marketing")
    );
    assert_eq!(
        header(dead_letter, dead_letter_headers::SOURCE_OFFSET),
        Some("1")
    );
    let error = header(dead_letter, dead_letter_headers::ERROR).unwrap_or_default();
    assert!(
        error.contains("processor.to.marketing") && error.contains("Topic authorization failed"),
        "{error}"
    );

    // Everything but the dead letter acknowledged: offset 1 holds the partition.
    let dead_letter_tag = sent
        .iter()
        .find(|sent| &*sent.record.topic == DLQ)
        .map(|sent| sent.tag)
        .expect("dead letter sent");
    for tag in harness.sink.held_tags() {
        if tag != dead_letter_tag {
            assert!(harness.sink.ack(tag));
        }
    }
    assert!(harness.committer.wait_for(&partition(0), 1, WAIT).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        harness.committer.committed(&partition(0)),
        Some(1),
        "not past the input whose dead letter is unacknowledged"
    );
    assert!(harness.sink.ack(dead_letter_tag));
    assert!(harness.committer.wait_for(&partition(0), 3, WAIT).await);
    let stats = &harness.stats;
    assert_eq!(stats.dead_lettered_for(DeadLetterCode::Refused), 1);
    assert_eq!(stats.routed.load(Relaxed), 2);
    assert_eq!(stats.produce_permanent_failures.load(Relaxed), 1);
    assert_eq!(
        stats.produce_retries.load(Relaxed),
        0,
        "a refusal is not retried"
    );
    assert_eq!(stats.stuck_records.load(Relaxed), 0);
    harness.stop().await;
}

#[tokio::test]
async fn transient_failures_are_retried_not_dead_lettered() {
    let harness = start(Completion::AckImmediately, |config| config.retry.budget = 3).await;
    refuse(
        &harness,
        "processor.to.finance",
        KafkaErrorCode::NOT_LEADER_FOR_PARTITION,
    );
    harness.source.push_records(vec![harness.record(
        0,
        0,
        Some(harness.event("FINANCE", "FINANCE", "x")),
    )]);
    tokio::time::timeout(WAIT, async {
        while harness.stats.stuck_records.load(Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("reported stuck past the budget");
    assert!(harness.stats.produce_retries.load(Relaxed) >= 3);
    assert_eq!(harness.committer.committed(&partition(0)), None);
    harness.sink.clear_failure_rules();
    assert!(harness.committer.wait_for(&partition(0), 1, WAIT).await);
    let stats = &harness.stats;
    assert_eq!(stats.routed.load(Relaxed), 1);
    assert_eq!(stats.dead_lettered_total(), 0);
    assert_eq!(stats.produce_permanent_failures.load(Relaxed), 0);
    assert_eq!(stats.stuck_records.load(Relaxed), 0);
    assert!(sent_to(&harness.sink.sent(), DLQ).is_empty());
    harness.stop().await;
}

#[tokio::test]
async fn fan_out_with_one_refused_destination_routes_the_others_and_dead_letters_that_one() {
    let harness = start(Completion::AckImmediately, |_| {}).await;
    refuse(
        &harness,
        "processor.to.audit-b",
        KafkaErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
    );
    let value = harness.event("FINANCE", "AUDIT", "fan-out");
    harness.source.push_records(vec![
        harness.record(0, 0, Some(value.clone())),
        harness.record(0, 1, Some(harness.event("FINANCE", "FINANCE", "next"))),
    ]);
    assert!(harness.committer.wait_for(&partition(0), 2, WAIT).await);
    let sent = harness.sink.sent();
    assert_eq!(sent_to(&sent, "processor.to.audit-a").len(), 1);
    let dead_letters = sent_to(&sent, DLQ);
    assert_eq!(dead_letters.len(), 1);
    assert_eq!(dead_letters[0].payload, value);
    assert_eq!(
        header(dead_letters[0], dead_letter_headers::OUTPUT_TOPIC),
        Some("processor.to.audit-b")
    );
    let stats = &harness.stats;
    assert_eq!(stats.routed_by_topic.get("processor.to.audit-a"), 1);
    assert_eq!(stats.routed_by_topic.get("processor.to.audit-b"), 0);
    assert_eq!(stats.routed_by_topic.get("processor.to.finance"), 1);
    assert_eq!(stats.dead_lettered_for(DeadLetterCode::Refused), 1);
    harness.stop().await;
}

#[tokio::test]
async fn dead_letter_too_large_for_its_topic_is_replaced_by_a_digest_record() {
    let harness = start(Completion::AckImmediately, |_| {}).await;
    // The dead-letter topic takes no record with a value (as if its limit were tiny).
    harness.sink.fail_records_with_code(
        |record| &*record.topic == DLQ && !record.payload.is_empty(),
        KafkaErrorCode::MESSAGE_SIZE_TOO_LARGE,
    );
    refuse(
        &harness,
        "processor.to.marketing",
        KafkaErrorCode::MESSAGE_SIZE_TOO_LARGE,
    );
    let garbage = b"\x07not avro at all".to_vec();
    let refused_value = harness.event("FINANCE", "MARKETING", "refused, then too large");
    harness.source.push_records(vec![
        harness.record(0, 0, Some(garbage.clone())),
        harness.record(0, 1, Some(refused_value.clone())),
    ]);
    assert!(harness.committer.wait_for(&partition(0), 2, WAIT).await);
    let sent = harness.sink.sent();
    let digests: Vec<_> = sent_to(&sent, DLQ)
        .into_iter()
        .filter(|record| record.payload.is_empty())
        .collect();
    assert_eq!(digests.len(), 2);
    for (digest, value, reason, offset) in [
        (digests[0], &garbage, "undecodable", "0"),
        (digests[1], &refused_value, "refused", "1"),
    ] {
        let sha256: String = Sha256::digest(value)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(header(digest, dead_letter_headers::REASON), Some(reason));
        assert_eq!(
            header(digest, dead_letter_headers::VALUE_OMITTED),
            Some("true")
        );
        assert_eq!(
            header(digest, dead_letter_headers::VALUE_SIZE),
            Some(value.len().to_string().as_str())
        );
        assert_eq!(
            header(digest, dead_letter_headers::VALUE_SHA256),
            Some(sha256.as_str())
        );
        assert_eq!(
            header(digest, dead_letter_headers::SOURCE_TOPIC),
            Some(INPUT)
        );
        assert_eq!(
            header(digest, dead_letter_headers::SOURCE_OFFSET),
            Some(offset)
        );
        assert_eq!(
            digest.key.as_deref(),
            Some(format!("key-{offset}").as_bytes())
        );
    }
    assert_eq!(
        header(digests[1], dead_letter_headers::OUTPUT_TOPIC),
        Some("processor.to.marketing")
    );
    assert_eq!(
        harness.stats.dead_lettered_for(DeadLetterCode::Undecodable),
        1
    );
    assert_eq!(harness.stats.dead_lettered_for(DeadLetterCode::Refused), 1);
    assert_eq!(harness.stats.stuck_records.load(Relaxed), 0);
    harness.stop().await;
}

#[tokio::test]
async fn dead_letter_topic_refusing_is_retried_and_never_drops_the_dead_letter() {
    let harness = start(Completion::AckImmediately, |config| config.retry.budget = 2).await;
    refuse(&harness, DLQ, KafkaErrorCode::TOPIC_AUTHORIZATION_FAILED);
    harness.source.push_records(vec![
        harness.record(0, 0, Some(harness.event("FINANCE", "SALES", "unknown"))),
        harness.record(0, 1, Some(harness.event("FINANCE", "FINANCE", "fine"))),
    ]);
    tokio::time::timeout(WAIT, async {
        while harness.stats.stuck_records.load(Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the dead letter is reported stuck");
    assert_eq!(harness.stats.routed.load(Relaxed), 1, "the stream goes on");
    assert_eq!(harness.committer.committed(&partition(0)), None);
    assert!(
        sent_to(&harness.sink.sent(), DLQ)
            .iter()
            .all(|record| !record.payload.is_empty()),
        "not mistaken for too large"
    );
    harness.sink.clear_failure_rules();
    assert!(harness.committer.wait_for(&partition(0), 2, WAIT).await);
    assert_eq!(
        harness
            .stats
            .dead_lettered_for(DeadLetterCode::UnknownDestination),
        1
    );
    assert_eq!(harness.stats.stuck_records.load(Relaxed), 0);
    harness.stop().await;
}

#[tokio::test]
async fn retries_failed_deliveries_and_commits_once_delivered() {
    let harness = start(Completion::AckImmediately, |_| {}).await;
    harness.sink.fail_next(3, true);
    harness.source.push_records(vec![harness.record(
        0,
        0,
        Some(harness.event("FINANCE", "FINANCE", "x")),
    )]);
    assert!(harness.committer.wait_for(&partition(0), 1, WAIT).await);
    assert_eq!(
        harness.sink.sent().len(),
        4,
        "three failures, then a delivery"
    );
    assert_eq!(harness.stats.produce_retries.load(Relaxed), 3);
    assert_eq!(harness.stats.routed.load(Relaxed), 1);
    harness.stop().await;
}

#[tokio::test]
async fn stuck_record_blocks_its_partition_and_is_reported() {
    let harness = start(Completion::AckImmediately, |config| config.retry.budget = 2).await;
    harness
        .sink
        .fail_records_where(|record| &*record.topic == "processor.to.marketing", true);
    harness.source.push_records(vec![
        harness.record(0, 0, Some(harness.event("FINANCE", "FINANCE", "ok"))),
        harness.record(0, 1, Some(harness.event("FINANCE", "MARKETING", "stuck"))),
        harness.record(0, 2, Some(harness.event("FINANCE", "FINANCE", "ok"))),
    ]);
    assert!(harness.committer.wait_for(&partition(0), 1, WAIT).await);
    tokio::time::timeout(WAIT, async {
        while harness.stats.stuck_records.load(Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the record is reported stuck");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        harness.committer.committed(&partition(0)),
        Some(1),
        "never past the stuck offset 1"
    );
    harness.sink.clear_failure_rules();
    assert!(harness.committer.wait_for(&partition(0), 3, WAIT).await);
    assert_eq!(harness.stats.stuck_records.load(Relaxed), 0);
    harness.stop().await;
}

#[tokio::test]
async fn queue_full_is_retried_without_losing_the_record() {
    let harness = start(Completion::AckImmediately, |_| {}).await;
    harness.sink.reject_next_with_queue_full(2);
    harness.source.push_records(vec![harness.record(
        0,
        0,
        Some(harness.event("FINANCE", "FINANCE", "x")),
    )]);
    assert!(harness.committer.wait_for(&partition(0), 1, WAIT).await);
    assert_eq!(harness.stats.routed.load(Relaxed), 1);
    harness.stop().await;
}

#[tokio::test]
async fn revoke_drains_in_flight_records_and_answers_their_positions() {
    let harness = start(Completion::Hold, |_| {}).await;
    harness.source.push_records(vec![
        harness.record(1, 10, Some(harness.event("FINANCE", "FINANCE", "x"))),
        harness.record(1, 11, Some(harness.event("FINANCE", "FINANCE", "y"))),
    ]);
    harness.wait_sent(2).await;
    let revoke = harness.source.push_revoke(vec![partition(1)]);
    let sink = harness.sink.clone();
    let acker = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        sink.ack_all()
    });
    let positions = tokio::time::timeout(WAIT, revoke.answer())
        .await
        .expect("revoke answered")
        .expect("positions returned");
    assert_eq!(acker.await.expect("acker"), 2);
    assert_eq!(positions.len(), 1);
    assert_eq!(positions[0].partition, partition(1));
    assert_eq!(positions[0].offset, 12);
    harness.stop().await;
}

#[tokio::test]
async fn lost_partition_is_dropped_without_commit() {
    let harness = start(Completion::Hold, |_| {}).await;
    harness.source.push_records(vec![harness.record(
        1,
        0,
        Some(harness.event("FINANCE", "FINANCE", "x")),
    )]);
    harness.wait_sent(1).await;
    harness.source.push_lost(vec![partition(1)]);
    harness.source.wait_drained().await;
    harness.sink.ack_all();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(harness.committer.committed(&partition(1)), None);
    let summary = harness.stop().await;
    assert_eq!(summary.abandoned_in_flight, 0);
}

#[tokio::test]
async fn shutdown_drains_and_commits_everything_acknowledged() {
    let harness = start(Completion::Hold, |config| {
        config.commit_policy.max_interval = Duration::from_secs(3600);
        config.commit_policy.max_completions = 1_000_000;
    })
    .await;
    harness.source.push_records(
        (0..5)
            .map(|offset| harness.record(0, offset, Some(harness.event("FINANCE", "FINANCE", "x"))))
            .collect(),
    );
    harness.wait_sent(5).await;
    let sink = harness.sink.clone();
    let committer = harness.committer.clone();
    harness.stop.send(true).expect("pipeline listens");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sink.ack_all(), 5, "records are drained, not abandoned");
    let summary = tokio::time::timeout(WAIT, harness.run)
        .await
        .expect("stops")
        .expect("no panic")
        .expect("run ok");
    assert_eq!(summary.abandoned_in_flight, 0);
    assert!(summary.final_commit_ok);
    assert_eq!(committer.committed(&partition(0)), Some(5));
}

#[tokio::test]
async fn in_flight_records_are_bounded() {
    let harness = start(Completion::Hold, |config| config.max_in_flight = 10).await;
    for batch in 0..10 {
        harness.source.push_records(
            (0..5)
                .map(|index| {
                    harness.record(
                        0,
                        batch * 5 + index,
                        Some(harness.event("FINANCE", "FINANCE", "x")),
                    )
                })
                .collect(),
        );
    }
    harness.wait_sent(10).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(harness.sink.sent().len(), 10, "reading stops at the bound");
    assert_eq!(harness.sink.ack_all(), 10);
    harness.wait_sent(20).await;
    while harness.sink.sent().len() < 50 {
        harness.sink.ack_all();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    harness.sink.ack_all();
    assert!(harness.committer.wait_for(&partition(0), 50, WAIT).await);
    harness.stop().await;
}

#[tokio::test]
async fn registry_outage_holds_the_stream_instead_of_dead_lettering() {
    let harness = start(Completion::AckImmediately, |_| {}).await;
    harness.registry.failures.store(3, Relaxed);
    harness.source.push_records(vec![harness.record(
        0,
        0,
        Some(harness.event("FINANCE", "FINANCE", "x")),
    )]);
    assert!(harness.committer.wait_for(&partition(0), 1, WAIT).await);
    assert_eq!(harness.stats.registry_failures.load(Relaxed), 3);
    assert_eq!(harness.stats.dead_lettered_total(), 0);
    assert_eq!(harness.stats.routed.load(Relaxed), 1);
    harness.stop().await;
}

#[tokio::test]
async fn schema_id_a_lagging_registry_does_not_know_yet_is_held_back_then_routed() {
    let harness = start(Completion::AckImmediately, |config| {
        config.not_found_retry = Duration::from_secs(30);
    })
    .await;
    harness.registry.not_found.store(3, Relaxed);
    harness.source.push_records(vec![
        harness.record(0, 0, Some(harness.event("FINANCE", "FINANCE", "x"))),
        harness.record(0, 1, Some(harness.event("FINANCE", "FINANCE", "y"))),
    ]);
    assert!(harness.committer.wait_for(&partition(0), 2, WAIT).await);
    assert_eq!(harness.stats.dead_lettered_total(), 0);
    assert_eq!(harness.stats.routed.load(Relaxed), 2);
    assert_eq!(
        harness.registry.by_id_calls.load(Relaxed),
        4,
        "3 × not found, then found"
    );
    assert_eq!(harness.stats.registry_failures.load(Relaxed), 3);
    harness.stop().await;
}

#[tokio::test]
async fn schema_id_unknown_for_the_whole_window_is_dead_lettered_and_remembered_for_a_while() {
    let harness = start(Completion::AckImmediately, |config| {
        config.not_found_retry = Duration::from_millis(1500);
    })
    .await;
    harness.registry.not_found.store(u32::MAX, Relaxed);
    let started = std::time::Instant::now();
    harness.source.push_records(vec![harness.record(
        0,
        0,
        Some(harness.event("FINANCE", "FINANCE", "x")),
    )]);
    harness.wait_sent(1).await;
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(1500),
        "held back for the window: {held:?}"
    );
    let sent = harness.sink.sent();
    assert_eq!(&*sent[0].record.topic, DLQ);
    assert_eq!(
        header(&sent[0].record, dead_letter_headers::REASON),
        Some("undecodable")
    );
    let calls = harness.registry.by_id_calls.load(Relaxed);
    assert!(calls > 1, "asked again while holding: {calls}");
    // Right after the window, the same id is dead-lettered at once, without asking.
    harness.source.push_records(vec![harness.record(
        0,
        1,
        Some(harness.event("FINANCE", "FINANCE", "y")),
    )]);
    harness.wait_sent(2).await;
    assert_eq!(&*harness.sink.sent()[1].record.topic, DLQ);
    assert_eq!(harness.registry.by_id_calls.load(Relaxed), calls);
    assert!(harness.committer.wait_for(&partition(0), 2, WAIT).await);
    harness.stop().await;
}

#[tokio::test]
async fn records_of_unknown_schema_ids_are_held_back_once_per_id_not_once_per_record() {
    let window = Duration::from_millis(500);
    let harness = start(Completion::AckImmediately, |config| {
        config.not_found_retry = window;
    })
    .await;
    harness.registry.not_found.store(u32::MAX, Relaxed);
    // Two ids the registry never learns, taking turns, three records each.
    let with_id = |id: u8, payload: &str| {
        let mut value = harness.event("FINANCE", "FINANCE", payload);
        value[1..5].copy_from_slice(&[0, 0, 0x7f, id]);
        Some(value)
    };
    let records = (0..6)
        .map(|offset| {
            let id = if offset % 2 == 0 { 1 } else { 2 };
            harness.record(0, offset, with_id(id, &format!("p{offset}")))
        })
        .collect();
    let started = std::time::Instant::now();
    harness.source.push_records(records);
    harness.wait_sent(6).await;
    let elapsed = started.elapsed();
    assert!(
        harness
            .sink
            .sent()
            .iter()
            .all(|sent| &*sent.record.topic == DLQ),
        "every record of an unknown id is dead-lettered"
    );
    // One wait per id (about 2 × the window), not one per record (6 × the window).
    assert!(
        elapsed >= 2 * window && elapsed < 4 * window,
        "held back for {elapsed:?} with a window of {window:?}"
    );
    assert!(harness.committer.wait_for(&partition(0), 6, WAIT).await);
    harness.stop().await;
}

#[tokio::test]
async fn new_routing_table_applies_to_records_decided_after_the_swap() {
    let harness = start(Completion::AckImmediately, |_| {}).await;
    harness.source.push_records(vec![harness.record(
        0,
        0,
        Some(harness.event("FINANCE", "FINANCE", "before")),
    )]);
    harness.wait_sent(1).await;
    harness.reroute_finance().await;
    harness.source.push_records(vec![harness.record(
        0,
        1,
        Some(harness.event("FINANCE", "FINANCE", "after")),
    )]);
    harness.wait_sent(2).await;
    let topics: Vec<String> = harness
        .sink
        .sent()
        .iter()
        .map(|sent| sent.record.topic.to_string())
        .collect();
    assert_eq!(topics, ["processor.to.finance", "processor.to.finance-v2"]);
    harness.stop().await;
}

#[tokio::test]
async fn source_failure_stops_the_pipeline_with_an_error() {
    let harness = start(Completion::AckImmediately, |_| {}).await;
    harness.source.push_error(ports::AdapterError::Injected {
        what: "consumer died".to_owned(),
        retriable: false,
    });
    let outcome = tokio::time::timeout(WAIT, harness.run)
        .await
        .expect("stops")
        .expect("no panic");
    assert!(outcome.is_err());
}

#[tokio::test]
async fn reports_routed_per_topic_routing_version_commit_latency_and_retries() {
    let harness = start(Completion::AckImmediately, |_| {}).await;
    harness.sink.fail_next(1, true);
    harness.source.push_records(vec![
        harness.record(0, 0, Some(harness.event("FINANCE", "FINANCE", "a"))),
        harness.record(0, 1, Some(harness.event("FINANCE", "AUDIT", "fan-out"))),
    ]);
    assert!(harness.committer.wait_for(&partition(0), 2, WAIT).await);
    let first_version = Router::from_toml_str(ROUTING).expect("valid").version();
    assert_eq!(harness.stats.routing_version.load(Relaxed), first_version);
    let rerouted = harness.reroute_finance().await;
    harness.source.push_records(vec![harness.record(
        0,
        2,
        Some(harness.event("FINANCE", "FINANCE", "b")),
    )]);
    assert!(harness.committer.wait_for(&partition(0), 3, WAIT).await);

    let stats = &harness.stats;
    let second_version = Router::from_toml_str(&rerouted).expect("valid").version();
    assert_ne!(second_version, first_version);
    assert_eq!(stats.routing_version.load(Relaxed), second_version);
    let per_topic: Vec<(String, u64)> = stats
        .routed_by_topic
        .snapshot()
        .into_iter()
        .map(|(topic, count)| (topic.to_string(), count))
        .collect();
    assert_eq!(
        per_topic,
        [
            ("processor.to.audit-a".to_owned(), 1),
            ("processor.to.audit-b".to_owned(), 1),
            ("processor.to.finance".to_owned(), 1),
            ("processor.to.finance-v2".to_owned(), 1),
            ("processor.to.marketing".to_owned(), 0),
        ]
    );
    assert_eq!(stats.routed.load(Relaxed), 4);
    assert_eq!(stats.produce_retries.load(Relaxed), 1);
    assert_eq!(stats.produce_permanent_failures.load(Relaxed), 0);
    assert!(stats.commits.load(Relaxed) >= 1);
    assert_eq!(
        stats.commit_latency.count.load(Relaxed),
        stats.commits.load(Relaxed) + stats.commit_failures.load(Relaxed)
    );
    harness.stop().await;
}

/// Exactly-once: a failed delivery aborts the transaction; nothing of it is visible to a
/// `read_committed` reader, the source is rewound to the last committed position (the first
/// tracked offset here) and the records read again are routed and dead-lettered exactly once.
#[tokio::test]
async fn exactly_once_aborts_a_failed_transaction_rewinds_and_routes_again() {
    let harness = start_with(Completion::Hold, true, |_| {}).await;
    let records = |harness: &Harness, from: i64| -> Vec<InboundRecord> {
        (from..4)
            .map(|offset| match offset {
                3 => harness.record(0, offset, Some(b"not avro".to_vec())),
                _ => harness.record(0, offset, Some(harness.event("FINANCE", "FINANCE", "x"))),
            })
            .collect()
    };
    harness.source.push_records(records(&harness, 0));
    harness.wait_sent(4).await;
    assert!(harness.sink.transaction_open());
    let tags = harness.sink.held_tags();
    assert!(harness.sink.ack(tags[0]));
    assert!(harness.sink.ack(tags[1]));
    // A failed delivery dooms the transaction (librdkafka would fail its commit).
    assert!(harness.sink.fail(tags[2], true));
    let rewound = tokio::time::timeout(WAIT, async {
        while harness.source.rewinds().is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(rewound.is_ok(), "the source is rewound after the abort");
    assert_eq!(
        harness.source.rewinds(),
        vec![vec![ports::CommitPosition {
            partition: partition(0),
            offset: 0
        }]]
    );
    assert_eq!(harness.sink.transactions(), (0, 1));
    assert_eq!(
        harness.sink.aborted_records().len(),
        2,
        "the two acknowledged outputs"
    );
    assert!(harness.sink.committed_records().is_empty());
    assert!(
        harness.sink.held_tags().is_empty(),
        "the abort purged the held dead letter"
    );
    assert_eq!(harness.committer.committed(&partition(0)), None);
    assert_eq!(harness.stats.transactions_aborted.load(Relaxed), 1);

    // Read again from the rewind position: everything is routed once and committed with it.
    harness.sink.set_completion(Completion::AckImmediately);
    harness.source.push_records(records(&harness, 0));
    assert!(harness.committer.wait_for(&partition(0), 4, WAIT).await);
    let committed = harness.sink.committed_records();
    let keys: Vec<_> = committed
        .iter()
        .map(|sent| (sent.record.topic.to_string(), sent.record.key.clone()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("processor.to.finance".to_owned(), Some(b"key-0".to_vec())),
            ("processor.to.finance".to_owned(), Some(b"key-1".to_vec())),
            ("processor.to.finance".to_owned(), Some(b"key-2".to_vec())),
            (DLQ.to_owned(), Some(b"key-3".to_vec())),
        ]
    );
    let summary = harness.stop().await;
    assert!(summary.final_commit_ok);
    assert_eq!(summary.abandoned_in_flight, 0);
}

/// Exactly-once: outputs the broker refuses for good (a missing topic) abort the transaction,
/// as librdkafka makes them; on the replay after the rewind each refused output is dead-lettered
/// as `refused` inside the new transaction instead of produced again, while the input's other
/// outputs (fan-out) and the other inputs route. A `read_committed` reader sees each once.
#[tokio::test]
async fn exactly_once_refused_outputs_abort_once_and_are_dead_lettered_on_the_replay() {
    let harness = start_with(Completion::Hold, true, |_| {}).await;
    for topic in ["processor.to.marketing", "processor.to.audit-b"] {
        refuse(&harness, topic, KafkaErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
    }
    let values = [
        harness.event("FINANCE", "FINANCE", "before"),
        harness.event("FINANCE", "MARKETING", "refused"),
        harness.event("FINANCE", "AUDIT", "fan-out"),
        harness.event("FINANCE", "FINANCE", "after"),
    ];
    let records = |harness: &Harness| -> Vec<InboundRecord> {
        values
            .iter()
            .enumerate()
            .map(|(offset, value)| harness.record(0, offset as i64, Some(value.clone())))
            .collect()
    };
    harness.source.push_records(records(&harness));
    let rewound = tokio::time::timeout(WAIT, async {
        while harness.source.rewinds().is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(rewound.is_ok(), "the refusals abort the transaction");
    assert_eq!(harness.sink.transactions(), (0, 1));
    assert!(harness.sink.committed_records().is_empty());
    let attempts = harness.sink.sent();
    assert_eq!(sent_to(&attempts, "processor.to.marketing").len(), 1);
    assert_eq!(sent_to(&attempts, "processor.to.audit-b").len(), 1);
    assert!(
        sent_to(&attempts, DLQ).is_empty(),
        "nothing dead-lettered yet"
    );

    // The replay: the refused outputs become dead letters, the rest routes, one commit.
    harness.sink.set_completion(Completion::AckImmediately);
    harness.source.push_records(records(&harness));
    assert!(harness.committer.wait_for(&partition(0), 4, WAIT).await);
    let sent = harness.sink.sent();
    assert_eq!(
        sent_to(&sent, "processor.to.marketing").len(),
        1,
        "not produced again"
    );
    assert_eq!(sent_to(&sent, "processor.to.audit-b").len(), 1);
    let committed: Vec<_> = harness
        .sink
        .committed_records()
        .into_iter()
        .map(|sent| sent.record)
        .collect();
    let summary: Vec<_> = committed
        .iter()
        .map(|record| {
            (
                record.topic.to_string(),
                record.key.clone().unwrap_or_default(),
                header(record, dead_letter_headers::OUTPUT_TOPIC).map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("processor.to.finance".to_owned(), b"key-0".to_vec(), None),
            (
                DLQ.to_owned(),
                b"key-1".to_vec(),
                Some("processor.to.marketing".to_owned())
            ),
            ("processor.to.audit-a".to_owned(), b"key-2".to_vec(), None),
            (
                DLQ.to_owned(),
                b"key-2".to_vec(),
                Some("processor.to.audit-b".to_owned())
            ),
            ("processor.to.finance".to_owned(), b"key-3".to_vec(), None),
        ]
    );
    let dead_letter = &committed[1];
    assert_eq!(dead_letter.payload, values[1], "the input's own bytes");
    assert_eq!(
        header(dead_letter, dead_letter_headers::REASON),
        Some("refused")
    );
    assert_eq!(
        header(dead_letter, dead_letter_headers::SOURCE_OFFSET),
        Some("1")
    );
    let error = header(dead_letter, dead_letter_headers::ERROR).unwrap_or_default();
    assert!(error.contains("processor.to.marketing"), "{error}");
    let stats = &harness.stats;
    assert_eq!(stats.dead_lettered_for(DeadLetterCode::Refused), 2);
    assert_eq!(stats.transactions_aborted.load(Relaxed), 1);
    assert!(stats.transactions_committed.load(Relaxed) >= 1);
    assert_eq!(stats.produce_permanent_failures.load(Relaxed), 2);
    assert_eq!(harness.sink.transactions().1, 1, "no second abort");
    let summary = harness.stop().await;
    assert!(summary.final_commit_ok);
    assert_eq!(summary.abandoned_in_flight, 0);
}

/// Exactly-once: a commit that fails (not fatally) aborts; a revoke commits the transaction
/// before the partitions move and answers nothing to commit outside it.
#[tokio::test]
async fn exactly_once_failed_commit_aborts_and_revoke_commits_inside_the_transaction() {
    let harness = start_with(Completion::AckImmediately, true, |_| {}).await;
    harness.committer.fail_next(1, true);
    harness.source.push_records(vec![harness.record(
        1,
        7,
        Some(harness.event("FINANCE", "FINANCE", "x")),
    )]);
    let rewound = tokio::time::timeout(WAIT, async {
        while harness.source.rewinds().is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(rewound.is_ok(), "the failed commit aborts and rewinds");
    assert_eq!(harness.sink.transactions(), (0, 1));
    assert!(harness.sink.committed_records().is_empty());
    harness.source.push_records(vec![harness.record(
        1,
        7,
        Some(harness.event("FINANCE", "FINANCE", "x")),
    )]);
    let revoke = harness.source.push_revoke(vec![partition(1)]);
    let answer = tokio::time::timeout(WAIT, revoke.answer())
        .await
        .expect("answered");
    assert_eq!(
        answer,
        Some(Vec::new()),
        "committed in the transaction, not outside"
    );
    assert_eq!(harness.committer.committed(&partition(1)), Some(8));
    assert_eq!(harness.sink.committed_records().len(), 1);
    harness.stop().await;
}

/// Exactly-once: a fenced producer ends the run with a fatal transaction error.
#[tokio::test]
async fn exactly_once_fenced_producer_stops_the_run() {
    let harness = start_with(Completion::AckImmediately, true, |_| {}).await;
    harness.committer.fence();
    harness.source.push_records(vec![harness.record(
        0,
        0,
        Some(harness.event("FINANCE", "FINANCE", "x")),
    )]);
    let outcome = tokio::time::timeout(WAIT, harness.run)
        .await
        .expect("the run ends")
        .expect("no panic");
    let error = outcome.expect_err("a fenced producer is fatal");
    assert!(error.is_fatal_transaction(), "{error}");
    assert!(harness.sink.committed_records().is_empty());
}

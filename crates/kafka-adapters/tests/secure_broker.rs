//! The adapters on a broker that authenticates (TLS + SASL/SCRAM-SHA-512) and authorizes (the
//! standard authorizer, nothing allowed without an ACL): a processor's consumer group member,
//! producer and transactional producer work with the minimal ACLs of docs/OPERATIONS.md
//! ("Broker security"), and without one of them, with a wrong password or without TLS they
//! fail with an error that names the cause, within a bounded time.
//!
//! One test with one broker of its own (a broker start and every ACL change are JVM starts:
//! seconds each), whose scenarios run side by side, each with its own user, topics and group.
//! Needs the local stack (`require_stack!`): that is where Kafka has been fetched.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kafka_adapters::{
    AdapterError, CommitPosition, ConsumerSettings, DeliveryReport, InboundRecord, KafkaConfig,
    KafkaErrorCode, KafkaRecordSink, KafkaRecordSource, OffsetCommitter, OutboundRecord, ReadUntil,
    RecordSink, RecordSource, SourceEvent, TopicAdmin, TopicPartition, kafka_admin, kafka_consumer,
    kafka_producer, kafka_transactional_producer, read_topic,
};
use test_support::{
    Acl, AclOperation, AclResource, FAST_GROUP_PROPERTIES, ScramUser, SecureBroker, create_topics,
    produce_and_wait, require_stack, unique_name,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Upper bound for what works (a group join, a transaction).
const PATIENCE: Duration = Duration::from_secs(60);
/// Upper bound for a refusal to reach the caller as an error: well below "hangs".
const REFUSED_WITHIN: Duration = Duration::from_secs(30);
/// Records on each input topic.
const INPUT_RECORDS: usize = 10;

/// Everything the test's clients log, kept to assert on what an operator would read.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct CapturedLogs;

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        std::io::stderr().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .with_writer(|| CapturedLogs)
        .try_init();
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
}

/// One processor's names: its user, input, outputs and group (its transactional ids are
/// `<group id>.<processor id>`, as the processor's are).
#[derive(Debug, Clone)]
struct Processor {
    user: ScramUser,
    input: String,
    output: String,
    dead_letters: String,
    group: String,
}

impl Processor {
    fn new(role: &str) -> Self {
        Self {
            user: ScramUser::new(format!("processor-{role}"), unique_name("password")),
            input: unique_name(&format!("{role}-in")),
            output: unique_name(&format!("{role}-out")),
            dead_letters: unique_name(&format!("{role}-dlq")),
            group: unique_name(&format!("{role}-group")),
        }
    }

    fn transactional_id(&self) -> String {
        format!("{}.processor-0", self.group)
    }

    /// The minimal ACLs of a processor (docs/OPERATIONS.md, "Broker security"). WRITE and READ
    /// imply DESCRIBE; WRITE on a topic lets the idempotent producer get its producer id
    /// without IDEMPOTENT_WRITE on the cluster (Kafka 3.0+).
    fn minimal_acls(&self) -> Vec<(Missing, Acl)> {
        let allow = |operation, resource| Acl::allow(&self.user.name, operation, resource);
        vec![
            (
                Missing::ReadInput,
                allow(AclOperation::Read, AclResource::Topic(self.input.clone())),
            ),
            (
                Missing::ReadGroup,
                allow(AclOperation::Read, AclResource::Group(self.group.clone())),
            ),
            (
                Missing::WriteOutput,
                allow(AclOperation::Write, AclResource::Topic(self.output.clone())),
            ),
            (
                Missing::WriteDeadLetters,
                allow(
                    AclOperation::Write,
                    AclResource::Topic(self.dead_letters.clone()),
                ),
            ),
            (
                Missing::TransactionalId,
                allow(
                    AclOperation::Write,
                    AclResource::TransactionalIdPrefix(format!("{}.", self.group)),
                ),
            ),
        ]
    }

    fn acls_without(&self, missing: Option<Missing>) -> Vec<Acl> {
        self.minimal_acls()
            .into_iter()
            .filter(|(which, _)| Some(*which) != missing)
            .map(|(_, acl)| acl)
            .collect()
    }

    fn config(&self, broker: &SecureBroker) -> KafkaConfig {
        with_fast_groups(broker.client_config(&self.user))
    }

    fn consumer(
        &self,
        config: &KafkaConfig,
    ) -> (KafkaRecordSource, kafka_adapters::KafkaOffsetCommitter) {
        kafka_consumer(
            config,
            ConsumerSettings {
                batch_max: 64,
                ..ConsumerSettings::new(&self.group, vec![self.input.clone()])
            },
        )
        .expect("consumer created")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    ReadInput,
    ReadGroup,
    WriteOutput,
    WriteDeadLetters,
    TransactionalId,
}

fn with_fast_groups(config: KafkaConfig) -> KafkaConfig {
    FAST_GROUP_PROPERTIES
        .iter()
        .fold(config, |config, (key, value)| config.with(*key, *value))
}

fn record(topic: &str, value: &str) -> OutboundRecord {
    OutboundRecord {
        topic: Arc::from(topic),
        key: None,
        payload: value.as_bytes().to_vec(),
        headers: Vec::new(),
    }
}

/// Runs a blocking broker call (Kafka's tools) off the async workers.
async fn blocking<T: Send + 'static>(
    broker: &Arc<SecureBroker>,
    call: impl FnOnce(&SecureBroker) -> T + Send + 'static,
) -> T {
    let broker = Arc::clone(broker);
    tokio::task::spawn_blocking(move || call(&broker))
        .await
        .expect("broker call completed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn minimal_acls_suffice_and_each_refusal_fails_clearly_over_sasl_ssl() {
    let _stack = require_stack!();
    init_logs();
    let allowed = Processor::new("allowed");
    let no_read_input = Processor::new("no-read-input");
    let no_write_output = Processor::new("no-write-output");
    let no_transactional_id = Processor::new("no-txn-id");
    let processors = [
        &allowed,
        &no_read_input,
        &no_write_output,
        &no_transactional_id,
    ];
    // Users at format time, but one added to the running broker like an operator would.
    let format_time_users = [&allowed, &no_read_input, &no_write_output].map(|p| p.user.clone());
    let broker = Arc::new(
        tokio::task::spawn_blocking(move || {
            SecureBroker::start_with_users("kafka-adapters", &format_time_users)
        })
        .await
        .expect("secure broker started"),
    );
    let late_user = no_transactional_id.user.clone();
    let user_added = blocking(&broker, move |broker| broker.add_users(&[late_user]));

    // Setup as the anonymous super user of the plaintext listener: topics and input records.
    let setup = KafkaConfig::new(broker.plaintext_bootstrap());
    let topics: Vec<&str> = processors
        .iter()
        .flat_map(|p| [p.input.as_str(), p.output.as_str(), p.dead_letters.as_str()])
        .collect();
    let inputs = processors
        .iter()
        .flat_map(|p| (0..INPUT_RECORDS).map(|i| record(&p.input, &format!("input-{i}"))))
        .collect();
    let fixtures = async {
        create_topics(&setup, topics, 1).await;
        produce_and_wait(&setup, inputs, PATIENCE).await;
    };
    tokio::join!(user_added, fixtures);

    // Each processor has the minimal ACLs but one.
    let acls: Vec<Acl> = [
        allowed.acls_without(None),
        no_read_input.acls_without(Some(Missing::ReadInput)),
        no_write_output.acls_without(Some(Missing::WriteOutput)),
        no_transactional_id.acls_without(Some(Missing::TransactionalId)),
    ]
    .concat();
    blocking(&broker, move |broker| broker.grant(&acls)).await;

    tokio::join!(
        allowed_processor_consumes_produces_and_commits(&broker, &allowed),
        consumer_without_read_on_its_input_is_refused(&broker, &no_read_input),
        producer_without_write_on_an_output_gets_that_record_refused(&broker, &no_write_output),
        transactional_producer_without_its_transactional_id_is_refused(
            &broker,
            &no_transactional_id
        ),
        wrong_password_is_refused(&broker, &allowed),
        plaintext_client_on_the_tls_port_fails(&broker, &allowed),
    );

    // Revoked in turn: the allowed processor without READ on its group.
    let revoked = allowed.minimal_acls()[1].1.clone();
    blocking(&broker, move |broker| broker.revoke(&[revoked])).await;
    consumer_without_read_on_its_group_is_refused(&broker, &allowed).await;
    // Reading without a group (event-consumer without --group, dlq-replay) needs no group ACL.
    let read = read_topic(
        &allowed.config(&broker),
        &allowed.input,
        ReadUntil::Count(INPUT_RECORDS),
        PATIENCE,
    )
    .await
    .expect("READ on the topic is enough to read it without a group");
    assert_eq!(read.len(), INPUT_RECORDS);

    let logs = logs();
    for processor in processors {
        assert!(
            !logs.contains(&processor.user.password),
            "a password is in the logs"
        );
    }
}

/// (a) With exactly the minimal ACLs: consumes, produces to the output and the dead-letter
/// topic and commits, first at-least-once (producer, then offset commit), then exactly-once
/// (transaction carrying the offsets) in the same group.
async fn allowed_processor_consumes_produces_and_commits(
    broker: &Arc<SecureBroker>,
    processor: &Processor,
) {
    let config = processor.config(broker);
    let half = INPUT_RECORDS / 2;

    // At-least-once: the first half.
    let (mut source, committer) = processor.consumer(&config);
    let records = consume(&mut source, half).await;
    let (reports_sender, mut reports) = mpsc::unbounded_channel();
    let sink = kafka_producer(&config, reports_sender).expect("producer");
    forward(&sink, processor, &records[..half]);
    expect_delivered(&mut reports, half + 1).await;
    committer
        .commit(vec![position(&processor.input, half)])
        .await
        .expect("offsets committed with READ on the group and the input");
    source.release().await;

    // Exactly-once: the second half, in a transaction that carries the offsets.
    let (reports_sender, mut reports) = mpsc::unbounded_channel();
    let sink = kafka_transactional_producer(
        &config,
        &processor.transactional_id(),
        PATIENCE,
        reports_sender,
    )
    .await
    .expect("transactions initialised with WRITE on the transactional id prefix");
    let (mut source, committer) = processor.consumer(&config);
    let committer = committer.transactional(&sink, PATIENCE);
    let records = consume(&mut source, INPUT_RECORDS - half).await;
    assert_eq!(
        records[0].offset,
        i64::try_from(half).expect("small"),
        "resumes at the commit"
    );
    committer.begin_transaction().expect("transaction begun");
    forward(&sink, processor, &records);
    committer
        .commit(vec![position(&processor.input, INPUT_RECORDS)])
        .await
        .expect("transaction with offsets committed");
    expect_delivered(&mut reports, INPUT_RECORDS - half + 1).await;
    source.release().await;

    // What a read_committed reader and the group see, as the super user.
    let setup = KafkaConfig::new(broker.plaintext_bootstrap());
    let outputs = read_topic(&setup, &processor.output, ReadUntil::End, PATIENCE)
        .await
        .expect("output readable");
    let values: BTreeSet<Vec<u8>> = outputs.into_iter().filter_map(|r| r.payload).collect();
    let expected: BTreeSet<Vec<u8>> = (0..INPUT_RECORDS)
        .map(|i| format!("input-{i}").into_bytes())
        .collect();
    assert_eq!(values, expected, "every input record once on the output");
    let dead_letters = read_topic(&setup, &processor.dead_letters, ReadUntil::End, PATIENCE)
        .await
        .expect("dead-letter topic readable");
    assert_eq!(dead_letters.len(), 2, "one dead letter per phase");
    let committed = kafka_admin(&setup)
        .expect("admin")
        .committed_positions(&processor.group, &processor.input)
        .await
        .expect("committed positions");
    assert_eq!(
        committed,
        vec![(0, Some(i64::try_from(INPUT_RECORDS).expect("small")))]
    );
}

/// (b) Without READ on the input topic the consumer stops with TopicAuthorizationFailed.
async fn consumer_without_read_on_its_input_is_refused(
    broker: &Arc<SecureBroker>,
    processor: &Processor,
) {
    let (source, _committer) = processor.consumer(&processor.config(broker));
    let error = refusal(source).await;
    assert_refused(
        &error,
        KafkaErrorCode::TOPIC_AUTHORIZATION_FAILED,
        &processor.group,
    );
}

/// (b) Without READ on the group the consumer stops with GroupAuthorizationFailed.
async fn consumer_without_read_on_its_group_is_refused(
    broker: &Arc<SecureBroker>,
    processor: &Processor,
) {
    let (source, _committer) = processor.consumer(&processor.config(broker));
    let error = refusal(source).await;
    assert_refused(
        &error,
        KafkaErrorCode::GROUP_AUTHORIZATION_FAILED,
        &processor.group,
    );
}

/// (b) Without WRITE on the output its record is refused for good (the pipeline dead-letters
/// such records), while the dead-letter topic takes its record.
async fn producer_without_write_on_an_output_gets_that_record_refused(
    broker: &Arc<SecureBroker>,
    processor: &Processor,
) {
    let (reports_sender, mut reports) = mpsc::unbounded_channel();
    let sink = kafka_producer(&processor.config(broker), reports_sender).expect("producer");
    sink.send(record(&processor.output, "refused"), 1)
        .expect("enqueued");
    sink.send(record(&processor.dead_letters, "accepted"), 2)
        .expect("enqueued");
    let started = Instant::now();
    for _ in 0..2 {
        let report = timeout(REFUSED_WITHIN, reports.recv())
            .await
            .expect("a delivery report within the bound")
            .expect("reports open");
        match (report.tag, report.result) {
            (1, Err(failure)) => {
                assert_eq!(
                    failure.error.code(),
                    Some(KafkaErrorCode::TOPIC_AUTHORIZATION_FAILED),
                    "{}",
                    failure.error
                );
                assert!(failure.error.refuses_record() && !failure.retriable);
                assert!(
                    failure.error.to_string().contains(&processor.output),
                    "{}",
                    failure.error
                );
            }
            (2, Ok(_)) => {}
            (tag, result) => panic!("record {tag}: unexpected {result:?}"),
        }
    }
    assert!(started.elapsed() < REFUSED_WITHIN);
}

/// (b) Without WRITE on its transactional id the producer is refused at initialisation.
async fn transactional_producer_without_its_transactional_id_is_refused(
    broker: &Arc<SecureBroker>,
    processor: &Processor,
) {
    let (reports_sender, _reports) = mpsc::unbounded_channel();
    let started = Instant::now();
    let result = kafka_transactional_producer(
        &processor.config(broker),
        &processor.transactional_id(),
        REFUSED_WITHIN,
        reports_sender,
    )
    .await;
    let Err(error) = result else {
        panic!("transactions initialised without an ACL on the transactional id");
    };
    assert!(started.elapsed() < REFUSED_WITHIN);
    assert_eq!(
        error.code(),
        Some(KafkaErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
        "{error}"
    );
    assert!(error.is_fatal_transaction(), "{error}");
}

/// (c) A wrong password: the consumer stops with an authentication error, and the log says
/// why.
async fn wrong_password_is_refused(broker: &Arc<SecureBroker>, processor: &Processor) {
    let impostor = ScramUser::new(processor.user.name.clone(), "not-the-password");
    let config = with_fast_groups(broker.client_config(&impostor));
    let group = unique_name("impostor-group");
    let (source, _committer) = kafka_consumer(
        &config,
        ConsumerSettings::new(&group, vec![processor.input.clone()]),
    )
    .expect("consumer created");
    let error = refusal(source).await;
    assert_refused(&error, KafkaErrorCode::AUTHENTICATION, &group);
    let logs = logs();
    assert!(
        logs.contains("SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"),
        "the log names the cause"
    );
}

/// (d) A plaintext client on the TLS port gets no answer: its request fails within its
/// timeout instead of waiting for ever.
async fn plaintext_client_on_the_tls_port_fails(broker: &Arc<SecureBroker>, processor: &Processor) {
    let admin = kafka_admin(&KafkaConfig::new(broker.bootstrap()))
        .expect("admin")
        .with_timeout(Duration::from_secs(5));
    let started = Instant::now();
    let result = admin.partitions_of(&processor.input).await;
    let Err(error) = result else {
        panic!("a plaintext client read metadata from the TLS port: {result:?}");
    };
    assert!(started.elapsed() < REFUSED_WITHIN);
    // The TLS listener drops the connection at the first plaintext bytes; librdkafka sees a
    // transport failure (the same as a broker that is down), not a named refusal.
    assert_eq!(
        error.code(),
        Some(KafkaErrorCode::BROKER_TRANSPORT_FAILURE),
        "{error}"
    );
}

/// The terminal error of `source`, which must come within [`REFUSED_WITHIN`] with no records
/// before it.
async fn refusal(mut source: KafkaRecordSource) -> AdapterError {
    let started = Instant::now();
    loop {
        let event = timeout(REFUSED_WITHIN, source.next_event())
            .await
            .unwrap_or_else(|_| panic!("no error within {REFUSED_WITHIN:?}: the consumer hangs"));
        match event {
            Err(error) => {
                assert!(started.elapsed() < REFUSED_WITHIN);
                return error;
            }
            Ok(SourceEvent::Records(records)) => {
                panic!("{} records read without access", records.len())
            }
            Ok(_) => {}
        }
    }
}

/// `error` is the consumer of `group` refused with `code`, and says so.
fn assert_refused(error: &AdapterError, code: KafkaErrorCode, group: &str) {
    assert!(
        matches!(error, AdapterError::ConsumerRefused { code: refused, .. } if *refused == code),
        "expected a refusal with {code:?}, got: {error}"
    );
    let text = error.to_string();
    assert!(
        text.contains(group) && text.contains(&code.to_string()),
        "{text}"
    );
    assert!(!error.is_retriable());
}

/// Reads until `count` records arrived.
async fn consume(source: &mut KafkaRecordSource, count: usize) -> Vec<InboundRecord> {
    let mut records = Vec::new();
    while records.len() < count {
        match timeout(PATIENCE, source.next_event())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} records arrived", records.len()))
            .expect("source open")
        {
            SourceEvent::Records(batch) => records.extend(batch),
            SourceEvent::Assigned(_) => {}
            other => panic!("unexpected event while consuming: {other:?}"),
        }
    }
    records
}

/// Sends each record to the output and the first one also to the dead-letter topic.
fn forward(sink: &KafkaRecordSink, processor: &Processor, records: &[InboundRecord]) {
    for (tag, inbound) in records.iter().enumerate() {
        let value = String::from_utf8(inbound.payload.clone().unwrap_or_default()).expect("utf-8");
        sink.send(record(&processor.output, &value), tag)
            .unwrap_or_else(|rejected| panic!("{}", rejected.error));
    }
    sink.send(record(&processor.dead_letters, "dead letter"), usize::MAX)
        .unwrap_or_else(|rejected| panic!("{}", rejected.error));
}

async fn expect_delivered(reports: &mut mpsc::UnboundedReceiver<DeliveryReport>, count: usize) {
    for _ in 0..count {
        let report = timeout(PATIENCE, reports.recv())
            .await
            .expect("delivery report in time")
            .expect("reports open");
        if let Err(failure) = report.result {
            panic!("delivery failed: {}", failure.error);
        }
    }
}

fn position(topic: &str, offset: usize) -> CommitPosition {
    CommitPosition {
        partition: TopicPartition::new(topic, 0),
        offset: i64::try_from(offset).expect("small"),
    }
}

//! Behaviour of the rdkafka adapters against a real Kafka-protocol broker.
//!
//! Needs `KAFKA_BOOTSTRAP` (and `SCHEMA_REGISTRY_URL`, checked by `require_stack!`); every test
//! uses its own topics and consumer groups.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_adapters::{
    AdapterError, CommitPosition, ConsumerSettings, DeliveryReport, InboundRecord, KafkaAdmin,
    KafkaConfig, KafkaErrorCode, KafkaRecordSink, KafkaRecordSource, OffsetCommitter,
    OutboundRecord, ReadUntil, RecordSink, RecordSource, SourceEvent, TopicAdmin, TopicPartition,
    TopicSpec, kafka_admin, kafka_consumer, kafka_producer, read_topic,
};
use test_support::{FAST_GROUP_PROPERTIES, Stack, require_stack, unique_name};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Upper bound for anything that waits on the broker (a group join takes well under a second).
const PATIENCE: Duration = Duration::from_secs(60);

fn kafka_config(stack: &Stack) -> KafkaConfig {
    init_logs();
    let config = FAST_GROUP_PROPERTIES.iter().fold(
        KafkaConfig::new(stack.kafka_bootstrap.clone()),
        |config, (key, value)| config.with(*key, *value),
    );
    // librdkafka debug contexts for investigating a failure, e.g. `KA_TEST_DEBUG=cgrp,fetch`.
    match std::env::var("KA_TEST_DEBUG") {
        Ok(contexts) if !contexts.is_empty() => config.with("debug", contexts),
        _ => config,
    }
}

/// Adapter logs in the test output (`RUST_LOG=kafka_adapters=debug` for more).
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_test_writer()
        .try_init();
}

async fn create_topic(admin: &KafkaAdmin, partitions: i32) -> String {
    let topic = unique_name("ka-topic");
    admin
        .create_topics(&[TopicSpec {
            name: topic.clone(),
            partitions,
            replication: 1,
        }])
        .await
        .expect("topic created");
    topic
}

fn consumer_settings(group_id: &str, topic: &str) -> ConsumerSettings {
    ConsumerSettings {
        revoke_timeout: Duration::from_secs(20),
        batch_max: 64,
        channel_capacity: 8,
        ..ConsumerSettings::new(group_id, vec![topic.to_owned()])
    }
}

fn outbound(topic: &str, i: usize) -> OutboundRecord {
    OutboundRecord {
        topic: Arc::from(topic),
        key: Some(format!("key-{i}").into_bytes()),
        payload: format!("payload-{i}").into_bytes(),
        headers: vec![
            ("index".to_owned(), i.to_string().into_bytes()),
            ("origin".to_owned(), b"kafka-adapters-test".to_vec()),
        ],
    }
}

/// Sends `count` records tagged `first_tag..` and waits for all their reports.
async fn produce(
    sink: &KafkaRecordSink,
    reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
    topic: &str,
    indices: std::ops::Range<usize>,
) -> Vec<DeliveryReport> {
    let count = indices.len();
    for i in indices {
        sink.send(outbound(topic, i), i)
            .unwrap_or_else(|rejected| panic!("send {i} rejected: {}", rejected.error));
    }
    sink.flush(PATIENCE).await.expect("flushed");
    let mut received = Vec::with_capacity(count);
    while received.len() < count {
        let report = timeout(PATIENCE, reports.recv())
            .await
            .expect("delivery reports within the patience")
            .expect("report channel open");
        received.push(report);
    }
    received
}

/// Reads events until `count` records arrived; returns them and the partitions assigned meanwhile.
async fn consume(
    source: &mut KafkaRecordSource,
    count: usize,
) -> (Vec<InboundRecord>, Vec<TopicPartition>) {
    let mut records = Vec::new();
    let mut assigned = Vec::new();
    while records.len() < count {
        let event = timeout(PATIENCE, source.next_event())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} records arrived", records.len()))
            .expect("source open");
        match event {
            SourceEvent::Records(batch) => records.extend(batch),
            SourceEvent::Assigned(partitions) => assigned.extend(partitions),
            other => panic!("unexpected event while consuming: {other:?}"),
        }
    }
    (records, assigned)
}

/// The position after the last record of each partition.
fn positions_after(records: &[InboundRecord]) -> Vec<CommitPosition> {
    let mut last: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for record in records {
        let next = last.entry(record.topic_partition()).or_insert(0);
        *next = (*next).max(record.offset + 1);
    }
    last.into_iter()
        .map(|(partition, offset)| CommitPosition { partition, offset })
        .collect()
}

/// Closes gracefully: answers the final revoke with `positions`, reads until the source ends.
async fn close(mut source: KafkaRecordSource, positions: Vec<CommitPosition>) {
    source.begin_close();
    let mut positions = Some(positions);
    loop {
        match timeout(PATIENCE, source.next_event())
            .await
            .expect("closes in time")
        {
            Ok(SourceEvent::Revoked { reply, .. }) => {
                reply.commit(positions.take().unwrap_or_default())
            }
            Ok(_) => {}
            Err(AdapterError::ConsumerClosed { .. }) => return,
            Err(error) => panic!("unexpected error while closing: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_records_are_consumed_and_committed() {
    let stack = require_stack!();
    let config = kafka_config(&stack);
    let admin = kafka_admin(&config).expect("admin");
    let topic = create_topic(&admin, 2).await;
    let group = unique_name("ka-group");
    let (report_sender, mut reports) = mpsc::unbounded_channel();
    let sink = kafka_producer(&config, report_sender).expect("producer");

    let first = produce(&sink, &mut reports, &topic, 0..20).await;
    assert!(
        first.iter().all(|report| report.result.is_ok()),
        "{first:?}"
    );

    let stored = read_topic(&config, &topic, ReadUntil::End, PATIENCE)
        .await
        .expect("topic readable");
    assert_eq!(stored.len(), 20);
    for record in &stored {
        let index = String::from_utf8(record.headers[0].1.clone()).expect("utf-8 header");
        assert_eq!(record.headers[0].0, "index");
        assert_eq!(
            record.payload.as_deref(),
            Some(format!("payload-{index}").as_bytes())
        );
        assert_eq!(
            record.headers[1],
            ("origin".to_owned(), b"kafka-adapters-test".to_vec())
        );
    }

    let (mut source, committer) =
        kafka_consumer(&config, consumer_settings(&group, &topic)).expect("consumer");
    let (records, assigned) = consume(&mut source, 20).await;
    assert_eq!(
        assigned.len(),
        2,
        "both partitions assigned to the only member"
    );
    assert_eq!(records.len(), 20, "each record exactly once");
    let committed = positions_after(&records);
    committer
        .commit(committed.clone())
        .await
        .expect("committed");

    let mut expected: Vec<(i32, Option<i64>)> = committed
        .iter()
        .map(|position| (position.partition.partition, Some(position.offset)))
        .collect();
    expected.sort();
    assert_eq!(
        admin
            .committed_positions(&group, &topic)
            .await
            .expect("positions"),
        expected
    );

    produce(&sink, &mut reports, &topic, 20..25).await;
    close(source, committed.clone()).await;
    assert!(
        committer.commit(committed.clone()).await.is_err(),
        "a closed consumer cannot commit"
    );

    let (mut second, _committer) =
        kafka_consumer(&config, consumer_settings(&group, &topic)).expect("second consumer");
    let (records, _) = consume(&mut second, 5).await;
    let payloads: BTreeSet<Vec<u8>> = records.iter().filter_map(|r| r.payload.clone()).collect();
    let expected_payloads: BTreeSet<Vec<u8>> = (20..25)
        .map(|i| format!("payload-{i}").into_bytes())
        .collect();
    assert_eq!(
        payloads, expected_payloads,
        "starts after the committed position"
    );
    for position in &committed {
        if let Some(first) = records
            .iter()
            .find(|record| record.topic_partition() == position.partition)
        {
            assert_eq!(
                first.offset, position.offset,
                "resumes exactly at the commit"
            );
        }
    }
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_reports_carry_tags() {
    let stack = require_stack!();
    let config = kafka_config(&stack);
    let admin = kafka_admin(&config).expect("admin");
    let topic = create_topic(&admin, 3).await;
    let (report_sender, mut reports) = mpsc::unbounded_channel();
    let sink = kafka_producer(&config, report_sender).expect("producer");

    let tags: Vec<usize> = (0..30).map(|i| 1_000 + i * 7).collect();
    for (i, tag) in tags.iter().enumerate() {
        sink.send(outbound(&topic, i), *tag).expect("enqueued");
    }
    sink.flush(PATIENCE).await.expect("flushed");
    assert_eq!(sink.in_flight(), 0);

    let mut landed = BTreeMap::new();
    for _ in &tags {
        let report = reports.try_recv().expect("flush waits for every report");
        let delivered = report.result.expect("delivered");
        assert!(
            landed.insert(report.tag, delivered).is_none(),
            "one report per tag"
        );
    }
    assert_eq!(landed.keys().copied().collect::<Vec<_>>(), tags);

    let stored = read_topic(&config, &topic, ReadUntil::End, PATIENCE)
        .await
        .expect("readable");
    for (i, tag) in tags.iter().enumerate() {
        let delivered = landed[tag];
        let record = stored
            .iter()
            .find(|r| r.partition == delivered.partition && r.offset == delivered.offset)
            .expect("the reported position holds a record");
        assert_eq!(
            record.payload.as_deref(),
            Some(format!("payload-{i}").as_bytes())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_commits_the_positions_the_pipeline_returns() {
    let stack = require_stack!();
    let config = kafka_config(&stack);
    let admin = kafka_admin(&config).expect("admin");
    let topic = create_topic(&admin, 4).await;
    let group = unique_name("ka-group");
    let (report_sender, mut reports) = mpsc::unbounded_channel();
    // Multi-record producer batches: the second consumer resumes inside one of them.
    let sink = kafka_producer(&config, report_sender).expect("producer");
    produce(&sink, &mut reports, &topic, 0..40).await;

    let (mut first, _first_committer) =
        kafka_consumer(&config, consumer_settings(&group, &topic)).expect("first consumer");
    let (records, assigned) = consume(&mut first, 40).await;
    assert_eq!(assigned.len(), 4);

    // Answer with a position that is not simply "everything seen", so the test can tell the
    // reply's positions from anything the adapter might commit on its own.
    let answer: Vec<CommitPosition> = positions_after(&records)
        .into_iter()
        .map(|position| CommitPosition {
            offset: position.offset - 1,
            ..position
        })
        .collect();

    let (mut second, _second_committer) =
        kafka_consumer(&config, consumer_settings(&group, &topic)).expect("second consumer");
    let event = timeout(PATIENCE, first.next_event())
        .await
        .expect("the join of a second member revokes partitions")
        .expect("source open");
    let SourceEvent::Revoked {
        partitions: revoked,
        reply,
    } = event
    else {
        panic!("no new records were produced, so the next event must be the revoke: {event:?}");
    };
    reply.commit(
        answer
            .iter()
            .filter(|position| revoked.contains(&position.partition))
            .cloned()
            .collect(),
    );
    assert!(
        !revoked.is_empty() && revoked.len() < 4,
        "cooperative: only some move: {revoked:?}"
    );

    // The new owner gets the partitions only after the revoke callback (and its commit) ended,
    // and resumes at the committed position: the last record of each moved partition.
    let (moved, _) = consume(&mut second, revoked.len()).await;
    for record in &moved {
        assert!(revoked.contains(&record.topic_partition()), "{record:?}");
        let last = answer
            .iter()
            .find(|position| position.partition == record.topic_partition())
            .expect("answered");
        assert_eq!(record.offset, last.offset, "re-delivered from the commit");
    }

    let committed = admin
        .committed_positions(&group, &topic)
        .await
        .expect("positions");
    for (partition, position) in committed {
        let tp = TopicPartition::new(topic.as_str(), partition);
        let expected = if revoked.contains(&tp) {
            answer
                .iter()
                .find(|position| position.partition == tp)
                .map(|position| position.offset)
        } else {
            None
        };
        assert_eq!(position, expected, "partition {partition}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_revoke_reply_commits_nothing() {
    let stack = require_stack!();
    let config = kafka_config(&stack);
    let admin = kafka_admin(&config).expect("admin");
    let topic = create_topic(&admin, 2).await;
    let group = unique_name("ka-group");
    let (report_sender, mut reports) = mpsc::unbounded_channel();
    let sink = kafka_producer(&config, report_sender).expect("producer");
    produce(&sink, &mut reports, &topic, 0..10).await;

    let (mut source, _committer) =
        kafka_consumer(&config, consumer_settings(&group, &topic)).expect("consumer");
    consume(&mut source, 10).await;
    source.begin_close();
    let mut revokes = 0;
    loop {
        match timeout(PATIENCE, source.next_event())
            .await
            .expect("closes")
        {
            Ok(SourceEvent::Revoked { reply, .. }) => {
                revokes += 1;
                drop(reply);
            }
            Ok(_) => {}
            Err(AdapterError::ConsumerClosed { .. }) => break,
            Err(error) => panic!("{error}"),
        }
    }
    assert_eq!(revokes, 1, "closing revokes everything once");
    let committed = admin
        .committed_positions(&group, &topic)
        .await
        .expect("positions");
    assert_eq!(committed, vec![(0, None), (1, None)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_creates_topics_idempotently() {
    let stack = require_stack!();
    let admin = kafka_admin(&kafka_config(&stack)).expect("admin");
    let spec = TopicSpec {
        name: unique_name("ka-topic"),
        partitions: 3,
        replication: 1,
    };
    admin
        .create_topics(std::slice::from_ref(&spec))
        .await
        .expect("created");
    admin
        .create_topics(std::slice::from_ref(&spec))
        .await
        .expect("creating again is fine");
    assert_eq!(
        admin.partitions_of(&spec.name).await.expect("metadata"),
        Some(3)
    );

    let missing = unique_name("ka-missing");
    assert_eq!(admin.partitions_of(&missing).await.expect("metadata"), None);
    assert_eq!(
        admin.partitions_of(&missing).await.expect("metadata"),
        None,
        "asking does not create it"
    );
    let lag = admin
        .partition_lag(&unique_name("ka-group"), &spec.name)
        .await
        .expect("lag of an empty topic");
    assert_eq!(lag.len(), 3);
    assert!(
        lag.iter().all(|p| p.committed.is_none() && p.lag() == 0),
        "{lag:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_delivery_gives_the_record_back() {
    let stack = require_stack!();
    // librdkafka declares a topic missing once metadata has not shown it for
    // `topic.metadata.propagation.max.ms`; the message timeout is longer, so the failure is
    // "unknown topic", not a timeout.
    let config = kafka_config(&stack)
        .with("allow.auto.create.topics", "false")
        .with("topic.metadata.propagation.max.ms", "1000")
        .with("message.timeout.ms", "20000");
    let (report_sender, mut reports) = mpsc::unbounded_channel();
    let sink = kafka_producer(&config, report_sender).expect("producer");
    let missing = unique_name("ka-missing");
    let record = outbound(&missing, 7);
    sink.send(record.clone(), 77).expect("enqueued");

    let report = timeout(PATIENCE, reports.recv())
        .await
        .expect("a report for the failed record")
        .expect("channel open");
    assert_eq!(report.tag, 77);
    let failure = report.result.expect_err("no such topic");
    assert_eq!(failure.record, record, "the record comes back whole");
    assert!(
        matches!(
            &failure.error,
            AdapterError::Delivery { topic, code: KafkaErrorCode::UNKNOWN_TOPIC_OR_PARTITION, .. }
                if **topic == *missing
        ),
        "{}",
        failure.error
    );
    assert!(!failure.retriable, "a missing topic is not retried");
    assert_eq!(failure.retriable, failure.error.is_retriable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_missing_topic_says_so() {
    let stack = require_stack!();
    let error = read_topic(
        &kafka_config(&stack),
        &unique_name("ka-missing"),
        ReadUntil::End,
        Duration::from_secs(10),
    )
    .await
    .expect_err("no such topic");
    assert!(
        matches!(error, AdapterError::UnknownTopic { .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_a_partition_precede_its_revoke() {
    let stack = require_stack!();
    let config = kafka_config(&stack);
    let admin = kafka_admin(&config).expect("admin");
    let topic = create_topic(&admin, 4).await;
    let group = unique_name("ka-group");
    let (report_sender, mut reports) = mpsc::unbounded_channel();
    let sink = kafka_producer(&config, report_sender).expect("producer");
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for report in produce(&sink, &mut reports, &topic, 0..200).await {
        let delivered = report.result.expect("delivered");
        let end = ends.entry(delivered.partition).or_insert(0);
        *end = (*end).max(delivered.offset + 1);
    }

    // Small batches and a small channel, not read while the second member joins: the consumer
    // thread is blocked mid-stream when the rebalance comes.
    let settings = ConsumerSettings {
        batch_max: 5,
        channel_capacity: 2,
        ..consumer_settings(&group, &topic)
    };
    let (mut first, _first_committer) = kafka_consumer(&config, settings.clone()).expect("first");
    let event = timeout(PATIENCE, first.next_event())
        .await
        .expect("assigned")
        .expect("open");
    assert!(
        matches!(event, SourceEvent::Assigned(ref p) if p.len() == 4),
        "{event:?}"
    );
    // Read until every partition has shown records, so whichever partitions get revoked have
    // a position to answer with; the rest stays queued in the consumer.
    let mut seen_before_revoke: Vec<InboundRecord> = Vec::new();
    while positions_after(&seen_before_revoke).len() < 4 {
        match timeout(PATIENCE, first.next_event())
            .await
            .expect("records")
            .expect("open")
        {
            SourceEvent::Records(batch) => seen_before_revoke.extend(batch),
            other => panic!("expected records: {other:?}"),
        }
    }
    let (mut second, _second_committer) = kafka_consumer(&config, settings).expect("second");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (revoked, answered) = loop {
        match timeout(PATIENCE, first.next_event())
            .await
            .expect("revoke comes")
            .expect("open")
        {
            SourceEvent::Records(batch) => seen_before_revoke.extend(batch),
            SourceEvent::Revoked { partitions, reply } => {
                let answered: Vec<CommitPosition> = positions_after(&seen_before_revoke)
                    .into_iter()
                    .filter(|position| partitions.contains(&position.partition))
                    .collect();
                reply.commit(answered.clone());
                break (partitions, answered);
            }
            other => panic!("unexpected before the revoke: {other:?}"),
        }
    };

    assert!(
        !answered.is_empty(),
        "the revoked partitions had records before the revoke"
    );
    eprintln!(
        "before the revoke: {} records, {} partitions revoked, answered {answered:?}",
        seen_before_revoke.len(),
        revoked.len()
    );

    // The new owner continues exactly where the revoked member stopped: no gap, no repeat.
    let resume_at = |partition: &TopicPartition| {
        answered
            .iter()
            .find(|position| &position.partition == partition)
            .map_or(0, |position| position.offset)
    };
    let unfinished: Vec<&TopicPartition> = revoked
        .iter()
        .filter(|partition| resume_at(partition) < ends[&partition.partition])
        .collect();
    let mut first_seen_by_second: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    while unfinished
        .iter()
        .any(|partition| !first_seen_by_second.contains_key(*partition))
    {
        match timeout(PATIENCE, second.next_event())
            .await
            .expect("records")
            .expect("open")
        {
            SourceEvent::Records(batch) => {
                for record in batch {
                    first_seen_by_second
                        .entry(record.topic_partition())
                        .or_insert(record.offset);
                }
            }
            SourceEvent::Assigned(_) => {}
            other => panic!("unexpected on the new owner: {other:?}"),
        }
    }
    for partition in unfinished {
        assert_eq!(
            first_seen_by_second[partition],
            resume_at(partition),
            "{partition}"
        );
    }

    // And the revoked member gets nothing more of those partitions.
    let quiet = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(event) = tokio::time::timeout_at(quiet, first.next_event()).await {
        if let Ok(SourceEvent::Records(batch)) = event {
            for record in batch {
                assert!(
                    !revoked.contains(&record.topic_partition()),
                    "{record:?} after revoke"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_times_out_and_dropping_the_sink_reports_what_was_pending() {
    let stack = require_stack!();
    // A record for a missing topic waits in librdkafka for the topic to appear.
    let config = kafka_config(&stack)
        .with("allow.auto.create.topics", "false")
        .with("topic.metadata.propagation.max.ms", "60000")
        .with("message.timeout.ms", "60000");
    let (report_sender, mut reports) = mpsc::unbounded_channel();
    let sink = kafka_producer(&config, report_sender).expect("producer");
    let record = outbound(&unique_name("ka-missing"), 1);
    sink.send(record.clone(), 5).expect("enqueued");

    let error = sink
        .flush(Duration::from_millis(300))
        .await
        .expect_err("the record cannot be delivered yet");
    assert!(
        matches!(error, AdapterError::FlushTimeout { pending: 1, .. }),
        "{error}"
    );
    assert!(reports.try_recv().is_err(), "no report yet");

    drop(sink);
    let report = reports.try_recv().expect("dropping purges and reports");
    assert_eq!(report.tag, 5);
    let failure = report.result.expect_err("purged");
    assert_eq!(failure.record, record);
    assert!(failure.retriable, "{}", failure.error);
}

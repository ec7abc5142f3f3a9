//! `KafkaAdmin::partition_lag` against a real Kafka broker: the figures behind the processor's
//! `consumer_lag` metric.
//!
//! Needs `KAFKA_BOOTSTRAP` (and `SCHEMA_REGISTRY_URL`, checked by `require_stack!`).

use std::time::Duration;

use kafka_adapters::{KafkaConfig, PartitionLag, TopicAdmin, TopicSpec, kafka_admin};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use test_support::{require_stack, unique_name};

const PATIENCE: Duration = Duration::from_secs(60);

/// Produces `count` records to `partition` of `topic` in a few large batches (everything queued at
/// once, a long linger): the figures must be right inside multi-record batches too, where tansu
/// under-reported the end of a partition.
fn produce_batched(bootstrap: &str, topic: &str, partition: i32, count: usize) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "500")
        .set("batch.num.messages", "100000")
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    for index in 0..count {
        let key = format!("key-{index}");
        let payload = format!("value-{index}");
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(partition)
                    .key(&key)
                    .payload(&payload),
            )
            .unwrap_or_else(|(error, _)| panic!("record {index} refused: {error}"));
    }
    producer.flush(PATIENCE).expect("every record acknowledged");
}

/// Commits `offsets` for `group` without joining it (as a tool or an earlier member would have).
fn commit(bootstrap: &str, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .expect("offset");
    }
    consumer
        .commit(&list, CommitMode::Sync)
        .expect("offsets committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_lag_is_the_end_offset_minus_the_committed_offset_per_partition() {
    let stack = require_stack!();
    let bootstrap = stack.kafka_bootstrap.clone();
    let config = KafkaConfig::new(bootstrap.clone());
    let admin = kafka_admin(&config).expect("admin");
    let topic = unique_name("ka-lag");
    let group = unique_name("ka-lag-group");
    admin
        .create_topics(&[TopicSpec {
            name: topic.clone(),
            partitions: 4,
            replication: 1,
        }])
        .await
        .expect("topic created");

    // Partition 0: committed in the middle. 1: committed at the end. 2: never committed.
    // 3: never committed, and its log start moved past the first records.
    let produced = [(0, 1_500), (1, 700), (2, 2_300), (3, 900)];
    {
        let (bootstrap, topic) = (bootstrap.clone(), topic.clone());
        tokio::task::spawn_blocking(move || {
            for (partition, count) in produced {
                produce_batched(&bootstrap, &topic, partition, count);
            }
        })
        .await
        .expect("produced");
    }
    {
        let (bootstrap, topic, group) = (bootstrap.clone(), topic.clone(), group.clone());
        tokio::task::spawn_blocking(move || {
            commit(&bootstrap, &group, &topic, &[(0, 613), (1, 700)])
        })
        .await
        .expect("committed");
    }
    let deleter: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin client");
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset(&topic, 3, Offset::Offset(250))
        .expect("offset");
    let deleted = deleter
        .delete_records(
            &before,
            &AdminOptions::new().request_timeout(Some(PATIENCE)),
        )
        .await
        .expect("records deleted");
    assert_eq!(
        deleted
            .find_partition(&topic, 3)
            .map(|element| element.offset()),
        Some(Offset::Offset(250)),
        "log start of partition 3 moved"
    );

    let lag = admin
        .partition_lag(&group, &topic)
        .await
        .expect("group positions and watermarks");
    assert_eq!(
        lag,
        vec![
            PartitionLag {
                partition: 0,
                committed: Some(613),
                low_watermark: 0,
                high_watermark: 1_500,
            },
            PartitionLag {
                partition: 1,
                committed: Some(700),
                low_watermark: 0,
                high_watermark: 700,
            },
            PartitionLag {
                partition: 2,
                committed: None,
                low_watermark: 0,
                high_watermark: 2_300,
            },
            PartitionLag {
                partition: 3,
                committed: None,
                low_watermark: 250,
                high_watermark: 900,
            },
        ]
    );
    let lags: Vec<i64> = lag.iter().map(PartitionLag::lag).collect();
    assert_eq!(lags, vec![1_500 - 613, 0, 2_300, 900 - 250]);

    // The same figures for committed positions alone.
    assert_eq!(
        admin
            .committed_positions(&group, &topic)
            .await
            .expect("committed positions"),
        vec![(0, Some(613)), (1, Some(700)), (2, None), (3, None)]
    );
}

//! Reading a whole topic without a consumer group, for tools and test verifiers.
//!
//! Not joining a group means no join delay and no committed offsets touched: the reader
//! assigns every partition from the beginning and stops once every partition reached its end
//! (librdkafka's partition-EOF, from the fetch responses' high watermark) or after a number
//! of records.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tracing::warn;

use crate::admin::partition_count;
use crate::config::{KafkaConfig, LoggingContext};
use ports::AdapterError;

use crate::error::kafka_code_of;
use crate::util::{copy_headers, run_blocking};

const POLL_SLICE: Duration = Duration::from_millis(100);

/// A record read by [`read_topic`], with its headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicRecord {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Key bytes, `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// Value bytes, `None` for a null value.
    pub payload: Option<Vec<u8>>,
    /// Headers in order; a null header value reads as empty.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Create or log-append time in epoch milliseconds.
    pub timestamp_ms: Option<i64>,
}

/// When [`read_topic`] stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadUntil {
    /// Until every partition has been read to its end (records produced meanwhile may or may
    /// not be included).
    End,
    /// At least this many records (waiting for producers to write them).
    Count(usize),
}

/// Reads `topic` from the beginning of every partition, without joining a consumer group.
///
/// Returns the records sorted by partition, then offset. Fails with
/// [`AdapterError::ReadIncomplete`] when `until` is not reached within `timeout`, and with
/// [`AdapterError::UnknownTopic`] when the topic does not exist.
pub async fn read_topic(
    config: &KafkaConfig,
    topic: &str,
    until: ReadUntil,
    timeout: Duration,
) -> Result<Vec<TopicRecord>, AdapterError> {
    let config = config.clone();
    let topic = topic.to_owned();
    run_blocking("reading a topic", move || {
        read_blocking(&config, &topic, until, timeout)
    })
    .await
}

fn read_blocking(
    config: &KafkaConfig,
    topic: &str,
    until: ReadUntil,
    timeout: Duration,
) -> Result<Vec<TopicRecord>, AdapterError> {
    let deadline = Instant::now() + timeout;
    let mut client_config = config.client_config(&[]);
    // librdkafka 2.12 refuses `assign` without a group id; this one is never joined and never
    // committed to, so no group state is created on the broker. End of partition comes from
    // the fetch responses' high watermark.
    client_config
        .set("group.id", throwaway_group_id())
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("allow.auto.create.topics", "false");
    let consumer: BaseConsumer<LoggingContext> = client_config
        .create_with_context(LoggingContext)
        .map_err(|source| AdapterError::ClientCreation {
            client: "topic reader",
            bootstrap_servers: config.bootstrap_servers.clone(),
            code: kafka_code_of(&source),
            source: Box::new(source),
        })?;
    let partitions = partition_count(consumer.client(), topic, timeout)?.ok_or_else(|| {
        AdapterError::UnknownTopic {
            topic: topic.to_owned(),
        }
    })?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|source| assign_error(topic, source))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|source| assign_error(topic, source))?;

    let mut records = Vec::new();
    let mut at_end = BTreeSet::new();
    let done = |records: &Vec<TopicRecord>, at_end: &BTreeSet<i32>| match until {
        ReadUntil::Count(wanted) => records.len() >= wanted,
        ReadUntil::End => at_end.len() == usize::try_from(partitions).unwrap_or(0),
    };
    while !done(&records, &at_end) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(AdapterError::ReadIncomplete {
                topic: topic.to_owned(),
                wanted: match until {
                    ReadUntil::End => format!(
                        "wanted the end of all {partitions} partitions but reached {}",
                        at_end.len()
                    ),
                    ReadUntil::Count(wanted) => format!("wanted {wanted}"),
                },
                got: records.len(),
                timeout,
            });
        }
        match consumer.poll(remaining.min(POLL_SLICE)) {
            Some(Ok(message)) => {
                at_end.remove(&message.partition());
                records.push(topic_record(&message));
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(error)) => warn!(topic, %error, "Error while reading a topic; retrying."),
            None => {}
        }
    }
    records.sort_by_key(|record| (record.partition, record.offset));
    Ok(records)
}

fn topic_record(message: &BorrowedMessage<'_>) -> TopicRecord {
    let (headers, unreadable) = copy_headers(message);
    if unreadable > 0 {
        warn!(
            partition = message.partition(),
            offset = message.offset(),
            unreadable,
            "Record has header names that are not UTF-8; they are left out."
        );
    }
    TopicRecord {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        headers,
        timestamp_ms: message.timestamp().to_millis(),
    }
}

fn assign_error(topic: &str, source: KafkaError) -> AdapterError {
    AdapterError::Request {
        operation: "assigning partitions",
        topic: Some(topic.to_owned()),
        code: kafka_code_of(&source),
        source: Box::new(source),
    }
}

fn throwaway_group_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("kafka-adapters-reader-{}-{nanos}", std::process::id())
}

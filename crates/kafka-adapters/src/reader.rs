//! Reading a whole topic without a consumer group, for tools and test verifiers.
//!
//! No group means no join delay and no committed offsets touched: the reader assigns every
//! partition from the beginning and stops at the end (the high watermarks seen when it
//! started) or after a number of records.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tracing::warn;

use crate::admin::partition_count;
use crate::config::{KafkaConfig, LoggingContext};
use crate::error::AdapterError;
use crate::util::run_blocking;

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
    /// Everything up to the high watermarks seen when reading started.
    End,
    /// At least this many records (waiting for producers to write them).
    Count(usize),
}

/// Reads `topic` from the beginning of every partition, without a consumer group.
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
    client_config
        .remove("group.id")
        .set("enable.auto.commit", "false")
        .set("allow.auto.create.topics", "false");
    let consumer: BaseConsumer<LoggingContext> = client_config
        .create_with_context(LoggingContext)
        .map_err(|source| AdapterError::ClientCreation {
            client: "topic reader",
            bootstrap_servers: config.bootstrap_servers.clone(),
            source: Box::new(source),
        })?;
    let partitions = partition_count(consumer.client(), topic, timeout)?.ok_or_else(|| {
        AdapterError::UnknownTopic {
            topic: topic.to_owned(),
        }
    })?;
    let request_error = |operation| {
        move |source| AdapterError::Request {
            operation,
            topic: Some(topic.to_owned()),
            source: Box::new(source),
        }
    };
    let mut ends = Vec::new();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        if until == ReadUntil::End {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, timeout)
                .map_err(request_error("fetching watermarks"))?;
            if high <= low {
                continue;
            }
            ends.push((partition, high));
        }
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(request_error("assigning partitions"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(request_error("assigning partitions"))?;

    let mut records = Vec::new();
    let done = |records: &Vec<TopicRecord>, consumer: &BaseConsumer<LoggingContext>| match until {
        ReadUntil::Count(wanted) => records.len() >= wanted,
        ReadUntil::End => reached_ends(consumer, topic, &ends),
    };
    while !done(&records, &consumer) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(AdapterError::ReadIncomplete {
                topic: topic.to_owned(),
                wanted: match until {
                    ReadUntil::End => "wanted everything up to the high watermarks".to_owned(),
                    ReadUntil::Count(wanted) => format!("wanted {wanted}"),
                },
                got: records.len(),
                timeout,
            });
        }
        match consumer.poll(remaining.min(POLL_SLICE)) {
            Some(Ok(message)) => records.push(TopicRecord {
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().map(<[u8]>::to_vec),
                payload: message.payload().map(<[u8]>::to_vec),
                headers: message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|header| {
                                (
                                    header.key.to_owned(),
                                    header.value.map(<[u8]>::to_vec).unwrap_or_default(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp_ms: message.timestamp().to_millis(),
            }),
            Some(Err(error)) => warn!(topic, %error, "Error while reading a topic; retrying."),
            None => {}
        }
    }
    records.sort_by_key(|record| (record.partition, record.offset));
    Ok(records)
}

/// Whether the consumer's position reached the end marker of every partition (positions, not
/// record offsets, so offsets without a record, such as transaction markers, count too).
fn reached_ends(consumer: &BaseConsumer<LoggingContext>, topic: &str, ends: &[(i32, i64)]) -> bool {
    if ends.is_empty() {
        return true;
    }
    let Ok(positions) = consumer.position() else {
        return false;
    };
    ends.iter().all(|(partition, high)| {
        matches!(
            positions.find_partition(topic, *partition).map(|element| element.offset()),
            Some(Offset::Offset(position)) if position >= *high
        )
    })
}

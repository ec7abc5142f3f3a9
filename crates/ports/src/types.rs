//! The values the traits exchange: records, delivery reports, topic specs.

use std::sync::Arc;

pub use offset_tracker::{CommitPosition, TopicPartition};

use crate::error::AdapterError;

/// A consumed record, copied out of librdkafka's buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundRecord {
    /// Topic it was read from.
    pub topic: Arc<str>,
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Key bytes, `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// Value bytes, `None` for a null value (a tombstone).
    pub payload: Option<Vec<u8>>,
    /// Create or log-append time in epoch milliseconds, when the broker gave one.
    pub timestamp_ms: Option<i64>,
    /// Record headers, in order, duplicates kept; a null header value reads as empty. Empty (no
    /// allocation) for a record without headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl InboundRecord {
    /// The partition this record came from.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition {
            topic: Arc::clone(&self.topic),
            partition: self.partition,
        }
    }

    /// The position to commit once this record (and everything before it) is done: `offset + 1`.
    pub fn position_after(&self) -> CommitPosition {
        CommitPosition {
            partition: self.topic_partition(),
            offset: self.offset + 1,
        }
    }
}

/// A record to produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundRecord {
    /// Destination topic; librdkafka's partitioner picks the partition from the key.
    pub topic: Arc<str>,
    /// Key bytes, `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub payload: Vec<u8>,
    /// Record headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// librdkafka's default `message.max.bytes`: a producer refuses a record whose key, value,
/// headers and framing (about 40 bytes) exceed it (`MessageSizeTooLarge`, not retriable). The
/// Kafka adapters' producer defaults do not change it; the pipeline sizes its own limit from
/// it. (Defined here, not in kafka-adapters, so the pipeline needs no Kafka client for it.)
pub const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// Identifies an enqueued record in its delivery report. Opaque to the adapter.
pub type DeliveryTag = usize;

/// The outcome of one enqueued record.
#[derive(Debug)]
pub struct DeliveryReport {
    /// The tag given to [`RecordSink::send`](crate::RecordSink::send).
    pub tag: DeliveryTag,
    /// Where it landed, or why it did not.
    pub result: Result<Delivered, DeliveryFailure>,
}

/// Where a record landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// Partition written to.
    pub partition: i32,
    /// Offset of the record in that partition.
    pub offset: i64,
}

/// A record that was not delivered, given back so it can be retried or dead-lettered.
#[derive(Debug)]
pub struct DeliveryFailure {
    /// The record, rebuilt from the failed message.
    pub record: OutboundRecord,
    /// Why it failed.
    pub error: AdapterError,
    /// Whether sending it again may succeed.
    pub retriable: bool,
}

/// A record the sink refused to enqueue, given back with its tag.
#[derive(Debug)]
pub struct SendRejected {
    /// The record, unchanged.
    pub record: OutboundRecord,
    /// The tag it was sent with.
    pub tag: DeliveryTag,
    /// Why it was refused.
    pub error: AdapterError,
    /// The local queue is full: wait for delivery reports, then send it again.
    pub queue_full: bool,
}

/// A topic to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor, or [`TopicSpec::BROKER_DEFAULT_REPLICATION`] (-1) for the broker's
    /// `default.replication.factor`.
    pub replication: i32,
}

impl TopicSpec {
    /// The replication factor that asks the broker for its own default
    /// (`default.replication.factor`; brokers from Kafka 2.4 on).
    pub const BROKER_DEFAULT_REPLICATION: i32 = -1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_after_a_record_is_the_next_offset() {
        let record = InboundRecord {
            topic: Arc::from("in"),
            partition: 3,
            offset: 41,
            key: None,
            payload: None,
            timestamp_ms: None,
            headers: Vec::new(),
        };
        let position = record.position_after();
        assert_eq!(position.offset, 42);
        assert_eq!(position.to_string(), "in[3]@42");
    }

    #[test]
    fn topic_partitions_order_by_topic_then_partition() {
        let mut partitions = vec![
            TopicPartition::new("b", 0),
            TopicPartition::new("a", 2),
            TopicPartition::new("a", 1),
        ];
        partitions.sort();
        assert_eq!(
            partitions,
            vec![
                TopicPartition::new("a", 1),
                TopicPartition::new("a", 2),
                TopicPartition::new("b", 0)
            ]
        );
    }
}

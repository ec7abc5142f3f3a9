#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod admin;
mod config;
mod consumer;
mod error;
mod producer;
mod reader;
mod util;

pub use admin::{DEFAULT_REQUEST_TIMEOUT, KafkaAdmin, PartitionLag, kafka_admin};
pub use config::{
    ConsumerSettings, KafkaConfig, LIBRDKAFKA_MAX_POLL_INTERVAL_MS, is_secret_property,
};
pub use consumer::{KafkaOffsetCommitter, KafkaRecordSource, kafka_consumer};
pub use producer::{KafkaRecordSink, kafka_producer, kafka_transactional_producer};
pub use reader::{ReadUntil, TopicRecord, read_topic};
// The traits these adapters implement and the values they exchange are defined in `ports`
// (no Kafka client there); re-exported so a user of the adapters needs one import path.
pub use ports::{
    AdapterError, CommitPosition, Delivered, DeliveryFailure, DeliveryReport, DeliveryTag,
    InboundRecord, KafkaErrorCode, LIBRDKAFKA_MESSAGE_MAX_BYTES, OffsetCommitter, OutboundRecord,
    RecordSink, RecordSource, RevokeReply, SendRejected, SourceEvent, TopicAdmin, TopicPartition,
    TopicSpec, is_access_refusal_code, is_record_refusal_code, is_retriable_code,
};

#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod admin;
mod config;
mod consumer;
mod error;
pub mod fake;
mod producer;
mod reader;
mod traits;
mod types;
mod util;

pub use admin::{DEFAULT_REQUEST_TIMEOUT, KafkaAdmin, PartitionLag, kafka_admin};
pub use config::{
    ConsumerSettings, KafkaConfig, LIBRDKAFKA_MAX_POLL_INTERVAL_MS, LIBRDKAFKA_MESSAGE_MAX_BYTES,
    is_secret_property,
};
pub use consumer::{KafkaOffsetCommitter, KafkaRecordSource, kafka_consumer};
pub use error::{
    AdapterError, KafkaErrorCode, is_access_refusal_code, is_record_refusal_code, is_retriable_code,
};
pub use producer::{KafkaRecordSink, kafka_producer, kafka_transactional_producer};
pub use reader::{ReadUntil, TopicRecord, read_topic};
pub use traits::{OffsetCommitter, RecordSink, RecordSource, RevokeReply, SourceEvent, TopicAdmin};
pub use types::{
    CommitPosition, Delivered, DeliveryFailure, DeliveryReport, DeliveryTag, InboundRecord,
    OutboundRecord, SendRejected, TopicPartition, TopicSpec,
};

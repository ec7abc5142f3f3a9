#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod code;
mod error;
#[cfg(feature = "testing")]
pub mod testing;
mod traits;
mod types;

pub use code::{
    KafkaErrorCode, is_access_refusal_code, is_record_refusal_code, is_record_too_large_code,
    is_retriable_code,
};
pub use error::{AdapterError, BoxError};
pub use traits::{OffsetCommitter, RecordSink, RecordSource, RevokeReply, SourceEvent, TopicAdmin};
pub use types::{
    CommitPosition, Delivered, DeliveryFailure, DeliveryReport, DeliveryTag, InboundRecord,
    LIBRDKAFKA_MESSAGE_MAX_BYTES, OutboundRecord, SendRejected, TopicPartition, TopicSpec,
};

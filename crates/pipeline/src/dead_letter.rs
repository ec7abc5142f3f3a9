//! Dead-letter records: the original key and value bytes, with why and where from in headers.

use kafka_adapters::{InboundRecord, OutboundRecord};
use router_core::DeadLetterReason;
use std::sync::Arc;

/// Header names on every dead-letter record. Values are UTF-8 text.
pub mod headers {
    /// Machine code of the reason, e.g. `unauthorized` (see `router_core::DeadLetterReason::code`).
    pub const REASON: &str = "dlq.reason";
    /// Human-readable explanation.
    pub const ERROR: &str = "dlq.error";
    /// Topic the event was read from.
    pub const SOURCE_TOPIC: &str = "dlq.source.topic";
    /// Partition the event was read from.
    pub const SOURCE_PARTITION: &str = "dlq.source.partition";
    /// Offset the event was read from.
    pub const SOURCE_OFFSET: &str = "dlq.source.offset";
    /// Schema id from the event's Confluent header, when it had one.
    pub const SCHEMA_ID: &str = "dlq.schema.id";
    /// Id of the processor instance that dead-lettered it.
    pub const PROCESSOR_ID: &str = "dlq.processor.id";
}

/// The record to write to `topic` for `input`, which could not be routed for `reason`.
pub(crate) fn dead_letter_record(
    topic: &Arc<str>,
    input: &InboundRecord,
    reason: &DeadLetterReason,
    schema_id: Option<u32>,
    processor_id: &str,
) -> OutboundRecord {
    let mut record_headers = vec![
        (
            headers::REASON.to_owned(),
            reason.code().as_bytes().to_vec(),
        ),
        (headers::ERROR.to_owned(), reason.to_string().into_bytes()),
        (
            headers::SOURCE_TOPIC.to_owned(),
            input.topic.as_bytes().to_vec(),
        ),
        (
            headers::SOURCE_PARTITION.to_owned(),
            input.partition.to_string().into_bytes(),
        ),
        (
            headers::SOURCE_OFFSET.to_owned(),
            input.offset.to_string().into_bytes(),
        ),
        (
            headers::PROCESSOR_ID.to_owned(),
            processor_id.as_bytes().to_vec(),
        ),
    ];
    if let Some(id) = schema_id {
        record_headers.push((headers::SCHEMA_ID.to_owned(), id.to_string().into_bytes()));
    }
    OutboundRecord {
        topic: Arc::clone(topic),
        key: input.key.clone(),
        payload: input.payload.clone().unwrap_or_default(),
        headers: record_headers,
    }
}

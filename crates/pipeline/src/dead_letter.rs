//! Dead-letter records: the original key, value and headers, with why and where from in `dlq.*`
//! headers added after the original ones.

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
    /// Longest [`ERROR`] value, in bytes; a longer detail is cut (at a character boundary) and
    /// ends with `…`. The detail can quote the event's own strings (an unknown destination, an
    /// origin id) and must not make a dead-letter copy larger than the producer can send.
    pub const ERROR_MAX_BYTES: usize = 1024;
}

/// How many `dlq.*` headers a dead-letter record gets at most.
const DEAD_LETTER_HEADER_COUNT: usize = 7;

/// The record to write to `topic` for `input`, which could not be routed for `reason`: its key
/// and value, its headers (moved out of `input`, in order, duplicates kept), then the `dlq.*`
/// headers.
pub(crate) fn dead_letter_record(
    topic: &Arc<str>,
    input: &mut InboundRecord,
    reason: &DeadLetterReason,
    schema_id: Option<u32>,
    processor_id: &str,
) -> OutboundRecord {
    let mut record_headers = std::mem::take(&mut input.headers);
    record_headers.reserve_exact(DEAD_LETTER_HEADER_COUNT);
    record_headers.extend([
        (
            headers::REASON.to_owned(),
            reason.code().as_bytes().to_vec(),
        ),
        (
            headers::ERROR.to_owned(),
            capped(reason.to_string(), headers::ERROR_MAX_BYTES).into_bytes(),
        ),
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
    ]);
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

/// `text`, or its longest prefix that fits in `limit` bytes with a trailing `…`.
fn capped(mut text: String, limit: usize) -> String {
    const ELLIPSIS: &str = "…";
    if text.len() <= limit {
        return text;
    }
    let mut end = limit.saturating_sub(ELLIPSIS.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(ELLIPSIS);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_with_key(key: &[u8]) -> InboundRecord {
        InboundRecord {
            topic: Arc::from("input"),
            partition: 2,
            offset: 41,
            key: Some(key.to_vec()),
            payload: Some(b"value".to_vec()),
            timestamp_ms: None,
            headers: Vec::new(),
        }
    }

    fn header<'r>(record: &'r OutboundRecord, name: &str) -> &'r [u8] {
        record
            .headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_slice())
            .unwrap_or_default()
    }

    #[test]
    fn error_header_quoting_a_huge_event_string_is_capped() {
        let reason = DeadLetterReason::UnknownDestination {
            destination: "é".repeat(100_000),
        };
        let record = dead_letter_record(
            &Arc::from("dlq"),
            &mut record_with_key(b"k"),
            &reason,
            None,
            "p",
        );
        let error = std::str::from_utf8(header(&record, headers::ERROR)).expect("still UTF-8");
        assert!(error.len() <= headers::ERROR_MAX_BYTES, "{}", error.len());
        assert!(error.starts_with("destination `éé"), "{error}");
        assert!(error.ends_with('…'), "{error}");
        assert_eq!(record.payload, b"value");
        assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
    }

    /// librdkafka's size check for a produced record (`rd_kafka_msg_max_wire_size`): 36 bytes
    /// of framing, key, value and each header's name and value with their varint lengths.
    fn wire_size(record: &OutboundRecord) -> usize {
        fn varint(len: usize) -> usize {
            let mut zigzag = (len as u64) << 1;
            let mut bytes = 1;
            while zigzag >= 0x80 {
                zigzag >>= 7;
                bytes += 1;
            }
            bytes
        }
        let headers: usize = record
            .headers
            .iter()
            .map(|(name, value)| {
                varint(name.len()) + name.len() + varint(value.len()) + value.len()
            })
            .sum();
        36 + record.key.as_ref().map_or(0, Vec::len) + record.payload.len() + headers
    }

    #[test]
    fn dead_letter_copy_of_the_largest_accepted_value_fits_librdkafkas_default_limit() {
        let config = crate::PipelineConfig::new("p".repeat(1024), "d");
        let mut input = InboundRecord {
            topic: Arc::from("t".repeat(249)),
            partition: i32::MAX,
            offset: i64::MAX,
            key: Some(vec![b'k'; 13 * 1024]),
            payload: Some(vec![0; config.max_record_bytes]),
            timestamp_ms: None,
            headers: Vec::new(),
        };
        let reason = DeadLetterReason::Unauthorized {
            origin_service_type: "x".repeat(500_000),
            origin_service_id: "y".repeat(400_000),
            destination: "FINANCE".to_owned(),
        };
        let record = dead_letter_record(
            &Arc::from("d".repeat(249)),
            &mut input,
            &reason,
            Some(u32::MAX),
            &config.processor_id,
        );
        let size = wire_size(&record);
        assert!(
            size <= kafka_adapters::LIBRDKAFKA_MESSAGE_MAX_BYTES,
            "{size} bytes"
        );
        assert!(
            size - record.payload.len() <= crate::RECORD_HEADROOM_BYTES,
            "{size} bytes"
        );
    }

    #[test]
    fn short_error_header_is_kept_whole() {
        let reason = DeadLetterReason::TooLarge { size: 10, limit: 5 };
        let record = dead_letter_record(
            &Arc::from("dlq"),
            &mut record_with_key(b"k"),
            &reason,
            None,
            "p",
        );
        assert_eq!(
            header(&record, headers::ERROR),
            reason.to_string().as_bytes()
        );
    }

    #[test]
    fn input_headers_come_first_byte_for_byte_then_the_dead_letter_headers() {
        let mut input = record_with_key(b"k");
        let original = vec![
            ("trace".to_owned(), vec![0xff, 0x00, 0xfe]),
            ("tenant".to_owned(), b"a".to_vec()),
            ("trace".to_owned(), Vec::new()),
        ];
        input.headers = original.clone();
        let record = dead_letter_record(
            &Arc::from("dlq"),
            &mut input,
            &DeadLetterReason::MissingValue,
            Some(7),
            "p",
        );
        assert_eq!(record.headers[..3], original[..]);
        let names: Vec<&str> = record.headers[3..]
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                headers::REASON,
                headers::ERROR,
                headers::SOURCE_TOPIC,
                headers::SOURCE_PARTITION,
                headers::SOURCE_OFFSET,
                headers::PROCESSOR_ID,
                headers::SCHEMA_ID,
            ]
        );
        assert_eq!(record.headers.len(), 3 + DEAD_LETTER_HEADER_COUNT);
    }
}

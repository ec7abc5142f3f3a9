//! Dead-letter records: the original key, value and headers, with why and where from in `dlq.*`
//! headers added after the original ones; and the digest record that replaces a dead-letter copy
//! too large for the dead-letter topic.

use crate::config::record_bytes;
use crate::in_flight::InputSlot;
use avro_codec::InputDecoder;
use ports::{InboundRecord, OutboundRecord};
use router_core::{DeadLetterReason, dead_letter_headers as headers};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::sync::Arc;

/// How many `dlq.*` headers a dead-letter record gets at most (a `refused` one has
/// [`headers::OUTPUT_TOPIC`] besides).
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
    record_headers.reserve_exact(DEAD_LETTER_HEADER_COUNT + 1);
    record_headers.extend([
        (
            headers::REASON.to_owned(),
            reason.code().as_str().as_bytes().to_vec(),
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

/// The dead letter of an input whose routed output `refused` the broker refused for good with
/// `error`: the input's key, value and headers (the refused record carries the input's key and
/// headers byte for byte, its value is the input's), the `dlq.*` headers with reason `refused`,
/// and [`headers::OUTPUT_TOPIC`].
pub(crate) fn refused_dead_letter_record(
    topic: &Arc<str>,
    refused: OutboundRecord,
    input: &InputSlot,
    error: &str,
    processor_id: &str,
) -> OutboundRecord {
    let reason = DeadLetterReason::Refused {
        topic: refused.topic.to_string(),
        error: error.to_owned(),
    };
    let schema_id = InputDecoder::schema_id_of(&input.value).ok().map(|id| id.0);
    let mut as_read = InboundRecord {
        topic: Arc::clone(&input.topic),
        partition: input.partition,
        offset: input.offset,
        key: refused.key,
        payload: Some(input.value.clone()),
        timestamp_ms: None,
        headers: refused.headers,
    };
    let mut record = dead_letter_record(topic, &mut as_read, &reason, schema_id, processor_id);
    record.key = as_read.key;
    record.headers.push((
        headers::OUTPUT_TOPIC.to_owned(),
        refused.topic.as_bytes().to_vec(),
    ));
    record
}

/// The record that replaces a dead-letter copy the dead-letter topic refused as too large: the
/// same key and headers (among them the original's coordinates in `dlq.source.*`) without the
/// value, plus [`headers::VALUE_OMITTED`], [`headers::VALUE_SIZE`] and
/// [`headers::VALUE_SHA256`]. When the key and the input's own headers alone are over `limit`
/// they are left out too ([`headers::KEY_AND_HEADERS_OMITTED`]), so the record stays small.
pub(crate) fn value_omitted_record(refused: OutboundRecord, limit: usize) -> OutboundRecord {
    let OutboundRecord {
        topic,
        mut key,
        payload,
        mut headers,
    } = refused;
    let sha256 = value_sha256(&payload);
    // The processor's own headers start at the last `dlq.reason`: they come after the input's.
    let own_start = headers
        .iter()
        .rposition(|(name, _)| name == headers::REASON)
        .unwrap_or(0);
    let input_bytes = record_bytes(key.as_deref(), &headers[..own_start], 0);
    let mut headers_out = if input_bytes > limit {
        key = None;
        let mut own = headers.split_off(own_start);
        own.push((
            headers::KEY_AND_HEADERS_OMITTED.to_owned(),
            b"true".to_vec(),
        ));
        own
    } else {
        std::mem::take(&mut headers)
    };
    headers_out.extend([
        (headers::VALUE_OMITTED.to_owned(), b"true".to_vec()),
        (
            headers::VALUE_SIZE.to_owned(),
            payload.len().to_string().into_bytes(),
        ),
        (headers::VALUE_SHA256.to_owned(), sha256.into_bytes()),
    ]);
    OutboundRecord {
        topic,
        key,
        payload: Vec::new(),
        headers: headers_out,
    }
}

/// The SHA-256 of `value` as [`headers::VALUE_SHA256`] carries it: 64 lowercase hex digits.
pub fn value_sha256(value: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(value) {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
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
    fn dead_letter_copy_of_the_largest_accepted_record_fits_librdkafkas_default_limit() {
        let config = crate::PipelineConfig::new("p".repeat(1024), "d");
        let key = vec![b'k'; 13 * 1024];
        let input_headers = vec![("trace".to_owned(), vec![b'h'; 2000])];
        let value_len = config.max_record_bytes - record_bytes(Some(&key), &input_headers, 0);
        let mut input = InboundRecord {
            topic: Arc::from("t".repeat(249)),
            partition: i32::MAX,
            offset: i64::MAX,
            key: Some(key),
            payload: Some(vec![0; value_len]),
            timestamp_ms: None,
            headers: input_headers,
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
        let mut record = record;
        // A `refused` dead letter has one header more, naming the output topic.
        record
            .headers
            .push((headers::OUTPUT_TOPIC.to_owned(), vec![b'o'; 249]));
        let size = wire_size(&record);
        assert!(size <= ports::LIBRDKAFKA_MESSAGE_MAX_BYTES, "{size} bytes");
        assert!(
            size - config.max_record_bytes <= crate::RECORD_HEADROOM_BYTES,
            "{size} bytes"
        );
    }

    fn input_slot(value: &[u8]) -> InputSlot {
        InputSlot {
            topic: Arc::from("input"),
            partition: 2,
            offset: 41,
            value: value.to_vec(),
            outputs: 1,
        }
    }

    #[test]
    fn refused_dead_letter_carries_the_input_and_names_the_refusing_topic() {
        let refused = OutboundRecord {
            topic: Arc::from("processor.to.finance"),
            key: Some(b"k".to_vec()),
            payload: b"the encoded output".to_vec(),
            headers: vec![("tenant".to_owned(), b"a".to_vec())],
        };
        let record = refused_dead_letter_record(
            &Arc::from("dlq"),
            refused,
            &input_slot(b"\0\0\0\0\x07input"),
            "Broker: Topic authorization failed",
            "p",
        );
        assert_eq!(&*record.topic, "dlq");
        assert_eq!(record.payload, b"\0\0\0\0\x07input", "the input's value");
        assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(record.headers[0], ("tenant".to_owned(), b"a".to_vec()));
        assert_eq!(header(&record, headers::REASON), b"refused");
        assert_eq!(
            header(&record, headers::OUTPUT_TOPIC),
            b"processor.to.finance"
        );
        assert_eq!(header(&record, headers::SCHEMA_ID), b"7");
        assert_eq!(header(&record, headers::SOURCE_OFFSET), b"41");
        let error = std::str::from_utf8(header(&record, headers::ERROR)).expect("UTF-8");
        assert!(
            error.contains("Broker: Topic authorization failed")
                && error.contains("processor.to.finance"),
            "{error}"
        );
    }

    #[test]
    fn value_omitted_record_keeps_key_headers_and_coordinates_and_digests_the_value() {
        let mut input = record_with_key(b"k");
        input.headers = vec![("tenant".to_owned(), b"a".to_vec())];
        input.payload = Some(b"abc".to_vec());
        let copy = dead_letter_record(
            &Arc::from("dlq"),
            &mut input,
            &DeadLetterReason::TooLarge { size: 3, limit: 2 },
            None,
            "p",
        );
        let digest = value_omitted_record(copy.clone(), 1000);
        assert!(digest.payload.is_empty());
        assert_eq!(digest.key, copy.key);
        assert_eq!(digest.headers[..copy.headers.len()], copy.headers[..]);
        assert_eq!(header(&digest, headers::VALUE_OMITTED), b"true");
        assert_eq!(header(&digest, headers::VALUE_SIZE), b"3");
        assert_eq!(
            header(&digest, headers::VALUE_SHA256),
            b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(header(&digest, headers::SOURCE_OFFSET), b"41");
        assert_eq!(header(&digest, headers::KEY_AND_HEADERS_OMITTED), b"");

        // Key and input headers over the limit: only the processor's headers remain.
        let small = value_omitted_record(copy, 3);
        assert_eq!(small.key, None);
        assert_eq!(small.headers[0].0, headers::REASON);
        assert_eq!(header(&small, headers::KEY_AND_HEADERS_OMITTED), b"true");
        assert_eq!(header(&small, headers::VALUE_SIZE), b"3");
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

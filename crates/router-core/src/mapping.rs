//! Input record → output record, per the wire contract.
//!
//! The output record's Kafka key is the input key, byte for byte: it is
//! `"<origin_service_id>:<DESTINATION>"` by the producers' convention, and keeping it keeps all
//! events of one producer and destination on one partition of each output topic, in order.
//! There is therefore no key mapping function.

use crate::name::{normalize_borrowed, normalize_owned};
use crate::records::{
    ProcessorToConsumer, ProcessorToConsumerRef, ProducerToProcessor, ProducerToProcessorRef,
};

/// The output record for `input`, routed by processor `processor_id` at `processed_at_ms`
/// (epoch milliseconds; the caller reads the clock).
///
/// | output field | value |
/// |---|---|
/// | `producer_service_id` | input `origin_service_id` |
/// | `processor_service_id` | `processor_id` |
/// | `destination_type` | input `destination_service_type`, trimmed and ASCII upper-cased |
/// | `producer_event_timestamp` | input `event_timestamp` |
/// | `processor_event_timestamp` | `processed_at_ms` |
/// | `payload` | input `payload` |
///
/// `destination_type` is normalised because routing matches destinations case-insensitively:
/// consumers then see the one canonical name of the destination that was routed to (the one
/// in the routing table), whichever spelling the producer used, and can group and filter on it
/// exactly. The prototype's producers upper-case destinations already, so for them the value is
/// unchanged.
///
/// Clones the strings; use [`map_into_output`] when the input is no longer needed.
pub fn map_to_output(
    input: &ProducerToProcessor,
    processor_id: &str,
    processed_at_ms: i64,
) -> ProcessorToConsumer {
    map_borrowed(&input.borrowed(), processor_id, processed_at_ms).to_owned_record()
}

/// [`map_to_output`], moving the input's strings instead of cloning them: the payload and ids
/// are not copied, and the destination is upper-cased in place. For the common single-output
/// route.
pub fn map_into_output(
    input: ProducerToProcessor,
    processor_id: &str,
    processed_at_ms: i64,
) -> ProcessorToConsumer {
    ProcessorToConsumer {
        producer_service_id: input.origin_service_id,
        processor_service_id: processor_id.to_owned(),
        destination_type: normalize_owned(input.destination_service_type),
        producer_event_timestamp: input.event_timestamp,
        processor_event_timestamp: processed_at_ms,
        payload: input.payload,
    }
}

/// [`map_to_output`] for a borrowed input: nothing is copied or allocated, except the
/// destination when it needs normalising. The processor's hot path.
pub fn map_borrowed<'a>(
    input: &ProducerToProcessorRef<'a>,
    processor_id: &'a str,
    processed_at_ms: i64,
) -> ProcessorToConsumerRef<'a> {
    ProcessorToConsumerRef {
        producer_service_id: input.origin_service_id,
        processor_service_id: processor_id,
        destination_type: normalize_borrowed(input.destination_service_type),
        producer_event_timestamp: input.event_timestamp,
        processor_event_timestamp: processed_at_ms,
        payload: input.payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_variant_reuses_the_payload_buffer() {
        let input = ProducerToProcessor {
            origin_service_id: "producer-1".to_owned(),
            origin_service_type: "FINANCE".to_owned(),
            destination_service_type: "marketing".to_owned(),
            event_timestamp: 1,
            payload: "x".repeat(1024),
        };
        let payload_at = input.payload.as_ptr();
        let destination_at = input.destination_service_type.as_ptr();
        let output = map_into_output(input, "p", 2);
        assert_eq!(output.payload.as_ptr(), payload_at);
        assert_eq!(output.destination_type.as_ptr(), destination_at);
        assert_eq!(output.destination_type, "MARKETING");
    }
}

//! The two records of the product's wire contract (see `schemas/*.avsc`).
//!
//! They live here, in the pure domain crate, so routing and mapping need no codec;
//! `avro-codec` serializes exactly these types. Field order matches the Avro
//! schemas, which matters for Avro binary.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// An event as a tenant service publishes it to the input topic
/// (`service_messages.ProducerToProcessor`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProducerToProcessor {
    /// Id of the tenant service instance that produced the event.
    pub origin_service_id: String,
    /// Service type of the tenant, e.g. `FINANCE`.
    pub origin_service_type: String,
    /// Service type the event is meant for, e.g. `MARKETING`.
    pub destination_service_type: String,
    /// When the producer created the event, epoch milliseconds.
    pub event_timestamp: i64,
    /// Opaque payload, copied unchanged to the output.
    pub payload: String,
}

/// An event as the processor writes it to a destination's output topic
/// (`service_messages.ProcessorToConsumer`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcessorToConsumer {
    /// `origin_service_id` of the input event.
    pub producer_service_id: String,
    /// Id of the processor instance that routed the event.
    pub processor_service_id: String,
    /// `destination_service_type` of the input event.
    pub destination_type: String,
    /// `event_timestamp` of the input event, epoch milliseconds.
    pub producer_event_timestamp: i64,
    /// When the processor routed the event, epoch milliseconds.
    pub processor_event_timestamp: i64,
    /// Payload copied from the input event.
    pub payload: String,
}

/// A [`ProducerToProcessor`] whose strings borrow from elsewhere, typically from the bytes it
/// was decoded from: the processor's hot path reads events this way without copying them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerToProcessorRef<'a> {
    /// Id of the tenant service instance that produced the event.
    pub origin_service_id: &'a str,
    /// Service type of the tenant, e.g. `FINANCE`.
    pub origin_service_type: &'a str,
    /// Service type the event is meant for, e.g. `MARKETING`.
    pub destination_service_type: &'a str,
    /// When the producer created the event, epoch milliseconds.
    pub event_timestamp: i64,
    /// Opaque payload, copied unchanged to the output.
    pub payload: &'a str,
}

impl ProducerToProcessor {
    /// This event, borrowed.
    pub fn borrowed(&self) -> ProducerToProcessorRef<'_> {
        ProducerToProcessorRef {
            origin_service_id: &self.origin_service_id,
            origin_service_type: &self.origin_service_type,
            destination_service_type: &self.destination_service_type,
            event_timestamp: self.event_timestamp,
            payload: &self.payload,
        }
    }
}

impl ProducerToProcessorRef<'_> {
    /// An owned copy.
    pub fn to_owned_record(&self) -> ProducerToProcessor {
        ProducerToProcessor {
            origin_service_id: self.origin_service_id.to_owned(),
            origin_service_type: self.origin_service_type.to_owned(),
            destination_service_type: self.destination_service_type.to_owned(),
            event_timestamp: self.event_timestamp,
            payload: self.payload.to_owned(),
        }
    }
}

/// A [`ProcessorToConsumer`] whose strings borrow from the input event and the processor's
/// configuration, built by [`map_borrowed`](crate::map_borrowed) and encoded without copying
/// them into strings of its own first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessorToConsumerRef<'a> {
    /// `origin_service_id` of the input event.
    pub producer_service_id: &'a str,
    /// Id of the processor instance that routed the event.
    pub processor_service_id: &'a str,
    /// `destination_service_type` of the input event, normalised (borrowed when it already
    /// was).
    pub destination_type: Cow<'a, str>,
    /// `event_timestamp` of the input event, epoch milliseconds.
    pub producer_event_timestamp: i64,
    /// When the processor routed the event, epoch milliseconds.
    pub processor_event_timestamp: i64,
    /// Payload copied from the input event.
    pub payload: &'a str,
}

impl ProcessorToConsumer {
    /// This record, borrowed.
    pub fn borrowed(&self) -> ProcessorToConsumerRef<'_> {
        ProcessorToConsumerRef {
            producer_service_id: &self.producer_service_id,
            processor_service_id: &self.processor_service_id,
            destination_type: Cow::Borrowed(&self.destination_type),
            producer_event_timestamp: self.producer_event_timestamp,
            processor_event_timestamp: self.processor_event_timestamp,
            payload: &self.payload,
        }
    }
}

impl ProcessorToConsumerRef<'_> {
    /// An owned copy.
    pub fn to_owned_record(&self) -> ProcessorToConsumer {
        ProcessorToConsumer {
            producer_service_id: self.producer_service_id.to_owned(),
            processor_service_id: self.processor_service_id.to_owned(),
            destination_type: self.destination_type.clone().into_owned(),
            producer_event_timestamp: self.producer_event_timestamp,
            processor_event_timestamp: self.processor_event_timestamp,
            payload: self.payload.to_owned(),
        }
    }
}

//! The two records of the product's wire contract (see `schemas/*.avsc`).
//!
//! They live here, in the pure domain crate, so routing and mapping need no codec;
//! `avro-codec` serializes exactly these types. Field order matches the Avro
//! schemas, which matters for Avro binary.

use serde::{Deserialize, Serialize};

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

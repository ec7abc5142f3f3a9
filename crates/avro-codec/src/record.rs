//! The two records of the wire contract, their embedded reader schemas, and their hand-written
//! Avro binary codecs (the fast path).

use router_core::{
    ProcessorToConsumer, ProcessorToConsumerRef, ProducerToProcessor, ProducerToProcessorRef,
};
use serde::{Serialize, de::DeserializeOwned};

use crate::binary::{BodyError, BodyReader, str_size_hint, write_long, write_str};

/// Reader schema of [`ProducerToProcessor`] (`schemas/producer.to.processor.avsc`).
pub const PRODUCER_TO_PROCESSOR_SCHEMA: &str =
    include_str!("../../../schemas/producer.to.processor.avsc");

/// Reader schema of [`ProcessorToConsumer`] (`schemas/processor.to.consumer.avsc`).
pub const PROCESSOR_TO_CONSUMER_SCHEMA: &str =
    include_str!("../../../schemas/processor.to.consumer.avsc");

/// A record type of the wire contract: [`ProducerToProcessor`] or [`ProcessorToConsumer`].
///
/// Sealed: the fast codec is written by hand for exactly these schemas.
pub trait WireRecord:
    sealed::Sealed + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The Avro schema (JSON) this crate reads into and writes from this type.
    const SCHEMA: &'static str;
    /// Full name of the Avro record, e.g. `service_messages.ProducerToProcessor`.
    const FULL_NAME: &'static str;
}

pub(crate) mod sealed {
    use super::{BodyError, BodyReader};

    /// The hand-written codec; private so that it can change with the schemas.
    #[allow(unreachable_pub, private_interfaces)]
    pub trait Sealed: Sized {
        /// Decodes the fields in schema order; does not check for trailing bytes.
        fn decode_body(reader: &mut BodyReader<'_>) -> Result<Self, BodyError>;
        /// Appends the fields in schema order.
        fn encode_body(&self, out: &mut Vec<u8>);
        /// An upper bound of the encoded body size.
        fn body_size_hint(&self) -> usize;
    }
}

impl WireRecord for ProducerToProcessor {
    const SCHEMA: &'static str = PRODUCER_TO_PROCESSOR_SCHEMA;
    const FULL_NAME: &'static str = "service_messages.ProducerToProcessor";
}

#[allow(private_interfaces)]
impl sealed::Sealed for ProducerToProcessor {
    #[inline]
    fn decode_body(reader: &mut BodyReader<'_>) -> Result<Self, BodyError> {
        decode_input_body(reader).map(|record| record.to_owned_record())
    }

    #[inline]
    fn encode_body(&self, out: &mut Vec<u8>) {
        write_str(out, &self.origin_service_id);
        write_str(out, &self.origin_service_type);
        write_str(out, &self.destination_service_type);
        write_long(out, self.event_timestamp);
        write_str(out, &self.payload);
    }

    fn body_size_hint(&self) -> usize {
        str_size_hint(&self.origin_service_id)
            + str_size_hint(&self.origin_service_type)
            + str_size_hint(&self.destination_service_type)
            + 10
            + str_size_hint(&self.payload)
    }
}

/// The input record's fields in schema order, borrowed from the body: the one fast decoder of
/// the input, used by the owned and the borrowed decode alike.
#[inline]
pub(crate) fn decode_input_body<'a>(
    reader: &mut BodyReader<'a>,
) -> Result<ProducerToProcessorRef<'a>, BodyError> {
    Ok(ProducerToProcessorRef {
        origin_service_id: reader.read_str()?,
        origin_service_type: reader.read_str()?,
        destination_service_type: reader.read_str()?,
        event_timestamp: reader.read_long()?,
        payload: reader.read_str()?,
    })
}

impl WireRecord for ProcessorToConsumer {
    const SCHEMA: &'static str = PROCESSOR_TO_CONSUMER_SCHEMA;
    const FULL_NAME: &'static str = "service_messages.ProcessorToConsumer";
}

#[allow(private_interfaces)]
impl sealed::Sealed for ProcessorToConsumer {
    #[inline]
    fn decode_body(reader: &mut BodyReader<'_>) -> Result<Self, BodyError> {
        Ok(Self {
            producer_service_id: reader.read_string()?,
            processor_service_id: reader.read_string()?,
            destination_type: reader.read_string()?,
            producer_event_timestamp: reader.read_long()?,
            processor_event_timestamp: reader.read_long()?,
            payload: reader.read_string()?,
        })
    }

    #[inline]
    fn encode_body(&self, out: &mut Vec<u8>) {
        encode_output_body(&self.borrowed(), out);
    }

    fn body_size_hint(&self) -> usize {
        output_body_size_hint(&self.borrowed())
    }
}

/// The output record's fields in schema order: the one fast encoder of the output, used by
/// the owned and the borrowed encode alike.
#[inline]
pub(crate) fn encode_output_body(record: &ProcessorToConsumerRef<'_>, out: &mut Vec<u8>) {
    write_str(out, record.producer_service_id);
    write_str(out, record.processor_service_id);
    write_str(out, &record.destination_type);
    write_long(out, record.producer_event_timestamp);
    write_long(out, record.processor_event_timestamp);
    write_str(out, record.payload);
}

/// An upper bound of [`encode_output_body`]'s size.
pub(crate) fn output_body_size_hint(record: &ProcessorToConsumerRef<'_>) -> usize {
    str_size_hint(record.producer_service_id)
        + str_size_hint(record.processor_service_id)
        + str_size_hint(&record.destination_type)
        + 20
        + str_size_hint(record.payload)
}

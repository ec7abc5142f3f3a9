//! Encoding of typed records into Confluent-framed Avro values.

use std::{fmt, marker::PhantomData};

use router_core::{ProcessorToConsumer, ProcessorToConsumerRef, ProducerToProcessor};

use crate::record::{encode_output_body, output_body_size_hint};
use crate::{CodecError, HEADER_LEN, SchemaId, SchemaRegistry, WireRecord, write_header};

/// Encoder of [`ProcessorToConsumer`] values (the router's output).
pub type OutputEncoder = Encoder<ProcessorToConsumer>;

/// Encoder of [`ProducerToProcessor`] values (what tenant producers write).
pub type InputEncoder = Encoder<ProducerToProcessor>;

/// Writes `T` as header + Avro body under one schema id, with a hand-written encoder that
/// appends straight to a caller-owned buffer. Infallible and allocation-free when the buffer has
/// capacity.
pub struct Encoder<T: WireRecord> {
    schema_id: SchemaId,
    _record: PhantomData<fn(&T)>,
}

impl<T: WireRecord> Clone for Encoder<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: WireRecord> Copy for Encoder<T> {}

impl<T: WireRecord> fmt::Debug for Encoder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("record", &T::FULL_NAME)
            .field("schema_id", &self.schema_id)
            .finish()
    }
}

impl<T: WireRecord> Encoder<T> {
    /// An encoder writing `schema_id` in every header. The id must be that of `T::SCHEMA` in the
    /// registry the consumers use; [`register`](Self::register) obtains it.
    pub const fn new(schema_id: SchemaId) -> Self {
        Self {
            schema_id,
            _record: PhantomData,
        }
    }

    /// Registers `T::SCHEMA` under `subject` (or finds it already registered) and returns an
    /// encoder for the id the registry assigned.
    ///
    /// # Errors
    /// [`CodecError::Registry`] with the subject.
    pub async fn register<R: SchemaRegistry>(
        registry: &R,
        subject: &str,
    ) -> Result<Self, CodecError> {
        match registry.register(subject, T::SCHEMA).await {
            Ok(schema_id) => Ok(Self::new(schema_id)),
            Err(source) => Err(CodecError::Registry {
                schema_id: None,
                subject: Some(subject.to_owned()),
                source,
            }),
        }
    }

    /// The schema id written in each header.
    pub const fn schema_id(&self) -> SchemaId {
        self.schema_id
    }

    /// Appends the framed value of `record` (header + body) to `out`; does not clear it.
    #[inline]
    pub fn encode(&self, record: &T, out: &mut Vec<u8>) {
        out.reserve(HEADER_LEN + record.body_size_hint());
        write_header(self.schema_id, out);
        record.encode_body(out);
    }

    /// The framed value of `record` in a new buffer.
    pub fn encode_to_vec(&self, record: &T) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(record, &mut out);
        out
    }
}

impl Encoder<ProcessorToConsumer> {
    /// [`encode`](Self::encode) for a borrowed record: the same bytes, without the record
    /// having strings of its own.
    #[inline]
    pub fn encode_borrowed(&self, record: &ProcessorToConsumerRef<'_>, out: &mut Vec<u8>) {
        out.reserve(HEADER_LEN + output_body_size_hint(record));
        write_header(self.schema_id, out);
        encode_output_body(record, out);
    }
}

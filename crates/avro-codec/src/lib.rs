#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod binary;
mod decoder;
mod encoder;
mod error;
mod framing;
mod record;
mod registry;
mod scan;

pub use decoder::{
    DecodedInput, Decoder, InputDecoder, MAX_REJECTED_SCHEMA_IDS, OutputDecoder, ReadPath,
};
pub use encoder::{Encoder, InputEncoder, OutputEncoder};
pub use error::{CodecError, ErrorClass, RegistryError};
pub use framing::{HEADER_LEN, MAGIC_BYTE, SchemaId, split_frame, write_header};
pub use record::{PROCESSOR_TO_CONSUMER_SCHEMA, PRODUCER_TO_PROCESSOR_SCHEMA, WireRecord};
pub use registry::{RegisteredSchema, SchemaRegistry};
pub use router_core::{
    ProcessorToConsumer, ProcessorToConsumerRef, ProducerToProcessor, ProducerToProcessorRef,
};

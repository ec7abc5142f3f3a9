#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod config;
mod dead_letter;
mod error;
mod hash;
mod mapping;
mod name;
mod ordered;
mod policy;
mod records;
mod router;
mod table;

pub use config::RouterConfig;
pub use dead_letter::{
    DeadLetterCode, DeadLetterReason, UnknownDeadLetterCode, headers as dead_letter_headers,
};
pub use error::RouterConfigError;
pub use mapping::{map_borrowed, map_into_output, map_to_output};
pub use name::{DestinationName, WILDCARD};
pub use policy::{AllowRule, Policy, PolicyMode};
pub use records::{
    ProcessorToConsumer, ProcessorToConsumerRef, ProducerToProcessor, ProducerToProcessorRef,
};
pub use router::{Decision, Router};
pub use table::{DEFAULT_OUTPUT_SUBJECT, OutputTarget, RoutingTable};

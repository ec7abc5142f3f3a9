//! router-core: routing table, tenant policy and record mapping (pure).

mod records;

pub use records::{ProcessorToConsumer, ProducerToProcessor};

#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod cached;
mod http;
mod memory;

pub use cached::CachedRegistry;
pub use http::{CONTENT_TYPE_V1, CaCert, HttpSchemaRegistry, RegistryClientConfig};
pub use memory::MemoryRegistry;

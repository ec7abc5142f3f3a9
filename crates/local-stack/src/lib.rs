#![doc = include_str!("../README.md")]

mod daemon;
mod kafka;
mod registry;
mod security;
mod tools;

pub use daemon::{Daemon, ensure_port_free, free_port, port_answers, wait_until};
pub use kafka::KafkaBroker;
pub use registry::{Registry, registry_answers};
pub use security::{
    Acl, AclOperation, AclResource, SCRAM_MECHANISM, ScramUser, SecureListener,
    librdkafka_properties,
};
pub use tools::{APICURIO_VERSION, KAFKA_VERSION, Tools, tools_dir};

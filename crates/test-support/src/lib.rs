#![doc = include_str!("../README.md")]
mod process;
pub use process::{Finished, run_to_completion, scratch_dir};

#[cfg(feature = "kafka")]
mod kafka;
#[cfg(feature = "kafka")]
pub use kafka::{BatchProducer, create_topics, header, produce_and_wait};
#[cfg(feature = "kafka")]
mod own_stack;
#[cfg(feature = "kafka")]
pub use own_stack::OwnBroker;
#[cfg(feature = "kafka")]
mod acl_wire;
#[cfg(feature = "kafka")]
mod secure;
#[cfg(feature = "kafka")]
pub use local_stack::{Acl, AclOperation, AclResource, ScramUser};
#[cfg(feature = "kafka")]
pub use secure::SecureBroker;
#[cfg(feature = "kafka")]
mod proxy;
#[cfg(feature = "kafka")]
pub use proxy::TcpProxy;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Environment variable naming the Kafka bootstrap servers.
pub const KAFKA_BOOTSTRAP_ENV: &str = "KAFKA_BOOTSTRAP";
/// Environment variable naming the schema registry base URL.
pub const SCHEMA_REGISTRY_URL_ENV: &str = "SCHEMA_REGISTRY_URL";
/// When set to `1`, a missing stack fails tests instead of skipping them.
pub const REQUIRE_STACK_ENV: &str = "EP_REQUIRE_STACK";

/// Where the real stack is.
#[derive(Debug, Clone)]
pub struct Stack {
    /// Kafka bootstrap servers (`host:port[,host:port]`).
    pub kafka_bootstrap: String,
    /// Schema registry base URL, without a trailing slash.
    pub registry_url: String,
}

/// The stack from the environment, or `None` (after printing why) when the test should skip.
///
/// # Panics
/// When the stack is missing and `EP_REQUIRE_STACK=1`: CI must never skip.
pub fn stack(test_name: &str) -> Option<Stack> {
    let kafka = std::env::var(KAFKA_BOOTSTRAP_ENV)
        .ok()
        .filter(|v| !v.is_empty());
    let registry = std::env::var(SCHEMA_REGISTRY_URL_ENV)
        .ok()
        .filter(|v| !v.is_empty());
    match (kafka, registry) {
        (Some(kafka_bootstrap), Some(registry_url)) => Some(Stack {
            kafka_bootstrap,
            registry_url: registry_url.trim_end_matches('/').to_owned(),
        }),
        _ => {
            let why = format!(
                "integration test `{test_name}` needs {KAFKA_BOOTSTRAP_ENV} and {SCHEMA_REGISTRY_URL_ENV} \
                 (run `cargo xtask test`, or `cargo xtask stack up` and export the variables it prints)"
            );
            if std::env::var(REQUIRE_STACK_ENV).as_deref() == Ok("1") {
                panic!("{why}; {REQUIRE_STACK_ENV}=1 forbids skipping");
            }
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// Evaluates to the [`Stack`], or returns from the calling test after printing why it skips.
#[macro_export]
macro_rules! require_stack {
    () => {
        match $crate::stack(module_path!()) {
            Some(stack) => stack,
            None => return,
        }
    };
}

/// A name no other test run uses: `<prefix>-<pid>-<time>-<counter>-<random>`.
///
/// Every test gets its own topics and consumer group: a reused group id can hang a join.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random: u32 = rand::random();
    format!(
        "{prefix}-{}-{nanos}-{count}-{random:08x}",
        std::process::id()
    )
}

/// librdkafka properties for tests whose group members die: the group notices a SIGKILLed member
/// after 6 s (the broker's minimum) instead of librdkafka's default 45 s.
pub const FAST_GROUP_PROPERTIES: &[(&str, &str)] = &[
    ("session.timeout.ms", "6000"),
    ("heartbeat.interval.ms", "500"),
];

//! Client configuration: our defaults, then the user's librdkafka properties on top.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tracing::{debug, error, info, warn};

/// How to reach the cluster, plus any librdkafka property.
///
/// Its `Debug` output shows the value of a secret property (see [`is_secret_property`]) as
/// `<redacted>`, so a configuration can be logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// librdkafka properties (security, batching, compression, timeouts…), passed through
    /// verbatim and overriding this crate's defaults.
    pub properties: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// A configuration with no extra properties.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            properties: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) one librdkafka property.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// The librdkafka configuration: bootstrap servers, then `defaults`, then the user's
    /// properties (which win).
    pub(crate) fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(key, value)| {
                let shown = if is_secret_property(key) {
                    "<redacted>"
                } else {
                    value.as_str()
                };
                (key.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("properties", &properties)
            .finish()
    }
}

/// Whether the value of librdkafka property `key` is a secret that must not be logged:
/// passwords (`sasl.password`, `ssl.key.password`, `ssl.keystore.password`), secrets
/// (`sasl.oauthbearer.client.secret`), inline private keys (`ssl.key.pem`) and configurations
/// that may carry either (`sasl.jaas.config`, `sasl.oauthbearer.config`).
pub fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "key.pem",
        "oauthbearer.config",
    ]
    .iter()
    .any(|marker| key.contains(marker))
}

/// What the group consumer reads and how it hands records over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerSettings {
    /// Consumer group id.
    pub group_id: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// How long the rebalance callback waits for the answer to a `Revoked` event.
    pub revoke_timeout: Duration,
    /// Most records in one `Records` event (e.g. 1024).
    pub batch_max: usize,
    /// Events buffered between the consumer thread and the pipeline; when full, the consumer
    /// thread stops polling, so back-pressure reaches the broker fetch.
    pub channel_capacity: usize,
}

impl ConsumerSettings {
    /// Settings with a 30 s revoke timeout, batches of up to 1024 records and 4 buffered events
    /// (librdkafka's own bounded prefetch queue is behind them).
    pub fn new(group_id: impl Into<String>, topics: Vec<String>) -> Self {
        Self {
            group_id: group_id.into(),
            topics,
            revoke_timeout: Duration::from_secs(30),
            batch_max: 1024,
            channel_capacity: 4,
        }
    }
}

/// librdkafka's default `max.poll.interval.ms`: the longest a group consumer may go without
/// polling before it is considered failed and its partitions move. Neither this crate's
/// defaults nor [`ConsumerSettings`] change it; a rebalance callback that waits
/// [`ConsumerSettings::revoke_timeout`] must stay below it.
pub const LIBRDKAFKA_MAX_POLL_INTERVAL_MS: u64 = 300_000;

/// Consumer defaults: offsets move only when the pipeline commits.
pub(crate) const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    ("partition.assignment.strategy", "cooperative-sticky"),
];

/// Producer defaults: no duplicates from internal retries, every replica acknowledges,
/// short batching, cheap compression and a local queue deep enough for bursts.
pub(crate) const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "5"),
    ("compression.type", "lz4"),
    ("queue.buffering.max.messages", "1000000"),
];

/// Routes librdkafka's log lines and global errors to `tracing`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LoggingContext;

impl ClientContext for LoggingContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(error, reason);
    }
}

impl ConsumerContext for LoggingContext {}

/// librdkafka's client-level errors are transient (it reconnects and retries); reaching the end
/// of a partition is reported through the same callback but is no error at all.
pub(crate) fn log_client_error(error: KafkaError, reason: &str) {
    match error {
        KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF) => {
            debug!(reason, "Reached the end of a partition.");
        }
        error => warn!(%error, reason, "librdkafka reported an error; it retries by itself."),
    }
}

pub(crate) fn log_librdkafka(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => error!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Warning => warn!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            info!(target: "librdkafka", facility, "{message}");
        }
        RDKafkaLogLevel::Debug => debug!(target: "librdkafka", facility, "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The constants above are what the bundled librdkafka actually uses, and this crate's
    /// defaults leave them alone: a librdkafka upgrade that changes them fails here.
    #[test]
    fn librdkafka_limits_are_the_bundled_librdkafkas_defaults() {
        let consumer_defaults = crate::consumer::consumer_defaults();
        for defaults in [&[][..], &consumer_defaults, PRODUCER_DEFAULTS] {
            let native = KafkaConfig::new("127.0.0.1:9092")
                .client_config(defaults)
                .create_native_config()
                .expect("librdkafka accepts the defaults");
            assert_eq!(
                native.get("max.poll.interval.ms").expect("known property"),
                LIBRDKAFKA_MAX_POLL_INTERVAL_MS.to_string()
            );
            assert_eq!(
                native.get("message.max.bytes").expect("known property"),
                ports::LIBRDKAFKA_MESSAGE_MAX_BYTES.to_string()
            );
        }
    }

    #[test]
    fn secret_properties_never_show_in_debug_output() {
        let config = KafkaConfig::new("127.0.0.1:9093")
            .with("security.protocol", "SASL_SSL")
            .with("sasl.username", "processor")
            .with("sasl.password", "pw-sasl-1")
            .with("ssl.key.password", "pw-key-2")
            .with("sasl.oauthbearer.client.secret", "pw-oauth-3")
            .with("SSL.KEYSTORE.PASSWORD", "pw-store-4")
            .with("ssl.key.pem", "pw-pem-5");
        let shown = format!("{config:?}");
        for secret in [
            "pw-sasl-1",
            "pw-key-2",
            "pw-oauth-3",
            "pw-store-4",
            "pw-pem-5",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        for visible in ["127.0.0.1:9093", "SASL_SSL", "processor", "sasl.password"] {
            assert!(shown.contains(visible), "{visible} missing from {shown}");
        }
        assert!(!is_secret_property("ssl.ca.location") && !is_secret_property("sasl.username"));
    }

    #[test]
    fn user_properties_override_defaults() {
        let config = KafkaConfig::new("127.0.0.1:9092")
            .with("compression.type", "zstd")
            .with("security.protocol", "ssl");
        let client = config.client_config(PRODUCER_DEFAULTS);
        assert_eq!(client.get("compression.type"), Some("zstd"));
        assert_eq!(client.get("security.protocol"), Some("ssl"));
        assert_eq!(client.get("acks"), Some("all"));
        assert_eq!(client.get("bootstrap.servers"), Some("127.0.0.1:9092"));
    }
}

//! Layered configuration: built-in defaults < config file < `EVENT_PROCESSOR__*` environment < command line.

use crate::ops::Limits;
use anyhow::{Context, Result, bail};
use clap::Parser;
use offset_tracker::CommitPolicy;
use pipeline::{
    AuthenticationMode, PipelineConfig, RetryPolicy, SigningClock, TenantAuthentication,
};
use router_core::Router;
use schema_registry::{CaCert, RegistryClientConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tenant_auth::{Freshness, KeyRing, Verifier};

/// Command line of the processor. Every flag can also come from the config file or from the
/// environment (`EVENT_PROCESSOR__<SECTION>__<KEY>`, e.g. `EVENT_PROCESSOR__KAFKA__BOOTSTRAP_SERVERS`).
#[derive(Debug, Parser)]
#[command(name = "event-processor", about = "Multi-tenant Kafka event router")]
pub struct Cli {
    /// TOML config file (see deploy/processor.toml).
    #[arg(long, short = 'c', env = "EVENT_PROCESSOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Id of this processor instance, written into every output record.
    #[arg(long)]
    pub processor_id: Option<String>,
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    #[arg(long)]
    pub bootstrap_servers: Option<String>,
    /// Schema registry base URL.
    #[arg(long)]
    pub schema_registry_url: Option<String>,
    /// The input topic.
    #[arg(long)]
    pub input_topic: Option<String>,
    /// Consumer group id.
    #[arg(long)]
    pub group_id: Option<String>,
    /// Dead-letter topic.
    #[arg(long)]
    pub dead_letter_topic: Option<String>,
    /// Routing file (TOML routing table and tenant policy).
    #[arg(long)]
    pub routing_file: Option<PathBuf>,
    /// The prototype's routing JSON: `{"FINANCE": {"output_topic": …, "output_subject": …}}` (allow-all policy).
    #[arg(long)]
    pub destination_configurations: Option<String>,
    /// Commit after this many completed input records (or after the commit interval).
    #[arg(long)]
    pub commit_every: Option<u64>,
    /// Delivery guarantee: `at-least-once` (default) or `exactly-once` (Kafka transactions;
    /// read outputs with `isolation.level=read_committed`).
    #[arg(long, value_name = "MODE", value_parser = ["at-least-once", "exactly-once"])]
    pub delivery: Option<String>,
    /// Log level or filter (`info`, `debug`, `event_processor=debug,rdkafka=warn`); `RUST_LOG` wins.
    #[arg(long)]
    pub log_level: Option<String>,
    /// Log as JSON lines.
    #[arg(long)]
    pub log_json: bool,
    /// Extra librdkafka property for consumer and producer, `key=value`; repeatable.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_properties: Vec<String>,
    /// Extra librdkafka property for the consumer only, `key=value`; repeatable.
    #[arg(long = "consumer-property", value_name = "KEY=VALUE")]
    pub consumer_properties: Vec<String>,
    /// Extra librdkafka property for the producer only, `key=value`; repeatable.
    #[arg(long = "producer-property", value_name = "KEY=VALUE")]
    pub producer_properties: Vec<String>,
    /// Create missing output and dead-letter topics at start instead of refusing to start.
    #[arg(long)]
    pub create_missing_topics: bool,
    /// Address of the metrics and probes endpoint (`/metrics`, `/health`, `/ready`), e.g.
    /// `0.0.0.0:9464`; port 0 picks a free port (logged at start).
    #[arg(long, value_name = "HOST:PORT")]
    pub http_listen: Option<String>,
    /// How often to check the routing file for changes, in milliseconds; 0: only on SIGHUP.
    #[arg(long, value_name = "MS")]
    pub routing_reload_poll_ms: Option<u64>,
    /// Check the configuration (settings, routing file, registry credentials) as a start would,
    /// print it and exit: 0 when it is valid, 2 when it would be refused. Connects to nothing.
    #[arg(long)]
    pub check_config: bool,
    /// GET this URL of a running processor (`http://127.0.0.1:9464/health`) and exit 0 on a 200,
    /// 1 otherwise; reads no configuration (other flags are ignored). For container health
    /// checks without curl.
    #[arg(long, value_name = "URL")]
    pub probe: Option<String>,
}

/// The processor's settings after layering, validated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub processor_id: String,
    pub kafka: KafkaSettings,
    pub registry: RegistrySettings,
    pub routing: RoutingSettings,
    pub pipeline: PipelineSettings,
    pub http: HttpSettings,
    pub health: HealthSettings,
    pub log: LogSettings,
    pub authentication: AuthenticationSettings,
}

/// Tenant authentication (`[authentication]`, docs/OPERATIONS.md "Tenant authentication").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationSettings {
    pub mode: AuthenticationModeSetting,
    /// The tenants' keys (crates/tenant-auth/README.md); required unless `mode` is `none`.
    /// Reloaded with the routing file.
    pub key_file: Option<PathBuf>,
    /// Oldest signature accepted (ms before "now"); 0 accepts any age.
    pub max_age_ms: u64,
    /// How far ahead of "now" a signature may be (producer clock skew), ms.
    pub max_ahead_ms: u64,
    pub clock: SigningClockSetting,
}

/// `authentication.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthenticationModeSetting {
    /// Trust the identity the event claims.
    None,
    /// Verify, count and log failures, route anyway.
    Observe,
    /// Dead-letter every event whose identity a signature does not vouch for.
    Hmac,
}

impl AuthenticationSettings {
    fn mode_name(&self) -> &'static str {
        match self.mode {
            AuthenticationModeSetting::None => "none",
            AuthenticationModeSetting::Observe => "observe",
            AuthenticationModeSetting::Hmac => "hmac",
        }
    }
}

/// `authentication.clock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SigningClockSetting {
    WallClock,
    LogAppendTime,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    pub input_topic: String,
    pub group_id: String,
    pub dead_letter_topic: String,
    pub create_missing_topics: bool,
    pub topic_partitions: i32,
    /// Replication factor of topics it creates; `None`: the broker's `default.replication.factor`.
    pub topic_replication: Option<i32>,
    /// How long start-up waits for missing topics (created by a deployment job) before it
    /// refuses to start; 0 refuses at once.
    pub missing_topics_wait_ms: u64,
    /// librdkafka properties for every client (security, timeouts).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties for the consumer only (group timeouts, fetch sizes).
    #[serde(default)]
    pub consumer_properties: BTreeMap<String, String>,
    /// librdkafka properties for the producer only (batching, compression, acks).
    #[serde(default)]
    pub producer_properties: BTreeMap<String, String>,
    /// A librdkafka properties file (`key=value` lines) read at start and applied to every
    /// client after `properties`: where credentials (`sasl.password`, `ssl.key.password`)
    /// belong, as they then show neither in `ps` nor in the config file.
    pub properties_file: Option<PathBuf>,
}

/// Secret property values (see [`cli_support::is_secret_property`]) are shown as `<redacted>`.
impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |properties: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            properties
                .iter()
                .map(|(key, value)| {
                    let value = cli_support::shown_property(key, value);
                    (key.clone(), value.to_owned())
                })
                .collect()
        };
        f.debug_struct("KafkaSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("input_topic", &self.input_topic)
            .field("group_id", &self.group_id)
            .field("dead_letter_topic", &self.dead_letter_topic)
            .field("create_missing_topics", &self.create_missing_topics)
            .field("topic_partitions", &self.topic_partitions)
            .field("topic_replication", &self.topic_replication)
            .field("missing_topics_wait_ms", &self.missing_topics_wait_ms)
            .field("properties", &shown(&self.properties))
            .field("consumer_properties", &shown(&self.consumer_properties))
            .field("producer_properties", &shown(&self.producer_properties))
            .field("properties_file", &self.properties_file)
            .finish()
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    pub url: String,
    pub timeout_ms: u64,
    pub max_retries: u32,
    pub auto_register: bool,
    /// How long a record whose schema id the registry does not know is held back (the id asked
    /// for again) before it is dead-lettered; 0 dead-letters at once.
    pub not_found_retry_ms: u64,
    pub basic_auth_user: Option<String>,
    /// Better from `EVENT_PROCESSOR__REGISTRY__BASIC_AUTH_PASSWORD` or
    /// `basic_auth_password_file` than from the config file.
    pub basic_auth_password: Option<String>,
    /// A file holding the basic-auth password (surrounding whitespace trimmed).
    pub basic_auth_password_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust besides the platform's (a private registry CA).
    pub ca_file: Option<PathBuf>,
}

/// The password is shown as `<redacted>`.
impl std::fmt::Debug for RegistrySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySettings")
            .field("url", &self.url)
            .field("timeout_ms", &self.timeout_ms)
            .field("max_retries", &self.max_retries)
            .field("auto_register", &self.auto_register)
            .field("not_found_retry_ms", &self.not_found_retry_ms)
            .field("basic_auth_user", &self.basic_auth_user)
            .field(
                "basic_auth_password",
                &self.basic_auth_password.as_ref().map(|_| "<redacted>"),
            )
            .field("basic_auth_password_file", &self.basic_auth_password_file)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSettings {
    pub file: Option<PathBuf>,
    pub destination_configurations: Option<String>,
    /// How often the routing file is checked for changes; 0 reloads only on SIGHUP.
    pub reload_poll_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    pub max_in_flight: usize,
    pub max_record_bytes: usize,
    pub commit_every: u64,
    pub commit_interval_ms: u64,
    pub drain_timeout_ms: u64,
    pub retry_initial_backoff_ms: u64,
    pub retry_max_backoff_ms: u64,
    pub retry_budget: u32,
    /// At-least-once (commit offsets after the outputs are acknowledged) or exactly-once
    /// (outputs and offsets in one Kafka transaction).
    pub delivery: Delivery,
}

/// The delivery guarantee (`pipeline.delivery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    AtLeastOnce,
    ExactlyOnce,
}

/// The metrics and probes endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub enabled: bool,
    pub listen: String,
}

/// Background checks behind `/ready` and the lag metrics, and the liveness limit behind `/health`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// How often broker (group positions and watermarks) and registry are checked.
    pub check_interval_ms: u64,
    /// Limit of one check.
    pub check_timeout_ms: u64,
    /// `/health` fails when the pipeline loop has not turned for this long.
    pub stall_after_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub json: bool,
}

/// Defaults for everything but the routing table; documented in deploy/processor.toml.
const DEFAULTS: &str = r#"
processor_id = "event-processor-1"

[kafka]
bootstrap_servers = "127.0.0.1:9092"
input_topic = "producer.to.processor"
group_id = "event_processor"
dead_letter_topic = "producer.to.processor.dlq"
create_missing_topics = false
topic_partitions = 3
missing_topics_wait_ms = 60000

[registry]
url = "http://127.0.0.1:8081"
timeout_ms = 5000
max_retries = 3
auto_register = true
not_found_retry_ms = 5000

[routing]
reload_poll_ms = 1000

[pipeline]
max_in_flight = 10000
max_record_bytes = 983616
commit_every = 10000
commit_interval_ms = 1000
drain_timeout_ms = 20000
retry_initial_backoff_ms = 100
retry_max_backoff_ms = 5000
retry_budget = 5
delivery = "at-least-once"

[http]
enabled = true
listen = "127.0.0.1:9464"

[health]
check_interval_ms = 5000
check_timeout_ms = 3000
stall_after_ms = 60000

[log]
level = "info"
json = false

[authentication]
mode = "none"
max_age_ms = 3600000
max_ahead_ms = 300000
clock = "wall-clock"
"#;

impl Settings {
    pub fn load(cli: &Cli) -> Result<Self> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = &cli.config {
            if !path.is_file() {
                bail!("config file {} does not exist", path.display());
            }
            builder = builder.add_source(config::File::from(path.as_path()));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("EVENT_PROCESSOR")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
        let overrides: [(&str, Option<config::Value>); 13] = [
            ("processor_id", cli.processor_id.clone().map(Into::into)),
            (
                "kafka.bootstrap_servers",
                cli.bootstrap_servers.clone().map(Into::into),
            ),
            ("kafka.input_topic", cli.input_topic.clone().map(Into::into)),
            ("kafka.group_id", cli.group_id.clone().map(Into::into)),
            (
                "kafka.dead_letter_topic",
                cli.dead_letter_topic.clone().map(Into::into),
            ),
            (
                "registry.url",
                cli.schema_registry_url.clone().map(Into::into),
            ),
            (
                "routing.file",
                cli.routing_file
                    .as_ref()
                    .map(|path| path.to_string_lossy().into_owned().into()),
            ),
            (
                "routing.destination_configurations",
                cli.destination_configurations.clone().map(Into::into),
            ),
            ("pipeline.commit_every", cli.commit_every.map(Into::into)),
            ("pipeline.delivery", cli.delivery.clone().map(Into::into)),
            ("log.level", cli.log_level.clone().map(Into::into)),
            ("http.listen", cli.http_listen.clone().map(Into::into)),
            (
                "routing.reload_poll_ms",
                cli.routing_reload_poll_ms.map(Into::into),
            ),
        ];
        for (key, value) in overrides {
            if let Some(value) = value {
                builder = builder.set_override(key, value)?;
            }
        }
        if cli.log_json {
            builder = builder.set_override("log.json", true)?;
        }
        if cli.create_missing_topics {
            builder = builder.set_override("kafka.create_missing_topics", true)?;
        }
        let mut settings: Settings = builder
            .build()
            .context("cannot read the configuration")?
            .try_deserialize()
            .context("invalid configuration")?;
        if let Some(path) = &settings.kafka.properties_file {
            let from_file =
                cli_support::read_properties_file(path).context("kafka.properties_file")?;
            settings.kafka.properties.extend(from_file);
        }
        if let Some(path) = &settings.registry.basic_auth_password_file {
            if settings.registry.basic_auth_password.is_some() {
                bail!(
                    "registry.basic_auth_password and registry.basic_auth_password_file are both set; keep one"
                );
            }
            let password = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "registry.basic_auth_password_file: cannot read {}",
                    path.display()
                )
            })?;
            settings.registry.basic_auth_password = Some(password.trim().to_owned());
        }
        add_properties(
            &mut settings.kafka.properties,
            &cli.kafka_properties,
            "--kafka-property",
        )?;
        add_properties(
            &mut settings.kafka.consumer_properties,
            &cli.consumer_properties,
            "--consumer-property",
        )?;
        add_properties(
            &mut settings.kafka.producer_properties,
            &cli.producer_properties,
            "--producer-property",
        )?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<()> {
        if self.processor_id.trim().is_empty() {
            bail!("processor_id must not be empty");
        }
        cli_support::validate_bootstrap(&self.kafka.bootstrap_servers)?;
        if !(self.registry.url.starts_with("http://") || self.registry.url.starts_with("https://"))
        {
            bail!(
                "registry url `{}` must start with http:// or https://",
                self.registry.url
            );
        }
        match (&self.routing.file, &self.routing.destination_configurations) {
            (None, None) => bail!(
                "no routing table: set routing.file (--routing-file) or routing.destination_configurations (--destination-configurations)"
            ),
            (Some(_), Some(_)) => bail!(
                "both routing.file and routing.destination_configurations are set; choose one"
            ),
            _ => {}
        }
        if self.pipeline.max_in_flight == 0 {
            bail!("pipeline.max_in_flight must be at least 1");
        }
        if self.pipeline.commit_every == 0 {
            bail!("pipeline.commit_every must be at least 1");
        }
        cli_support::log_filter(&self.log.level).context("log.level (--log-level, -log_level)")?;
        if self.http.enabled {
            self.http_listen()?;
        }
        if self.health.check_interval_ms == 0 || self.health.check_timeout_ms == 0 {
            bail!("health.check_interval_ms and health.check_timeout_ms must be at least 1");
        }
        if self.health.stall_after_ms <= self.pipeline.drain_timeout_ms {
            bail!(
                "health.stall_after_ms ({}) must be longer than pipeline.drain_timeout_ms ({}): \
                 the loop does not turn while it drains a revoked partition",
                self.health.stall_after_ms,
                self.pipeline.drain_timeout_ms
            );
        }
        if let Some(replication) = self.kafka.topic_replication
            && !(1..=i32::from(i16::MAX)).contains(&replication)
        {
            bail!(
                "kafka.topic_replication ({replication}) must be between 1 and 32767; leave it out \
                 to take the broker's default replication factor"
            );
        }
        self.check_rebalance_wait()?;
        self.check_record_size()?;
        Ok(())
    }

    /// How long the consumer's rebalance callback waits for the pipeline to drain a revoked
    /// partition and answer with the positions to commit: the drain timeout, plus
    /// [`REVOKE_ANSWER_MARGIN`] for the answer to arrive after the drain gave up.
    pub fn revoke_timeout(&self) -> Duration {
        Duration::from_millis(self.pipeline.drain_timeout_ms).saturating_add(REVOKE_ANSWER_MARGIN)
    }

    /// The consumer does not poll while its rebalance callback waits: a wait as long as
    /// `max.poll.interval.ms` gets it evicted from the group in the middle of a rebalance.
    fn check_rebalance_wait(&self) -> Result<()> {
        let (max_poll_interval_ms, origin) = self.kafka.effective_number(
            Role::Consumer,
            "max.poll.interval.ms",
            kafka_adapters::LIBRDKAFKA_MAX_POLL_INTERVAL_MS,
        )?;
        let revoke_ms = u64::try_from(self.revoke_timeout().as_millis()).unwrap_or(u64::MAX);
        if revoke_ms >= max_poll_interval_ms {
            bail!(
                "the rebalance wait, pipeline.drain_timeout_ms ({}) + {} ms = {revoke_ms} ms, must \
                 be below the consumer's max.poll.interval.ms ({max_poll_interval_ms}, {origin}): \
                 the consumer does not poll while a revoked partition drains, and would be evicted \
                 from its group; lower pipeline.drain_timeout_ms or raise max.poll.interval.ms",
                self.pipeline.drain_timeout_ms,
                REVOKE_ANSWER_MARGIN.as_millis()
            );
        }
        Ok(())
    }

    /// Every output record carries up to `max_record_bytes` of the input's value plus the key,
    /// dead-letter headers and framing; the producer refuses a larger record outright and the
    /// pipeline would retry it forever (its partition stuck).
    fn check_record_size(&self) -> Result<()> {
        let (message_max_bytes, origin) = self.kafka.effective_number(
            Role::Producer,
            "message.max.bytes",
            kafka_adapters::LIBRDKAFKA_MESSAGE_MAX_BYTES,
        )?;
        let headroom = pipeline::RECORD_HEADROOM_BYTES;
        if self.pipeline.max_record_bytes.saturating_add(headroom) > message_max_bytes {
            bail!(
                "pipeline.max_record_bytes ({}) plus {headroom} bytes for the key, the dead-letter \
                 headers and record framing must fit in the producer's message.max.bytes \
                 ({message_max_bytes}, {origin}): the producer refuses larger records; lower \
                 pipeline.max_record_bytes to at most {} or raise message.max.bytes (and the \
                 topics' max.message.bytes on the broker)",
                self.pipeline.max_record_bytes,
                message_max_bytes.saturating_sub(headroom)
            );
        }
        Ok(())
    }

    /// The metrics and probes address.
    pub fn http_listen(&self) -> Result<std::net::SocketAddr> {
        self.http.listen.parse().with_context(|| {
            format!(
                "http.listen `{}` is not an address like 127.0.0.1:9464 or 0.0.0.0:9464",
                self.http.listen
            )
        })
    }
}

fn add_properties(
    properties: &mut BTreeMap<String, String>,
    flags: &[String],
    flag_name: &str,
) -> Result<()> {
    for property in flags {
        let (key, value) = cli_support::parse_property(flag_name, property)?;
        properties.insert(key, value);
    }
    Ok(())
}

/// Extra time the rebalance callback gives the pipeline's answer to a revoke, beyond the drain.
const REVOKE_ANSWER_MARGIN: Duration = Duration::from_secs(5);

/// A Kafka client of the processor, for the properties only it sees.
#[derive(Debug, Clone, Copy)]
enum Role {
    Consumer,
    Producer,
}

impl KafkaSettings {
    /// The numeric librdkafka property `key` as the `role`'s client gets it (its own properties
    /// win over the shared ones), or librdkafka's `default`; with where it comes from.
    fn effective_number<T>(&self, role: Role, key: &str, default: T) -> Result<(T, &'static str)>
    where
        T: std::str::FromStr,
    {
        let (role_properties, role_origin) = match role {
            Role::Consumer => (
                &self.consumer_properties,
                "set in kafka.consumer_properties or --consumer-property",
            ),
            Role::Producer => (
                &self.producer_properties,
                "set in kafka.producer_properties or --producer-property",
            ),
        };
        let shared_origin = "set in kafka.properties or --kafka-property";
        let found = role_properties
            .get(key)
            .map(|value| (value, role_origin))
            .or_else(|| self.properties.get(key).map(|value| (value, shared_origin)));
        match found {
            None => Ok((default, "librdkafka's default")),
            Some((value, origin)) => match value.trim().parse() {
                Ok(number) => Ok((number, origin)),
                Err(_) => bail!(
                    "librdkafka property {key} = `{value}` ({origin}) is not a non-negative whole number"
                ),
            },
        }
    }

    /// Client settings for one role: the shared properties, then that role's own.
    pub fn client(
        &self,
        role_properties: &BTreeMap<String, String>,
    ) -> kafka_adapters::KafkaConfig {
        let mut properties = self.properties.clone();
        properties.extend(role_properties.clone());
        kafka_adapters::KafkaConfig {
            bootstrap_servers: self.bootstrap_servers.clone(),
            properties,
        }
    }
}

/// Rewrites the prototype's single-dash flags (`-processor_id X`) to ours (`--processor-id X`), so
/// the prototype's command lines keep working.
pub fn translate_prototype_args(args: Vec<String>) -> Vec<String> {
    cli_support::translate_prototype_flags(args, &PROTOTYPE_FLAGS)
}

/// Whether the command line uses a flag of the prototype's (`-processor_id`, …): the processor
/// then stands in for the prototype, and creates the dead-letter topic the prototype never had.
pub fn uses_prototype_flags(args: &[String]) -> bool {
    args.iter()
        .skip(1)
        .any(|arg| PROTOTYPE_FLAGS.iter().any(|(old, _)| old == arg))
}

/// The prototype's single-dash flags and ours.
const PROTOTYPE_FLAGS: [(&str, &str); 8] = [
    ("-processor_id", "--processor-id"),
    ("-bootstrap_server", "--bootstrap-servers"),
    ("-schema_registry_url", "--schema-registry-url"),
    ("-source_topic", "--input-topic"),
    ("-group_id", "--group-id"),
    ("-batch_size_to_commit_offsets", "--commit-every"),
    (
        "-destination_configurations",
        "--destination-configurations",
    ),
    ("-log_level", "--log-level"),
];

/// What the settings mean for each part the binary wires together.
impl Settings {
    /// The routing table, and the file's text when it comes from a file (the reloader compares it).
    pub fn load_router(&self) -> Result<(Router, Option<String>)> {
        match (&self.routing.file, &self.routing.destination_configurations) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read routing file {}", path.display()))?;
                let router = Router::from_toml_str(&text)
                    .with_context(|| format!("invalid routing file {}", path.display()))?;
                Ok((router, Some(text)))
            }
            (None, Some(json)) => Ok((
                Router::from_prototype_json(json)
                    .context("invalid --destination-configurations JSON")?,
                None,
            )),
            (None, None) => bail!("no routing table configured"),
        }
    }

    /// The health limits of readiness and liveness.
    pub fn limits(&self) -> Limits {
        let health = &self.health;
        Limits {
            stall_after_ms: health.stall_after_ms as i64,
            // Two missed checks, each allowed its full timeout.
            check_stale_after_ms: (2 * health.check_interval_ms + health.check_timeout_ms) as i64,
        }
    }

    /// The registry client's configuration (URL, timeout, retries, basic auth).
    pub fn registry_config(&self) -> Result<RegistryClientConfig> {
        let registry = &self.registry;
        let basic_auth = match (&registry.basic_auth_user, &registry.basic_auth_password) {
            (Some(user), Some(password)) => Some((user.clone(), password.clone())),
            (None, None) => None,
            _ => bail!("registry.basic_auth_user and registry.basic_auth_password go together"),
        };
        let mut config = RegistryClientConfig::new(registry.url.clone());
        config.timeout = Duration::from_millis(registry.timeout_ms);
        config.max_retries = registry.max_retries;
        config.basic_auth = basic_auth;
        config.ca_cert_pem = registry.ca_file.clone().map(CaCert::Path);
        Ok(config)
    }

    /// The tenant key file's text, when tenant authentication is on.
    pub fn read_key_file(&self) -> Result<Option<String>> {
        match (&self.authentication.mode, &self.authentication.key_file) {
            (AuthenticationModeSetting::None, _) => Ok(None),
            (_, None) => bail!(
                "authentication.mode = \"{}\" needs authentication.key_file",
                self.authentication.mode_name()
            ),
            (_, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the key file {}", path.display()))
                .map(Some),
        }
    }

    /// The tenant authentication of `key_file_text` (the key file's content, see
    /// [`read_key_file`](Self::read_key_file)); `None` when the mode is `none`.
    pub fn tenant_authentication(
        &self,
        key_file_text: Option<&str>,
    ) -> Result<Option<Arc<TenantAuthentication>>> {
        let settings = &self.authentication;
        let mode = match settings.mode {
            AuthenticationModeSetting::None => return Ok(None),
            AuthenticationModeSetting::Observe => AuthenticationMode::Observe,
            AuthenticationModeSetting::Hmac => AuthenticationMode::Enforce,
        };
        let Some(text) = key_file_text else {
            bail!(
                "authentication.mode = \"{}\" needs authentication.key_file",
                settings.mode_name()
            );
        };
        let ring = KeyRing::from_toml_str(text).context("invalid tenant key file")?;
        let freshness = Freshness {
            max_age_ms: (settings.max_age_ms > 0).then_some(settings.max_age_ms),
            max_ahead_ms: settings.max_ahead_ms,
        };
        Ok(Some(Arc::new(TenantAuthentication {
            mode,
            verifier: Arc::new(Verifier::new(ring, freshness)),
            clock: match settings.clock {
                SigningClockSetting::WallClock => SigningClock::WallClock,
                SigningClockSetting::LogAppendTime => SigningClock::RecordTimestamp,
            },
        })))
    }

    /// The pipeline's configuration.
    pub fn pipeline_config(&self) -> PipelineConfig {
        let pipeline = &self.pipeline;
        let mut config = PipelineConfig::new(
            self.processor_id.clone(),
            self.kafka.dead_letter_topic.as_str(),
        );
        config.max_in_flight = pipeline.max_in_flight;
        config.max_record_bytes = pipeline.max_record_bytes;
        config.commit_policy = CommitPolicy {
            max_completions: pipeline.commit_every,
            max_interval: Duration::from_millis(pipeline.commit_interval_ms),
        };
        config.retry = RetryPolicy {
            initial_backoff: Duration::from_millis(pipeline.retry_initial_backoff_ms),
            max_backoff: Duration::from_millis(pipeline.retry_max_backoff_ms),
            budget: pipeline.retry_budget,
        };
        config.drain_timeout = Duration::from_millis(pipeline.drain_timeout_ms);
        config.not_found_retry = Duration::from_millis(self.registry.not_found_retry_ms);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let args = std::iter::once("event-processor".to_owned())
            .chain(args.iter().map(|arg| (*arg).to_owned()))
            .collect();
        Cli::parse_from(translate_prototype_args(args))
    }

    #[test]
    fn prototype_command_line_is_accepted() {
        let cli = cli(&[
            "-log_level",
            "DEBUG",
            "-processor_id",
            "event-processor-1",
            "-bootstrap_server",
            "localhost:9092",
            "-schema_registry_url",
            "http://localhost:8081",
            "-source_topic",
            "producer.to.processor",
            "-batch_size_to_commit_offsets",
            "5",
            "-destination_configurations",
            r#"{"FINANCE": {"output_topic": "processor.to.finance", "output_subject": "processor.to.consumer-value"}}"#,
            "-group_id",
            "event_processor",
        ]);
        let settings = Settings::load(&cli).expect("valid settings");
        assert_eq!(settings.processor_id, "event-processor-1");
        assert_eq!(settings.kafka.bootstrap_servers, "localhost:9092");
        assert_eq!(settings.pipeline.commit_every, 5);
        assert_eq!(settings.log.level, "DEBUG");
        assert!(settings.routing.destination_configurations.is_some());
    }

    #[test]
    fn prototype_flags_are_recognised() {
        let args =
            |list: &[&str]| -> Vec<String> { list.iter().map(|arg| (*arg).to_owned()).collect() };
        assert!(uses_prototype_flags(&args(&[
            "event-processor",
            "-bootstrap_server",
            "b:9092"
        ])));
        assert!(!uses_prototype_flags(&args(&[
            "event-processor",
            "--bootstrap-servers",
            "b:9092"
        ])));
        // The program's own name is not a flag.
        assert!(!uses_prototype_flags(&args(&["-group_id"])));
        assert_eq!(
            load_with("missing-wait", "", &[])
                .expect("valid")
                .kafka
                .missing_topics_wait_ms,
            60_000
        );
    }

    #[test]
    fn pipeline_defaults_are_the_pipeline_crates() {
        // The bench's passthrough takes its discipline from `PipelineConfig::new`: the file
        // defaults here must not drift from it.
        let cli = cli(&[
            "-destination_configurations",
            r#"{"FINANCE": {"output_topic": "processor.to.finance"}}"#,
        ]);
        let settings = Settings::load(&cli).expect("valid settings");
        let library = pipeline::PipelineConfig::new("p", "d");
        assert_eq!(settings.pipeline.max_in_flight, library.max_in_flight);
        assert_eq!(
            settings.pipeline.commit_every,
            library.commit_policy.max_completions
        );
        assert_eq!(
            u128::from(settings.pipeline.commit_interval_ms),
            library.commit_policy.max_interval.as_millis()
        );
        assert_eq!(
            u128::from(settings.pipeline.drain_timeout_ms),
            library.drain_timeout.as_millis()
        );
        assert_eq!(settings.pipeline.max_record_bytes, library.max_record_bytes);
    }

    /// `args` after `--config <a file holding toml>` and a routing table.
    fn load_with(name: &str, toml: &str, args: &[&str]) -> Result<Settings> {
        let dir = std::env::temp_dir().join(format!("ep-settings-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("processor.toml");
        std::fs::write(&file, toml).expect("write");
        let mut all = vec![
            "--config",
            file.to_str().expect("utf-8"),
            "--destination-configurations",
            "{}",
        ];
        all.extend_from_slice(args);
        Settings::load(&cli(&all))
    }

    #[test]
    fn defaults_fit_librdkafkas_defaults_with_room_to_spare() {
        let settings = load_with("fit", "", &[]).expect("the defaults are valid");
        assert_eq!(settings.revoke_timeout(), Duration::from_secs(25));
        assert_eq!(settings.pipeline.max_record_bytes, 983_616);
        assert_eq!(
            settings.pipeline.max_record_bytes + pipeline::RECORD_HEADROOM_BYTES,
            kafka_adapters::LIBRDKAFKA_MESSAGE_MAX_BYTES
        );
        assert!(settings.kafka.consumer_properties.is_empty());
    }

    #[test]
    fn revoke_wait_not_below_max_poll_interval_is_refused() {
        // The callback waits drain_timeout_ms + 5 s = 25 s: 25 s is not below it.
        let error = load_with(
            "poll-equal",
            "",
            &["--consumer-property", "max.poll.interval.ms=25000"],
        )
        .expect_err("rebalance wait as long as max.poll.interval.ms");
        let message = error.to_string();
        assert!(
            message.contains("pipeline.drain_timeout_ms (20000) + 5000 ms = 25000 ms"),
            "{message}"
        );
        assert!(
            message.contains(
                "max.poll.interval.ms (25000, set in kafka.consumer_properties or --consumer-property)"
            ),
            "{message}"
        );
        load_with(
            "poll-above",
            "",
            &["--consumer-property", "max.poll.interval.ms=25001"],
        )
        .expect("a wait just below max.poll.interval.ms is fine");
    }

    #[test]
    fn max_poll_interval_of_the_shared_properties_counts_unless_the_consumers_own_wins() {
        let toml = "[kafka.properties]\n\"max.poll.interval.ms\" = \"10000\"\n";
        let error = load_with("poll-shared", toml, &[]).expect_err("10 s is below 25 s");
        assert!(
            error.to_string().contains(
                "max.poll.interval.ms (10000, set in kafka.properties or --kafka-property)"
            ),
            "{error}"
        );
        let toml =
            format!("{toml}[kafka.consumer_properties]\n\"max.poll.interval.ms\" = \"60000\"\n");
        load_with("poll-consumer-wins", &toml, &[]).expect("the consumer's own value wins");
    }

    #[test]
    fn drain_timeout_reaching_librdkafkas_default_poll_interval_is_refused() {
        let toml = "[pipeline]\ndrain_timeout_ms = 295000\n[health]\nstall_after_ms = 600000\n";
        let error = load_with("poll-default", toml, &[]).expect_err("295 s + 5 s = 300 s");
        assert!(
            error
                .to_string()
                .contains("max.poll.interval.ms (300000, librdkafka's default)"),
            "{error}"
        );
    }

    #[test]
    fn unparseable_max_poll_interval_is_a_clear_error() {
        let error = load_with(
            "poll-garbage",
            "",
            &["--consumer-property", "max.poll.interval.ms=5m"],
        )
        .expect_err("not a number");
        assert!(
            error
                .to_string()
                .contains("max.poll.interval.ms = `5m` (set in kafka.consumer_properties"),
            "{error}"
        );
    }

    #[test]
    fn max_record_bytes_beyond_what_the_producer_can_send_is_refused() {
        // The old default: 1 MiB values, which librdkafka's 1 000 000-byte limit refuses.
        let toml = "[pipeline]\nmax_record_bytes = 1048576\n";
        let error = load_with("size-mib", toml, &[]).expect_err("over message.max.bytes");
        let message = error.to_string();
        assert!(
            message.contains("pipeline.max_record_bytes (1048576) plus 16384 bytes"),
            "{message}"
        );
        assert!(
            message.contains("message.max.bytes (1000000, librdkafka's default)"),
            "{message}"
        );
        assert!(message.contains("at most 983616"), "{message}");
        // The headroom is part of the limit: a value limit equal to message.max.bytes is refused.
        let toml = "[pipeline]\nmax_record_bytes = 1000000\n";
        load_with("size-equal", toml, &[]).expect_err("no room for key and headers");
    }

    #[test]
    fn raising_the_producers_message_max_bytes_admits_larger_records() {
        let toml = "[pipeline]\nmax_record_bytes = 1048576\n";
        load_with(
            "size-raised",
            toml,
            &["--producer-property", "message.max.bytes=1064960"],
        )
        .expect("1 MiB + 16 KiB fits");
        let error = load_with(
            "size-shared",
            toml,
            &["--kafka-property", "message.max.bytes=1064959"],
        )
        .expect_err("one byte short");
        assert!(
            error.to_string().contains(
                "message.max.bytes (1064959, set in kafka.properties or --kafka-property)"
            ),
            "{error}"
        );
    }

    #[test]
    fn unparseable_message_max_bytes_is_a_clear_error() {
        let toml = "[kafka.producer_properties]\n\"message.max.bytes\" = \"1MB\"\n";
        let error = load_with("size-garbage", toml, &[]).expect_err("not a number");
        assert!(
            error.to_string().contains(
                "message.max.bytes = `1MB` (set in kafka.producer_properties or --producer-property) \
                 is not a non-negative whole number"
            ),
            "{error}"
        );
    }

    #[test]
    fn created_topics_take_the_brokers_replication_unless_configured() {
        let settings = load_with("replication-default", "", &[]).expect("valid");
        assert_eq!(settings.kafka.topic_replication, None);
        let settings =
            load_with("replication-set", "[kafka]\ntopic_replication = 3\n", &[]).expect("valid");
        assert_eq!(settings.kafka.topic_replication, Some(3));
        let error = load_with("replication-zero", "[kafka]\ntopic_replication = 0\n", &[])
            .expect_err("zero replicas");
        assert!(
            error
                .to_string()
                .contains("kafka.topic_replication (0) must be between 1 and 32767"),
            "{error}"
        );
    }

    #[test]
    fn missing_routing_table_is_a_clear_error() {
        let error = Settings::load(&cli(&[])).expect_err("no routing");
        assert!(error.to_string().contains("no routing table"), "{error}");
    }

    #[test]
    fn bad_broker_address_is_a_clear_error() {
        let error = Settings::load(&cli(&[
            "--bootstrap-servers",
            "localhost",
            "--destination-configurations",
            "{}",
        ]))
        .expect_err("bad address");
        assert!(
            error.to_string().contains("bad broker address `localhost`"),
            "{error}"
        );
    }

    #[test]
    fn unknown_config_key_is_rejected() {
        let dir = std::env::temp_dir().join(format!("ep-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("processor.toml");
        std::fs::write(&file, "processor_idd = \"typo\"\n").expect("write");
        let error = Settings::load(&cli(&["--config", file.to_str().expect("utf-8")]))
            .expect_err("typo rejected");
        assert!(format!("{error:#}").contains("processor_idd"), "{error:#}");
    }

    #[test]
    fn kafka_property_flags_reach_the_clients() {
        let settings = Settings::load(&cli(&[
            "--destination-configurations",
            "{}",
            "--kafka-property",
            "compression.type=zstd",
        ]))
        .expect("valid");
        assert_eq!(
            settings
                .kafka
                .properties
                .get("compression.type")
                .map(String::as_str),
            Some("zstd")
        );
    }

    #[test]
    fn metrics_endpoint_is_on_by_default_and_its_address_can_be_changed() {
        let settings =
            Settings::load(&cli(&["--destination-configurations", "{}"])).expect("valid");
        assert!(settings.http.enabled);
        assert_eq!(
            settings.http_listen().expect("address").to_string(),
            "127.0.0.1:9464"
        );
        assert_eq!(settings.routing.reload_poll_ms, 1000);
        let settings = Settings::load(&cli(&[
            "--destination-configurations",
            "{}",
            "--http-listen",
            "0.0.0.0:9100",
            "--routing-reload-poll-ms",
            "0",
        ]))
        .expect("valid");
        assert_eq!(
            settings.http_listen().expect("address").to_string(),
            "0.0.0.0:9100"
        );
        assert_eq!(settings.routing.reload_poll_ms, 0);
    }

    #[test]
    fn bad_metrics_address_is_a_clear_error() {
        let error = Settings::load(&cli(&[
            "--destination-configurations",
            "{}",
            "--http-listen",
            "localhost",
        ]))
        .expect_err("bad address");
        assert!(
            format!("{error:#}").contains("http.listen `localhost` is not an address"),
            "{error:#}"
        );
    }

    #[test]
    fn stall_limit_must_outlast_a_revoke_drain() {
        let dir = std::env::temp_dir().join(format!("ep-settings-stall-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("processor.toml");
        std::fs::write(&file, "[health]\nstall_after_ms = 20000\n").expect("write");
        let error = Settings::load(&cli(&[
            "--config",
            file.to_str().expect("utf-8"),
            "--destination-configurations",
            "{}",
        ]))
        .expect_err("stall limit below the drain timeout");
        assert!(
            error.to_string().contains("health.stall_after_ms (20000)"),
            "{error}"
        );
    }

    /// `section.key` of every `key = value` line outside librdkafka property tables.
    fn keys_of(toml: &str) -> Vec<String> {
        let mut section = String::new();
        let mut keys = Vec::new();
        for line in toml.lines().map(str::trim) {
            if let Some(header) = line.strip_prefix('[') {
                section = header.trim_end_matches(']').to_owned();
            } else if let Some((key, _)) = line.split_once('=')
                && !line.starts_with('#')
                && !section.contains('.')
            {
                let key = key.trim();
                keys.push(match section.as_str() {
                    "" => key.to_owned(),
                    section => format!("{section}.{key}"),
                });
            }
        }
        keys
    }

    #[test]
    fn every_setting_is_in_the_deploy_file_and_the_operations_guide() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let deploy =
            std::fs::read_to_string(root.join("deploy/processor.toml")).expect("deploy file");
        let guide =
            std::fs::read_to_string(root.join("docs/OPERATIONS.md")).expect("operations guide");
        let deploy_keys = keys_of(&deploy);
        let defaults = keys_of(DEFAULTS);
        assert!(defaults.len() >= 27, "parsed the defaults: {defaults:?}");
        for key in &defaults {
            assert!(
                deploy_keys.contains(key),
                "deploy/processor.toml lacks `{key}`"
            );
        }
        let optional = [
            "kafka.topic_replication",
            "kafka.properties",
            "kafka.consumer_properties",
            "kafka.producer_properties",
            "registry.basic_auth_user",
            "registry.basic_auth_password",
            "registry.basic_auth_password_file",
            "registry.ca_file",
            "kafka.properties_file",
            "authentication.key_file",
            "routing.file",
            "routing.destination_configurations",
        ];
        for key in defaults.iter().map(String::as_str).chain(optional) {
            assert!(
                guide.contains(&format!("| `{key}` |")),
                "docs/OPERATIONS.md does not document `{key}`"
            );
        }
        let dir = std::env::temp_dir().join(format!("ep-settings-deploy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("processor.toml");
        std::fs::write(&file, &deploy).expect("write");
        let settings = Settings::load(&cli(&["--config", file.to_str().expect("utf-8")]))
            .expect("the deploy file is a valid configuration");
        assert!(settings.routing.file.is_some());
    }

    /// A scratch directory of this test process for config and secrets files.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ep-settings-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn credentials_come_from_files_and_never_show_in_debug_output() {
        let dir = scratch("secrets");
        let properties = dir.join("kafka.properties");
        std::fs::write(
            &properties,
            "security.protocol=SASL_SSL\nsasl.username=processor\nsasl.password=hunter2-kafka\n",
        )
        .expect("write");
        let password = dir.join("registry-password");
        std::fs::write(&password, "hunter2-registry\n").expect("write");
        let config = dir.join("processor.toml");
        std::fs::write(
            &config,
            format!(
                "[kafka]\nproperties_file = {properties:?}\n[registry]\nbasic_auth_user = \"router\"\n\
                 basic_auth_password_file = {password:?}\nca_file = \"/etc/ep/registry-ca.pem\"\n"
            ),
        )
        .expect("write");
        let settings = Settings::load(&cli(&[
            "--config",
            config.to_str().expect("utf-8"),
            "--destination-configurations",
            "{}",
        ]))
        .expect("valid settings");

        let client = settings.kafka.client(&settings.kafka.consumer_properties);
        assert_eq!(client.properties["sasl.password"], "hunter2-kafka");
        assert_eq!(client.properties["security.protocol"], "SASL_SSL");
        let registry = settings.registry_config().expect("valid registry config");
        assert_eq!(
            registry.basic_auth,
            Some(("router".to_owned(), "hunter2-registry".to_owned()))
        );
        assert_eq!(
            registry.ca_cert_pem,
            Some(CaCert::Path("/etc/ep/registry-ca.pem".into()))
        );
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("sasl.username\": \"processor"), "{shown}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_password_in_the_config_and_in_a_file_is_refused() {
        let dir = scratch("both-passwords");
        let password = dir.join("registry-password");
        std::fs::write(&password, "x").expect("write");
        let config = dir.join("processor.toml");
        std::fs::write(
            &config,
            format!(
                "[registry]\nbasic_auth_user = \"u\"\nbasic_auth_password = \"y\"\n\
                 basic_auth_password_file = {password:?}\n"
            ),
        )
        .expect("write");
        let error = Settings::load(&cli(&["--config", config.to_str().expect("utf-8")]))
            .expect_err("refused");
        assert!(format!("{error:#}").contains("are both set"), "{error:#}");
        std::fs::remove_dir_all(&dir).ok();
    }
}

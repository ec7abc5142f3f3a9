//! The command line: our long flags, the prototype's single-dash flags translated to them, and
//! the validated [`Settings`] they produce.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use kafka_adapters::KafkaConfig;
use tenant_auth::{KeyRing, Secret, Signer, TenantIdentity};

use crate::events::Tenant;

/// Environment variable with the hex secret of `--auth-key-id`, so the secret need not be in a
/// file nor on the command line (where `ps` shows it).
pub(crate) const AUTH_KEY_ENV: &str = "EVENT_PRODUCER_AUTH_KEY";

/// librdkafka's own default (5 minutes) would leave a run against a dead broker hanging; this
/// bound is ours, and `--kafka-property message.timeout.ms=…` still wins.
const DELIVERY_TIMEOUT_PROPERTY: &str = "message.timeout.ms";

/// Command line of the producer.
#[derive(Debug, Parser)]
#[command(
    name = "event-producer",
    version,
    about = "Sample tenant: publishes ProducerToProcessor events to the event processor's input topic",
    after_help = "The prototype's flags (-bootstrap_server, -schema_registry_url, -target_topic, \
                  -origin_service_type, -origin_service_id, -list_of_destinations A B …, \
                  -amount_of_messages N, -sleep_between_messages_in_seconds S, -log_level L) \
                  are accepted too.\n\nExit status: 0 all acknowledged, 1 some records not \
                  delivered, 2 bad flags, 3 broker or registry unusable."
)]
pub(crate) struct Cli {
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub(crate) bootstrap_servers: String,
    /// Schema registry base URL (Confluent API; the default is the local stack's Apicurio).
    #[arg(
        long,
        env = "SCHEMA_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081/apis/ccompat/v7"
    )]
    pub(crate) schema_registry_url: String,
    /// Topic to write to; the value schema is registered under `<topic>-value`.
    #[arg(long, default_value = "producer.to.processor")]
    pub(crate) topic: String,
    /// A tenant as `SERVICE_TYPE:SERVICE_ID`; repeat for several tenants sending side by side
    /// [default: FINANCE:producer-1].
    #[arg(long = "tenant", value_name = "TYPE:ID")]
    pub(crate) tenants: Vec<String>,
    /// The prototype's `-origin_service_type` (one tenant, with `--origin-service-id`).
    #[arg(long, hide = true)]
    pub(crate) origin_service_type: Option<String>,
    /// The prototype's `-origin_service_id`.
    #[arg(long, hide = true)]
    pub(crate) origin_service_id: Option<String>,
    /// Destinations, comma- or space-separated, upper-cased; a tenant's i-th event goes to
    /// destination i mod their number.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 1..,
        default_values = ["FINANCE", "MARKETING", "LOGISTICS"]
    )]
    pub(crate) destinations: Vec<String>,
    /// Events per tenant.
    #[arg(long, default_value_t = 10)]
    pub(crate) count: u64,
    /// Pause after each event, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub(crate) sleep_ms: u64,
    /// The prototype's `-sleep_between_messages_in_seconds` (fractions allowed).
    #[arg(long, hide = true)]
    pub(crate) sleep_seconds: Option<f64>,
    /// At most this many events per second, all tenants together (poison values included).
    #[arg(long)]
    pub(crate) rate: Option<f64>,
    /// Also send this many undecodable values (no Confluent magic byte), spread over the run.
    #[arg(long, default_value_t = 0)]
    pub(crate) poison: u64,
    /// Take the poison values from this file instead of the built-in text: one value per line,
    /// hex-encoded (an empty line is an empty value), used in turn. For hostile-input tests
    /// (`cargo xtask chaos garbage`).
    #[arg(long, value_name = "FILE", requires = "poison")]
    pub(crate) poison_values: Option<PathBuf>,
    /// Write one JSON line per event the broker acknowledged (id, tenant_type, tenant_id,
    /// destination, key, partition, offset), for `event-consumer --verify`.
    #[arg(long, value_name = "FILE")]
    pub(crate) manifest: Option<PathBuf>,
    /// Show a progress bar on a terminal.
    #[arg(long)]
    pub(crate) progress: bool,
    /// Extra librdkafka producer property, `key=value`; repeatable.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub(crate) kafka_properties: Vec<String>,
    /// librdkafka properties file (`key=value` lines), applied before `--kafka-property`: for
    /// credentials (`sasl.password`), which then do not show in `ps`.
    #[arg(long, env = "KAFKA_PROPERTIES_FILE", value_name = "FILE")]
    pub(crate) kafka_properties_file: Option<PathBuf>,
    /// How long a record may wait for its acknowledgement (librdkafka `message.timeout.ms`).
    #[arg(long, default_value_t = 30_000)]
    pub(crate) delivery_timeout_ms: u64,
    /// Limit for reaching the broker and the schema registry at start.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) connect_timeout_ms: u64,
    /// Most records sent but not yet acknowledged; sending waits for reports beyond it.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) max_in_flight: usize,
    /// Sign every event (`ep.auth.*` headers, crate `tenant-auth`) with the keys of this key
    /// file (the processor's format, holding this producer's keys): each tenant signs with its
    /// newest key valid at start.
    #[arg(long, value_name = "FILE", conflicts_with = "auth_key_id")]
    pub(crate) auth_key_file: Option<PathBuf>,
    /// Sign every event with this key id; the hex secret comes from `--auth-key-secret-file` or
    /// the environment variable EVENT_PRODUCER_AUTH_KEY (never from the command line).
    #[arg(long, value_name = "ID")]
    pub(crate) auth_key_id: Option<String>,
    /// File holding the hex secret of `--auth-key-id` (e.g. from `openssl rand -hex 32`).
    #[arg(long, value_name = "FILE", requires = "auth_key_id")]
    pub(crate) auth_key_secret_file: Option<PathBuf>,
    /// This percentage of events claim another tenant's identity while signed with the
    /// sender's own key, so an authenticating processor must dead-letter them
    /// (`unauthenticated`); listed in the manifest with `"expected_dead_letter"`. Needs a key.
    #[arg(long, value_name = "PERCENT", default_value_t = 0)]
    pub(crate) spoof_percent: u8,
    /// The identity spoofed events claim [default: the next `--tenant` in turn; with one
    /// tenant, its type with the id `<id>-spoofed`].
    #[arg(long, value_name = "TYPE:ID")]
    pub(crate) spoof_as: Option<String>,
    /// Log level (Python's `DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL`, any case) or filter
    /// (`info`, `debug`, `event_producer=debug,librdkafka=warn`); `RUST_LOG` wins.
    #[arg(long, default_value = "warn")]
    pub(crate) log_level: String,
}

/// What a run does, validated.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) kafka: KafkaConfig,
    pub(crate) registry_url: String,
    pub(crate) topic: String,
    pub(crate) tenants: Vec<Tenant>,
    /// Upper-cased, in the order given.
    pub(crate) destinations: Vec<String>,
    pub(crate) count_per_tenant: u64,
    pub(crate) poison: u64,
    /// Values the poison slots send in turn; empty: the built-in text.
    pub(crate) poison_values: Vec<Vec<u8>>,
    pub(crate) pause: Duration,
    pub(crate) rate: Option<f64>,
    pub(crate) manifest: Option<PathBuf>,
    pub(crate) progress: bool,
    pub(crate) delivery_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) log_level: String,
    /// Signing, when a key was given.
    pub(crate) auth: Option<Signing>,
}

/// How events are signed.
#[derive(Debug, Clone)]
pub(crate) struct Signing {
    /// One signer per tenant, in the order of [`Settings::tenants`].
    pub(crate) signers: Vec<Signer>,
    /// Percentage of events that claim another identity (0..=100).
    pub(crate) spoof_percent: u8,
    /// The identity a spoofed event of tenant i claims (same order).
    pub(crate) spoof_as: Vec<Tenant>,
}

impl Settings {
    /// `env_secret` is the value of [`AUTH_KEY_ENV`], if set.
    pub(crate) fn from_cli(cli: Cli, env_secret: Option<String>) -> Result<Self> {
        cli_support::validate_bootstrap(&cli.bootstrap_servers)?;
        let registry_url = cli_support::schema_registry_url(&cli.schema_registry_url)?;
        ensure!(!cli.topic.trim().is_empty(), "--topic must not be empty");
        let tenants = tenants(&cli)?;
        let auth = signing(&cli, &tenants, env_secret, cli_support::now_ms())?;
        let destinations = destinations(&cli.destinations)?;
        let pause = pause(cli.sleep_ms, cli.sleep_seconds)?;
        if let Some(rate) = cli.rate {
            ensure!(
                rate.is_finite() && rate > 0.0,
                "--rate {rate} must be a positive number of events per second"
            );
        }
        ensure!(cli.max_in_flight > 0, "--max-in-flight must be at least 1");
        ensure!(
            cli.delivery_timeout_ms > 0 && cli.connect_timeout_ms > 0,
            "--delivery-timeout-ms and --connect-timeout-ms must be positive"
        );
        let mut kafka = KafkaConfig::new(cli.bootstrap_servers.trim()).with(
            DELIVERY_TIMEOUT_PROPERTY,
            cli.delivery_timeout_ms.to_string(),
        );
        if let Some(path) = &cli.kafka_properties_file {
            for (key, value) in cli_support::read_properties_file(path)? {
                kafka = kafka.with(key, value);
            }
        }
        for property in &cli.kafka_properties {
            let (key, value) = parse_property(property)?;
            kafka = kafka.with(key, value);
        }
        let delivery_timeout = kafka
            .properties
            .get(DELIVERY_TIMEOUT_PROPERTY)
            .and_then(|millis| millis.parse().ok())
            .map_or(
                Duration::from_millis(cli.delivery_timeout_ms),
                Duration::from_millis,
            );
        Ok(Self {
            kafka,
            registry_url,
            topic: cli.topic.trim().to_owned(),
            tenants,
            destinations,
            count_per_tenant: cli.count,
            poison: cli.poison,
            poison_values: cli
                .poison_values
                .as_deref()
                .map(read_poison_values)
                .transpose()?
                .unwrap_or_default(),
            pause,
            rate: cli.rate,
            manifest: cli.manifest,
            progress: cli.progress,
            delivery_timeout,
            connect_timeout: Duration::from_millis(cli.connect_timeout_ms),
            max_in_flight: cli.max_in_flight,
            log_level: cli.log_level,
            auth,
        })
    }

    /// Events of the run, poison values not included.
    pub(crate) fn event_count(&self) -> u64 {
        self.count_per_tenant
            .saturating_mul(u64::try_from(self.tenants.len()).unwrap_or(u64::MAX))
    }

    /// The subject the value schema is registered under (TopicNameStrategy).
    pub(crate) fn value_subject(&self) -> String {
        format!("{}-value", self.topic)
    }
}

/// The prototype's pair of flags gives one tenant, first; `--tenant` adds more.
fn tenants(cli: &Cli) -> Result<Vec<Tenant>> {
    let mut tenants = Vec::new();
    match (&cli.origin_service_type, &cli.origin_service_id) {
        (Some(service_type), Some(service_id)) => {
            tenants.push(Tenant::new(service_type, service_id)?);
        }
        (None, None) => {}
        _ => bail!(
            "-origin_service_type and -origin_service_id go together (or use --tenant TYPE:ID)"
        ),
    }
    for raw in &cli.tenants {
        tenants.push(Tenant::parse(raw)?);
    }
    if tenants.is_empty() {
        tenants.push(Tenant::new("FINANCE", "producer-1")?);
    }
    Ok(tenants)
}

/// The signers of the tenants (from a key file, or one key for all), and what spoofed events
/// claim. `now_ms` picks the keys valid at start.
fn signing(
    cli: &Cli,
    tenants: &[Tenant],
    env_secret: Option<String>,
    now_ms: i64,
) -> Result<Option<Signing>> {
    ensure!(
        cli.spoof_percent <= 100,
        "--spoof-percent {} must be between 0 and 100",
        cli.spoof_percent
    );
    let identities = tenants
        .iter()
        .map(|tenant| TenantIdentity::new(&tenant.service_type, &tenant.service_id))
        .collect::<Result<Vec<_>, _>>()?;
    let signers = match (&cli.auth_key_file, &cli.auth_key_id) {
        (Some(path), _) => signers_from_key_file(path, identities, now_ms)?,
        (None, Some(key_id)) => {
            let secret = match (&cli.auth_key_secret_file, env_secret) {
                (Some(path), _) => read_secret_file(path)?,
                (None, Some(text)) => Secret::from_hex(&text)
                    .with_context(|| format!("environment variable {AUTH_KEY_ENV}"))?,
                (None, None) => bail!(
                    "--auth-key-id needs its secret: --auth-key-secret-file FILE or the \
                     environment variable {AUTH_KEY_ENV}"
                ),
            };
            identities
                .into_iter()
                .map(|identity| Signer::new(key_id.trim(), secret.clone(), identity))
                .collect::<Result<Vec<_>, _>>()
                .context("--auth-key-id")?
        }
        (None, None) => {
            ensure!(
                cli.spoof_percent == 0 && cli.spoof_as.is_none(),
                "--spoof-percent and --spoof-as need a signing key (--auth-key-file, or \
                 --auth-key-id with its secret)"
            );
            return Ok(None);
        }
    };
    let spoof_as = match &cli.spoof_as {
        Some(raw) => {
            let claimed = Tenant::parse(raw).context("--spoof-as")?;
            if let Some(own) = tenants.iter().find(|tenant| **tenant == claimed) {
                bail!(
                    "--spoof-as {}:{} is a tenant of this run; spoofed events must claim another identity",
                    own.service_type,
                    own.service_id
                );
            }
            vec![claimed; tenants.len()]
        }
        None => default_spoof_targets(tenants)?,
    };
    Ok(Some(Signing {
        signers,
        spoof_percent: cli.spoof_percent,
        spoof_as,
    }))
}

fn signers_from_key_file(
    path: &Path,
    identities: Vec<TenantIdentity>,
    now_ms: i64,
) -> Result<Vec<Signer>> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {shown}"))?;
    let ring =
        KeyRing::from_toml_str(&text).with_context(|| format!("invalid key file {shown}"))?;
    identities
        .into_iter()
        .map(|identity| {
            let Some(key) = ring.signing_key_for(&identity, now_ms) else {
                bail!("the key file {shown} has no key for tenant {identity} that is valid now");
            };
            Ok(key.signer(identity)?)
        })
        .collect()
}

fn read_secret_file(path: &Path) -> Result<Secret> {
    let shown = path.display();
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the secret file {shown}"))?,
    );
    Secret::from_hex(&text).with_context(|| format!("secret file {shown}"))
}

/// Each tenant's spoofed events claim the next tenant; a lone tenant claims its own type with
/// the id `<id>-spoofed`.
fn default_spoof_targets(tenants: &[Tenant]) -> Result<Vec<Tenant>> {
    if let [only] = tenants {
        return Ok(vec![Tenant::new(
            &only.service_type,
            &format!("{}-spoofed", only.service_id),
        )?]);
    }
    let next = tenants.iter().cycle().skip(1);
    tenants
        .iter()
        .zip(next)
        .map(|(own, next)| {
            // Two `--tenant` flags may repeat one tenant; never "spoof" oneself.
            if own == next {
                Tenant::new(&own.service_type, &format!("{}-spoofed", own.service_id))
            } else {
                Ok(next.clone())
            }
        })
        .collect()
}

/// Upper-cased like the prototype's producer did; the processor compares names
/// case-insensitively, but keys and manifests are easier to compare in one spelling.
fn destinations(raw: &[String]) -> Result<Vec<String>> {
    let destinations: Vec<String> = raw
        .iter()
        .map(|name| name.trim())
        .filter(|name| !name.is_empty())
        .map(str::to_uppercase)
        .collect();
    ensure!(
        !destinations.is_empty(),
        "--destinations needs at least one destination, e.g. --destinations FINANCE,MARKETING"
    );
    Ok(destinations)
}

/// One hex-encoded value per line.
fn read_poison_values(path: &std::path::Path) -> Result<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --poison-values {}", path.display()))?;
    let values = text
        .lines()
        .enumerate()
        .map(|(index, line)| {
            decode_hex(line.trim())
                .with_context(|| format!("line {} of {} is not hex", index + 1, path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    ensure!(
        !values.is_empty(),
        "--poison-values {} holds no values",
        path.display()
    );
    Ok(values)
}

fn decode_hex(hex: &str) -> Result<Vec<u8>> {
    ensure!(hex.len().is_multiple_of(2), "odd number of hex digits");
    (0..hex.len())
        .step_by(2)
        .map(|at| {
            hex.get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .context("not a hex digit")
        })
        .collect()
}

fn pause(sleep_ms: u64, sleep_seconds: Option<f64>) -> Result<Duration> {
    let Some(seconds) = sleep_seconds else {
        return Ok(Duration::from_millis(sleep_ms));
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        anyhow::anyhow!("-sleep_between_messages_in_seconds {seconds} must be zero or positive")
    })
}

fn parse_property(property: &str) -> Result<(String, String)> {
    let (key, value) = cli_support::parse_property("--kafka-property", property)?;
    ensure!(
        !key.is_empty(),
        "--kafka-property `{property}` has an empty key"
    );
    Ok((key, value))
}

/// Rewrites the prototype's single-dash flags (`-target_topic X`) to ours (`--topic X`), so the
/// prototype's command lines keep working.
pub(crate) fn translate_prototype_args(args: Vec<String>) -> Vec<String> {
    const PROTOTYPE_FLAGS: [(&str, &str); 9] = [
        ("-bootstrap_server", "--bootstrap-servers"),
        ("-schema_registry_url", "--schema-registry-url"),
        ("-target_topic", "--topic"),
        ("-origin_service_type", "--origin-service-type"),
        ("-origin_service_id", "--origin-service-id"),
        ("-list_of_destinations", "--destinations"),
        ("-amount_of_messages", "--count"),
        ("-sleep_between_messages_in_seconds", "--sleep-seconds"),
        ("-log_level", "--log-level"),
    ];
    cli_support::translate_prototype_flags(args, &PROTOTYPE_FLAGS)
}

/// Parses the process arguments; clap exits with status 2 on a usage error.
pub(crate) fn parse_args() -> Result<Settings> {
    let cli = Cli::parse_from(translate_prototype_args(std::env::args().collect()));
    let env_secret = std::env::var(AUTH_KEY_ENV).ok();
    Settings::from_cli(cli, env_secret).context("invalid command line")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Result<Settings> {
        let args = std::iter::once("event-producer".to_owned())
            .chain(args.iter().map(|arg| (*arg).to_owned()))
            .collect();
        Settings::from_cli(Cli::try_parse_from(translate_prototype_args(args))?, None)
    }

    #[test]
    fn prototype_command_line_is_accepted() {
        let settings = settings(&[
            "-bootstrap_server",
            "localhost:9092",
            "-schema_registry_url",
            "http://localhost:8081",
            "-target_topic",
            "producer.to.processor",
            "-origin_service_type",
            "financial",
            "-origin_service_id",
            "123456",
            "-list_of_destinations",
            "FINANCE",
            "marketing",
            "-amount_of_messages",
            "8",
            "-sleep_between_messages_in_seconds",
            "1",
            "-log_level",
            "INFO",
        ])
        .expect("valid prototype flags");
        assert_eq!(settings.kafka.bootstrap_servers, "localhost:9092");
        assert_eq!(settings.registry_url, "http://localhost:8081");
        assert_eq!(settings.topic, "producer.to.processor");
        assert_eq!(
            settings.tenants,
            vec![Tenant::new("financial", "123456").expect("tenant")]
        );
        assert_eq!(settings.destinations, ["FINANCE", "MARKETING"]);
        assert_eq!(settings.count_per_tenant, 8);
        assert_eq!(settings.pause, Duration::from_secs(1));
        assert_eq!(settings.log_level, "INFO");
    }

    #[test]
    fn fractional_prototype_sleep_is_kept() {
        let settings =
            settings(&["-sleep_between_messages_in_seconds", "0.25"]).expect("valid sleep");
        assert_eq!(settings.pause, Duration::from_millis(250));
    }

    #[test]
    fn destinations_may_be_comma_separated_and_are_upper_cased() {
        let settings = settings(&["--destinations", "finance, Marketing,logistics"])
            .expect("valid destinations");
        assert_eq!(settings.destinations, ["FINANCE", "MARKETING", "LOGISTICS"]);
    }

    #[test]
    fn several_tenants_follow_the_prototype_tenant() {
        let settings = settings(&[
            "--tenant",
            "MARKETING:m-1",
            "-origin_service_type",
            "FINANCE",
            "-origin_service_id",
            "f-1",
            "--tenant",
            "LOGISTICS:l:2",
            "--count",
            "5",
        ])
        .expect("valid tenants");
        let tenants: Vec<(&str, &str)> = settings
            .tenants
            .iter()
            .map(|tenant| (tenant.service_type.as_str(), tenant.service_id.as_str()))
            .collect();
        assert_eq!(
            tenants,
            [
                ("FINANCE", "f-1"),
                ("MARKETING", "m-1"),
                ("LOGISTICS", "l:2")
            ]
        );
        assert_eq!(settings.event_count(), 15);
    }

    #[test]
    fn no_tenant_flag_means_one_default_tenant() {
        let settings = settings(&[]).expect("defaults are valid");
        assert_eq!(
            settings.tenants,
            vec![Tenant::new("FINANCE", "producer-1").expect("tenant")]
        );
        assert_eq!(settings.destinations, ["FINANCE", "MARKETING", "LOGISTICS"]);
        assert_eq!(settings.value_subject(), "producer.to.processor-value");
    }

    #[test]
    fn half_a_prototype_tenant_is_a_clear_error() {
        let error = settings(&["-origin_service_type", "FINANCE"]).expect_err("incomplete");
        assert!(error.to_string().contains("go together"), "{error}");
    }

    #[test]
    fn tenant_without_colon_is_a_clear_error() {
        let error = settings(&["--tenant", "FINANCE"]).expect_err("no colon");
        assert!(error.to_string().contains("TYPE:ID"), "{error}");
    }

    #[test]
    fn non_positive_rate_is_rejected() {
        for rate in ["--rate=0", "--rate=-3", "--rate=NaN"] {
            let error = settings(&[rate]).expect_err("bad rate");
            assert!(error.to_string().contains("--rate"), "{error}");
        }
    }

    #[test]
    fn bad_broker_address_is_a_clear_error() {
        let error = settings(&["--bootstrap-servers", "localhost"]).expect_err("no port");
        assert!(
            error.to_string().contains("bad broker address `localhost`"),
            "{error}"
        );
    }

    #[test]
    fn delivery_timeout_becomes_the_message_timeout_unless_overridden() {
        let defaulted = settings(&["--delivery-timeout-ms", "1500"]).expect("valid");
        assert_eq!(
            defaulted
                .kafka
                .properties
                .get("message.timeout.ms")
                .map(String::as_str),
            Some("1500")
        );
        assert_eq!(defaulted.delivery_timeout, Duration::from_millis(1500));
        let overridden = settings(&[
            "--delivery-timeout-ms",
            "1500",
            "--kafka-property",
            "message.timeout.ms=2500",
            "--kafka-property",
            "linger.ms = 20",
        ])
        .expect("valid");
        assert_eq!(overridden.delivery_timeout, Duration::from_millis(2500));
        assert_eq!(
            overridden
                .kafka
                .properties
                .get("linger.ms")
                .map(String::as_str),
            Some("20")
        );
    }

    const EXAMPLE_KEYS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/tenant-keys.example.toml"
    );
    /// 2026-12-01T12:00:00Z: inside the example file's FINANCE rotation overlap.
    const IN_THE_OVERLAP: i64 = 1_796_126_400_000;
    const HEX_SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn signing_of(args: &[&str], env_secret: Option<&str>, now_ms: i64) -> Result<Option<Signing>> {
        let cli =
            Cli::try_parse_from(std::iter::once("event-producer").chain(args.iter().copied()))?;
        let tenants = tenants(&cli)?;
        signing(&cli, &tenants, env_secret.map(str::to_owned), now_ms)
    }

    fn key_ids(signing: &Signing) -> Vec<&str> {
        signing.signers.iter().map(Signer::key_id).collect()
    }

    #[test]
    fn without_a_key_nothing_is_signed() {
        assert!(settings(&[]).expect("valid").auth.is_none());
        assert!(
            signing_of(&[], Some(HEX_SECRET), 0)
                .expect("valid")
                .is_none()
        );
    }

    #[test]
    fn a_key_file_gives_each_tenant_its_newest_valid_key() {
        let signing = signing_of(
            &[
                "--tenant",
                "FINANCE:f-1",
                "--tenant",
                "LOGISTICS:l-1",
                "--auth-key-file",
                EXAMPLE_KEYS,
            ],
            None,
            IN_THE_OVERLAP,
        )
        .expect("valid")
        .expect("signing");
        assert_eq!(key_ids(&signing), ["finance-2026-12", "logistics-1"]);
        assert_eq!(signing.signers[1].identity().to_string(), "LOGISTICS:l-1");
        assert_eq!(signing.spoof_percent, 0);
    }

    #[test]
    fn a_tenant_without_a_valid_key_is_a_clear_error() {
        let error = signing_of(
            &["--tenant", "MARKETING:m-2", "--auth-key-file", EXAMPLE_KEYS],
            None,
            IN_THE_OVERLAP,
        )
        .expect_err("marketing-m1 is for m-1 only");
        assert!(
            error
                .to_string()
                .contains("no key for tenant MARKETING:m-2"),
            "{error}"
        );
    }

    #[test]
    fn a_key_id_takes_its_secret_from_the_environment_or_a_file_never_a_flag() {
        let from_env = signing_of(&["--auth-key-id", "k-1"], Some(HEX_SECRET), 0)
            .expect("valid")
            .expect("signing");
        assert_eq!(key_ids(&from_env), ["k-1"]);
        let dir = std::env::temp_dir().join(format!("ep-producer-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let secret_file = dir.join("secret.hex");
        std::fs::write(&secret_file, format!("{HEX_SECRET}\n")).expect("written");
        let from_file = signing_of(
            &[
                "--auth-key-id",
                "k-2",
                "--auth-key-secret-file",
                secret_file.to_str().expect("UTF-8"),
            ],
            None,
            0,
        )
        .expect("valid")
        .expect("signing");
        assert_eq!(key_ids(&from_file), ["k-2"]);
        let error = signing_of(&["--auth-key-id", "k-1"], None, 0).expect_err("no secret");
        assert!(error.to_string().contains(AUTH_KEY_ENV), "{error}");
        assert!(signing_of(&["--auth-key-secret", HEX_SECRET], None, 0).is_err());
    }

    #[test]
    fn a_bad_secret_is_reported_without_echoing_it() {
        let secret = "not-a-secret-but-close-enough";
        let error = signing_of(&["--auth-key-id", "k-1"], Some(secret), 0).expect_err("bad hex");
        let message = format!("{error:#}");
        assert!(
            message.contains(AUTH_KEY_ENV) && !message.contains(secret),
            "{message}"
        );
    }

    #[test]
    fn spoofing_needs_a_key_and_claims_another_identity() {
        let error = signing_of(&["--spoof-percent", "10"], None, 0).expect_err("no key");
        assert!(error.to_string().contains("need a signing key"), "{error}");
        let error = signing_of(
            &["--auth-key-id", "k", "--spoof-percent", "101"],
            Some(HEX_SECRET),
            0,
        )
        .expect_err("over 100");
        assert!(error.to_string().contains("between 0 and 100"), "{error}");
        let error = signing_of(
            &[
                "--auth-key-id",
                "k",
                "--spoof-percent",
                "5",
                "--spoof-as",
                "FINANCE:producer-1",
            ],
            Some(HEX_SECRET),
            0,
        )
        .expect_err("spoofing oneself");
        assert!(
            error.to_string().contains("is a tenant of this run"),
            "{error}"
        );

        let claims = |args: &[&str]| {
            let signing = signing_of(args, Some(HEX_SECRET), 0)
                .expect("valid")
                .expect("signing");
            signing
                .spoof_as
                .iter()
                .map(|tenant| format!("{}:{}", tenant.service_type, tenant.service_id))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            claims(&["--auth-key-id", "k"]),
            ["FINANCE:producer-1-spoofed"]
        );
        assert_eq!(
            claims(&[
                "--auth-key-id",
                "k",
                "--tenant",
                "FINANCE:f-1",
                "--tenant",
                "MARKETING:m-1"
            ]),
            ["MARKETING:m-1", "FINANCE:f-1"]
        );
        assert_eq!(
            claims(&[
                "--auth-key-id",
                "k",
                "--tenant",
                "A:1",
                "--tenant",
                "B:2",
                "--spoof-as",
                "C:3"
            ]),
            ["C:3", "C:3"]
        );
    }

    #[test]
    fn a_properties_file_is_applied_before_kafka_property_flags() {
        let dir = std::env::temp_dir().join(format!("ep-producer-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("kafka.properties");
        std::fs::write(
            &file,
            "# credentials\nsecurity.protocol=SASL_SSL\nsasl.password=from-file\nlinger.ms=5\n",
        )
        .expect("written");
        let applied = settings(&[
            "--kafka-properties-file",
            file.to_str().expect("UTF-8"),
            "--kafka-property",
            "linger.ms=20",
        ])
        .expect("valid");
        let property = |key: &str| applied.kafka.properties.get(key).map(String::as_str);
        assert_eq!(property("security.protocol"), Some("SASL_SSL"));
        assert_eq!(property("sasl.password"), Some("from-file"));
        assert_eq!(property("linger.ms"), Some("20"));
        assert!(!format!("{:?}", applied.kafka).contains("from-file"));
        let error = settings(&["--kafka-properties-file", "/nonexistent/kafka.properties"])
            .expect_err("missing file");
        assert!(
            format!("{error:#}").contains("/nonexistent/kafka.properties"),
            "{error:#}"
        );
    }

    #[test]
    fn poison_values_file_is_read_as_hex_lines_and_bad_hex_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("poison-values-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let good = dir.join("good.hex");
        std::fs::write(&good, "00ff10\n\nCAFE\n").expect("write");
        let good_path = good.to_string_lossy().into_owned();
        let parsed =
            settings(&["--poison", "3", "--poison-values", &good_path]).expect("valid file");
        assert_eq!(
            parsed.poison_values,
            vec![vec![0x00, 0xff, 0x10], vec![], vec![0xca, 0xfe]]
        );
        let bad = dir.join("bad.hex");
        std::fs::write(&bad, "00\nxyz\n").expect("write");
        let bad_path = bad.to_string_lossy().into_owned();
        let error =
            settings(&["--poison", "1", "--poison-values", &bad_path]).expect_err("bad hex");
        assert!(format!("{error:#}").contains("line 2"), "{error:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn kafka_property_without_equals_sign_is_rejected() {
        let error = settings(&["--kafka-property", "acks"]).expect_err("not key=value");
        assert!(error.to_string().contains("KEY=VALUE"), "{error}");
    }
}

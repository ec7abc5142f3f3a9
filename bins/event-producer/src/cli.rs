//! The command line: our long flags, the prototype's single-dash flags translated to them, and
//! the validated [`Settings`] they produce.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use kafka_adapters::KafkaConfig;

use crate::events::Tenant;

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
    /// How long a record may wait for its acknowledgement (librdkafka `message.timeout.ms`).
    #[arg(long, default_value_t = 30_000)]
    pub(crate) delivery_timeout_ms: u64,
    /// Limit for reaching the broker and the schema registry at start.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) connect_timeout_ms: u64,
    /// Most records sent but not yet acknowledged; sending waits for reports beyond it.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) max_in_flight: usize,
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
}

impl Settings {
    pub(crate) fn from_cli(cli: Cli) -> Result<Self> {
        cli_support::validate_bootstrap(&cli.bootstrap_servers)?;
        let registry_url = cli_support::schema_registry_url(&cli.schema_registry_url)?;
        ensure!(!cli.topic.trim().is_empty(), "--topic must not be empty");
        let tenants = tenants(&cli)?;
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
    Settings::from_cli(cli).context("invalid command line")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Result<Settings> {
        let args = std::iter::once("event-producer".to_owned())
            .chain(args.iter().map(|arg| (*arg).to_owned()))
            .collect();
        Settings::from_cli(Cli::try_parse_from(translate_prototype_args(args))?)
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

//! The command line and the validated [`Settings`] it produces.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, ValueEnum};
use kafka_adapters::KafkaConfig;

/// The processor's output topics in the local stack.
pub(crate) const DEFAULT_TOPICS: [&str; 3] = [
    "processor.to.finance",
    "processor.to.marketing",
    "processor.to.logistics",
];

/// Command line of the consumer.
#[derive(Debug, Parser)]
#[command(
    name = "event-consumer",
    version,
    about = "Sample destination service: prints ProcessorToConsumer records, and verifies a \
             producer manifest end to end",
    after_help = "Without --group, topics are read from the beginning without a consumer group \
                  (nothing is committed). Per-record lines go to stdout; the summary goes to \
                  stdout with --format human and to stderr with --format json.\n\nExit status: \
                  0 ok, 1 verification failed (ids missing or misrouted), 2 bad flags, 3 broker, \
                  registry, topic or file unusable."
)]
pub(crate) struct Cli {
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub(crate) bootstrap_servers: String,
    /// Schema registry base URL (Confluent API; the default is the local stack's Apicurio;
    /// writer schemas are fetched by the id in each record).
    #[arg(
        long,
        env = "SCHEMA_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081/apis/ccompat/v7"
    )]
    pub(crate) schema_registry_url: String,
    /// Topics to read, comma-separated.
    #[arg(long, value_delimiter = ',', default_values = DEFAULT_TOPICS)]
    pub(crate) topics: Vec<String>,
    /// Read as this consumer group (joining it, committing after each batch) instead of reading
    /// every partition from the beginning without a group.
    #[arg(long)]
    pub(crate) group: Option<String>,
    /// Per-record output.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub(crate) format: Format,
    /// Stop after this many records.
    #[arg(long)]
    pub(crate) max: Option<u64>,
    /// Stop when no new record arrived for this long, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    pub(crate) idle_timeout_ms: u64,
    /// No per-record output, only the summary.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// A manifest written by `event-producer --manifest`: read until every id in it is seen
    /// (or the idle timeout), report missing, duplicate and misrouted ids.
    #[arg(long, value_name = "MANIFEST")]
    pub(crate) verify: Option<PathBuf>,
    /// Dead-letter topic, read with --verify (records counted by their `dlq.reason` header) and
    /// shown as dead letters when listed in --topics.
    #[arg(long, default_value = "producer.to.processor.dlq")]
    pub(crate) dead_letter_topic: String,
    /// Do not read the dead-letter topic with --verify.
    #[arg(long)]
    pub(crate) no_dead_letter_topic: bool,
    /// With --verify: the topic a destination's records belong on, `DEST=topic`; repeatable.
    /// Unlisted destinations belong on `processor.to.<dest in lower case>`.
    #[arg(long = "destination-topic", value_name = "DEST=TOPIC")]
    pub(crate) destination_topics: Vec<String>,
    /// With --verify: manifest ids found on the dead-letter topic are not missing (e.g. events
    /// the tenant policy refuses).
    #[arg(long)]
    pub(crate) accept_dead_lettered: bool,
    /// With --verify: read on until the idle timeout even when every id was seen, so that
    /// copies written after an id's first sighting count as duplicates too.
    #[arg(long)]
    pub(crate) until_idle: bool,
    /// Write the summary (and verification result) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) summary_json: Option<PathBuf>,
    /// Extra librdkafka consumer property, `key=value`; repeatable.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub(crate) kafka_properties: Vec<String>,
    /// librdkafka properties file (`key=value` lines), applied before `--kafka-property`: for
    /// credentials (`sasl.password`), which then do not show in `ps`.
    #[arg(long, env = "KAFKA_PROPERTIES_FILE", value_name = "FILE")]
    pub(crate) kafka_properties_file: Option<PathBuf>,
    /// `read_committed`: read only records of committed transactions, as a downstream service
    /// of a processor in exactly-once mode does (aborted copies are never seen). Default
    /// `read_uncommitted` (librdkafka's default).
    #[arg(long, value_name = "LEVEL", value_parser = ["read_uncommitted", "read_committed"])]
    pub(crate) isolation_level: Option<String>,
    /// Same as `--isolation-level read_committed`.
    #[arg(long, conflicts_with = "isolation_level")]
    pub(crate) read_committed: bool,
    /// Limit for reaching the broker at start.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) connect_timeout_ms: u64,
    /// Log level (Python's `DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL`, any case) or filter
    /// (`info`, `debug`, `event_consumer=debug`); `RUST_LOG` wins.
    #[arg(long, default_value = "warn")]
    pub(crate) log_level: String,
}

/// How records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// One line per record: topic[partition]@offset, key and fields.
    Human,
    /// One JSON object per line.
    Json,
}

/// Where each destination's records belong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DestinationTopics {
    /// Upper-cased destination to topic.
    explicit: BTreeMap<String, String>,
}

impl DestinationTopics {
    /// The topic of `destination`: the explicit mapping, else `processor.to.<dest lower case>`.
    pub(crate) fn topic_of(&self, destination: &str) -> String {
        let destination = destination.trim();
        self.explicit
            .get(&destination.to_uppercase())
            .cloned()
            .unwrap_or_else(|| format!("processor.to.{}", destination.to_lowercase()))
    }

    fn parse(mappings: &[String]) -> Result<Self> {
        let mut explicit = BTreeMap::new();
        for mapping in mappings {
            let Some((destination, topic)) = mapping.split_once('=') else {
                bail!("--destination-topic `{mapping}` is not DEST=TOPIC");
            };
            let (destination, topic) = (destination.trim(), topic.trim());
            ensure!(
                !destination.is_empty() && !topic.is_empty(),
                "--destination-topic `{mapping}` needs a destination and a topic"
            );
            explicit.insert(destination.to_uppercase(), topic.to_owned());
        }
        Ok(Self { explicit })
    }
}

/// What a run does, validated.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) kafka: KafkaConfig,
    pub(crate) registry_url: String,
    pub(crate) topics: Vec<String>,
    pub(crate) group: Option<String>,
    pub(crate) format: Format,
    pub(crate) max: Option<u64>,
    pub(crate) idle_timeout: Duration,
    pub(crate) quiet: bool,
    pub(crate) verify: Option<PathBuf>,
    pub(crate) dead_letter_topic: Option<String>,
    pub(crate) destination_topics: DestinationTopics,
    pub(crate) accept_dead_lettered: bool,
    pub(crate) until_idle: bool,
    pub(crate) summary_json: Option<PathBuf>,
    pub(crate) connect_timeout: Duration,
    pub(crate) log_level: String,
}

impl Settings {
    pub(crate) fn from_cli(cli: Cli) -> Result<Self> {
        cli_support::validate_bootstrap(&cli.bootstrap_servers)?;
        let registry_url = cli_support::schema_registry_url(&cli.schema_registry_url)?;
        let topics = dedup(cli.topics.iter().map(|topic| topic.trim().to_owned()));
        ensure!(
            !topics.is_empty(),
            "--topics needs at least one topic, e.g. --topics processor.to.finance"
        );
        if let Some(group) = &cli.group {
            ensure!(!group.trim().is_empty(), "--group must not be empty");
        }
        ensure!(cli.max != Some(0), "--max must be at least 1");
        ensure!(
            cli.idle_timeout_ms > 0 && cli.connect_timeout_ms > 0,
            "--idle-timeout-ms and --connect-timeout-ms must be positive"
        );
        if cli.verify.is_none() {
            ensure!(
                cli.destination_topics.is_empty() && !cli.accept_dead_lettered && !cli.until_idle,
                "--destination-topic, --accept-dead-lettered and --until-idle only apply with \
                 --verify MANIFEST"
            );
        }
        let dead_letter_topic = Some(cli.dead_letter_topic.trim().to_owned())
            .filter(|topic| !topic.is_empty() && !cli.no_dead_letter_topic);
        let mut kafka = KafkaConfig::new(cli.bootstrap_servers.trim());
        if let Some(path) = &cli.kafka_properties_file {
            for (key, value) in cli_support::read_properties_file(path)? {
                kafka = kafka.with(key, value);
            }
        }
        for property in &cli.kafka_properties {
            let (key, value) = cli_support::parse_property("--kafka-property", property)?;
            ensure!(
                !key.is_empty(),
                "--kafka-property `{property}` has an empty key"
            );
            kafka = kafka.with(key, value);
        }
        let isolation_level = match cli.read_committed {
            true => Some("read_committed"),
            false => cli.isolation_level.as_deref(),
        };
        if let Some(level) = isolation_level {
            kafka = kafka.with("isolation.level", level);
        }
        Ok(Self {
            kafka,
            registry_url,
            topics,
            group: cli.group.map(|group| group.trim().to_owned()),
            format: cli.format,
            max: cli.max,
            idle_timeout: Duration::from_millis(cli.idle_timeout_ms),
            quiet: cli.quiet,
            verify: cli.verify,
            dead_letter_topic,
            destination_topics: DestinationTopics::parse(&cli.destination_topics)?,
            accept_dead_lettered: cli.accept_dead_lettered,
            until_idle: cli.until_idle,
            summary_json: cli.summary_json,
            connect_timeout: Duration::from_millis(cli.connect_timeout_ms),
            log_level: cli.log_level,
        })
    }

    /// The topics a run reads: `--topics`, plus with a manifest the topics its destinations
    /// belong on and the dead-letter topic.
    pub(crate) fn topics_to_read<'a>(
        &self,
        manifest_destinations: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        let mut topics = self.topics.clone();
        if self.verify.is_some() {
            topics.extend(
                manifest_destinations
                    .into_iter()
                    .map(|destination| self.destination_topics.topic_of(destination)),
            );
            topics.extend(self.dead_letter_topic.clone());
        }
        dedup(topics)
    }
}

/// Keeps the first occurrence of each, in order; drops blanks.
fn dedup(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for item in items {
        if !item.is_empty() && !kept.contains(&item) {
            kept.push(item);
        }
    }
    kept
}

/// Parses the process arguments; clap exits with status 2 on a usage error.
pub(crate) fn parse_args() -> Result<Settings> {
    Settings::from_cli(Cli::parse()).context("invalid command line")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Result<Settings> {
        let args = std::iter::once("event-consumer").chain(args.iter().copied());
        Settings::from_cli(Cli::try_parse_from(args)?)
    }

    #[test]
    fn defaults_read_the_three_output_topics_without_a_group() {
        let settings = settings(&[]).expect("defaults are valid");
        assert_eq!(settings.topics, DEFAULT_TOPICS);
        assert_eq!(settings.group, None);
        assert_eq!(settings.format, Format::Human);
        assert_eq!(settings.idle_timeout, Duration::from_secs(5));
        assert_eq!(
            settings.dead_letter_topic.as_deref(),
            Some("producer.to.processor.dlq")
        );
    }

    #[test]
    fn unmapped_destinations_belong_on_the_lower_case_processor_topic() {
        let settings = settings(&[
            "--verify",
            "m.jsonl",
            "--destination-topic",
            "finance = ledger.in",
        ])
        .expect("valid");
        let topics = &settings.destination_topics;
        assert_eq!(topics.topic_of("FINANCE"), "ledger.in");
        assert_eq!(topics.topic_of("Finance"), "ledger.in");
        assert_eq!(topics.topic_of("MARKETING"), "processor.to.marketing");
    }

    #[test]
    fn verification_reads_destination_topics_and_the_dead_letter_topic_too() {
        let settings = settings(&[
            "--verify",
            "m.jsonl",
            "--topics",
            "processor.to.finance",
            "--destination-topic",
            "SALES=sales.in",
            "--dead-letter-topic",
            "dlq",
        ])
        .expect("valid");
        assert_eq!(
            settings.topics_to_read(["FINANCE", "SALES", "LOGISTICS"]),
            [
                "processor.to.finance",
                "sales.in",
                "processor.to.logistics",
                "dlq"
            ]
        );
    }

    #[test]
    fn without_verification_only_the_listed_topics_are_read() {
        let settings = settings(&["--topics", "a,b,a"]).expect("valid");
        assert_eq!(settings.topics_to_read(["FINANCE"]), ["a", "b"]);
    }

    #[test]
    fn dead_letter_topic_can_be_left_out() {
        let settings = settings(&["--verify", "m.jsonl", "--no-dead-letter-topic"]).expect("valid");
        assert_eq!(settings.dead_letter_topic, None);
        assert_eq!(settings.topics_to_read(Vec::<&str>::new()), DEFAULT_TOPICS);
    }

    #[test]
    fn verification_flags_without_a_manifest_are_rejected() {
        let error = settings(&["--destination-topic", "A=b"]).expect_err("needs --verify");
        assert!(error.to_string().contains("--verify"), "{error}");
    }

    #[test]
    fn malformed_destination_mapping_is_rejected() {
        let error = settings(&["--verify", "m", "--destination-topic", "FINANCE"])
            .expect_err("no equals sign");
        assert!(error.to_string().contains("DEST=TOPIC"), "{error}");
    }

    #[test]
    fn json_format_and_group_are_accepted() {
        let settings =
            settings(&["--format", "json", "--group", "billing", "--max", "3"]).expect("valid");
        assert_eq!(settings.format, Format::Json);
        assert_eq!(settings.group.as_deref(), Some("billing"));
        assert_eq!(settings.max, Some(3));
    }

    #[test]
    fn zero_max_is_rejected() {
        assert!(settings(&["--max", "0"]).is_err());
    }
}

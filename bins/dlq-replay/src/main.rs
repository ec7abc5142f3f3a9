//! `dlq-replay`: re-publishes dead-letter records to the input topic after a fix.

use anyhow::{Context, Result, bail};
use clap::Parser;
use dead_letter_replay::{FromOffsets, ReplayOptions, ReplaySummary, replay};
use kafka_adapters::KafkaConfig;
use std::process::ExitCode;
use std::time::Duration;

/// Re-publishes dead-letter records (original key and value, a `dlq.replayed-from` header) to the
/// processor's input topic and waits until the broker acknowledged all of them.
#[derive(Debug, Parser)]
#[command(name = "dlq-replay", version)]
struct Cli {
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap_servers: String,
    /// The dead-letter topic to read.
    #[arg(long, default_value = "producer.to.processor.dlq")]
    dlq_topic: String,
    /// Where to publish, normally the processor's input topic.
    #[arg(
        long = "to",
        value_name = "TOPIC",
        default_value = "producer.to.processor"
    )]
    target_topic: String,
    /// Only records with this `dlq.reason` (unauthorized, unknown-destination, undecodable,
    /// schema-mismatch, too-large, missing-value, refused); repeatable. Default: every reason.
    #[arg(long = "reason", value_name = "REASON")]
    reasons: Vec<String>,
    /// Only this dead-letter partition; repeatable. Default: every partition.
    #[arg(long = "partition", value_name = "PARTITION")]
    partitions: Vec<i32>,
    /// First dead-letter offset to consider: `OFFSET` (every partition) or `PARTITION:OFFSET`;
    /// repeatable. The previous run prints the values that continue after it.
    #[arg(long = "from-offset", value_name = "[PARTITION:]OFFSET")]
    from_offsets: Vec<String>,
    /// List what would be replayed; produce nothing.
    #[arg(long)]
    dry_run: bool,
    /// librdkafka property for the reader and the producer (security, partitioner), `key=value`;
    /// repeatable.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    kafka_properties: Vec<String>,
    /// librdkafka properties file (`key=value` lines), applied before `--kafka-property`: for
    /// credentials (`sasl.password`), which then do not show in `ps`.
    #[arg(long, env = "KAFKA_PROPERTIES_FILE", value_name = "FILE")]
    kafka_properties_file: Option<std::path::PathBuf>,
    /// Longest wait, in seconds, for reading the dead-letter topic and for the acknowledgements.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let (kafka, options) = match configure(&cli) {
        Ok(configured) => configured,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match cli_support::start_runtime(ExitCode::FAILURE) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(replay(&kafka, &options)) {
        Ok(summary) => {
            print_summary(&options, &summary);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn configure(cli: &Cli) -> Result<(KafkaConfig, ReplayOptions)> {
    if cli.dlq_topic == cli.target_topic {
        bail!(
            "--dlq-topic and --to are both `{}`: replaying a topic into itself would loop",
            cli.dlq_topic
        );
    }
    let mut kafka = KafkaConfig::new(cli.bootstrap_servers.clone());
    if let Some(path) = &cli.kafka_properties_file {
        for (key, value) in cli_support::read_properties_file(path)? {
            kafka = kafka.with(key, value);
        }
    }
    for property in &cli.kafka_properties {
        let (key, value) = cli_support::parse_property("--kafka-property", property)?;
        kafka = kafka.with(key, value);
    }
    let mut options = ReplayOptions::new(cli.dlq_topic.clone(), cli.target_topic.clone());
    options.reasons = cli.reasons.clone();
    options.partitions = cli.partitions.clone();
    options.from_offsets = FromOffsets::parse(&cli.from_offsets).context("--from-offset")?;
    options.dry_run = cli.dry_run;
    options.read_timeout = Duration::from_secs(cli.timeout_secs);
    options.delivery_timeout = Duration::from_secs(cli.timeout_secs);
    Ok((kafka, options))
}

fn print_summary(options: &ReplayOptions, summary: &ReplaySummary) {
    println!(
        "read {} dead-letter records from {}",
        summary.read, options.dead_letter_topic
    );
    let by_reason: Vec<String> = summary
        .selected_by_reason
        .iter()
        .map(|(reason, count)| format!("{reason}={count}"))
        .collect();
    println!(
        "selected {} ({})",
        summary.selected_total(),
        if by_reason.is_empty() {
            "none".to_owned()
        } else {
            by_reason.join(", ")
        }
    );
    if options.dry_run {
        for (partition, offset, reason) in &summary.selected {
            println!(
                "would replay {}/{partition}/{offset} reason={reason}",
                options.dead_letter_topic
            );
        }
        println!("dry run: nothing produced");
    } else {
        println!(
            "replayed {} records to {} (all acknowledged)",
            summary.replayed, options.target_topic
        );
    }
    if !summary.next_offsets.is_empty() {
        let next: Vec<String> = summary
            .next_offsets
            .iter()
            .map(|(partition, offset)| format!("--from-offset {partition}:{offset}"))
            .collect();
        println!(
            "to replay only records dead-lettered after these: {}",
            next.join(" ")
        );
    }
}

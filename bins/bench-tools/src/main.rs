//! `bench-tools`: the Kafka-facing parts of `cargo xtask bench`, kept out of xtask so xtask does
//! not link librdkafka. Each subcommand prints one JSON object on stdout; xtask runs them, reads
//! that, and writes the report.
//!
//! - `topics`: creates the topics of a scenario.
//! - `produce`: writes the workload (seed-sized events, 3 tenants × 3 destinations, optional
//!   poison share, optional fixed rate) and waits for every acknowledgement.
//! - `passthrough`: consume → produce the unchanged bytes, with the processor's client settings
//!   and commit discipline: the practical limit of broker + client here. Stops on SIGTERM.
//! - `drain`: the independent consumer that verifies every id and measures the run.
//! - `codec`: decode → route → map → encode on one thread, no I/O.
//! - `pipeline`: the processor's main loop on one thread with in-memory adapters, no I/O.

mod codec;
mod drain;
mod events;
mod passthrough;
mod pipeline_loop;
mod produce;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use kafka_adapters::{KafkaConfig, TopicAdmin, TopicSpec};
use std::path::PathBuf;
use std::time::Duration;

/// mimalloc instead of glibc's malloc: cheaper for the buffers the main loop allocates per
/// record and for freeing records the consumer thread allocated (no arena lock). Built with
/// `no_thp`: on transparent huge pages its arenas raised peak RSS markedly. The bench tools use it
/// too, so the passthrough compares like for like (docs/BENCHMARKS.md has the figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "bench-tools",
    about = "Kafka-facing parts of `cargo xtask bench`"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create topics (idempotent).
    Topics {
        #[arg(long)]
        bootstrap_servers: String,
        #[arg(long, default_value_t = 3)]
        partitions: i32,
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Produce the workload to a topic and wait for every acknowledgement.
    Produce {
        #[arg(long)]
        bootstrap_servers: String,
        #[arg(long)]
        schema_registry_url: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        count: u64,
        /// Share of events (percent) made undecodable, so the processor dead-letters them.
        #[arg(long, default_value_t = 0)]
        poison_percent: u64,
        /// Events per second; omitted: as fast as the producer goes.
        #[arg(long)]
        rate: Option<f64>,
        /// librdkafka producer property, KEY=VALUE; repeatable.
        #[arg(long = "producer-property", value_name = "KEY=VALUE")]
        producer_properties: Vec<String>,
        /// Sign every event as its tenant (tenant-auth headers) with the keys of this key file.
        #[arg(long, value_name = "FILE")]
        sign_key_file: Option<std::path::PathBuf>,
    },
    /// Consume → produce the unchanged bytes, committing only acknowledged offsets; stops on SIGTERM.
    Passthrough {
        #[arg(long)]
        bootstrap_servers: String,
        #[arg(long)]
        input_topic: String,
        #[arg(long)]
        group_id: String,
        /// DESTINATION=TOPIC, repeatable; the record key's `:DESTINATION` suffix picks the topic.
        #[arg(long = "output", value_name = "DESTINATION=TOPIC", required = true)]
        outputs: Vec<String>,
        #[arg(long = "consumer-property", value_name = "KEY=VALUE")]
        consumer_properties: Vec<String>,
        #[arg(long = "producer-property", value_name = "KEY=VALUE")]
        producer_properties: Vec<String>,
    },
    /// Read topics from the beginning until every event id `0..expect` arrived.
    Drain {
        #[arg(long)]
        bootstrap_servers: String,
        #[arg(long = "topic", required = true)]
        topics: Vec<String>,
        #[arg(long)]
        expect: u64,
        /// Ids below this are verified but left out of the latency figures (warm-up).
        #[arg(long, default_value_t = 0)]
        skip_first: u64,
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
        #[arg(long, default_value_t = 30)]
        idle_timeout_secs: u64,
        /// File created once the drain reads live.
        #[arg(long)]
        ready_file: Option<PathBuf>,
        /// librdkafka consumer property, KEY=VALUE; repeatable.
        #[arg(long = "consumer-property", value_name = "KEY=VALUE")]
        consumer_properties: Vec<String>,
    },
    /// Decode → route → map → encode on one thread, without I/O.
    Codec {
        /// Run this long.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Run exactly this many records instead (for instruction counts).
        #[arg(long)]
        records: Option<u64>,
    },
    /// The processor's main loop (`pipeline::run`) on one thread with in-memory adapters.
    Pipeline {
        #[arg(long, default_value_t = 500_000)]
        records: u64,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(report) => println!("{report}"),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<serde_json::Value> {
    // Both runtimes as in the processor: multi-threaded, so client work and the loop overlap.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Topics {
            bootstrap_servers,
            partitions,
            names,
        } => runtime.block_on(create_topics(&bootstrap_servers, partitions, names)),
        Command::Produce {
            bootstrap_servers,
            schema_registry_url,
            topic,
            count,
            poison_percent,
            rate,
            producer_properties,
            sign_key_file,
        } => runtime.block_on(produce::run(produce::ProduceArgs {
            kafka: kafka_config(&bootstrap_servers, &producer_properties)?,
            registry_url: schema_registry_url,
            topic,
            count,
            poison_percent,
            rate,
            sign_key_file,
        })),
        Command::Passthrough {
            bootstrap_servers,
            input_topic,
            group_id,
            outputs,
            consumer_properties,
            producer_properties,
        } => runtime.block_on(passthrough::run(passthrough::PassthroughArgs {
            consumer: kafka_config(&bootstrap_servers, &consumer_properties)?,
            producer: kafka_config(&bootstrap_servers, &producer_properties)?,
            input_topic,
            group_id,
            outputs: outputs
                .iter()
                .map(|output| key_value(output, "--output"))
                .collect::<Result<_>>()?,
        })),
        Command::Drain {
            bootstrap_servers,
            topics,
            expect,
            skip_first,
            timeout_secs,
            idle_timeout_secs,
            ready_file,
            consumer_properties,
        } => drain::run(drain::DrainArgs {
            bootstrap_servers,
            topics,
            expect,
            skip_first,
            timeout: Duration::from_secs(timeout_secs),
            idle_timeout: Duration::from_secs(idle_timeout_secs),
            ready_file,
            properties: consumer_properties
                .iter()
                .map(|property| key_value(property, "--consumer-property"))
                .collect::<Result<_>>()?,
        }),
        Command::Codec { seconds, records } => {
            let work = match records {
                Some(count) => codec::CodecWork::Records(count),
                None => codec::CodecWork::Seconds(seconds),
            };
            runtime.block_on(codec::run(work))
        }
        Command::Pipeline { records } => {
            // One thread, as the loop is one task: the figure is per core.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(pipeline_loop::run(records))
        }
    }
}

async fn create_topics(
    bootstrap_servers: &str,
    partitions: i32,
    names: Vec<String>,
) -> Result<serde_json::Value> {
    let admin = kafka_adapters::kafka_admin(&KafkaConfig::new(bootstrap_servers))
        .context("cannot create the admin client")?;
    let specs: Vec<TopicSpec> = names
        .iter()
        .map(|name| TopicSpec {
            name: name.clone(),
            partitions,
            replication: 1,
        })
        .collect();
    admin
        .create_topics(&specs)
        .await
        .context("cannot create the topics")?;
    Ok(serde_json::json!({ "created": names, "partitions": partitions }))
}

fn kafka_config(bootstrap_servers: &str, properties: &[String]) -> Result<KafkaConfig> {
    properties
        .iter()
        .try_fold(KafkaConfig::new(bootstrap_servers), |config, property| {
            let (key, value) = key_value(property, "a property flag")?;
            Ok(config.with(key, value))
        })
}

fn key_value(text: &str, flag: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => bail!("{flag} `{text}` is not KEY=VALUE"),
    }
}

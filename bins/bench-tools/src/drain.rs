//! `drain`: the independent consumer that judges a run. It reads every partition of the given
//! topics from the beginning without joining a group, until every expected event id arrived,
//! and reports throughput (first record → last new record), missing and duplicate ids, and
//! the latency from each event's send time (in its payload) to the moment it was read here.

use crate::events::{now_us, parse_tail};
use anyhow::{Context, Result, bail};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What `drain` was asked to do.
#[derive(Debug)]
pub(crate) struct DrainArgs {
    pub(crate) bootstrap_servers: String,
    pub(crate) topics: Vec<String>,
    /// Event ids `0..expect` must all arrive.
    pub(crate) expect: u64,
    /// Ids below this are verified but left out of the latency figures (warm-up).
    pub(crate) skip_first: u64,
    /// Give up this long after the start.
    pub(crate) timeout: Duration,
    /// Give up when no new id arrived for this long (after the first one).
    pub(crate) idle_timeout: Duration,
    /// Created once every partition was read to its end once: the drain is live.
    pub(crate) ready_file: Option<PathBuf>,
    pub(crate) properties: Vec<(String, String)>,
}

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_SLICE: Duration = Duration::from_millis(100);
/// Ready anyway after this long without every end-of-partition (e.g. topics not empty).
const READY_FALLBACK: Duration = Duration::from_secs(5);

pub(crate) fn run(args: DrainArgs) -> Result<serde_json::Value> {
    let consumer = consumer(&args)?;
    let partitions = assign_all(&consumer, &args.topics)?;
    let started = Instant::now();
    let expect = usize::try_from(args.expect)?;
    let mut seen = vec![false; expect];
    let mut unique = 0usize;
    let mut duplicates = 0u64;
    let mut foreign = 0u64;
    let mut per_topic: BTreeMap<String, u64> = BTreeMap::new();
    let mut latencies_us: Vec<i64> = Vec::with_capacity(expect);
    let mut first_us: Option<i64> = None;
    let mut cpu_at_first: Option<f64> = None;
    let mut last_new_us = 0i64;
    let mut last_progress = Instant::now();
    let total_partitions: usize = partitions.values().map(|count| *count as usize).sum();
    let mut eof_events = 0usize;
    let mut ready = args.ready_file.is_none();

    let outcome = loop {
        if unique == expect {
            break "complete";
        }
        if started.elapsed() > args.timeout {
            break "timeout";
        }
        if first_us.is_some() && last_progress.elapsed() > args.idle_timeout {
            break "idle-timeout";
        }
        match consumer.poll(POLL_SLICE) {
            Some(Ok(message)) => {
                let read_at = now_us();
                *per_topic.entry(message.topic().to_owned()).or_default() += 1;
                let Some((id, sent_at)) = message.payload().and_then(parse_tail) else {
                    foreign += 1;
                    continue;
                };
                let Some(slot) = usize::try_from(id).ok().and_then(|id| seen.get_mut(id)) else {
                    foreign += 1;
                    continue;
                };
                if *slot {
                    duplicates += 1;
                    continue;
                }
                *slot = true;
                unique += 1;
                if first_us.is_none() {
                    first_us = Some(read_at);
                    cpu_at_first = own_cpu_seconds();
                }
                last_new_us = read_at;
                last_progress = Instant::now();
                if id >= args.skip_first {
                    latencies_us.push(read_at - sent_at);
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) if !ready => {
                // The drain starts before anything is written, so every partition reports its
                // end once when its fetcher is live.
                eof_events += 1;
                if eof_events >= total_partitions {
                    ready = mark_ready(args.ready_file.as_ref())?;
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(error)) => eprintln!("drain: consumer error (retrying): {error}"),
            None => {
                if !ready && started.elapsed() > READY_FALLBACK {
                    ready = mark_ready(args.ready_file.as_ref())?;
                }
            }
        }
    };

    let span_us = (last_new_us - first_us.unwrap_or(last_new_us)).max(1);
    let throughput = if unique > 1 {
        (unique - 1) as f64 / (span_us as f64 / 1e6)
    } else {
        0.0
    };
    latencies_us.sort_unstable();
    Ok(json!({
        "outcome": outcome,
        "expected": args.expect,
        "unique": unique,
        "missing": expect - unique,
        "duplicates": duplicates,
        "foreign": foreign,
        "per_topic": per_topic,
        "first_to_last_seconds": span_us as f64 / 1e6,
        // Wall-clock time of the last new record, for spans that start elsewhere (the bench
        // measures exactly-once runs from the processor's assignment: its records become
        // visible a transaction at a time, so first-to-last would leave the first one out).
        "last_new_unix_us": last_new_us,
        "events_per_sec": throughput,
        "latency_ms": latency_summary(&latencies_us),
        "partitions": partitions,
        // From the first record on: the idle polling before it is no work for the events.
        "cpu_seconds": own_cpu_seconds().zip(cpu_at_first).map(|(end, start)| end - start),
    }))
}

/// This process's user + system CPU time, so the report can say who used the machine.
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports in USER_HZ, 100 on every mainstream architecture.
    Some(ticks / 100.0)
}

fn consumer(args: &DrainArgs) -> Result<BaseConsumer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap_servers)
        // Never joined and never committed to: `assign` needs a group id, nothing more.
        .set(
            "group.id",
            format!("bench-drain-{}-{}", std::process::id(), now_us()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("allow.auto.create.topics", "false");
    for (key, value) in &args.properties {
        config.set(key, value);
    }
    config.create().context("cannot create the drain consumer")
}

fn assign_all(consumer: &BaseConsumer, topics: &[String]) -> Result<BTreeMap<String, i32>> {
    let mut assignment = TopicPartitionList::new();
    let mut partitions = BTreeMap::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .with_context(|| format!("cannot read the metadata of {topic}"))?;
        let count = metadata
            .topics()
            .iter()
            .find(|found| found.name() == topic && found.error().is_none())
            .map(|found| found.partitions().len())
            .filter(|count| *count > 0);
        let Some(count) = count else {
            bail!("topic {topic} does not exist; create it before draining");
        };
        for partition in 0..i32::try_from(count)? {
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
        partitions.insert(topic.clone(), i32::try_from(count)?);
    }
    consumer
        .assign(&assignment)
        .context("cannot assign the partitions")?;
    Ok(partitions)
}

fn mark_ready(ready_file: Option<&PathBuf>) -> Result<bool> {
    if let Some(path) = ready_file {
        std::fs::write(path, b"ready\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(true)
}

/// Percentiles of sorted latencies, in milliseconds.
pub(crate) fn latency_summary(sorted_us: &[i64]) -> serde_json::Value {
    if sorted_us.is_empty() {
        return serde_json::Value::Null;
    }
    let at = |quantile: f64| {
        let index = ((sorted_us.len() as f64 * quantile).ceil() as usize).clamp(1, sorted_us.len());
        sorted_us[index - 1] as f64 / 1000.0
    };
    let mean = sorted_us.iter().map(|value| *value as f64).sum::<f64>() / sorted_us.len() as f64;
    json!({
        "samples": sorted_us.len(),
        "mean": mean / 1000.0,
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "p999": at(0.999),
        "max": at(1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<i64> = (1..=1000).map(|ms| ms * 1000).collect();
        let summary = latency_summary(&sorted);
        assert_eq!(summary["p50"], 500.0);
        assert_eq!(summary["p99"], 990.0);
        assert_eq!(summary["p999"], 999.0);
        assert_eq!(summary["max"], 1000.0);
    }

    #[test]
    fn no_samples_give_no_percentiles() {
        assert!(latency_summary(&[]).is_null());
    }
}

//! `/metrics`: a prometheus-client [`Collector`] that reads the pipeline's relaxed atomics and the
//! ops state at scrape time, so the hot path never touches the metrics library.
//!
//! Every metric is prefixed `event_processor_`; counters get `_total` from the encoder. The list
//! with the alert to set on each is in docs/OPERATIONS.md.

use crate::ops::{Ops, liveness, readiness};
use pipeline::{LATENCY_BUCKETS_MS, LatencyHistogram};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use router_core::DeadLetterCode;
use std::fmt::Error;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Prefix of every metric name.
pub const PREFIX: &str = "event_processor";

/// The registry `/metrics` encodes.
pub fn registry(ops: Arc<Ops>) -> Registry {
    let mut registry = Registry::with_prefix(PREFIX);
    registry.register_collector(Box::new(ProcessorCollector { ops }));
    registry
}

/// The registry in the Prometheus text format (version 0.0.4).
pub fn encode(registry: &Registry) -> Result<String, Error> {
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry)?;
    Ok(text)
}

#[derive(Debug)]
struct ProcessorCollector {
    ops: Arc<Ops>,
}

impl Collector for ProcessorCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), Error> {
        let ops = &self.ops;
        let stats = &ops.stats;

        info(
            &mut encoder,
            "build",
            "Version of the running binary, the git commit it was built from and id of this instance.",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("processor_id", ops.processor_id.as_str()),
                ("commit", ops.build_commit),
            ],
        )?;
        counter(
            &mut encoder,
            "events_consumed",
            "Input records read from the input topic.",
            stats.consumed.load(Relaxed),
        )?;
        counter_by(
            &mut encoder,
            "events_routed",
            "Output records acknowledged by the broker, per output topic.",
            "topic",
            stats.routed_by_topic.snapshot(),
        )?;
        counter_by(
            &mut encoder,
            "events_dead_lettered",
            "Dead-letter records acknowledged by the broker, per reason (dlq.reason header).",
            "reason",
            DeadLetterCode::ALL
                .into_iter()
                .map(|code| (code.as_str(), stats.dead_lettered_for(code))),
        )?;
        counter_by(
            &mut encoder,
            "authentication_failures",
            "Events whose tenant signature did not verify, per failure kind (authentication.mode observe: routed anyway; hmac: dead-lettered as unauthenticated).",
            "kind",
            stats.authentication_failures.snapshot(),
        )?;
        counter(
            &mut encoder,
            "produce_retries",
            "Failed produce attempts, each sent again after a backoff (records are never dropped).",
            stats.produce_retries.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "produce_permanent_failures",
            "Failed produce attempts with an error the broker will not fix by itself (missing topic, authorization, record too large).",
            stats.produce_permanent_failures.load(Relaxed),
        )?;
        gauge(
            &mut encoder,
            "stuck_records",
            "Output records past their retry budget: still retried, their partitions stop committing.",
            stats.stuck_records.load(Relaxed),
        )?;
        counter_by(
            &mut encoder,
            "offset_commits",
            "Offset commits of the consumer group, by result (a failed commit is retried with the next one).",
            "result",
            [
                ("ok", stats.commits.load(Relaxed)),
                ("failed", stats.commit_failures.load(Relaxed)),
            ],
        )?;
        counter_by(
            &mut encoder,
            "transactions",
            "Kafka transactions of the exactly-once mode, by result (an aborted one is read and routed again from the last committed positions); 0 in at-least-once mode.",
            "result",
            [
                ("committed", stats.transactions_committed.load(Relaxed)),
                ("aborted", stats.transactions_aborted.load(Relaxed)),
            ],
        )?;
        histogram(
            &mut encoder,
            "offset_commit_duration_seconds",
            "Time from asking for an offset commit to the broker's answer.",
            &stats.commit_latency,
        )?;
        gauge(
            &mut encoder,
            "in_flight_records",
            "Input records read and not yet complete (some output not acknowledged).",
            stats.in_flight.load(Relaxed),
        )?;
        gauge(
            &mut encoder,
            "assigned_partitions",
            "Input partitions this instance owns.",
            stats.assigned_partitions.load(Relaxed),
        )?;
        {
            let mut metric = encoder.encode_descriptor(
                "consumer_lag",
                "Records of the input topic the group has not committed (high watermark - committed), per partition, as of the last broker check. Every instance reports the whole group: aggregate with max by (topic, partition).",
                None,
                MetricType::Gauge,
            )?;
            for partition in ops.lag() {
                let index = partition.partition.to_string();
                let labels = [
                    ("topic", ops.input_topic.as_str()),
                    ("partition", index.as_str()),
                ];
                metric
                    .encode_family(&labels)?
                    .encode_gauge(&partition.lag())?;
            }
        }
        histogram(
            &mut encoder,
            "end_to_end_latency_seconds",
            "Event timestamp (set by the producing service) to the output's acknowledgement, for routed records.",
            &stats.end_to_end_latency,
        )?;
        counter(
            &mut encoder,
            "registry_failures",
            "Schema registry requests that failed and held the stream back (retried, never dead-lettered).",
            stats.registry_failures.load(Relaxed),
        )?;
        let version = format!("{:016x}", stats.routing_version.load(Relaxed));
        info(
            &mut encoder,
            "routing_table",
            "Version (fingerprint) of the routing table used for records decided from now on.",
            &[("version", version.as_str())],
        )?;
        counter_by(
            &mut encoder,
            "routing_reloads",
            "Routing file reloads (SIGHUP or file change), by result; a failed one keeps the table in force.",
            "result",
            [
                ("ok", ops.reloads_ok.load(Relaxed)),
                ("failed", ops.reloads_failed.load(Relaxed)),
            ],
        )?;
        let observation = ops.observe();
        gauge(
            &mut encoder,
            "pipeline_loop_silence_seconds",
            "Time since the pipeline loop last turned (it turns at least every 50 ms while it runs; 0 before it started).",
            observation.loop_silence_ms() as f64 / 1000.0,
        )?;
        gauge(
            &mut encoder,
            "alive",
            "1 when /health answers 200.",
            i64::from(liveness(&observation, ops.limits).ok),
        )?;
        gauge(
            &mut encoder,
            "ready",
            "1 when /ready answers 200.",
            i64::from(readiness(&observation, ops.limits).ok),
        )?;
        Ok(())
    }
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// A counter with one sample per value of `label`.
fn counter_by<V: AsRef<str>>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    samples: impl IntoIterator<Item = (V, u64)>,
) -> Result<(), Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, count) in samples {
        metric
            .encode_family(&[(label, value.as_ref())])?
            .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
    }
    Ok(())
}

fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: V,
) -> Result<(), Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

fn info(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    labels: &[(&str, &str)],
) -> Result<(), Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Info)?
        .encode_info(&labels)
}

/// A millisecond histogram as seconds. The count is the sum of the bucket reads, so `+Inf` and
/// `_count` agree even while observations land during the scrape.
fn histogram(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    histogram: &LatencyHistogram,
) -> Result<(), Error> {
    let mut buckets: Vec<(f64, u64)> = LATENCY_BUCKETS_MS
        .iter()
        .zip(&histogram.buckets)
        .map(|(bound_ms, count)| (*bound_ms as f64 / 1000.0, count.load(Relaxed)))
        .collect();
    buckets.push((
        f64::INFINITY,
        histogram.buckets[LATENCY_BUCKETS_MS.len()].load(Relaxed),
    ));
    let count = buckets.iter().map(|(_, count)| count).sum();
    let sum_seconds = histogram.sum_ms.load(Relaxed) as f64 / 1000.0;
    encoder
        .encode_descriptor(name, help, None, MetricType::Histogram)?
        .encode_histogram::<NoLabelSet>(sum_seconds, count, &buckets, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Limits;
    use pipeline::PipelineStats;

    #[test]
    fn exposition_has_every_metric_with_its_labels() {
        let stats = Arc::new(PipelineStats::default());
        stats.consumed.store(1_010, Relaxed);
        stats
            .routed_by_topic
            .counter("processor.to.finance")
            .store(1_000, Relaxed);
        stats.count_dead_letter(DeadLetterCode::Unauthorized);
        stats
            .authentication_failures
            .counter("identity-mismatch")
            .fetch_add(3, Relaxed);
        stats.end_to_end_latency.observe_ms(7);
        stats.end_to_end_latency.observe_ms(70_000);
        stats.routing_version.store(0xabc, Relaxed);
        stats.transactions_committed.store(5, Relaxed);
        stats.transactions_aborted.store(1, Relaxed);
        let ops = Arc::new(
            Ops::new(
                stats,
                "processor-1".to_owned(),
                "input".to_owned(),
                Limits {
                    stall_after_ms: 60_000,
                    check_stale_after_ms: 13_000,
                },
            )
            .with_build_commit("c0ffee1"),
        );
        ops.reloads_failed.store(2, Relaxed);
        let text = encode(&registry(ops)).expect("encodes");
        for line in [
            "# TYPE event_processor_events_consumed_total counter",
            "event_processor_events_consumed_total 1010",
            "event_processor_events_routed_total{topic=\"processor.to.finance\"} 1000",
            "event_processor_events_dead_lettered_total{reason=\"unauthorized\"} 1",
            "event_processor_events_dead_lettered_total{reason=\"too-large\"} 0",
            "event_processor_events_dead_lettered_total{reason=\"unauthenticated\"} 0",
            "event_processor_authentication_failures_total{kind=\"identity-mismatch\"} 3",
            "event_processor_end_to_end_latency_seconds_bucket{le=\"0.01\"} 1",
            "event_processor_end_to_end_latency_seconds_bucket{le=\"60\"} 1",
            "event_processor_end_to_end_latency_seconds_bucket{le=\"+Inf\"} 2",
            "event_processor_end_to_end_latency_seconds_count 2",
            "event_processor_end_to_end_latency_seconds_sum 70.007",
            "event_processor_routing_table_info{version=\"0000000000000abc\"} 1",
            "event_processor_routing_reloads_total{result=\"failed\"} 2",
            "event_processor_transactions_total{result=\"committed\"} 5",
            "event_processor_transactions_total{result=\"aborted\"} 1",
            "event_processor_ready 0",
            "event_processor_alive 1",
        ] {
            assert!(
                text.lines().any(|candidate| candidate == line),
                "missing `{line}` in:\n{text}"
            );
        }
        let build_info = format!(
            "event_processor_build_info{{version=\"0.0.0\",processor_id=\"processor-1\",commit=\"{}\"}} 1",
            "c0ffee1"
        );
        assert!(
            text.lines().any(|candidate| candidate == build_info),
            "missing `{build_info}` in:\n{text}"
        );
    }
}

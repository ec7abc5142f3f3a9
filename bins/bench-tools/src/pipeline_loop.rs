//! `pipeline`: the processor's main loop (`pipeline::run`, exactly as the binary runs it) on one
//! thread, with in-memory adapters that cost next to nothing: a source replaying pre-built
//! batches and a sink that acknowledges each record as it is sent. What it measures is the
//! processor's own work per record (decode, route, encode, tracking, delivery bookkeeping,
//! stats) without librdkafka or a broker, so it is also repeatable under an instruction counter.

use crate::codec::ROUTING;
use crate::events::{self, key_of, now_us};
use anyhow::{Context, Result, bail};
use avro_codec::InputEncoder;
use pipeline::{PipelineConfig, PipelineParts, PipelineStats, RoutingSnapshot, SystemClock};
use ports::{
    AdapterError, CommitPosition, Delivered, DeliveryReport, DeliveryTag, InboundRecord,
    OffsetCommitter, OutboundRecord, RecordSink, RecordSource, SendRejected, SourceEvent,
    TopicPartition,
};
use router_core::Router;
use schema_registry::MemoryRegistry;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;

const INPUT: &str = "bench.in";
const PARTITIONS: i32 = 3;
/// As the Kafka source hands them over (`batch_max` in the processor).
const BATCH: usize = 1024;

pub(crate) async fn run(records: u64) -> Result<serde_json::Value> {
    let registry = MemoryRegistry::new();
    let encoder = InputEncoder::register(&registry, &format!("{INPUT}-value")).await?;
    let router = Router::from_toml_str(ROUTING).context("bench routing table")?;
    let snapshot = RoutingSnapshot::resolve(router, &registry, true)
        .await
        .context("cannot prepare the output schema")?;
    let (_routing_updates, routing) = watch::channel(Arc::new(snapshot));
    let topic: Arc<str> = Arc::from(INPUT);
    let mut events = VecDeque::new();
    events.push_back(SourceEvent::Assigned(
        (0..PARTITIONS)
            .map(|partition| TopicPartition::new(Arc::clone(&topic), partition))
            .collect(),
    ));
    let mut batch = Vec::with_capacity(BATCH);
    for id in 0..records {
        let event = events::event(id, now_us());
        let partition = (id % PARTITIONS as u64) as i32;
        batch.push(InboundRecord {
            topic: Arc::clone(&topic),
            partition,
            offset: i64::try_from(id / PARTITIONS as u64)?,
            key: Some(key_of(&event)),
            payload: Some(encoder.encode_to_vec(&event)),
            timestamp_ms: Some(now_us() / 1000),
            headers: Vec::new(),
        });
        if batch.len() == BATCH {
            events.push_back(SourceEvent::Records(std::mem::take(&mut batch)));
        }
    }
    if !batch.is_empty() {
        events.push_back(SourceEvent::Records(batch));
    }

    let (report_sender, reports) = tokio::sync::mpsc::unbounded_channel();
    let (stop, shutdown) = watch::channel(false);
    let stats = Arc::new(PipelineStats::default());
    let parts = PipelineParts {
        source: ReplaySource { events },
        sink: AckingSink {
            reports: report_sender,
            sent: AtomicU64::new(0),
            stop_after: records,
            stop,
        },
        reports,
        committer: NoopCommitter,
        registry,
        routing,
        clock: Arc::new(SystemClock),
        stats: Arc::clone(&stats),
    };
    let started = Instant::now();
    let summary = pipeline::run(
        PipelineConfig::new("event-processor-1", "bench.dlq"),
        parts,
        shutdown,
    )
    .await
    .context("the pipeline failed")?;
    let seconds = started.elapsed().as_secs_f64();
    if stats.routed.load(Relaxed) != records || summary.abandoned_in_flight != 0 {
        bail!(
            "the pipeline routed {} of {records} records ({summary:?})",
            stats.routed.load(Relaxed)
        );
    }
    Ok(json!({
        "records": records,
        "seconds": seconds,
        "records_per_sec": records as f64 / seconds.max(1e-9),
        "ns_per_record": seconds * 1e9 / records.max(1) as f64,
        "commits": stats.commits.load(Relaxed),
    }))
}

/// Replays pre-built events, then waits forever (the run ends by shutdown).
struct ReplaySource {
    events: VecDeque<SourceEvent>,
}

impl RecordSource for ReplaySource {
    async fn next_event(&mut self) -> Result<SourceEvent, AdapterError> {
        match self.events.pop_front() {
            Some(event) => Ok(event),
            None => std::future::pending().await,
        }
    }
}

/// Acknowledges every record as it is sent, and drops it; asks the pipeline to stop once
/// `stop_after` records were sent (it then drains their reports and makes its final commit).
struct AckingSink {
    reports: UnboundedSender<DeliveryReport>,
    sent: AtomicU64,
    stop_after: u64,
    stop: watch::Sender<bool>,
}

impl RecordSink for AckingSink {
    fn send(&self, _record: OutboundRecord, tag: DeliveryTag) -> Result<(), SendRejected> {
        if self.sent.fetch_add(1, Relaxed) + 1 == self.stop_after {
            let _ = self.stop.send(true);
        }
        let _ = self.reports.send(DeliveryReport {
            tag,
            result: Ok(Delivered {
                partition: 0,
                offset: 0,
            }),
        });
        Ok(())
    }

    async fn flush(&self, _timeout: Duration) -> Result<(), AdapterError> {
        Ok(())
    }
}

struct NoopCommitter;

impl OffsetCommitter for NoopCommitter {
    async fn commit(&self, _positions: Vec<CommitPosition>) -> Result<(), AdapterError> {
        Ok(())
    }
}

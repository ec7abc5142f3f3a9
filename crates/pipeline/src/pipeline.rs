//! The router's main loop: consume → decode → route → encode → produce → track → commit.
//!
//! # Guarantee
//! At-least-once: an input offset is committed only when every output it caused (routed copies and
//! dead-letter copies alike) was acknowledged by the broker. The [`OffsetTracker`] makes that
//! decision; this loop only feeds it. Every record read is tracked before any later record of its
//! partition, so the tracker's watermark can never skip a record it did not see.
//!
//! # Limits
//! - Duplicates are possible: after a crash, a failed drain, or a revoke that timed out, records
//!   delivered but not yet committed are read and routed again.
//! - A produce error decides what happens to the output (see [`Core::on_refused`]):
//!   - transient (timeouts, leadership moves, brokers down): retried with jittered exponential
//!     backoff, forever; past the retry budget it is reported as stuck and its partition stops
//!     committing behind it rather than skipping it;
//!   - a refusal of this one record (output topic missing or not writable, record too large or
//!     invalid): the routed output is replaced by a dead-letter copy of the input (reason
//!     `refused`, with `dlq.output.topic`); the input completes once that copy is acknowledged.
//!     The other outputs of a fan-out are routed as usual;
//!   - a dead-letter copy refused as too large is replaced by a record without the value
//!     (`dlq.value.omitted`, its size and SHA-256); a dead-letter copy refused otherwise (the
//!     dead-letter topic missing or not writable) is retried as transient: it is never dropped.
//! - The loop is one task; a schema id seen for the first time is fetched inline, and a registry
//!   outage pauses reading (never dead-letters good events).
//!
//! # Exactly-once mode
//! When the committer [is transactional](OffsetCommitter::is_transactional) (the binary's
//! `delivery = "exactly-once"`), routed outputs, dead letters and input offsets are written in
//! one Kafka transaction of the one transactional producer of the instance (KIP-447):
//! - A transaction opens with the first batch read after the previous one closed, and closes
//!   when the commit policy says a commit is due (count or time), on a revoke and on shutdown.
//!   It commits only once every record read in it is complete (every output acknowledged), with
//!   the tracker's safe positions as its offsets: the [`OffsetTracker`] still alone says what
//!   may be committed.
//! - A failed delivery, a failed (not fatal) commit or a lost partition aborts the
//!   transaction; the tracker forgets every record read since the last commit
//!   ([`OffsetTracker::rewind`]) and the source is rewound to the last committed positions
//!   ([`RecordSource::rewind`]); records read before the rewind are dropped until the source
//!   confirms it.
//! - An output refused for good at delivery (e.g. its topic deleted) therefore aborts the
//!   transaction too (librdkafka fails the commit after any failed delivery), but the refusal
//!   is remembered by input record and output topic across the rewind (bounded; forgotten once
//!   a commit passes the input, or its partition moves): on the replay that output is
//!   dead-lettered as `refused` in the new transaction instead of produced again, while the
//!   input's other outputs and the other inputs route. Refusals at enqueue (record too large)
//!   are dead-lettered at once, without an abort. (A topic deleted while the producer writes
//!   to it is not refused: librdkafka stalls the transaction instead; see docs/OPERATIONS.md.)
//! - A fatal error (producer fenced by a newer instance with the same `transactional.id`) ends
//!   the run with [`PipelineError::Transaction`] without committing.
//!
//! Promise: a downstream reader with `isolation.level=read_committed` sees each input event's
//! outputs (or its dead letter) exactly once, also across crashes, aborts and rebalances. A
//! `read_uncommitted` reader may also see copies from aborted transactions.

use crate::config::{PipelineConfig, record_bytes};
use crate::dead_letter::{dead_letter_record, refused_dead_letter_record, value_omitted_record};
use crate::in_flight::{InFlightInputs, InFlightOutputs, InputSlot, OutputSlot};
use crate::refusals::Refusals;
use crate::routing::RoutingSnapshot;
use crate::stats::{PipelineStats, UnpublishedLatency};
use crate::{Clock, PipelineError};
use avro_codec::{CodecError, InputDecoder, OutputEncoder, SchemaId, SchemaRegistry};
use offset_tracker::{AckOutcome, Commit, OffsetTracker, Ticket};
use ports::{
    CommitPosition, DeliveryReport, InboundRecord, OffsetCommitter, OutboundRecord, RecordSink,
    RecordSource, SendRejected, SourceEvent, TopicPartition,
};
use router_core::{
    DeadLetterCode, DeadLetterReason, Decision, ProcessorToConsumerRef, map_borrowed,
};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

/// How often the loop checks whether a time-based commit is due.
const COMMIT_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// Wait before re-sending a record the producer's local queue refused.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);

/// Everything the pipeline talks to, injected by the caller (the binary builds the real ones,
/// tests build fakes).
#[derive(Debug)]
pub struct PipelineParts<S, K, C, R> {
    /// Where input records and partition lifecycle events come from.
    pub source: S,
    /// Where output and dead-letter records go.
    pub sink: K,
    /// Delivery reports of `sink`.
    pub reports: mpsc::UnboundedReceiver<DeliveryReport>,
    /// Commits input offsets.
    pub committer: C,
    /// Resolves writer schemas of input records.
    pub registry: R,
    /// The routing table in force; a new value replaces it for records decided afterwards.
    pub routing: watch::Receiver<Arc<RoutingSnapshot>>,
    /// Wall clock for output timestamps.
    pub clock: Arc<dyn Clock>,
    /// Figures this run updates.
    pub stats: Arc<PipelineStats>,
}

/// What a finished run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Input records still incomplete when the run ended (0 after a clean drain).
    pub abandoned_in_flight: usize,
    /// Whether the final commit succeeded.
    pub final_commit_ok: bool,
}

/// Runs the pipeline until `shutdown` becomes `true` or the source ends, then drains in-flight
/// records (bounded by `drain_timeout`), commits what completed and flushes the producer.
pub async fn run<S, K, C, R>(
    config: PipelineConfig,
    parts: PipelineParts<S, K, C, R>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunSummary, PipelineError>
where
    S: RecordSource,
    K: RecordSink,
    C: OffsetCommitter,
    R: SchemaRegistry,
{
    let PipelineParts {
        mut source,
        sink,
        mut reports,
        committer,
        registry,
        mut routing,
        clock,
        stats,
    } = parts;
    let started = Instant::now();
    let snapshot = Arc::clone(&routing.borrow_and_update());
    let exactly_once = committer.is_transactional();
    let mut core = Core {
        tracker: OffsetTracker::new(config.commit_policy, Duration::ZERO),
        outputs: InFlightOutputs::default(),
        inputs: InFlightInputs::default(),
        retries: BinaryHeap::new(),
        retry_seq: 0,
        decoder: match config.not_found_retry.is_zero() {
            true => InputDecoder::new(),
            false => InputDecoder::new().with_not_found_ttl(config.not_found_retry),
        },
        snapshot,
        routed_counters: Vec::new(),
        unpublished_routed: 0,
        unpublished_latency: UnpublishedLatency::default(),
        output_encoders: Vec::new(),
        batch_now_ms: 0,
        plan_outputs: Vec::new(),
        started,
        exactly_once,
        transaction_open: false,
        doomed: None,
        fatal: None,
        rewinding: Vec::new(),
        pending_rewind: Vec::new(),
        refusals: Refusals::default(),
        config,
        sink,
        committer,
        registry,
        clock,
        stats,
    };
    core.on_routing_installed();
    let mut commit_check = tokio::time::interval(COMMIT_CHECK_INTERVAL);
    commit_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    info!(processor_id = %core.config.processor_id, exactly_once, "Pipeline started.");
    loop {
        core.heartbeat();
        if *shutdown.borrow() {
            break;
        }
        let can_read = core.tracker.total_in_flight() < core.config.max_in_flight;
        let next_retry = core.next_retry_due();
        let step = tokio::select! {
            biased;
            _ = shutdown.changed() => Step::Shutdown,
            Some(report) = reports.recv() => Step::Report(report),
            () = retry_due(next_retry) => Step::Retry,
            _ = commit_check.tick() => Step::CommitCheck,
            event = source.next_event(), if can_read => Step::Source(event),
        };
        match step {
            Step::Shutdown => break,
            Step::Report(report) => {
                // One clock read for the whole batch: latency figures are in milliseconds.
                let now_ms = core.clock.now_ms();
                core.on_report(report, now_ms);
                while let Ok(report) = reports.try_recv() {
                    core.on_report(report, now_ms);
                }
            }
            Step::Retry => core.send_due_retries(),
            Step::CommitCheck => core.commit_if_due(&mut reports).await,
            Step::Source(Err(error)) => {
                warn!(%error, "Source failed; stopping after a drain.");
                core.shutdown(&mut reports).await?;
                return Err(PipelineError::Source(error));
            }
            Step::Source(Ok(event)) => {
                if routing.has_changed().unwrap_or(false) {
                    core.snapshot = Arc::clone(&routing.borrow_and_update());
                    core.on_routing_installed();
                    info!(
                        version = %format_args!("{:016x}", core.snapshot.router().version()),
                        "Routing table replaced."
                    );
                }
                let outcome = core
                    .on_source_event(event, &mut reports, &mut shutdown)
                    .await;
                if let Err(Interrupted) = outcome {
                    break;
                }
            }
        }
        if core.exactly_once {
            core.settle_transaction(&mut source, &mut reports).await?;
        }
    }
    let summary = core.shutdown(&mut reports).await;
    // After the final commit: leave the group now, so the other members take these partitions
    // at once rather than after the session timeout.
    if tokio::time::timeout(SOURCE_CLOSE_TIMEOUT, source.release())
        .await
        .is_err()
    {
        warn!(timeout = ?SOURCE_CLOSE_TIMEOUT, "The source did not close in time; the group notices this member left after its session timeout.");
    }
    summary
}

/// How long a stop waits for the consumer to leave its group (a LeaveGroup round trip, unless
/// the broker is unreachable).
const SOURCE_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

enum Step {
    Shutdown,
    Report(DeliveryReport),
    Retry,
    CommitCheck,
    Source(Result<SourceEvent, ports::AdapterError>),
}

/// Shutdown was requested while the loop waited on something else.
struct Interrupted;

struct PendingRetry {
    due: Instant,
    seq: u64,
    tag: usize,
    record: OutboundRecord,
}

impl PartialEq for PendingRetry {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for PendingRetry {}
impl PartialOrd for PendingRetry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for PendingRetry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// The loop's state, apart from the event sources it waits on.
struct Core<K, C, R> {
    tracker: OffsetTracker,
    outputs: InFlightOutputs,
    /// Values of inputs with routed outputs in flight, for dead-lettering a refused one.
    inputs: InFlightInputs,
    retries: BinaryHeap<Reverse<PendingRetry>>,
    retry_seq: u64,
    decoder: InputDecoder,
    snapshot: Arc<RoutingSnapshot>,
    /// Per-topic routed counters of the snapshot's output topics, looked up without a lock.
    /// Every output topic's routed counter, with what was counted and not yet published;
    /// append-only, so the index an in-flight output holds stays valid across reloads.
    routed_counters: Vec<RoutedCounter>,
    /// Acknowledged outputs counted in plain integers and published to `stats` once per loop
    /// turn (see `publish_counts`).
    unpublished_routed: u64,
    unpublished_latency: UnpublishedLatency,
    /// Topic and encoder of each of the snapshot's outputs: a short list scanned by name is
    /// several times cheaper per record than the snapshot's hash map (SipHash of the topic).
    output_encoders: Vec<(Arc<str>, OutputEncoder)>,
    /// Processing time stamped on the outputs of the batch being planned (epoch ms): read once
    /// per batch, and again after waiting on the registry, instead of once per record.
    batch_now_ms: i64,
    /// The planned outputs of one record; kept between records so planning allocates no list.
    plan_outputs: Vec<(OutboundRecord, Option<DeadLetterCode>)>,
    started: Instant,
    /// Exactly-once mode: the committer is transactional (see the module documentation).
    exactly_once: bool,
    /// A transaction is open: outputs were sent since the last transaction commit or abort.
    transaction_open: bool,
    /// Why the open transaction must be aborted (a delivery failed, a commit failed, a
    /// partition was lost); the loop aborts it and rewinds after the current step.
    doomed: Option<String>,
    /// The transactional producer cannot go on (fenced): the run ends with this error.
    fatal: Option<ports::AdapterError>,
    /// Partitions rewound after an abort whose records read before the rewind may still
    /// arrive: dropped until the source's `Rewound` for them.
    rewinding: Vec<TopicPartition>,
    /// Positions to rewind the source to, handed to it after the current step.
    pending_rewind: Vec<CommitPosition>,
    /// Exactly-once mode: routed outputs the broker refused for good in an aborted
    /// transaction, dead-lettered as `refused` when their input is read again.
    refusals: Refusals,
    config: PipelineConfig,
    sink: K,
    committer: C,
    registry: R,
    clock: Arc<dyn Clock>,
    stats: Arc<PipelineStats>,
}

/// The outputs one input record causes.
struct Plan {
    outputs: Vec<(OutboundRecord, Option<DeadLetterCode>)>,
    event_timestamp_ms: Option<i64>,
}

/// One output topic's routed counter in the shared stats, and the acknowledgements counted for
/// it since the last publish.
struct RoutedCounter {
    topic: Arc<str>,
    shared: Arc<AtomicU64>,
    unpublished: u64,
}

/// A record's writer schema is not in the decoder's cache yet.
struct NotLoaded(SchemaId);

impl<K: RecordSink, C: OffsetCommitter, R: SchemaRegistry> Core<K, C, R> {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Publishes the version of the routing table now in force and fetches the per-topic
    /// counters of its outputs (the only place that takes the counters' lock).
    fn on_routing_installed(&mut self) {
        self.stats
            .routing_version
            .store(self.snapshot.router().version(), Relaxed);
        for topic in self.snapshot.output_topics() {
            if !self
                .routed_counters
                .iter()
                .any(|known| *known.topic == *topic)
            {
                self.routed_counters.push(RoutedCounter {
                    topic: Arc::from(topic),
                    shared: self.stats.routed_by_topic.counter(topic),
                    unpublished: 0,
                });
            }
        }
        self.output_encoders = self
            .snapshot
            .output_topics()
            .filter_map(|topic| self.snapshot.output(topic))
            .map(|prepared| (Arc::clone(&prepared.topic), prepared.encoder))
            .collect();
    }

    fn routed_counter(&self, topic: &str) -> Option<usize> {
        self.routed_counters
            .iter()
            .position(|counter| *counter.topic == *topic)
    }

    fn heartbeat(&mut self) {
        self.stats
            .last_heartbeat_ms
            .store(self.clock.now_ms(), Relaxed);
        self.stats
            .in_flight
            .store(self.tracker.total_in_flight() as i64, Relaxed);
        self.publish_counts();
    }

    /// Adds the acknowledgements counted since the last call to the shared stats: one atomic
    /// addition per counter per loop turn instead of five per record.
    fn publish_counts(&mut self) {
        if self.unpublished_routed > 0 {
            self.stats
                .routed
                .fetch_add(std::mem::take(&mut self.unpublished_routed), Relaxed);
        }
        for counter in &mut self.routed_counters {
            if counter.unpublished > 0 {
                counter
                    .shared
                    .fetch_add(std::mem::take(&mut counter.unpublished), Relaxed);
            }
        }
        self.unpublished_latency
            .publish(&self.stats.end_to_end_latency);
    }

    async fn on_source_event(
        &mut self,
        event: SourceEvent,
        reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Interrupted> {
        match event {
            SourceEvent::Records(mut records) => {
                self.stats.consumed.fetch_add(records.len() as u64, Relaxed);
                if self.exactly_once && !self.begin_transaction(&mut records) {
                    return Ok(());
                }
                self.batch_now_ms = self.clock.now_ms();
                for record in records {
                    self.on_record(record, shutdown).await?;
                }
            }
            SourceEvent::Assigned(partitions) => {
                info!(partitions = %display_partitions(&partitions), "Partitions assigned.");
                for tp in partitions {
                    self.tracker.assign(tp);
                }
                self.count_assigned();
            }
            SourceEvent::Revoked { partitions, reply } if self.exactly_once => {
                self.revoke_in_transaction(&partitions, reports).await;
                // Committed in the transaction (or aborted): nothing to commit outside it.
                reply.commit(Vec::new());
                self.count_assigned();
            }
            SourceEvent::Revoked { partitions, reply } => {
                let positions = self.drain_and_revoke(&partitions, reports).await;
                info!(
                    partitions = %display_partitions(&partitions),
                    commits = positions.len(),
                    "Partitions revoked after drain."
                );
                reply.commit(positions);
                self.count_assigned();
            }
            SourceEvent::Lost(partitions) => {
                warn!(partitions = %display_partitions(&partitions), "Partitions lost; their uncommitted records will be routed again by their new owner.");
                for tp in &partitions {
                    self.tracker.lose(tp);
                }
                if self.exactly_once {
                    for tp in &partitions {
                        self.refusals.forget_partition(&tp.topic, tp.partition);
                    }
                    self.rewinding.retain(|tp| !partitions.contains(tp));
                    self.pending_rewind
                        .retain(|position| !partitions.contains(&position.partition));
                    if self.transaction_open {
                        // Their offsets can no longer be committed: the outputs must go too.
                        self.doom("input partitions were lost".to_owned());
                    }
                }
                self.count_assigned();
            }
            SourceEvent::Rewound(partitions) => {
                self.rewinding.retain(|tp| !partitions.contains(tp));
            }
        }
        Ok(())
    }

    fn count_assigned(&self) {
        self.stats
            .assigned_partitions
            .store(self.tracker.assigned().count() as i64, Relaxed);
    }

    async fn on_record(
        &mut self,
        mut record: InboundRecord,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Interrupted> {
        let mut plan = loop {
            match self.plan(&mut record) {
                Ok(plan) => break plan,
                // Rare (first sight of a schema id): boxed, so that the future of every record
                // stays small instead of embedding the registry request's.
                Err(NotLoaded(schema_id)) => {
                    match Box::pin(self.load_writer_schema(schema_id, shutdown)).await? {
                        Ok(()) => continue,
                        Err(error) => break self.decode_error_plan(&mut record, &error),
                    }
                }
            }
        };
        let tp = TopicPartition {
            topic: Arc::clone(&record.topic),
            partition: record.partition,
        };
        let ticket = match self
            .tracker
            .track(&tp, record.offset, plan.outputs.len() as u32)
        {
            Ok(ticket) => ticket,
            Err(offset_tracker::TrackerError::NotAssigned { .. }) => {
                // The consumer announces assignments before records; be robust to an adapter that does not.
                warn!(partition = %tp, "Record for a partition not announced as assigned; assigning it.");
                self.tracker.assign(tp.clone());
                self.tracker
                    .track(&tp, record.offset, plan.outputs.len() as u32)
                    .map_err(|error| {
                        warn!(%error, "Cannot track record; it will not be committed.");
                        Interrupted
                    })?
            }
            Err(error) => {
                // Tracking is what makes commits safe: never route what cannot be tracked.
                warn!(%error, partition = %tp, offset = record.offset, "Cannot track record; stopping.");
                return Err(Interrupted);
            }
        };
        // Routed outputs keep the input's value (moved, not copied) until they are acknowledged,
        // so that one the broker refuses can be dead-lettered with the original bytes.
        let input = match plan.event_timestamp_ms {
            Some(_) => Some(self.inputs.insert(InputSlot {
                topic: Arc::clone(&record.topic),
                partition: record.partition,
                offset: record.offset,
                value: record.payload.take().unwrap_or_default(),
                outputs: plan.outputs.len() as u32,
            })),
            None => None,
        };
        for (output, dead_letter_code) in plan.outputs.drain(..) {
            // Exactly-once replay after an abort: an output the broker refused for good in the
            // aborted transaction is dead-lettered instead of produced again.
            let output = match (dead_letter_code, input) {
                (None, Some(input)) if !self.refusals.is_empty() => {
                    match self.dead_letter_known_refusal(ticket, input, output) {
                        Ok(()) => continue,
                        Err(output) => output,
                    }
                }
                _ => output,
            };
            let routed_counter = match dead_letter_code {
                None => self.routed_counter(&output.topic),
                Some(_) => None,
            };
            let tag = self.outputs.insert(OutputSlot {
                ticket,
                dead_letter_code,
                routed_counter,
                failures: 0,
                event_timestamp_ms: plan.event_timestamp_ms,
                input: dead_letter_code.is_none().then_some(input).flatten(),
                value_omitted: false,
            });
            self.send(output, tag);
        }
        self.plan_outputs = plan.outputs;
        Ok(())
    }

    /// Decides what `record` turns into: routed outputs, or one dead-letter copy. A routed
    /// record's key and headers move into its output (cloned only for fan-out); a dead-lettered
    /// record's headers move into its dead-letter copy. Synchronous: a record whose
    /// writer schema is not loaded yet comes back as [`NotLoaded`] for the caller to load.
    fn plan(&mut self, record: &mut InboundRecord) -> Result<Plan, NotLoaded> {
        let Some(value) = record.payload.as_deref() else {
            return Ok(self.dead_letter_plan(record, &DeadLetterReason::MissingValue, None));
        };
        // One size rule for everything the outputs carry: key, headers and value.
        let size = record_bytes(record.key.as_deref(), &record.headers, value.len());
        if size > self.config.max_record_bytes {
            let reason = DeadLetterReason::TooLarge {
                size,
                limit: self.config.max_record_bytes,
            };
            return Ok(self.dead_letter_plan(record, &reason, None));
        }
        let decoded = match self.decoder.decode_borrowed(value) {
            Ok(decoded) => decoded,
            Err(CodecError::UnknownSchemaId { schema_id }) => return Err(NotLoaded(schema_id)),
            Err(error) => return Ok(self.decode_error_plan(record, &error)),
        };
        let event = decoded.view();
        let snapshot = Arc::clone(&self.snapshot);
        let decision = snapshot.router().decide_for(
            event.origin_service_type,
            event.origin_service_id,
            event.destination_service_type,
        );
        let targets = match decision {
            Decision::Route(targets) => targets,
            Decision::DeadLetter(reason) => {
                let schema_id = input_schema_id(record);
                return Ok(self.dead_letter_plan(record, &reason, schema_id));
            }
        };
        let mut outputs = self.take_plan_outputs();
        // Borrowed end to end: the output's strings are the input's bytes and the processor id,
        // copied once, into the encoded value.
        let output = map_borrowed(&event, &self.config.processor_id, self.batch_now_ms);
        // Key and headers are cloned for all targets but the last, which takes them (headers
        // cost nothing when the input has none).
        if let Some((last, others)) = targets.split_last() {
            for target in others {
                let key = record.key.clone();
                let headers = record.headers.clone();
                outputs.push((self.encode_for(&target.topic, &output, key, headers), None));
            }
            let key = record.key.take();
            let headers = std::mem::take(&mut record.headers);
            outputs.push((self.encode_for(&last.topic, &output, key, headers), None));
        }
        Ok(Plan {
            outputs,
            event_timestamp_ms: Some(event.event_timestamp),
        })
    }

    fn take_plan_outputs(&mut self) -> Vec<(OutboundRecord, Option<DeadLetterCode>)> {
        let mut outputs = std::mem::take(&mut self.plan_outputs);
        outputs.clear();
        outputs
    }

    fn encode_for(
        &self,
        topic: &str,
        output: &ProcessorToConsumerRef<'_>,
        key: Option<Vec<u8>>,
        headers: Vec<(String, Vec<u8>)>,
    ) -> OutboundRecord {
        let mut payload = Vec::new();
        let prepared = self
            .output_encoders
            .iter()
            .find(|(name, _)| **name == *topic);
        let topic = match prepared {
            Some((name, encoder)) => {
                encoder.encode_borrowed(output, &mut payload);
                Arc::clone(name)
            }
            // Unreachable by construction: snapshots prepare every target of their router.
            None => Arc::from(topic),
        };
        OutboundRecord {
            topic,
            key,
            payload,
            headers,
        }
    }

    fn dead_letter_plan(
        &mut self,
        record: &mut InboundRecord,
        reason: &DeadLetterReason,
        schema_id: Option<u32>,
    ) -> Plan {
        debug!(
            reason = reason.code().as_str(),
            topic = %record.topic,
            partition = record.partition,
            offset = record.offset,
            "Dead-lettering record."
        );
        let output = dead_letter_record(
            &self.config.dead_letter_topic,
            record,
            reason,
            schema_id,
            &self.config.processor_id,
        );
        let mut outputs = self.take_plan_outputs();
        outputs.push((output, Some(reason.code())));
        Plan {
            outputs,
            event_timestamp_ms: None,
        }
    }

    /// The dead-letter plan of a record whose bytes cannot be decoded.
    fn decode_error_plan(&mut self, record: &mut InboundRecord, error: &CodecError) -> Plan {
        let schema_id = input_schema_id(record);
        let reason = poison_reason(error, schema_id);
        self.dead_letter_plan(record, &reason, schema_id)
    }

    /// Loads the writer schema `schema_id` from the registry. Transient registry failures are
    /// retried with backoff until they pass or shutdown is requested, and so is an id the
    /// registry does not know, for `not_found_retry` (a lagging replica); only errors that are a
    /// property of the bytes come back as `Ok(Err(_))`.
    async fn load_writer_schema(
        &mut self,
        schema_id: SchemaId,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Result<(), CodecError>, Interrupted> {
        let mut failures = 0;
        let mut not_found_since: Option<Instant> = None;
        loop {
            let loaded = match not_found_since {
                None => self.decoder.load(schema_id, &self.registry).await,
                Some(_) => self.decoder.recheck(schema_id, &self.registry).await,
            };
            self.batch_now_ms = self.clock.now_ms();
            match loaded {
                Ok(()) => {
                    if let Some(since) = not_found_since {
                        info!(schema_id = schema_id.0, waited = ?since.elapsed(), "Schema id found in the registry after all; routing.");
                    }
                    return Ok(Ok(()));
                }
                Err(error @ CodecError::SchemaNotFound { .. })
                    if !self.config.not_found_retry.is_zero() =>
                {
                    let since = *not_found_since.get_or_insert_with(Instant::now);
                    let left = self.config.not_found_retry.saturating_sub(since.elapsed());
                    if left.is_zero() {
                        warn!(schema_id = schema_id.0, waited = ?since.elapsed(), "Schema id still unknown to the registry; dead-lettering.");
                        return Ok(Err(error));
                    }
                    failures += 1;
                    self.stats.registry_failures.fetch_add(1, Relaxed);
                    self.heartbeat();
                    let wait = self.config.retry.jittered_backoff(failures).min(left);
                    warn!(schema_id = schema_id.0, retry_in = ?wait, "Schema id unknown to the registry (a lagging replica?); holding the record back and asking again.");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.wait_for(|stop| *stop) => return Err(Interrupted),
                    }
                }
                // Only the bytes' own faults dead-letter; a registry that is down or refuses
                // us (auth, config) holds the stream back instead.
                Err(error) if !error.is_poison() => {
                    failures += 1;
                    self.stats.registry_failures.fetch_add(1, Relaxed);
                    // Waiting out a registry outage is the loop doing its job: stay live.
                    self.heartbeat();
                    let wait = self.config.retry.jittered_backoff(failures);
                    warn!(%error, schema_id = schema_id.0, retry_in = ?wait, "Schema registry unavailable; retrying.");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.wait_for(|stop| *stop) => return Err(Interrupted),
                    }
                }
                Err(error) => return Ok(Err(error)),
            }
        }
    }

    fn send(&mut self, record: OutboundRecord, tag: usize) {
        if let Err(SendRejected {
            record,
            tag,
            error,
            queue_full,
        }) = self.sink.send(record, tag)
        {
            if queue_full {
                self.schedule_retry(tag, record, QUEUE_FULL_BACKOFF);
            } else if error.refuses_record() {
                self.stats.produce_permanent_failures.fetch_add(1, Relaxed);
                self.on_refused(tag, record, &error);
            } else {
                if !error.is_retriable() {
                    self.stats.produce_permanent_failures.fetch_add(1, Relaxed);
                }
                if self.exactly_once {
                    self.drop_output(tag);
                    if error.is_fatal_transaction() {
                        self.fatal = Some(error);
                    } else {
                        self.doom(format!("the producer refused a record: {error}"));
                    }
                    return;
                }
                warn!(%error, "Producer refused a record; retrying.");
                self.on_failed_attempt(tag, record);
            }
        }
    }

    fn on_report(&mut self, report: DeliveryReport, now_ms: i64) {
        match report.result {
            Ok(_) => {
                let Some(slot) = self.outputs.remove(report.tag) else {
                    warn!(
                        tag = report.tag,
                        "Delivery report for an unknown tag; ignored."
                    );
                    return;
                };
                if slot.failures >= self.config.retry.budget {
                    self.stats.stuck_records.fetch_sub(1, Relaxed);
                }
                if let Some(input) = slot.input {
                    self.inputs.release(input);
                }
                match slot.dead_letter_code {
                    None => {
                        self.unpublished_routed += 1;
                        if let Some(counter) = slot
                            .routed_counter
                            .and_then(|index| self.routed_counters.get_mut(index))
                        {
                            counter.unpublished += 1;
                        }
                        if let Some(event_timestamp) = slot.event_timestamp_ms {
                            self.unpublished_latency
                                .observe_ms(now_ms - event_timestamp);
                        }
                    }
                    Some(code) => self.stats.count_dead_letter(code),
                }
                if let Err(error) = self.tracker.ack(slot.ticket) {
                    warn!(%error, "Acknowledgement rejected by the offset tracker.");
                }
            }
            Err(failure) => {
                debug!(error = %failure.error, retriable = failure.retriable, "Delivery failed.");
                if !failure.retriable {
                    self.stats.produce_permanent_failures.fetch_add(1, Relaxed);
                }
                if self.exactly_once {
                    // librdkafka fails the transaction's commit after any failed delivery: the
                    // transaction is aborted and its records read again (see the module docs).
                    if failure.error.refuses_record() {
                        self.remember_refusal(report.tag, &failure.record.topic, &failure.error);
                    }
                    self.drop_output(report.tag);
                    self.doom(format!("a delivery failed: {}", failure.error));
                    return;
                }
                if failure.error.refuses_record() {
                    self.on_refused(report.tag, failure.record, &failure.error);
                } else {
                    self.on_failed_attempt(report.tag, failure.record);
                }
            }
        }
    }

    /// The broker (or the producer) refused `record` for good with `error`:
    ///
    /// - a routed output is replaced by a dead-letter copy of its input (reason `refused`, the
    ///   broker's error in `dlq.error`, the refusing topic in `dlq.output.topic`); the other
    ///   outputs of the same input are left alone, so a fan-out routes to every destination
    ///   that takes the record and dead-letters one copy per destination that refuses it;
    /// - a dead-letter copy refused as too large is replaced by the same record without its
    ///   value (`dlq.value.omitted`, `dlq.value.size`, `dlq.value.sha256`);
    /// - anything else (the dead-letter topic missing or not writable, a digest record refused)
    ///   is retried as a transient failure: a dead letter is never dropped, its partition stops
    ///   committing and the processor reports it stuck.
    fn on_refused(&mut self, tag: usize, record: OutboundRecord, error: &ports::AdapterError) {
        let Some(slot) = self.outputs.get(tag) else {
            warn!(tag, "Refused delivery for an unknown tag; ignored.");
            return;
        };
        match (slot.dead_letter_code, slot.input, slot.value_omitted) {
            (None, Some(input), _) => {
                let Some(input) = self.inputs.get(input) else {
                    warn!(tag, "Refused output without its input; retrying it.");
                    return self.on_failed_attempt(tag, record);
                };
                warn!(
                    %error,
                    topic = %record.topic,
                    input_topic = %input.topic,
                    partition = input.partition,
                    offset = input.offset,
                    "The broker refused an output record for good; dead-lettering its input as `refused`."
                );
                let dead_letter = refused_dead_letter_record(
                    &self.config.dead_letter_topic,
                    record,
                    input,
                    &error.to_string(),
                    &self.config.processor_id,
                );
                self.replace_output(tag, dead_letter, DeadLetterCode::Refused, false);
            }
            (Some(code), _, false) if error.is_record_too_large() => {
                warn!(
                    %error,
                    size = record.payload.len(),
                    "The dead-letter topic refused a dead letter as too large; writing it without its value (dlq.value.omitted, with its size and SHA-256)."
                );
                let digest = value_omitted_record(record, self.config.max_record_bytes);
                self.replace_output(tag, digest, code, true);
            }
            _ => {
                warn!(
                    %error,
                    topic = %record.topic,
                    "The dead-letter topic refused a dead letter; retrying it (it is never dropped: its partition stops committing until it is written)."
                );
                self.on_failed_attempt(tag, record);
            }
        }
    }

    /// Replaces the output `tag` (refused for good) by `record`, which takes its place in the
    /// input's tally: in the tracker the output fails, one output is added and the failure is
    /// resolved, so the input completes only once `record` is acknowledged (and its other
    /// outputs). Nothing is sent when the input's partition was revoked or lost meanwhile: its
    /// next owner reads the input again.
    fn replace_output(
        &mut self,
        tag: usize,
        record: OutboundRecord,
        dead_letter_code: DeadLetterCode,
        value_omitted: bool,
    ) {
        let Some(old) = self.outputs.remove(tag) else {
            return;
        };
        if old.failures >= self.config.retry.budget {
            self.stats.stuck_records.fetch_sub(1, Relaxed);
        }
        if let Some(input) = old.input {
            self.inputs.release(input);
        }
        let ticket = old.ticket;
        if !self.replace_in_tracker(ticket) {
            return;
        }
        let tag = self.outputs.insert(OutputSlot {
            ticket,
            dead_letter_code: Some(dead_letter_code),
            routed_counter: None,
            failures: 0,
            event_timestamp_ms: None,
            input: None,
            value_omitted,
        });
        self.send(record, tag);
    }

    /// Tells the tracker that one pending output of `ticket` failed and is replaced by a new
    /// one. False when the partition is no longer ours (nothing to send).
    fn replace_in_tracker(&mut self, ticket: Ticket) -> bool {
        match self.tracker.fail(ticket) {
            Ok(AckOutcome::Stale) => {
                debug!(
                    offset = ticket.offset(),
                    "Refused output of a revoked partition; its next owner routes the input again."
                );
                return false;
            }
            Ok(_) => {}
            Err(error) => warn!(%error, "The offset tracker did not take the refused output."),
        }
        if let Err(error) = self.tracker.add_outputs(ticket, 1) {
            warn!(%error, "The offset tracker did not take the replacing output.");
        }
        if let Err(error) = self.tracker.resolve(ticket) {
            warn!(%error, "The offset tracker did not resolve the refused output.");
        }
        true
    }

    /// A produce attempt failed transiently: retry with jittered backoff, forever. Past the
    /// budget the record counts as stuck and is marked failed in the tracker until it is sent
    /// again, so its partition cannot commit past it.
    fn on_failed_attempt(&mut self, tag: usize, record: OutboundRecord) {
        let Some(slot) = self.outputs.get_mut(tag) else {
            warn!(tag, "Failed delivery for an unknown tag; ignored.");
            return;
        };
        slot.failures += 1;
        let failures = slot.failures;
        let ticket = slot.ticket;
        self.stats.produce_retries.fetch_add(1, Relaxed);
        if failures == self.config.retry.budget {
            self.stats.stuck_records.fetch_add(1, Relaxed);
            warn!(
                topic = %record.topic,
                attempts = failures,
                "Output record is past its retry budget; its input stays uncommitted and the processor reports unhealthy."
            );
        }
        // Past the budget every failure is told to the tracker, and undone by `retry` when the
        // record is sent again (see `send_due_retries`).
        if failures >= self.config.retry.budget
            && let Err(error) = self.tracker.fail(ticket)
        {
            debug!(%error, "Tracker did not take the failure (partition revoked?).");
        }
        let wait = self.config.retry.jittered_backoff(failures);
        self.schedule_retry(tag, record, wait);
    }

    fn schedule_retry(&mut self, tag: usize, record: OutboundRecord, wait: Duration) {
        self.retry_seq += 1;
        self.retries.push(Reverse(PendingRetry {
            due: Instant::now() + wait,
            seq: self.retry_seq,
            tag,
            record,
        }));
    }

    fn next_retry_due(&self) -> Option<Instant> {
        self.retries.peek().map(|Reverse(retry)| retry.due)
    }

    fn send_due_retries(&mut self) {
        let now = Instant::now();
        while self
            .retries
            .peek()
            .is_some_and(|Reverse(retry)| retry.due <= now)
        {
            let Some(Reverse(retry)) = self.retries.pop() else {
                break;
            };
            if let Some(slot) = self.outputs.get_mut(retry.tag)
                && slot.failures >= self.config.retry.budget
            {
                let ticket = slot.ticket;
                if let Err(error) = self.tracker.retry(ticket) {
                    debug!(%error, "Tracker did not re-arm the output (partition revoked?).");
                }
            }
            self.send(retry.record, retry.tag);
        }
    }

    async fn commit_if_due(&mut self, reports: &mut mpsc::UnboundedReceiver<DeliveryReport>) {
        let now = self.now();
        if let Some(commit) = self.tracker.due_commit(now) {
            if self.exactly_once {
                self.close_transaction(reports).await;
            } else {
                self.commit(commit).await;
            }
        }
    }

    async fn commit(&mut self, commit: Commit) -> bool {
        let positions = commit.positions.clone();
        let asked = Instant::now();
        let answer = self.committer.commit(positions).await;
        self.stats
            .commit_latency
            .observe_ms(asked.elapsed().as_millis() as i64);
        match answer {
            Ok(()) => {
                self.tracker.mark_committed(&commit, self.now());
                self.stats.commits.fetch_add(1, Relaxed);
                true
            }
            Err(error) => {
                self.stats.commit_failures.fetch_add(1, Relaxed);
                warn!(%error, "Offset commit failed; it is retried with the next commit.");
                false
            }
        }
    }

    /// Waits (bounded) until the revoked partitions have nothing in flight, then returns their
    /// final positions and forgets them.
    async fn drain_and_revoke(
        &mut self,
        partitions: &[TopicPartition],
        reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
    ) -> Vec<CommitPosition> {
        let deadline = Instant::now() + self.config.drain_timeout;
        let drained = self
            .drain_until(reports, deadline, |tracker| {
                partitions.iter().all(|tp| tracker.in_flight(tp) == 0)
            })
            .await;
        if !drained {
            warn!(partitions = %display_partitions(partitions), "Revoke drain timed out; undelivered records will be routed again by the new owner.");
        }
        partitions
            .iter()
            .filter_map(|tp| self.tracker.revoke(tp))
            .collect()
    }

    /// Handles delivery reports and retries until `done` holds or `deadline` passes.
    async fn drain_until(
        &mut self,
        reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
        deadline: Instant,
        done: impl Fn(&OffsetTracker) -> bool,
    ) -> bool {
        while !done(&self.tracker) {
            if self.doomed.is_some() || self.fatal.is_some() {
                return false;
            }
            let next_retry = self.next_retry_due().unwrap_or_else(far_future);
            tokio::select! {
                report = reports.recv() => match report {
                    Some(report) => {
                        let now_ms = self.clock.now_ms();
                        self.on_report(report, now_ms);
                    }
                    None => return done(&self.tracker),
                },
                _ = sleep_until(next_retry) => self.send_due_retries(),
                _ = sleep_until(deadline) => return done(&self.tracker),
            }
        }
        true
    }

    /// Drains everything in flight, commits what completed, flushes the producer.
    async fn shutdown(
        mut self,
        reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
    ) -> Result<RunSummary, PipelineError> {
        info!(
            in_flight = self.tracker.total_in_flight(),
            "Shutting down: draining in-flight records."
        );
        let deadline = Instant::now() + self.config.drain_timeout;
        let drained = self
            .drain_until(reports, deadline, |tracker| tracker.total_in_flight() == 0)
            .await;
        if !drained {
            warn!(
                in_flight = self.tracker.total_in_flight(),
                "Drain timed out; those records will be routed again after a restart."
            );
        }
        let final_commit_ok = if self.exactly_once {
            match (drained, self.transaction_open) {
                (_, false) => true,
                (true, true) => self.close_transaction(reports).await,
                (false, true) => false,
            }
        } else {
            let positions = self.tracker.committable();
            if positions.is_empty() {
                true
            } else {
                self.commit(Commit { positions }).await
            }
        };
        if self.exactly_once && self.transaction_open {
            if let Err(error) = self.committer.abort_transaction().await {
                warn!(%error, "Aborting the last transaction at shutdown failed; the broker aborts it after transaction.timeout.ms.");
            }
            self.stats.transactions_aborted.fetch_add(1, Relaxed);
        }
        if let Some(error) = self.fatal.take() {
            return Err(PipelineError::Transaction(error));
        }
        let remaining = self.config.drain_timeout.min(Duration::from_secs(5));
        if let Err(error) = self.sink.flush(remaining).await {
            warn!(%error, "Producer flush failed at shutdown.");
        }
        self.heartbeat();
        info!(final_commit_ok, "Pipeline stopped.");
        Ok(RunSummary {
            abandoned_in_flight: self.tracker.total_in_flight(),
            final_commit_ok,
        })
    }
}

/// Exactly-once mode: transactions (see the module documentation).
impl<K: RecordSink, C: OffsetCommitter, R: SchemaRegistry> Core<K, C, R> {
    /// Drops records read before a rewind of their partition, and opens a transaction for
    /// the others if none is open. False when nothing is left to process (or the producer
    /// cannot open one: `fatal` is set and the run ends after this step).
    fn begin_transaction(&mut self, records: &mut Vec<InboundRecord>) -> bool {
        if !self.rewinding.is_empty() {
            let rewinding = &self.rewinding;
            records.retain(|record| {
                !rewinding
                    .iter()
                    .any(|tp| tp.partition == record.partition && *tp.topic == *record.topic)
            });
        }
        if records.is_empty() {
            return false;
        }
        if self.transaction_open {
            return true;
        }
        match self.committer.begin_transaction() {
            Ok(()) => {
                self.transaction_open = true;
                true
            }
            Err(error) => {
                // Nothing of the batch is tracked: the run must end before any later record
                // is, or a commit could pass these.
                self.fatal = Some(error);
                false
            }
        }
    }

    fn doom(&mut self, reason: String) {
        if self.doomed.is_none() {
            warn!(%reason, "The open transaction must be aborted.");
            self.doomed = Some(reason);
        }
    }

    /// Forgets output `tag` (its transaction is aborted, or it failed in one).
    fn drop_output(&mut self, tag: usize) {
        let Some(slot) = self.outputs.remove(tag) else {
            return;
        };
        if slot.failures >= self.config.retry.budget {
            self.stats.stuck_records.fetch_sub(1, Relaxed);
        }
        if let Some(input) = slot.input {
            self.inputs.release(input);
        }
    }

    /// Exactly-once mode: the routed output `tag` was refused for good by `output` with
    /// `error`; the transaction aborts, and the refusal is remembered by input and output
    /// topic, so that the replay dead-letters it (see [`Self::dead_letter_known_refusal`]).
    fn remember_refusal(&mut self, tag: usize, output: &Arc<str>, error: &ports::AdapterError) {
        let Some(slot) = self.outputs.get(tag) else {
            return;
        };
        let (None, Some(input)) = (slot.dead_letter_code, slot.input) else {
            return;
        };
        let Some(input) = self.inputs.get(input) else {
            return;
        };
        warn!(
            %error,
            topic = %output,
            input_topic = %input.topic,
            partition = input.partition,
            offset = input.offset,
            "The broker refused an output record for good; the transaction is aborted and the input is dead-lettered as `refused` for that output when it is read again."
        );
        let error = error.to_string();
        if !self
            .refusals
            .remember(&input.topic, input.partition, input.offset, output, &error)
        {
            warn!(
                remembered = self.refusals.len(),
                "Too many refused outputs remembered; this one is produced again after the rewind."
            );
        }
    }

    /// Exactly-once replay: when the broker refused `output` of input `input` for good in an
    /// aborted transaction, sends a `refused` dead letter of the input in its place (in the
    /// input's tally, one output replaces the other) and releases the input's value for it.
    /// Gives `output` back when no refusal is remembered for it.
    fn dead_letter_known_refusal(
        &mut self,
        ticket: Ticket,
        input: usize,
        output: OutboundRecord,
    ) -> Result<(), OutboundRecord> {
        let Some(slot) = self.inputs.get(input) else {
            return Err(output);
        };
        let Some(error) =
            self.refusals
                .get(&slot.topic, slot.partition, slot.offset, &output.topic)
        else {
            return Err(output);
        };
        info!(
            %error,
            topic = %output.topic,
            input_topic = %slot.topic,
            partition = slot.partition,
            offset = slot.offset,
            "Dead-lettering as `refused` an output the broker refused for good before the rewind."
        );
        let dead_letter = refused_dead_letter_record(
            &self.config.dead_letter_topic,
            output,
            slot,
            &error,
            &self.config.processor_id,
        );
        self.inputs.release(input);
        let tag = self.outputs.insert(OutputSlot {
            ticket,
            dead_letter_code: Some(DeadLetterCode::Refused),
            routed_counter: None,
            failures: 0,
            event_timestamp_ms: None,
            input: None,
            value_omitted: false,
        });
        self.send(dead_letter, tag);
        Ok(())
    }

    /// Commits the open transaction once every record read in it is complete (every output
    /// acknowledged), with the tracker's safe positions of every partition as its offsets.
    /// True when no transaction is open any more; on failure the transaction is doomed (or
    /// `fatal` set) and false comes back.
    async fn close_transaction(
        &mut self,
        reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
    ) -> bool {
        if !self.transaction_open {
            return true;
        }
        if self.doomed.is_some() || self.fatal.is_some() {
            return false;
        }
        let deadline = Instant::now() + self.config.drain_timeout;
        let drained = self
            .drain_until(reports, deadline, |tracker| tracker.total_in_flight() == 0)
            .await;
        if self.doomed.is_some() || self.fatal.is_some() {
            return false;
        }
        if !drained {
            self.doom(format!(
                "{} records of the transaction were not acknowledged within pipeline.drain_timeout_ms",
                self.tracker.total_in_flight()
            ));
            return false;
        }
        let commit = Commit {
            positions: self.tracker.committable(),
        };
        let asked = Instant::now();
        let answer = self.committer.commit(commit.positions.clone()).await;
        self.stats
            .commit_latency
            .observe_ms(asked.elapsed().as_millis() as i64);
        match answer {
            Ok(()) => {
                self.tracker.mark_committed(&commit, self.now());
                for position in &commit.positions {
                    self.refusals.forget_below(
                        &position.partition.topic,
                        position.partition.partition,
                        position.offset,
                    );
                }
                self.transaction_open = false;
                self.stats.commits.fetch_add(1, Relaxed);
                self.stats.transactions_committed.fetch_add(1, Relaxed);
                true
            }
            Err(error) => {
                self.stats.commit_failures.fetch_add(1, Relaxed);
                if error.is_fatal_transaction() {
                    self.fatal = Some(error);
                } else {
                    self.doom(format!("committing the transaction failed: {error}"));
                }
                false
            }
        }
    }

    /// A revoke in exactly-once mode: the open transaction is committed with every
    /// partition's offsets before the partitions move (or aborted, and the partitions kept
    /// are rewound); the revoked partitions are then forgotten.
    async fn revoke_in_transaction(
        &mut self,
        partitions: &[TopicPartition],
        reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
    ) {
        let committed = self.close_transaction(reports).await;
        if !committed && self.fatal.is_none() {
            self.abort_and_rewind(reports).await;
        }
        for tp in partitions {
            self.tracker.revoke(tp);
            self.refusals.forget_partition(&tp.topic, tp.partition);
        }
        self.rewinding.retain(|tp| !partitions.contains(tp));
        self.pending_rewind
            .retain(|position| !partitions.contains(&position.partition));
        info!(
            partitions = %display_partitions(partitions),
            transaction_committed = committed,
            "Partitions revoked after their transaction closed."
        );
    }

    /// Aborts the open transaction and rewinds: every output of it is forgotten (after the
    /// producer reported each one, so that no late report can find a reused tag), the tracker
    /// forgets every record read since the last commit, and the source is to read those
    /// partitions again from the last committed positions.
    async fn abort_and_rewind(&mut self, reports: &mut mpsc::UnboundedReceiver<DeliveryReport>) {
        let reason = self.doomed.take().unwrap_or_default();
        warn!(
            %reason,
            in_flight = self.tracker.total_in_flight(),
            "Aborting the transaction; its records are read and routed again from the last committed positions."
        );
        self.stats.transactions_aborted.fetch_add(1, Relaxed);
        if let Err(error) = self.committer.abort_transaction().await {
            self.fatal = Some(error);
            return;
        }
        self.transaction_open = false;
        // Outputs waiting for a retry are not in the producer: nothing will report them.
        while let Some(Reverse(retry)) = self.retries.pop() {
            self.drop_output(retry.tag);
        }
        let deadline = Instant::now() + self.config.drain_timeout;
        while self.outputs.len() > 0 {
            tokio::select! {
                report = reports.recv() => match report {
                    Some(report) => {
                        if let Err(failure) = &report.result
                            && failure.error.refuses_record()
                        {
                            self.remember_refusal(report.tag, &failure.record.topic, &failure.error);
                        }
                        self.drop_output(report.tag);
                    }
                    None => break,
                },
                _ = sleep_until(deadline) => break,
            }
        }
        if self.outputs.len() > 0 {
            self.fatal = Some(ports::AdapterError::Task {
                operation: "aborting the transaction",
                reason: format!(
                    "{} records of the aborted transaction got no delivery report within pipeline.drain_timeout_ms",
                    self.outputs.len()
                ),
            });
            return;
        }
        let assigned: Vec<_> = self.tracker.assigned().cloned().collect();
        for tp in assigned {
            if let Some(position) = self.tracker.rewind(&tp) {
                self.rewinding.push(position.partition.clone());
                self.pending_rewind.push(position);
            }
        }
        self.stats
            .in_flight
            .store(self.tracker.total_in_flight() as i64, Relaxed);
    }

    /// After each step in exactly-once mode: abort and rewind a doomed transaction, hand the
    /// rewind to the source, or end the run on a fatal transaction error.
    async fn settle_transaction<S: RecordSource>(
        &mut self,
        source: &mut S,
        reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
    ) -> Result<(), PipelineError> {
        if self.doomed.is_some() && self.fatal.is_none() {
            self.abort_and_rewind(reports).await;
        }
        if let Some(error) = self.fatal.take() {
            tracing::error!(%error, "The transactional producer cannot go on; stopping without committing.");
            return Err(PipelineError::Transaction(error));
        }
        if !self.pending_rewind.is_empty() {
            let positions = std::mem::take(&mut self.pending_rewind);
            source.rewind(positions).map_err(PipelineError::Source)?;
        }
        Ok(())
    }
}

/// The schema id in the header of `record`'s value, for the dead-letter headers.
fn input_schema_id(record: &InboundRecord) -> Option<u32> {
    let value = record.payload.as_deref()?;
    InputDecoder::schema_id_of(value).ok().map(|id| id.0)
}

/// The dead-letter reason for a decode error that is a property of the bytes.
fn poison_reason(error: &CodecError, schema_id: Option<u32>) -> DeadLetterReason {
    let mismatch = matches!(
        error,
        CodecError::IncompatibleSchema { .. } | CodecError::Unreadable { .. }
    );
    match (mismatch, schema_id) {
        (true, Some(schema_id)) => DeadLetterReason::SchemaMismatch {
            schema_id,
            detail: error.to_string(),
        },
        _ => DeadLetterReason::Undecodable {
            detail: error.to_string(),
        },
    }
}

fn display_partitions(partitions: &[TopicPartition]) -> String {
    partitions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Completes at `due`; without one it never completes and, unlike a far-future sleep, reads no
/// clock and arms no timer on every turn of the loop.
async fn retry_due(due: Option<Instant>) {
    match due {
        Some(due) => sleep_until(due).await,
        None => std::future::pending().await,
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

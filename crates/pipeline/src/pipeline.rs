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

mod transaction;

use crate::config::PipelineConfig;
use crate::counts::UnpublishedCounts;
use crate::dead_letter::{refused_dead_letter_record, value_omitted_record};
use crate::in_flight::{InFlightInputs, InFlightOutputs, InputSlot, OutputSlot};
use crate::planner::{NotLoaded, Planner};
use crate::refusals::Refusals;
use crate::retry_queue::RetryQueue;
use crate::routing::RoutingSnapshot;
use crate::stats::PipelineStats;
use crate::{Clock, PipelineError};
use avro_codec::{CodecError, InputDecoder, SchemaId, SchemaRegistry};
use offset_tracker::{AckOutcome, Commit, OffsetTracker, Ticket};
use ports::{
    CommitPosition, DeliveryReport, InboundRecord, OffsetCommitter, OutboundRecord, RecordSink,
    RecordSource, SendRejected, SourceEvent, TopicPartition,
};
use router_core::DeadLetterCode;
use std::sync::Arc;
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
    let snapshot = Arc::clone(&routing.borrow_and_update());
    let mut core = Core::new(config, snapshot, sink, committer, registry, clock, stats);
    let mut commit_check = tokio::time::interval(COMMIT_CHECK_INTERVAL);
    commit_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!(processor_id = %core.config.processor_id, exactly_once = core.exactly_once, "Pipeline started.");

    let mut lifecycle = Lifecycle::Consuming;
    loop {
        lifecycle = match lifecycle {
            Lifecycle::Consuming => {
                let step = core
                    .next_step(&mut source, &mut reports, &mut commit_check, &mut shutdown)
                    .await;
                core.take_step(step, &mut source, &mut reports, &mut routing, &mut shutdown)
                    .await?
            }
            Lifecycle::Draining { deadline } => {
                Lifecycle::Done(core.shutdown(&mut reports, deadline).await?)
            }
            Lifecycle::Done(summary) => {
                let refused = core.untrackable.take();
                // After the final commit: leave the group now, so the other members take
                // these partitions at once rather than after the session timeout.
                if tokio::time::timeout(SOURCE_CLOSE_TIMEOUT, source.release())
                    .await
                    .is_err()
                {
                    warn!(timeout = ?SOURCE_CLOSE_TIMEOUT, "The source did not close in time; the group notices this member left after its session timeout.");
                }
                return match refused {
                    Some(error) => Err(PipelineError::Tracking(error)),
                    None => Ok(summary),
                };
            }
        };
    }
}

/// Where the loop is in its life.
enum Lifecycle {
    /// Reading, routing and committing.
    Consuming,
    /// Stopping: delivering what is in flight until `deadline`, then the final commit.
    Draining { deadline: Instant },
    /// Stopped; the source still has to leave its group.
    Done(RunSummary),
}

/// Most schema ids remembered as waited out (see `Core::waited_out`); beyond it the memory
/// starts afresh, so a flood of random ids costs at most one wait per id per this many.
const WAITED_OUT_IDS: usize = 1024;

/// How long a stop waits for the consumer to leave its group (a LeaveGroup round trip, unless
/// the broker is unreachable).
const SOURCE_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// What woke the loop up.
enum Step {
    Shutdown,
    Report(DeliveryReport),
    Retry,
    CommitCheck,
    Source(Result<SourceEvent, ports::AdapterError>),
}

/// Shutdown was requested while the loop waited on something else.
struct Interrupted;

/// How loading a writer schema ended.
enum SchemaLoad {
    Loaded,
    /// The bytes' own fault (unknown for good, unreadable, incompatible): dead-letter them.
    Poison(CodecError),
    /// Shutdown was requested while the registry was waited for.
    Interrupted,
}

/// The loop's state, apart from the event sources it waits on.
struct Core<K, C, R> {
    tracker: OffsetTracker,
    outputs: InFlightOutputs,
    /// Values of inputs with routed outputs in flight, for dead-lettering a refused one.
    inputs: InFlightInputs,
    retries: RetryQueue,
    planner: Planner,
    counts: UnpublishedCounts,
    /// Processing time stamped on the outputs of the batch being planned (epoch ms): read once
    /// per batch, and again after waiting on the registry, instead of once per record.
    batch_now_ms: i64,
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
    /// Why the tracker refused a record: the run drains and ends with this error.
    untrackable: Option<offset_tracker::TrackerError>,
    /// Schema ids a record was already held back for, for the whole `not_found_retry`, without
    /// the registry learning them: later records of them are not held back again (one record
    /// per unknown id pays the wait, not every record; bounded).
    waited_out: std::collections::HashSet<SchemaId>,
    config: PipelineConfig,
    sink: K,
    committer: C,
    registry: R,
    clock: Arc<dyn Clock>,
    stats: Arc<PipelineStats>,
}

impl<K: RecordSink, C: OffsetCommitter, R: SchemaRegistry> Core<K, C, R> {
    fn new(
        config: PipelineConfig,
        snapshot: Arc<RoutingSnapshot>,
        sink: K,
        committer: C,
        registry: R,
        clock: Arc<dyn Clock>,
        stats: Arc<PipelineStats>,
    ) -> Self {
        let decoder = match config.not_found_retry.is_zero() {
            true => InputDecoder::new(),
            false => {
                let origin = std::time::Instant::now();
                InputDecoder::new()
                    .with_not_found_ttl(config.not_found_retry, move || origin.elapsed())
            }
        };
        let mut core = Self {
            tracker: OffsetTracker::new(config.commit_policy, Duration::ZERO),
            outputs: InFlightOutputs::default(),
            inputs: InFlightInputs::default(),
            retries: RetryQueue::default(),
            planner: Planner::new(&config, decoder, Arc::clone(&snapshot)),
            counts: UnpublishedCounts::default(),
            batch_now_ms: 0,
            started: Instant::now(),
            exactly_once: committer.is_transactional(),
            transaction_open: false,
            doomed: None,
            fatal: None,
            rewinding: Vec::new(),
            pending_rewind: Vec::new(),
            refusals: Refusals::default(),
            untrackable: None,
            waited_out: std::collections::HashSet::new(),
            config,
            sink,
            committer,
            registry,
            clock,
            stats,
        };
        core.install_routing(snapshot);
        core
    }

    /// Waits for whatever comes first: a stop, delivery reports, a retry, the commit check, or
    /// (when fewer than `max_in_flight` records are in flight) the source.
    async fn next_step<S: RecordSource>(
        &mut self,
        source: &mut S,
        reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
        commit_check: &mut tokio::time::Interval,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Step {
        self.heartbeat();
        if *shutdown.borrow() {
            return Step::Shutdown;
        }
        let can_read = self.tracker.total_in_flight() < self.config.max_in_flight;
        let next_retry = self.retries.next_due();
        tokio::select! {
            biased;
            _ = shutdown.changed() => Step::Shutdown,
            Some(report) = reports.recv() => Step::Report(report),
            () = retry_due(next_retry) => Step::Retry,
            _ = commit_check.tick() => Step::CommitCheck,
            event = source.next_event(), if can_read => Step::Source(event),
        }
    }

    /// Handles one step; the loop goes on consuming, or starts draining.
    async fn take_step<S: RecordSource>(
        &mut self,
        step: Step,
        source: &mut S,
        reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
        routing: &mut watch::Receiver<Arc<RoutingSnapshot>>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Lifecycle, PipelineError> {
        match step {
            Step::Shutdown => return Ok(self.start_draining()),
            Step::Report(report) => {
                // One clock read for the whole batch: latency figures are in milliseconds.
                let now_ms = self.clock.now_ms();
                self.on_report(report, now_ms);
                while let Ok(report) = reports.try_recv() {
                    self.on_report(report, now_ms);
                }
            }
            Step::Retry => self.send_due_retries(),
            Step::CommitCheck => self.commit_if_due(reports).await,
            Step::Source(Err(error)) => {
                warn!(%error, "Source failed; stopping after a drain.");
                let deadline = Instant::now() + self.config.drain_timeout;
                self.shutdown(reports, deadline).await?;
                return Err(PipelineError::Source(error));
            }
            Step::Source(Ok(event)) => {
                if routing.has_changed().unwrap_or(false) {
                    self.install_routing(Arc::clone(&routing.borrow_and_update()));
                    info!(
                        version = %format_args!("{:016x}", self.planner.snapshot().router().version()),
                        "Routing table replaced."
                    );
                }
                if let Err(Interrupted) = self.on_source_event(event, reports, shutdown).await {
                    return Ok(self.start_draining());
                }
            }
        }
        if self.exactly_once {
            self.settle_transaction(source, reports).await?;
        }
        Ok(Lifecycle::Consuming)
    }

    fn start_draining(&self) -> Lifecycle {
        Lifecycle::Draining {
            deadline: Instant::now() + self.config.drain_timeout,
        }
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Routes with `snapshot` from now on: publishes its version and fetches the per-topic
    /// counters of its outputs.
    fn install_routing(&mut self, snapshot: Arc<RoutingSnapshot>) {
        self.stats
            .routing_version
            .store(snapshot.router().version(), Relaxed);
        self.counts.track_topics_of(&snapshot, &self.stats);
        self.planner.install(snapshot);
    }

    fn heartbeat(&mut self) {
        self.stats
            .last_heartbeat_ms
            .store(self.clock.now_ms(), Relaxed);
        self.stats
            .in_flight
            .store(self.tracker.total_in_flight() as i64, Relaxed);
        self.counts.publish(&self.stats);
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
            match self.planner.plan(&mut record, self.batch_now_ms) {
                Ok(plan) => break plan,
                // Rare (first sight of a schema id): boxed, so that the future of every record
                // stays small instead of embedding the registry request's.
                Err(NotLoaded(schema_id)) => {
                    match Box::pin(self.load_writer_schema(schema_id, shutdown)).await {
                        SchemaLoad::Loaded => continue,
                        SchemaLoad::Poison(error) => {
                            break self.planner.plan_undecodable(&mut record, &error);
                        }
                        SchemaLoad::Interrupted => return Err(Interrupted),
                    }
                }
            }
        };
        if let Some(kind) = plan.authentication_failure {
            self.stats
                .authentication_failures
                .counter(kind)
                .fetch_add(1, Relaxed);
        }
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
                match self
                    .tracker
                    .track(&tp, record.offset, plan.outputs.len() as u32)
                {
                    Ok(ticket) => ticket,
                    Err(error) => return Err(self.refuse_untrackable(error, &tp, record.offset)),
                }
            }
            Err(error) => return Err(self.refuse_untrackable(error, &tp, record.offset)),
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
                None => self.counts.counter_of(&output.topic),
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
        self.planner.recycle(plan.outputs);
        Ok(())
    }

    /// Loads the writer schema `schema_id` from the registry. Transient registry failures are
    /// retried with backoff until they pass or shutdown is requested, and so is an id the
    /// registry does not know, for `not_found_retry` (a lagging replica); only errors that are a
    /// property of the bytes come back as [`SchemaLoad::Poison`].
    /// Tracking is what makes commits safe: a record that cannot be tracked is never routed;
    /// the run drains, commits what is complete and ends with [`PipelineError::Tracking`].
    fn refuse_untrackable(
        &mut self,
        error: offset_tracker::TrackerError,
        partition: &TopicPartition,
        offset: i64,
    ) -> Interrupted {
        tracing::error!(%error, %partition, offset, "Cannot track record; stopping with an error after the drain.");
        self.untrackable.get_or_insert(error);
        Interrupted
    }

    async fn load_writer_schema(
        &mut self,
        schema_id: SchemaId,
        shutdown: &mut watch::Receiver<bool>,
    ) -> SchemaLoad {
        let mut failures = 0;
        let mut not_found_since: Option<Instant> = None;
        loop {
            let decoder = self.planner.decoder();
            let loaded = match not_found_since {
                None => decoder.load(schema_id, &self.registry).await,
                Some(_) => decoder.recheck(schema_id, &self.registry).await,
            };
            self.batch_now_ms = self.clock.now_ms();
            match loaded {
                Ok(()) => {
                    if let Some(since) = not_found_since {
                        info!(schema_id = schema_id.0, waited = ?since.elapsed(), "Schema id found in the registry after all; routing.");
                    }
                    return SchemaLoad::Loaded;
                }
                Err(error @ CodecError::SchemaNotFound { .. })
                    if !self.config.not_found_retry.is_zero() =>
                {
                    if self.waited_out.contains(&schema_id) {
                        debug!(
                            schema_id = schema_id.0,
                            "Schema id still unknown to the registry, already waited out once; dead-lettering."
                        );
                        return SchemaLoad::Poison(error);
                    }
                    let since = *not_found_since.get_or_insert_with(Instant::now);
                    let left = self.config.not_found_retry.saturating_sub(since.elapsed());
                    if left.is_zero() {
                        warn!(schema_id = schema_id.0, waited = ?since.elapsed(), "Schema id still unknown to the registry; dead-lettering (later records of it are not held back again).");
                        if self.waited_out.len() >= WAITED_OUT_IDS {
                            self.waited_out.clear();
                        }
                        self.waited_out.insert(schema_id);
                        return SchemaLoad::Poison(error);
                    }
                    failures += 1;
                    self.stats.registry_failures.fetch_add(1, Relaxed);
                    self.heartbeat();
                    let wait = self.config.retry.jittered_backoff(failures).min(left);
                    warn!(schema_id = schema_id.0, retry_in = ?wait, "Schema id unknown to the registry (a lagging replica?); holding the record back and asking again.");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.wait_for(|stop| *stop) => return SchemaLoad::Interrupted,
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
                        _ = shutdown.wait_for(|stop| *stop) => return SchemaLoad::Interrupted,
                    }
                }
                Err(error) => return SchemaLoad::Poison(error),
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
                    None => self.counts.count_routed(
                        slot.routed_counter,
                        slot.event_timestamp_ms.map(|event| now_ms - event),
                    ),
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
        if self.replace_in_tracker(ticket) {
            self.send_dead_letter(ticket, record, dead_letter_code, value_omitted);
        }
    }

    /// Sends `record`, a dead letter standing for one output of `ticket`'s input.
    fn send_dead_letter(
        &mut self,
        ticket: Ticket,
        record: OutboundRecord,
        dead_letter_code: DeadLetterCode,
        value_omitted: bool,
    ) {
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
        self.retries.schedule(tag, record, Instant::now() + wait);
    }

    fn send_due_retries(&mut self) {
        let now = Instant::now();
        while let Some((tag, record)) = self.retries.pop_due(now) {
            if let Some(slot) = self.outputs.get_mut(tag)
                && slot.failures >= self.config.retry.budget
            {
                let ticket = slot.ticket;
                if let Err(error) = self.tracker.retry(ticket) {
                    debug!(%error, "Tracker did not re-arm the output (partition revoked?).");
                }
            }
            self.send(record, tag);
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
            let next_retry = self.retries.next_due().unwrap_or_else(far_future);
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
        &mut self,
        reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
        deadline: Instant,
    ) -> Result<RunSummary, PipelineError> {
        info!(
            in_flight = self.tracker.total_in_flight(),
            "Shutting down: draining in-flight records."
        );
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

//! `passthrough`: the practical limit of broker + client on this machine. It consumes the input
//! and produces each record's bytes unchanged, with the processor's adapters, client defaults,
//! consumer settings, in-flight bound and commit discipline (an offset is committed only once
//! its output was acknowledged, through the same `OffsetTracker` and commit policy), and does
//! nothing else: no decode, no routing, no encode.
//!
//! The output topic is chosen from the key's destination suffix (`"<id>:<DESTINATION>"`), so
//! the records spread over the same three topics as the processor's.

use anyhow::{Context, Result, bail};
use kafka_adapters::{
    CommitPosition, ConsumerSettings, DeliveryReport, KafkaConfig, OffsetCommitter, OutboundRecord,
    RecordSink, RecordSource, SourceEvent, TopicPartition,
};
use offset_tracker::{Commit, OffsetTracker, Ticket};
use pipeline::PipelineConfig;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

/// As the pipeline's commit check.
const COMMIT_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// What `passthrough` was asked to do.
#[derive(Debug)]
pub(crate) struct PassthroughArgs {
    pub(crate) consumer: KafkaConfig,
    pub(crate) producer: KafkaConfig,
    pub(crate) input_topic: String,
    pub(crate) group_id: String,
    /// Destination name → output topic.
    pub(crate) outputs: Vec<(String, String)>,
}

pub(crate) async fn run(args: PassthroughArgs) -> Result<serde_json::Value> {
    if args.outputs.is_empty() {
        bail!("give at least one --output DESTINATION=TOPIC");
    }
    let (report_sender, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let sink = kafka_adapters::kafka_producer(&args.producer, report_sender)
        .context("cannot create the producer")?;
    // The processor's defaults, read from where the processor gets them, so both sides of the
    // comparison run under the same discipline: in-flight bound, commit policy, drain timeout
    // and consumer settings.
    let discipline = PipelineConfig::new("passthrough", "passthrough.unused");
    let (mut source, committer) = kafka_adapters::kafka_consumer(
        &args.consumer,
        ConsumerSettings {
            revoke_timeout: discipline.drain_timeout + Duration::from_secs(5),
            ..ConsumerSettings::new(args.group_id.clone(), vec![args.input_topic.clone()])
        },
    )
    .context("cannot create the consumer")?;
    let mut state = State {
        tracker: OffsetTracker::new(discipline.commit_policy, Duration::ZERO),
        drain_timeout: discipline.drain_timeout,
        tickets: Tickets::default(),
        resend: VecDeque::new(),
        outputs: args
            .outputs
            .iter()
            .map(|(destination, topic)| {
                (destination.clone().into_bytes(), Arc::from(topic.as_str()))
            })
            .collect(),
        started: Instant::now(),
        consumed: 0,
        acknowledged: 0,
        commits: 0,
        sink,
        committer,
    };
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut commit_check = tokio::time::interval(COMMIT_CHECK_INTERVAL);
    commit_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let can_read =
            state.tracker.total_in_flight() < discipline.max_in_flight && state.resend.is_empty();
        tokio::select! {
            biased;
            _ = terminate.recv() => break,
            Some(report) = reports.recv() => {
                state.on_report(report)?;
                while let Ok(report) = reports.try_recv() {
                    state.on_report(report)?;
                }
                state.send_pending();
            }
            _ = commit_check.tick() => {
                state.send_pending();
                state.commit_if_due().await;
            }
            event = source.next_event(), if can_read => match event.context("the consumer stopped")? {
                SourceEvent::Records(records) => {
                    state.consumed += records.len() as u64;
                    for record in records {
                        state.forward(record)?;
                    }
                }
                SourceEvent::Assigned(partitions) => {
                    eprintln!("Partitions assigned: {}", joined(&partitions));
                    for partition in &partitions {
                        state.tracker.assign(tracker_partition(partition));
                    }
                }
                SourceEvent::Revoked { partitions, reply } => {
                    let tracked: Vec<_> = partitions.iter().map(tracker_partition).collect();
                    state
                        .drain(&mut reports, |tracker| tracked.iter().all(|tp| tracker.in_flight(tp) == 0))
                        .await?;
                    let positions = tracked
                        .iter()
                        .filter_map(|tp| state.tracker.revoke(tp))
                        .map(adapter_position)
                        .collect();
                    reply.commit(positions);
                }
                SourceEvent::Lost(partitions) => {
                    for partition in &partitions {
                        state.tracker.lose(&tracker_partition(partition));
                    }
                }
                // The passthrough never rewinds.
                SourceEvent::Rewound(_) => {}
            },
        }
    }
    state
        .drain(&mut reports, |tracker| tracker.total_in_flight() == 0)
        .await?;
    let final_commit = Commit {
        positions: state.tracker.committable(),
    };
    if !final_commit.positions.is_empty() {
        state.commit(final_commit).await;
    }
    state
        .sink
        .flush(Duration::from_secs(5))
        .await
        .context("flushing the producer")?;
    Ok(json!({
        "consumed": state.consumed,
        "acknowledged": state.acknowledged,
        "commits": state.commits,
        "in_flight_at_exit": state.tracker.total_in_flight(),
    }))
}

struct State<K, C> {
    tracker: OffsetTracker,
    drain_timeout: Duration,
    tickets: Tickets,
    /// Records the producer's local queue refused, with their tags: sent again after reports.
    resend: VecDeque<(usize, OutboundRecord)>,
    outputs: Vec<(Vec<u8>, Arc<str>)>,
    started: Instant,
    consumed: u64,
    acknowledged: u64,
    commits: u64,
    sink: K,
    committer: C,
}

impl<K: RecordSink, C: OffsetCommitter> State<K, C> {
    fn forward(&mut self, record: kafka_adapters::InboundRecord) -> Result<()> {
        let tp = tracker_partition(&record.topic_partition());
        let ticket = self
            .tracker
            .track(&tp, record.offset, 1)
            .with_context(|| format!("cannot track {}@{}", tp.topic, record.offset))?;
        let topic = self.topic_for(record.key.as_deref());
        let output = OutboundRecord {
            topic,
            key: record.key,
            payload: record.payload.unwrap_or_default(),
            headers: Vec::new(),
        };
        let tag = self.tickets.insert(ticket);
        self.send(tag, output);
        Ok(())
    }

    fn topic_for(&self, key: Option<&[u8]>) -> Arc<str> {
        let destination = key
            .and_then(|key| {
                key.iter()
                    .rposition(|byte| *byte == b':')
                    .map(|at| &key[at + 1..])
            })
            .unwrap_or_default();
        let (_, topic) = self
            .outputs
            .iter()
            .find(|(name, _)| name.as_slice() == destination)
            .unwrap_or(&self.outputs[0]);
        Arc::clone(topic)
    }

    fn send(&mut self, tag: usize, record: OutboundRecord) {
        if let Err(rejected) = self.sink.send(record, tag) {
            // Full local queue (or a transient refusal): try again after the next reports.
            self.resend.push_back((rejected.tag, rejected.record));
        }
    }

    fn send_pending(&mut self) {
        while let Some((tag, record)) = self.resend.pop_front() {
            if let Err(rejected) = self.sink.send(record, tag) {
                self.resend.push_front((rejected.tag, rejected.record));
                return;
            }
        }
    }

    fn on_report(&mut self, report: DeliveryReport) -> Result<()> {
        match report.result {
            Ok(_) => {
                let Some(ticket) = self.tickets.remove(report.tag) else {
                    bail!("delivery report for unknown tag {}", report.tag);
                };
                self.acknowledged += 1;
                self.tracker
                    .ack(ticket)
                    .context("the tracker refused an acknowledgement")?;
            }
            Err(failure) if failure.retriable => {
                self.resend.push_back((report.tag, failure.record))
            }
            Err(failure) => bail!("delivery failed: {}", failure.error),
        }
        Ok(())
    }

    async fn commit_if_due(&mut self) {
        if let Some(commit) = self.tracker.due_commit(self.started.elapsed()) {
            self.commit(commit).await;
        }
    }

    async fn commit(&mut self, commit: Commit) {
        let positions = commit
            .positions
            .iter()
            .cloned()
            .map(adapter_position)
            .collect();
        match self.committer.commit(positions).await {
            Ok(()) => {
                self.tracker.mark_committed(&commit, self.started.elapsed());
                self.commits += 1;
            }
            Err(error) => eprintln!("passthrough: commit failed (retried with the next): {error}"),
        }
    }

    /// Handles reports until `done` holds, at most the drain timeout.
    async fn drain(
        &mut self,
        reports: &mut UnboundedReceiver<DeliveryReport>,
        done: impl Fn(&OffsetTracker) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + self.drain_timeout;
        while !done(&self.tracker) {
            self.send_pending();
            let wait = tokio::time::timeout_at(
                deadline.min(Instant::now() + COMMIT_CHECK_INTERVAL),
                reports.recv(),
            );
            match wait.await {
                Ok(Some(report)) => self.on_report(report)?,
                Ok(None) => bail!("the producer's delivery reports stopped"),
                Err(_) if Instant::now() >= deadline => {
                    bail!(
                        "{} records still in flight after {:?}",
                        self.tracker.total_in_flight(),
                        self.drain_timeout
                    )
                }
                Err(_) => {}
            }
        }
        Ok(())
    }
}

/// In-flight outputs by delivery tag: a slab, so a report finds its ticket without hashing.
#[derive(Default)]
struct Tickets {
    slots: Vec<Option<Ticket>>,
    free: Vec<usize>,
}

impl Tickets {
    fn insert(&mut self, ticket: Ticket) -> usize {
        match self.free.pop() {
            Some(tag) => {
                self.slots[tag] = Some(ticket);
                tag
            }
            None => {
                self.slots.push(Some(ticket));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, tag: usize) -> Option<Ticket> {
        let ticket = self.slots.get_mut(tag)?.take()?;
        self.free.push(tag);
        Some(ticket)
    }
}

fn tracker_partition(tp: &TopicPartition) -> offset_tracker::TopicPartition {
    offset_tracker::TopicPartition {
        topic: Arc::clone(&tp.topic),
        partition: tp.partition,
    }
}

fn adapter_position(position: offset_tracker::CommitPosition) -> CommitPosition {
    CommitPosition {
        partition: TopicPartition {
            topic: position.partition.topic,
            partition: position.partition.partition,
        },
        offset: position.offset,
    }
}

fn joined(partitions: &[TopicPartition]) -> String {
    partitions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

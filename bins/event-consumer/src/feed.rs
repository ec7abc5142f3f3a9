//! Where records come from: every partition from the beginning without a consumer group
//! (repeated passes of `kafka_adapters::read_topic`), or a consumer group.
//!
//! The group-less reader reads a topic to its end in one call and has no start offset, so
//! following a topic means reading it again and keeping only records past the previous pass.
//! That costs a full read per pass, fine for verification runs and demos, not for tailing big
//! topics (use `--group` there).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use kafka_adapters::{
    CommitPosition, ConsumerSettings, KafkaConfig, KafkaOffsetCommitter, KafkaRecordSource,
    OffsetCommitter, ReadUntil, RecordSource, SourceEvent, TopicPartition, read_topic,
};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// Pause between two passes that found nothing new, and longest wait for a group event.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Longest time one pass may take to read a topic to its end.
const PASS_TIMEOUT: Duration = Duration::from_secs(120);

/// Longest wait for the group to let go of its partitions at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(20);

/// A record read from one of the topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsumedRecord {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) payload: Option<Vec<u8>>,
    /// Empty when reading as a group: the group consumer does not expose headers.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

impl ConsumedRecord {
    /// The first header named `name`, as text.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
    }
}

/// The records of the topics, in batches.
#[derive(Debug)]
pub(crate) enum Feed {
    Passes(Passes),
    Group(Group),
}

impl Feed {
    pub(crate) fn without_group(kafka: &KafkaConfig, topics: Vec<String>) -> Self {
        Self::Passes(Passes {
            kafka: kafka.clone(),
            topics,
            next_offsets: HashMap::new(),
            found_nothing_last_time: false,
        })
    }

    pub(crate) fn with_group(
        kafka: &KafkaConfig,
        group: &str,
        topics: Vec<String>,
    ) -> Result<Self> {
        let settings = ConsumerSettings {
            revoke_timeout: Duration::from_secs(10),
            ..ConsumerSettings::new(group, topics.clone())
        };
        let (source, committer) = kafka_adapters::kafka_consumer(kafka, settings)
            .with_context(|| format!("cannot create the Kafka consumer of group `{group}`"))?;
        info!(group, topics = %topics.join(","), "Joining the consumer group.");
        Ok(Self::Group(Group {
            source,
            committer,
            processed: HashMap::new(),
            uncommitted: false,
            assigned: BTreeSet::new(),
            ever_assigned: false,
        }))
    }

    /// New records, possibly none (after waiting up to about [`POLL_INTERVAL`]).
    pub(crate) async fn next_batch(&mut self) -> Result<Vec<ConsumedRecord>> {
        match self {
            Self::Passes(passes) => passes.next_batch().await,
            Self::Group(group) => group.next_batch().await,
        }
    }

    /// Whether records can arrive yet: a group must have been given partitions first, which
    /// takes seconds; idle time counts only from then.
    pub(crate) fn is_ready(&self) -> bool {
        match self {
            Self::Passes(_) => true,
            Self::Group(group) => group.ever_assigned,
        }
    }

    /// `record` is done: its position may be committed.
    pub(crate) fn processed(&mut self, record: &ConsumedRecord) {
        if let Self::Group(group) = self {
            group.processed.insert(
                TopicPartition::new(Arc::clone(&record.topic), record.partition),
                record.offset + 1,
            );
            group.uncommitted = true;
        }
    }

    /// Commits what was processed (a group only). A failure is logged: the records will be
    /// read again by the group's next member, which at-least-once allows.
    pub(crate) async fn checkpoint(&mut self) {
        if let Self::Group(group) = self {
            group.commit().await;
        }
    }

    /// Leaves the group after committing what was processed.
    pub(crate) async fn close(self) {
        if let Self::Group(group) = self {
            group.close().await;
        }
    }
}

/// Group-less reading in passes.
#[derive(Debug)]
pub(crate) struct Passes {
    kafka: KafkaConfig,
    topics: Vec<String>,
    /// Per partition: the first offset not returned yet.
    next_offsets: HashMap<(Arc<str>, i32), i64>,
    found_nothing_last_time: bool,
}

impl Passes {
    async fn next_batch(&mut self) -> Result<Vec<ConsumedRecord>> {
        if self.found_nothing_last_time {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        let mut reads = JoinSet::new();
        for (index, topic) in self.topics.iter().enumerate() {
            let (kafka, topic) = (self.kafka.clone(), topic.clone());
            reads.spawn(async move {
                let records = read_topic(&kafka, &topic, ReadUntil::End, PASS_TIMEOUT).await;
                (index, topic, records)
            });
        }
        let mut by_topic = Vec::with_capacity(self.topics.len());
        while let Some(joined) = reads.join_next().await {
            let (index, topic, records) = joined.context("a topic reading task failed")?;
            let records = records.with_context(|| format!("cannot read topic `{topic}`"))?;
            by_topic.push((index, topic, records));
        }
        by_topic.sort_by_key(|(index, _, _)| *index);
        let mut batch = Vec::new();
        for (_, topic, records) in by_topic {
            let topic: Arc<str> = Arc::from(topic);
            for record in records {
                let next = self
                    .next_offsets
                    .entry((Arc::clone(&topic), record.partition))
                    .or_insert(0);
                if record.offset < *next {
                    continue;
                }
                *next = record.offset + 1;
                batch.push(ConsumedRecord {
                    topic: Arc::clone(&topic),
                    partition: record.partition,
                    offset: record.offset,
                    key: record.key,
                    payload: record.payload,
                    headers: record.headers,
                });
            }
        }
        debug!(new_records = batch.len(), "Read the topics to their end.");
        self.found_nothing_last_time = batch.is_empty();
        Ok(batch)
    }
}

/// Reading as a member of a consumer group.
#[derive(Debug)]
pub(crate) struct Group {
    source: KafkaRecordSource,
    committer: KafkaOffsetCommitter,
    /// Next offset to commit per partition, for records processed.
    processed: HashMap<TopicPartition, i64>,
    uncommitted: bool,
    assigned: BTreeSet<TopicPartition>,
    ever_assigned: bool,
}

impl Group {
    async fn next_batch(&mut self) -> Result<Vec<ConsumedRecord>> {
        let event = match tokio::time::timeout(POLL_INTERVAL, self.source.next_event()).await {
            Err(_) => return Ok(Vec::new()),
            Ok(event) => event.with_context(|| {
                format!("the consumer of group `{}` stopped", self.source.group_id())
            })?,
        };
        match event {
            SourceEvent::Records(records) => Ok(records
                .into_iter()
                .map(|record| ConsumedRecord {
                    topic: record.topic,
                    partition: record.partition,
                    offset: record.offset,
                    key: record.key,
                    payload: record.payload,
                    headers: Vec::new(),
                })
                .collect()),
            SourceEvent::Assigned(partitions) => {
                info!(partitions = partitions.len(), "Partitions assigned.");
                self.ever_assigned = true;
                self.assigned.extend(partitions);
                Ok(Vec::new())
            }
            SourceEvent::Revoked { partitions, reply } => {
                reply.commit(self.take_positions(&partitions));
                Ok(Vec::new())
            }
            SourceEvent::Lost(partitions) => {
                warn!(
                    partitions = partitions.len(),
                    "Partitions lost; their records may be read again by another member."
                );
                self.take_positions(&partitions);
                Ok(Vec::new())
            }
            // The consumer never rewinds.
            SourceEvent::Rewound(_) => Ok(Vec::new()),
        }
    }

    /// Forgets `partitions` and returns the positions processed in them.
    fn take_positions(&mut self, partitions: &[TopicPartition]) -> Vec<CommitPosition> {
        partitions
            .iter()
            .filter_map(|partition| {
                self.assigned.remove(partition);
                self.processed
                    .remove(partition)
                    .map(|offset| CommitPosition {
                        partition: partition.clone(),
                        offset,
                    })
            })
            .collect()
    }

    async fn commit(&mut self) {
        if !self.uncommitted {
            return;
        }
        let positions: Vec<CommitPosition> = self
            .processed
            .iter()
            .map(|(partition, offset)| CommitPosition {
                partition: partition.clone(),
                offset: *offset,
            })
            .collect();
        match self.committer.commit(positions).await {
            Ok(()) => self.uncommitted = false,
            Err(error) => warn!(%error, "Commit failed; the records will be read again."),
        }
    }

    /// Records fetched after the decision to stop are not processed, so the final revoke
    /// commits only what was.
    async fn close(mut self) {
        self.commit().await;
        self.source.begin_close();
        let drained = tokio::time::timeout(CLOSE_TIMEOUT, async {
            loop {
                match self.source.next_event().await {
                    Ok(SourceEvent::Revoked { partitions, reply }) => {
                        reply.commit(self.take_positions(&partitions));
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        })
        .await;
        if drained.is_err() {
            warn!("The consumer did not leave its group in time; exiting anyway.");
        }
    }
}

#[cfg(test)]
mod tests {
    use router_core::dead_letter_headers::{ERROR, REASON};

    use super::*;

    #[test]
    fn header_is_read_as_text() {
        let record = ConsumedRecord {
            topic: Arc::from("dlq"),
            partition: 0,
            offset: 0,
            key: None,
            payload: None,
            headers: vec![
                (REASON.to_owned(), b"undecodable".to_vec()),
                (REASON.to_owned(), b"second".to_vec()),
            ],
        };
        assert_eq!(record.header(REASON).as_deref(), Some("undecodable"));
        assert_eq!(record.header(ERROR), None);
    }
}

//! Plain values exchanged with the tracker.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A Kafka topic-partition.
///
/// The topic is an `Arc<str>` so that the many copies a consumer hands around (one per
/// commit position, one per error) share a single allocation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition number within the topic.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic-partition from anything that converts into a shared string.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }

    /// Equality that first compares the `Arc` pointers: callers usually pass the same `Arc`
    /// for every record of a partition, which makes the per-record lookup a pointer compare.
    pub(crate) fn is(&self, other: &TopicPartition) -> bool {
        self.partition == other.partition
            && (Arc::ptr_eq(&self.topic, &other.topic) || self.topic == other.topic)
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.topic, self.partition)
    }
}

/// When a commit is due: after `max_completions` completed records or `max_interval` since the
/// last commit, whichever comes first, and in either case only if some position advanced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitPolicy {
    /// Completed input records after which a commit is due. `0` makes a commit due as soon as
    /// any position advanced.
    pub max_completions: u64,
    /// Time since the last commit after which a commit is due (if a position advanced).
    pub max_interval: Duration,
}

impl Default for CommitPolicy {
    /// 5 000 completions or one second.
    fn default() -> Self {
        Self {
            max_completions: 5_000,
            max_interval: Duration::from_secs(1),
        }
    }
}

/// Handle for one tracked input record, returned by
/// [`OffsetTracker::track`](crate::OffsetTracker::track) and passed back with every
/// acknowledgement of one of its outputs.
///
/// It names the partition by its slot inside the tracker (so acknowledging hashes no string)
/// and by the generation of the partition's assignment, so that a ticket issued before a
/// partition was revoked or lost is recognised as stale even when the same partition has been
/// assigned again since.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticket {
    pub(crate) slot: u32,
    pub(crate) generation: u64,
    pub(crate) offset: i64,
}

impl Ticket {
    /// Offset of the tracked input record.
    pub fn offset(&self) -> i64 {
        self.offset
    }
}

/// What an acknowledgement (or failure, resolution, retry, added output) did to its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AckOutcome {
    /// The record still has outputs that are pending or failed.
    Pending,
    /// That was the record's last unresolved output: the record is complete.
    Completed,
    /// The record's partition was revoked or lost after the record was tracked; the call was
    /// ignored. Not an error: late delivery reports after a rebalance are normal.
    Stale,
}

/// A position to commit for one partition.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitPosition {
    /// The partition.
    pub partition: TopicPartition,
    /// Kafka semantics: the offset of the next record to read, i.e. every record below it is
    /// done.
    pub offset: i64,
}

impl fmt::Display for CommitPosition {
    /// `topic[partition]@offset`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.partition, self.offset)
    }
}

/// A set of positions to commit together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commit {
    /// One position per partition, ordered by partition.
    pub positions: Vec<CommitPosition>,
}

impl Commit {
    /// True when the commit has no position.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

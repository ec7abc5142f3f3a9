//! The capability traits the pipeline is written against, and the source's events.

use std::future::Future;
use std::time::Duration;

use tracing::warn;

use crate::error::AdapterError;
use crate::types::{CommitPosition, DeliveryTag, InboundRecord, OutboundRecord, SendRejected};
use crate::types::{TopicPartition, TopicSpec};

/// What a [`RecordSource`] yields.
#[derive(Debug)]
pub enum SourceEvent {
    /// A batch of records, in offset order per partition.
    Records(Vec<InboundRecord>),
    /// Partitions added to this member (with the cooperative protocol: only the new ones).
    Assigned(Vec<TopicPartition>),
    /// Partitions are about to move. Every record of them was delivered before this event.
    ///
    /// Drain them and answer with the positions to commit; the adapter commits those
    /// synchronously inside the rebalance callback, before the partitions move, waiting at most
    /// `revoke_timeout` for the answer. If the reply is dropped or comes too late nothing is
    /// committed (a warning is logged) and the next owner reprocesses from the last commit.
    Revoked {
        /// The partitions leaving this member.
        partitions: Vec<TopicPartition>,
        /// Where to send the positions to commit.
        reply: RevokeReply,
    },
    /// Partitions were taken away without a revoke (session timeout, fatal group error).
    /// Their uncommitted work can no longer be committed; forget it.
    Lost(Vec<TopicPartition>),
}

/// The answer to a [`SourceEvent::Revoked`].
#[derive(Debug)]
pub struct RevokeReply(ReplyTo);

#[derive(Debug)]
enum ReplyTo {
    /// The Kafka consumer thread waits on this inside the rebalance callback.
    Blocking(std::sync::mpsc::SyncSender<Vec<CommitPosition>>),
    /// A fake source, observed from async test code.
    Async(tokio::sync::oneshot::Sender<Vec<CommitPosition>>),
}

impl RevokeReply {
    pub(crate) fn blocking(sender: std::sync::mpsc::SyncSender<Vec<CommitPosition>>) -> Self {
        Self(ReplyTo::Blocking(sender))
    }

    pub(crate) fn in_memory(sender: tokio::sync::oneshot::Sender<Vec<CommitPosition>>) -> Self {
        Self(ReplyTo::Async(sender))
    }

    /// Commits `positions` before the partitions move (an empty list commits nothing).
    ///
    /// If the adapter stopped waiting (`revoke_timeout` passed) the positions are not
    /// committed; a warning says so.
    pub fn commit(self, positions: Vec<CommitPosition>) {
        let delivered = match self.0 {
            ReplyTo::Blocking(sender) => sender.try_send(positions).is_ok(),
            ReplyTo::Async(sender) => sender.send(positions).is_ok(),
        };
        if !delivered {
            warn!(
                "Revoke reply came after the consumer stopped waiting (revoke_timeout passed); \
                 those positions are not committed and the next owner starts from the last commit."
            );
        }
    }
}

/// Where consumed records come from.
pub trait RecordSource: Send {
    /// The next event; records of a partition are delivered before its `Revoked`/`Lost` event.
    ///
    /// An `Err` is terminal: the source has stopped (fatal consumer error, or
    /// [`AdapterError::ConsumerClosed`] after a close).
    ///
    /// Must be cancel-safe: the pipeline polls it in `tokio::select!` beside delivery reports and
    /// timers, and drops the future when another branch wins; dropping it must lose no event.
    fn next_event(&mut self) -> impl Future<Output = Result<SourceEvent, AdapterError>> + Send;
}

/// Commits consumed positions for the consumer group.
pub trait OffsetCommitter: Send + Sync + 'static {
    /// Commits positions; resolves when the broker confirmed (or failed).
    fn commit(
        &self,
        positions: Vec<CommitPosition>,
    ) -> impl Future<Output = Result<(), AdapterError>> + Send;
}

/// Where produced records go.
pub trait RecordSink: Send + Sync + 'static {
    /// Enqueues without blocking; the outcome arrives later as a
    /// [`DeliveryReport`](crate::DeliveryReport) on the channel given at construction.
    #[allow(
        clippy::result_large_err,
        reason = "the rejected record comes back by value so retrying needs no clone"
    )]
    fn send(&self, record: OutboundRecord, tag: DeliveryTag) -> Result<(), SendRejected>;

    /// Waits until every enqueued record has a delivery report or the timeout passes.
    fn flush(&self, timeout: Duration) -> impl Future<Output = Result<(), AdapterError>> + Send;
}

/// Topic management and group offsets.
pub trait TopicAdmin: Send + Sync {
    /// Creates topics; idempotent: a topic that already exists is fine (its settings are kept).
    fn create_topics(
        &self,
        topics: &[TopicSpec],
    ) -> impl Future<Output = Result<(), AdapterError>> + Send;

    /// The partition count of a topic, `None` when it does not exist.
    fn partitions_of(
        &self,
        topic: &str,
    ) -> impl Future<Output = Result<Option<i32>, AdapterError>> + Send;

    /// The committed position of `group_id` for every partition of `topic`
    /// (`None`: nothing committed), sorted by partition.
    fn committed_positions(
        &self,
        group_id: &str,
        topic: &str,
    ) -> impl Future<Output = Result<Vec<(i32, Option<i64>)>, AdapterError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_revoke_reply_is_not_delivered() {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        drop(receiver);
        // Must not panic or block: the consumer gave up waiting.
        RevokeReply::blocking(sender).commit(Vec::new());
    }
}

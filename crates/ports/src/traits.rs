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
    /// Answers [`RecordSource::rewind`]: the source now reads these partitions again from the
    /// positions asked for. Records of them delivered between the call and this event were
    /// read before the rewind: drop them.
    Rewound(Vec<TopicPartition>),
}

/// The answer to a [`SourceEvent::Revoked`].
#[derive(Debug)]
pub struct RevokeReply(ReplyTo);

#[derive(Debug)]
enum ReplyTo {
    /// The Kafka consumer thread waits on this inside the rebalance callback.
    Blocking(std::sync::mpsc::SyncSender<Vec<CommitPosition>>),
    /// Awaited from async code (a fake source, observed from test code).
    Async(tokio::sync::oneshot::Sender<Vec<CommitPosition>>),
}

impl RevokeReply {
    /// A reply a thread waits for with [`Receiver::recv_timeout`](std::sync::mpsc::Receiver::recv_timeout):
    /// what a Kafka consumer's rebalance callback uses, since it must commit before it returns.
    /// Give the channel room for one answer (`sync_channel(1)`) so replying never blocks; once
    /// the receiver is dropped (the wait timed out) a reply is only logged.
    pub fn blocking(sender: std::sync::mpsc::SyncSender<Vec<CommitPosition>>) -> Self {
        Self(ReplyTo::Blocking(sender))
    }

    /// A reply awaited from async code (the fake source hands these out).
    pub fn in_memory(sender: tokio::sync::oneshot::Sender<Vec<CommitPosition>>) -> Self {
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

    /// Reads the given partitions again from the given positions (exactly-once mode, after an
    /// aborted transaction). Asynchronous: a [`SourceEvent::Rewound`] with those partitions
    /// follows once the source reads from there; records of them that come before it are stale.
    /// Partitions no longer assigned are skipped. The default refuses: a source that cannot
    /// rewind cannot serve exactly-once.
    fn rewind(&mut self, positions: Vec<CommitPosition>) -> Result<(), AdapterError> {
        let _ = positions;
        Err(AdapterError::Task {
            operation: "rewinding the source",
            reason: "this source cannot rewind".to_owned(),
        })
    }

    /// Stops the source for good and returns once it has let go of its partitions (a consumer
    /// group member has left the group, so the others take its partitions at once instead of
    /// after the session timeout). Called after the final commit: events still arriving are
    /// dropped and a final revoke is answered with nothing. The default does nothing.
    fn release(self) -> impl Future<Output = ()> + Send
    where
        Self: Sized,
    {
        async {}
    }
}

/// Commits consumed positions for the consumer group.
///
/// A transactional committer (exactly-once mode) commits positions *with the producer's open
/// transaction*: `commit` sends them to the transaction and commits it, so the outputs written
/// since [`begin_transaction`](Self::begin_transaction) and the input positions become visible
/// to `read_committed` readers together, or not at all.
pub trait OffsetCommitter: Send + Sync + 'static {
    /// Commits positions; resolves when the broker confirmed (or failed). Transactional: sends
    /// them to the open transaction and commits it (an empty list commits the transaction
    /// without offsets).
    fn commit(
        &self,
        positions: Vec<CommitPosition>,
    ) -> impl Future<Output = Result<(), AdapterError>> + Send;

    /// Whether commits are transactions (exactly-once mode). `false` by default.
    fn is_transactional(&self) -> bool {
        false
    }

    /// Opens a transaction on the producer; outputs sent until the next `commit` or
    /// [`abort_transaction`](Self::abort_transaction) belong to it. Does nothing when not
    /// transactional. Local and cheap (no broker round trip).
    fn begin_transaction(&self) -> Result<(), AdapterError> {
        Ok(())
    }

    /// Aborts the open transaction: its outputs are never shown to `read_committed` readers,
    /// and every record still queued in the producer gets a failed delivery report. Does
    /// nothing when not transactional.
    fn abort_transaction(&self) -> impl Future<Output = Result<(), AdapterError>> + Send {
        async { Ok(()) }
    }
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

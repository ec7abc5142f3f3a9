//! An [`OffsetCommitter`] that remembers what was committed.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::lock;
use crate::error::AdapterError;
use crate::traits::OffsetCommitter;
use crate::types::{CommitPosition, TopicPartition};

use super::FakeSink;

/// An [`OffsetCommitter`] that records commits and can fail the next ones.
#[derive(Clone, Debug, Default)]
pub struct FakeCommitter {
    state: Arc<Mutex<CommitterState>>,
    changed: Arc<Notify>,
    /// The sink whose transactions commits go through (exactly-once mode).
    transactions: Option<FakeSink>,
}

#[derive(Debug, Default)]
struct CommitterState {
    commits: Vec<Vec<CommitPosition>>,
    failed: Vec<Vec<CommitPosition>>,
    committed: BTreeMap<TopicPartition, i64>,
    fail_next: VecDeque<bool>,
    /// The next transaction commit fails as fatal (a fenced producer).
    fenced: bool,
}

impl FakeCommitter {
    /// A committer that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// A transactional committer: `commit` commits `sink`'s open transaction with the
    /// positions, `begin_transaction` and `abort_transaction` drive `sink`'s transactions
    /// ([`FakeSink::committed_records`] is what a `read_committed` reader sees).
    pub fn transactional(sink: &FakeSink) -> Self {
        Self {
            transactions: Some(sink.clone()),
            ..Self::default()
        }
    }

    /// The next commits fail as a fenced producer's would (fatal).
    pub fn fence(&self) {
        lock(&self.state).fenced = true;
    }

    /// Fails the next `count` commit calls (each with an injected error).
    pub fn fail_next(&self, count: usize, retriable: bool) {
        lock(&self.state)
            .fail_next
            .extend(std::iter::repeat_n(retriable, count));
    }

    /// Successful commit calls, in order, each with the positions it carried.
    pub fn commits(&self) -> Vec<Vec<CommitPosition>> {
        lock(&self.state).commits.clone()
    }

    /// Commit calls that failed, in order.
    pub fn failed_commits(&self) -> Vec<Vec<CommitPosition>> {
        lock(&self.state).failed.clone()
    }

    /// The last committed position of `partition`.
    pub fn committed(&self, partition: &TopicPartition) -> Option<i64> {
        lock(&self.state).committed.get(partition).copied()
    }

    /// The last committed position of every partition.
    pub fn committed_all(&self) -> BTreeMap<TopicPartition, i64> {
        lock(&self.state).committed.clone()
    }

    /// Waits until `partition` has a committed position of at least `offset`; false on timeout.
    pub async fn wait_for(
        &self,
        partition: &TopicPartition,
        offset: i64,
        timeout: Duration,
    ) -> bool {
        let reached = async {
            loop {
                let changed = self.changed.notified();
                if self
                    .committed(partition)
                    .is_some_and(|committed| committed >= offset)
                {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, reached).await.is_ok()
    }
}

impl OffsetCommitter for FakeCommitter {
    fn commit(
        &self,
        positions: Vec<CommitPosition>,
    ) -> impl Future<Output = Result<(), AdapterError>> + Send {
        let outcome = {
            let mut state = lock(&self.state);
            if state.fenced && self.transactions.is_some() {
                return std::future::ready(Err(AdapterError::Transaction {
                    operation: "committing the transaction",
                    code: crate::KafkaErrorCode::FENCED,
                    reason: "injected: fenced".to_owned(),
                    fatal: true,
                    requires_abort: false,
                    retriable: false,
                }));
            }
            let failure = state.fail_next.pop_front();
            let committed = match (&self.transactions, failure) {
                (Some(sink), None) => sink.commit_transaction().err(),
                _ => None,
            };
            match failure
                .map(|retriable| AdapterError::Injected {
                    what: format!("commit of {} positions", positions.len()),
                    retriable,
                })
                .or(committed)
            {
                Some(error) => {
                    state.failed.push(positions);
                    Err(error)
                }
                None => {
                    for position in &positions {
                        state
                            .committed
                            .insert(position.partition.clone(), position.offset);
                    }
                    state.commits.push(positions);
                    Ok(())
                }
            }
        };
        self.changed.notify_waiters();
        std::future::ready(outcome)
    }

    fn is_transactional(&self) -> bool {
        self.transactions.is_some()
    }

    fn begin_transaction(&self) -> Result<(), AdapterError> {
        match &self.transactions {
            Some(sink) => sink.begin_transaction(),
            None => Ok(()),
        }
    }

    fn abort_transaction(&self) -> impl Future<Output = Result<(), AdapterError>> + Send {
        if let Some(sink) = &self.transactions {
            sink.abort_transaction();
        }
        std::future::ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: i32, offset: i64) -> CommitPosition {
        CommitPosition {
            partition: TopicPartition::new("in", partition),
            offset,
        }
    }

    #[tokio::test]
    async fn records_commits_and_the_latest_position_per_partition() {
        let committer = FakeCommitter::new();
        committer
            .commit(vec![at(0, 3), at(1, 1)])
            .await
            .expect("ok");
        committer.commit(vec![at(0, 5)]).await.expect("ok");
        assert_eq!(committer.commits().len(), 2);
        assert_eq!(committer.committed(&TopicPartition::new("in", 0)), Some(5));
        assert_eq!(committer.committed(&TopicPartition::new("in", 1)), Some(1));
    }

    #[tokio::test]
    async fn injected_failures_do_not_move_positions() {
        let committer = FakeCommitter::new();
        committer.fail_next(1, true);
        let error = committer
            .commit(vec![at(0, 3)])
            .await
            .expect_err("injected");
        assert!(error.is_retriable());
        assert_eq!(committer.committed(&TopicPartition::new("in", 0)), None);
        assert_eq!(committer.failed_commits(), vec![vec![at(0, 3)]]);
        committer
            .commit(vec![at(0, 3)])
            .await
            .expect("next one passes");
    }

    #[tokio::test]
    async fn wait_for_resolves_when_the_position_is_reached() {
        let committer = FakeCommitter::new();
        let tp = TopicPartition::new("in", 0);
        assert!(!committer.wait_for(&tp, 1, Duration::from_millis(10)).await);
        let background = committer.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            background.commit(vec![at(0, 2)]).await
        });
        assert!(committer.wait_for(&tp, 2, Duration::from_secs(5)).await);
    }
}

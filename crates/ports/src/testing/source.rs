//! A scripted [`RecordSource`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, oneshot};

use super::lock;
use crate::error::AdapterError;
use crate::traits::{RecordSource, RevokeReply, SourceEvent};
use crate::types::{CommitPosition, InboundRecord, TopicPartition};

/// The group id [`FakeSource`] reports in [`AdapterError::ConsumerClosed`].
const FAKE_GROUP: &str = "fake-group";

/// A [`RecordSource`] that yields the events a test pushes, in order.
///
/// When the script is empty, `next_event` waits for the next push; after
/// [`close`](Self::close) and once the script is drained it returns
/// [`AdapterError::ConsumerClosed`].
#[derive(Clone, Debug, Default)]
pub struct FakeSource {
    state: Arc<Mutex<SourceState>>,
    changed: Arc<Notify>,
}

#[derive(Debug, Default)]
struct SourceState {
    script: VecDeque<Result<SourceEvent, AdapterError>>,
    closed: bool,
    taken: usize,
    rewinds: Vec<Vec<CommitPosition>>,
}

impl FakeSource {
    /// An empty, open source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an event.
    pub fn push(&self, event: SourceEvent) {
        self.push_result(Ok(event));
    }

    /// Appends a batch of records.
    pub fn push_records(&self, records: Vec<InboundRecord>) {
        self.push(SourceEvent::Records(records));
    }

    /// Appends an assignment.
    pub fn push_assigned(&self, partitions: Vec<TopicPartition>) {
        self.push(SourceEvent::Assigned(partitions));
    }

    /// Appends a loss.
    pub fn push_lost(&self, partitions: Vec<TopicPartition>) {
        self.push(SourceEvent::Lost(partitions));
    }

    /// Appends a revoke; the returned handle receives the positions the code under test answers.
    pub fn push_revoke(&self, partitions: Vec<TopicPartition>) -> PendingRevoke {
        let (sender, receiver) = oneshot::channel();
        self.push(SourceEvent::Revoked {
            partitions,
            reply: RevokeReply::in_memory(sender),
        });
        PendingRevoke { receiver }
    }

    /// Appends an error (the real source's errors are terminal; the fake does not enforce it).
    pub fn push_error(&self, error: AdapterError) {
        self.push_result(Err(error));
    }

    /// Ends the script: once the pushed events are taken, `next_event` fails with
    /// [`AdapterError::ConsumerClosed`].
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.changed.notify_waiters();
    }

    /// Every [`rewind`](RecordSource::rewind) asked of this source, in order. A rewind drops
    /// the scripted records of its partitions not yet taken and appends a
    /// [`SourceEvent::Rewound`]; the test pushes the records again from the positions.
    pub fn rewinds(&self) -> Vec<Vec<CommitPosition>> {
        lock(&self.state).rewinds.clone()
    }

    /// Events pushed but not yet taken.
    pub fn pending(&self) -> usize {
        lock(&self.state).script.len()
    }

    /// Events taken so far.
    pub fn taken(&self) -> usize {
        lock(&self.state).taken
    }

    /// Waits until every pushed event has been taken.
    pub async fn wait_drained(&self) {
        loop {
            let changed = self.changed.notified();
            if self.pending() == 0 {
                return;
            }
            changed.await;
        }
    }

    fn push_result(&self, event: Result<SourceEvent, AdapterError>) {
        lock(&self.state).script.push_back(event);
        self.changed.notify_waiters();
    }

    fn take(&self) -> Option<Result<SourceEvent, AdapterError>> {
        let mut state = lock(&self.state);
        if let Some(event) = state.script.pop_front() {
            state.taken += 1;
            return Some(event);
        }
        state.closed.then(|| {
            Err(AdapterError::ConsumerClosed {
                group_id: FAKE_GROUP.to_owned(),
            })
        })
    }
}

impl RecordSource for FakeSource {
    async fn next_event(&mut self) -> Result<SourceEvent, AdapterError> {
        loop {
            // Registered before looking, so a push between the look and the wait wakes us.
            let changed = self.changed.notified();
            if let Some(event) = self.take() {
                self.changed.notify_waiters();
                return event;
            }
            changed.await;
        }
    }

    fn rewind(&mut self, positions: Vec<CommitPosition>) -> Result<(), AdapterError> {
        let partitions: Vec<TopicPartition> = positions
            .iter()
            .map(|position| position.partition.clone())
            .collect();
        {
            let mut state = lock(&self.state);
            for event in &mut state.script {
                if let Ok(SourceEvent::Records(records)) = event {
                    records.retain(|record| {
                        !partitions
                            .iter()
                            .any(|tp| tp.partition == record.partition && tp.topic == record.topic)
                    });
                }
            }
            state.rewinds.push(positions);
            state.script.push_back(Ok(SourceEvent::Rewound(partitions)));
        }
        self.changed.notify_waiters();
        Ok(())
    }
}

/// The answer to a revoke pushed into a [`FakeSource`].
#[derive(Debug)]
pub struct PendingRevoke {
    receiver: oneshot::Receiver<Vec<CommitPosition>>,
}

impl PendingRevoke {
    /// The positions answered, or `None` when the reply was dropped unanswered.
    pub async fn answer(self) -> Option<Vec<CommitPosition>> {
        self.receiver.await.ok()
    }

    /// The answer if it already came: `Ok(Some(..))` answered, `Ok(None)` dropped unanswered,
    /// `Err(self)` not yet.
    pub fn try_answer(mut self) -> Result<Option<Vec<CommitPosition>>, Self> {
        match self.receiver.try_recv() {
            Ok(positions) => Ok(Some(positions)),
            Err(oneshot::error::TryRecvError::Closed) => Ok(None),
            Err(oneshot::error::TryRecvError::Empty) => Err(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::inbound_record;

    #[tokio::test]
    async fn yields_pushed_events_in_order_then_closed() {
        let mut source = FakeSource::new();
        let tp = TopicPartition::new("in", 0);
        source.push_assigned(vec![tp.clone()]);
        source.push_records(vec![inbound_record("in", 0, 0, b"a")]);
        source.close();

        assert!(matches!(
            source.next_event().await,
            Ok(SourceEvent::Assigned(partitions)) if partitions == vec![tp.clone()]
        ));
        assert!(matches!(
            source.next_event().await,
            Ok(SourceEvent::Records(records)) if records.len() == 1
        ));
        assert!(matches!(
            source.next_event().await,
            Err(AdapterError::ConsumerClosed { .. })
        ));
        assert_eq!(source.taken(), 2);
    }

    #[tokio::test]
    async fn waits_for_events_pushed_later() {
        let mut source = FakeSource::new();
        let script = source.clone();
        let reader = tokio::spawn(async move { source.next_event().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!reader.is_finished(), "an empty open source must wait");
        script.push_lost(vec![TopicPartition::new("in", 1)]);
        let event = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("woken by the push")
            .expect("task ran");
        assert!(matches!(event, Ok(SourceEvent::Lost(_))));
        script.wait_drained().await;
    }

    #[tokio::test]
    async fn revoke_answer_reaches_the_test() {
        let mut source = FakeSource::new();
        let tp = TopicPartition::new("in", 0);
        let pending = source.push_revoke(vec![tp.clone()]);
        let pending = pending.try_answer().expect_err("not answered yet");
        let Ok(SourceEvent::Revoked { partitions, reply }) = source.next_event().await else {
            panic!("expected a revoke");
        };
        assert_eq!(partitions, vec![tp.clone()]);
        let position = CommitPosition {
            partition: tp,
            offset: 5,
        };
        reply.commit(vec![position.clone()]);
        assert_eq!(pending.answer().await, Some(vec![position]));
    }

    #[tokio::test]
    async fn dropped_revoke_reply_reads_as_none() {
        let mut source = FakeSource::new();
        let pending = source.push_revoke(vec![TopicPartition::new("in", 0)]);
        drop(source.next_event().await);
        assert_eq!(pending.answer().await, None);
    }
}

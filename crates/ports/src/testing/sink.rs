//! A [`RecordSink`] whose deliveries the test controls.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

use super::lock;
use crate::code::{KafkaErrorCode, is_retriable_code};
use crate::error::AdapterError;
use crate::traits::RecordSink;
use crate::types::SendRejected;
use crate::types::{Delivered, DeliveryFailure, DeliveryReport, DeliveryTag, OutboundRecord};

/// When the records a [`FakeSink`] accepts get their delivery report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Completion {
    /// Reported as delivered inside `send` (unless a failure rule applies).
    #[default]
    AckImmediately,
    /// Held until [`FakeSink::ack`], [`FakeSink::fail`] or [`FakeSink::ack_all`].
    Hold,
}

/// A record a [`FakeSink`] accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentRecord {
    /// The tag it was sent with.
    pub tag: DeliveryTag,
    /// The record.
    pub record: OutboundRecord,
}

type FailureRule = Box<dyn Fn(&OutboundRecord) -> bool + Send + Sync>;

/// How a failing delivery is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// [`AdapterError::Injected`], retriable or not.
    Injected(bool),
    /// [`AdapterError::Delivery`] with this code, retriable as the real producer says.
    Code(KafkaErrorCode),
}

/// A [`RecordSink`] that reports deliveries on the channel given to [`FakeSink::new`], as the
/// real producer does. Delivered records land on partition 0 at consecutive offsets per topic.
#[derive(Clone)]
pub struct FakeSink {
    state: Arc<Mutex<SinkState>>,
    reports: UnboundedSender<DeliveryReport>,
    changed: Arc<Notify>,
}

#[derive(Default)]
struct SinkState {
    completion: Completion,
    sent: Vec<SentRecord>,
    held: Vec<SentRecord>,
    next_offsets: HashMap<Arc<str>, i64>,
    queue_full_next: usize,
    fail_next: VecDeque<Failure>,
    rules: Vec<(FailureRule, Failure)>,
    transaction: Transaction,
}

/// The sink's transactions, driven by a [`FakeCommitter`](super::FakeCommitter) made
/// [`transactional`](super::FakeCommitter::transactional).
#[derive(Default)]
struct Transaction {
    open: bool,
    /// Records delivered in the open transaction.
    delivered: Vec<SentRecord>,
    /// Records of committed transactions: what a `read_committed` reader sees.
    committed: Vec<SentRecord>,
    /// Records of aborted transactions.
    aborted: Vec<SentRecord>,
    commits: usize,
    aborts: usize,
}

impl std::fmt::Debug for FakeSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("FakeSink")
            .field("completion", &state.completion)
            .field("sent", &state.sent.len())
            .field("held", &state.held.len())
            .field("failure_rules", &state.rules.len())
            .finish()
    }
}

impl FakeSink {
    /// A sink that acknowledges every record at once.
    pub fn new(reports: UnboundedSender<DeliveryReport>) -> Self {
        Self {
            state: Arc::default(),
            reports,
            changed: Arc::default(),
        }
    }

    /// A sink that holds every record until the test completes it.
    pub fn holding(reports: UnboundedSender<DeliveryReport>) -> Self {
        let sink = Self::new(reports);
        sink.set_completion(Completion::Hold);
        sink
    }

    /// Changes when later records complete (records already held stay held).
    pub fn set_completion(&self, completion: Completion) {
        lock(&self.state).completion = completion;
    }

    /// Rejects the next `count` sends with `queue_full: true`, giving the record back.
    pub fn reject_next_with_queue_full(&self, count: usize) {
        lock(&self.state).queue_full_next += count;
    }

    /// Fails the delivery of the next `count` accepted records (at once, even when holding).
    pub fn fail_next(&self, count: usize, retriable: bool) {
        lock(&self.state)
            .fail_next
            .extend(std::iter::repeat_n(Failure::Injected(retriable), count));
    }

    /// Fails the delivery of every later record matching `rule`, until
    /// [`clear_failure_rules`](Self::clear_failure_rules).
    pub fn fail_records_where(
        &self,
        rule: impl Fn(&OutboundRecord) -> bool + Send + Sync + 'static,
        retriable: bool,
    ) {
        lock(&self.state)
            .rules
            .push((Box::new(rule), Failure::Injected(retriable)));
    }

    /// Fails the delivery of every later record matching `rule` as the real producer would
    /// with `code` ([`AdapterError::Delivery`], retriable as
    /// [`is_retriable_code`](crate::is_retriable_code) says), until
    /// [`clear_failure_rules`](Self::clear_failure_rules).
    pub fn fail_records_with_code(
        &self,
        rule: impl Fn(&OutboundRecord) -> bool + Send + Sync + 'static,
        code: KafkaErrorCode,
    ) {
        lock(&self.state)
            .rules
            .push((Box::new(rule), Failure::Code(code)));
    }

    /// Removes the rules added by [`fail_records_where`](Self::fail_records_where).
    pub fn clear_failure_rules(&self) {
        lock(&self.state).rules.clear();
    }

    /// Records of committed transactions, in delivery order: what a `read_committed` reader of
    /// the output topics sees. Empty unless a transactional committer drives this sink.
    pub fn committed_records(&self) -> Vec<SentRecord> {
        lock(&self.state).transaction.committed.clone()
    }

    /// Records delivered in transactions that were aborted.
    pub fn aborted_records(&self) -> Vec<SentRecord> {
        lock(&self.state).transaction.aborted.clone()
    }

    /// Transactions committed and aborted so far.
    pub fn transactions(&self) -> (usize, usize) {
        let state = lock(&self.state);
        (state.transaction.commits, state.transaction.aborts)
    }

    /// Whether a transaction is open.
    pub fn transaction_open(&self) -> bool {
        lock(&self.state).transaction.open
    }

    pub(crate) fn begin_transaction(&self) -> Result<(), AdapterError> {
        let mut state = lock(&self.state);
        if state.transaction.open {
            return Err(AdapterError::Injected {
                what: "begin_transaction with a transaction open".to_owned(),
                retriable: false,
            });
        }
        state.transaction.open = true;
        Ok(())
    }

    /// Commits the open transaction; fails (to be aborted) when records are still held, as
    /// the real producer's commit fails when a delivery fails.
    pub(crate) fn commit_transaction(&self) -> Result<(), AdapterError> {
        let mut state = lock(&self.state);
        if !state.held.is_empty() {
            return Err(AdapterError::Injected {
                what: format!("commit_transaction with {} records held", state.held.len()),
                retriable: false,
            });
        }
        let transaction = &mut state.transaction;
        transaction.open = false;
        transaction.commits += 1;
        let delivered = std::mem::take(&mut transaction.delivered);
        transaction.committed.extend(delivered);
        Ok(())
    }

    /// Aborts the open transaction: held records fail (retriable, as librdkafka's purge
    /// reports them), delivered ones are discarded.
    pub(crate) fn abort_transaction(&self) {
        let reports = {
            let mut state = lock(&self.state);
            let held = std::mem::take(&mut state.held);
            let reports: Vec<DeliveryReport> = held
                .into_iter()
                .map(|sent| state.report(sent, Some(Failure::Injected(true))))
                .collect();
            let transaction = &mut state.transaction;
            transaction.open = false;
            transaction.aborts += 1;
            let delivered = std::mem::take(&mut transaction.delivered);
            transaction.aborted.extend(delivered);
            reports
        };
        for report in reports {
            self.publish(report);
        }
    }

    /// Every accepted record, in send order (failed ones included).
    pub fn sent(&self) -> Vec<SentRecord> {
        lock(&self.state).sent.clone()
    }

    /// Tags of held records, in send order.
    pub fn held_tags(&self) -> Vec<DeliveryTag> {
        lock(&self.state).held.iter().map(|held| held.tag).collect()
    }

    /// Delivers the held record with `tag`; false when no such record is held.
    pub fn ack(&self, tag: DeliveryTag) -> bool {
        self.complete(tag, None)
    }

    /// Fails the held record with `tag`; false when no such record is held.
    pub fn fail(&self, tag: DeliveryTag, retriable: bool) -> bool {
        self.complete(tag, Some(Failure::Injected(retriable)))
    }

    /// Delivers every held record in send order; returns how many.
    pub fn ack_all(&self) -> usize {
        let tags = self.held_tags();
        tags.into_iter().filter(|tag| self.ack(*tag)).count()
    }

    fn complete(&self, tag: DeliveryTag, failure: Option<Failure>) -> bool {
        let report = {
            let mut state = lock(&self.state);
            let Some(index) = state.held.iter().position(|held| held.tag == tag) else {
                return false;
            };
            let held = state.held.remove(index);
            state.report(held, failure)
        };
        self.publish(report);
        true
    }

    fn publish(&self, report: DeliveryReport) {
        // A test that dropped its receiver does not care about reports.
        let _ = self.reports.send(report);
        self.changed.notify_waiters();
    }
}

impl SinkState {
    fn report(&mut self, sent: SentRecord, failure: Option<Failure>) -> DeliveryReport {
        let SentRecord { tag, record } = sent;
        let result = match failure {
            None => {
                let next = self
                    .next_offsets
                    .entry(Arc::clone(&record.topic))
                    .or_insert(0);
                let offset = *next;
                *next += 1;
                if self.transaction.open {
                    self.transaction.delivered.push(SentRecord {
                        tag,
                        record: record.clone(),
                    });
                }
                Ok(Delivered {
                    partition: 0,
                    offset,
                })
            }
            Some(Failure::Injected(retriable)) => Err(DeliveryFailure {
                error: AdapterError::Injected {
                    what: format!("delivery of tag {tag} to topic `{}`", record.topic),
                    retriable,
                },
                record,
                retriable,
            }),
            Some(Failure::Code(code)) => Err(DeliveryFailure {
                error: AdapterError::Delivery {
                    topic: Arc::clone(&record.topic),
                    partition: None,
                    code,
                },
                record,
                retriable: is_retriable_code(code),
            }),
        };
        DeliveryReport { tag, result }
    }

    fn failure_for(&mut self, record: &OutboundRecord) -> Option<Failure> {
        if let Some(failure) = self.fail_next.pop_front() {
            return Some(failure);
        }
        self.rules
            .iter()
            .find(|(rule, _)| rule(record))
            .map(|(_, failure)| *failure)
    }
}

impl RecordSink for FakeSink {
    fn send(&self, record: OutboundRecord, tag: DeliveryTag) -> Result<(), SendRejected> {
        let report = {
            let mut state = lock(&self.state);
            if state.queue_full_next > 0 {
                state.queue_full_next -= 1;
                return Err(SendRejected {
                    error: AdapterError::Enqueue {
                        topic: Arc::clone(&record.topic),
                        code: KafkaErrorCode::QUEUE_FULL,
                    },
                    record,
                    tag,
                    queue_full: true,
                });
            }
            let sent = SentRecord { tag, record };
            state.sent.push(sent.clone());
            match (state.failure_for(&sent.record), state.completion) {
                (Some(failure), _) => state.report(sent, Some(failure)),
                (None, Completion::AckImmediately) => state.report(sent, None),
                (None, Completion::Hold) => {
                    state.held.push(sent);
                    return Ok(());
                }
            }
        };
        self.publish(report);
        Ok(())
    }

    async fn flush(&self, timeout: Duration) -> Result<(), AdapterError> {
        let drained = async {
            loop {
                let changed = self.changed.notified();
                if lock(&self.state).held.is_empty() {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, drained)
            .await
            .map_err(|_| AdapterError::FlushTimeout {
                timeout,
                pending: lock(&self.state).held.len(),
            })
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;

    fn record(topic: &str, payload: &[u8]) -> OutboundRecord {
        OutboundRecord {
            topic: Arc::from(topic),
            key: None,
            payload: payload.to_vec(),
            headers: vec![("h".to_owned(), b"v".to_vec())],
        }
    }

    #[tokio::test]
    async fn acknowledges_at_consecutive_offsets_per_topic() {
        let (reports, mut received) = mpsc::unbounded_channel();
        let sink = FakeSink::new(reports);
        sink.send(record("a", b"1"), 10).expect("accepted");
        sink.send(record("a", b"2"), 11).expect("accepted");
        sink.send(record("b", b"3"), 12).expect("accepted");
        let offsets: Vec<(usize, i64)> = (0..3)
            .map(|_| {
                let report = received.try_recv().expect("reported");
                (report.tag, report.result.expect("delivered").offset)
            })
            .collect();
        assert_eq!(offsets, vec![(10, 0), (11, 1), (12, 0)]);
        assert_eq!(sink.sent().len(), 3);
    }

    #[tokio::test]
    async fn held_records_complete_in_the_order_the_test_chooses() {
        let (reports, mut received) = mpsc::unbounded_channel();
        let sink = FakeSink::holding(reports);
        sink.send(record("a", b"1"), 1).expect("accepted");
        sink.send(record("a", b"2"), 2).expect("accepted");
        assert!(received.try_recv().is_err(), "nothing reported while held");
        assert_eq!(sink.held_tags(), vec![1, 2]);

        assert!(sink.fail(2, true));
        assert!(sink.ack(1));
        assert!(!sink.ack(1), "already completed");

        let first = received.try_recv().expect("reported");
        assert_eq!(first.tag, 2);
        let failure = first.result.expect_err("failed");
        assert!(failure.retriable);
        assert_eq!(failure.record, record("a", b"2"), "the record comes back");
        assert_eq!(received.try_recv().expect("reported").tag, 1);
    }

    #[tokio::test]
    async fn queue_full_gives_the_record_back_without_accepting_it() {
        let (reports, _received) = mpsc::unbounded_channel();
        let sink = FakeSink::new(reports);
        sink.reject_next_with_queue_full(1);
        let rejected = sink.send(record("a", b"1"), 7).expect_err("rejected");
        assert!(rejected.queue_full);
        assert_eq!(rejected.tag, 7);
        assert_eq!(rejected.record, record("a", b"1"));
        assert!(rejected.error.is_retriable());
        assert!(sink.sent().is_empty());
        sink.send(record("a", b"1"), 7)
            .expect("accepted the second time");
    }

    #[tokio::test]
    async fn failure_rules_and_fail_next_pick_the_failing_records() {
        let (reports, mut received) = mpsc::unbounded_channel();
        let sink = FakeSink::new(reports);
        sink.fail_next(1, false);
        sink.fail_records_where(|record| &*record.topic == "poison", false);
        sink.send(record("a", b"1"), 1).expect("accepted");
        sink.send(record("a", b"2"), 2).expect("accepted");
        sink.send(record("poison", b"3"), 3).expect("accepted");
        let outcomes: Vec<(usize, bool)> = (0..3)
            .map(|_| {
                let report = received.try_recv().expect("reported");
                (report.tag, report.result.is_ok())
            })
            .collect();
        assert_eq!(outcomes, vec![(1, false), (2, true), (3, false)]);
        sink.clear_failure_rules();
        sink.send(record("poison", b"4"), 4).expect("accepted");
        assert!(received.try_recv().expect("reported").result.is_ok());
    }

    #[tokio::test]
    async fn failures_with_a_code_look_like_the_real_producers() {
        let (reports, mut received) = mpsc::unbounded_channel();
        let sink = FakeSink::new(reports);
        sink.fail_records_with_code(
            |record| &*record.topic == "big",
            KafkaErrorCode::MESSAGE_SIZE_TOO_LARGE,
        );
        sink.send(record("big", b"1"), 1).expect("accepted");
        let failure = received
            .try_recv()
            .expect("reported")
            .result
            .expect_err("failed");
        assert!(!failure.retriable);
        assert!(failure.error.refuses_record());
        assert!(failure.error.is_record_too_large());
    }

    #[tokio::test]
    async fn flush_waits_for_held_records_or_times_out() {
        let (reports, _received) = mpsc::unbounded_channel();
        let sink = FakeSink::holding(reports);
        sink.send(record("a", b"1"), 1).expect("accepted");
        let error = sink
            .flush(Duration::from_millis(20))
            .await
            .expect_err("still held");
        assert!(matches!(
            error,
            AdapterError::FlushTimeout { pending: 1, .. }
        ));

        let acker = sink.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            acker.ack_all();
        });
        sink.flush(Duration::from_secs(5)).await.expect("flushed");
    }
}

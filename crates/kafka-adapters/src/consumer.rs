//! The group consumer: a `BaseConsumer` polled on its own thread, feeding a bounded channel.
//!
//! Ordering guarantee: the consumer thread is the only thread that polls, and librdkafka runs
//! rebalance callbacks inside `poll`. Records are batched in the consumer context; the revoke
//! callback first flushes the pending batch into the channel, then sends `Revoked` through the
//! same channel, so the pipeline sees every record of a partition before its `Revoked`/`Lost`.
//! The callback then blocks (at most `revoke_timeout` after `Revoked` entered the channel) for
//! the reply and commits it synchronously with the callback's consumer handle, before
//! librdkafka hands the partitions to another member. Limits: a reply that comes late or never
//! commits nothing (the next owner reprocesses from the last commit: at-least-once, never
//! at-most-once); while the channel is full the consumer thread neither polls nor serves
//! rebalances, so a pipeline slower than `max.poll.interval.ms` gets evicted from the group.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::config::{CONSUMER_DEFAULTS, ConsumerSettings, KafkaConfig};
use crate::config::{log_client_error, log_librdkafka};
use ports::{AdapterError, KafkaErrorCode, is_access_refusal_code};

use crate::error::{code_of, kafka_code, kafka_code_of, transaction_error};
use crate::producer::SinkCtx;
use crate::util::copy_headers;
use crate::util::run_blocking;
use ports::{CommitPosition, InboundRecord, TopicPartition};
use ports::{OffsetCommitter, RecordSource, RevokeReply, SourceEvent};

/// How long the consumer thread waits in `poll` when it has nothing to hand over; also how
/// quickly it notices that the source was dropped or closed.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Longest wait for librdkafka to carry out a seek after an aborted transaction.
const SEEK_TIMEOUT: Duration = Duration::from_secs(10);

type EventSender = mpsc::Sender<Result<SourceEvent, AdapterError>>;

/// Bounds on what librdkafka prefetches ahead of the pipeline, on top of [`CONSUMER_DEFAULTS`].
///
/// librdkafka's own defaults queue up to 100 000 messages per partition or 64 MiB, fetched in
/// responses of up to 50 MiB: draining a backlog of small, well-compressed records, that queue
/// was most of the processor's memory, while the pipeline never holds more than its in-flight
/// bound anyway. With a small queue librdkafka often finds it full; its default 1 s pause before
/// fetching again then capped throughput, hence the 10 ms backoff (docs/BENCHMARKS.md has the
/// figures of both).
const PREFETCH_DEFAULTS: &[(&str, &str)] = &[
    ("queued.min.messages", "10000"),
    ("queued.max.messages.kbytes", "4096"),
    ("fetch.max.bytes", "1048576"),
    ("fetch.queue.backoff.ms", "10"),
];

/// Creates a group consumer subscribed to `settings.topics`, and its committer.
///
/// The properties of `config` override the defaults (`enable.auto.commit=false`,
/// `enable.auto.offset.store=false`, `auto.offset.reset=earliest`,
/// `partition.assignment.strategy=cooperative-sticky`, and the bounded prefetch of
/// `PREFETCH_DEFAULTS`); `group.id` always comes from `settings`.
pub fn kafka_consumer(
    config: &KafkaConfig,
    settings: ConsumerSettings,
) -> Result<(KafkaRecordSource, KafkaOffsetCommitter), AdapterError> {
    let group_id: Arc<str> = Arc::from(settings.group_id.as_str());
    let (events, receiver) = mpsc::channel(settings.channel_capacity.max(1));
    let membership = Arc::new(AtomicU64::new(0));
    let context = ConsumerCtx {
        group_id: Arc::clone(&group_id),
        membership: Arc::clone(&membership),
        events,
        pending: Mutex::new(Vec::new()),
        batch_max: settings.batch_max.max(1),
        revoke_timeout: settings.revoke_timeout,
    };
    let mut client_config = config.client_config(&consumer_defaults());
    client_config.set("group.id", &settings.group_id);
    let consumer: BaseConsumer<ConsumerCtx> =
        client_config
            .create_with_context(context)
            .map_err(|source| AdapterError::ClientCreation {
                client: "consumer",
                bootstrap_servers: config.bootstrap_servers.clone(),
                code: kafka_code_of(&source),
                source: Box::new(source),
            })?;
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|source| AdapterError::Subscribe {
            group_id: settings.group_id.clone(),
            topics: settings.topics.clone(),
            code: kafka_code_of(&source),
            source: Box::new(source),
        })?;

    let consumer = Arc::new(consumer);
    let committer = KafkaOffsetCommitter {
        consumer: Arc::downgrade(&consumer),
        group_id: Arc::clone(&group_id),
        transactions: None,
        membership,
        transaction_membership: Arc::new(AtomicU64::new(0)),
    };
    let close_requested = Arc::new(AtomicBool::new(false));
    let thread_close = Arc::clone(&close_requested);
    let rewinds = Arc::new(Mutex::new(Vec::new()));
    let thread_rewinds = Arc::clone(&rewinds);
    std::thread::Builder::new()
        .name("kafka-consumer".to_owned())
        .spawn(move || consumer_thread(consumer, &thread_close, &thread_rewinds))
        .map_err(|error| AdapterError::Task {
            operation: "starting the consumer thread",
            reason: error.to_string(),
        })?;
    info!(
        group_id = %group_id,
        topics = ?settings.topics,
        "Kafka consumer subscribed."
    );
    let source = KafkaRecordSource {
        events: receiver,
        close_requested,
        rewinds,
        group_id,
    };
    Ok((source, committer))
}

/// The [`RecordSource`] of a Kafka consumer group.
///
/// Dropping it makes the consumer leave the group in the background without committing
/// anything more; a [`Revoked`](SourceEvent::Revoked) pending at that moment is answered with
/// nothing. For a graceful stop that commits inside the final revoke, call
/// [`begin_close`](Self::begin_close) and keep reading events until the `Err`.
#[derive(Debug)]
pub struct KafkaRecordSource {
    events: mpsc::Receiver<Result<SourceEvent, AdapterError>>,
    close_requested: Arc<AtomicBool>,
    /// Rewinds asked for and not yet done by the consumer thread.
    rewinds: Arc<Mutex<Vec<Vec<CommitPosition>>>>,
    group_id: Arc<str>,
}

impl KafkaRecordSource {
    /// Asks the consumer to leave its group: the source then yields the records already
    /// fetched, one final `Revoked` for everything still assigned (its reply is committed as
    /// usual), and then [`AdapterError::ConsumerClosed`].
    pub fn begin_close(&self) {
        self.close_requested.store(true, Ordering::Relaxed);
    }

    /// The consumer group.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }
}

impl RecordSource for KafkaRecordSource {
    /// Asks the consumer to leave, then reads until the consumer thread ended: it closes the
    /// consumer (LeaveGroup) before it drops the channel, so a process that exits right after
    /// this has left its group.
    async fn release(mut self) {
        self.begin_close();
        while self.events.recv().await.is_some() {}
    }

    async fn next_event(&mut self) -> Result<SourceEvent, AdapterError> {
        match self.events.recv().await {
            Some(event) => event,
            None => Err(AdapterError::ConsumerClosed {
                group_id: self.group_id.to_string(),
            }),
        }
    }

    /// The consumer thread drops the records of these partitions it holds, seeks them (those
    /// still assigned) and then sends [`SourceEvent::Rewound`]. A seek that fails ends the
    /// source with an error: reading on from where it was would skip records.
    fn rewind(&mut self, positions: Vec<CommitPosition>) -> Result<(), AdapterError> {
        if self.events.is_closed() {
            return Err(AdapterError::ConsumerClosed {
                group_id: self.group_id.to_string(),
            });
        }
        self.rewinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(positions);
        Ok(())
    }
}

/// Commits through the consumer of a [`KafkaRecordSource`].
///
/// Each commit is a `CommitMode::Sync` commit run with `spawn_blocking`, so it resolves when
/// the broker answered, independently of the consumer thread (which may be blocked on a full
/// channel). It holds the consumer weakly: once the source has closed, commits fail with
/// [`AdapterError::ConsumerClosed`].
///
/// Made [`transactional`](Self::transactional) (exactly-once mode), a commit sends the
/// positions to the producer's open transaction with the consumer's current group metadata
/// (KIP-447: the broker refuses them from a member fenced by a rebalance) and commits it.
///
/// The broker checks the generation of the metadata *sent*, which is the consumer's current
/// one: a member that lost its partitions (a session timeout) and rejoined before the commit
/// would pass that check with a transaction of records read in the old generation, while the
/// new assignment reads them again from the last commit. So a transaction whose group
/// membership changed (partitions lost or assigned) since it began is refused here with an
/// abortable error instead: the pipeline aborts and reads again.
#[derive(Clone)]
pub struct KafkaOffsetCommitter {
    consumer: Weak<BaseConsumer<ConsumerCtx>>,
    group_id: Arc<str>,
    transactions: Option<Transactions>,
    /// Bumped by the consumer thread whenever partitions are lost or assigned.
    membership: Arc<AtomicU64>,
    /// `membership` when the open transaction began.
    transaction_membership: Arc<AtomicU64>,
}

/// The transactional producer whose transactions carry the commits.
#[derive(Clone)]
struct Transactions {
    producer: Arc<ThreadedProducer<SinkCtx>>,
    timeout: Duration,
}

impl KafkaOffsetCommitter {
    /// Commits from now on go through the transactions of `sink`, which must come from
    /// [`kafka_transactional_producer`](crate::kafka_transactional_producer); `timeout` bounds
    /// each transaction call (sending offsets, committing, aborting).
    #[must_use]
    pub fn transactional(mut self, sink: &crate::KafkaRecordSink, timeout: Duration) -> Self {
        self.transactions = Some(Transactions {
            producer: sink.shared_producer(),
            timeout,
        });
        self
    }
}

impl std::fmt::Debug for KafkaOffsetCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaOffsetCommitter")
            .field("group_id", &self.group_id)
            .field("open", &(self.consumer.strong_count() > 0))
            .finish()
    }
}

impl OffsetCommitter for KafkaOffsetCommitter {
    fn commit(
        &self,
        positions: Vec<CommitPosition>,
    ) -> impl Future<Output = Result<(), AdapterError>> + Send {
        let consumer = Weak::clone(&self.consumer);
        let group_id = Arc::clone(&self.group_id);
        let transactions = self.transactions.clone();
        let membership = Arc::clone(&self.membership);
        let began_in = self.transaction_membership.load(Ordering::SeqCst);
        async move {
            if let Some(transactions) = transactions {
                return run_blocking("committing the transaction", move || {
                    let member = Membership {
                        current: &membership,
                        began_in,
                    };
                    commit_transaction(&consumer, &group_id, &transactions, &positions, member)
                })
                .await;
            }
            if positions.is_empty() {
                return Ok(());
            }
            run_blocking("committing offsets", move || {
                let Some(consumer) = consumer.upgrade() else {
                    return Err(AdapterError::ConsumerClosed {
                        group_id: group_id.to_string(),
                    });
                };
                commit_sync(&consumer, &group_id, positions)
            })
            .await
        }
    }

    fn is_transactional(&self) -> bool {
        self.transactions.is_some()
    }

    fn begin_transaction(&self) -> Result<(), AdapterError> {
        match &self.transactions {
            Some(transactions) => {
                self.transaction_membership
                    .store(self.membership.load(Ordering::SeqCst), Ordering::SeqCst);
                transactions
                    .producer
                    .begin_transaction()
                    .map_err(|error| transaction_error("beginning a transaction", &error))
            }
            None => Ok(()),
        }
    }

    fn abort_transaction(&self) -> impl Future<Output = Result<(), AdapterError>> + Send {
        let transactions = self.transactions.clone();
        async move {
            let Some(transactions) = transactions else {
                return Ok(());
            };
            run_blocking("aborting the transaction", move || {
                transactions
                    .producer
                    .abort_transaction(transactions.timeout)
                    .map_err(|error| transaction_error("aborting the transaction", &error))
            })
            .await
        }
    }
}

/// The group membership a transaction began in, and the consumer's now.
struct Membership<'a> {
    current: &'a AtomicU64,
    began_in: u64,
}

impl Membership<'_> {
    /// An abortable error when partitions were lost or assigned since the transaction began.
    fn check(&self, group_id: &str) -> Result<(), AdapterError> {
        if self.current.load(Ordering::SeqCst) == self.began_in {
            return Ok(());
        }
        Err(AdapterError::Transaction {
            operation: "committing the transaction",
            code: KafkaErrorCode::STATE,
            reason: format!(
                "the membership of group `{group_id}` changed since the transaction began \
                 (partitions lost or assigned): its records may be read again by the new \
                 assignment"
            ),
            fatal: false,
            requires_abort: true,
            retriable: false,
        })
    }
}

/// Sends `positions` to the open transaction with the group's current metadata, then commits
/// the transaction (which first waits for every record of it to be delivered) — unless the
/// group membership changed since the transaction began (see [`KafkaOffsetCommitter`]).
fn commit_transaction(
    consumer: &Weak<BaseConsumer<ConsumerCtx>>,
    group_id: &str,
    transactions: &Transactions,
    positions: &[CommitPosition],
    membership: Membership<'_>,
) -> Result<(), AdapterError> {
    let producer = &transactions.producer;
    // Checked before any offsets go out; and again after the metadata was read, as a
    // rejoin (new metadata) always follows the loss that bumped the membership.
    membership.check(group_id)?;
    if !positions.is_empty() {
        let Some(consumer) = consumer.upgrade() else {
            return Err(AdapterError::ConsumerClosed {
                group_id: group_id.to_owned(),
            });
        };
        let operation = "sending offsets to the transaction";
        let list =
            position_list(positions).map_err(|error| transaction_error(operation, &error))?;
        let Some(metadata) = consumer.group_metadata() else {
            return Err(AdapterError::Transaction {
                operation,
                code: KafkaErrorCode::STATE,
                reason: format!("the consumer of group `{group_id}` has no group metadata"),
                fatal: false,
                requires_abort: true,
                retriable: false,
            });
        };
        membership.check(group_id)?;
        producer
            .send_offsets_to_transaction(&list, &metadata, transactions.timeout)
            .map_err(|error| transaction_error(operation, &error))?;
    }
    membership.check(group_id)?;
    let mut attempt = 1;
    loop {
        let error = match producer.commit_transaction(transactions.timeout) {
            Ok(()) => return Ok(()),
            Err(error) => transaction_error("committing the transaction", &error),
        };
        if attempt >= COMMIT_TRANSACTION_ATTEMPTS || !error.may_retry_transaction_call() {
            return Err(error);
        }
        warn!(%error, attempt, "Committing the transaction failed for a passing reason; committing it again.");
        attempt += 1;
    }
}

/// Attempts of `commit_transaction` when librdkafka says the call may be retried without an
/// abort (e.g. it timed out); each is bounded by the transaction call timeout.
const COMMIT_TRANSACTION_ATTEMPTS: u32 = 3;

fn commit_sync<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    group_id: &str,
    positions: Vec<CommitPosition>,
) -> Result<(), AdapterError> {
    let committed =
        position_list(&positions).and_then(|list| consumer.commit(&list, CommitMode::Sync));
    match committed {
        Ok(()) => Ok(()),
        Err(error) => Err(AdapterError::Commit {
            group_id: group_id.to_owned(),
            positions,
            code: code_of(&error),
        }),
    }
}

fn position_list(positions: &[CommitPosition]) -> Result<TopicPartitionList, KafkaError> {
    let mut list = TopicPartitionList::with_capacity(positions.len());
    for position in positions {
        list.add_partition_offset(
            &position.partition.topic,
            position.partition.partition,
            Offset::Offset(position.offset),
        )?;
    }
    Ok(list)
}

pub(crate) fn consumer_defaults() -> Vec<(&'static str, &'static str)> {
    [CONSUMER_DEFAULTS, PREFETCH_DEFAULTS].concat()
}

/// Polls until the pipeline is gone or a close was asked for, then closes the consumer
/// (dropping the last strong reference leaves the group; the final revoke runs in here).
fn consumer_thread(
    consumer: Arc<BaseConsumer<ConsumerCtx>>,
    close_requested: &AtomicBool,
    rewinds: &Mutex<Vec<Vec<CommitPosition>>>,
) {
    let context = Arc::clone(consumer.context());
    let mut topics = TopicNames::default();
    while !close_requested.load(Ordering::Relaxed) && !context.events.is_closed() {
        let asked = std::mem::take(&mut *rewinds.lock().unwrap_or_else(PoisonError::into_inner));
        if asked
            .into_iter()
            .any(|positions| !context.rewind(&consumer, positions))
        {
            break;
        }
        let wait = if context.has_pending() {
            Duration::ZERO
        } else {
            IDLE_POLL
        };
        match consumer.poll(wait) {
            Some(Ok(message)) => context.push(inbound_record(&message, &mut topics)),
            Some(Err(error)) => {
                if !context.on_poll_error(error) {
                    break;
                }
            }
            // Nothing more right now (or a rebalance was served): hand over what we have.
            None => context.flush_pending(),
        }
    }
    context.flush_pending();
    drop(consumer);
    info!(group_id = %context.group_id, "Kafka consumer thread stopped.");
}

fn inbound_record(message: &BorrowedMessage<'_>, topics: &mut TopicNames) -> InboundRecord {
    let (headers, unreadable) = copy_headers(message);
    if unreadable > 0 {
        warn!(
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            unreadable,
            "Record has header names that are not UTF-8; they cannot be copied to its outputs."
        );
    }
    InboundRecord {
        topic: topics.intern(message.topic()),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        timestamp_ms: message.timestamp().to_millis(),
        headers,
    }
}

/// One shared `Arc<str>` per topic name, so records do not allocate their topic.
#[derive(Default)]
struct TopicNames(Vec<Arc<str>>);

impl TopicNames {
    fn intern(&mut self, topic: &str) -> Arc<str> {
        if let Some(known) = self.0.iter().find(|known| &***known == topic) {
            return Arc::clone(known);
        }
        let name: Arc<str> = Arc::from(topic);
        self.0.push(Arc::clone(&name));
        name
    }
}

/// Shared between the consumer thread and librdkafka's callbacks (which run on that thread,
/// inside `poll`, or on whichever thread drops the last consumer handle).
pub(crate) struct ConsumerCtx {
    group_id: Arc<str>,
    /// Bumped whenever partitions are lost or assigned (see [`KafkaOffsetCommitter`]).
    membership: Arc<AtomicU64>,
    events: EventSender,
    pending: Mutex<Vec<InboundRecord>>,
    batch_max: usize,
    revoke_timeout: Duration,
}

impl ConsumerCtx {
    fn has_pending(&self) -> bool {
        !self.lock_pending().is_empty()
    }

    fn push(&self, record: InboundRecord) {
        let full = {
            let mut pending = self.lock_pending();
            pending.push(record);
            pending.len() >= self.batch_max
        };
        if full {
            self.flush_pending();
        }
    }

    fn flush_pending(&self) {
        let batch = std::mem::take(&mut *self.lock_pending());
        if !batch.is_empty() {
            self.deliver(Ok(SourceEvent::Records(batch)));
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Vec<InboundRecord>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks while the channel is full (back-pressure); false when the pipeline is gone.
    fn deliver(&self, event: Result<SourceEvent, AdapterError>) -> bool {
        self.events.blocking_send(event).is_ok()
    }

    /// Whether polling may go on.
    fn on_poll_error(&self, error: KafkaError) -> bool {
        match error {
            KafkaError::PartitionEOF(_) => true,
            KafkaError::MessageConsumptionFatal(code) => {
                self.flush_pending();
                self.deliver(Err(AdapterError::ConsumerFatal {
                    group_id: self.group_id.to_string(),
                    code: kafka_code(code),
                }));
                false
            }
            // librdkafka retries these for ever while the source yields nothing: a consumer
            // without access would idle silently. Stop with the reason instead.
            KafkaError::MessageConsumption(code) | KafkaError::Global(code)
                if is_access_refusal_code(kafka_code(code)) =>
            {
                self.flush_pending();
                self.deliver(Err(AdapterError::ConsumerRefused {
                    group_id: self.group_id.to_string(),
                    code: kafka_code(code),
                }));
                false
            }
            error => {
                warn!(
                    group_id = %self.group_id,
                    %error,
                    "Kafka consumer error; librdkafka keeps retrying."
                );
                true
            }
        }
    }

    /// Drops the held records of the partitions of `positions`, seeks those still assigned and
    /// sends `Rewound`. False when the seek failed (the source then ends with that error) or
    /// the pipeline is gone.
    fn rewind(&self, consumer: &BaseConsumer<Self>, positions: Vec<CommitPosition>) -> bool {
        let partitions: Vec<TopicPartition> = positions
            .iter()
            .map(|position| position.partition.clone())
            .collect();
        self.lock_pending().retain(|record| {
            !partitions
                .iter()
                .any(|tp| tp.partition == record.partition && tp.topic == record.topic)
        });
        let assigned = consumer.assignment().unwrap_or_default();
        let mut list = TopicPartitionList::with_capacity(positions.len());
        for position in &positions {
            let tp = &position.partition;
            if assigned.find_partition(&tp.topic, tp.partition).is_none() {
                continue;
            }
            if let Err(error) =
                list.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(position.offset))
            {
                return self.rewind_failed(&error.to_string());
            }
        }
        if list.count() > 0 {
            match consumer.seek_partitions(list, SEEK_TIMEOUT) {
                Ok(sought) => {
                    if let Some(failed) = sought
                        .elements()
                        .iter()
                        .find_map(|element| element.error().err().map(|e| (element.partition(), e)))
                    {
                        return self
                            .rewind_failed(&format!("partition {}: {}", failed.0, failed.1));
                    }
                }
                Err(error) => return self.rewind_failed(&error.to_string()),
            }
        }
        info!(
            group_id = %self.group_id,
            positions = %joined_positions(&positions),
            "Consumer rewound to the last committed positions."
        );
        self.flush_pending();
        self.deliver(Ok(SourceEvent::Rewound(partitions)))
    }

    fn rewind_failed(&self, reason: &str) -> bool {
        self.flush_pending();
        self.deliver(Err(AdapterError::Task {
            operation: "rewinding the consumer (seek)",
            reason: reason.to_owned(),
        }));
        false
    }

    fn on_revoke(&self, consumer: &BaseConsumer<Self>, partitions: Vec<TopicPartition>) {
        self.flush_pending();
        let (reply_sender, reply) = std::sync::mpsc::sync_channel(1);
        let event = SourceEvent::Revoked {
            partitions: partitions.clone(),
            reply: RevokeReply::blocking(reply_sender),
        };
        if !self.deliver(Ok(event)) {
            debug!(
                group_id = %self.group_id,
                partitions = %joined(&partitions),
                "Partitions revoked after the source was dropped; nothing to commit."
            );
            return;
        }
        match reply.recv_timeout(self.revoke_timeout) {
            Ok(positions) => self.commit_revoked(consumer, &partitions, positions),
            Err(RecvTimeoutError::Timeout) => warn!(
                group_id = %self.group_id,
                partitions = %joined(&partitions),
                revoke_timeout = ?self.revoke_timeout,
                "No answer to the revoke within revoke_timeout; nothing committed, the next owner \
                 reprocesses from the last commit."
            ),
            Err(RecvTimeoutError::Disconnected) => warn!(
                group_id = %self.group_id,
                partitions = %joined(&partitions),
                "The revoke reply was dropped; nothing committed, the next owner reprocesses \
                 from the last commit."
            ),
        }
    }

    fn commit_revoked(
        &self,
        consumer: &BaseConsumer<Self>,
        partitions: &[TopicPartition],
        positions: Vec<CommitPosition>,
    ) {
        if positions.is_empty() {
            debug!(
                group_id = %self.group_id,
                partitions = %joined(partitions),
                "Revoke answered with nothing to commit."
            );
            return;
        }
        let count = positions.len();
        match commit_sync(consumer, &self.group_id, positions) {
            Ok(()) => info!(
                group_id = %self.group_id,
                partitions = %joined(partitions),
                positions = count,
                "Committed before giving up revoked partitions."
            ),
            Err(error) => warn!(
                group_id = %self.group_id,
                partitions = %joined(partitions),
                %error,
                "Commit inside the revoke failed; the next owner reprocesses from the last commit."
            ),
        }
    }

    fn on_lost(&self, partitions: Vec<TopicPartition>) {
        self.membership.fetch_add(1, Ordering::SeqCst);
        warn!(
            group_id = %self.group_id,
            partitions = %joined(&partitions),
            "Partitions lost without a revoke; their uncommitted work will be reprocessed by the \
             next owner."
        );
        self.flush_pending();
        self.deliver(Ok(SourceEvent::Lost(partitions)));
    }
}

impl ClientContext for ConsumerCtx {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(error, reason);
    }
}

impl ConsumerContext for ConsumerCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(_) => {}
            Rebalance::Revoke(list) => {
                let partitions = partitions_in(list);
                if partitions.is_empty() {
                    return;
                }
                if consumer.assignment_lost() {
                    self.on_lost(partitions);
                } else {
                    self.on_revoke(consumer, partitions);
                }
            }
            Rebalance::Error(error) => {
                // librdkafka unassigns everything after a rebalance error.
                let partitions = consumer
                    .assignment()
                    .map(|list| partitions_in(&list))
                    .unwrap_or_default();
                warn!(group_id = %self.group_id, %error, "Rebalance failed.");
                if !partitions.is_empty() {
                    self.on_lost(partitions);
                }
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let partitions = partitions_in(list);
            if !partitions.is_empty() {
                self.membership.fetch_add(1, Ordering::SeqCst);
                info!(
                    group_id = %self.group_id,
                    partitions = %joined(&partitions),
                    "Partitions assigned."
                );
                self.flush_pending();
                self.deliver(Ok(SourceEvent::Assigned(partitions)));
            }
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &TopicPartitionList,
    ) {
        if let Err(error) = result {
            debug!(group_id = %self.group_id, %error, "Offset commit failed.");
        }
    }
}

fn partitions_in(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements()
        .iter()
        .map(|element| TopicPartition::new(element.topic(), element.partition()))
        .collect()
}

fn joined_positions(positions: &[CommitPosition]) -> String {
    let names: Vec<String> = positions.iter().map(ToString::to_string).collect();
    names.join(",")
}

fn joined(partitions: &[TopicPartition]) -> String {
    let names: Vec<String> = partitions.iter().map(ToString::to_string).collect();
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_are_shared_between_records() {
        let mut names = TopicNames::default();
        let first = names.intern("in");
        let again = names.intern("in");
        let other = names.intern("other");
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(&*other, "other");
    }

    #[test]
    fn prefetch_is_bounded_unless_the_user_says_otherwise() {
        let bounded = KafkaConfig::new("127.0.0.1:9092").client_config(&consumer_defaults());
        assert_eq!(bounded.get("queued.max.messages.kbytes"), Some("4096"));
        assert_eq!(bounded.get("enable.auto.commit"), Some("false"));
        let user = KafkaConfig::new("127.0.0.1:9092")
            .with("queued.max.messages.kbytes", "65536")
            .client_config(&consumer_defaults());
        assert_eq!(user.get("queued.max.messages.kbytes"), Some("65536"));
    }

    #[test]
    fn positions_become_an_offset_list() {
        let positions = vec![CommitPosition {
            partition: TopicPartition::new("in", 2),
            offset: 10,
        }];
        let list = position_list(&positions).expect("valid list");
        let element = list.find_partition("in", 2).expect("partition present");
        assert_eq!(element.offset(), Offset::Offset(10));
    }
}

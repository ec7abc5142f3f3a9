//! The producer: a `ThreadedProducer` whose delivery callback turns librdkafka's reports
//! into [`DeliveryReport`]s on the caller's channel.
//!
//! Every record `send` accepts gets exactly one report, including records purged when the
//! sink is dropped (reported as retriable failures), so the pipeline never waits for a report
//! that cannot come. Records are copied into librdkafka at `send`; a failed delivery rebuilds
//! the record from librdkafka's copy, so retrying needs no clone on the happy path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

use crate::config::{KafkaConfig, PRODUCER_DEFAULTS, log_client_error, log_librdkafka};
use ports::{AdapterError, KafkaErrorCode, is_retriable_code};

use crate::error::{code_of, kafka_code_of, transaction_error};
use crate::util::run_blocking;
use ports::RecordSink;
use ports::{Delivered, DeliveryFailure, DeliveryReport, DeliveryTag};
use ports::{OutboundRecord, SendRejected};

/// Creates a producer that reports every delivery on `reports`.
///
/// The properties of `config` override the defaults (`enable.idempotence=true`, `acks=all`,
/// `linger.ms=5`, `compression.type=lz4`, `queue.buffering.max.messages=1000000`).
pub fn kafka_producer(
    config: &KafkaConfig,
    reports: UnboundedSender<DeliveryReport>,
) -> Result<KafkaRecordSink, AdapterError> {
    let context = SinkCtx {
        reports,
        reports_dropped: AtomicBool::new(false),
    };
    let producer: ThreadedProducer<SinkCtx> = config
        .client_config(PRODUCER_DEFAULTS)
        .create_with_context(context)
        .map_err(|source| AdapterError::ClientCreation {
            client: "producer",
            bootstrap_servers: config.bootstrap_servers.clone(),
            code: kafka_code_of(&source),
            source: Box::new(source),
        })?;
    info!(bootstrap_servers = %config.bootstrap_servers, "Kafka producer created.");
    Ok(KafkaRecordSink {
        producer: Arc::new(producer),
    })
}

/// Creates a transactional producer (exactly-once mode): `transactional.id` set to
/// `transactional_id`, transactions initialised (which fences any earlier producer with the same
/// id and aborts its open transaction, so a restarted instance takes over at once). Use it with
/// [`KafkaOffsetCommitter::transactional`](crate::KafkaOffsetCommitter::transactional), which
/// begins, commits and aborts its transactions.
///
/// `transaction_timeout` bounds `init_transactions` and every later transaction call.
pub async fn kafka_transactional_producer(
    config: &KafkaConfig,
    transactional_id: &str,
    transaction_timeout: Duration,
    reports: UnboundedSender<DeliveryReport>,
) -> Result<KafkaRecordSink, AdapterError> {
    let config = config.clone().with("transactional.id", transactional_id);
    let sink = kafka_producer(&config, reports)?;
    let producer = Arc::clone(&sink.producer);
    run_blocking("initialising transactions", move || {
        producer
            .init_transactions(transaction_timeout)
            .map_err(|error| transaction_error("initialising transactions", &error))
    })
    .await?;
    info!(transactional_id, "Transactional producer ready.");
    Ok(sink)
}

/// The [`RecordSink`] of a Kafka producer.
///
/// Dropping it purges what is still queued (each purged record is reported as a retriable
/// failure) and blocks for up to about half a second; call [`flush`](RecordSink::flush) first.
#[derive(Clone)]
pub struct KafkaRecordSink {
    producer: Arc<ThreadedProducer<SinkCtx>>,
}

impl std::fmt::Debug for KafkaRecordSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaRecordSink")
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl KafkaRecordSink {
    pub(crate) fn shared_producer(&self) -> Arc<ThreadedProducer<SinkCtx>> {
        Arc::clone(&self.producer)
    }

    /// Records enqueued or in flight that have no delivery report yet.
    pub fn in_flight(&self) -> usize {
        usize::try_from(self.producer.in_flight_count()).unwrap_or(0)
    }
}

impl RecordSink for KafkaRecordSink {
    fn send(&self, record: OutboundRecord, tag: DeliveryTag) -> Result<(), SendRejected> {
        let enqueued = {
            let mut message =
                BaseRecord::<[u8], [u8], DeliveryTag>::with_opaque_to(&record.topic, tag)
                    .payload(record.payload.as_slice());
            if let Some(key) = &record.key {
                message = message.key(key.as_slice());
            }
            if !record.headers.is_empty() {
                message = message.headers(owned_headers(&record.headers));
            }
            self.producer
                .send(message)
                .map_err(|(error, _message)| error)
        };
        match enqueued {
            Ok(()) => Ok(()),
            Err(error) => {
                let code = code_of(&error);
                Err(SendRejected {
                    error: AdapterError::Enqueue {
                        topic: Arc::clone(&record.topic),
                        code,
                    },
                    record,
                    tag,
                    queue_full: code == KafkaErrorCode::QUEUE_FULL,
                })
            }
        }
    }

    fn flush(&self, timeout: Duration) -> impl Future<Output = Result<(), AdapterError>> + Send {
        let producer = Arc::clone(&self.producer);
        async move {
            run_blocking("flushing the producer", move || {
                producer.flush(timeout).map_err(|error| match error {
                    KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut) => {
                        AdapterError::FlushTimeout {
                            timeout,
                            pending: usize::try_from(producer.in_flight_count()).unwrap_or(0),
                        }
                    }
                    error => AdapterError::Request {
                        operation: "flushing the producer",
                        topic: None,
                        code: kafka_code_of(&error),
                        source: Box::new(error),
                    },
                })
            })
            .await
        }
    }
}

fn owned_headers(headers: &[(String, Vec<u8>)]) -> OwnedHeaders {
    headers.iter().fold(
        OwnedHeaders::new_with_capacity(headers.len()),
        |owned, (key, value)| {
            owned.insert(Header {
                key: key.as_str(),
                value: Some(value.as_slice()),
            })
        },
    )
}

/// Delivery callbacks run on the producer's polling thread.
pub(crate) struct SinkCtx {
    reports: UnboundedSender<DeliveryReport>,
    reports_dropped: AtomicBool,
}

impl SinkCtx {
    fn report(&self, report: DeliveryReport) {
        if self.reports.send(report).is_err() && !self.reports_dropped.swap(true, Ordering::Relaxed)
        {
            warn!("The delivery report receiver is gone; further delivery reports are discarded.");
        }
    }
}

impl ClientContext for SinkCtx {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(error, reason);
    }
}

impl ProducerContext for SinkCtx {
    type DeliveryOpaque = DeliveryTag;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: DeliveryTag) {
        let result = match result {
            Ok(message) => Ok(Delivered {
                partition: message.partition(),
                offset: message.offset(),
            }),
            Err((error, message)) => Err(delivery_failure(error, message)),
        };
        self.report(DeliveryReport { tag, result });
    }
}

fn delivery_failure(error: &KafkaError, message: &BorrowedMessage<'_>) -> DeliveryFailure {
    let code = code_of(error);
    let record = OutboundRecord {
        topic: Arc::from(message.topic()),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers: message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| {
                        (
                            header.key.to_owned(),
                            header.value.map(<[u8]>::to_vec).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    let partition = Some(message.partition()).filter(|partition| *partition >= 0);
    DeliveryFailure {
        error: AdapterError::Delivery {
            topic: Arc::clone(&record.topic),
            partition,
            code,
        },
        record,
        retriable: is_retriable_code(code),
    }
}

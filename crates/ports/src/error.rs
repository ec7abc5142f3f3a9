//! The error the capability traits return, and its classification.

use std::sync::Arc;
use std::time::Duration;

use crate::code::{
    KafkaErrorCode, is_record_refusal_code, is_record_too_large_code, is_retriable_code,
};
use crate::types::{CommitPosition, TopicSpec};

/// The cause of an error, as the client library reported it (for Kafka, rdkafka's
/// `KafkaError`), kept as the `source` so its text and chain are not lost.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in an adapter behind the traits (the Kafka adapters of
/// `kafka-adapters`, the fakes of `ports::testing`).
///
/// Defined here, without a Kafka client library, so that code written against the traits does
/// not depend on one: codes are [`KafkaErrorCode`] numbers, and librdkafka's own errors travel
/// as boxed [`source`](std::error::Error::source)s with the code they carried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// librdkafka refused the configuration or could not start the client.
    #[error(
        "could not create the Kafka {client} for bootstrap servers `{bootstrap_servers}`: {source}; \
         check `bootstrap_servers` and the librdkafka properties passed in `KafkaConfig::properties`"
    )]
    ClientCreation {
        /// `consumer`, `producer`, `admin client`, ….
        client: &'static str,
        /// The configured bootstrap servers.
        bootstrap_servers: String,
        /// The error code inside `source`, when it carries one.
        code: Option<KafkaErrorCode>,
        /// librdkafka's reason.
        #[source]
        source: BoxError,
    },

    /// Subscribing the consumer group to its topics failed.
    #[error("could not subscribe consumer group `{group_id}` to topics {topics:?}: {source}")]
    Subscribe {
        /// The consumer group.
        group_id: String,
        /// The topics of the subscription.
        topics: Vec<String>,
        /// The error code inside `source`, when it carries one.
        code: Option<KafkaErrorCode>,
        /// librdkafka's reason.
        #[source]
        source: BoxError,
    },

    /// The consumer hit a fatal error and stopped; create a new one.
    #[error(
        "the Kafka consumer of group `{group_id}` failed fatally ({code}); it has stopped, \
         restart the processor to create a new one"
    )]
    ConsumerFatal {
        /// The consumer group.
        group_id: String,
        /// librdkafka's error code.
        code: KafkaErrorCode,
    },

    /// The cluster refused the consumer: its credentials (authentication) or an ACL it needs
    /// (READ on a subscribed topic or on the group). librdkafka would retry for ever; the
    /// consumer stops instead, as Kafka's Java consumer throws from `poll`, so a process without
    /// access fails with this message instead of idling.
    #[error(
        "the Kafka consumer of group `{group_id}` was refused by the cluster ({code}); it has \
         stopped. Check its credentials (sasl.username, sasl.password, sasl.mechanism, \
         security.protocol) and that its user may READ the subscribed topics and the group \
         (docs/OPERATIONS.md, \"Broker security\")"
    )]
    ConsumerRefused {
        /// The consumer group.
        group_id: String,
        /// librdkafka's or the broker's error code (see [`crate::is_access_refusal_code`]).
        code: KafkaErrorCode,
    },

    /// The consumer has closed: its source was dropped or closed, or it failed fatally.
    #[error(
        "the Kafka consumer of group `{group_id}` is closed; commits must happen before the \
         source is closed (or through the reply of the final `Revoked`)"
    )]
    ConsumerClosed {
        /// The consumer group.
        group_id: String,
    },

    /// Committing offsets was refused or failed.
    #[error(
        "committing {count} offsets for group `{group_id}` failed ({code}); first: {first}",
        count = positions.len(),
        first = positions.first().map_or_else(|| "none".to_owned(), ToString::to_string)
    )]
    Commit {
        /// The consumer group.
        group_id: String,
        /// The positions that were to be committed.
        positions: Vec<CommitPosition>,
        /// librdkafka's or the broker's error code.
        code: KafkaErrorCode,
    },

    /// librdkafka refused to enqueue a record.
    #[error("could not enqueue a record for topic `{topic}` ({code})")]
    Enqueue {
        /// The record's topic.
        topic: Arc<str>,
        /// librdkafka's error code; `QueueFull` means wait for delivery reports and send again.
        code: KafkaErrorCode,
    },

    /// A record was not delivered.
    #[error(
        "delivery to topic `{topic}`{partition} failed ({code})",
        partition = partition.map(|p| format!(" partition {p}")).unwrap_or_default()
    )]
    Delivery {
        /// The record's topic.
        topic: Arc<str>,
        /// The partition, when librdkafka had chosen one.
        partition: Option<i32>,
        /// librdkafka's or the broker's error code.
        code: KafkaErrorCode,
    },

    /// `flush` gave up before every record had its delivery report.
    #[error(
        "flushing the producer timed out after {timeout:?} with {pending} records still waiting \
         for a delivery report"
    )]
    FlushTimeout {
        /// The timeout given to `flush`.
        timeout: Duration,
        /// Records still without a delivery report.
        pending: usize,
    },

    /// The broker refused to create a topic.
    #[error(
        "could not create topic `{topic}` with {partitions} partitions and {replication} ({code})",
        replication = describe_replication(*replication)
    )]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The requested partition count.
        partitions: i32,
        /// The requested replication factor ([`TopicSpec::BROKER_DEFAULT_REPLICATION`]:
        /// the broker's default).
        replication: i32,
        /// The broker's error code.
        code: KafkaErrorCode,
    },

    /// A request to the cluster (metadata, offsets, watermarks, admin) failed.
    #[error(
        "{operation} failed{topic}: {source}",
        topic = topic.as_deref().map(|t| format!(" for topic `{t}`")).unwrap_or_default()
    )]
    Request {
        /// What was asked, e.g. `fetching metadata`.
        operation: &'static str,
        /// The topic concerned, if any.
        topic: Option<String>,
        /// The error code inside `source`, when it carries one.
        code: Option<KafkaErrorCode>,
        /// librdkafka's reason.
        #[source]
        source: BoxError,
    },

    /// The cluster answered about a topic with an error code.
    #[error("{operation} for topic `{topic}` failed ({code})")]
    TopicRequest {
        /// What was asked, e.g. `fetching metadata`.
        operation: &'static str,
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: KafkaErrorCode,
    },

    /// A topic a tool reads from does not exist.
    #[error(
        "topic `{topic}` does not exist; create it first (e.g. with `TopicAdmin::create_topics`)"
    )]
    UnknownTopic {
        /// The topic.
        topic: String,
    },

    /// Reading a topic stopped at the timeout before the wanted records arrived.
    #[error(
        "reading topic `{topic}` got {got} records in {timeout:?}, {wanted}; is the producer \
         running and the topic name right?"
    )]
    ReadIncomplete {
        /// The topic.
        topic: String,
        /// What the reader waited for.
        wanted: String,
        /// Records read before the timeout.
        got: usize,
        /// The timeout.
        timeout: Duration,
    },

    /// A blocking helper task panicked or was cancelled.
    #[error("the blocking task for {operation} did not complete: {reason}")]
    Task {
        /// What the task was doing.
        operation: &'static str,
        /// Why it did not complete.
        reason: String,
    },

    /// A Kafka transaction operation failed (exactly-once mode). `fatal`: the producer is
    /// fenced or otherwise unusable, stop and restart the process; `requires_abort`: abort the
    /// transaction, rewind and go on; `retriable`: the same call may be made again.
    #[error(
        "{operation} failed: {reason} ({code}){kind}",
        kind = if *fatal { "; fatal: the transactional producer cannot go on (fenced by a newer instance with the same transactional.id?)" } else if *requires_abort { "; the transaction must be aborted" } else { "" }
    )]
    Transaction {
        /// What was asked, e.g. `committing the transaction`.
        operation: &'static str,
        /// librdkafka's or the broker's error code.
        code: KafkaErrorCode,
        /// librdkafka's description.
        reason: String,
        /// The producer cannot be used any more.
        fatal: bool,
        /// The transaction must be aborted.
        requires_abort: bool,
        /// The same call may be retried.
        retriable: bool,
    },

    /// A failure injected by one of the fakes of `ports::testing`.
    #[error("injected failure: {what}")]
    Injected {
        /// What the test said failed.
        what: String,
        /// Whether the fake reports it as retriable.
        retriable: bool,
    },
}

impl AdapterError {
    /// Whether trying the same operation again later may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Commit { code, .. }
            | Self::Enqueue { code, .. }
            | Self::Delivery { code, .. }
            | Self::TopicRequest { code, .. } => is_retriable_code(*code),
            Self::Request { code, .. } => code.is_some_and(is_retriable_code),
            Self::FlushTimeout { .. } | Self::ReadIncomplete { .. } => true,
            Self::Injected { retriable, .. } | Self::Transaction { retriable, .. } => *retriable,
            Self::ClientCreation { .. }
            | Self::Subscribe { .. }
            | Self::ConsumerFatal { .. }
            | Self::ConsumerRefused { .. }
            | Self::ConsumerClosed { .. }
            | Self::CreateTopic { .. }
            | Self::UnknownTopic { .. }
            | Self::Task { .. } => false,
        }
    }

    /// Whether this error refuses one record for good while other records may well pass: the
    /// output topic is missing or not writable, or the record is too large or invalid for it
    /// (see [`is_record_refusal_code`]). Other errors that are not retriable (configuration,
    /// cluster authorization, a fenced producer) concern every record and are not refusals.
    /// An injected failure that is not retriable counts as a refusal.
    pub fn refuses_record(&self) -> bool {
        match self {
            Self::Enqueue { code, .. } | Self::Delivery { code, .. } => {
                is_record_refusal_code(*code)
            }
            Self::Injected { retriable, .. } => !retriable,
            _ => false,
        }
    }

    /// Whether the record was refused for its size (by the producer's `message.max.bytes` or
    /// the broker's `max.message.bytes` of the topic).
    pub fn is_record_too_large(&self) -> bool {
        self.code().is_some_and(is_record_too_large_code)
    }

    /// Whether a transaction call that failed with this error may be made again as it is,
    /// without aborting the transaction: librdkafka says it is retriable and needs no abort
    /// (e.g. a commit that timed out).
    pub fn may_retry_transaction_call(&self) -> bool {
        matches!(
            self,
            Self::Transaction {
                fatal: false,
                requires_abort: false,
                retriable: true,
                ..
            }
        )
    }

    /// Whether this is a fatal transaction error: the transactional producer was fenced (a
    /// newer instance with the same `transactional.id` started) or failed for good; the process
    /// must stop and be restarted.
    pub fn is_fatal_transaction(&self) -> bool {
        matches!(self, Self::Transaction { fatal: true, .. })
    }

    /// The Kafka error code behind this error, if there is one.
    pub fn code(&self) -> Option<KafkaErrorCode> {
        match self {
            Self::Commit { code, .. }
            | Self::Enqueue { code, .. }
            | Self::Delivery { code, .. }
            | Self::TopicRequest { code, .. }
            | Self::ConsumerFatal { code, .. }
            | Self::ConsumerRefused { code, .. }
            | Self::CreateTopic { code, .. }
            | Self::Transaction { code, .. } => Some(*code),
            Self::ClientCreation { code, .. }
            | Self::Subscribe { code, .. }
            | Self::Request { code, .. } => *code,
            _ => None,
        }
    }
}

/// "replication factor N", or "the broker's default replication factor" for
/// [`TopicSpec::BROKER_DEFAULT_REPLICATION`].
fn describe_replication(replication: i32) -> String {
    if replication == TopicSpec::BROKER_DEFAULT_REPLICATION {
        "the broker's default replication factor".to_owned()
    } else {
        format!("replication factor {replication}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_creation_error_names_the_replication_asked_for() {
        let fixed = AdapterError::CreateTopic {
            topic: "out".to_owned(),
            partitions: 3,
            replication: 3,
            code: KafkaErrorCode::INVALID_REPLICATION_FACTOR,
        };
        assert!(
            fixed
                .to_string()
                .contains("3 partitions and replication factor 3"),
            "{fixed}"
        );
        let broker_default = AdapterError::CreateTopic {
            topic: "out".to_owned(),
            partitions: 3,
            replication: TopicSpec::BROKER_DEFAULT_REPLICATION,
            code: KafkaErrorCode::POLICY_VIOLATION,
        };
        assert!(
            broker_default
                .to_string()
                .contains("3 partitions and the broker's default replication factor"),
            "{broker_default}"
        );
    }

    #[test]
    fn refusals_are_the_record_permanent_errors_only() {
        let refused = |code| AdapterError::Delivery {
            topic: Arc::from("out"),
            partition: None,
            code,
        };
        for code in [
            KafkaErrorCode::UNKNOWN_TOPIC,
            KafkaErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            KafkaErrorCode::TOPIC_AUTHORIZATION_FAILED,
            KafkaErrorCode::MESSAGE_SIZE_TOO_LARGE,
            KafkaErrorCode::INVALID_RECORD,
        ] {
            assert!(refused(code).refuses_record(), "{code:?}");
            assert!(!is_retriable_code(code), "{code:?}");
        }
        for code in [
            KafkaErrorCode::MESSAGE_TIMED_OUT,
            KafkaErrorCode::CLUSTER_AUTHORIZATION_FAILED,
            KafkaErrorCode::FATAL,
            KafkaErrorCode::INVALID_DIFFERENT_RECORD,
        ] {
            assert!(!refused(code).refuses_record(), "{code:?}");
        }
        assert!(is_retriable_code(KafkaErrorCode::INVALID_DIFFERENT_RECORD));
        assert!(refused(KafkaErrorCode::MESSAGE_SIZE_TOO_LARGE).is_record_too_large());
        assert!(!refused(KafkaErrorCode::UNKNOWN_TOPIC).is_record_too_large());
        let enqueue = AdapterError::Enqueue {
            topic: Arc::from("out"),
            code: KafkaErrorCode::MESSAGE_SIZE_TOO_LARGE,
        };
        assert!(enqueue.refuses_record() && enqueue.is_record_too_large());
    }

    #[test]
    fn delivery_error_message_names_topic_partition_and_code() {
        let error = AdapterError::Delivery {
            topic: Arc::from("out"),
            partition: Some(2),
            code: KafkaErrorCode::MESSAGE_TIMED_OUT,
        };
        let text = error.to_string();
        assert!(text.contains("`out` partition 2"), "{text}");
        assert!(error.is_retriable());
        assert_eq!(error.code(), Some(KafkaErrorCode::MESSAGE_TIMED_OUT));
    }

    #[test]
    fn only_retriable_transaction_calls_that_need_no_abort_are_made_again() {
        let call = |fatal, requires_abort, retriable| AdapterError::Transaction {
            operation: "committing the transaction",
            code: KafkaErrorCode::OPERATION_TIMED_OUT,
            reason: "timed out".to_owned(),
            fatal,
            requires_abort,
            retriable,
        };
        assert!(call(false, false, true).may_retry_transaction_call());
        assert!(!call(false, true, true).may_retry_transaction_call());
        assert!(!call(false, false, false).may_retry_transaction_call());
        assert!(!call(true, false, true).may_retry_transaction_call());
        let delivery = AdapterError::Delivery {
            topic: Arc::from("out"),
            partition: None,
            code: KafkaErrorCode::MESSAGE_TIMED_OUT,
        };
        assert!(!delivery.may_retry_transaction_call());
    }
}

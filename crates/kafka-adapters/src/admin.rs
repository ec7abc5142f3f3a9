//! Topic creation, topic metadata and group positions.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, info};

use crate::config::{KafkaConfig, LoggingContext};
use ports::AdapterError;

use crate::error::{kafka_code, kafka_code_of};
use crate::util::run_blocking;
use ports::TopicAdmin;
use ports::TopicSpec;

/// How long one admin or metadata request may take unless [`KafkaAdmin::with_timeout`] says
/// otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates the admin client.
///
/// `allow.auto.create.topics` is forced to `false` so that asking about a topic never
/// creates it.
pub fn kafka_admin(config: &KafkaConfig) -> Result<KafkaAdmin, AdapterError> {
    let mut client_config = config.client_config(&[]);
    client_config.set("allow.auto.create.topics", "false");
    let admin: AdminClient<LoggingContext> = client_config
        .create_with_context(LoggingContext)
        .map_err(|source| AdapterError::ClientCreation {
            client: "admin client",
            bootstrap_servers: config.bootstrap_servers.clone(),
            code: kafka_code_of(&source),
            source: Box::new(source),
        })?;
    Ok(KafkaAdmin {
        admin: Arc::new(admin),
        config: config.clone(),
        timeout: DEFAULT_REQUEST_TIMEOUT,
    })
}

/// The [`TopicAdmin`] of a Kafka cluster.
#[derive(Clone)]
pub struct KafkaAdmin {
    admin: Arc<AdminClient<LoggingContext>>,
    config: KafkaConfig,
    timeout: Duration,
}

impl std::fmt::Debug for KafkaAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaAdmin")
            .field("bootstrap_servers", &self.config.bootstrap_servers)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Where a group stands on one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: i32,
    /// The committed position (next offset to read), `None` when nothing was committed.
    pub committed: Option<i64>,
    /// The first offset still in the log.
    pub low_watermark: i64,
    /// The offset the next produced record will get.
    pub high_watermark: i64,
}

impl PartitionLag {
    /// Records not yet consumed by the group: from the committed position (or the start of the
    /// log when nothing was committed) to the high watermark.
    pub fn lag(&self) -> i64 {
        let from = self
            .committed
            .unwrap_or(self.low_watermark)
            .max(self.low_watermark);
        (self.high_watermark - from).max(0)
    }
}

impl KafkaAdmin {
    /// The same admin with another per-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Deletes topics (for tests and tools; the processor never deletes). A topic that does not
    /// exist is fine.
    pub async fn delete_topics(&self, topics: &[&str]) -> Result<(), AdapterError> {
        if topics.is_empty() {
            return Ok(());
        }
        let options = AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout));
        let results = self
            .admin
            .delete_topics(topics, &options)
            .await
            .map_err(|source| AdapterError::Request {
                operation: "deleting topics",
                topic: None,
                code: kafka_code_of(&source),
                source: Box::new(source),
            })?;
        for result in results {
            match result {
                Ok(name) => info!(topic = %name, "Topic deleted."),
                Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                    debug!(topic = %name, "Topic to delete does not exist.");
                }
                Err((topic, code)) => {
                    return Err(AdapterError::TopicRequest {
                        operation: "deleting the topic",
                        topic,
                        code: kafka_code(code),
                    });
                }
            }
        }
        Ok(())
    }

    /// Committed position and watermarks of `group_id` for every partition of `topic`,
    /// sorted by partition.
    pub async fn partition_lag(
        &self,
        group_id: &str,
        topic: &str,
    ) -> Result<Vec<PartitionLag>, AdapterError> {
        let query = GroupQuery::new(self, group_id, topic);
        run_blocking("reading group positions and watermarks", move || {
            query.run(true)
        })
        .await
    }
}

impl TopicAdmin for KafkaAdmin {
    async fn create_topics(&self, topics: &[TopicSpec]) -> Result<(), AdapterError> {
        if topics.is_empty() {
            return Ok(());
        }
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|spec| {
                // `BROKER_DEFAULT_REPLICATION` (-1) passes through as is: librdkafka (>= 2.4)
                // sends it and the broker applies its `default.replication.factor`.
                NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(spec.replication),
                )
            })
            .collect();
        let options = AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout));
        let results = self
            .admin
            .create_topics(&new_topics, &options)
            .await
            .map_err(|source| AdapterError::Request {
                operation: "creating topics",
                topic: None,
                code: kafka_code_of(&source),
                source: Box::new(source),
            })?;
        for result in results {
            match result {
                Ok(name) => info!(topic = %name, "Topic created."),
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    debug!(topic = %name, "Topic already exists.");
                }
                Err((name, code)) => {
                    let spec = topics.iter().find(|spec| spec.name == name);
                    return Err(AdapterError::CreateTopic {
                        partitions: spec.map_or(0, |spec| spec.partitions),
                        replication: spec.map_or(0, |spec| spec.replication),
                        topic: name,
                        code: kafka_code(code),
                    });
                }
            }
        }
        Ok(())
    }

    fn partitions_of(
        &self,
        topic: &str,
    ) -> impl Future<Output = Result<Option<i32>, AdapterError>> + Send {
        let admin = Arc::clone(&self.admin);
        let topic = topic.to_owned();
        let timeout = self.timeout;
        async move {
            run_blocking("fetching topic metadata", move || {
                partition_count(admin.inner(), &topic, timeout)
            })
            .await
        }
    }

    fn committed_positions(
        &self,
        group_id: &str,
        topic: &str,
    ) -> impl Future<Output = Result<Vec<(i32, Option<i64>)>, AdapterError>> + Send {
        let query = GroupQuery::new(self, group_id, topic);
        async move {
            let lags =
                run_blocking("reading committed positions", move || query.run(false)).await?;
            Ok(lags
                .into_iter()
                .map(|lag| (lag.partition, lag.committed))
                .collect())
        }
    }
}

/// The partition count of `topic`, `None` when the cluster does not know it.
pub(crate) fn partition_count<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Option<i32>, AdapterError> {
    let metadata = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|source| AdapterError::Request {
            operation: "fetching topic metadata",
            topic: Some(topic.to_owned()),
            code: kafka_code_of(&source),
            source: Box::new(source),
        })?;
    let Some(found) = metadata.topics().iter().find(|found| found.name() == topic) else {
        return Ok(None);
    };
    match found.error().map(RDKafkaErrorCode::from) {
        None => Ok(Some(
            i32::try_from(found.partitions().len()).unwrap_or(i32::MAX),
        )),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            Ok(None)
        }
        Some(code) => Err(AdapterError::TopicRequest {
            operation: "fetching topic metadata",
            topic: topic.to_owned(),
            code: kafka_code(code),
        }),
    }
}

/// Asks about a group's positions with a short-lived consumer that never joins the group.
struct GroupQuery {
    config: KafkaConfig,
    group_id: String,
    topic: String,
    timeout: Duration,
}

impl GroupQuery {
    fn new(admin: &KafkaAdmin, group_id: &str, topic: &str) -> Self {
        Self {
            config: admin.config.clone(),
            group_id: group_id.to_owned(),
            topic: topic.to_owned(),
            timeout: admin.timeout,
        }
    }

    fn run(&self, with_watermarks: bool) -> Result<Vec<PartitionLag>, AdapterError> {
        let mut client_config = self.config.client_config(&[]);
        client_config
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "false")
            .set("allow.auto.create.topics", "false");
        let consumer: BaseConsumer<LoggingContext> = client_config
            .create_with_context(LoggingContext)
            .map_err(|source| AdapterError::ClientCreation {
                client: "offset query consumer",
                bootstrap_servers: self.config.bootstrap_servers.clone(),
                code: kafka_code_of(&source),
                source: Box::new(source),
            })?;
        let topic = self.topic.as_str();
        let partitions =
            partition_count(consumer.client(), topic, self.timeout)?.ok_or_else(|| {
                AdapterError::UnknownTopic {
                    topic: topic.to_owned(),
                }
            })?;
        let mut list = TopicPartitionList::with_capacity(usize::try_from(partitions).unwrap_or(0));
        for partition in 0..partitions {
            list.add_partition(topic, partition);
        }
        let committed = consumer
            .committed_offsets(list, self.timeout)
            .map_err(|source| AdapterError::Request {
                operation: "fetching committed offsets",
                topic: Some(topic.to_owned()),
                code: kafka_code_of(&source),
                source: Box::new(source),
            })?;
        (0..partitions)
            .map(|partition| {
                let committed = match committed
                    .find_partition(topic, partition)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(offset)) => Some(offset),
                    _ => None,
                };
                let (low_watermark, high_watermark) = if with_watermarks {
                    consumer
                        .fetch_watermarks(topic, partition, self.timeout)
                        .map_err(|source| AdapterError::Request {
                            operation: "fetching watermarks",
                            topic: Some(topic.to_owned()),
                            code: kafka_code_of(&source),
                            source: Box::new(source),
                        })?
                } else {
                    (0, 0)
                };
                Ok(PartitionLag {
                    partition,
                    committed,
                    low_watermark,
                    high_watermark,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_committed_position_or_the_log_start() {
        let committed = PartitionLag {
            partition: 0,
            committed: Some(7),
            low_watermark: 0,
            high_watermark: 10,
        };
        assert_eq!(committed.lag(), 3);
        let never = PartitionLag {
            committed: None,
            low_watermark: 4,
            ..committed
        };
        assert_eq!(never.lag(), 6);
        let truncated_past_commit = PartitionLag {
            committed: Some(2),
            ..never
        };
        assert_eq!(truncated_past_commit.lag(), 6);
    }
}

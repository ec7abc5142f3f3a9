//! The broker check a tool makes before it starts, so a dead broker fails in seconds with a
//! clear message instead of every record timing out.

use std::time::Duration;

use anyhow::{Context, Result};
use kafka_adapters::{KafkaConfig, TopicAdmin};

/// The topics of `topics` the broker does not have, in the order given. Each metadata request
/// may take `connect_timeout`; an unreachable broker is an error that says where it was sought.
pub async fn missing_topics<'a>(
    kafka: &KafkaConfig,
    topics: impl IntoIterator<Item = &'a str>,
    connect_timeout: Duration,
) -> Result<Vec<String>> {
    let bootstrap = &kafka.bootstrap_servers;
    let admin = kafka_adapters::kafka_admin(kafka)
        .context("cannot create the Kafka admin client")?
        .with_timeout(connect_timeout);
    let mut missing = Vec::new();
    for topic in topics {
        let partitions = admin.partitions_of(topic).await.with_context(|| {
            format!(
                "cannot reach the Kafka broker at {bootstrap} within {connect_timeout:?}; check --bootstrap-servers and that the broker is up"
            )
        })?;
        if partitions.is_none() {
            missing.push(topic.to_owned());
        }
    }
    Ok(missing)
}

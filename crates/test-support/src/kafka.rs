//! Broker helpers for tests: topics, producing fixtures, reading headers.

use std::time::{Duration, Instant};

use kafka_adapters::{
    DeliveryReport, KafkaConfig, KafkaRecordSink, OutboundRecord, RecordSink, TopicAdmin,
    TopicRecord, TopicSpec, kafka_admin, kafka_producer,
};
use tokio::sync::mpsc::UnboundedReceiver;

/// Creates `names`, each with `partitions` partitions (replication 1, as on the local stack).
///
/// # Panics
/// When the admin client cannot be built or the broker refuses.
pub async fn create_topics<'a>(
    kafka: &KafkaConfig,
    names: impl IntoIterator<Item = &'a str>,
    partitions: i32,
) {
    let specs: Vec<TopicSpec> = names
        .into_iter()
        .map(|name| TopicSpec {
            name: name.to_owned(),
            partitions,
            replication: 1,
        })
        .collect();
    kafka_admin(kafka)
        .expect("admin client")
        .create_topics(&specs)
        .await
        .expect("topics created");
}

/// Produces `records` and returns once the broker acknowledged every one of them. Records the
/// local queue refuses (full) or the broker fails are sent again, so large batches work too.
///
/// Builds a producer for the call (about half a second on Kafka): to produce many batches, keep
/// a [`BatchProducer`].
///
/// # Panics
/// When the producer cannot be built, or not every record is acknowledged within `patience`.
pub async fn produce_and_wait(
    kafka: &KafkaConfig,
    records: Vec<OutboundRecord>,
    patience: Duration,
) {
    BatchProducer::new(kafka)
        .produce_and_wait(records, patience)
        .await;
}

/// A producer kept open across batches, each produced like [`produce_and_wait`] does.
pub struct BatchProducer {
    sink: KafkaRecordSink,
    reports: UnboundedReceiver<DeliveryReport>,
}

impl std::fmt::Debug for BatchProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchProducer").finish_non_exhaustive()
    }
}

impl BatchProducer {
    /// # Panics
    /// When the producer cannot be built.
    pub fn new(kafka: &KafkaConfig) -> Self {
        let (reports_sender, reports) = tokio::sync::mpsc::unbounded_channel();
        let sink = kafka_producer(kafka, reports_sender).expect("producer");
        Self { sink, reports }
    }

    /// Produces `records` and returns once the broker acknowledged every one of them, sending
    /// again what the local queue refuses (full) or the broker fails.
    ///
    /// # Panics
    /// When not every record is acknowledged within `patience`.
    pub async fn produce_and_wait(&mut self, records: Vec<OutboundRecord>, patience: Duration) {
        let total = records.len();
        let mut pending: Vec<(usize, OutboundRecord)> = records.into_iter().enumerate().collect();
        let mut acknowledged = 0;
        let deadline = Instant::now() + patience;
        while acknowledged < total {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "producing timed out: {acknowledged}/{total} acknowledged within {patience:?}"
            );
            let mut refused = Vec::new();
            for (tag, record) in pending.drain(..) {
                if let Err(rejected) = self.sink.send(record, tag) {
                    refused.push((tag, rejected.record));
                }
            }
            pending = refused;
            // With records still waiting for room in the queue, look again soon.
            let wait = match pending.is_empty() {
                true => left,
                false => left.min(Duration::from_millis(10)),
            };
            match tokio::time::timeout(wait, self.reports.recv()).await {
                Ok(Some(report)) => match report.result {
                    Ok(_) => acknowledged += 1,
                    Err(failure) => pending.push((report.tag, failure.record)),
                },
                Ok(None) => panic!("producer reports closed"),
                Err(_) => {}
            }
        }
    }
}

/// The value of header `name` of `record`, when it is there and UTF-8.
pub fn header<'a>(record: &'a TopicRecord, name: &str) -> Option<&'a str> {
    record
        .headers
        .iter()
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| std::str::from_utf8(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{require_stack, unique_name};
    use kafka_adapters::{ReadUntil, read_topic};
    use std::sync::Arc;

    #[tokio::test]
    async fn topics_are_created_with_the_partitions_asked_for() {
        let stack = require_stack!();
        let kafka = KafkaConfig::new(stack.kafka_bootstrap);
        let (first, second) = (unique_name("ts-first"), unique_name("ts-second"));
        create_topics(&kafka, [first.as_str(), second.as_str()], 2).await;
        let admin = kafka_admin(&kafka).expect("admin");
        for topic in [&first, &second] {
            assert_eq!(
                admin.partitions_of(topic).await.expect("metadata"),
                Some(2),
                "{topic}"
            );
        }
    }

    #[tokio::test]
    async fn every_record_is_on_the_topic_when_produce_returns_even_past_a_full_queue() {
        let stack = require_stack!();
        let topic = unique_name("ts-produce");
        // A queue of 10 refuses most of 300 sends at first: they must be sent again.
        let kafka =
            KafkaConfig::new(stack.kafka_bootstrap).with("queue.buffering.max.messages", "10");
        create_topics(&kafka, [topic.as_str()], 3).await;
        let shared: Arc<str> = Arc::from(topic.as_str());
        let records = (0..300)
            .map(|index| OutboundRecord {
                topic: Arc::clone(&shared),
                key: Some(format!("key-{index}").into_bytes()),
                payload: format!("value-{index}").into_bytes(),
                headers: vec![("index".to_owned(), index.to_string().into_bytes())],
            })
            .collect();
        produce_and_wait(&kafka, records, Duration::from_secs(60)).await;
        let stored = read_topic(&kafka, &topic, ReadUntil::End, Duration::from_secs(60))
            .await
            .expect("topic readable");
        let mut indexes: Vec<usize> = stored
            .iter()
            .map(|record| {
                header(record, "index")
                    .and_then(|index| index.parse().ok())
                    .expect("index header")
            })
            .collect();
        indexes.sort_unstable();
        assert_eq!(indexes, (0..300).collect::<Vec<usize>>());
    }

    #[test]
    fn header_is_the_first_one_of_that_name_when_it_is_utf8() {
        let record = TopicRecord {
            partition: 0,
            offset: 0,
            key: None,
            payload: None,
            headers: vec![
                // Any header name: the helper knows no vocabulary (the dead-letter one is
                // router-core's).
                ("kind".to_owned(), b"first".to_vec()),
                ("kind".to_owned(), b"later".to_vec()),
                ("binary".to_owned(), vec![0xff, 0xfe]),
            ],
            timestamp_ms: None,
        };
        assert_eq!(header(&record, "kind"), Some("first"));
        assert_eq!(header(&record, "binary"), None);
        assert_eq!(header(&record, "absent"), None);
    }
}

//! [`cli_support::missing_topics`] against an unreachable address and the local stack.

use std::time::{Duration, Instant};

use cli_support::{missing_topics, one_line};
use kafka_adapters::{KafkaConfig, TopicAdmin, TopicSpec, kafka_admin};
use test_support::{require_stack, unique_name};

#[tokio::test]
async fn unreachable_broker_is_an_error_naming_it_within_the_timeout() {
    let started = Instant::now();
    let error = missing_topics(
        &KafkaConfig::new("127.0.0.1:1"),
        ["any-topic"],
        Duration::from_millis(1500),
    )
    .await
    .expect_err("nothing listens on port 1");
    assert!(
        one_line(&error).starts_with(
            "cannot reach the Kafka broker at 127.0.0.1:1 within 1.5s; check --bootstrap-servers"
        ),
        "{error:#}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn only_the_topics_the_broker_lacks_are_listed_in_the_order_given() {
    let stack = require_stack!();
    let kafka = KafkaConfig::new(stack.kafka_bootstrap);
    let present = unique_name("cli-present");
    kafka_admin(&kafka)
        .expect("admin")
        .create_topics(&[TopicSpec {
            name: present.clone(),
            partitions: 1,
            replication: 1,
        }])
        .await
        .expect("topic created");
    let (absent_b, absent_a) = (unique_name("cli-absent-b"), unique_name("cli-absent-a"));
    let missing = missing_topics(
        &kafka,
        [absent_b.as_str(), present.as_str(), absent_a.as_str()],
        Duration::from_secs(10),
    )
    .await
    .expect("broker reachable");
    assert_eq!(missing, [absent_b, absent_a]);
}

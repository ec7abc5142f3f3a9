//! "No partition ever wedges, nothing is silently dropped" when the broker refuses an output:
//! the processor binary against the real stack, one world (topics, group, routing) per test.
//!
//! - An event too large for the limit is dead-lettered; one too large even for the dead-letter
//!   topic is dead-lettered without its value (size and SHA-256 instead); one just under the
//!   limit is routed; the events after them are routed and the group commits the end.
//! - An output topic deleted mid-run: its events are dead-lettered as `refused` with the
//!   broker's error, the other destinations keep flowing, and the group commits the end.

mod support;

use kafka_adapters::{KafkaConfig, OutboundRecord, TopicRecord};
use pipeline::dead_letter_headers as headers;
use router_core::ProducerToProcessor;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use support::{SentEvent, World, allowed, now_ms, payload_id};
use test_support::{header, produce_and_wait, require_stack};

const PATIENCE: Duration = Duration::from_secs(180);

/// A FINANCE → FINANCE event keyed `key` whose payload string has `payload_len` bytes.
fn sized_event(world: &World, key: &str, payload_len: usize) -> OutboundRecord {
    let mut payload = format!("dummy-payload {key} ");
    payload.extend(std::iter::repeat_n(
        'x',
        payload_len.saturating_sub(payload.len()),
    ));
    OutboundRecord {
        topic: Arc::from(world.input.as_str()),
        key: Some(key.as_bytes().to_vec()),
        payload: world.encoder.encode_to_vec(&ProducerToProcessor {
            origin_service_id: "finance-svc".to_owned(),
            origin_service_type: "FINANCE".to_owned(),
            destination_service_type: "FINANCE".to_owned(),
            event_timestamp: now_ms(),
            payload,
        }),
        headers: Vec::new(),
    }
}

/// A FINANCE → FINANCE event keyed `key` whose key + headers + value count exactly `size`
/// bytes, as the processor's limit counts them.
fn event_of_record_size(world: &World, key: &str, size: usize) -> OutboundRecord {
    let probe = sized_event(world, key, size / 2);
    let overhead =
        pipeline::record_bytes(probe.key.as_deref(), &probe.headers, probe.payload.len())
            - size / 2;
    let record = sized_event(world, key, size - overhead);
    assert_eq!(
        pipeline::record_bytes(record.key.as_deref(), &record.headers, record.payload.len()),
        size,
        "the Avro length prefix kept its size"
    );
    record
}

fn key_of(record: &TopicRecord) -> String {
    String::from_utf8(record.key.clone().unwrap_or_default()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_events_are_dead_lettered_and_never_wedge_their_partition() {
    let stack = require_stack!();
    let world = World::new(stack, "refused-size", 1).await;
    let limit = pipeline::PipelineConfig::new("p", "d").max_record_bytes;
    let before = world.plan_events("before", 50);
    let after = world.plan_events("after", 50);
    let huge = sized_event(&world, "huge", 1_000_001);
    let just_over = event_of_record_size(&world, "just-over", limit + 1);
    let just_under = event_of_record_size(&world, "just-under", limit);
    let mut records = world.input_records(&before);
    records.extend([huge.clone(), just_over.clone(), just_under.clone()]);
    records.extend(world.input_records(&after));
    // The test's own producer must send a 1 MB record; the input topic takes up to the broker's
    // message.max.bytes (1048588 by default).
    let producer = KafkaConfig::new(world.stack.kafka_bootstrap.clone())
        .with("message.max.bytes", "1048576")
        .with("linger.ms", "0");
    produce_and_wait(&producer, records, Duration::from_secs(120)).await;

    let processor = world.start_processor("processor-refused-size");
    let ends = world
        .wait_fully_committed(PATIENCE, || processor.log())
        .await;
    assert_eq!(ends.get(&0), Some(&103), "the group committed the end");
    assert_eq!(
        world.committed().await,
        vec![(0, Some(103))],
        "committed offset"
    );

    let good: Vec<&SentEvent> = before.iter().chain(&after).collect();
    let routable: BTreeSet<String> = good
        .iter()
        .filter(|event| allowed(event.tenant, &event.destination))
        .map(|event| event.id.clone())
        .chain(std::iter::once("just-under".to_owned()))
        .collect();
    let routed = world.routed_distinct(routable.len()).await;
    let routed_ids: BTreeSet<String> = routed
        .iter()
        .map(|(_, output, _)| {
            payload_id(&output.payload)
                .split(' ')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(
        routed_ids, routable,
        "every routable event, after the big ones too"
    );
    let under = routed
        .iter()
        .find(|(_, _, key)| key == "just-under")
        .expect("the event just under the limit is routed");
    assert_eq!(under.0, "FINANCE");

    // The good events the policy refuses, and the two over the limit.
    let unauthorized = good.len() - (routable.len() - 1);
    let dead = world
        .read(
            &world.dead_letter,
            unauthorized + 2,
            Duration::from_secs(60),
        )
        .await;
    let log = processor.log();
    assert!(processor.stop().success(), "log:\n{log}");
    assert_eq!(
        dead.len(),
        unauthorized + 2,
        "{:?}",
        dead.iter().map(key_of).collect::<Vec<_>>()
    );

    let over = dead
        .iter()
        .find(|record| key_of(record) == "just-over")
        .expect("just over the limit is dead-lettered");
    assert_eq!(header(over, headers::REASON), Some("too-large"));
    assert_eq!(over.payload.as_deref(), Some(just_over.payload.as_slice()));
    assert_eq!(header(over, headers::VALUE_OMITTED), None);

    let digest = dead
        .iter()
        .find(|record| key_of(record) == "huge")
        .expect("the 1 MB event is dead-lettered");
    assert_eq!(header(digest, headers::REASON), Some("too-large"));
    assert_eq!(header(digest, headers::VALUE_OMITTED), Some("true"));
    assert_eq!(
        header(digest, headers::VALUE_SIZE),
        Some(huge.payload.len().to_string().as_str())
    );
    assert_eq!(
        header(digest, headers::VALUE_SHA256),
        Some(pipeline::value_sha256(&huge.payload).as_str())
    );
    assert_eq!(header(digest, headers::SOURCE_OFFSET), Some("50"));
    assert_eq!(
        header(digest, headers::SOURCE_TOPIC),
        Some(world.input.as_str())
    );
    assert!(digest.payload.as_deref().unwrap_or_default().is_empty());
    assert!(
        dead.iter()
            .filter(|record| !["huge", "just-over"].contains(&key_of(record).as_str()))
            .all(|record| header(record, headers::REASON) == Some("unauthorized"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_topic_deleted_mid_run_dead_letters_its_events_and_the_rest_flows() {
    let stack = require_stack!();
    let world = World::new(stack, "refused-deleted", 1).await;
    let processor = world.start_processor_with(
        "processor-refused-deleted",
        &[
            "--producer-property",
            "topic.metadata.propagation.max.ms=1000",
        ],
        &[],
    );
    let before = world.plan_events("before", 30);
    world.produce(&before).await;
    let routable_before = before
        .iter()
        .filter(|event| allowed(event.tenant, &event.destination))
        .count();
    world.routed_distinct(routable_before).await;
    world
        .wait_fully_committed(PATIENCE, || processor.log())
        .await;

    let deleted = world.outputs["LOGISTICS"].clone();
    kafka_adapters::kafka_admin(&world.kafka)
        .expect("admin client")
        .delete_topics(&[&deleted])
        .await
        .expect("output topic deleted");

    let after = world.plan_events("after", 30);
    world.produce(&after).await;
    let ends = world
        .wait_fully_committed(PATIENCE, || processor.log())
        .await;
    assert_eq!(ends.get(&0), Some(&60));

    let refused_ids: BTreeSet<String> = after
        .iter()
        .filter(|event| event.destination == "LOGISTICS" && allowed(event.tenant, "LOGISTICS"))
        .map(|event| event.id.clone())
        .collect();
    let flowing_ids: BTreeSet<String> = after
        .iter()
        .filter(|event| {
            event.destination != "LOGISTICS" && allowed(event.tenant, &event.destination)
        })
        .map(|event| event.id.clone())
        .collect();
    assert!(!refused_ids.is_empty() && !flowing_ids.is_empty());

    let log = processor.log();
    assert!(processor.stop().success(), "log:\n{log}");

    let dead = world.read_all(&world.dead_letter).await;
    let refused: Vec<&TopicRecord> = dead
        .iter()
        .filter(|record| header(record, headers::REASON) == Some("refused"))
        .collect();
    let decoder = avro_codec::InputDecoder::new();
    let mut dead_lettered_ids = BTreeSet::new();
    for record in &refused {
        assert_eq!(
            header(record, headers::OUTPUT_TOPIC),
            Some(deleted.as_str())
        );
        let error = header(record, headers::ERROR).unwrap_or_default();
        assert!(
            error.contains(&deleted) && error.to_lowercase().contains("unknown"),
            "the broker's error: {error}"
        );
        // The dead letter carries the input's own bytes: they decode as the input event.
        let value = record.payload.as_deref().expect("the input's value");
        let event = decoder
            .decode_or_load(value, &world.registry)
            .await
            .expect("the input event");
        assert_eq!(event.destination_service_type, "LOGISTICS");
        dead_lettered_ids.insert(payload_id(&event.payload).to_owned());
    }
    assert_eq!(dead_lettered_ids, refused_ids, "log:\n{log}");
    assert_eq!(refused.len(), refused_ids.len(), "one dead letter each");

    // The other destinations kept flowing: every routable "after" event elsewhere landed.
    let topics: Vec<&str> = world
        .outputs
        .iter()
        .filter(|(destination, _)| **destination != "LOGISTICS")
        .map(|(_, topic)| topic.as_str())
        .collect();
    let landed: BTreeSet<String> = world
        .landed(&topics, 0)
        .await
        .into_iter()
        .map(|landed| landed.id)
        .filter(|id| id.starts_with("after-"))
        .collect();
    assert_eq!(landed, flowing_ids);
}

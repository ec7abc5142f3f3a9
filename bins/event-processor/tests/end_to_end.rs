//! The processor binary against the real stack (broker + registry on 127.0.0.1).

mod support;

use pipeline::dead_letter_headers as headers;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::{World, allowed, payload_id};
use test_support::{header, require_stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_every_event_to_its_destination_and_poison_to_the_dead_letter_topic() {
    let stack = require_stack!();
    let world = World::new(stack, "routing", 3).await;
    let events = world.plan_events("route", 270);
    world.produce(&events).await;
    let poison: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..5)
        .map(|index| {
            (
                Some(format!("poison-{index}").into_bytes()),
                format!("not avro {index}").into_bytes(),
            )
        })
        .collect();
    world.produce_raw(poison).await;

    let processor = world.start_processor("processor-routing");
    let expected_routed: Vec<_> = events
        .iter()
        .filter(|event| allowed(event.tenant, &event.destination))
        .collect();
    let routed = world.routed(expected_routed.len()).await;
    assert_eq!(
        routed.len(),
        expected_routed.len(),
        "routed count; log:\n{}",
        processor.log()
    );

    let landed: BTreeMap<String, (&str, String)> = routed
        .iter()
        .map(|(destination, output, key)| {
            assert_eq!(
                output.destination_type, *destination,
                "landed on its destination's topic"
            );
            assert_eq!(output.processor_service_id, "processor-routing");
            assert!(output.processor_event_timestamp >= output.producer_event_timestamp);
            (
                payload_id(&output.payload).to_owned(),
                (*destination, key.clone()),
            )
        })
        .collect();
    assert_eq!(landed.len(), routed.len(), "no event routed twice");
    for event in &expected_routed {
        let (destination, key) = landed
            .get(&event.id)
            .unwrap_or_else(|| panic!("{} missing", event.id));
        assert_eq!(*destination, event.destination);
        assert_eq!(
            *key,
            format!("{}-svc:{}", event.tenant.to_lowercase(), event.destination),
            "key kept"
        );
    }

    let denied = events.len() - expected_routed.len();
    let dead_letters = world
        .read(&world.dead_letter, denied + 5, Duration::from_secs(60))
        .await;
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for record in &dead_letters {
        *reasons
            .entry(header(record, headers::REASON).expect("reason header"))
            .or_default() += 1;
        assert_eq!(
            header(record, headers::SOURCE_TOPIC),
            Some(world.input.as_str())
        );
        assert!(header(record, headers::SOURCE_OFFSET).is_some());
        assert_eq!(
            header(record, headers::PROCESSOR_ID),
            Some("processor-routing")
        );
    }
    assert_eq!(reasons.get("unauthorized"), Some(&denied));
    assert_eq!(reasons.get("undecodable"), Some(&5));
    let poison_values: BTreeSet<Vec<u8>> = dead_letters
        .iter()
        .filter(|record| header(record, headers::REASON) == Some("undecodable"))
        .map(|record| record.payload.clone().unwrap_or_default())
        .collect();
    assert!(
        poison_values.contains(b"not avro 3".as_slice()),
        "original bytes kept"
    );

    let status = processor.stop();
    assert!(status.success(), "clean exit after SIGTERM: {status}");
    let ends = world.input_ends().await;
    let committed: BTreeMap<i32, i64> = world
        .committed()
        .await
        .into_iter()
        .filter_map(|(partition, offset)| offset.map(|offset| (partition, offset)))
        .collect();
    assert_eq!(
        committed, ends,
        "every input offset committed, poison included"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_commits_everything_so_a_restart_routes_nothing_twice() {
    let stack = require_stack!();
    let world = World::new(stack, "graceful", 3).await;
    let first = only_allowed(world.plan_events("first", 1_500));
    world.produce(&first).await;
    let processor = world.start_processor("processor-graceful-1");
    assert_eq!(world.routed(first.len()).await.len(), first.len());
    assert!(processor.stop().success());

    let second = only_allowed(world.plan_events("second", 300));
    let restarted = world.start_processor("processor-graceful-2");
    restarted.wait_assigned().await;
    world.produce(&second).await;
    let routed = world.routed(first.len() + second.len()).await;
    // Give a duplicate, if any, time to show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let routed_again = world.routed(routed.len()).await;
    assert!(restarted.stop().success());
    let ids: Vec<&str> = routed_again
        .iter()
        .map(|(_, output, _)| payload_id(&output.payload))
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        first.len() + second.len(),
        "every event routed"
    );
    assert_eq!(
        ids.len(),
        unique.len(),
        "no duplicates after a graceful restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_partitions_and_route_everything_once() {
    let stack = require_stack!();
    let world = World::new(stack, "two-instances", 4).await;
    let one = world.start_processor("processor-a");
    let two = world.start_processor("processor-b");
    one.wait_assigned().await;
    two.wait_assigned().await;
    // Let the group settle on a two-member assignment before producing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events = only_allowed(world.plan_events("shared", 3_000));
    world.produce(&events).await;
    let routed = world.routed(events.len()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let routed = world.routed(routed.len()).await;
    let by_instance: BTreeMap<&str, usize> =
        routed
            .iter()
            .fold(BTreeMap::new(), |mut counts, (_, output, _)| {
                *counts
                    .entry(output.processor_service_id.as_str())
                    .or_default() += 1;
                counts
            });
    assert_eq!(
        by_instance.len(),
        2,
        "both instances routed events: {by_instance:?}"
    );
    let unique: BTreeSet<&str> = routed
        .iter()
        .map(|(_, output, _)| payload_id(&output.payload))
        .collect();
    assert_eq!(unique.len(), events.len(), "every event routed");
    assert_eq!(
        routed.len(),
        events.len(),
        "each exactly once in the happy path"
    );
    assert!(one.stop().success());
    assert!(two.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_repeated_sigkill_without_losing_an_event() {
    let stack = require_stack!();
    let world = std::sync::Arc::new(World::new(stack, "crash", 3).await);
    let events = only_allowed(world.plan_events("crash", 24_000));
    let total = events.len();
    assert!(total >= 20_000);

    let producer_world = std::sync::Arc::clone(&world);
    let producing = tokio::spawn(async move {
        for chunk in events.chunks(2_000) {
            producer_world.produce(chunk).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut processor = world.start_processor("processor-crash-0");
    for round in 1..=3 {
        processor.wait_assigned().await;
        tokio::time::sleep(Duration::from_millis(500 + jitter_ms(1_500))).await;
        processor.crash();
        processor = world.start_processor(&format!("processor-crash-{round}"));
    }
    producing.await.expect("producer finished");
    let routed = world.routed_distinct(total).await;
    let ids: Vec<&str> = routed
        .iter()
        .map(|(_, output, _)| payload_id(&output.payload))
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    let duplicates = ids.len() - unique.len();
    eprintln!(
        "crash test: {total} events, {} routed records, {duplicates} duplicates after 3 SIGKILLs",
        ids.len()
    );
    let missing: Vec<String> = (0..24_000)
        .map(|index| format!("crash-{index}"))
        .filter(|id| !unique.contains(id.as_str()))
        .filter(|id| {
            let index: usize = id["crash-".len()..].parse().unwrap_or_default();
            allowed(
                support::TENANTS[index % 3],
                support::DESTINATIONS[(index / 3) % 3],
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} events lost, e.g. {:?}; log:\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        processor.log()
    );
    assert_eq!(unique.len(), total);
    assert!(processor.stop().success());
}

fn only_allowed(events: Vec<support::SentEvent>) -> Vec<support::SentEvent> {
    events
        .into_iter()
        .filter(|event| allowed(event.tenant, &event.destination))
        .collect()
}

fn jitter_ms(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    u64::from(nanos) % max
}

//! The consumer lag the processor exports, checked per partition against the broker on the real
//! stack.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::{Processor, Scrape, SentEvent, World, allowed, payload_id};
use test_support::require_stack;

const LAG: &str = "event_processor_consumer_lag";
const WAIT: Duration = Duration::from_secs(90);

fn only_allowed(events: Vec<SentEvent>) -> Vec<SentEvent> {
    events
        .into_iter()
        .filter(|event| allowed(event.tenant, &event.destination))
        .collect()
}

/// The lag the processor reports per input partition.
fn reported_lag(
    scrape: &Scrape,
    world: &World,
    partitions: impl Iterator<Item = i32>,
) -> BTreeMap<i32, f64> {
    partitions
        .map(|partition| {
            let labels = [
                ("topic", world.input.as_str()),
                ("partition", &partition.to_string()),
            ];
            let value = match scrape.has(LAG, &labels) {
                true => scrape.value(LAG, &labels),
                false => f64::NAN,
            };
            (partition, value)
        })
        .collect()
}

/// Scrapes until the processor reports exactly `expected` as the lag of each partition.
async fn wait_for_lag(
    processor: &Processor,
    world: &World,
    expected: &BTreeMap<i32, i64>,
) -> Scrape {
    processor
        .wait_for_metrics(&format!("consumer lag {expected:?}"), WAIT, |scrape| {
            reported_lag(scrape, world, expected.keys().copied())
                .iter()
                .all(|(partition, lag)| *lag == expected[partition] as f64)
        })
        .await
}

/// The processor is held at a known committed position while it stays up and reports: it
/// reaches the registry through a proxy of the test's, and the test cuts the proxy before
/// producing records of a writer schema (v2) the processor has not loaded yet. The first of them
/// waits for the registry, nothing after it completes, nothing is committed, and the lag of each
/// partition is exactly what the test produced to it. Checked three ways: the figure on
/// `/metrics`, the broker's end offset (read from the records themselves) minus the group's
/// committed offset, and the test's own count per partition, which differs between partitions so
/// that a figure under the wrong partition label shows. Afterwards the registry comes back and
/// the lag returns to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_lag_per_partition_is_the_end_offset_minus_the_committed_offset() {
    let stack = require_stack!();
    let world = World::new(stack, "lag", 3).await;
    let (registry, registry_url) = support::registry_behind_proxy(&world.stack.registry_url).await;
    let processor = world.start_processor_with(
        "processor-lag",
        &["--schema-registry-url", &registry_url],
        &[],
    );
    processor.wait_assigned().await;

    // Routed and committed: no lag, with a committed offset above 0 on every partition. Each
    // event has a key of its own, so every partition gets some.
    let first = only_allowed(world.plan_events("first", 300));
    world
        .produce_raw(
            first
                .iter()
                .enumerate()
                .map(|(index, event)| {
                    let value = world.event_value(event.tenant, &event.destination, &event.id);
                    (Some(format!("key-{index}").into_bytes()), value)
                })
                .collect(),
        )
        .await;
    let committed_first = world.wait_fully_committed(WAIT, || processor.log()).await;
    assert_eq!(committed_first.len(), 3);
    assert!(
        committed_first.values().all(|end| *end > 0),
        "events on every partition: {committed_first:?}"
    );
    wait_for_lag(
        &processor,
        &world,
        &committed_first
            .keys()
            .map(|partition| (*partition, 0))
            .collect(),
    )
    .await;

    // A key of each partition, and a different number of events for each, written with a
    // schema the processor has not loaded yet.
    let v2 = world.register_input_v2().await;
    assert_ne!(v2, world.encoder.schema_id());
    let mut key_of_partition: BTreeMap<i32, Vec<u8>> = BTreeMap::new();
    for record in world.read_all(&world.input).await {
        key_of_partition
            .entry(record.partition)
            .or_insert_with(|| record.key.clone().expect("a key"));
    }
    let mut second = Vec::new();
    let mut expected = BTreeMap::new();
    for (index, (partition, key)) in key_of_partition.iter().enumerate() {
        let count = [37, 101, 230][index];
        expected.insert(*partition, count as i64);
        let events = only_allowed(world.plan_events(&format!("second-{partition}"), count * 2));
        for event in events.into_iter().take(count) {
            let value = support::encode_input_v2(v2, &world.input_record(&event), None);
            second.push((event, Some(key.clone()), value));
        }
    }

    // The registry away: the first of them waits for it.
    registry.cut();
    world
        .produce_raw(
            second
                .iter()
                .map(|(_, key, value)| (key.clone(), value.clone()))
                .collect(),
        )
        .await;
    // Held by the registry (it failed at least once), with the lag of what waits behind.
    processor
        .wait_for_metrics("the stream held by the registry", WAIT, |scrape| {
            scrape.value("event_processor_registry_failures_total", &[]) >= 1.0
        })
        .await;
    let scrape = wait_for_lag(&processor, &world, &expected).await;
    let routed: f64 = scrape
        .all("event_processor_events_routed_total")
        .iter()
        .map(|(_, value)| value)
        .sum();
    assert_eq!(
        routed,
        first.len() as f64,
        "nothing of the second batch routed"
    );
    let ends = world.input_ends().await;
    let committed: BTreeMap<i32, i64> = world
        .committed()
        .await
        .into_iter()
        .map(|(partition, offset)| (partition, offset.expect("a committed offset")))
        .collect();
    assert_eq!(committed, committed_first, "nothing committed while held");
    let reported = reported_lag(&scrape, &world, ends.keys().copied());
    for (partition, end) in &ends {
        let broker_lag = end - committed[partition];
        assert_eq!(
            broker_lag, expected[partition],
            "partition {partition}: end {end} - committed {} against the test's count",
            committed[partition]
        );
        assert_eq!(
            reported[partition], broker_lag as f64,
            "partition {partition}: reported lag against end {end} - committed {}; all reported: {reported:?}",
            committed[partition]
        );
    }

    // The registry back: everything routed and committed, no lag left.
    registry
        .restore()
        .await
        .expect("the proxy listens again on its port");
    let ends = world.wait_fully_committed(WAIT, || processor.log()).await;
    assert_eq!(
        ends.values().sum::<i64>(),
        (first.len() + second.len()) as i64
    );
    wait_for_lag(
        &processor,
        &world,
        &ends.keys().map(|partition| (*partition, 0)).collect(),
    )
    .await;
    let routed: BTreeSet<String> = world
        .routed_now()
        .await
        .iter()
        .map(|(_, output, _)| payload_id(&output.payload).to_owned())
        .collect();
    for event in first.iter().chain(second.iter().map(|(event, _, _)| event)) {
        assert!(routed.contains(&event.id), "{} routed", event.id);
    }
    assert!(processor.stop().success());
}

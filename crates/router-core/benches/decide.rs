//! Routing decisions per second on the hot path.
//!
//! `cargo bench -p router-core --bench decide`; the README records the figure.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use router_core::{AllowRule, OutputTarget, Policy, ProducerToProcessor, Router, RoutingTable};
use std::hint::black_box;

const SEED_JSON: &str = r#"{"FINANCE": {"output_topic": "processor.to.finance", "output_subject": "processor.to.consumer-value"}, "MARKETING": {"output_topic": "processor.to.marketing", "output_subject": "processor.to.consumer-value"}, "LOGISTICS": {"output_topic": "processor.to.logistics", "output_subject": "processor.to.consumer-value"}}"#;

fn event(origin_type: &str, origin_id: &str, destination: &str) -> ProducerToProcessor {
    ProducerToProcessor {
        origin_service_id: origin_id.to_owned(),
        origin_service_type: origin_type.to_owned(),
        destination_service_type: destination.to_owned(),
        event_timestamp: 1_650_000_000_000,
        payload: "dummy-payload 00000000-0000-0000-0000-000000000000".to_owned(),
    }
}

/// Routed events in the spellings producers use, one per destination.
fn seed_events() -> Vec<ProducerToProcessor> {
    ["FINANCE", "marketing", "Logistics"]
        .iter()
        .map(|destination| event("FINANCE", "svc-1", destination))
        .collect()
}

/// 200 destinations, each allowed to 20 service types with id lists: a large tenant setup.
fn large_router() -> (Router, Vec<ProducerToProcessor>) {
    let names: Vec<String> = (0..200).map(|n| format!("DESTINATION_{n:03}")).collect();
    let table = RoutingTable::new(names.iter().map(|name| {
        let topic = format!("processor.to.{}", name.to_lowercase());
        (
            name.as_str(),
            vec![OutputTarget::with_default_subject(topic)],
        )
    }))
    .expect("valid table");
    let rules = (0..20)
        .map(|tenant| {
            AllowRule::new(format!("TENANT_{tenant}"), names.iter().cloned())
                .only_ids((0..5).map(|id| format!("svc-{id}")))
        })
        .collect();
    let router = Router::new(table, Policy::deny_by_default(rules)).expect("valid policy");
    let events = (0..64)
        .map(|n| {
            let destination = names[(n * 37) % names.len()].to_lowercase();
            event(
                &format!("tenant_{}", n % 20),
                &format!("svc-{}", n % 5),
                &destination,
            )
        })
        .collect();
    (router, events)
}

/// How many of `events` are routed; every benchmark checks its events are all routed, so the
/// figure is for the hot path, not for dead-lettering.
fn routed(router: &Router, events: &[ProducerToProcessor]) -> usize {
    events
        .iter()
        .filter(|event| router.decide(black_box(event)).is_route())
        .count()
}

fn decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");

    let allow_all = Router::from_prototype_json(SEED_JSON).expect("seed configuration");
    let events = seed_events();
    group.throughput(Throughput::Elements(events.len() as u64));
    assert_eq!(routed(&allow_all, &events), events.len());
    group.bench_function("seed_table_allow_all", |b| {
        b.iter(|| routed(&allow_all, black_box(&events)));
    });

    let table = RoutingTable::from_prototype_json(SEED_JSON).expect("seed configuration");
    let policy = Policy::deny_by_default(vec![
        AllowRule::new("MARKETING", ["FINANCE"]),
        AllowRule::new("FINANCE", ["*"]).only_ids(["svc-0", "svc-1", "svc-2"]),
    ]);
    let deny_by_default = Router::new(table, policy).expect("valid policy");
    assert_eq!(routed(&deny_by_default, &events), events.len());
    group.bench_function("seed_table_deny_by_default", |b| {
        b.iter(|| routed(&deny_by_default, black_box(&events)));
    });

    let (large, events) = large_router();
    group.throughput(Throughput::Elements(events.len() as u64));
    assert_eq!(routed(&large, &events), events.len());
    group.bench_function("200_destinations_20_tenants", |b| {
        b.iter(|| routed(&large, black_box(&events)));
    });

    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);

//! The operator's side of the processor binary on the real stack: the metrics and probes
//! endpoint, hot reload of the routing file, and replaying dead letters after a fix.

mod support;

use router_core::Router;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::{Landed, Scrape, SentEvent, World, allowed, registry_behind_proxy};
use test_support::require_stack;

const ROUTED: &str = "event_processor_events_routed_total";
const DEAD_LETTERED: &str = "event_processor_events_dead_lettered_total";
const RELOADS: &str = "event_processor_routing_reloads_total";
const WAIT: Duration = Duration::from_secs(60);

fn routed_total(scrape: &Scrape) -> f64 {
    scrape.all(ROUTED).iter().map(|(_, value)| value).sum()
}

fn reloads(scrape: &Scrape, result: &str) -> f64 {
    scrape.value(RELOADS, &[("result", result)])
}

fn only_allowed(events: Vec<SentEvent>) -> Vec<SentEvent> {
    events
        .into_iter()
        .filter(|event| allowed(event.tenant, &event.destination))
        .collect()
}

/// `count` events MARKETING may not send (to LOGISTICS): each is dead-lettered as unauthorized.
fn unauthorized_events(tag: &str, count: usize) -> Vec<SentEvent> {
    (0..count)
        .map(|index| SentEvent {
            id: format!("{tag}-{index}"),
            tenant: "MARKETING",
            destination: "LOGISTICS".to_owned(),
        })
        .collect()
}

fn version_label(routing_toml: &str) -> String {
    let version = Router::from_toml_str(routing_toml)
        .expect("valid routing")
        .version();
    format!("{version:016x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_counts_routed_and_dead_lettered_events() {
    let stack = require_stack!();
    let world = World::new(stack, "metrics", 3).await;
    let processor = world.start_processor("processor-metrics");
    processor.wait_assigned().await;
    let routed: Vec<SentEvent> = only_allowed(world.plan_events("metrics", 1_200))
        .into_iter()
        .take(1_000)
        .collect();
    assert_eq!(routed.len(), 1_000);
    world.produce(&routed).await;
    world.produce(&unauthorized_events("denied", 10)).await;

    let scrape = processor
        .wait_for_metrics("1,000 routed and 10 dead-lettered", WAIT, |scrape| {
            routed_total(scrape) >= 1_000.0
                && scrape.value(DEAD_LETTERED, &[("reason", "unauthorized")]) >= 10.0
        })
        .await;
    assert_eq!(
        scrape.value("event_processor_events_consumed_total", &[]),
        1_010.0
    );
    assert_eq!(routed_total(&scrape), 1_000.0);
    let mut expected_per_topic: BTreeMap<&str, f64> = BTreeMap::new();
    for event in &routed {
        *expected_per_topic
            .entry(world.outputs[event.destination.as_str()].as_str())
            .or_default() += 1.0;
    }
    for (topic, expected) in &expected_per_topic {
        assert_eq!(
            scrape.value(ROUTED, &[("topic", topic)]),
            *expected,
            "routed to {topic}"
        );
    }
    for reason in router_core::DeadLetterCode::ALL.map(|code| code.as_str()) {
        let expected = if reason == "unauthorized" { 10.0 } else { 0.0 };
        assert_eq!(
            scrape.value(DEAD_LETTERED, &[("reason", reason)]),
            expected,
            "dead-lettered as {reason}"
        );
    }
    assert_eq!(
        scrape.value("event_processor_end_to_end_latency_seconds_count", &[]),
        1_000.0,
        "one latency observation per routed record"
    );
    assert_eq!(
        scrape.value(
            "event_processor_end_to_end_latency_seconds_bucket",
            &[("le", "+Inf")]
        ),
        1_000.0
    );
    assert_eq!(
        scrape.value("event_processor_produce_retries_total", &[]),
        0.0
    );
    assert_eq!(
        scrape.value("event_processor_assigned_partitions", &[]),
        3.0
    );
    assert!(scrape.has(
        "event_processor_routing_table_info",
        &[("version", &version_label(&world.routing_text()))]
    ));
    // The git commit it was built from follows (tests/deploy.rs checks it against `--version`).
    assert!(
        scrape
            .all("event_processor_build_info")
            .iter()
            .any(|(series, value)| *value == 1.0
                && series.starts_with(
                    "event_processor_build_info{version=\"0.0.0\",processor_id=\"processor-metrics\",commit=\""
                )),
        "build_info: {:?}",
        scrape.all("event_processor_build_info")
    );

    // Commits, their latency and the lag per partition follow within a commit interval and a
    // broker check.
    let scrape = processor
        .wait_for_metrics("commits and lag reported", WAIT, |scrape| {
            scrape.value("event_processor_offset_commits_total", &[("result", "ok")]) >= 1.0
                && scrape.value("event_processor_in_flight_records", &[]) == 0.0
                && (0..3).all(|partition| {
                    scrape.has(
                        "event_processor_consumer_lag",
                        &[
                            ("topic", &world.input),
                            ("partition", &partition.to_string()),
                        ],
                    )
                })
        })
        .await;
    assert!(scrape.value("event_processor_offset_commit_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(scrape.value("event_processor_stuck_records", &[]), 0.0);
    assert_eq!(scrape.value("event_processor_ready", &[]), 1.0);
    let url = format!("http://{}/metrics", processor.http_address().await);
    let client = reqwest::Client::new();
    let scrapes = 50;
    let started = std::time::Instant::now();
    for _ in 0..scrapes {
        let response = client.get(&url).send().await.expect("scraped");
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.expect("body");
    }
    eprintln!(
        "metrics: {} bytes, {:.2} ms per scrape over one keep-alive connection (debug build)",
        scrape.text.len(),
        started.elapsed().as_secs_f64() * 1000.0 / f64::from(scrapes)
    );
    assert!(processor.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_ready_report_status_and_reasons() {
    let stack = require_stack!();
    let world = World::new(stack, "probes", 3).await;
    // The real registry behind a proxy of the test's own, so the test can take it away without
    // stopping it for every other test.
    let (registry, registry_url) = registry_behind_proxy(&world.stack.registry_url).await;
    let processor = world.start_processor_with(
        "processor-probes",
        &["--schema-registry-url", &registry_url],
        &[],
    );
    processor.wait_assigned().await;

    let ready = processor.wait_for_ready_status(200, WAIT).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["reasons"], serde_json::json!([]));
    assert_eq!(ready["assigned_partitions"], 3);
    assert_eq!(
        ready["routing_version"],
        version_label(&world.routing_text()).as_str()
    );
    let (status, health) = processor.get_json("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "alive");

    registry.cut();
    let not_ready = processor.wait_for_ready_status(503, WAIT).await;
    assert_eq!(not_ready["status"], "not-ready");
    let reasons = not_ready["reasons"].as_array().expect("reasons");
    assert_eq!(reasons.len(), 1, "{not_ready}");
    assert!(
        reasons[0]
            .as_str()
            .is_some_and(|reason| reason.starts_with("schema registry unreachable: ")),
        "{not_ready}"
    );
    let (status, health) = processor.get_json("/health").await;
    assert_eq!(
        status, 200,
        "a registry outage is no reason to restart: {health}"
    );
    let scrape = processor.scrape().await;
    assert_eq!(scrape.value("event_processor_ready", &[]), 0.0);
    assert_eq!(scrape.value("event_processor_alive", &[]), 1.0);

    registry
        .restore()
        .await
        .expect("the proxy listens again on its port");
    let ready = processor.wait_for_ready_status(200, WAIT).await;
    assert_eq!(ready["status"], "ready");

    let (status, _) = processor.get("/nothing-here").await;
    assert_eq!(status, 404);
    assert!(processor.stop().success());
}

/// Per event: routed exactly once, and to the topic of the table in force when it was decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_valid_routing_table_mid_stream() {
    let stack = require_stack!();
    let world = std::sync::Arc::new(World::new(stack, "sighup", 3).await);
    let finance = world.outputs["FINANCE"].clone();
    let finance_v2 = format!("{finance}-v2");
    world.create_topic(&finance_v2).await;
    let old_routing = world.routing_text();
    let new_routing = old_routing.replace(
        &format!("topic = \"{finance}\""),
        &format!("topic = \"{finance_v2}\""),
    );
    assert_ne!(new_routing, old_routing);
    // Polling off: only the signal may reload.
    let processor =
        world.start_processor_with("processor-sighup", &["--routing-reload-poll-ms", "0"], &[]);
    processor.wait_assigned().await;

    // Before: decided with the old table.
    let before = only_allowed(world.plan_events("before", 300));
    world.produce(&before).await;
    processor
        .wait_for_metrics("the first events routed", WAIT, |scrape| {
            routed_total(scrape) >= before.len() as f64
        })
        .await;

    // During: events keep flowing while the file changes and the signal arrives, until a few
    // batches after the reload was reported.
    let planned = only_allowed(world.plan_events("during", 6_000));
    let producer_world = std::sync::Arc::clone(&world);
    let reloaded = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reload_seen = std::sync::Arc::clone(&reloaded);
    let producing = tokio::spawn(async move {
        let mut sent = Vec::new();
        let mut chunks_after_reload = 0;
        for chunk in planned.chunks(30) {
            producer_world.produce(chunk).await;
            sent.extend_from_slice(chunk);
            if reload_seen.load(std::sync::atomic::Ordering::Relaxed) {
                chunks_after_reload += 1;
                if chunks_after_reload == 5 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sent
    });
    processor
        .wait_for_metrics("events routed while producing", WAIT, |scrape| {
            routed_total(scrape) >= (before.len() + 60) as f64
        })
        .await;
    world.write_routing(&new_routing);
    processor.signal("HUP");
    processor
        .wait_for_metrics("the reload", WAIT, |scrape| reloads(scrape, "ok") == 1.0)
        .await;
    reloaded.store(true, std::sync::atomic::Ordering::Relaxed);
    let during = producing.await.expect("producer finished");

    // After: decided with the new table.
    let after = only_allowed(world.plan_events("after", 300));
    world.produce(&after).await;

    let mut topics: Vec<&str> = world.outputs.values().map(String::as_str).collect();
    topics.push(&finance_v2);
    let total = before.len() + during.len() + after.len();
    let landed = world.landed(&topics, total).await;
    let by_id: BTreeMap<&str, &Landed> = landed
        .iter()
        .map(|landed| (landed.id.as_str(), landed))
        .collect();
    assert_eq!(by_id.len(), landed.len(), "no event routed twice");
    assert_eq!(
        landed.len(),
        total,
        "none missing; log:\n{}",
        processor.log()
    );

    let expected_topic = |event: &SentEvent, new_table: bool| -> String {
        if event.destination == "FINANCE" && new_table {
            finance_v2.clone()
        } else {
            world.outputs[event.destination.as_str()].clone()
        }
    };
    for event in &before {
        assert_eq!(
            by_id[event.id.as_str()].topic,
            expected_topic(event, false),
            "{event:?}"
        );
    }
    for event in &after {
        assert_eq!(
            by_id[event.id.as_str()].topic,
            expected_topic(event, true),
            "{event:?}"
        );
    }
    // During the swap each key's events (one partition, in order) switch tables exactly once:
    // old table up to some event, new table from the next one on.
    let mut switched_keys = 0;
    let mut sequences: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    for event in &during {
        let landed = by_id[event.id.as_str()];
        let on_new = landed.topic == expected_topic(event, true);
        assert!(
            on_new || landed.topic == expected_topic(event, false),
            "{event:?} landed on {}",
            landed.topic
        );
        if event.destination == "FINANCE" {
            sequences
                .entry(landed.key.clone())
                .or_default()
                .push(on_new);
        }
    }
    for (key, sequence) in &sequences {
        let first_new = sequence.iter().position(|on_new| *on_new);
        if let Some(first_new) = first_new {
            assert!(
                sequence[first_new..].iter().all(|on_new| *on_new),
                "key {key} went back to the old table: {sequence:?}"
            );
            switched_keys += 1;
        }
    }
    let finance_during: Vec<bool> = sequences.values().flatten().copied().collect();
    let on_new = finance_during.iter().filter(|on_new| **on_new).count();
    eprintln!(
        "reload mid-stream: {} events while reloading, {} to FINANCE: {} on the old topic, {on_new} on the new one; {switched_keys} keys switched",
        during.len(),
        finance_during.len(),
        finance_during.len() - on_new
    );
    assert!(
        on_new > 0 && on_new < finance_during.len(),
        "the swap happened while events were flowing"
    );

    let scrape = processor.scrape().await;
    assert!(scrape.has(
        "event_processor_routing_table_info",
        &[("version", &version_label(&new_routing))]
    ));
    assert_eq!(reloads(&scrape, "failed"), 0.0);
    let log = processor.log();
    assert!(
        log.lines()
            .any(|line| line.contains("Routing table reloaded") && line.contains("trigger=SIGHUP")),
        "{log}"
    );
    assert!(processor.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_routing_file_keeps_the_old_table() {
    let stack = require_stack!();
    let world = World::new(stack, "invalid-routing", 3).await;
    let good_routing = world.routing_text();
    let processor = world.start_processor_with(
        "processor-invalid",
        &["--routing-reload-poll-ms", "100"],
        &[],
    );
    processor.wait_assigned().await;

    world.write_routing("version = 1\n[destinations.FINANCE]\noutputs = 42\n");
    processor
        .wait_for_metrics("the broken file rejected", WAIT, |scrape| {
            reloads(scrape, "failed") == 1.0
        })
        .await;
    // The poller sees the same broken content again and again: one error, not one per poll.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rejections = |log: &str| {
        log.lines()
            .filter(|line| line.contains("Routing file rejected"))
            .count()
    };
    assert_eq!(rejections(&processor.log()), 1, "{}", processor.log());
    assert!(processor.log().contains("invalid routing table"));

    // A valid table that points at a topic the broker does not have is just as invalid.
    let missing_topic = good_routing.replace(
        &format!("topic = \"{}\"", world.outputs["FINANCE"]),
        "topic = \"no-such-topic-for-this-test\"",
    );
    world.write_routing(&missing_topic);
    processor
        .wait_for_metrics("the file with a missing topic rejected", WAIT, |scrape| {
            reloads(scrape, "failed") == 2.0
        })
        .await;
    assert!(
        processor.log().contains("no-such-topic-for-this-test"),
        "the error names the missing topic"
    );

    let events = only_allowed(world.plan_events("kept", 90));
    world.produce(&events).await;
    let routed = world.routed(events.len()).await;
    assert_eq!(routed.len(), events.len());
    for (destination, output, _) in &routed {
        assert_eq!(
            output.destination_type, *destination,
            "old table still routes"
        );
    }
    let scrape = processor.scrape().await;
    assert_eq!(reloads(&scrape, "ok"), 0.0);
    assert!(scrape.has(
        "event_processor_routing_table_info",
        &[("version", &version_label(&good_routing))]
    ));
    let (status, _) = processor.get("/ready").await;
    assert_eq!(
        status, 200,
        "a rejected reload does not make the processor unready"
    );
    assert!(processor.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_file_change_is_picked_up_without_a_signal() {
    let stack = require_stack!();
    let world = World::new(stack, "file-change", 3).await;
    let marketing = world.outputs["MARKETING"].clone();
    let marketing_v2 = format!("{marketing}-v2");
    world.create_topic(&marketing_v2).await;
    let processor = world.start_processor_with(
        "processor-file-change",
        &["--routing-reload-poll-ms", "200"],
        &[],
    );
    processor.wait_assigned().await;

    let new_routing = world.routing_text().replace(
        &format!("topic = \"{marketing}\""),
        &format!("topic = \"{marketing_v2}\""),
    );
    world.write_routing(&new_routing);
    processor
        .wait_for_metrics("the change picked up", WAIT, |scrape| {
            reloads(scrape, "ok") == 1.0
        })
        .await;
    assert!(processor.log().lines().any(
        |line| line.contains("Routing table reloaded") && line.contains("trigger=file-change")
    ));

    let events: Vec<SentEvent> = only_allowed(world.plan_events("moved", 90))
        .into_iter()
        .filter(|event| event.destination == "MARKETING")
        .collect();
    assert!(!events.is_empty());
    world.produce(&events).await;
    let landed = world.landed(&[&marketing_v2], events.len()).await;
    let ids: BTreeSet<&str> = landed.iter().map(|landed| landed.id.as_str()).collect();
    assert_eq!(ids.len(), events.len());
    assert!(events.iter().all(|event| ids.contains(event.id.as_str())));
    assert!(
        world.read_all(&marketing).await.is_empty(),
        "nothing on the old topic"
    );
    assert!(processor.stop().success());
}

/// The operator's fix-and-replay path: a policy denies a tenant, the policy is fixed and
/// reloaded, the dead letters are replayed and now routed with their original keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_dead_letters_are_routed_after_the_policy_is_fixed() {
    let stack = require_stack!();
    let world = World::new(stack, "replay-after-fix", 3).await;
    let processor =
        world.start_processor_with("processor-replay", &["--routing-reload-poll-ms", "0"], &[]);
    processor.wait_assigned().await;
    let denied = unauthorized_events("denied", 12);
    world.produce(&denied).await;
    processor
        .wait_for_metrics("the events dead-lettered", WAIT, |scrape| {
            scrape.value(DEAD_LETTERED, &[("reason", "unauthorized")]) == 12.0
        })
        .await;

    let fixed = world.routing_text().replace(
        r#"destinations = ["MARKETING", "FINANCE"]"#,
        r#"destinations = ["*"]"#,
    );
    world.write_routing(&fixed);
    processor.signal("HUP");
    processor
        .wait_for_metrics("the fixed policy", WAIT, |scrape| {
            reloads(scrape, "ok") == 1.0
        })
        .await;

    let mut options =
        dead_letter_replay::ReplayOptions::new(world.dead_letter.clone(), world.input.clone());
    options.reasons = vec!["unauthorized".to_owned()];
    let summary = dead_letter_replay::replay(&world.kafka, &options)
        .await
        .expect("replayed");
    assert_eq!(summary.replayed, 12);

    let logistics = world.outputs["LOGISTICS"].clone();
    let landed = world.landed(&[&logistics], denied.len()).await;
    let keys: BTreeMap<&str, &str> = landed
        .iter()
        .map(|landed| (landed.id.as_str(), landed.key.as_str()))
        .collect();
    assert_eq!(keys.len(), denied.len(), "each replayed event routed once");
    for event in &denied {
        assert_eq!(
            keys.get(event.id.as_str()).copied(),
            Some("marketing-svc:LOGISTICS"),
            "{} routed with its original key",
            event.id
        );
    }
    let scrape = processor.scrape().await;
    assert_eq!(
        scrape.value(DEAD_LETTERED, &[("reason", "unauthorized")]),
        12.0,
        "replayed events were not dead-lettered again"
    );
    assert!(processor.stop().success());
}

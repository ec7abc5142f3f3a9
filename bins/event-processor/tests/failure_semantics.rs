//! "No partition ever wedges, nothing is silently dropped": the processor binary against the real
//! stack (broker + registry on 127.0.0.1), one world (topics, group, routing) per test.

mod support;

use kafka_adapters::OutboundRecord;
use pipeline::dead_letter_headers as headers;
use std::sync::Arc;
use std::time::Duration;
use support::World;
use test_support::{header, produce_and_wait, require_stack};

/// Headers a tenant might send: a binary value that is not UTF-8, a repeated name, an empty value.
fn tenant_headers(marker: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        ("traceparent".to_owned(), b"00-4bf92f3577b34da6-01".to_vec()),
        ("bin".to_owned(), vec![0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80]),
        ("traceparent".to_owned(), marker.as_bytes().to_vec()),
        ("empty".to_owned(), Vec::new()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_survive_routing_and_dead_lettering_byte_for_byte() {
    let stack = require_stack!();
    let world = World::new(stack, "headers", 1).await;
    let input: Arc<str> = Arc::from(world.input.as_str());
    let record = |key: &str, payload: Vec<u8>, headers: Vec<(String, Vec<u8>)>| OutboundRecord {
        topic: Arc::clone(&input),
        key: Some(key.as_bytes().to_vec()),
        payload,
        headers,
    };
    produce_and_wait(
        &world.kafka,
        vec![
            record(
                "routed",
                world.event_value("FINANCE", "FINANCE", "routed"),
                tenant_headers("routed"),
            ),
            record(
                "denied",
                world.event_value("MARKETING", "LOGISTICS", "denied"),
                tenant_headers("denied"),
            ),
            record("poison", b"not avro".to_vec(), tenant_headers("poison")),
            record(
                "bare",
                world.event_value("FINANCE", "FINANCE", "bare"),
                Vec::new(),
            ),
        ],
        Duration::from_secs(60),
    )
    .await;

    let processor = world.start_processor("processor-headers");
    let routed = world
        .read(&world.outputs["FINANCE"], 2, Duration::from_secs(60))
        .await;
    let dead = world
        .read(&world.dead_letter, 2, Duration::from_secs(60))
        .await;
    let log = processor.log();
    assert!(processor.stop().success(), "log:\n{log}");

    let key_of = |record: &kafka_adapters::TopicRecord| {
        String::from_utf8(record.key.clone().unwrap_or_default()).expect("utf-8 key")
    };
    let routed_with = routed
        .iter()
        .find(|record| key_of(record) == "routed")
        .expect("the event with headers is routed");
    assert_eq!(routed_with.headers, tenant_headers("routed"));
    let routed_bare = routed
        .iter()
        .find(|record| key_of(record) == "bare")
        .expect("the event without headers is routed");
    assert!(routed_bare.headers.is_empty(), "{:?}", routed_bare.headers);

    for (key, reason) in [("denied", "unauthorized"), ("poison", "undecodable")] {
        let dead_letter = dead
            .iter()
            .find(|record| key_of(record) == key)
            .unwrap_or_else(|| panic!("{key} is dead-lettered: {dead:?}"));
        let original = tenant_headers(key);
        assert_eq!(
            dead_letter.headers[..original.len()],
            original[..],
            "original headers first, in order"
        );
        let added = &dead_letter.headers[original.len()..];
        assert!(
            added.iter().all(|(name, _)| name.starts_with("dlq.")),
            "then the dead-letter headers: {added:?}"
        );
        assert_eq!(header(dead_letter, headers::REASON), Some(reason));
        assert_eq!(
            header(dead_letter, headers::PROCESSOR_ID),
            Some("processor-headers")
        );
    }
}

/// The prototype's `-log_level` names are levels, not filters; a value that is neither is refused
/// before anything is connected to (no stack needed).
#[test]
fn an_invalid_log_level_is_refused_with_exit_code_2() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_event-processor"))
        .args(["-log_level", "LOUD=yes"])
        .args(["--routing-file", "/nonexistent/routing.toml"])
        .env_remove("RUST_LOG")
        .output()
        .expect("processor runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("log.level") && stderr.contains("`LOUD=yes` is not a log level"),
        "{stderr}"
    );
}

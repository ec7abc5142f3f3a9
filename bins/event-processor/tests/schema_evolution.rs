//! Evolution of the input schema on the real registry (Apicurio, global BACKWARD compatibility):
//! the processor reads each record with the writer schema named by its Confluent frame's id, so
//! a producer that moved to a compatible v2 keeps being routed, and the registry refuses an
//! incompatible v2 before any producer could use it.

mod support;

use avro_codec::{PRODUCER_TO_PROCESSOR_SCHEMA, RegistryError, SchemaId, SchemaRegistry};
use pipeline::dead_letter_headers as headers;
use router_core::ProducerToProcessor;
use schema_registry::{HttpSchemaRegistry, RegistryClientConfig};
use std::collections::BTreeMap;
use std::time::Duration;
use support::{SentEvent, World, allowed, event_key, payload_id};
use test_support::{header, require_stack, unique_name};

/// The registry's global compatibility level (Confluent API `GET /config`).
async fn global_compatibility(registry_url: &str) -> String {
    let url = format!("{registry_url}/config");
    let body: serde_json::Value = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: {error}"))
        .json()
        .await
        .expect("JSON body");
    body["compatibilityLevel"]
        .as_str()
        .unwrap_or_else(|| panic!("no compatibilityLevel in {body}"))
        .to_owned()
}

/// How the test wrote one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    V1,
    V2 { traced: bool },
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_written_with_a_backward_compatible_v2_schema_are_routed_with_the_right_output() {
    let stack = require_stack!();
    assert_eq!(global_compatibility(&stack.registry_url).await, "BACKWARD");
    let world = World::new(stack, "evolution", 3).await;
    let v1 = world.encoder.schema_id();
    let v2 = world.register_input_v2().await;
    assert_ne!(v1, v2, "v2 is a new schema");
    let latest = world
        .registry
        .latest(&world.input_subject())
        .await
        .expect("latest version");
    assert_eq!(
        (latest.version, latest.id),
        (2, v2),
        "v2 is the subject's second version"
    );

    let processor = world.start_processor("processor-evolution");
    processor.wait_assigned().await;

    // v1, traced v2 and untraced v2 interleaved, every tenant and destination (MARKETING to
    // LOGISTICS is not allowed), timestamps beyond 32 bits that the field after `trace_id` must
    // keep exactly.
    let events = world.plan_events("evolution", 270);
    let mut written: BTreeMap<String, (Writer, SchemaId, ProducerToProcessor, Vec<u8>)> =
        BTreeMap::new();
    let mut records = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let mut record = world.input_record(event);
        record.event_timestamp = 1_700_000_000_007 + index as i64 * 1_000;
        let (writer, schema_id, value) = match index % 3 {
            0 => (Writer::V1, v1, world.encoder.encode_to_vec(&record)),
            1 => {
                let trace = format!("trace-{index}");
                let value = support::encode_input_v2(v2, &record, Some(&trace));
                (Writer::V2 { traced: true }, v2, value)
            }
            _ => (
                Writer::V2 { traced: false },
                v2,
                support::encode_input_v2(v2, &record, None),
            ),
        };
        records.push((Some(event_key(event)), value.clone()));
        written.insert(event.id.clone(), (writer, schema_id, record, value));
    }
    world.produce_raw(records).await;

    let routed_events: Vec<&SentEvent> = events
        .iter()
        .filter(|event| allowed(event.tenant, &event.destination))
        .collect();
    let denied = events.len() - routed_events.len();
    let routed = world.routed(routed_events.len()).await;
    assert_eq!(
        routed.len(),
        routed_events.len(),
        "every allowed event routed once; log:\n{}",
        processor.log()
    );
    let mut routed_by_writer: BTreeMap<&str, usize> = BTreeMap::new();
    for (destination, output, _) in &routed {
        let id = payload_id(&output.payload);
        let (writer, _, input, _) = &written[id];
        assert_eq!(*destination, input.destination_service_type, "{id}: topic");
        assert_eq!(
            output.destination_type, input.destination_service_type,
            "{id}"
        );
        assert_eq!(output.producer_service_id, input.origin_service_id, "{id}");
        assert_eq!(
            output.producer_event_timestamp, input.event_timestamp,
            "{id}"
        );
        assert_eq!(output.payload, input.payload, "{id}");
        assert_eq!(output.processor_service_id, "processor-evolution");
        let name = match writer {
            Writer::V1 => "v1",
            Writer::V2 { traced: true } => "v2 traced",
            Writer::V2 { traced: false } => "v2 untraced",
        };
        *routed_by_writer.entry(name).or_default() += 1;
    }
    assert_eq!(
        routed_by_writer.len(),
        3,
        "events of each writer routed: {routed_by_writer:?}"
    );

    // The policy still applies to v2 events: the unauthorized ones are dead-lettered as such
    // (not as undecodable or a schema mismatch), with their bytes and their writer's id.
    let dead_letters = world
        .read(&world.dead_letter, denied, Duration::from_secs(60))
        .await;
    assert_eq!(dead_letters.len(), denied);
    let by_value: BTreeMap<&[u8], &(Writer, SchemaId, ProducerToProcessor, Vec<u8>)> = written
        .values()
        .map(|entry| (entry.3.as_slice(), entry))
        .collect();
    let mut denied_v2 = 0;
    for record in &dead_letters {
        assert_eq!(header(record, headers::REASON), Some("unauthorized"));
        let value = record.payload.as_deref().expect("original value kept");
        let (writer, schema_id, input, _) = by_value
            .get(value)
            .unwrap_or_else(|| panic!("a dead letter with bytes nobody sent: {value:?}"));
        assert_eq!(
            (
                input.origin_service_type.as_str(),
                input.destination_service_type.as_str()
            ),
            ("MARKETING", "LOGISTICS")
        );
        assert_eq!(
            header(record, headers::SCHEMA_ID),
            Some(schema_id.0.to_string().as_str())
        );
        if *writer != Writer::V1 {
            denied_v2 += 1;
        }
    }
    assert!(denied_v2 > 0, "v2 events among the denied ones");
    assert!(processor.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incompatible_v2_of_the_input_schema_is_refused_by_the_registry() {
    let stack = require_stack!();
    assert_eq!(global_compatibility(&stack.registry_url).await, "BACKWARD");
    let registry = HttpSchemaRegistry::new(RegistryClientConfig::new(stack.registry_url.clone()))
        .expect("registry client");
    let subject = format!("{}-value", unique_name("evolution-refused"));
    let v1 = registry
        .register(&subject, PRODUCER_TO_PROCESSOR_SCHEMA)
        .await
        .expect("v1 registered");

    let with_field = |field: serde_json::Value| {
        let mut schema: serde_json::Value =
            serde_json::from_str(PRODUCER_TO_PROCESSOR_SCHEMA).expect("JSON");
        schema["fields"].as_array_mut().expect("fields").push(field);
        schema.to_string()
    };
    let retyped = {
        let mut schema: serde_json::Value =
            serde_json::from_str(PRODUCER_TO_PROCESSOR_SCHEMA).expect("JSON");
        for field in schema["fields"].as_array_mut().expect("fields") {
            if field["name"] == "event_timestamp" {
                field["type"] = serde_json::json!("string");
            }
        }
        schema.to_string()
    };
    let incompatible = [
        (
            "a new field without a default (v2 readers cannot read v1 records)",
            with_field(serde_json::json!({"name": "trace_id", "type": "string"})),
        ),
        ("event_timestamp turned from long into string", retyped),
    ];
    for (what, schema) in &incompatible {
        match registry.register(&subject, schema).await {
            Err(RegistryError::Incompatible {
                subject: refused, ..
            }) => assert_eq!(refused, subject, "{what}"),
            other => panic!("{what}: expected an incompatibility refusal, got {other:?}"),
        }
    }
    let latest = registry.latest(&subject).await.expect("latest");
    assert_eq!(
        (latest.version, latest.id),
        (1, v1),
        "nothing registered by the refusals"
    );

    // The compatible v2 is accepted under the same subject: the refusals were about compatibility.
    let v2 = registry
        .register(&subject, &support::input_schema_v2())
        .await
        .expect("the compatible v2 registered");
    let latest = registry.latest(&subject).await.expect("latest");
    assert_eq!((latest.version, latest.id), (2, v2));
}

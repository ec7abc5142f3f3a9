//! Tenant authentication (`authentication.mode = "hmac"`) on the real stack: genuine signed
//! events route, spoofed ones of every kind are dead-lettered as `unauthenticated` and never
//! reach an output topic, and keys rotate mid-stream without losing anything.

mod support;

use kafka_adapters::{OutboundRecord, TopicRecord};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::{Processor, SentEvent, TENANTS, World, allowed, event_key, now_ms, payload_id};
use tenant_auth::{Secret, Signer, TenantIdentity};
use test_support::{produce_and_wait, require_stack};

const RELOADS: &str = "event_processor_routing_reloads_total";
const WAIT: Duration = Duration::from_secs(120);

/// Hex secrets of the test's keys (at least 32 bytes each).
fn secret_of(key_id: &str) -> String {
    let seed = key_id
        .bytes()
        .fold(7u8, |acc, byte| acc.wrapping_mul(31) ^ byte);
    (0..32u8)
        .map(|index| format!("{:02x}", seed.wrapping_add(index.wrapping_mul(13))))
        .collect()
}

/// A `[[key]]` entry of the key file.
fn key_entry(key_id: &str, service_type: &str, not_after: Option<&str>) -> String {
    let mut entry = format!(
        "[[key]]\nid = \"{key_id}\"\nservice_type = \"{service_type}\"\nsecret = \"{}\"\n",
        secret_of(key_id)
    );
    if let Some(not_after) = not_after {
        entry.push_str(&format!("not_after = {not_after}\n"));
    }
    entry
}

/// The identity `World::event_value` writes into an event of `tenant`.
fn identity_of(tenant: &str) -> TenantIdentity {
    TenantIdentity::new(tenant, format!("{}-svc", tenant.to_lowercase())).expect("valid identity")
}

fn signer(key_id: &str, identity: TenantIdentity) -> Signer {
    let secret = Secret::from_hex(&secret_of(key_id)).expect("hex secret");
    Signer::new(key_id, secret, identity).expect("valid signer")
}

/// `event` as an input record, signed by `signer` (or unsigned).
fn record(world: &World, event: &SentEvent, signer: Option<&Signer>) -> OutboundRecord {
    let key = event_key(event);
    let payload = world.event_value(event.tenant, &event.destination, &event.id);
    let headers = match signer {
        Some(signer) => signer
            .sign(Some(&key), &payload, now_ms())
            .into_pairs()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
        None => Vec::new(),
    };
    OutboundRecord {
        topic: Arc::from(world.input.as_str()),
        key: Some(key),
        payload,
        headers,
    }
}

fn header<'r>(record: &'r TopicRecord, name: &str) -> Option<&'r str> {
    record
        .headers
        .iter()
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| std::str::from_utf8(value).ok())
}

fn start(world: &World, key_file: &Path, processor_id: &str) -> Processor {
    let key_file = key_file.to_str().expect("utf-8 path");
    world.start_processor_with(
        processor_id,
        &[],
        &[
            ("EVENT_PROCESSOR__AUTHENTICATION__MODE", "hmac"),
            ("EVENT_PROCESSOR__AUTHENTICATION__KEY_FILE", key_file),
            // Reload on SIGHUP only, so each phase knows when its keys took effect.
            ("EVENT_PROCESSOR__ROUTING__RELOAD_POLL_MS", "0"),
        ],
    )
}

/// Ids routed to any output topic, and dead-lettered ids with their `dlq.reason` (and
/// `dlq.error`), once `routed` and `dead_lettered` ids are there.
async fn outcome(
    world: &World,
    routed: usize,
    dead_lettered: usize,
) -> (BTreeSet<String>, BTreeMap<String, (String, String)>) {
    let topics: Vec<&str> = world.outputs.values().map(String::as_str).collect();
    let routed_ids = world
        .landed(&topics, routed)
        .await
        .into_iter()
        .map(|landed| landed.id)
        .collect();
    let decoder = avro_codec::InputDecoder::new();
    let mut dead = BTreeMap::new();
    for record in world.read(&world.dead_letter, dead_lettered, WAIT).await {
        let value = record
            .payload
            .as_deref()
            .expect("a dead letter keeps the value");
        let event = decoder
            .decode_or_load(value, &world.registry)
            .await
            .expect("the original event");
        let reason = header(&record, "dlq.reason").unwrap_or_default().to_owned();
        let error = header(&record, "dlq.error").unwrap_or_default().to_owned();
        dead.insert(payload_id(&event.payload).to_owned(), (reason, error));
    }
    (routed_ids, dead)
}

#[tokio::test]
async fn signed_events_route_and_every_kind_of_spoof_is_dead_lettered_unauthenticated() {
    let stack = require_stack!();
    let world = World::new(stack, "auth-spoofs", 3).await;
    let key_file = world.routing_file.with_file_name("tenant-keys.toml");
    let keys: String = TENANTS
        .iter()
        .map(|tenant| key_entry(&format!("{}-1", tenant.to_lowercase()), tenant, None))
        .chain(std::iter::once(key_entry(
            "finance-retired",
            "FINANCE",
            Some("2020-01-01T00:00:00Z"),
        )))
        .collect();
    std::fs::write(&key_file, keys).expect("key file");
    let signers: BTreeMap<&str, Signer> = TENANTS
        .iter()
        .map(|tenant| {
            let key_id = format!("{}-1", tenant.to_lowercase());
            (*tenant, signer(&key_id, identity_of(tenant)))
        })
        .collect();

    // 10,000 genuine events from the three tenants, each to a destination its policy allows.
    let genuine: Vec<SentEvent> = world
        .plan_events("genuine", 12_000)
        .into_iter()
        .filter(|event| allowed(event.tenant, &event.destination))
        .take(10_000)
        .collect();
    assert_eq!(genuine.len(), 10_000);
    let mut records: Vec<OutboundRecord> = genuine
        .iter()
        .map(|event| record(&world, event, Some(&signers[event.tenant])))
        .collect();

    // Spoofs, 50 of each kind, all claiming FINANCE (which may reach every destination).
    let spoof = |kind: &str, index: usize| SentEvent {
        id: format!("spoof-{kind}-{index}"),
        tenant: "FINANCE",
        destination: "LOGISTICS".to_owned(),
    };
    let mut spoofs = BTreeMap::new();
    for index in 0..50 {
        // Unsigned.
        let event = spoof("unsigned", index);
        records.push(record(&world, &event, None));
        spoofs.insert(event.id, "missing-signature");
        // Signed with MARKETING's key, claiming FINANCE.
        let event = spoof("other-key", index);
        let marketing_key_as_finance = signer("marketing-1", identity_of("FINANCE"));
        records.push(record(&world, &event, Some(&marketing_key_as_finance)));
        spoofs.insert(event.id, "key-not-for-tenant");
        // MARKETING's genuine signed record, replayed with the identity header edited to FINANCE.
        let event = SentEvent {
            tenant: "MARKETING",
            ..spoof("edited-identity", index)
        };
        let mut replayed = record(&world, &event, Some(&signers["MARKETING"]));
        for (name, value) in &mut replayed.headers {
            if name == "ep.auth.identity" {
                *value = b"FINANCE:finance-svc".to_vec();
            }
        }
        records.push(replayed);
        spoofs.insert(event.id, "bad-signature");
        // Signed with FINANCE's retired key.
        let event = spoof("retired-key", index);
        let retired = signer("finance-retired", identity_of("FINANCE"));
        records.push(record(&world, &event, Some(&retired)));
        spoofs.insert(event.id, "retired-key");
    }
    produce_and_wait(&world.kafka, records, WAIT).await;

    let processor = start(&world, &key_file, "auth-spoofs-1");
    let (routed, dead) = outcome(&world, genuine.len(), spoofs.len()).await;
    let scrape = processor
        .wait_for_metrics("authentication failures counted", WAIT, |scrape| {
            scrape
                .all("event_processor_authentication_failures_total")
                .iter()
                .map(|(_, value)| value)
                .sum::<f64>()
                >= spoofs.len() as f64
        })
        .await;

    let genuine_ids: BTreeSet<String> = genuine.iter().map(|event| event.id.clone()).collect();
    let lost: Vec<&String> = genuine_ids.difference(&routed).take(5).collect();
    assert!(
        lost.is_empty(),
        "genuine events not routed, first: {lost:?}"
    );
    let leaked: Vec<&String> = routed.difference(&genuine_ids).take(5).collect();
    assert!(
        leaked.is_empty(),
        "spoofed events on an output topic: {leaked:?}"
    );
    assert_eq!(dead.len(), spoofs.len(), "dead letters: {dead:?}");
    for id in spoofs.keys() {
        let (reason, error) = dead
            .get(id)
            .unwrap_or_else(|| panic!("{id} not dead-lettered"));
        assert_eq!(reason, "unauthenticated", "{id}: {error}");
        assert!(!error.is_empty(), "{id}: the dead letter says why");
    }
    for kind in [
        "missing-signature",
        "key-not-for-tenant",
        "bad-signature",
        "retired-key",
    ] {
        assert_eq!(
            scrape.value(
                "event_processor_authentication_failures_total",
                &[("kind", kind)]
            ),
            50.0,
            "failures of kind {kind}:\n{}",
            scrape.text
        );
    }
    assert_eq!(
        scrape.value(
            "event_processor_events_dead_lettered_total",
            &[("reason", "unauthenticated")]
        ),
        spoofs.len() as f64
    );
    let log = processor.log();
    for key_id in ["finance-1", "marketing-1", "logistics-1", "finance-retired"] {
        assert!(
            !log.contains(&secret_of(key_id)),
            "a secret of {key_id} is in the log"
        );
    }
}

#[tokio::test]
async fn keys_rotate_mid_stream_without_losing_an_event() {
    let stack = require_stack!();
    let world = World::new(stack, "auth-rotation", 3).await;
    let key_file = world.routing_file.with_file_name("tenant-keys.toml");
    let old = signer("finance-old", identity_of("FINANCE"));
    let new = signer("finance-new", identity_of("FINANCE"));
    let events = |tag: &str| -> Vec<SentEvent> {
        (0..300)
            .map(|index| SentEvent {
                id: format!("{tag}-{index}"),
                tenant: "FINANCE",
                destination: ["FINANCE", "MARKETING", "LOGISTICS"][index % 3].to_owned(),
            })
            .collect()
    };
    let produce = async |events: &[SentEvent], signer: &Signer| {
        let records = events
            .iter()
            .map(|event| record(&world, event, Some(signer)))
            .collect();
        produce_and_wait(&world.kafka, records, WAIT).await;
    };
    let mut expected_routed = BTreeSet::new();
    let mut expected_dead = BTreeSet::new();

    // Before: only the old key.
    std::fs::write(&key_file, key_entry("finance-old", "FINANCE", None)).expect("key file");
    let processor = start(&world, &key_file, "auth-rotation-1");
    let before = events("before-old");
    produce(&before, &old).await;
    expected_routed.extend(before.iter().map(|event| event.id.clone()));
    outcome(&world, expected_routed.len(), 0).await;

    // Overlap: both keys verify.
    let reload = async |processor: &Processor, keys: String, reloads: f64| {
        std::fs::write(&key_file, keys).expect("key file");
        processor.signal("HUP");
        processor
            .wait_for_metrics("key file reloaded", WAIT, |scrape| {
                scrape.value(RELOADS, &[("result", "ok")]) >= reloads
            })
            .await;
    };
    reload(
        &processor,
        key_entry("finance-old", "FINANCE", None) + &key_entry("finance-new", "FINANCE", None),
        1.0,
    )
    .await;
    let overlap_old = events("overlap-old");
    let overlap_new = events("overlap-new");
    produce(&overlap_old, &old).await;
    produce(&overlap_new, &new).await;
    expected_routed.extend(overlap_old.iter().chain(&overlap_new).map(|e| e.id.clone()));
    // Routed before the old key is retired: what it signed meanwhile is judged by the keys of
    // the moment it is read.
    outcome(&world, expected_routed.len(), 0).await;

    // After: the old key retired, the new one still valid.
    reload(
        &processor,
        key_entry("finance-old", "FINANCE", Some("2020-01-01T00:00:00Z"))
            + &key_entry("finance-new", "FINANCE", None),
        2.0,
    )
    .await;
    let after_old = events("after-old");
    let after_new = events("after-new");
    produce(&after_old, &old).await;
    produce(&after_new, &new).await;
    expected_routed.extend(after_new.iter().map(|event| event.id.clone()));
    expected_dead.extend(after_old.iter().map(|event| event.id.clone()));

    let (routed, dead) = outcome(&world, expected_routed.len(), expected_dead.len()).await;
    assert_eq!(
        routed, expected_routed,
        "routed ids differ from the expected ones"
    );
    let dead_ids: BTreeSet<String> = dead.keys().cloned().collect();
    assert_eq!(dead_ids, expected_dead, "dead-lettered ids differ");
    for (id, (reason, error)) in &dead {
        assert_eq!(reason, "unauthenticated", "{id}");
        assert!(error.contains("retired"), "{id}: {error}");
    }
    let status = processor.stop();
    assert!(status.success(), "processor exit: {status:?}");
}

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

/// A registry replica that lags: it answers "schema not found" (404, error code 40403) for one
/// schema id while `lagging`, and forwards every other request, and that id once caught up, to
/// the real registry.
struct LaggingReplica {
    schema_id: u32,
    lagging: std::sync::atomic::AtomicBool,
    refused: std::sync::atomic::AtomicU32,
    upstream: String,
    client: reqwest::Client,
}

impl LaggingReplica {
    /// Serves on a free loopback port; returns the registry URL that goes through it.
    async fn start(registry_url: &str, schema_id: u32) -> (Arc<LaggingReplica>, String) {
        let rest = registry_url
            .strip_prefix("http://")
            .expect("an http:// registry URL");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let replica = Arc::new(LaggingReplica {
            schema_id,
            lagging: std::sync::atomic::AtomicBool::new(true),
            refused: std::sync::atomic::AtomicU32::new(0),
            upstream: format!("http://{authority}"),
            client: reqwest::Client::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("free port");
        let address = listener.local_addr().expect("bound");
        let app = axum::Router::new()
            .fallback(Self::answer)
            .with_state(Arc::clone(&replica));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (replica, format!("http://{address}/{path}"))
    }

    async fn answer(
        axum::extract::State(replica): axum::extract::State<Arc<LaggingReplica>>,
        request: axum::extract::Request,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        use std::sync::atomic::Ordering::SeqCst;
        let path_and_query = request
            .uri()
            .path_and_query()
            .map(|path| path.as_str().to_owned())
            .unwrap_or_default();
        let asks_for_the_id = request
            .uri()
            .path()
            .ends_with(&format!("/schemas/ids/{}", replica.schema_id));
        if asks_for_the_id && replica.lagging.load(SeqCst) {
            replica.refused.fetch_add(1, SeqCst);
            let body = serde_json::json!({
                "error_code": 40403,
                "message": format!("Schema {} not found", replica.schema_id),
            });
            return (
                axum::http::StatusCode::NOT_FOUND,
                [("content-type", "application/vnd.schemaregistry.v1+json")],
                body.to_string(),
            )
                .into_response();
        }
        let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
            .expect("an HTTP method");
        let content_type = request
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = axum::body::to_bytes(request.into_body(), 16 * 1024 * 1024)
            .await
            .expect("request body");
        let mut forwarded = replica
            .client
            .request(method, format!("{}{path_and_query}", replica.upstream))
            .body(body);
        if let Some(content_type) = content_type {
            forwarded = forwarded.header("content-type", content_type);
        }
        match forwarded.send().await {
            Ok(answer) => {
                let status =
                    axum::http::StatusCode::from_u16(answer.status().as_u16()).expect("a status");
                let content_type = answer
                    .headers()
                    .get("content-type")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("application/json")
                    .to_owned();
                let body = answer.bytes().await.unwrap_or_default();
                (status, [("content-type", content_type)], body).into_response()
            }
            Err(error) => (axum::http::StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_registered_after_the_first_event_that_used_its_id_routes_it_is_not_dead_lettered()
{
    use std::sync::atomic::Ordering::SeqCst;
    let stack = require_stack!();
    let world = World::new(stack, "registry-lag", 1).await;
    let value = world.event_value("FINANCE", "FINANCE", "late-schema");
    let schema_id = avro_codec::InputDecoder::schema_id_of(&value)
        .expect("framed")
        .0;
    // The processor's registry is a replica that does not know this id yet.
    let (replica, replica_url) = LaggingReplica::start(&world.stack.registry_url, schema_id).await;
    world
        .produce_raw(vec![(Some(b"late".to_vec()), value)])
        .await;
    let processor = world.start_processor_with(
        "processor-registry-lag",
        &["--schema-registry-url", &replica_url],
        &[("EVENT_PROCESSOR__REGISTRY__NOT_FOUND_RETRY_MS", "120000")],
    );

    // The event's id is unknown at first sight, and asked for again: held back, not dead-lettered.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while replica.refused.load(SeqCst) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the processor did not ask for schema id {schema_id} twice; log:\n{}",
            processor.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        world.read_all(&world.dead_letter).await.is_empty(),
        "dead-lettered while the registry lagged; log:\n{}",
        processor.log()
    );

    // The replica catches up: the id is known a moment later, and the event routes.
    replica.lagging.store(false, SeqCst);
    let routed = world
        .read(&world.outputs["FINANCE"], 1, Duration::from_secs(60))
        .await;
    assert_eq!(routed[0].key.as_deref(), Some(&b"late"[..]));
    let log = processor.log();
    assert!(processor.stop().success(), "log:\n{log}");
    assert!(
        world.read_all(&world.dead_letter).await.is_empty(),
        "log:\n{log}"
    );
    assert!(
        log.contains("Schema id unknown to the registry"),
        "log:\n{log}"
    );
}

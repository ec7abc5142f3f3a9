//! The HTTP registry client against recorded Confluent responses (fixture server), against the
//! real registry (Apicurio on the local stack), and against a registry that is down or slow; the caching wrapper.

#[path = "support/fixture_server.rs"]
mod fixture_server;
/// The codec's golden vectors and scripted registry (one home: avro-codec's tests).
#[path = "../../avro-codec/tests/support/mod.rs"]
mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use avro_codec::{
    CodecError, InputDecoder, OutputDecoder, OutputEncoder, PROCESSOR_TO_CONSUMER_SCHEMA,
    PRODUCER_TO_PROCESSOR_SCHEMA, ReadPath, RegistryError, SchemaId, SchemaRegistry,
};
use fixture_server::FixtureServer;
use schema_registry::{CaCert, CachedRegistry, HttpSchemaRegistry, RegistryClientConfig};
use support::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Quick retries so the tests stay fast; the backoff itself is unit-tested.
fn client_config(url: &str) -> RegistryClientConfig {
    RegistryClientConfig::new(url)
        .with_timeout(Duration::from_secs(5))
        .with_max_retries(2)
        .with_initial_backoff(Duration::from_millis(10))
}

fn client(url: &str) -> HttpSchemaRegistry {
    HttpSchemaRegistry::new(client_config(url)).expect("valid client config")
}

async fn fixture(name: &str) -> (FixtureServer, HttpSchemaRegistry) {
    let server = FixtureServer::start(name).await;
    let registry = client(server.url());
    (server, registry)
}

fn compact(schema: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(schema).expect("schema is JSON");
    json.to_string()
}

// ---- recorded Confluent responses ----

#[tokio::test]
async fn schema_by_id_reads_the_confluent_answer() {
    let (server, registry) = fixture("schema_by_id").await;
    let schema = registry.schema_by_id(SchemaId(1)).await.expect("schema");
    assert_eq!(compact(&schema), compact(PRODUCER_TO_PROCESSOR_SCHEMA));
    server.assert_all_served();
}

#[tokio::test]
async fn unknown_schema_id_maps_40403_to_schema_not_found() {
    let (server, registry) = fixture("schema_by_id_not_found").await;
    let err = registry
        .schema_by_id(SchemaId(42))
        .await
        .expect_err("40403");
    match &err {
        RegistryError::SchemaNotFound { request, message } => {
            assert!(request.starts_with("GET http://127.0.0.1:"), "{request}");
            assert!(request.ends_with("/schemas/ids/42"), "{request}");
            assert_eq!(message, "Schema 42 not found");
        }
        other => panic!("expected SchemaNotFound, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(server.requests(), 1, "a 404 is not retried");
    server.assert_all_served();
}

#[tokio::test]
async fn decoder_remembers_an_id_the_registry_does_not_know() {
    let (server, registry) = fixture("schema_by_id_not_found").await;
    load_unknown_id_42_three_times(&registry).await;
    assert_eq!(server.requests(), 1);
    server.assert_all_served();
}

#[tokio::test]
async fn retries_5xx_then_succeeds() {
    let (server, registry) = fixture("schema_by_id_backend_error_then_success").await;
    let schema = registry
        .schema_by_id(SchemaId(1))
        .await
        .expect("second attempt succeeds");
    assert_eq!(compact(&schema), compact(PRODUCER_TO_PROCESSOR_SCHEMA));
    assert_eq!(server.requests(), 2);
    server.assert_all_served();
}

#[tokio::test]
async fn gives_up_after_max_retries_with_a_transient_error() {
    let (server, registry) = fixture("schema_by_id_backend_error").await;
    let err = registry
        .schema_by_id(SchemaId(1))
        .await
        .expect_err("always 500");
    match &err {
        RegistryError::Server {
            status,
            error_code,
            message,
            attempts,
            ..
        } => {
            assert_eq!(*status, 500);
            assert_eq!(*error_code, Some(50001));
            assert_eq!(message, "Error in the backend data store");
            assert_eq!(*attempts, 3);
        }
        other => panic!("expected Server, got {other:?}"),
    }
    assert!(err.is_transient());
    server.assert_all_served();
}

#[tokio::test]
async fn does_not_retry_4xx() {
    type Expected = fn(&RegistryError) -> bool;
    let cases: [(&str, Expected); 3] = [
        ("register_incompatible", |e| {
            matches!(e, RegistryError::Incompatible { subject, message }
                if subject == "processor.to.consumer-value" && message.contains("incompatible"))
        }),
        ("register_invalid_schema", |e| {
            matches!(e, RegistryError::InvalidSchema { subject, .. }
                if subject == "processor.to.consumer-value")
        }),
        ("schema_by_id_unauthorized", |e| {
            matches!(e, RegistryError::Unauthorized { status: 401, .. })
        }),
    ];
    for (name, expected) in cases {
        let (server, registry) = fixture(name).await;
        let err = if name.starts_with("register") {
            registry
                .register("processor.to.consumer-value", PROCESSOR_TO_CONSUMER_SCHEMA)
                .await
                .expect_err(name)
        } else {
            registry.schema_by_id(SchemaId(1)).await.expect_err(name)
        };
        assert!(expected(&err), "{name}: {err:?}");
        assert!(!err.is_transient(), "{name}");
        assert_eq!(server.requests(), 1, "{name}: 4xx is final");
        server.assert_all_served();
    }
}

#[tokio::test]
async fn encoder_registration_refused_by_the_registry_is_fatal() {
    let (server, registry) = fixture("register_incompatible").await;
    let err = OutputEncoder::register(&registry, "processor.to.consumer-value")
        .await
        .expect_err("incompatible");
    assert!(
        matches!(&err, CodecError::Registry { subject: Some(subject), source: RegistryError::Incompatible { .. }, .. }
            if subject == "processor.to.consumer-value"),
        "{err:?}"
    );
    assert_eq!(err.class(), avro_codec::ErrorClass::Fatal);
    server.assert_all_served();
}

#[tokio::test]
async fn register_posts_the_schema_with_the_confluent_content_type() {
    let (server, registry) = fixture("register").await;
    let id = registry
        .register("processor.to.consumer-value", PROCESSOR_TO_CONSUMER_SCHEMA)
        .await
        .expect("registers");
    assert_eq!(id, SchemaId(2));
    server.assert_all_served();
}

#[tokio::test]
async fn percent_encodes_subjects_in_paths() {
    let (server, registry) = fixture("register_escaped_subject").await;
    let id = registry
        .register("tenant/a b-value", PROCESSOR_TO_CONSUMER_SCHEMA)
        .await
        .expect("registers");
    assert_eq!(id, SchemaId(7));
    server.assert_all_served();
}

#[tokio::test]
async fn lookup_and_latest_return_the_registered_version() {
    let (server, registry) = fixture("lookup").await;
    let found = registry
        .lookup("producer.to.processor-value", PRODUCER_TO_PROCESSOR_SCHEMA)
        .await
        .expect("found");
    assert_eq!(found.subject, "producer.to.processor-value");
    assert_eq!((found.id, found.version), (SchemaId(1), 3));
    assert_eq!(
        compact(&found.schema),
        compact(PRODUCER_TO_PROCESSOR_SCHEMA)
    );
    server.assert_all_served();

    let (server, registry) = fixture("latest").await;
    let latest = registry
        .latest("producer.to.processor-value")
        .await
        .expect("latest");
    assert_eq!((latest.id, latest.version), (SchemaId(1), 3));
    server.assert_all_served();
}

#[tokio::test]
async fn unknown_subject_maps_40401_and_unknown_schema_40403() {
    let (server, registry) = fixture("lookup_subject_not_found").await;
    let err = registry
        .lookup("unknown-value", PRODUCER_TO_PROCESSOR_SCHEMA)
        .await
        .expect_err("40401");
    assert!(
        matches!(&err, RegistryError::SubjectNotFound { subject, message }
            if subject == "unknown-value" && message.contains("not found")),
        "{err:?}"
    );
    server.assert_all_served();

    let (server, registry) = fixture("latest_subject_not_found").await;
    let err = registry.latest("unknown-value").await.expect_err("40401");
    assert!(
        matches!(err, RegistryError::SubjectNotFound { .. }),
        "{err:?}"
    );
    server.assert_all_served();

    let (server, registry) = fixture("lookup_schema_not_found").await;
    let err = registry
        .lookup("producer.to.processor-value", PRODUCER_TO_PROCESSOR_SCHEMA)
        .await
        .expect_err("40403");
    assert!(
        matches!(err, RegistryError::SchemaNotFound { .. }),
        "{err:?}"
    );
    server.assert_all_served();
}

#[tokio::test]
async fn sends_basic_auth_from_url_userinfo_or_config() {
    let server = FixtureServer::start("schema_by_id_basic_auth").await;
    let registry = client(&server.url_with_userinfo("user:secret"));
    registry
        .schema_by_id(SchemaId(1))
        .await
        .expect("authorized");
    server.assert_all_served();

    let server = FixtureServer::start("schema_by_id_basic_auth").await;
    let registry =
        HttpSchemaRegistry::new(client_config(server.url()).with_basic_auth("user", "secret"))
            .expect("valid config");
    registry
        .schema_by_id(SchemaId(1))
        .await
        .expect("authorized");
    server.assert_all_served();
}

#[tokio::test]
async fn non_registry_answer_is_an_invalid_response() {
    let (server, registry) = fixture("schema_by_id_not_json").await;
    let err = registry.schema_by_id(SchemaId(1)).await.expect_err("HTML");
    assert!(
        matches!(err, RegistryError::InvalidResponse { .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());
    server.assert_all_served();
}

#[test]
fn trusts_an_extra_ca_certificate_from_a_file_or_pem_bytes() {
    // A public root (ISRG Root X1) stands in for a private registry CA.
    let path = format!("{}/tests/fixtures/ca.pem", env!("CARGO_MANIFEST_DIR"));
    let pem = std::fs::read(&path).expect("fixture CA certificate");
    for ca in [CaCert::Path(path.into()), CaCert::Pem(pem)] {
        let config = RegistryClientConfig::new("https://registry.example:8081").with_ca_cert(ca);
        HttpSchemaRegistry::new(config).expect("client with an extra CA builds");
    }
}

// ---- a registry that is down or slow ----

#[tokio::test]
async fn slow_registry_times_out_with_a_transient_error() {
    let server = FixtureServer::start("schema_by_id_slow").await;
    let registry = HttpSchemaRegistry::new(
        client_config(server.url())
            .with_timeout(Duration::from_millis(200))
            .with_max_retries(1),
    )
    .expect("valid config");
    let started = Instant::now();
    let err = registry
        .schema_by_id(SchemaId(1))
        .await
        .expect_err("too slow");
    assert!(
        matches!(err, RegistryError::Timeout { timeout, attempts: 2, .. } if timeout == Duration::from_millis(200)),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "gave up in {:?}",
        started.elapsed()
    );
    assert_eq!(server.requests(), 2);

    let decoder = InputDecoder::new();
    let err = decoder
        .load(SchemaId(1), &registry)
        .await
        .expect_err("still slow");
    assert!(err.is_transient(), "{err:?}");
    assert!(
        !decoder.is_loaded(SchemaId(1)),
        "a transient failure is not remembered"
    );
    assert_eq!(server.requests(), 4);
}

#[tokio::test]
async fn unreachable_registry_is_a_transient_connect_error() -> TestResult {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?.port()
    };
    let registry = client(&format!("http://127.0.0.1:{closed_port}"));
    let err = registry
        .schema_by_id(SchemaId(1))
        .await
        .expect_err("connection refused");
    assert!(
        matches!(err, RegistryError::Connect { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{closed_port}")),
        "{err}"
    );

    let decoder = InputDecoder::new();
    let err = decoder
        .load(SchemaId(1), &registry)
        .await
        .expect_err("down");
    assert!(matches!(
        err,
        CodecError::Registry {
            schema_id: Some(SchemaId(1)),
            ..
        }
    ));
    assert!(err.is_transient());
    let err = OutputEncoder::register(&registry, "processor.to.consumer-value")
        .await
        .expect_err("down");
    assert!(err.is_transient(), "{err:?}");
    Ok(())
}

// ---- the caching wrapper ----

#[tokio::test]
async fn concurrent_misses_for_one_id_make_one_request() {
    let scripted = Arc::new(CachedRegistry::new(
        ScriptedRegistry::new()
            .answer(1, [Answer::Schema(PRODUCER_TO_PROCESSOR_SCHEMA.to_owned())])
            .delay(Duration::from_millis(50)),
    ));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let registry = Arc::clone(&scripted);
            tokio::spawn(async move { registry.schema_by_id(SchemaId(1)).await })
        })
        .collect();
    for task in tasks {
        let schema = task.await.expect("task").expect("schema");
        assert_eq!(&*schema, PRODUCER_TO_PROCESSOR_SCHEMA);
    }
    assert_eq!(scripted.inner().calls(), 1);
    scripted.schema_by_id(SchemaId(1)).await.expect("cached");
    assert_eq!(scripted.inner().calls(), 1);

    // The same over HTTP: the fixture has exactly one (slow) exchange.
    let server = FixtureServer::start("schema_by_id_single_flight").await;
    let http = Arc::new(CachedRegistry::new(client(server.url())));
    let decoder = Arc::new(InputDecoder::new());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (registry, decoder) = (Arc::clone(&http), Arc::clone(&decoder));
            tokio::spawn(async move { decoder.load(SchemaId(1), &registry).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("loads");
    }
    assert_eq!(server.requests(), 1);
    server.assert_all_served();
    assert_eq!(
        decoder.decode(&golden_input()).expect("decodes"),
        golden_input_record()
    );
}

#[tokio::test]
async fn cached_registry_does_not_cache_failures() {
    let registry = CachedRegistry::new(ScriptedRegistry::new().answer(
        1,
        [
            Answer::Down,
            Answer::Schema(PRODUCER_TO_PROCESSOR_SCHEMA.to_owned()),
        ],
    ));
    let err = registry.schema_by_id(SchemaId(1)).await.expect_err("down");
    assert!(err.is_transient());
    registry.schema_by_id(SchemaId(1)).await.expect("back up");
    registry.schema_by_id(SchemaId(1)).await.expect("cached");
    assert_eq!(registry.inner().calls(), 2);
}

#[tokio::test]
async fn cached_registry_registers_each_subject_and_schema_once() {
    let registry = Arc::new(CachedRegistry::new(
        ScriptedRegistry::new().delay(Duration::from_millis(20)),
    ));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let registry = Arc::clone(&registry);
            tokio::spawn(async move {
                OutputEncoder::register(&registry, "processor.to.consumer-value").await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.expect("task").expect("registers").schema_id(),
            SchemaId(2)
        );
    }
    let calls = || {
        registry
            .inner()
            .register_calls
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    assert_eq!(calls(), 1);
    registry
        .register("processor.to.finance-value", PROCESSOR_TO_CONSUMER_SCHEMA)
        .await
        .expect("registers");
    assert_eq!(calls(), 2, "another subject is another registration");
    // The registered schema is known by id without a request.
    let schema = registry.schema_by_id(SchemaId(2)).await.expect("known");
    assert_eq!(&*schema, PROCESSOR_TO_CONSUMER_SCHEMA);
    assert_eq!(registry.inner().calls(), 0);
}

// ---- a real registry (Apicurio on the local stack, or any Confluent-compatible one) ----

#[tokio::test]
async fn http_client_round_trips_against_a_real_registry() -> TestResult {
    let Some(stack) = test_support::stack("http_client_round_trips_against_a_real_registry") else {
        return Ok(());
    };
    let registry = CachedRegistry::new(client(&stack.registry_url));
    let subject = format!("{}-value", test_support::unique_name("round-trip"));

    let input_id = registry
        .register(&subject, PRODUCER_TO_PROCESSOR_SCHEMA)
        .await?;
    let again = registry
        .inner()
        .register(&subject, PRODUCER_TO_PROCESSOR_SCHEMA)
        .await?;
    assert_eq!(again, input_id, "registration is idempotent");

    let found = registry
        .inner()
        .lookup(&subject, PRODUCER_TO_PROCESSOR_SCHEMA)
        .await?;
    assert_eq!((found.id, found.version), (input_id, 1));
    assert_eq!(found.subject, subject);
    let latest = registry.inner().latest(&subject).await?;
    assert_eq!(latest.id, input_id);
    let schema = registry.inner().schema_by_id(input_id).await?;
    assert_eq!(
        apache_avro::Schema::parse_str(&schema)?.canonical_form(),
        apache_avro::Schema::parse_str(PRODUCER_TO_PROCESSOR_SCHEMA)?.canonical_form()
    );

    let err = registry
        .inner()
        .schema_by_id(SchemaId(999_999))
        .await
        .expect_err("unknown id");
    assert!(
        matches!(err, RegistryError::SchemaNotFound { .. }),
        "{err:?}"
    );
    let err = registry
        .inner()
        .latest(&test_support::unique_name("no-such-subject"))
        .await
        .expect_err("unknown subject");
    assert!(
        matches!(err, RegistryError::SubjectNotFound { .. }),
        "{err:?}"
    );
    let err = registry
        .inner()
        .lookup(&subject, PROCESSOR_TO_CONSUMER_SCHEMA)
        .await
        .expect_err("not under this subject");
    assert!(
        matches!(err, RegistryError::SchemaNotFound { .. }),
        "{err:?}"
    );

    // Output side registers, input side decodes a record framed with the registry's ids.
    let encoder = OutputEncoder::register(&registry, "processor.to.consumer-value").await?;
    let framed = encoder.encode_to_vec(&golden_output_record());
    let output_decoder = OutputDecoder::new();
    output_decoder.load(encoder.schema_id(), &registry).await?;
    assert_eq!(
        output_decoder.read_path(encoder.schema_id()),
        Some(ReadPath::Fast)
    );
    assert_eq!(output_decoder.decode(&framed)?, golden_output_record());

    let input_decoder = InputDecoder::new();
    input_decoder.load(input_id, &registry).await?;
    let framed_input = frame(input_id.get(), &golden_input()[5..]);
    assert_eq!(input_decoder.decode(&framed_input)?, golden_input_record());
    Ok(())
}

#[tokio::test]
async fn real_registry_refuses_an_incompatible_schema_with_a_typed_error() -> TestResult {
    let Some(stack) = test_support::stack("real_registry_refuses_an_incompatible_schema") else {
        return Ok(());
    };
    let registry = client(&stack.registry_url);
    let subject = format!("{}-value", test_support::unique_name("incompatible"));
    registry
        .register(&subject, PRODUCER_TO_PROCESSOR_SCHEMA)
        .await?;
    let incompatible = PRODUCER_TO_PROCESSOR_SCHEMA.replace(
        r#"{"name": "payload", "type": "string""#,
        r#"{"name": "payload", "type": "int""#,
    );
    assert_ne!(
        incompatible, PRODUCER_TO_PROCESSOR_SCHEMA,
        "the test edits the payload type"
    );
    let err = registry
        .register(&subject, &incompatible)
        .await
        .expect_err("incompatible with version 1 under BACKWARD");
    assert!(
        matches!(&err, RegistryError::Incompatible { subject: refused, .. } if *refused == subject),
        "{err:?}"
    );
    assert!(!err.is_transient());

    // The same schema under a fresh subject is accepted, and the decoder refuses its records.
    let elsewhere = format!("{}-value", test_support::unique_name("elsewhere"));
    let id = registry.register(&elsewhere, &incompatible).await?;
    let decoder = InputDecoder::new();
    let err = decoder
        .load(id, &registry)
        .await
        .expect_err("incompatible writer");
    assert!(
        matches!(&err, CodecError::IncompatibleSchema { schema_id, .. } if *schema_id == id),
        "{err:?}"
    );
    assert!(err.is_poison());
    Ok(())
}

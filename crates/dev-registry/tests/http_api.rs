//! The Confluent REST subset over real HTTP on 127.0.0.1.

mod common;

use common::{Client, RECORD_V1, RECORD_V2_COMPATIBLE, RECORD_V2_INCOMPATIBLE, start_in_memory};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn root_answers_an_empty_object_for_liveness_checks() {
    let (_registry, client) = start_in_memory().await;
    let answer = client.get("/").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, json!({}));
}

#[tokio::test]
async fn registering_identical_schema_twice_returns_same_id() {
    let (_registry, client) = start_in_memory().await;
    let first = client.register_ok("things-value", RECORD_V1).await;
    let again = client.register_ok("things-value", RECORD_V1).await;
    // Same schema with other whitespace and attribute order is the same schema.
    let reformatted = r#"{ "namespace": "test", "name": "Thing", "type": "record",
        "fields": [ { "type": "string", "name": "a" } ] }"#;
    let reformatted_id = client.register_ok("things-value", reformatted).await;

    assert_eq!((first, again, reformatted_id), (1, 1, 1));
    assert_eq!(
        client.get("/subjects/things-value/versions").await.body,
        json!([1])
    );
}

#[tokio::test]
async fn same_schema_under_two_subjects_shares_one_global_id() {
    let (_registry, client) = start_in_memory().await;
    let first = client.register_ok("one-value", RECORD_V1).await;
    let other = client.register_ok("other-value", r#""string""#).await;
    let second = client.register_ok("two-value", RECORD_V1).await;

    assert_eq!(first, second);
    assert_ne!(first, other);
    let version = client.get("/subjects/two-value/versions/latest").await;
    assert_eq!(version.body["version"], 1, "versions count per subject");
    assert_eq!(version.body["id"], first);
}

#[tokio::test]
async fn lookup_of_unknown_subject_is_40401() {
    let (_registry, client) = start_in_memory().await;
    let answer = client
        .post("/subjects/nobody-value", json!({ "schema": RECORD_V1 }))
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.error_code(), Some(40401));
    assert_eq!(answer.body["message"], "Subject 'nobody-value' not found.");
}

#[tokio::test]
async fn lookup_finds_the_version_holding_an_identical_schema() {
    let (_registry, client) = start_in_memory().await;
    let id1 = client.register_ok("things-value", RECORD_V1).await;
    let id2 = client
        .register_ok("things-value", RECORD_V2_COMPATIBLE)
        .await;

    let found = client
        .post("/subjects/things-value", json!({ "schema": RECORD_V1 }))
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    assert_eq!(
        found.body,
        json!({ "subject": "things-value", "id": id1, "version": 1, "schema": RECORD_V1 })
    );
    let found = client
        .post(
            "/subjects/things-value",
            json!({ "schema": RECORD_V2_COMPATIBLE }),
        )
        .await;
    assert_eq!(
        (found.body["id"].as_u64(), found.body["version"].as_u64()),
        (Some(id2), Some(2))
    );
}

#[tokio::test]
async fn lookup_of_a_schema_the_subject_does_not_hold_is_40403() {
    let (_registry, client) = start_in_memory().await;
    client.register_ok("things-value", RECORD_V1).await;
    // Registered elsewhere, so the id exists, but not under this subject.
    client.register_ok("other-value", r#""string""#).await;

    let answer = client
        .post("/subjects/things-value", json!({ "schema": r#""string""# }))
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.error_code(), Some(40403));
}

#[tokio::test]
async fn unknown_schema_id_is_40403() {
    let (_registry, client) = start_in_memory().await;
    client.register_ok("things-value", RECORD_V1).await;

    let answer = client.get("/schemas/ids/5").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.error_code(), Some(40403));
    assert_eq!(answer.body["message"], "Schema 5 not found.");

    let not_a_number = client.get("/schemas/ids/five").await;
    assert_eq!(not_a_number.error_code(), Some(40403));
}

#[tokio::test]
async fn schema_by_id_returns_the_registered_schema() {
    let (_registry, client) = start_in_memory().await;
    let id = client.register_ok("things-value", RECORD_V1).await;

    let wrapped = client.get(&format!("/schemas/ids/{id}")).await;
    assert_eq!(wrapped.status, StatusCode::OK);
    assert_eq!(wrapped.body, json!({ "schema": RECORD_V1 }));

    let raw = client.get(&format!("/schemas/ids/{id}/schema")).await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.text, RECORD_V1);
}

#[tokio::test]
async fn incompatible_schema_is_rejected_with_409_under_backward() {
    let (_registry, client) = start_in_memory().await;
    client.register_ok("things-value", RECORD_V1).await;

    let rejected = client
        .register("things-value", RECORD_V2_INCOMPATIBLE)
        .await;
    assert_eq!(rejected.status, StatusCode::CONFLICT, "{}", rejected.text);
    assert_eq!(rejected.error_code(), Some(409));
    let message = rejected.body["message"].as_str().expect("message");
    assert!(
        message.starts_with("Schema being registered is incompatible with an earlier schema"),
        "{message}"
    );
    assert!(message.contains("BACKWARD"), "{message}");
    assert_eq!(
        client.get("/subjects/things-value/versions").await.body,
        json!([1])
    );

    let evolved = client
        .register_ok("things-value", RECORD_V2_COMPATIBLE)
        .await;
    assert_eq!(evolved, 2);
    assert_eq!(
        client.get("/subjects/things-value/versions").await.body,
        json!([1, 2])
    );
}

#[tokio::test]
async fn incompatible_schema_is_accepted_when_the_subject_level_is_none() {
    let (_registry, client) = start_in_memory().await;
    client.register_ok("things-value", RECORD_V1).await;
    let set = client
        .put("/config/things-value", json!({ "compatibility": "NONE" }))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);

    client
        .register_ok("things-value", RECORD_V2_INCOMPATIBLE)
        .await;
    // Other subjects still use the global BACKWARD.
    client.register_ok("guarded-value", RECORD_V1).await;
    let rejected = client
        .register("guarded-value", RECORD_V2_INCOMPATIBLE)
        .await;
    assert_eq!(rejected.error_code(), Some(409));
}

#[tokio::test]
async fn invalid_schema_is_42201() {
    let (_registry, client) = start_in_memory().await;
    let cases = [
        (json!({ "schema": "{not json" }), "not JSON"),
        (
            json!({ "schema": r#"{"type":"record","name":"R"}"# }),
            "fields",
        ),
        (json!({ "schema": r#""no-such-type""# }), "no-such-type"),
        (json!({ "schema": "" }), "no \"schema\""),
        (json!({}), "no \"schema\""),
        (
            json!({ "schema": r#"{"type":"object"}"#, "schemaType": "JSON" }),
            "only AVRO",
        ),
        (
            json!({ "schema": RECORD_V1, "references": [{"name":"x","subject":"y","version":1}] }),
            "references",
        ),
    ];
    for (body, hint) in cases {
        let answer = client
            .post("/subjects/bad-value/versions", body.clone())
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            answer.text
        );
        assert_eq!(answer.error_code(), Some(42201), "{body}");
        let message = answer.body["message"].as_str().expect("message");
        assert!(message.contains("Invalid schema"), "{message}");
        assert!(
            message.contains(hint),
            "{body}: {message} should mention {hint}"
        );
    }
    assert_eq!(
        client.get("/subjects").await.body,
        json!([]),
        "nothing was registered"
    );
}

#[tokio::test]
async fn explicit_avro_schema_type_and_empty_references_are_accepted() {
    let (_registry, client) = start_in_memory().await;
    let answer = client
        .post(
            "/subjects/things-value/versions",
            json!({ "schema": RECORD_V1, "schemaType": "AVRO", "references": [] }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

#[tokio::test]
async fn versions_latest_returns_newest() {
    let (_registry, client) = start_in_memory().await;
    let id1 = client.register_ok("things-value", RECORD_V1).await;
    let id2 = client
        .register_ok("things-value", RECORD_V2_COMPATIBLE)
        .await;

    let latest = client.get("/subjects/things-value/versions/latest").await;
    assert_eq!(latest.status, StatusCode::OK);
    assert_eq!(
        latest.body,
        json!({ "subject": "things-value", "id": id2, "version": 2, "schema": RECORD_V2_COMPATIBLE })
    );
    let minus_one = client.get("/subjects/things-value/versions/-1").await;
    assert_eq!(minus_one.body["version"], 2);
    let first = client.get("/subjects/things-value/versions/1").await;
    assert_eq!(first.body["id"], id1);
    let raw = client
        .get("/subjects/things-value/versions/latest/schema")
        .await;
    assert_eq!(raw.text, RECORD_V2_COMPATIBLE);
}

#[tokio::test]
async fn missing_versions_and_subjects_have_distinct_error_codes() {
    let (_registry, client) = start_in_memory().await;
    client.register_ok("things-value", RECORD_V1).await;

    let version = client.get("/subjects/things-value/versions/7").await;
    assert_eq!(
        (version.status, version.error_code()),
        (StatusCode::NOT_FOUND, Some(40402))
    );
    let subject = client.get("/subjects/nobody-value/versions/1").await;
    assert_eq!(
        (subject.status, subject.error_code()),
        (StatusCode::NOT_FOUND, Some(40401))
    );
    let list = client.get("/subjects/nobody-value/versions").await;
    assert_eq!(list.error_code(), Some(40401));
    for bad in ["0", "first", "-5"] {
        let invalid = client
            .get(&format!("/subjects/things-value/versions/{bad}"))
            .await;
        assert_eq!(
            (invalid.status, invalid.error_code()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(42202)),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn responses_use_schema_registry_content_type() {
    let (_registry, client) = start_in_memory().await;
    let id = client.register_ok("things-value", RECORD_V1).await;
    let answers = [
        client.get("/").await,
        client.get("/subjects").await,
        client.get(&format!("/schemas/ids/{id}")).await,
        client.get(&format!("/schemas/ids/{id}/schema")).await,
        client.get("/config").await,
        client.get("/schemas/ids/999").await,
        client.get("/no/such/endpoint").await,
        client.register("bad-value", "{").await,
    ];
    for answer in answers {
        assert_eq!(
            answer.content_type.as_deref(),
            Some("application/vnd.schemaregistry.v1+json"),
            "{answer:?}"
        );
    }
}

#[tokio::test]
async fn request_content_types_that_confluent_clients_send_are_accepted() {
    let (_registry, client) = start_in_memory().await;
    let body = json!({ "schema": RECORD_V1 }).to_string();
    let url = client.url("/subjects/things-value/versions");
    for content_type in [
        Some("application/vnd.schemaregistry.v1+json"),
        Some("application/vnd.schemaregistry+json"),
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        None,
    ] {
        let mut request = client.http.post(&url).body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        let answer = client.send(request).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{content_type:?}: {}",
            answer.text
        );
    }

    let refused = client
        .send(
            client
                .http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "text/plain")
                .body(body),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(refused.error_code(), Some(415));
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_400_error_body() {
    let (_registry, client) = start_in_memory().await;
    let answer = client
        .send(
            client
                .http
                .post(client.url("/subjects/things-value/versions"))
                .body("schema=oops"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.error_code(), Some(400));
}

#[tokio::test]
async fn config_can_be_set_globally_and_per_subject() {
    let (_registry, client) = start_in_memory().await;
    assert_eq!(
        client.get("/config").await.body,
        json!({ "compatibilityLevel": "BACKWARD" }),
        "Confluent's default"
    );

    let global = client
        .put("/config", json!({ "compatibility": "full" }))
        .await;
    assert_eq!(global.body, json!({ "compatibility": "FULL" }));
    assert_eq!(
        client.get("/config").await.body,
        json!({ "compatibilityLevel": "FULL" })
    );

    let unset = client.get("/config/things-value").await;
    assert_eq!(
        (unset.status, unset.error_code()),
        (StatusCode::NOT_FOUND, Some(40408))
    );
    let defaulted = client
        .get("/config/things-value?defaultToGlobal=true")
        .await;
    assert_eq!(defaulted.body, json!({ "compatibilityLevel": "FULL" }));

    let subject = client
        .put("/config/things-value", json!({ "compatibility": "NONE" }))
        .await;
    assert_eq!(subject.body, json!({ "compatibility": "NONE" }));
    assert_eq!(
        client.get("/config/things-value").await.body,
        json!({ "compatibilityLevel": "NONE" })
    );
    assert_eq!(
        client.get("/config").await.body["compatibilityLevel"],
        "FULL"
    );

    let removed = client.delete("/config/things-value").await;
    assert_eq!(removed.body, json!({ "compatibilityLevel": "NONE" }));
    assert_eq!(
        client.get("/config/things-value").await.error_code(),
        Some(40408)
    );

    for bad in [json!({ "compatibility": "SIDEWAYS" }), json!({})] {
        let invalid = client.put("/config", bad.clone()).await;
        assert_eq!(
            (invalid.status, invalid.error_code()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(42203)),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn subjects_with_dots_and_percent_encoded_characters_round_trip() {
    let (_registry, client) = start_in_memory().await;
    client
        .register_ok("producer.to.processor-value", RECORD_V1)
        .await;
    client.register_ok("team%2Fthings%20value", RECORD_V1).await;

    assert_eq!(
        client.get("/subjects").await.body,
        json!(["producer.to.processor-value", "team/things value"])
    );
    let latest = client
        .get("/subjects/team%2Fthings%20value/versions/latest")
        .await;
    assert_eq!(latest.body["subject"], "team/things value");
    let dotted = client
        .get("/subjects/producer.to.processor-value/versions/1")
        .await;
    assert_eq!(dotted.status, StatusCode::OK);
}

#[tokio::test]
async fn repository_input_schema_registers_and_reads_back_as_the_same_avro_schema() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas/producer.to.processor.avsc");
    let text = std::fs::read_to_string(&path).expect("repository schema is readable");
    let (_registry, client) = start_in_memory().await;

    let id = client
        .register_ok("producer.to.processor-value", &text)
        .await;
    let again = client
        .register_ok("producer.to.processor-value", &text)
        .await;
    assert_eq!(id, again);

    let fetched = client.get(&format!("/schemas/ids/{id}")).await;
    let fetched = fetched.body["schema"].as_str().expect("schema string");
    let original = apache_avro::Schema::parse_str(&text).expect("repository schema is Avro");
    let served = apache_avro::Schema::parse_str(fetched).expect("served schema is Avro");
    assert_eq!(served.canonical_form(), original.canonical_form());
    match served {
        apache_avro::Schema::Record(record) => {
            assert_eq!(
                record.name.fullname(None),
                "service_messages.ProducerToProcessor"
            );
        }
        other => panic!("expected a record schema, got {other:?}"),
    }
}

#[tokio::test]
async fn deleting_a_subject_keeps_its_schema_ids_readable() {
    let (_registry, client) = start_in_memory().await;
    let id = client.register_ok("things-value", RECORD_V1).await;
    client
        .register_ok("things-value", RECORD_V2_COMPATIBLE)
        .await;

    let deleted = client.delete("/subjects/things-value").await;
    assert_eq!(deleted.body, json!([1, 2]));
    assert_eq!(client.get("/subjects").await.body, json!([]));
    assert_eq!(
        client.get(&format!("/schemas/ids/{id}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        client.delete("/subjects/things-value").await.error_code(),
        Some(40401)
    );
    // Registering again starts the subject over but reuses the global id.
    assert_eq!(client.register_ok("things-value", RECORD_V1).await, id);
}

#[tokio::test]
async fn unknown_endpoints_and_methods_answer_with_error_bodies() {
    let (_registry, client) = start_in_memory().await;
    let missing = client.get("/no/such/endpoint").await;
    assert_eq!(
        (missing.status, missing.error_code()),
        (StatusCode::NOT_FOUND, Some(404))
    );
    let wrong_method = client.delete("/schemas/ids/1").await;
    assert_eq!(
        (wrong_method.status, wrong_method.error_code()),
        (StatusCode::METHOD_NOT_ALLOWED, Some(405))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_agree_on_one_id_per_schema() {
    let (_registry, client) = start_in_memory().await;
    let mut tasks = Vec::new();
    for n in 0..24 {
        let client: Client = client.clone();
        tasks.push(tokio::spawn(async move {
            let schema = if n % 2 == 0 { RECORD_V1 } else { r#""string""# };
            client.register_ok(&format!("subject-{n}"), schema).await
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("task finishes"));
    }
    let even: std::collections::BTreeSet<_> = ids.iter().step_by(2).collect();
    let odd: std::collections::BTreeSet<_> = ids.iter().skip(1).step_by(2).collect();
    assert_eq!((even.len(), odd.len()), (1, 1), "{ids:?}");
    assert_ne!(even, odd);
    let subjects = client.get("/subjects").await.body;
    assert_eq!(subjects.as_array().map(Vec::len), Some(24));
}

#[tokio::test]
async fn dropping_the_running_registry_stops_the_server() {
    let (registry, client) = start_in_memory().await;
    assert_eq!(client.get("/").await.status, StatusCode::OK);
    let address = registry.local_addr();
    drop(registry);

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if tokio::net::TcpStream::connect(address).await.is_err() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "server on {address} still accepts connections 5 s after drop"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

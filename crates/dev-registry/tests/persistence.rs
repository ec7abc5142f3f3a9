//! State kept in a data file across restarts.

mod common;

use common::{RECORD_V1, RECORD_V2_COMPATIBLE, scratch_dir, start_with_file};
use dev_registry::{DataFileAction, RegistryConfig, RegistryError, start};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn schemas_survive_restart_with_data_file() {
    let file = scratch_dir("restart").join("registry.json");

    let (registry, client) = start_with_file(&file).await;
    let id1 = client.register_ok("things-value", RECORD_V1).await;
    let id2 = client
        .register_ok("things-value", RECORD_V2_COMPATIBLE)
        .await;
    client.register_ok("other-value", RECORD_V1).await;
    client
        .put("/config", json!({ "compatibility": "FORWARD" }))
        .await;
    client
        .put("/config/things-value", json!({ "compatibility": "NONE" }))
        .await;
    registry.shutdown().await;

    let (_registry, client) = start_with_file(&file).await;
    assert_eq!(
        client.get("/subjects").await.body,
        json!(["other-value", "things-value"])
    );
    assert_eq!(
        client.get("/subjects/things-value/versions").await.body,
        json!([1, 2])
    );
    let latest = client.get("/subjects/things-value/versions/latest").await;
    assert_eq!(latest.body["id"], id2);
    assert_eq!(
        client.get(&format!("/schemas/ids/{id1}")).await.body,
        json!({ "schema": RECORD_V1 })
    );
    assert_eq!(
        client.get("/config").await.body["compatibilityLevel"],
        "FORWARD"
    );
    assert_eq!(
        client.get("/config/things-value").await.body["compatibilityLevel"],
        "NONE"
    );
    // Identity survives too: the same schema gets its old id, a new one the next id.
    assert_eq!(client.register_ok("third-value", RECORD_V1).await, id1);
    let fresh = client.register_ok("fourth-value", r#""long""#).await;
    assert_eq!(fresh, id2 + 1);
}

#[tokio::test]
async fn missing_data_file_is_created_at_start() {
    let file = scratch_dir("create").join("registry.json");
    let (_registry, client) = start_with_file(&file).await;
    assert!(
        file.is_file(),
        "{} exists right after start",
        file.display()
    );
    assert_eq!(client.get("/subjects").await.body, json!([]));
}

#[tokio::test]
async fn corrupt_data_file_is_a_startup_error_naming_the_file() {
    let file = scratch_dir("corrupt").join("registry.json");
    std::fs::write(&file, "{\"format\": 1, \"state\": [").expect("write corrupt file");
    let mut config = RegistryConfig::ephemeral();
    config.data_file = Some(file.clone());

    let error = start(config)
        .await
        .expect_err("corrupt file refuses to start");
    assert!(
        matches!(&error, RegistryError::CorruptDataFile { path, .. } if *path == file),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("delete it"), "says what to do: {message}");
}

#[tokio::test]
async fn data_file_in_a_missing_directory_is_a_startup_error() {
    let file = scratch_dir("nodir")
        .join("no-such-dir")
        .join("registry.json");
    let mut config = RegistryConfig::ephemeral();
    config.data_file = Some(file.clone());

    let error = start(config)
        .await
        .expect_err("unwritable location refuses to start");
    assert!(
        matches!(
            &error,
            RegistryError::DataFile { path, action: DataFileAction::Write, .. } if *path == file
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_failed_registration_leaves_the_data_file_unchanged() {
    let file = scratch_dir("unchanged").join("registry.json");
    let (_registry, client) = start_with_file(&file).await;
    client.register_ok("things-value", RECORD_V1).await;
    let before = std::fs::read(&file).expect("read data file");

    let rejected = client
        .register("things-value", common::RECORD_V2_INCOMPATIBLE)
        .await;
    assert_eq!(rejected.status, StatusCode::CONFLICT);
    assert_eq!(std::fs::read(&file).expect("read data file"), before);
}

//! Helpers shared by the integration tests. Each test binary uses a different subset.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use dev_registry::{RegistryConfig, RunningRegistry, start};
use reqwest::StatusCode;
use serde_json::Value;

pub(crate) const RECORD_V1: &str = r#"{"type":"record","name":"Thing","namespace":"test","fields":[{"name":"a","type":"string"}]}"#;
/// RECORD_V1 plus a field with a default: readable over V1 data.
pub(crate) const RECORD_V2_COMPATIBLE: &str = r#"{"type":"record","name":"Thing","namespace":"test","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":0}]}"#;
/// RECORD_V1 plus a field without a default: cannot read V1 data.
pub(crate) const RECORD_V2_INCOMPATIBLE: &str = r#"{"type":"record","name":"Thing","namespace":"test","fields":[{"name":"a","type":"string"},{"name":"b","type":"int"}]}"#;

pub(crate) async fn start_in_memory() -> (RunningRegistry, Client) {
    let registry = start(RegistryConfig::ephemeral())
        .await
        .expect("registry starts");
    let client = Client::new(registry.url());
    (registry, client)
}

pub(crate) async fn start_with_file(path: &std::path::Path) -> (RunningRegistry, Client) {
    let mut config = RegistryConfig::ephemeral();
    config.data_file = Some(path.to_owned());
    let registry = start(config).await.expect("registry starts");
    let client = Client::new(registry.url());
    (registry, client)
}

/// A fresh, empty directory under cargo's per-target scratch dir.
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "dev-registry-{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The answer to one request: status, content type and parsed body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Value,
    pub(crate) text: String,
}

impl Answer {
    pub(crate) fn error_code(&self) -> Option<u64> {
        self.body["error_code"].as_u64()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("registry answers");
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|value| value.to_str().expect("ascii content type").to_owned());
        let text = response.text().await.expect("body is text");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            content_type,
            body,
            text,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(self.url(path))).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Answer {
        self.send(self.http.delete(self.url(path))).await
    }

    /// POSTs JSON the way Confluent's serializers do, with the registry content type.
    pub(crate) async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(
            self.http
                .post(self.url(path))
                .header(reqwest::header::CONTENT_TYPE, dev_registry::CONTENT_TYPE)
                .body(body.to_string()),
        )
        .await
    }

    pub(crate) async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(
            self.http
                .put(self.url(path))
                .header(reqwest::header::CONTENT_TYPE, dev_registry::CONTENT_TYPE)
                .body(body.to_string()),
        )
        .await
    }

    /// Registers `schema` under `subject` and returns the answer as is.
    pub(crate) async fn register(&self, subject: &str, schema: &str) -> Answer {
        self.post(
            &format!("/subjects/{subject}/versions"),
            serde_json::json!({ "schema": schema }),
        )
        .await
    }

    /// Registers `schema` under `subject`, expecting success, and returns the id.
    pub(crate) async fn register_ok(&self, subject: &str, schema: &str) -> u64 {
        let answer = self.register(subject, schema).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "register failed: {}",
            answer.text
        );
        answer.body["id"].as_u64().expect("answer has a numeric id")
    }
}

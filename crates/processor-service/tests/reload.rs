//! The routing reloader against in-memory ports: a valid new file is published, a broken one or
//! one that writes to a missing topic is refused and the table in force is kept.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use kafka_adapters::{AdapterError, TopicAdmin, TopicSpec};
use pipeline::{PipelineStats, RoutingSnapshot};
use processor_service::ops::{Limits, Ops};
use processor_service::reload::{Reloader, fingerprint};
use processor_service::settings::{Cli, Settings};
use router_core::Router;
use schema_registry::MemoryRegistry;
use tokio::sync::{mpsc, watch};

/// A cluster that knows a fixed set of topics (and creates more when asked).
#[derive(Default)]
struct KnownTopics(Mutex<BTreeSet<String>>);

impl KnownTopics {
    fn with(topics: &[&str]) -> Self {
        Self(Mutex::new(topics.iter().map(|t| (*t).to_owned()).collect()))
    }
}

impl TopicAdmin for KnownTopics {
    async fn create_topics(&self, topics: &[TopicSpec]) -> Result<(), AdapterError> {
        let mut known = self.0.lock().expect("lock");
        known.extend(topics.iter().map(|spec| spec.name.clone()));
        Ok(())
    }

    async fn partitions_of(&self, topic: &str) -> Result<Option<i32>, AdapterError> {
        Ok(self.0.lock().expect("lock").contains(topic).then_some(3))
    }

    async fn committed_positions(
        &self,
        _group_id: &str,
        _topic: &str,
    ) -> Result<Vec<(i32, Option<i64>)>, AdapterError> {
        Ok(Vec::new())
    }
}

const TABLE_V1: &str = r#"
version = 1
[destinations.FINANCE]
outputs = [{ topic = "out.finance", subject = "processor.to.consumer-value" }]
[policy]
mode = "allow-all"
"#;

const TABLE_V2: &str = r#"
version = 1
[destinations.FINANCE]
outputs = [{ topic = "out.finance", subject = "processor.to.consumer-value" }]
[destinations.MARKETING]
outputs = [{ topic = "out.marketing", subject = "processor.to.consumer-value" }]
[policy]
mode = "allow-all"
"#;

const TABLE_TO_MISSING_TOPIC: &str = r#"
version = 1
[destinations.LOGISTICS]
outputs = [{ topic = "out.nowhere", subject = "processor.to.consumer-value" }]
[policy]
mode = "allow-all"
"#;

fn settings(routing_file: &Path) -> Settings {
    let cli = Cli::parse_from([
        "event-processor",
        "--bootstrap-servers",
        "127.0.0.1:9",
        "--schema-registry-url",
        "http://127.0.0.1:9",
        "--routing-file",
        routing_file.to_str().expect("utf-8 path"),
    ]);
    let mut settings = Settings::load(&cli).expect("valid settings");
    settings.registry.auto_register = true;
    settings
}

struct World {
    routing_file: std::path::PathBuf,
    /// The tenant key file, when the world authenticates tenants.
    key_file: std::path::PathBuf,
    requests: mpsc::Sender<()>,
    routing: watch::Receiver<Arc<RoutingSnapshot>>,
    ops: Arc<Ops>,
    _dir: TempDir,
}

/// A reloader of `TABLE_V1` checking topics with `admin`, without tenant authentication.
async fn start(admin: KnownTopics) -> World {
    start_with_keys(admin, None).await
}

/// A reloader of `TABLE_V1` checking topics with `admin`; with `keys`, tenant authentication
/// (`hmac`) is on with that key file.
async fn start_with_keys(admin: KnownTopics, keys: Option<&str>) -> World {
    let dir = TempDir::new();
    let routing_file = dir.0.join("routing.toml");
    let key_file = dir.0.join("tenant-keys.toml");
    std::fs::write(&routing_file, TABLE_V1).expect("write routing file");
    let mut settings = settings(&routing_file);
    if let Some(keys) = keys {
        std::fs::write(&key_file, keys).expect("write key file");
        settings.authentication.mode = processor_service::settings::AuthenticationModeSetting::Hmac;
        settings.authentication.key_file = Some(key_file.clone());
    }
    let authentication = settings.tenant_authentication(keys).expect("valid keys");
    let registry = Arc::new(MemoryRegistry::new());
    let first = RoutingSnapshot::resolve(
        Router::from_toml_str(TABLE_V1).expect("valid table"),
        &registry,
        true,
    )
    .await
    .expect("resolves")
    .with_authentication(authentication);
    let (updates, routing) = watch::channel(Arc::new(first));
    let ops = Arc::new(Ops::new(
        Arc::new(PipelineStats::default()),
        "processor-1".to_owned(),
        "input".to_owned(),
        Limits {
            stall_after_ms: 60_000,
            check_stale_after_ms: 60_000,
        },
    ));
    let (requests, received) = mpsc::channel(4);
    let reloader = Reloader {
        path: routing_file.clone(),
        poll: None,
        settings,
        admin,
        registry,
        updates,
        ops: Arc::clone(&ops),
        applied: fingerprint(TABLE_V1, keys),
    };
    tokio::spawn(reloader.run(received));
    World {
        routing_file,
        key_file,
        requests,
        routing,
        ops,
        _dir: dir,
    }
}

impl World {
    /// Writes `table`, asks for a reload and waits until the reloader has decided.
    async fn reload(&mut self, table: &str) {
        let file = self.routing_file.clone();
        self.rewrite_and_reload(&file, table).await;
    }

    /// Writes the key file, asks for a reload and waits until the reloader has decided.
    async fn reload_keys(&mut self, keys: &str) {
        let file = self.key_file.clone();
        self.rewrite_and_reload(&file, keys).await;
    }

    async fn rewrite_and_reload(&mut self, file: &std::path::Path, text: &str) {
        let decided = self.ops.reloads_ok.load(Relaxed) + self.ops.reloads_failed.load(Relaxed);
        std::fs::write(file, text).expect("write the file");
        self.requests.send(()).await.expect("reloader runs");
        tokio::time::timeout(Duration::from_secs(10), async {
            while self.ops.reloads_ok.load(Relaxed) + self.ops.reloads_failed.load(Relaxed)
                == decided
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the reloader decides within 10 s");
    }

    /// The ids of the tenant keys in force, sorted.
    fn key_ids(&self) -> Vec<String> {
        let snapshot = self.routing.borrow();
        let authentication = snapshot.authentication().expect("authentication stays on");
        let mut ids: Vec<String> = authentication
            .verifier
            .key_ring()
            .keys()
            .map(|key| key.id().to_owned())
            .collect();
        ids.sort();
        ids
    }

    fn version_in_force(&self) -> u64 {
        self.routing.borrow().router().version()
    }
}

#[tokio::test]
async fn publishes_a_valid_new_table() {
    let mut world = start(KnownTopics::with(&[
        "out.finance",
        "out.marketing",
        "producer.to.processor",
        "producer.to.processor.dlq",
    ]))
    .await;
    world.reload(TABLE_V2).await;
    assert_eq!(world.ops.reloads_ok.load(Relaxed), 1);
    assert_eq!(
        world.version_in_force(),
        Router::from_toml_str(TABLE_V2).expect("valid").version()
    );
}

#[tokio::test]
async fn keeps_the_table_in_force_when_the_new_one_is_invalid_or_writes_to_a_missing_topic() {
    let mut world = start(KnownTopics::with(&[
        "out.finance",
        "producer.to.processor",
        "producer.to.processor.dlq",
    ]))
    .await;
    let in_force = world.version_in_force();
    world.reload("this is not a routing table").await;
    world.reload(TABLE_TO_MISSING_TOPIC).await;
    assert_eq!(world.ops.reloads_failed.load(Relaxed), 2);
    assert_eq!(world.ops.reloads_ok.load(Relaxed), 0);
    assert_eq!(world.version_in_force(), in_force);
}

const KEYS_V1: &str = r#"
[[key]]
id = "finance-1"
service_type = "FINANCE"
secret = "5f0c3e8a1b2d4c6e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e"
"#;

const KEYS_V2: &str = r#"
[[key]]
id = "finance-1"
service_type = "FINANCE"
secret = "5f0c3e8a1b2d4c6e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e"
[[key]]
id = "finance-2"
service_type = "FINANCE"
secret = "a1c3e5f7092b4d6f8a0c2e4f6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4f"
"#;

#[tokio::test]
async fn a_changed_key_file_is_published_with_the_routing_table_and_a_broken_one_is_refused() {
    let mut world = start_with_keys(
        KnownTopics::with(&[
            "out.finance",
            "producer.to.processor",
            "producer.to.processor.dlq",
        ]),
        Some(KEYS_V1),
    )
    .await;
    assert_eq!(world.key_ids(), ["finance-1"]);

    world.reload_keys(KEYS_V2).await;
    assert_eq!(world.ops.reloads_ok.load(Relaxed), 1);
    assert_eq!(world.key_ids(), ["finance-1", "finance-2"]);

    world
        .reload_keys("[[key]]\nid = \"short\"\nservice_type = \"FINANCE\"\nsecret = \"00\"\n")
        .await;
    assert_eq!(
        world.ops.reloads_failed.load(Relaxed),
        1,
        "a secret too short is refused"
    );
    assert_eq!(
        world.key_ids(),
        ["finance-1", "finance-2"],
        "the keys in force are kept"
    );
}

/// A directory removed when the test ends.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!(
            "processor-service-reload-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

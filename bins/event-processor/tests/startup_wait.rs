//! Start-up waits instead of exiting: a processor started before its broker and its schema
//! registry reports why it is not ready, stays alive, and routes everything once both answer.
//! What waiting cannot fix exits with code 2; a stop while waiting exits 0 at once. In prototype
//! mode the missing dead-letter topic is created.

mod support;

use avro_codec::{InputDecoder, InputEncoder, OutputDecoder};
use kafka_adapters::{KafkaConfig, OutboundRecord, ReadUntil, TopicAdmin, read_topic};
use router_core::ProducerToProcessor;
use schema_registry::{HttpSchemaRegistry, RegistryClientConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::registry_behind_proxy;
use test_support::{
    FAST_GROUP_PROPERTIES, OwnBroker, create_topics, produce_and_wait, require_stack,
    run_to_completion, scratch_dir, unique_name,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROCESSOR: &str = env!("CARGO_BIN_EXE_event-processor");
/// Generous: two cores shared with other builds and tests, a JVM broker starting.
const PATIENCE: Duration = Duration::from_secs(180);
const DESTINATIONS: [&str; 3] = ["FINANCE", "MARKETING", "LOGISTICS"];

/// A processor left running, its output in a log file; killed when dropped.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    /// Starts the processor with `args` (and a metrics endpoint on a free port unless given).
    fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Running {
        let log = scratch_dir(name).join("processor.log");
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(PROCESSOR);
        command
            .args(args)
            .env_remove("EVENT_PROCESSOR_CONFIG")
            .env_remove("RUST_LOG")
            .env("EVENT_PROCESSOR__HEALTH__CHECK_INTERVAL_MS", "500")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file);
        if !args.contains(&"--http-listen") {
            command.args(["--http-listen", "127.0.0.1:0"]);
        }
        Running {
            child: command.spawn().expect("processor starts"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    /// The metrics and probes address, from the start-up log line.
    async fn http_address(&mut self) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let log = self.log();
            let address = log
                .lines()
                .find(|line| line.contains("Serving metrics and probes"))
                .and_then(|line| line.split("listen=").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned);
            if let Some(address) = address {
                return address;
            }
            if let Some(status) = self.exited() {
                panic!("the processor exited ({status}) before serving probes; log:\n{log}");
            }
            assert!(Instant::now() < deadline, "no endpoint logged; log:\n{log}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn get_json(&mut self, path: &str) -> (u16, serde_json::Value) {
        let url = format!("http://{}{path}", self.http_address().await);
        let response = reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {url}: {error}; log:\n{}", self.log()));
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        let json = serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("{path} answered non-JSON `{body}`: {error}"));
        (status, json)
    }

    /// Polls `/ready` until `done(status, reasons)` holds; panics (with the last answer and the
    /// log) after [`PATIENCE`] or when the process exits.
    async fn wait_for_ready(
        &mut self,
        what: &str,
        done: impl Fn(u16, &[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, body) = self.get_json("/ready").await;
            let reasons: Vec<String> = body["reasons"]
                .as_array()
                .map(|reasons| {
                    reasons
                        .iter()
                        .filter_map(|reason| reason.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if done(status, &reasons) {
                return reasons;
            }
            if let Some(exit) = self.exited() {
                panic!(
                    "{what}: the processor exited ({exit}); log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {PATIENCE:?}; last /ready: {status} {body}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn assert_alive(&mut self) {
        let (status, body) = self.get_json("/health").await;
        assert_eq!(status, 200, "/health while starting: {body}");
        assert_eq!(body["status"], "alive", "{body}");
    }

    /// Waits for the process to exit within `patience`.
    async fn wait_exit(&mut self, patience: Duration) -> ExitStatus {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the processor did not exit within {patience:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the processor names the registry at `url` in messages.
fn base_url(url: &str) -> String {
    HttpSchemaRegistry::new(RegistryClientConfig::new(url))
        .expect("registry client")
        .base_url()
        .to_owned()
}

fn has(reasons: &[String], prefix: &str) -> bool {
    reasons.iter().any(|reason| reason.starts_with(prefix))
}

/// The prototype's routing JSON for `outputs` (destination → topic), all into `subject`.
fn routing_json(outputs: &BTreeMap<&str, String>, subject: &str) -> String {
    let entries: Vec<String> = outputs
        .iter()
        .map(|(destination, topic)| {
            format!(
                r#""{destination}": {{"output_topic": "{topic}", "output_subject": "{subject}"}}"#
            )
        })
        .collect();
    format!("{{{}}}", entries.join(", "))
}

fn event(encoder: &InputEncoder, tenant: &str, destination: &str, id: &str) -> Vec<u8> {
    encoder.encode_to_vec(&ProducerToProcessor {
        origin_service_id: format!("{}-svc", tenant.to_lowercase()),
        origin_service_type: tenant.to_owned(),
        destination_service_type: destination.to_owned(),
        event_timestamp: 1_700_000_000_000,
        payload: format!("dummy-payload {id}"),
    })
}

/// Produces `values` to `topic` and waits for every acknowledgement.
async fn produce(kafka: &KafkaConfig, topic: &str, values: Vec<Vec<u8>>) {
    let shared: Arc<str> = Arc::from(topic);
    let records = values
        .into_iter()
        .enumerate()
        .map(|(index, payload)| OutboundRecord {
            topic: Arc::clone(&shared),
            key: Some(format!("key-{index}").into_bytes()),
            payload,
            headers: Vec::new(),
        })
        .collect();
    produce_and_wait(kafka, records, PATIENCE).await;
}

/// The payload ids of the first `count` records of `topic`, decoded as output records.
async fn routed_ids(
    kafka: &KafkaConfig,
    registry: &HttpSchemaRegistry,
    topic: &str,
    count: usize,
) -> BTreeSet<String> {
    let records = read_topic(kafka, topic, ReadUntil::Count(count), PATIENCE)
        .await
        .unwrap_or_else(|error| panic!("reading {count} records of {topic}: {error}"));
    let decoder = OutputDecoder::new();
    let mut ids = BTreeSet::new();
    for record in records {
        let value = record.payload.as_deref().expect("output has a value");
        let schema_id = InputDecoder::schema_id_of(value).expect("framed");
        if !decoder.is_loaded(schema_id) {
            decoder
                .load(schema_id, registry)
                .await
                .expect("output schema loads");
        }
        let output = decoder.decode(value).expect("output decodes");
        ids.insert(
            output
                .payload
                .strip_prefix("dummy-payload ")
                .unwrap_or(&output.payload)
                .to_owned(),
        );
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_started_before_broker_and_registry_waits_then_routes_everything() {
    let stack = require_stack!();
    let broker = Arc::new(
        tokio::task::spawn_blocking(|| OwnBroker::prepare("startup-wait"))
            .await
            .expect("broker prepared"),
    );
    let bootstrap = broker.bootstrap();
    let (proxy, proxied_registry) = registry_behind_proxy(&stack.registry_url).await;
    proxy.cut();

    let prefix = unique_name("ep-startup-wait");
    let input = format!("{prefix}.in");
    let dead_letter = format!("{prefix}.dlq");
    let outputs: BTreeMap<&str, String> = DESTINATIONS
        .iter()
        .map(|destination| {
            (
                *destination,
                format!("{prefix}.to.{}", destination.to_lowercase()),
            )
        })
        .collect();
    let routing = routing_json(&outputs, &format!("{prefix}.out-value"));
    let group = format!("{prefix}.group");
    let mut args = vec![
        "--processor-id",
        "waiting-1",
        "--bootstrap-servers",
        &bootstrap,
        "--schema-registry-url",
        &proxied_registry,
        "--input-topic",
        &input,
        "--dead-letter-topic",
        &dead_letter,
        "--group-id",
        &group,
        "--destination-configurations",
        &routing,
        "--producer-property",
        "linger.ms=5",
    ];
    let consumer_properties: Vec<String> = FAST_GROUP_PROPERTIES
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    for property in &consumer_properties {
        args.extend(["--consumer-property", property.as_str()]);
    }
    let mut processor = Running::start("ep-startup-wait", &args, &[]);

    // Neither is there: not ready, saying why, and alive.
    let broker_reason = format!("waiting for the broker at {bootstrap}: ");
    let registry_base = base_url(&proxied_registry);
    let registry_reason = format!("waiting for the schema registry at {registry_base}: ");
    let reasons = processor
        .wait_for_ready("waiting for both", |status, reasons| {
            status == 503 && has(reasons, &broker_reason) && has(reasons, &registry_reason)
        })
        .await;
    assert!(!has(&reasons, "starting: "), "{reasons:?}");
    processor.assert_alive().await;

    // The broker arrives, then its topics (a deployment job creating them moments later).
    let launched = Arc::clone(&broker);
    tokio::task::spawn_blocking(move || launched.launch())
        .await
        .expect("broker started");
    let kafka = KafkaConfig::new(bootstrap.clone());
    let topics = std::iter::once(&input)
        .chain(outputs.values())
        .chain(std::iter::once(&dead_letter));
    create_topics(&kafka, topics.map(String::as_str), 3).await;

    // Events produced while the processor still waits for the registry are routed later.
    let direct_registry =
        HttpSchemaRegistry::new(RegistryClientConfig::new(stack.registry_url.clone()))
            .expect("registry client");
    let encoder = InputEncoder::register(&direct_registry, &format!("{input}-value"))
        .await
        .expect("input schema registered");
    let mut expected: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut values = Vec::new();
    for index in 0..60 {
        let tenant = DESTINATIONS[index % 3];
        let destination = DESTINATIONS[(index / 3) % 3];
        let id = format!("{prefix}-{index}");
        values.push(event(&encoder, tenant, destination, &id));
        expected.entry(destination).or_default().insert(id);
    }
    produce(&kafka, &input, values).await;

    let reasons = processor
        .wait_for_ready("broker answering, registry still cut", |status, reasons| {
            status == 503
                && !has(reasons, "waiting for the broker")
                && !has(reasons, "waiting for topics")
                && has(reasons, &registry_reason)
        })
        .await;
    assert!(!has(&reasons, "pipeline loop"), "{reasons:?}");
    processor.assert_alive().await;

    proxy.restore().await.expect("registry reachable again");
    processor
        .wait_for_ready("ready once both answer", |status, _| status == 200)
        .await;

    for (destination, ids) in &expected {
        let topic = &outputs[destination];
        let routed = routed_ids(&kafka, &direct_registry, topic, ids.len()).await;
        assert_eq!(
            &routed,
            ids,
            "{destination} ({topic}); log:\n{}",
            processor.log()
        );
    }
    let log = processor.log();
    for line in [
        format!("Waiting for the broker at {bootstrap} before starting."),
        format!("Waiting for the schema registry at {registry_base} before starting."),
        "Event processor starting.".to_owned(),
    ] {
        assert!(log.contains(&line), "log lacks `{line}`:\n{log}");
    }

    processor.signal("TERM");
    let status = processor.wait_exit(PATIENCE).await;
    assert_eq!(status.code(), Some(0), "log:\n{}", processor.log());
    tokio::task::spawn_blocking(move || drop(broker))
        .await
        .expect("broker stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prototype_command_line_creates_the_missing_dead_letter_topic() {
    let stack = require_stack!();
    let prefix = unique_name("ep-startup-prototype");
    let input = format!("{prefix}.in");
    let output = format!("{prefix}.to.finance");
    let dead_letter = format!("{prefix}.dlq");
    let kafka = KafkaConfig::new(stack.kafka_bootstrap.clone());
    create_topics(&kafka, [input.as_str(), output.as_str()], 3).await;
    let mut outputs = BTreeMap::new();
    outputs.insert("FINANCE", output.clone());
    let routing = routing_json(&outputs, &format!("{prefix}.out-value"));
    let group = format!("{prefix}.group");
    // The prototype's flags; only the dead-letter topic's name is ours (the default one is
    // shared by everything on the local stack).
    let mut processor = Running::start(
        "ep-startup-prototype",
        &[
            "-processor_id",
            "prototype-1",
            "-bootstrap_server",
            &stack.kafka_bootstrap,
            "-schema_registry_url",
            &stack.registry_url,
            "-source_topic",
            &input,
            "-group_id",
            &group,
            "-batch_size_to_commit_offsets",
            "5",
            "-log_level",
            "INFO",
            "-destination_configurations",
            &routing,
            "--dead-letter-topic",
            &dead_letter,
        ],
        &[],
    );
    processor
        .wait_for_ready("ready in prototype mode", |status, _| status == 200)
        .await;
    let admin = kafka_adapters::kafka_admin(&kafka).expect("admin client");
    let partitions = admin
        .partitions_of(&dead_letter)
        .await
        .expect("metadata")
        .expect("the dead-letter topic was created");
    assert!(partitions >= 1, "{partitions}");
    let log = processor.log();
    assert!(
        log.contains(
            "The dead-letter topic does not exist: started with the prototype's command line"
        ) && log.contains(&dead_letter),
        "{log}"
    );

    // It is used: a poison event lands there, a good one is routed.
    let registry = HttpSchemaRegistry::new(RegistryClientConfig::new(stack.registry_url.clone()))
        .expect("registry client");
    let encoder = InputEncoder::register(&registry, &format!("{input}-value"))
        .await
        .expect("input schema registered");
    let id = format!("{prefix}-good");
    produce(
        &kafka,
        &input,
        vec![
            b"not avro".to_vec(),
            event(&encoder, "FINANCE", "FINANCE", &id),
        ],
    )
    .await;
    let dead = read_topic(&kafka, &dead_letter, ReadUntil::Count(1), PATIENCE)
        .await
        .expect("dead letter read");
    assert_eq!(dead[0].payload.as_deref(), Some(&b"not avro"[..]));
    assert_eq!(
        routed_ids(&kafka, &registry, &output, 1).await,
        BTreeSet::from([id])
    );
    processor.signal("TERM");
    assert_eq!(processor.wait_exit(PATIENCE).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_still_missing_after_the_wait_exit_2() {
    let stack = require_stack!();
    let prefix = unique_name("ep-startup-missing");
    let input = format!("{prefix}.in");
    let output = format!("{prefix}.to.finance");
    let kafka = KafkaConfig::new(stack.kafka_bootstrap.clone());
    // The input exists; the output and the dead-letter topic never come.
    create_topics(&kafka, [input.as_str()], 1).await;
    let mut outputs = BTreeMap::new();
    outputs.insert("FINANCE", output.clone());
    let routing = routing_json(&outputs, &format!("{prefix}.out-value"));
    let dead_letter = format!("{prefix}.dlq");
    let group = format!("{prefix}.group");
    let mut processor = Running::start(
        "ep-startup-missing",
        &[
            "--bootstrap-servers",
            &stack.kafka_bootstrap,
            "--schema-registry-url",
            &stack.registry_url,
            "--input-topic",
            &input,
            "--dead-letter-topic",
            &dead_letter,
            "--group-id",
            &group,
            "--destination-configurations",
            &routing,
        ],
        &[("EVENT_PROCESSOR__KAFKA__MISSING_TOPICS_WAIT_MS", "8000")],
    );
    let waiting = format!(
        "waiting for topics to be created on the broker at {}: {dead_letter}, {output}",
        stack.kafka_bootstrap
    );
    processor
        .wait_for_ready("waiting for the topics", |status, reasons| {
            status == 503 && has(reasons, &waiting)
        })
        .await;
    processor.assert_alive().await;
    let status = processor.wait_exit(PATIENCE).await;
    let log = processor.log();
    assert_eq!(status.code(), Some(2), "log:\n{log}");
    assert!(
        log.contains(&format!(
            "error: topics missing on the broker at {}: {dead_letter}, {output} (waited",
            stack.kafka_bootstrap
        )) && log.contains(
            "kafka.missing_topics_wait_ms); create them, or start with --create-missing-topics"
        ),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_signal_while_waiting_for_the_broker_exits_0_at_once() {
    let stack = require_stack!();
    // A loopback port nothing listens on: a broker that is not there.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let bootstrap = nobody.to_string();
    let prefix = unique_name("ep-startup-stop");
    let routing = format!(r#"{{"FINANCE": {{"output_topic": "{prefix}.out"}}}}"#);
    let mut processor = Running::start(
        "ep-startup-stop",
        &[
            "--bootstrap-servers",
            &bootstrap,
            "--schema-registry-url",
            &stack.registry_url,
            "--input-topic",
            &format!("{prefix}.in"),
            "--destination-configurations",
            &routing,
        ],
        &[],
    );
    let waiting = format!("waiting for the broker at {bootstrap}: ");
    processor
        .wait_for_ready("waiting for the broker", |status, reasons| {
            status == 503 && has(reasons, &waiting)
        })
        .await;
    let signalled = Instant::now();
    processor.signal("TERM");
    // One metadata request may be under way (health.check_timeout_ms, 3 s by default).
    let status = processor.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "log:\n{}", processor.log());
    assert!(
        processor.log().contains("Stopped during start-up"),
        "{}",
        processor.log()
    );
    eprintln!("exited {:?} after SIGTERM", signalled.elapsed());
}

/// A registry that answers every request with 401.
async fn refusing_registry() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => request.extend_from_slice(&buffer[..read]),
                    }
                }
                let body = r#"{"error_code":401,"message":"Unauthorized"}"#;
                let response = format!(
                    "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_refusing_the_credentials_exits_2_at_once() {
    let stack = require_stack!();
    let registry = format!("http://{}", refusing_registry().await);
    let prefix = unique_name("ep-startup-401");
    let routing = format!(r#"{{"FINANCE": {{"output_topic": "{prefix}.out"}}}}"#);
    let args = [
        "--bootstrap-servers".to_owned(),
        stack.kafka_bootstrap.clone(),
        "--schema-registry-url".to_owned(),
        registry.clone(),
        "--input-topic".to_owned(),
        format!("{prefix}.in"),
        "--destination-configurations".to_owned(),
        routing,
        "--http-listen".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    let finished =
        tokio::task::spawn_blocking(move || run_to_completion(PROCESSOR, &args, PATIENCE))
            .await
            .expect("ran");
    finished.assert_code(2);
    assert!(
        finished.stderr.contains(&format!(
            "error: the schema registry at {} refused the output schema",
            base_url(&registry)
        )) && finished.stderr.contains("HTTP 401")
            && finished.stderr.contains("waiting cannot fix this"),
        "{}",
        finished.stderr
    );
}

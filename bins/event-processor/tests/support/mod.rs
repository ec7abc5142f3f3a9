//! A private world per test on the real stack: its own topics, group, routing file and schemas,
//! the processor binary as a child process, and readers that check what landed where.

#![allow(dead_code, unreachable_pub)]

use avro_codec::{InputEncoder, OutputDecoder, SchemaId, SchemaRegistry};
use kafka_adapters::{
    KafkaConfig, OutboundRecord, PartitionLag, ReadUntil, TopicAdmin, TopicRecord, read_topic,
};
use router_core::{ProcessorToConsumer, ProducerToProcessor};
use schema_registry::{CachedRegistry, HttpSchemaRegistry, RegistryClientConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::{
    FAST_GROUP_PROPERTIES, Stack, TcpProxy, create_topics, produce_and_wait, unique_name,
};

pub const DESTINATIONS: [&str; 3] = ["FINANCE", "MARKETING", "LOGISTICS"];
pub const TENANTS: [&str; 3] = ["FINANCE", "MARKETING", "LOGISTICS"];

/// One test's topics, group and config.
pub struct World {
    pub stack: Stack,
    pub kafka: KafkaConfig,
    pub input: String,
    pub outputs: BTreeMap<&'static str, String>,
    pub dead_letter: String,
    pub group: String,
    pub routing_file: PathBuf,
    pub registry: CachedRegistry<HttpSchemaRegistry>,
    pub encoder: InputEncoder,
    log_dir: PathBuf,
}

/// An event the test produced, identified by a unique payload id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SentEvent {
    pub id: String,
    pub tenant: &'static str,
    pub destination: String,
}

impl World {
    pub async fn new(stack: Stack, name: &str, partitions: i32) -> World {
        let prefix = unique_name(name);
        let input = format!("{prefix}.in");
        let outputs: BTreeMap<&'static str, String> = DESTINATIONS
            .iter()
            .map(|destination| {
                (
                    *destination,
                    format!("{prefix}.to.{}", destination.to_lowercase()),
                )
            })
            .collect();
        let dead_letter = format!("{prefix}.dlq");
        let kafka = KafkaConfig::new(stack.kafka_bootstrap.clone());
        let topics = std::iter::once(&input)
            .chain(outputs.values())
            .chain(std::iter::once(&dead_letter));
        create_topics(&kafka, topics.map(String::as_str), partitions).await;

        let log_dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&log_dir).expect("test dir");
        let routing_file = log_dir.join("routing.toml");
        std::fs::write(&routing_file, routing_toml(&outputs)).expect("routing file");

        let registry = CachedRegistry::new(
            HttpSchemaRegistry::new(RegistryClientConfig::new(stack.registry_url.clone()))
                .expect("registry client"),
        );
        let encoder = InputEncoder::register(&registry, &format!("{input}-value"))
            .await
            .expect("input schema registered");
        World {
            stack,
            kafka,
            input,
            outputs,
            dead_letter,
            group: format!("{prefix}.group"),
            routing_file,
            registry,
            encoder,
            log_dir,
        }
    }

    /// This world's scratch directory (routing file, logs).
    pub fn dir(&self) -> &std::path::Path {
        &self.log_dir
    }

    pub fn event_value(&self, tenant: &str, destination: &str, id: &str) -> Vec<u8> {
        self.encoder.encode_to_vec(&ProducerToProcessor {
            origin_service_id: format!("{}-svc", tenant.to_lowercase()),
            origin_service_type: tenant.to_owned(),
            destination_service_type: destination.to_owned(),
            event_timestamp: now_ms(),
            payload: format!("dummy-payload {id}"),
        })
    }

    /// `count` events, round-robin over tenants and destinations (every pair appears).
    pub fn plan_events(&self, tag: &str, count: usize) -> Vec<SentEvent> {
        (0..count)
            .map(|index| SentEvent {
                id: format!("{tag}-{index}"),
                tenant: TENANTS[index % TENANTS.len()],
                destination: DESTINATIONS[(index / TENANTS.len()) % DESTINATIONS.len()].to_owned(),
            })
            .collect()
    }

    /// Produces `events` to the input topic and waits until the broker acknowledged all of them.
    pub async fn produce(&self, events: &[SentEvent]) {
        let records = events
            .iter()
            .map(|event| {
                (
                    Some(event_key(event)),
                    self.event_value(event.tenant, &event.destination, &event.id),
                )
            })
            .collect();
        self.produce_raw(records).await;
    }

    /// Produces raw values (e.g. poison) to the input topic and waits for every acknowledgement.
    pub async fn produce_raw(&self, records: Vec<(Option<Vec<u8>>, Vec<u8>)>) {
        let topic: Arc<str> = Arc::from(self.input.as_str());
        let records = records
            .into_iter()
            .map(|(key, payload)| OutboundRecord {
                topic: Arc::clone(&topic),
                key,
                payload,
                headers: Vec::new(),
            })
            .collect();
        produce_and_wait(&self.kafka, records, Duration::from_secs(120)).await;
    }

    /// Starts the processor binary on this world's topics, its metrics and probes endpoint on a
    /// free port.
    pub fn start_processor(&self, processor_id: &str) -> Processor {
        self.start_processor_with(processor_id, &[], &[])
    }

    /// Like [`World::start_processor`], with more flags and environment variables (which win).
    pub fn start_processor_with(
        &self,
        processor_id: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Processor {
        let log_path = self.log_dir.join(format!("{processor_id}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_event-processor"));
        if !extra_args.contains(&"--schema-registry-url") {
            command.args(["--schema-registry-url", &self.stack.registry_url]);
        }
        command
            .args(["--processor-id", processor_id])
            .args(["--bootstrap-servers", &self.stack.kafka_bootstrap])
            .args(["--input-topic", &self.input])
            .args(["--group-id", &self.group])
            .args(["--dead-letter-topic", &self.dead_letter])
            .arg("--routing-file")
            .arg(&self.routing_file)
            .args(["--log-level", "info"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (key, value) in FAST_GROUP_PROPERTIES {
            command.args(["--consumer-property", &format!("{key}={value}")]);
        }
        command.args(["--producer-property", "linger.ms=5"]);
        if !extra_args.contains(&"--http-listen") {
            command.args(["--http-listen", "127.0.0.1:0"]);
        }
        command.env("EVENT_PROCESSOR__HEALTH__CHECK_INTERVAL_MS", "500");
        command.args(extra_args);
        command.envs(env.iter().copied());
        let child = command.spawn().expect("processor starts");
        Processor {
            child: Some(child),
            log_path,
        }
    }

    /// Creates one more topic with the input's partition count.
    pub async fn create_topic(&self, name: &str) {
        let admin = kafka_adapters::kafka_admin(&self.kafka).expect("admin client");
        let partitions = admin
            .partitions_of(&self.input)
            .await
            .expect("metadata")
            .expect("input exists");
        create_topics(&self.kafka, [name], partitions).await;
    }

    pub fn routing_text(&self) -> String {
        std::fs::read_to_string(&self.routing_file).expect("routing file")
    }

    /// Replaces the routing file atomically (write aside, rename over), as deployment tools do.
    pub fn write_routing(&self, text: &str) {
        let aside = self.routing_file.with_extension("toml.new");
        std::fs::write(&aside, text).expect("routing file written");
        std::fs::rename(&aside, &self.routing_file).expect("routing file replaced");
    }

    /// Decodes every record of `topics` once at least `expected` are there (or after 120 s).
    pub async fn landed(&self, topics: &[&str], expected: usize) -> Vec<Landed> {
        self.decoded(topics, expected)
            .await
            .into_iter()
            .map(|(topic, record, output)| Landed {
                topic: topic.to_owned(),
                id: payload_id(&output.payload).to_owned(),
                key: String::from_utf8(record.key.unwrap_or_default()).expect("utf-8"),
                partition: record.partition,
                offset: record.offset,
            })
            .collect()
    }

    /// Every record of `topics` with its decoded output value, once at least `expected` are
    /// there (or after 120 s).
    async fn decoded<'t>(
        &self,
        topics: &[&'t str],
        expected: usize,
    ) -> Vec<(&'t str, TopicRecord, ProcessorToConsumer)> {
        let decoder = OutputDecoder::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut decoded = Vec::new();
            for topic in topics {
                for record in self.read_all(topic).await {
                    let value = record.payload.as_deref().expect("output has a value");
                    let output = decoder
                        .decode_or_load(value, &self.registry)
                        .await
                        .expect("output decodes");
                    decoded.push((*topic, record, output));
                }
            }
            if decoded.len() >= expected || Instant::now() > deadline {
                return decoded;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Reads `topic` until at least `count` records are there.
    pub async fn read(&self, topic: &str, count: usize, timeout: Duration) -> Vec<TopicRecord> {
        match read_topic(&self.kafka, topic, ReadUntil::Count(count), timeout).await {
            Ok(records) => records,
            Err(error) => panic!("reading {count} records of {topic}: {error}"),
        }
    }

    /// Everything in `topic` now.
    pub async fn read_all(&self, topic: &str) -> Vec<TopicRecord> {
        read_topic(&self.kafka, topic, ReadUntil::End, Duration::from_secs(60))
            .await
            .unwrap_or_else(|error| panic!("reading {topic}: {error}"))
    }

    /// Decodes every routed record of every output topic: (destination, output record, key).
    pub async fn routed(
        &self,
        expected: usize,
    ) -> Vec<(&'static str, ProcessorToConsumer, String)> {
        let topics: Vec<&str> = self.outputs.values().map(String::as_str).collect();
        self.decoded(&topics, expected)
            .await
            .into_iter()
            .map(|(topic, record, output)| {
                let destination = self
                    .outputs
                    .iter()
                    .find_map(|(destination, output_topic)| {
                        (output_topic == topic).then_some(*destination)
                    })
                    .expect("an output topic");
                let key = String::from_utf8(record.key.unwrap_or_default()).expect("utf-8 key");
                (destination, output, key)
            })
            .collect()
    }

    /// Like [`World::routed`], but waits until `expected` distinct events arrived: after a crash
    /// duplicates make the record count reach `expected` before every event did.
    pub async fn routed_distinct(
        &self,
        expected: usize,
    ) -> Vec<(&'static str, ProcessorToConsumer, String)> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let routed = self.routed(expected).await;
            let distinct: std::collections::BTreeSet<&str> = routed
                .iter()
                .map(|(_, output, _)| payload_id(&output.payload))
                .collect();
            if distinct.len() >= expected || Instant::now() > deadline {
                return routed;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The group's committed position per input partition.
    pub async fn committed(&self) -> Vec<(i32, Option<i64>)> {
        let admin = kafka_adapters::kafka_admin(&self.kafka).expect("admin");
        admin
            .committed_positions(&self.group, &self.input)
            .await
            .expect("committed positions")
    }

    /// The broker's view of the group on every input partition: committed position and
    /// watermarks.
    pub async fn try_positions(&self) -> Result<Vec<PartitionLag>, kafka_adapters::AdapterError> {
        kafka_adapters::kafka_admin(&self.kafka)?
            .partition_lag(&self.group, &self.input)
            .await
    }

    /// Like [`World::try_positions`], failing the test on an error.
    pub async fn positions(&self) -> Vec<PartitionLag> {
        self.try_positions()
            .await
            .unwrap_or_else(|error| panic!("group positions of {}: {error}", self.group))
    }

    /// Waits until the group committed the end of every input partition (so every output of every
    /// input record was acknowledged) and returns those ends. A failed query (a broker coming
    /// back) is asked again. Panics after `timeout` with the positions and `context()`.
    pub async fn wait_fully_committed(
        &self,
        timeout: Duration,
        context: impl Fn() -> String,
    ) -> BTreeMap<i32, i64> {
        let deadline = Instant::now() + timeout;
        loop {
            let positions = self.try_positions().await;
            if let Ok(positions) = &positions
                && positions
                    .iter()
                    .all(|position| position.committed.unwrap_or(0) == position.high_watermark)
            {
                return positions
                    .iter()
                    .map(|position| (position.partition, position.high_watermark))
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "group {} did not commit the end of {} within {timeout:?}; last positions: {positions:?}\n{}",
                self.group,
                self.input,
                context()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Every routed record of every output topic as it is now, read once.
    pub async fn routed_now(&self) -> Vec<(&'static str, ProcessorToConsumer, String)> {
        self.routed(0).await
    }

    /// The subject of the input topic's values (TopicNameStrategy).
    pub fn input_subject(&self) -> String {
        format!("{}-value", self.input)
    }

    /// Registers [`input_schema_v2`] under the input subject and returns its id.
    pub async fn register_input_v2(&self) -> SchemaId {
        self.registry
            .register(&self.input_subject(), &input_schema_v2())
            .await
            .unwrap_or_else(|error| panic!("v2 of the input schema refused: {error}"))
    }

    /// The input record of `event`, as [`World::produce`] writes it.
    pub fn input_record(&self, event: &SentEvent) -> ProducerToProcessor {
        ProducerToProcessor {
            origin_service_id: format!("{}-svc", event.tenant.to_lowercase()),
            origin_service_type: event.tenant.to_owned(),
            destination_service_type: event.destination.clone(),
            event_timestamp: now_ms(),
            payload: format!("dummy-payload {}", event.id),
        }
    }

    /// Produces `events` written with [`input_schema_v2`] (id `schema_id`), each with the
    /// `trace_id` that `trace` gives it, and waits for every acknowledgement.
    pub async fn produce_v2(
        &self,
        schema_id: SchemaId,
        events: &[SentEvent],
        trace: impl Fn(&SentEvent) -> Option<String>,
    ) {
        let records = events
            .iter()
            .map(|event| {
                let value = encode_input_v2(
                    schema_id,
                    &self.input_record(event),
                    trace(event).as_deref(),
                );
                (Some(event_key(event)), value)
            })
            .collect();
        self.produce_raw(records).await;
    }

    /// The input records of `events`, as [`World::produce`] writes them.
    pub fn input_records(&self, events: &[SentEvent]) -> Vec<OutboundRecord> {
        let topic: Arc<str> = Arc::from(self.input.as_str());
        events
            .iter()
            .map(|event| OutboundRecord {
                topic: Arc::clone(&topic),
                key: Some(event_key(event)),
                payload: self.event_value(event.tenant, &event.destination, &event.id),
                headers: Vec::new(),
            })
            .collect()
    }

    /// Produces `events` as [`World::produce`] does, with a producer configured by `config`
    /// (e.g. large batches) instead of the world's.
    pub async fn produce_with(&self, config: &KafkaConfig, events: &[SentEvent]) {
        produce_and_wait(config, self.input_records(events), Duration::from_secs(120)).await;
    }

    /// Where each event is on the input topic: event id → (partition, offset), from the records
    /// themselves.
    pub async fn input_positions(&self) -> BTreeMap<String, (i32, i64)> {
        let decoder = avro_codec::InputDecoder::new();
        let mut positions = BTreeMap::new();
        for record in self.read_all(&self.input).await {
            let value = record.payload.as_deref().expect("input has a value");
            let event = decoder
                .decode_or_load(value, &self.registry)
                .await
                .expect("input decodes");
            positions.insert(
                payload_id(&event.payload).to_owned(),
                (record.partition, record.offset),
            );
        }
        positions
    }

    /// Input records per partition (the position a fully committed group has).
    pub async fn input_ends(&self) -> BTreeMap<i32, i64> {
        let mut ends = BTreeMap::new();
        for record in self.read_all(&self.input).await {
            let end = ends.entry(record.partition).or_insert(0);
            *end = (*end).max(record.offset + 1);
        }
        ends
    }
}

/// One output record: where it landed and which event it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    pub topic: String,
    pub id: String,
    pub key: String,
    pub partition: i32,
    pub offset: i64,
}

/// The processor binary under test.
pub struct Processor {
    child: Option<Child>,
    pub log_path: PathBuf,
}

impl Processor {
    /// Starts the processor binary with `args` only (none of a [`World`]'s flags: e.g. all
    /// settings from a config file), stdout and stderr appended to `log_path`.
    pub fn spawn(args: &[&str], log_path: PathBuf) -> Processor {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_event-processor"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("processor starts");
        Processor {
            child: Some(child),
            log_path,
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; `None` if it still runs.
    pub async fn exit_within(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().expect("wait")
            {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// SIGKILL: no drain, no commit, as in a crash.
    pub fn crash(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("processor did not stop within 60 s; log: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the log shows the processor owns partitions.
    pub async fn wait_assigned(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.log().contains("Partitions assigned") {
            assert!(
                Instant::now() < deadline,
                "no assignment within 60 s; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Processor {
    /// Whether the process is still running: it neither exited nor was killed.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("wait").is_none(),
            None => false,
        }
    }

    /// How many times the log says the processor started (a supervisor restart would add one).
    pub fn starts_logged(&self) -> usize {
        self.log()
            .lines()
            .filter(|line| line.contains("Event processor starting."))
            .count()
    }
}

/// The key [`World::produce`] gives `event`: its tenant's service id and its destination.
pub fn event_key(event: &SentEvent) -> Vec<u8> {
    format!("{}-svc:{}", event.tenant.to_lowercase(), event.destination).into_bytes()
}

/// Version 2 of the input schema: `schemas/producer.to.processor.avsc` plus an optional
/// `trace_id` (default null), a BACKWARD-compatible change. The field sits between
/// `destination_service_type` and `event_timestamp`, so a reader that ignored the writer schema
/// would misread every field after it.
pub fn input_schema_v2() -> String {
    let mut schema: serde_json::Value =
        serde_json::from_str(avro_codec::PRODUCER_TO_PROCESSOR_SCHEMA).expect("schema is JSON");
    let fields = schema["fields"].as_array_mut().expect("a record's fields");
    let after = fields
        .iter()
        .position(|field| field["name"] == "destination_service_type")
        .expect("destination_service_type field");
    fields.insert(
        after + 1,
        serde_json::json!({
            "name": "trace_id",
            "type": ["null", "string"],
            "default": null,
            "doc": "Trace the event belongs to (added in v2)."
        }),
    );
    schema.to_string()
}

/// `record` written with [`input_schema_v2`] and framed with `schema_id`, encoded here from the
/// Avro specification (zig-zag varints, length-prefixed strings, union branch index), not with
/// the codec under test.
pub fn encode_input_v2(
    schema_id: SchemaId,
    record: &ProducerToProcessor,
    trace_id: Option<&str>,
) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&schema_id.0.to_be_bytes());
    avro_string(&mut out, &record.origin_service_id);
    avro_string(&mut out, &record.origin_service_type);
    avro_string(&mut out, &record.destination_service_type);
    match trace_id {
        None => avro_long(&mut out, 0),
        Some(trace_id) => {
            avro_long(&mut out, 1);
            avro_string(&mut out, trace_id);
        }
    }
    avro_long(&mut out, record.event_timestamp);
    avro_string(&mut out, &record.payload);
    out
}

fn avro_long(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn avro_string(out: &mut Vec<u8>, text: &str) {
    avro_long(out, text.len() as i64);
    out.extend_from_slice(text.as_bytes());
}

/// A proxy to the registry at `url` (`http://host:port/path`) and the URL that goes through it,
/// so a test can take the registry away from its processor without stopping it for every other
/// test.
pub async fn registry_behind_proxy(url: &str) -> (TcpProxy, String) {
    let rest = url
        .strip_prefix("http://")
        .expect("an http:// registry URL");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let upstream = tokio::net::lookup_host(authority)
        .await
        .expect("registry address resolves")
        .next()
        .expect("registry address");
    let proxy = TcpProxy::start(upstream).await.expect("proxy starts");
    let proxied = format!("http://{}/{path}", proxy.addr());
    (proxy, proxied.trim_end_matches('/').to_owned())
}

/// One scrape of `/metrics`: sample name with its labels (as printed) → value.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub samples: BTreeMap<String, f64>,
    pub text: String,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect();
        Scrape {
            samples,
            text: text.to_owned(),
        }
    }

    /// The value of `name{labels}` (labels in the order the processor prints them), 0 if absent.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .get(&series(name, labels))
            .copied()
            .unwrap_or(0.0)
    }

    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.samples.contains_key(&series(name, labels))
    }

    /// Every sample of metric `name`, whatever its labels.
    pub fn all(&self, name: &str) -> Vec<(&str, f64)> {
        self.samples
            .iter()
            .filter(|(series, _)| {
                series.as_str() == name || series.starts_with(&format!("{name}{{"))
            })
            .map(|(series, value)| (series.as_str(), *value))
            .collect()
    }
}

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    let labels: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}=\"{value}\""))
        .collect();
    format!("{name}{{{}}}", labels.join(","))
}

impl Processor {
    /// The address of the metrics and probes endpoint, from the start-up log line.
    pub async fn http_address(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
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
            assert!(
                Instant::now() < deadline,
                "no metrics endpoint logged within 30 s; log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// GET `path` on the endpoint: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.http_address().await);
        let response = reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {url}: {error}"));
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// GET `path` and parse the JSON body.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, body) = self.get(path).await;
        let json = serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("{path} answered non-JSON `{body}`: {error}"));
        (status, json)
    }

    pub async fn scrape(&self) -> Scrape {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "/metrics: {body}");
        Scrape::parse(&body)
    }

    /// Scrapes until `done` holds (or panics after `timeout`, showing the last scrape and log).
    pub async fn wait_for_metrics(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Scrape) -> bool,
    ) -> Scrape {
        let deadline = Instant::now() + timeout;
        loop {
            let scrape = self.scrape().await;
            if done(&scrape) {
                return scrape;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}; last scrape:\n{}\nlog:\n{}",
                scrape.text,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `/ready` answers `status` and returns its body.
    pub async fn wait_for_ready_status(&self, status: u16, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (answered, body) = self.get_json("/ready").await;
            if answered == status {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "/ready did not answer {status} within {timeout:?}; last: {answered} {body}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn routing_toml(outputs: &BTreeMap<&'static str, String>) -> String {
    let mut toml = String::from("version = 1\n");
    for (destination, topic) in outputs {
        toml.push_str(&format!(
            "[destinations.{destination}]\noutputs = [{{ topic = \"{topic}\" }}]\n"
        ));
    }
    toml.push_str(
        r#"[policy]
mode = "deny-by-default"
[[policy.allow]]
origin_service_type = "FINANCE"
destinations = ["*"]
[[policy.allow]]
origin_service_type = "MARKETING"
destinations = ["MARKETING", "FINANCE"]
[[policy.allow]]
origin_service_type = "LOGISTICS"
destinations = ["*"]
"#,
    );
    toml
}

/// Whether the routing policy above lets `tenant` reach `destination`.
pub fn allowed(tenant: &str, destination: &str) -> bool {
    !(tenant == "MARKETING" && destination == "LOGISTICS")
}

pub fn payload_id(payload: &str) -> &str {
    payload.strip_prefix("dummy-payload ").unwrap_or(payload)
}

pub use cli_support::now_ms;

impl World {
    /// Exactly-once tests: `topic` as a `read_committed` reader sees it now (records of open or
    /// aborted transactions left out).
    pub async fn read_committed(&self, topic: &str) -> Vec<TopicRecord> {
        let kafka = self.kafka.clone().with("isolation.level", "read_committed");
        read_topic(&kafka, topic, ReadUntil::End, Duration::from_secs(60))
            .await
            .unwrap_or_else(|error| panic!("reading {topic} read_committed: {error}"))
    }

    /// Exactly-once tests: `topic` as a `read_uncommitted` reader sees it now (records of open
    /// and aborted transactions included; librdkafka's default is `read_committed`).
    pub async fn read_uncommitted(&self, topic: &str) -> Vec<TopicRecord> {
        let kafka = self
            .kafka
            .clone()
            .with("isolation.level", "read_uncommitted");
        read_topic(&kafka, topic, ReadUntil::End, Duration::from_secs(60))
            .await
            .unwrap_or_else(|error| panic!("reading {topic} read_uncommitted: {error}"))
    }

    /// Exactly-once tests: the payload id of every routed record a `read_committed` reader sees
    /// on the output topics, duplicates kept.
    pub async fn routed_ids_committed(&self) -> Vec<String> {
        let topics: Vec<String> = self.outputs.values().cloned().collect();
        self.routed_ids(&topics, true).await
    }

    /// The payload id of every routed record on `topics`, duplicates kept, as a
    /// `read_committed` reader (`committed`) or a `read_uncommitted` one sees them.
    pub async fn routed_ids(&self, topics: &[String], committed: bool) -> Vec<String> {
        let decoder = OutputDecoder::new();
        let mut ids = Vec::new();
        for topic in topics {
            let records = match committed {
                true => self.read_committed(topic).await,
                false => self.read_uncommitted(topic).await,
            };
            for record in records {
                let value = record.payload.as_deref().expect("output has a value");
                let output = decoder
                    .decode_or_load(value, &self.registry)
                    .await
                    .expect("output decodes");
                ids.push(payload_id(&output.payload).to_owned());
            }
        }
        ids
    }
}

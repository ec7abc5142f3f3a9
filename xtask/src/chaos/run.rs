//! One scenario in one delivery mode: its own topics, group and routing file on the shared
//! chaos stack; processors, the producer's workload and the verifying consumer, each driven
//! through its command line.

use super::cluster::Cluster;
use super::processor::{Processor, tail};
use crate::process::display_command;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const DESTINATIONS: [&str; 3] = ["FINANCE", "MARKETING", "LOGISTICS"];
/// Three tenants; the routing policy refuses MARKETING → LOGISTICS, so a ninth of the events
/// are unauthorized and belong on the dead-letter topic.
const TENANTS: [&str; 3] = ["FINANCE:f-1", "MARKETING:m-1", "LOGISTICS:l-1"];
/// Fast group membership, so that a dead member's partitions move on within seconds.
pub(crate) const SESSION_TIMEOUT_MS: u64 = 6_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    AtLeastOnce,
    ExactlyOnce,
}

impl Delivery {
    pub(crate) fn flag(self) -> &'static str {
        match self {
            Self::AtLeastOnce => "at-least-once",
            Self::ExactlyOnce => "exactly-once",
        }
    }

    pub(crate) fn short(self) -> &'static str {
        match self {
            Self::AtLeastOnce => "ALO",
            Self::ExactlyOnce => "EOS",
        }
    }
}

/// How a processor reaches the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Plain,
    Proxy,
    Sasl,
}

pub(crate) struct Run<'a> {
    pub(crate) cluster: &'a Cluster,
    pub(crate) bin: &'a Path,
    pub(crate) delivery: Delivery,
    pub(crate) dir: PathBuf,
    pub(crate) input: String,
    pub(crate) outputs: [String; 3],
    pub(crate) dead_letter: String,
    group: String,
    routing_file: PathBuf,
    manifest: PathBuf,
    partitions: u32,
    started: usize,
    /// Settings every processor of the run gets (`EVENT_PROCESSOR__…` variables).
    processor_env: Vec<(String, String)>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(
        cluster: &'a Cluster,
        bin: &'a Path,
        scenario: &str,
        delivery: Delivery,
        partitions: u32,
    ) -> Result<Self> {
        let name = format!("{scenario}-{}", delivery.short().to_lowercase());
        let dir = cluster.dir.join("runs").join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let base = format!("chaos.{name}");
        let outputs =
            DESTINATIONS.map(|destination| format!("{base}.to.{}", destination.to_lowercase()));
        let routing_file = dir.join("routing.toml");
        std::fs::write(&routing_file, routing(&outputs))?;
        Ok(Self {
            cluster,
            bin,
            delivery,
            input: format!("{base}.in"),
            dead_letter: format!("{base}.dlq"),
            group: format!("chaos-{name}"),
            outputs,
            routing_file,
            manifest: dir.join("manifest.jsonl"),
            dir,
            partitions,
            started: 0,
            processor_env: Vec::new(),
        })
    }

    /// Gives every processor of this run the environment variable `key`.
    pub(crate) fn processor_env(&mut self, key: &str, value: &str) {
        self.processor_env.push((key.to_owned(), value.to_owned()));
    }

    /// A processor `instance` of this run (a stable id: its transactional.id in exactly-once
    /// mode), with `extra` flags; each start logs to a fresh file.
    pub(crate) fn processor(
        &mut self,
        instance: &str,
        via: Via,
        extra: &[&str],
    ) -> Result<Processor> {
        self.started += 1;
        let bootstrap = match via {
            Via::Plain => self.cluster.bootstrap(),
            Via::Proxy => self.cluster.proxied_bootstrap(),
            Via::Sasl => self.cluster.sasl_bootstrap(),
        };
        let mut command = Command::new(self.bin.join("event-processor"));
        command
            .args(["--processor-id", instance])
            .args(["--bootstrap-servers", &bootstrap])
            .args(["--schema-registry-url", &self.cluster.registry_url()])
            .args(["--input-topic", &self.input])
            .args(["--group-id", &self.group])
            .args(["--dead-letter-topic", &self.dead_letter])
            .arg("--routing-file")
            .arg(&self.routing_file)
            .args(["--delivery", self.delivery.flag()])
            .arg("--create-missing-topics")
            .args(["--http-listen", "127.0.0.1:0"])
            .args(["--log-level", "info"])
            .args([
                "--consumer-property",
                &format!("session.timeout.ms={SESSION_TIMEOUT_MS}"),
                "--consumer-property",
                "heartbeat.interval.ms=500",
            ])
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env(
                "EVENT_PROCESSOR__KAFKA__TOPIC_PARTITIONS",
                self.partitions.to_string(),
            )
            .env("EVENT_PROCESSOR__HEALTH__CHECK_INTERVAL_MS", "500");
        if via == Via::Sasl {
            for (key, value) in Cluster::sasl_client_properties() {
                command.args(["--kafka-property", &format!("{key}={value}")]);
            }
        }
        command.args(extra);
        command.envs(self.processor_env.iter().map(|(key, value)| (key, value)));
        let log = self.dir.join(format!("{instance}.{}.log", self.started));
        Processor::spawn(command, instance, log)
    }

    /// Starts the producer in the background: `per_tenant` events for each of three tenants at
    /// `rate` events/s in all, with `poison` poison values (from `poison_values`, else the
    /// built-in text) spread among them. Writes the manifest the verification reads.
    pub(crate) fn start_producer(
        &self,
        per_tenant: u64,
        rate: u64,
        poison: u64,
        poison_values: Option<&Path>,
    ) -> Result<Child> {
        let mut command = Command::new(self.bin.join("event-producer"));
        command
            .args(["--bootstrap-servers", &self.cluster.bootstrap()])
            .args(["--schema-registry-url", &self.cluster.registry_url()])
            .args(["--topic", &self.input])
            .args(["--destinations", &DESTINATIONS.join(",")])
            .args(["--count", &per_tenant.to_string()])
            .args(["--rate", &rate.to_string()])
            .args(["--poison", &poison.to_string()])
            // Through a broker crash: a record may wait out the restart.
            .args(["--delivery-timeout-ms", "120000"])
            .arg("--manifest")
            .arg(&self.manifest);
        if let Some(file) = poison_values {
            command.arg("--poison-values").arg(file);
        }
        for tenant in TENANTS {
            command.args(["--tenant", tenant]);
        }
        let log = std::fs::File::create(self.dir.join("producer.log"))?;
        command
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", display_command(&command)))
    }

    /// Waits for the producer; every event it was asked for must be acknowledged (the manifest
    /// holds only acknowledged ones, but a short manifest would make a weaker run).
    pub(crate) fn wait_producer(&self, mut producer: Child, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = producer.try_wait()? {
                if !status.success() {
                    bail!(
                        "the producer failed ({status}); log:\n{}",
                        tail(
                            &std::fs::read_to_string(self.dir.join("producer.log"))
                                .unwrap_or_default()
                        )
                    );
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = producer.kill();
                let _ = producer.wait();
                bail!("the producer did not finish within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `processor` reports the group's lag as 0 (everything read and committed)
    /// and nothing in flight, twice in a row half a second apart.
    pub(crate) fn wait_drained(&self, processor: &mut Processor, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut quiet_scrapes = 0;
        loop {
            quiet_scrapes = if is_drained(processor) {
                quiet_scrapes + 1
            } else {
                0
            };
            if quiet_scrapes >= 2 {
                return Ok(());
            }
            if let Some(status) = processor.exited() {
                bail!(
                    "processor {} exited ({status}) before it caught up; log {}:\n{}",
                    processor.instance,
                    processor.log_path.display(),
                    tail(&processor.log())
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "processor {} did not catch up within {timeout:?}; log {}",
                    processor.instance,
                    processor.log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The sample consumer's verification of the manifest (read to the end, so that late
    /// duplicates count; `read_committed` in exactly-once mode).
    pub(crate) fn verify(&self) -> Result<Verification> {
        let summary_file = self.dir.join("verification.json");
        let mut command = Command::new(self.bin.join("event-consumer"));
        command
            .args(["--bootstrap-servers", &self.cluster.bootstrap()])
            .args(["--schema-registry-url", &self.cluster.registry_url()])
            .args(["--topics", &self.outputs.join(",")])
            .args(["--dead-letter-topic", &self.dead_letter])
            .arg("--verify")
            .arg(&self.manifest)
            .args(["--accept-dead-lettered", "--until-idle", "--quiet"])
            .args(["--idle-timeout-ms", "3000"])
            .arg("--summary-json")
            .arg(&summary_file);
        for (destination, topic) in DESTINATIONS.iter().zip(&self.outputs) {
            command.args(["--destination-topic", &format!("{destination}={topic}")]);
        }
        if self.delivery == Delivery::ExactlyOnce {
            command.arg("--read-committed");
        }
        let output = command
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .context("cannot run event-consumer")?;
        std::fs::write(self.dir.join("verification.log"), &output.stdout)?;
        // Exit 1 is a failed verification, read from the summary; anything else is a broken run.
        if !matches!(output.status.code(), Some(0 | 1)) {
            bail!(
                "{} failed ({}): {}",
                display_command(&command),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let summary: Value = serde_json::from_str(
            &std::fs::read_to_string(&summary_file)
                .with_context(|| format!("cannot read {}", summary_file.display()))?,
        )
        .context("the verification summary is not JSON")?;
        Verification::from_summary(&summary, &self.manifest)
    }
}

/// The group's lag is 0 (everything read and committed) and nothing is in flight, as
/// `processor` reports it.
pub(crate) fn is_drained(processor: &mut Processor) -> bool {
    processor.scrape().is_ok_and(|metrics| {
        metrics.lag() == Some(0.0) && metrics.sum(super::processor::IN_FLIGHT) == 0.0
    })
}

/// The verifying consumer's figures.
#[derive(Debug, Clone, Default)]
pub(crate) struct Verification {
    pub(crate) expected: u64,
    pub(crate) missing: u64,
    pub(crate) duplicates: u64,
    pub(crate) misrouted: u64,
    /// Manifest events found on the dead-letter topic.
    pub(crate) dead_lettered_events: u64,
    /// Manifest events the routing policy refuses (MARKETING → LOGISTICS).
    pub(crate) unauthorized_expected: u64,
    /// Dead-letter records read, by `dlq.reason`.
    pub(crate) dead_letters_by_reason: std::collections::BTreeMap<String, u64>,
    pub(crate) first_missing: Vec<String>,
    pub(crate) first_misrouted: Vec<String>,
}

impl Verification {
    fn from_summary(summary: &Value, manifest: &Path) -> Result<Self> {
        let report = &summary["verification"];
        if report.is_null() {
            bail!("the verification summary has no verification: {summary}");
        }
        let count = |value: &Value| value.as_u64().unwrap_or(0);
        let firsts = |value: &Value| -> Vec<String> {
            value
                .as_array()
                .map(|items| items.iter().take(3).map(Value::to_string).collect())
                .unwrap_or_default()
        };
        Ok(Self {
            expected: count(&report["expected"]),
            missing: count(&report["missing"]["count"]),
            duplicates: count(&report["duplicates"]["count"]),
            misrouted: count(&report["misrouted"]["count"]),
            dead_lettered_events: count(&report["dead_lettered"]),
            unauthorized_expected: unauthorized_in(manifest)?,
            dead_letters_by_reason: summary["dead_letters"]["by_reason"]
                .as_object()
                .map(|reasons| {
                    reasons
                        .iter()
                        .map(|(reason, count)| (reason.clone(), count.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default(),
            first_missing: firsts(&report["missing"]["first"]),
            first_misrouted: firsts(&report["misrouted"]["first"]),
        })
    }

    pub(crate) fn reason(&self, reason: &str) -> u64 {
        self.dead_letters_by_reason
            .get(reason)
            .copied()
            .unwrap_or(0)
    }
}

/// Events of the manifest that the run's policy refuses.
fn unauthorized_in(manifest: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let mut denied = 0;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line).context("bad manifest line")?;
        if entry["tenant_type"] == "MARKETING" && entry["destination"] == "LOGISTICS" {
            denied += 1;
        }
    }
    Ok(denied)
}

/// deploy/routing.toml's table and policy, on this run's topics.
fn routing(outputs: &[String; 3]) -> String {
    let mut text = String::from("version = 1\n\n");
    for (destination, topic) in DESTINATIONS.iter().zip(outputs) {
        text.push_str(&format!(
            "[destinations.{destination}]\noutputs = [{{ topic = \"{topic}\", subject = \"processor.to.consumer-value\" }}]\n\n"
        ));
    }
    text.push_str(
        "[policy]\nmode = \"deny-by-default\"\n\n\
         [[policy.allow]]\norigin_service_type = \"FINANCE\"\ndestinations = [\"*\"]\n\n\
         [[policy.allow]]\norigin_service_type = \"MARKETING\"\ndestinations = [\"MARKETING\", \"FINANCE\"]\n\n\
         [[policy.allow]]\norigin_service_type = \"LOGISTICS\"\ndestinations = [\"*\"]\n",
    );
    text
}

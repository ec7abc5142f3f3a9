//! The local stack: a tansu broker and the dev schema registry, on loopback, started in the background.
//!
//! `up` is idempotent and `down` stops only the processes `up` started (by pid file). State (pid files,
//! logs, registry data, sqlite storage) lives in `.stack/<name>/` at the workspace root.

use crate::process::{self, Daemon};
use crate::{flag_value, schemas, tools, workspace_root};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Topics the local stack creates: the prototype's input and outputs, and our dead-letter topic.
pub(crate) const INPUT_TOPIC: &str = "producer.to.processor";
pub(crate) const OUTPUT_TOPICS: [&str; 3] = [
    "processor.to.finance",
    "processor.to.marketing",
    "processor.to.logistics",
];
pub(crate) const DEAD_LETTER_TOPIC: &str = "producer.to.processor.dlq";
const PARTITIONS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    /// Fast, lost when the broker stops.
    Memory,
    /// Durable across broker restarts (and kill -9), about 8x slower.
    Sqlite,
}

/// One stack instance: where it runs and keeps its state.
#[derive(Debug, Clone)]
pub(crate) struct Stack {
    pub(crate) kafka_port: u16,
    pub(crate) registry_port: u16,
    pub(crate) storage: Storage,
    dir: PathBuf,
}

pub(crate) fn command(args: &[&str]) -> Result<()> {
    let stack = Stack::local(storage_flag(args)?)?;
    match args.first().copied() {
        Some("up") => {
            stack.up()?;
            println!("stack is up; for tests and tools:\n{}", stack.env_exports());
            Ok(())
        }
        Some("down") => stack.down(),
        Some("status") => stack.status(),
        Some("env") => {
            println!("{}", stack.env_exports());
            Ok(())
        }
        _ => bail!("usage: cargo xtask stack up|down|status|env [--storage memory|sqlite]"),
    }
}

fn storage_flag(args: &[&str]) -> Result<Storage> {
    match flag_value(args, "--storage")? {
        None | Some("memory") => Ok(Storage::Memory),
        Some("sqlite") => Ok(Storage::Sqlite),
        Some(other) => bail!("unknown storage `{other}`; use memory or sqlite"),
    }
}

impl Stack {
    /// The developer's stack on the well-known ports (overridable by env).
    pub(crate) fn local(storage: Storage) -> Result<Self> {
        Ok(Self {
            kafka_port: port_from_env("EP_KAFKA_PORT", 9092)?,
            registry_port: port_from_env("EP_REGISTRY_PORT", 8081)?,
            storage,
            dir: workspace_root().join(".stack").join("local"),
        })
    }

    /// A private stack on free ports, for one test run, so it never touches the developer's stack.
    pub(crate) fn private(name: &str) -> Result<Self> {
        Ok(Self {
            kafka_port: free_port()?,
            registry_port: free_port()?,
            storage: Storage::Memory,
            dir: workspace_root().join(".stack").join(name),
        })
    }

    pub(crate) fn kafka_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }

    pub(crate) fn registry_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.registry_port)
    }

    pub(crate) fn env_vars(&self) -> [(&'static str, String); 2] {
        [
            ("KAFKA_BOOTSTRAP", self.kafka_bootstrap()),
            ("SCHEMA_REGISTRY_URL", self.registry_url()),
        ]
    }

    fn env_exports(&self) -> String {
        self.env_vars()
            .iter()
            .map(|(name, value)| format!("export {name}={value}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn broker(&self) -> Daemon {
        Daemon::new("broker", &self.dir)
    }

    fn registry(&self) -> Daemon {
        Daemon::new("registry", &self.dir)
    }

    pub(crate) fn up(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let tansu = tools::tansu()?;
        self.start_broker(&tansu)?;
        self.create_topics(&tansu)?;
        self.start_registry()?;
        schemas::register_all(&self.registry_url(), &all_topics_outputs())
    }

    fn start_broker(&self, tansu: &std::path::Path) -> Result<()> {
        let broker = self.broker();
        if broker.running_pid().is_some() && process::port_answers(self.kafka_port) {
            eprintln!("broker already running on {}", self.kafka_bootstrap());
            return Ok(());
        }
        process::ensure_port_free(self.kafka_port, "Kafka broker", "EP_KAFKA_PORT")?;
        let listener = format!("tcp://127.0.0.1:{}", self.kafka_port);
        let storage = match self.storage {
            Storage::Memory => "memory://tansu/".to_owned(),
            Storage::Sqlite => format!("sqlite://{}", self.dir.join("tansu.db").display()),
        };
        let mut command = Command::new(tansu);
        command
            .arg("broker")
            .args(["--kafka-cluster-id", "event-processor-local"])
            .args(["--kafka-listener-url", &listener])
            .args(["--kafka-advertised-listener-url", &listener])
            .args(["--storage-engine", &storage])
            .env("RUST_LOG", "warn");
        let pid = broker.spawn(&mut command)?;
        eprintln!("started broker (pid {pid}) on {}", self.kafka_bootstrap());
        process::wait_until(&broker, Duration::from_secs(60), || {
            process::port_answers(self.kafka_port)
        })
    }

    /// Creates the topics through the broker's own admin CLI, retrying while the broker warms up.
    fn create_topics(&self, tansu: &std::path::Path) -> Result<()> {
        let broker_url = format!("tcp://127.0.0.1:{}", self.kafka_port);
        let existing = self.wait_for_topic_list(tansu, &broker_url)?;
        for topic in all_topics() {
            if existing.iter().any(|name| name == topic) {
                continue;
            }
            let output = Command::new(tansu)
                .args(["topic", "create", "--broker", &broker_url])
                .args(["--partitions", &PARTITIONS.to_string(), topic])
                .output()
                .context("cannot run `tansu topic create`")?;
            if !output.status.success() {
                bail!(
                    "creating topic {topic} failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
        }
        Ok(())
    }

    fn wait_for_topic_list(
        &self,
        tansu: &std::path::Path,
        broker_url: &str,
    ) -> Result<Vec<String>> {
        let mut names = Vec::new();
        process::wait_until(
            &self.broker(),
            Duration::from_secs(60),
            || match Command::new(tansu)
                .args(["topic", "list", "--broker", broker_url])
                .output()
            {
                Ok(output) if output.status.success() => match topic_names(&output.stdout) {
                    Some(listed) => {
                        names = listed;
                        true
                    }
                    None => false,
                },
                _ => false,
            },
        )?;
        Ok(names)
    }

    fn start_registry(&self) -> Result<()> {
        let registry = self.registry();
        if registry.running_pid().is_some() && schemas::registry_answers(&self.registry_url()) {
            eprintln!("registry already running on {}", self.registry_url());
            return Ok(());
        }
        process::ensure_port_free(self.registry_port, "schema registry", "EP_REGISTRY_PORT")?;
        let binary = tools::dev_registry()?;
        let mut command = Command::new(binary);
        command
            .args(["--listen", &format!("127.0.0.1:{}", self.registry_port)])
            .arg("--data-file")
            .arg(self.dir.join("registry.json"));
        let pid = registry.spawn(&mut command)?;
        eprintln!("started registry (pid {pid}) on {}", self.registry_url());
        let url = self.registry_url();
        process::wait_until(&registry, Duration::from_secs(30), || {
            schemas::registry_answers(&url)
        })
    }

    pub(crate) fn down(&self) -> Result<()> {
        for daemon in [self.registry(), self.broker()] {
            if daemon.stop()? {
                eprintln!("stopped {}", daemon.name);
            }
        }
        Ok(())
    }

    fn status(&self) -> Result<()> {
        let broker_ok =
            self.broker().running_pid().is_some() && process::port_answers(self.kafka_port);
        let registry_ok = self.registry().running_pid().is_some()
            && schemas::registry_answers(&self.registry_url());
        println!("broker   {} {}", health(broker_ok), self.kafka_bootstrap());
        println!("registry {} {}", health(registry_ok), self.registry_url());
        if !(broker_ok && registry_ok) {
            bail!("the local stack is not healthy; run `cargo xtask stack up`");
        }
        Ok(())
    }
}

fn health(ok: bool) -> &'static str {
    if ok { "healthy " } else { "DOWN    " }
}

fn all_topics() -> impl Iterator<Item = &'static str> {
    std::iter::once(INPUT_TOPIC)
        .chain(OUTPUT_TOPICS)
        .chain(std::iter::once(DEAD_LETTER_TOPIC))
}

fn all_topics_outputs() -> Vec<&'static str> {
    OUTPUT_TOPICS.to_vec()
}

/// Topic names from `tansu topic list`, which prints the metadata response's topics as a JSON array.
fn topic_names(listing: &[u8]) -> Option<Vec<String>> {
    let topics: Vec<serde_json::Value> = serde_json::from_slice(listing).ok()?;
    Some(
        topics
            .iter()
            .filter_map(|topic| topic["name"].as_str().map(str::to_owned))
            .collect(),
    )
}

fn port_from_env(name: &str, default: u16) -> Result<u16> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(value) => value
            .parse()
            .with_context(|| format!("{name}={value} is not a port number")),
    }
}

fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

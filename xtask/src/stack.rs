//! The local stack: Apache Kafka (single node, KRaft) and Apicurio Registry, on loopback, started
//! in the background (`crates/local-stack` runs them).
//!
//! `up` is idempotent and `down` stops only the processes `up` started (by pid file). State (pid
//! files, logs, broker data, registry database) lives in `.stack/<name>/` at the workspace root and
//! survives `down`/`up`; `up --fresh` starts from empty topics and an empty registry.

use crate::{port_from_env, schemas, workspace_root};
use anyhow::{Context, Result, bail};
use local_stack::{KafkaBroker, Registry, Tools, free_port};
use std::path::PathBuf;

/// Topics the local stack creates: the prototype's input and outputs, and our dead-letter topic.
pub(crate) const INPUT_TOPIC: &str = "producer.to.processor";
pub(crate) const OUTPUT_TOPICS: [&str; 3] = [
    "processor.to.finance",
    "processor.to.marketing",
    "processor.to.logistics",
];
pub(crate) const DEAD_LETTER_TOPIC: &str = "producer.to.processor.dlq";
const PARTITIONS: u32 = 3;

/// One stack instance: its broker, its registry and where it keeps its state.
#[derive(Debug, Clone)]
pub(crate) struct Stack {
    pub(crate) broker: KafkaBroker,
    pub(crate) registry: Registry,
    dir: PathBuf,
    /// Whether `up` wipes earlier data first (private stacks always do).
    fresh: bool,
}

pub(crate) fn command(args: &[&str]) -> Result<()> {
    let fresh = args.contains(&"--fresh");
    if let Some(unknown) = args.iter().skip(1).find(|arg| **arg != "--fresh") {
        bail!("unknown flag `{unknown}`; usage: cargo xtask stack up [--fresh]|down|status|env");
    }
    let mut stack = Stack::local()?;
    stack.fresh = fresh;
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
        _ => bail!("usage: cargo xtask stack up [--fresh]|down|status|env"),
    }
}

impl Stack {
    /// The developer's stack on the well-known ports (overridable by env); its data is kept.
    pub(crate) fn local() -> Result<Self> {
        let dir = workspace_root().join(".stack").join("local");
        Ok(Self {
            broker: KafkaBroker::new(
                &dir,
                port_from_env("EP_KAFKA_PORT", 9092)?,
                port_from_env("EP_KAFKA_CONTROLLER_PORT", 9093)?,
            ),
            registry: Registry::new(
                &dir,
                port_from_env("EP_REGISTRY_PORT", 8081)?,
                port_from_env("EP_REGISTRY_MANAGEMENT_PORT", 8082)?,
            ),
            dir,
            fresh: false,
        })
    }

    /// A private stack on free ports, starting empty, for one test or bench run, so it never
    /// touches the developer's stack.
    pub(crate) fn private(name: &str) -> Result<Self> {
        let dir = workspace_root().join(".stack").join(name);
        Ok(Self {
            broker: KafkaBroker::new(&dir, free_port()?, free_port()?),
            registry: Registry::new(&dir, free_port()?, free_port()?),
            dir,
            fresh: true,
        })
    }

    pub(crate) fn kafka_bootstrap(&self) -> String {
        self.broker.bootstrap()
    }

    pub(crate) fn registry_url(&self) -> String {
        self.registry.url()
    }

    /// What integration tests and tools read to find the stack; `EP_STACK_DIR` lets tests find
    /// the broker's pid file.
    pub(crate) fn env_vars(&self) -> [(&'static str, String); 3] {
        [
            ("KAFKA_BOOTSTRAP", self.kafka_bootstrap()),
            ("SCHEMA_REGISTRY_URL", self.registry_url()),
            ("EP_STACK_DIR", self.dir.display().to_string()),
        ]
    }

    fn env_exports(&self) -> String {
        self.env_vars()
            .iter()
            .map(|(name, value)| format!("export {name}={value}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Starts broker and registry side by side (each takes a few seconds of JVM start), then
    /// creates the topics and registers the schemas.
    pub(crate) fn up(&self) -> Result<()> {
        let tools = Tools::ensure()?;
        if self.fresh {
            self.down()?;
            self.broker.wipe()?;
            self.registry.wipe()?;
        }
        let (broker, registry) = std::thread::scope(|scope| {
            let broker = scope.spawn(|| self.broker.start(&tools));
            let registry = scope.spawn(|| self.registry.start(&tools));
            (broker.join(), registry.join())
        });
        broker
            .map_err(|_| anyhow::anyhow!("starting the broker panicked"))?
            .context("starting the Kafka broker failed")?;
        eprintln!(
            "broker (Apache Kafka {}) on {}",
            local_stack::KAFKA_VERSION,
            self.kafka_bootstrap()
        );
        registry
            .map_err(|_| anyhow::anyhow!("starting the registry panicked"))?
            .context("starting the schema registry failed")?;
        eprintln!(
            "registry (Apicurio Registry {}) on {}",
            local_stack::APICURIO_VERSION,
            self.registry_url()
        );
        let topics: Vec<(&str, u32)> = all_topics().map(|topic| (topic, PARTITIONS)).collect();
        self.broker
            .create_topics(&tools, &topics)
            .context("creating the stack's topics failed")?;
        schemas::register_all(&self.registry_url(), &OUTPUT_TOPICS)
    }

    pub(crate) fn down(&self) -> Result<()> {
        if self.registry.stop()? {
            eprintln!("stopped registry");
        }
        if self.broker.stop()? {
            eprintln!("stopped broker");
        }
        Ok(())
    }

    fn status(&self) -> Result<()> {
        let broker_ok = self.broker.is_running();
        let registry_ok = self.registry.is_running();
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

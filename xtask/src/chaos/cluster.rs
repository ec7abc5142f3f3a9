//! The chaos run's private stack: one Apache Kafka broker and one Apicurio Registry on free
//! loopback ports, shared by every scenario (each scenario run has its own topics and group).
//!
//! The broker has three client listeners:
//! - `PLAINTEXT`: producer, verifying consumer, Kafka's tools (principal `User:ANONYMOUS`, a
//!   super user);
//! - `PROXIED`: plain too, but advertised as the [`Proxy`]'s address, so that a processor
//!   bootstrapping through the proxy keeps talking through it (and only that processor);
//! - `SASL`: `SASL_PLAINTEXT`/`PLAIN`, so that a processor has its own principal
//!   (`User:processor`) which ACLs can refuse (StandardAuthorizer; resources without ACLs stay
//!   open to everyone).

use super::proxy::Proxy;
use crate::workspace_root;
use anyhow::{Context, Result, bail};
use local_stack::{KafkaBroker, Registry, Tools, free_port};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

pub(crate) const PROCESSOR_USER: &str = "processor";
const PROCESSOR_PASSWORD: &str = "processor-secret";

pub(crate) struct Cluster {
    pub(crate) tools: Tools,
    pub(crate) broker: KafkaBroker,
    pub(crate) registry: Registry,
    pub(crate) proxy: Proxy,
    pub(crate) dir: PathBuf,
    sasl_port: u16,
}

impl Cluster {
    /// Starts broker, registry and proxy in `.stack/chaos`, wiping an earlier run's data.
    pub(crate) fn start() -> Result<Self> {
        let tools = Tools::ensure()?;
        let dir = workspace_root().join(".stack").join("chaos");
        let (port, controller, proxied, sasl, proxy_port) = (
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
        );
        let broker = KafkaBroker::new(&dir, port, controller)
            .with_property(
                "listeners",
                &format!(
                    "PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},\
                     PROXIED://127.0.0.1:{proxied},SASL://127.0.0.1:{sasl}"
                ),
            )
            .with_property(
                "advertised.listeners",
                &format!(
                    "PLAINTEXT://127.0.0.1:{port},PROXIED://127.0.0.1:{proxy_port},\
                     SASL://127.0.0.1:{sasl}"
                ),
            )
            .with_property(
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PROXIED:PLAINTEXT,SASL:SASL_PLAINTEXT",
            )
            .with_property("sasl.enabled.mechanisms", "PLAIN")
            .with_property(
                "listener.name.sasl.plain.sasl.jaas.config",
                &format!(
                    "org.apache.kafka.common.security.plain.PlainLoginModule required \
                     user_{PROCESSOR_USER}=\"{PROCESSOR_PASSWORD}\";"
                ),
            )
            .with_property(
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            )
            .with_property("super.users", "User:ANONYMOUS")
            .with_property("allow.everyone.if.no.acl.found", "true");
        let registry = Registry::new(&dir, free_port()?, free_port()?);
        let _ = registry.stop();
        let _ = broker.stop();
        broker.wipe()?;
        registry.wipe()?;
        let proxy = Proxy::start(
            SocketAddr::from(([127, 0, 0, 1], proxy_port)),
            SocketAddr::from(([127, 0, 0, 1], proxied)),
        )?;
        let (started_broker, started_registry) = std::thread::scope(|scope| {
            let started_broker = scope.spawn(|| broker.start(&tools));
            let started_registry = scope.spawn(|| registry.start(&tools));
            (started_broker.join(), started_registry.join())
        });
        started_broker
            .map_err(|_| anyhow::anyhow!("starting the broker panicked"))?
            .context("starting the chaos broker failed")?;
        started_registry
            .map_err(|_| anyhow::anyhow!("starting the registry panicked"))?
            .context("starting the chaos registry failed")?;
        eprintln!(
            "chaos stack: broker {} (processor via proxy {}, SASL 127.0.0.1:{sasl}), registry {}",
            broker.bootstrap(),
            proxy.addr(),
            registry.url()
        );
        Ok(Self {
            tools,
            broker,
            registry,
            proxy,
            dir,
            sasl_port: sasl,
        })
    }

    pub(crate) fn bootstrap(&self) -> String {
        self.broker.bootstrap()
    }

    pub(crate) fn proxied_bootstrap(&self) -> String {
        self.proxy.addr().to_string()
    }

    pub(crate) fn sasl_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.sasl_port)
    }

    /// librdkafka properties for a client on the SASL listener as `User:processor`.
    pub(crate) fn sasl_client_properties() -> [(&'static str, &'static str); 4] {
        [
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", PROCESSOR_USER),
            ("sasl.password", PROCESSOR_PASSWORD),
        ]
    }

    pub(crate) fn registry_url(&self) -> String {
        self.registry.url()
    }

    /// Runs Kafka's ACL tool with `args` (after `--bootstrap-server`).
    pub(crate) fn acl(&self, args: &[&str]) -> Result<()> {
        let output = self
            .broker
            .tool(&self.tools, "org.apache.kafka.tools.AclCommand")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("cannot run Kafka's ACL tool")?;
        if !output.status.success() {
            bail!(
                "kafka AclCommand {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// SIGKILLs the broker and starts it again on the same data after `down`.
    pub(crate) fn crash_broker(&self, down: Duration) -> Result<()> {
        if !self.broker.kill()? {
            bail!("the broker was not running when the scenario meant to kill it");
        }
        std::thread::sleep(down);
        self.broker
            .start(&self.tools)
            .context("restarting the broker after its crash failed")
    }

    pub(crate) fn stop(&self) {
        let _ = self.registry.stop();
        let _ = self.broker.stop();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

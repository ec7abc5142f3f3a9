//! A single-node Apache Kafka in KRaft mode (broker and controller in one JVM) on loopback.

use crate::daemon::{Daemon, ensure_port_free, port_answers, wait_until};
use crate::security::{self, Acl, ScramUser, SecureListener};
use crate::tools::Tools;
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The broker's heap: enough for tests and the bench, bounded so the stack fits beside them.
const HEAP: &[&str] = &["-Xms256m", "-Xmx768m"];
/// The JVM options `kafka-run-class.sh` uses by default.
const JVM_OPTIONS: &[&str] = &[
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
];
/// The broker's own log goes to its log file at INFO; tools print warnings only.
const BROKER_LOG4J: &str = "\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = warn
";
const TOOLS_LOG4J: &str = "\
status = warn
appender.console.type = Console
appender.console.name = STDERR
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %p %m%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
";

/// One broker: its ports, its directory (configuration, data, pid and log files), any extra
/// `server.properties` lines and, optionally, a secure listener.
#[derive(Debug, Clone)]
pub struct KafkaBroker {
    dir: PathBuf,
    port: u16,
    controller_port: u16,
    extra_properties: Vec<(String, String)>,
    security: Option<SecureListener>,
}

impl KafkaBroker {
    /// A broker that listens on 127.0.0.1:`port` (clients) and `controller_port` (KRaft), keeping
    /// everything in `dir`.
    pub fn new(dir: impl Into<PathBuf>, port: u16, controller_port: u16) -> Self {
        Self {
            dir: dir.into(),
            port,
            controller_port,
            extra_properties: Vec::new(),
            security: None,
        }
    }

    /// Adds a SASL_SSL listener (TLS + SCRAM-SHA-512) on `listener.port`, turns on the standard
    /// authorizer with no access without an ACL, and makes `listener.admin` a super user. The
    /// TLS certificates are generated at the first start ([`KafkaBroker::ca_file`] is the CA to
    /// trust). The plaintext and controller listeners stay open to the anonymous super user:
    /// the broker talks to itself there, and so does the operator's tooling.
    #[must_use]
    pub fn with_security(mut self, listener: SecureListener) -> Self {
        self.security = Some(listener);
        self
    }

    /// Adds or overrides one `server.properties` entry.
    #[must_use]
    pub fn with_property(mut self, key: &str, value: &str) -> Self {
        self.extra_properties
            .push((key.to_owned(), value.to_owned()));
        self
    }

    /// `127.0.0.1:<port>`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>` of the SASL_SSL listener, when the broker has one.
    pub fn secure_bootstrap(&self) -> Option<String> {
        self.security
            .as_ref()
            .map(|listener| format!("127.0.0.1:{}", listener.port))
    }

    /// The CA certificate (PEM) that signed the secure listener's certificate; written at the
    /// first start. librdkafka's `ssl.ca.location`.
    pub fn ca_file(&self) -> PathBuf {
        self.tls_dir().join(security::CA_PEM)
    }

    /// The Java client properties of the secure listener's admin (Kafka tools'
    /// `--command-config`); written at each start.
    pub fn admin_properties_file(&self) -> PathBuf {
        self.dir.join("admin-client.properties")
    }

    /// One of Kafka's command-line tools (`main_class`), connected to the secure listener as its
    /// admin.
    ///
    /// # Errors
    /// When the broker has no secure listener.
    pub fn secure_tool(&self, tools: &Tools, main_class: &str) -> Result<Command> {
        let Some(bootstrap) = self.secure_bootstrap() else {
            bail!("the broker has no secure listener; build it `with_security`");
        };
        let mut command = tools.kafka_command(main_class, &self.tools_log4j());
        command
            .args(["--bootstrap-server", &bootstrap])
            .arg("--command-config")
            .arg(self.admin_properties_file());
        Ok(command)
    }

    /// Creates (or changes the password of) SCRAM users through the secure listener's admin, all
    /// at once.
    ///
    /// # Errors
    /// When the broker has no secure listener, a credential cannot be expressed, or Kafka's
    /// config tool fails.
    pub fn add_scram_users(&self, tools: &Tools, users: &[ScramUser]) -> Result<()> {
        let commands = users
            .iter()
            .map(|user| {
                let mut command =
                    self.secure_tool(tools, "org.apache.kafka.tools.ConfigCommand")?;
                command
                    .args([
                        "--alter",
                        "--entity-type",
                        "users",
                        "--entity-name",
                        &user.name,
                    ])
                    .args(["--add-config", &user.credential_for_config()?]);
                Ok((format!("adding SCRAM user {}", user.name), command))
            })
            .collect::<Result<Vec<_>>>()?;
        security::run_all(commands)
    }

    /// Adds ACLs through the secure listener's admin, all at once.
    ///
    /// # Errors
    /// When the broker has no secure listener or Kafka's ACL tool fails.
    pub fn add_acls(&self, tools: &Tools, acls: &[Acl]) -> Result<()> {
        self.change_acls(tools, acls, true)
    }

    /// Removes ACLs through the secure listener's admin, all at once.
    ///
    /// # Errors
    /// When the broker has no secure listener or Kafka's ACL tool fails.
    pub fn remove_acls(&self, tools: &Tools, acls: &[Acl]) -> Result<()> {
        self.change_acls(tools, acls, false)
    }

    fn change_acls(&self, tools: &Tools, acls: &[Acl], add: bool) -> Result<()> {
        let commands = security::acl_tool_runs(acls, add)
            .into_iter()
            .map(|arguments| {
                let mut command = self.secure_tool(tools, "org.apache.kafka.tools.AclCommand")?;
                let what = format!("kafka-acls {}", arguments.join(" "));
                command.args(arguments);
                Ok((what, command))
            })
            .collect::<Result<Vec<_>>>()?;
        security::run_all(commands)
    }

    fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }

    /// The pid and log files.
    pub fn daemon(&self) -> Daemon {
        Daemon::new("broker", &self.dir)
    }

    /// The log directory (topic data and cluster metadata).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("kafka-data")
    }

    /// Whether this broker's process is alive and its port answers.
    pub fn is_running(&self) -> bool {
        self.daemon().running_pid().is_some() && port_answers(self.port)
    }

    /// Starts the broker unless it already runs, formatting its log directory on first start,
    /// and returns once it accepts connections. Data from an earlier run is kept.
    ///
    /// # Errors
    /// When a port is taken by something else, formatting fails, or the broker does not come up
    /// within a minute (the message holds its last log lines).
    pub fn start(&self, tools: &Tools) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        ensure_port_free(self.port, "Kafka broker", "EP_KAFKA_PORT")?;
        ensure_port_free(
            self.controller_port,
            "Kafka controller",
            "EP_KAFKA_CONTROLLER_PORT",
        )?;
        if let Some(listener) = &self.security {
            ensure_port_free(
                listener.port,
                "Kafka SASL_SSL listener",
                "SecureListener::port",
            )?;
            let ca_file = security::ensure_certificates(&self.tls_dir())?;
            std::fs::write(
                self.admin_properties_file(),
                SecureListener::java_client_properties(&listener.admin, &ca_file),
            )?;
        }
        let properties = self.dir.join("server.properties");
        std::fs::write(&properties, self.server_properties())?;
        std::fs::write(self.dir.join("log4j2-broker.properties"), BROKER_LOG4J)?;
        std::fs::write(self.tools_log4j(), TOOLS_LOG4J)?;
        if !self.data_dir().join("meta.properties").is_file() {
            self.format(tools, &properties)?;
        }
        let daemon = self.daemon();
        let mut command = Command::new(&tools.kafka_java);
        command
            .args(HEAP)
            .args(JVM_OPTIONS)
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.dir.join("log4j2-broker.properties").display()
            ))
            .arg("-cp")
            .arg(tools.kafka_libs.join("*"))
            .arg("kafka.Kafka")
            .arg(&properties);
        daemon.spawn(&mut command)?;
        let secure_port = self.security.as_ref().map(|listener| listener.port);
        wait_until(&daemon, Duration::from_secs(60), || {
            port_answers(self.port) && secure_port.is_none_or(port_answers)
        })
    }

    /// Stops the broker cleanly (SIGTERM, SIGKILL after 30 s). Returns whether it was running.
    ///
    /// # Errors
    /// When it survives SIGKILL.
    pub fn stop(&self) -> Result<bool> {
        self.daemon().stop(Duration::from_secs(30))
    }

    /// SIGKILLs the broker, as a crash would. Returns whether it was running.
    ///
    /// # Errors
    /// When it survives SIGKILL.
    pub fn kill(&self) -> Result<bool> {
        self.daemon().kill()
    }

    /// Deletes the broker's data, so the next start formats a new cluster. The broker must be
    /// stopped.
    ///
    /// # Errors
    /// When the broker runs or the directory cannot be removed.
    pub fn wipe(&self) -> Result<()> {
        if self.daemon().running_pid().is_some() {
            bail!("the broker is running; stop it before wiping its data");
        }
        match std::fs::remove_dir_all(self.data_dir()) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(error).with_context(|| format!("cannot remove {}", self.data_dir().display()))
            }
            _ => Ok(()),
        }
    }

    /// Creates each `(topic, partitions)` that does not exist yet (replication 1), all at once.
    ///
    /// # Errors
    /// When Kafka's topic tool fails for one of them.
    pub fn create_topics(&self, tools: &Tools, topics: &[(&str, u32)]) -> Result<()> {
        let children = topics
            .iter()
            .map(|(topic, partitions)| {
                let mut command = self.tool(tools, "org.apache.kafka.tools.TopicCommand");
                command
                    .args(["--create", "--if-not-exists", "--topic", topic])
                    .args(["--partitions", &partitions.to_string()])
                    .args(["--replication-factor", "1"]);
                command
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .with_context(|| format!("cannot run Kafka's topic tool for {topic}"))
                    .map(|child| (*topic, child))
            })
            .collect::<Result<Vec<_>>>()?;
        for (topic, child) in children {
            let output = child.wait_with_output()?;
            if !output.status.success() {
                bail!(
                    "creating topic {topic} failed ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
        }
        Ok(())
    }

    /// One of Kafka's command-line tools (`main_class`), pointed at this broker.
    pub fn tool(&self, tools: &Tools, main_class: &str) -> Command {
        let mut command = tools.kafka_command(main_class, &self.tools_log4j());
        command.args(["--bootstrap-server", &self.bootstrap()]);
        command
    }

    fn tools_log4j(&self) -> PathBuf {
        self.dir.join("log4j2-tools.properties")
    }

    fn format(&self, tools: &Tools, properties: &Path) -> Result<()> {
        let log4j = self.tools_log4j();
        let uuid = tools
            .kafka_command("kafka.tools.StorageTool", &log4j)
            .arg("random-uuid")
            .output()
            .context("cannot run Kafka's storage tool")?;
        let cluster_id = String::from_utf8_lossy(&uuid.stdout).trim().to_owned();
        if !uuid.status.success() || cluster_id.is_empty() {
            bail!(
                "Kafka's storage tool gave no cluster id: {}",
                String::from_utf8_lossy(&uuid.stderr)
            );
        }
        let output = tools
            .kafka_command("kafka.tools.StorageTool", &log4j)
            .args(["format", "--ignore-formatted", "-t", &cluster_id, "-c"])
            .arg(properties)
            .args(match &self.security {
                Some(listener) => listener.format_arguments()?,
                None => Vec::new(),
            })
            .output()
            .context("cannot run Kafka's storage tool")?;
        if !output.status.success() {
            bail!(
                "formatting {} failed: {}{}",
                self.data_dir().display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    fn server_properties(&self) -> String {
        let (port, controller) = (self.port, self.controller_port);
        let mut properties: Vec<(String, String)> = [
            ("process.roles", "broker,controller".to_owned()),
            ("node.id", "1".to_owned()),
            (
                "listeners",
                format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"),
            ),
            (
                "advertised.listeners",
                format!("PLAINTEXT://127.0.0.1:{port}"),
            ),
            ("controller.listener.names", "CONTROLLER".to_owned()),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_owned(),
            ),
            ("inter.broker.listener.name", "PLAINTEXT".to_owned()),
            (
                "controller.quorum.voters",
                format!("1@127.0.0.1:{controller}"),
            ),
            ("log.dirs", self.data_dir().display().to_string()),
            // One node: every internal topic has one replica.
            ("offsets.topic.replication.factor", "1".to_owned()),
            ("transaction.state.log.replication.factor", "1".to_owned()),
            ("transaction.state.log.min.isr", "1".to_owned()),
            (
                "share.coordinator.state.topic.replication.factor",
                "1".to_owned(),
            ),
            ("share.coordinator.state.topic.min.isr", "1".to_owned()),
            // Fewer internal partitions make the first group join and transaction quick.
            ("offsets.topic.num.partitions", "10".to_owned()),
            ("transaction.state.log.num.partitions", "10".to_owned()),
            // Groups assign at once instead of waiting 3 s for more members.
            ("group.initial.rebalance.delay.ms", "0".to_owned()),
            // As on most production clusters: topics exist because someone created them.
            ("auto.create.topics.enable", "false".to_owned()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        if let Some(listener) = &self.security {
            for (key, value) in &mut properties {
                match key.as_str() {
                    "listeners" | "advertised.listeners" => {
                        *value = format!("{value},{}", listener.listener());
                    }
                    "listener.security.protocol.map" => {
                        *value = format!("{value},{}", SecureListener::protocol_mapping());
                    }
                    _ => {}
                }
            }
            properties.extend(listener.server_properties(&self.tls_dir()));
        }
        for (key, value) in &self.extra_properties {
            properties.retain(|(existing, _)| existing != key);
            properties.push((key.clone(), value.clone()));
        }
        properties
            .iter()
            .fold(String::new(), |mut text, (key, value)| {
                let _ = writeln!(text, "{key}={value}");
                text
            })
    }
}

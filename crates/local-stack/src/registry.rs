//! Apicurio Registry serving the Confluent-compatible API, on loopback.

use crate::daemon::{Daemon, ensure_port_free, wait_until};
use crate::tools::Tools;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Where Apicurio serves the Confluent Schema Registry API.
const CONFLUENT_API_PATH: &str = "/apis/ccompat/v7";
const HEAP: &[&str] = &["-Xms64m", "-Xmx512m"];

/// One registry: its ports and its directory (H2 database, pid and log files).
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
    port: u16,
    management_port: u16,
}

impl Registry {
    /// A registry on 127.0.0.1:`port` (API) and `management_port` (Quarkus' health and metrics
    /// interface, moved off its default 9000 so that several stacks can run side by side).
    pub fn new(dir: impl Into<PathBuf>, port: u16, management_port: u16) -> Self {
        Self {
            dir: dir.into(),
            port,
            management_port,
        }
    }

    /// The Confluent-compatible base URL clients use, `http://127.0.0.1:<port>/apis/ccompat/v7`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{CONFLUENT_API_PATH}", self.port)
    }

    /// The API port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pid and log files.
    pub fn daemon(&self) -> Daemon {
        Daemon::new("registry", &self.dir)
    }

    fn database(&self) -> PathBuf {
        self.dir.join("registry-data")
    }

    /// Whether this registry's process is alive and answers the Confluent API.
    pub fn is_running(&self) -> bool {
        self.daemon().running_pid().is_some() && registry_answers(&self.url())
    }

    /// Starts the registry unless it already runs and returns once it answers. It stores schemas
    /// in an H2 file database in its directory, so ids survive a restart, and applies BACKWARD
    /// compatibility to every subject, as Confluent Schema Registry does by default.
    ///
    /// # Errors
    /// When its port is taken or it does not answer within two minutes (the message holds its
    /// last log lines).
    pub fn start(&self, tools: &Tools) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        ensure_port_free(self.port, "schema registry", "EP_REGISTRY_PORT")?;
        ensure_port_free(
            self.management_port,
            "schema registry's management interface",
            "EP_REGISTRY_MANAGEMENT_PORT",
        )?;
        let daemon = self.daemon();
        let mut command = Command::new(&tools.registry_java);
        command
            .args(HEAP)
            .current_dir(&tools.registry_home)
            .arg("-Dquarkus.http.host=127.0.0.1")
            .arg(format!("-Dquarkus.http.port={}", self.port))
            .arg("-Dquarkus.management.host=127.0.0.1")
            .arg(format!(
                "-Dquarkus.management.port={}",
                self.management_port
            ))
            .arg("-Dapicurio.rules.global.compatibility=BACKWARD")
            .arg("-Dapicurio.storage.kind=sql")
            .arg("-Dapicurio.storage.sql.kind=h2")
            .arg(format!(
                "-Dapicurio.datasource.url=jdbc:h2:file:{}/registry",
                self.database().display()
            ))
            // One line per request at INFO would drown the log under load.
            .arg("-Dquarkus.log.category.\"apicurio-registry.access\".level=WARN")
            .arg("-jar")
            .arg(tools.registry_home.join("quarkus-run.jar"));
        daemon.spawn(&mut command)?;
        let url = self.url();
        wait_until(&daemon, Duration::from_secs(120), || registry_answers(&url))
    }

    /// Stops the registry (SIGTERM, SIGKILL after 15 s). Returns whether it was running.
    ///
    /// # Errors
    /// When it survives SIGKILL.
    pub fn stop(&self) -> Result<bool> {
        self.daemon().stop(Duration::from_secs(15))
    }

    /// SIGKILLs the registry. Returns whether it was running.
    ///
    /// # Errors
    /// When it survives SIGKILL.
    pub fn kill(&self) -> Result<bool> {
        self.daemon().kill()
    }

    /// Deletes the registry's schemas. The registry must be stopped.
    ///
    /// # Errors
    /// When it runs or the directory cannot be removed.
    pub fn wipe(&self) -> Result<()> {
        if self.daemon().running_pid().is_some() {
            bail!("the registry is running; stop it before wiping its data");
        }
        match std::fs::remove_dir_all(self.database()) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(error).with_context(|| format!("cannot remove {}", self.database().display()))
            }
            _ => Ok(()),
        }
    }
}

/// True when a Confluent-compatible registry answers `GET <url>/subjects` with success.
pub fn registry_answers(url: &str) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .get(format!("{}/subjects", url.trim_end_matches('/')))
        .call()
        .is_ok_and(|response| response.status().is_success())
}

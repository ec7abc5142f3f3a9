//! One `event-processor` process of a scenario run, driven through its command line, its log
//! and its `/metrics` endpoint only.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// The processor's in-flight gauge: input records read whose outputs are not all acknowledged.
pub(crate) const IN_FLIGHT: &str = "event_processor_in_flight_records";
const ROUTED: &str = "event_processor_events_routed_total";
const LAG: &str = "event_processor_consumer_lag";

pub(crate) struct Processor {
    pub(crate) instance: String,
    child: Child,
    pub(crate) log_path: PathBuf,
    http: Option<String>,
    agent: ureq::Agent,
    exit: Option<ExitStatus>,
}

impl Processor {
    pub(crate) fn spawn(mut command: Command, instance: &str, log_path: PathBuf) -> Result<Self> {
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start event-processor")?;
        Ok(Self {
            instance: instance.to_owned(),
            child,
            log_path,
            http: None,
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(2)))
                .http_status_as_error(false)
                .build()
                .into(),
            exit: None,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The exit status once it exited (or was killed).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Waits for `needle` in the log; fails early when the process exits.
    pub(crate) fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                bail!(
                    "processor {} exited ({status}) before `{needle}`; log {}:\n{}",
                    self.instance,
                    self.log_path.display(),
                    tail(&self.log())
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "no `{needle}` from processor {} within {timeout:?}; log {}:\n{}",
                    self.instance,
                    self.log_path.display(),
                    tail(&self.log())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn wait_assigned(&mut self, timeout: Duration) -> Result<()> {
        self.wait_for_log("Partitions assigned", timeout)
    }

    /// Where `/metrics` is served (the log names the port it picked, once it serves).
    fn http(&mut self) -> Result<String> {
        if let Some(address) = &self.http {
            return Ok(address.clone());
        }
        let address = self
            .log()
            .lines()
            .find(|line| line.contains("Serving metrics and probes"))
            .and_then(|line| line.split("listen=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .context("the processor does not serve /metrics yet")?;
        self.http = Some(address.clone());
        Ok(address)
    }

    pub(crate) fn scrape(&mut self) -> Result<Metrics> {
        let url = format!("http://{}/metrics", self.http()?);
        let mut response = self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("cannot scrape {url}"))?;
        let body = response.body_mut().read_to_string()?;
        Ok(Metrics::parse(&body))
    }

    /// Records routed so far (0 when it cannot be scraped).
    pub(crate) fn routed(&mut self) -> f64 {
        self.scrape()
            .map(|metrics| metrics.sum(ROUTED))
            .unwrap_or(0.0)
    }

    /// Resident memory in KiB, from /proc.
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        self.exit = self.child.wait().ok();
    }

    /// SIGTERM and wait for the drain and final commit.
    pub(crate) fn stop(&mut self, timeout: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.exited() {
            return Ok(status);
        }
        crate::process::run(Command::new("kill").args(["-s", "TERM", &self.pid().to_string()]))?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.kill();
                bail!(
                    "processor {} did not stop within {timeout:?} after SIGTERM; log {}",
                    self.instance,
                    self.log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.kill();
        }
    }
}

/// One scrape, as `(name, labels, value)` lines.
pub(crate) struct Metrics {
    samples: Vec<(String, String, f64)>,
}

impl Metrics {
    fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let value: f64 = value.parse().ok()?;
                let (name, labels) = match series.split_once('{') {
                    Some((name, labels)) => (name, labels.trim_end_matches('}')),
                    None => (series, ""),
                };
                Some((name.to_owned(), labels.to_owned(), value))
            })
            .collect();
        Self { samples }
    }

    /// Sum of every series of `name`.
    pub(crate) fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(series, _, _)| series == name)
            .map(|(_, _, value)| value)
            .sum()
    }

    /// Routed records to `topic`.
    pub(crate) fn routed_to(&self, topic: &str) -> f64 {
        let label = format!("topic=\"{topic}\"");
        self.samples
            .iter()
            .filter(|(series, labels, _)| series == ROUTED && labels.contains(&label))
            .map(|(_, _, value)| value)
            .sum()
    }

    /// The group's lag, when the processor has reported it for at least one partition.
    pub(crate) fn lag(&self) -> Option<f64> {
        let lags: Vec<f64> = self
            .samples
            .iter()
            .filter(|(series, _, _)| series == LAG)
            .map(|(_, _, value)| *value)
            .collect();
        (!lags.is_empty()).then(|| lags.iter().sum())
    }
}

pub(crate) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

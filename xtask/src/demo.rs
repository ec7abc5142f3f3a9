//! `cargo xtask demo`: the main job on the local stack, end to end, checked.
//!
//! Starts the stack if needed, runs the processor with `deploy/processor.toml` and tenant
//! authentication on (`hmac`, with a key file of fresh random keys for the three tenants),
//! produces signed events from three tenants to three destinations (plus poison values; the
//! local policy denies MARKETING → LOGISTICS, so some are unauthorized; and a few spoofed events
//! that claim another tenant's identity, which must be refused as unauthenticated), verifies
//! with the sample consumer that every event landed on its destination's topic or, if
//! unauthorized or spoofed, in the dead-letter topic, prints the figures and a few decoded
//! records, and stops the processor gracefully. Exits non-zero if anything is missing or
//! misrouted.

use crate::process::display_command;
use crate::stack::Stack;
use crate::{flag_value, tools, workspace_root};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TENANTS: [&str; 3] = [
    "FINANCE:finance-billing-1",
    "MARKETING:marketing-campaigns-1",
    "LOGISTICS:logistics-tracking-1",
];
const POISON_VALUES: u32 = 5;
/// Share of each tenant's events that claim another tenant's identity.
const SPOOF_PERCENT: &str = "2";

pub(crate) fn command(args: &[&str]) -> Result<()> {
    let events_per_tenant: u32 = match flag_value(args, "--events")? {
        Some(value) => value
            .parse::<u32>()
            .with_context(|| format!("--events {value} is not a number"))?
            .div_ceil(TENANTS.len() as u32),
        None => 1_000,
    };
    let stack = Stack::local()?;
    stack.up()?;
    let bin = tools::build_binaries(
        &["event-processor", "event-producer", "event-consumer"],
        false,
    )?;
    let run_dir = workspace_root().join(".stack").join("demo");
    std::fs::create_dir_all(&run_dir)?;

    let key_file = write_tenant_keys(&run_dir)?;
    let processor = Processor::start(&bin, &run_dir, &stack, &key_file)?;
    processor.wait_for_log("Partitions assigned", Duration::from_secs(90))?;
    println!("processor is consuming {}", crate::stack::INPUT_TOPIC);

    let manifest = run_dir.join("manifest.jsonl");
    let _ = std::fs::remove_file(&manifest);
    let mut producer = Command::new(bin.join("event-producer"));
    producer
        .args(["--bootstrap-servers", &stack.kafka_bootstrap()])
        .args(["--schema-registry-url", &stack.registry_url()])
        .args(["--destinations", "FINANCE,MARKETING,LOGISTICS"])
        .args(["--count", &events_per_tenant.to_string()])
        .args(["--poison", &POISON_VALUES.to_string()])
        .arg("--manifest")
        .arg(&manifest)
        .arg("--auth-key-file")
        .arg(&key_file)
        .args(["--spoof-percent", SPOOF_PERCENT])
        .arg("--progress");
    for tenant in TENANTS {
        producer.args(["--tenant", tenant]);
    }
    run_step(&mut producer, "producing events")?;

    let summary_file = run_dir.join("verification.json");
    let mut verify = Command::new(bin.join("event-consumer"));
    verify
        .args(["--bootstrap-servers", &stack.kafka_bootstrap()])
        .args(["--schema-registry-url", &stack.registry_url()])
        .arg("--verify")
        .arg(&manifest)
        .args(["--accept-dead-lettered", "--quiet"])
        .args(["--idle-timeout-ms", "20000"])
        .arg("--summary-json")
        .arg(&summary_file);
    let verified = run_step(&mut verify, "verifying where every event landed");

    let mut samples = Command::new(bin.join("event-consumer"));
    samples
        .args(["--bootstrap-servers", &stack.kafka_bootstrap()])
        .args(["--schema-registry-url", &stack.registry_url()])
        .args(["--topics", "processor.to.finance,processor.to.marketing"])
        .args([
            "--max",
            "4",
            "--idle-timeout-ms",
            "3000",
            "--no-dead-letter-topic",
        ]);
    println!("\n== a few decoded output records ==");
    run_step(&mut samples, "reading sample records")?;

    let exit = processor.stop()?;
    println!(
        "\n== processor ==\n{}",
        processor.last_line_containing("Event processor stopped")
    );
    if !exit.success() {
        bail!(
            "the processor did not stop cleanly ({exit}); log: {}",
            processor.log_path.display()
        );
    }
    verified?;
    report(&manifest, &summary_file)
}

/// Prints the verification figures and checks the unauthorized events went to the dead-letter topic.
fn report(manifest: &Path, summary_file: &Path) -> Result<()> {
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(summary_file)
            .with_context(|| format!("cannot read {}", summary_file.display()))?,
    )
    .context("verification summary is not JSON")?;
    let verification = &summary["verification"];
    println!("\n== where the events of this run landed ==");
    if let Some(destinations) = verification["per_destination"].as_object() {
        for (destination, figures) in destinations {
            println!(
                "  {destination:<10} {:<26} expected {:>6}  received {:>6}  not on the topic {:>4}",
                figures["topic"].as_str().unwrap_or("?"),
                figures["expected"],
                figures["received"],
                figures["missing"]
            );
        }
    }
    let denied = expected_unauthorized(manifest)?;
    let spoofed = verification["expected_dead_letters"].as_u64().unwrap_or(0);
    let refused = verification["dead_lettered_as_expected"]
        .as_u64()
        .unwrap_or(0);
    let dead_lettered = verification["dead_lettered"].as_u64().unwrap_or(0);
    println!(
        "  dead-lettered events of this run: {dead_lettered} (expected {}: {denied} unauthorized, as MARKETING may not reach LOGISTICS, and {spoofed} spoofed)",
        denied + spoofed
    );
    println!(
        "  spoofed events (another tenant's identity, signed with the sender's own key): {spoofed}, refused as unauthenticated: {refused}"
    );
    println!(
        "  duplicates {}  misrouted {}  missing (neither routed nor dead-lettered) {}",
        verification["duplicates"]["count"],
        verification["misrouted"]["count"],
        verification["missing"]["count"]
    );
    println!("\n== dead-letter topic, all runs, by reason ==");
    if let Some(reasons) = summary["dead_letters"]["by_reason"].as_object() {
        for (reason, count) in reasons {
            println!("  {reason:<22} {count}");
        }
    }
    if verification["ok"] != Value::Bool(true) {
        bail!("verification failed: see {}", summary_file.display());
    }
    if dead_lettered != denied + spoofed || refused != spoofed {
        bail!(
            "{dead_lettered} events of this run were dead-lettered ({refused} as unauthenticated), expected {denied} unauthorized and {spoofed} spoofed"
        );
    }
    println!(
        "\ndemo OK: every event is on its destination's topic or, if unauthorized or spoofed, in the dead-letter topic"
    );
    Ok(())
}

/// Events of the manifest that the local policy (deploy/routing.toml) denies.
fn expected_unauthorized(manifest: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let mut denied = 0;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line).context("bad manifest line")?;
        let spoofed = !entry["expected_dead_letter"].is_null();
        if !spoofed && entry["tenant_type"] == "MARKETING" && entry["destination"] == "LOGISTICS" {
            denied += 1;
        }
    }
    Ok(denied)
}

/// A key file with one fresh random key per demo tenant (the processor's and the producer's:
/// in production each tenant holds only its own entries), readable by its owner only.
fn write_tenant_keys(run_dir: &Path) -> Result<PathBuf> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let mut random = std::fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    let mut text = String::from("# Demo tenant keys, made anew by every `cargo xtask demo`.\n");
    for tenant in TENANTS {
        let service_type = tenant.split(':').next().unwrap_or(tenant);
        let mut secret = [0u8; 32];
        random
            .read_exact(&mut secret)
            .context("cannot read /dev/urandom")?;
        let hex: String = secret.iter().map(|byte| format!("{byte:02x}")).collect();
        text.push_str(&format!(
            "\n[[key]]\nid = \"{}-demo\"\nservice_type = \"{service_type}\"\nsecret = \"{hex}\"\n",
            service_type.to_lowercase()
        ));
    }
    let path = run_dir.join("tenant-keys.toml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(path)
}

fn run_step(command: &mut Command, what: &str) -> Result<()> {
    eprintln!("==> {what}: {}", display_command(command));
    let status = command
        .status()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// The processor as a child process with its log in the run directory.
struct Processor {
    child: std::cell::RefCell<Child>,
    log_path: PathBuf,
}

impl Processor {
    fn start(bin: &Path, run_dir: &Path, stack: &Stack, key_file: &Path) -> Result<Self> {
        let log_path = run_dir.join("processor.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let child = Command::new(bin.join("event-processor"))
            .current_dir(workspace_root())
            .args(["--config", "deploy/processor.toml"])
            // The file names the default ports; the stack's ports may have moved (EP_*_PORT).
            .args(["--bootstrap-servers", &stack.kafka_bootstrap()])
            .args(["--schema-registry-url", &stack.registry_url()])
            .env("EVENT_PROCESSOR__AUTHENTICATION__MODE", "hmac")
            .env("EVENT_PROCESSOR__AUTHENTICATION__KEY_FILE", key_file)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start the event processor")?;
        eprintln!(
            "started event-processor (pid {}), log: {}",
            child.id(),
            log_path.display()
        );
        Ok(Self {
            child: std::cell::RefCell::new(child),
            log_path,
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.child.borrow_mut().try_wait()? {
                bail!(
                    "the processor exited ({status}) before `{needle}`; log:\n{}",
                    tail(&self.log())
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "no `{needle}` from the processor within {timeout:?}; log:\n{}",
                    tail(&self.log())
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn last_line_containing(&self, needle: &str) -> String {
        self.log()
            .lines()
            .rev()
            .find(|line| line.contains(needle))
            .unwrap_or("(no summary line in the log)")
            .to_owned()
    }

    /// SIGTERM, then waits for the drain and final commit.
    fn stop(&self) -> Result<std::process::ExitStatus> {
        let pid = self.child.borrow().id();
        Command::new("kill")
            .args(["-s", "TERM", &pid.to_string()])
            .status()
            .context("cannot signal the processor")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.borrow_mut().try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.borrow_mut().kill();
                bail!("the processor did not stop within 60 s after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        let mut child = self.child.borrow_mut();
        if child.try_wait().ok().flatten().is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

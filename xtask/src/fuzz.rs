//! `cargo xtask fuzz`: builds the cargo-fuzz targets of `fuzz/` and runs each for a fixed time
//! (docs/FUZZING.md).
//!
//! Toolchain: `EP_FUZZ_TOOLCHAIN` when set, else `cargo +nightly fuzz` when rustup has a nightly
//! toolchain, else the default toolchain. Always `--sanitizer none`: the workspace forbids
//! `unsafe`, so AddressSanitizer would find little that a Rust panic does not, at about half the
//! speed; and without a sanitizer cargo-fuzz passes only flags a stable compiler accepts, so a
//! machine with stable Rust alone fuzzes too. Panics, overflow checks and debug assertions stay
//! on.
//!
//! libFuzzer writes what it finds to `fuzz/target/corpus/<target>` (thrown away with the build);
//! the committed seeds in `fuzz/corpus/<target>` are only read. A crash stops that target, the
//! others still run, and the command fails naming the crashing input.

use crate::process::display_command;
use crate::workspace_root;
use anyhow::{Context, Result, bail};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Every fuzz target, in the order they run.
const TARGETS: [&str; 6] = [
    "avro_decode",
    "avro_writer_schema",
    "confluent_framing",
    "routing_file",
    "tenant_keys",
    "tenant_verify",
];

/// The cargo-fuzz version installed when none is (the one `Cargo.lock`-free CI machines get).
const CARGO_FUZZ_VERSION: &str = "0.13.1";

/// Seconds per target without `--seconds`.
const DEFAULT_SECONDS: u64 = 20;

/// Seconds per target with `--smoke` (CI): all six targets take about a minute.
const SMOKE_SECONDS: u64 = 10;

/// libFuzzer options for every run: a single input taking longer than this many seconds is
/// reported as a hang.
const PER_INPUT_TIMEOUT_SECONDS: u64 = 10;

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N | --smoke] [TARGET...]\n\
    targets: avro_decode avro_writer_schema confluent_framing routing_file tenant_keys tenant_verify\n\
    (default: all)";

pub(crate) fn command(args: &[&str]) -> Result<()> {
    let options = Options::parse(args)?;
    let fuzz = Fuzz::detect();
    fuzz.ensure_cargo_fuzz()?;
    println!(
        "fuzz: building the targets with {}",
        fuzz.toolchain_description()
    );
    let build_started = Instant::now();
    fuzz.build()?;
    println!("fuzz: built in {:.0?}", build_started.elapsed());
    let mut crashes = Vec::new();
    for target in &options.targets {
        if let Some(crash) = fuzz.run(target, options.seconds)? {
            crashes.push(crash);
        }
    }
    if crashes.is_empty() {
        return Ok(());
    }
    for crash in &crashes {
        eprintln!("\n{crash}");
    }
    bail!(
        "{} fuzz target(s) crashed: {}",
        crashes.len(),
        crashes
            .iter()
            .map(|crash| crash.target.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

struct Options {
    seconds: u64,
    targets: Vec<String>,
}

impl Options {
    fn parse(args: &[&str]) -> Result<Self> {
        let mut seconds = DEFAULT_SECONDS;
        let mut targets = Vec::new();
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            match *arg {
                "--smoke" => seconds = SMOKE_SECONDS,
                "--seconds" => {
                    let value = rest.next().context("`--seconds` needs a value")?;
                    seconds = value
                        .parse()
                        .ok()
                        .filter(|seconds| *seconds > 0)
                        .with_context(|| format!("`--seconds {value}`: not a positive number"))?;
                }
                "--help" | "-h" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                target if TARGETS.contains(&target) => targets.push(target.to_owned()),
                other => bail!("unknown fuzz target or flag `{other}`\n{USAGE}"),
            }
        }
        if targets.is_empty() {
            targets = TARGETS.iter().map(|target| (*target).to_owned()).collect();
        }
        Ok(Self { seconds, targets })
    }
}

/// How cargo-fuzz is invoked on this machine.
struct Fuzz {
    root: PathBuf,
    /// `Some(name)`: `cargo +name fuzz`; `None`: `cargo fuzz` (the default toolchain).
    toolchain: Option<String>,
}

impl Fuzz {
    fn detect() -> Self {
        if let Some(toolchain) = std::env::var("EP_FUZZ_TOOLCHAIN")
            .ok()
            .filter(|name| !name.is_empty())
        {
            return Self {
                root: workspace_root(),
                toolchain: Some(toolchain),
            };
        }
        let nightly = Command::new("rustup")
            .args(["toolchain", "list"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|output| output.status.success())
            .is_some_and(|output| {
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .any(|line| line.starts_with("nightly"))
            });
        Self {
            root: workspace_root(),
            toolchain: nightly.then(|| "nightly".to_owned()),
        }
    }

    fn toolchain_description(&self) -> String {
        match &self.toolchain {
            Some(toolchain) => format!("cargo +{toolchain} fuzz"),
            None => "cargo fuzz (the default toolchain: no nightly found)".to_owned(),
        }
    }

    /// `cargo [+nightly] fuzz`, from the workspace root (cargo-fuzz finds `fuzz/` there).
    fn cargo_fuzz(&self) -> Command {
        // The rustup proxy, not `$CARGO`: only the proxy understands `+nightly`.
        let mut command = Command::new("cargo");
        if let Some(toolchain) = &self.toolchain {
            command.arg(format!("+{toolchain}"));
        }
        command.arg("fuzz").current_dir(&self.root);
        command
    }

    fn ensure_cargo_fuzz(&self) -> Result<()> {
        let installed = self
            .cargo_fuzz()
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if installed {
            return Ok(());
        }
        println!("fuzz: cargo-fuzz not found; installing cargo-fuzz {CARGO_FUZZ_VERSION}");
        let mut install = Command::new("cargo");
        install.args([
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            CARGO_FUZZ_VERSION,
        ]);
        crate::process::run(&mut install).context("installing cargo-fuzz failed")
    }

    fn build(&self) -> Result<()> {
        let mut build = self.cargo_fuzz();
        build.args(["build", "--sanitizer", "none"]);
        crate::process::run(&mut build).context("building the fuzz targets failed")
    }

    /// Runs `target` for `seconds`; `Some` when it crashed.
    fn run(&self, target: &str, seconds: u64) -> Result<Option<Crash>> {
        let fuzz_dir = self.root.join("fuzz");
        let seeds = fuzz_dir.join("corpus").join(target);
        let found = fuzz_dir.join("target").join("corpus").join(target);
        let logs = fuzz_dir.join("target").join("logs");
        fs::create_dir_all(&found).with_context(|| format!("creating {}", found.display()))?;
        fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let log_path = logs.join(format!("{target}.log"));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut run = self.cargo_fuzz();
        run.args(["run", "--sanitizer", "none", target])
            .arg(&found)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-timeout={PER_INPUT_TIMEOUT_SECONDS}"))
            .stdout(log.try_clone()?)
            .stderr(log);
        let started = Instant::now();
        let status = run
            .status()
            .with_context(|| format!("cannot run {}", display_command(&run)))?;
        let output = fs::read_to_string(&log_path).unwrap_or_default();
        if status.success() {
            println!(
                "fuzz: {target}: no crash in {:.0?} ({})",
                started.elapsed(),
                summary(&output)
            );
            return Ok(None);
        }
        Ok(Some(Crash {
            target: target.to_owned(),
            artifact: artifact(&output),
            toolchain: self.toolchain.clone(),
            log_path,
            log_tail: tail(&output, 30),
        }))
    }
}

/// libFuzzer's last statistics line, e.g. `Done 616205 runs in 11 second(s)`.
fn summary(output: &str) -> String {
    let done = output
        .lines()
        .rev()
        .find(|line| line.starts_with("Done "))
        .unwrap_or("no statistics");
    let coverage = output
        .lines()
        .rev()
        .find_map(|line| line.split_once(" cov: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .map(|edges| format!(", coverage {edges}"))
        .unwrap_or_default();
    format!("{done}{coverage}")
}

/// The input libFuzzer saved: `... Test unit written to fuzz/artifacts/<target>/crash-<sha1>`.
fn artifact(output: &str) -> Option<PathBuf> {
    output.lines().find_map(|line| {
        line.split_once("Test unit written to ")
            .map(|(_, path)| PathBuf::from(path.trim()))
    })
}

fn tail(output: &str, lines: usize) -> String {
    let all: Vec<&str> = output.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

struct Crash {
    target: String,
    artifact: Option<PathBuf>,
    toolchain: Option<String>,
    log_path: PathBuf,
    log_tail: String,
}

impl std::fmt::Display for Crash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "fuzz: {} FAILED; end of its log:", self.target)?;
        writeln!(f, "{}", self.log_tail)?;
        writeln!(f, "full log: {}", self.log_path.display())?;
        let Some(artifact) = &self.artifact else {
            return writeln!(f, "(libFuzzer saved no input; see the log)");
        };
        let toolchain = self
            .toolchain
            .as_ref()
            .map(|toolchain| format!(" +{toolchain}"))
            .unwrap_or_default();
        writeln!(f, "crashing input: {}", shown(artifact))?;
        writeln!(
            f,
            "reproduce: cargo{toolchain} fuzz run --sanitizer none {} {}",
            self.target,
            shown(artifact)
        )?;
        write!(
            f,
            "then: fix it, copy the input to fuzz/corpus/{}/ and add it as a regression test \
             of the crate (docs/FUZZING.md)",
            self.target
        )
    }
}

/// `path` relative to the workspace root when it is under it (libFuzzer prints it as given).
fn shown(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `TARGETS` is what `fuzz/Cargo.toml` builds, and each target has a small seed corpus.
    #[test]
    fn every_fuzz_target_is_run_and_seeded() {
        let fuzz_dir = workspace_root().join("fuzz");
        let manifest = fs::read_to_string(fuzz_dir.join("Cargo.toml")).expect("fuzz/Cargo.toml");
        let mut built: Vec<&str> = manifest
            .split("[[bin]]")
            .skip(1)
            .filter_map(|bin| {
                bin.lines()
                    .find_map(|line| line.trim().strip_prefix("name = "))
                    .map(|name| name.trim_matches('"'))
            })
            .collect();
        built.sort_unstable();
        assert_eq!(
            built, TARGETS,
            "fuzz/Cargo.toml [[bin]]s and xtask's TARGETS differ"
        );
        for target in TARGETS {
            let seeds = fs::read_dir(fuzz_dir.join("corpus").join(target))
                .unwrap_or_else(|error| panic!("fuzz/corpus/{target}: {error}"))
                .count();
            assert!(
                (1..=12).contains(&seeds),
                "fuzz/corpus/{target} has {seeds} seeds; keep a few (libFuzzer's finds stay in \
                 fuzz/target/corpus)"
            );
        }
    }

    #[test]
    fn crash_report_names_the_input_and_the_command_to_reproduce() {
        let output = "==1== ERROR: libFuzzer: deadly signal\n\
            MS: 1 ChangeBit-; base unit: 0000\n\
            artifact_prefix='/w/fuzz/artifacts/avro_decode/'; Test unit written to /w/fuzz/artifacts/avro_decode/crash-abc\n";
        let crash = Crash {
            target: "avro_decode".to_owned(),
            artifact: artifact(output),
            toolchain: Some("nightly".to_owned()),
            log_path: PathBuf::from("fuzz/target/logs/avro_decode.log"),
            log_tail: tail(output, 2),
        };
        let report = crash.to_string();
        assert!(
            report.contains(
                "reproduce: cargo +nightly fuzz run --sanitizer none avro_decode \
                 /w/fuzz/artifacts/avro_decode/crash-abc"
            ),
            "{report}"
        );
        assert!(
            !report.contains("deadly signal"),
            "only the tail is shown: {report}"
        );
    }

    #[test]
    fn summary_reads_libfuzzer_statistics() {
        let output =
            "#2 INITED cov: 10 ft: 11\n#9 NEW cov: 12 ft: 13 corp: 2\nDone 9 runs in 1 second(s)\n";
        assert_eq!(summary(output), "Done 9 runs in 1 second(s), coverage 12");
    }
}

//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! Subcommands:
//! - `stack up|down|status|env`: the local stack (Apache Kafka + Apicurio Registry) on loopback.
//! - `schemas register [--registry URL]`: registers `schemas/*.avsc` against any registry.
//! - `demo`: the README's main command: the processor on the local stack, checked (`demo.rs`).
//! - `test`: the whole check suite CI runs (fmt, clippy, unit and integration tests on a private stack).
//! - `bench`: the processor measured beside the broker + client limit (docs/BENCHMARKS.md).
//! - `chaos`: the processor under faults with a verified workload (docs/RELIABILITY.md).
//! - `fuzz`: the cargo-fuzz targets of `fuzz/`, each for a fixed time (docs/FUZZING.md).

mod bench;
mod chaos;
mod demo;
mod fuzz;
mod process;
mod schemas;
mod stack;
mod test;
mod tidy;
mod tools;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  stack up [--fresh]                   start Kafka + registry on loopback, create topics, register schemas
                                       (data is kept across down/up; --fresh starts empty)
  stack down                           stop what `stack up` started
  stack status                         show whether broker and registry answer
  stack env                            print the environment variables tests and tools use
  schemas register [--registry URL]    register schemas/*.avsc (default: the local stack's registry)
  test                                 fmt, clippy, unit + integration tests against a private local stack
  demo [--events N]                    run the processor on the local stack with three tenants and verify (N=3000)
  bench [--smoke] [--help]             processor vs passthrough throughput, latency, RSS; writes docs/BENCHMARKS.md
  chaos [--quick] [SCENARIO…] [--help] kills, crashes, outages, churn, network faults, garbage, refused
                                       outputs; verified end to end (docs/RELIABILITY.md)
  fuzz [--seconds N | --smoke] [TARGET...]
                                       build the fuzz targets and run each N s (20; --smoke: 10); fails on a crash

environment:
  EP_KAFKA_PORT (9092), EP_KAFKA_CONTROLLER_PORT (9093): the broker's client and KRaft ports
  EP_REGISTRY_PORT (8081), EP_REGISTRY_MANAGEMENT_PORT (8082): the registry's API and management ports
  EP_TOOLS_DIR: where Kafka and Apicurio are fetched to (default ~/.cache/event-processor)
  EP_KAFKA_JAVA, EP_REGISTRY_JAVA: the java to run each with (default: found; 17+ and 21+)
  EP_FUZZ_TOOLCHAIN: the rustup toolchain `fuzz` builds with (default: nightly if installed, else the default)";

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["stack", rest @ ..] => stack::command(rest),
        ["schemas", "register", rest @ ..] => schemas::command(rest),
        ["test", rest @ ..] => test::command(rest),
        ["demo", rest @ ..] => demo::command(rest),
        ["bench", rest @ ..] => bench::command(rest),
        ["chaos", rest @ ..] => chaos::command(rest),
        ["fuzz", rest @ ..] => fuzz::command(rest),
        [] | ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{}`\n\n{USAGE}", other.join(" ")),
    }
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> std::path::PathBuf {
    let manifest_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| manifest_dir.to_path_buf())
}

/// Value of `--name VALUE` in `args`, if present.
fn flag_value<'a>(args: &[&'a str], name: &str) -> Result<Option<&'a str>> {
    match args.iter().position(|arg| *arg == name) {
        None => Ok(None),
        Some(index) => match args.get(index + 1) {
            Some(value) => Ok(Some(value)),
            None => bail!("`{name}` needs a value"),
        },
    }
}

/// A port number from environment variable `name`, or `default`.
fn port_from_env(name: &str, default: u16) -> Result<u16> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(value) => value
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={value} is not a port number")),
    }
}

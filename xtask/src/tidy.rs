//! Tidy checks: the workspace's structural rules, run as tests (`cargo test -p xtask`, part of
//! `cargo xtask test`). Each rule names what it protects; a failure says which file breaks it.
//!
//! - The pure crates depend only on their allow-lists and read no clock, do no I/O.
//! - `pipeline` (the main loop) links neither rdkafka nor reqwest: it is written against the
//!   ports and the codec's registry trait only.
//! - In-memory fakes ship only behind a `testing` feature.
//! - Every library crate is documented by its README (`#![doc = include_str!("../README.md")]`).
//! - No benchmark figures in code comments: they go stale; docs/BENCHMARKS.md holds them.

#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The crates that do no I/O and read no clock, with every runtime dependency they may have.
const PURE_CRATES: &[(&str, &[&str])] = &[
    ("offset-tracker", &["thiserror"]),
    ("router-core", &["serde", "serde_json", "thiserror", "toml"]),
    (
        "tenant-auth",
        &[
            "hex",
            "hmac",
            "serde",
            "sha2",
            "thiserror",
            "toml",
            "zeroize",
        ],
    ),
    (
        "avro-codec",
        &[
            "router-core",
            "apache-avro",
            "thiserror",
            "serde",
            "serde_json",
            "tracing",
        ],
    ),
];

/// Crates that are not pure (they use tokio) but must stay free of client libraries, with every
/// runtime dependency they may have: the ports, so what is written against them (the pipeline)
/// builds and is tested without librdkafka or an HTTP client.
const CLIENT_FREE_CRATES: &[(&str, &[&str])] = &[(
    "ports",
    &["offset-tracker", "thiserror", "tokio", "tracing"],
)];

/// Written split so that this file does not trip a search for them.
const FORBIDDEN_IN_PURE_SOURCES: &[&[&str]] = &[
    &["Instant", "::now"],
    &["System", "Time"],
    &["std::", "net"],
    &["std::", "fs"],
    &["std::", "io"],
    &["tok", "io"],
    &["rdkafka"],
    &["req", "west"],
];

/// Crates the main loop must not link, directly or through another crate.
const NOT_IN_THE_PIPELINE: &[&str] = &["rdkafka", "rdkafka-sys", "reqwest"];

/// Units of measured figures; a comment line with one of these and a digit quotes a benchmark.
const FIGURE_UNITS: &[&str] = &[
    "records/s",
    "events/s",
    "ev/s",
    "M/s",
    "k/s",
    "peak RSS",
    "ns per",
    "µs per",
    "ns/record",
    "µs/record",
    "µs/event",
];

#[test]
fn pure_and_port_crates_depend_only_on_their_allow_lists() {
    let metadata = Metadata::load();
    let mut offences = Vec::new();
    for (name, allowed) in PURE_CRATES.iter().chain(CLIENT_FREE_CRATES) {
        let dependencies = metadata.runtime_dependencies(name);
        assert!(
            !dependencies.is_empty(),
            "{name}: no runtime dependency found; is the crate still in the workspace?"
        );
        for dependency in dependencies {
            if !allowed.contains(&dependency.as_str()) {
                offences.push(format!("{name} depends on {dependency}"));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "pure crates must stay pure and the ports free of client libraries (allow-lists in \
         xtask/src/tidy.rs):\n{}",
        offences.join("\n")
    );
}

#[test]
fn pure_crates_read_no_clock_and_do_no_io() {
    let mut offences = Vec::new();
    for (name, _) in PURE_CRATES {
        let src = workspace_root().join("crates").join(name).join("src");
        let files = rust_files(&src);
        assert!(!files.is_empty(), "no source under {}", src.display());
        for file in files {
            let text = read(&file);
            for parts in FORBIDDEN_IN_PURE_SOURCES {
                let needle = parts.concat();
                if text.contains(&needle) {
                    offences.push(format!("{} mentions `{needle}`", file.display()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "pure crates take time as an argument and do no I/O:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_pipeline_links_neither_rdkafka_nor_reqwest() {
    let metadata = Metadata::load();
    let linked = metadata.transitive_runtime_dependencies("pipeline");
    assert!(
        linked.contains("tokio"),
        "the dependency walk found nothing: {linked:?}"
    );
    let forbidden: Vec<&&str> = NOT_IN_THE_PIPELINE
        .iter()
        .filter(|name| linked.contains(**name))
        .collect();
    assert!(
        forbidden.is_empty(),
        "pipeline is written against the ports; it must not link {forbidden:?} \
         (check with `cargo tree -p pipeline -e normal`)"
    );
}

#[test]
fn fakes_ship_only_behind_the_testing_feature() {
    let mut offences = Vec::new();
    for file in rust_files(&workspace_root().join("crates")) {
        if !file.components().any(|part| part.as_os_str() == "src") {
            continue;
        }
        let text = read(&file);
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            let declaration = line.trim_start();
            let is_fake_module = ["pub mod fake", "pub mod testing", "pub mod fakes"]
                .iter()
                .any(|start| declaration.starts_with(start));
            let gated = index > 0 && lines[index - 1].contains("feature = \"testing\"");
            if is_fake_module && !gated {
                offences.push(format!("{}:{}: {declaration}", file.display(), index + 1));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "fakes are not production API: put them behind `#[cfg(feature = \"testing\")]`:\n{}",
        offences.join("\n")
    );
}

#[test]
fn every_library_crate_is_documented_by_its_readme() {
    let mut offences = Vec::new();
    let crates = workspace_root().join("crates");
    for entry in std::fs::read_dir(&crates).expect("crates/ is readable") {
        let dir = entry.expect("directory entry").path();
        let lib = dir.join("src/lib.rs");
        if !lib.exists() {
            continue;
        }
        if !dir.join("README.md").exists() {
            offences.push(format!("{} has no README.md", dir.display()));
        } else if !read(&lib).contains("#![doc = include_str!(\"../README.md\")]") {
            offences.push(format!(
                "{} does not use its README as crate documentation",
                lib.display()
            ));
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}

#[test]
fn code_comments_quote_no_benchmark_figures() {
    let root = workspace_root();
    let mut offences = Vec::new();
    for dir in ["crates", "bins", "xtask"] {
        for file in rust_files(&root.join(dir)) {
            for (index, line) in read(&file).lines().enumerate() {
                let comment = match line.split_once("//") {
                    Some((_, comment)) => comment,
                    None => continue,
                };
                let quotes_figure = comment.chars().any(|c| c.is_ascii_digit())
                    && FIGURE_UNITS.iter().any(|unit| comment.contains(unit));
                if quotes_figure && !file.ends_with("tidy.rs") {
                    offences.push(format!("{}:{}: {}", file.display(), index + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "benchmark figures go stale in comments; docs/BENCHMARKS.md holds them:\n{}",
        offences.join("\n")
    );
}

/// `cargo metadata` of the workspace: packages and the resolved dependency graph.
struct Metadata {
    /// Package id → name.
    names: BTreeMap<String, String>,
    /// Package id → ids of its runtime (normal and build) dependencies.
    runtime_edges: BTreeMap<String, Vec<String>>,
}

impl Metadata {
    fn load() -> Self {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let output = Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--locked"])
            .current_dir(workspace_root())
            .output()
            .expect("cargo metadata runs");
        assert!(
            output.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
        let names = json["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|package| (text(&package["id"]), text(&package["name"])))
            .collect();
        let runtime_edges = json["resolve"]["nodes"]
            .as_array()
            .expect("resolve.nodes")
            .iter()
            .map(|node| {
                let runtime = node["deps"]
                    .as_array()
                    .expect("deps")
                    .iter()
                    .filter(|dep| {
                        dep["dep_kinds"]
                            .as_array()
                            .expect("dep_kinds")
                            .iter()
                            .any(|kind| kind["kind"].is_null() || kind["kind"] == "build")
                    })
                    .map(|dep| text(&dep["pkg"]))
                    .collect();
                (text(&node["id"]), runtime)
            })
            .collect();
        Self {
            names,
            runtime_edges,
        }
    }

    fn id_of(&self, name: &str) -> &str {
        self.names
            .iter()
            .find(|(_, package)| *package == name)
            .map(|(id, _)| id.as_str())
            .unwrap_or_else(|| panic!("no package {name} in the workspace"))
    }

    fn runtime_dependencies(&self, name: &str) -> Vec<String> {
        self.runtime_edges[self.id_of(name)]
            .iter()
            .map(|id| self.names[id].clone())
            .collect()
    }

    fn transitive_runtime_dependencies(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![self.id_of(name).to_owned()];
        while let Some(id) = todo.pop() {
            for dependency in &self.runtime_edges[&id] {
                if seen.insert(self.names[dependency].clone()) {
                    todo.push(dependency.clone());
                }
            }
        }
        seen
    }
}

fn text(value: &Value) -> String {
    value.as_str().expect("a string").to_owned()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("directory is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name == "target") {
                continue;
            }
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

//! Architecture invariant: tenant authentication is pure. It depends on the MAC, encoding and
//! key-file crates below only, reads no clock and does no I/O: the caller passes the time and the
//! key file's text, so its tests control time completely and the pipeline decides where keys
//! come from.

use std::path::{Path, PathBuf};

const ALLOWED_DEPENDENCIES: &[&str] = &[
    "hex",
    "hmac",
    "serde",
    "sha2",
    "thiserror",
    "toml",
    "zeroize",
];

/// Written split so that this file does not trip a search for them.
const FORBIDDEN_IN_SOURCES: &[&[&str]] = &[
    &["std::time::Instant", "::now"],
    &["Instant", "::now"],
    &["System", "Time"],
    &["std::", "net"],
    &["std::", "fs"],
    &["std::", "io"],
    &["tok", "io"],
    &["rdkafka"],
];

#[test]
fn depends_on_nothing_but_the_allow_list() {
    let manifest = include_str!("../Cargo.toml");
    let dependencies = runtime_dependencies(manifest);
    assert!(
        dependencies.contains(&"hmac".to_owned()),
        "the manifest parser found no dependency at all: {dependencies:?}"
    );
    let unexpected: Vec<&String> = dependencies
        .iter()
        .filter(|name| !ALLOWED_DEPENDENCIES.contains(&name.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "tenant-auth must stay pure; dependencies outside the allow-list \
         {ALLOWED_DEPENDENCIES:?}: {unexpected:?}"
    );
}

#[test]
fn manifest_parser_sees_every_kind_of_runtime_dependency_table() {
    let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nthiserror.workspace = true\n\
                    tokio = { workspace = true }\n\n[dependencies.rdkafka]\nversion = \"1\"\n\n\
                    [target.'cfg(unix)'.dependencies]\nlibc = \"1\"\n\n[build-dependencies]\ncc = \"1\"\n\n\
                    [dev-dependencies]\nproptest.workspace = true\n";
    assert_eq!(
        runtime_dependencies(manifest),
        ["thiserror", "tokio", "rdkafka", "libc", "cc"]
    );
}

#[test]
fn sources_read_no_clock_and_do_no_io() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    assert!(
        !files.is_empty(),
        "no source file found under {}",
        src.display()
    );
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("source file is readable");
        for parts in FORBIDDEN_IN_SOURCES {
            let needle = parts.concat();
            if text.contains(&needle) {
                offences.push(format!("{} mentions `{needle}`", file.display()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "tenant-auth must take time as an argument and do no I/O:\n{}",
        offences.join("\n")
    );
}

/// Names of the packages in `[dependencies]`, `[build-dependencies]` and their
/// target-specific forms, including `[dependencies.name]` tables. A tiny line parser, since
/// a TOML parser would itself be a dependency to justify.
fn runtime_dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_dependency_table = false;
    for line in manifest.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_end_matches(']').trim();
            let is_runtime = |table: &str| {
                table == "dependencies"
                    || table == "build-dependencies"
                    || table.ends_with(".dependencies")
                    || table.ends_with(".build-dependencies")
            };
            in_dependency_table = is_runtime(header);
            if let Some((table, name)) = header.rsplit_once('.')
                && is_runtime(table)
            {
                names.push(name.trim_matches('"').to_owned());
            }
            continue;
        }
        if in_dependency_table && let Some(key) = line.split(['=', '.']).next() {
            names.push(key.trim().trim_matches('"').to_owned());
        }
    }
    names
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("source directory is readable") {
        let path = entry.expect("directory entry is readable").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

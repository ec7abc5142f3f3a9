//! Architecture invariant: the ports need no Kafka client and no HTTP client, so whatever is
//! written against them (the pipeline) builds and is tested without librdkafka. Its runtime
//! dependencies are an allow-list; each of those is free of rdkafka and reqwest (offset-tracker
//! checks its own list; thiserror, tokio and tracing are leaf libraries here).

const ALLOWED_DEPENDENCIES: &[&str] = &["offset-tracker", "thiserror", "tokio", "tracing"];

#[test]
fn depends_on_nothing_but_the_allow_list() {
    let dependencies = runtime_dependencies(include_str!("../Cargo.toml"));
    assert!(
        dependencies.contains(&"offset-tracker".to_owned()),
        "the manifest parser found no dependency at all: {dependencies:?}"
    );
    let unexpected: Vec<&String> = dependencies
        .iter()
        .filter(|name| !ALLOWED_DEPENDENCIES.contains(&name.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "ports must not depend on a client library; dependencies outside the allow-list \
         {ALLOWED_DEPENDENCIES:?}: {unexpected:?}"
    );
}

#[test]
fn manifest_parser_sees_every_kind_of_runtime_dependency_table() {
    let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nthiserror.workspace = true\n\
                    tokio = { workspace = true }\n\n[dependencies.rdkafka]\nversion = \"1\"\n\n\
                    [target.'cfg(unix)'.dependencies]\nlibc = \"1\"\n\n[build-dependencies]\ncc = \"1\"\n\n\
                    [features]\ntesting = []\n\n[dev-dependencies]\nports = { path = \".\" }\n";
    assert_eq!(
        runtime_dependencies(manifest),
        ["thiserror", "tokio", "rdkafka", "libc", "cc"]
    );
}

/// Names of the packages in `[dependencies]`, `[build-dependencies]` and their
/// target-specific forms, including `[dependencies.name]` tables (the same tiny line parser as
/// offset-tracker's architecture test).
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

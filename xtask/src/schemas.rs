//! Registers `schemas/*.avsc` with a Confluent-compatible registry (ours or a production one).
//!
//! Subjects follow the TopicNameStrategy the prototype used: `<file stem>-value`; the output schema is
//! also registered under `<output topic>-value` for every output topic, as the prototype's serializer
//! did. Registries deduplicate, so the wire ids do not change.

use crate::{flag_value, stack, workspace_root};
use anyhow::{Context, Result, bail};
use std::time::Duration;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
const OUTPUT_SCHEMA_FILE: &str = "processor.to.consumer.avsc";

pub(crate) fn command(args: &[&str]) -> Result<()> {
    let default_url = stack::Stack::local()?.registry_url();
    let url = flag_value(args, "--registry")?.unwrap_or(&default_url);
    register_all(url, &stack::OUTPUT_TOPICS)
}

pub(crate) fn register_all(registry_url: &str, output_topics: &[&str]) -> Result<()> {
    let agent = agent();
    for (file, schema) in schema_files()? {
        let stem = file.trim_end_matches(".avsc");
        let mut subjects = vec![format!("{stem}-value")];
        if file == OUTPUT_SCHEMA_FILE {
            subjects.extend(output_topics.iter().map(|topic| format!("{topic}-value")));
        }
        for subject in subjects {
            let id = register(&agent, registry_url, &subject, &schema)?;
            eprintln!("registered {file} as {subject} (id {id})");
        }
    }
    Ok(())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn register(agent: &ureq::Agent, registry_url: &str, subject: &str, schema: &str) -> Result<u64> {
    let body = serde_json::json!({ "schema": schema, "schemaType": "AVRO" }).to_string();
    let url = format!("{registry_url}/subjects/{subject}/versions");
    let mut response = agent
        .post(&url)
        .header("Content-Type", CONTENT_TYPE)
        .header("Accept", CONTENT_TYPE)
        .send(&body)
        .with_context(|| format!("schema registry at {registry_url} is unreachable"))?;
    let status = response.status();
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("cannot read the registry's answer from {url}"))?;
    if !status.is_success() {
        bail!("registering subject {subject} failed with {status}: {text}");
    }
    let answer: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("registry answered {url} with invalid JSON: {text}"))?;
    answer["id"]
        .as_u64()
        .with_context(|| format!("registry answer for {subject} has no id: {text}"))
}

/// `(file name, schema text)` of every `.avsc` in `schemas/`.
fn schema_files() -> Result<Vec<(String, String)>> {
    let dir = workspace_root().join("schemas");
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "avsc") {
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str::<serde_json::Value>(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?;
            files.push((name, text));
        }
    }
    // The input schema first, so a fresh registry gives it id 1 and the output id 2, as in the
    // prototype's golden vectors.
    files.sort_by_key(|(name, _)| (name == OUTPUT_SCHEMA_FILE, name.clone()));
    Ok(files)
}

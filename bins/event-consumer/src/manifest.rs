//! Reading the producer's manifest: one JSON object per line, one per acknowledged event.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// One event the producer had acknowledged. The tenant is optional and other fields (key,
/// partition, offset) are ignored, so hand-written manifests stay short.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct ManifestEntry {
    /// The uuid in the event's payload (`dummy-payload <id>`).
    pub(crate) id: String,
    /// Destination the event was sent to.
    pub(crate) destination: String,
    #[serde(default)]
    pub(crate) tenant_type: Option<String>,
    #[serde(default)]
    pub(crate) tenant_id: Option<String>,
    /// The event must be dead-lettered with this reason instead of routed (the producer's
    /// spoofed events: `unauthenticated`).
    #[serde(default)]
    pub(crate) expected_dead_letter: Option<String>,
}

pub(crate) fn read_manifest(path: &Path) -> Result<Vec<ManifestEntry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read manifest {}", path.display()))?;
    parse_manifest(&text).with_context(|| format!("invalid manifest {}", path.display()))
}

/// Parses JSON lines; blank lines are skipped. An id may appear only once.
pub(crate) fn parse_manifest(text: &str) -> Result<Vec<ManifestEntry>> {
    let mut entries = Vec::new();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let entry: ManifestEntry = serde_json::from_str(line).with_context(|| {
            format!(
                "line {number} is not a manifest entry (a JSON object with `id` and `destination`)"
            )
        })?;
        if entry.id.trim().is_empty() || entry.destination.trim().is_empty() {
            bail!("line {number} has an empty `id` or `destination`");
        }
        if let Some(first) = first_line_of.insert(entry.id.clone(), number) {
            bail!(
                "line {number} repeats id {} of line {first}; each event is listed once",
                entry.id
            );
        }
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_lines_parse_with_their_optional_fields() {
        let text = concat!(
            r#"{"id":"a","tenant_type":"FINANCE","tenant_id":"f-1","destination":"MARKETING","key":"f-1:MARKETING","partition":1,"offset":7}"#,
            "\n\n",
            r#"{"id":"b","destination":"FINANCE"}"#,
            "\n"
        );
        let entries = parse_manifest(text).expect("valid manifest");
        assert_eq!(
            entries,
            [
                ManifestEntry {
                    id: "a".to_owned(),
                    destination: "MARKETING".to_owned(),
                    tenant_type: Some("FINANCE".to_owned()),
                    tenant_id: Some("f-1".to_owned()),
                    expected_dead_letter: None,
                },
                ManifestEntry {
                    id: "b".to_owned(),
                    destination: "FINANCE".to_owned(),
                    tenant_type: None,
                    tenant_id: None,
                    expected_dead_letter: None,
                },
            ]
        );
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let text = "{\"id\":\"a\",\"destination\":\"X\"}\nnot json\n";
        let error = parse_manifest(text).expect_err("line 2 is bad");
        assert!(error.to_string().contains("line 2"), "{error}");
    }

    #[test]
    fn a_line_without_destination_is_rejected() {
        let error = parse_manifest("{\"id\":\"a\"}\n").expect_err("no destination");
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn a_repeated_id_is_rejected() {
        let text = "{\"id\":\"a\",\"destination\":\"X\"}\n{\"id\":\"a\",\"destination\":\"Y\"}\n";
        let error = parse_manifest(text).expect_err("repeated id");
        assert!(
            error.to_string().contains("line 2 repeats id a of line 1"),
            "{error}"
        );
    }

    #[test]
    fn an_empty_manifest_has_no_entries() {
        assert!(parse_manifest("").expect("valid").is_empty());
    }
}

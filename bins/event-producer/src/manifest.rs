//! The manifest: one JSON line per event the broker acknowledged, for end-to-end verification
//! (`event-consumer --verify`). The tenant fields are the identity the event claims; a spoofed
//! event (`--spoof-percent`) also has `"expected_dead_letter": "unauthenticated"`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

/// One acknowledged event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ManifestEntry<'a> {
    /// The uuid in the payload (`dummy-payload <id>`).
    pub(crate) id: String,
    pub(crate) tenant_type: &'a str,
    pub(crate) tenant_id: &'a str,
    /// The destination as written in the event (upper-cased).
    pub(crate) destination: &'a str,
    pub(crate) key: String,
    /// Where the input record landed.
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    /// The `dlq.reason` the processor is expected to dead-letter this event with instead of
    /// routing it (`unauthenticated` for a spoofed event); absent for events that should route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expected_dead_letter: Option<&'static str>,
}

/// Appends manifest lines to a file, buffered.
#[derive(Debug)]
pub(crate) struct ManifestWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl ManifestWriter {
    /// Creates (or truncates) the file.
    pub(crate) fn create(path: &Path) -> Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("cannot create manifest file {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            out: BufWriter::new(file),
        })
    }

    pub(crate) fn write(&mut self, entry: &ManifestEntry<'_>) -> Result<()> {
        serde_json::to_writer(&mut self.out, entry)
            .map_err(anyhow::Error::from)
            .and_then(|()| self.out.write_all(b"\n").map_err(anyhow::Error::from))
            .with_context(|| format!("cannot write manifest file {}", self.path.display()))
    }

    /// Flushes what is buffered to the file.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.out
            .flush()
            .and_then(|()| self.out.get_ref().sync_all())
            .with_context(|| format!("cannot write manifest file {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_entry_is_one_json_line_with_the_verifier_fields() {
        let dir = std::env::temp_dir().join(format!("ep-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("manifest.jsonl");
        let mut writer = ManifestWriter::create(&path).expect("created");
        for (offset, destination, expected_dead_letter) in [
            (0, "FINANCE", Some("unauthenticated")),
            (1, "MARKETING", None),
        ] {
            writer
                .write(&ManifestEntry {
                    id: format!("id-{offset}"),
                    tenant_type: "FINANCE",
                    tenant_id: "producer-1",
                    destination,
                    key: format!("producer-1:{destination}"),
                    partition: 2,
                    offset,
                    expected_dead_letter,
                })
                .expect("written");
        }
        writer.finish().expect("flushed");
        let text = std::fs::read_to_string(&path).expect("readable");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["expected_dead_letter"], "unauthenticated");
        assert_eq!(
            lines[1],
            serde_json::json!({
                "id": "id-1",
                "tenant_type": "FINANCE",
                "tenant_id": "producer-1",
                "destination": "MARKETING",
                "key": "producer-1:MARKETING",
                "partition": 2,
                "offset": 1
            })
        );
    }
}

//! The data file: the whole state as one JSON document, replaced atomically on every change
//! (written to a temporary file beside it, flushed, then renamed over it), so a crash leaves
//! either the old state or the new one, never half a file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DataFileAction, RegistryError};
use crate::store::State;

/// Bumped when the layout changes in a way older code cannot read.
const FORMAT: u32 = 1;

#[derive(Serialize)]
struct FileRef<'a> {
    format: u32,
    state: &'a State,
}

/// `format` is read before `state` is interpreted, so a future layout is reported as such.
#[derive(Deserialize)]
struct FileOwned {
    format: u32,
    state: serde_json::Value,
}

/// Reads the state; `None` when the file does not exist yet.
pub(crate) fn load(path: &Path) -> Result<Option<State>, RegistryError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RegistryError::DataFile {
                path: path.to_owned(),
                action: DataFileAction::Read,
                source,
            });
        }
    };
    let corrupt = |detail: String| RegistryError::CorruptDataFile {
        path: path.to_owned(),
        detail,
    };
    let file: FileOwned = serde_json::from_str(&text)
        .map_err(|error| corrupt(format!("not registry JSON ({error})")))?;
    if file.format != FORMAT {
        return Err(corrupt(format!(
            "format {} is not the supported format {FORMAT}",
            file.format
        )));
    }
    let state: State = serde_json::from_value(file.state)
        .map_err(|error| corrupt(format!("not registry state ({error})")))?;
    state.validated().map(Some).map_err(corrupt)
}

/// Writes the state atomically.
pub(crate) fn save(path: &Path, state: &State) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(&FileRef {
        format: FORMAT,
        state,
    })
    .map_err(io::Error::other)?;
    let temporary = temporary_path(path);
    let written = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(&json)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if written.is_err() {
        // Best effort: the write already failed and that error is the one worth reporting.
        let _ = fs::remove_file(&temporary);
    }
    written
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_file(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "dev-registry-persist-{}-{name}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).expect("create scratch dir");
        let path = dir.join("registry.json");
        let _ = fs::remove_file(&path);
        path
    }

    #[test]
    fn missing_file_loads_as_nothing() {
        let path = scratch_file("missing");
        assert!(load(&path).expect("missing file is fine").is_none());
    }

    #[test]
    fn saved_state_loads_back_equal() {
        let path = scratch_file("roundtrip");
        let mut state = State {
            global_compatibility: crate::compatibility::CompatibilityLevel::None,
            ..State::default()
        };
        let schema =
            crate::store::CandidateSchema::parse(r#""string""#, None, false).expect("valid schema");
        state.register("strings-value", schema).expect("registers");
        state.subject_compatibility.insert(
            "strings-value".to_owned(),
            crate::compatibility::CompatibilityLevel::Full,
        );
        save(&path, &state).expect("saves");
        let loaded = load(&path).expect("loads").expect("exists");
        assert_eq!(loaded, state, "including the rebuilt canonical-form index");
        assert!(
            !temporary_path(&path).exists(),
            "temporary file is renamed away"
        );
    }

    #[test]
    fn unparseable_file_is_a_corrupt_data_file_error_naming_the_file() {
        let path = scratch_file("corrupt");
        fs::write(&path, "{ not json").expect("write");
        let error = load(&path).expect_err("corrupt");
        assert!(
            matches!(error, RegistryError::CorruptDataFile { .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }

    #[test]
    fn unknown_format_is_rejected() {
        let path = scratch_file("format");
        fs::write(&path, r#"{"format":99,"state":{}}"#).expect("write");
        let error = load(&path).expect_err("future format");
        assert!(error.to_string().contains("format 99"), "{error}");
    }
}

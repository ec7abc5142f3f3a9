//! The registry's state and the operations on it, free of HTTP.
//!
//! Schemas get one global id each, shared by every subject that registers an identical schema;
//! subjects hold an ordered list of versions pointing at those ids. Ids are never reused, and a
//! deleted subject's schemas stay readable by id, as in Confluent, because data written with them
//! may still be in Kafka.
//!
//! Every change is made on a copy of the state which replaces the current state only once it is
//! written to the data file, so a failed write leaves memory and disk agreeing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use apache_avro::Schema;
use serde::{Deserialize, Serialize};

use crate::compatibility::CompatibilityLevel;
use crate::error::RegistryError;
use crate::http_error::ApiError;
use crate::persist;

/// The only schema type this registry understands.
pub(crate) const AVRO: &str = "AVRO";

/// Shared registry state, cheap to clone; give it to [`router`](crate::router) to serve it.
#[derive(Debug, Clone)]
pub struct RegistryState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    data_file: Option<PathBuf>,
}

/// Everything the registry knows; this is what the data file holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) global_compatibility: CompatibilityLevel,
    pub(crate) schemas: BTreeMap<u32, StoredSchema>,
    pub(crate) subjects: BTreeMap<String, Vec<SubjectVersion>>,
    pub(crate) subject_compatibility: BTreeMap<String, CompatibilityLevel>,
    /// Canonical form → id, derived from `schemas` when the state is built or loaded.
    #[serde(skip)]
    pub(crate) ids_by_canonical: HashMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredSchema {
    /// The text as first registered, returned unchanged to clients.
    pub(crate) schema: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SubjectVersion {
    pub(crate) version: u32,
    pub(crate) id: u32,
}

/// A schema that parsed as Avro, with the form used to decide whether two schemas are the same.
#[derive(Debug)]
pub(crate) struct CandidateSchema {
    text: String,
    canonical: String,
    parsed: Schema,
}

/// Which version of a subject a request means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionSelector {
    Latest,
    Number(u32),
}

/// One version of one subject, as answered to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionRecord {
    pub(crate) subject: String,
    pub(crate) version: u32,
    pub(crate) id: u32,
    pub(crate) schema: String,
}

/// What registering did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Registered {
    pub(crate) id: u32,
    pub(crate) version: u32,
    pub(crate) new_version: bool,
}

impl CandidateSchema {
    /// Validates a schema as a client sent it. Only Avro without references is supported.
    pub(crate) fn parse(
        text: &str,
        schema_type: Option<&str>,
        has_references: bool,
    ) -> Result<Self, ApiError> {
        if let Some(schema_type) = schema_type
            && !schema_type.eq_ignore_ascii_case(AVRO)
        {
            return Err(ApiError::invalid_schema(format_args!(
                "schema type {schema_type} is not supported by dev-registry, only AVRO is; \
                 use a production registry for PROTOBUF or JSON schemas"
            )));
        }
        if has_references {
            return Err(ApiError::invalid_schema(
                "schema references are not supported by dev-registry; inline the referenced \
                 types in the schema",
            ));
        }
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|error| ApiError::invalid_schema(format_args!("not JSON ({error})")))?;
        let parsed = Schema::parse(&json).map_err(ApiError::invalid_schema)?;
        Ok(Self {
            text: text.trim().to_owned(),
            canonical: canonical_json(&json),
            parsed,
        })
    }
}

/// Compact JSON with object keys sorted, so that formatting and attribute order do not make two
/// schemas different. Avro's Parsing Canonical Form is deliberately not used: it drops `default`,
/// which changes what a schema can read, and `doc`, so two different schemas would share an id.
pub(crate) fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by_key(|(key, _)| *key);
            out.push('{');
            for (index, (key, value)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

impl RegistryState {
    /// State kept only in memory: gone when the process ends.
    pub fn in_memory() -> Self {
        Self::from_state(State::default(), None)
    }

    /// State loaded from `path` and written back to it after every change. A missing file is
    /// created (empty) right away, so an unwritable location is reported now rather than at the
    /// first registration.
    pub fn with_data_file(path: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let path = path.into();
        let state = match persist::load(&path)? {
            Some(state) => state,
            None => {
                let state = State::default();
                persist::save(&path, &state).map_err(|source| RegistryError::DataFile {
                    path: path.clone(),
                    action: crate::error::DataFileAction::Write,
                    source,
                })?;
                state
            }
        };
        Ok(Self::from_state(state, Some(path)))
    }

    fn from_state(state: State, data_file: Option<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                data_file,
            }),
        }
    }

    /// The data file this state is kept in, if any.
    pub fn data_file(&self) -> Option<&Path> {
        self.inner.data_file.as_deref()
    }

    /// Changes never leave the state half-updated (they are made on a copy), so a panic in
    /// another request cannot have left it inconsistent and the poison can be ignored.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn read<R>(&self, read: impl FnOnce(&State) -> R) -> R {
        read(&self.lock())
    }

    /// Applies `change` to a copy of the state, persists the copy when it differs, then keeps it.
    /// Blocking (it may write a file): call it off the async executor.
    pub(crate) fn change<R>(
        &self,
        change: impl FnOnce(&mut State) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let mut current = self.lock();
        let mut next = current.clone();
        let result = change(&mut next)?;
        if next != *current {
            if let Some(path) = &self.inner.data_file {
                persist::save(path, &next).map_err(|error| {
                    tracing::error!(path = %path.display(), %error, "could not save registry state");
                    ApiError::store(format_args!(
                        "could not write data file {}: {error}",
                        path.display()
                    ))
                })?;
            }
            *current = next;
        }
        Ok(result)
    }
}

impl State {
    /// Rebuilds derived indexes and checks the invariants a loaded file must satisfy.
    pub(crate) fn validated(mut self) -> Result<Self, String> {
        self.ids_by_canonical.clear();
        for (id, stored) in &self.schemas {
            let candidate = CandidateSchema::parse(&stored.schema, None, false)
                .map_err(|error| format!("schema {id}: {}", error.message))?;
            if let Some(other) = self.ids_by_canonical.insert(candidate.canonical, *id) {
                return Err(format!("schemas {other} and {id} are the same schema"));
            }
        }
        for (subject, versions) in &self.subjects {
            if versions.is_empty() {
                return Err(format!("subject '{subject}' has no versions"));
            }
            for pair in versions.windows(2) {
                if pair[0].version >= pair[1].version {
                    return Err(format!(
                        "subject '{subject}' has versions out of order ({} then {})",
                        pair[0].version, pair[1].version
                    ));
                }
            }
            if let Some(missing) = versions.iter().find(|v| !self.schemas.contains_key(&v.id)) {
                return Err(format!(
                    "subject '{subject}' version {} points at schema {} which is not stored",
                    missing.version, missing.id
                ));
            }
        }
        Ok(self)
    }

    fn effective_compatibility(&self, subject: &str) -> CompatibilityLevel {
        self.subject_compatibility
            .get(subject)
            .copied()
            .unwrap_or(self.global_compatibility)
    }

    /// Registers `candidate` under `subject`, or returns the existing version when the subject
    /// already holds the same schema (at any version, as Confluent does).
    pub(crate) fn register(
        &mut self,
        subject: &str,
        candidate: CandidateSchema,
    ) -> Result<Registered, ApiError> {
        let existing_id = self.ids_by_canonical.get(&candidate.canonical).copied();
        let versions = self.subjects.get(subject).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(id) = existing_id
            && let Some(found) = versions.iter().find(|v| v.id == id)
        {
            return Ok(Registered {
                id,
                version: found.version,
                new_version: false,
            });
        }
        self.check_compatibility(subject, versions, &candidate.parsed)?;

        let id = match existing_id {
            Some(id) => id,
            None => {
                let id = self.schemas.keys().next_back().map_or(1, |last| last + 1);
                self.schemas.insert(
                    id,
                    StoredSchema {
                        schema: candidate.text,
                    },
                );
                self.ids_by_canonical.insert(candidate.canonical, id);
                id
            }
        };
        let versions = self.subjects.entry(subject.to_owned()).or_default();
        let version = versions.last().map_or(1, |last| last.version + 1);
        versions.push(SubjectVersion { version, id });
        Ok(Registered {
            id,
            version,
            new_version: true,
        })
    }

    fn check_compatibility(
        &self,
        subject: &str,
        versions: &[SubjectVersion],
        candidate: &Schema,
    ) -> Result<(), ApiError> {
        let level = self.effective_compatibility(subject);
        if level == CompatibilityLevel::None || versions.is_empty() {
            return Ok(());
        }
        let mut earlier = Vec::with_capacity(versions.len());
        for v in versions {
            let text = &self.schema(v.id)?.schema;
            // Stored schemas were validated when registered or loaded.
            let parsed = Schema::parse_str(text).map_err(|error| {
                ApiError::store(format_args!(
                    "stored schema {} no longer parses: {error}",
                    v.id
                ))
            })?;
            earlier.push((v.version, parsed));
        }
        let violations =
            level.violations(candidate, earlier.iter().map(|(version, s)| (*version, s)));
        if violations.is_empty() {
            Ok(())
        } else {
            Err(ApiError::incompatible(subject, level, &violations))
        }
    }

    pub(crate) fn schema(&self, id: u32) -> Result<&StoredSchema, ApiError> {
        self.schemas
            .get(&id)
            .ok_or_else(|| ApiError::schema_id_not_found(&id.to_string()))
    }

    fn versions(&self, subject: &str) -> Result<&[SubjectVersion], ApiError> {
        self.subjects
            .get(subject)
            .map(Vec::as_slice)
            .ok_or_else(|| ApiError::subject_not_found(subject))
    }

    pub(crate) fn version_numbers(&self, subject: &str) -> Result<Vec<u32>, ApiError> {
        Ok(self.versions(subject)?.iter().map(|v| v.version).collect())
    }

    pub(crate) fn version(
        &self,
        subject: &str,
        selector: VersionSelector,
    ) -> Result<VersionRecord, ApiError> {
        let versions = self.versions(subject)?;
        let found = match selector {
            VersionSelector::Latest => versions.last(),
            VersionSelector::Number(number) => versions.iter().find(|v| v.version == number),
        };
        let found = found.ok_or_else(|| match selector {
            VersionSelector::Number(number) => ApiError::version_not_found(subject, number),
            VersionSelector::Latest => ApiError::subject_not_found(subject),
        })?;
        self.record(subject, *found)
    }

    /// The version of `subject` holding a schema identical to `candidate`.
    pub(crate) fn lookup(
        &self,
        subject: &str,
        candidate: &CandidateSchema,
    ) -> Result<VersionRecord, ApiError> {
        let versions = self.versions(subject)?;
        let found = self
            .ids_by_canonical
            .get(&candidate.canonical)
            .and_then(|id| versions.iter().find(|v| v.id == *id))
            .ok_or_else(|| ApiError::schema_not_under_subject(subject))?;
        self.record(subject, *found)
    }

    fn record(&self, subject: &str, found: SubjectVersion) -> Result<VersionRecord, ApiError> {
        Ok(VersionRecord {
            subject: subject.to_owned(),
            version: found.version,
            id: found.id,
            schema: self.schema(found.id)?.schema.clone(),
        })
    }

    /// Removes the subject's versions (its schemas stay readable by id) and returns them.
    pub(crate) fn delete_subject(&mut self, subject: &str) -> Result<Vec<u32>, ApiError> {
        let versions = self
            .subjects
            .remove(subject)
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        Ok(versions.iter().map(|v| v.version).collect())
    }

    pub(crate) fn subject_compatibility(
        &self,
        subject: &str,
        default_to_global: bool,
    ) -> Result<CompatibilityLevel, ApiError> {
        match self.subject_compatibility.get(subject) {
            Some(level) => Ok(*level),
            None if default_to_global => Ok(self.global_compatibility),
            None => Err(ApiError::subject_has_no_config(subject)),
        }
    }

    pub(crate) fn delete_subject_compatibility(
        &mut self,
        subject: &str,
    ) -> Result<CompatibilityLevel, ApiError> {
        self.subject_compatibility
            .remove(subject)
            .ok_or_else(|| ApiError::subject_has_no_config(subject))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(text: &str) -> CandidateSchema {
        CandidateSchema::parse(text, None, false).expect("test schema is valid")
    }

    #[test]
    fn canonical_form_ignores_whitespace_and_key_order() {
        let a = candidate(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#);
        let b = candidate(
            r#"{ "name" : "R", "fields": [ {"type": "long", "name": "a"} ],
                "type": "record" }"#,
        );
        assert_eq!(a.canonical, b.canonical);
    }

    #[test]
    fn canonical_form_keeps_defaults_and_docs_apart() {
        let plain =
            candidate(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#);
        let with_default = candidate(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long","default":0}]}"#,
        );
        assert_ne!(plain.canonical, with_default.canonical);
    }

    #[test]
    fn ids_continue_after_the_highest_even_when_a_subject_is_deleted() {
        let mut state = State::default();
        let first = state
            .register("a", candidate(r#""string""#))
            .expect("registers");
        state.delete_subject("a").expect("deletes");
        let second = state
            .register("b", candidate(r#""long""#))
            .expect("registers");
        assert_eq!((first.id, second.id), (1, 2));
        assert!(
            state.schema(1).is_ok(),
            "deleted subject's schema stays readable by id"
        );
    }

    #[test]
    fn loaded_state_with_a_dangling_version_is_rejected() {
        let mut state = State::default();
        state
            .subjects
            .insert("s".to_owned(), vec![SubjectVersion { version: 1, id: 7 }]);
        let error = state.validated().expect_err("dangling id is corrupt");
        assert!(error.contains("schema 7"), "{error}");
    }
}

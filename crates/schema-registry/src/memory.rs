//! [`MemoryRegistry`]: an in-process registry for tests and local runs without HTTP.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use avro_codec::{RegisteredSchema, RegistryError, SchemaId, SchemaRegistry};

/// An in-memory schema registry with the Confluent semantics the router relies on: ids are
/// global and assigned from 1 in registration order, the same schema text gets the same id under
/// every subject, versions count from 1 per subject. No compatibility checks.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Schema of id `n` at index `n - 1`.
    schemas: Vec<Arc<str>>,
    /// Ids registered under each subject, in version order.
    subjects: HashMap<String, Vec<SchemaId>>,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl State {
    fn schema(&self, id: SchemaId) -> Option<&Arc<str>> {
        let index = usize::try_from(id.0).ok()?.checked_sub(1)?;
        self.schemas.get(index)
    }

    fn id_of(&self, schema: &str) -> Option<SchemaId> {
        let index = self.schemas.iter().position(|known| &**known == schema)?;
        u32::try_from(index + 1).ok().map(SchemaId)
    }

    fn version(&self, subject: &str, version_index: usize) -> Option<RegisteredSchema> {
        let id = *self.subjects.get(subject)?.get(version_index)?;
        Some(RegisteredSchema {
            subject: subject.to_owned(),
            id,
            version: i32::try_from(version_index + 1).ok()?,
            schema: Arc::clone(self.schema(id)?),
        })
    }
}

fn subject_not_found(subject: &str) -> RegistryError {
    RegistryError::SubjectNotFound {
        subject: subject.to_owned(),
        message: format!("Subject '{subject}' not found."),
    }
}

impl SchemaRegistry for MemoryRegistry {
    async fn register(&self, subject: &str, schema: &str) -> Result<SchemaId, RegistryError> {
        self.with_state(|state| {
            let id = match state.id_of(schema) {
                Some(id) => id,
                None => {
                    let next = u32::try_from(state.schemas.len() + 1).map_err(|_| {
                        RegistryError::Rejected {
                            request: format!("register under `{subject}`"),
                            status: 507,
                            error_code: None,
                            message: "in-memory registry is full".to_owned(),
                        }
                    })?;
                    state.schemas.push(schema.into());
                    SchemaId(next)
                }
            };
            let versions = state.subjects.entry(subject.to_owned()).or_default();
            if !versions.contains(&id) {
                versions.push(id);
            }
            Ok(id)
        })
    }

    async fn lookup(&self, subject: &str, schema: &str) -> Result<RegisteredSchema, RegistryError> {
        self.with_state(|state| {
            let versions = state
                .subjects
                .get(subject)
                .ok_or_else(|| subject_not_found(subject))?;
            let not_found = || RegistryError::SchemaNotFound {
                request: format!("lookup under `{subject}`"),
                message: "Schema not found".to_owned(),
            };
            let id = state.id_of(schema).ok_or_else(not_found)?;
            let index = versions
                .iter()
                .position(|v| *v == id)
                .ok_or_else(not_found)?;
            state.version(subject, index).ok_or_else(not_found)
        })
    }

    async fn schema_by_id(&self, id: SchemaId) -> Result<Arc<str>, RegistryError> {
        self.with_state(|state| {
            state
                .schema(id)
                .cloned()
                .ok_or_else(|| RegistryError::SchemaNotFound {
                    request: format!("schema id {id}"),
                    message: format!("Schema {id} not found"),
                })
        })
    }

    async fn latest(&self, subject: &str) -> Result<RegisteredSchema, RegistryError> {
        self.with_state(|state| {
            let count = state.subjects.get(subject).map_or(0, Vec::len);
            count
                .checked_sub(1)
                .and_then(|last| state.version(subject, last))
                .ok_or_else(|| subject_not_found(subject))
        })
    }

    async fn subjects_for_id(&self, id: SchemaId) -> Result<Vec<String>, RegistryError> {
        self.with_state(|state| {
            let mut subjects: Vec<String> = state
                .subjects
                .iter()
                .filter(|(_, ids)| ids.contains(&id))
                .map(|(subject, _)| subject.clone())
                .collect();
            subjects.sort();
            Ok(subjects)
        })
    }
}

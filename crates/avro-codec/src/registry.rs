//! Where writer schemas come from: the [`SchemaRegistry`] trait the decoders and encoders are
//! written against. Its implementations (HTTP client, cache, in-memory) live in the
//! `schema-registry` crate, so this crate does no I/O.

use std::{future::Future, sync::Arc};

use crate::{RegistryError, SchemaId};

/// A schema as registered under a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSchema {
    /// The subject, e.g. `producer.to.processor-value`.
    pub subject: String,
    /// The registry-wide id, written in frame headers.
    pub id: SchemaId,
    /// The version under the subject, from 1.
    pub version: i32,
    /// The schema JSON.
    pub schema: Arc<str>,
}

/// The operations of a Confluent-compatible schema registry that the router uses.
pub trait SchemaRegistry: Send + Sync {
    /// Registers `schema` under `subject` (idempotent: an already registered schema keeps its id).
    fn register(
        &self,
        subject: &str,
        schema: &str,
    ) -> impl Future<Output = Result<SchemaId, RegistryError>> + Send;

    /// Finds `schema` among the versions of `subject`.
    fn lookup(
        &self,
        subject: &str,
        schema: &str,
    ) -> impl Future<Output = Result<RegisteredSchema, RegistryError>> + Send;

    /// The schema with registry-wide id `id`.
    fn schema_by_id(
        &self,
        id: SchemaId,
    ) -> impl Future<Output = Result<Arc<str>, RegistryError>> + Send;

    /// The latest version under `subject`.
    fn latest(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<RegisteredSchema, RegistryError>> + Send;

    /// Subjects under which schema `id` is registered; only used to make error messages more
    /// helpful, so the default answers none.
    fn subjects_for_id(
        &self,
        id: SchemaId,
    ) -> impl Future<Output = Result<Vec<String>, RegistryError>> + Send {
        let _ = id;
        std::future::ready(Ok(Vec::new()))
    }
}

impl<R: SchemaRegistry> SchemaRegistry for Arc<R> {
    fn register(
        &self,
        subject: &str,
        schema: &str,
    ) -> impl Future<Output = Result<SchemaId, RegistryError>> + Send {
        R::register(self, subject, schema)
    }

    fn lookup(
        &self,
        subject: &str,
        schema: &str,
    ) -> impl Future<Output = Result<RegisteredSchema, RegistryError>> + Send {
        R::lookup(self, subject, schema)
    }

    fn schema_by_id(
        &self,
        id: SchemaId,
    ) -> impl Future<Output = Result<Arc<str>, RegistryError>> + Send {
        R::schema_by_id(self, id)
    }

    fn latest(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<RegisteredSchema, RegistryError>> + Send {
        R::latest(self, subject)
    }

    fn subjects_for_id(
        &self,
        id: SchemaId,
    ) -> impl Future<Output = Result<Vec<String>, RegistryError>> + Send {
        R::subjects_for_id(self, id)
    }
}

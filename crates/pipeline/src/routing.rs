//! What the hot path needs to route: the router, plus each output's topic and encoder, resolved
//! against the registry before the snapshot is used (so a reload never swaps in a half-ready table).

use crate::PipelineError;
use crate::authentication::TenantAuthentication;
use avro_codec::{OutputEncoder, PROCESSOR_TO_CONSUMER_SCHEMA, SchemaRegistry};
use router_core::Router;
use std::collections::HashMap;
use std::sync::Arc;

/// A routing table ready for the hot path. Immutable; a reload builds a new one.
#[derive(Debug)]
pub struct RoutingSnapshot {
    router: Router,
    outputs: HashMap<String, PreparedOutput>,
    /// `None`: events are trusted to be from whom they claim (`authentication.mode = "none"`).
    authentication: Option<Arc<TenantAuthentication>>,
}

#[derive(Debug)]
pub(crate) struct PreparedOutput {
    pub(crate) topic: Arc<str>,
    pub(crate) encoder: OutputEncoder,
}

impl RoutingSnapshot {
    /// Resolves the output schema id of every subject the router writes to: looked up, or
    /// registered when `auto_register` is set (as Confluent serializers do by default). The
    /// schema is always the one the encoders write, so no caller can pair them wrongly.
    pub async fn resolve<R: SchemaRegistry>(
        router: Router,
        registry: &R,
        auto_register: bool,
    ) -> Result<Self, PipelineError> {
        let mut ids_by_subject = HashMap::new();
        let mut outputs = HashMap::new();
        for target in router.output_targets() {
            let subject = target.subject.clone();
            let schema_id = match ids_by_subject.get(&subject) {
                Some(id) => *id,
                None => {
                    let id = if auto_register {
                        registry
                            .register(&subject, PROCESSOR_TO_CONSUMER_SCHEMA)
                            .await
                    } else {
                        registry
                            .lookup(&subject, PROCESSOR_TO_CONSUMER_SCHEMA)
                            .await
                            .map(|found| found.id)
                    }
                    .map_err(|source| PipelineError::OutputSchema {
                        subject: subject.clone(),
                        source,
                    })?;
                    ids_by_subject.insert(subject.clone(), id);
                    id
                }
            };
            outputs.insert(
                target.topic.clone(),
                PreparedOutput {
                    topic: Arc::from(target.topic.as_str()),
                    encoder: OutputEncoder::new(schema_id),
                },
            );
        }
        Ok(Self {
            router,
            outputs,
            authentication: None,
        })
    }

    /// This snapshot, checking tenant signatures as `authentication` says (`None`: not at all).
    #[must_use]
    pub fn with_authentication(
        mut self,
        authentication: Option<Arc<TenantAuthentication>>,
    ) -> Self {
        self.authentication = authentication;
        self
    }

    /// The tenant authentication in force, if any.
    pub fn authentication(&self) -> Option<&TenantAuthentication> {
        self.authentication.as_deref()
    }

    /// The router of this snapshot.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Output topics this snapshot writes to.
    pub fn output_topics(&self) -> impl Iterator<Item = &str> {
        self.outputs.keys().map(String::as_str)
    }

    pub(crate) fn output(&self, topic: &str) -> Option<&PreparedOutput> {
        self.outputs.get(topic)
    }

    /// A snapshot whose every output is written with schema id `schema_id`, without a registry
    /// (unit tests of what uses snapshots).
    #[cfg(test)]
    pub(crate) fn with_output_schema(router: Router, schema_id: avro_codec::SchemaId) -> Self {
        let outputs = router
            .output_targets()
            .map(|target| {
                let prepared = PreparedOutput {
                    topic: Arc::from(target.topic.as_str()),
                    encoder: OutputEncoder::new(schema_id),
                };
                (target.topic.clone(), prepared)
            })
            .collect();
        Self {
            router,
            outputs,
            authentication: None,
        }
    }
}

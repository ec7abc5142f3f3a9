//! Shared test helpers: golden vectors, sample records, an apache-avro reference encoder and a
//! scripted registry.

#![allow(dead_code, unreachable_pub)]

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use apache_avro::{Schema, types::Value, writer::datum::GenericDatumWriter};
use avro_codec::{
    CodecError, InputDecoder, ProcessorToConsumer, ProducerToProcessor, RegisteredSchema,
    RegistryError, SchemaId, SchemaRegistry,
};

/// Golden vector of `ProducerToProcessor` with schema id 1 (wire-format.md).
pub const GOLDEN_INPUT_HEX: &str = "00000000011470726f64756365722d310e46494e414e4345124d41524b4554494e4780d0cfba85606464756d6d792d7061796c6f61642030303030303030302d303030302d303030302d303030302d303030303030303030303030";

/// Golden vector of `ProcessorToConsumer` with schema id 2 (wire-format.md).
pub const GOLDEN_OUTPUT_HEX: &str = "00000000021470726f64756365722d31226576656e742d70726f636573736f722d31124d41524b4554494e4780d0cfba8560f6d1cfba85600278";

pub fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// Loads schema id 42, which `registry` does not know, three times into a new decoder: every
/// load fails as poison `SchemaNotFound`. One body for every registry backend; the caller then
/// checks how often its backend was asked.
pub async fn load_unknown_id_42_three_times<R: SchemaRegistry>(registry: &R) -> InputDecoder {
    let decoder = InputDecoder::new();
    for _ in 0..3 {
        let err = decoder
            .load(SchemaId(42), registry)
            .await
            .expect_err("no such id");
        assert!(
            matches!(
                err,
                CodecError::SchemaNotFound {
                    schema_id: SchemaId(42)
                }
            ),
            "{err:?}"
        );
        assert!(err.is_poison());
    }
    decoder
}

pub fn golden_input() -> Vec<u8> {
    hex(GOLDEN_INPUT_HEX)
}

pub fn golden_output() -> Vec<u8> {
    hex(GOLDEN_OUTPUT_HEX)
}

pub fn golden_input_record() -> ProducerToProcessor {
    ProducerToProcessor {
        origin_service_id: "producer-1".into(),
        origin_service_type: "FINANCE".into(),
        destination_service_type: "MARKETING".into(),
        event_timestamp: 1_650_000_000_000,
        payload: "dummy-payload 00000000-0000-0000-0000-000000000000".into(),
    }
}

pub fn golden_output_record() -> ProcessorToConsumer {
    ProcessorToConsumer {
        producer_service_id: "producer-1".into(),
        processor_service_id: "event-processor-1".into(),
        destination_type: "MARKETING".into(),
        producer_event_timestamp: 1_650_000_000_000,
        processor_event_timestamp: 1_650_000_000_123,
        payload: "x".into(),
    }
}

/// Confluent framing of `body` under `id`, built by hand (independent of the crate).
pub fn frame(id: u32, body: &[u8]) -> Vec<u8> {
    let mut framed = vec![0];
    framed.extend_from_slice(&id.to_be_bytes());
    framed.extend_from_slice(body);
    framed
}

/// Avro body of `value` under `schema_json`, written by apache-avro (the reference encoder).
pub fn apache_body(schema_json: &str, value: Value) -> Vec<u8> {
    let schema = Schema::parse_str(schema_json).expect("test schema parses");
    GenericDatumWriter::builder(&schema)
        .build()
        .expect("writer builds")
        .write_value_to_vec(value)
        .expect("value matches the test schema")
}

/// A record `Value` from `(field, value)` pairs, in the order given.
pub fn record(fields: &[(&str, Value)]) -> Value {
    Value::Record(
        fields
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect(),
    )
}

pub fn string(text: &str) -> Value {
    Value::String(text.to_owned())
}

/// What [`ScriptedRegistry::schema_by_id`] answers, in order; the last answer repeats.
#[derive(Debug, Clone)]
pub enum Answer {
    Schema(String),
    NotFound,
    Down,
}

/// A registry answering `schema_by_id` from a script, counting calls, optionally slowly.
#[derive(Debug, Default)]
pub struct ScriptedRegistry {
    answers: Mutex<HashMap<SchemaId, VecDeque<Answer>>>,
    subjects: HashMap<SchemaId, Vec<String>>,
    delay: Duration,
    pub by_id_calls: AtomicUsize,
    pub register_calls: AtomicUsize,
}

impl ScriptedRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn answer(self, id: u32, answers: impl IntoIterator<Item = Answer>) -> Self {
        self.answers
            .lock()
            .expect("lock")
            .insert(SchemaId(id), answers.into_iter().collect());
        self
    }

    pub fn subject(mut self, id: u32, subject: &str) -> Self {
        self.subjects
            .entry(SchemaId(id))
            .or_default()
            .push(subject.to_owned());
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn calls(&self) -> usize {
        self.by_id_calls.load(Ordering::SeqCst)
    }
}

fn unsupported(what: &str) -> RegistryError {
    RegistryError::Config {
        reason: format!("ScriptedRegistry does not support {what}"),
    }
}

impl SchemaRegistry for ScriptedRegistry {
    /// Answers id 2 for every registration, after the delay.
    async fn register(&self, _subject: &str, _schema: &str) -> Result<SchemaId, RegistryError> {
        self.register_calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(SchemaId(2))
    }

    async fn lookup(
        &self,
        _subject: &str,
        _schema: &str,
    ) -> Result<RegisteredSchema, RegistryError> {
        Err(unsupported("lookup"))
    }

    async fn schema_by_id(&self, id: SchemaId) -> Result<Arc<str>, RegistryError> {
        self.by_id_calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let answer = {
            let mut answers = self.answers.lock().expect("lock");
            let queue = answers.entry(id).or_default();
            if queue.len() > 1 {
                queue.pop_front()
            } else {
                queue.front().cloned()
            }
        };
        match answer {
            Some(Answer::Schema(schema)) => Ok(schema.into()),
            Some(Answer::Down) => Err(RegistryError::Timeout {
                request: format!("GET /schemas/ids/{id}"),
                timeout: Duration::from_millis(1),
                attempts: 1,
            }),
            Some(Answer::NotFound) | None => Err(RegistryError::SchemaNotFound {
                request: format!("GET /schemas/ids/{id}"),
                message: format!("Schema {id} not found"),
            }),
        }
    }

    async fn latest(&self, _subject: &str) -> Result<RegisteredSchema, RegistryError> {
        Err(unsupported("latest"))
    }

    async fn subjects_for_id(&self, id: SchemaId) -> Result<Vec<String>, RegistryError> {
        Ok(self.subjects.get(&id).cloned().unwrap_or_default())
    }
}

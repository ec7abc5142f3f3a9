//! Errors of the codec ([`CodecError`]) and of the registry client ([`RegistryError`]), and how a
//! caller should treat them ([`ErrorClass`]).

use std::time::Duration;

use crate::SchemaId;

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// A property of the bytes (or of the schema id they name): the same input fails the same
    /// way forever. Dead-letter the record and move on.
    Poison,
    /// The registry is down, slow or overloaded, or the schema id is not loaded yet: the same
    /// input may decode later. Retry (after [`load`](crate::Decoder::load) for
    /// [`CodecError::UnknownSchemaId`]).
    Transient,
    /// This process is misconfigured (credentials, TLS, URL, a schema the registry refuses) or the
    /// registry answers something that is not the Confluent API: neither retrying soon nor
    /// dead-lettering helps; stop and tell an operator.
    Fatal,
}

/// Error of framing, decoding and schema resolution.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value has no bytes at all (a null or empty Kafka value).
    #[error(
        "empty value: expected a Confluent-framed Avro record (magic byte 0, 4-byte schema id, body)"
    )]
    Empty,

    /// The value is shorter than the 5-byte Confluent header.
    #[error(
        "value of {len} bytes is shorter than the 5-byte Confluent header (magic byte 0, 4-byte schema id)"
    )]
    TooShort {
        /// Length of the value.
        len: usize,
    },

    /// The first byte is not the Confluent magic byte `0`.
    #[error(
        "first byte is {found:#04x}, expected the Confluent magic byte 0x00: the producer did not use the Confluent Avro serializer"
    )]
    BadMagicByte {
        /// The first byte of the value.
        found: u8,
    },

    /// The writer schema of this id is not loaded yet; call
    /// [`Decoder::load`](crate::Decoder::load) and decode again.
    #[error(
        "writer schema id {schema_id} is not loaded yet: load it from the schema registry, then decode again"
    )]
    UnknownSchemaId {
        /// Id from the frame header.
        schema_id: SchemaId,
    },

    /// The registry has no schema with this id.
    #[error(
        "schema id {schema_id} does not exist in the schema registry: the producer wrote an id this registry never issued"
    )]
    SchemaNotFound {
        /// Id from the frame header.
        schema_id: SchemaId,
    },

    /// The writer schema of this id is not a valid Avro schema.
    #[error("writer schema id {schema_id} is not a valid Avro schema: {reason}")]
    InvalidWriterSchema {
        /// Id from the frame header.
        schema_id: SchemaId,
        /// What the Avro parser said.
        reason: String,
    },

    /// The writer schema cannot be resolved to the reader schema this process expects.
    #[error(
        "writer schema id {schema_id}{} cannot be read as {reader}: {reason}; \
         evolve the producer's schema compatibly (add fields with defaults, keep field types)",
        subject_suffix(.subject)
    )]
    IncompatibleSchema {
        /// Id from the frame header.
        schema_id: SchemaId,
        /// A subject the writer schema is registered under, when the registry said.
        subject: Option<String>,
        /// Full name of the reader record, e.g. `service_messages.ProducerToProcessor`.
        reader: &'static str,
        /// Why the schemas do not resolve.
        reason: String,
    },

    /// The Avro body does not match its writer schema.
    #[error("malformed Avro body of schema id {schema_id} at byte {offset} of the value: {reason}")]
    Malformed {
        /// Id from the frame header.
        schema_id: SchemaId,
        /// Byte offset in the framed value (header included) where the bad value starts.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },

    /// The body is well-formed for its writer schema but its value cannot be read as the reader
    /// record (e.g. a `null` branch of a writer union where the reader wants a string).
    #[error("record of schema id {schema_id} cannot be read as {reader}: {reason}")]
    Unreadable {
        /// Id from the frame header.
        schema_id: SchemaId,
        /// Full name of the reader record.
        reader: &'static str,
        /// What the Avro library said.
        reason: String,
    },

    /// The schema registry failed; see [`RegistryError::is_transient`].
    #[error("schema registry request for {} failed: {source}", registry_context(*.schema_id, .subject))]
    Registry {
        /// Schema id being loaded, if any.
        schema_id: Option<SchemaId>,
        /// Subject being registered or looked up, if any.
        subject: Option<String>,
        /// What failed.
        #[source]
        source: RegistryError,
    },
}

fn subject_suffix(subject: &Option<String>) -> String {
    match subject {
        Some(subject) => format!(" (subject `{subject}`)"),
        None => String::new(),
    }
}

fn registry_context(schema_id: Option<SchemaId>, subject: &Option<String>) -> String {
    match (schema_id, subject) {
        (Some(id), Some(subject)) => format!("schema id {id} (subject `{subject}`)"),
        (Some(id), None) => format!("schema id {id}"),
        (None, Some(subject)) => format!("subject `{subject}`"),
        (None, None) => "a schema".to_owned(),
    }
}

impl CodecError {
    /// How a caller should treat this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::UnknownSchemaId { .. } => ErrorClass::Transient,
            Self::Registry { source, .. } if source.is_transient() => ErrorClass::Transient,
            Self::Registry { .. } => ErrorClass::Fatal,
            Self::Empty
            | Self::TooShort { .. }
            | Self::BadMagicByte { .. }
            | Self::SchemaNotFound { .. }
            | Self::InvalidWriterSchema { .. }
            | Self::IncompatibleSchema { .. }
            | Self::Malformed { .. }
            | Self::Unreadable { .. } => ErrorClass::Poison,
        }
    }

    /// True when the same bytes may decode later: the registry is unreachable or slow, or the
    /// schema id is not loaded yet. Retry rather than dead-letter.
    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    /// True when the error is a property of the bytes: dead-letter the record.
    pub fn is_poison(&self) -> bool {
        self.class() == ErrorClass::Poison
    }

    /// The schema id the error is about, when there is one.
    pub fn schema_id(&self) -> Option<SchemaId> {
        match self {
            Self::UnknownSchemaId { schema_id }
            | Self::SchemaNotFound { schema_id }
            | Self::InvalidWriterSchema { schema_id, .. }
            | Self::IncompatibleSchema { schema_id, .. }
            | Self::Malformed { schema_id, .. }
            | Self::Unreadable { schema_id, .. } => Some(*schema_id),
            Self::Registry { schema_id, .. } => *schema_id,
            Self::Empty | Self::TooShort { .. } | Self::BadMagicByte { .. } => None,
        }
    }
}

/// Error of a schema registry request.
///
/// `request` fields name the method and URL (without credentials), e.g.
/// `GET http://registry:8081/schemas/ids/7`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The subject does not exist (Confluent error code 40401).
    #[error("subject `{subject}` not found in the schema registry: {message}")]
    SubjectNotFound {
        /// The subject.
        subject: String,
        /// The registry's message.
        message: String,
    },

    /// The subject has no such version (40402).
    #[error("version not found under subject `{subject}`: {message}")]
    VersionNotFound {
        /// The subject.
        subject: String,
        /// The registry's message.
        message: String,
    },

    /// No such schema (40403): an unknown id, or a schema not registered under the subject.
    #[error("schema not found ({request}): {message}")]
    SchemaNotFound {
        /// Method and URL of the request.
        request: String,
        /// The registry's message.
        message: String,
    },

    /// The schema is incompatible with the subject's earlier versions (HTTP 409).
    #[error(
        "schema is incompatible with earlier versions of subject `{subject}`: {message}; \
         change the schema compatibly or the subject's compatibility level"
    )]
    Incompatible {
        /// The subject.
        subject: String,
        /// The registry's message.
        message: String,
    },

    /// The registry refused the schema as invalid (42201).
    #[error("the schema registry refused the schema for subject `{subject}` as invalid: {message}")]
    InvalidSchema {
        /// The subject.
        subject: String,
        /// The registry's message.
        message: String,
    },

    /// Authentication or authorization failed (HTTP 401 or 403).
    #[error(
        "schema registry refused the credentials ({request}, HTTP {status}): {message}; \
         check the basic-auth user and password"
    )]
    Unauthorized {
        /// Method and URL of the request.
        request: String,
        /// HTTP status.
        status: u16,
        /// The registry's message.
        message: String,
    },

    /// The registry failed on its side (HTTP 5xx, e.g. 50001 backend store error) or asked to
    /// slow down (HTTP 429), on every attempt.
    #[error("schema registry error ({request}, HTTP {status}, error code {}) after {attempts} attempt(s): {message}", error_code_text(*.error_code))]
    Server {
        /// Method and URL of the request.
        request: String,
        /// HTTP status of the last attempt.
        status: u16,
        /// Confluent error code of the last attempt, when the body had one.
        error_code: Option<i64>,
        /// The registry's message.
        message: String,
        /// Attempts made.
        attempts: u32,
    },

    /// Any other 4xx answer.
    #[error("schema registry rejected the request ({request}, HTTP {status}, error code {}): {message}", error_code_text(*.error_code))]
    Rejected {
        /// Method and URL of the request.
        request: String,
        /// HTTP status.
        status: u16,
        /// Confluent error code, when the body had one.
        error_code: Option<i64>,
        /// The registry's message.
        message: String,
    },

    /// No answer within the configured timeout, on every attempt.
    #[error(
        "schema registry did not answer within {timeout:?} ({request}) after {attempts} attempt(s); check that it is up and reachable"
    )]
    Timeout {
        /// Method and URL of the request.
        request: String,
        /// The per-attempt timeout.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
    },

    /// The connection failed (refused, reset, DNS, TLS handshake), on every attempt.
    #[error(
        "cannot reach the schema registry ({request}) after {attempts} attempt(s); check the URL and that it is up"
    )]
    Connect {
        /// Method and URL of the request.
        request: String,
        /// Attempts made.
        attempts: u32,
        /// The transport error (from the HTTP client).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The registry answered 2xx with a body that is not the Confluent API's.
    #[error(
        "unexpected answer from the schema registry ({request}): {reason}; is the URL a Confluent-compatible schema registry?"
    )]
    InvalidResponse {
        /// Method and URL of the request.
        request: String,
        /// What was wrong with the body.
        reason: String,
    },

    /// The client configuration is unusable (URL, CA certificate).
    #[error("invalid schema registry client configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}

fn error_code_text(code: Option<i64>) -> String {
    code.map_or_else(|| "none".to_owned(), |code| code.to_string())
}

impl RegistryError {
    /// True for failures that may go away by themselves: timeouts, connection failures, 5xx and
    /// 429 answers. Not for 4xx answers, which repeat identically.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Server { .. } | Self::Timeout { .. } | Self::Connect { .. }
        )
    }
}

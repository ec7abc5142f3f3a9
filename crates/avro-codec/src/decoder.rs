//! Decoding of framed values into typed records, with a cache of prepared writer schemas.

use std::{
    collections::HashMap,
    fmt,
    hash::{BuildHasherDefault, Hasher},
    marker::PhantomData,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use apache_avro::{
    Schema, reader::datum::GenericDatumReader, schema::ResolvedSchema,
    schema_compatibility::SchemaCompatibility,
};
use router_core::{ProcessorToConsumer, ProducerToProcessor, ProducerToProcessorRef};

use crate::{
    CodecError, HEADER_LEN, RegistryError, SchemaId, SchemaRegistry, WireRecord,
    binary::{BodyError, BodyReader, TRAILING_BYTES},
    framing::split_frame,
    record::decode_input_body,
    scan::scan_body,
};

/// Decoder of [`ProducerToProcessor`] values (the router's input).
pub type InputDecoder = Decoder<ProducerToProcessor>;

/// Decoder of [`ProcessorToConsumer`] values (the router's output, for consumers).
pub type OutputDecoder = Decoder<ProcessorToConsumer>;

/// Most writer schema ids remembered as unreadable. Beyond this, new bad ids are not remembered,
/// so a stream of random ids cannot grow memory without bound (each such id then costs a
/// registry request per [`Decoder::load`]).
pub const MAX_REJECTED_SCHEMA_IDS: usize = 4096;

/// How records of a cached schema id are read, see [`Decoder::read_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadPath {
    /// The writer schema has the reader's canonical form: the hand-written decoder.
    Fast,
    /// The writer schema differs but resolves to the reader's: apache-avro schema resolution.
    Resolving,
    /// The id cannot be read; decoding returns the remembered error.
    Rejected,
}

/// Decodes Confluent-framed Avro values into `T`, resolving each writer schema to `T`'s schema.
///
/// Holds a cache from schema id to a prepared reader: the fast hand-written decoder when the
/// writer schema's Parsing Canonical Form equals the reader's, a resolving apache-avro reader
/// otherwise, or the reason the id cannot be read (negative cache). [`decode`](Self::decode) is
/// synchronous and never touches the registry; [`load`](Self::load) fills the cache.
///
/// An id the registry did not know is remembered as not found for good by default (registry ids
/// are immutable); with [`with_not_found_ttl`](Self::with_not_found_ttl) only for that long, as
/// a lagging registry replica may not know an id yet that another one already gave out.
///
/// `Send + Sync`: share it by reference or in an `Arc`; lookups take a read lock only.
pub struct Decoder<T: WireRecord> {
    reader_schema: Schema,
    reader_canonical_form: String,
    entries: RwLock<Entries>,
    /// How long "not found" is remembered; `None`: for good.
    not_found_ttl: Option<NotFoundTtl>,
    _record: PhantomData<fn() -> T>,
}

/// How long "not found" is remembered, by whose clock.
struct NotFoundTtl {
    ttl: Duration,
    now: Box<dyn Fn() -> Duration + Send + Sync>,
}

#[derive(Default)]
struct Entries {
    by_id: HashMap<SchemaId, Entry, BuildHasherDefault<SchemaIdHasher>>,
    rejected: usize,
}

/// Hashes a schema id with one multiplication instead of SipHash: the lookup runs for every
/// record. Chosen ids cannot degrade the map much, since it holds at most the readable ids plus
/// [`MAX_REJECTED_SCHEMA_IDS`].
#[derive(Default)]
struct SchemaIdHasher(u64);

/// 2^64 / φ: multiplying by it spreads consecutive ids over the whole word (Fibonacci hashing).
const FIBONACCI: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for SchemaIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `SchemaId` (it hashes one `u32`); kept correct for any input.
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(FIBONACCI);
        }
    }

    fn write_u32(&mut self, id: u32) {
        self.0 = (self.0 ^ u64::from(id)).wrapping_mul(FIBONACCI);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

enum Entry {
    /// Writer schema is the reader schema up to documentation and namespaces of names.
    Fast,
    /// Writer schema differs but resolves to the reader schema.
    Resolved(Arc<Schema>),
    /// The id can never be read as `T`.
    Rejected(Rejection),
}

#[derive(Clone)]
enum Rejection {
    /// The registry did not know the id when asked at `checked` (by the decoder's clock).
    NotFound {
        checked: Duration,
    },
    Invalid(Arc<str>),
    Incompatible {
        subject: Option<Arc<str>>,
        reason: Arc<str>,
    },
}

impl Rejection {
    fn to_error(&self, schema_id: SchemaId, reader: &'static str) -> CodecError {
        match self {
            Self::NotFound { .. } => CodecError::SchemaNotFound { schema_id },
            Self::Invalid(reason) => CodecError::InvalidWriterSchema {
                schema_id,
                reason: reason.to_string(),
            },
            Self::Incompatible { subject, reason } => CodecError::IncompatibleSchema {
                schema_id,
                subject: subject.as_deref().map(str::to_owned),
                reader,
                reason: reason.to_string(),
            },
        }
    }
}

impl<T: WireRecord> Default for Decoder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: WireRecord> fmt::Debug for Decoder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.read();
        let fast = entries
            .by_id
            .iter()
            .filter(|(_, entry)| matches!(entry, Entry::Fast))
            .count();
        f.debug_struct("Decoder")
            .field("reader", &T::FULL_NAME)
            .field("schema_ids", &entries.by_id.len())
            .field("fast", &fast)
            .field("rejected", &entries.rejected)
            .finish_non_exhaustive()
    }
}

impl<T: WireRecord> Decoder<T> {
    /// A decoder with an empty cache, reading into `T`'s embedded schema.
    pub fn new() -> Self {
        #[allow(clippy::expect_used)]
        let reader_schema =
            Schema::parse_str(T::SCHEMA).expect("embedded reader schema is valid (tested)");
        Self {
            reader_canonical_form: reader_schema.canonical_form(),
            reader_schema,
            entries: RwLock::new(Entries::default()),
            not_found_ttl: None,
            _record: PhantomData,
        }
    }

    /// This decoder, remembering an id the registry did not know for `ttl` only: afterwards
    /// [`decode`](Self::decode) answers [`CodecError::UnknownSchemaId`] for it again, and
    /// [`load`](Self::load) asks the registry again.
    ///
    /// `now` is the owner's monotonic clock (any fixed origin): this crate reads no clock
    /// itself, so tests control time and the codec stays free of I/O.
    #[must_use]
    pub fn with_not_found_ttl(
        mut self,
        ttl: Duration,
        now: impl Fn() -> Duration + Send + Sync + 'static,
    ) -> Self {
        self.not_found_ttl = Some(NotFoundTtl {
            ttl,
            now: Box::new(now),
        });
        self
    }

    /// Whether `entry` is a "not found" older than the time to live: to be fetched again.
    fn is_stale(&self, entry: &Entry) -> bool {
        match (entry, &self.not_found_ttl) {
            (Entry::Rejected(Rejection::NotFound { checked }), Some(limit)) => {
                (limit.now)().saturating_sub(*checked) >= limit.ttl
            }
            _ => false,
        }
    }

    /// Reads the schema id from a framed value's header.
    ///
    /// # Errors
    /// The framing errors of [`split_frame`](crate::split_frame).
    pub fn schema_id_of(framed: &[u8]) -> Result<SchemaId, CodecError> {
        split_frame(framed).map(|(schema_id, _)| schema_id)
    }

    /// Decodes a framed value.
    ///
    /// # Errors
    /// [`CodecError::UnknownSchemaId`] when the writer schema is not loaded yet (call
    /// [`load`](Self::load), then decode again); the cached rejection for an id that cannot be
    /// read; framing and body errors, which are poison.
    pub fn decode(&self, framed: &[u8]) -> Result<T, CodecError> {
        let (schema_id, body) = split_frame(framed)?;
        match self.resolving_writer(schema_id)? {
            None => decode_fast(schema_id, body),
            Some(writer) => self.decode_resolved(schema_id, &writer, body),
        }
    }

    /// How to read `schema_id`: `None` on the fast path, the writer schema when it must be
    /// resolved, or the error the id stands for.
    fn resolving_writer(&self, schema_id: SchemaId) -> Result<Option<Arc<Schema>>, CodecError> {
        match self.read().by_id.get(&schema_id) {
            Some(Entry::Fast) => Ok(None),
            Some(Entry::Resolved(writer)) => Ok(Some(Arc::clone(writer))),
            Some(entry) if self.is_stale(entry) => Err(CodecError::UnknownSchemaId { schema_id }),
            Some(Entry::Rejected(rejection)) => Err(rejection.to_error(schema_id, T::FULL_NAME)),
            None => Err(CodecError::UnknownSchemaId { schema_id }),
        }
    }

    /// Decodes `framed`, first loading its writer schema from `registry` when the id is not
    /// cached yet: [`decode`](Self::decode), and on [`CodecError::UnknownSchemaId`],
    /// [`load`](Self::load) then `decode` again. Awaits only on the first sight of an id.
    ///
    /// # Errors
    /// As [`decode`](Self::decode) and [`load`](Self::load); never `UnknownSchemaId`.
    pub async fn decode_or_load<R: SchemaRegistry>(
        &self,
        framed: &[u8],
        registry: &R,
    ) -> Result<T, CodecError> {
        match self.decode(framed) {
            Err(CodecError::UnknownSchemaId { schema_id }) => {
                self.load(schema_id, registry).await?;
                self.decode(framed)
            }
            decoded => decoded,
        }
    }

    /// True when `schema_id` is cached, readable or rejected (and not a "not found" past its
    /// time to live).
    pub fn is_loaded(&self, schema_id: SchemaId) -> bool {
        self.read()
            .by_id
            .get(&schema_id)
            .is_some_and(|entry| !self.is_stale(entry))
    }

    /// How records of `schema_id` are read, or `None` when the id is not cached.
    pub fn read_path(&self, schema_id: SchemaId) -> Option<ReadPath> {
        self.read().by_id.get(&schema_id).map(|entry| match entry {
            Entry::Fast => ReadPath::Fast,
            Entry::Resolved(_) => ReadPath::Resolving,
            Entry::Rejected(_) => ReadPath::Rejected,
        })
    }

    /// Prepares a reader for the writer schema `writer_schema_json` of id `schema_id`.
    ///
    /// Idempotent: an id already cached keeps its first outcome, as registry ids are immutable.
    ///
    /// # Errors
    /// [`CodecError::InvalidWriterSchema`] or [`CodecError::IncompatibleSchema`]; the id is then
    /// remembered as bad.
    pub fn add_writer_schema(
        &self,
        schema_id: SchemaId,
        writer_schema_json: &str,
    ) -> Result<(), CodecError> {
        if let Some(outcome) = self.cached_outcome(schema_id, false) {
            return outcome;
        }
        let entry = self.prepare(writer_schema_json);
        self.insert(schema_id, entry)
    }

    /// Fetches the writer schema of `schema_id` from `registry` and prepares a reader for it.
    /// Does nothing when the id is already cached.
    ///
    /// # Errors
    /// [`CodecError::SchemaNotFound`], [`CodecError::InvalidWriterSchema`],
    /// [`CodecError::IncompatibleSchema`] (remembered as bad: later decodes and loads of the id
    /// fail the same way without a request), or [`CodecError::Registry`] for a failed request,
    /// which is not remembered.
    pub async fn load<R: SchemaRegistry>(
        &self,
        schema_id: SchemaId,
        registry: &R,
    ) -> Result<(), CodecError> {
        self.load_or_recheck(schema_id, registry, false).await
    }

    /// [`load`](Self::load), but an id remembered as not found is asked for again (for a caller
    /// that waits for a lagging registry to learn it).
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub async fn recheck<R: SchemaRegistry>(
        &self,
        schema_id: SchemaId,
        registry: &R,
    ) -> Result<(), CodecError> {
        self.load_or_recheck(schema_id, registry, true).await
    }

    async fn load_or_recheck<R: SchemaRegistry>(
        &self,
        schema_id: SchemaId,
        registry: &R,
        recheck_not_found: bool,
    ) -> Result<(), CodecError> {
        if let Some(outcome) = self.cached_outcome(schema_id, recheck_not_found) {
            return outcome;
        }
        let writer_schema = match registry.schema_by_id(schema_id).await {
            Ok(schema) => schema,
            Err(RegistryError::SchemaNotFound { .. }) => {
                let checked = self
                    .not_found_ttl
                    .as_ref()
                    .map_or(Duration::ZERO, |limit| (limit.now)());
                return self.insert(schema_id, Entry::Rejected(Rejection::NotFound { checked }));
            }
            Err(source) => {
                return Err(CodecError::Registry {
                    schema_id: Some(schema_id),
                    subject: None,
                    source,
                });
            }
        };
        let mut entry = self.prepare(&writer_schema);
        if let Entry::Rejected(Rejection::Incompatible { subject, .. }) = &mut entry {
            // Only to help a person find the producer; a failure here changes nothing.
            if let Ok(subjects) = registry.subjects_for_id(schema_id).await {
                *subject = subjects.into_iter().next().map(Arc::from);
            }
        }
        tracing::debug!(
            %schema_id,
            reader = T::FULL_NAME,
            outcome = entry.describe(),
            "loaded writer schema from the schema registry"
        );
        self.insert(schema_id, entry)
    }

    fn prepare(&self, writer_schema_json: &str) -> Entry {
        let writer = match without_logical_types(writer_schema_json) {
            Ok(json) => Schema::parse_str(&json),
            Err(err) => return Entry::Rejected(Rejection::Invalid(err.to_string().into())),
        };
        let writer = match writer {
            Ok(writer) => writer,
            Err(err) => return Entry::Rejected(Rejection::Invalid(err.to_string().into())),
        };
        if writer.canonical_form() == self.reader_canonical_form {
            return Entry::Fast;
        }
        if let Err(err) = SchemaCompatibility::can_read(&writer, &self.reader_schema) {
            return Entry::Rejected(Rejection::Incompatible {
                subject: None,
                reason: err.to_string().into(),
            });
        }
        match ResolvedSchema::try_from(&writer) {
            Ok(_) => Entry::Resolved(Arc::new(writer)),
            Err(err) => Entry::Rejected(Rejection::Invalid(err.to_string().into())),
        }
    }

    /// The remembered outcome of `schema_id`; `None` (fetch it) when there is none, or it is a
    /// "not found" that is stale or to be rechecked.
    fn cached_outcome(
        &self,
        schema_id: SchemaId,
        recheck_not_found: bool,
    ) -> Option<Result<(), CodecError>> {
        let entries = self.read();
        let entry = entries.by_id.get(&schema_id)?;
        let refetch = match entry {
            Entry::Rejected(Rejection::NotFound { .. }) => {
                recheck_not_found || self.is_stale(entry)
            }
            _ => false,
        };
        (!refetch).then(|| entry.outcome(schema_id, T::FULL_NAME))
    }

    fn insert(&self, schema_id: SchemaId, entry: Entry) -> Result<(), CodecError> {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        // Another task may have loaded the same id meanwhile; the first outcome stands, but for
        // a "not found", which a newer answer replaces (the registry may have learnt the id).
        match entries.by_id.get(&schema_id) {
            Some(Entry::Rejected(Rejection::NotFound { .. })) => {
                entries.by_id.remove(&schema_id);
                entries.rejected = entries.rejected.saturating_sub(1);
            }
            Some(existing) => return existing.outcome(schema_id, T::FULL_NAME),
            None => {}
        }
        let outcome = entry.outcome(schema_id, T::FULL_NAME);
        if matches!(entry, Entry::Rejected(_)) {
            if entries.rejected >= MAX_REJECTED_SCHEMA_IDS {
                tracing::warn!(
                    %schema_id,
                    limit = MAX_REJECTED_SCHEMA_IDS,
                    "too many unreadable schema ids to remember; this one will be fetched again"
                );
                return outcome;
            }
            entries.rejected += 1;
        }
        entries.by_id.insert(schema_id, entry);
        outcome
    }

    fn decode_resolved(
        &self,
        schema_id: SchemaId,
        writer: &Schema,
        body: &[u8],
    ) -> Result<T, CodecError> {
        let unreadable = |err: apache_avro::Error| CodecError::Unreadable {
            schema_id,
            reader: T::FULL_NAME,
            reason: err.to_string(),
        };
        let names = ResolvedSchema::try_from(writer).map_err(unreadable)?;
        scan_body(writer, names.get_names(), body).map_err(|err| malformed(schema_id, err))?;
        let datum_reader = GenericDatumReader::builder(writer)
            .resolved_writer_schemata(names)
            .reader_schema(&self.reader_schema)
            .build()
            .map_err(unreadable)?;
        let mut rest = body;
        let value = datum_reader.read_value(&mut rest).map_err(unreadable)?;
        if !rest.is_empty() {
            return Err(malformed(
                schema_id,
                BodyError {
                    offset: body.len() - rest.len(),
                    reason: TRAILING_BYTES,
                },
            ));
        }
        apache_avro::from_value::<T>(&value).map_err(unreadable)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        // Entries are only ever inserted whole, so a panic elsewhere cannot leave them torn.
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An input event from [`InputDecoder::decode_borrowed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodedInput<'a> {
    /// Fast path: the strings borrow from the framed value.
    Borrowed(ProducerToProcessorRef<'a>),
    /// The writer schema had to be resolved to the reader's: an owned record.
    Owned(ProducerToProcessor),
}

impl DecodedInput<'_> {
    /// The event, borrowed.
    pub fn view(&self) -> ProducerToProcessorRef<'_> {
        match self {
            Self::Borrowed(record) => *record,
            Self::Owned(record) => record.borrowed(),
        }
    }
}

impl Decoder<ProducerToProcessor> {
    /// [`decode`](Self::decode) without copying the strings on the fast path: they borrow from
    /// `framed`. Same outcomes and errors as `decode` for every input.
    ///
    /// # Errors
    /// As [`decode`](Self::decode).
    pub fn decode_borrowed<'a>(&self, framed: &'a [u8]) -> Result<DecodedInput<'a>, CodecError> {
        let (schema_id, body) = split_frame(framed)?;
        match self.resolving_writer(schema_id)? {
            None => read_whole_body(schema_id, body, decode_input_body).map(DecodedInput::Borrowed),
            Some(writer) => self
                .decode_resolved(schema_id, &writer, body)
                .map(DecodedInput::Owned),
        }
    }
}

impl Entry {
    fn outcome(&self, schema_id: SchemaId, reader: &'static str) -> Result<(), CodecError> {
        match self {
            Self::Fast | Self::Resolved(_) => Ok(()),
            Self::Rejected(rejection) => Err(rejection.to_error(schema_id, reader)),
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Self::Fast => "same as the reader schema: fast path",
            Self::Resolved(_) => "resolved to the reader schema",
            Self::Rejected(_) => "cannot be read: remembered as bad",
        }
    }
}

/// The schema JSON with every `logicalType` attribute removed.
///
/// The reader records hold plain strings and longs, and a logical type never changes the binary
/// encoding of its underlying type, so a writer field declared e.g. `timestamp-millis` or `uuid`
/// is read as its `long` or `string`. Without this, apache-avro would decode such fields into
/// logical values that it then refuses to resolve to the plain reader type, and would keep the
/// attribute in its canonical form, missing the fast path.
fn without_logical_types(schema_json: &str) -> Result<String, serde_json::Error> {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(object) => {
                if object.contains_key("type") {
                    object.remove("logicalType");
                }
                for (key, nested) in object.iter_mut() {
                    // Defaults are data, not schema.
                    if key != "default" {
                        strip(nested);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value: serde_json::Value = serde_json::from_str(schema_json)?;
    strip(&mut value);
    Ok(value.to_string())
}

#[inline]
fn decode_fast<T: WireRecord>(schema_id: SchemaId, body: &[u8]) -> Result<T, CodecError> {
    read_whole_body(schema_id, body, T::decode_body)
}

/// Reads a record from `body` with the hand-written decoder `read`, which must consume it all.
#[inline]
fn read_whole_body<'a, R>(
    schema_id: SchemaId,
    body: &'a [u8],
    read: impl FnOnce(&mut BodyReader<'a>) -> Result<R, BodyError>,
) -> Result<R, CodecError> {
    let mut reader = BodyReader::new(body);
    let record = read(&mut reader).map_err(|err| malformed(schema_id, err))?;
    reader.finish().map_err(|err| malformed(schema_id, err))?;
    Ok(record)
}

fn malformed(schema_id: SchemaId, err: BodyError) -> CodecError {
    CodecError::Malformed {
        schema_id,
        offset: HEADER_LEN + err.offset,
        reason: err.reason,
    }
}

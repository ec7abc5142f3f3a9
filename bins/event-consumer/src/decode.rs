//! Decoding values with writer schemas fetched from the registry by the id in each record.

use anyhow::{Context, Result};
use avro_codec::{
    CodecError, Decoder, InputDecoder, OutputDecoder, ProcessorToConsumer, ProducerToProcessor,
    WireRecord,
};
use schema_registry::{CachedRegistry, HttpSchemaRegistry, RegistryClientConfig};
use std::time::Duration;

/// The decoders of both records, sharing one cached registry client.
#[derive(Debug)]
pub(crate) struct Decoders {
    registry: CachedRegistry<HttpSchemaRegistry>,
    registry_url: String,
    output: OutputDecoder,
    input: InputDecoder,
}

impl Decoders {
    pub(crate) fn new(registry_url: &str, timeout: Duration) -> Result<Self> {
        let registry = HttpSchemaRegistry::new(
            RegistryClientConfig::new(registry_url)
                .with_timeout(timeout)
                .with_max_retries(2),
        )
        .with_context(|| format!("cannot create the schema registry client for {registry_url}"))?;
        Ok(Self {
            registry: CachedRegistry::new(registry),
            registry_url: registry_url.to_owned(),
            output: OutputDecoder::new(),
            input: InputDecoder::new(),
        })
    }

    /// Decodes an output record.
    ///
    /// The outer error means the registry cannot be used (stop); the inner one that this
    /// value cannot be read (report it and go on).
    pub(crate) async fn output(
        &self,
        value: &[u8],
    ) -> Result<Result<ProcessorToConsumer, CodecError>> {
        self.decode(&self.output, value).await
    }

    /// Decodes a dead letter's value as the input record it was, when it is one.
    pub(crate) async fn input(
        &self,
        value: &[u8],
    ) -> Result<Result<ProducerToProcessor, CodecError>> {
        self.decode(&self.input, value).await
    }

    async fn decode<T: WireRecord>(
        &self,
        decoder: &Decoder<T>,
        value: &[u8],
    ) -> Result<Result<T, CodecError>> {
        let schema_id = match decoder.decode(value) {
            Err(CodecError::UnknownSchemaId { schema_id }) => schema_id,
            decoded => return Ok(decoded),
        };
        match decoder.load(schema_id, &self.registry).await {
            Ok(()) => Ok(decoder.decode(value)),
            Err(error) if error.is_poison() => Ok(Err(error)),
            Err(error) => Err(error).with_context(|| {
                format!(
                    "cannot load writer schema {schema_id} from the schema registry at {}; check --schema-registry-url and that it is up",
                    self.registry_url
                )
            }),
        }
    }
}

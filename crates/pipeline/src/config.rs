//! Settings of one pipeline run.

use offset_tracker::CommitPolicy;
use std::sync::Arc;
use std::time::Duration;

/// Bytes an output record may need beyond its input value, which
/// [`PipelineConfig::max_record_bytes`] must leave free below the producer's `message.max.bytes`
/// (librdkafka refuses a larger record outright, and the pipeline would retry it forever).
///
/// A dead-letter copy carries the input's key and value plus its headers: under 1.5 KiB with
/// `dlq.error` capped at [`ERROR_MAX_BYTES`](crate::dead_letter_headers::ERROR_MAX_BYTES) and a
/// topic name of at most 249 bytes, plus the processor id. A routed record carries the key and
/// a value at most the input's plus the processor id and a timestamp. librdkafka adds about
/// 40 bytes of framing to either. 16 KiB leaves the key and the processor id together about
/// 14 KiB.
pub const RECORD_HEADROOM_BYTES: usize = 16 * 1024;

/// How the pipeline behaves; every field has a production default (see [`PipelineConfig::new`]).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Written into every output record (`processor_service_id`) and DLQ header.
    pub processor_id: String,
    /// Where poison events go, with their original bytes.
    pub dead_letter_topic: Arc<str>,
    /// Most input records tracked but not yet complete; the source is not read past it, so memory
    /// stays flat when outputs are slow.
    pub max_in_flight: usize,
    /// Input values larger than this are dead-lettered as `too-large` instead of routed. With
    /// [`RECORD_HEADROOM_BYTES`] it must fit in the producer's `message.max.bytes`; the default
    /// is librdkafka's default `message.max.bytes` (1 000 000) minus that headroom: 983 616.
    pub max_record_bytes: usize,
    /// When to commit: after N completions or T elapsed with progress.
    pub commit_policy: CommitPolicy,
    /// Backoff for failed produce attempts.
    pub retry: RetryPolicy,
    /// How long a revoke or a shutdown waits for in-flight records before giving up on them.
    pub drain_timeout: Duration,
    /// How long a record whose schema id the registry does not know is held back (the id asked
    /// for again with backoff, as in a registry outage) before it is dead-lettered: a lagging
    /// registry replica may not know yet an id another one gave out. After that the id counts
    /// as unknown, without asking, for as long again, then is asked for anew. Zero: dead-letter
    /// at once and remember the id as unknown until restart.
    pub not_found_retry: Duration,
}

impl PipelineConfig {
    /// Defaults for everything but the two names a deployment must choose.
    pub fn new(processor_id: impl Into<String>, dead_letter_topic: impl Into<Arc<str>>) -> Self {
        Self {
            processor_id: processor_id.into(),
            dead_letter_topic: dead_letter_topic.into(),
            max_in_flight: 10_000,
            max_record_bytes: kafka_adapters::LIBRDKAFKA_MESSAGE_MAX_BYTES - RECORD_HEADROOM_BYTES,
            commit_policy: CommitPolicy {
                max_completions: 10_000,
                max_interval: Duration::from_secs(1),
            },
            retry: RetryPolicy::default(),
            drain_timeout: Duration::from_secs(20),
            not_found_retry: Duration::from_secs(5),
        }
    }
}

/// Exponential backoff for produce retries.
///
/// After `budget` failed attempts a record counts as stuck (the pipeline reports unhealthy) but it
/// is still retried every `max_backoff`: it is never skipped, and its input offset is never
/// committed until it is delivered.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts.
    pub max_backoff: Duration,
    /// Failed attempts after which a record counts as stuck.
    pub budget: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            budget: 5,
        }
    }
}

impl RetryPolicy {
    /// Wait before attempt number `failures + 1`.
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

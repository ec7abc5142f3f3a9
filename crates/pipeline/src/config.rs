//! Settings of one pipeline run.

use offset_tracker::CommitPolicy;
use std::sync::Arc;
use std::time::Duration;

/// Bytes an output record may need beyond its input record (key, headers and value, as
/// [`record_bytes`] counts them), which [`PipelineConfig::max_record_bytes`] must leave free below
/// the producer's `message.max.bytes` (librdkafka refuses a larger record outright).
///
/// A dead-letter copy carries the input's key, value and headers plus its `dlq.*` headers:
/// under 2 KiB with `dlq.error` capped at
/// [`ERROR_MAX_BYTES`](crate::dead_letter_headers::ERROR_MAX_BYTES) and topic names of at most
/// 249 bytes, plus the processor id. A routed record carries the key and headers and a value at
/// most the input's plus the processor id and a timestamp. librdkafka adds about 40 bytes of
/// framing to either. 16 KiB leaves the processor id about 14 KiB.
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
    /// Input records larger than this, key, headers and value together (see [`record_bytes`]),
    /// are dead-lettered as `too-large` instead of routed. With [`RECORD_HEADROOM_BYTES`] it
    /// must fit in the producer's `message.max.bytes`; the default is librdkafka's default
    /// `message.max.bytes` (1 000 000) minus that headroom: 983 616.
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
            max_record_bytes: ports::LIBRDKAFKA_MESSAGE_MAX_BYTES - RECORD_HEADROOM_BYTES,
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

/// The size of a record as the `max_record_bytes` limit counts it: key, value, and each header's
/// name and value with their length prefixes (as librdkafka counts them against
/// `message.max.bytes`, without the fixed framing, which [`RECORD_HEADROOM_BYTES`] covers).
pub fn record_bytes(key: Option<&[u8]>, headers: &[(String, Vec<u8>)], value_len: usize) -> usize {
    headers.iter().fold(
        key.map_or(0, <[u8]>::len) + value_len,
        |size, (name, value)| {
            size + varint_len(name.len()) + name.len() + varint_len(value.len()) + value.len()
        },
    )
}

/// Bytes of the zig-zag varint Kafka writes a header length with.
fn varint_len(len: usize) -> usize {
    let mut zigzag = (len as u64) << 1;
    let mut bytes = 1;
    while zigzag >= 0x80 {
        zigzag >>= 7;
        bytes += 1;
    }
    bytes
}

/// Exponential backoff for produce retries, with jitter.
///
/// After `budget` failed attempts a record counts as stuck (the pipeline reports unhealthy) but it
/// is still retried every `max_backoff` or so: it is never skipped, and its input offset is never
/// committed until it is delivered. Only transient errors are retried; a record the broker
/// refuses for good is dead-lettered instead (see the pipeline's documentation).
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
    /// Wait before attempt number `failures + 1`, without jitter: the upper bound of
    /// [`jittered_backoff`](Self::jittered_backoff).
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// Wait before attempt number `failures + 1`: drawn uniformly between half of
    /// [`backoff`](Self::backoff) and all of it ("equal jitter"), so that N instances that
    /// failed together (a broker restart) do not all retry in the same instant, while the wait
    /// still grows exponentially.
    pub fn jittered_backoff(&self, failures: u32) -> Duration {
        let full = self.backoff(failures);
        let half = full / 2;
        let spread = u64::try_from((full - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::random_range(0..=spread))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittered_backoff_stays_between_half_and_all_of_the_backoff_and_varies() {
        let policy = RetryPolicy::default();
        for failures in [1, 2, 3, 10, 40] {
            let full = policy.backoff(failures);
            let waits: Vec<Duration> = (0..64).map(|_| policy.jittered_backoff(failures)).collect();
            assert!(
                waits.iter().all(|wait| *wait >= full / 2 && *wait <= full),
                "{failures}: {waits:?}"
            );
            assert!(
                waits.iter().any(|wait| *wait != waits[0]),
                "{failures}: no jitter in {waits:?}"
            );
        }
    }

    #[test]
    fn record_bytes_counts_key_value_and_headers_with_their_length_prefixes() {
        assert_eq!(record_bytes(None, &[], 10), 10);
        assert_eq!(record_bytes(Some(b"key"), &[], 10), 13);
        let headers = vec![
            ("h".to_owned(), vec![0; 3]),
            ("long".to_owned(), vec![0; 100]),
        ];
        // 1+1+1+3 for the first header; 1+4+2+100 for the second (100 needs a 2-byte varint).
        assert_eq!(record_bytes(Some(b"key"), &headers, 10), 13 + 6 + 107);
    }
}

//! Settings of one pipeline run.

use offset_tracker::CommitPolicy;
use std::sync::Arc;
use std::time::Duration;

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
    /// Input values larger than this are dead-lettered as `too-large` instead of routed.
    pub max_record_bytes: usize,
    /// When to commit: after N completions or T elapsed with progress.
    pub commit_policy: CommitPolicy,
    /// Backoff for failed produce attempts.
    pub retry: RetryPolicy,
    /// How long a revoke or a shutdown waits for in-flight records before giving up on them.
    pub drain_timeout: Duration,
}

impl PipelineConfig {
    /// Defaults for everything but the two names a deployment must choose.
    pub fn new(processor_id: impl Into<String>, dead_letter_topic: impl Into<Arc<str>>) -> Self {
        Self {
            processor_id: processor_id.into(),
            dead_letter_topic: dead_letter_topic.into(),
            max_in_flight: 10_000,
            max_record_bytes: 1024 * 1024,
            commit_policy: CommitPolicy {
                max_completions: 10_000,
                max_interval: Duration::from_secs(1),
            },
            retry: RetryPolicy::default(),
            drain_timeout: Duration::from_secs(20),
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

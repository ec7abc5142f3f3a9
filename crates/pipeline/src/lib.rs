#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod authentication;
mod config;
mod counts;
mod dead_letter;
mod in_flight;
mod pipeline;
mod planner;
mod refusals;
mod retry_queue;
mod routing;
mod stats;

pub use authentication::{AuthenticationMode, SigningClock, TenantAuthentication};
pub use config::{PipelineConfig, RECORD_HEADROOM_BYTES, RetryPolicy, record_bytes};
pub use dead_letter::value_sha256;
pub use pipeline::{PipelineParts, RunSummary, run};
/// The `dlq.*` header names (defined in router-core, the owner of the dead-letter vocabulary).
pub use router_core::dead_letter_headers;
pub use routing::RoutingSnapshot;
pub use stats::{LATENCY_BUCKETS_MS, LatencyHistogram, PipelineStats, TopicCounters};

/// Wall-clock time, injected so tests control output timestamps.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as i64)
            .unwrap_or_default()
    }
}

/// Why the pipeline could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The output schema could not be found or registered for a subject.
    #[error("cannot resolve the output schema for subject `{subject}`: {source}")]
    OutputSchema {
        /// The subject.
        subject: String,
        /// What the registry said.
        #[source]
        source: avro_codec::RegistryError,
    },
    /// The record source failed.
    #[error("the input consumer failed: {0}")]
    Source(#[source] ports::AdapterError),
    /// Exactly-once mode: the transactional producer failed for good (typically fenced: a newer
    /// instance with the same `transactional.id` took over). Nothing of the open transaction is
    /// visible to `read_committed` readers; a restarted process resumes from the last commit.
    #[error(
        "the transactional producer cannot go on: {0}; stopping (a restart resumes from the last committed transaction)"
    )]
    Transaction(#[source] ports::AdapterError),
    /// The offset tracker refused a record (e.g. an offset delivered again out of order after a
    /// rebalance raced a rewind). Routing it could let a commit pass a record that is not
    /// done, so the pipeline drains, commits what is complete and stops with this error; a
    /// restarted process reads the rest again from the last commit.
    #[error(
        "the offset tracker refused a record: {0}; stopped after committing what was complete (a restart reads the rest again)"
    )]
    Tracking(#[source] offset_tracker::TrackerError),
}

impl PipelineError {
    /// Whether the error is a fatal transaction error (exactly-once mode), for which the
    /// binary exits with its own code so an orchestrator restarts it.
    pub fn is_fatal_transaction(&self) -> bool {
        matches!(self, Self::Transaction(_))
    }
}

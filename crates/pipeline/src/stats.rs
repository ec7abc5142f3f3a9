//! Counters the pipeline keeps while it runs, shared with whoever reports them (logs, metrics, probes).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Dead-letter reason codes, in the order of [`PipelineStats::dead_lettered`].
pub const DEAD_LETTER_CODES: [&str; 6] = [
    "unknown-destination",
    "unauthorized",
    "undecodable",
    "schema-mismatch",
    "too-large",
    "missing-value",
];

/// Live figures of one pipeline; cheap to update from the hot path (relaxed atomics).
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Input records read from the source.
    pub consumed: AtomicU64,
    /// Output records acknowledged by the broker.
    pub routed: AtomicU64,
    /// Dead-letter records acknowledged, per reason (index as in [`DEAD_LETTER_CODES`]).
    pub dead_lettered: [AtomicU64; DEAD_LETTER_CODES.len()],
    /// Produce attempts that failed and were scheduled again.
    pub produce_retries: AtomicU64,
    /// Records currently past their retry budget (still retried, never skipped).
    pub stuck_records: AtomicI64,
    /// Successful offset commits.
    pub commits: AtomicU64,
    /// Failed offset commits (retried with the next commit).
    pub commit_failures: AtomicU64,
    /// Input records tracked but not complete.
    pub in_flight: AtomicI64,
    /// Partitions currently assigned to this pipeline.
    pub assigned_partitions: AtomicI64,
    /// Milliseconds since the Unix epoch when the main loop last turned (liveness).
    pub last_heartbeat_ms: AtomicI64,
    /// Schema registry failures that held the pipeline back (transient; retried).
    pub registry_failures: AtomicU64,
    /// Event timestamp → output acknowledged, for routed records.
    pub end_to_end_latency: LatencyHistogram,
}

/// Upper bounds (milliseconds) of the latency buckets; the last bucket is everything above.
pub const LATENCY_BUCKETS_MS: [u64; 14] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 60_000,
];

/// A fixed-bucket latency histogram updated with relaxed atomics (no lock on the hot path).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Non-cumulative counts per bucket of [`LATENCY_BUCKETS_MS`], plus one overflow bucket.
    pub buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    /// Sum of all observations, milliseconds.
    pub sum_ms: AtomicU64,
    /// Number of observations.
    pub count: AtomicU64,
}

impl LatencyHistogram {
    /// Records one observation; negative values (clock skew between hosts) count as 0.
    pub fn observe_ms(&self, latency_ms: i64) {
        let latency = u64::try_from(latency_ms).unwrap_or(0);
        let index = LATENCY_BUCKETS_MS
            .iter()
            .position(|bound| latency <= *bound)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.buckets[index].fetch_add(1, Relaxed);
        self.sum_ms.fetch_add(latency, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }
}

impl PipelineStats {
    /// Counts one dead-letter record for `code` (unknown codes are counted as `undecodable`).
    pub fn count_dead_letter(&self, code: &str) {
        let index = DEAD_LETTER_CODES
            .iter()
            .position(|known| *known == code)
            .unwrap_or(2);
        self.dead_lettered[index].fetch_add(1, Relaxed);
    }

    /// Dead-letter records acknowledged for `code`.
    pub fn dead_lettered_for(&self, code: &str) -> u64 {
        DEAD_LETTER_CODES
            .iter()
            .position(|known| *known == code)
            .map_or(0, |index| self.dead_lettered[index].load(Relaxed))
    }

    /// All dead-letter records acknowledged.
    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered
            .iter()
            .map(|count| count.load(Relaxed))
            .sum()
    }
}

//! Counters the pipeline keeps while it runs, shared with whoever reports them (logs, metrics, probes).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use router_core::DeadLetterCode;

/// Live figures of one pipeline; cheap to update from the hot path (relaxed atomics).
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Input records read from the source.
    pub consumed: AtomicU64,
    /// Output records acknowledged by the broker.
    pub routed: AtomicU64,
    /// Output records acknowledged by the broker, per output topic.
    pub routed_by_topic: TopicCounters,
    /// Dead-letter records acknowledged, per reason ([`DeadLetterCode::index`]); read with
    /// [`dead_lettered_for`](Self::dead_lettered_for).
    pub dead_lettered: [AtomicU64; DeadLetterCode::ALL.len()],
    /// Produce attempts that failed and were scheduled again.
    pub produce_retries: AtomicU64,
    /// Produce attempts that failed with an error the broker will not fix by itself (missing
    /// topic, authorization, record too large, ...). A routed record refused so is replaced by a
    /// dead-letter copy of its input (`refused`), a dead-letter copy too large by its digest;
    /// anything else is retried (and counted in `produce_retries` too).
    pub produce_permanent_failures: AtomicU64,
    /// Records currently past their retry budget (still retried, never skipped).
    pub stuck_records: AtomicI64,
    /// Successful offset commits.
    pub commits: AtomicU64,
    /// Failed offset commits (retried with the next commit).
    pub commit_failures: AtomicU64,
    /// How long offset commits took to be answered, successful or not.
    pub commit_latency: LatencyHistogram,
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
    /// Fingerprint (`router_core::Router::version`) of the routing table used for records decided
    /// from now on.
    pub routing_version: AtomicU64,
    /// Transactions committed (exactly-once mode; also counted in `commits`).
    pub transactions_committed: AtomicU64,
    /// Transactions aborted (exactly-once mode): their records are read and routed again.
    pub transactions_aborted: AtomicU64,
    /// Events whose tenant signature did not verify, per `tenant_auth::AuthFailure::kind`
    /// (with `authentication.mode` `observe` they were routed anyway, with `hmac`
    /// dead-lettered as `unauthenticated`).
    pub authentication_failures: TopicCounters,
}

/// Counters keyed by a name (a topic, a failure kind). Finding or adding a counter takes a lock, so the pipeline does
/// it when it installs a routing table, and keeps the `Arc` handles for its hot path.
#[derive(Debug, Default)]
pub struct TopicCounters {
    counters: Mutex<Vec<(Arc<str>, Arc<AtomicU64>)>>,
}

impl TopicCounters {
    /// The counter of `topic`, created at zero on first use. Takes a lock: not for the hot path.
    pub fn counter(&self, topic: &str) -> Arc<AtomicU64> {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, counter)) = counters.iter().find(|(name, _)| **name == *topic) {
            return Arc::clone(counter);
        }
        let counter = Arc::new(AtomicU64::new(0));
        counters.push((Arc::from(topic), Arc::clone(&counter)));
        counter
    }

    /// Every topic seen so far with its count, sorted by topic. Topics dropped from the routing
    /// table keep their final count, so the series stays monotonic.
    pub fn snapshot(&self) -> Vec<(Arc<str>, u64)> {
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut snapshot: Vec<_> = counters
            .iter()
            .map(|(topic, counter)| (Arc::clone(topic), counter.load(Relaxed)))
            .collect();
        snapshot.sort();
        snapshot
    }

    /// The count of `topic`, 0 when it was never counted.
    pub fn get(&self, topic: &str) -> u64 {
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        counters
            .iter()
            .find(|(name, _)| **name == *topic)
            .map_or(0, |(_, counter)| counter.load(Relaxed))
    }
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
        self.buckets[bucket_of(latency)].fetch_add(1, Relaxed);
        self.sum_ms.fetch_add(latency, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }
}

fn bucket_of(latency_ms: u64) -> usize {
    LATENCY_BUCKETS_MS
        .iter()
        .position(|bound| latency_ms <= *bound)
        .unwrap_or(LATENCY_BUCKETS_MS.len())
}

/// Observations kept in plain integers by their one writer and added to a shared
/// [`LatencyHistogram`] now and then: an atomic read-modify-write costs tens of cycles, three
/// per observation, where this costs three additions.
#[derive(Debug, Default)]
pub(crate) struct UnpublishedLatency {
    buckets: [u64; LATENCY_BUCKETS_MS.len() + 1],
    sum_ms: u64,
    count: u64,
}

impl UnpublishedLatency {
    /// As [`LatencyHistogram::observe_ms`].
    pub(crate) fn observe_ms(&mut self, latency_ms: i64) {
        let latency = u64::try_from(latency_ms).unwrap_or(0);
        self.buckets[bucket_of(latency)] += 1;
        self.sum_ms += latency;
        self.count += 1;
    }

    /// Adds what was observed since the last call to `shared`.
    pub(crate) fn publish(&mut self, shared: &LatencyHistogram) {
        if self.count == 0 {
            return;
        }
        for (unpublished, bucket) in self.buckets.iter_mut().zip(&shared.buckets) {
            if *unpublished > 0 {
                bucket.fetch_add(std::mem::take(unpublished), Relaxed);
            }
        }
        shared
            .sum_ms
            .fetch_add(std::mem::take(&mut self.sum_ms), Relaxed);
        shared
            .count
            .fetch_add(std::mem::take(&mut self.count), Relaxed);
    }
}

impl PipelineStats {
    /// Counts one dead-letter record for `code`.
    pub fn count_dead_letter(&self, code: DeadLetterCode) {
        self.dead_lettered[code.index()].fetch_add(1, Relaxed);
    }

    /// Dead-letter records acknowledged for `code`.
    pub fn dead_lettered_for(&self, code: DeadLetterCode) -> u64 {
        self.dead_lettered[code.index()].load(Relaxed)
    }

    /// All dead-letter records acknowledged.
    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered
            .iter()
            .map(|count| count.load(Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_counters_are_shared_per_topic_and_listed_sorted() {
        let counters = TopicCounters::default();
        let finance = counters.counter("processor.to.finance");
        counters.counter("processor.to.audit").fetch_add(2, Relaxed);
        finance.fetch_add(1, Relaxed);
        counters
            .counter("processor.to.finance")
            .fetch_add(1, Relaxed);
        assert_eq!(counters.get("processor.to.finance"), 2);
        assert_eq!(counters.get("never.seen"), 0);
        let listed: Vec<(String, u64)> = counters
            .snapshot()
            .into_iter()
            .map(|(topic, count)| (topic.to_string(), count))
            .collect();
        assert_eq!(
            listed,
            [
                ("processor.to.audit".to_owned(), 2),
                ("processor.to.finance".to_owned(), 2)
            ]
        );
    }

    #[test]
    fn latency_lands_in_the_first_bucket_whose_bound_it_does_not_exceed() {
        let histogram = LatencyHistogram::default();
        histogram.observe_ms(-3);
        histogram.observe_ms(5);
        histogram.observe_ms(120_000);
        assert_eq!(
            histogram.buckets[0].load(Relaxed),
            1,
            "negative counts as 0"
        );
        assert_eq!(
            histogram.buckets[2].load(Relaxed),
            1,
            "5 ms in the ≤5 bucket"
        );
        assert_eq!(histogram.buckets[LATENCY_BUCKETS_MS.len()].load(Relaxed), 1);
        assert_eq!(histogram.count.load(Relaxed), 3);
        assert_eq!(histogram.sum_ms.load(Relaxed), 120_005);
    }
}

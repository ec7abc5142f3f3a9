//! Acknowledgements counted in plain integers by the loop and added to the shared stats once
//! per loop turn: one atomic addition per counter per turn instead of several per record.

use crate::routing::RoutingSnapshot;
use crate::stats::{PipelineStats, UnpublishedLatency};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// What was counted since the last [`publish`](Self::publish).
#[derive(Default)]
pub(crate) struct UnpublishedCounts {
    /// Every output topic's routed counter seen so far; append-only, so the index an in-flight
    /// output holds stays valid across routing reloads.
    routed_by_topic: Vec<RoutedCounter>,
    routed: u64,
    latency: UnpublishedLatency,
}

/// One output topic's routed counter in the shared stats, and what was counted for it since
/// the last publish.
struct RoutedCounter {
    topic: Arc<str>,
    shared: Arc<AtomicU64>,
    unpublished: u64,
}

impl UnpublishedCounts {
    /// Fetches the shared counters of `snapshot`'s output topics not seen before (the only
    /// place that takes the counters' lock).
    pub(crate) fn track_topics_of(&mut self, snapshot: &RoutingSnapshot, stats: &PipelineStats) {
        for topic in snapshot.output_topics() {
            if !self
                .routed_by_topic
                .iter()
                .any(|known| *known.topic == *topic)
            {
                self.routed_by_topic.push(RoutedCounter {
                    topic: Arc::from(topic),
                    shared: stats.routed_by_topic.counter(topic),
                    unpublished: 0,
                });
            }
        }
    }

    /// The index of `topic`'s routed counter, held by an output until it is acknowledged.
    pub(crate) fn counter_of(&self, topic: &str) -> Option<usize> {
        self.routed_by_topic
            .iter()
            .position(|counter| *counter.topic == *topic)
    }

    /// Counts one acknowledged routed output (and its end-to-end latency, when known).
    pub(crate) fn count_routed(&mut self, counter: Option<usize>, latency_ms: Option<i64>) {
        self.routed += 1;
        if let Some(counter) = counter.and_then(|index| self.routed_by_topic.get_mut(index)) {
            counter.unpublished += 1;
        }
        if let Some(latency_ms) = latency_ms {
            self.latency.observe_ms(latency_ms);
        }
    }

    /// Adds what was counted to the shared stats.
    pub(crate) fn publish(&mut self, stats: &PipelineStats) {
        if self.routed > 0 {
            stats
                .routed
                .fetch_add(std::mem::take(&mut self.routed), Relaxed);
        }
        for counter in &mut self.routed_by_topic {
            if counter.unpublished > 0 {
                counter
                    .shared
                    .fetch_add(std::mem::take(&mut counter.unpublished), Relaxed);
            }
        }
        self.latency.publish(&stats.end_to_end_latency);
    }
}

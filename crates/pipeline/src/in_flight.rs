//! Output records handed to the sink and not yet acknowledged, keyed by the delivery tag the sink
//! gives back. A slab: tags are reused indexes, so a report finds its output without hashing.

use kafka_adapters::DeliveryTag;
use offset_tracker::Ticket;

#[derive(Debug, Clone)]
pub(crate) struct OutputSlot {
    /// The input record this output belongs to.
    pub(crate) ticket: Ticket,
    /// `None` for a routed output; the reason code for a dead-letter copy.
    pub(crate) dead_letter_code: Option<&'static str>,
    /// Index of the per-topic counter a routed output adds to once acknowledged.
    pub(crate) routed_counter: Option<usize>,
    /// Failed attempts so far.
    pub(crate) failures: u32,
    /// The input's event timestamp, for latency figures.
    pub(crate) event_timestamp_ms: Option<i64>,
}

#[derive(Debug, Default)]
pub(crate) struct InFlightOutputs {
    slots: Vec<Option<OutputSlot>>,
    free: Vec<DeliveryTag>,
    len: usize,
}

impl InFlightOutputs {
    pub(crate) fn insert(&mut self, slot: OutputSlot) -> DeliveryTag {
        self.len += 1;
        match self.free.pop() {
            Some(tag) => {
                self.slots[tag] = Some(slot);
                tag
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        }
    }

    pub(crate) fn get_mut(&mut self, tag: DeliveryTag) -> Option<&mut OutputSlot> {
        self.slots.get_mut(tag).and_then(Option::as_mut)
    }

    pub(crate) fn remove(&mut self, tag: DeliveryTag) -> Option<OutputSlot> {
        let slot = self.slots.get_mut(tag)?.take()?;
        self.free.push(tag);
        self.len -= 1;
        Some(slot)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offset_tracker::{CommitPolicy, OffsetTracker, TopicPartition};
    use std::time::Duration;

    fn ticket() -> Ticket {
        let tp = TopicPartition {
            topic: "t".into(),
            partition: 0,
        };
        let mut tracker = OffsetTracker::new(CommitPolicy::default(), Duration::ZERO);
        tracker.assign(tp.clone());
        tracker.track(&tp, 0, 1).expect("tracked")
    }

    #[test]
    fn removed_tags_are_reused_and_stale_tags_find_nothing() {
        let mut outputs = InFlightOutputs::default();
        let slot = OutputSlot {
            ticket: ticket(),
            dead_letter_code: None,
            routed_counter: None,
            failures: 0,
            event_timestamp_ms: None,
        };
        let first = outputs.insert(slot.clone());
        let second = outputs.insert(slot.clone());
        assert_ne!(first, second);
        assert!(outputs.remove(first).is_some());
        assert!(outputs.remove(first).is_none(), "a tag is removed once");
        assert_eq!(outputs.insert(slot), first, "freed tags are reused");
        assert_eq!(outputs.len(), 2);
    }
}

//! Output records handed to the sink and not yet acknowledged, keyed by the delivery tag the sink
//! gives back, and the input values they came from. Slabs: tags are reused indexes, so a report
//! finds its output without hashing, and a steady stream allocates nothing.

use offset_tracker::Ticket;
use ports::DeliveryTag;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub(crate) struct OutputSlot {
    /// The input record this output belongs to.
    pub(crate) ticket: Ticket,
    /// `None` for a routed output; the reason code for a dead-letter copy.
    pub(crate) dead_letter_code: Option<router_core::DeadLetterCode>,
    /// Index of the per-topic counter a routed output adds to once acknowledged.
    pub(crate) routed_counter: Option<usize>,
    /// Failed attempts so far.
    pub(crate) failures: u32,
    /// The input's event timestamp, for latency figures.
    pub(crate) event_timestamp_ms: Option<i64>,
    /// Index of the routed output's input in [`InFlightInputs`] (`None` for a dead-letter copy,
    /// which carries the input's value itself).
    pub(crate) input: Option<usize>,
    /// A dead-letter copy whose value was already replaced by its digest.
    pub(crate) value_omitted: bool,
}

/// Where a routed input came from and its value, kept until its last routed output is
/// acknowledged so that an output the broker refuses can be dead-lettered with the input's
/// original bytes. The value is moved here from the consumed record, not copied.
#[derive(Debug, Clone)]
pub(crate) struct InputSlot {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) value: Vec<u8>,
    /// Routed outputs of this input not yet acknowledged or replaced by a dead-letter copy.
    pub(crate) outputs: u32,
}

pub(crate) type InFlightOutputs = Slab<OutputSlot>;
pub(crate) type InFlightInputs = Slab<InputSlot>;

impl InFlightInputs {
    /// One routed output of the input at `index` is done with it; the input is dropped with its
    /// last one.
    pub(crate) fn release(&mut self, index: usize) {
        if let Some(input) = self.get_mut(index) {
            input.outputs = input.outputs.saturating_sub(1);
            if input.outputs == 0 {
                self.remove(index);
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub(crate) fn insert(&mut self, slot: T) -> DeliveryTag {
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

    pub(crate) fn get(&self, tag: DeliveryTag) -> Option<&T> {
        self.slots.get(tag).and_then(Option::as_ref)
    }

    pub(crate) fn get_mut(&mut self, tag: DeliveryTag) -> Option<&mut T> {
        self.slots.get_mut(tag).and_then(Option::as_mut)
    }

    pub(crate) fn remove(&mut self, tag: DeliveryTag) -> Option<T> {
        let slot = self.slots.get_mut(tag)?.take()?;
        self.free.push(tag);
        self.len -= 1;
        Some(slot)
    }

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
            input: None,
            value_omitted: false,
        };
        let first = outputs.insert(slot.clone());
        let second = outputs.insert(slot.clone());
        assert_ne!(first, second);
        assert!(outputs.remove(first).is_some());
        assert!(outputs.remove(first).is_none(), "a tag is removed once");
        assert_eq!(outputs.insert(slot), first, "freed tags are reused");
        assert_eq!(outputs.len(), 2);
    }

    #[test]
    fn an_input_is_dropped_with_its_last_routed_output() {
        let mut inputs = InFlightInputs::default();
        let index = inputs.insert(InputSlot {
            topic: Arc::from("in"),
            partition: 0,
            offset: 7,
            value: b"v".to_vec(),
            outputs: 2,
        });
        inputs.release(index);
        assert_eq!(inputs.get(index).map(|input| input.outputs), Some(1));
        inputs.release(index);
        assert!(inputs.get(index).is_none());
        assert_eq!(inputs.len(), 0);
    }
}

//! Exactly-once mode: routed outputs the broker refused for good in a transaction that was then
//! aborted (librdkafka fails the commit of a transaction with a failed delivery). They are
//! remembered across the rewind, by input record and output topic, so that the replay
//! dead-letters them as `refused` instead of producing them again (which would abort again).

use std::collections::HashMap;
use std::sync::Arc;

/// At most this many refusals are remembered at once (a few MB); one more is not remembered, so
/// its output is produced again on the replay (and, refused again, aborts that transaction).
pub(crate) const MAX_REFUSALS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    output: Arc<str>,
}

/// (input topic, partition, offset, output topic) → the broker's error.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    errors: HashMap<Key, Arc<str>>,
    /// The last error remembered, shared by the next refusals with the same text.
    last_error: Option<Arc<str>>,
}

impl Refusals {
    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.errors.len()
    }

    /// Remembers that `output` refused the routed copy of input `offset` of `topic`/`partition`
    /// with `error`. False when [`MAX_REFUSALS`] are remembered already (not remembered).
    pub(crate) fn remember(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        offset: i64,
        output: &Arc<str>,
        error: &str,
    ) -> bool {
        let key = Key {
            topic: Arc::clone(topic),
            partition,
            offset,
            output: Arc::clone(output),
        };
        if self.errors.len() >= MAX_REFUSALS && !self.errors.contains_key(&key) {
            return false;
        }
        let error = match &self.last_error {
            Some(last) if **last == *error => Arc::clone(last),
            _ => {
                let error: Arc<str> = Arc::from(error);
                self.last_error = Some(Arc::clone(&error));
                error
            }
        };
        self.errors.insert(key, error);
        true
    }

    /// The error with which `output` refused the routed copy of input `offset` of
    /// `topic`/`partition`, if remembered.
    pub(crate) fn get(
        &self,
        topic: &Arc<str>,
        partition: i32,
        offset: i64,
        output: &Arc<str>,
    ) -> Option<Arc<str>> {
        if self.errors.is_empty() {
            return None;
        }
        let key = Key {
            topic: Arc::clone(topic),
            partition,
            offset,
            output: Arc::clone(output),
        };
        self.errors.get(&key).cloned()
    }

    /// Forgets the refusals of inputs of `topic`/`partition` below `position` (committed past).
    pub(crate) fn forget_below(&mut self, topic: &str, partition: i32, position: i64) {
        if self.errors.is_empty() {
            return;
        }
        self.errors.retain(|key, _| {
            !(key.partition == partition && *key.topic == *topic && key.offset < position)
        });
    }

    /// Forgets every refusal of `topic`/`partition` (the partition moved to another member).
    pub(crate) fn forget_partition(&mut self, topic: &str, partition: i32) {
        self.forget_below(topic, partition, i64::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arc(text: &str) -> Arc<str> {
        Arc::from(text)
    }

    #[test]
    fn remembers_by_input_and_output_and_forgets_what_was_committed_past() {
        let (input, out_a, out_b) = (arc("in"), arc("out-a"), arc("out-b"));
        let mut refusals = Refusals::default();
        assert!(refusals.get(&input, 0, 5, &out_a).is_none());
        assert!(refusals.remember(&input, 0, 5, &out_a, "unknown topic"));
        assert!(refusals.remember(&input, 0, 6, &out_a, "unknown topic"));
        assert!(refusals.remember(&input, 1, 5, &out_a, "unknown topic"));
        assert_eq!(
            refusals.get(&input, 0, 5, &out_a).as_deref(),
            Some("unknown topic")
        );
        assert!(
            refusals.get(&input, 0, 5, &out_b).is_none(),
            "another output"
        );
        assert!(
            refusals.get(&input, 0, 7, &out_a).is_none(),
            "another input"
        );
        refusals.forget_below("in", 0, 6);
        assert!(refusals.get(&input, 0, 5, &out_a).is_none());
        assert!(refusals.get(&input, 0, 6, &out_a).is_some());
        assert!(
            refusals.get(&input, 1, 5, &out_a).is_some(),
            "another partition"
        );
        refusals.forget_partition("in", 1);
        assert_eq!(refusals.len(), 1);
    }

    #[test]
    fn is_bounded() {
        let (input, output) = (arc("in"), arc("out"));
        let mut refusals = Refusals::default();
        for offset in 0..MAX_REFUSALS as i64 {
            assert!(refusals.remember(&input, 0, offset, &output, "refused"));
        }
        assert!(!refusals.remember(&input, 0, -1, &output, "refused"));
        assert!(
            refusals.remember(&input, 0, 0, &output, "refused"),
            "a known one is kept"
        );
        assert_eq!(refusals.len(), MAX_REFUSALS);
    }
}

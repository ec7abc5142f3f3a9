//! Outputs waiting to be sent again, soonest first.

use ports::OutboundRecord;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use tokio::time::Instant;

/// Outputs to send again once their time is due (equal times: in scheduling order).
#[derive(Default)]
pub(crate) struct RetryQueue {
    pending: BinaryHeap<Reverse<PendingRetry>>,
    scheduled: u64,
}

struct PendingRetry {
    due: Instant,
    seq: u64,
    tag: usize,
    record: OutboundRecord,
}

impl RetryQueue {
    /// Sends `record` (output `tag`) again at `due`.
    pub(crate) fn schedule(&mut self, tag: usize, record: OutboundRecord, due: Instant) {
        self.scheduled += 1;
        self.pending.push(Reverse(PendingRetry {
            due,
            seq: self.scheduled,
            tag,
            record,
        }));
    }

    /// When the next retry is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.pending.peek().map(|Reverse(retry)| retry.due)
    }

    /// The next retry due at `now`, if any.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(usize, OutboundRecord)> {
        if self.next_due()? > now {
            return None;
        }
        let Reverse(retry) = self.pending.pop()?;
        Some((retry.tag, retry.record))
    }

    /// Forgets every pending retry, giving their tags back.
    pub(crate) fn clear(&mut self) -> Vec<usize> {
        self.pending
            .drain()
            .map(|Reverse(retry)| retry.tag)
            .collect()
    }
}

impl PartialEq for PendingRetry {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for PendingRetry {}

impl PartialOrd for PendingRetry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PendingRetry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn record(topic: &str) -> OutboundRecord {
        OutboundRecord {
            topic: Arc::from(topic),
            key: None,
            payload: Vec::new(),
            headers: Vec::new(),
        }
    }

    #[test]
    fn gives_retries_back_when_due_soonest_first_and_ties_in_order() {
        let start = Instant::now();
        let mut queue = RetryQueue::default();
        queue.schedule(1, record("late"), start + Duration::from_millis(30));
        queue.schedule(2, record("early"), start + Duration::from_millis(10));
        queue.schedule(3, record("tie"), start + Duration::from_millis(10));
        assert_eq!(queue.next_due(), Some(start + Duration::from_millis(10)));
        assert!(queue.pop_due(start).is_none(), "nothing is due yet");

        let at = start + Duration::from_millis(20);
        let due: Vec<usize> =
            std::iter::from_fn(|| queue.pop_due(at).map(|(tag, _)| tag)).collect();
        assert_eq!(due, [2, 3]);
        assert_eq!(queue.clear(), [1]);
        assert_eq!(queue.next_due(), None);
    }
}

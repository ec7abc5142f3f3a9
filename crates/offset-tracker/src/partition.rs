//! One assigned partition: its tracked records and the position that is safe to commit.

use std::collections::VecDeque;

use crate::error::{Operation, TrackerError};
use crate::types::{AckOutcome, TopicPartition};

/// Outputs of one input record that are not acknowledged yet.
#[derive(Clone, Copy, Debug)]
struct Record {
    offset: i64,
    /// Outputs sent and not yet acknowledged or failed.
    pending: u32,
    /// Outputs reported failed and not yet resolved or retried.
    failed: u32,
}

impl Record {
    fn is_complete(&self) -> bool {
        self.pending == 0 && self.failed == 0
    }
}

/// State of one partition for one assignment generation.
#[derive(Debug)]
pub(crate) struct Partition {
    tp: TopicPartition,
    /// Tracked records from the oldest incomplete one to the newest tracked one, by strictly
    /// increasing offset. The front record is always incomplete: complete records are popped
    /// as soon as nothing older is incomplete, so the front is the commit position. Complete
    /// records behind an incomplete one stay, which keeps lookups a matter of arithmetic.
    records: VecDeque<Record>,
    first_tracked: Option<i64>,
    last_tracked: Option<i64>,
    last_committed: Option<i64>,
    /// Incomplete records in `records`.
    in_flight: usize,
}

impl Partition {
    pub(crate) fn new(tp: TopicPartition) -> Self {
        Self {
            tp,
            records: VecDeque::new(),
            first_tracked: None,
            last_tracked: None,
            last_committed: None,
            in_flight: 0,
        }
    }

    pub(crate) fn tp(&self) -> &TopicPartition {
        &self.tp
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub(crate) fn buffered(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn last_committed(&self) -> Option<i64> {
        self.last_committed
    }

    /// Starts tracking a record; `Completed` when it has no output.
    pub(crate) fn track(&mut self, offset: i64, outputs: u32) -> Result<AckOutcome, TrackerError> {
        // i64::MAX is excluded so that `offset + 1`, the position after it, exists.
        if !(0..i64::MAX).contains(&offset) {
            return Err(TrackerError::InvalidOffset {
                topic: self.tp.topic.clone(),
                partition: self.tp.partition,
                offset,
            });
        }
        if let Some(last_tracked) = self.last_tracked
            && offset <= last_tracked
        {
            return Err(TrackerError::OffsetNotIncreasing {
                topic: self.tp.topic.clone(),
                partition: self.tp.partition,
                offset,
                last_tracked,
            });
        }
        self.first_tracked.get_or_insert(offset);
        self.last_tracked = Some(offset);
        if outputs == 0 {
            // Behind an incomplete record it must stay findable, so that a surplus ack is told
            // apart from an offset never tracked; at the front it is simply done.
            if !self.records.is_empty() {
                self.records.push_back(Record {
                    offset,
                    pending: 0,
                    failed: 0,
                });
            }
            return Ok(AckOutcome::Completed);
        }
        self.records.push_back(Record {
            offset,
            pending: outputs,
            failed: 0,
        });
        self.in_flight += 1;
        Ok(AckOutcome::Pending)
    }

    /// Applies one per-output event to the record at `offset`. `extra` is used by
    /// `AddOutputs` only.
    pub(crate) fn update(
        &mut self,
        offset: i64,
        operation: Operation,
        extra: u32,
    ) -> Result<AckOutcome, TrackerError> {
        let index = self.locate(offset, operation)?;
        let Some(record) = self.records.get_mut(index) else {
            return Err(not_tracked(&self.tp, operation, offset));
        };
        if record.is_complete() {
            return Err(already_complete(&self.tp, operation, offset));
        }
        match operation {
            Operation::Ack | Operation::Fail => {
                if record.pending == 0 {
                    return Err(TrackerError::NoPendingOutput {
                        operation,
                        topic: self.tp.topic.clone(),
                        partition: self.tp.partition,
                        offset,
                        failed: record.failed,
                    });
                }
                record.pending -= 1;
                if operation == Operation::Fail {
                    // Cannot overflow: pending + failed never exceeds u32::MAX (see AddOutputs).
                    record.failed += 1;
                }
            }
            Operation::Resolve | Operation::Retry => {
                if record.failed == 0 {
                    return Err(TrackerError::NoFailedOutput {
                        operation,
                        topic: self.tp.topic.clone(),
                        partition: self.tp.partition,
                        offset,
                        pending: record.pending,
                    });
                }
                record.failed -= 1;
                if operation == Operation::Retry {
                    record.pending += 1;
                }
            }
            Operation::AddOutputs => {
                let unresolved = record.pending + record.failed;
                let Some(total) = unresolved.checked_add(extra) else {
                    return Err(TrackerError::TooManyOutputs {
                        topic: self.tp.topic.clone(),
                        partition: self.tp.partition,
                        offset,
                        unresolved,
                        extra,
                    });
                };
                record.pending = total - record.failed;
            }
        }
        if !record.is_complete() {
            return Ok(AckOutcome::Pending);
        }
        self.in_flight -= 1;
        if index == 0 {
            while self.records.front().is_some_and(Record::is_complete) {
                self.records.pop_front();
            }
        }
        Ok(AckOutcome::Completed)
    }

    /// Index of the record at `offset` in `records`.
    fn locate(&self, offset: i64, operation: Operation) -> Result<usize, TrackerError> {
        let was_tracked = match (self.first_tracked, self.last_tracked) {
            (Some(first), Some(last)) => first <= offset && offset <= last,
            _ => false,
        };
        if !was_tracked {
            return Err(not_tracked(&self.tp, operation, offset));
        }
        let Some(front) = self.records.front() else {
            return Err(already_complete(&self.tp, operation, offset));
        };
        if offset < front.offset {
            return Err(already_complete(&self.tp, operation, offset));
        }
        // Without gaps in the offsets a record sits at its distance from the front; gaps
        // (compaction, transaction markers) fall back to a binary search.
        if let Ok(guess) = usize::try_from(offset - front.offset)
            && let Some(record) = self.records.get(guess)
            && record.offset == offset
        {
            return Ok(guess);
        }
        self.records
            .binary_search_by_key(&offset, |record| record.offset)
            .map_err(|_| not_tracked(&self.tp, operation, offset))
    }

    /// The position that is safe to commit: the oldest incomplete offset, or the offset after
    /// the last tracked one when nothing is incomplete. `None` before anything was tracked.
    pub(crate) fn safe_position(&self) -> Option<i64> {
        match self.records.front() {
            Some(oldest_incomplete) => Some(oldest_incomplete.offset),
            None => self.last_tracked.map(|last| last + 1),
        }
    }

    /// The safe position, if it is past both the last committed position and the first
    /// tracked offset, i.e. if committing it records progress made in this assignment.
    pub(crate) fn advanced_position(&self) -> Option<i64> {
        let position = self.safe_position()?;
        let first_tracked = self.first_tracked?;
        let floor = self
            .last_committed
            .map_or(first_tracked, |committed| committed.max(first_tracked));
        (position > floor).then_some(position)
    }

    /// Where reading must start again to undo everything tracked since the last commit (the
    /// last committed position, or the first tracked offset before any commit); `None` when
    /// nothing was tracked since then.
    pub(crate) fn rewind_position(&self) -> Option<i64> {
        let first_tracked = self.first_tracked?;
        let last_tracked = self.last_tracked?;
        let floor = self
            .last_committed
            .map_or(first_tracked, |committed| committed.max(first_tracked));
        (last_tracked >= floor).then_some(floor)
    }

    pub(crate) fn mark_committed(&mut self, offset: i64) {
        if self
            .last_committed
            .is_none_or(|committed| offset > committed)
        {
            self.last_committed = Some(offset);
        }
    }
}

fn not_tracked(tp: &TopicPartition, operation: Operation, offset: i64) -> TrackerError {
    TrackerError::NotTracked {
        operation,
        topic: tp.topic.clone(),
        partition: tp.partition,
        offset,
    }
}

fn already_complete(tp: &TopicPartition, operation: Operation, offset: i64) -> TrackerError {
    TrackerError::AlreadyComplete {
        operation,
        topic: tp.topic.clone(),
        partition: tp.partition,
        offset,
    }
}

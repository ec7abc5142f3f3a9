//! The tracker: assigned partitions by slot, tickets, and the commit policy.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::{Operation, TrackerError};
use crate::partition::Partition;
use crate::types::{AckOutcome, Commit, CommitPolicy, CommitPosition, Ticket, TopicPartition};

/// A slot holds one partition for one assignment; it is reused after a revoke or loss, under
/// a new generation so that tickets of the earlier assignment stay recognisable.
#[derive(Debug)]
enum Slot {
    Vacant,
    Assigned {
        generation: u64,
        partition: Partition,
    },
}

/// Turns out-of-order output acknowledgements into safe Kafka commit positions.
///
/// See the [crate documentation](crate) for the guarantee and its limits.
#[derive(Debug)]
pub struct OffsetTracker {
    policy: CommitPolicy,
    slots: Vec<Slot>,
    vacant_slots: Vec<u32>,
    slot_of: HashMap<TopicPartition, u32>,
    /// Generation given to the next assignment; every assignment gets a new one, so a
    /// generation names one assignment of one partition in this tracker.
    next_generation: u64,
    /// Slot of the last `track`, checked before hashing: consumers deliver runs of records of
    /// the same partition.
    last_tracked_slot: u32,
    total_in_flight: usize,
    completions_since_commit: u64,
    last_commit_at: Duration,
}

impl OffsetTracker {
    /// An empty tracker. `now` is the caller's monotonic time since an arbitrary origin (for
    /// instance the time elapsed since the process started, read from a monotonic clock);
    /// every time argument must use the same origin.
    /// The commit interval counts from `now`.
    pub fn new(policy: CommitPolicy, now: Duration) -> Self {
        Self {
            policy,
            slots: Vec::new(),
            vacant_slots: Vec::new(),
            slot_of: HashMap::new(),
            next_generation: 0,
            last_tracked_slot: 0,
            total_in_flight: 0,
            completions_since_commit: 0,
            last_commit_at: now,
        }
    }

    /// The commit policy.
    pub fn policy(&self) -> CommitPolicy {
        self.policy
    }

    /// Starts tracking a partition the consumer was given. Does nothing if it is already
    /// assigned (its state is kept).
    ///
    /// The first offset tracked afterwards is the base: with no commit known, nothing is
    /// committable for the partition until a position past that first offset is safe, i.e.
    /// until the first tracked record (and everything tracked up to the position) completed.
    pub fn assign(&mut self, tp: TopicPartition) {
        if self.slot_of.contains_key(&tp) {
            return;
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let assigned = Slot::Assigned {
            generation,
            partition: Partition::new(tp.clone()),
        };
        let index = match self.vacant_slots.pop() {
            Some(index) => {
                if let Some(slot) = self.slots.get_mut(index as usize) {
                    *slot = assigned;
                }
                index
            }
            None => {
                self.slots.push(assigned);
                // More than u32::MAX partitions would exhaust memory long before this.
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.slot_of.insert(tp, index);
    }

    /// Starts tracking an input record of an assigned partition that produces `outputs`
    /// output records (0 for a filtered record, which completes at once). Offsets must be
    /// tracked in strictly increasing order per partition, gaps allowed.
    ///
    /// Track every consumed record, before its outputs are sent: a record that is consumed
    /// but not tracked is invisible to the tracker and can be committed past.
    pub fn track(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        outputs: u32,
    ) -> Result<Ticket, TrackerError> {
        let Some(index) = self.find_slot(tp) else {
            return Err(TrackerError::NotAssigned {
                topic: tp.topic.clone(),
                partition: tp.partition,
            });
        };
        self.last_tracked_slot = index;
        let Some(Slot::Assigned {
            generation,
            partition,
        }) = self.slots.get_mut(index as usize)
        else {
            return Err(TrackerError::NotAssigned {
                topic: tp.topic.clone(),
                partition: tp.partition,
            });
        };
        let ticket = Ticket {
            slot: index,
            generation: *generation,
            offset,
        };
        match partition.track(offset, outputs)? {
            AckOutcome::Completed => self.completions_since_commit += 1,
            _ => self.total_in_flight += 1,
        }
        Ok(ticket)
    }

    /// One output of the ticket's record was acknowledged by the broker.
    pub fn ack(&mut self, ticket: Ticket) -> Result<AckOutcome, TrackerError> {
        self.update(ticket, Operation::Ack, 0)
    }

    /// One output of the ticket's record failed. The record stays incomplete, holding back
    /// its partition's commit position, until the failure is [resolved](Self::resolve) or
    /// the output [retried](Self::retry).
    pub fn fail(&mut self, ticket: Ticket) -> Result<AckOutcome, TrackerError> {
        self.update(ticket, Operation::Fail, 0)
    }

    /// A failed output was handled (a retry succeeded, or a dead-letter copy was
    /// acknowledged): it counts as acknowledged.
    pub fn resolve(&mut self, ticket: Ticket) -> Result<AckOutcome, TrackerError> {
        self.update(ticket, Operation::Resolve, 0)
    }

    /// A failed output is being sent again: it is pending once more.
    pub fn retry(&mut self, ticket: Ticket) -> Result<AckOutcome, TrackerError> {
        self.update(ticket, Operation::Retry, 0)
    }

    /// The record gets `extra` more outputs (e.g. a dead-letter copy decided after a
    /// failure). Only while the record is incomplete: once its last output is acknowledged
    /// its offset may already be committed.
    pub fn add_outputs(&mut self, ticket: Ticket, extra: u32) -> Result<AckOutcome, TrackerError> {
        self.update(ticket, Operation::AddOutputs, extra)
    }

    fn update(
        &mut self,
        ticket: Ticket,
        operation: Operation,
        extra: u32,
    ) -> Result<AckOutcome, TrackerError> {
        if ticket.generation >= self.next_generation {
            return Err(TrackerError::ForeignTicket {
                operation,
                offset: ticket.offset,
            });
        }
        let Some(slot) = self.slots.get_mut(ticket.slot as usize) else {
            return Err(TrackerError::ForeignTicket {
                operation,
                offset: ticket.offset,
            });
        };
        let partition = match slot {
            Slot::Assigned {
                generation,
                partition,
            } if *generation == ticket.generation => partition,
            _ => return Ok(AckOutcome::Stale),
        };
        let outcome = partition.update(ticket.offset, operation, extra)?;
        if outcome == AckOutcome::Completed {
            self.total_in_flight -= 1;
            self.completions_since_commit += 1;
        }
        Ok(outcome)
    }

    /// Positions that advanced past the last committed one (or, with no commit known, past
    /// the first tracked offset), ordered by partition. Each is the oldest incomplete offset
    /// of its partition, or the offset after the last tracked one when none is incomplete.
    pub fn committable(&self) -> Vec<CommitPosition> {
        let mut positions: Vec<CommitPosition> = self
            .partitions()
            .filter_map(|partition| {
                partition.advanced_position().map(|offset| CommitPosition {
                    partition: partition.tp().clone(),
                    offset,
                })
            })
            .collect();
        positions.sort_unstable();
        positions
    }

    /// A commit, when the policy says one is due (`max_completions` records completed, or
    /// `max_interval` passed, since the last commit) and some position advanced; `None`
    /// otherwise. Does not change the tracker: call [`mark_committed`](Self::mark_committed)
    /// once the broker confirmed the commit.
    pub fn due_commit(&self, now: Duration) -> Option<Commit> {
        let enough_completions = self.completions_since_commit >= self.policy.max_completions;
        let interval_passed = now.saturating_sub(self.last_commit_at) >= self.policy.max_interval;
        if !enough_completions && !interval_passed {
            return None;
        }
        let positions = self.committable();
        (!positions.is_empty()).then_some(Commit { positions })
    }

    /// Records that the broker confirmed `commit`, and restarts the policy's count and
    /// interval from `now`. Positions of partitions that are not assigned are ignored, and a
    /// partition's last committed position never moves backwards.
    pub fn mark_committed(&mut self, commit: &Commit, now: Duration) {
        for position in &commit.positions {
            if let Some(partition) = self.partition_mut(&position.partition) {
                partition.mark_committed(position.offset);
            }
        }
        self.completions_since_commit = 0;
        self.last_commit_at = self.last_commit_at.max(now);
    }

    /// Stops tracking a partition taken away by a rebalance and drops its state. Returns the
    /// position to commit before giving the partition up, if it advanced past the last
    /// committed one. Later acknowledgements of its records return [`AckOutcome::Stale`].
    pub fn revoke(&mut self, tp: &TopicPartition) -> Option<CommitPosition> {
        let partition = self.remove(tp)?;
        partition.advanced_position().map(|offset| CommitPosition {
            partition: partition.tp().clone(),
            offset,
        })
    }

    /// Forgets everything tracked in `tp` since its last commit, as if those records had never
    /// been read (exactly-once mode: the transaction that held their outputs was aborted), and
    /// returns the position to read them again from: the last committed position, or the
    /// first tracked offset before any commit. `None` (and nothing changes) when nothing was
    /// tracked since the last commit or `tp` is not assigned.
    ///
    /// The partition stays assigned under a new generation, so acknowledgements of the
    /// forgotten records are [`AckOutcome::Stale`]; its last committed position is kept.
    pub fn rewind(&mut self, tp: &TopicPartition) -> Option<CommitPosition> {
        let offset = self.partition(tp)?.rewind_position()?;
        let last_committed = self.partition(tp).and_then(Partition::last_committed);
        self.remove(tp);
        self.assign(tp.clone());
        if let (Some(committed), Some(partition)) = (last_committed, self.partition_mut(tp)) {
            partition.mark_committed(committed);
        }
        Some(CommitPosition {
            partition: tp.clone(),
            offset,
        })
    }

    /// Stops tracking a partition that was lost (its ownership already moved on, so nothing
    /// may be committed for it) and drops its state.
    pub fn lose(&mut self, tp: &TopicPartition) {
        self.remove(tp);
    }

    fn remove(&mut self, tp: &TopicPartition) -> Option<Partition> {
        let index = self.slot_of.remove(tp)?;
        let slot = self.slots.get_mut(index as usize)?;
        let Slot::Assigned { partition, .. } = std::mem::replace(slot, Slot::Vacant) else {
            return None;
        };
        self.vacant_slots.push(index);
        self.total_in_flight -= partition.in_flight();
        Some(partition)
    }

    /// Tracked records of `tp` that are not complete (0 when not assigned).
    pub fn in_flight(&self, tp: &TopicPartition) -> usize {
        self.partition(tp).map_or(0, Partition::in_flight)
    }

    /// Tracked records not complete, over all assigned partitions.
    pub fn total_in_flight(&self) -> usize {
        self.total_in_flight
    }

    /// Records of `tp` held in memory: from the oldest incomplete one to the newest tracked
    /// one, complete or not. It grows with the distance a stuck record is left behind, which
    /// `in_flight` does not show.
    pub fn buffered(&self, tp: &TopicPartition) -> usize {
        self.partition(tp).map_or(0, Partition::buffered)
    }

    /// The assigned partitions, in no particular order.
    pub fn assigned(&self) -> impl Iterator<Item = &TopicPartition> {
        self.partitions().map(Partition::tp)
    }

    /// True when `tp` is assigned.
    pub fn is_assigned(&self, tp: &TopicPartition) -> bool {
        self.slot_of.contains_key(tp)
    }

    /// The last position confirmed with [`mark_committed`](Self::mark_committed) in the
    /// current assignment of `tp`.
    pub fn last_committed(&self, tp: &TopicPartition) -> Option<i64> {
        self.partition(tp).and_then(Partition::last_committed)
    }

    /// The position that is safe to commit for `tp` now, whether or not it advanced: the
    /// oldest incomplete offset, or the offset after the last tracked one. `None` when the
    /// partition is not assigned or nothing was tracked in it yet.
    pub fn safe_position(&self, tp: &TopicPartition) -> Option<i64> {
        self.partition(tp).and_then(Partition::safe_position)
    }

    fn partitions(&self) -> impl Iterator<Item = &Partition> {
        self.slots.iter().filter_map(|slot| match slot {
            Slot::Assigned { partition, .. } => Some(partition),
            Slot::Vacant => None,
        })
    }

    fn find_slot(&self, tp: &TopicPartition) -> Option<u32> {
        if let Some(Slot::Assigned { partition, .. }) =
            self.slots.get(self.last_tracked_slot as usize)
            && partition.tp().is(tp)
        {
            return Some(self.last_tracked_slot);
        }
        self.slot_of.get(tp).copied()
    }

    fn partition(&self, tp: &TopicPartition) -> Option<&Partition> {
        let index = *self.slot_of.get(tp)?;
        match self.slots.get(index as usize)? {
            Slot::Assigned { partition, .. } => Some(partition),
            Slot::Vacant => None,
        }
    }

    fn partition_mut(&mut self, tp: &TopicPartition) -> Option<&mut Partition> {
        let index = *self.slot_of.get(tp)?;
        match self.slots.get_mut(index as usize)? {
            Slot::Assigned { partition, .. } => Some(partition),
            Slot::Vacant => None,
        }
    }
}

//! The reference model: the simplest description of what the tracker must answer, with
//! every record of the current assignment kept in a map and no optimisation at all.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest_state_machine::ReferenceStateMachine;

use crate::transitions::{self, Transition};

/// Commit policy used by the test: small, so that both triggers fire within 100 steps.
pub(crate) const MAX_COMPLETIONS: u64 = 4;
pub(crate) const MAX_INTERVAL_MS: u64 = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ModelRecord {
    pub(crate) pending: u32,
    pub(crate) failed: u32,
}

impl ModelRecord {
    pub(crate) fn is_complete(&self) -> bool {
        self.pending == 0 && self.failed == 0
    }
}

/// One assignment of one partition.
#[derive(Clone, Debug)]
pub(crate) struct ModelPartition {
    pub(crate) generation: u64,
    /// Every record tracked in this assignment, complete or not.
    pub(crate) records: BTreeMap<i64, ModelRecord>,
    /// Where the consumer starts reading: the broker's committed position at assignment.
    pub(crate) start: i64,
    pub(crate) last_committed: Option<i64>,
}

impl ModelPartition {
    pub(crate) fn first_incomplete(&self) -> Option<i64> {
        self.records
            .iter()
            .find(|(_, record)| !record.is_complete())
            .map(|(offset, _)| *offset)
    }

    /// Lowest incomplete offset, else the last tracked offset + 1.
    pub(crate) fn watermark(&self) -> Option<i64> {
        self.first_incomplete()
            .or_else(|| self.records.keys().next_back().map(|last| last + 1))
    }

    /// The watermark when it is past the first tracked offset and the last commit.
    pub(crate) fn committable(&self) -> Option<i64> {
        let watermark = self.watermark()?;
        let first = *self.records.keys().next()?;
        let floor = self.last_committed.map_or(first, |c| c.max(first));
        (watermark > floor).then_some(watermark)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.records.values().filter(|r| !r.is_complete()).count()
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct ModelTicket {
    pub(crate) partition: i32,
    pub(crate) generation: u64,
    pub(crate) offset: i64,
}

/// The tracker's refusals, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    NotAssigned,
    OffsetNotIncreasing,
    InvalidOffset,
    AlreadyComplete,
    NoPendingOutput,
    NoFailedOutput,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Pending,
    Completed,
    Stale,
}

/// What the last transition must have returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expected {
    Nothing,
    Tracked,
    Refused(Refusal),
    Outcome(Outcome),
    Revoked(Option<i64>),
    Commit(Vec<(i32, i64)>),
}

#[derive(Clone, Debug)]
pub(crate) struct Model {
    pub(crate) now_ms: u64,
    pub(crate) partitions: BTreeMap<i32, ModelPartition>,
    /// Every ticket ever issued, in order.
    pub(crate) tickets: Vec<ModelTicket>,
    /// What the group has committed per partition, across assignments.
    pub(crate) broker: BTreeMap<i32, i64>,
    pub(crate) next_generation: u64,
    pub(crate) completions_since_commit: u64,
    pub(crate) last_commit_ms: u64,
    pub(crate) expected: Expected,
}

impl Model {
    fn new() -> Self {
        Self {
            now_ms: 0,
            partitions: BTreeMap::new(),
            tickets: Vec::new(),
            broker: BTreeMap::new(),
            next_generation: 0,
            completions_since_commit: 0,
            last_commit_ms: 0,
            expected: Expected::Nothing,
        }
    }

    /// The offset a consumer would return next for `partition`.
    pub(crate) fn next_offset(&self, partition: i32) -> i64 {
        match self.partitions.get(&partition) {
            Some(p) => p
                .records
                .keys()
                .next_back()
                .map_or(p.start, |last| last + 1),
            None => self.broker.get(&partition).copied().unwrap_or(0),
        }
    }

    fn live_record(&self, ticket: &ModelTicket) -> Option<&ModelRecord> {
        let partition = self.partitions.get(&ticket.partition)?;
        if partition.generation != ticket.generation {
            return None;
        }
        partition.records.get(&ticket.offset)
    }

    fn tickets_where(&self, keep: impl Fn(&ModelRecord) -> bool) -> Vec<usize> {
        (0..self.tickets.len())
            .filter(|&i| self.live_record(&self.tickets[i]).is_some_and(&keep))
            .collect()
    }

    pub(crate) fn tickets_with_pending(&self) -> Vec<usize> {
        self.tickets_where(|r| r.pending > 0)
    }

    pub(crate) fn tickets_with_failed(&self) -> Vec<usize> {
        self.tickets_where(|r| r.failed > 0)
    }

    pub(crate) fn tickets_incomplete(&self) -> Vec<usize> {
        self.tickets_where(|r| !r.is_complete())
    }

    pub(crate) fn committable(&self) -> Vec<(i32, i64)> {
        self.partitions
            .iter()
            .filter_map(|(&p, partition)| partition.committable().map(|offset| (p, offset)))
            .collect()
    }

    pub(crate) fn due_commit(&self) -> Vec<(i32, i64)> {
        let due = self.completions_since_commit >= MAX_COMPLETIONS
            || self.now_ms - self.last_commit_ms >= MAX_INTERVAL_MS;
        if due { self.committable() } else { Vec::new() }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.partitions
            .values()
            .map(ModelPartition::in_flight)
            .sum()
    }

    fn mark_committed(&mut self, positions: &[(i32, i64)]) {
        for &(p, offset) in positions {
            if let Some(partition) = self.partitions.get_mut(&p) {
                partition.last_committed =
                    Some(partition.last_committed.map_or(offset, |c| c.max(offset)));
            }
            self.broker.insert(p, offset);
        }
        self.completions_since_commit = 0;
        self.last_commit_ms = self.now_ms;
    }

    fn apply(mut self, transition: &Transition) -> Self {
        self.expected = match *transition {
            Transition::Assign(p) => {
                if !self.partitions.contains_key(&p) {
                    let generation = self.next_generation;
                    self.next_generation += 1;
                    let start = self.broker.get(&p).copied().unwrap_or(0);
                    let partition = ModelPartition {
                        generation,
                        records: BTreeMap::new(),
                        start,
                        last_committed: None,
                    };
                    self.partitions.insert(p, partition);
                }
                Expected::Nothing
            }
            Transition::Track {
                partition,
                offset,
                outputs,
            } => self.track(partition, offset, outputs),
            Transition::Ack(i) => self.update(i, |r| {
                if r.pending == 0 {
                    return Err(Refusal::NoPendingOutput);
                }
                r.pending -= 1;
                Ok(())
            }),
            Transition::Fail(i) => self.update(i, |r| {
                if r.pending == 0 {
                    return Err(Refusal::NoPendingOutput);
                }
                r.pending -= 1;
                r.failed += 1;
                Ok(())
            }),
            Transition::Resolve(i) => self.update(i, |r| {
                if r.failed == 0 {
                    return Err(Refusal::NoFailedOutput);
                }
                r.failed -= 1;
                Ok(())
            }),
            Transition::Retry(i) => self.update(i, |r| {
                if r.failed == 0 {
                    return Err(Refusal::NoFailedOutput);
                }
                r.failed -= 1;
                r.pending += 1;
                Ok(())
            }),
            Transition::AddOutputs(i, extra) => self.update(i, |r| {
                r.pending += extra;
                Ok(())
            }),
            Transition::Revoke(p) => match self.partitions.remove(&p) {
                Some(partition) => {
                    let position = partition.committable();
                    if let Some(offset) = position {
                        self.broker.insert(p, offset);
                    }
                    Expected::Revoked(position)
                }
                None => Expected::Revoked(None),
            },
            Transition::Lose(p) => {
                self.partitions.remove(&p);
                Expected::Nothing
            }
            Transition::Tick(ms) => {
                self.now_ms += ms;
                Expected::Nothing
            }
            Transition::CommitIfDue => {
                let due = self.due_commit();
                if !due.is_empty() {
                    self.mark_committed(&due);
                }
                Expected::Commit(due)
            }
            Transition::CommitNow => {
                let positions = self.committable();
                self.mark_committed(&positions);
                Expected::Commit(positions)
            }
        };
        self
    }

    fn track(&mut self, p: i32, offset: i64, outputs: u32) -> Expected {
        let Some(partition) = self.partitions.get_mut(&p) else {
            return Expected::Refused(Refusal::NotAssigned);
        };
        if offset < 0 {
            return Expected::Refused(Refusal::InvalidOffset);
        }
        if partition
            .records
            .keys()
            .next_back()
            .is_some_and(|&last| offset <= last)
        {
            return Expected::Refused(Refusal::OffsetNotIncreasing);
        }
        partition.records.insert(
            offset,
            ModelRecord {
                pending: outputs,
                failed: 0,
            },
        );
        if outputs == 0 {
            self.completions_since_commit += 1;
        }
        self.tickets.push(ModelTicket {
            partition: p,
            generation: partition.generation,
            offset,
        });
        Expected::Tracked
    }

    /// Applies `change` to the ticket's record, with the refusals every operation shares.
    fn update(
        &mut self,
        ticket: usize,
        change: impl FnOnce(&mut ModelRecord) -> Result<(), Refusal>,
    ) -> Expected {
        let ticket = self.tickets[ticket];
        let Some(partition) = self
            .partitions
            .get_mut(&ticket.partition)
            .filter(|p| p.generation == ticket.generation)
        else {
            return Expected::Outcome(Outcome::Stale);
        };
        let Some(record) = partition.records.get_mut(&ticket.offset) else {
            unreachable!("a ticket of the current generation names a tracked record");
        };
        if record.is_complete() {
            return Expected::Refused(Refusal::AlreadyComplete);
        }
        let mut changed = *record;
        if let Err(refusal) = change(&mut changed) {
            return Expected::Refused(refusal);
        }
        *record = changed;
        if changed.is_complete() {
            self.completions_since_commit += 1;
            Expected::Outcome(Outcome::Completed)
        } else {
            Expected::Outcome(Outcome::Pending)
        }
    }
}

#[derive(Debug)]
pub(crate) struct OffsetModel;

impl ReferenceStateMachine for OffsetModel {
    type State = Model;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::new()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Transition> {
        transitions::strategy(state)
    }

    fn apply(state: Model, transition: &Transition) -> Model {
        state.apply(transition)
    }

    fn preconditions(state: &Model, transition: &Transition) -> bool {
        transitions::precondition(state, transition)
    }
}

//! Model-based test: random sequences of tracking, acknowledgements, failures, rebalances,
//! time and commits, run against the tracker and a naive reference model side by side.

mod invariants;
mod reference;
mod transitions;

use std::collections::BTreeMap;
use std::time::Duration;

use offset_tracker::{AckOutcome, Commit, CommitPolicy, OffsetTracker, Ticket, TrackerError};
use proptest::test_runner::Config;
use proptest_state_machine::{StateMachineTest, prop_state_machine};

use crate::invariants::tp;
use crate::reference::{
    Expected, MAX_COMPLETIONS, MAX_INTERVAL_MS, Model, OffsetModel, Outcome, Refusal,
};
use crate::transitions::Transition;

prop_state_machine! {
    #![proptest_config(Config {
        cases: 2_000,
        max_shrink_iters: 10_000,
        .. Config::default()
    })]

    #[test]
    fn tracker_agrees_with_the_reference_model(sequential 1..100 => TrackerUnderTest);
}

#[derive(Debug)]
struct TrackerUnderTest;

#[derive(Debug)]
struct System {
    tracker: OffsetTracker,
    /// The tracker's tickets, index for index with the model's.
    tickets: Vec<Ticket>,
    committed_seen: BTreeMap<i32, (u64, i64)>,
}

impl StateMachineTest for TrackerUnderTest {
    type SystemUnderTest = System;
    type Reference = OffsetModel;

    fn init_test(_model: &Model) -> System {
        let policy = CommitPolicy {
            max_completions: MAX_COMPLETIONS,
            max_interval: Duration::from_millis(MAX_INTERVAL_MS),
        };
        System {
            tracker: OffsetTracker::new(policy, Duration::ZERO),
            tickets: Vec::new(),
            committed_seen: BTreeMap::new(),
        }
    }

    fn apply(mut system: System, model: &Model, transition: Transition) -> System {
        let now = Duration::from_millis(model.now_ms);
        let tracker = &mut system.tracker;
        let actual = match transition {
            Transition::Assign(p) => {
                tracker.assign(tp(p));
                Expected::Nothing
            }
            Transition::Track {
                partition,
                offset,
                outputs,
            } => match tracker.track(&tp(partition), offset, outputs) {
                Ok(ticket) => {
                    assert_eq!(ticket.offset(), offset);
                    system.tickets.push(ticket);
                    Expected::Tracked
                }
                Err(error) => Expected::Refused(refusal(error)),
            },
            Transition::Ack(i) => outcome(tracker.ack(system.tickets[i])),
            Transition::Fail(i) => outcome(tracker.fail(system.tickets[i])),
            Transition::Resolve(i) => outcome(tracker.resolve(system.tickets[i])),
            Transition::Retry(i) => outcome(tracker.retry(system.tickets[i])),
            Transition::AddOutputs(i, extra) => {
                outcome(tracker.add_outputs(system.tickets[i], extra))
            }
            Transition::Revoke(p) => {
                let position = tracker.revoke(&tp(p));
                if let Some(position) = &position {
                    assert_eq!(position.partition, tp(p));
                }
                Expected::Revoked(position.map(|position| position.offset))
            }
            Transition::Lose(p) => {
                tracker.lose(&tp(p));
                Expected::Nothing
            }
            Transition::Tick(_) => Expected::Nothing,
            Transition::CommitIfDue => {
                let commit = tracker.due_commit(now);
                if let Some(commit) = &commit {
                    assert!(!commit.is_empty(), "a due commit has positions");
                    tracker.mark_committed(commit, now);
                }
                Expected::Commit(pairs(commit.unwrap_or_default()))
            }
            Transition::CommitNow => {
                let commit = Commit {
                    positions: tracker.committable(),
                };
                tracker.mark_committed(&commit, now);
                Expected::Commit(pairs(commit))
            }
        };
        assert_eq!(actual, model.expected, "result of the step");
        invariants::committed_position_is_monotonic(
            &mut system.committed_seen,
            &system.tracker,
            model,
        );
        system
    }

    fn check_invariants(system: &System, model: &Model) {
        invariants::check_all(&system.tracker, model);
    }
}

fn outcome(result: Result<AckOutcome, TrackerError>) -> Expected {
    match result {
        Ok(AckOutcome::Pending) => Expected::Outcome(Outcome::Pending),
        Ok(AckOutcome::Completed) => Expected::Outcome(Outcome::Completed),
        Ok(AckOutcome::Stale) => Expected::Outcome(Outcome::Stale),
        Err(error) => Expected::Refused(refusal(error)),
    }
}

fn refusal(error: TrackerError) -> Refusal {
    match error {
        TrackerError::NotAssigned { .. } => Refusal::NotAssigned,
        TrackerError::OffsetNotIncreasing { .. } => Refusal::OffsetNotIncreasing,
        TrackerError::InvalidOffset { .. } => Refusal::InvalidOffset,
        TrackerError::AlreadyComplete { .. } => Refusal::AlreadyComplete,
        TrackerError::NoPendingOutput { .. } => Refusal::NoPendingOutput,
        TrackerError::NoFailedOutput { .. } => Refusal::NoFailedOutput,
        other => panic!("the model never causes {other:?}"),
    }
}

fn pairs(commit: Commit) -> Vec<(i32, i64)> {
    commit
        .positions
        .into_iter()
        .map(|position| (position.partition.partition, position.offset))
        .collect()
}

//! Behaviours of the offset tracker, one test each, through the public API only.

use std::time::Duration;

use offset_tracker::{
    AckOutcome, Commit, CommitPolicy, CommitPosition, OffsetTracker, Ticket, TopicPartition,
    TrackerError,
};

const T0: Duration = Duration::ZERO;

fn tp(partition: i32) -> TopicPartition {
    TopicPartition::new("input", partition)
}

/// A tracker whose policy never makes a commit due on its own, for tests about positions.
fn tracker() -> OffsetTracker {
    OffsetTracker::new(
        CommitPolicy {
            max_completions: u64::MAX,
            max_interval: Duration::MAX,
        },
        T0,
    )
}

fn assigned(partitions: &[i32]) -> OffsetTracker {
    let mut tracker = tracker();
    for &partition in partitions {
        tracker.assign(tp(partition));
    }
    tracker
}

fn position(partition: i32, offset: i64) -> CommitPosition {
    CommitPosition {
        partition: tp(partition),
        offset,
    }
}

fn commit_all(tracker: &mut OffsetTracker, now: Duration) -> Vec<CommitPosition> {
    let commit = Commit {
        positions: tracker.committable(),
    };
    tracker.mark_committed(&commit, now);
    commit.positions
}

#[test]
fn commits_after_in_order_completion() {
    let mut tracker = assigned(&[0]);
    let a = tracker.track(&tp(0), 0, 1).unwrap();
    let b = tracker.track(&tp(0), 1, 1).unwrap();
    assert_eq!(tracker.ack(a), Ok(AckOutcome::Completed));
    assert_eq!(tracker.committable(), vec![position(0, 1)]);
    assert_eq!(tracker.ack(b), Ok(AckOutcome::Completed));
    assert_eq!(tracker.committable(), vec![position(0, 2)]);
}

#[test]
fn out_of_order_ack_waits_for_the_oldest_record() {
    let mut tracker = assigned(&[0]);
    let tickets: Vec<Ticket> = (10..15)
        .map(|offset| tracker.track(&tp(0), offset, 1).unwrap())
        .collect();
    for ticket in &tickets[1..] {
        tracker.ack(*ticket).unwrap();
    }
    assert_eq!(
        tracker.committable(),
        vec![],
        "offset 10 is still in flight"
    );
    assert_eq!(tracker.safe_position(&tp(0)), Some(10));
    tracker.ack(tickets[0]).unwrap();
    assert_eq!(tracker.committable(), vec![position(0, 15)]);
}

#[test]
fn does_not_commit_past_in_flight_fan_out() {
    let mut tracker = assigned(&[0]);
    let fan_out = tracker.track(&tp(0), 0, 3).unwrap();
    let single = tracker.track(&tp(0), 1, 1).unwrap();
    tracker.ack(single).unwrap();
    assert_eq!(tracker.ack(fan_out), Ok(AckOutcome::Pending));
    assert_eq!(tracker.ack(fan_out), Ok(AckOutcome::Pending));
    assert_eq!(
        tracker.committable(),
        vec![],
        "one of three outputs is unacknowledged"
    );
    assert_eq!(tracker.in_flight(&tp(0)), 1);
    assert_eq!(tracker.ack(fan_out), Ok(AckOutcome::Completed));
    assert_eq!(tracker.committable(), vec![position(0, 2)]);
}

#[test]
fn zero_output_record_completes_at_once() {
    let mut tracker = assigned(&[0]);
    tracker.track(&tp(0), 0, 0).unwrap();
    tracker.track(&tp(0), 1, 0).unwrap();
    assert_eq!(tracker.in_flight(&tp(0)), 0);
    assert_eq!(tracker.committable(), vec![position(0, 2)]);
}

#[test]
fn zero_output_record_behind_an_incomplete_one_waits_for_it() {
    let mut tracker = assigned(&[0]);
    let first = tracker.track(&tp(0), 0, 1).unwrap();
    let filtered = tracker.track(&tp(0), 1, 0).unwrap();
    assert_eq!(tracker.committable(), vec![]);
    assert!(matches!(
        tracker.ack(filtered),
        Err(TrackerError::AlreadyComplete { offset: 1, .. })
    ));
    tracker.ack(first).unwrap();
    assert_eq!(tracker.committable(), vec![position(0, 2)]);
}

#[test]
fn gaps_do_not_stall_the_watermark() {
    let mut tracker = assigned(&[0]);
    // Compacted offsets and transaction markers leave holes the consumer never returns.
    let offsets = [3, 4, 9, 10, 20];
    let tickets: Vec<Ticket> = offsets
        .iter()
        .map(|&offset| tracker.track(&tp(0), offset, 1).unwrap())
        .collect();
    for ticket in tickets.iter().rev() {
        tracker.ack(*ticket).unwrap();
    }
    assert_eq!(tracker.committable(), vec![position(0, 21)]);
    assert_eq!(tracker.buffered(&tp(0)), 0);
}

#[test]
fn gap_before_an_incomplete_record_commits_up_to_that_record() {
    let mut tracker = assigned(&[0]);
    let a = tracker.track(&tp(0), 3, 1).unwrap();
    let _b = tracker.track(&tp(0), 9, 1).unwrap();
    tracker.ack(a).unwrap();
    assert_eq!(tracker.committable(), vec![position(0, 9)]);
}

#[test]
fn first_commit_needs_progress_past_the_first_tracked_offset() {
    let mut tracker = assigned(&[0]);
    let first = tracker.track(&tp(0), 100, 1).unwrap();
    assert_eq!(tracker.safe_position(&tp(0)), Some(100));
    assert_eq!(
        tracker.committable(),
        vec![],
        "committing 100 records no progress"
    );
    tracker.ack(first).unwrap();
    assert_eq!(tracker.committable(), vec![position(0, 101)]);
}

#[test]
fn failed_output_blocks_commit_until_resolved() {
    let mut tracker = assigned(&[0]);
    let failing = tracker.track(&tp(0), 0, 2).unwrap();
    let later = tracker.track(&tp(0), 1, 1).unwrap();
    tracker.ack(later).unwrap();
    assert_eq!(tracker.ack(failing), Ok(AckOutcome::Pending));
    assert_eq!(tracker.fail(failing), Ok(AckOutcome::Pending));
    assert_eq!(tracker.committable(), vec![], "a failed output is not done");
    assert_eq!(tracker.in_flight(&tp(0)), 1);
    // e.g. the dead-letter copy was written and acknowledged
    assert_eq!(tracker.resolve(failing), Ok(AckOutcome::Completed));
    assert_eq!(tracker.committable(), vec![position(0, 2)]);
}

#[test]
fn retried_output_is_pending_again() {
    let mut tracker = assigned(&[0]);
    let ticket = tracker.track(&tp(0), 0, 1).unwrap();
    tracker.fail(ticket).unwrap();
    assert!(matches!(
        tracker.ack(ticket),
        Err(TrackerError::NoPendingOutput { failed: 1, .. })
    ));
    assert_eq!(tracker.retry(ticket), Ok(AckOutcome::Pending));
    assert!(matches!(
        tracker.retry(ticket),
        Err(TrackerError::NoFailedOutput { pending: 1, .. })
    ));
    assert_eq!(tracker.committable(), vec![]);
    assert_eq!(tracker.ack(ticket), Ok(AckOutcome::Completed));
    assert_eq!(tracker.committable(), vec![position(0, 1)]);
}

#[test]
fn dead_letter_copy_added_after_failure_must_be_acknowledged_too() {
    let mut tracker = assigned(&[0]);
    let ticket = tracker.track(&tp(0), 0, 1).unwrap();
    tracker.fail(ticket).unwrap();
    assert_eq!(tracker.add_outputs(ticket, 1), Ok(AckOutcome::Pending));
    assert_eq!(tracker.resolve(ticket), Ok(AckOutcome::Pending));
    assert_eq!(
        tracker.committable(),
        vec![],
        "the dead-letter copy is not acknowledged"
    );
    assert_eq!(tracker.ack(ticket), Ok(AckOutcome::Completed));
    assert_eq!(tracker.committable(), vec![position(0, 1)]);
}

#[test]
fn outputs_cannot_be_added_to_a_complete_record() {
    let mut tracker = assigned(&[0]);
    let ticket = tracker.track(&tp(0), 0, 1).unwrap();
    tracker.ack(ticket).unwrap();
    assert!(matches!(
        tracker.add_outputs(ticket, 1),
        Err(TrackerError::AlreadyComplete { offset: 0, .. })
    ));
}

#[test]
fn output_count_overflow_is_an_error() {
    let mut tracker = assigned(&[0]);
    let ticket = tracker.track(&tp(0), 0, u32::MAX - 1).unwrap();
    tracker.fail(ticket).unwrap();
    assert_eq!(tracker.add_outputs(ticket, 1), Ok(AckOutcome::Pending));
    assert!(matches!(
        tracker.add_outputs(ticket, 1),
        Err(TrackerError::TooManyOutputs {
            unresolved: u32::MAX,
            extra: 1,
            ..
        })
    ));
}

#[test]
fn more_acks_than_outputs_is_an_error() {
    let mut tracker = assigned(&[0]);
    let ticket = tracker.track(&tp(0), 0, 1).unwrap();
    let _blocker = tracker.track(&tp(0), 1, 1).unwrap();
    tracker.ack(ticket).unwrap();
    let error = tracker.ack(ticket).unwrap_err();
    assert!(matches!(
        error,
        TrackerError::AlreadyComplete {
            offset: 0,
            partition: 0,
            ..
        }
    ));
    assert_eq!(
        tracker.in_flight(&tp(0)),
        1,
        "the surplus ack changed nothing"
    );
}

#[test]
fn surplus_ack_of_a_record_completed_behind_an_incomplete_one_is_an_error() {
    let mut tracker = assigned(&[0]);
    let _blocker = tracker.track(&tp(0), 0, 1).unwrap();
    let ticket = tracker.track(&tp(0), 1, 1).unwrap();
    tracker.ack(ticket).unwrap();
    assert!(matches!(
        tracker.ack(ticket),
        Err(TrackerError::AlreadyComplete { offset: 1, .. })
    ));
}

#[test]
fn ack_of_untracked_offset_is_an_error() {
    // A ticket for an offset this tracker never tracked can only come from elsewhere.
    let mut other = assigned(&[0]);
    other.track(&tp(0), 0, 1).unwrap();
    let in_gap = other.track(&tp(0), 5, 1).unwrap();
    let beyond = other.track(&tp(0), 9, 1).unwrap();

    let mut tracker = assigned(&[0]);
    tracker.track(&tp(0), 0, 1).unwrap();
    tracker.track(&tp(0), 6, 1).unwrap();
    let error = tracker.ack(in_gap).unwrap_err();
    assert!(
        matches!(
            error,
            TrackerError::NotTracked {
                offset: 5,
                partition: 0,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(matches!(
        tracker.ack(beyond),
        Err(TrackerError::NotTracked { offset: 9, .. })
    ));
    assert_eq!(tracker.in_flight(&tp(0)), 2);
}

#[test]
fn ticket_from_another_tracker_is_an_error() {
    let mut other = assigned(&[0, 1, 2]);
    let foreign = other.track(&tp(2), 0, 1).unwrap();
    let mut tracker = assigned(&[0]);
    assert!(matches!(
        tracker.ack(foreign),
        Err(TrackerError::ForeignTicket { offset: 0, .. })
    ));
}

#[test]
fn track_on_unassigned_partition_is_an_error() {
    let mut tracker = assigned(&[0]);
    let error = tracker.track(&tp(7), 0, 1).unwrap_err();
    assert_eq!(
        error,
        TrackerError::NotAssigned {
            topic: "input".into(),
            partition: 7
        }
    );
    assert!(error.to_string().contains("input[7]"), "{error}");
}

#[test]
fn track_requires_strictly_increasing_offsets() {
    let mut tracker = assigned(&[0]);
    tracker.track(&tp(0), 5, 1).unwrap();
    for offset in [5, 4] {
        assert_eq!(
            tracker.track(&tp(0), offset, 1),
            Err(TrackerError::OffsetNotIncreasing {
                topic: "input".into(),
                partition: 0,
                offset,
                last_tracked: 5,
            })
        );
    }
    assert_eq!(tracker.in_flight(&tp(0)), 1);
}

#[test]
fn negative_and_maximal_offsets_are_rejected() {
    let mut tracker = assigned(&[0]);
    for offset in [-1, i64::MIN, i64::MAX] {
        assert!(matches!(
            tracker.track(&tp(0), offset, 1),
            Err(TrackerError::InvalidOffset { .. })
        ));
    }
    let last = tracker.track(&tp(0), i64::MAX - 1, 0).unwrap();
    assert_eq!(last.offset(), i64::MAX - 1);
    assert_eq!(tracker.committable(), vec![position(0, i64::MAX)]);
}

#[test]
fn idle_partition_does_not_creep() {
    let mut tracker = assigned(&[0]);
    let ticket = tracker.track(&tp(0), 0, 1).unwrap();
    tracker.ack(ticket).unwrap();
    assert_eq!(commit_all(&mut tracker, T0), vec![position(0, 1)]);
    for second in 1..100 {
        let now = Duration::from_secs(second);
        assert_eq!(tracker.committable(), vec![]);
        assert_eq!(tracker.due_commit(now), None, "nothing advanced at {now:?}");
        tracker.mark_committed(&Commit::default(), now);
    }
    assert_eq!(tracker.last_committed(&tp(0)), Some(1));
    assert_eq!(
        tracker.revoke(&tp(0)),
        None,
        "revoking an idle partition commits nothing"
    );
}

#[test]
fn committed_position_never_moves_backwards() {
    let mut tracker = assigned(&[0]);
    for offset in 0..5 {
        let ticket = tracker.track(&tp(0), offset, 1).unwrap();
        tracker.ack(ticket).unwrap();
    }
    commit_all(&mut tracker, T0);
    let stale = Commit {
        positions: vec![position(0, 2)],
    };
    tracker.mark_committed(&stale, T0);
    assert_eq!(tracker.last_committed(&tp(0)), Some(5));
}

#[test]
fn mark_committed_ignores_unassigned_partitions() {
    let mut tracker = assigned(&[0]);
    let commit = Commit {
        positions: vec![position(3, 10)],
    };
    tracker.mark_committed(&commit, T0);
    assert_eq!(tracker.last_committed(&tp(3)), None);
    assert!(!tracker.is_assigned(&tp(3)));
}

#[test]
fn commit_due_after_n_completions() {
    let policy = CommitPolicy {
        max_completions: 3,
        max_interval: Duration::from_secs(3600),
    };
    let mut tracker = OffsetTracker::new(policy, T0);
    tracker.assign(tp(0));
    let now = Duration::from_millis(1);
    for offset in 0..2 {
        let ticket = tracker.track(&tp(0), offset, 1).unwrap();
        tracker.ack(ticket).unwrap();
    }
    assert_eq!(tracker.due_commit(now), None, "two completions of three");
    let ticket = tracker.track(&tp(0), 2, 1).unwrap();
    tracker.ack(ticket).unwrap();
    let commit = tracker.due_commit(now).expect("three completions");
    assert_eq!(commit.positions, vec![position(0, 3)]);
    tracker.mark_committed(&commit, now);
    assert_eq!(
        tracker.due_commit(now),
        None,
        "the count restarts after a commit"
    );
}

#[test]
fn completions_that_do_not_advance_the_position_make_no_commit_due() {
    let policy = CommitPolicy {
        max_completions: 2,
        max_interval: Duration::from_secs(3600),
    };
    let mut tracker = OffsetTracker::new(policy, T0);
    tracker.assign(tp(0));
    let _stuck = tracker.track(&tp(0), 0, 1).unwrap();
    for offset in 1..10 {
        let ticket = tracker.track(&tp(0), offset, 1).unwrap();
        tracker.ack(ticket).unwrap();
    }
    assert_eq!(tracker.due_commit(Duration::from_secs(7200)), None);
}

#[test]
fn commit_due_after_interval_only_with_progress() {
    let policy = CommitPolicy {
        max_completions: 1_000,
        max_interval: Duration::from_secs(1),
    };
    let mut tracker = OffsetTracker::new(policy, T0);
    tracker.assign(tp(0));
    assert_eq!(
        tracker.due_commit(Duration::from_secs(5)),
        None,
        "no progress at all"
    );

    let ticket = tracker.track(&tp(0), 0, 1).unwrap();
    tracker.ack(ticket).unwrap();
    assert_eq!(
        tracker.due_commit(Duration::from_millis(999)),
        None,
        "too early"
    );
    let commit = tracker
        .due_commit(Duration::from_secs(1))
        .expect("interval passed with progress");
    assert_eq!(commit.positions, vec![position(0, 1)]);
    tracker.mark_committed(&commit, Duration::from_secs(1));

    assert_eq!(
        tracker.due_commit(Duration::from_secs(10)),
        None,
        "no progress since"
    );
    let ticket = tracker.track(&tp(0), 1, 1).unwrap();
    tracker.ack(ticket).unwrap();
    assert!(tracker.due_commit(Duration::from_secs(10)).is_some());
}

#[test]
fn time_going_backwards_delays_the_interval_without_panicking() {
    let policy = CommitPolicy {
        max_completions: 1_000,
        max_interval: Duration::from_secs(1),
    };
    let mut tracker = OffsetTracker::new(policy, Duration::from_secs(10));
    tracker.assign(tp(0));
    let ticket = tracker.track(&tp(0), 0, 1).unwrap();
    tracker.ack(ticket).unwrap();
    assert_eq!(tracker.due_commit(Duration::from_secs(1)), None);
    assert!(tracker.due_commit(Duration::from_secs(11)).is_some());
}

#[test]
fn due_commit_covers_every_advanced_partition_in_order() {
    let policy = CommitPolicy {
        max_completions: 1,
        max_interval: Duration::from_secs(3600),
    };
    let mut tracker = OffsetTracker::new(policy, T0);
    for partition in [2, 0, 1] {
        tracker.assign(tp(partition));
    }
    for partition in [2, 0] {
        let ticket = tracker.track(&tp(partition), 7, 1).unwrap();
        tracker.ack(ticket).unwrap();
    }
    let _pending = tracker.track(&tp(1), 7, 1).unwrap();
    let commit = tracker.due_commit(T0).unwrap();
    assert_eq!(commit.positions, vec![position(0, 8), position(2, 8)]);
}

#[test]
fn revoke_returns_the_final_position_and_drops_the_partition() {
    let mut tracker = assigned(&[0, 1]);
    let done = tracker.track(&tp(0), 0, 1).unwrap();
    let _open = tracker.track(&tp(0), 1, 1).unwrap();
    let _other = tracker.track(&tp(1), 0, 1).unwrap();
    tracker.ack(done).unwrap();
    assert_eq!(tracker.total_in_flight(), 2);

    assert_eq!(tracker.revoke(&tp(0)), Some(position(0, 1)));
    assert!(!tracker.is_assigned(&tp(0)));
    assert_eq!(tracker.in_flight(&tp(0)), 0);
    assert_eq!(tracker.total_in_flight(), 1);
    assert_eq!(tracker.assigned().collect::<Vec<_>>(), vec![&tp(1)]);
    assert_eq!(tracker.revoke(&tp(0)), None, "already revoked");
}

#[test]
fn revoke_returns_nothing_when_already_committed() {
    let mut tracker = assigned(&[0]);
    let ticket = tracker.track(&tp(0), 0, 1).unwrap();
    tracker.ack(ticket).unwrap();
    commit_all(&mut tracker, T0);
    assert_eq!(tracker.revoke(&tp(0)), None);
}

#[test]
fn ack_after_revoke_is_stale() {
    let mut tracker = assigned(&[0]);
    let ticket = tracker.track(&tp(0), 0, 1).unwrap();
    assert_eq!(tracker.revoke(&tp(0)), None);
    assert_eq!(tracker.ack(ticket), Ok(AckOutcome::Stale));
    assert_eq!(tracker.fail(ticket), Ok(AckOutcome::Stale));
    assert_eq!(tracker.total_in_flight(), 0);
}

#[test]
fn ack_after_loss_is_stale_and_nothing_is_committed() {
    let mut tracker = assigned(&[0]);
    let ticket = tracker.track(&tp(0), 0, 1).unwrap();
    tracker.lose(&tp(0));
    assert_eq!(tracker.ack(ticket), Ok(AckOutcome::Stale));
    assert_eq!(tracker.committable(), vec![]);
    assert_eq!(tracker.total_in_flight(), 0);
}

#[test]
fn stale_ack_after_reassign_is_ignored() {
    let mut tracker = assigned(&[0]);
    let old = tracker.track(&tp(0), 5, 1).unwrap();
    tracker.revoke(&tp(0));
    tracker.assign(tp(0));
    // The new owner generation re-reads from the committed position, so offset 5 comes again.
    let new = tracker.track(&tp(0), 5, 1).unwrap();
    assert_ne!(old, new);
    assert_eq!(tracker.ack(old), Ok(AckOutcome::Stale));
    assert_eq!(
        tracker.committable(),
        vec![],
        "the old ack must not complete the new record"
    );
    assert_eq!(tracker.in_flight(&tp(0)), 1);
    assert_eq!(tracker.ack(new), Ok(AckOutcome::Completed));
    assert_eq!(tracker.committable(), vec![position(0, 6)]);
}

#[test]
fn stale_ticket_is_ignored_when_its_slot_went_to_another_partition() {
    let mut tracker = assigned(&[0]);
    let old = tracker.track(&tp(0), 0, 1).unwrap();
    tracker.lose(&tp(0));
    tracker.assign(tp(1));
    let _new = tracker.track(&tp(1), 0, 1).unwrap();
    assert_eq!(tracker.ack(old), Ok(AckOutcome::Stale));
    assert_eq!(tracker.in_flight(&tp(1)), 1);
}

#[test]
fn assign_is_idempotent() {
    let mut tracker = assigned(&[0]);
    let ticket = tracker.track(&tp(0), 0, 1).unwrap();
    tracker.assign(tp(0));
    assert_eq!(tracker.assigned().count(), 1);
    assert_eq!(tracker.in_flight(&tp(0)), 1);
    assert_eq!(
        tracker.ack(ticket),
        Ok(AckOutcome::Completed),
        "the ticket stays valid"
    );
}

#[test]
fn in_flight_counts_incomplete_records_per_partition_and_in_total() {
    let mut tracker = assigned(&[0, 1]);
    let a = tracker.track(&tp(0), 0, 2).unwrap();
    tracker.track(&tp(0), 1, 0).unwrap();
    tracker.track(&tp(0), 2, 1).unwrap();
    tracker.track(&tp(1), 0, 1).unwrap();
    assert_eq!(tracker.in_flight(&tp(0)), 2);
    assert_eq!(tracker.in_flight(&tp(1)), 1);
    assert_eq!(tracker.total_in_flight(), 3);
    assert_eq!(tracker.buffered(&tp(0)), 3);
    tracker.ack(a).unwrap();
    tracker.ack(a).unwrap();
    assert_eq!(tracker.in_flight(&tp(0)), 1);
    assert_eq!(tracker.total_in_flight(), 2);
    assert_eq!(
        tracker.buffered(&tp(0)),
        1,
        "the completed prefix was dropped"
    );
}

#[test]
fn topic_partition_displays_as_topic_and_partition() {
    assert_eq!(tp(3).to_string(), "input[3]");
}

#[test]
fn tracking_works_with_separately_allocated_topic_names() {
    let mut tracker = tracker();
    tracker.assign(TopicPartition::new(String::from("input"), 0));
    tracker.assign(TopicPartition::new("other", 0));
    let same_name = TopicPartition::new(String::from("input"), 0);
    let ticket = tracker.track(&same_name, 0, 1).unwrap();
    tracker
        .track(&TopicPartition::new("other", 0), 0, 1)
        .unwrap();
    tracker.ack(ticket).unwrap();
    assert_eq!(tracker.committable(), vec![position(0, 1)]);
}

#[test]
fn errors_say_what_failed_with_the_values() {
    let mut tracker = assigned(&[0]);
    let ticket = tracker.track(&tp(0), 4, 1).unwrap();
    tracker.fail(ticket).unwrap();
    let message = tracker.ack(ticket).unwrap_err().to_string();
    assert!(message.starts_with("ack: "), "{message}");
    assert!(message.contains("offset 4 of input[0]"), "{message}");
    assert!(message.contains("1 failed output(s)"), "{message}");
}

#[test]
fn rewind_forgets_what_was_tracked_since_the_last_commit() {
    let mut tracker = assigned(&[0, 1]);
    // Nothing tracked: nothing to rewind.
    assert_eq!(tracker.rewind(&tp(0)), None);
    let a = tracker.track(&tp(0), 5, 1).unwrap();
    assert_eq!(tracker.ack(a), Ok(AckOutcome::Completed));
    let b = tracker.track(&tp(0), 6, 2).unwrap();
    // Before any commit the rewind goes back to the first tracked offset.
    assert_eq!(tracker.rewind(&tp(0)), Some(position(0, 5)));
    assert_eq!(tracker.total_in_flight(), 0);
    assert_eq!(tracker.ack(b), Ok(AckOutcome::Stale));
    assert!(tracker.committable().is_empty());
    // Read again from 5: tracked anew, committed, then more tracked and rewound to the commit.
    let a = tracker.track(&tp(0), 5, 1).unwrap();
    let b = tracker.track(&tp(0), 6, 1).unwrap();
    let other = tracker.track(&tp(1), 0, 1).unwrap();
    tracker.ack(a).unwrap();
    tracker.ack(b).unwrap();
    tracker.ack(other).unwrap();
    assert_eq!(
        commit_all(&mut tracker, T0),
        vec![position(0, 7), position(1, 1)]
    );
    assert_eq!(tracker.rewind(&tp(0)), None, "nothing since the commit");
    let c = tracker.track(&tp(0), 7, 1).unwrap();
    tracker.track(&tp(0), 9, 0).unwrap();
    assert_eq!(tracker.rewind(&tp(0)), Some(position(0, 7)));
    assert_eq!(tracker.last_committed(&tp(0)), Some(7));
    assert_eq!(tracker.ack(c), Ok(AckOutcome::Stale));
    let c = tracker.track(&tp(0), 7, 1).unwrap();
    tracker.ack(c).unwrap();
    assert_eq!(tracker.committable(), vec![position(0, 8)]);
}

//! Properties checked after every step, comparing the tracker with the reference model.

use std::collections::BTreeMap;
use std::time::Duration;

use offset_tracker::{OffsetTracker, TopicPartition};

use crate::reference::Model;
use crate::transitions::PARTITIONS;

pub(crate) fn tp(partition: i32) -> TopicPartition {
    TopicPartition::new("input", partition)
}

pub(crate) fn check_all(tracker: &OffsetTracker, model: &Model) {
    same_assignment(tracker, model);
    committed_position_is_not_past_the_first_incomplete_offset(tracker, model);
    everything_below_the_committed_position_was_complete(tracker, model);
    in_flight_counts_match(tracker, model);
    committable_positions_match(tracker, model);
}

fn same_assignment(tracker: &OffsetTracker, model: &Model) {
    let mut assigned: Vec<i32> = tracker.assigned().map(|tp| tp.partition).collect();
    assigned.sort_unstable();
    let expected: Vec<i32> = model.partitions.keys().copied().collect();
    assert_eq!(assigned, expected, "assigned partitions");
}

fn committed_position_is_not_past_the_first_incomplete_offset(
    tracker: &OffsetTracker,
    model: &Model,
) {
    for (&p, partition) in &model.partitions {
        let committed = tracker.last_committed(&tp(p));
        assert_eq!(
            committed, partition.last_committed,
            "last committed of partition {p}"
        );
        if let (Some(committed), Some(first_incomplete)) = (committed, partition.first_incomplete())
        {
            assert!(
                committed <= first_incomplete,
                "partition {p}: committed {committed} past the incomplete record {first_incomplete}"
            );
        }
        if let Some(position) = tracker.safe_position(&tp(p))
            && let Some(first_incomplete) = partition.first_incomplete()
        {
            assert!(
                position <= first_incomplete,
                "partition {p}: safe position {position} past the incomplete record {first_incomplete}"
            );
        }
    }
}

fn everything_below_the_committed_position_was_complete(tracker: &OffsetTracker, model: &Model) {
    for (&p, partition) in &model.partitions {
        let Some(committed) = tracker.last_committed(&tp(p)) else {
            continue;
        };
        for (offset, record) in partition.records.range(..committed) {
            assert!(
                record.is_complete(),
                "partition {p}: offset {offset} is below the committed position {committed} \
                 but incomplete: {record:?}"
            );
        }
    }
}

fn in_flight_counts_match(tracker: &OffsetTracker, model: &Model) {
    for p in 0..PARTITIONS {
        let expected = model
            .partitions
            .get(&p)
            .map_or(0, |partition| partition.in_flight());
        assert_eq!(
            tracker.in_flight(&tp(p)),
            expected,
            "in flight in partition {p}"
        );
    }
    assert_eq!(
        tracker.total_in_flight(),
        model.in_flight(),
        "total in flight"
    );
}

fn committable_positions_match(tracker: &OffsetTracker, model: &Model) {
    let committable: Vec<(i32, i64)> = tracker
        .committable()
        .into_iter()
        .map(|position| (position.partition.partition, position.offset))
        .collect();
    assert_eq!(committable, model.committable(), "committable positions");
    for (&p, partition) in &model.partitions {
        assert_eq!(
            tracker.safe_position(&tp(p)),
            partition.watermark(),
            "safe position of partition {p}"
        );
    }
    let due: Vec<(i32, i64)> = tracker
        .due_commit(Duration::from_millis(model.now_ms))
        .map(|commit| {
            commit
                .positions
                .into_iter()
                .map(|position| (position.partition.partition, position.offset))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(due, model.due_commit(), "due commit at {} ms", model.now_ms);
}

/// Within one assignment of a partition, the committed position only moves forward.
/// `seen` keeps, per partition, the generation and the last committed position observed.
pub(crate) fn committed_position_is_monotonic(
    seen: &mut BTreeMap<i32, (u64, i64)>,
    tracker: &OffsetTracker,
    model: &Model,
) {
    for (&p, partition) in &model.partitions {
        let Some(committed) = tracker.last_committed(&tp(p)) else {
            continue;
        };
        if let Some(&(generation, previous)) = seen.get(&p)
            && generation == partition.generation
        {
            assert!(
                committed >= previous,
                "partition {p}: committed position went back from {previous} to {committed}"
            );
        }
        seen.insert(p, (partition.generation, committed));
    }
}
